-- What psql sends while capture.py records it (tests/fuzz/README.md): a small migration
-- with the statements the rules care about, COPY both ways, notices, errors, transactions,
-- a large row, LISTEN/NOTIFY and large objects (FunctionCall). Errors are expected: the
-- server's ErrorResponses are seeds too.
\set VERBOSITY verbose
SET application_name = 'fuzz psql workload';
DROP TABLE IF EXISTS orders, accounts CASCADE;
CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint, quantity int, note varchar(50),
                     created timestamp DEFAULT now());
INSERT INTO accounts (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 50) g;
INSERT INTO orders (account_id, quantity) SELECT 1 + g % 50, g FROM generate_series(1, 500) g;
COPY orders (account_id, quantity, note) FROM STDIN;
1	10	first copied row
2	20	second\ttab
3	\N	\N
\.
COPY orders (account_id, quantity) FROM STDIN WITH (FORMAT csv);
4,40
oops,not a number
\.
COPY (SELECT id, note FROM orders ORDER BY id LIMIT 30) TO STDOUT;
\copy (SELECT * FROM accounts) TO '/dev/null'
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
SAVEPOINT before_check;
ALTER TABLE orders ADD CONSTRAINT orders_qty CHECK (quantity > 0);
ROLLBACK TO SAVEPOINT before_check;
RELEASE SAVEPOINT before_check;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
CREATE INDEX CONCURRENTLY orders_account_idx ON orders (account_id);
BEGIN;
CREATE INDEX CONCURRENTLY orders_bad_idx ON orders (quantity);
ROLLBACK;
-- ddlguard:allow require-concurrent-index reason="empty table in this migration"
CREATE INDEX orders_created_idx ON orders (created);
/* ddlguard:allow rename-column, drop-column reason='coordinated release' */
ALTER TABLE orders RENAME COLUMN note TO remark;
ALTER TABLE orders ALTER COLUMN remark TYPE text;
ALTER TABLE orders ALTER COLUMN quantity SET NOT NULL, ALTER COLUMN status DROP DEFAULT;
DO $$
BEGIN
  RAISE NOTICE 'orders has % rows', (SELECT count(*) FROM orders);
  RAISE WARNING 'a warning with detail' USING DETAIL = 'the detail', HINT = 'the hint';
END
$$;
SELECT 1 \; SELECT 2 \; ALTER TABLE orders ADD COLUMN x int \; SELECT 3;
SELECT * FROM no_such_table;
SELECT 1/0;
ALTER TABLE orders ADD COLUMN status text;
SELEC broken syntax here;
CREATE TYPE mood AS ENUM ('sad', 'ok');
ALTER TYPE mood ADD VALUE 'happy' BEFORE 'ok';
CREATE VIEW big_orders AS SELECT * FROM orders WHERE quantity > 100;
CREATE MATERIALIZED VIEW order_counts AS SELECT account_id, count(*) FROM orders GROUP BY 1;
REFRESH MATERIALIZED VIEW order_counts;
COMMENT ON TABLE orders IS 'orders; with a semicolon';
GRANT SELECT ON orders TO PUBLIC;
VACUUM (ANALYZE) orders;
CLUSTER orders USING orders_pkey;
REINDEX TABLE accounts;
LOCK TABLE accounts IN SHARE MODE;
TRUNCATE order_counts;
PREPARE by_account (bigint) AS SELECT count(*) FROM orders WHERE account_id = $1;
EXECUTE by_account(3);
DEALLOCATE by_account;
SELECT repeat('large row ', 5000) AS big, E'\\x00'::bytea, 'ünïcode ✓' AS u;
LISTEN psql_channel;
NOTIFY psql_channel, 'payload';
UNLISTEN *;
\lo_import /etc/hostname
SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM orders WHERE id = 1;
WITH moved AS (DELETE FROM orders WHERE id > 490 RETURNING *) INSERT INTO orders SELECT * FROM moved;
SELECT * INTO orders_copy FROM orders LIMIT 5;
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE events DETACH PARTITION events_2024;
CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.created := now(); RETURN NEW; END $f$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
UPDATE orders SET quantity = quantity + 1 WHERE id < 10;
DROP TRIGGER orders_touch ON orders;
DROP TABLE orders_copy, events CASCADE;
DROP INDEX CONCURRENTLY IF EXISTS orders_created_idx;
ALTER TABLE orders DROP COLUMN status;
SHOW server_version;
RESET ALL;
