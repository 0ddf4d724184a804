//!
//! Why not a consumer: tansu 0.6 (the local broker) serves a fetch with one SQL query per record
//! for its headers, a few milliseconds per CloudEvent on this machine; a consumer keeping up with
//! 1,000 events/s saturates its single storage thread, and every produce waits behind it. The
//! broker's high-water mark (ListOffsets: one cheap query) says when a message became readable,
//! without reading it. Every message of one key lands in one partition, in the order it was
//! produced, so the k-th message after the starting mark is offset start + k.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::kafka::{client, META_TIMEOUT};
use super::now_us;

/// Polls one partition's high-water mark until stopped; the result lists (mark, µs since the
/// epoch when the answer arrived) each time the mark moved.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<Result<Vec<(i64, i64)>, String>>,
}

impl Watcher {
    pub fn spawn(
        brokers: &str,
        topic: &str,
        partition: i32,
        poll: Duration,
    ) -> Result<Self, String> {
        let c = client(brokers).map_err(|e| e.to_string())?;
        let topic = topic.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let (stop2, polls2) = (stop.clone(), polls.clone());
        let handle = std::thread::spawn(move || {
            let mut marks: Vec<(i64, i64)> = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let (_, high) = c
                    .fetch_watermarks(&topic, partition, META_TIMEOUT)
                    .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))?;
                let at = now_us();
                polls2.fetch_add(1, Ordering::Relaxed);
                if marks.last().is_none_or(|&(h, _)| high > h) {
                    marks.push((high, at));
                }
                std::thread::sleep(poll);
            }
            Ok(marks)
        });
        Ok(Watcher {
            stop,
            polls,
            handle,
        })
    }

    pub fn finish(self) -> Result<(Vec<(i64, i64)>, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        let marks = self
            .handle
            .join()
            .map_err(|_| "the watcher panicked".to_owned())??;
        Ok((marks, self.polls.load(Ordering::Relaxed)))
    }
}

/// When offset `o` was first seen readable: the first mark above it.
pub fn arrival(marks: &[(i64, i64)], o: i64) -> Option<i64> {
    let i = marks.partition_point(|&(h, _)| h <= o);
    marks.get(i).map(|&(_, t)| t)
}

pub const WATCH_NOTE: &str = "arrival at the broker = when a poll of the partition's high-water mark (ListOffsets, every poll_ms) first showed the message readable; each command's events are the only messages of their key (tenant), so the k-th event in the relay's order, (tx_id, position), is the k-th offset after the starting mark";
