-- case: warn
CREATE TABLE app.users (id bigint, email varchar(255) NOT NULL);
-- case: warn
ALTER TABLE users ADD COLUMN nickname character varying(40);
-- case: deny
ALTER TABLE app.users ALTER COLUMN email TYPE varchar(320);
-- case: pass
CREATE TABLE app.users (id bigint, email text NOT NULL CHECK (char_length(email) <= 255));
-- case: pass
ALTER TABLE users ADD COLUMN nickname varchar, ADD COLUMN code char(2);
-- case: pass
ALTER TABLE users ADD CONSTRAINT nickname_len CHECK (char_length(nickname) <= 40) NOT VALID;
