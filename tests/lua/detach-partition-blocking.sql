-- case: warn
ALTER TABLE events DETACH PARTITION events_2019;
-- case: deny
BEGIN;
ALTER TABLE IF EXISTS app.measurements DETACH PARTITION app.measurements_2020_01;
COMMIT;
-- case: pass
ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;
-- case: pass
ALTER TABLE events DETACH PARTITION events_2019 FINALIZE;
-- case: pass
CREATE TABLE staging_events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE staging_events_2024 PARTITION OF staging_events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE staging_events DETACH PARTITION staging_events_2024;
-- case: pass
ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
