-- case: set
ALTER TABLE accounts ADD COLUMN nickname text;
-- case: set
CREATE INDEX CONCURRENTLY orders_created ON app.orders (created_at);
-- case: pass
SELECT * FROM accounts WHERE id = 1;
-- case: pass
CREATE TABLE fresh (id int);
ALTER TABLE fresh ADD COLUMN v int;
