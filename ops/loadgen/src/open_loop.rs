//! The send times of an open loop: a fixed rate whatever the answers, the warm-up unmeasured.

use std::time::{Duration, Instant};

/// `rate` sends a second from 100 ms from now, for `warmup` then `duration`.
pub struct Schedule {
    start: Instant,
    interval: Duration,
    /// Sends due from here on are measured.
    pub measure_from: Instant,
    /// Sends in all, the warm-up's included.
    pub total: u64,
}

impl Schedule {
    pub fn new(rate: u64, warmup: Duration, duration: Duration) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now() + Duration::from_millis(100);
        Schedule {
            start,
            interval,
            measure_from: start + warmup,
            total: ((warmup + duration).as_secs_f64() * rate as f64).round() as u64,
        }
    }

    /// When the `i`-th send is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + self.interval.mul_f64(i as f64)
    }
}
