-- Enterprise tenants get a schema of their own with the same trading tables
-- and indexes (no tenant_id: the schema is the boundary). The template is a
-- function so provisioning creates a schema in one idempotent call; the
-- name is checked against the only shape provisioning produces
-- ("t_" + a lowercase ULID) and quoted with %I, so no text reaches SQL
-- unchecked.

CREATE FUNCTION create_tenant_schema(schema_name text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF schema_name !~ '^t_[0-9a-z]{26}$' THEN
        RAISE EXCEPTION 'invalid tenant schema name %', quote_literal(schema_name)
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', schema_name);
    EXECUTE format($f$
        CREATE TABLE IF NOT EXISTS %1$I.portfolios (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id     text NOT NULL,
            name        text NOT NULL,
            description text,
            is_active   boolean NOT NULL DEFAULT true,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now())$f$, schema_name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS portfolios_user ON %I.portfolios (user_id)', schema_name);
    EXECUTE format($f$
        CREATE TABLE IF NOT EXISTS %1$I.positions (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            portfolio_id  uuid NOT NULL REFERENCES %1$I.portfolios (id),
            symbol        text NOT NULL,
            quantity      numeric(28, 8) NOT NULL,
            avg_price     numeric(28, 8) NOT NULL,
            current_price numeric(28, 8),
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now())$f$, schema_name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS positions_portfolio ON %I.positions (portfolio_id)', schema_name);
    EXECUTE format($f$
        CREATE TABLE IF NOT EXISTS %1$I.trades (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            portfolio_id uuid NOT NULL REFERENCES %1$I.portfolios (id),
            symbol       text NOT NULL,
            side         text NOT NULL CHECK (side IN ('buy', 'sell')),
            quantity     numeric(28, 8) NOT NULL,
            price        numeric(28, 8) NOT NULL,
            executed_at  timestamptz NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now())$f$, schema_name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS trades_symbol_time ON %I.trades (symbol, executed_at)', schema_name);
    EXECUTE format($f$
        CREATE TABLE IF NOT EXISTS %1$I.market_data (
            symbol text NOT NULL,
            at     timestamptz NOT NULL,
            open   numeric(28, 8) NOT NULL,
            high   numeric(28, 8) NOT NULL,
            low    numeric(28, 8) NOT NULL,
            close  numeric(28, 8) NOT NULL,
            volume numeric(28, 8) NOT NULL,
            PRIMARY KEY (symbol, at))$f$, schema_name);
END
$$;
