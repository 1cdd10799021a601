/* session — see session.h. */
#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy/audit.h"
#include "proxy/cancel.h"
#include "proxy/config.h"
#include "proxy/facts.h"
#include "proxy/ledger.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/tls.h"

/* Backpressure: stop reading a peer while the other side has this much unsent. */
#define WATERMARK_HIGH (256 * 1024)
#define WATERMARK_LOW  (64 * 1024)
/* Before login a client can make us buffer only this much. */
#define PRELOGIN_MAX   (PGW_AUTH_MAX + PGW_HDR_LEN)
#define CLOSING_GRACE_SEC 5

static void client_read_cb(evutil_socket_t fd, short what, void *arg);
static void client_write_cb(evutil_socket_t fd, short what, void *arg);
static void server_read_cb(evutil_socket_t fd, short what, void *arg);
static void server_write_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void process_client(struct session *s);
static void process_server(struct session *s);
static void server_lost(struct session *s, const char *why);
static void watch_server(struct session *s);

static void set_timer(struct session *s, int seconds)
{
	if (seconds <= 0) {
		event_del(s->timer);
		return;
	}
	struct timeval tv = { seconds, 0 };
	event_add(s->timer, &tv);
}

static void update_prefix(struct session *s)
{
	snprintf(s->log_prefix, sizeof(s->log_prefix), "C-%llu %s/%s@%s:", (unsigned long long)s->id,
		 s->database ? s->database : "?", s->user ? s->user : "?", s->client_addr);
}

static void set_sockopts(int fd, bool tcp)
{
	int one = 1;
	if (tcp) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
}

void session_accept(struct server *srv, int fd, const struct sockaddr *addr, int addrlen)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->id = ++srv->next_id;
	srv->nlive++;
	s->srv = srv;
	s->cfg = config_ref(srv->cfg);
	s->state = SS_CLIENT_STARTUP;
	io_init(&s->client);
	io_init(&s->server);
	if (addr->sa_family == AF_UNIX) {
		s->client_unix = true;
		snprintf(s->client_addr, sizeof(s->client_addr), "unix");
	} else {
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		if (addr->sa_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)addr;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const void *)addr;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
		}
		snprintf(s->client_addr, sizeof(s->client_addr), "%s:%d", host, port);
	}
	(void)addrlen;
	update_prefix(s);
	evutil_make_socket_nonblocking(fd);
	set_sockopts(fd, !s->client_unix);
	relay_init(&s->relay, s->cfg->max_packet_size, NULL);
	if (s->cfg->debug_inject_query && *s->cfg->debug_inject_query)
		s->relay.inject_query = s->cfg->debug_inject_query;
	s->timer = evtimer_new(srv->base, timer_cb, s);
	/* Link first, so that session_close() below has a consistent object. */
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	if (!s->timer || !io_attach(&s->client, srv->base, fd, client_read_cb, client_write_cb, s)) {
		s->client.fd = fd;
		session_close(s, "out of memory");
		return;
	}
	io_set_reading(&s->client, true);
	set_timer(s, s->cfg->client_login_timeout);
	slog_debug(s, "new connection");
}

/* relay_pid_cb: the pid ddlguard gave the client of the session whose backend is `pid`. */
static uint32_t map_notify_pid(void *arg, uint32_t pid)
{
	struct session *s = arg;
	if (pid == s->srv_pid)
		return s->key_pid;
	/* Another session's backend (rare: notifications between ddlguard clients). */
	for (struct session *o = s->srv->sessions; o; o = o->next)
		if (o->srv_pid == pid && o->key_pid && o->route == s->route)
			return o->key_pid;
	return pid;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->state != SS_READY || !s->relay.inspect_wait)
		return;
	s->relay.inspect_wait = false;
	s->facts_fetched = true;
	io_set_reading(&s->client, true);
	process_client(s);
	s->facts_fetched = false;
	watch_server(s);
}

void session_facts_ready(struct session *s)
{
	if (!s->resume_ev)
		s->resume_ev = event_new(s->srv->base, -1, 0, resume_cb, s);
	if (s->resume_ev)
		event_active(s->resume_ev, 0, 0);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->state != SS_READY || !s->relay.retry_waiting)
		return;
	relay_retry_resend(&s->relay);
	s->relay.wrote_to_server = false;
	monitor_start(s, s->monitor.relation);
	if (io_flush(&s->server) == IO_ERROR) {
		server_lost(s, s->server.errmsg);
		return;
	}
	watch_server(s);
	/* What the client sent while the retry waited (the relay held it) goes up behind the
	 * resend: the client may be waiting for its answer and send nothing more. */
	if (s->state == SS_READY && evbuffer_get_length(s->client.in))
		process_client(s);
}

void session_retry_later(struct session *s, double seconds)
{
	if (!s->retry_ev)
		s->retry_ev = evtimer_new(s->srv->base, retry_cb, s);
	if (!s->retry_ev)
		return;
	if (seconds < 0)
		seconds = 0;
	struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6) };
	evtimer_add(s->retry_ev, &tv);
}

/* A client's cancel while ddlguard waits to retry: stop, and give it the last failure. */
static void stop_retrying(struct session *t)
{
	if (t->retry_ev)
		event_del(t->retry_ev);
	relay_retry_give_up(&t->relay, t->client.out);
	if (io_flush(&t->client) == IO_ERROR)
		session_close(t, t->client.errmsg);
	else if (t->state == SS_READY) {
		io_set_reading(&t->client, true);
		if (evbuffer_get_length(t->client.in))
			process_client(t);
	}
}

bool session_busy(const struct session *s)
{
	return s->state == SS_READY && (!relay_idle(&s->relay) || s->relay.retry_waiting);
}

static void free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct server *srv = s->srv;
	if (s->key_pid)
		cancel_unregister(srv, s);
	if (s->prev)
		s->prev->next = s->next;
	else if (srv->sessions == s)
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	io_close(&s->client);
	io_close(&s->server);
	relay_free(&s->relay);
	guard_free(&s->guard);
	pgw_buf_free(&s->upstream_packet);
	if (s->scram_started)
		scram_client_free(&s->scram);
	if (s->password) {
		OPENSSL_cleanse(s->password, strlen(s->password));
		free(s->password);
	}
	facts_forget_session(s);
	ledger_forget_session(s);
	monitor_free(s);
	if (s->retry_ev)
		event_free(s->retry_ev);
	if (s->resume_ev)
		event_free(s->resume_ev);
	if (s->timer)
		event_free(s->timer);
	if (s->free_ev)
		event_free(s->free_ev);
	free(s->user);
	free(s->database);
	free(s->app);
	config_unref(s->cfg);
	free(s);
	srv->nlive--;
	server_session_gone(srv, NULL);
}

