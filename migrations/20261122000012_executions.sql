-- What each strategy run did (executions) and the trades it opened
-- (strategy_trades; migration 02's `trades` is a portfolio ledger with
-- other columns). Tenant-owned, FORCEd row-level security like
-- strategies (see 20261122000011_strategies.sql for the two policies).
--
-- Exactly-once effects: an execution is UNIQUE per (strategy, interval)
-- and a trade UNIQUE per (subscription, execution), and one job writes
-- both in one transaction, so a redelivered job changes nothing twice.

CREATE TABLE executions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    strategy_id      bigint NOT NULL REFERENCES strategies (id),
    strategy_version integer NOT NULL,
    -- e.g. "5m:2026-11-22T10:05Z" (the interval's resolution and start).
    interval_key     text NOT NULL,
    -- The candle's close: when the execution was due.
    scheduled_at     timestamptz NOT NULL,
    started_at       timestamptz NOT NULL,
    drift_ms         bigint NOT NULL,
    worker           text NOT NULL,
    duration_ms      bigint NOT NULL DEFAULT 0,
    status           text NOT NULL CHECK (status IN ('success', 'no_signal', 'skipped', 'failed')),
    -- Why it was skipped or failed, or what it saw.
    reason           text,
    -- The signal (side, entry, stop, target) when there was one.
    signal           jsonb,
    subscribers      integer NOT NULL DEFAULT 0,
    trades           integer NOT NULL DEFAULT 0,
    -- Subscriptions sizing refused (bad settings), and trades closed.
    skipped          integer NOT NULL DEFAULT 0,
    closed           integer NOT NULL DEFAULT 0,
    UNIQUE (strategy_id, interval_key)
);
CREATE INDEX executions_tenant ON executions (tenant_id, strategy_id, scheduled_at DESC);
-- The reconciler: which recent intervals have run.
CREATE INDEX executions_due ON executions (strategy_id, scheduled_at);

CREATE TABLE strategy_trades (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    subscription_id  bigint NOT NULL REFERENCES subscriptions (id),
    execution_id     bigint NOT NULL REFERENCES executions (id),
    strategy_id      bigint NOT NULL REFERENCES strategies (id),
    symbol           text NOT NULL,
    side             text NOT NULL CHECK (side IN ('long', 'short')),
    entry            double precision NOT NULL,
    stop             double precision NOT NULL,
    target           double precision NOT NULL,
    size             double precision NOT NULL CHECK (size > 0),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at        timestamptz NOT NULL,
    exit_price       double precision,
    exit_reason      text CHECK (exit_reason IN ('stop', 'target')),
    closed_at        timestamptz,
    closed_by        bigint REFERENCES executions (id),
    pnl              double precision,
    UNIQUE (subscription_id, execution_id),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
-- Each execution closes the open trades of its strategy.
CREATE INDEX strategy_trades_open ON strategy_trades (strategy_id) WHERE status = 'open';
CREATE INDEX strategy_trades_subscription ON strategy_trades (subscription_id, status);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['executions', 'strategy_trades'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id())',
            t);
        EXECUTE format(
            'CREATE POLICY service_read ON %I FOR SELECT USING (current_user <> ''flotilla_tenant'' AND app_tenant_id() IS NULL)',
            t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO flotilla_tenant', t);
    END LOOP;
END
$$;
