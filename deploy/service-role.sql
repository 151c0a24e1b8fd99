-- The role `ocgate serve` connects as: it reads and writes rows and calls the schema's SQL
-- functions, but cannot create, alter or drop anything, so a compromised gateway cannot
-- change its own schema or the ledger's append-only trigger. Run it as the role that owns
-- the schema (the one `ocgate migrate` runs as), once, before or after migrating: the GRANTs
-- cover what exists, the default privileges what that owner creates later.
--   psql -v ON_ERROR_STOP=1 -v service_role=ocgate -f deploy/service-role.sql
-- The role itself (CREATE ROLE ocgate LOGIN ...) is created beforehand by a superuser.
-- Checked by tests/deploy/test-roles.sh, which runs a gateway under it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"service_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"service_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"service_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"service_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"service_role";