static void free_later(struct session *s)
{
	if (s->state == SS_FREED)
		return;
	s->state = SS_FREED;
	if (s->counted) {
		s->srv->nclients--;
		s->counted = false;
	}
	io_set_reading(&s->client, false);
	io_set_reading(&s->server, false);
	if (s->client.wev)
		event_del(s->client.wev);
	if (s->server.wev)
		event_del(s->server.wev);
	event_del(s->timer);
	/* Fold this session's counters into the process totals once. */
	s->srv->stats.queries += s->relay.stats.queries;
	s->srv->stats.parses += s->relay.stats.parses;
	s->srv->stats.client_bytes += s->relay.stats.client_bytes;
	s->srv->stats.server_bytes += s->relay.stats.server_bytes;
	/* Never free inside our own callback: the caller may still touch s. */
	s->free_ev = event_new(s->srv->base, -1, 0, free_cb, s);
	if (s->free_ev)
		event_active(s->free_ev, 0, 0);
	else
		free_cb(-1, 0, s);
}

void session_abort(struct session *s)
{
	io_close(&s->server);
	free_later(s);
}

void session_close(struct session *s, const char *reason)
{
	if (s->state == SS_FREED || s->state == SS_CLOSING)
		return;
	if (s->is_cancel)
		slog_debug(s, "cancel connection closed: %s", reason);
	else if (s->logged_in) {
		slog_info(s, "closing: %s", reason);
		if (s->cfg->policy && s->relay.last_status != 'I') {
			/* The client leaves a transaction open (PostgreSQL rolls it back): tell the
			 * on_end hooks; only the log can carry their answer now. */
			struct policy_session ps;
			struct verdict v;
			guard_fill_session(s, &ps);
			verdict_init(&v);
			policy_check_end(s->cfg->policy, &ps, &v);
			if (v.kind == VERDICT_DENY)
				slog_warning(s, "at session end: %s (rule %s)", v.message, v.rule ? v.rule : "-");
			for (int i = 0; i < v.nwarnings; i++)
				slog_warning(s, "at session end: %s (rule %s)", v.warnings[i].message,
					     v.warnings[i].rule ? v.warnings[i].rule : "-");
			verdict_free(&v);
		}
		struct audit_record *ar = audit_begin("session_end");
		if (ar) {
			audit_int(ar, "session", (long long)s->id);
			audit_str(ar, "user", s->user);
			audit_str(ar, "database", s->database);
			audit_str(ar, "reason", reason);
			audit_int(ar, "queries", (long long)s->relay.stats.queries);
			audit_int(ar, "parses", (long long)s->relay.stats.parses);
			audit_write(ar);
		}
	}
	else
		slog_info(s, "login failed: %s", reason);
	if (!s->logged_in && !s->is_cancel && s->user)
		s->srv->stats.login_failures++;
	/* The upstream goes at once (the server rolls back an open transaction). */
	if (s->server.fd >= 0 && s->server.out && s->state == SS_READY)
		io_flush(&s->server); /* e.g. the client's Terminate */
	io_close(&s->server);
	/* Whatever is owed to the client (a FATAL error, the server's last messages) is sent
	 * before the close, within a grace period. */
	if (s->client.fd >= 0 && s->client.out && evbuffer_get_length(s->client.out) > 0 &&
	    io_flush(&s->client) == IO_PENDING) {
		s->state = SS_CLOSING;
		io_set_reading(&s->client, false);
		set_timer(s, CLOSING_GRACE_SEC);
		return;
	}
	free_later(s);
}

static void vsend_error(struct session *s, const char *severity, const char *sqlstate,
			const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'E', severity, sqlstate, msg, NULL, NULL);
	evbuffer_add(s->client.out, b.data, b.len);
	pgw_buf_free(&b);
}

void session_fatal(struct session *s, const char *sqlstate, const char *fmt, ...)
{
	if (s->state == SS_FREED || s->state == SS_CLOSING)
		return;
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* An error may only be written between two server messages, and never to a client
	 * that is mid-TLS-handshake or a cancel connection (which gets no reply at all). */
	bool can_write = !s->is_cancel && s->client.out && s->state != SS_CLIENT_TLS &&
			 (s->state != SS_READY || relay_at_server_boundary(&s->relay));
	if (can_write) {
		va_start(ap, fmt);
		vsend_error(s, "FATAL", sqlstate, fmt, ap);
		va_end(ap);
	}
	char full[600];
	snprintf(full, sizeof(full), "%s (SQLSTATE %s)", reason, sqlstate);
	session_close(s, full);
}

/*
 * The server leg broke after login. PostgreSQL says why when it can (pg_terminate_backend's
 * FATAL 57P01, the WARNING before an immediate shutdown), but a killed backend or a server
 * host that vanished says nothing, and the client would see only a closed socket, as if
 * ddlguard had dropped it. Unless the server's own FATAL already went out, say that it was
 * the server: FATAL 08006. session_fatal() writes it only between two server messages;
 * after half a message closing is all that is left.
 */
static void server_lost(struct session *s, const char *why)
{
	/* A write fails (ECONNRESET: the server closed with our bytes unread) while its last
	 * words, the WARNING of an immediate shutdown or a FATAL, still wait in the socket,
	 * readable before the error: relay them first. Once only: this is reached from the
	 * read path too. */
	char saved[sizeof(s->server.errmsg)];   /* `why` may be server.errmsg, which io_read rewrites */
	if (s->state == SS_READY && !s->server_drained) {
		s->server_drained = true;
		snprintf(saved, sizeof(saved), "%s", why);
		why = saved;
		io_read(&s->server);
		if (evbuffer_get_length(s->server.in))
			process_server(s);
		if (s->state == SS_FREED || s->state == SS_CLOSING)
			return;
	}
	if (s->state == SS_READY && !s->relay.fatal_forwarded)
		session_fatal(s, "08006", "lost the connection to the upstream server: %s", why);
	else
		session_close(s, why);
}

