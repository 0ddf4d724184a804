//! Executes commands: one transaction that takes the locks a decision needs, loads the stream,
//! decides, appends events with their outbox rows and uniqueness claims, stores the
//! idempotency record, and commits. Handlers for each resource live beside this file.

pub mod assignment;
pub mod context;
pub mod group;
pub mod keyring;
pub mod login;
pub mod permission;
pub mod role;
pub mod service_account;
pub mod session;
pub mod tenant;
pub mod token;
pub mod user;
pub mod workspace;

use charter_events::{DomainEvent, Metadata};
use charter_log::listener::Signal;
use charter_log::LogPosition;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Pool, Transaction};
use uuid::Uuid;

use crate::domain::validate::FieldError;
use crate::domain::{Aggregate, Rejection};
use crate::store::claims::{self, ClaimChange};
use crate::store::events::{self, Appended, Loaded, NewEvent};
use crate::store::idempotency::{self, StoredResponse};
use crate::store::{locks, StoreError};

/// How often a command is re-decided after losing a race on its stream (without `If-Match`,
/// or with `If-Match: *`) or after a transient database conflict (deadlock, serialization).
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{}", .0.message)]
    Rejected(Rejection),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the resource is at version {current}, not the one in If-Match")]
    PreconditionFailed { current: i64 },
    #[error("the resource kept changing concurrently; retry")]
    Conflict,
    /// A deadlock or serialization failure: the whole command can simply run again.
    #[error("transient database conflict")]
    Transient,
    #[error("{what} {value:?} is already taken")]
    Taken { what: String, value: String },
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => CommandError::Conflict,
            StoreError::Transient(_) => CommandError::Transient,
            StoreError::ClaimTaken { scope, value } => CommandError::Taken {
                what: scope.split(':').next().unwrap_or_default().to_owned(),
                value,
            },
            StoreError::Unavailable(m) => CommandError::Unavailable(m),
            other => CommandError::Internal(other.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for CommandError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for CommandError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// `If-Match` as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the resource must exist.
    Any,
    Version(i64),
    /// An entity tag that cannot be one of ours; never matches.
    Never,
}

/// The request-level envelope of a command.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub metadata: Metadata,
    pub if_match: Option<IfMatch>,
    pub idempotency: Option<Idempotency>,
}

#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Who sent it and to which operation; keys are private to a scope.
    pub scope: String,
    pub key: String,
    /// A digest of the request; a retry with another request under the same key is refused.
    pub request_hash: Vec<u8>,
}

/// What a successful command did.
#[derive(Debug, Clone)]
pub struct Outcome<A> {
    pub state: A,
    pub version: i64,
    pub event_ids: Vec<Uuid>,
    pub token: LogPosition,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What commands write with: the pool, and the signal that wakes the log's followers after an
/// append commits.
#[derive(Clone)]
pub struct Writer {
    pub pool: Pool,
    pub appended: Signal,
}

/// One kind of command against one aggregate type.
#[allow(async_fn_in_trait)]
pub trait CommandHandler {
    type Aggregate: Aggregate;

    fn stream_id(&self) -> String;

