//! Idempotency records: the first response to a command sent with an `Idempotency-Key`,
//! replayed verbatim to every retry with the same key and the same request.

use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// An HTTP response as stored for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub body: serde_json::Value,
}

pub struct Record {
    pub request_hash: Vec<u8>,
    pub response: StoredResponse,
}

pub async fn find(
    client: &impl GenericClient,
    scope: &str,
    key: &str,
) -> Result<Option<Record>, StoreError> {
    let row = client
        .query_opt(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
            &[&scope, &key],
        )
        .await?;
    row.map(|r| {
        let response: serde_json::Value = r.get(1);
        Ok(Record {
            request_hash: r.get(0),
            response: serde_json::from_value(response)
                .map_err(|e| StoreError::Corrupt(format!("idempotency record: {e}")))?,
        })
    })
    .transpose()
}

pub async fn save(
    client: &impl GenericClient,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    response: &StoredResponse,
) -> Result<(), StoreError> {
    let body = serde_json::to_value(response).expect("responses serialize");
    client
        .execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &scope,
                &key,
                &request_hash,
                &(response.status as i16),
                &body,
            ],
        )
        .await?;
    Ok(())
}
