-- case: warn
CREATE INDEX CONCURRENTLY ON app.users (email);
-- case: warn
CREATE INDEX CONCURRENTLY users_email ON app.users (email);
-- case: deny
CREATE TABLE app.audit_log (id bigint, body jsonb);
-- case: deny
ALTER TABLE IF EXISTS users ADD COLUMN IF NOT EXISTS nickname text, DROP COLUMN legacy_name;
-- case: deny
DROP INDEX CONCURRENTLY users_email_old;
-- case: pass
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON app.users (email);
-- case: pass
CREATE TABLE IF NOT EXISTS app.audit_log (id bigint, body jsonb);
ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text, DROP COLUMN IF EXISTS legacy_name;
DROP INDEX CONCURRENTLY IF EXISTS users_email_old;
CREATE OR REPLACE VIEW app.active_users AS SELECT * FROM app.users WHERE active;
-- case: pass
BEGIN;
CREATE TABLE app.audit_log (id bigint, body jsonb);
CREATE INDEX audit_log_id ON app.audit_log (id);
COMMIT;
