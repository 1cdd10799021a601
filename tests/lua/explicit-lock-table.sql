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
-- case: pass
-- sqitch's registry mutex: its "changes" table under SET search_path = sqitch.
BEGIN;
LOCK TABLE changes IN EXCLUSIVE MODE;
COMMIT;
-- case: pass
BEGIN;
LOCK TABLE sqitch.changes IN EXCLUSIVE MODE;
COMMIT;
-- case: pass
BEGIN;
LOCK TABLE public.flyway_schema_history IN ACCESS EXCLUSIVE MODE;
COMMIT;
-- case: deny
-- Only sqitch's exact lock is exempt: ACCESS EXCLUSIVE on a "changes" table is not it.
BEGIN;
LOCK TABLE changes;
COMMIT;
