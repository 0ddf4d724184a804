//! The one table of PostgreSQL errors worth a retry, shared by the write side (a command's
//! transaction) and the followers of the log (projection runners, replays).
//!
//! The two sides answer the same question with different patience. A command serves a
//! request that is waiting: an outage is worth a 503 and a lost race is worth running the
//! command again, but nothing else is worth waiting for. A follower can wait for ever and
//! must never skip an event because of an outage, so it retries everything that does not
//! speak about the event itself, including a deploy or a failover in progress
//! ([`ErrorClass::Unsettled`]), which the write side reports as an error.

/// What a PostgreSQL error says about retrying the work that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The server is unreachable, going away or out of resources, or it cancelled the
    /// statement (a timeout). The write side answers 503; followers retry.
    Unavailable,
    /// The transaction lost a race with another (serialization failure, deadlock): running it
    /// again is safe. The write side runs the command again; followers retry.
    Conflict,
    /// The server or the deployment is not (yet) what this binary expects: a standby after a
    /// failover, a migration or a deploy in progress, a lock timeout, a server-side I/O
    /// error. Followers retry; the write side reports an error (a 500), as it always has.
    Unsettled,
    /// About the statement or its data: running it again gives the same answer.
    Permanent,
}

impl ErrorClass {
    /// True when a follower of the log retries the failure instead of counting it against
    /// the event (see `charter_projections::failures`).
    pub fn retried_by_followers(self) -> bool {
        self != ErrorClass::Permanent
    }
}

/// The table: a five-character SQLSTATE or a two-character class of them, what it means, and
/// its [`ErrorClass`]. The first entry that `code` starts with wins (a code before its class).
/// Any code not listed is [`ErrorClass::Permanent`].
pub const TABLE: &[(&str, &str, ErrorClass)] = &[
    ("08", "connection exception", ErrorClass::Unavailable),
    (
        "53",
        "insufficient resources (disk, memory, too many connections)",
        ErrorClass::Unavailable,
    ),
    (
        "57",
        "operator intervention: admin or crash shutdown, cannot connect now, query cancelled \
         or statement timeout",
        ErrorClass::Unavailable,
    ),
    ("40001", "serialization failure", ErrorClass::Conflict),
    ("40P01", "deadlock detected", ErrorClass::Conflict),
    (
        "40",
        "other transaction rollbacks (the server rolled the transaction back)",
        ErrorClass::Unsettled,
    ),
    (
        "58",
        "system error (I/O) on the server",
        ErrorClass::Unsettled,
    ),
    (
        "55P03",
        "lock not available (lock timeout)",
        ErrorClass::Unsettled,
    ),
    (
        "25006",
        "read-only SQL transaction (a standby after a failover)",
        ErrorClass::Unsettled,
    ),
    (
        "42501",
        "insufficient privilege (a grant not yet applied)",
        ErrorClass::Unsettled,
    ),
    (
        "42P01",
        "undefined table (a migration in progress)",
        ErrorClass::Unsettled,
    ),
    (
        "3F000",
        "invalid schema name (a migration in progress)",
        ErrorClass::Unsettled,
    ),
];

/// The class of SQLSTATE `code`, by [`TABLE`].
pub fn classify(code: &str) -> ErrorClass {
    TABLE
        .iter()
        .find(|(prefix, _, _)| code.starts_with(prefix))
        .map_or(ErrorClass::Permanent, |(_, _, class)| *class)
}

/// The class of `e`: a closed connection or an I/O failure is [`ErrorClass::Unavailable`], a
/// server error is classified by its SQLSTATE, and anything else (a client-side encoding or
/// conversion error) is [`ErrorClass::Permanent`]: a bug, not an outage.
pub fn classify_error(e: &tokio_postgres::Error) -> ErrorClass {
    use std::error::Error as _;
    if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) {
        return ErrorClass::Unavailable;
    }
    e.code()
        .map_or(ErrorClass::Permanent, |code| classify(code.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_pinned() {
        use ErrorClass::*;
        let expected = [
            // connection exceptions
            ("08000", Unavailable),
            ("08001", Unavailable),
            ("08003", Unavailable),
            ("08006", Unavailable),
            // admin shutdown, crash shutdown, cannot connect now, query cancelled
            ("57P01", Unavailable),
            ("57P02", Unavailable),
            ("57P03", Unavailable),
            ("57014", Unavailable),
            // disk full, out of memory, too many connections
            ("53100", Unavailable),
            ("53200", Unavailable),
            ("53300", Unavailable),
            ("40001", Conflict),
            ("40P01", Conflict),
            ("40000", Unsettled),
            ("40003", Unsettled),
            ("58030", Unsettled),
            ("55P03", Unsettled),
            ("25006", Unsettled),
            ("42501", Unsettled),
            ("42P01", Unsettled),
            ("3F000", Unsettled),
            // unique, not-null and check violations, invalid input, division by zero, a
            // raised exception, an internal error, a missing column, a syntax error
            ("23505", Permanent),
            ("23502", Permanent),
            ("23514", Permanent),
            ("22P02", Permanent),
            ("22012", Permanent),
            ("P0001", Permanent),
            ("XX000", Permanent),
            ("42703", Permanent),
            ("42601", Permanent),
            ("55000", Permanent),
        ];
        for (code, class) in expected {
            assert_eq!(classify(code), class, "{code}");
        }
        assert_eq!(TABLE.len(), 12, "a new entry needs a line above");
    }

    #[test]
    fn followers_retry_all_but_the_permanent() {
        assert!(ErrorClass::Unavailable.retried_by_followers());
        assert!(ErrorClass::Conflict.retried_by_followers());
        assert!(ErrorClass::Unsettled.retried_by_followers());
        assert!(!ErrorClass::Permanent.retried_by_followers());
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable() {
        // A real client error without a database: nothing listens on port 1.
        let e = tokio_postgres::connect(
            "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2",
            tokio_postgres::NoTls,
        )
        .await
        .err()
        .expect("nothing listens on port 1");
        assert_eq!(classify_error(&e), ErrorClass::Unavailable);
    }
}
