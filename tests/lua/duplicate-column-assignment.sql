-- case: warn
CREATE TABLE app.accounts (id bigint, email text, Email text);
-- case: warn
CREATE VIEW app.account_emails (id, email, email) AS SELECT id, email, lower(email) FROM app.accounts;
-- case: deny
CREATE MATERIALIZED VIEW IF NOT EXISTS app.totals (day, total, day) AS SELECT 1, 2, 3;
-- case: pass
CREATE TABLE app.accounts (id bigint, email text, "Email" text);
-- case: pass
CREATE VIEW app.account_emails (id, email, email_lower) AS SELECT id, email, lower(email) FROM app.accounts;
-- case: pass
UPDATE app.accounts SET scores[1] = 0, scores[2] = 0;
-- case: deny
UPDATE app.accounts SET status = 'active', updated_at = now(), status = 'locked' WHERE id = 1;
-- case: warn
BEGIN;
ALTER TABLE app.accounts ADD COLUMN status text;
UPDATE app.accounts SET (status, Status) = ('active', 'locked');
COMMIT;
-- case: pass
UPDATE app.accounts SET (status, updated_at) = ('active', now()) WHERE id = 1;
