/*
 * relay — the steady-state framing loop and the request FIFO of one session.
 *
 * Works on evbuffers only (no sockets, no TLS), so it can be fed every byte split in unit
 * tests. Messages are framed by their 5-byte header and moved between buffers in runs with
 * evbuffer_remove_buffer(); a message longer than what has arrived streams through as it
 * comes. Only what must be read is pulled up: ReadyForQuery's status byte, short command
 * tags (when a ready callback wants them), an ErrorResponse being rewritten, and a Query or
 * Parse when the session inspects them. No result set or COPY stream is ever held whole.
 *
 * The FIFO has one entry per message sent upstream that the server answers (Query, Parse,
 * Bind, Describe, Execute, Close, Sync, FunctionCall), the client's or ddlguard's own. Each
 * entry says what to do with its responses: forward them, swallow them (ddlguard's own
 * queries), or replace its ErrorResponse. It follows the protocol's rules: one
 * ReadyForQuery per Query, Sync and FunctionCall, none per Flush; after an error in the
 * extended protocol the server skips every message until Sync, so those entries are dropped;
 * during COPY-in the server ignores Sync, so those entries are dropped too.
 *
 * Queries ddlguard sends on its own *after* client messages (restoring a timeout, the test
 * hook) wait until the session is idle at a Sync boundary: every request answered and no
 * extended-protocol sequence open. Only there can a Query of ours neither land inside a
 * COPY nor end the client's implicit transaction early.
 */
#ifndef DDLG_RELAY_H
#define DDLG_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/pgw.h"

struct evbuffer;

enum relay_action {
	RELAY_FORWARD = 0,  /* pass the responses to the client */
	RELAY_SWALLOW,      /* ddlguard's own message: the client never sees its responses */
	RELAY_REWRITE,      /* forward, but replace this entry's ErrorResponse */
};

/* How to resend a guarded simple Query that failed on a lock timeout. */
struct relay_retry {
	bool enabled;
	struct pgw_buf message;     /* the Query as sent */
	struct pgw_buf prefix;      /* simple Queries to send before each resend (swallowed) */
	int nprefix;
	int attempt;                /* attempts made so far */
	double started;             /* monotonic seconds of the first attempt */
	char what[320];             /* "ALTER TABLE app.users", for notices */
	char relation[256];         /* the relation waited for, for blocker lookups */
};

/* Extra work attached to one request (rare: only guarded statements carry it). */
struct relay_extra {
	struct relay_retry retry;
	struct pgw_buf notices;     /* NoticeResponses sent just before the first response */
	bool notices_sent;
	struct pgw_buf error;       /* RELAY_REWRITE: the 'E' to send instead of the server's */
	struct pgw_buf aborted;     /* ... instead, when the transaction had already failed */
	char only_if[6];            /* rewrite only an error with this SQLSTATE ("" = any) */
};

struct relay_req {
	uint8_t type;               /* frontend message type; 'c' marks a client CopyDone/Fail */
	uint8_t action;             /* enum relay_action */
	struct relay_extra *x;      /* NULL, or owned */
};

/*
 * What the session decided about an inspected client Query or Parse (relay_inspect_cb).
 * `before` is sent first (each of its messages gets a SWALLOW entry), then the message or
 * its replacement with an entry carrying `action` and `x`; `after_sql` is run once the
 * session is idle at a Sync boundary (identical texts pending at once run once).
 */
struct relay_inspection {
	struct pgw_buf before;
	uint8_t before_types[8];
	int nbefore;
	struct pgw_buf replace;     /* if len > 0: the message to send instead */
	struct relay_extra *x;      /* given to the FIFO entry */
	enum relay_action action;   /* for the entry (FORWARD or REWRITE) */
	struct pgw_buf after_sql;   /* SQL text (no NUL) */
};

/* Return false to end the session (set r->error_* first). To decide later (facts must be
 * fetched first), set r->inspect_wait and return true: the message stays in the client's
 * buffer and is inspected again on the next relay_client_data() after the owner clears
 * the flag. */
typedef bool (*relay_inspect_cb)(void *arg, uint8_t type, const uint8_t *msg, size_t len,
				 struct relay_inspection *out);
/*
 * A retryable request failed with error f. Return true to retry it (the relay swallows the
 * error and its ReadyForQuery and waits for relay_retry_resend or relay_retry_give_up; the
 * callback may append notices to `client_out`, which is at a message boundary).
 */
typedef bool (*relay_retry_cb)(void *arg, struct relay_extra *x, const struct pgw_error_fields *f,
			       struct evbuffer *client_out);
/* Map a server backend pid (in a NotificationResponse) to the pid ddlguard gave clients. */
typedef uint32_t (*relay_pid_cb)(void *arg, uint32_t server_pid);
/* Called for every ReadyForQuery forwarded to the client. */
typedef void (*relay_ready_cb)(void *arg, uint8_t status, bool error, const char *last_tag);

