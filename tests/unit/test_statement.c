/*
 * Unit tests for policies/statement (statement analysis over libpg_query) and
 * policies/tree (the lazy Lua view of the parse tree).
 *
 * The corpus is real migration SQL, one statement per row, with what statement.c must
 * say about it: tag, node, the statement's lock, its flags, every object with its lock
 * (compared as a set, so the order objects are found in does not matter) and every
 * ALTER TABLE sub-command in order. Expected locks come from
 * reference/rules-catalog.md appendix A; a mismatch prints the statement and the field,
 * and every row is checked before the test fails, so one run shows all regressions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "policies/statement.h"
#include "policies/tree.h"

/* ------------------------------------------------------------------ corpus */

#define NONE STMT_LOCK_NONE
#define AS STMT_LOCK_ACCESS_SHARE
#define RS STMT_LOCK_ROW_SHARE
#define RX STMT_LOCK_ROW_EXCLUSIVE
#define SUX STMT_LOCK_SHARE_UPDATE_EXCLUSIVE
#define S STMT_LOCK_SHARE
#define SRX STMT_LOCK_SHARE_ROW_EXCLUSIVE
#define X STMT_LOCK_EXCLUSIVE
#define AX STMT_LOCK_ACCESS_EXCLUSIVE

/* Statement flags. */
enum {
	DDL = 1 << 0,
	OPAQUE = 1 << 1,
	CONC = 1 << 2,
	NOTVALID = 1 << 3,
	IFEX = 1 << 4,
	IFNEX = 1 << 5,
	CASCADE = 1 << 6,
	NOTX = 1 << 7,    /* in_tx_block_ok is false */
};

/* Object and sub-command flags. */
enum {
	RW = 1 << 0,      /* rewrite */
	SCAN = 1 << 1,
	NEW = 1 << 2,     /* created */
	GONE = 1 << 3,    /* dropped */
	NV = 1 << 4,      /* sub-command NOT VALID */
};

struct obj_x {
	const char *kind, *schema, *name;
	enum stmt_lock lock;
	unsigned flags;
};

struct sub_x {
	const char *name, *column;
	enum stmt_lock lock;
	unsigned flags;
};

struct corpus_case {
	const char *sql, *tag, *node;
	enum stmt_lock lock;
	unsigned flags;
	struct obj_x objs[5];
	struct sub_x subs[4];
};

