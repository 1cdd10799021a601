-- case: deny
ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- case: deny
ALTER TABLE app.orders ADD COLUMN IF NOT EXISTS seen_at timestamptz NOT NULL DEFAULT clock_timestamp();
-- case: deny
-- A volatile call inside an expression, as the second sub-command.
ALTER TABLE accounts ADD COLUMN a int, ADD COLUMN shard int DEFAULT (random() * 16)::int;
-- case: deny
-- A user function: its volatility is in pg_catalog.pg_proc, not in the text.
ALTER TABLE accounts ADD COLUMN code text DEFAULT app.next_code();
-- case: pass
-- Constant and STABLE defaults are catalog-only on PostgreSQL 11+.
ALTER TABLE accounts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN status text NOT NULL DEFAULT 'active', ADD COLUMN at2 timestamptz DEFAULT CURRENT_TIMESTAMP;
-- case: pass
-- The safe alternative: no default, then SET DEFAULT (new rows only), then backfill.
ALTER TABLE accounts ADD COLUMN token uuid;
ALTER TABLE accounts ALTER COLUMN token SET DEFAULT gen_random_uuid();
-- case: pass
CREATE TABLE app.fresh (id int);
ALTER TABLE app.fresh ADD COLUMN token uuid DEFAULT gen_random_uuid();
