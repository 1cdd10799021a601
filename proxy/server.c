/* server — see server.h. */
#include "proxy/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "policies/engine.h"
#include <unistd.h>

#include "proxy/audit.h"
#include "proxy/facts.h"
#include "proxy/ledger.h"
#include "proxy/metrics.h"
#include "proxy/sideconn.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/tls.h"

#define LISTEN_BACKLOG 4096

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
		      int len, void *arg)
{
	struct server *srv = arg;
	/* Every connection holds two descriptors; past twice the client limit (plus room for
	 * cancels) refuse at once rather than run out of descriptors for everyone. */
	if (srv->draining || srv->nlive > 2 * srv->cfg->max_client_conn + 100) {
		close(fd);
		return;
	}
	session_accept(srv, fd, addr, len);
}

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	for (int i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	int e = EVUTIL_SOCKET_ERROR();
	log_warning("accept failed: %s; pausing new connections for 1 s", evutil_socket_error_to_string(e));
	/* Out of descriptors (EMFILE, ENFILE, ENOBUFS): the pending connection stays in the
	 * backlog and the level-triggered listener would fire again at once, spinning a core.
	 * Stop accepting for a moment; running sessions go on and free descriptors. */
	for (int i = 0; i < srv->nlisteners; i++)
		evconnlistener_disable(srv->listeners[i]);
	if (!srv->accept_pause)
		srv->accept_pause = evtimer_new(srv->base, resume_accept_cb, srv);
	struct timeval tv = { 1, 0 };
	if (srv->accept_pause)
		evtimer_add(srv->accept_pause, &tv);
}

static bool add_listener(struct server *srv, int fd, char *err, size_t errlen)
{
	if (srv->nlisteners >= SERVER_MAX_LISTENERS) {
		close(fd);
		snprintf(err, errlen, "too many listen addresses");
		return false;
	}
	struct evconnlistener *l = evconnlistener_new(srv->base, accept_cb, srv,
						      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
						      LISTEN_BACKLOG, fd);
	if (!l) {
		close(fd);
		snprintf(err, errlen, "cannot listen");
		return false;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	srv->listeners[srv->nlisteners++] = l;
	return true;
}

static bool listen_tcp(struct server *srv, const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	const char *h = !strcmp(host, "*") ? NULL : host;
	int g = getaddrinfo(h, portstr, &hints, &res);
	if (g) {
		snprintf(err, errlen, "cannot resolve listen_addr \"%s\": %s", host, gai_strerror(g));
		return false;
	}
	bool any = false;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
			snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
			close(fd);
			continue;
		}
		if (!srv->bound_port) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
				srv->bound_port = ntohs(ss.ss_family == AF_INET6 ?
							((struct sockaddr_in6 *)&ss)->sin6_port :
							((struct sockaddr_in *)&ss)->sin_port);
		}
		if (!add_listener(srv, fd, err, errlen)) {
			freeaddrinfo(res);
			return false;
		}
		any = true;
	}
	freeaddrinfo(res);
	return any;
}

