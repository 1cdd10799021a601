/* facts — see facts.h. */
#include "proxy/facts.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/sideconn.h"

/* Live facts for one relation of one database. */
struct facts_entry {
	char *key;                  /* "host\tport\tdb\tname" (owned) */
	bool ok;                    /* false: could not be fetched (negative cache) */
	struct policy_facts f;
	double at;                  /* when fetched (monotonic seconds) */
	struct facts_entry *next;
};

/* One session's fetch in flight. */
struct facts_req {
	struct session *s;
	char prefix[600];
	char **names;               /* (owned) */
	int n;
	struct policy_facts *results;  /* one per name (owned) */
	struct facts_req *next;
};

struct facts_state {
	struct facts_req *reqs;     /* fetches in flight */
	struct facts_entry *cache;
};

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

static struct facts_state *state_of(struct server *srv)
{
	if (!srv->facts) {
		srv->facts = calloc(1, sizeof(struct facts_state));
		if (!srv->facts)
			abort();
	}
	return srv->facts;
}

static void conn_prefix(struct session *s, char *buf, size_t len)
{
	const char *db = s->route->dbname ? s->route->dbname : s->database;
	snprintf(buf, len, "%s\t%d\t%s\t", s->route->host, s->route->port, db);
}

static struct facts_entry *cache_find(struct facts_state *st, const char *prefix, const char *name,
				      double ttl)
{
	size_t pl = strlen(prefix);
	double now = now_s();
	for (struct facts_entry **pp = &st->cache; *pp;) {
		struct facts_entry *e = *pp;
		if (now - e->at > ttl) {
			/* Expired: drop it while walking. */
			*pp = e->next;
			free(e->key);
			free(e);
			continue;
		}
		if (!strncmp(e->key, prefix, pl) && !strcmp(e->key + pl, name))
			return e;
		pp = &e->next;
	}
	return NULL;
}

static void cache_put(struct facts_state *st, const char *prefix, const char *name, bool ok,
		      const struct policy_facts *f)
{
	struct facts_entry *e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	size_t n = strlen(prefix) + strlen(name) + 1;
	e->key = malloc(n);
	if (!e->key)
		abort();
	snprintf(e->key, n, "%s%s", prefix, name);
	e->ok = ok;
	if (f)
		e->f = *f;
	e->at = now_s();
	e->next = st->cache;
	st->cache = e;
}

/*
 * Facts must never wait for a lock: the migration asking may itself hold ACCESS EXCLUSIVE on
 * the table (an ALTER earlier in its transaction), and pg_relation_size() and friends open
 * the relation. So only the catalog and the statistics are read: rows from reltuples, or,
 * for a table never analysed, the statistics' live-tuple count or an upper bound from its
 * pages; bytes from relpages.
 */
static const char FACTS_SQL[] =
	"SELECT q.name, c.oid IS NOT NULL, c.relkind, "
	"CASE WHEN c.oid IS NULL THEN -1 WHEN c.reltuples >= 0 THEN c.reltuples::bigint "
	"ELSE greatest(coalesce(pg_stat_get_live_tuples(c.oid), 0), c.relpages::bigint * 256) END, "
	"coalesce(c.relpages::bigint * current_setting('block_size')::bigint, 0), "
	"(SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) "
	"FROM unnest($1::text[]) WITH ORDINALITY AS q(name, n) "
	"LEFT JOIN pg_class c ON c.oid = to_regclass(q.name) ORDER BY q.n";

static const char HOLDERS_SQL[] =
	"SELECT q.name, l.pid, l.mode, l.granted, coalesce(a.application_name, ''), "
	"coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.xact_start), -1)::float8, "
	"left(coalesce(a.query, ''), 150) "
	"FROM unnest($1::text[]) AS q(name) "
	"JOIN pg_locks l ON l.locktype = 'relation' AND l.relation = to_regclass(q.name) "
	"AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
	"JOIN pg_stat_activity a ON a.pid = l.pid "
	"WHERE l.pid <> pg_backend_pid() ORDER BY a.xact_start NULLS LAST LIMIT 200";

