-- case: deny
ALTER TABLE orders SET TABLESPACE fast_ssd;
-- case: deny
ALTER TABLE IF EXISTS app.events SET LOGGED;
-- case: deny
ALTER TABLE app.events SET UNLOGGED;
-- case: deny
ALTER TABLE orders ADD COLUMN note text, SET ACCESS METHOD heap2;
-- case: deny
ALTER TABLE ALL IN TABLESPACE old_disk SET TABLESPACE new_disk;
-- case: pass
CREATE UNLOGGED TABLE import_rows (id bigint, payload jsonb);
ALTER TABLE import_rows SET LOGGED;
-- case: pass
ALTER TABLE orders SET (fillfactor = 90);
-- case: pass
ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
