/* ledger — see ledger.h. */
#include "proxy/ledger.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies/statement.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/sideconn.h"

struct stmt_info;

#define LEDGER_CACHE_SECONDS 10

/* What the ledger says about one statement of one target. */
struct ledger_entry {
	char *key;                  /* target \t strict_id (owned) */
	bool reachable;             /* false: the lookup failed (deny, fail closed) */
	bool found;
	double age;                 /* seconds since staging first committed it */
	char *nearest;              /* a staging statement with the same fingerprint (owned) */
	char *error;                /* why the lookup failed (owned) */
	double at;
	struct ledger_entry *next;
};

struct ledger_lookup {
	struct session *s;
	char target[256];
	char **sids;                /* (owned) */
	int n;
	struct ledger_lookup *next;
};

struct ledger_state {
	struct ledger_entry *cache;
	struct ledger_lookup *lookups;
	bool ensured;               /* the ledger table exists (this process created or saw it) */
};

static const char ENSURE_SCHEMA[] = "CREATE SCHEMA IF NOT EXISTS ddlguard";
static const char ENSURE_TABLE[] =
	"CREATE TABLE IF NOT EXISTS ddlguard.applied_change ("
	" environment text NOT NULL, target text NOT NULL, strict_id text NOT NULL,"
	" fingerprint text NOT NULL, canonical_sql text NOT NULL, command_tag text NOT NULL,"
	" objects text[] NOT NULL DEFAULT '{}', tool text, tool_version text, db_user text,"
	" application_name text, first_committed_at timestamptz NOT NULL DEFAULT now(),"
	" last_committed_at timestamptz NOT NULL DEFAULT now(), commit_count int NOT NULL DEFAULT 1,"
	" PRIMARY KEY (environment, target, strict_id))";
static const char ENSURE_INDEX[] =
	"CREATE INDEX IF NOT EXISTS applied_change_fp ON ddlguard.applied_change (target, fingerprint)";
static const char RECORD_SQL[] =
	"INSERT INTO ddlguard.applied_change AS a (environment, target, strict_id, fingerprint, "
	"canonical_sql, command_tag, objects, tool, db_user, application_name) "
	"VALUES ($1, $2, $3, $4, $5, $6, string_to_array($7, ','), $8, $9, $10) "
	"ON CONFLICT (environment, target, strict_id) DO UPDATE "
	"SET last_committed_at = now(), commit_count = a.commit_count + 1";
static const char LOOKUP_SQL[] =
	"SELECT q.sid, a.strict_id IS NOT NULL, "
	"coalesce(extract(epoch FROM now() - a.first_committed_at), -1)::float8, "
	"(SELECT b.canonical_sql FROM ddlguard.applied_change b WHERE b.target = $2 "
	" AND b.environment = ANY(string_to_array($3, ',')) AND b.fingerprint = q.fp "
	" ORDER BY b.last_committed_at DESC LIMIT 1) "
	"FROM unnest(string_to_array($1, ','), string_to_array($4, ',')) AS q(sid, fp) "
	"LEFT JOIN ddlguard.applied_change a ON a.target = $2 "
	"AND a.environment = ANY(string_to_array($3, ',')) AND a.strict_id = q.sid";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

static struct ledger_state *state_of(struct server *srv)
{
	if (!srv->ledger) {
		srv->ledger = calloc(1, sizeof(struct ledger_state));
		if (!srv->ledger)
			abort();
	}
	return srv->ledger;
}

/* Is `env` in the comma-separated `list`? */
static bool in_list(const char *list, const char *env)
{
	size_t n = strlen(env);
	for (const char *p = list; p && *p;) {
		while (*p == ',' || *p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && !strncmp(p, env, n))
			return true;
		p = e;
	}
	return false;
}

bool ledger_is_staging(const struct session *s)
{
	return s->route && in_list(s->cfg->staging_environments, s->route->environment);
}

/* Staging first needs somewhere to keep records: a `ledger`, or a staging route. */
static bool ledger_configured(const struct config *c)
{
	if (c->ledger && *c->ledger)
		return true;
	for (const struct route *r = c->routes; r; r = r->next)
		if (in_list(c->staging_environments, r->environment))
			return true;
	return c->fallback && in_list(c->staging_environments, c->fallback->environment);
}

bool ledger_is_gated(const struct session *s)
{
	return s->route && in_list(s->cfg->gated_environments, s->route->environment) &&
	       ledger_configured(s->cfg);
}

static const char *target_of(const struct session *s)
{
	if (s->route->target)
		return s->route->target;
	return s->route->dbname ? s->route->dbname : s->database;
}

/*
 * Where the ledger is: `ledger` (a conninfo) or the first staging route's database. Fills
 * t from strings that live in cfg (or in the static buffers). False with a reason.
 */
