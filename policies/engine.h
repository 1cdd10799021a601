/*
 * engine — the Lua 5.4 policy engine: loads policy files into sandboxes and asks them.
 *
 * One lua_State per engine; each policy file runs in its own environment table with a
 * copy of the safe standard library (no io, no os but time/clock/date, no require, no
 * bytecode, no debug, no finalizers). Every call runs protected, under an instruction
 * budget, a wall-clock time limit and a memory cap; an error, an overrun or a result that
 * is not a decision counts as a policy failure, which denies (policy_failure = closed, the
 * default) or allows and logs (open). Nothing a policy does can end the process or hold
 * the event loop much past the time limit. See docs/policies.md, "The sandbox".
 *
 * Hooks a policy file may define (all optional):
 *   on_connect(session)          -> decision      (a deny refuses the login)
 *   on_statement(stmt, session)  -> decision(s)
 *   on_commit(tx, session)                        (informational)
 * Decisions are built with allow(), deny{…}, warn(…) and set{…}; see docs/policies.md.
 */
#ifndef DDLG_ENGINE_H
#define DDLG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "policies/statement.h"
#include "policies/verdict.h"

struct policy_engine;

struct policy_options {
	char **files;               /* policy files in evaluation order */
	int nfiles;
	bool fail_open;             /* policy_failure = open */
	long budget;                /* instructions per call */
	long time_limit_ms;         /* wall-clock time per call (0: 1000) */
	size_t mem_limit;           /* bytes the Lua state may use in all */
	/* The shipped rule library (lua-scripts/): loaded when profile is not NULL or "off". */
	const char *library_dir;    /* holds library.lua and rules/<id>.lua */
	const char *profile;        /* "none", "default" or "strict" */
	const char *rule_levels;    /* "[env/]rule-id:deny|warn|off, …" */
	long small_table_rows;
	const char *lock_timeout;       /* the library's lock_timeout, e.g. "2s" */
	const char *statement_timeout;  /* ... and statement_timeout */
};

/* A DDL statement already run in the session's current transaction. */
struct policy_tx_stmt {
	char *tag;
	char *text;
	char *strict_id;
	char *fingerprint;          /* (the ledger's "nearest statement" hint) */
	char *objects;              /* "schema.name,name" as written */
	bool exempt;                /* touches a migration tool's bookkeeping: no staging-first */
	unsigned long seq;          /* never reused within a session: caches key on it */
};

/* A session holding (or waiting for) a lock on a relation. */
struct policy_holder {
	int pid;
	char mode[32];              /* "AccessShareLock" … */
	bool granted;
	char application_name[64];
	char state[32];             /* "active", "idle in transaction" … */
	double xact_age;            /* seconds since its transaction began (-1 unknown) */
	char query[160];            /* the start of its current or last query */
};

#define POLICY_MAX_HOLDERS 16

/* Live facts about one relation, fetched from the server before the policies run. */
struct policy_facts {
	bool exists;
	char kind;                  /* pg_class.relkind: 'r' table, 'p' partitioned, 'i' index … */
	long long rows;             /* planner estimate; -1 when never analysed */
	long long bytes;            /* pg_total_relation_size */
	int indexes;
	int nholders;
	struct policy_holder holders[POLICY_MAX_HOLDERS];
};

/* A statement waiting for a lock, as the lock monitor saw it (on_lock_wait). */
struct policy_lock_wait {
	bool waiting;
	double waited;              /* seconds */
	char mode[32];              /* the lock it waits for, e.g. "AccessExclusiveLock" */
	char relation[256];
	int nblockers, nqueued;
	struct policy_holder blockers[POLICY_MAX_HOLDERS];
	struct policy_holder queued[POLICY_MAX_HOLDERS];   /* xact_age: seconds waited */
};

/* What a session tells its policies. Strings belong to the caller. */
struct policy_session {
	const char *user, *database, *application_name, *client_addr, *environment;
	bool tls;
	char tx_status;             /* 'I' idle, 'T' in a transaction block, 'E' failed */
	int ntx;
	const struct policy_tx_stmt *tx;   /* DDL run in the current transaction */
	int ncreated;
	char *const *created;       /* objects created in this transaction/session: "schema.name" or "name" */
	/* facts(name) for policies; NULL when no database is reachable (ddlguard check). */
	bool (*facts)(void *arg, const char *name, struct policy_facts *out);
	void *facts_arg;
	/* Identifies `created` and `tx` as they stand, for the engine's per-session caches:
	 * never the same for two sessions (a session's address can be reused by the next
	 * one), and changed whenever `created` loses entries (a rollback), since the list may
	 * then grow back to the same length with other names. 0: do not cache. */
	uint64_t cache_key;
};

/* The failure's "file:line: message", for logs; valid until the next call. */
struct policy_engine *policy_engine_load(const struct policy_options *o, char *err, size_t errlen);
void policy_engine_free(struct policy_engine *e);

bool policy_engine_wants_dml(const struct policy_engine *e);
/* A policy or rule watches writes (INSERT/UPDATE/DELETE, SET): see_writes or dml = true. */
bool policy_engine_wants_writes(const struct policy_engine *e);
bool policy_engine_has_connect(const struct policy_engine *e);
int policy_engine_count(const struct policy_engine *e);
/* Number of rules the library loaded (0 without it). */
int policy_engine_rule_count(const struct policy_engine *e);

/* Ask every policy about one statement and fold the answers into v. */
void policy_check_statement(struct policy_engine *e, const struct stmt_info *st,
			    const struct policy_session *s, struct verdict *v);
/*
 * The decision for one statement of `sql` as both the proxy and `ddlguard check` make it:
 * the policies' verdict, with a deny lifted to a warning when the rule allows overrides
 * and the migration carries `-- ddlguard:allow RULE reason="…"` for it (v->overridden).
 */
void policy_decide(struct policy_engine *e, const char *sql, const struct stmt_info *st,
		   const struct policy_session *s, struct verdict *v);
void policy_check_connect(struct policy_engine *e, const struct policy_session *s, struct verdict *v);
/* The migration ended (end of file, or the session closed): ask on_end(session) hooks. */
void policy_check_end(struct policy_engine *e, const struct policy_session *s, struct verdict *v);
/* Ask on_lock_wait hooks; true when one returns cancel(). */
bool policy_check_lock_wait(struct policy_engine *e, const struct policy_lock_wait *w,
			    const struct policy_session *s);
/* Tell policies a transaction committed (statements: the session's tx list). */
void policy_notify_commit(struct policy_engine *e, const struct policy_session *s);

/* The last policy failure ("file:line: message"), or NULL. */
const char *policy_last_error(const struct policy_engine *e);

/* Parse "2s", "500ms", "1min", "1h" or a number of milliseconds. -1 when invalid. */
long policy_parse_duration(const char *s);

#endif
