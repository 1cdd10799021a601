-- case: deny
ALTER TABLE orders DISABLE TRIGGER ALL;
-- case: deny
BEGIN;
ALTER TABLE IF EXISTS app.orders DISABLE TRIGGER orders_audit;
UPDATE app.orders SET total = total * 100;
ALTER TABLE IF EXISTS app.orders ENABLE TRIGGER orders_audit;
COMMIT;
-- case: deny
ALTER TABLE orders DISABLE TRIGGER USER;
-- case: deny
SELECT set_config('session_replication_role', 'replica', false);
-- case: deny
SELECT pg_catalog.set_config('session_replication_role', 'replica', true);
-- case: pass
ALTER TABLE orders ENABLE TRIGGER ALL;
-- case: pass
ALTER TABLE orders ENABLE REPLICA TRIGGER orders_sync;
-- case: pass
SELECT set_config('session_replication_role', 'origin', false);
-- case: deny
ALTER ROLE etl_loader SET session_replication_role = replica;
-- case: pass
ALTER ROLE etl_loader SET statement_timeout = '15min';
