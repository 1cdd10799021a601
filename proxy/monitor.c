/* monitor — see monitor.h. */
#include "proxy/monitor.h"

#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol/pgw.h"
#include "proxy/audit.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/sideconn.h"
#include "policies/engine.h"
#include "proxy/guard.h"

/* One query per poll: our backend's lock wait (advisory locks excluded), who blocks it,
 * and who waits behind it. Each part returns rows only while there is a wait. pg_locks
 * and pg_blocking_pids() are readable by any role; pg_stat_activity shows other roles'
 * state and query only to pg_read_all_stats, hence the coalesce(). */
static const char WAIT_SQL[] =
	"SELECT 'self', l.pid, '', '', '', coalesce(extract(epoch FROM now() - l.waitstart), 0)::float8, l.mode "
	"FROM pg_locks l WHERE l.pid = $1::int AND NOT l.granted AND l.locktype <> 'advisory' "
	"UNION ALL "
	"SELECT 'blocker', a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), "
	"coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.xact_start), -1)::float8, "
	"left(coalesce(a.query, ''), 200) FROM pg_stat_activity a "
	"WHERE a.pid = ANY(pg_blocking_pids($1::int)) "
	"UNION ALL "
	"SELECT 'queued', w.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), "
	"coalesce(a.state, ''), coalesce(extract(epoch FROM now() - w.waitstart), 0)::float8, "
	"left(coalesce(a.query, ''), 200) FROM pg_locks w JOIN pg_stat_activity a ON a.pid = w.pid "
	"WHERE NOT w.granted AND w.pid <> $1::int AND $1::int = ANY(pg_blocking_pids(w.pid))";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void arm(struct session *s, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(s->monitor.timer, &tv);
}

/* ---------------------------------------------------------------- ddlguard's own cancel */

/* A CancelRequest to the server for our session's backend, on a connection of its own:
 * PostgreSQL reads it before any authentication, in plaintext. */
struct cancel_sender {
	struct event_base *base;
	int fd;
	struct event *ev;
	struct pgw_buf pkt;
	bool sent;
};

static void cancel_free(struct cancel_sender *c)
{
	if (c->ev)
		event_free(c->ev);
	if (c->fd >= 0)
		close(c->fd);
	pgw_buf_free(&c->pkt);
	free(c);
}

static void cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cancel_sender *c = arg;
	if (!c->sent) {
		ssize_t n = send(fd, c->pkt.data, c->pkt.len, MSG_NOSIGNAL);
		if (n != (ssize_t)c->pkt.len) {
			log_warning("could not send ddlguard's cancel request: %s", strerror(errno));
			cancel_free(c);
			return;
		}
		c->sent = true;
		event_free(c->ev);
		struct timeval tv = { 10, 0 };
		c->ev = event_new(c->base, fd, EV_READ, cancel_cb, c);
		if (!c->ev || event_add(c->ev, &tv) < 0)
			cancel_free(c);
		return;
	}
	/* The server closes the connection once it has acted on the request. */
	cancel_free(c);
}

