-- case: warn
BEGIN;
ALTER TABLE users ADD COLUMN nickname text;
ALTER TABLE users ADD COLUMN avatar_url text;
COMMIT;
-- case: deny
BEGIN;
/* ddlguard:allow drop-column reason="unused since v12" */
ALTER TABLE IF EXISTS ONLY app."orders" DROP COLUMN legacy_ref;
CREATE INDEX orders_total ON app.customers (total);
ALTER TABLE app.orders ALTER COLUMN total SET DEFAULT 0;
COMMIT;
-- case: pass
BEGIN;
ALTER TABLE users ADD COLUMN nickname text, ADD COLUMN avatar_url text;
ALTER TABLE app.users ADD COLUMN nickname text;
ALTER TABLE users_archive ADD COLUMN nickname text;
COMMIT;
-- case: pass
BEGIN;
ALTER TABLE users ADD COLUMN nickname text;
COMMIT;
BEGIN;
ALTER TABLE users ADD COLUMN avatar_url text;
COMMIT;
-- case: pass
BEGIN;
CREATE TABLE app.invites (id bigint);
ALTER TABLE app.invites ADD COLUMN code text;
ALTER TABLE app.invites ADD COLUMN sent_at timestamptz;
COMMIT;
-- case: pass
BEGIN;
ALTER TABLE app.orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
ALTER TABLE app.orders VALIDATE CONSTRAINT orders_total_positive;
COMMIT;
