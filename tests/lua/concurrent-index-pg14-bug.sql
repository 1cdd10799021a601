-- case: warn
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at ON orders (created_at);
-- case: warn
REINDEX INDEX CONCURRENTLY app.orders_created_at;
-- case: deny
REINDEX (CONCURRENTLY, VERBOSE) TABLE app.orders;
-- case: pass
CREATE INDEX orders_created_at ON orders (created_at);
-- case: pass
CREATE TABLE order_events (id bigint, order_id bigint);
CREATE INDEX CONCURRENTLY order_events_order ON order_events (order_id);
-- case: pass
DROP INDEX CONCURRENTLY IF EXISTS orders_created_at;
