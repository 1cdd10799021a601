-- case: deny
ALTER TABLE users DROP COLUMN legacy_flags;
-- case: deny
ALTER TABLE IF EXISTS app.users DROP COLUMN IF EXISTS middle_name, DROP COLUMN nickname CASCADE;
-- case: pass
CREATE TABLE import_batch (id bigint, raw text, parsed jsonb);
ALTER TABLE import_batch DROP COLUMN raw;
-- case: pass
-- The first step of the safe path: nothing is dropped yet.
ALTER TABLE users ALTER COLUMN legacy_flags DROP NOT NULL;
-- case: pass
ALTER TYPE address DROP ATTRIBUTE zip;
-- case: deny
-- Created as app.import_batch; this drops a column of import_batch in the search path.
CREATE TABLE app.import_batch (id bigint, raw text);
ALTER TABLE import_batch DROP COLUMN raw;
