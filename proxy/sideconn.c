/* sideconn — see sideconn.h. */
#include "proxy/sideconn.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/log.h"
#include "proxy/server.h"

#define SIDE_MAX_BACKOFF_MS 30000

struct side_job {
	char *sql;
	char **params;
	int nparams;
	int timeout_s;
	double start_by;            /* still queued then: it fails without running (monotonic s; 0: never) */
	side_done_cb cb;            /* NULL once its owner went away */
	void *arg;
	struct side_job *next;
};

enum sc_state { SC_DOWN, SC_CONNECTING, SC_READY, SC_BUSY };

struct side_conn {
	char *key;                  /* host\tport\tdb\tuser (owned) */
	char *label;                /* user@host:port/db, for logs (owned) */
	char *host, *port, *dbname, *user, *password, *sslmode, *sslrootcert;   /* (owned) */
	struct server *srv;
	PGconn *pg;
	struct event *ev;
	int ev_fd;
	short ev_what;
	struct event *timer;
	enum sc_state state;
	int backoff_ms;
	double down_until;
	struct side_job *jobs;      /* queue; the head runs when state is SC_BUSY */
	PGresult *result;           /* the running job's last result */
	struct event *kick_ev;      /* starts queued work from the loop */
	struct side_conn *next;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *dup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static void job_free(struct side_job *j)
{
	free(j->sql);
	for (int i = 0; i < j->nparams; i++)
		free(j->params[i]);
	free(j->params);
	free(j);
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void conn_start_job(struct side_conn *c);

static void conn_watch(struct side_conn *c, short what)
{
	int fd = c->pg ? PQsocket(c->pg) : -1;
	if (c->ev && (c->ev_fd != fd || c->ev_what != what || !what)) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (fd < 0 || !what || c->ev)
		return;
	c->ev = event_new(c->srv->base, fd, what | EV_PERSIST, conn_event_cb, c);
	c->ev_fd = fd;
	c->ev_what = what;
	if (c->ev)
		event_add(c->ev, NULL);
}

/* Finish the head job: call its callback now (we are in an event callback). */
static void finish_head(struct side_conn *c, PGresult *res, const char *error)
{
	struct side_job *j = c->jobs;
	if (!j)
		return;
	c->jobs = j->next;
	if (j->cb)
		j->cb(j->arg, res, error);
	job_free(j);
}

static void conn_down(struct side_conn *c, const char *why)
{
	char msg[300];
	snprintf(msg, sizeof(msg), "%s", why ? why : "connection failed");
	msg[strcspn(msg, "\n")] = 0;
	log_warning("side connection %s failed: %s", c->label, msg);
	conn_watch(c, 0);
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	event_del(c->timer);
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	c->state = SC_DOWN;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 500;
	if (c->backoff_ms > SIDE_MAX_BACKOFF_MS)
		c->backoff_ms = SIDE_MAX_BACKOFF_MS;
	c->down_until = now_s() + c->backoff_ms / 1000.0;
	/* Every queued job fails now rather than waiting for a reconnect. */
	while (c->jobs)
		finish_head(c, NULL, msg);
}

static void conn_connect(struct side_conn *c, int timeout_s)
{
	const char *kw[12], *val[12];
	int n = 0;
	kw[n] = "host"; val[n++] = c->host;
	kw[n] = "port"; val[n++] = c->port;
	kw[n] = "dbname"; val[n++] = c->dbname;
	kw[n] = "user"; val[n++] = c->user;
	if (c->password && *c->password) {
		kw[n] = "password"; val[n++] = c->password;
	}
	kw[n] = "sslmode"; val[n++] = c->sslmode;
	if (c->sslrootcert) {
		kw[n] = "sslrootcert"; val[n++] = c->sslrootcert;
	}
	kw[n] = "application_name"; val[n++] = "ddlguard";
	kw[n] = NULL; val[n] = NULL;
	c->pg = PQconnectStartParams(kw, val, 0);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_down(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = SC_CONNECTING;
	conn_watch(c, EV_WRITE);
	struct timeval tv = { timeout_s, 0 };
	event_add(c->timer, &tv);
}

static void conn_poll_connect(struct side_conn *c)
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
		c->state = SC_READY;
		c->backoff_ms = 0;
		event_del(c->timer);
		conn_watch(c, EV_READ);
		log_debug("side connection %s ready", c->label);
		conn_start_job(c);
		break;
	default:
		conn_down(c, PQerrorMessage(c->pg));
		break;
	}
}

/*
 * Fail the queued jobs that waited their whole timeout for their turn. Jobs run one at a
 * time, so when many sessions need facts at once the queue grows, and a job's timeout
 * (facts_timeout: how long a statement may wait for its facts) has to count from when it
 * was queued: without this, sessions waited minutes behind each other. The callbacks run
 * after the queue is consistent, since they may queue new jobs.
 */
static void expire_queued(struct side_conn *c)
{
	double now = now_s();
	struct side_job *expired = NULL, **tail = &expired;
	/* The head is running while the connection is busy: its own timer covers it. */
	struct side_job **pp = c->state == SC_BUSY && c->jobs ? &c->jobs->next : &c->jobs;
	while (*pp) {
		struct side_job *j = *pp;
		if (j->start_by > 0 && now >= j->start_by) {
			*pp = j->next;
			j->next = NULL;
			*tail = j;
			tail = &j->next;
		} else
			pp = &j->next;
	}
	while (expired) {
		struct side_job *j = expired;
		expired = j->next;
		if (j->cb) {
			char msg[300];
			snprintf(msg, sizeof(msg), "waited %d s for side connection %s behind other queries",
				 j->timeout_s, c->label);
			j->cb(j->arg, NULL, msg);
		}
		job_free(j);
	}
}

static void conn_start_job(struct side_conn *c)
{
	if (c->state != SC_READY)
		return;
	expire_queued(c);
	if (c->state != SC_READY || !c->jobs)
		return;
	struct side_job *j = c->jobs;
	if (!PQsendQueryParams(c->pg, j->sql, j->nparams, NULL, (const char *const *)j->params, NULL, NULL, 0)) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	c->state = SC_BUSY;
	if (PQflush(c->pg) == 1)
		conn_watch(c, EV_READ | EV_WRITE);
	struct timeval tv = { j->timeout_s, 0 };
	event_add(c->timer, &tv);
}

static void conn_read(struct side_conn *c)
{
	if (!PQconsumeInput(c->pg)) {
		conn_down(c, PQerrorMessage(c->pg));
		return;
	}
	while (c->state == SC_BUSY && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (r) {
			/* Keep the last result of the job; a job is one statement. */
			if (c->result)
				PQclear(c->result);
			c->result = r;
			continue;
		}
		PGresult *kept = c->result;
		c->result = NULL;
		event_del(c->timer);
		c->state = SC_READY;
		ExecStatusType st = kept ? PQresultStatus(kept) : PGRES_FATAL_ERROR;
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
			finish_head(c, kept, NULL);
		else {
			char msg[300];
			snprintf(msg, sizeof(msg), "%s", kept ? PQresultErrorMessage(kept) : "no result");
			msg[strcspn(msg, "\n")] = 0;
			finish_head(c, NULL, msg);
		}
		if (kept)
			PQclear(kept);
		conn_start_job(c);
	}
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct side_conn *c = arg;
	if (c->state == SC_CONNECTING) {
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
	struct side_conn *c = arg;
	if (c->state == SC_CONNECTING || c->state == SC_BUSY)
		conn_down(c, "timed out");
}

/* A job submitted while the connection is idle starts from the loop, not in the caller. */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct side_conn *c = arg;
	if (c->state == SC_DOWN && c->jobs)
		conn_connect(c, c->jobs->timeout_s);
	else
		conn_start_job(c);
}

static struct side_conn *conn_for(struct server *srv, const struct side_target *t)
{
	char key[1200];
	snprintf(key, sizeof(key), "%s\t%s\t%s\t%s", t->host, t->port, t->dbname, t->user);
	for (struct side_conn *c = srv->sideconns; c; c = c->next)
		if (!strcmp(c->key, key))
			return c;
	struct side_conn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	char label[1200];
	snprintf(label, sizeof(label), "%s@%s:%s/%s", t->user, t->host, t->port, t->dbname);
	c->key = dup_or_null(key);
	c->label = dup_or_null(label);
	c->host = dup_or_null(t->host);
	c->port = dup_or_null(t->port);
	c->dbname = dup_or_null(t->dbname);
	c->user = dup_or_null(t->user);
	c->password = dup_or_null(t->password);
	c->sslmode = dup_or_null(t->sslmode ? t->sslmode : "prefer");
	c->sslrootcert = dup_or_null(t->sslrootcert);
	c->srv = srv;
	c->ev_fd = -1;
	c->timer = evtimer_new(srv->base, conn_timer_cb, c);
	c->kick_ev = event_new(srv->base, -1, 0, kick_cb, c);
	if (!c->timer || !c->kick_ev)
		abort();
	c->next = srv->sideconns;
	srv->sideconns = c;
	return c;
}

static bool submit(struct server *srv, const struct side_target *t, int timeout_s, bool may_expire,
		   const char *sql, int nparams, const char *const *params, side_done_cb cb, void *arg,
		   char *error, size_t errlen)
{
	struct side_conn *c = conn_for(srv, t);
	if (c->state == SC_DOWN && now_s() < c->down_until) {
		snprintf(error, errlen, "side connection %s is down (retrying in %.0f s)", c->label,
			 c->down_until - now_s());
		return false;
	}
	struct side_job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->sql = dup_or_null(sql);
	j->nparams = nparams;
	j->params = calloc(nparams ? nparams : 1, sizeof(char *));
	if (!j->params)
		abort();
	for (int i = 0; i < nparams; i++)
		j->params[i] = dup_or_null(params[i]);
	j->timeout_s = timeout_s > 0 ? timeout_s : 5;
	j->start_by = may_expire ? now_s() + j->timeout_s : 0;
	j->cb = cb;
	j->arg = arg;
	struct side_job **pp = &c->jobs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = j;
	if (c->state == SC_DOWN || c->state == SC_READY)
		event_active(c->kick_ev, 0, 0);
	return true;
}

bool side_submit(struct server *srv, const struct side_target *t, int timeout_s, const char *sql,
		 int nparams, const char *const *params, side_done_cb cb, void *arg,
		 char *error, size_t errlen)
{
	return submit(srv, t, timeout_s, true, sql, nparams, params, cb, arg, error, errlen);
}

bool side_submit_write(struct server *srv, const struct side_target *t, int timeout_s, const char *sql,
		       int nparams, const char *const *params, side_done_cb cb, void *arg,
		       char *error, size_t errlen)
{
	return submit(srv, t, timeout_s, false, sql, nparams, params, cb, arg, error, errlen);
}

void side_forget(struct server *srv, void *arg)
{
	for (struct side_conn *c = srv->sideconns; c; c = c->next)
		for (struct side_job *j = c->jobs; j; j = j->next)
			if (j->arg == arg)
				j->cb = NULL;
}

void side_shutdown(struct server *srv)
{
	struct side_conn *c = srv->sideconns, *n;
	for (; c; c = n) {
		n = c->next;
		if (c->ev)
			event_free(c->ev);
		if (c->pg)
			PQfinish(c->pg);
		event_free(c->timer);
		event_free(c->kick_ev);
		if (c->result)
			PQclear(c->result);
		while (c->jobs) {
			struct side_job *j = c->jobs;
			c->jobs = j->next;
			job_free(j);
		}
		free(c->key);
		free(c->label);
		free(c->host);
		free(c->port);
		free(c->dbname);
		free(c->user);
		if (c->password) {
			memset(c->password, 0, strlen(c->password));
			free(c->password);
		}
		free(c->sslmode);
		free(c->sslrootcert);
		free(c);
	}
	srv->sideconns = NULL;
}
