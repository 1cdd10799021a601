-- case: warn
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (lower(email));
-- case: warn
ALTER TABLE app.accounts ADD CONSTRAINT accounts_slug_key UNIQUE (slug);
-- case: deny
BEGIN;
ALTER TABLE app.accounts ADD COLUMN region text, ADD PRIMARY KEY (id);
COMMIT;
-- case: pass
ALTER TABLE app.accounts ADD CONSTRAINT accounts_slug_key UNIQUE USING INDEX accounts_slug;
-- case: pass
CREATE TABLE app.invites (id bigint, code text);
CREATE UNIQUE INDEX invites_code ON app.invites (code);
ALTER TABLE app.invites ADD CONSTRAINT invites_pkey PRIMARY KEY (id);
-- case: pass
CREATE INDEX CONCURRENTLY users_email ON users (email);
