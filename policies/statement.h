/*
 * statement — what a Query or Parse text does, from PostgreSQL's own parser (libpg_query).
 *
 * stmt_analyze() splits a text into statements and describes each one: its span, command
 * tag, node type, the relations and other objects it touches, the lock it takes on each
 * (ALTER TABLE per sub-command, after reference/rules-catalog.md appendix A), whether it
 * rewrites or scans a table, its flags, whether it may run in a transaction block, the
 * libpg_query fingerprint and a strict id (SHA-256 of the parse tree without locations).
 * It never touches sockets or Lua; the parse tree is kept as protobuf bytes so that the
 * Lua API can convert it lazily (tree.c).
 *
 * stmt_fast_path() answers, without parsing, whether a text is certainly one statement
 * that cannot change a schema (plain SELECT/INSERT/UPDATE/DELETE…), so DML pays nothing.
 */
#ifndef DDLG_STATEMENT_H
#define DDLG_STATEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Table lock modes, weakest to strongest, numbered like PostgreSQL's LOCKMODE
 * (NoLock 0, AccessShareLock 1 … AccessExclusiveLock 8). */
enum stmt_lock {
	STMT_LOCK_NONE = 0,
	STMT_LOCK_ACCESS_SHARE,
	STMT_LOCK_ROW_SHARE,
	STMT_LOCK_ROW_EXCLUSIVE,
	STMT_LOCK_SHARE_UPDATE_EXCLUSIVE,
	STMT_LOCK_SHARE,
	STMT_LOCK_SHARE_ROW_EXCLUSIVE,
	STMT_LOCK_EXCLUSIVE,
	STMT_LOCK_ACCESS_EXCLUSIVE,
};

enum stmt_txctl {
	STMT_TX_NONE = 0, STMT_TX_BEGIN, STMT_TX_COMMIT, STMT_TX_ROLLBACK, STMT_TX_SAVEPOINT,
	STMT_TX_RELEASE, STMT_TX_ROLLBACK_TO, STMT_TX_PREPARE, STMT_TX_COMMIT_PREPARED,
	STMT_TX_ROLLBACK_PREPARED,
};

/* One object a statement touches. */
struct stmt_object {
	char *schema;            /* as written; NULL when unqualified (owned) */
	char *name;              /* (owned) */
	const char *kind;        /* static: "table", "index", "sequence", "view", "materialized view",
				    "function", "type", "schema", "extension", "role", "database",
				    "trigger", "policy", "constraint", "column", "other" */
	enum stmt_lock lock;     /* lock taken on it (relations), STMT_LOCK_NONE otherwise */
	bool rewrite;            /* the statement rewrites this table */
	bool scan;               /* the statement scans it (validation, index build) under its lock */
	bool created;            /* the statement creates this object */
	bool dropped;            /* the statement drops it */
};

/* One ALTER TABLE sub-command (AT_AddColumn …). */
struct stmt_subcmd {
	const char *name;        /* static, e.g. "ADD COLUMN", "SET NOT NULL", "ALTER COLUMN TYPE" */
	char *column;            /* column or constraint name when there is one (owned) */
	enum stmt_lock lock;
	bool rewrite;
	bool scan;
	bool not_valid;
};

struct stmt_info {
	size_t offset, length;   /* byte span of the statement in the analysed text */
	int line, column;        /* 1-based position of the first byte */
	char *text;              /* the statement's text (owned) */
	const char *tag;         /* command tag, e.g. "ALTER TABLE", "CREATE INDEX" (static) */
	const char *node;        /* parse node, e.g. "AlterTableStmt" (static) */
	bool ddl;                /* may change the schema (CREATE/ALTER/DROP/…, TRUNCATE, …) */
	bool opaque;             /* DO, CALL, SELECT of a function, EXECUTE: may hide DDL */
	bool concurrently, not_valid, if_exists, if_not_exists, cascade;
	bool in_tx_block_ok;     /* false for CREATE INDEX CONCURRENTLY, VACUUM, CREATE DATABASE… */
	enum stmt_txctl txctl;
	char *savepoint;         /* name for SAVEPOINT / RELEASE / ROLLBACK TO (owned) */
	enum stmt_lock lock;     /* strongest lock on anything that existed before the statement:
				    objects it creates are left out (created), relations it
				    cannot name are counted (REINDEX TABLE's indexes, every table
				    of a bare VACUUM FULL); see statement.c */
	int nobjects;
	struct stmt_object *objects;   /* (owned) */
	int nsubcmds;
	struct stmt_subcmd *subcmds;   /* ALTER TABLE only (owned) */
	uint64_t fingerprint;
	char fingerprint_hex[17];
	uint8_t strict_id[32];
	char strict_id_hex[65];
	uint8_t *tree;           /* protobuf (pg_query.ParseResult with this one RawStmt) (owned) */
	size_t tree_len;
};

struct stmt_list {
	int n;
	struct stmt_info *items;       /* (owned) */
	bool parse_error;              /* the text does not parse: the server will say why */
	char *error;                   /* libpg_query's message (owned) */
	int error_line, error_column;
	bool too_deep;                 /* stmt_analyze returned false: nested deeper than it analyses */
};

/* Analyse `sql` (NUL-terminated). False on out-of-memory, and for a text nested deeper than
 * STMT_MAX_DEPTH (out->too_deep; nothing to free either way); a text that does not parse
 * returns true with out->parse_error set. */
bool stmt_analyze(const char *sql, struct stmt_list *out);
/* Protobuf nesting levels of a parse tree stmt_analyze accepts (about half as many levels
 * of nested expressions). */
#define STMT_MAX_DEPTH 4000
void stmt_list_free(struct stmt_list *l);

/* True when `sql` is certainly a single statement that cannot change a schema. Never
 * true by mistake; may be false for harmless text (which then gets parsed). */
bool stmt_fast_path(const char *sql, size_t len);
/* The same, but with writes = false INSERT, UPDATE and DELETE are never fast-pathed. */
bool stmt_fast_path_ex(const char *sql, size_t len, bool writes);

const char *stmt_lock_name(enum stmt_lock l);

/* `sql` with its constants replaced by $1, $2 … (libpg_query's normalize), malloc'd; NULL on
 * failure. Used to keep secrets (passwords) out of records. */
char *stmt_normalize(const char *sql);

/* The migration tool whose bookkeeping table this is ("flyway", "alembic", …), or NULL. */
const char *stmt_bookkeeping_tool(const char *schema, const char *name);

/*
 * Does this statement go to the policies even when they do not ask for DML? Schema
 * changes, opaque statements (DO, CALL, function calls), anything that takes SHARE UPDATE
 * EXCLUSIVE or stronger (VACUUM FULL, CLUSTER, REINDEX, REFRESH, LOCK) and anything that
 * cannot run in a transaction block.
 */
static inline bool stmt_guarded(const struct stmt_info *st)
{
	return st->ddl || st->opaque || st->lock >= STMT_LOCK_SHARE_UPDATE_EXCLUSIVE || !st->in_tx_block_ok;
}

/* Writes and settings: what policies that watch writes (`see_writes`) also get. */
static inline bool stmt_is_write(const struct stmt_info *st)
{
	return st->lock == STMT_LOCK_ROW_EXCLUSIVE || !strcmp(st->tag, "SET") || !strcmp(st->tag, "RESET");
}   /* "ACCESS EXCLUSIVE" … */

#endif
