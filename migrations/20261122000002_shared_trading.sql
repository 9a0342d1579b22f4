-- The trading tables starter and pro tenants share. Every row carries its
-- tenant_id, and row-level security, FORCEd so it also binds the tables'
-- owner, shows a transaction only the rows of the tenant it names with
-- set_config('app.tenant_id', <id>, true). Superusers bypass RLS whatever
-- FORCE says, so tenant-scoped work runs as the role flotilla_tenant
-- (SET LOCAL ROLE inside the transaction; see shared/src/db).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flotilla_tenant') THEN
        CREATE ROLE flotilla_tenant NOLOGIN NOBYPASSRLS;
    END IF;
END
$$;

-- The tenant in scope, or NULL (no rows) when the transaction named none.
CREATE FUNCTION app_tenant_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '') $$;

CREATE TABLE portfolios (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    user_id     text NOT NULL,
    name        text NOT NULL,
    description text,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portfolios_tenant_user ON portfolios (tenant_id, user_id);

CREATE TABLE positions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text NOT NULL REFERENCES tenants (id),
    portfolio_id  uuid NOT NULL REFERENCES portfolios (id),
    symbol        text NOT NULL,
    quantity      numeric(28, 8) NOT NULL,
    avg_price     numeric(28, 8) NOT NULL,
    current_price numeric(28, 8),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX positions_tenant_portfolio ON positions (tenant_id, portfolio_id);

CREATE TABLE trades (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    portfolio_id uuid NOT NULL REFERENCES portfolios (id),
    symbol       text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity     numeric(28, 8) NOT NULL,
    price        numeric(28, 8) NOT NULL,
    executed_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trades_tenant_symbol_time ON trades (tenant_id, symbol, executed_at);

CREATE TABLE market_data (
    tenant_id text NOT NULL REFERENCES tenants (id),
    symbol    text NOT NULL,
    at        timestamptz NOT NULL,
    open      numeric(28, 8) NOT NULL,
    high      numeric(28, 8) NOT NULL,
    low       numeric(28, 8) NOT NULL,
    close     numeric(28, 8) NOT NULL,
    volume    numeric(28, 8) NOT NULL,
    PRIMARY KEY (tenant_id, symbol, at)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['portfolios', 'positions', 'trades', 'market_data'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id())',
            t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO flotilla_tenant', t);
    END LOOP;
END
$$;
