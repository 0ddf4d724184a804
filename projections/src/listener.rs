//! One `LISTEN charter_log` connection per process, fanned out to every in-process follower of
//! the log (projection runners, the outbox relay) through a watch channel. Followers also poll,
//! so a lost connection costs latency, never events.

use std::time::Duration;

use futures::{stream, StreamExt};
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "charter_log";

/// A wake-up signal: `changed()` fires after an append commits anywhere in the cluster.
pub type Wakeup = watch::Receiver<u64>;

/// Spawns the listener; returns a receiver to clone for each follower.
pub fn spawn(config: tokio_postgres::Config, shutdown: CancellationToken) -> Wakeup {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            match listen(&config, &tx, &shutdown).await {
                Ok(()) => tracing::warn!("log listener connection closed; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "log listener failed; reconnecting"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    });
    rx
}

/// Listens until the connection ends (`Ok`) or fails (`Err`), or until shutdown.
async fn listen(
    config: &tokio_postgres::Config,
    tx: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection only makes progress while its messages are polled.
    let sql = format!("LISTEN {CHANNEL}");
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
    // Whatever was appended while we were not listening is found by the followers' next read.
    tx.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        tokio::select! {
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(_))) => tx.send_modify(|n| *n = n.wrapping_add(1)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}
