/*
 * facts — live facts about relations (estimated rows, size, indexes, current lock holders),
 * fetched on a libpq side connection before the policies judge a DDL statement.
 *
 * One side connection per (server, database), opened lazily with monitor_user /
 * monitor_password (ddlguard never holds a client's password), non-blocking on the event
 * loop, reconnecting with backoff. Answers are cached for facts_cache_seconds. While a
 * session's facts are being fetched, its client input is held (DDL is rare; a fetch takes
 * a round trip); facts_timeout bounds the wait, after which policies see no facts.
 * Names are resolved with to_regclass() on the side connection, i.e. with the monitor
 * user's search_path.
 */
#ifndef DDLG_FACTS_H
#define DDLG_FACTS_H

#include <stdbool.h>

#include "policies/engine.h"

struct server;
struct session;
struct pg_conn;

enum facts_status {
	FACTS_READY,        /* every name is in the cache (known or known-unavailable) */
	FACTS_PENDING,      /* a fetch is under way; the session is resumed when it ends */
	FACTS_DISABLED,     /* no monitor_user: policies get no facts */
};

/* Make sure facts for `names` are cached; FACTS_PENDING calls session_facts_ready() later. */
enum facts_status facts_prefetch(struct session *s, char **names, int n);
/* Forget the cached facts of `name` and fetch them again in the background. */
void facts_refresh(struct session *s, const char *name);
/* policy_session.facts callback: arg is the session. */
bool facts_lookup(void *arg, const char *name, struct policy_facts *out);
/* The session is going away: forget that it waits. */
void facts_forget_session(struct session *s);
/* Fetch one relation's facts on a blocking connection (ddlguard check --upstream). */
bool facts_fetch_blocking(struct pg_conn *pg, const char *name, struct policy_facts *out);

/* Free every side connection and the cache (process exit). */
void facts_shutdown(struct server *srv);

#endif
