//! A small deterministic random source (SplitMix64) and the synthetic clock. No dependency:
//! the same `--seed` gives the same history shape on every platform.

use chrono::{DateTime, Utc};
use uuid::{Builder, Uuid};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_C4A2_7E20_0001)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A UUIDv7 stamped with `at`, like `Uuid::now_v7()` at that moment.
    pub fn uuid_v7(&mut self, at: DateTime<Utc>) -> Uuid {
        let mut random = [0u8; 10];
        self.fill(&mut random);
        Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &random)
            .into_uuid()
    }

    pub fn uuid_v4(&mut self) -> Uuid {
        let mut random = [0u8; 16];
        self.fill(&mut random);
        Builder::from_random_bytes(random).into_uuid()
    }

    /// `n` random bytes as lower-case hex (a SHA-256 digest when `n` is 32).
    pub fn hex(&mut self, n: usize) -> String {
        let mut bytes = vec![0u8; n];
        self.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The history's clock: strictly increasing microseconds from `start`, paced so that the
/// last command lands at `end` (the time the generator started).
pub struct Clock {
    now_us: i64,
    end_us: i64,
}

impl Clock {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Clock {
            now_us: start.timestamp_micros(),
            end_us: end.timestamp_micros().max(start.timestamp_micros() + 1),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.now_us).expect("a representable time")
    }

    /// Moves on by a random gap, so that about `commands_left` more commands fit before the end.
    pub fn tick(&mut self, rng: &mut Rng, commands_left: u64) {
        let mean = (self.end_us - self.now_us) as f64 / commands_left.max(1) as f64;
        self.advance_us(rng.exp(mean) as i64);
    }

    /// Moves on by about `seconds` (a user retyping a password, a burst of attempts).
    pub fn pause(&mut self, rng: &mut Rng, seconds: f64) {
        self.advance_us((rng.exp(seconds) * 1e6) as i64);
    }

    fn advance_us(&mut self, us: i64) {
        // Never past the end, and never twice the same instant.
        self.now_us = (self.now_us + us.max(1)).min(self.end_us.max(self.now_us + 1));
    }
}
