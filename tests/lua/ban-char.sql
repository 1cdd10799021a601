-- case: warn
CREATE TABLE app.countries (code char(2) PRIMARY KEY, name text);
-- case: warn
ALTER TABLE app.accounts ADD COLUMN tier character(1) DEFAULT 'a';
-- case: deny
ALTER TABLE accounts ALTER COLUMN tier TYPE char;
-- case: pass
CREATE TABLE app.countries (code text PRIMARY KEY CHECK (char_length(code) = 2), name text);
-- case: pass
CREATE TABLE app.flags (kind "char", label varchar(20));
-- case: pass
ALTER TABLE accounts ALTER COLUMN tier TYPE text;
