//! What the clients observed in the measured window, and the JSON line that reports it.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::Common;
use crate::stats::{round, ErrorTally};

/// What one client (or, merged, all of them) observed during the measured window.
pub struct Stats {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: ErrorTally,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            // 1 µs .. 120 s, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            ok: 0,
            errors: ErrorTally::default(),
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        self.ok += other.ok;
        self.errors.merge(other.errors);
    }
}

/// A finished run: the merged stats and how long was measured.
pub struct Run {
    pub stats: Stats,
    pub measured: std::time::Duration,
    pub attempted_total: u64,
}

/// The run's JSON line: throughput, latency quantiles, errors, the settings, and `extra`.
pub fn report(scenario: &str, c: &Common, run: Run, extra: Value) -> Value {
    let s = &run.stats;
    let secs = run.measured.as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |p: f64| {
        if s.ok > 0 {
            ms(s.hist.value_at_quantile(p))
        } else {
            0.0
        }
    };
    let mut out = json!({
        "scenario": scenario,
        "requests": s.ok,
        "errors": s.errors.total(),
        "rps": round(s.ok as f64 / secs, 1),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": if s.ok > 0 { ms(s.hist.max()) } else { 0.0 },
        "mean_ms": if s.ok > 0 { (s.hist.mean() / 10.0).round() / 100.0 } else { 0.0 },
        "clients": c.clients,
        "duration_s": secs,
        "warmup_s": c.warmup.as_secs_f64(),
        "threads": c.threads,
        "attempted_total": run.attempted_total,
        "error_kinds": s.errors.kinds,
        "error_samples": s.errors.samples,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut out, extra) {
        o.extend(e);
    }
    out
}
