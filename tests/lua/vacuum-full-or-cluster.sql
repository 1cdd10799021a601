-- case: deny
VACUUM FULL orders;
-- case: deny
VACUUM (FULL, ANALYZE, VERBOSE) app.orders, app.order_items;
-- case: deny
CLUSTER app.orders USING orders_created_at_idx;
-- case: deny
VACUUM FULL;
-- case: pass
-- A plain VACUUM (the alternative for space inside the table) does not block.
VACUUM (ANALYZE) app.orders;
VACUUM (FULL false) orders;
-- case: pass
-- A table created in the same migration.
CREATE TABLE scratch (id int);
CLUSTER scratch USING scratch_pkey;
VACUUM FULL scratch;
