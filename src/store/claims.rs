//! Write-side uniqueness: a value (a tenant slug, a workspace name within a tenant) is claimed
//! by one stream inside the command's transaction, so concurrent commands cannot both take it.

use deadpool_postgres::GenericClient;

use super::{unique_violation, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimChange {
    Claim { scope: String, value: String },
    Release { scope: String, value: String },
}

/// Applies claim changes for `stream_id`. Values are compared case-insensitively.
/// New claims are taken before old ones are released: two renames that swap names then fail
/// cleanly (the name is still taken) instead of deadlocking on each other's released rows.
pub async fn apply(
    client: &impl GenericClient,
    stream_id: &str,
    changes: &[ClaimChange],
) -> Result<(), StoreError> {
    let (claims, releases): (Vec<&ClaimChange>, Vec<&ClaimChange>) = changes
        .iter()
        .partition(|c| matches!(c, ClaimChange::Claim { .. }));
    for change in claims.into_iter().chain(releases) {
        match change {
            ClaimChange::Release { scope, value } => {
                client
                    .execute(
                        "DELETE FROM unique_claims \
                         WHERE claim_scope = $1 AND claim_value = lower($2) AND stream_id = $3",
                        &[scope, value, &stream_id],
                    )
                    .await?;
            }
            ClaimChange::Claim { scope, value } => {
                let statement = client
                    .prepare_cached(
                        "INSERT INTO unique_claims (claim_scope, claim_value, stream_id) \
                         VALUES ($1, lower($2), $3)",
                    )
                    .await?;
                client
                    .execute(&statement, &[scope, value, &stream_id])
                    .await
                    .map_err(|e| match unique_violation(&e) {
                        Some("unique_claims_pkey") => StoreError::ClaimTaken {
                            scope: scope.clone(),
                            value: value.clone(),
                        },
                        _ => e.into(),
                    })?;
            }
        }
    }
    Ok(())
}

/// The id of the aggregate holding `value` in `scope` (claims name streams `<type>-<uuid>`).
pub async fn holder(
    client: &impl GenericClient,
    scope: &str,
    value: &str,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT stream_id FROM unique_claims WHERE claim_scope = $1 AND claim_value = lower($2)",
        )
        .await?;
    let row = client.query_opt(&statement, &[&scope, &value]).await?;
    Ok(row.and_then(|r| {
        let stream: String = r.get(0);
        let (_, id) = stream.split_once('-')?;
        uuid::Uuid::parse_str(id).ok()
    }))
}