static const struct corpus_case corpus[] = {
	/* ---- CREATE TABLE */
	{"CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)",
	 "CREATE TABLE", "CreateStmt", NONE, DDL,
	 {{"table", NULL, "users", AX, NEW}}, {{0}}},
	{"CREATE TABLE IF NOT EXISTS app.orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id))",
	 "CREATE TABLE", "CreateStmt", SRX, DDL | IFNEX,
	 {{"table", "app", "orders", AX, NEW}, {"table", NULL, "users", SRX, 0}}, {{0}}},
	{"CREATE TABLE line_items (order_id bigint, CONSTRAINT li_fk FOREIGN KEY (order_id) REFERENCES app.orders (id) ON DELETE CASCADE)",
	 "CREATE TABLE", "CreateStmt", SRX, DDL,
	 {{"table", NULL, "line_items", AX, NEW}, {"table", "app", "orders", SRX, 0}}, {{0}}},
	{"CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
	 "CREATE TABLE", "CreateStmt", AX, DDL,
	 {{"table", NULL, "events_2024", AX, NEW}, {"table", NULL, "events", AX, 0}}, {{0}}},
	{"CREATE TABLE users_copy (LIKE users INCLUDING ALL)",
	 "CREATE TABLE", "CreateStmt", AS, DDL,
	 {{"table", NULL, "users_copy", AX, NEW}, {"table", NULL, "users", AS, 0}}, {{0}}},

	/* ---- CREATE / DROP INDEX */
	{"CREATE INDEX idx_orders_user ON orders (user_id)",
	 "CREATE INDEX", "IndexStmt", S, DDL,
	 {{"table", NULL, "orders", S, SCAN}, {"index", NULL, "idx_orders_user", AX, NEW}}, {{0}}},
	{"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_users_email ON app.users (lower(email))",
	 "CREATE INDEX", "IndexStmt", SUX, DDL | CONC | IFNEX | NOTX,
	 {{"table", "app", "users", SUX, SCAN}, {"index", "app", "idx_users_email", AX, NEW}}, {{0}}},
	{"CREATE INDEX ON ONLY measurements (logdate) WHERE logdate > '2020-01-01'",
	 "CREATE INDEX", "IndexStmt", S, DDL,
	 {{"table", NULL, "measurements", S, SCAN}}, {{0}}},
	{"DROP INDEX CONCURRENTLY IF EXISTS app.idx_users_email",
	 "DROP INDEX", "DropStmt", SUX, DDL | CONC | IFEX | NOTX,
	 {{"index", "app", "idx_users_email", SUX, GONE}}, {{0}}},
	{"DROP INDEX idx_a, idx_b",
	 "DROP INDEX", "DropStmt", AX, DDL,
	 {{"index", NULL, "idx_a", AX, GONE}, {"index", NULL, "idx_b", AX, GONE}}, {{0}}},

	/* ---- ALTER TABLE … ADD COLUMN */
	{"ALTER TABLE users ADD COLUMN nickname text",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD COLUMN", "nickname", AX, 0}}},
	{"ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD COLUMN", "active", AX, 0}}},
	{"ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD COLUMN", "created_at", AX, 0}}},
	{"ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ADD COLUMN", "token", AX, RW}}},
	{"ALTER TABLE users ADD COLUMN jitter float8 DEFAULT (pg_catalog.random() * 10)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ADD COLUMN", "jitter", AX, RW}}},
	{"ALTER TABLE users ADD COLUMN seq bigserial",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ADD COLUMN", "seq", AX, RW}}},
	{"ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ADD COLUMN", "n", AX, RW}}},
	{"ALTER TABLE orders ADD COLUMN total numeric GENERATED ALWAYS AS (price * qty) STORED",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "orders", AX, RW}}, {{"ADD COLUMN", "total", AX, RW}}},
	{"ALTER TABLE users ADD COLUMN IF NOT EXISTS age int CHECK (age > 0)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | IFNEX,
	 {{"table", NULL, "users", AX, SCAN}}, {{"ADD COLUMN", "age", AX, SCAN}}},
	{"ALTER TABLE orders ADD COLUMN account_id bigint REFERENCES accounts (id)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "orders", AX, SCAN}, {"table", NULL, "accounts", SRX, 0}},
	 {{"ADD COLUMN", "account_id", AX, SCAN}}},

	/* ---- ALTER TABLE: other column forms */
	{"ALTER TABLE users DROP COLUMN IF EXISTS legacy CASCADE",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | IFEX | CASCADE,
	 {{"table", NULL, "users", AX, 0}}, {{"DROP COLUMN", "legacy", AX, 0}}},
	{"ALTER TABLE users RENAME COLUMN email TO email_address",
	 "ALTER TABLE", "RenameStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"RENAME COLUMN", "email", AX, 0}}},
	{"ALTER TABLE users RENAME TO customers",
	 "ALTER TABLE", "RenameStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"RENAME TO", NULL, AX, 0}}},
	{"ALTER TABLE users ALTER COLUMN status SET DEFAULT 'active'",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"SET DEFAULT", "status", AX, 0}}},
	{"ALTER TABLE users ALTER COLUMN status DROP DEFAULT",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"DROP DEFAULT", "status", AX, 0}}},
	{"ALTER TABLE users ALTER COLUMN email SET NOT NULL",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, SCAN}}, {{"SET NOT NULL", "email", AX, SCAN}}},
	{"ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"DROP NOT NULL", "email", AX, 0}}},
	{"ALTER TABLE users ALTER COLUMN id TYPE bigint",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ALTER COLUMN TYPE", "id", AX, RW}}},
	{"ALTER TABLE users ALTER COLUMN name SET DATA TYPE varchar(200) USING name::varchar(200)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, RW}}, {{"ALTER COLUMN TYPE", "name", AX, RW}}},
	{"ALTER TABLE users ALTER COLUMN email SET STATISTICS 1000",
	 "ALTER TABLE", "AlterTableStmt", SUX, DDL,
	 {{"table", NULL, "users", SUX, 0}}, {{"SET STATISTICS", "email", SUX, 0}}},

	/* ---- ALTER TABLE: constraints */
	{"ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, SCAN}}, {{"ADD CONSTRAINT CHECK", "age_positive", AX, SCAN}}},
	{"ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0) NOT VALID",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | NOTVALID,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD CONSTRAINT CHECK", "age_positive", AX, NV}}},
	{"ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)",
	 "ALTER TABLE", "AlterTableStmt", SRX, DDL,
	 {{"table", NULL, "orders", SRX, SCAN}, {"table", NULL, "users", SRX, 0}},
	 {{"ADD CONSTRAINT FOREIGN KEY", "orders_user_fk", SRX, SCAN}}},
	{"ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID",
	 "ALTER TABLE", "AlterTableStmt", SRX, DDL | NOTVALID,
	 {{"table", NULL, "orders", SRX, 0}, {"table", "app", "users", SRX, 0}},
	 {{"ADD CONSTRAINT FOREIGN KEY", "orders_user_fk", SRX, NV}}},
	{"ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, SCAN}}, {{"ADD CONSTRAINT UNIQUE", "users_email_key", AX, SCAN}}},
	{"ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD CONSTRAINT UNIQUE USING INDEX", "users_email_key", AX, 0}}},
	{"ALTER TABLE users ADD PRIMARY KEY (id)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, SCAN}}, {{"ADD CONSTRAINT PRIMARY KEY", NULL, AX, SCAN}}},
	{"ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_id_idx",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}}, {{"ADD CONSTRAINT PRIMARY KEY USING INDEX", "users_pkey", AX, 0}}},
	{"ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&)",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "bookings", AX, SCAN}}, {{"ADD CONSTRAINT EXCLUDE", "no_overlap", AX, SCAN}}},
	{"ALTER TABLE users VALIDATE CONSTRAINT age_positive",
	 "ALTER TABLE", "AlterTableStmt", SUX, DDL,
	 {{"table", NULL, "users", SUX, SCAN}}, {{"VALIDATE CONSTRAINT", "age_positive", SUX, SCAN}}},
	{"ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_user_fk",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | IFEX,
	 {{"table", NULL, "orders", AX, 0}}, {{"DROP CONSTRAINT", "orders_user_fk", AX, 0}}},

	/* ---- ALTER TABLE: storage, partitions, triggers, ownership */
	{"ALTER TABLE users SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01)",
	 "ALTER TABLE", "AlterTableStmt", SUX, DDL,
	 {{"table", NULL, "users", SUX, 0}}, {{"SET PARAMETERS", NULL, SUX, 0}}},
	{"ALTER TABLE measurements ATTACH PARTITION measurements_y2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "measurements", SUX, 0}, {"table", NULL, "measurements_y2024", AX, SCAN}},
	 {{"ATTACH PARTITION", "measurements_y2024", SUX, 0}}},
	{"ALTER TABLE measurements DETACH PARTITION measurements_y2020",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "measurements", AX, 0}, {"table", NULL, "measurements_y2020", AX, 0}},
	 {{"DETACH PARTITION", "measurements_y2020", AX, 0}}},
	{"ALTER TABLE measurements DETACH PARTITION measurements_y2020 CONCURRENTLY",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | CONC | NOTX,
	 {{"table", NULL, "measurements", SUX, 0}, {"table", NULL, "measurements_y2020", AX, 0}},
	 {{"DETACH PARTITION CONCURRENTLY", "measurements_y2020", SUX, 0}}},
	{"ALTER TABLE orders DISABLE TRIGGER ALL",
	 "ALTER TABLE", "AlterTableStmt", SRX, DDL,
	 {{"table", NULL, "orders", SRX, 0}}, {{"DISABLE TRIGGER ALL", NULL, SRX, 0}}},
	{"ALTER TABLE orders ENABLE TRIGGER audit_trg",
	 "ALTER TABLE", "AlterTableStmt", SRX, DDL,
	 {{"table", NULL, "orders", SRX, 0}}, {{"ENABLE TRIGGER", "audit_trg", SRX, 0}}},
	{"ALTER TABLE logs SET UNLOGGED",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "logs", AX, RW}}, {{"SET UNLOGGED", NULL, AX, RW}}},
	{"ALTER TABLE logs SET LOGGED",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "logs", AX, RW}}, {{"SET LOGGED", NULL, AX, RW}}},
	{"ALTER TABLE logs SET TABLESPACE fast_ssd",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "logs", AX, RW}}, {{"SET TABLESPACE", "fast_ssd", AX, RW}}},
	{"ALTER TABLE logs OWNER TO app_owner",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "logs", AX, 0}, {"role", NULL, "app_owner", NONE, 0}}, {{"OWNER TO", NULL, AX, 0}}},
	{"ALTER TABLE orders REPLICA IDENTITY FULL",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "orders", AX, 0}}, {{"REPLICA IDENTITY", NULL, AX, 0}}},
	{"ALTER TABLE IF EXISTS app.users ALTER COLUMN bio SET STATISTICS 100, ADD COLUMN bio2 text",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL | IFEX,
	 {{"table", "app", "users", AX, 0}},
	 {{"SET STATISTICS", "bio", SUX, 0}, {"ADD COLUMN", "bio2", AX, 0}}},
	{"ALTER TABLE orders_2024 INHERIT orders",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "orders_2024", AX, 0}, {"table", NULL, "orders", SUX, 0}}, {{"INHERIT", NULL, AX, 0}}},
	{"ALTER TABLE orders ALTER CONSTRAINT orders_user_fk DEFERRABLE INITIALLY DEFERRED",
	 "ALTER TABLE", "AlterTableStmt", AX, DDL,
	 {{"table", NULL, "orders", AX, 0}}, {{"ALTER CONSTRAINT", "orders_user_fk", AX, 0}}},
	{"ALTER INDEX measurements_idx ATTACH PARTITION measurements_y2024_idx",
	 "ALTER INDEX", "AlterTableStmt", AX, DDL,
	 {{"index", NULL, "measurements_idx", SUX, 0}, {"index", NULL, "measurements_y2024_idx", AX, 0}},
	 {{"ATTACH PARTITION", "measurements_y2024_idx", SUX, 0}}},
	{"ALTER TABLE users SET SCHEMA archive",
	 "ALTER TABLE", "AlterObjectSchemaStmt", AX, DDL,
	 {{"table", NULL, "users", AX, 0}, {"schema", NULL, "archive", NONE, 0}}, {{"SET SCHEMA", NULL, AX, 0}}},
	{"ALTER INDEX idx_a RENAME TO idx_b",
	 "ALTER INDEX", "RenameStmt", SUX, DDL,
	 {{"index", NULL, "idx_a", SUX, 0}}, {{"RENAME TO", NULL, SUX, 0}}},

	/* ---- DROP, TRUNCATE */
	{"DROP TABLE IF EXISTS old_orders, app.old_users CASCADE",
	 "DROP TABLE", "DropStmt", AX, DDL | IFEX | CASCADE,
	 {{"table", NULL, "old_orders", AX, GONE}, {"table", "app", "old_users", AX, GONE}}, {{0}}},
	{"DROP TRIGGER IF EXISTS audit_trg ON app.orders",
	 "DROP TRIGGER", "DropStmt", AX, DDL | IFEX,
	 {{"table", "app", "orders", AX, 0}, {"trigger", NULL, "audit_trg", NONE, GONE}}, {{0}}},
	{"DROP SCHEMA legacy CASCADE",
	 "DROP SCHEMA", "DropStmt", NONE, DDL | CASCADE,
	 {{"schema", NULL, "legacy", NONE, GONE}}, {{0}}},
	{"DROP TYPE app.mood",
	 "DROP TYPE", "DropStmt", NONE, DDL,
	 {{"type", "app", "mood", NONE, GONE}}, {{0}}},
	{"DROP FUNCTION IF EXISTS app.f(integer)",
	 "DROP FUNCTION", "DropStmt", NONE, DDL | IFEX,
	 {{"function", "app", "f", NONE, GONE}}, {{0}}},
	{"TRUNCATE TABLE audit_log",
	 "TRUNCATE TABLE", "TruncateStmt", AX, DDL,
	 {{"table", NULL, "audit_log", AX, RW}}, {{0}}},
	{"TRUNCATE users, orders RESTART IDENTITY CASCADE",
	 "TRUNCATE TABLE", "TruncateStmt", AX, DDL | CASCADE,
	 {{"table", NULL, "users", AX, RW}, {"table", NULL, "orders", AX, RW}}, {{0}}},

	/* ---- maintenance */
	{"VACUUM orders",
	 "VACUUM", "VacuumStmt", SUX, NOTX,
	 {{"table", NULL, "orders", SUX, 0}}, {{0}}},
	{"VACUUM (FULL, ANALYZE) orders",
	 "VACUUM", "VacuumStmt", AX, NOTX,
	 {{"table", NULL, "orders", AX, RW}}, {{0}}},
	{"VACUUM FULL",
	 "VACUUM", "VacuumStmt", AX, NOTX, {{0}}, {{0}}},
	{"VACUUM (FULL false) orders",
	 "VACUUM", "VacuumStmt", SUX, NOTX,
	 {{"table", NULL, "orders", SUX, 0}}, {{0}}},
	{"ANALYZE orders",
	 "ANALYZE", "VacuumStmt", SUX, 0,
	 {{"table", NULL, "orders", SUX, 0}}, {{0}}},
	{"CLUSTER orders USING orders_pkey",
	 "CLUSTER", "ClusterStmt", AX, 0,
	 {{"table", NULL, "orders", AX, RW}}, {{0}}},
	{"CLUSTER",
	 "CLUSTER", "ClusterStmt", AX, NOTX, {{0}}, {{0}}},
	{"REINDEX INDEX idx_a",
	 "REINDEX", "ReindexStmt", AX, 0,
	 {{"index", NULL, "idx_a", AX, RW}}, {{0}}},
	{"REINDEX TABLE orders",
	 "REINDEX", "ReindexStmt", AX, 0,
	 {{"table", NULL, "orders", S, SCAN}}, {{0}}},
	{"REINDEX TABLE CONCURRENTLY app.orders",
	 "REINDEX", "ReindexStmt", SUX, CONC | NOTX,
	 {{"table", "app", "orders", SUX, SCAN}}, {{0}}},
	{"REINDEX (CONCURRENTLY) INDEX idx_a",
	 "REINDEX", "ReindexStmt", SUX, CONC | NOTX,
	 {{"index", NULL, "idx_a", SUX, RW}}, {{0}}},
	{"REINDEX SCHEMA app",
	 "REINDEX", "ReindexStmt", AX, NOTX,
	 {{"schema", NULL, "app", NONE, 0}}, {{0}}},
	{"REFRESH MATERIALIZED VIEW sales_summary",
	 "REFRESH MATERIALIZED VIEW", "RefreshMatViewStmt", AX, 0,
	 {{"materialized view", NULL, "sales_summary", AX, RW}}, {{0}}},
	{"REFRESH MATERIALIZED VIEW CONCURRENTLY app.sales_summary",
	 "REFRESH MATERIALIZED VIEW", "RefreshMatViewStmt", X, CONC,
	 {{"materialized view", "app", "sales_summary", X, 0}}, {{0}}},

	/* ---- triggers, sequences, comments, statistics, policies, domains */
	{"CREATE TRIGGER audit_trg AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit.log_change()",
	 "CREATE TRIGGER", "CreateTrigStmt", SRX, DDL,
	 {{"table", NULL, "orders", SRX, 0}, {"trigger", NULL, "audit_trg", NONE, NEW},
	  {"function", "audit", "log_change", NONE, 0}}, {{0}}},
	{"ALTER SEQUENCE orders_id_seq RESTART WITH 1000",
	 "ALTER SEQUENCE", "AlterSeqStmt", SRX, DDL,
	 {{"sequence", NULL, "orders_id_seq", SRX, 0}}, {{0}}},
	{"CREATE SEQUENCE IF NOT EXISTS app.invoice_seq",
	 "CREATE SEQUENCE", "CreateSeqStmt", NONE, DDL | IFNEX,
	 {{"sequence", "app", "invoice_seq", AX, NEW}}, {{0}}},
	{"COMMENT ON TABLE orders IS 'one row per order'",
	 "COMMENT", "CommentStmt", SUX, DDL,
	 {{"table", NULL, "orders", SUX, 0}}, {{0}}},
	{"COMMENT ON COLUMN app.orders.total IS 'in cents'",
	 "COMMENT", "CommentStmt", SUX, DDL,
	 {{"table", "app", "orders", SUX, 0}}, {{0}}},
	{"COMMENT ON FUNCTION audit.log_change() IS 'audit trigger'",
	 "COMMENT", "CommentStmt", NONE, DDL,
	 {{"function", "audit", "log_change", NONE, 0}}, {{0}}},
	{"CREATE STATISTICS IF NOT EXISTS orders_stats (dependencies) ON user_id, status FROM orders",
	 "CREATE STATISTICS", "CreateStatsStmt", SUX, DDL | IFNEX,
	 {{"table", NULL, "orders", SUX, 0}, {"other", NULL, "orders_stats", NONE, NEW}}, {{0}}},
	{"CREATE POLICY tenant_isolation ON orders USING (tenant_id = current_setting('app.tenant')::int)",
	 "CREATE POLICY", "CreatePolicyStmt", AX, DDL,
	 {{"table", NULL, "orders", AX, 0}, {"policy", NULL, "tenant_isolation", NONE, NEW}}, {{0}}},
	{"ALTER DOMAIN positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID",
	 "ALTER DOMAIN", "AlterDomainStmt", S, DDL | NOTVALID,
	 {{"type", NULL, "positive_amount", NONE, 0}}, {{0}}},

	/* ---- LOCK */
	{"LOCK TABLE orders IN SHARE MODE",
	 "LOCK TABLE", "LockStmt", S, 0,
	 {{"table", NULL, "orders", S, 0}}, {{0}}},
	{"LOCK orders, app.users",
	 "LOCK TABLE", "LockStmt", AX, 0,
	 {{"table", NULL, "orders", AX, 0}, {"table", "app", "users", AX, 0}}, {{0}}},
	{"LOCK TABLE orders IN ROW EXCLUSIVE MODE NOWAIT",
	 "LOCK TABLE", "LockStmt", RX, 0,
	 {{"table", NULL, "orders", RX, 0}}, {{0}}},

	/* ---- opaque */
	{"DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$",
	 "DO", "DoStmt", NONE, OPAQUE, {{0}}, {{0}}},
	{"CALL app.backfill_orders(1000)",
	 "CALL", "CallStmt", NONE, OPAQUE,
	 {{"function", "app", "backfill_orders", NONE, 0}}, {{0}}},
	{"SELECT backfill_batch(1000)",
	 "SELECT", "SelectStmt", NONE, OPAQUE, {{0}}, {{0}}},
	{"SELECT * FROM generate_series(1, 10)",
	 "SELECT", "SelectStmt", NONE, OPAQUE, {{0}}, {{0}}},
	{"SELECT count(*) FROM orders",
	 "SELECT", "SelectStmt", AS, OPAQUE,
	 {{"table", NULL, "orders", AS, 0}}, {{0}}},
	{"EXECUTE insert_order(1, 2)",
	 "EXECUTE", "ExecuteStmt", NONE, OPAQUE, {{0}}, {{0}}},

	/* ---- data */
	{"SELECT id, email FROM users WHERE id = $1",
	 "SELECT", "SelectStmt", AS, 0,
	 {{"table", NULL, "users", AS, 0}}, {{0}}},
	{"SELECT id FROM users WHERE email = 'a' FOR UPDATE",
	 "SELECT", "SelectStmt", RS, 0,
	 {{"table", NULL, "users", RS, 0}}, {{0}}},
	{"INSERT INTO orders (id, user_id) SELECT id, user_id FROM staging_orders",
	 "INSERT", "InsertStmt", RX, 0,
	 {{"table", NULL, "orders", RX, 0}, {"table", NULL, "staging_orders", AS, 0}}, {{0}}},
	{"UPDATE users SET active = false WHERE last_login < now() - interval '1 year'",
	 "UPDATE", "UpdateStmt", RX, 0,
	 {{"table", NULL, "users", RX, 0}}, {{0}}},
	{"DELETE FROM app.sessions WHERE expires_at < now()",
	 "DELETE", "DeleteStmt", RX, 0,
	 {{"table", "app", "sessions", RX, 0}}, {{0}}},
	{"MERGE INTO stock t USING deliveries d ON t.item = d.item WHEN MATCHED THEN UPDATE SET qty = t.qty + d.qty",
	 "MERGE", "MergeStmt", RX, 0,
	 {{"table", NULL, "stock", RX, 0}, {"table", NULL, "deliveries", AS, 0}}, {{0}}},
	{"WITH moved AS (DELETE FROM events_old RETURNING *) INSERT INTO events_archive SELECT * FROM moved",
	 "INSERT", "InsertStmt", RX, 0,
	 {{"table", NULL, "events_archive", RX, 0}, {"table", NULL, "events_old", RX, 0}}, {{0}}},
	{"SELECT * INTO archive_users FROM users",
	 "SELECT", "SelectStmt", AS, DDL,
	 {{"table", NULL, "archive_users", AX, NEW}, {"table", NULL, "users", AS, 0}}, {{0}}},
	{"COPY orders FROM STDIN",
	 "COPY", "CopyStmt", RX, 0,
	 {{"table", NULL, "orders", RX, 0}}, {{0}}},
	{"EXPLAIN SELECT * FROM orders",
	 "EXPLAIN", "ExplainStmt", AS, 0,
	 {{"table", NULL, "orders", AS, 0}}, {{0}}},
	{"EXPLAIN (ANALYZE, BUFFERS) SELECT backfill_batch(10)",
	 "EXPLAIN", "ExplainStmt", NONE, OPAQUE, {{0}}, {{0}}},

	/* ---- CREATE … AS, views */
	{"CREATE TABLE order_totals AS SELECT user_id, total FROM orders",
	 "CREATE TABLE AS", "CreateTableAsStmt", AS, DDL,
	 {{"table", NULL, "order_totals", AX, NEW}, {"table", NULL, "orders", AS, 0}}, {{0}}},
	{"CREATE VIEW active_users AS SELECT * FROM users WHERE active",
	 "CREATE VIEW", "ViewStmt", AS, DDL,
	 {{"view", NULL, "active_users", AX, NEW}, {"table", NULL, "users", AS, 0}}, {{0}}},
	{"CREATE OR REPLACE VIEW active_users AS SELECT id FROM users WHERE active",
	 "CREATE VIEW", "ViewStmt", AX, DDL,
	 {{"view", NULL, "active_users", AX, 0}, {"table", NULL, "users", AS, 0}}, {{0}}},
	{"CREATE MATERIALIZED VIEW sales_summary AS SELECT 1 AS x WITH NO DATA",
	 "CREATE MATERIALIZED VIEW", "CreateTableAsStmt", NONE, DDL,
	 {{"materialized view", NULL, "sales_summary", AX, NEW}}, {{0}}},

	/* ---- transaction control and session */
	{"BEGIN", "BEGIN", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"COMMIT", "COMMIT", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"END", "COMMIT", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"ROLLBACK", "ROLLBACK", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"SAVEPOINT before_ddl", "SAVEPOINT", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"RELEASE SAVEPOINT before_ddl", "RELEASE", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"ROLLBACK TO SAVEPOINT before_ddl", "ROLLBACK", "TransactionStmt", NONE, 0, {{0}}, {{0}}},
	{"COMMIT PREPARED 'tx1'", "COMMIT PREPARED", "TransactionStmt", NONE, NOTX, {{0}}, {{0}}},
	{"SET lock_timeout = '5s'", "SET", "VariableSetStmt", NONE, 0, {{0}}, {{0}}},
	{"SET LOCAL statement_timeout TO 0", "SET", "VariableSetStmt", NONE, 0, {{0}}, {{0}}},
	{"RESET ALL", "RESET", "VariableSetStmt", NONE, 0, {{0}}, {{0}}},
	{"SHOW lock_timeout", "SHOW", "VariableShowStmt", NONE, 0, {{0}}, {{0}}},
	{"DISCARD ALL", "DISCARD ALL", "DiscardStmt", NONE, NOTX, {{0}}, {{0}}},

	/* ---- schemas, extensions, types, functions, roles, grants, databases */
	{"CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION app_owner",
	 "CREATE SCHEMA", "CreateSchemaStmt", NONE, DDL | IFNEX,
	 {{"schema", NULL, "app", NONE, NEW}, {"role", NULL, "app_owner", NONE, 0}}, {{0}}},
	{"CREATE EXTENSION IF NOT EXISTS pgcrypto",
	 "CREATE EXTENSION", "CreateExtensionStmt", NONE, DDL | IFNEX,
	 {{"extension", NULL, "pgcrypto", NONE, NEW}}, {{0}}},
	{"CREATE TYPE app.mood AS ENUM ('sad', 'ok')",
	 "CREATE TYPE", "CreateEnumStmt", NONE, DDL,
	 {{"type", "app", "mood", NONE, NEW}}, {{0}}},
	{"ALTER TYPE app.mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'",
	 "ALTER TYPE", "AlterEnumStmt", NONE, DDL | IFNEX,
	 {{"type", "app", "mood", NONE, 0}}, {{0}}},
	{"CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i + 1'",
	 "CREATE FUNCTION", "CreateFunctionStmt", NONE, DDL,
	 {{"function", NULL, "add_one", NONE, NEW}}, {{0}}},
	{"CREATE OR REPLACE PROCEDURE app.backfill_orders(n int) LANGUAGE plpgsql AS $$ BEGIN END $$",
	 "CREATE PROCEDURE", "CreateFunctionStmt", NONE, DDL,
	 {{"function", "app", "backfill_orders", NONE, 0}}, {{0}}},
	{"CREATE ROLE app_reader LOGIN",
	 "CREATE ROLE", "CreateRoleStmt", NONE, DDL,
	 {{"role", NULL, "app_reader", NONE, NEW}}, {{0}}},
	{"ALTER ROLE app_reader SET statement_timeout = '1min'",
	 "ALTER ROLE", "AlterRoleSetStmt", NONE, DDL,
	 {{"role", NULL, "app_reader", NONE, 0}}, {{0}}},
	{"GRANT SELECT ON orders, app.users TO app_reader",
	 "GRANT", "GrantStmt", NONE, DDL,
	 {{"table", NULL, "orders", NONE, 0}, {"table", "app", "users", NONE, 0},
	  {"role", NULL, "app_reader", NONE, 0}}, {{0}}},
	{"REVOKE ALL ON ALL TABLES IN SCHEMA app FROM app_reader CASCADE",
	 "REVOKE", "GrantStmt", NONE, DDL | CASCADE,
	 {{"schema", NULL, "app", NONE, 0}, {"role", NULL, "app_reader", NONE, 0}}, {{0}}},
	{"CREATE DATABASE analytics",
	 "CREATE DATABASE", "CreatedbStmt", NONE, DDL | NOTX,
	 {{"database", NULL, "analytics", NONE, NEW}}, {{0}}},
	{"DROP DATABASE IF EXISTS analytics",
	 "DROP DATABASE", "DropdbStmt", NONE, DDL | NOTX | IFEX,
	 {{"database", NULL, "analytics", NONE, GONE}}, {{0}}},
	{"ALTER SYSTEM SET work_mem = '64MB'",
	 "ALTER SYSTEM", "AlterSystemStmt", NONE, DDL | NOTX, {{0}}, {{0}}},
};

