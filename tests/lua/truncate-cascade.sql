-- case: deny
TRUNCATE countries CASCADE;
-- case: deny
TRUNCATE TABLE ONLY app.users, app.sessions RESTART IDENTITY CASCADE;
-- case: pass
TRUNCATE app.sessions, app.users;
-- case: pass
CREATE TABLE scratch_parent (id bigint PRIMARY KEY);
CREATE TABLE scratch_child (parent_id bigint REFERENCES scratch_parent);
TRUNCATE scratch_parent CASCADE;
-- case: deny
-- One new table and one old one: the old one's referencing tables are emptied too.
CREATE TABLE import_regions (id bigint PRIMARY KEY);
TRUNCATE import_regions, regions CASCADE;
