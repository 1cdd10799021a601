/*
 * sideconn — ddlguard's own libpq connections to servers (live facts, the staging ledger),
 * non-blocking on the event loop.
 *
 * One connection per target (host, port, database, user), opened lazily on the first job,
 * kept open, reopened after a failure with backoff. Jobs (one SQL statement with text
 * parameters) run one at a time in submission order; each ends with its callback, called
 * from the event loop (never from side_submit itself), with the result or an error. A job
 * (but a write) that has not started within its timeout of being queued fails without
 * running (checked whenever a job ends); one that runs longer than its timeout fails, and
 * the connection is reset. Passwords are never logged.
 */
#ifndef DDLG_SIDECONN_H
#define DDLG_SIDECONN_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct pg_result;

struct side_target {
	const char *host, *port, *dbname, *user, *password;   /* password may be NULL */
	const char *sslmode, *sslrootcert;                    /* sslrootcert may be NULL */
};

/* res is NULL when the job failed (error says why); the result is freed after the call. */
typedef void (*side_done_cb)(void *arg, struct pg_result *res, const char *error);

/* Queue a job. False only when the connection is backing off after a failure (error set). */
bool side_submit(struct server *srv, const struct side_target *t, int timeout_s, const char *sql,
		 int nparams, const char *const *params, side_done_cb cb, void *arg,
		 char *error, size_t errlen);
/* The same for a write that must not be lost to a long queue (the staging ledger): it waits
 * for its turn however long that takes; only its run time is limited by timeout_s. */
bool side_submit_write(struct server *srv, const struct side_target *t, int timeout_s, const char *sql,
		       int nparams, const char *const *params, side_done_cb cb, void *arg,
		       char *error, size_t errlen);
/* Drop the callbacks of every queued or running job for arg (its owner is going away). */
void side_forget(struct server *srv, void *arg);
/* Close every side connection (process exit). */
void side_shutdown(struct server *srv);

#endif