/* ------------------------------------------------------------------ checking */

static int failures;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			print_error("  %s:%d: ", __FILE__, __LINE__);       \
			print_error(__VA_ARGS__);                           \
			print_error("\n");                                  \
			failures++;                                         \
		}                                                           \
	} while (0)

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const char *or_null(const char *s)
{
	return s ? s : "(null)";
}

static unsigned object_flags(const struct stmt_object *o)
{
	return (o->rewrite ? RW : 0) | (o->scan ? SCAN : 0) | (o->created ? NEW : 0) | (o->dropped ? GONE : 0);
}

static unsigned stmt_flags(const struct stmt_info *st)
{
	return (st->ddl ? DDL : 0) | (st->opaque ? OPAQUE : 0) | (st->concurrently ? CONC : 0) |
	       (st->not_valid ? NOTVALID : 0) | (st->if_exists ? IFEX : 0) |
	       (st->if_not_exists ? IFNEX : 0) | (st->cascade ? CASCADE : 0) |
	       (st->in_tx_block_ok ? 0 : NOTX);
}

static void check_case(const struct corpus_case *c)
{
	struct stmt_list l;
	int before = failures;

	assert_true(stmt_analyze(c->sql, &l));
	CHECK(!l.parse_error, "parse error: %s", or_null(l.error));
	CHECK(l.n == 1, "%d statements", l.n);
	if (l.n != 1) {
		print_error("    in: %s\n", c->sql);
		stmt_list_free(&l);
		return;
	}
	const struct stmt_info *st = &l.items[0];

	CHECK(str_eq(st->tag, c->tag), "tag %s, want %s", or_null(st->tag), c->tag);
	CHECK(str_eq(st->node, c->node), "node %s, want %s", or_null(st->node), c->node);
	CHECK(st->lock == c->lock, "lock %s, want %s", stmt_lock_name(st->lock), stmt_lock_name(c->lock));
	CHECK(stmt_flags(st) == c->flags, "flags 0x%x, want 0x%x", stmt_flags(st), c->flags);
	CHECK(str_eq(st->text, c->sql), "text '%s'", or_null(st->text));
	CHECK(st->tree != NULL && st->tree_len > 0, "no tree");
	CHECK(strlen(st->strict_id_hex) == 64 && strlen(st->fingerprint_hex) == 16, "identity hex");

	int nobj = 0;
	for (; nobj < 5 && c->objs[nobj].kind; nobj++) {
		const struct obj_x *x = &c->objs[nobj];
		const struct stmt_object *found = NULL;
		for (int i = 0; i < st->nobjects; i++)
			if (str_eq(st->objects[i].kind, x->kind) && str_eq(st->objects[i].schema, x->schema) &&
			    str_eq(st->objects[i].name, x->name))
				found = &st->objects[i];
		CHECK(found, "missing object %s %s.%s", x->kind, or_null(x->schema), x->name);
		if (!found)
			continue;
		CHECK(found->lock == x->lock, "object %s lock %s, want %s", x->name,
		      stmt_lock_name(found->lock), stmt_lock_name(x->lock));
		CHECK(object_flags(found) == x->flags, "object %s flags 0x%x, want 0x%x", x->name,
		      object_flags(found), x->flags);
	}
	CHECK(st->nobjects == nobj, "%d objects, want %d", st->nobjects, nobj);
	if (st->nobjects != nobj)
		for (int i = 0; i < st->nobjects; i++)
			print_error("    got object %s %s.%s\n", st->objects[i].kind,
				    or_null(st->objects[i].schema), st->objects[i].name);

	int nsub = 0;
	for (; nsub < 4 && c->subs[nsub].name; nsub++) {
		const struct sub_x *x = &c->subs[nsub];
		if (nsub >= st->nsubcmds)
			break;
		const struct stmt_subcmd *sc = &st->subcmds[nsub];
		unsigned flags = (sc->rewrite ? RW : 0) | (sc->scan ? SCAN : 0) | (sc->not_valid ? NV : 0);
		CHECK(str_eq(sc->name, x->name), "subcmd %d name %s, want %s", nsub, sc->name, x->name);
		CHECK(str_eq(sc->column, x->column), "subcmd %d column %s, want %s", nsub,
		      or_null(sc->column), or_null(x->column));
		CHECK(sc->lock == x->lock, "subcmd %d lock %s, want %s", nsub, stmt_lock_name(sc->lock),
		      stmt_lock_name(x->lock));
		CHECK(flags == x->flags, "subcmd %d flags 0x%x, want 0x%x", nsub, flags, x->flags);
	}
	CHECK(st->nsubcmds == nsub, "%d subcmds, want %d", st->nsubcmds, nsub);

	if (failures != before)
		print_error("    in: %s\n", c->sql);
	stmt_list_free(&l);
}

