/*
 * monitor — watches the locks a guarded statement waits for (DESIGN.md section 9).
 *
 * While a guarded statement that takes a strong lock has run longer than lock_watch_after,
 * ddlguard polls its backend every lock_poll_interval on a side connection: is it waiting
 * for a lock (advisory locks, which migration tools take for themselves, do not count),
 * who blocks it, and who queues behind it. Once it waits, ddlguard logs a lock_wait event
 * (log and audit), asks the on_lock_wait hooks, and cancels the statement when they say so
 * or, by default, once a session has queued behind it longer than max_queue_wait; the
 * retry machinery then treats that cancel like a lock timeout.
 */
#ifndef DDLG_MONITOR_H
#define DDLG_MONITOR_H

#include <stdbool.h>

struct session;

struct session_monitor {
	struct event *timer;        /* watch delay, then poll interval (owned) */
	bool watching;              /* a guarded statement is in flight */
	bool polling;               /* a poll is on the side connection */
	bool waiting;               /* the last poll saw it waiting for a lock */
	bool cancelled;             /* ddlguard cancelled it: its 57014 is retryable */
	double wait_started;        /* monotonic seconds */
	int reported;               /* lock_wait events logged for this wait */
	int queued_seen;            /* sessions queued behind it at the last report */
	char relation[256];         /* the table it locks, for messages */
};

/* A guarded statement was sent: start watching it. */
void monitor_start(struct session *s, const char *relation);
/* Its ReadyForQuery arrived: stop. Returns the seconds it waited for a lock. */
double monitor_stop(struct session *s);
void monitor_free(struct session *s);

#endif