enum relay_result {
	RELAY_OK = 0,
	RELAY_TERMINATE,            /* the client sent Terminate; it has been forwarded */
	RELAY_PROTOCOL_ERROR,       /* bad input; see relay.error_* */
};

struct relay_stats {
	uint64_t client_bytes, server_bytes;
	uint64_t queries, parses;   /* Query and Parse messages from the client */
	uint64_t own_queries;       /* queries ddlguard sent on its own */
};

struct relay {
	struct relay_req *q;        /* FIFO ring (owned) */
	uint32_t q_head, q_len, q_cap;
	bool skip_until_sync;       /* server discards client messages until the next Sync */
	bool copy_ignores_sync;     /* server is in COPY-in: it ignores Sync until CopyDone/Fail */
	bool unsynced;              /* client sent extended messages since its last Sync/Query */
	uint32_t max_packet;        /* cap on large client messages */

	uint32_t c_left;            /* bytes of the client message in flight still to move */
	uint8_t c_type;

	uint32_t s_left;            /* bytes of the server message in flight still to move */
	bool s_swallow;             /* ... and whether they are dropped */

	uint8_t last_status;        /* status byte of the last ReadyForQuery forwarded */

	struct evbuffer *to_server; /* where ddlguard's own later queries are written */
	struct pgw_buf pending_sql; /* SQL to run when idle at a Sync boundary */
	const char *inject_query;   /* test hook (config-owned): run after client Syncs and Queries */
	bool inject_due;            /* a client Sync passed since the hook last ran */
	bool wrote_to_server;       /* relay_server_data wrote to to_server: flush it */

	relay_inspect_cb inspect;   /* NULL: Query and Parse stream through like the rest */
	void *inspect_arg;
	uint32_t inspect_max;       /* larger Query/Parse messages cannot be inspected */
	bool inspect_wait;          /* the inspection is waiting: client input is held */
	relay_ready_cb on_ready;
	void *ready_arg;
	relay_pid_cb map_pid;       /* NULL: notification pids pass unchanged */
	void *pid_arg;
	relay_retry_cb on_retry;    /* NULL: never retry */
	void *retry_arg;
	bool retry_capture;         /* swallowing a failed attempt's responses (client input held) */
	bool retry_waiting;         /* an attempt failed; waiting to resend (client input held) */
	struct relay_extra *retry_x;   /* the failed request's extra, kept for the resend */
	struct pgw_buf held_error;  /* its ErrorResponse and ReadyForQuery, if retrying stops */
	bool give_up_pending;       /* retrying stopped mid-message: held_error goes after it */
	bool seg_error;             /* an ErrorResponse since the last ReadyForQuery */
	char last_tag[24];          /* the last CommandComplete tag (truncated) */
	char last_sqlstate[6];      /* the last forwarded error's SQLSTATE (with on_ready) */
	bool fatal_forwarded;       /* the server's FATAL/PANIC went to the client: it said why it left */

	char error_sqlstate[6];     /* set with RELAY_PROTOCOL_ERROR */
	char error_message[160];
	struct relay_stats stats;
};

/* to_server: the server's output buffer, for queries sent from the server-data path. */
void relay_init(struct relay *r, uint32_t max_packet, struct evbuffer *to_server);
void relay_free(struct relay *r);

/* Move whole or partial client messages from `in` to the server's output buffer `out`. */
enum relay_result relay_client_data(struct relay *r, struct evbuffer *in, struct evbuffer *out);
/* Move server messages from `in` to the client's output buffer `out`, applying the FIFO. */
enum relay_result relay_server_data(struct relay *r, struct evbuffer *in, struct evbuffer *out);

/* Queue SQL of ddlguard's own to run when idle at a Sync boundary (maybe at once). The
 * text must not end in a -- comment: pending texts are joined with "; ". */
void relay_run_when_idle(struct relay *r, const char *sql, size_t len);

/* Resend the request that failed (to_server), with its prefix. */
void relay_retry_resend(struct relay *r);
/* Stop retrying: give the client the last failure (its error and ReadyForQuery), at once
 * or, when a server message is half-forwarded, right after it. */
void relay_retry_give_up(struct relay *r, struct evbuffer *client_out);

/* Push a FIFO entry for a message ddlguard itself sent. Takes ownership of `x`. */
void relay_push(struct relay *r, uint8_t type, enum relay_action action, struct relay_extra *x);

struct relay_extra *relay_extra_new(void);
void relay_extra_free(struct relay_extra *x);
void relay_inspection_free(struct relay_inspection *in);

/* True when the server owes no responses: every request answered, no message half-moved. */
bool relay_idle(const struct relay *r);
/* True between server messages (a synthesized message may be inserted for the client). */
bool relay_at_server_boundary(const struct relay *r);

#endif
