-- Tenants and what belongs to them: tier defaults, resolved configs, API
-- keys (hashed), and an event log. The system of record for tenant
-- provisioning; Redis only dispatches the work.

CREATE TYPE tenant_tier AS ENUM ('starter', 'pro', 'enterprise');
CREATE TYPE tenant_status AS ENUM ('pending', 'provisioning', 'active', 'suspended', 'deleted', 'failed');

CREATE TABLE tenants (
    -- A ULID in lowercase: ids, schema names and Redis namespaces derive
    -- from it, never from user text.
    id             text PRIMARY KEY CHECK (id ~ '^[0-9a-z]{26}$'),
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    tier           tenant_tier NOT NULL,
    status         tenant_status NOT NULL DEFAULT 'pending',
    -- Enterprise tenants only: their own schema, "t_" + the id.
    schema_name    text UNIQUE CHECK (schema_name ~ '^t_[0-9a-z]{26}$'),
    failure_reason text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    suspended_at   timestamptz,
    deleted_at     timestamptz
);
CREATE INDEX tenants_status_updated ON tenants (status, updated_at);

-- Defaults per tier; a tenant's config is default → tier → its overrides.
CREATE TABLE tier_configs (
    tier     tenant_tier PRIMARY KEY,
    settings jsonb NOT NULL
);
INSERT INTO tier_configs (tier, settings) VALUES
    ('starter',    '{"queue_weight": 1, "max_in_flight": 4,  "daily_enqueue_limit": 10000}'),
    ('pro',        '{"queue_weight": 2, "max_in_flight": 16, "daily_enqueue_limit": 100000}'),
    ('enterprise', '{"queue_weight": 4, "max_in_flight": 64, "daily_enqueue_limit": null}');

CREATE TABLE tenant_configs (
    tenant_id  text PRIMARY KEY REFERENCES tenants (id),
    overrides  jsonb NOT NULL DEFAULT '{}',
    resolved   jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Only a hash of each key is stored; the key itself is shown once.
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    -- The key's public prefix, to find its row without scanning hashes.
    prefix     text NOT NULL UNIQUE,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE tenant_events (
    id        bigserial PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    kind      text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_events_tenant ON tenant_events (tenant_id, at);
