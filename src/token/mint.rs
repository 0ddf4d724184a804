//! Minting access tokens: the subject's roles and permissions in the token's scope and that
//! scope's effective policy version, read together from one snapshot of the entitlement
//! index, then signed with the active key.

use chrono::Utc;
use deadpool_postgres::GenericClient;
use jsonwebtoken::{Algorithm, Header};
use uuid::Uuid;

use charter_projections::index::{Index, Snapshot};
use charter_projections::policy_versions;

use super::claims::{Claims, PrincipalKind};
use super::keys::KeyStore;
use crate::config::AuthConfig;

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The subject's tenant is blocked, deleted or unknown to the read models.
    #[error("the tenant is not active")]
    TenantInactive,
    /// This instance's entitlement index did not reach the read model's policy version in
    /// time (it follows the log; the database is slow or unreachable).
    #[error("the entitlement index is behind the read model")]
    IndexBehind,
}

/// Who the token is for.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: Uuid,
    pub kind: PrincipalKind,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub account_version: i64,
    pub platform_permissions: Vec<String>,
    pub session_id: Option<Uuid>,
}

/// A signed access token and what it says.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub claims: Claims,
    pub expires_in: u64,
}

/// How long minting waits for this instance's index to reach the read model's policy
/// version of the token's scope (the index is normally ahead of it).
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Mints from this instance's entitlement index: the roles, permissions and effective
/// policy version of one snapshot. The index is first brought to at least the read model's
/// version of the scope, which verifiers compare against, so a fresh token is never stale
/// on arrival.
pub async fn mint(
    client: &impl GenericClient,
    index: &Index,
    keys: &KeyStore,
    config: &AuthConfig,
    subject: &Subject,
) -> Result<Minted, MintError> {
    let floor = policy_versions::effective(client, subject.tenant_id, subject.workspace_id).await?;
    let version_of = |s: &Snapshot| {
        s.tenant(subject.tenant_id)
            .map_or(0, |t| t.policy_version(subject.workspace_id))
    };
    let mut snapshot = index.snapshot();
    if version_of(&snapshot) < floor {
        let deadline = tokio::time::Instant::now() + INDEX_WAIT;
        while version_of(&snapshot) < floor && tokio::time::Instant::now() < deadline {
            index.wait_past(snapshot.at, deadline).await;
            snapshot = index.snapshot();
        }
        if version_of(&snapshot) < floor {
            return Err(MintError::IndexBehind);
        }
    }
    let tenant = snapshot
        .tenant(subject.tenant_id)
        .filter(|t| t.is_active())
        .ok_or(MintError::TenantInactive)?;
    let (roles, permissions) = tenant
        .resolve(subject.id, subject.workspace_id)
        .map(|s| (s.roles, s.permissions))
        .unwrap_or_default();
    let policy_version = tenant.policy_version(subject.workspace_id);
    let now = Utc::now().timestamp();
    let ttl = config.access_token_ttl_s;
    let claims = Claims {
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        sub: subject.id,
        principal: subject.kind,
        tenant_id: subject.tenant_id,
        workspace_id: subject.workspace_id,
        roles,
        permissions,
        // Workspace tokens go to services' data planes: they never carry platform grants.
        platform_permissions: if subject.workspace_id.is_some() {
            vec![]
        } else {
            subject.platform_permissions.clone()
        },
        policy_version,
        policy_contract: policy_versions::CONTRACT,
        account_version: subject.account_version,
        sid: subject.session_id,
        jti: Uuid::now_v7(),
        iat: now,
        nbf: now,
        exp: now + ttl as i64,
    };
    let keys = keys.current();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(keys.signing_kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &keys.signing)?;
    Ok(Minted {
        token,
        claims,
        expires_in: ttl,
    })
}
