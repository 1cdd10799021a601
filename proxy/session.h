/*
 * session — one client connection and its upstream connection, for the client's whole life
 * (session mode: migration tools hold session-level advisory locks, so nothing is pooled).
 *
 * The session runs the connection-start state machine (SSLRequest, GSSENCRequest,
 * CancelRequest, StartupMessage), connects upstream (with TLS per route), relays
 * authentication (or, when both legs are TLS, performs SCRAM upstream itself), then hands
 * the steady state to relay.c. A session owns both sockets, both TLS sessions, its timer
 * and its relay state; it is freed outside its own callbacks by session_free_later().
 * A CancelRequest connection is a session too: it forwards one cancel and waits for the
 * server to close before closing the client (so a late cancel cannot hit the next query).
 */
#ifndef DDLG_SESSION_H
#define DDLG_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "protocol/pgw.h"
#include "protocol/scram.h"
#include "proxy/guard.h"
#include "proxy/io.h"
#include "proxy/monitor.h"
#include "proxy/relay.h"

struct server;
struct config;
struct route;

enum session_state {
	SS_CLIENT_STARTUP,   /* reading an initial packet from the client */
	SS_CLIENT_TLS,       /* TLS handshake with the client */
	SS_SERVER_CONNECT,   /* TCP connect upstream */
	SS_SERVER_TLS_REQ,   /* SSLRequest sent upstream, waiting for 'S' or 'N' */
	SS_SERVER_TLS,       /* TLS handshake upstream */
	SS_AUTH,             /* startup sent; relaying authentication */
	SS_CLIENT_PASSWORD,  /* both legs TLS: waiting for the client's password */
	SS_READY,            /* logged in: relay.c moves the bytes */
	SS_CANCEL_WAIT,      /* cancel forwarded; waiting for the server to close */
	SS_CLOSING,          /* flushing a last message to the client */
	SS_FREED,            /* scheduled for free */
};

struct session {
	uint64_t id;
	struct server *srv;
	struct config *cfg;          /* reference held for the session's life */
	struct route *route;         /* in cfg */
	enum session_state state;
	bool is_cancel;              /* this connection carries a CancelRequest */
	bool counted;                /* counted in srv->nclients */
	bool logged_in;
	bool login_error_sent;       /* the server's login ErrorResponse went to the client */

	struct io client, server;
	bool client_unix;
	char client_addr[64];
	char log_prefix[192];
	char *user, *database, *app; /* from the StartupMessage (owned) */
	struct pgw_buf upstream_packet; /* startup or cancel packet to send once connected */

	struct relay relay;
	struct guard_state guard;    /* what policies know of this session */
	struct session_monitor monitor;  /* lock waits of the statement in flight */
	struct event *timer;         /* login, connect, cancel, query_timeout or closing deadline */
	bool server_answered;        /* the server sent something after the startup packet */
	bool server_drained;         /* server_lost() read what the broken server leg still held */
	bool awaiting_server;        /* query_timeout: the server owes bytes (server_owes()) */
	double server_heard;         /* ... since this monotonic time, or its last byte after */
	struct event *free_ev;
	struct event *resume_ev;     /* facts arrived: inspect the held message again */
	bool facts_fetched;          /* ... and use what was fetched, without fetching again */
	struct event *retry_ev;      /* backoff before resending a statement that hit lock_timeout */

	uint32_t key_pid;            /* the BackendKeyData ddlguard gave the client */
	uint8_t key_secret[256];
	size_t key_len;
	uint32_t srv_pid;            /* the server's own */
	uint8_t srv_secret[256];
	size_t srv_secret_len;
	struct session *key_next;    /* cancel map chain */

	bool terminate_auth;         /* both legs TLS: ddlguard does SCRAM upstream */
	bool sasl_plus;              /* the server offered SCRAM-SHA-256-PLUS */
	struct scram_client scram;
	bool scram_started;
	char *password;              /* held only between the client's 'p' and our client-final */

	struct session *next, *prev; /* srv->sessions */
};

/* Accept a new client connection; takes ownership of fd. */
void session_accept(struct server *srv, int fd, const struct sockaddr *addr, int addrlen);
/* End a session: log once, close the upstream, flush `err` (if any) to the client, free. */
void session_close(struct session *s, const char *reason);
/* Free now-ish whatever the state (process exit): nothing more is sent. */
void session_abort(struct session *s);
/* Send FATAL with this SQLSTATE to the client if the protocol allows, then close. */
void session_fatal(struct session *s, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Facts for the held statement are cached now: resume (deferred, never re-entrant). */
void session_facts_ready(struct session *s);
/* Resend the failed statement after `seconds` (guard_retry). */
void session_retry_later(struct session *s, double seconds);
/* Is the server working on a request of this session (cancel makes sense)? */
bool session_busy(const struct session *s);
/* Cancel what the server runs for `t` on a fresh upstream connection of ddlguard's own,
 * as a client's CancelRequest would (t's client is gone or its server stopped answering). */
void session_cancel_upstream(struct session *t, const char *why);

#endif
