//! What the scenarios measure and how it is printed: latency histograms and error tallies.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::api::{kind_of, Reply};

/// A latency histogram in µs: 1 µs .. 600 s, 3 significant digits.
pub fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// A histogram's count, quantiles, maximum and mean in milliseconds (zeros when empty).
pub fn hist_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({"count": 0, "p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0, "max_ms": 0.0, "mean_ms": 0.0});
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 10.0).round() / 100.0,
    })
}

/// `x` rounded to `digits` decimals.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Errors counted by kind, with the first sample of each kind.
#[derive(Default)]
pub struct ErrorTally {
    pub kinds: BTreeMap<String, u64>,
    pub samples: BTreeMap<String, String>,
}

impl ErrorTally {
    pub fn record(&mut self, kind: String, sample: String) {
        *self.kinds.entry(kind.clone()).or_default() += 1;
        self.samples.entry(kind).or_insert(sample);
    }

    /// A failed call of `what` (e.g. "user"), by the kind of its answer.
    pub fn record_reply(&mut self, what: &str, r: &Reply) {
        let sample = match r {
            Ok((_, v)) => v.to_string().chars().take(300).collect(),
            Err(e) => e.clone(),
        };
        self.record(format!("{what}:{}", kind_of(r)), sample);
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().sum()
    }

    pub fn merge(&mut self, other: ErrorTally) {
        for (k, v) in other.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
        for (k, v) in other.samples {
            self.samples.entry(k).or_insert(v);
        }
    }
}
