-- case: deny
BEGIN;
ALTER TABLE users ADD COLUMN plan text;
CREATE INDEX orders_user_plan ON orders (user_id);
COMMIT;
-- case: deny
BEGIN;
ALTER TABLE app.accounts ADD COLUMN tier smallint;
REFRESH MATERIALIZED VIEW app.account_totals;
COMMIT;
-- case: deny
BEGIN;
CREATE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();
ALTER TABLE line_items ALTER COLUMN qty TYPE bigint;
COMMIT;
-- case: deny
-- The backfill reaches the rules because of the function call in its sub-select.
BEGIN;
ALTER TABLE users ADD COLUMN email_lower text;
UPDATE users SET email_lower = (SELECT lower(u.email) FROM users u WHERE u.id = users.id);
COMMIT;
-- case: pass
-- Autocommit: every statement commits, and its lock goes, before the next one runs.
ALTER TABLE users ADD COLUMN plan text;
CREATE INDEX orders_user_plan ON orders (user_id);
-- case: pass
-- The safe way: the strong lock is released before the long work starts.
BEGIN;
ALTER TABLE users ADD COLUMN plan text;
COMMIT;
BEGIN;
CREATE INDEX orders_user_plan ON orders (user_id);
COMMIT;
-- case: pass
BEGIN;
CREATE TABLE plans (id bigint PRIMARY KEY, name text);
ALTER TABLE plans ADD COLUMN price numeric;
CREATE INDEX orders_user_plan ON orders (user_id);
COMMIT;
-- case: pass
-- SHARE UPDATE EXCLUSIVE (SET STATISTICS) does not block traffic; VALIDATE is another rule's.
BEGIN;
ALTER TABLE users ALTER COLUMN email SET STATISTICS 500;
CREATE INDEX orders_user_plan ON orders (user_id);
ALTER TABLE users ADD COLUMN plan text;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
COMMIT;
-- case: pass
-- Quick statements after the lock: catalog-only changes and a tool's bookkeeping.
BEGIN;
ALTER TABLE users ADD COLUMN plan text;
ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free';
COMMENT ON COLUMN users.plan IS 'billing plan';
COMMIT;
