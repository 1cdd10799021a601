-- A small schema migration, run with psql -f through ddlguard.
\set ON_ERROR_STOP on
BEGIN;
CREATE TABLE mig_customers (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE mig_orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES mig_customers (id),
    total_cents integer NOT NULL CHECK (total_cents >= 0)
);
CREATE INDEX mig_orders_customer_idx ON mig_orders (customer_id);
INSERT INTO mig_customers (email)
SELECT 'user' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO mig_orders (customer_id, total_cents)
SELECT 1 + g % 100, g * 10 FROM generate_series(1, 1000) g;
COMMIT;

-- a second step, outside the first transaction
ALTER TABLE mig_customers ADD COLUMN display_name text;
UPDATE mig_customers SET display_name = split_part(email, '@', 1);
ALTER TABLE mig_customers ALTER COLUMN display_name SET NOT NULL;
CREATE VIEW mig_customer_totals AS
    SELECT c.id, c.display_name, sum(o.total_cents) AS total_cents
    FROM mig_customers c JOIN mig_orders o ON o.customer_id = c.id
    GROUP BY c.id, c.display_name;
COPY mig_customers (email, display_name) FROM STDIN;
copied1@example.com	copied1
copied2@example.com	copied2
\.
SELECT count(*) AS customers FROM mig_customers;
