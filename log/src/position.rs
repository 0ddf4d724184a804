//! A point in the global order of the log, `(tx_id, position)`; also the consistency token
//! that commands return and reads wait for.

use std::fmt;
use std::str::FromStr;

/// A point in the global order. Also the consistency token returned by commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub tx_id: i64,
    pub position: i64,
}

impl LogPosition {
    /// Before every event: where a new read model starts.
    pub const START: LogPosition = LogPosition {
        tx_id: 0,
        position: 0,
    };

    /// Past every event: an unbounded upper limit.
    pub const END: LogPosition = LogPosition {
        tx_id: i64::MAX,
        position: i64::MAX,
    };
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.tx_id, self.position)
    }
}

/// A string that is not `"<tx_id>.<position>"` with two non-negative integers.
#[derive(Debug, thiserror::Error)]
#[error("not a consistency token")]
pub struct InvalidToken;

impl FromStr for LogPosition {
    type Err = InvalidToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('.').ok_or(InvalidToken)?;
        let parse = |v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0 && v.bytes().all(|b| b.is_ascii_digit()))
        };
        Ok(LogPosition {
            tx_id: parse(tx).ok_or(InvalidToken)?,
            position: parse(pos).ok_or(InvalidToken)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let p = LogPosition {
            tx_id: 7451,
            position: 12,
        };
        assert_eq!(p.to_string().parse::<LogPosition>().unwrap(), p);
        for bad in ["", "1", "a.b", "1.-2", "-1.2", "1.2.3", " 1.2", "1.+2"] {
            assert!(bad.parse::<LogPosition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn order_is_tx_then_position() {
        let a = LogPosition {
            tx_id: 1,
            position: 9,
        };
        let b = LogPosition {
            tx_id: 2,
            position: 3,
        };
        assert!(a < b);
    }
}