/* ---------------------------------------------------------------- upstream connect */

static void send_upstream_packet(struct session *s)
{
	evbuffer_add(s->server.out, s->upstream_packet.data, s->upstream_packet.len);
	pgw_buf_free(&s->upstream_packet);
	if (s->is_cancel) {
		s->state = SS_CANCEL_WAIT;
		set_timer(s, s->cfg->cancel_wait_timeout);
	} else {
		/* server_connect_timeout, set at connect, runs on until the server's first answer:
		 * a stopped postmaster still completes TCP connects (the kernel queues them), so
		 * only its silence shows that it is gone. The login timeout starts then. */
		s->state = SS_AUTH;
		s->server_answered = false;
	}
	io_set_reading(&s->server, true);
	if (io_flush(&s->server) == IO_ERROR)
		session_fatal(s, "08006", "could not send to the upstream server: %s", s->server.errmsg);
}

static void upstream_connected(struct session *s)
{
	struct route *r = s->route;
	bool tcp = r->host[0] != '/';
	set_sockopts(s->server.fd, tcp);
	if (tcp && r->server_tls_mode != TLS_DISABLE) {
		/* SSLRequest: Int32 8, Int32 80877103. */
		uint8_t req[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
		evbuffer_add(s->server.out, req, sizeof(req));
		s->state = SS_SERVER_TLS_REQ;
		io_set_reading(&s->server, true);
		if (io_flush(&s->server) == IO_ERROR)
			session_fatal(s, "08006", "could not send to the upstream server: %s", s->server.errmsg);
		return;
	}
	send_upstream_packet(s);
}

static void connect_upstream(struct session *s)
{
	struct route *r = s->route;
	int fd = -1;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", r->port);
	s->state = SS_SERVER_CONNECT;
	if (!s->is_cancel)
		set_timer(s, s->cfg->server_connect_timeout);
	else
		set_timer(s, s->cfg->cancel_wait_timeout);
	if (r->host[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", r->host, r->port);
		if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
			session_fatal(s, "08006", "upstream socket path too long");
			return;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS)) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			session_fatal(s, "08006", "could not connect to the upstream server at %s: %s",
				      sun.sun_path, strerror(e));
			return;
		}
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
		struct addrinfo *ai = NULL;
		/* Host names are resolved synchronously; routes normally name an IP address or
		 * a local name (documented in docs/configuration.md). */
		int g = getaddrinfo(r->host, portstr, &hints, &ai);
		if (g != 0 || !ai) {
			session_fatal(s, "08006", "could not resolve upstream host \"%s\": %s", r->host,
				      gai_strerror(g));
			return;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int rc = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
		int e = errno;
		freeaddrinfo(ai);
		if (fd < 0 || (rc < 0 && e != EINPROGRESS)) {
			if (fd >= 0)
				close(fd);
			session_fatal(s, "08006", "could not connect to the upstream server at %s:%d: %s",
				      r->host, r->port, strerror(e));
			return;
		}
	}
	if (!io_attach(&s->server, s->srv->base, fd, server_read_cb, server_write_cb, s)) {
		close(fd);
		session_fatal(s, "53200", "out of memory");
		return;
	}
	/* Completion of a non-blocking connect shows as writability. */
	event_add(s->server.wev, NULL);
	s->server.writing = true;
}

static void check_connect(struct session *s)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->server.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		session_fatal(s, "08006", "could not connect to the upstream server at %s:%d: %s",
			      s->route->host, s->route->port, strerror(err));
		return;
	}
	event_del(s->server.wev);
	s->server.writing = false;
	upstream_connected(s);
}

static void server_tls_step(struct session *s)
{
	enum io_result r = io_handshake(&s->server);
	if (r == IO_PENDING)
		return;
	if (r != IO_OK) {
		long v = SSL_get_verify_result(s->server.ssl);
		if (v != X509_V_OK)
			session_fatal(s, "08006", "TLS connection to the upstream server failed: certificate verification: %s",
				      X509_verify_cert_error_string(v));
		else
			session_fatal(s, "08006", "TLS connection to the upstream server failed: %s",
				      s->server.errmsg);
		return;
	}
	char d[96];
	slog_debug(s, "upstream TLS: %s", tls_describe(s->server.ssl, d, sizeof(d)));
	send_upstream_packet(s);
}

static void server_tls_response(struct session *s)
{
	if (evbuffer_get_length(s->server.in) < 1)
		return;
	uint8_t c;
	evbuffer_remove(s->server.in, &c, 1);
	if (c == 'S') {
		/* Bytes after 'S' and before the handshake could only be injected (CVE-2021-23222). */
		if (evbuffer_get_length(s->server.in) > 0) {
			session_fatal(s, "08006", "the upstream server sent unencrypted data after its SSL response");
			return;
		}
		s->server.ssl = tls_server_ssl(s->route);
		if (!s->server.ssl || SSL_set_fd(s->server.ssl, s->server.fd) != 1) {
			session_fatal(s, "08006", "could not start TLS to the upstream server");
			return;
		}
		s->state = SS_SERVER_TLS;
		server_tls_step(s);
	} else if (c == 'N') {
		if (s->route->server_tls_mode >= TLS_REQUIRE) {
			session_fatal(s, "08006", "the upstream server does not support TLS, but server_tls_sslmode is %s",
				      tls_mode_name(s->route->server_tls_mode));
			return;
		}
		send_upstream_packet(s);
	} else if (c == 'E') {
		session_fatal(s, "08006", "the upstream server rejected the SSL request");
	} else
		session_fatal(s, "08006", "invalid response to SSL negotiation from the upstream server: %d", c);
}

/* ---------------------------------------------------------------- client start-up */

