-- case: warn
CREATE TABLE app.accounts (active boolean, id bigint, verified boolean, created_at timestamptz);
-- case: deny
CREATE TABLE IF NOT EXISTS events (kind smallint, id bigint, name text, seen int, happened_at timestamp, retries smallint);
-- case: pass
CREATE TABLE app.accounts (id bigint, created_at timestamptz, active boolean, verified boolean, name text);
-- case: pass
CREATE TABLE app.tags (id integer, label text, active boolean);
-- case: pass
ALTER TABLE app.accounts ADD COLUMN locked boolean, ADD COLUMN locked_at timestamptz;