static void test_corpus(void **state)
{
	size_t n = sizeof corpus / sizeof *corpus;
	failures = 0;
	for (size_t i = 0; i < n; i++)
		check_case(&corpus[i]);
	print_message("corpus: %zu statements\n", n);
	assert_true(n >= 60);
	assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------ spans, errors, sizes */

/* Every statement's span must be exactly its text inside the whole. */
static void assert_span(const char *sql, const struct stmt_info *st, const char *text, int line, int column)
{
	assert_string_equal(st->text, text);
	assert_int_equal(st->length, strlen(text));
	assert_memory_equal(sql + st->offset, text, st->length);
	assert_int_equal(st->line, line);
	assert_int_equal(st->column, column);
}

static void test_multi_statement(void **state)
{
	const char *sql =
		"BEGIN;\n"
		"ALTER TABLE t ADD COLUMN c int;\n"
		"  -- ddlguard:allow require-concurrent-index\n"
		"  CREATE INDEX CONCURRENTLY i ON t (c);   \n"
		"SAVEPOINT s1; RELEASE s1;\n"
		"COMMIT;\n";
	struct stmt_list l;
	assert_true(stmt_analyze(sql, &l));
	assert_false(l.parse_error);
	assert_int_equal(l.n, 6);
	assert_span(sql, &l.items[0], "BEGIN", 1, 1);
	assert_span(sql, &l.items[1], "ALTER TABLE t ADD COLUMN c int", 2, 1);
	/* Leading comments stay in the statement: inline overrides live there. */
	assert_span(sql, &l.items[2],
		    "-- ddlguard:allow require-concurrent-index\n  CREATE INDEX CONCURRENTLY i ON t (c)", 3, 3);
	assert_span(sql, &l.items[3], "SAVEPOINT s1", 5, 1);
	assert_span(sql, &l.items[4], "RELEASE s1", 5, 15);
	assert_span(sql, &l.items[5], "COMMIT", 6, 1);

	assert_int_equal(l.items[0].txctl, STMT_TX_BEGIN);
	assert_int_equal(l.items[3].txctl, STMT_TX_SAVEPOINT);
	assert_string_equal(l.items[3].savepoint, "s1");
	assert_int_equal(l.items[4].txctl, STMT_TX_RELEASE);
	assert_string_equal(l.items[4].savepoint, "s1");
	assert_int_equal(l.items[5].txctl, STMT_TX_COMMIT);
	assert_null(l.items[5].savepoint);
	assert_false(l.items[2].in_tx_block_ok);
	assert_string_equal(l.items[2].tag, "CREATE INDEX");
	stmt_list_free(&l);

	/* The last statement without ';' runs to the end (stmt_len 0). */
	assert_true(stmt_analyze("ROLLBACK TO before_ddl ;\n\tROLLBACK", &l));
	assert_int_equal(l.n, 2);
	assert_int_equal(l.items[0].txctl, STMT_TX_ROLLBACK_TO);
	assert_string_equal(l.items[0].savepoint, "before_ddl");
	assert_span("ROLLBACK TO before_ddl ;\n\tROLLBACK", &l.items[1], "ROLLBACK", 2, 2);
	assert_int_equal(l.items[1].txctl, STMT_TX_ROLLBACK);
	stmt_list_free(&l);

	/* Empty text and comment-only text: no statements, no error. */
	assert_true(stmt_analyze("  -- nothing here\n", &l));
	assert_false(l.parse_error);
	assert_int_equal(l.n, 0);
	stmt_list_free(&l);
}

static void test_parse_error(void **state)
{
	struct stmt_list l;
	assert_true(stmt_analyze("ALTER TABLE t ADD COLUMN;\nSELECT 1", &l));
	assert_true(l.parse_error);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
	assert_non_null(l.error);
	assert_non_null(strstr(l.error, "syntax error"));
	assert_int_equal(l.error_line, 1);
	assert_int_equal(l.error_column, 25);
	stmt_list_free(&l);

	/* The error position is in characters, on the right line. */
	assert_true(stmt_analyze("SELECT 'é';\nSELECT 'ü' FROM WHERE", &l));
	assert_true(l.parse_error);
	assert_int_equal(l.error_line, 2);
	assert_int_equal(l.error_column, 17);
	stmt_list_free(&l);
}

static void test_large_statement(void **state)
{
	/* About 100 KB: an INSERT with 6000 rows, then a default of 100 000 characters. */
	size_t cap = 200000, len = 0;
	char *sql = malloc(cap);
	assert_non_null(sql);
	len += (size_t)snprintf(sql, cap, "INSERT INTO big_table (id, label) VALUES ");
	for (int i = 0; i < 6000; i++)
		len += (size_t)snprintf(sql + len, cap - len, "%s(%d, 'row %d')", i ? ", " : "", i, i);
	assert_true(len > 100000);

	struct stmt_list l;
	assert_true(stmt_fast_path(sql, len));
	assert_true(stmt_analyze(sql, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.items[0].length, len);
	assert_string_equal(l.items[0].tag, "INSERT");
	assert_int_equal(l.items[0].lock, STMT_LOCK_ROW_EXCLUSIVE);
	stmt_list_free(&l);

	len = (size_t)snprintf(sql, cap, "ALTER TABLE big_table ADD COLUMN note text DEFAULT '");
	memset(sql + len, 'x', 100000);
	len += 100000;
	len += (size_t)snprintf(sql + len, cap - len, "'");
	assert_true(stmt_analyze(sql, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.items[0].length, len);
	assert_int_equal(l.items[0].nsubcmds, 1);
	assert_false(l.items[0].subcmds[0].rewrite);
	assert_true(l.items[0].tree_len > 100000);
	stmt_list_free(&l);
	free(sql);
}

static void test_unicode(void **state)
{
	const char *sql =
		"CREATE TABLE \"Ünïcødé\" (\"naïve\" text); ALTER TABLE \"Ünïcødé\" ADD COLUMN straße int;\n"
		"CREATE INDEX CONCURRENTLY \"idx_日本\" ON \"Ünïcødé\" (straße)";
	struct stmt_list l;
	assert_true(stmt_analyze(sql, &l));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].objects[0].name, "Ünïcødé");
	assert_true(l.items[0].objects[0].created);
	/* Column 40: `CREATE TABLE "Ünïcødé" ("naïve" text); ` is 39 characters, 44 bytes. */
	assert_int_equal(l.items[1].line, 1);
	assert_int_equal(l.items[1].column, 40);
	assert_int_equal(l.items[1].offset, 44);
	assert_int_equal(l.items[1].nsubcmds, 1);
	assert_string_equal(l.items[1].subcmds[0].column, "straße");
	assert_int_equal(l.items[2].line, 2);
	assert_int_equal(l.items[2].column, 1);
	assert_string_equal(l.items[2].objects[1].name, "idx_日本");
	assert_int_equal(l.items[2].objects[0].lock, STMT_LOCK_SHARE_UPDATE_EXCLUSIVE);
	stmt_list_free(&l);
}

/* ------------------------------------------------------------------ identities */

static void analyze_one(const char *sql, struct stmt_list *l, int want)
{
	assert_true(stmt_analyze(sql, l));
	assert_false(l->parse_error);
	assert_int_equal(l->n, want);
}

static void test_identities(void **state)
{
	struct stmt_list a, b, c, d, e;
	analyze_one("ALTER TABLE t ADD COLUMN c int DEFAULT 5", &a, 1);
	analyze_one("alter   table t\n\tadd column c INT default 5 -- why: backfill later", &b, 1);
	analyze_one("/* lead */ ALTER TABLE t ADD COLUMN c int DEFAULT 6", &c, 1);
	analyze_one("SELECT 1;\n\nALTER TABLE t ADD COLUMN c int DEFAULT 5;", &d, 2);
	analyze_one("ALTER TABLE u ADD COLUMN c int DEFAULT 5", &e, 1);

	const struct stmt_info *sa = &a.items[0], *sb = &b.items[0], *sc = &c.items[0],
			       *sd = &d.items[1], *se = &e.items[0];

	/* Whitespace, case of keywords and comments do not change the strict id… */
	assert_memory_equal(sa->strict_id, sb->strict_id, 32);
	assert_string_equal(sa->strict_id_hex, sb->strict_id_hex);
	assert_int_equal(sa->tree_len, sb->tree_len);
	assert_memory_equal(sa->tree, sb->tree, sa->tree_len);
	/* …nor does the statement's place in a longer text (locations are zeroed). */
	assert_string_equal(sa->strict_id_hex, sd->strict_id_hex);
	/* A different constant does; the fingerprint ignores constants. */
	assert_string_not_equal(sa->strict_id_hex, sc->strict_id_hex);
	assert_true(sa->fingerprint == sb->fingerprint);
	assert_true(sa->fingerprint == sc->fingerprint);
	assert_string_equal(sa->fingerprint_hex, sc->fingerprint_hex);
	/* A different table changes both. */
	assert_string_not_equal(sa->strict_id_hex, se->strict_id_hex);
	assert_true(sa->fingerprint != se->fingerprint);

	/* The hex forms spell the binary ones. */
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sa->strict_id[i]);
	assert_string_equal(hex, sa->strict_id_hex);
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sa->fingerprint);
	assert_string_equal(hex, sa->fingerprint_hex);
	assert_true(sa->fingerprint != 0);

	stmt_list_free(&a);
	stmt_list_free(&b);
	stmt_list_free(&c);
	stmt_list_free(&d);
	stmt_list_free(&e);
}

