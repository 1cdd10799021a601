-- case: warn
DROP INDEX accounts_email;
-- case: deny
DROP INDEX IF EXISTS app.orders_ref;
-- case: deny
-- Several indexes in one statement cannot be dropped concurrently.
DROP INDEX CONCURRENTLY IF EXISTS old_a;
DROP INDEX old_b, app.old_c CASCADE;
-- case: pass
DROP INDEX CONCURRENTLY IF EXISTS app.orders_ref;
-- case: pass
-- An index created earlier in the same migration.
CREATE TABLE fresh (id int, email text);
CREATE INDEX fresh_email ON fresh (email);
DROP INDEX fresh_email;
-- case: pass
DROP TABLE legacy_sessions;
