-- case: deny
DROP DATABASE app_production;
-- case: deny
DROP DATABASE IF EXISTS analytics WITH (FORCE);
-- case: deny
/* ddlguard:allow drop-database reason="cannot be lifted inline" */
DROP DATABASE analytics;
-- case: pass
CREATE DATABASE scratch_copy;
DROP DATABASE scratch_copy;
-- case: pass
DROP TABLE analytics_events;
