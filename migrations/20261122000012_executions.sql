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

-- tenant_id and strategy_id are copies of the subscription's and the
-- execution's (for row-level security and the open-trades index), not
-- foreign keys: every foreign key is a trigger run per inserted row, and
-- these two cost a 10,000-subscriber fan-out about a third of its insert
-- time. The one write path (flotilla::candles::execute) copies them from
-- rows it just read in the same tenant scope.
CREATE TABLE strategy_trades (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL,
    subscription_id  bigint NOT NULL REFERENCES subscriptions (id),
    execution_id     bigint NOT NULL REFERENCES executions (id),
    strategy_id      bigint NOT NULL,
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
-- A subscription's trades (stats) use the unique index's leading column.

SELECT candle_tenant_rls('executions');
SELECT candle_tenant_rls('strategy_trades');
