-- case: deny
ALTER SCHEMA billing RENAME TO payments;
-- case: deny
BEGIN;
CREATE SCHEMA staging;
ALTER SCHEMA app RENAME TO app_old;
COMMIT;
-- case: pass
CREATE SCHEMA scratch;
ALTER SCHEMA scratch RENAME TO scratch_v2;
-- case: pass
ALTER SCHEMA billing OWNER TO billing_admin;
-- case: pass
ALTER TABLE billing.invoices RENAME TO invoices_old;