    /// Takes the locks and loads whatever the decision needs beyond the aggregate's own
    /// history, then builds the domain commands (decided in order). Must not write.
    async fn prepare(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<Vec<<Self::Aggregate as Aggregate>::Command>, CommandError>;

    /// Runs in the same transaction right after the append: write-side indexes other than
    /// claims, and new streams the decision implies (system roles seeded with a tenant).
    /// Returns what it appended, if anything.
    async fn after_append(
        &self,
        _tx: &Transaction<'_>,
        _events: &[<Self::Aggregate as Aggregate>::Event],
        _metadata: &Metadata,
    ) -> Result<Vec<Appended>, CommandError> {
        Ok(vec![])
    }

    /// Uniqueness claims taken or released by `events`, given the state before them.
    fn claims(
        &self,
        _before: &Self::Aggregate,
        _events: &[<Self::Aggregate as Aggregate>::Event],
    ) -> Vec<ClaimChange> {
        vec![]
    }
}

/// Runs `handler` and renders its outcome with `render` inside the transaction, so that the
/// response stored for an idempotent retry is exactly the one sent.
pub async fn execute<H: CommandHandler>(
    writer: &Writer,
    handler: &H,
    request: &CommandRequest,
    render: impl Fn(&Outcome<H::Aggregate>) -> StoredResponse,
) -> Result<StoredResponse, CommandError> {
    for _ in 0..MAX_ATTEMPTS {
        match attempt(writer, handler, request, &render).await {
            Err(CommandError::Conflict)
                if matches!(request.if_match, None | Some(IfMatch::Any)) =>
            {
                continue
            }
            Err(CommandError::Transient) => continue,
            Err(CommandError::Conflict) => {
                // The client pinned a version and lost the race: their version is gone.
                let current =
                    events::load::<H::Aggregate>(&writer.pool.get().await?, &handler.stream_id())
                        .await?
                        .version;
                return Err(CommandError::PreconditionFailed { current });
            }
            other => return other,
        }
    }
    Err(CommandError::Conflict)
}

async fn attempt<H: CommandHandler>(
    writer: &Writer,
    handler: &H,
    request: &CommandRequest,
    render: &impl Fn(&Outcome<H::Aggregate>) -> StoredResponse,
) -> Result<StoredResponse, CommandError> {
    let mut client = writer.pool.get().await?;
    let tx = client.transaction().await?;

    if let Some(idem) = &request.idempotency {
        locks::idempotency_key(&tx, &idem.scope, &idem.key).await?;
        if let Some(record) = idempotency::find(&tx, &idem.scope, &idem.key).await? {
            if record.request_hash != idem.request_hash {
                return Err(CommandError::IdempotencyKeyReused);
            }
            return Ok(record.response);
        }
    }

    let commands = handler.prepare(&tx).await?;
    let stream_id = handler.stream_id();
    let loaded: Loaded<H::Aggregate> = events::load(&tx, &stream_id).await?;
    let mut state = loaded.state.clone();
    let mut decided = Vec::new();
    for command in &commands {
        let events = state
            .decide(command)
            .map_err(|e| CommandError::Rejected(e.into()))?;
        for event in &events {
            state = state.apply(event);
        }
        decided.extend(events);
    }
    // Preconditions are judged only once the decision has established that the caller may
    // see the resource: a workspace of another tenant is a 404 whatever If-Match says.
    check_if_match(request.if_match, loaded.version)?;

    let before = loaded.state.clone();
    let mut outcome = Outcome::from(loaded);
    outcome.state = state;
    if !decided.is_empty() {
        let new: Vec<NewEvent> = decided.iter().map(NewEvent::of).collect();
        let appended = events::append(
            &tx,
            <<H::Aggregate as Aggregate>::Event as DomainEvent>::STREAM_TYPE,
            &stream_id,
            outcome.version,
            &new,
            &request.metadata,
        )
        .await?;
        claims::apply(&tx, &stream_id, &handler.claims(&before, &decided)).await?;
        let also = handler
            .after_append(&tx, &decided, &request.metadata)
            .await?;
        outcome.version = appended.version;
        outcome.event_ids = new.iter().map(|e| e.event_id).collect();
        outcome.token = appended.last;
        for extra in also {
            outcome.event_ids.extend(extra.event_ids);
            outcome.token = outcome.token.max(extra.last);
        }
        outcome.created_at = outcome.created_at.or(Some(appended.recorded_at));
        outcome.updated_at = Some(appended.recorded_at);
    }

    let response = render(&outcome);
    if let Some(idem) = &request.idempotency {
        idempotency::save(&tx, &idem.scope, &idem.key, &idem.request_hash, &response).await?;
    }
    tx.commit().await?;
    if !outcome.event_ids.is_empty() {
        writer.appended.appended();
    }
    Ok(response)
}

/// Runs `handler` for its outcome, when no HTTP response needs storing (commands without an
/// Idempotency-Key: logins, bootstrap, key rotation, self-service).
pub async fn run<H: CommandHandler>(
    writer: &Writer,
    handler: &H,
    request: &CommandRequest,
) -> Result<Outcome<H::Aggregate>, CommandError> {
    let slot = std::sync::Mutex::new(None);
    execute(writer, handler, request, |outcome| {
        *slot.lock().expect("outcome slot") = Some(outcome.clone());
        StoredResponse {
            status: 200,
            etag: None,
            location: None,
            body: serde_json::Value::Null,
        }
    })
    .await?;
    slot.into_inner()
        .expect("outcome slot")
        .ok_or_else(|| CommandError::Internal("an idempotent replay has no outcome".into()))
}

/// The envelope of a command Charter issues itself (`actor` names which part of it).
pub fn system_request(actor: &str) -> CommandRequest {
    CommandRequest {
        metadata: Metadata {
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            ..Metadata::default()
        },
        if_match: None,
        idempotency: None,
    }
}

/// Reads one aggregate from the write side (always current; used for `GET` of one resource).
pub async fn current<A: Aggregate>(
    pool: &Pool,
    stream_id: &str,
) -> Result<Outcome<A>, CommandError> {
    let client = pool.get().await?;
    Ok(events::load(&client, stream_id).await?.into())
}

fn check_if_match(if_match: Option<IfMatch>, version: i64) -> Result<(), CommandError> {
    let matches = match if_match {
        None => true,
        Some(IfMatch::Any) => version > 0,
        Some(IfMatch::Version(v)) => v == version,
        Some(IfMatch::Never) => false,
    };
    if matches {
        Ok(())
    } else {
        Err(CommandError::PreconditionFailed { current: version })
    }
}

impl<A> From<Loaded<A>> for Outcome<A> {
    /// The current state of a stream, as a command that changed nothing would report it.
    fn from(loaded: Loaded<A>) -> Self {
        Outcome {
            state: loaded.state,
            version: loaded.version,
            event_ids: vec![],
            token: loaded.last.unwrap_or(LogPosition::START),
            created_at: loaded.created_at,
            updated_at: loaded.updated_at,
        }
    }
}
