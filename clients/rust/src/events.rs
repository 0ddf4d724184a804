//! Consuming `charter.iam.events.v1` (placeholder, written next).
