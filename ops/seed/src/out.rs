//! Where generated commands go: rows encoded for `COPY events ... (FORMAT binary)`, cut into
//! transactions of about `batch_events` events (always at a command boundary), together with
//! the write-side indexes those commands change (uniqueness claims, the tenant hierarchy),
//! exactly as the command side would have left them.

use std::collections::{BTreeMap, HashMap};

use charter_events::{DomainEvent, Metadata, RecordedEvent, Scoped};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::check::LogChecker;

/// The columns the generator writes. `position` and `tx_id` keep their defaults (the identity
/// sequence and `pg_current_xact_id()`), exactly like the service's appends.
pub const COPY_EVENTS: &str = "COPY events (event_id, stream_type, stream_id, stream_version, \
     tenant_id, workspace_id, event_type, schema_version, data, metadata, recorded_at) \
     FROM STDIN (FORMAT binary)";

/// Rows are handed over in chunks of about this size.
const CHUNK_BYTES: usize = 1 << 20;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// What the writer receives: COPY data of the open transaction, then its end.
pub enum Msg {
    Rows(Vec<u8>),
    Commit(BatchEnd),
}

/// The end of one transaction: what else it writes besides the events.
#[derive(Debug, Default)]
pub struct BatchEnd {
    pub events: u64,
    /// `(scope, value, stream_id)` rows to delete from, then insert into, `unique_claims`.
    pub claims_deleted: Vec<(String, String, String)>,
    pub claims_inserted: Vec<(String, String, String)>,
    /// `tenant_hierarchy` upserts, one per tenant.
    pub hierarchy: Vec<(Uuid, Option<Uuid>)>,
}

/// One event of a command, encoded from its typed value.
pub struct Pending {
    pub stream_type: &'static str,
    pub stream_id: String,
    pub version: i64,
    pub event_type: &'static str,
    pub schema_version: u32,
    pub tenant_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub data: Value,
}

impl Pending {
    /// `event_type`, `schema_version`, the scope and the data all come from the typed event.
    pub fn of<E: DomainEvent + Scoped>(stream_id: String, version: i64, event: &E) -> Self {
        Pending {
            stream_type: E::STREAM_TYPE,
            stream_id,
            version,
            event_type: event.event_type(),
            schema_version: event.schema_version(),
            tenant_id: event.tenant_id(),
            workspace_id: event.workspace_id(),
            data: event.to_data(),
        }
    }
}

type ClaimKey = (String, String);

pub struct Out {
    sink: Box<dyn FnMut(Msg) -> bool + Send>,
    batch_limit: u64,
    buf: Vec<u8>,
    batch_events: u64,
    claims: HashMap<ClaimKey, String>,
    /// Claims changed in the open batch, with their value when it began.
    touched: HashMap<ClaimKey, Option<String>>,
    hierarchy: Vec<(Uuid, Option<Uuid>)>,
    pub per_type: BTreeMap<&'static str, u64>,
    pub events: u64,
    pub commands: u64,
    pub transactions: u64,
    pub closed: bool,
    checker: Option<LogChecker>,
    pub check_error: Option<String>,
}

impl Out {
    /// `sink` returns false once the writer is gone. A `checker` (which has seen the log
    /// so far) checks every command before it is handed over.
    pub fn new(
        sink: Box<dyn FnMut(Msg) -> bool + Send>,
        batch_limit: u64,
        checker: Option<LogChecker>,
    ) -> Self {
        Out {
            sink,
            batch_limit: batch_limit.max(1),
            buf: Vec::with_capacity(CHUNK_BYTES + 4096),
            batch_events: 0,
            claims: HashMap::new(),
            touched: HashMap::new(),
            hierarchy: Vec::new(),
            per_type: BTreeMap::new(),
            events: 0,
            commands: 0,
            transactions: 0,
            closed: false,
            checker,
            check_error: None,
        }
    }

