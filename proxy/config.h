/*
 * config — ddlguard's settings: the INI file ([ddlguard] and [databases]) and the command
 * line flags that override it.
 *
 * A config object is immutable once loaded and reference-counted: each session holds the
 * config it started with, so a SIGHUP reload swaps in a new object for new sessions while
 * old sessions finish on theirs. TLS contexts built from a config (tls.c) live in it too.
 */
#ifndef DDLG_CONFIG_H
#define DDLG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/log.h"

typedef struct ssl_ctx_st SSL_CTX;

enum tls_mode {
	TLS_DISABLE = 0, TLS_ALLOW, TLS_PREFER, TLS_REQUIRE, TLS_VERIFY_CA, TLS_VERIFY_FULL,
};

/* One [databases] entry: where a client-visible database name is relayed to. */
struct route {
	char *name;                 /* client-visible database name, or "*" */
	char *host;                 /* host name, IP address, or a unix socket directory (/…) */
	int port;
	char *dbname;               /* upstream database name; NULL keeps the client's */
	char *environment;          /* e.g. "staging", "production" */
	char *target;               /* the application's name in the staging ledger (NULL: the database) */
	enum tls_mode server_tls_mode;
	char *server_tls_ca_file;   /* NULL: the [ddlguard] default */
	SSL_CTX *server_ctx;        /* built by tls_build(); NULL when TLS is disabled */
	struct route *next;
};

/* Flags given on the command line; re-applied on top of the file at every reload. */
struct cli_opts {
	const char *config_file;
	const char *upstream;       /* postgres:// URL: becomes the "*" route */
	const char *listen;         /* ADDR:PORT */
	const char *environment;
	const char *unix_socket_dir;
	const char *rules;          /* --rules: off, none, default or strict */
	int verbose;                /* each -v raises the log level by one */
};

struct config {
	int refcount;
	char *listen_addr;          /* comma list; "*" = all; "" = unix socket only */
	int listen_port;
	char *unix_socket_dir;      /* NULL or "" = no unix socket */
	enum tls_mode client_tls_mode;
	char *client_tls_cert_file;
	char *client_tls_key_file;
	enum tls_mode server_tls_mode;   /* default for routes */
	char *server_tls_ca_file;        /* default root certificate for routes */
	int client_login_timeout;   /* seconds */
	int server_connect_timeout; /* ... until the server's first answer to the startup packet */
	int query_timeout;          /* s without a byte from a server that owes an answer (0: off) */
	int cancel_wait_timeout;
	int shutdown_timeout;
	int max_client_conn;
	uint32_t max_packet_size;
	enum log_level log_level;
	char *logfile;
	char *environment;          /* default environment for routes */
	char *debug_inject_query;   /* test hook: see docs/configuration.md */
	char **policy_files;        /* policy_files, in order (owned) */
	int npolicy_files;
	bool policy_fail_open;      /* policy_failure = open */
	long policy_budget;         /* instructions per policy call */
	long policy_time_limit_ms;  /* wall-clock time per policy call */
	long policy_memory_mb;
	uint32_t max_query_size;    /* largest Query/Parse inspected when policies are loaded */
	char *rules;                /* rule library profile: off, none, default, strict */
	char *rule_levels;          /* "[env/]id:level, …" */
	long small_table_rows;
	char *lock_timeout;         /* the library's lock_timeout / statement_timeout */
	char *statement_timeout;
	char *lua_scripts_dir;      /* NULL: the installed library (or the source tree's) */
	int retry_attempts;         /* lock-timeout retries: attempts in all (1 = none) */
	int retry_budget;           /* ... and seconds from the first attempt */
	char *staging_environments; /* environments whose commits are recorded in the ledger */
	char *gated_environments;   /* environments that require a staging record */
	char *ledger;               /* conninfo of the ledger; NULL: the first staging route */
	long contract_window;       /* seconds a contract step waits after staging (0: off) */
	int lock_watch_after;       /* ms a guarded statement runs before its locks are watched */
	int lock_poll_interval;     /* ms between polls while watching */
	int max_queue_wait;         /* ms a session may queue behind a migration (0: never cancel) */
	int long_transaction_warn;  /* s: warn about lock holders whose transaction is older */
	char *audit_log;            /* JSON Lines audit log path; NULL: none */
	char *metrics_listen;       /* ADDR:PORT of the Prometheus endpoint; NULL: off */
	bool audit_fail_open;       /* audit_failure = open */
	bool audit_dml;             /* audit every statement, DML included */
	bool unparsed_pass;         /* unparsed_statements = pass: relay text the parser rejects */
	char *monitor_user;         /* side connections (facts): user and password */
	char *monitor_password;
	int facts_cache_seconds;
	int facts_timeout;
	struct policy_engine *policy;  /* built by config_load_policies(); NULL: nothing loaded */
	struct route *routes;       /* in file order; the "*" route is kept in `fallback` */
	struct route *fallback;
	SSL_CTX *client_ctx;        /* built by tls_build(); NULL when client TLS is disabled */
};

struct config *config_new(void);
/* Load from opts: the file if any, then the flags. NULL with a message in err on failure. */
struct config *config_load(const struct cli_opts *opts, char *err, size_t errlen);
/* Parse INI text (for tests and config_load). `origin` names the source in errors. */
bool config_parse_ini(struct config *cfg, const char *text, const char *origin,
		      char *err, size_t errlen);
bool config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);
bool config_add_route(struct config *cfg, const char *name, const char *spec,
		      char *err, size_t errlen);
bool config_set_upstream_url(struct config *cfg, const char *url, char *err, size_t errlen);
/* Final checks once everything is set (a listener, TLS files present when needed…). */
bool config_validate(struct config *cfg, char *err, size_t errlen);

/* Load the policy files into a new engine (called by config_load and on reload). */
bool config_load_policies(struct config *cfg, char *err, size_t errlen);
/* Where the shipped library is: lua_scripts_dir, else installed, else the source tree. */
const char *config_library_dir(const struct config *cfg);

/* The route for a client-visible database name: exact match, else "*", else NULL. */
struct route *config_find_route(struct config *cfg, const char *dbname);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

const char *tls_mode_name(enum tls_mode m);

#endif