static bool listen_unix(struct server *srv, const char *dir, int port, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", dir, port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix_socket_dir \"%s\" is too long", dir);
		return false;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a unix socket: %s", strerror(errno));
		return false;
	}
	/* A socket file left by a crashed ddlguard would make bind fail: if nothing answers
	 * on it, remove it. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, errlen, "%s is in use by another process", sun.sun_path);
		return false;
	}
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return false;
	}
	chmod(sun.sun_path, 0777);
	snprintf(srv->unix_path, sizeof(srv->unix_path), "%s", sun.sun_path);
	return add_listener(srv, fd, err, errlen);
}

bool server_listen(struct server *srv, char *err, size_t errlen)
{
	struct config *c = srv->cfg;
	if (c->listen_addr && *c->listen_addr) {
		char *list = strdup(c->listen_addr), *save = NULL;
		for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save)) {
			if (!listen_tcp(srv, a, c->listen_port, err, errlen)) {
				free(list);
				return false;
			}
		}
		free(list);
	}
	if (c->unix_socket_dir && *c->unix_socket_dir &&
	    !listen_unix(srv, c->unix_socket_dir, srv->bound_port ? srv->bound_port : c->listen_port, err, errlen))
		return false;
	return metrics_start(srv, c->metrics_listen, err, errlen);
}

static void close_listeners(struct server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
	if (srv->unix_path[0]) {
		unlink(srv->unix_path);
		srv->unix_path[0] = 0;
	}
}

void server_session_gone(struct server *srv, struct session *s)
{
	(void)s;
	if ((srv->draining || srv->stopping) && !srv->sessions)
		event_base_loopbreak(srv->base);
}

static void close_all(struct server *srv)
{
	srv->stopping = true;
	struct session *s = srv->sessions, *next;
	for (; s; s = next) {
		next = s->next;
		session_fatal(s, "57P01", "terminating connection: ddlguard is shutting down");
	}
	if (!srv->sessions)
		event_base_loopbreak(srv->base);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	log_info("shutdown_timeout reached: closing %d remaining sessions", srv->nlive);
	close_all(srv);
}

void server_shutdown(struct server *srv, bool graceful)
{
	close_listeners(srv);
	if (graceful && !srv->draining) {
		srv->draining = true;
		if (!srv->sessions) {
			event_base_loopbreak(srv->base);
			return;
		}
		log_info("shutting down: waiting up to %d s for %d sessions to finish",
			 srv->cfg->shutdown_timeout, srv->nclients);
		srv->drain_timer = evtimer_new(srv->base, drain_timeout_cb, srv);
		struct timeval tv = { srv->cfg->shutdown_timeout, 0 };
		evtimer_add(srv->drain_timer, &tv);
		return;
	}
	srv->draining = true;
	close_all(srv);
}

bool server_reload(struct server *srv)
{
	char err[1024];
	struct config *c = config_load(&srv->opts, err, sizeof(err));
	bool new_audit = c && c->audit_log && *c->audit_log &&
			 !(srv->cfg->audit_log && !strcmp(c->audit_log, srv->cfg->audit_log));
	if (!c || !tls_build(c, err, sizeof(err)) ||
	    (new_audit && !audit_check_path(c->audit_log, err, sizeof(err)))) {
		log_error("reload failed, keeping the previous configuration: %s", err);
		struct audit_record *r = audit_begin("policy_reload");
		audit_str(r, "outcome", "failed");
		audit_str(r, "error", err);
		audit_write(r);
		config_unref(c);
		return false;
	}
	if (c->listen_port != srv->cfg->listen_port || strcmp(c->listen_addr, srv->cfg->listen_addr))
		log_warning("listen_addr and listen_port changes take effect after a restart");
	if (!log_open(c->logfile, err, sizeof(err)))
		log_error("%s", err);
	log_current_level = c->log_level;
	bool same_audit = (c->audit_log && srv->cfg->audit_log && !strcmp(c->audit_log, srv->cfg->audit_log)) ||
			  (!c->audit_log && !srv->cfg->audit_log);
	config_unref(srv->cfg);
	srv->cfg = c;
	/* Reopen for logrotate (the chain continues), or switch to a new file. */
	if (!(same_audit ? audit_reopen(err, sizeof(err)) : audit_open(c->audit_log, err, sizeof(err))))
		log_error("%s; %s", err, c->audit_fail_open ? "schema changes go on unaudited (audit_failure = open)" :
			  "schema changes are denied until a SIGHUP reopens it");
	struct audit_record *r = audit_begin("policy_reload");
	audit_str(r, "outcome", "ok");
	audit_int(r, "policies", policy_engine_count(c->policy));
	audit_int(r, "rules", policy_engine_rule_count(c->policy));
	audit_write(r);
	log_info("configuration reloaded");
	return true;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading the configuration");
		server_reload(srv);
		break;
	case SIGTERM:
		log_info("SIGTERM: no new connections; waiting for sessions to finish");
		server_shutdown(srv, true);
		break;
	case SIGINT:
		log_info("SIGINT: shutting down now");
		server_shutdown(srv, false);
		break;
	case SIGCHLD: {
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == srv->child) {
				srv->child_status = st;
				srv->child_done = true;
				server_shutdown(srv, true);
			}
		}
		break;
	}
	}
}

bool server_init(struct server *srv, const struct cli_opts *opts, char *err, size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
	srv->opts = *opts;
	tls_global_init();
	srv->cfg = config_load(opts, err, errlen);
	if (!srv->cfg)
		return false;
	if (!tls_build(srv->cfg, err, errlen))
		return false;
	if (!log_open(srv->cfg->logfile, err, errlen))
		return false;
	if (!audit_open(srv->cfg->audit_log, err, errlen))
		return false;
	log_current_level = srv->cfg->log_level;
	srv->base = event_base_new();
	if (!srv->base) {
		snprintf(err, errlen, "cannot create the event loop");
		return false;
	}
	signal(SIGPIPE, SIG_IGN);
	int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGCHLD };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		srv->sig_events[i] = evsignal_new(srv->base, sigs[i], signal_cb, srv);
		if (!srv->sig_events[i] || event_add(srv->sig_events[i], NULL) < 0) {
			snprintf(err, errlen, "cannot install signal handlers");
			return false;
		}
		srv->nsig++;
	}
	return true;
}

void server_run(struct server *srv)
{
	event_base_dispatch(srv->base);
}

void server_free(struct server *srv)
{
	close_listeners(srv);
	/* Sessions still alive (SIGINT while a flush was pending): free them now. */
	srv->stopping = true;
	for (struct session *s = srv->sessions; s; s = s->next)
		session_abort(s);
	while (srv->sessions)
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
	metrics_stop(srv);
	facts_shutdown(srv);
	ledger_shutdown(srv);
	side_shutdown(srv);
	for (int i = 0; i < srv->nsig; i++)
		event_free(srv->sig_events[i]);
	if (srv->drain_timer)
		event_free(srv->drain_timer);
	if (srv->accept_pause)
		event_free(srv->accept_pause);
	config_unref(srv->cfg);
	srv->cfg = NULL;
	audit_close();
	if (srv->base)
		event_base_free(srv->base);
	srv->base = NULL;
	log_close();
}
