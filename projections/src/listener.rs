//! Waking the followers of the log (projection runners, the outbox relay) when an append
//! commits, without putting NOTIFY in command transactions.
//!
//! A NOTIFY inside a transaction makes its commit take PostgreSQL's global notify lock, which
//! serializes every command's commit. Instead, a command that committed calls
//! [`Signal::appended`]: followers in this process wake at once through a watch channel, and
//! one background connection sends a NOTIFY for the other instances, coalescing however many
//! appends happened while the previous NOTIFY was in flight. Each process LISTENs and feeds
//! the same watch channel. Followers also poll, so a lost notification costs latency, never
//! an event.

use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};
use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "charter_log";

/// A wake-up signal: `changed()` fires after an append commits anywhere in the cluster.
pub type Wakeup = watch::Receiver<u64>;

/// Raised by writers after a commit that appended events.
#[derive(Clone)]
pub struct Signal {
    local: Arc<watch::Sender<u64>>,
    remote: Arc<Notify>,
}

impl Signal {
    /// A signal that only wakes followers in this process (tests and tools).
    pub fn local() -> (Signal, Wakeup) {
        let (tx, rx) = watch::channel(0u64);
        let signal = Signal {
            local: Arc::new(tx),
            remote: Arc::new(Notify::new()),
        };
        (signal, rx)
    }

    pub fn appended(&self) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
        self.remote.notify_one();
    }

    /// Wakes the followers in this process only (no NOTIFY): a projection that committed a
    /// batch wakes the relay, which publishes what that batch wrote (policy bumps).
    pub fn wake_local(&self) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Spawns the LISTEN connection and the coalescing NOTIFY sender.
pub fn spawn(config: tokio_postgres::Config, shutdown: CancellationToken) -> (Signal, Wakeup) {
    let (signal, wakeup) = Signal::local();
    let listening = signal.clone();
    let listen_config = config.clone();
    let listen_shutdown = shutdown.clone();
    // Whatever was appended while we were not listening is found by the followers' next
    // read, so (re)connecting wakes them too.
    tokio::spawn(listen_forever(
        listen_config,
        CHANNEL,
        listen_shutdown,
        move |event| {
            if event != ListenEvent::Lost {
                listening.wake_local();
            }
        },
    ));
    let notifying = signal.clone();
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            if let Err(e) = notify(&config, &notifying, &shutdown).await {
                tracing::warn!(error = %e, "log notifier failed; reconnecting");
            }
            pause(&shutdown).await;
        }
    });
    (signal, wakeup)
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// What a LISTEN connection reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenEvent {
    /// LISTEN is in effect: anything before it was missed.
    Listening,
    Notified,
    /// The connection is gone; notifications may be missed until the next `Listening`.
    Lost,
}

/// Keeps a LISTEN on `channel` alive (reconnecting every second after a failure) until
/// shutdown, reporting to `on_event`.
pub async fn listen_forever(
    config: tokio_postgres::Config,
    channel: &'static str,
    shutdown: CancellationToken,
    on_event: impl Fn(ListenEvent),
) {
    while !shutdown.is_cancelled() {
        match listen(&config, channel, &shutdown, &on_event).await {
            Ok(()) => tracing::debug!(channel, "listener connection closed"),
            Err(e) => tracing::warn!(channel, error = %e, "listener failed; reconnecting"),
        }
        on_event(ListenEvent::Lost);
        pause(&shutdown).await;
    }
}

/// Listens until the connection ends (`Ok`) or fails (`Err`), or until shutdown.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    shutdown: &CancellationToken,
    on_event: &impl Fn(ListenEvent),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection only makes progress while its messages are polled.
    let sql = format!("LISTEN {channel}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    loop {
        tokio::select! {
            r = &mut listen => { r?; break; }
            m = messages.next() => match m {
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
    on_event(ListenEvent::Listening);
    loop {
        tokio::select! {
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(_))) => on_event(ListenEvent::Notified),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Sends one NOTIFY per burst of appends, outside any command transaction.
async fn notify(
    config: &tokio_postgres::Config,
    signal: &Signal,
    shutdown: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let statement = client.prepare("SELECT pg_notify($1, '')").await?;
    loop {
        tokio::select! {
            _ = signal.remote.notified() => {}
            _ = shutdown.cancelled() => break,
        }
        client.execute(&statement, &[&CHANNEL]).await?;
    }
    driver.abort();
    Ok(())
}
