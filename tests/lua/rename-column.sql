-- case: deny
ALTER TABLE users RENAME COLUMN email TO email_address;
-- case: deny
ALTER TABLE IF EXISTS ONLY app.users RENAME name TO full_name;
-- case: deny
ALTER MATERIALIZED VIEW reporting.daily_sales RENAME COLUMN amt TO amount;
-- case: pass
-- Expand/contract: a new column, filled later; the old one stays.
ALTER TABLE users ADD COLUMN email_address text;
-- case: pass
CREATE TABLE app.invoices (id bigint PRIMARY KEY, amt numeric);
ALTER TABLE app.invoices RENAME COLUMN amt TO amount;
-- case: pass
ALTER TABLE users RENAME CONSTRAINT users_email_check TO users_email_format;
