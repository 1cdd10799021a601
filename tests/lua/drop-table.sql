-- case: deny
DROP TABLE legacy_sessions;
-- case: deny
DROP TABLE IF EXISTS app.audit_old CASCADE;
-- case: pass
CREATE TABLE scratch (id int);
DROP TABLE scratch;
-- case: pass
ALTER TABLE legacy_sessions RENAME TO legacy_sessions_old;
