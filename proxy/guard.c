/* guard — see guard.h. */
#include "proxy/guard.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies/statement.h"
#include "proxy/config.h"
#include "proxy/audit.h"
#include "proxy/facts.h"
#include "proxy/ledger.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"
#include "proxy/monitor.h"
#include "proxy/session.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

static void strv_add(char ***v, int *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));
	if (!nv)
		abort();
	*v = nv;
	nv[(*n)++] = xstrdup(s);
}

static void strv_truncate(char **v, int *n, int keep)
{
	while (*n > keep)
		free(v[--*n]);
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void audit_free(struct guard_audit *a)
{
	free(a->tag);
	free(a->objects);
	free(a->strict_id);
	free(a->fingerprint);
	free(a->text);
	free(a->decision);
	free(a->rule);
	free(a->reason);
}

/* The session fields every record carries. */
static void audit_session(struct audit_record *r, struct session *s)
{
	audit_int(r, "session", (long long)s->id);
	audit_str(r, "user", s->user);
	audit_str(r, "database", s->database);
	audit_str(r, "application_name", s->app);
	audit_str(r, "client_addr", s->client_addr);
	audit_bool(r, "tls", s->client.ssl != NULL);
	audit_str(r, "environment", s->route ? s->route->environment : NULL);
}

static void audit_statement(struct session *s, const struct guard_audit *a, const char *outcome,
			    const char *sqlstate, long long rows, bool has_rows)
{
	struct audit_record *r = audit_begin("statement");
	if (!r)
		return;
	audit_session(r, s);
	audit_str(r, "command_tag", a->tag);
	audit_str(r, "objects", a->objects);
	audit_str(r, "strict_id", a->strict_id);
	audit_str(r, "fingerprint", a->fingerprint);
	audit_str(r, "statement", a->text);
	audit_str(r, "decision", a->decision);
	audit_str(r, "rule", a->rule);
	audit_str(r, "reason", a->reason);
	audit_str(r, "outcome", outcome);
	audit_str(r, "sqlstate", sqlstate && *sqlstate ? sqlstate : NULL);
	if (has_rows)
		audit_int(r, "rows", rows);
	audit_num(r, "duration_ms", (wall_now() - a->started) * 1000);
	audit_int(r, "retries", s->guard.retries);
	audit_num(r, "lock_wait_ms", s->guard.lock_wait * 1000);
	audit_write(r);
}

/* Whether a statement's text may carry a secret: a password in any spelling, anywhere
 * (also inside a DO block's string or a dblink/postgres_fdw connection string). */
static bool mentions_secret(const char *text, size_t len)
{
	static const char word[] = "password";
	for (size_t i = 0; i + sizeof(word) - 1 <= len; i++) {
		size_t k = 0;
		while (k < sizeof(word) - 1 && (text[i + k] | 0x20) == word[k])
			k++;
		if (k == sizeof(word) - 1)
			return true;
	}
	return false;
}

/* Text safe to keep: role and user-mapping statements, and any that mention a password,
 * normalized (constants replaced by $n); the bare tag if that fails. */
static char *safe_text(const struct stmt_info *st)
{
	bool secret = strstr(st->tag, "ROLE") || strstr(st->tag, "USER") || strstr(st->tag, "SERVER") ||
		      mentions_secret(st->text, strlen(st->text));
	char *t = secret ? stmt_normalize(st->text) : NULL;
	if (!t)
		t = strdup(secret ? st->tag : st->text);
	return t;
}

static void audit_pending(struct session *s, const struct stmt_info *st, const struct verdict *v,
			  const char *decision)
{
	if (!audit_enabled())
		return;
	struct guard_state *g = &s->guard;
	struct guard_audit a = { 0 };
	a.tag = strdup(st->tag);
	a.strict_id = strdup(st->strict_id_hex);
	a.fingerprint = strdup(st->fingerprint_hex);
	a.text = safe_text(st);
	a.decision = strdup(decision);
	a.rule = v->rule ? strdup(v->rule) : (v->nwarnings && v->warnings[0].rule ? strdup(v->warnings[0].rule) : NULL);
	a.reason = v->message ? strdup(v->message) : (v->nwarnings ? strdup(v->warnings[0].message) : NULL);
	a.started = wall_now();
	struct pgw_buf objs = { 0 };
	for (int i = 0; i < st->nobjects; i++) {
		const struct stmt_object *o = &st->objects[i];
		if (objs.len)
			pgw_buf_put_u8(&objs, ',');
		if (o->schema) {
			pgw_buf_put(&objs, o->schema, strlen(o->schema));
			pgw_buf_put_u8(&objs, '.');
		}
		pgw_buf_put(&objs, o->name, strlen(o->name));
	}
	pgw_buf_put_u8(&objs, 0);
	a.objects = strdup((const char *)objs.data);
	pgw_buf_free(&objs);
	if (!strcmp(decision, "deny")) {
		/* It never runs: its outcome is known now. */
		audit_statement(s, &a, "denied", v->sqlstate, 0, false);
		audit_free(&a);
		return;
	}
	struct guard_audit *np = realloc(g->pending, (g->npending + 1) * sizeof(*np));
	if (!np)
		abort();
	g->pending = np;
	np[g->npending++] = a;
}

/* The outcome of what was pending arrived with this ReadyForQuery. */
static void audit_outcomes(struct session *s, bool error, const char *tag)
{
	struct guard_state *g = &s->guard;
	if (!g->npending)
		return;
	long long rows = 0;
	bool has_rows = false;
	const char *sp = tag ? strrchr(tag, ' ') : NULL;
	if (sp && sp[1] >= '0' && sp[1] <= '9') {
		rows = atoll(sp + 1);
		has_rows = true;
	}
	for (int i = 0; i < g->npending; i++) {
		audit_statement(s, &g->pending[i], error ? "error" : "ok", error ? s->relay.last_sqlstate : NULL,
				rows, has_rows && !error);
		audit_free(&g->pending[i]);
	}
	g->npending = 0;
	g->retries = 0;
	g->lock_wait = 0;
}

/* The policy engine caches session.created and session.statements by this key: unique
 * in the process (a freed session's address is reused by the next one), and replaced
 * whenever created loses entries, since it may grow back to the same length with other
 * names before the engine looks again. */
static uint64_t cache_key(struct guard_state *g)
{
	static uint64_t last_key;
	if (!g->cache_key)
		g->cache_key = ++last_key;
	return g->cache_key;
}

/* Forget the transaction's statements after the first `keep` (and what they created). */
static void tx_truncate(struct guard_state *g, int keep, int keep_tx_created, int keep_created)
{
	if (keep_created < g->ncreated)
		g->cache_key = 0;
	while (g->ntx > keep) {
		struct policy_tx_stmt *t = &g->tx[--g->ntx];
		free(t->tag);
		free(t->text);
		free(t->strict_id);
		free(t->fingerprint);
		free(t->objects);
	}
	strv_truncate(g->tx_created, &g->ntx_created, keep_tx_created);
	strv_truncate(g->created, &g->ncreated, keep_created);
}

static void marks_clear(struct guard_state *g, int keep)
{
	while (g->nmarks > keep)
		free(g->marks[--g->nmarks].name);
}

void guard_free(struct guard_state *g)
{
	for (int i = 0; i < g->npending; i++)
		audit_free(&g->pending[i]);
	free(g->pending);
	tx_truncate(g, 0, 0, 0);
	free(g->tx);
	free(g->tx_created);
	free(g->created);
	marks_clear(g, 0);
	free(g->marks);
	memset(g, 0, sizeof(*g));
}

static void tx_reset(struct guard_state *g)
{
	/* Objects of a transaction that did not commit are forgotten. */
	tx_truncate(g, 0, 0, g->ncommitted);
	marks_clear(g, 0);
}

/* SAVEPOINT / ROLLBACK TO / RELEASE: what a rolled-back savepoint ran never commits. */
static void savepoint(struct guard_state *g, const struct stmt_info *st)
{
	const char *name = st->savepoint ? st->savepoint : "";
	int found = -1;
	for (int i = g->nmarks - 1; i >= 0 && found < 0; i--)
		if (!strcmp(g->marks[i].name, name))
			found = i;
	if (st->txctl == STMT_TX_SAVEPOINT) {
		struct guard_mark *m = realloc(g->marks, (g->nmarks + 1) * sizeof(*m));
		if (!m)
			abort();
		g->marks = m;
		m[g->nmarks].name = xstrdup(name);
		m[g->nmarks].ntx = g->ntx;
		m[g->nmarks].ntx_created = g->ntx_created;
		m[g->nmarks].ncreated = g->ncreated;
		g->nmarks++;
	} else if (st->txctl == STMT_TX_ROLLBACK_TO && found >= 0) {
		tx_truncate(g, g->marks[found].ntx, g->marks[found].ntx_created, g->marks[found].ncreated);
		marks_clear(g, found + 1);   /* the savepoint itself stays */
	} else if (st->txctl == STMT_TX_RELEASE && found >= 0)
		marks_clear(g, found);
}

void guard_fill_session(struct session *s, struct policy_session *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->user = s->user;
	ps->database = s->database;
	ps->application_name = s->app;
	ps->client_addr = s->client_addr;
	ps->environment = s->route ? s->route->environment : "";
	ps->tls = s->client.ssl != NULL;
	ps->tx_status = (char)s->relay.last_status;
	ps->ntx = s->guard.ntx;
	ps->tx = s->guard.tx;
	ps->ncreated = s->guard.ncreated;
	ps->created = s->guard.created;
	ps->facts = facts_lookup;
	ps->facts_arg = s;
	ps->cache_key = cache_key(&s->guard);
}

static void remember(struct guard_state *g, const struct stmt_info *st)
{
	struct policy_tx_stmt *nt = realloc(g->tx, (g->ntx + 1) * sizeof(*nt));
	if (!nt)
		abort();
	g->tx = nt;
	struct policy_tx_stmt *t = &nt[g->ntx];
	memset(t, 0, sizeof(*t));
	t->tag = xstrdup(st->tag);
	t->strict_id = xstrdup(st->strict_id_hex);
	t->fingerprint = xstrdup(st->fingerprint_hex);
	t->seq = ++g->tx_seq;
	/* Never keep a password: role and user-mapping statements are kept normalized. */
	t->text = safe_text(st);
	if (!t->text)
		abort();
	struct pgw_buf objs = { 0 };
	for (int i = 0; i < st->nobjects; i++) {
		const struct stmt_object *o = &st->objects[i];
		if (objs.len)
			pgw_buf_put_u8(&objs, ',');
		if (o->schema) {
			pgw_buf_put(&objs, o->schema, strlen(o->schema));
			pgw_buf_put_u8(&objs, '.');
		}
		pgw_buf_put(&objs, o->name, strlen(o->name));
		if (stmt_bookkeeping_tool(o->schema, o->name)) {
			t->exempt = true;
			if (!g->tool)
				g->tool = stmt_bookkeeping_tool(o->schema, o->name);
		}
	}
	pgw_buf_put_u8(&objs, 0);
	t->objects = xstrdup((const char *)objs.data);
	pgw_buf_free(&objs);
	g->ntx++;
	for (int i = 0; i < st->nobjects; i++) {
		const struct stmt_object *o = &st->objects[i];
		if (!o->created)
			continue;
		char name[512];
		if (o->schema)
			snprintf(name, sizeof(name), "%s.%s", o->schema, o->name);
		else
			snprintf(name, sizeof(name), "%s", o->name);
		strv_add(&g->tx_created, &g->ntx_created, name);
		strv_add(&g->created, &g->ncreated, name);
	}
}

void guard_ready(void *arg, uint8_t status, bool error, const char *last_tag)
{
	struct session *s = arg;
	struct guard_state *g = &s->guard;
	double waited = monitor_stop(s);
	if (waited > g->lock_wait)
		g->lock_wait = waited;
	s->monitor.cancelled = false;
	audit_outcomes(s, error, last_tag);
	if (status != 'I' || (g->ntx == 0 && g->ntx_created == 0))
		return;
	/* Back to idle: the transaction (explicit or implicit) ended. It committed when no
	 * error ended an autocommit statement, or when COMMIT said COMMIT (an aborted
	 * transaction's COMMIT reports ROLLBACK). */
	bool committed = !strcmp(last_tag, "COMMIT") ||
			 (!error && strcmp(last_tag, "ROLLBACK") != 0);
	double held = g->strong_since ? wall_now() - g->strong_since : 0;
	if (held > 0)
		slog_info(s, "transaction %s after holding SHARE or stronger locks for %.0f ms",
			  committed ? "committed" : "rolled back", held * 1000);
	g->strong_since = 0;
	struct audit_record *r = audit_begin("transaction");
	if (r) {
		audit_session(r, s);
		audit_str(r, "outcome", committed ? "committed" : "rolled back");
		audit_num(r, "strong_locks_held_ms", held * 1000);
		struct pgw_buf ids = { 0 };
		for (int i = 0; i < g->ntx; i++) {
			if (ids.len)
				pgw_buf_put_u8(&ids, ',');
			pgw_buf_put(&ids, g->tx[i].strict_id, strlen(g->tx[i].strict_id));
		}
		pgw_buf_put_u8(&ids, 0);
		audit_str(r, "statements", (const char *)ids.data);
		audit_int(r, "count", g->ntx);
		pgw_buf_free(&ids);
		audit_write(r);
	}
	if (committed) {
		ledger_record_commit(s);
		if (s->cfg->policy) {
			struct policy_session ps;
			guard_fill_session(s, &ps);
			ps.tx_status = 'I';
			policy_notify_commit(s->cfg->policy, &ps);
		}
		g->ncommitted = g->ncreated;
		slog_debug(s, "transaction with %d guarded statements committed", g->ntx);
	} else
		slog_debug(s, "transaction with %d guarded statements rolled back", g->ntx);
	tx_reset(g);
}

/* ---------------------------------------------------------------- building messages */

/* Append `s` as an E'…' literal, safe whatever standard_conforming_strings is. */
static void put_literal(struct pgw_buf *b, const char *s)
{
	pgw_buf_put(b, "E'", 2);
	for (; *s; s++) {
		/* The literal sits inside the DO block's $ddlguard$ quote, which the server's
		 * lexer ends at the first "$ddlguard$", quotes or not: write '$' as an escape. */
		if (*s == '$') {
			pgw_buf_put(b, "\\x24", 4);
			continue;
		}
		if (*s == '\'' || *s == '\\')
			pgw_buf_put_u8(b, (uint8_t)*s);
		pgw_buf_put_u8(b, (uint8_t)*s);
	}
	pgw_buf_put_u8(b, '\'');
}

static void deny_detail(const struct verdict *v, char *buf, size_t len)
{
	if (v->detail)
		snprintf(buf, len, "ddlguard rule: %s. %s", v->rule ? v->rule : "policy", v->detail);
	else
		snprintf(buf, len, "ddlguard rule: %s", v->rule ? v->rule : "policy");
}

/* The message with the rule's id after it: some drivers show nothing else (Go's lib/pq
 * prints "pq: <message>"; knex drops the HINT), and the id leads to docs/rules/<id>.md. */
static void deny_message(const struct verdict *v, char *buf, size_t len)
{
	if (v->rule)
		snprintf(buf, len, "%s (ddlguard: %s)", v->message, v->rule);
	else
		snprintf(buf, len, "%s", v->message);
}

/* The DO block that makes the server raise the policy's error itself. */
static void build_do_poison(struct pgw_buf *b, const struct verdict *v)
{
	char detail[1200], message[1200];
	deny_detail(v, detail, sizeof(detail));
	deny_message(v, message, sizeof(message));
	const char *tag = "$ddlguard$";
	pgw_buf_put(b, "DO ", 3);
	pgw_buf_put(b, tag, strlen(tag));
	pgw_buf_put(b, "BEGIN RAISE EXCEPTION USING ERRCODE = '", 39);
	pgw_buf_put(b, v->sqlstate, 5);
	pgw_buf_put(b, "', MESSAGE = ", 13);
	put_literal(b, message);
	pgw_buf_put(b, ", DETAIL = ", 11);
	put_literal(b, detail);
	if (v->hint) {
		pgw_buf_put(b, ", HINT = ", 9);
		put_literal(b, v->hint);
	}
	pgw_buf_put(b, "; END", 5);
	pgw_buf_put(b, tag, strlen(tag));
}

static void build_deny_error(struct pgw_buf *b, const struct verdict *v)
{
	char detail[1200], message[1200];
	deny_detail(v, detail, sizeof(detail));
	deny_message(v, message, sizeof(message));
	pgw_build_error(b, 'E', "ERROR", v->sqlstate, message, detail, v->hint);
}

static void build_notices(struct pgw_buf *b, const struct verdict *v)
{
	for (int i = 0; i < v->nwarnings; i++) {
		char detail[300];
		snprintf(detail, sizeof(detail), "ddlguard rule: %s", v->warnings[i].rule ? v->warnings[i].rule : "policy");
		pgw_build_error(b, 'N', "WARNING", "01000", v->warnings[i].message, detail, v->warnings[i].hint);
	}
}

/*
 * SQL that tightens one timeout, never loosening the client's, and saves the client's value
 * unless an earlier guarded statement already saved it (the restore runs once, later).
 */
static void timeout_sql(struct pgw_buf *sql, const char *guc, int ms)
{
	char buf[700];
	snprintf(buf, sizeof(buf),
		 "set_config('ddlguard.saved_%s', COALESCE(NULLIF(current_setting('ddlguard.saved_%s', true), ''), "
		 "current_setting('%s')), false), "
		 "set_config('%s', CASE WHEN current_setting('%s')::interval = '0'::interval "
		 "OR current_setting('%s')::interval > '%dms'::interval THEN '%dms' "
		 "ELSE current_setting('%s') END, false)",
		 guc, guc, guc, guc, guc, guc, ms, ms, guc);
	pgw_buf_put(sql, buf, strlen(buf));
}

static void restore_sql(struct pgw_buf *sql, const char *guc)
{
	char buf[300];
	snprintf(buf, sizeof(buf),
		 "set_config('%s', COALESCE(NULLIF(current_setting('ddlguard.saved_%s', true), ''), "
		 "current_setting('%s')), false), set_config('ddlguard.saved_%s', '', false)",
		 guc, guc, guc, guc);
	pgw_buf_put(sql, buf, strlen(buf));
}

static void add_query(struct pgw_buf *b, const struct pgw_buf *sql)
{
	size_t m = pgw_msg_begin(b, 'Q');
	pgw_buf_put(b, sql->data, sql->len);
	pgw_buf_put_u8(b, 0);
	pgw_msg_end(b, m);
}

static void build_timeouts(struct session *s, const struct verdict *v, uint8_t type, bool own_tx,
			   struct relay_inspection *out, struct pgw_buf *pre_sql)
{
	struct pgw_buf pre = { 0 }, post = { 0 };
	pgw_buf_put(&pre, "SELECT ", 7);
	pgw_buf_put(&post, "SELECT ", 7);
	if (v->lock_timeout_ms) {
		timeout_sql(&pre, "lock_timeout", v->lock_timeout_ms);
		restore_sql(&post, "lock_timeout");
	}
	if (v->statement_timeout_ms) {
		if (v->lock_timeout_ms) {
			pgw_buf_put(&pre, ", ", 2);
			pgw_buf_put(&post, ", ", 2);
		}
		timeout_sql(&pre, "statement_timeout", v->statement_timeout_ms);
		restore_sql(&post, "statement_timeout");
	}
	if (type == 'Q') {
		add_query(&out->before, &pre);
		out->before_types[out->nbefore++] = 'Q';
	} else {
		/* Inside an extended-protocol sequence a simple Query would end the implicit
		 * transaction early: use extended messages with names of our own. */
		char stmt[32], portal[32];
		unsigned n = ++s->guard.inject_seq;
		snprintf(stmt, sizeof(stmt), "ddlguard_s%u", n);
		snprintf(portal, sizeof(portal), "ddlguard_p%u", n);
		struct pgw_buf *b = &out->before;
		size_t m = pgw_msg_begin(b, 'P');
		pgw_buf_put_str(b, stmt);
		pgw_buf_put(b, pre.data, pre.len);
		pgw_buf_put_u8(b, 0);
		pgw_buf_put_u8(b, 0);
		pgw_buf_put_u8(b, 0);   /* Int16 0 parameter types */
		pgw_msg_end(b, m);
		m = pgw_msg_begin(b, 'B');
		pgw_buf_put_str(b, portal);
		pgw_buf_put_str(b, stmt);
		pgw_buf_put_u32(b, 0);  /* Int16 0 format codes, Int16 0 parameters */
		pgw_buf_put(b, "\0\0", 2); /* Int16 0 result format codes */
		pgw_msg_end(b, m);
		m = pgw_msg_begin(b, 'E');
		pgw_buf_put_str(b, portal);
		pgw_buf_put_u32(b, 0);
		pgw_msg_end(b, m);
		m = pgw_msg_begin(b, 'C');
		pgw_buf_put_u8(b, 'P');
		pgw_buf_put_str(b, portal);
		pgw_msg_end(b, m);
		m = pgw_msg_begin(b, 'C');
		pgw_buf_put_u8(b, 'S');
		pgw_buf_put_str(b, stmt);
		pgw_msg_end(b, m);
		const uint8_t types[] = { 'P', 'B', 'E', 'C', 'C' };
		memcpy(out->before_types, types, sizeof(types));
		out->nbefore = sizeof(types);
		if (own_tx) {
			/* CREATE INDEX CONCURRENTLY and the like refuse to run after another
			 * Execute in the same implicit transaction ("cannot be executed within
			 * a pipeline"): end ours with a Sync (its ReadyForQuery is swallowed). */
			m = pgw_msg_begin(b, 'S');
			pgw_msg_end(b, m);
			out->before_types[out->nbefore++] = 'S';
		}
	}
	pgw_buf_put(&out->after_sql, post.data, post.len);
	if (pre_sql)
		pgw_buf_put(pre_sql, pre.data, pre.len);
	pgw_buf_free(&pre);
	pgw_buf_free(&post);
}

/* ---------------------------------------------------------------- retries */

static void quote_ident(struct pgw_buf *b, const char *id)
{
	pgw_buf_put_u8(b, '"');
	for (; *id; id++) {
		if (*id == '"')
			pgw_buf_put_u8(b, '"');
		pgw_buf_put_u8(b, (uint8_t)*id);
	}
	pgw_buf_put_u8(b, '"');
}

static void add_query_text(struct pgw_buf *b, const char *sql)
{
	size_t m = pgw_msg_begin(b, 'Q');
	pgw_buf_put_str(b, sql);
	pgw_msg_end(b, m);
}

/*
 * Make a simple Query that got a lock_timeout retryable (DESIGN.md section 8): in
 * autocommit it is resent as is (a multi-statement Query rolls back whole); inside a
 * transaction block a savepoint taken just before it is rolled back to before each resend;
 * a CREATE INDEX CONCURRENTLY that timed out leaves an INVALID index, dropped first.
 * Never in a failed transaction, nor for a Query that controls transactions itself.
 */
static void setup_retry(struct session *s, const struct stmt_list *l, const uint8_t *msg,
			size_t len, struct relay_inspection *out, const struct pgw_buf *pre_sql)
{
	char status = (char)s->relay.last_status;
	if (status == 'E')
		return;
	const struct stmt_info *guarded = NULL;
	for (int i = 0; i < l->n; i++) {
		if (l->items[i].txctl != STMT_TX_NONE)
			return;
		if (!guarded && stmt_guarded(&l->items[i]))
			guarded = &l->items[i];
	}
	if (!guarded)
		return;
	if (!out->x)
		out->x = relay_extra_new();
	struct relay_retry *rt = &out->x->retry;
	for (int i = 0; i < l->n; i++) {
		const struct stmt_info *st = &l->items[i];
		if (!st->concurrently || strcmp(st->tag, "CREATE INDEX"))
			continue;
		const struct stmt_object *idx = NULL;
		for (int k = 0; k < st->nobjects; k++)
			if (st->objects[k].created && !strcmp(st->objects[k].kind, "index"))
				idx = &st->objects[k];
		if (!idx)
			return;  /* an unnamed index: its INVALID leftover cannot be found by name */
		/* The drop takes SHARE UPDATE EXCLUSIVE, which application DML does not conflict
		 * with: it may wait for the blocker without a lock_timeout. Then the statement's
		 * own timeout is set again for the resend. */
		struct pgw_buf sql = { 0 };
		add_query_text(&rt->prefix, "SELECT set_config('lock_timeout', '0', false)");
		pgw_buf_put(&sql, "DROP INDEX CONCURRENTLY IF EXISTS ", 34);
		if (idx->schema) {
			quote_ident(&sql, idx->schema);
			pgw_buf_put_u8(&sql, '.');
		}
		quote_ident(&sql, idx->name);
		pgw_buf_put_u8(&sql, 0);
		add_query_text(&rt->prefix, (const char *)sql.data);
		pgw_buf_reset(&sql);
		pgw_buf_put(&sql, pre_sql->data, pre_sql->len);
		pgw_buf_put_u8(&sql, 0);
		add_query_text(&rt->prefix, (const char *)sql.data);
		rt->nprefix += 3;
		pgw_buf_free(&sql);
	}
	if (status == 'T') {
		add_query_text(&out->before, "SAVEPOINT ddlguard_retry");
		out->before_types[out->nbefore++] = 'Q';
		add_query_text(&rt->prefix, "ROLLBACK TO SAVEPOINT ddlguard_retry");
		rt->nprefix++;
		const char *rel = "; RELEASE SAVEPOINT ddlguard_retry";
		if (out->after_sql.len)
			pgw_buf_put(&out->after_sql, rel, strlen(rel));
		else
			pgw_buf_put(&out->after_sql, rel + 2, strlen(rel) - 2);
	}
	pgw_buf_put(&rt->message, msg, len);
	rt->enabled = true;
	snprintf(rt->what, sizeof(rt->what), "%s", guarded->tag);
	for (int k = 0; k < guarded->nobjects; k++)
		if (!guarded->objects[k].created && guarded->objects[k].lock != STMT_LOCK_NONE) {
			const struct stmt_object *o = &guarded->objects[k];
			snprintf(rt->relation, sizeof(rt->relation), "%s%s%s", o->schema ? o->schema : "",
				 o->schema ? "." : "", o->name);
			snprintf(rt->what, sizeof(rt->what), "%.40s %.255s", guarded->tag, rt->relation);
			break;
		}
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

bool guard_retry(void *arg, struct relay_extra *x, const struct pgw_error_fields *f,
		 struct evbuffer *client_out)
{
	struct session *s = arg;
	struct relay_retry *rt = &x->retry;
	/* 55P03 lock_not_available: our lock_timeout (or NOWAIT). A client's own cancel (57014)
	 * is never retried. */
	bool ours = s->monitor.cancelled && f->sqlstate && !strcmp(f->sqlstate, "57014");
	s->monitor.cancelled = false;
	if (!f->sqlstate || (strcmp(f->sqlstate, "55P03") && !ours))
		return false;
	double now = mono_now();
	if (rt->attempt == 0)
		rt->started = now;
	rt->attempt++;
	s->guard.retries = rt->attempt;
	s->srv->stats.retries++;
	if (rt->attempt >= s->cfg->retry_attempts || now - rt->started >= s->cfg->retry_budget) {
		slog_info(s, "retry: %s gave up after %d attempts (%.1f s)", rt->what, rt->attempt, now - rt->started);
		return false;
	}
	/* Exponential backoff with full jitter in [base/2, base], capped. */
	double base = 0.25 * (double)(1u << (rt->attempt < 8 ? rt->attempt : 8));
	if (base > 10)
		base = 10;
	double delay = base / 2 + base / 2 * ((double)rand() / RAND_MAX);
	if (now + delay - rt->started > s->cfg->retry_budget)
		delay = s->cfg->retry_budget - (now - rt->started);
	/* Name the blocker from the facts fetched before the statement, when there are any. */
	char who[400] = "";
	struct policy_facts pf;
	if (rt->relation[0] && facts_lookup(s, rt->relation, &pf)) {
		size_t n = 0;
		for (int i = 0; i < pf.nholders && n < sizeof(who) - 1; i++) {
			const struct policy_holder *h = &pf.holders[i];
			if (!h->granted)
				continue;
			int w = snprintf(who + n, sizeof(who) - n, "%spid %d (%s, %s, in a transaction for %.0f s)",
					 n ? "; " : "", h->pid, h->application_name[0] ? h->application_name : "no application_name",
					 h->state, h->xact_age);
			if (w < 0)
				break;
			n += (size_t)w;
		}
	}
	if (!who[0])
		snprintf(who, sizeof(who), "%s", s->cfg->monitor_user && *s->cfg->monitor_user ?
			 "unknown (no session held a lock on it when the statement started)" :
			 "unknown (set monitor_user to see who)");
	char msg[900];
	snprintf(msg, sizeof(msg), "ddlguard: %s %s; retrying in %.0f ms "
		 "(attempt %d of %d). Sessions holding locks on it: %s", rt->what,
		 ours ? "was cancelled while it waited for its lock, because sessions queued behind it"
		      : "could not get its lock within lock_timeout", delay * 1000, rt->attempt + 1,
		 s->cfg->retry_attempts, who);
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'N', "NOTICE", "00000", msg, NULL, NULL);
	evbuffer_add(client_out, b.data, b.len);
	pgw_buf_free(&b);
	slog_info(s, "retry: %s %s (attempt %d); retrying in %.0f ms; blocker: %s", rt->what,
		  ours ? "was cancelled by the lock monitor" : "hit lock_timeout",
		  rt->attempt, delay * 1000, who);
	session_retry_later(s, delay);
	/* The next notice names whoever holds the lock then. */
	if (rt->relation[0])
		facts_refresh(s, rt->relation);
	return true;
}

/*
 * The usual root blocker: a transaction that has held a lock on the table for a long time
 * (often idle in transaction). Warn before the statement queues behind it.
 */
static void warn_long_transactions(struct session *s, const struct stmt_info *st, struct verdict *v)
{
	if (s->cfg->long_transaction_warn <= 0 || st->lock < STMT_LOCK_SHARE_UPDATE_EXCLUSIVE)
		return;
	for (int k = 0; k < st->nobjects; k++) {
		const struct stmt_object *o = &st->objects[k];
		if (o->created || o->lock < STMT_LOCK_SHARE_UPDATE_EXCLUSIVE)
			continue;
		char name[512];
		snprintf(name, sizeof(name), "%s%s%s", o->schema ? o->schema : "", o->schema ? "." : "", o->name);
		struct policy_facts f;
		if (!facts_lookup(s, name, &f))
			continue;
		for (int i = 0; i < f.nholders; i++) {
			const struct policy_holder *h = &f.holders[i];
			if (!h->granted || (uint32_t)h->pid == s->srv_pid || h->xact_age < s->cfg->long_transaction_warn)
				continue;
			char msg[600];
			snprintf(msg, sizeof(msg), "pid %d (%s, %s) has held %s on %s for %.0f s: this %s will wait for it",
				 h->pid, h->application_name[0] ? h->application_name : "no application_name", h->state,
				 h->mode, name, h->xact_age, st->tag);
			verdict_add_warning(v, "long-transaction", msg,
					    "End or cancel that transaction first (pg_terminate_backend), or run the migration later.");
			slog_warning(s, "%s", msg);
		}
	}
}

/* ---------------------------------------------------------------- inspection */

static const char *objects_str(const struct stmt_info *st, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = 0; i < st->nobjects && n < len; i++) {
		const struct stmt_object *o = &st->objects[i];
		int w = snprintf(buf + n, len - n, "%s%s%s%s", i ? ", " : "", o->schema ? o->schema : "",
				 o->schema ? "." : "", o->name);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return buf;
}

/*
 * Rewrites a Query or Parse whose statement at byte `offset` of `text` is denied: a Query keeps
 * what precedes it (earlier statements run, and fail, exactly as they would have) and gets a DO
 * block raising the deny; a Parse gets text the raw parser rejects, its 42601 rewritten to the
 * deny (25P02 in a failed transaction). out->x must exist.
 */
static void apply_deny(uint8_t type, const char *body, size_t name_len, const char *text, const char *tend,
		       size_t blen, size_t offset, const struct verdict *v, struct relay_inspection *out)
{
	struct relay_extra *x = out->x;
	build_deny_error(&x->error, v);
	out->action = RELAY_REWRITE;
	struct pgw_buf *b = &out->replace;
	size_t m = pgw_msg_begin(b, (char)type);
	if (type == 'Q') {
		pgw_buf_put(b, text, offset);
		/* A newline ends a trailing -- comment; an extra ';' is an empty statement. */
		if (offset)
			pgw_buf_put(b, "\n;\n", 3);
		build_do_poison(b, v);
		pgw_buf_put_u8(b, 0);
		memcpy(x->only_if, v->sqlstate, 6);
	} else {
		/* Same statement name and parameter types; a text the raw parser rejects. */
		pgw_buf_put(b, body, name_len);
		pgw_buf_put_str(b, "DDLGUARD POLICY REJECTED THIS STATEMENT");
		pgw_buf_put(b, tend + 1, blen - (size_t)(tend + 1 - body));
		memcpy(x->only_if, "42601", 6);
		pgw_build_error(&x->aborted, 'E', "ERROR", "25P02",
				"current transaction is aborted, commands ignored until end of transaction block",
				NULL, NULL);
	}
	pgw_msg_end(b, m);
}

bool guard_inspect(void *arg, uint8_t type, const uint8_t *msg, size_t len,
		   struct relay_inspection *out)
{
	struct session *s = arg;
	struct policy_engine *e = s->cfg->policy;
	const char *body = (const char *)msg + PGW_HDR_LEN;
	size_t blen = len - PGW_HDR_LEN;
	const char *text = body;
	size_t name_len = 0;
	if (type == 'P') {
		const char *nul = memchr(body, 0, blen);
		if (!nul)
			return true;    /* malformed: the server answers it */
		name_len = (size_t)(nul - body) + 1;
		text = nul + 1;
	}
	const char *tend = memchr(text, 0, blen - (size_t)(text - body));
	if (!tend)
		return true;
	size_t tlen = (size_t)(tend - text);
	/* audit_dml: every statement is parsed and written to the audit log. */
	bool dml = policy_engine_wants_dml(e) || (s->cfg->audit_dml && audit_enabled());
	bool writes = policy_engine_wants_writes(e);
	if (!dml && stmt_fast_path_ex(text, tlen, !writes))
		return true;

	struct stmt_list l;
	if (!stmt_analyze(text, &l)) {
		/* Fail closed: a text ddlguard cannot analyse does not run. */
		snprintf(s->relay.error_sqlstate, sizeof(s->relay.error_sqlstate), l.too_deep ? "54001" : "53200");
		snprintf(s->relay.error_message, sizeof(s->relay.error_message), "%s",
			 l.too_deep ? "statement is nested too deeply for ddlguard to analyse" :
				      "out of memory analysing a statement");
		return false;
	}
	if (l.parse_error) {
		s->guard.unparsed++;
		/* Text PostgreSQL 15's grammar rejects: a typo (the server would reject it too) or
		 * syntax of a newer server. Either way no policy can check it, so where policies or
		 * the staging gate apply it is denied, as the server would: 42601, same message. */
		if (s->cfg->unparsed_pass || (!e && !ledger_is_gated(s))) {
			slog_info(s, "decision: pass (text does not parse, the server answers it: %s)",
				  mentions_secret(text, tlen) ? "message withheld: the text mentions a password" :
				  l.error ? l.error : "");
			stmt_list_free(&l);
			return true;
		}
		struct verdict v;
		verdict_init(&v);
		char why[600];
		snprintf(why, sizeof(why), "%s", l.error ? l.error : "syntax error");
		verdict_deny(&v, "42601", "parse-error", why, NULL,
			     "ddlguard checks statements with PostgreSQL 15's parser and denies text it cannot parse, since no "
			     "policy can check it. Fix the syntax, or, for syntax of a newer server, set unparsed_statements = pass.");
		s->guard.denied++;
		slog_info(s, "decision: deny unparsed text at line %d column %d (rule parse-error, SQLSTATE 42601): %s",
			  l.error_line, l.error_column,
			  mentions_secret(text, tlen) ? "message withheld: the text mentions a password" : why);
		metrics_decision(s->srv, "deny", "parse-error");
		out->x = relay_extra_new();
		apply_deny(type, body, name_len, text, tend, blen, 0, &v, out);
		verdict_free(&v);
		stmt_list_free(&l);
		return true;
	}
	/* Live facts for the relations of guarded statements, fetched before any policy runs. */
	char *names[64];
	int nnames = 0;
	for (int i = 0; i < l.n && nnames < 64; i++) {
		const struct stmt_info *st = &l.items[i];
		if (!stmt_guarded(st) && !dml && !(writes && stmt_is_write(st)))
			continue;
		for (int k = 0; k < st->nobjects && nnames < 64; k++) {
			const struct stmt_object *o = &st->objects[k];
			if (o->created || o->lock == STMT_LOCK_NONE)
				continue;
			char name[512];
			snprintf(name, sizeof(name), "%s%s%s", o->schema ? o->schema : "", o->schema ? "." : "", o->name);
			/* Created earlier in this open transaction: invisible to the side connection,
			 * which could only say "does not exist" (and is never cached saying so). */
			bool in_tx = false;
			for (int c = 0; c < s->guard.ntx_created && !in_tx; c++)
				in_tx = !strcmp(s->guard.tx_created[c], name);
			if (in_tx)
				continue;
			names[nnames] = strdup(name);
			if (names[nnames])
				nnames++;
		}
	}
	/* After a fetch the held message is inspected again: use what arrived (even if the
	 * cache keeps nothing), rather than fetching forever. */
	bool just_fetched = s->facts_fetched;
	enum facts_status fs = nnames && !just_fetched ? facts_prefetch(s, names, nnames) : FACTS_READY;
	s->facts_fetched = false;
	for (int i = 0; i < nnames; i++)
		free(names[i]);
	if (fs == FACTS_PENDING) {
		slog_debug(s, "waiting for facts about %d relations", nnames);
		s->relay.inspect_wait = true;
		stmt_list_free(&l);
		return true;
	}
	/* Then, in a gated environment, what the staging ledger says (the facts are cached
	 * by now, so the re-inspection after this wait fetches nothing). */
	if (ledger_prefetch(s, &l, just_fetched) == LEDGER_PENDING) {
		slog_debug(s, "waiting for the staging ledger");
		s->relay.inspect_wait = true;
		stmt_list_free(&l);
		return true;
	}
	struct policy_session ps;
	guard_fill_session(s, &ps);
	struct verdict v;
	verdict_init(&v);
	int denied = -1;
	int tx_base = 0;        /* statements of s->guard.tx from before a COMMIT in this Query */
	for (int i = 0; i < l.n; i++) {
		const struct stmt_info *st = &l.items[i];
		/* BEGIN … COMMIT inside one Query: later statements of it run in that block. */
		if (st->txctl == STMT_TX_BEGIN)
			ps.tx_status = 'T';
		else if (st->txctl == STMT_TX_COMMIT || st->txctl == STMT_TX_ROLLBACK) {
			ps.tx_status = 'I';
			tx_base = s->guard.ntx;
		} else if (st->txctl == STMT_TX_SAVEPOINT || st->txctl == STMT_TX_ROLLBACK_TO ||
			 st->txctl == STMT_TX_RELEASE)
			savepoint(&s->guard, st);
		if (!stmt_guarded(st) && !dml && !(writes && stmt_is_write(st)))
			continue;
		/* remember() (and savepoint()) of the earlier statements may have moved these. */
		if (tx_base > s->guard.ntx)
			tx_base = s->guard.ntx;
		ps.tx = s->guard.tx + tx_base;
		ps.ntx = s->guard.ntx - tx_base;
		ps.ncreated = s->guard.ncreated;
		ps.created = s->guard.created;
		ps.cache_key = cache_key(&s->guard);
		struct verdict sv;
		verdict_init(&sv);
		policy_decide(e, text, st, &ps, &sv);
		ledger_gate(s, st, &sv);
		warn_long_transactions(s, st, &sv);
		if (audit_enabled() && !audit_ok() && !s->cfg->audit_fail_open)
			verdict_deny(&sv, "58030", "audit", "ddlguard cannot write its audit log, so it does not run schema changes",
				     NULL, "Fix the audit_log file (disk, permissions) and send SIGHUP, or set audit_failure = open.");
		if (sv.policy_error) {
			s->srv->stats.policy_errors++;
			slog_error(s, "policy failure (%s): %s", s->cfg->policy_fail_open ? "allowed" : "denied",
				   policy_last_error(e));
		}
		if (sv.overridden)
			slog_info(s, "decision: override of %s on %s line %d", sv.overridden, st->tag, st->line);
		char objs[300];
		if (sv.kind == VERDICT_DENY) {
			denied = i;
			s->guard.denied++;
			slog_info(s, "decision: deny %s %s (rule %s, SQLSTATE %s)", st->tag,
				  objects_str(st, objs, sizeof(objs)), sv.rule ? sv.rule : "-", sv.sqlstate);
		} else if (sv.nwarnings) {
			s->guard.warned++;
			slog_info(s, "decision: warn %s %s (%d warnings)", st->tag,
				  objects_str(st, objs, sizeof(objs)), sv.nwarnings);
		} else {
			s->guard.allowed++;
			slog_debug(s, "decision: allow %s %s", st->tag, objects_str(st, objs, sizeof(objs)));
		}
		const char *decision = sv.kind == VERDICT_DENY ? "deny" : sv.nwarnings ? "warn" : "allow";
		audit_pending(s, st, &sv, decision);
		metrics_decision(s->srv, decision, sv.kind == VERDICT_DENY ? sv.rule :
				 sv.nwarnings ? sv.warnings[0].rule : NULL);
		verdict_merge(&v, &sv);
		if (denied >= 0)
			break;  /* the server stops at the first error: nothing after it runs */
		if (st->ddl)
			remember(&s->guard, st);
		if (st->lock >= STMT_LOCK_SHARE && !s->guard.strong_since)
			s->guard.strong_since = wall_now();
	}

	if (v.kind == VERDICT_DENY || v.nwarnings) {
		out->x = relay_extra_new();
		build_notices(&out->x->notices, &v);
	}
	if (v.kind == VERDICT_DENY) {
		apply_deny(type, body, name_len, text, tend, blen, l.items[denied].offset, &v, out);
	} else if ((v.lock_timeout_ms || v.statement_timeout_ms) &&
		   !(type == 'P' && s->relay.last_status == 'E')) {
		/* In a failed transaction the statement fails anyway; an extended-protocol
		 * SET of ours would fail first and hide the client's own error. */
		struct pgw_buf pre = { 0 };
		/* A statement that must run outside a transaction block, first of its extended
		 * sequence in an idle session: our timeout SET gets an implicit transaction of
		 * its own. After other unsynced messages a Sync of ours would commit theirs. */
		bool own_tx = false;
		for (int i = 0; i < l.n; i++)
			if (!l.items[i].in_tx_block_ok)
				own_tx = true;
		own_tx = own_tx && s->relay.last_status == 'I' && !s->relay.unsynced;
		build_timeouts(s, &v, type, own_tx, out, &pre);
		slog_debug(s, "decision: lock_timeout %d ms, statement_timeout %d ms",
			   v.lock_timeout_ms, v.statement_timeout_ms);
		if (type == 'Q' && v.lock_timeout_ms && s->cfg->retry_attempts > 1)
			setup_retry(s, &l, msg, len, out, &pre);
		pgw_buf_free(&pre);
	}
	if (v.kind != VERDICT_DENY) {
		for (int i = 0; i < l.n; i++) {
			const struct stmt_info *st = &l.items[i];
			if (st->lock < STMT_LOCK_SHARE_UPDATE_EXCLUSIVE)
				continue;
			char rel[256] = "";
			for (int k = 0; k < st->nobjects; k++)
				if (!st->objects[k].created && st->objects[k].lock >= STMT_LOCK_SHARE_UPDATE_EXCLUSIVE) {
					snprintf(rel, sizeof(rel), "%s%s%s", st->objects[k].schema ? st->objects[k].schema : "",
						 st->objects[k].schema ? "." : "", st->objects[k].name);
					break;
				}
			if (rel[0]) {
				monitor_start(s, rel);
				break;
			}
		}
	}
	verdict_free(&v);
	stmt_list_free(&l);
	return true;
}

bool guard_connect(struct session *s, struct verdict *v)
{
	struct policy_engine *e = s->cfg->policy;
	if (!policy_engine_has_connect(e))
		return true;
	struct policy_session ps;
	guard_fill_session(s, &ps);
	ps.tx_status = 'I';
	policy_check_connect(e, &ps, v);
	return v->kind != VERDICT_DENY;
}
