-- Commands no longer NOTIFY inside their transaction: a NOTIFY makes COMMIT take PostgreSQL's
-- global notify lock, which serialized every command's commit (measured in ops/bench: most
-- sessions queued on it). Writers now wake followers in-process after commit, and one
-- connection per instance sends a coalesced NOTIFY for the others
-- (projections/src/listener.rs).
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION notify_log_appended();
