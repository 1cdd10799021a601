-- case: warn
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_name = 'users' AND column_name = 'email_verified') THEN
    ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
  END IF;
END
$$;
-- case: deny
DO LANGUAGE plpgsql $body$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'app' LOOP
    EXECUTE format('ALTER TABLE app.%I SET (fillfactor = 90)', t);
  END LOOP;
END
$body$;
-- case: deny
DO $$ BEGIN EXECUTE 'UPDATE ' || quote_ident('orders') || ' SET total = 0'; END $$;
-- case: pass
-- Data only: a batched backfill, no DDL, no dynamic SQL.
DO $$
DECLARE n bigint;
BEGIN
  LOOP
    UPDATE orders SET created_by = 0 WHERE id IN (SELECT id FROM orders WHERE created_by IS NULL LIMIT 1000);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
  END LOOP;
END
$$;
-- case: pass
-- The words in comments, identifiers and messages do not count.
DO $$
BEGIN
  -- later: alter table orders drop column legacy
  RAISE NOTICE 'created_at of % rows is set', (SELECT count(*) FROM orders WHERE dropped_at IS NULL);
  PERFORM pg_advisory_lock(42);
END
$$;
-- case: pass
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false;
-- case: pass
-- Words inside string literals are not statements (sqitch's registry set-up block).
DO $$
BEGIN
    SET LOCAL client_min_messages = 'ERROR';
    RAISE WARNING USING MESSAGE = 'sqitch needs to create its registry tables';
END;
$$;