/* ------------------------------------------------------------------ fast path */

static void test_fast_path(void **state)
{
	static const char *const yes[] = {
		"SELECT 1",
		"sElEcT 1;",
		"select 1;  \n\t",
		"-- c\nselect 1",
		"  -- a\n-- b\n\tINSERT INTO t VALUES (1)",
		"UPDATE t SET a = 1 WHERE id = $1",
		"DELETE FROM t WHERE id = 1",
		"VALUES (1), (2)",
		"TABLE t",
		"FETCH 10 FROM c",
		"MOVE NEXT IN c",
		"CLOSE c",
		"SHOW work_mem",
		"select(1)",
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		"SELECT intox, into_y FROM t",
		"insert into t select 1",
	};
	static const char *const no[] = {
		"select 1; drop table t",
		"/* */ drop table t",
		"select 1 /* c */",
		"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
		"with x as (select 1) select * from x",
		"EXPLAIN ANALYZE SELECT 1",
		"select ';'",
		"SELECT * INTO new_t FROM t",
		"select 1 INTO x",
		"select 1 into\nx",
		"DROP TABLE t",
		"CREATE TABLE t (a int)",
		"ALTER TABLE t ADD c int",
		"BEGIN",
		"DO $$ BEGIN END $$",
		"CALL p()",
		"VACUUM",
		"",
		"   \n",
		"-- only a comment",
		"selectx 1",
		"select_1",
		"(select 1)",
		"select 1;;",
		"SELECT * FROM t; -- trailing comment",
		"select 1 -- ; drop table t\n",
		"insertx into t values (1)",
	};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		if (!stmt_fast_path(yes[i], strlen(yes[i])))
			fail_msg("fast path refused: %s", yes[i]);
	}
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
		if (stmt_fast_path(no[i], strlen(no[i])))
			fail_msg("fast path took: %s", no[i]);
	}
	/* A NUL inside the text: the server would read a different statement. */
	static const char nul[] = "select 1\0; drop table t";
	assert_false(stmt_fast_path(nul, sizeof nul - 1));
	/* Only the given length counts. */
	assert_true(stmt_fast_path("select 1; drop table t", 9));
}

