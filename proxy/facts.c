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

#define FACTS_MAX_BACKOFF_MS 30000

/* Live facts for one relation of one database. */
struct facts_entry {
	char *key;                  /* "host\tport\tdb\tname" (owned) */
	bool ok;                    /* false: could not be fetched (negative cache) */
	struct policy_facts f;
	double at;                  /* when fetched (monotonic seconds) */
	struct facts_entry *next;
};

struct facts_wait {
	struct session *s;
	char **names;               /* (owned) */
	int n;
	bool in_flight;             /* its names are in the query being run */
	struct facts_wait *next;
};

enum fc_state { FC_DOWN, FC_CONNECTING, FC_READY, FC_QUERY_FACTS, FC_QUERY_HOLDERS };

struct facts_conn {
	char *prefix;               /* "host\tport\tdb\t" (owned) */
	char *label;                /* host:port/db for logs (owned) */
	struct server *srv;
	char *host, *port, *db, *sslmode, *sslrootcert;   /* (owned) */
	PGconn *pg;
	struct event *ev;
	int ev_fd;
	short ev_what;
	enum fc_state state;
	struct event *timer;        /* facts_timeout while a fetch runs; backoff while down */
	int backoff_ms;
	double down_until;
	struct facts_wait *waiters;
	char **batch;               /* names of the query in flight (owned) */
	int nbatch;
	struct policy_facts *results;  /* one per batch name (owned) */
	struct facts_conn *next;
};

