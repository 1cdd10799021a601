-- case: deny
BEGIN;
ALTER TYPE order_status ADD VALUE 'returned';
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'returned';
COMMIT;
-- case: deny
BEGIN;
ALTER TYPE app.order_status ADD VALUE IF NOT EXISTS 'on_hold' BEFORE 'shipped';
CREATE INDEX orders_on_hold ON app.orders (id) WHERE status = 'on_hold';
COMMIT;
-- case: deny
BEGIN;
CREATE TYPE app.mood AS ENUM ('sad', 'happy');
ALTER TYPE app.mood ADD VALUE 'ok';
CREATE TABLE app.people (id bigint, mood app.mood DEFAULT 'ok');
COMMIT;
-- case: pass
ALTER TYPE order_status ADD VALUE 'returned';
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'returned';
-- case: pass
BEGIN;
ALTER TYPE order_status ADD VALUE 'returned';
COMMIT;
BEGIN;
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'returned';
COMMIT;
-- case: pass
BEGIN;
ALTER TYPE order_status ADD VALUE 'returned';
ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'returned';
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'shipped';
COMMIT;
-- case: deny
BEGIN;
ALTER TYPE app.order_status ADD VALUE 'returned' AFTER 'delivered';
UPDATE app.orders SET status = 'returned' WHERE id IN (SELECT order_id FROM app.returns);
COMMIT;
-- case: pass
BEGIN;
ALTER TYPE app.order_status ADD VALUE 'returned' AFTER 'delivered';
COMMIT;
UPDATE app.orders SET status = 'returned' WHERE id IN (SELECT order_id FROM app.returns);