static void test_lock_names(void **state)
{
	assert_string_equal(stmt_lock_name(STMT_LOCK_NONE), "NONE");
	assert_string_equal(stmt_lock_name(STMT_LOCK_ACCESS_SHARE), "ACCESS SHARE");
	assert_string_equal(stmt_lock_name(STMT_LOCK_SHARE_UPDATE_EXCLUSIVE), "SHARE UPDATE EXCLUSIVE");
	assert_string_equal(stmt_lock_name(STMT_LOCK_SHARE_ROW_EXCLUSIVE), "SHARE ROW EXCLUSIVE");
	assert_string_equal(stmt_lock_name(STMT_LOCK_ACCESS_EXCLUSIVE), "ACCESS EXCLUSIVE");
	assert_string_equal(stmt_lock_name((enum stmt_lock)99), "?");
}

/* ------------------------------------------------------------------ tree.c */

/* An allocator that counts live bytes, to show the unpacked tree goes through it and is
 * all given back. */
static size_t live_bytes;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	if (ptr)
		live_bytes -= osize;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p)
		live_bytes += nsize;
	else if (ptr)
		live_bytes += osize;
	return p;
}

static const char tree_chunk[] =
	"local t = tree\n"
	"assert(t.node_type == 'AlterTableStmt', t.node_type)\n"
	"assert(t.AlterTableStmt == t and t.SelectStmt == nil)\n"
	"assert(t.relation.relname == 'orders' and t.relation.schemaname == 'app')\n"
	"assert(t.relation.catalogname == nil)\n"
	"assert(t.relation == t.relation)\n"
	"assert(t.objtype == 'OBJECT_TABLE' and t.missing_ok == false)\n"
	"assert(#t.cmds == 2)\n"
	"local c1 = t.cmds[1]\n"
	"assert(c1.node_type == 'AlterTableCmd' and c1.subtype == 'AT_AddColumn')\n"
	"assert(c1.def.node_type == 'ColumnDef' and c1.def.colname == 'total')\n"
	"assert(c1.def.ColumnDef.colname == 'total')\n"
	"local names = {}\n"
	"for i, n in ipairs(c1.def.type_name.names) do names[i] = n.sval end\n"
	"assert(table.concat(names, '.') == 'pg_catalog.numeric')\n"
	"local k = c1.def.constraints[1].raw_expr\n"
	"assert(c1.def.constraints[1].contype == 'CONSTR_DEFAULT')\n"
	"assert(k.node_type == 'A_Const' and k.ival.ival == 5 and k.fval == nil)\n"
	"assert(k.location == 0)\n"
	"local c2 = t.cmds[2]\n"
	"assert(c2.subtype == 'AT_DropColumn' and c2.name == 'legacy')\n"
	"assert(c2.behavior == 'DROP_CASCADE' and c2.missing_ok == true)\n"
	"assert(t.cmds[3] == nil and t.cmds[0] == nil and t.cmds.x == nil)\n"
	"assert(t.no_such_field == nil and t[1] == nil)\n"
	"local keys = {}\n"
	"for key in pairs(t) do keys[#keys + 1] = key end\n"
	"assert(table.concat(keys, ',') == 'node_type,relation,cmds,objtype', table.concat(keys, ','))\n"
	"local n = 0\n"
	"for i, cmd in pairs(t.cmds) do n = n + i end\n"
	"assert(n == 3)\n"
	"assert(tostring(t) == 'AlterTableStmt' and tostring(t.cmds) == 'list of 2')\n"
	"assert(getmetatable(t) == 'ddlguard.tree')\n"
	"assert(not pcall(function() t.relation = nil end))\n"
	"assert(not pcall(setmetatable, t, {}))\n"
	"kept = t.cmds[1].def\n"
	"tree = nil\n"
	"return c1.def.colname .. '/' .. #t.cmds\n";

