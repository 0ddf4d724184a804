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
use tokio_postgres::AsyncMessage;

use crate::pg::PgConnect;
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

/// How a LISTEN connection proves it is alive: a round trip every `every`, which must answer
/// within `every` too. A connection that went half-open (the server or a middlebox gone
/// without a FIN or RST) delivers no notification and raises no error; the heartbeat turns
/// that silence into [`ListenEvent::Lost`] within two periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            every: Duration::from_secs(2),
        }
    }
}

/// Spawns the LISTEN connection and the coalescing NOTIFY sender.
pub fn spawn(
    config: PgConnect,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) -> (Signal, Wakeup) {
    let (signal, wakeup) = Signal::local();
    let listening = signal.clone();
    let listen_config = config.clone();
    let listen_shutdown = shutdown.clone();
    // Whatever was appended while we were not listening is found by the followers' next
    // read, so (re)connecting wakes them too.
    tokio::spawn(listen_forever(
        listen_config,
        CHANNEL,
        heartbeat,
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
    config: PgConnect,
    channel: &'static str,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
    on_event: impl Fn(ListenEvent),
) {
    while !shutdown.is_cancelled() {
        match listen(&config, channel, heartbeat, &shutdown, &on_event).await {
            Ok(()) => tracing::debug!(channel, "listener connection closed"),
            Err(e) => tracing::warn!(channel, error = %e, "listener failed; reconnecting"),
        }
        on_event(ListenEvent::Lost);
        pause(&shutdown).await;
    }
}

/// Why a LISTEN connection ended.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("no answer to the heartbeat within {0:?}: the connection is presumed dead")]
    Silent(Duration),
}

/// Listens until the connection ends (`Ok`) or fails (`Err`), or until shutdown.
async fn listen(
    config: &PgConnect,
    channel: &str,
    heartbeat: Heartbeat,
    shutdown: &CancellationToken,
    on_event: &impl Fn(ListenEvent),
) -> Result<(), ListenError> {
    let (client, mut connection) = config.connect().await?;
    // The connection only makes progress while its messages are polled: a task of its own
    // polls them and forwards notifications, so the heartbeat can wait on the client.
    let (forward, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if forward.send(Ok(())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = forward.send(Err(e));
                    return;
                }
            }
        }
    });
    let _driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    on_event(ListenEvent::Listening);
    let mut beat = tokio::time::interval(heartbeat.every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.reset();
    loop {
        tokio::select! {
            n = notifications.recv() => match n {
                Some(Ok(())) => on_event(ListenEvent::Notified),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = beat.tick() => {
                // Notifications arriving meanwhile wait in the channel.
                match tokio::time::timeout(heartbeat.every, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => return Err(ListenError::Silent(heartbeat.every)),
                }
            }
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Stops the connection's task when the listener returns, however it returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends one NOTIFY per burst of appends, outside any command transaction.
async fn notify(
    config: &PgConnect,
    signal: &Signal,
    shutdown: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect().await?;
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