/* A text[] literal for the names: {"a","b"} with quotes and backslashes escaped. */
static char *array_literal(char **names, int n)
{
	size_t cap = 3;
	for (int i = 0; i < n; i++)
		cap += 2 * strlen(names[i]) + 3;
	char *out = malloc(cap), *p = out;
	if (!out)
		abort();
	*p++ = '{';
	for (int i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *q = names[i]; *q; q++) {
			if (*q == '"' || *q == '\\')
				*p++ = '\\';
			*p++ = *q;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = 0;
	return out;
}

static int name_index(char **names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

static void take_facts(char **names, int n, struct policy_facts *results, PGresult *r)
{
	for (int row = 0; row < PQntuples(r); row++) {
		int i = name_index(names, n, PQgetvalue(r, row, 0));
		if (i < 0)
			continue;
		struct policy_facts *f = &results[i];
		f->exists = PQgetvalue(r, row, 1)[0] == 't';
		f->kind = PQgetvalue(r, row, 2)[0];
		f->rows = atoll(PQgetvalue(r, row, 3));
		f->bytes = atoll(PQgetvalue(r, row, 4));
		f->indexes = atoi(PQgetvalue(r, row, 5));
	}
}

static void take_holders(char **names, int n, struct policy_facts *results, PGresult *r)
{
	for (int row = 0; row < PQntuples(r); row++) {
		int i = name_index(names, n, PQgetvalue(r, row, 0));
		if (i < 0 || results[i].nholders >= POLICY_MAX_HOLDERS)
			continue;
		struct policy_holder *h = &results[i].holders[results[i].nholders++];
		h->pid = atoi(PQgetvalue(r, row, 1));
		snprintf(h->mode, sizeof(h->mode), "%s", PQgetvalue(r, row, 2));
		h->granted = PQgetvalue(r, row, 3)[0] == 't';
		snprintf(h->application_name, sizeof(h->application_name), "%s", PQgetvalue(r, row, 4));
		snprintf(h->state, sizeof(h->state), "%s", PQgetvalue(r, row, 5));
		h->xact_age = atof(PQgetvalue(r, row, 6));
		snprintf(h->query, sizeof(h->query), "%s", PQgetvalue(r, row, 7));
	}
}

bool facts_fetch_blocking(PGconn *pg, const char *name, struct policy_facts *out)
{
	char *names[1] = { (char *)name };
	memset(out, 0, sizeof(*out));
	char *arr = array_literal(names, 1);
	const char *params[1] = { arr };
	bool ok = true;
	const char *sqls[2] = { FACTS_SQL, HOLDERS_SQL };
	for (int i = 0; i < 2 && ok; i++) {
		PGresult *r = PQexecParams(pg, sqls[i], 1, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		if (ok && i == 0)
			take_facts(names, 1, out, r);
		else if (ok)
			take_holders(names, 1, out, r);
		PQclear(r);
	}
	free(arr);
	return ok;
}

static void target_of(struct session *s, struct side_target *t, char *port, size_t plen)
{
	struct route *r = s->route;
	snprintf(port, plen, "%d", r->port);
	t->host = r->host;
	t->port = port;
	t->dbname = r->dbname ? r->dbname : s->database;
	t->user = s->cfg->monitor_user;
	t->password = s->cfg->monitor_password;
	t->sslmode = r->host[0] == '/' ? "disable" : tls_mode_name(r->server_tls_mode);
	t->sslrootcert = r->server_tls_ca_file;
}

static void req_free(struct facts_state *st, struct facts_req *q)
{
	for (struct facts_req **pp = &st->reqs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	for (int i = 0; i < q->n; i++)
		free(q->names[i]);
	free(q->names);
	free(q->results);
	free(q);
}

/* The fetch ended: cache what came (or that nothing did) and resume the session. */
static void req_finish(struct facts_req *q, bool ok)
{
	struct session *s = q->s;
	struct facts_state *st = state_of(s->srv);
	for (int i = 0; i < q->n; i++)
		cache_put(st, q->prefix, q->names[i], ok, ok ? &q->results[i] : NULL);
	req_free(st, q);
	session_facts_ready(s);
}

static void holders_done(void *arg, PGresult *res, const char *error)
{
	struct facts_req *q = arg;
	if (res)
		take_holders(q->names, q->n, q->results, res);
	else
		log_warning("facts: %s", error);
	req_finish(q, res != NULL);
}

static void facts_done(void *arg, PGresult *res, const char *error)
{
	struct facts_req *q = arg;
	if (!res) {
		log_warning("facts: %s", error);
		req_finish(q, false);
		return;
	}
	take_facts(q->names, q->n, q->results, res);
	/* Nothing to hold a lock on (a table created in an open transaction is invisible from
	 * here, so a migration asks about those all the time): skip the second query. */
	bool any = false;
	for (int i = 0; i < q->n && !any; i++)
		any = q->results[i].exists;
	if (!any) {
		req_finish(q, true);
		return;
	}
	struct side_target t;
	char port[16], err[300];
	target_of(q->s, &t, port, sizeof(port));
	char *arr = array_literal(q->names, q->n);
	const char *params[1] = { arr };
	bool sent = side_submit(q->s->srv, &t, q->s->cfg->facts_timeout, HOLDERS_SQL, 1, params,
				holders_done, q, err, sizeof(err));
	free(arr);
	if (!sent)
		req_finish(q, true);  /* facts without holders */
}

/* ---------------------------------------------------------------- API */

enum facts_status facts_prefetch(struct session *s, char **names, int n)
{
	struct config *cfg = s->cfg;
	if (!cfg->monitor_user || !*cfg->monitor_user)
		return FACTS_DISABLED;
	struct facts_state *st = state_of(s->srv);
	char prefix[600];
	conn_prefix(s, prefix, sizeof(prefix));
	struct facts_req *q = calloc(1, sizeof(*q));
	if (!q)
		abort();
	q->s = s;
	snprintf(q->prefix, sizeof(q->prefix), "%s", prefix);
	for (int i = 0; i < n; i++) {
		/* "Does not exist" is never reused: a migration creates tables all the time (and
		 * one created in an open transaction is invisible to the side connection). */
		struct facts_entry *e = cache_find(st, prefix, names[i], cfg->facts_cache_seconds);
		if ((e && (!e->ok || e->f.exists)) || name_index(q->names, q->n, names[i]) >= 0)
			continue;
		q->names = realloc(q->names, (q->n + 1) * sizeof(char *));
		if (!q->names)
			abort();
		q->names[q->n++] = xstrdup(names[i]);
	}
	if (!q->n) {
		req_free(st, q);
		return FACTS_READY;
	}
	q->results = calloc(q->n, sizeof(struct policy_facts));
	if (!q->results)
		abort();
	q->next = st->reqs;
	st->reqs = q;
	struct side_target t;
	char port[16], err[300];
	target_of(s, &t, port, sizeof(port));
	char *arr = array_literal(q->names, q->n);
	const char *params[1] = { arr };
	bool sent = side_submit(s->srv, &t, cfg->facts_timeout, FACTS_SQL, 1, params, facts_done, q,
				err, sizeof(err));
	free(arr);
	if (!sent) {
		/* Backing off after a failure: no facts now, and no asking again for a moment. */
		for (int i = 0; i < q->n; i++)
			cache_put(st, prefix, q->names[i], false, NULL);
		req_free(st, q);
		return FACTS_READY;
	}
	return FACTS_PENDING;
}

void facts_refresh(struct session *s, const char *name)
{
	if (!s->cfg->monitor_user || !*s->cfg->monitor_user)
		return;
	struct facts_state *st = state_of(s->srv);
	char prefix[600];
	conn_prefix(s, prefix, sizeof(prefix));
	size_t pl = strlen(prefix);
	for (struct facts_entry **pp = &st->cache; *pp;) {
		struct facts_entry *e = *pp;
		if (!strncmp(e->key, prefix, pl) && !strcmp(e->key + pl, name)) {
			*pp = e->next;
			free(e->key);
			free(e);
		} else
			pp = &e->next;
	}
	char *names[1] = { (char *)name };
	/* The answer lands in the cache; the session is not waiting for it (its resume is a
	 * no-op when nothing is held). */
	facts_prefetch(s, names, 1);
}

bool facts_lookup(void *arg, const char *name, struct policy_facts *out)
{
	struct session *s = arg;
	struct config *cfg = s->cfg;
	if (!cfg->monitor_user || !*cfg->monitor_user)
		return false;
	char prefix[600];
	conn_prefix(s, prefix, sizeof(prefix));
	/* Even with facts_cache_seconds = 0 (fetch for every statement), the answer fetched for
	 * this statement a moment ago must still be there when its policies ask. */
	double ttl = cfg->facts_cache_seconds < 2 ? 2 : cfg->facts_cache_seconds;
	struct facts_entry *e = cache_find(state_of(s->srv), prefix, name, ttl);
	if (!e || !e->ok)
		return false;
	*out = e->f;
	return true;
}

void facts_forget_session(struct session *s)
{
	struct facts_state *st = s->srv->facts;
	if (!st)
		return;
	for (struct facts_req *q = st->reqs, *n; q; q = n) {
		n = q->next;
		if (q->s == s) {
			side_forget(s->srv, q);
			req_free(st, q);
		}
	}
}

void facts_shutdown(struct server *srv)
{
	struct facts_state *st = srv->facts;
	if (!st)
		return;
	while (st->reqs)
		req_free(st, st->reqs);
	struct facts_entry *e = st->cache, *en;
	for (; e; e = en) {
		en = e->next;
		free(e->key);
		free(e);
	}
	free(st);
	srv->facts = NULL;
}
