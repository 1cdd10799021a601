-- case: deny
ALTER DOMAIN positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0);
-- case: deny
-- NOT VALID does not help: the VALIDATE blocks writes as well.
ALTER DOMAIN app.positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN app.positive_amount VALIDATE CONSTRAINT positive;
-- case: deny
ALTER DOMAIN app.code SET NOT NULL;
-- case: pass
-- The safe alternative: a NOT VALID check on the table, validated later.
ALTER TABLE orders ADD CONSTRAINT orders_fee_positive CHECK (fee > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_fee_positive;
-- case: pass
-- Dropping a constraint, or the default, checks nothing.
ALTER DOMAIN positive_amount DROP CONSTRAINT IF EXISTS positive;
ALTER DOMAIN positive_amount DROP DEFAULT;
ALTER DOMAIN positive_amount DROP NOT NULL;
-- case: pass
-- A domain created in the same migration.
CREATE DOMAIN app.code AS text;
ALTER DOMAIN app.code ADD CONSTRAINT code_len CHECK (length(VALUE) < 20);
