-- case: deny
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
-- case: deny
ALTER TABLE IF EXISTS app.orders ALTER COLUMN ref SET DEFAULT '', ALTER COLUMN ref SET NOT NULL;
-- case: deny
-- A NOT VALID check proves nothing: the scan still runs.
ALTER TABLE accounts ADD CONSTRAINT accounts_email_nn CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
-- case: deny
-- The check covers another column.
ALTER TABLE accounts ADD CONSTRAINT accounts_name_nn CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_name_nn;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
-- case: deny
-- The check was dropped before SET NOT NULL.
ALTER TABLE accounts ADD CONSTRAINT accounts_email_nn CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_nn;
ALTER TABLE accounts DROP CONSTRAINT accounts_email_nn;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
-- case: pass
-- The safe recipe (PostgreSQL 12+).
ALTER TABLE app.orders ADD CONSTRAINT orders_ref_nn CHECK (ref IS NOT NULL) NOT VALID;
ALTER TABLE app.orders VALIDATE CONSTRAINT orders_ref_nn;
ALTER TABLE app.orders ALTER COLUMN ref SET NOT NULL;
ALTER TABLE app.orders DROP CONSTRAINT orders_ref_nn;
-- case: pass
-- One validated check covering two columns.
ALTER TABLE accounts ADD CONSTRAINT accounts_nn CHECK (email IS NOT NULL AND accounts.name IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_nn;
ALTER TABLE accounts ALTER COLUMN email SET NOT NULL, ALTER COLUMN name SET NOT NULL;
-- case: pass
CREATE TABLE app.fresh (id int, email text);
ALTER TABLE app.fresh ALTER COLUMN email SET NOT NULL;
-- case: pass
ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;
