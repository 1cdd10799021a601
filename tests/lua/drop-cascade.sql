-- case: deny
DROP TYPE order_status CASCADE;
-- case: deny
DROP VIEW IF EXISTS reporting.active_users, reporting.daily CASCADE;
-- case: deny
ALTER TABLE IF EXISTS app.orders DROP COLUMN status CASCADE;
-- case: deny
ALTER TABLE users DROP CONSTRAINT users_pkey CASCADE;
-- case: deny
DROP FUNCTION IF EXISTS app.normalize_email(text) CASCADE;
-- case: pass
DROP TYPE order_status;
-- case: pass
CREATE TABLE tmp_totals (id bigint PRIMARY KEY, total numeric);
CREATE VIEW tmp_totals_v AS SELECT * FROM tmp_totals;
DROP TABLE tmp_totals CASCADE;
-- case: pass
TRUNCATE orders CASCADE;
-- case: pass
REVOKE SELECT ON orders FROM reporting CASCADE;
-- case: pass
-- The trigger was created in this migration: nothing old depends on it.
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
DROP TRIGGER orders_touch ON orders CASCADE;
-- case: deny
DROP OWNED BY legacy_app CASCADE;