static void handle_cancel(struct session *s, const uint8_t *pkt, size_t len)
{
	struct pgw_cancel c;
	s->is_cancel = true;
	s->srv->stats.cancels++;
	if (pgw_parse_cancel(pkt, len, &c) != PGW_OK) {
		session_close(s, "malformed cancel request");
		return;
	}
	struct session *t = cancel_lookup(s->srv, c.pid, c.secret, c.secret_len);
	if (!t) {
		session_close(s, "cancel request with an unknown key");
		return;
	}
	if (!session_busy(t)) {
		/* Nothing runs: forwarding now could cancel the client's *next* query. */
		slog_debug(t, "cancel request ignored: session is idle");
		session_close(s, "cancel request for an idle session");
		return;
	}
	if (t->relay.retry_waiting) {
		slog_info(t, "cancel request while waiting to retry: retries stopped");
		stop_retrying(t);
		session_close(s, "cancel request ended the retries");
		return;
	}
	slog_info(t, "forwarding cancel request");
	s->route = t->route;
	config_unref(s->cfg);
	s->cfg = config_ref(t->cfg);
	pgw_build_cancel(&s->upstream_packet, t->srv_pid, t->srv_secret, t->srv_secret_len);
	connect_upstream(s);
}

void session_cancel_upstream(struct session *t, const char *why)
{
	if (t->is_cancel || !t->srv_secret_len || !t->route)
		return;
	struct server *srv = t->srv;
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	/* A cancel connection with no client: the forwarding half of handle_cancel(). It
	 * outlives t, so it copies what it needs. */
	s->id = ++srv->next_id;
	srv->nlive++;
	s->srv = srv;
	s->cfg = config_ref(t->cfg);
	s->route = t->route;
	s->is_cancel = true;
	io_init(&s->client);
	io_init(&s->server);
	snprintf(s->client_addr, sizeof(s->client_addr), "ddlguard");
	snprintf(s->log_prefix, sizeof(s->log_prefix), "%s", t->log_prefix);
	s->timer = evtimer_new(srv->base, timer_cb, s);
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	if (!s->timer) {
		session_close(s, "out of memory");
		return;
	}
	slog_info(t, "cancelling the statement upstream: %s", why);
	pgw_build_cancel(&s->upstream_packet, t->srv_pid, t->srv_secret, t->srv_secret_len);
	connect_upstream(s);
}

static void start_client_tls(struct session *s)
{
	s->client.ssl = SSL_new(s->cfg->client_ctx);
	if (!s->client.ssl || SSL_set_fd(s->client.ssl, s->client.fd) != 1) {
		session_close(s, "could not start TLS");
		return;
	}
	SSL_set_accept_state(s->client.ssl);
	s->state = SS_CLIENT_TLS;
	enum io_result r = io_handshake(&s->client);
	if (r == IO_ERROR)
		session_close(s, s->client.errmsg);
	else if (r == IO_OK) {
		s->state = SS_CLIENT_STARTUP;
		event_active(s->client.rev, EV_READ, 1);
	}
}

static void handle_startup(struct session *s, const uint8_t *pkt, size_t len)
{
	struct pgw_startup st;
	char err[160];
	if (pgw_parse_startup(pkt, len, &st, err, sizeof(err)) != PGW_OK) {
		s->srv->stats.protocol_errors++;
		session_fatal(s, "08P01", "invalid startup packet: %s", err);
		return;
	}
	s->user = strdup(st.user);
	s->database = strdup(st.database);
	s->app = st.application_name ? strdup(st.application_name) : NULL;
	if (!s->user || !s->database) {
		session_fatal(s, "53200", "out of memory");
		return;
	}
	update_prefix(s);
	s->srv->stats.sessions++;
	if (s->srv->draining) {
		session_fatal(s, "57P03", "ddlguard is shutting down");
		return;
	}
	if (s->cfg->client_tls_mode == TLS_REQUIRE && !s->client.ssl && !s->client_unix) {
		session_fatal(s, "28000", "ddlguard requires TLS (SSL) connections: connect with sslmode=require");
		return;
	}
	if (s->srv->nclients >= s->cfg->max_client_conn) {
		session_fatal(s, "53300", "too many connections: ddlguard's max_client_conn (%d) is reached",
			      s->cfg->max_client_conn);
		return;
	}
	s->counted = true;
	s->srv->nclients++;
	s->route = config_find_route(s->cfg, st.database);
	if (!s->route) {
		session_fatal(s, "3D000", "database \"%s\" is not configured in ddlguard", st.database);
		return;
	}
	struct verdict v;
	verdict_init(&v);
	if (!guard_connect(s, &v)) {
		slog_info(s, "decision: deny login (rule %s)", v.rule ? v.rule : "-");
		char sqlstate[6];
		memcpy(sqlstate, v.sqlstate, 6);
		session_fatal(s, sqlstate, "%s", v.message ? v.message : "connection denied by policy");
		verdict_free(&v);
		return;
	}
	verdict_free(&v);
	pgw_build_startup(&s->upstream_packet, &st, s->route->dbname);
	slog_debug(s, "login: routing to %s:%d (%s)", s->route->host, s->route->port,
		   s->route->environment);
	connect_upstream(s);
}

