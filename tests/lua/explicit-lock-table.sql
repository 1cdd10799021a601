-- case: deny
BEGIN;
LOCK TABLE accounts;
UPDATE accounts SET balance = 0 WHERE id = 1;
COMMIT;
-- case: deny
BEGIN;
LOCK TABLE app.orders, app.order_items IN SHARE ROW EXCLUSIVE MODE;
COMMIT;
-- case: deny
BEGIN;
LOCK TABLE ONLY ledger IN EXCLUSIVE MODE;
COMMIT;
-- case: pass
BEGIN;
LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE NOWAIT;
COMMIT;
-- case: pass
BEGIN;
LOCK TABLE accounts IN SHARE UPDATE EXCLUSIVE MODE;
COMMIT;
-- case: pass
BEGIN;
CREATE TABLE accounts_new (LIKE accounts INCLUDING ALL);
LOCK TABLE accounts_new IN ACCESS EXCLUSIVE MODE;
COMMIT;
