-- case: deny
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);
-- case: deny
ALTER TABLE app.orders ADD FOREIGN KEY (account_id) REFERENCES app.accounts ON DELETE CASCADE;
-- case: deny
-- An inline REFERENCES cannot be NOT VALID.
ALTER TABLE orders ADD COLUMN coupon_id bigint REFERENCES coupons (id);
-- case: pass
-- The safe alternative: NOT VALID, then VALIDATE in a later transaction.
ALTER TABLE orders ADD COLUMN coupon_id bigint;
ALTER TABLE orders ADD CONSTRAINT orders_coupon_fk FOREIGN KEY (coupon_id) REFERENCES coupons (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_coupon_fk;
-- case: pass
-- A table created in the same migration.
CREATE TABLE app.order_notes (order_id bigint, body text);
ALTER TABLE app.order_notes ADD CONSTRAINT notes_order_fk FOREIGN KEY (order_id) REFERENCES app.orders (id);
-- case: pass
ALTER TABLE orders ADD CONSTRAINT orders_qty CHECK (quantity > 0) NOT VALID;
