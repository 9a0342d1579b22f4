-- An enterprise tenant's schema is reachable only through a role of its own
-- (same name as the schema, NOLOGIN). Tenant-scoped work on it runs as that
-- role (SET LOCAL ROLE), so neither another enterprise tenant's role nor
-- flotilla_tenant (the shared tables' role) can read or write it.
-- Both functions are idempotent: provisioning may run them again after a
-- crash, and the name is checked against the only shape provisioning makes.

CREATE FUNCTION provision_tenant_schema(schema_name text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM create_tenant_schema(schema_name);
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = schema_name) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOBYPASSRLS', schema_name);
    END IF;
    -- The application's login role must be able to SET ROLE to it.
    EXECUTE format('GRANT %I TO %I', schema_name, current_user);
    EXECUTE format('GRANT USAGE ON SCHEMA %1$I TO %1$I', schema_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %1$I TO %1$I', schema_name);
END
$$;

-- Purging a deleted enterprise tenant: its schema, then its role.
CREATE FUNCTION drop_tenant_schema(schema_name text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF schema_name !~ '^t_[0-9a-z]{26}$' THEN
        RAISE EXCEPTION 'invalid tenant schema name %', quote_literal(schema_name)
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', schema_name);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = schema_name) THEN
        EXECUTE format('DROP ROLE %I', schema_name);
    END IF;
END
$$;

-- Where a tenant's provisioning is: the last step done, so a retry resumes
-- after it (each step is also idempotent on its own).
ALTER TABLE tenants ADD COLUMN provisioned_step text;
-- When a soft-deleted tenant's data is purged.
ALTER TABLE tenants ADD COLUMN purge_after timestamptz;
