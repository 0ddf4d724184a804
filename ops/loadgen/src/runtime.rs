//! The tokio runtime a scenario runs on.

use std::future::Future;
use std::time::Duration;

/// Runs `f` on a multi-threaded runtime of `threads` workers and returns its exit code,
/// without waiting for what is left in the runtime (aborted clients, idle connections).
pub fn with_runtime<F, Fut>(threads: usize, f: F) -> i32
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = i32>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(f());
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}
