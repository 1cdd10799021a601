-- case: deny
CREATE INDEX accounts_email ON accounts (email);
-- case: deny
CREATE UNIQUE INDEX IF NOT EXISTS orders_ref ON app.orders (ref) WHERE ref IS NOT NULL;
-- case: pass
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
-- case: pass
CREATE TABLE fresh (id int, email text);
CREATE INDEX fresh_email ON fresh (email);
