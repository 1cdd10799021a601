-- case: deny
TRUNCATE orders;
-- case: deny
BEGIN;
CREATE TABLE orders_stage (LIKE orders);
TRUNCATE TABLE ONLY orders_stage, app.orders RESTART IDENTITY;
COMMIT;
-- case: pass
CREATE TABLE orders_stage (LIKE orders);
INSERT INTO orders_stage SELECT * FROM orders WHERE id < 1000;
TRUNCATE orders_stage;
-- case: pass
DELETE FROM orders WHERE id < 1000;
-- case: deny
-- Created as staging.orders; this truncates orders in the search path.
CREATE TABLE staging.orders (LIKE orders);
TRUNCATE orders;
