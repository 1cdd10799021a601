-- case: deny
ALTER TABLE orders ADD CONSTRAINT orders_qty_positive CHECK (quantity > 0);
-- case: deny
ALTER TABLE IF EXISTS app.orders ADD CHECK (price >= 0);
-- case: deny
-- An inline CHECK in ADD COLUMN cannot be NOT VALID.
ALTER TABLE orders ADD COLUMN discount numeric CHECK (discount BETWEEN 0 AND 1);
-- case: deny
-- Only one of the two is NOT VALID.
ALTER TABLE orders ADD CONSTRAINT a CHECK (quantity > 0) NOT VALID,
  ADD CONSTRAINT b CHECK (price >= 0);
-- case: pass
-- The safe alternative: NOT VALID, then VALIDATE in a later transaction.
ALTER TABLE app.orders ADD CONSTRAINT orders_price CHECK (price >= 0) NOT VALID;
ALTER TABLE app.orders VALIDATE CONSTRAINT orders_price;
-- case: pass
CREATE TABLE fresh (quantity int);
ALTER TABLE fresh ADD CONSTRAINT fresh_qty CHECK (quantity > 0);
ALTER TABLE fresh ADD COLUMN discount numeric CHECK (discount BETWEEN 0 AND 1);
-- case: pass
-- Other constraint kinds belong to other rules.
ALTER TABLE orders ADD CONSTRAINT orders_ref UNIQUE USING INDEX orders_ref_idx;