static bool send_cancel(struct session *s)
{
	struct route *r = s->route;
	struct cancel_sender *c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	c->base = s->srv->base;
	c->fd = -1;
	pgw_build_cancel(&c->pkt, s->srv_pid, s->srv_secret, s->srv_secret_len);
	if (r->host[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", r->host, r->port);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS)) {
			cancel_free(c);
			return false;
		}
	} else {
		char port[16];
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		snprintf(port, sizeof(port), "%d", r->port);
		if (getaddrinfo(r->host, port, &hints, &ai) != 0 || !ai) {
			cancel_free(c);
			return false;
		}
		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int rc = c->fd < 0 ? -1 : connect(c->fd, ai->ai_addr, ai->ai_addrlen);
		int e = errno;
		freeaddrinfo(ai);
		if (c->fd < 0 || (rc < 0 && e != EINPROGRESS)) {
			cancel_free(c);
			return false;
		}
	}
	c->ev = event_new(c->base, c->fd, EV_WRITE, cancel_cb, c);
	struct timeval tv = { 10, 0 };
	if (!c->ev || event_add(c->ev, &tv) < 0) {
		cancel_free(c);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- polling */

static void poll_done(void *arg, PGresult *res, const char *error)
{
	struct session *s = arg;
	struct session_monitor *m = &s->monitor;
	m->polling = false;
	if (!m->watching)
		return;
	if (!res) {
		slog_debug(s, "lock monitor: %s", error);
		arm(s, s->cfg->lock_poll_interval);
		return;
	}
	struct policy_lock_wait w = { 0 };
	for (int row = 0; row < PQntuples(res); row++) {
		const char *kind = PQgetvalue(res, row, 0);
		struct policy_holder h = { 0 };
		h.pid = atoi(PQgetvalue(res, row, 1));
		snprintf(h.application_name, sizeof(h.application_name), "%s", PQgetvalue(res, row, 3));
		snprintf(h.state, sizeof(h.state), "%s", PQgetvalue(res, row, 4));
		h.xact_age = atof(PQgetvalue(res, row, 5));
		snprintf(h.query, sizeof(h.query), "%s", PQgetvalue(res, row, 6));
		if (!strcmp(kind, "self")) {
			w.waiting = true;
			w.waited = h.xact_age;
			snprintf(w.mode, sizeof(w.mode), "%s", PQgetvalue(res, row, 6));
		} else if (!strcmp(kind, "blocker") && w.nblockers < POLICY_MAX_HOLDERS) {
			h.granted = true;
			w.blockers[w.nblockers++] = h;
		} else if (!strcmp(kind, "queued") && w.nqueued < POLICY_MAX_HOLDERS) {
			w.queued[w.nqueued++] = h;   /* xact_age holds how long it has waited */
		}
	}
	if (!w.waiting) {
		m->waiting = false;
		arm(s, s->cfg->lock_poll_interval);
		return;
	}
	if (!m->waiting) {
		m->waiting = true;
		m->wait_started = now_s() - w.waited;
		m->reported = 0;
	}
	snprintf(w.relation, sizeof(w.relation), "%s", m->relation);
	double longest = 0;
	for (int i = 0; i < w.nqueued; i++)
		if (w.queued[i].xact_age > longest)
			longest = w.queued[i].xact_age;
	/* Log and audit the wait when it starts, when more sessions queue behind it, and then
	 * every few seconds. */
	if (m->reported == 0 || w.nqueued > m->queued_seen || now_s() - m->wait_started > 5.0 * m->reported) {
		m->queued_seen = w.nqueued;
		m->reported++;
		char who[600] = "", behind[600] = "";
		size_t n = 0;
		for (int i = 0; i < w.nblockers && n < sizeof(who) - 1; i++)
			n += (size_t)snprintf(who + n, sizeof(who) - n, "%spid %d (%s, %s, transaction %.0f s)",
					      i ? "; " : "", w.blockers[i].pid, w.blockers[i].application_name,
					      w.blockers[i].state, w.blockers[i].xact_age);
		n = 0;
		for (int i = 0; i < w.nqueued && n < sizeof(behind) - 1; i++)
			n += (size_t)snprintf(behind + n, sizeof(behind) - n, "%spid %d (%s, waiting %.1f s)",
					      i ? "; " : "", w.queued[i].pid, w.queued[i].application_name,
					      w.queued[i].xact_age);
		slog_info(s, "lock_wait: %s waits %.1f s for %s; blocked by %s; queued behind it: %s", m->relation,
			  w.waited, w.mode, who[0] ? who : "?", behind[0] ? behind : "nobody");
		struct audit_record *r = audit_begin("lock_wait");
		if (r) {
			audit_int(r, "session", (long long)s->id);
			audit_str(r, "user", s->user);
			audit_str(r, "database", s->database);
			audit_str(r, "relation", m->relation);
			audit_str(r, "mode", w.mode);
			audit_num(r, "waited_s", w.waited);
			audit_str(r, "blockers", who);
			audit_str(r, "queued", behind);
			audit_write(r);
		}
		s->srv->stats.lock_waits++;
	}
	s->guard.lock_wait = w.waited;
	/* Cancel when a policy says so, or by default when someone has queued behind the
	 * migration for longer than max_queue_wait. */
	bool cancel = false;
	if (s->cfg->policy) {
		struct policy_session ps;
		guard_fill_session(s, &ps);
		cancel = policy_check_lock_wait(s->cfg->policy, &w, &ps);
	}
	if (!cancel && s->cfg->max_queue_wait > 0 && longest * 1000 >= s->cfg->max_queue_wait)
		cancel = true;
	if (cancel && !m->cancelled) {
		slog_info(s, "lock_wait: cancelling %s: pid %d (%s) has waited %.1f s behind it", m->relation,
			  w.nqueued ? w.queued[0].pid : 0, w.nqueued ? w.queued[0].application_name : "?", longest);
		if (send_cancel(s)) {
			m->cancelled = true;
			s->srv->stats.lock_cancels++;
		} else
			slog_warning(s, "lock_wait: could not send the cancel request");
	}
	arm(s, s->cfg->lock_poll_interval);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct session_monitor *m = &s->monitor;
	if (!m->watching || s->state != SS_READY)
		return;
	if (m->polling) {
		arm(s, s->cfg->lock_poll_interval);
		return;
	}
	struct side_target t;
	char port[16], pid[16], err[300];
	struct route *r = s->route;
	snprintf(port, sizeof(port), "%d", r->port);
	snprintf(pid, sizeof(pid), "%u", s->srv_pid);
	t.host = r->host;
	t.port = port;
	t.dbname = r->dbname ? r->dbname : s->database;
	t.user = s->cfg->monitor_user;
	t.password = s->cfg->monitor_password;
	t.sslmode = r->host[0] == '/' ? "disable" : tls_mode_name(r->server_tls_mode);
	t.sslrootcert = r->server_tls_ca_file;
	const char *params[1] = { pid };
	if (side_submit(s->srv, &t, s->cfg->facts_timeout, WAIT_SQL, 1, params, poll_done, s, err, sizeof(err)))
		m->polling = true;
	else
		arm(s, s->cfg->lock_poll_interval * 4);
}

void monitor_start(struct session *s, const char *relation)
{
	struct session_monitor *m = &s->monitor;
	if (!s->cfg->monitor_user || !*s->cfg->monitor_user || !s->srv_pid)
		return;
	if (!m->timer && !(m->timer = evtimer_new(s->srv->base, timer_cb, s)))
		return;
	if (relation != m->relation)
		snprintf(m->relation, sizeof(m->relation), "%s", relation && *relation ? relation : "the statement");
	m->queued_seen = 0;
	m->watching = true;
	m->waiting = false;
	arm(s, s->cfg->lock_watch_after);
}

double monitor_stop(struct session *s)
{
	struct session_monitor *m = &s->monitor;
	double waited = m->waiting ? now_s() - m->wait_started : 0;
	m->watching = false;
	m->waiting = false;
	if (m->timer)
		evtimer_del(m->timer);
	return waited;
}

void monitor_free(struct session *s)
{
	struct session_monitor *m = &s->monitor;
	side_forget(s->srv, s);
	if (m->timer)
		event_free(m->timer);
	m->timer = NULL;
}
