-- case: warn
ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
-- case: deny
ALTER TABLE IF EXISTS app.line_items DROP CONSTRAINT IF EXISTS fk_rails_3b2c4a9e1f;
-- case: deny
-- Django's naming: <table>_<column>_<hash>_fk_<table>_<column>.
ALTER TABLE shop_order DROP CONSTRAINT shop_order_customer_id_5b7b1b9f_fk_shop_customer_id;
-- case: deny
-- Dropping a key of a table created earlier still locks the referenced table (users).
CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint CONSTRAINT sessions_user_id_fkey REFERENCES users);
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
-- case: pass
-- The last step of the SET NOT NULL recipe drops a CHECK constraint.
ALTER TABLE orders DROP CONSTRAINT orders_user_id_not_null;
-- case: pass
ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users NOT VALID;