    /// Appends one command: its events share the metadata and the recorded time.
    pub fn command(
        &mut self,
        meta: &Metadata,
        at: DateTime<Utc>,
        ids: &[Uuid],
        events: Vec<Pending>,
    ) {
        let meta_json = serde_json::to_vec(meta).expect("metadata serializes");
        let at_pg = at.timestamp_micros() - PG_EPOCH_US;
        if self.batch_events == 0 {
            self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
            self.buf.extend_from_slice(&0i32.to_be_bytes()); // flags
            self.buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        }
        for (id, p) in ids.iter().zip(&events) {
            self.encode(*id, p, &meta_json, at_pg);
            *self.per_type.entry(p.event_type).or_default() += 1;
        }
        let first = self.events as i64 + 1;
        self.events += ids.len() as u64;
        self.batch_events += ids.len() as u64;
        if let Some(checker) = self.checker.as_mut().filter(|_| self.check_error.is_none()) {
            for (n, (id, p)) in ids.iter().zip(events).enumerate() {
                let recorded = RecordedEvent {
                    position: first + n as i64,
                    tx_id: self.transactions as i64 + 1,
                    event_id: *id,
                    stream_type: p.stream_type.to_owned(),
                    stream_id: p.stream_id,
                    stream_version: p.version,
                    tenant_id: p.tenant_id,
                    workspace_id: p.workspace_id,
                    event_type: p.event_type.to_owned(),
                    schema_version: p.schema_version as i32,
                    data: p.data,
                    metadata: meta.clone(),
                    recorded_at: at,
                };
                if let Err(e) = checker.feed(recorded) {
                    self.check_error = Some(e.to_string());
                }
            }
        }
        self.commands += 1;
        if self.buf.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES + 4096));
            self.send(Msg::Rows(chunk));
        }
        if self.batch_events >= self.batch_limit {
            self.end_batch();
        }
    }

    fn encode(&mut self, id: Uuid, p: &Pending, meta_json: &[u8], at_pg: i64) {
        let b = &mut self.buf;
        b.extend_from_slice(&11i16.to_be_bytes());
        field(b, id.as_bytes());
        field(b, p.stream_type.as_bytes());
        field(b, p.stream_id.as_bytes());
        field(b, &p.version.to_be_bytes());
        field(b, p.tenant_id.as_bytes());
        match p.workspace_id {
            Some(w) => field(b, w.as_bytes()),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        field(b, p.event_type.as_bytes());
        field(b, &(p.schema_version as i32).to_be_bytes());
        let data = serde_json::to_vec(&p.data).expect("event data serializes");
        jsonb(b, &data);
        jsonb(b, meta_json);
        field(b, &at_pg.to_be_bytes());
    }

    /// Claims `value` (compared ignoring case, like `unique_claims`) for `stream_id`.
    pub fn claim(&mut self, scope: &str, value: &str, stream_id: &str) {
        let key = (scope.to_owned(), value.to_lowercase());
        self.touch(&key);
        let previous = self.claims.insert(key, stream_id.to_owned());
        assert!(
            previous.is_none(),
            "{scope} {value:?} claimed twice: a generator bug"
        );
    }

    pub fn release(&mut self, scope: &str, value: &str, stream_id: &str) {
        let key = (scope.to_owned(), value.to_lowercase());
        self.touch(&key);
        if self.claims.get(&key).is_some_and(|s| s == stream_id) {
            self.claims.remove(&key);
        }
    }

    fn touch(&mut self, key: &ClaimKey) {
        if !self.touched.contains_key(key) {
            self.touched
                .insert(key.clone(), self.claims.get(key).cloned());
        }
    }

    pub fn set_parent(&mut self, tenant_id: Uuid, parent_id: Option<Uuid>) {
        self.hierarchy.push((tenant_id, parent_id));
    }

    /// Ends the open transaction, if any.
    pub fn end_batch(&mut self) {
        if self.batch_events == 0 {
            return;
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let rows = std::mem::take(&mut self.buf);
        self.send(Msg::Rows(rows));
        let mut end = BatchEnd {
            events: self.batch_events,
            ..BatchEnd::default()
        };
        for ((scope, value), before) in std::mem::take(&mut self.touched) {
            let after = self.claims.get(&(scope.clone(), value.clone()));
            if before.as_ref() == after {
                continue;
            }
            if let Some(stream) = before {
                end.claims_deleted
                    .push((scope.clone(), value.clone(), stream));
            }
            if let Some(stream) = after {
                end.claims_inserted.push((scope, value, stream.clone()));
            }
        }
        let mut last: HashMap<Uuid, usize> = HashMap::new();
        for (i, (tenant, _)) in self.hierarchy.iter().enumerate() {
            last.insert(*tenant, i);
        }
        end.hierarchy = (self.hierarchy.iter().enumerate())
            .filter(|(i, (tenant, _))| last[tenant] == *i)
            .map(|(_, h)| *h)
            .collect();
        self.hierarchy.clear();
        self.batch_events = 0;
        self.transactions += 1;
        self.send(Msg::Commit(end));
    }

    fn send(&mut self, msg: Msg) {
        if !self.closed && !(self.sink)(msg) {
            self.closed = true;
        }
    }

    /// Drops the sink, so that the writer sees the end of the stream.
    pub fn close(&mut self) {
        self.sink = Box::new(|_| false);
        self.closed = true;
    }

    /// The in-process domain check's verdict on everything generated, if it ran.
    pub fn finish_check(&mut self) -> Option<Result<(), String>> {
        let checker = self.checker.take()?;
        Some(match self.check_error.take() {
            Some(e) => Err(e),
            None => checker.finish().map(|_| ()).map_err(|e| e.to_string()),
        })
    }
}

fn field(b: &mut Vec<u8>, bytes: &[u8]) {
    b.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    b.extend_from_slice(bytes);
}

/// jsonb's binary format: a version byte (1), then the JSON text.
fn jsonb(b: &mut Vec<u8>, json: &[u8]) {
    b.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    b.push(1);
    b.extend_from_slice(json);
}
