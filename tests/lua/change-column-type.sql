-- case: deny
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
-- case: deny
-- The old type is known from the ADD COLUMN: shrinking a varchar rewrites.
ALTER TABLE app.accounts ADD COLUMN nick varchar(50);
ALTER TABLE app.accounts ALTER COLUMN nick TYPE varchar(20);
-- case: deny
-- A USING expression rewrites whatever the types.
ALTER TABLE accounts ALTER COLUMN score SET DATA TYPE numeric(12,2) USING score::numeric(12,2) * 100;
-- case: deny
-- A new collation rebuilds the column's indexes.
ALTER TABLE accounts ADD COLUMN nick varchar(50);
ALTER TABLE accounts ALTER COLUMN nick TYPE varchar(50) COLLATE "C";
-- case: deny
ALTER TABLE accounts ADD COLUMN payload json;
ALTER TABLE accounts ALTER COLUMN payload TYPE jsonb;
-- case: pass
-- Binary-coercible changes of a known type: the catalog only.
ALTER TABLE accounts ADD COLUMN nick varchar(50), ADD COLUMN price numeric(10,2);
ALTER TABLE accounts ALTER COLUMN nick TYPE varchar(100), ALTER COLUMN price TYPE numeric(14,2);
ALTER TABLE accounts ALTER COLUMN nick TYPE text, ALTER COLUMN price TYPE numeric USING price;
-- case: pass
-- The safe alternative: expand and contract.
ALTER TABLE orders ADD COLUMN id_new bigint;
-- case: pass
-- A table created in the same migration is empty.
CREATE TABLE app.fresh (id int);
ALTER TABLE app.fresh ALTER COLUMN id TYPE bigint;
-- case: pass
-- The rename carries the known type along.
ALTER TABLE accounts ADD COLUMN nick varchar(50);
ALTER TABLE accounts RENAME COLUMN nick TO handle;
ALTER TABLE accounts ALTER COLUMN handle TYPE varchar(80);