static bool ledger_target(struct config *cfg, struct side_target *t, char *why, size_t whylen)
{
	static char host[256], port[16], db[256], user[128], password[256], sslmode[32], root[512];
	memset(t, 0, sizeof(*t));
	if (!cfg->monitor_user || !*cfg->monitor_user) {
		snprintf(why, whylen, "the staging ledger needs monitor_user (and monitor_password)");
		return false;
	}
	snprintf(user, sizeof(user), "%s", cfg->monitor_user);
	snprintf(password, sizeof(password), "%s", cfg->monitor_password ? cfg->monitor_password : "");
	snprintf(sslmode, sizeof(sslmode), "prefer");
	root[0] = 0;
	if (cfg->ledger && *cfg->ledger) {
		char *err = NULL;
		PQconninfoOption *opts = PQconninfoParse(cfg->ledger, &err);
		if (!opts) {
			snprintf(why, whylen, "invalid ledger conninfo");
			PQfreemem(err);
			return false;
		}
		snprintf(host, sizeof(host), "127.0.0.1");
		snprintf(port, sizeof(port), "5432");
		snprintf(db, sizeof(db), "postgres");
		for (PQconninfoOption *o = opts; o->keyword; o++) {
			if (!o->val || !*o->val)
				continue;
			if (!strcmp(o->keyword, "host"))
				snprintf(host, sizeof(host), "%s", o->val);
			else if (!strcmp(o->keyword, "port"))
				snprintf(port, sizeof(port), "%s", o->val);
			else if (!strcmp(o->keyword, "dbname"))
				snprintf(db, sizeof(db), "%s", o->val);
			else if (!strcmp(o->keyword, "user"))
				snprintf(user, sizeof(user), "%s", o->val);
			else if (!strcmp(o->keyword, "password"))
				snprintf(password, sizeof(password), "%s", o->val);
			else if (!strcmp(o->keyword, "sslmode"))
				snprintf(sslmode, sizeof(sslmode), "%s", o->val);
			else if (!strcmp(o->keyword, "sslrootcert"))
				snprintf(root, sizeof(root), "%s", o->val);
		}
		PQconninfoFree(opts);
	} else {
		struct route *r = NULL;
		for (struct route *x = cfg->routes; x && !r; x = x->next)
			if (in_list(cfg->staging_environments, x->environment))
				r = x;
		if (!r && cfg->fallback && in_list(cfg->staging_environments, cfg->fallback->environment) &&
		    cfg->fallback->dbname)
			r = cfg->fallback;
		if (!r) {
			snprintf(why, whylen, "no staging route to keep the ledger in: set ledger = <conninfo>");
			return false;
		}
		snprintf(host, sizeof(host), "%s", r->host);
		snprintf(port, sizeof(port), "%d", r->port);
		snprintf(db, sizeof(db), "%s", r->dbname ? r->dbname : r->name);
		snprintf(sslmode, sizeof(sslmode), "%s", r->host[0] == '/' ? "disable" : tls_mode_name(r->server_tls_mode));
		if (r->server_tls_ca_file)
			snprintf(root, sizeof(root), "%s", r->server_tls_ca_file);
	}
	t->host = host;
	t->port = port;
	t->dbname = db;
	t->user = user;
	t->password = password[0] ? password : NULL;
	t->sslmode = sslmode;
	t->sslrootcert = root[0] ? root : NULL;
	return true;
}

static struct ledger_entry *cache_find(struct ledger_state *st, const char *target, const char *sid)
{
	char key[512];
	snprintf(key, sizeof(key), "%s\t%s", target, sid);
	double now = now_s();
	for (struct ledger_entry **pp = &st->cache; *pp;) {
		struct ledger_entry *e = *pp;
		if (now - e->at > LEDGER_CACHE_SECONDS) {
			*pp = e->next;
			free(e->key);
			free(e->nearest);
			free(e->error);
			free(e);
			continue;
		}
		if (!strcmp(e->key, key))
			return e;
		pp = &e->next;
	}
	return NULL;
}

static void cache_put(struct ledger_state *st, const char *target, const char *sid, bool reachable,
		      bool found, double age, const char *nearest, const char *error)
{
	struct ledger_entry *e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	char key[512];
	snprintf(key, sizeof(key), "%s\t%s", target, sid);
	e->key = xstrdup(key);
	e->reachable = reachable;
	e->found = found;
	e->age = age;
	e->nearest = nearest && *nearest ? xstrdup(nearest) : NULL;
	e->error = error ? xstrdup(error) : NULL;
	e->at = now_s();
	e->next = st->cache;
	st->cache = e;
}

static bool gated_statement(const struct stmt_info *st)
{
	if (!st->ddl)
		return false;
	for (int i = 0; i < st->nobjects; i++)
		if (stmt_bookkeeping_tool(st->objects[i].schema, st->objects[i].name))
			return false;
	return true;
}

