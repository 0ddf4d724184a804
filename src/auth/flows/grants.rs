//! The grants beside the password: refresh-token rotation and the client credentials grant.

use chrono::Utc;
use uuid::Uuid;

use crate::command::session::RefreshHandler;
use crate::command::{self, CommandError, CommandRequest};
use crate::crypto::secrets;
use crate::domain::service_account::ServiceAccount;
use crate::store::events;
use crate::token::claims::PrincipalKind;
use crate::token::mint::{self, MintError, Minted, Subject};
use charter_events::streams::service_account_stream;

use super::{parse_refresh_token, refresh_token, AuthError, Authenticator, TokenPair};

impl Authenticator {
    pub async fn refresh(
        &self,
        presented: &str,
        envelope: &CommandRequest,
    ) -> Result<TokenPair, AuthError> {
        let session_id = parse_refresh_token(presented).ok_or(AuthError::InvalidGrant)?;
        let refresh_token = refresh_token(session_id)?;
        let handler = RefreshHandler {
            session_id,
            presented_hash: secrets::digest(presented),
            new_hash: secrets::digest(&refresh_token),
            now: Utc::now(),
        };
        let envelope = CommandRequest {
            idempotency: None,
            if_match: None,
            ..envelope.clone()
        };
        let state = match command::run(&self.writer, &handler, &envelope).await {
            Ok(outcome) => outcome.state.0,
            Err(CommandError::Rejected(_)) => return Err(AuthError::InvalidGrant),
            Err(e) => return Err(e.into()),
        };
        // A reused token ended the family (committed); the caller learns only "invalid".
        let Some(state) = state.filter(|s| s.ended.is_none()) else {
            return Err(AuthError::InvalidGrant);
        };
        let user = self
            .load_user(state.user_id)
            .await?
            .ok_or(AuthError::InvalidGrant)?;
        // The account version the refresh was decided against (it equals the session's), not
        // the one loaded since: a logout-all committed in between must make this token stale.
        let access = self
            .mint_user(
                &user,
                state.account_version,
                state.workspace_id,
                Some(session_id),
            )
            .await?;
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }

    /// RFC 6749 §4.4. Secrets are 256 random bits, compared by digest.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Minted, AuthError> {
        let id = Uuid::parse_str(client_id).map_err(|_| AuthError::InvalidClient)?;
        self.limits.check_client(id)?;
        let client = self.pool.get().await?;
        let account = events::load::<ServiceAccount>(&client, &service_account_stream(id))
            .await?
            .state
            .0;
        let account = account
            .filter(|a| a.active())
            .ok_or(AuthError::InvalidClient)?;
        let presented = secrets::digest(client_secret);
        let stored = account.secret_hash.as_deref().unwrap_or_default();
        if !secrets::digest_eq(&presented, stored) {
            return Err(AuthError::InvalidClient);
        }
        let subject = Subject {
            id,
            kind: PrincipalKind::ServiceAccount,
            tenant_id: account.tenant_id,
            workspace_id: None,
            // The account's version and platform grants, as read with the secret just checked:
            // a rotation or a platform-access change that commits after this read raises the
            // version, so the token is stale at once.
            account_version: account.account_version,
            platform_permissions: account.platform_permissions.clone(),
            session_id: None,
        };
        mint::mint(&client, &self.index, &self.keys, &self.config, &subject)
            .await
            .map_err(|e| match e {
                MintError::TenantInactive => AuthError::InvalidClient,
                other => other.into(),
            })
    }
}
