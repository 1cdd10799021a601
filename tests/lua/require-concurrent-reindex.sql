-- case: deny
REINDEX INDEX accounts_email;
-- case: deny
REINDEX TABLE app.orders;
-- case: deny
REINDEX (VERBOSE) SCHEMA app;
-- case: deny
REINDEX DATABASE shop;
-- case: pass
REINDEX INDEX CONCURRENTLY accounts_email;
-- case: pass
REINDEX (CONCURRENTLY, VERBOSE) TABLE app.orders;
-- case: pass
-- A table created earlier in the migration.
CREATE TABLE app.fresh (id int PRIMARY KEY);
REINDEX TABLE app.fresh;
