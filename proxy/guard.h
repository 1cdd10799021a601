/*
 * guard — a session's statement guard: the bridge from the relay's Query/Parse inspection
 * to statement analysis and the policies, and back to protocol-exact enforcement.
 *
 * Deny: a simple Query has the denied statement (and what follows it) replaced by a DO
 * block that raises the policy's SQLSTATE, so the server itself fails at that point and
 * keeps transaction status exactly; a Parse gets a text that cannot parse, and that one
 * error is rewritten (25P02 when the transaction had already failed). Warn: NoticeResponses
 * sent just before the statement's first response. Set: lock_timeout/statement_timeout
 * tightened by ddlguard's own swallowed messages before the statement and restored after
 * it (after the Query, or after the next Sync for the extended protocol).
 *
 * It also keeps what policies know about the session: the DDL run in the current
 * transaction and the objects created, committed ones kept for the session.
 */
#ifndef DDLG_GUARD_H
#define DDLG_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policies/engine.h"
#include "proxy/relay.h"

struct session;
struct evbuffer;

/* Where a savepoint was taken in the transaction's statement list. */
struct guard_mark {
	char *name;
	int ntx, ntx_created, ncreated;
};

/* A guarded statement's audit record, written when its outcome is known. */
struct guard_audit {
	char *tag, *objects, *strict_id, *fingerprint, *text;   /* (owned) */
	char *decision, *rule, *reason;                         /* (owned; rule/reason may be NULL) */
	double started;
};

struct guard_state {
	struct policy_tx_stmt *tx;   /* DDL forwarded in the current transaction (owned) */
	int ntx;
	unsigned long tx_seq;        /* numbers the statements of this session */
	char **tx_created;           /* objects they create (owned) */
	int ntx_created;
	char **created;              /* tx_created of committed transactions, then this tx's (owned) */
	int ncreated, ncommitted;
	unsigned inject_seq;         /* names of ddlguard's own prepared statements */
	struct guard_mark *marks;    /* open savepoints (owned) */
	int nmarks;
	const char *tool;            /* migration tool seen by its bookkeeping (static) */
	struct guard_audit *pending; /* statements sent, outcome not yet known (owned) */
	int npending;
	int retries;                 /* retries of the statement in flight */
	double lock_wait;            /* seconds it waited for a lock (monitor) */
	double strong_since;         /* when this transaction first took SHARE or stronger (0: not yet) */
	uint64_t allowed, denied, warned, unparsed;
	uint64_t cache_key;          /* policy_session.cache_key of tx/created now (0: not yet given) */
};

/* relay_inspect_cb: arg is the session. */
bool guard_inspect(void *arg, uint8_t type, const uint8_t *msg, size_t len,
		   struct relay_inspection *out);
/* relay_ready_cb: transaction bookkeeping and on_commit. */
void guard_ready(void *arg, uint8_t status, bool error, const char *last_tag);
/* relay_retry_cb: retry a guarded Query that hit its lock_timeout, after a backoff. */
bool guard_retry(void *arg, struct relay_extra *x, const struct pgw_error_fields *f,
		 struct evbuffer *client_out);
/* The policy_session of s (strings and lists stay owned by s). */
void guard_fill_session(struct session *s, struct policy_session *ps);
/* on_connect: false with a verdict to refuse the login. */
bool guard_connect(struct session *s, struct verdict *v);
void guard_free(struct guard_state *g);

#endif