/* Read and act on one initial packet. Returns false when the session changed state. */
static bool client_initial_packet(struct session *s)
{
	size_t avail = evbuffer_get_length(s->client.in);
	if (avail < 4)
		return false;
	uint8_t hdr[8];
	evbuffer_copyout(s->client.in, hdr, 4);
	uint32_t len = pgw_get_u32(hdr);
	if (len < 8 || len > PGW_STARTUP_MAX) {
		s->srv->stats.protocol_errors++;
		session_fatal(s, "08P01", "invalid length of startup packet: %u", len);
		return false;
	}
	if (avail < len)
		return false;
	uint8_t *pkt = evbuffer_pullup(s->client.in, len);
	uint32_t code = pgw_get_u32(pkt + 4);
	bool extra = avail > len;
	if ((code == PGW_CODE_SSL || code == PGW_CODE_GSSENC) && len != 8) {
		session_fatal(s, "08P01", "invalid length of encryption request packet");
		return false;
	}
	if (code == PGW_CODE_SSL) {
		evbuffer_drain(s->client.in, len);
		if (extra) {
			/* Plaintext after SSLRequest may be injected by a man in the middle
			 * (CVE-2021-23214): refuse rather than mix it into the TLS session. */
			session_close(s, "received unencrypted data after SSL request");
			return false;
		}
		if (s->client.ssl) {
			session_fatal(s, "08P01", "SSL request inside an SSL connection");
			return false;
		}
		bool tls = s->cfg->client_tls_mode != TLS_DISABLE && s->cfg->client_ctx && !s->client_unix;
		evbuffer_add(s->client.out, tls ? "S" : "N", 1);
		if (io_flush(&s->client) != IO_OK) {
			session_close(s, "could not answer the SSL request");
			return false;
		}
		if (tls) {
			start_client_tls(s);
			return false;
		}
		return true;
	}
	if (code == PGW_CODE_GSSENC) {
		evbuffer_drain(s->client.in, len);
		if (extra) {
			session_close(s, "received unencrypted data after GSSAPI encryption request");
			return false;
		}
		/* ddlguard does not do GSSAPI encryption; the client falls back on this socket. */
		evbuffer_add(s->client.out, "N", 1);
		if (io_flush(&s->client) != IO_OK) {
			session_close(s, "could not answer the GSSAPI encryption request");
			return false;
		}
		return true;
	}
	if (code == PGW_CODE_CANCEL) {
		uint8_t copy[12 + 256];
		if (len > sizeof(copy)) {
			session_close(s, "malformed cancel request");
			return false;
		}
		memcpy(copy, pkt, len);
		evbuffer_drain(s->client.in, len);
		handle_cancel(s, copy, len);
		return false;
	}
	if (PGW_PROTO_MAJOR(code) == 3) {
		handle_startup(s, pkt, len);
		/* The packet was copied into upstream_packet; drop it (even on failure). */
		if (s->client.in)
			evbuffer_drain(s->client.in, len);
		return false;
	}
	s->srv->stats.protocol_errors++;
	session_fatal(s, "0A000", "unsupported frontend protocol %u.%u: ddlguard supports 3.0",
		      code >> 16, code & 0xffff);
	return false;
}

/* ---------------------------------------------------------------- authentication */

static void client_send(struct session *s, const struct pgw_buf *b)
{
	evbuffer_add(s->client.out, b->data, b->len);
}

static void server_send(struct session *s, const struct pgw_buf *b)
{
	evbuffer_add(s->server.out, b->data, b->len);
}

static void begin_upstream_scram(struct session *s)
{
	unsigned char cb[64];
	size_t cblen = 0;
	char first[256];
	if (s->sasl_plus && !tls_server_endpoint(s->server.ssl, cb, &cblen)) {
		session_fatal(s, "08006", "could not compute channel binding data for the upstream server");
		return;
	}
	s->scram_started = true;
	if (!scram_client_start(&s->scram, s->sasl_plus ? cb : NULL, cblen, true, first, sizeof(first))) {
		session_fatal(s, "08006", "could not start SCRAM authentication upstream");
		return;
	}
	struct pgw_buf b = { 0 };
	pgw_build_sasl_initial(&b, s->sasl_plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256", first,
			       strlen(first));
	server_send(s, &b);
	pgw_buf_free(&b);
	s->state = SS_AUTH;
	io_set_reading(&s->server, true);
}

/* The client's answer to our AuthenticationCleartextPassword (both legs TLS). */
static void client_password(struct session *s)
{
	size_t avail = evbuffer_get_length(s->client.in);
	if (avail < PGW_HDR_LEN)
		return;
	uint8_t hdr[PGW_HDR_LEN];
	evbuffer_copyout(s->client.in, hdr, PGW_HDR_LEN);
	uint32_t len = pgw_get_u32(hdr + 1);
	if (hdr[0] != 'p' || len < 5 || len > 4 + 1024) {
		if (hdr[0] == 'X') {
			session_close(s, "client closed the connection during authentication");
			return;
		}
		session_fatal(s, "08P01", "expected a password message");
		return;
	}
	if (avail < (size_t)len + 1)
		return;
	uint8_t *m = evbuffer_pullup(s->client.in, len + 1);
	const char *pw = (const char *)m + PGW_HDR_LEN;
	size_t pwlen = len - 4;
	if (pw[pwlen - 1] != 0 || memchr(pw, 0, pwlen) != pw + pwlen - 1) {
		OPENSSL_cleanse(m, len + 1);
		evbuffer_drain(s->client.in, len + 1);
		session_fatal(s, "08P01", "malformed password message");
		return;
	}
	s->password = strdup(pw);
	OPENSSL_cleanse(m, len + 1);
	evbuffer_drain(s->client.in, len + 1);
	if (!s->password) {
		session_fatal(s, "53200", "out of memory");
		return;
	}
	begin_upstream_scram(s);
}

static void forget_password(struct session *s)
{
	if (s->password) {
		OPENSSL_cleanse(s->password, strlen(s->password));
		free(s->password);
		s->password = NULL;
	}
}

