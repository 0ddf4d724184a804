//! The send times of an open loop: a fixed rate whatever the answers, the warm-up unmeasured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `rate` sends a second from 100 ms from now, for `warmup` then `duration`.
pub struct Schedule {
    start: Instant,
    interval: Duration,
    /// Sends due from here on are measured.
    pub measure_from: Instant,
    /// Sends in all, the warm-up's included.
    pub total: u64,
    /// Measured sends that found a slot.
    pub issued: u64,
    /// Measured sends that found no free slot at their due time (not sent).
    pub missed: u64,
}

/// A send slot, taken at the send's due time.
pub struct Slot {
    /// Held while the request is in flight.
    pub permit: OwnedSemaphorePermit,
    pub due: Instant,
    /// When the loop woke up for it (`due` or later).
    pub woke: Instant,
    /// Due inside the measured window.
    pub measured: bool,
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
            issued: 0,
            missed: 0,
        }
    }

    /// When the `i`-th send is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + self.interval.mul_f64(i as f64)
    }

    /// Waits until send `i` is due and takes one of `slots` for it; `None` when none is free.
    pub async fn slot(&mut self, i: u64, slots: &Arc<Semaphore>) -> Option<Slot> {
        let due = self.due(i);
        tokio::time::sleep_until(due.into()).await;
        let woke = Instant::now();
        let measured = due >= self.measure_from;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if measured {
                self.missed += 1;
            }
            return None;
        };
        if measured {
            self.issued += 1;
        }
        Some(Slot {
            permit,
            due,
            woke,
            measured,
        })
    }
}
