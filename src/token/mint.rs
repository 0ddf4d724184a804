//! Minting access tokens: the subject's roles and permissions in the token's scope and that
//! scope's policy version, read together from the read models (one snapshot), then signed
//! with the active key.

use chrono::Utc;
use deadpool_postgres::GenericClient;
use jsonwebtoken::{Algorithm, Header};
use uuid::Uuid;

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

pub async fn mint(
    client: &impl GenericClient,
    keys: &KeyStore,
    config: &AuthConfig,
    subject: &Subject,
) -> Result<Minted, MintError> {
    let scope = subject
        .workspace_id
        .unwrap_or(charter_projections::entitlements::TENANT_SCOPE);
    let statement = client
        .prepare_cached(
            "SELECT COALESCE(e.roles, '{}'), COALESCE(e.permissions, '{}'),
                    COALESCE((SELECT version FROM projections.policy_versions
                              WHERE tenant_id = $1 AND workspace_id = $3), 0),
                    (SELECT status FROM projections.tenants WHERE tenant_id = $1)
             FROM (SELECT 1) AS one
             LEFT JOIN projections.entitlements e
                    ON e.tenant_id = $1 AND e.user_id = $2 AND e.workspace_id = $3",
        )
        .await?;
    let row = client
        .query_one(&statement, &[&subject.tenant_id, &subject.id, &scope])
        .await?;
    if row.get::<_, Option<String>>(3).as_deref() != Some("active") {
        return Err(MintError::TenantInactive);
    }
    let mut roles: Vec<Uuid> = row.get(0);
    let mut permissions: Vec<String> = row.get(1);
    roles.sort();
    permissions.sort();
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
        policy_version: row.get(2),
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
