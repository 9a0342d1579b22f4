-- User connect: the session hosts (processes outside the fleet that hold
-- users' Telegram and broker sessions) and which host each user is on.
-- PostgreSQL is the system of record; a connect job only carries the
-- request, so a lost job is found again by the reconciler.

CREATE TYPE session_host_status AS ENUM ('live', 'draining', 'offline');
CREATE TYPE connection_state AS ENUM ('assigning', 'connected', 'disconnecting', 'disconnected', 'failed');

CREATE TABLE session_hosts (
    id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    endpoint       text NOT NULL CHECK (endpoint ~ '^https?://' AND length(endpoint) <= 2000),
    region         text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    capacity       integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
    -- Users holding a place here (user_connections.host_id = id), kept by
    -- the trigger below in the transaction that moves them, so the pick
    -- reads one row per host instead of counting users.
    load           integer NOT NULL DEFAULT 0 CHECK (load >= 0),
    status         session_host_status NOT NULL DEFAULT 'live',
    last_heartbeat timestamptz NOT NULL DEFAULT now(),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    -- Bumped each time the host is marked offline or drained: the key of
    -- the move jobs of that event, so a replica repeating it enqueues nothing new.
    epoch          bigint NOT NULL DEFAULT 0
);

CREATE TABLE user_connections (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id      text NOT NULL CHECK (user_id ~ '^[A-Za-z0-9._:@-]{1,128}$'),
    -- What the user asked for last; jobs that disagree are stale and do nothing.
    want         text NOT NULL CHECK (want IN ('connected', 'disconnected')),
    state        connection_state NOT NULL,
    host_id      text REFERENCES session_hosts (id),
    reason       text,
    attempts     integer NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    connected_at timestamptz,
    PRIMARY KEY (tenant_id, user_id),
    -- A user holds a place on a host while connected or being moved on
    -- or off it; an assigning user may not have one yet (no capacity).
    CHECK (CASE state
        WHEN 'assigning' THEN true
        WHEN 'connected' THEN host_id IS NOT NULL
        WHEN 'disconnecting' THEN host_id IS NOT NULL
        ELSE host_id IS NULL END)
);
CREATE INDEX user_connections_host ON user_connections (host_id) WHERE host_id IS NOT NULL;
CREATE INDEX user_connections_stuck ON user_connections (updated_at) WHERE state = 'assigning';

CREATE FUNCTION session_host_load() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.host_id IS NOT NULL
       AND (TG_OP = 'DELETE' OR NEW.host_id IS DISTINCT FROM OLD.host_id) THEN
        UPDATE session_hosts SET load = load - 1 WHERE id = OLD.host_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.host_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.host_id IS DISTINCT FROM OLD.host_id) THEN
        UPDATE session_hosts SET load = load + 1 WHERE id = NEW.host_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER user_connections_load
    AFTER INSERT OR UPDATE OF host_id OR DELETE ON user_connections
    FOR EACH ROW EXECUTE FUNCTION session_host_load();
