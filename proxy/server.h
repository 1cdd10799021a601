/*
 * server — the process-wide state: the event base, the current config, the listeners,
 * the list of live sessions, the cancel-key map, signals and shutdown.
 */
#ifndef DDLG_SERVER_H
#define DDLG_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/config.h"

struct event_base;
struct evconnlistener;
struct session;
struct facts_state;
struct side_conn;
struct ledger_state;
struct evhttp;
struct rule_count;

#define SERVER_MAX_LISTENERS 16
#define SERVER_KEYMAP_SIZE 4096   /* buckets; chains hold the rest */

struct server_stats {
	uint64_t sessions;           /* client sessions that reached login */
	uint64_t logins;             /* ... and logged in */
	uint64_t login_failures;
	uint64_t cancels;
	uint64_t protocol_errors;
	uint64_t queries, parses;
	uint64_t client_bytes, server_bytes;
	uint64_t lock_waits, lock_cancels;
	uint64_t allowed, warned, denied;     /* guarded statements by decision */
	uint64_t retries, policy_errors, ledger_errors;
};

struct server {
	struct event_base *base;
	struct cli_opts opts;               /* kept for reloads */
	struct config *cfg;                 /* current config (owned reference) */
	struct evconnlistener *listeners[SERVER_MAX_LISTENERS];
	int nlisteners;
	char unix_path[108];                /* unlinked at exit */
	int bound_port;                     /* first TCP listener's port (run mode uses :0) */

	struct session *sessions;           /* every live session, cancel forwarders included */
	int nclients;                       /* counted against max_client_conn */
	int nlive;                          /* every session object, cancels included */
	struct session *keymap[SERVER_KEYMAP_SIZE];
	uint64_t next_id;

	bool draining;                      /* SIGTERM: no new sessions, waiting for old ones */
	bool stopping;                      /* the loop is ending */
	struct event *drain_timer;
	struct event *accept_pause;         /* re-enables accepting after EMFILE */
	struct event *sig_events[5];
	int nsig;

	/* `ddlguard run`: the child command. */
	pid_t child;
	int child_status;
	bool child_done;

	struct server_stats stats;
	struct facts_state *facts;          /* live facts cache and waiters (facts.c) */
	struct side_conn *sideconns;        /* ddlguard's own connections (sideconn.c) */
	struct ledger_state *ledger;        /* staging-first lookups and cache (ledger.c) */
	struct evhttp *http;                /* metrics endpoint (metrics.c) */
	struct rule_count *rule_counts;
};

bool server_init(struct server *srv, const struct cli_opts *opts, char *err, size_t errlen);
bool server_listen(struct server *srv, char *err, size_t errlen);
/* Run the loop until shutdown. */
void server_run(struct server *srv);
void server_free(struct server *srv);

/* Stop accepting; let sessions finish up to shutdown_timeout (graceful) or close now. */
void server_shutdown(struct server *srv, bool graceful);
/* Reload the config file; keeps the old config when the new one is broken. */
bool server_reload(struct server *srv);

/* Session bookkeeping, called by session.c. */
void server_session_gone(struct server *srv, struct session *s);

#endif
