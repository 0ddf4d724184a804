//! Read model `audit_chain`: the tamper-evident seal of the log. Following the log in its
//! stable global order, it stores for every event
//! `hash_n = sha256(hash_{n-1} ‖ canonical_bytes(event_n))` (`hash_0` = 32 zero bytes).
//! Owns `audit_chain`. See ADR 0004 for why the seal follows the log instead of being
//! written at append time.
//!
//! Verification ([`verify`]) walks the log and the chain side by side and names the first
//! break: a changed row (its hash no longer matches), a missing row (sealed, but gone from
//! the log), or an inserted row (in the log, inside the sealed range, never sealed).

use charter_events::{Metadata, RecordedEvent};
use charter_log::reader::{event_from_row, EVENT_COLUMNS};
use charter_log::LogPosition;
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, Projection, ProjectionError};

/// The read model `audit_chain` (see the module's documentation).
pub struct AuditChain;

/// The chain value before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// What of an event the chain covers: every column, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    tx_id: i64,
    position: i64,
    event_id: Uuid,
    stream_type: &'a str,
    stream_id: &'a str,
    stream_version: i64,
    tenant_id: Uuid,
    workspace_id: Option<Uuid>,
    event_type: &'a str,
    schema_version: i32,
    data: &'a serde_json::Value,
    metadata: &'a Metadata,
    /// Microseconds since the epoch (PostgreSQL's precision).
    recorded_at: i64,
}

/// The bytes of `e` the chain hashes (compact JSON of its canonical form).
pub fn canonical_bytes(e: &RecordedEvent) -> Vec<u8> {
    serde_json::to_vec(&Canonical {
        tx_id: e.tx_id,
        position: e.position,
        event_id: e.event_id,
        stream_type: &e.stream_type,
        stream_id: &e.stream_id,
        stream_version: e.stream_version,
        tenant_id: e.tenant_id,
        workspace_id: e.workspace_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        data: &e.data,
        metadata: &e.metadata,
        recorded_at: e.recorded_at.timestamp_micros(),
    })
    .expect("canonical events serialize")
}

/// `sha256(previous ‖ canonical_bytes(e))`.
pub fn link(previous: &[u8], e: &RecordedEvent) -> Vec<u8> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(previous);
    digest.update(&canonical_bytes(e));
    digest.finish().as_ref().to_vec()
}

#[async_trait::async_trait]
impl Projection for AuditChain {
    fn name(&self) -> &'static str {
        "audit_chain"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_chain"]
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(e))
            .await
            .map_err(|(_, e)| e)
    }

    /// One read of the previous seal and one insert per batch: the chain is carried across
    /// the batch in memory.
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        let last = events.len().saturating_sub(1);
        let failed = |e: tokio_postgres::Error| (last, ProjectionError::from(e));
        let statement = tx
            .prepare_cached(
                "SELECT hash FROM audit_chain ORDER BY tx_id DESC, position DESC LIMIT 1",
            )
            .await
            .map_err(failed)?;
        let previous: Option<Vec<u8>> = tx
            .query_opt(&statement, &[])
            .await
            .map_err(failed)?
            .map(|r| r.get(0));
        let mut previous = previous.unwrap_or_else(|| GENESIS.to_vec());
        let mut hashes = Vec::with_capacity(events.len());
        for e in events {
            previous = link(&previous, e);
            hashes.push(previous.clone());
        }
        let tx_ids: Vec<i64> = events.iter().map(|e| e.tx_id).collect();
        let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        execute(
            tx,
            "INSERT INTO audit_chain (tx_id, position, event_id, hash) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bytea[])",
            &[&tx_ids, &positions, &ids, &hashes],
        )
        .await
        .map_err(failed)?;
        Ok(())
    }
}

/// The newest seal: what an auditor writes down to prove later that the log only grew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Head {
    pub position: String,
    /// Hex.
    pub hash: String,
    pub sealed_events: i64,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn head(client: &impl GenericClient) -> Result<Option<Head>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT tx_id, position, hash, (SELECT count(*) FROM projections.audit_chain)
             FROM projections.audit_chain ORDER BY tx_id DESC, position DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map(|r| Head {
        position: LogPosition {
            tx_id: r.get(0),
            position: r.get(1),
        }
        .to_string(),
        hash: hex(&r.get::<_, Vec<u8>>(2)),
        sealed_events: r.get(3),
    }))
}

