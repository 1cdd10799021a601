-- case: deny
ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';
-- case: deny
BEGIN;
ALTER TYPE app.order_status ADD VALUE 'returned';
ALTER TYPE app.order_status RENAME VALUE 'cancelled' TO 'canceled';
COMMIT;
-- case: pass
ALTER TYPE order_status ADD VALUE 'dispatched' AFTER 'shipped';
-- case: pass
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
ALTER TYPE app.mood RENAME VALUE 'ok' TO 'fine';
-- case: pass
ALTER TYPE order_status RENAME TO shipment_status;