static void test_tree_lua(void **state)
{
	struct stmt_list l;
	assert_true(stmt_analyze("ALTER TABLE app.orders ADD COLUMN total numeric DEFAULT 5, "
				 "DROP COLUMN IF EXISTS legacy CASCADE", &l));
	assert_int_equal(l.n, 1);

	live_bytes = 0;
	lua_State *L = lua_newstate(counting_alloc, NULL);
	assert_non_null(L);
	luaL_openlibs(L);
	size_t before = live_bytes;
	tree_push(L, l.items[0].tree, l.items[0].tree_len);
	/* The tree is a copy: the statement list may go before the Lua value does. */
	stmt_list_free(&l);
	assert_int_equal(lua_type(L, -1), LUA_TUSERDATA);
	assert_true(live_bytes > before + 500);   /* the unpacked tree is on Lua's allocator */
	lua_setglobal(L, "tree");

	if (luaL_loadstring(L, tree_chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	assert_string_equal(lua_tostring(L, -1), "total/2");
	lua_pop(L, 1);

	/* A view outlives every other reference to the tree: it keeps the root alive. */
	lua_gc(L, LUA_GCCOLLECT, 0);
	lua_gc(L, LUA_GCCOLLECT, 0);
	if (luaL_dostring(L, "return kept.colname .. ':' .. kept.type_name.names[2].sval") != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	assert_string_equal(lua_tostring(L, -1), "total:numeric");
	lua_pop(L, 1);

	/* Bytes that are not a parse tree give nil, and nothing leaks. */
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
	tree_push(L, junk, sizeof junk);
	assert_true(lua_isnil(L, -1));
	tree_push(L, NULL, 0);
	assert_true(lua_isnil(L, -1));
	lua_pop(L, 2);

	lua_close(L);
	/* Every block protobuf-c took through the Lua allocator was given back. */
	assert_int_equal(live_bytes, 0);
}

/* Another statement shape through the view: a DropStmt's nested Lists and a SELECT. */
static void test_tree_shapes(void **state)
{
	struct stmt_list l;
	assert_true(stmt_analyze("DROP TABLE app.a, b CASCADE; SELECT x FROM t ORDER BY x DESC", &l));
	assert_int_equal(l.n, 2);
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	tree_push(L, l.items[0].tree, l.items[0].tree_len);
	lua_setglobal(L, "drop");
	tree_push(L, l.items[1].tree, l.items[1].tree_len);
	lua_setglobal(L, "sel");
	stmt_list_free(&l);

	const char *chunk =
		"assert(drop.node_type == 'DropStmt' and drop.remove_type == 'OBJECT_TABLE')\n"
		"assert(drop.behavior == 'DROP_CASCADE' and #drop.objects == 2)\n"
		"local o = drop.objects[1]\n"
		"assert(o.node_type == 'List' and o.items[1].sval == 'app' and o.items[2].sval == 'a')\n"
		"assert(drop.objects[2].items[1].sval == 'b')\n"
		"local sb = sel.sort_clause[1]\n"
		"assert(sb.node_type == 'SortBy' and sb.sortby_dir == 'SORTBY_DESC')\n"
		"assert(sb.node.node_type == 'ColumnRef' and sb.node.fields[1].sval == 'x')\n"
		"assert(sel.from_clause[1].relname == 't')\n"
		"return 'ok'\n";
	if (luaL_dostring(L, chunk) != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	assert_string_equal(lua_tostring(L, -1), "ok");
	lua_close(L);
}

/* Every corpus statement's tree, walked whole from Lua through pairs() and ipairs():
 * every field type and node shape the corpus has goes through tree.c once. */
static void test_tree_walk_corpus(void **state)
{
	static const char walker[] =
		"local function walk(v, depth)\n"
		"  assert(depth < 200)\n"
		"  local n = 1\n"
		"  if type(v) ~= 'userdata' then return n end\n"
		"  if v.node_type then\n"
		"    assert(v[v.node_type] == v)\n"
		"    for k, x in pairs(v) do assert(type(k) == 'string'); n = n + walk(x, depth + 1) end\n"
		"  else\n"
		"    local seen = 0\n"
		"    for i = 1, #v do n = n + walk(v[i], depth + 1) end\n"
		"    for i, x in pairs(v) do assert(x ~= nil and x == v[i]); seen = seen + 1 end\n"
		"    assert(seen <= #v)\n"
		"  end\n"
		"  return n\n"
		"end\n"
		"return walk(tree, 0)\n";
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	assert_int_equal(luaL_loadstring(L, walker), LUA_OK);
	int walker_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) {
		struct stmt_list l;
		assert_true(stmt_analyze(corpus[i].sql, &l));
		assert_int_equal(l.n, 1);
		tree_push(L, l.items[0].tree, l.items[0].tree_len);
		stmt_list_free(&l);
		assert_int_equal(lua_type(L, -1), LUA_TUSERDATA);
		lua_setglobal(L, "tree");
		lua_rawgeti(L, LUA_REGISTRYINDEX, walker_ref);
		if (lua_pcall(L, 0, 1, 0) != LUA_OK)
			fail_msg("%s: %s", corpus[i].sql, lua_tostring(L, -1));
		assert_true(lua_tointeger(L, -1) > 1);
		lua_pop(L, 1);
	}
	lua_close(L);
}

/* A text nested deeper than the analysis can take is refused (the guard denies it) rather
 * than overflowing the stack: 8,000 unary '+' crashed protobuf-c's recursive unpack (found
 * by fuzz_statement). */
static void test_too_deep_refused(void **state)
{
	(void)state;
	size_t n = 8000;
	char *sql = malloc(n + 16);
	assert_non_null(sql);
	strcpy(sql, "SELECT ");
	memset(sql + 7, '+', n);
	strcpy(sql + 7 + n, "1");
	struct stmt_list l;
	assert_false(stmt_analyze(sql, &l));
	assert_true(l.too_deep);
	assert_int_equal(l.n, 0);
	/* Deep, within the limit: analysed. */
	strcpy(sql + 7 + 1000, "1");
	assert_true(stmt_analyze(sql, &l));
	assert_false(l.too_deep);
	assert_int_equal(l.n, 1);
	stmt_list_free(&l);
	free(sql);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_multi_statement),
		cmocka_unit_test(test_parse_error),
		cmocka_unit_test(test_large_statement),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_fast_path),
		cmocka_unit_test(test_lock_names),
		cmocka_unit_test(test_tree_lua),
		cmocka_unit_test(test_tree_shapes),
		cmocka_unit_test(test_tree_walk_corpus),
		cmocka_unit_test(test_too_deep_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