/// How the chain broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The event's content no longer hashes to its seal.
    Changed,
    /// A sealed event is gone from the log.
    Missing,
    /// An event inside the sealed range was never sealed.
    Inserted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub position: String,
    pub kind: BreakKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events checked against their seal.
    pub verified: u64,
    /// Events after the newest seal (not yet sealed, not judged).
    pub unsealed: u64,
    pub head: Option<Head>,
    pub first_break: Option<ChainBreak>,
}

/// Walks the log and the chain in pages of `page` rows, in order, in constant memory, and
/// stops at the first break. `progress` is called with the number of events checked so far.
pub async fn verify(
    client: &impl GenericClient,
    page: i64,
    progress: impl Fn(u64),
) -> Result<Verification, ProjectionError> {
    let head = head(client).await?;
    let sealed_end: Option<(i64, i64)> = match &head {
        None => None,
        Some(h) => {
            let p: LogPosition = h
                .position
                .parse()
                .map_err(|_| ProjectionError::Invariant("corrupt chain head position".into()))?;
            Some((p.tx_id, p.position))
        }
    };
    let events_sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)
         ORDER BY events.tx_id, events.position LIMIT $3"
    );
    let chain_sql = "SELECT tx_id, position, hash FROM projections.audit_chain
                     WHERE (tx_id, position) > ($1, $2) ORDER BY tx_id, position LIMIT $3";
    let mut previous = GENESIS.to_vec();
    let (mut verified, mut unsealed) = (0u64, 0u64);
    let (mut event_cursor, mut chain_cursor) = ((0i64, 0i64), (0i64, 0i64));
    let mut events: std::collections::VecDeque<RecordedEvent> = Default::default();
    let mut seals: std::collections::VecDeque<((i64, i64), Vec<u8>)> = Default::default();
    let (mut events_done, mut seals_done) = (false, false);
    let broke = |at: (i64, i64), kind| {
        Some(ChainBreak {
            position: LogPosition {
                tx_id: at.0,
                position: at.1,
            }
            .to_string(),
            kind,
        })
    };
    loop {
        if events.is_empty() && !events_done {
            let rows = client
                .query(
                    &events_sql,
                    &[&event_cursor.0.to_string(), &event_cursor.1, &page],
                )
                .await?;
            events_done = (rows.len() as i64) < page;
            for r in &rows {
                let e = event_from_row(r)?;
                event_cursor = (e.tx_id, e.position);
                events.push_back(e);
            }
        }
        if seals.is_empty() && !seals_done {
            let rows = client
                .query(chain_sql, &[&chain_cursor.0, &chain_cursor.1, &page])
                .await?;
            seals_done = (rows.len() as i64) < page;
            for r in &rows {
                let at = (r.get::<_, i64>(0), r.get::<_, i64>(1));
                chain_cursor = at;
                seals.push_back((at, r.get(2)));
            }
        }
        let first_break = match (events.front(), seals.front()) {
            (None, None) => None,
            (Some(e), None) => {
                let at = (e.tx_id, e.position);
                if sealed_end.is_some_and(|end| at <= end) {
                    broke(at, BreakKind::Inserted)
                } else {
                    unsealed += events.len() as u64;
                    events.clear();
                    if events_done {
                        None
                    } else {
                        continue;
                    }
                }
            }
            (None, Some((at, _))) => broke(*at, BreakKind::Missing),
            (Some(e), Some((at, hash))) => {
                let event_at = (e.tx_id, e.position);
                if event_at < *at {
                    broke(event_at, BreakKind::Inserted)
                } else if event_at > *at {
                    broke(*at, BreakKind::Missing)
                } else if link(&previous, e) != *hash {
                    broke(event_at, BreakKind::Changed)
                } else {
                    previous = hash.clone();
                    verified += 1;
                    if verified % 10_000 == 0 {
                        progress(verified);
                    }
                    events.pop_front();
                    seals.pop_front();
                    continue;
                }
            }
        };
        progress(verified);
        return Ok(Verification {
            verified,
            unsealed,
            head,
            first_break,
        });
    }
}
