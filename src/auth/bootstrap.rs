//! The first administrator: a root tenant, a user holding its `tenant_admin` role, and a
//! platform-wide `iam.*` grant. Idempotent: every step first looks for what it would create,
//! so running it again (or from several instances at once) changes nothing. An existing
//! user's password is never changed by a bootstrap.

use charter_events::assignment::SubjectType;
use charter_events::streams::{
    role_name_scope, tenant_stream, user_stream, username_scope, TENANT_SLUG_SCOPE,
};
use charter_log::LogPosition;
use uuid::Uuid;

use super::password;
use crate::command::assignment::{AssignmentHandler, AssignmentRequest};
use crate::command::tenant::CreateTenant;
use crate::command::user::UserHandler;
use crate::command::{self, CommandError, CommandHandler, Writer};
use crate::domain::delegation::Authority;
use crate::domain::tenant::Tenant;
use crate::domain::user::User;
use crate::domain::user::UserAction;
use crate::domain::validate::{self, FieldError};
use crate::store::claims;

pub const PLATFORM_GRANT: &str = "iam.*";

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant_slug: String,
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Bootstrapped {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// Wait for this position before logging in: the grant must be projected.
    pub token: LogPosition,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid bootstrap settings: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("refused: {0}")]
    Refused(String),
}

impl From<crate::store::StoreError> for BootstrapError {
    fn from(e: crate::store::StoreError) -> Self {
        BootstrapError::Command(e.into())
    }
}

/// Runs `handler`; a value someone else claimed first counts as done.
async fn run<H: CommandHandler>(
    writer: &Writer,
    handler: &H,
) -> Result<Option<LogPosition>, CommandError> {
    let request = command::system_request("system:bootstrap");
    match command::run(writer, handler, &request).await {
        Ok(outcome) => Ok(Some(outcome.token)),
        Err(CommandError::Taken { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn bootstrap(
    writer: &Writer,
    iterations: std::num::NonZeroU32,
    b: &Bootstrap,
) -> Result<Bootstrapped, BootstrapError> {
    let mut errors = Vec::new();
    let slug = validate::slug("tenant", &b.tenant_slug, &mut errors);
    let username = validate::username("username", &b.username, &mut errors);
    let email = validate::email("email", &b.email, &mut errors);
    password::check_policy("password", &b.password, &username, &email, &mut errors);
    if !errors.is_empty() {
        return Err(BootstrapError::Invalid(errors));
    }
    let mut last = LogPosition::START;
    let mut note = |t: Option<LogPosition>| {
        if let Some(t) = t {
            last = last.max(t);
        }
    };
    let client = writer.pool.get().await.map_err(CommandError::from)?;

    if claims::holder(&client, TENANT_SLUG_SCOPE, &slug)
        .await?
        .is_none()
    {
        let create = CreateTenant {
            tenant_id: Uuid::now_v7(),
            name: slug.clone(),
            slug: slug.clone(),
            parent_id: None,
        };
        note(run(writer, &create).await?);
    }
    let tenant_id = claims::holder(&client, TENANT_SLUG_SCOPE, &slug)
        .await?
        .ok_or_else(|| CommandError::Internal("bootstrap tenant vanished".into()))?;

    // The platform administrator lives in a root tenant; refuse before creating anything.
    let tenant = crate::store::events::load::<Tenant>(&client, &tenant_stream(tenant_id)).await?;
    if tenant
        .state
        .0
        .as_ref()
        .is_some_and(|t| t.parent_id.is_some())
    {
        return Err(BootstrapError::Refused(format!(
            "tenant {slug} is not a root tenant"
        )));
    }
    let user_scope = username_scope(tenant_id);
    if claims::holder(&client, &user_scope, &username)
        .await?
        .is_none()
    {
        let pw = b.password.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&pw, iterations))
            .await
            .map_err(|e| BootstrapError::Hash(e.to_string()))?
            .map_err(|e| BootstrapError::Hash(e.to_string()))?;
        let user_id = Uuid::now_v7();
        let create = UserHandler {
            tenant_id,
            user_id,
            action: UserAction::Create {
                user_id,
                username: username.clone(),
                email,
                display_name: Some("Administrator".into()),
                given_name: None,
                family_name: None,
                password_hash: Some(hash),
            },
        };
        note(run(writer, &create).await?);
    }
    let user_id = claims::holder(&client, &user_scope, &username)
        .await?
        .ok_or_else(|| CommandError::Internal("bootstrap user vanished".into()))?;

    // Only a user who proves the configured password gets the platform grant: a user
    // recreated under the same name by someone else must not inherit it.
    let user = crate::store::events::load::<User>(&client, &user_stream(user_id)).await?;
    let user = user
        .state
        .0
        .ok_or_else(|| CommandError::Internal("bootstrap user vanished".into()))?;
    if !user
        .platform_permissions
        .iter()
        .any(|p| p == PLATFORM_GRANT)
    {
        let (pw, hash) = (
            b.password.clone(),
            user.password_hash.clone().unwrap_or_default(),
        );
        let proven =
            tokio::task::spawn_blocking(move || password::verify(&pw, &hash).unwrap_or(false))
                .await
                .map_err(|e| BootstrapError::Hash(e.to_string()))?;
        if !proven {
            return Err(BootstrapError::Refused(format!(
                "user {username} exists without the platform grant and does not hold the configured password"
            )));
        }
    }

    let role_id = claims::holder(&client, &role_name_scope(tenant_id, None), "tenant_admin")
        .await?
        .ok_or_else(|| CommandError::Internal("the tenant has no tenant_admin role".into()))?;
    let assign = AssignmentHandler {
        tenant_id,
        assignment_id: Uuid::now_v7(),
        authority: Authority::Platform,
        request: AssignmentRequest::Create {
            role_id,
            subject_type: SubjectType::User,
            subject_id: user_id,
            workspace_id: None,
        },
    };
    note(run(writer, &assign).await?);
    let grant = UserHandler {
        tenant_id,
        user_id,
        action: UserAction::GrantPlatformAccess {
            permissions: vec![PLATFORM_GRANT.into()],
        },
    };
    note(run(writer, &grant).await?);
    Ok(Bootstrapped {
        tenant_id,
        user_id,
        token: last,
    })
}
