//! The contract every read model implements.

use charter_events::{DomainEvent, RecordedEvent};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Decode(#[from] charter_events::DecodeError),
    #[error(transparent)]
    Log(#[from] charter_log::reader::LogError),
    #[error("{0}")]
    Invariant(String),
}

/// A read model folded from the log. `apply` runs inside the runner's transaction, which also
/// advances the checkpoint, so each event takes effect exactly once. Tables are referenced
/// unqualified: the runner sets `search_path` to the live or the shadow schema.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Stable name, used as the checkpoint key.
    fn name(&self) -> &'static str;

    /// The tables this projection owns (replay rebuilds and compares exactly these).
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event. Events the projection does not care about are ignored.
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies a batch of events in order, in one transaction. The default applies them one
    /// by one; a projection that can do better with set-based statements overrides it. On
    /// failure it returns the index of the event that failed, or of the last event when it
    /// cannot tell which one did (the runner then isolates the whole batch).
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        for (i, event) in events.iter().enumerate() {
            self.apply(tx, event).await.map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

/// The typed event of `e`, decoded (and upcast) as `E`.
pub fn decode<E: DomainEvent>(e: &RecordedEvent) -> Result<E, ProjectionError> {
    Ok(E::decode(
        &e.event_type,
        e.schema_version as u32,
        e.data.clone(),
    )?)
}

/// The typed event of `e` when it belongs to `E`'s stream type, `None` for any other
/// stream: what a read model of one aggregate decodes first.
pub fn decode_own<E: DomainEvent>(e: &RecordedEvent) -> Result<Option<E>, ProjectionError> {
    if e.stream_type != E::STREAM_TYPE {
        return Ok(None);
    }
    decode(e).map(Some)
}

/// Implements [`Projection`] for a read model of one stream type's events, applied one at a
/// time: events of other streams are ignored, and each of its own is decoded as `$event`
/// and handed to the model's inherent
/// `async fn apply_event(&self, tx, recorded: &RecordedEvent, event: $event)`.
///
/// `stream_projection!(Roles, RoleEvent, "roles", ["roles"]);`
macro_rules! stream_projection {
    ($model:ty, $event:ty, $name:literal, [$($table:literal),* $(,)?]) => {
        #[async_trait::async_trait]
        impl $crate::projection::Projection for $model {
            fn name(&self) -> &'static str {
                $name
            }

            fn tables(&self) -> &'static [&'static str] {
                &[$($table),*]
            }

            async fn apply(
                &self,
                tx: &deadpool_postgres::Transaction<'_>,
                e: &charter_events::RecordedEvent,
            ) -> Result<(), $crate::projection::ProjectionError> {
                match $crate::projection::decode_own::<$event>(e)? {
                    Some(event) => self.apply_event(tx, e, event).await,
                    None => Ok(()),
                }
            }
        }
    };
}
pub(crate) use stream_projection;

/// Executes `sql` through the connection's statement cache: one round trip instead of a
/// prepare and an execute.
pub async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}

/// One owned statement parameter of a [`Write`].
pub type Param = Box<dyn ToSql + Sync + Send>;

/// A write that needs nothing read before it: a projection that expresses an event as such
/// writes ([`Writes`]) gets its batches sent to the server as one pipeline, in order, instead
/// of one round trip per statement.
pub struct Write {
    pub sql: &'static str,
    pub params: Vec<Param>,
    /// The statement must touch exactly one row (the read model is corrupt otherwise).
    pub exactly_one: bool,
}

impl Write {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self {
            sql,
            params,
            exactly_one: false,
        }
    }

    /// A write that must touch exactly one row.
    pub fn one(sql: &'static str, params: Vec<Param>) -> Self {
        Self {
            sql,
            params,
            exactly_one: true,
        }
    }
}

/// A read model whose every event is a list of [`Write`]s: pure, and pipelined in batches.
/// Every `Writes` is a [`Projection`] (applied through [`apply_writes`]).
pub trait Writes: Send + Sync {
    /// The [`Projection::name`].
    const NAME: &'static str;
    /// The [`Projection::tables`].
    const TABLES: &'static [&'static str];

    /// The writes one event makes, in order (none for events the read model ignores).
    fn writes(&self, event: &RecordedEvent) -> Result<Vec<Write>, ProjectionError>;
}

#[async_trait::async_trait]
impl<W: Writes> Projection for W {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        W::TABLES
    }

    async fn apply(&self, tx: &Transaction<'_>, e: &RecordedEvent) -> Result<(), ProjectionError> {
        apply_writes(self, tx, std::slice::from_ref(e))
            .await
            .map_err(|(_, e)| e)
    }

    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, ProjectionError)> {
        apply_writes(self, tx, events).await
    }
}

/// Applies `events` through `projection`'s writes: every statement of the batch is sent
/// before the first answer is awaited (tokio-postgres sends a request on its future's first
/// poll, so they reach the server in order), then each answer is checked in order.
pub async fn apply_writes<P: Writes + ?Sized>(
    projection: &P,
    tx: &Transaction<'_>,
    events: &[RecordedEvent],
) -> Result<(), (usize, ProjectionError)> {
    let mut writes: Vec<(usize, Write)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        for w in projection.writes(e).map_err(|err| (i, err))? {
            writes.push((i, w));
        }
    }
    let mut statements = Vec::with_capacity(writes.len());
    for (i, w) in &writes {
        statements.push(tx.prepare_cached(w.sql).await.map_err(|e| (*i, e.into()))?);
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = writes
        .iter()
        .map(|(_, w)| {
            w.params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect()
        })
        .collect();
    let mut pending: Vec<_> = statements
        .iter()
        .zip(&params)
        .map(|(s, p)| Box::pin(futures::future::maybe_done(tx.execute(s, p))))
        .collect();
    for f in pending.iter_mut() {
        // The first poll encodes and queues the request; nothing is awaited yet.
        let _ = futures::poll!(f.as_mut());
    }
    for (k, mut f) in pending.into_iter().enumerate() {
        f.as_mut().await;
        let (i, w) = &writes[k];
        let touched = f
            .as_mut()
            .take_output()
            .expect("a finished write has an output")
            .map_err(|e| (*i, ProjectionError::from(e)))?;
        if w.exactly_one && touched != 1 {
            let e = &events[*i];
            return Err((
                *i,
                ProjectionError::Invariant(format!(
                    "{} at position {} touched {touched} rows: {}",
                    e.event_type, e.position, w.sql
                )),
            ));
        }
    }
    Ok(())
}
