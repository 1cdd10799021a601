-- case: warn
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
-- case: deny
ALTER TABLE IF EXISTS app.orders ALTER COLUMN shipped_at SET DEFAULT now(), ALTER shipped_at DROP NOT NULL;
-- case: deny
BEGIN;
ALTER TABLE app.users ADD COLUMN nickname text;
ALTER TABLE app.users ALTER COLUMN email DROP NOT NULL;
COMMIT;
-- case: pass
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
-- case: pass
CREATE TABLE app.drafts (id bigint, title text NOT NULL);
ALTER TABLE app.drafts ALTER COLUMN title DROP NOT NULL;
-- case: pass
ALTER TABLE users ALTER COLUMN email SET DEFAULT '';
