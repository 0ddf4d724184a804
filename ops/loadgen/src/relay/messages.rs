//! The messages the relay would send for events of the log, built by the relay's own code.

use cloudevents::binding::rdkafka::{FutureRecordExt, MessageRecord};
use rdkafka::message::{Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;

/// One message as the relay produces it: key = tenant id, binary-mode CloudEvent (headers +
/// payload), built with the relay's own code path (`to_cloudevent` + cloudevents-sdk's
/// rdkafka binding).
pub struct Msg {
    key: String,
    headers: OwnedHeaders,
    payload: Vec<u8>,
}

impl Msg {
    fn new(key: String, record: &MessageRecord) -> Self {
        // What the binding puts on the wire (it is what the relay sends).
        let r: FutureRecord<'_, String, Vec<u8>> =
            FutureRecord::to("-").key(&key).message_record(record);
        let headers = r.headers.unwrap_or_default();
        let payload = r.payload.cloned().unwrap_or_default();
        Msg {
            key,
            headers,
            payload,
        }
    }

    pub fn bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        self.key.len() + self.payload.len() + headers
    }

    /// The record, as the relay's `message_record` builds it (headers cloned, payload lent).
    pub fn record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, String, Vec<u8>> {
        FutureRecord::to(topic)
            .key(&self.key)
            .payload(&self.payload)
            .headers(self.headers.clone())
    }
}

/// Which events of the log to turn into messages.
pub enum Pick {
    /// The first `n` published events in log order: the outbox-backlog rows.
    First(i64),
    /// The newest `n` published events.
    Last(i64),
}

pub fn internal_types() -> Vec<String> {
    charter_events::schemas::all_schemas()
        .into_iter()
        .filter(|s| !s.published)
        .map(|s| s.event_type.to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Reads events from the log and builds the messages the relay would send for them.
pub async fn messages_from_log(database_url: &str, pick: Pick) -> Result<Vec<Msg>, String> {
    let pool = crate::db::pool(database_url, 1).map_err(|e| e.to_string())?;
    let db = pool.get().await.map_err(|e| e.to_string())?;
    let (order, n) = match pick {
        Pick::First(n) => ("ORDER BY tx_id, position", n),
        Pick::Last(n) => ("ORDER BY tx_id DESC, position DESC", n),
    };
    let rows = db
        .query(
            &format!(
                "SELECT {} FROM events WHERE event_type <> ALL($1::text[]) {order} LIMIT $2",
                charter_log::reader::EVENT_COLUMNS
            ),
            &[&internal_types(), &n],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let event = charter_log::reader::event_from_row(row).map_err(|e| e.to_string())?;
        let ce = charter_events::cloudevent::to_cloudevent(&event).map_err(|e| e.to_string())?;
        let record = MessageRecord::from_event(ce).map_err(|e| e.to_string())?;
        out.push(Msg::new(event.tenant_id.to_string(), &record));
    }
    if matches!(pick, Pick::Last(_)) {
        out.reverse();
    }
    if out.is_empty() {
        return Err("no published event in the log".into());
    }
    Ok(out)
}
