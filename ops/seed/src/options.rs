//! What to generate: how many events, from which seed, over how many days.

/// What a run generates: its size, its seed, its time span and how it is written.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events to write, exactly.
    pub events: u64,
    /// The same seed gives the same history (ids and times are anchored to the clock).
    pub seed: u64,
    /// How far back the history starts (it ends now, and never before the newest event).
    pub days: u32,
    /// Events per transaction (cut at a command boundary).
    pub batch_events: u64,
    /// Fold every generated command through the domain (`LogChecker`) before writing it.
    pub check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            events: 1_000_000,
            seed: 1,
            days: 365,
            batch_events: 50_000,
            check: false,
        }
    }
}
