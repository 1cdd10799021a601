-- Offline the rule knows a domain's constraints only from DDL it saw; a domain created
-- before ddlguard started is unknown to it.
-- case: deny
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
ALTER TABLE orders ADD COLUMN fee positive_amount;
-- case: deny
CREATE DOMAIN app.code AS text;
ALTER DOMAIN app.code SET NOT NULL;
ALTER TABLE IF EXISTS app.orders ADD COLUMN note text, ADD COLUMN ref app.code DEFAULT 'x';
-- case: pass
-- The safe alternative: the base type plus a NOT VALID check, validated later.
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
ALTER TABLE orders ADD COLUMN fee numeric;
ALTER TABLE orders ADD CONSTRAINT orders_fee_positive CHECK (fee > 0) NOT VALID;
-- case: pass
-- A domain without constraints, and an array of a constrained one.
CREATE DOMAIN label AS text;
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
ALTER TABLE orders ADD COLUMN l label, ADD COLUMN fees positive_amount[];
-- case: pass
-- A table created in the same migration.
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
CREATE TABLE app.fees (id int);
ALTER TABLE app.fees ADD COLUMN amount positive_amount;
-- case: pass
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
DROP DOMAIN positive_amount;
CREATE DOMAIN positive_amount AS numeric;
ALTER TABLE orders ADD COLUMN fee positive_amount;
