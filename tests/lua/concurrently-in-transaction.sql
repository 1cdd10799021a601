-- case: deny
BEGIN;
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
COMMIT;
-- case: deny
BEGIN;
ALTER TABLE app.orders ADD COLUMN ref text;
DROP INDEX CONCURRENTLY IF EXISTS app.orders_ref;
COMMIT;
-- case: deny
BEGIN;
REINDEX INDEX CONCURRENTLY accounts_email;
-- case: deny
START TRANSACTION;
ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;
COMMIT;
-- case: pass
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
-- case: pass
-- COMMIT first, then the concurrent build runs on its own.
BEGIN;
ALTER TABLE app.orders ADD COLUMN ref text;
COMMIT;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_ref ON app.orders (ref);
-- case: pass
-- REFRESH … CONCURRENTLY may run in a transaction block.
BEGIN;
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;
COMMIT;