/* One authentication-phase message from the server (type t, body of blen bytes). */
static void auth_message(struct session *s, uint8_t t, const uint8_t *msg, size_t mlen)
{
	const uint8_t *body = msg + PGW_HDR_LEN;
	size_t blen = mlen - PGW_HDR_LEN;
	char err[160];

	if (t == 'R') {
		if (blen < 4) {
			session_fatal(s, "08P01", "invalid authentication request from the upstream server");
			return;
		}
		uint32_t code = pgw_get_u32(body);
		if (code == PGW_AUTH_SASL) {
			struct pgw_buf b = { 0 };
			bool plus, scram;
			if (pgw_sasl_strip_plus(body, blen, &b, &plus, &scram) != PGW_OK) {
				pgw_buf_free(&b);
				session_fatal(s, "08P01", "invalid SASL request from the upstream server");
				return;
			}
			if (s->client.ssl && s->server.ssl && scram) {
				/* Both legs TLS: a relayed SCRAM would bind to the wrong certificate
				 * (see docs/security.md): ask for the password and log in ourselves. */
				pgw_buf_free(&b);
				s->terminate_auth = true;
				s->sasl_plus = plus;
				struct pgw_buf r = { 0 };
				pgw_build_auth(&r, PGW_AUTH_CLEARTEXT);
				client_send(s, &r);
				pgw_buf_free(&r);
				s->state = SS_CLIENT_PASSWORD;
				return;
			}
			/* Never offer -PLUS to the client: it would bind to ddlguard's certificate. */
			client_send(s, &b);
			pgw_buf_free(&b);
			return;
		}
		if (s->terminate_auth && code == PGW_AUTH_SASL_CONTINUE) {
			char final[512];
			bool ok = s->password &&
				  scram_client_final(&s->scram, s->password, (const char *)body + 4, blen - 4,
						     final, sizeof(final), err, sizeof(err));
			forget_password(s);
			if (!ok) {
				session_fatal(s, "08006", "SCRAM authentication with the upstream server failed: %s", err);
				return;
			}
			struct pgw_buf b = { 0 };
			pgw_build_sasl_response(&b, final, strlen(final));
			server_send(s, &b);
			pgw_buf_free(&b);
			return;
		}
		if (s->terminate_auth && code == PGW_AUTH_SASL_FINAL) {
			if (!scram_client_verify(&s->scram, (const char *)body + 4, blen - 4, err, sizeof(err))) {
				session_fatal(s, "08006", "the upstream server failed SCRAM verification: %s", err);
				return;
			}
			return;
		}
		if (code == PGW_AUTH_OK) {
			forget_password(s);
			s->logged_in = true;
		}
		evbuffer_add(s->client.out, msg, mlen);
		return;
	}
	if (t == 'K') {
		if (blen < 8 || blen > 4 + sizeof(s->srv_secret)) {
			session_fatal(s, "08P01", "invalid BackendKeyData from the upstream server");
			return;
		}
		s->srv_pid = pgw_get_u32(body);
		s->srv_secret_len = blen - 4;
		memcpy(s->srv_secret, body + 4, s->srv_secret_len);
		if (!cancel_register(s->srv, s, s->srv_secret_len)) {
			session_fatal(s, "53200", "could not generate a cancel key");
			return;
		}
		struct pgw_buf b = { 0 };
		pgw_build_backend_key(&b, s->key_pid, s->key_secret, s->key_len);
		client_send(s, &b);
		pgw_buf_free(&b);
		return;
	}
	if (t == 'Z') {
		evbuffer_add(s->client.out, msg, mlen);
		if (blen == 1)
			s->relay.last_status = body[0];
		s->state = SS_READY;
		s->logged_in = true;
		s->relay.to_server = s->server.out;
		s->relay.map_pid = map_notify_pid;
		s->relay.pid_arg = s;
		s->srv->stats.logins++;
		struct audit_record *ar = audit_begin("session_start");
		if (ar) {
			audit_int(ar, "session", (long long)s->id);
			audit_str(ar, "user", s->user);
			audit_str(ar, "database", s->database);
			audit_str(ar, "application_name", s->app);
			audit_str(ar, "client_addr", s->client_addr);
			audit_bool(ar, "tls", s->client.ssl != NULL);
			audit_str(ar, "environment", s->route->environment);
			audit_write(ar);
		}
		if (s->cfg->policy || ledger_is_staging(s) || ledger_is_gated(s) || audit_enabled()) {
			/* From here on every Query and Parse is seen by the guard. */
			s->relay.inspect = guard_inspect;
			s->relay.inspect_arg = s;
			s->relay.inspect_max = s->cfg->max_query_size;
			s->relay.on_ready = guard_ready;
			s->relay.ready_arg = s;
			s->relay.on_retry = guard_retry;
			s->relay.retry_arg = s;
		}
		set_timer(s, 0);
		char d[96];
		if (s->client.ssl || s->server.ssl)
			slog_info(s, "login ok (client %s, server %s%s)",
				  s->client.ssl ? tls_describe(s->client.ssl, d, sizeof(d)) : "plain",
				  s->server.ssl ? "TLS" : "plain",
				  s->terminate_auth ? ", SCRAM upstream by ddlguard" : "");
		else
			slog_info(s, "login ok");
		return;
	}
	/* ErrorResponse (e.g. 28P01, 3D000), ParameterStatus, NoticeResponse,
	 * NegotiateProtocolVersion: forward unchanged. After a login error the server closes. */
	if (t == 'E')
		s->login_error_sent = true;
	evbuffer_add(s->client.out, msg, mlen);
}

static void process_server_auth(struct session *s)
{
	while (s->state == SS_AUTH) {
		size_t avail = evbuffer_get_length(s->server.in);
		if (avail < PGW_HDR_LEN)
			return;
		uint8_t hdr[PGW_HDR_LEN];
		evbuffer_copyout(s->server.in, hdr, PGW_HDR_LEN);
		uint32_t len = pgw_get_u32(hdr + 1);
		if (len < 4 || len > PGW_AUTH_MAX) {
			session_fatal(s, "08P01", "invalid message from the upstream server during login");
			return;
		}
		if (avail < (size_t)len + 1)
			return;
		uint8_t *m = evbuffer_pullup(s->server.in, len + 1);
		auth_message(s, hdr[0], m, len + 1);
		if (s->state == SS_CLOSING || s->state == SS_FREED)
			return;
		evbuffer_drain(s->server.in, len + 1);
	}
}

/* Client messages before login: only password/SASL responses, streamed to the server. */
static void process_client_auth(struct session *s)
{
	for (;;) {
		size_t avail = evbuffer_get_length(s->client.in);
		if (avail < PGW_HDR_LEN)
			return;
		uint8_t hdr[PGW_HDR_LEN];
		evbuffer_copyout(s->client.in, hdr, PGW_HDR_LEN);
		uint32_t len = pgw_get_u32(hdr + 1);
		if (hdr[0] == 'X') {
			session_close(s, "client closed the connection during authentication");
			return;
		}
		if (hdr[0] != 'p') {
			session_fatal(s, "08P01", "expected an authentication response, got message type %d", hdr[0]);
			return;
		}
		if (len < 4 || len > PGW_AUTH_MAX) {
			session_fatal(s, "08P01", "invalid authentication message length %u", len);
			return;
		}
		if (avail < (size_t)len + 1)
			return;
		/* The bytes may hold a password: move them, never copy them anywhere else. */
		evbuffer_remove_buffer(s->client.in, s->server.out, len + 1);
	}
}

/* ---------------------------------------------------------------- steady state */

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * query_timeout: does the server owe us bytes? It does while it has not taken all we wrote,
 * and while it has requests to answer, except during COPY FROM STDIN (it waits for the
 * client then) and while the client's next message is only half here (it waits for the
 * rest). While ddlguard itself stops reading it (the client reads slowly) its silence is
 * ours: timer_cb counts that as heard.
 */