struct facts_state {
	struct facts_conn *conns;
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

/* ---------------------------------------------------------------- the side connection */

static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_start_query(struct facts_conn *c);

static void conn_watch(struct facts_conn *c, short what)
{
	int fd = c->pg ? PQsocket(c->pg) : -1;
	if (c->ev && (c->ev_fd != fd || c->ev_what != what)) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (fd < 0 || !what)
		return;
	if (!c->ev) {
		c->ev = event_new(c->srv->base, fd, what | EV_PERSIST, conn_event_cb, c);
		c->ev_fd = fd;
		c->ev_what = what;
		if (c->ev)
			event_add(c->ev, NULL);
	}
}

static void resume(struct facts_wait *w)
{
	struct session *s = w->s;
	for (int i = 0; i < w->n; i++)
		free(w->names[i]);
	free(w->names);
	free(w);
	session_facts_ready(s);
}

/* End the current fetch: cache results (or failures) and resume the sessions it served. */
static void conn_finish_batch(struct facts_conn *c, bool ok)
{
	struct facts_state *st = state_of(c->srv);
	for (int i = 0; i < c->nbatch; i++) {
		cache_put(st, c->prefix, c->batch[i], ok, ok ? &c->results[i] : NULL);
		free(c->batch[i]);
	}
	free(c->batch);
	free(c->results);
	c->batch = NULL;
	c->results = NULL;
	c->nbatch = 0;
	event_del(c->timer);
	struct facts_wait **pp = &c->waiters;
	while (*pp) {
		struct facts_wait *w = *pp;
		if (w->in_flight) {
			*pp = w->next;
			resume(w);
		} else
			pp = &w->next;
	}
}

static void conn_down(struct facts_conn *c, const char *why)
{
	log_warning("facts: side connection to %s failed: %s", c->label, why);
	if (c->pg) {
		conn_watch(c, 0);
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->state = FC_DOWN;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 500;
	if (c->backoff_ms > FACTS_MAX_BACKOFF_MS)
		c->backoff_ms = FACTS_MAX_BACKOFF_MS;
	c->down_until = now_s() + c->backoff_ms / 1000.0;
	/* Everyone waiting gets no facts rather than waiting for a reconnect. */
	for (struct facts_wait *w = c->waiters; w; w = w->next)
		if (!w->in_flight) {
			w->in_flight = true;
			for (int i = 0; i < w->n; i++) {
				c->batch = realloc(c->batch, (c->nbatch + 1) * sizeof(char *));
				if (!c->batch)
					abort();
				c->batch[c->nbatch++] = xstrdup(w->names[i]);
			}
		}
	conn_finish_batch(c, false);
}

static void conn_connect(struct facts_conn *c)
{
	struct config *cfg = c->srv->cfg;
	const char *kw[12], *val[12];
	int n = 0;
	kw[n] = "host"; val[n++] = c->host;
	kw[n] = "port"; val[n++] = c->port;
	kw[n] = "dbname"; val[n++] = c->db;
	kw[n] = "user"; val[n++] = cfg->monitor_user;
	if (cfg->monitor_password && *cfg->monitor_password) {
		kw[n] = "password"; val[n++] = cfg->monitor_password;
	}
	kw[n] = "sslmode"; val[n++] = c->sslmode;
	if (c->sslrootcert) {
		kw[n] = "sslrootcert"; val[n++] = c->sslrootcert;
	}
	kw[n] = "application_name"; val[n++] = "ddlguard facts";
	kw[n] = "connect_timeout"; val[n++] = "10";
	kw[n] = NULL; val[n] = NULL;
	c->pg = PQconnectStartParams(kw, val, 0);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_down(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = FC_CONNECTING;
	conn_watch(c, EV_WRITE);
	struct timeval tv = { cfg->facts_timeout, 0 };
	event_add(c->timer, &tv);
}

static void conn_poll_connect(struct facts_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		conn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		conn_watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		PQsetnonblocking(c->pg, 1);
		c->state = FC_READY;
		c->backoff_ms = 0;
		conn_watch(c, EV_READ);
		log_debug("facts: side connection to %s ready", c->label);
		conn_start_query(c);
		break;
	default: {
		char why[300];
		snprintf(why, sizeof(why), "%s", PQerrorMessage(c->pg));
		why[strcspn(why, "\n")] = 0;
		conn_down(c, why);
		break;
	}
	}
}

static const char FACTS_SQL[] =
	"SELECT q.name, c.oid IS NOT NULL, c.relkind, "
	"CASE WHEN c.reltuples < 0 THEN -1 ELSE c.reltuples::bigint END, "
	"coalesce(pg_total_relation_size(c.oid), 0), "
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

static bool send_batch_query(struct facts_conn *c, const char *sql)
{
	char *arr = array_literal(c->batch, c->nbatch);
	const char *params[1] = { arr };
	int ok = PQsendQueryParams(c->pg, sql, 1, NULL, params, NULL, NULL, 0);
	free(arr);
	if (!ok)
		return false;
	if (PQflush(c->pg) == 1)
		conn_watch(c, EV_READ | EV_WRITE);
	return true;
}

static void conn_start_query(struct facts_conn *c)
{
	if (c->state != FC_READY || c->nbatch)
		return;
	/* One fetch serves every session waiting on this database. */
	for (struct facts_wait *w = c->waiters; w; w = w->next) {
		w->in_flight = true;
		for (int i = 0; i < w->n; i++) {
			bool dup = false;
			for (int k = 0; k < c->nbatch; k++)
				if (!strcmp(c->batch[k], w->names[i]))
					dup = true;
			if (dup)
				continue;
			c->batch = realloc(c->batch, (c->nbatch + 1) * sizeof(char *));
			if (!c->batch)
				abort();
			c->batch[c->nbatch++] = xstrdup(w->names[i]);
		}
	}
	if (!c->nbatch) {
		conn_finish_batch(c, true);
		return;
	}
	c->results = calloc(c->nbatch, sizeof(struct policy_facts));
	if (!c->results)
		abort();
	if (!send_batch_query(c, FACTS_SQL)) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	c->state = FC_QUERY_FACTS;
	struct timeval tv = { c->srv->cfg->facts_timeout, 0 };
	event_add(c->timer, &tv);
}

static int batch_index(struct facts_conn *c, const char *name)
{
	for (int i = 0; i < c->nbatch; i++)
		if (!strcmp(c->batch[i], name))
			return i;
	return -1;
}

static void take_facts(struct facts_conn *c, PGresult *r)
{
	for (int row = 0; row < PQntuples(r); row++) {
		int i = batch_index(c, PQgetvalue(r, row, 0));
		if (i < 0)
			continue;
		struct policy_facts *f = &c->results[i];
		f->exists = PQgetvalue(r, row, 1)[0] == 't';
		f->kind = PQgetvalue(r, row, 2)[0];
		f->rows = atoll(PQgetvalue(r, row, 3));
		f->bytes = atoll(PQgetvalue(r, row, 4));
		f->indexes = atoi(PQgetvalue(r, row, 5));
	}
}

static void take_holders(struct facts_conn *c, PGresult *r)
{
	for (int row = 0; row < PQntuples(r); row++) {
		int i = batch_index(c, PQgetvalue(r, row, 0));
		if (i < 0 || c->results[i].nholders >= POLICY_MAX_HOLDERS)
			continue;
		struct policy_holder *h = &c->results[i].holders[c->results[i].nholders++];
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
	struct facts_conn c = { 0 };
	char *batch[1] = { (char *)name };
	c.batch = batch;
	c.nbatch = 1;
	c.results = out;
	memset(out, 0, sizeof(*out));
	char *arr = array_literal(batch, 1);
	const char *params[1] = { arr };
	bool ok = true;
	const char *sqls[2] = { FACTS_SQL, HOLDERS_SQL };
	for (int i = 0; i < 2 && ok; i++) {
		PGresult *r = PQexecParams(pg, sqls[i], 1, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		if (ok && i == 0)
			take_facts(&c, r);
		else if (ok)
			take_holders(&c, r);
		PQclear(r);
	}
	free(arr);
	return ok;
}

static void conn_read(struct facts_conn *c)
{
	if (!PQconsumeInput(c->pg)) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			/* The query's results are complete. */
			if (c->state == FC_QUERY_FACTS) {
				if (!send_batch_query(c, HOLDERS_SQL)) {
					conn_down(c, PQerrorMessage(c->pg));
					return;
				}
				c->state = FC_QUERY_HOLDERS;
				continue;
			}
			if (c->state == FC_QUERY_HOLDERS) {
				c->state = FC_READY;
				conn_finish_batch(c, true);
				conn_start_query(c);
			}
			return;
		}
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			char why[300];
			snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
			why[strcspn(why, "\n")] = 0;
			PQclear(r);
			conn_down(c, why);
			return;
		}
		if (c->state == FC_QUERY_FACTS)
			take_facts(c, r);
		else if (c->state == FC_QUERY_HOLDERS)
			take_holders(c, r);
		PQclear(r);
	}
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct facts_conn *c = arg;
	if (c->state == FC_CONNECTING) {
		conn_poll_connect(c);
		return;
	}
	if (what & EV_WRITE) {
		int f = PQflush(c->pg);
		if (f < 0) {
			conn_down(c, PQerrorMessage(c->pg));
			return;
		}
		if (f == 0)
			conn_watch(c, EV_READ);
	}
	if (what & EV_READ)
		conn_read(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct facts_conn *c = arg;
	if (c->state == FC_CONNECTING || c->state == FC_QUERY_FACTS || c->state == FC_QUERY_HOLDERS)
		conn_down(c, "facts_timeout reached");
}

static struct facts_conn *conn_for(struct session *s)
{
	struct facts_state *st = state_of(s->srv);
	char prefix[600];
	conn_prefix(s, prefix, sizeof(prefix));
	for (struct facts_conn *c = st->conns; c; c = c->next)
		if (!strcmp(c->prefix, prefix))
			return c;
	struct facts_conn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	struct route *r = s->route;
	char port[16], label[600];
	snprintf(port, sizeof(port), "%d", r->port);
	const char *db = r->dbname ? r->dbname : s->database;
	snprintf(label, sizeof(label), "%s:%d/%s", r->host, r->port, db);
	c->prefix = xstrdup(prefix);
	c->label = xstrdup(label);
	c->srv = s->srv;
	c->host = xstrdup(r->host);
	c->port = xstrdup(port);
	c->db = xstrdup(db);
	c->sslmode = xstrdup(r->host[0] == '/' ? "disable" : tls_mode_name(r->server_tls_mode));
	c->sslrootcert = r->server_tls_ca_file ? xstrdup(r->server_tls_ca_file) : NULL;
	c->ev_fd = -1;
	c->timer = evtimer_new(s->srv->base, conn_timer_cb, c);
	if (!c->timer)
		abort();
	c->next = st->conns;
	st->conns = c;
	return c;
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
	char **missing = NULL;
	int nmissing = 0;
	for (int i = 0; i < n; i++) {
		if (cache_find(st, prefix, names[i], cfg->facts_cache_seconds))
			continue;
		missing = realloc(missing, (nmissing + 1) * sizeof(char *));
		if (!missing)
			abort();
		missing[nmissing++] = xstrdup(names[i]);
	}
	if (!nmissing)
		return FACTS_READY;
	struct facts_conn *c = conn_for(s);
	if (c->state == FC_DOWN && now_s() < c->down_until) {
		/* Still backing off: no facts now, and do not ask again for a moment. */
		for (int i = 0; i < nmissing; i++) {
			cache_put(st, prefix, missing[i], false, NULL);
			free(missing[i]);
		}
		free(missing);
		return FACTS_READY;
	}
	struct facts_wait *w = calloc(1, sizeof(*w));
	if (!w)
		abort();
	w->s = s;
	w->names = missing;
	w->n = nmissing;
	struct facts_wait **pp = &c->waiters;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	if (c->state == FC_DOWN)
		conn_connect(c);
	else
		conn_start_query(c);
	/* If conn_connect failed at once, the waiter was answered (no facts, cached as such)
	 * and its deferred resume is harmless: decide now. */
	for (struct facts_wait *x = c->waiters; x; x = x->next)
		if (x == w)
			return FACTS_PENDING;
	return FACTS_READY;
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
	for (struct facts_conn *c = st->conns; c; c = c->next) {
		struct facts_wait **pp = &c->waiters;
		while (*pp) {
			struct facts_wait *w = *pp;
			if (w->s == s) {
				*pp = w->next;
				for (int i = 0; i < w->n; i++)
					free(w->names[i]);
				free(w->names);
				free(w);
			} else
				pp = &w->next;
		}
	}
}

void facts_shutdown(struct server *srv)
{
	struct facts_state *st = srv->facts;
	if (!st)
		return;
	struct facts_conn *c = st->conns, *cn;
	for (; c; c = cn) {
		cn = c->next;
		if (c->ev)
			event_free(c->ev);
		if (c->pg)
			PQfinish(c->pg);
		event_free(c->timer);
		for (int i = 0; i < c->nbatch; i++)
			free(c->batch[i]);
		free(c->batch);
		free(c->results);
		while (c->waiters) {
			struct facts_wait *w = c->waiters;
			c->waiters = w->next;
			for (int i = 0; i < w->n; i++)
				free(w->names[i]);
			free(w->names);
			free(w);
		}
		free(c->prefix);
		free(c->label);
		free(c->host);
		free(c->port);
		free(c->db);
		free(c->sslmode);
		free(c->sslrootcert);
		free(c);
	}
	struct facts_entry *e = st->cache, *en;
	for (; e; e = en) {
		en = e->next;
		free(e->key);
		free(e);
	}
	free(st);
	srv->facts = NULL;
}
