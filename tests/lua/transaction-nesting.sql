-- case: warn
BEGIN;
DO $$
BEGIN
  UPDATE orders SET status = 'archived' WHERE created_at < now() - interval '2 years';
  COMMIT;
END
$$;
COMMIT;
-- case: deny
BEGIN;
ALTER TABLE app.orders ADD COLUMN archived boolean;
DO LANGUAGE plpgsql $body$
DECLARE n bigint;
BEGIN
  LOOP
    UPDATE app.orders SET archived = false WHERE id IN (SELECT id FROM app.orders WHERE archived IS NULL LIMIT 1000);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    Commit;
  END LOOP;
END $body$;
COMMIT;
-- case: pass
DO $$
BEGIN
  LOOP
    UPDATE app.orders SET archived = false WHERE id IN (SELECT id FROM app.orders WHERE archived IS NULL LIMIT 1000);
    EXIT WHEN NOT FOUND;
    COMMIT;
  END LOOP;
END $$;
-- case: pass
BEGIN;
DO $$ BEGIN RAISE NOTICE 'committed_rows %', 0; END $$;
COMMIT;
-- case: warn
BEGIN;
DO $$ BEGIN IF (SELECT count(*) FROM app.orders) = 0 THEN ROLLBACK; END IF; END $$;
COMMIT;
-- case: pass
BEGIN;
ALTER TABLE app.orders ADD COLUMN archived boolean;
COMMIT;
DO $$ BEGIN UPDATE app.orders SET archived = false WHERE id < 1000; COMMIT; END $$;
