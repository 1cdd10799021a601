-- case: deny
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
COMMIT;
-- case: deny
BEGIN;
ALTER TABLE app.orders ADD CONSTRAINT orders_qty CHECK (quantity > 0) NOT VALID;
ALTER TABLE app.orders ALTER COLUMN note SET DEFAULT '';
ALTER TABLE IF EXISTS app.orders VALIDATE CONSTRAINT orders_qty;
COMMIT;
-- case: deny
-- The same statement: it takes ACCESS EXCLUSIVE for the other sub-command.
ALTER TABLE orders ADD CONSTRAINT orders_qty CHECK (quantity > 0) NOT VALID,
  VALIDATE CONSTRAINT orders_qty;
-- case: deny
-- The referenced table was locked too: validating a constraint on it is covered as well.
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_check;
COMMIT;
-- case: pass
-- The safe alternative: COMMIT in between.
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
COMMIT;
-- case: pass
-- Autocommit: each statement is its own transaction.
ALTER TABLE app.orders ADD CONSTRAINT orders_qty CHECK (quantity > 0) NOT VALID;
ALTER TABLE app.orders VALIDATE CONSTRAINT orders_qty;
-- case: pass
-- Another table was locked, and this one only took SHARE UPDATE EXCLUSIVE before.
BEGIN;
ALTER TABLE accounts ADD CONSTRAINT accounts_email_check CHECK (email <> '') NOT VALID;
ALTER TABLE orders SET (fillfactor = 90);
ALTER TABLE orders VALIDATE CONSTRAINT orders_qty;
COMMIT;
-- case: pass
-- A table created in this transaction is empty.
BEGIN;
CREATE TABLE fresh (quantity int);
ALTER TABLE fresh ADD CONSTRAINT fresh_qty CHECK (quantity > 0) NOT VALID;
ALTER TABLE fresh VALIDATE CONSTRAINT fresh_qty;
COMMIT;
-- case: pass
-- A domain's VALIDATE blocks writes in any transaction: rule alter-domain-add-constraint.
BEGIN;
ALTER DOMAIN positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive;
COMMIT;
