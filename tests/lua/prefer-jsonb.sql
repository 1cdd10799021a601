-- case: warn
CREATE TABLE app.events (id bigint, payload json NOT NULL);
-- case: deny
ALTER TABLE events ADD COLUMN IF NOT EXISTS meta json DEFAULT '{}';
-- case: deny
ALTER TABLE app.events ALTER COLUMN payload TYPE pg_catalog.json USING payload::json;
-- case: pass
CREATE TABLE app.events (id bigint, payload jsonb NOT NULL, tags json_tags);
-- case: pass
ALTER TABLE app.events ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
-- case: pass
CREATE TABLE json (json text);
