-- case: warn
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
-- case: deny
CREATE TYPE app.mood AS ENUM ();
-- case: pass
CREATE TABLE app.order_statuses (status text PRIMARY KEY, active boolean NOT NULL DEFAULT true);
-- case: pass
CREATE TYPE app.money_range AS RANGE (subtype = numeric);
-- case: pass
ALTER TYPE order_status ADD VALUE 'returned' AFTER 'shipped';
