-- case: deny
BEGIN;
CREATE TABLE accounts (id int);
-- case: deny
CREATE TABLE a (id int);
BEGIN;
ALTER TABLE a ADD COLUMN b int;
ALTER TABLE a ADD COLUMN c int;
-- case: pass
BEGIN;
CREATE TABLE accounts (id int);
COMMIT;
-- case: pass
CREATE TABLE accounts (id int);
BEGIN;
ALTER TABLE accounts ADD COLUMN b int;
ROLLBACK;