static bool server_owes(const struct session *s)
{
	if (s->server.writing)
		return true;
	return !relay_idle(&s->relay) && s->relay.c_left == 0 && !s->relay.copy_ignores_sync &&
	       !s->relay.retry_waiting;
}

/* After each callback in SS_READY: start the quiet clock when the server starts to owe us.
 * The timer is armed once per period and re-arms itself for what is left of it, so bytes
 * that keep coming cost a clock read, not a timer update. */
static void watch_server(struct session *s)
{
	int t = s->cfg->query_timeout;
	if (t <= 0 || s->state != SS_READY)
		return;
	bool owes = server_owes(s);
	if (owes && !s->awaiting_server) {
		s->server_heard = mono_now();
		if (!evtimer_pending(s->timer, NULL))
			set_timer(s, t);
	}
	s->awaiting_server = owes;
}

static void query_timeout_check(struct session *s)
{
	int t = s->cfg->query_timeout;
	if (t <= 0 || !server_owes(s)) {
		s->awaiting_server = false;
		return;
	}
	double now = mono_now();
	if (!s->server.reading)
		s->server_heard = now;  /* paused by us for a slow client: not the server's silence */
	double quiet = now - s->server_heard;
	if (quiet < t) {
		double left = t - quiet;
		struct timeval tv = { (time_t)left, (suseconds_t)((left - (time_t)left) * 1e6) };
		evtimer_add(s->timer, &tv);
		return;
	}
	slog_warning(s, "query_timeout: the upstream server sent nothing for %d s while it owed an answer; closing the session",
		     t);
	/* A server that is alive but stuck would go on running the statement, holding its
	 * locks: cancel it too (a stopped one acts on the cancel when it resumes). */
	session_cancel_upstream(s, "query_timeout");
	session_fatal(s, "08006", "query_timeout: the upstream server did not answer for %d s; ddlguard closed the connection",
		      t);
}

/*
 * The client is gone (EOF, reset, a failed write) while logged in. Closing the server
 * connection makes PostgreSQL roll back, but only once the backend next reads or writes its
 * socket: a statement that sleeps, computes or waits for a lock runs on, holding its locks
 * (and an ALTER waiting in the lock queue keeps every later reader of the table waiting).
 * Inside a transaction block nothing the client sent can commit any more, so cancel it.
 * An autocommit statement is left alone: connected directly it would run to its end too.
 */
static void client_lost(struct session *s, const char *why)
{
	if (s->state == SS_READY && s->relay.last_status != 'I' && !relay_idle(&s->relay))
		session_cancel_upstream(s, "the client went away");
	session_close(s, why);
}

static void after_relay(struct session *s, struct io *to, struct io *from)
{
	enum io_result r = io_flush(to);
	if (r == IO_ERROR) {
		if (to == &s->server)
			server_lost(s, s->server.errmsg);
		else
			client_lost(s, s->client.errmsg);
		return;
	}
	/* Backpressure: while `to` cannot take more, stop reading `from`. */
	if (evbuffer_get_length(to->out) > WATERMARK_HIGH)
		io_set_reading(from, false);
}

static void process_client(struct session *s)
{
	switch (s->state) {
	case SS_CLIENT_STARTUP:
		while (s->state == SS_CLIENT_STARTUP && client_initial_packet(s))
			;
		break;
	case SS_CLIENT_PASSWORD:
		client_password(s);
		if (s->state == SS_AUTH && io_flush(&s->server) == IO_ERROR)
			session_close(s, s->server.errmsg);
		break;
	case SS_AUTH:
		process_client_auth(s);
		if (s->state == SS_AUTH && io_flush(&s->server) == IO_ERROR)
			session_close(s, s->server.errmsg);
		break;
	case SS_READY: {
		enum relay_result r = relay_client_data(&s->relay, s->client.in, s->server.out);
		if (r == RELAY_PROTOCOL_ERROR) {
			s->srv->stats.protocol_errors++;
			/* Deliver what preceded the bad message, then end the session. */
			io_flush(&s->server);
			session_fatal(s, s->relay.error_sqlstate, "%s", s->relay.error_message);
			return;
		}
		after_relay(s, &s->server, &s->client);
		/* Facts are being fetched for the held statement: read no more meanwhile. */
		if (s->relay.inspect_wait && s->state == SS_READY)
			io_set_reading(&s->client, false);
		if (r == RELAY_TERMINATE && s->state == SS_READY)
			session_close(s, "client sent Terminate");
		break;
	}
	default:
		/* Connecting upstream: keep what the client sent until login, within a cap. */
		break;
	}
	if (s->state != SS_READY && s->state != SS_FREED && s->state != SS_CLOSING && s->client.in &&
	    evbuffer_get_length(s->client.in) > PRELOGIN_MAX)
		session_fatal(s, "08P01", "too much data from the client before login");
}

