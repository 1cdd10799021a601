-- case: warn
ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- case: warn
CREATE TABLE app.line_items (
  id bigint PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES app.orders,
  sku text
);
-- case: deny
-- An index on (sku, order_id) does not serve a key on order_id alone.
CREATE INDEX CONCURRENTLY line_items_sku_order ON line_items (sku, order_id);
ALTER TABLE line_items ADD FOREIGN KEY (order_id) REFERENCES orders;
-- case: deny
-- The index is on app.payments; the key is on payments in the search path.
CREATE INDEX CONCURRENTLY payments_order ON app.payments (order_id);
ALTER TABLE payments ADD COLUMN refund_of bigint REFERENCES payments, ADD FOREIGN KEY (order_id) REFERENCES orders;
-- case: pass
-- The safe alternative: the index first (concurrently), then the key.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id ON orders (customer_id, created_at);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- case: pass
-- Keys covered by the table's own primary key and unique constraint.
CREATE TABLE app.order_tags (
  order_id bigint REFERENCES app.orders,
  tag_id bigint REFERENCES app.tags,
  PRIMARY KEY (order_id, tag_id),
  UNIQUE (tag_id, order_id)
);
-- case: pass
BEGIN;
CREATE TABLE shipments (id bigint PRIMARY KEY, order_id bigint);
CREATE INDEX ON shipments (order_id);
ALTER TABLE shipments ADD CONSTRAINT shipments_order_fkey FOREIGN KEY (order_id) REFERENCES orders;
COMMIT;
-- case: pass
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
