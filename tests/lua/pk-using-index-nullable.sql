-- Offline the rule knows a column is nullable only from DDL it saw; a column it knows
-- nothing about passes.
-- case: deny
ALTER TABLE items ADD COLUMN uid uuid;
CREATE UNIQUE INDEX CONCURRENTLY items_uid_idx ON items (uid);
ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_uid_idx;
-- case: deny
-- One column of two was made nullable.
ALTER TABLE app.items ALTER COLUMN tenant_id DROP NOT NULL;
CREATE UNIQUE INDEX CONCURRENTLY items_tid ON app.items (tenant_id, id);
ALTER TABLE app.items ADD PRIMARY KEY USING INDEX items_tid;
-- case: pass
-- The safe recipe: NOT NULL proven first.
ALTER TABLE items ADD COLUMN uid uuid;
CREATE UNIQUE INDEX CONCURRENTLY items_uid_idx ON items (uid);
ALTER TABLE items ADD CONSTRAINT items_uid_nn CHECK (uid IS NOT NULL) NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_uid_nn;
ALTER TABLE items ALTER COLUMN uid SET NOT NULL;
ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_uid_idx;
-- case: pass
-- A column added NOT NULL.
ALTER TABLE items ADD COLUMN uid uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
CREATE UNIQUE INDEX CONCURRENTLY items_uid_idx ON items (uid);
ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_uid_idx;
-- case: pass
-- Nothing known about the columns of this index.
ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_pkey_idx;
-- case: pass
-- A table created in this migration is empty.
CREATE TABLE fresh (uid uuid);
CREATE UNIQUE INDEX fresh_uid ON fresh (uid);
ALTER TABLE fresh ADD PRIMARY KEY USING INDEX fresh_uid;