static void lookup_free(struct ledger_state *st, struct ledger_lookup *q)
{
	for (struct ledger_lookup **pp = &st->lookups; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	for (int i = 0; i < q->n; i++)
		free(q->sids[i]);
	free(q->sids);
	free(q);
}

static void lookup_done(void *arg, PGresult *res, const char *error)
{
	struct ledger_lookup *q = arg;
	struct session *s = q->s;
	struct ledger_state *st = state_of(s->srv);
	/* No table yet means no staging record: reachable, nothing found. */
	bool missing = !res && error && strstr(error, "does not exist");
	if (res) {
		for (int row = 0; row < PQntuples(res); row++)
			cache_put(st, q->target, PQgetvalue(res, row, 0), true, PQgetvalue(res, row, 1)[0] == 't',
				  atof(PQgetvalue(res, row, 2)), PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3),
				  NULL);
	}
	/* A failed lookup must say so even when an older answer ("not found") is still cached
	 * for the same statement: the deny would otherwise blame staging, not the ledger. The
	 * newest entry shadows the older one. */
	bool failed = !res && !missing;
	for (int i = 0; i < q->n; i++)
		if (failed || !cache_find(st, q->target, q->sids[i]))
			cache_put(st, q->target, q->sids[i], !failed, false, -1, NULL, failed ? error : NULL);
	if (failed) {
		s->srv->stats.ledger_errors++;
		slog_warning(s, "ledger lookup failed: %s", error);
	}
	lookup_free(st, q);
	session_facts_ready(s);
}

enum ledger_status ledger_prefetch(struct session *s, const struct stmt_list *l, bool just_fetched)
{
	if (!ledger_is_gated(s))
		return LEDGER_READY;
	struct ledger_state *st = state_of(s->srv);
	const char *target = target_of(s);
	struct ledger_lookup *q = calloc(1, sizeof(*q));
	if (!q)
		abort();
	q->s = s;
	snprintf(q->target, sizeof(q->target), "%s", target);
	struct pgw_buf sids = { 0 }, fps = { 0 };
	for (int i = 0; i < l->n; i++) {
		const struct stmt_info *x = &l->items[i];
		if (!gated_statement(x))
			continue;
		/* A staging record, once seen, holds for the cache's life; "not found" and
		 * "unreachable" only serve the re-inspection that waited for them: staging may
		 * record the statement any moment. */
		struct ledger_entry *e = cache_find(st, target, x->strict_id_hex);
		if (e && (e->found || just_fetched))
			continue;
		q->sids = realloc(q->sids, (q->n + 1) * sizeof(char *));
		if (!q->sids)
			abort();
		q->sids[q->n++] = xstrdup(x->strict_id_hex);
		if (sids.len) {
			pgw_buf_put_u8(&sids, ',');
			pgw_buf_put_u8(&fps, ',');
		}
		pgw_buf_put(&sids, x->strict_id_hex, strlen(x->strict_id_hex));
		pgw_buf_put(&fps, x->fingerprint_hex, strlen(x->fingerprint_hex));
	}
	enum ledger_status result = LEDGER_READY;
	if (q->n) {
		pgw_buf_put_u8(&sids, 0);
		pgw_buf_put_u8(&fps, 0);
		struct side_target t;
		char why[300];
		const char *params[4] = { (const char *)sids.data, target, s->cfg->staging_environments,
					  (const char *)fps.data };
		if (!ledger_target(s->cfg, &t, why, sizeof(why)) ||
		    !side_submit(s->srv, &t, s->cfg->facts_timeout, LOOKUP_SQL, 4, params, lookup_done, q,
				 why, sizeof(why))) {
			for (int i = 0; i < q->n; i++)
				cache_put(st, target, q->sids[i], false, false, -1, NULL, why);
		} else {
			q->next = st->lookups;
			st->lookups = q;
			q = NULL;
			result = LEDGER_PENDING;
		}
	}
	if (q) {
		for (int i = 0; i < q->n; i++)
			free(q->sids[i]);
		free(q->sids);
		free(q);
	}
	pgw_buf_free(&sids);
	pgw_buf_free(&fps);
	return result;
}

/* A contract step removes what the previous application version may still use. */
static bool contract_step(const struct stmt_info *st)
{
	if (!strcmp(st->tag, "DROP TABLE") || !strcmp(st->tag, "DROP VIEW"))
		return true;
	for (int i = 0; i < st->nsubcmds; i++) {
		const char *n = st->subcmds[i].name;
		if (!strcmp(n, "DROP COLUMN") || !strncmp(n, "RENAME", 6))
			return true;
	}
	return strcmp(st->node, "RenameStmt") == 0;
}

