-- Every change to a watchlist, whoever makes it (the pipeline, the platform app, psql),
-- is logged in watchlist_events by a trigger and announced with
-- pg_notify('watchlist_changes', ...). The event id is the stream's SSE id: a client
-- resumes with Last-Event-ID by replaying the events after it.

CREATE TABLE watchlist_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    op           text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    strategy_id  text NOT NULL,
    watchlist_id bigint NOT NULL,
    market_id    text NOT NULL,
    entry        jsonb NOT NULL          -- the row after the change (before it, for a delete)
);
CREATE INDEX watchlist_events_strategy ON watchlist_events (strategy_id, id);

CREATE FUNCTION watchlist_log_event(kind text, rec strategy_watchlists) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO watchlist_events (op, strategy_id, watchlist_id, market_id, entry)
    VALUES (kind, rec.strategy_id, rec.id, rec.market_id, to_jsonb(rec))
    RETURNING id INTO new_id;
    -- Small payload (NOTIFY caps it at 8000 bytes): listeners read the event row.
    PERFORM pg_notify('watchlist_changes', json_build_object(
        'event_id', new_id, 'op', kind, 'strategy_id', rec.strategy_id,
        'watchlist_id', rec.id, 'market_id', rec.market_id)::text);
END
$$;

CREATE FUNCTION watchlist_change_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    -- Event ids must become visible in id order, or a client that has seen id n+1 could
    -- miss id n committed later. Writers of watchlist changes therefore take one
    -- transaction-scoped lock before their first event: ids are handed out in commit order.
    PERFORM pg_advisory_xact_lock(hashtext('cascadian.watchlist_events'));
    IF TG_OP = 'DELETE' THEN
        PERFORM watchlist_log_event('delete', OLD);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM watchlist_log_event('insert', NEW);
    ELSIF OLD.strategy_id IS DISTINCT FROM NEW.strategy_id THEN
        -- an entry moved to another strategy: gone from one stream, new in the other
        PERFORM watchlist_log_event('delete', OLD);
        PERFORM watchlist_log_event('insert', NEW);
    ELSE
        PERFORM watchlist_log_event('update', NEW);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER strategy_watchlists_notify
    AFTER INSERT OR UPDATE OR DELETE ON strategy_watchlists
    FOR EACH ROW EXECUTE FUNCTION watchlist_change_notify();
