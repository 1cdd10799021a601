-- case: warn
ALTER TYPE order_status ADD VALUE 'on_hold';
-- case: warn
ALTER TYPE app.order_status ADD VALUE IF NOT EXISTS 'on_hold';
-- case: deny
CREATE TYPE app.mood AS ENUM ('sad', 'happy');
ALTER TYPE public.mood ADD VALUE 'ok';
-- case: pass
ALTER TYPE order_status ADD VALUE 'on_hold' BEFORE 'shipped';
-- case: pass
ALTER TYPE app.order_status ADD VALUE IF NOT EXISTS 'archived' AFTER 'delivered';
-- case: pass
CREATE TYPE app.mood AS ENUM ('sad', 'happy');
ALTER TYPE app.mood ADD VALUE 'ecstatic';
-- case: pass
ALTER TYPE order_status RENAME VALUE 'on_hold' TO 'paused';
