-- case: warn
CREATE INDEX CONCURRENTLY orders_search ON app.orders (account_id, status, created_at, total);
-- case: deny
CREATE TABLE events (a int, b int, c int, d int);
CREATE INDEX events_abcd ON events (a, b, lower(c::text), d DESC);
-- case: pass
CREATE INDEX CONCURRENTLY orders_search ON app.orders (account_id, status, created_at) INCLUDE (total, currency);
-- case: pass
CREATE UNIQUE INDEX CONCURRENTLY orders_natural_key ON app.orders (account_id, region, number, revision);
-- case: pass
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open ON app.orders (account_id, (lower(ref)), created_at) WHERE status <> 'closed';
-- case: warn
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_wide ON app.orders USING gin (a, b, c, d);