void ledger_gate(struct session *s, const struct stmt_info *st, struct verdict *v)
{
	if (!ledger_is_gated(s) || !gated_statement(st))
		return;
	struct ledger_entry *e = cache_find(state_of(s->srv), target_of(s), st->strict_id_hex);
	char msg[512], detail[600], hint[1200];
	if (!e || !e->reachable) {
		snprintf(msg, sizeof(msg), "ddlguard cannot check that this %s ran in staging: the ledger is unreachable",
			 st->tag);
		snprintf(detail, sizeof(detail), "%s", e && e->error ? e->error : "no answer from the ledger");
		verdict_deny(v, "42501", "staging-first", msg, detail,
			     "Staging first fails closed: fix the ledger connection (ledger, monitor_user) and retry.");
		return;
	}
	if (!e->found) {
		snprintf(msg, sizeof(msg), "this %s has not run in staging", st->tag);
		snprintf(detail, sizeof(detail), "No staging record of strict id %.16s… for \"%s\".", st->strict_id_hex,
			 target_of(s));
		if (e->nearest)
			snprintf(hint, sizeof(hint), "Staging ran a statement like it with other names or constants: %.1000s",
				 e->nearest);
		else
			snprintf(hint, sizeof(hint), "Run this migration in staging first.");
		verdict_deny(v, "42501", "staging-first", msg, detail, hint);
		return;
	}
	if (s->cfg->contract_window > 0 && contract_step(st) && e->age < s->cfg->contract_window) {
		snprintf(msg, sizeof(msg), "this %s ran in staging only %.0f hours ago; contract steps wait %.0f hours",
			 st->tag, e->age / 3600, s->cfg->contract_window / 3600.0);
		verdict_deny(v, "42501", "contract-window", msg,
			     "A contract step removes what the previous application version may still use.",
			     "Deploy the application that no longer uses it everywhere, then run this after the window.");
	}
}

static void record_done(void *arg, PGresult *res, const char *error)
{
	if (!res)
		log_warning("ledger: could not record a staging statement: %s", error);
}

static void ensure_done(void *arg, PGresult *res, const char *error)
{
	struct server *srv = arg;
	if (res)
		state_of(srv)->ensured = true;
	else
		log_warning("ledger: could not create ddlguard.applied_change: %s", error);
}

void ledger_record_commit(struct session *s)
{
	if (!ledger_is_staging(s) || !s->guard.ntx)
		return;
	struct ledger_state *st = state_of(s->srv);
	struct side_target t;
	char why[300];
	if (!ledger_target(s->cfg, &t, why, sizeof(why))) {
		slog_warning(s, "ledger: not recording: %s", why);
		return;
	}
	int timeout = s->cfg->facts_timeout > 5 ? s->cfg->facts_timeout : 5;
	if (!st->ensured) {
		/* Jobs run in order on the one connection: the table exists before the inserts. */
		side_submit_write(s->srv, &t, timeout, ENSURE_SCHEMA, 0, NULL, NULL, NULL, why, sizeof(why));
		side_submit_write(s->srv, &t, timeout, ENSURE_TABLE, 0, NULL, NULL, NULL, why, sizeof(why));
		side_submit_write(s->srv, &t, timeout, ENSURE_INDEX, 0, NULL, ensure_done, s->srv, why, sizeof(why));
	}
	const char *tool = s->guard.tool ? s->guard.tool : (s->app ? s->app : "");
	int recorded = 0;
	for (int i = 0; i < s->guard.ntx; i++) {
		const struct policy_tx_stmt *x = &s->guard.tx[i];
		if (x->exempt)
			continue;
		const char *params[10] = { s->route->environment, target_of(s), x->strict_id, x->fingerprint,
					   x->text, x->tag, x->objects, tool, s->user, s->app ? s->app : "" };
		if (side_submit_write(s->srv, &t, timeout, RECORD_SQL, 10, params, record_done, NULL, why, sizeof(why)))
			recorded++;
		else
			slog_warning(s, "ledger: could not record: %s", why);
	}
	if (recorded)
		slog_info(s, "ledger: recorded %d statements for %s in %s", recorded, target_of(s),
			  s->route->environment);
}

void ledger_forget_session(struct session *s)
{
	struct ledger_state *st = s->srv->ledger;
	if (!st)
		return;
	for (struct ledger_lookup *q = st->lookups, *n; q; q = n) {
		n = q->next;
		if (q->s == s) {
			side_forget(s->srv, q);
			lookup_free(st, q);
		}
	}
}

void ledger_shutdown(struct server *srv)
{
	struct ledger_state *st = srv->ledger;
	if (!st)
		return;
	while (st->lookups)
		lookup_free(st, st->lookups);
	struct ledger_entry *e = st->cache, *n;
	for (; e; e = n) {
		n = e->next;
		free(e->key);
		free(e->nearest);
		free(e->error);
		free(e);
	}
	free(st);
	srv->ledger = NULL;
}
