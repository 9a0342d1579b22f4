-- Strategies (a tenant's template: kind, market, parameters) and the
-- subscriptions of that tenant's users to them. Both are tenant-owned and
-- live in the public schema under FORCEd row-level security for every
-- tier, enterprise included (see ARCHITECTURE.md: one place for the
-- scheduler to find every strategy on a market).
--
-- Two policies:
--   tenant_isolation: a tenant transaction (role flotilla_tenant,
--     app.tenant_id set) sees and writes only its tenant's rows;
--   service_read: the service's own role, outside any tenant scope, may
--     read every row (the clock and the candle trigger find the strategies
--     on a market across tenants). It never writes through this policy.

CREATE TABLE strategies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    kind        text NOT NULL CHECK (kind IN ('sma_crossover', 'rsi', 'donchian')),
    symbol      text NOT NULL CHECK (symbol ~ '^[A-Z0-9][A-Z0-9._:/-]{0,31}$'),
    resolution  text NOT NULL
        CHECK (resolution IN ('1m', '3m', '5m', '10m', '15m', '30m', '1h', '2h', '4h', '6h', '12h', '1D')),
    parameters  jsonb NOT NULL,
    -- Bumped by every update of the parameters; executions record the
    -- version they ran.
    version     integer NOT NULL DEFAULT 1,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The trigger's question: which active strategies run on this market?
CREATE INDEX strategies_market ON strategies (symbol, resolution) WHERE active;
CREATE INDEX strategies_tenant ON strategies (tenant_id, id);

CREATE TABLE subscriptions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES tenants (id),
    strategy_id   bigint NOT NULL REFERENCES strategies (id),
    user_id       text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200 AND user_id !~ '[[:cntrl:]]'),
    capital       double precision NOT NULL CHECK (capital > 0),
    risk_pct      double precision NOT NULL CHECK (risk_pct > 0 AND risk_pct <= 100),
    leverage      double precision NOT NULL CHECK (leverage > 0 AND leverage <= 1000),
    -- A reference to a credential held elsewhere (a vault path, a broker
    -- account id), never the secret itself.
    broker_credential_ref text CHECK (length(broker_credential_ref) BETWEEN 1 AND 200),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One live subscription per user and strategy; a cancelled one may be
-- followed by a new one.
CREATE UNIQUE INDEX subscriptions_user_strategy ON subscriptions (strategy_id, user_id)
    WHERE status <> 'cancelled';
-- The fan-out reads the active subscriptions of one strategy.
CREATE INDEX subscriptions_fanout ON subscriptions (strategy_id, id) WHERE status = 'active';
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);

-- Puts a tenant-owned table under the two policies above; migration 12
-- uses it too. The name is quoted with %I.
CREATE FUNCTION candle_tenant_rls(t text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id())',
        t);
    EXECUTE format(
        'CREATE POLICY service_read ON %I FOR SELECT USING (current_user <> ''flotilla_tenant'' AND app_tenant_id() IS NULL)',
        t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO flotilla_tenant', t);
END
$$;

SELECT candle_tenant_rls('strategies');
SELECT candle_tenant_rls('subscriptions');
