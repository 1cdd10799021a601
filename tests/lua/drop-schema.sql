-- case: deny
DROP SCHEMA legacy CASCADE;
-- case: deny
DROP SCHEMA IF EXISTS reporting_old;
-- case: pass
CREATE SCHEMA tmp_import;
CREATE TABLE tmp_import.rows (id bigint);
DROP SCHEMA tmp_import CASCADE;
-- case: pass
DROP TABLE legacy.audit_2019;
-- case: deny
CREATE SCHEMA tmp_import;
DROP SCHEMA tmp_import, legacy;
