-- case: deny
REFRESH MATERIALIZED VIEW daily_sales;
-- case: deny
BEGIN;
REFRESH MATERIALIZED VIEW reporting.monthly_revenue WITH NO DATA;
COMMIT;
-- case: pass
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_sales;
-- case: pass
CREATE MATERIALIZED VIEW reporting.top_customers AS
  SELECT customer_id, sum(total) AS spent FROM orders GROUP BY customer_id WITH NO DATA;
CREATE UNIQUE INDEX top_customers_id ON reporting.top_customers (customer_id);
REFRESH MATERIALIZED VIEW reporting.top_customers;
-- case: deny
-- The view created earlier is reporting.top_customers, not top_customers: names compare as written.
CREATE MATERIALIZED VIEW reporting.top_customers AS SELECT 1 AS one WITH NO DATA;
REFRESH MATERIALIZED VIEW top_customers;
