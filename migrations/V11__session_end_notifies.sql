-- An ended session (logout, refresh-token reuse) ends its access tokens too: verifiers check
-- for `session.ended` in the token's session stream, and drop their caches when one is
-- appended.
CREATE TRIGGER events_notify_session_ended
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.event_type = 'session.ended')
    EXECUTE FUNCTION notify_token_revoked();
