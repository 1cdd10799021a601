-- case: warn
CREATE TABLE app.events (id bigint, happened_at timestamp NOT NULL DEFAULT now());
-- case: warn
ALTER TABLE events ADD COLUMN seen_at timestamp(3) without time zone;
-- case: deny
ALTER TABLE app.events ALTER COLUMN happened_at TYPE pg_catalog.timestamp;
-- case: pass
CREATE TABLE app.events (id bigint, happened_at timestamptz NOT NULL DEFAULT now());
-- case: pass
ALTER TABLE app.events ALTER COLUMN happened_at TYPE timestamp with time zone;
-- case: pass
CREATE TABLE app.shifts (starts time, on_day date, lasts interval);