static void process_server(struct session *s)
{
	switch (s->state) {
	case SS_SERVER_TLS_REQ:
		server_tls_response(s);
		break;
	case SS_AUTH:
		process_server_auth(s);
		if (s->state == SS_CLOSING || s->state == SS_FREED)
			return;
		if (io_flush(&s->client) == IO_ERROR) {
			session_close(s, s->client.errmsg);
			return;
		}
		if (s->state == SS_AUTH && io_flush(&s->server) == IO_ERROR) {
			session_close(s, s->server.errmsg);
			return;
		}
		if (s->state == SS_READY) {
			/* Whatever followed ReadyForQuery (asynchronous messages) and whatever
			 * the client sent early go through the relay now. */
			process_server(s);
			if (s->state == SS_READY && evbuffer_get_length(s->client.in))
				process_client(s);
		}
		break;
	case SS_READY: {
		enum relay_result r = relay_server_data(&s->relay, s->server.in, s->client.out);
		if (r == RELAY_PROTOCOL_ERROR) {
			io_flush(&s->client);
			session_fatal(s, "08P01", "protocol error from the upstream server");
			return;
		}
		if (s->relay.wrote_to_server) {
			/* The session went idle and ddlguard's own pending query went out. */
			s->relay.wrote_to_server = false;
			if (io_flush(&s->server) == IO_ERROR) {
				server_lost(s, s->server.errmsg);
				return;
			}
		}
		after_relay(s, &s->client, &s->server);
		break;
	}
	case SS_CANCEL_WAIT:
		evbuffer_drain(s->server.in, evbuffer_get_length(s->server.in));
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- callbacks */

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->state == SS_CLIENT_TLS) {
		enum io_result r = io_handshake(&s->client);
		if (r == IO_ERROR)
			session_close(s, s->client.errmsg);
		if (r != IO_OK)
			return;
		s->state = SS_CLIENT_STARTUP;
		slog_debug(s, "client TLS established");
		/* The StartupMessage may have arrived with the handshake's last flight. */
	}
	if (s->is_cancel && s->state != SS_CLIENT_STARTUP) {
		/* A cancel connection says nothing more; read only to notice a close. The
		 * cancel still goes through: PostgreSQL acts on it whoever waits. */
		enum io_result r = io_read(&s->client);
		evbuffer_drain(s->client.in, evbuffer_get_length(s->client.in));
		if (r == IO_EOF || r == IO_ERROR)
			io_set_reading(&s->client, false);
		return;
	}
	enum io_result r = io_read(&s->client);
	if (evbuffer_get_length(s->client.in))
		process_client(s);
	if (s->state == SS_FREED || s->state == SS_CLOSING)
		return;
	if (r == IO_EOF)
		client_lost(s, s->logged_in ? "client closed the connection" : "client closed the connection before login");
	else if (r == IO_ERROR)
		client_lost(s, s->client.errmsg);
	else
		watch_server(s);
}

static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->state == SS_CLIENT_TLS) {
		client_read_cb(fd, what, arg);
		return;
	}
	enum io_result r = io_flush(&s->client);
	if (r == IO_ERROR) {
		if (s->state == SS_CLOSING)
			free_later(s);
		else
			client_lost(s, s->client.errmsg);
		return;
	}
	if (s->state == SS_CLOSING) {
		if (r == IO_OK)
			free_later(s);
		return;
	}
	if (s->state == SS_READY && !s->server.reading &&
	    evbuffer_get_length(s->client.out) < WATERMARK_LOW) {
		io_set_reading(&s->server, true);
		io_kick_pending(&s->server);
		/* Bytes may have been waiting in server.in while we were paused. */
		if (evbuffer_get_length(s->server.in))
			process_server(s);
	}
	watch_server(s);
}

static void server_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	if (s->state == SS_SERVER_TLS) {
		server_tls_step(s);
		return;
	}
	enum io_result r = io_read(&s->server);
	if (s->state == SS_READY && s->cfg->query_timeout > 0)
		s->server_heard = mono_now();
	else if (s->state == SS_AUTH && !s->server_answered && evbuffer_get_length(s->server.in)) {
		/* The server answers: what is left of the login is the client's to finish. */
		s->server_answered = true;
		set_timer(s, s->cfg->client_login_timeout);
	}
	if (evbuffer_get_length(s->server.in))
		process_server(s);
	if (s->state == SS_FREED || s->state == SS_CLOSING)
		return;
	if (r == IO_EOF) {
		if (s->is_cancel)
			session_close(s, "cancel forwarded; the server closed its connection");
		else if (s->state == SS_READY)
			server_lost(s, "the server closed the connection");
		else if (s->login_error_sent)
			session_close(s, "the upstream server refused the login");
		else
			session_fatal(s, "08006", "the upstream server closed the connection during login");
	} else if (r == IO_ERROR) {
		if (s->state == SS_READY)
			server_lost(s, s->server.errmsg);
		else if (s->is_cancel)
			session_close(s, s->server.errmsg);
		else
			session_fatal(s, "08006", "lost the upstream server during login: %s", s->server.errmsg);
	} else
		watch_server(s);
}

static void server_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	switch (s->state) {
	case SS_SERVER_CONNECT:
		check_connect(s);
		return;
	case SS_SERVER_TLS:
		server_tls_step(s);
		return;
	default:
		break;
	}
	enum io_result r = io_flush(&s->server);
	if (r == IO_ERROR) {
		server_lost(s, s->server.errmsg);
		return;
	}
	if (s->state == SS_READY && s->cfg->query_timeout > 0)
		s->server_heard = mono_now();   /* it took bytes: it is alive */
	if (s->state == SS_READY && !s->client.reading && !s->relay.inspect_wait &&
	    evbuffer_get_length(s->server.out) < WATERMARK_LOW) {
		io_set_reading(&s->client, true);
		io_kick_pending(&s->client);
		if (evbuffer_get_length(s->client.in))
			process_client(s);
	}
	watch_server(s);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	switch (s->state) {
	case SS_CLOSING:
		free_later(s);
		break;
	case SS_CLIENT_STARTUP:
	case SS_CLIENT_TLS:
	case SS_CLIENT_PASSWORD:
		if (s->is_cancel)
			session_close(s, "cancel timed out");
		else
			session_fatal(s, "08P01", "client_login_timeout: the client did not log in within %d s",
				      s->cfg->client_login_timeout);
		break;
	case SS_SERVER_CONNECT:
	case SS_SERVER_TLS_REQ:
	case SS_SERVER_TLS:
		if (s->is_cancel)
			session_close(s, "cancel timed out connecting upstream");
		else
			session_fatal(s, "08006", "could not connect to the upstream server at %s:%d: timeout after %d s (server_connect_timeout)",
				      s->route->host, s->route->port, s->cfg->server_connect_timeout);
		break;
	case SS_AUTH:
		if (!s->server_answered)
			session_fatal(s, "08006", "could not connect to the upstream server at %s:%d: no answer within %d s (server_connect_timeout)",
				      s->route->host, s->route->port, s->cfg->server_connect_timeout);
		else
			session_fatal(s, "08006", "client_login_timeout: login to the upstream server did not finish within %d s",
				      s->cfg->client_login_timeout);
		break;
	case SS_READY:
		query_timeout_check(s);
		break;
	case SS_CANCEL_WAIT:
		session_close(s, "cancel_wait_timeout: the server did not close the cancel connection");
		break;
	default:
		break;
	}
}
