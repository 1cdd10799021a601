-- case: deny
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);
-- case: deny
ALTER TABLE IF EXISTS app.orders ADD UNIQUE (ref) DEFERRABLE;
-- case: deny
ALTER TABLE accounts ADD COLUMN handle text UNIQUE;
-- case: pass
-- The safe alternative.
CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email);
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_key;
-- case: pass
CREATE TABLE app.fresh (ref text);
ALTER TABLE app.fresh ADD CONSTRAINT fresh_ref_key UNIQUE (ref);
-- case: pass
-- A primary key is rule add-primary-key's business.
ALTER TABLE accounts ADD PRIMARY KEY USING INDEX accounts_pkey_idx;
