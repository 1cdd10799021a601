/*
 * fuzz_relay — the relay's framing loop and request FIFO (proxy/relay.c) fed arbitrary
 * bytes at arbitrary splits, in both directions, interleaved as the input says.
 *
 * The relay is driven as session.c drives it, through four evbuffers (client input, the
 * server's output, server input, the client's output) plus a fifth for ddlguard's own
 * queries (relay_init's to_server), kept apart so that what the client sent can be told
 * from what ddlguard added.
 *
 * Input:
 *   byte 0       options: bit 0 inspect Query/Parse (a callback in the spirit of guard.c:
 *                forward, deny by replacement, set a timeout before and restore it after,
 *                make the statement retryable, wait for facts, or refuse); bit 1 map
 *                notification pids; bit 2 a ReadyForQuery callback; bit 3 retry lock
 *                timeouts; bit 4 the inject_query test hook; bit 5 small caps
 *                (max_packet_size 64, max_query_size 200); bit 6 strict server framing:
 *                the harness makes every server message header it gives name a real
 *                backend type and a length below 16 MB, so that a message ddlguard
 *                split or spliced shows in the client's stream as a header that is not.
 *   then ops:    00nnnnnn  n bytes of client data (n = 63: the length is the next 2 bytes)
 *                01nnnnnn  n bytes of server data (likewise)
 *                1xxxxxxx  control: x % 6 = 0 facts arrived (resume a waiting inspection),
 *                          1 resend a waiting retry, 2 give up retrying (a client cancel),
 *                          3 queue a restore of our own (relay_run_when_idle), 4 call both
 *                          directions with no new bytes, 5 the next byte is the decision
 *                          for the next inspected message (else a hash of it decides).
 *   The run stops at the first protocol error or Terminate, as the session would.
 *
 * What must hold, beyond no crash, leak or undefined behaviour:
 *   - every byte taken from the client's input is counted in stats.client_bytes, and
 *     every byte taken from the server's in stats.server_bytes when nothing is swallowed,
 *     rewritten or remapped;
 *   - without inspection, what reaches the server is exactly the client's bytes, in order;
 *     with nothing swallowed, rewritten, remapped or added, what reaches the client is
 *     exactly the server's bytes, in order;
 *   - each output stream is well framed: every message header ddlguard lets through or
 *     writes passes the check for its direction (ddlguard never splits, truncates or
 *     splices a message), including ddlguard's own queries.
 */
#include <event2/buffer.h>
#include <string.h>

#include "protocol/pgw.h"
#include "proxy/relay.h"
#include "tests/fuzz/fuzz.h"

enum {
	OPT_INSPECT = 1, OPT_MAP_PID = 2, OPT_READY = 4, OPT_RETRY = 8, OPT_INJECT = 16, OPT_SMALL = 32,
	OPT_STRICT = 64,
};

/* Every backend message type (pgw.h enum pgw_be_type). */
static const char be_types[] = "123ACDEGHIKNRSTVWZcdnstv";

/* Follows message boundaries in a stream that is only ever appended to. */
struct framer {
	bool frontend;
	uint32_t max;           /* cap on large frontend messages */
	uint8_t hdr[PGW_HDR_LEN];
	size_t have;            /* header bytes seen of the current message */
	uint64_t left;          /* body bytes still to come */
	uint64_t messages;
	bool strict;            /* backend: real types and lengths below 16 MB only */
};

static void framer_feed(struct framer *f, const uint8_t *p, size_t n)
{
	while (n) {
		if (f->left) {
			size_t k = n < f->left ? n : (size_t)f->left;
			f->left -= k;
			p += k;
			n -= k;
			continue;
		}
		f->hdr[f->have++] = *p++;
		n--;
		if (f->have < PGW_HDR_LEN)
			continue;
		uint32_t len = pgw_get_u32(f->hdr + 1);
		enum pgw_status st = f->frontend ? pgw_check_fe_header(f->hdr[0], len, f->max)
						 : pgw_check_be_header(f->hdr[0], len);
		FUZZ_CHECK(st == PGW_OK, "%s stream: message %llu ('%c', length %u) is not framed: %s",
			   f->frontend ? "client-to-server" : "server-to-client",
			   (unsigned long long)f->messages, f->hdr[0], len, pgw_status_str(st));
		FUZZ_CHECK(!f->strict || (f->hdr[0] && strchr(be_types, f->hdr[0]) && len < (1u << 24)),
			   "server-to-client stream: message %llu has type %d, length %u: a message was split or spliced",
			   (unsigned long long)f->messages, f->hdr[0], len);
		f->have = 0;
		f->left = len - 4;
		f->messages++;
	}
}

struct harness {
	struct relay r;
	uint8_t opts;
	struct evbuffer *c_in, *s_out, *s_in, *c_out, *own;
	struct framer to_server, to_client, own_frames;
	uint64_t c_given, c_taken, s_given, s_taken;
	struct framer s_fix;        /* OPT_STRICT: where the server input's headers are */
	struct pgw_buf c_sent;      /* every byte given as client data */
	struct pgw_buf s_sent;      /* ... and as server data */
	uint64_t c_out_total, s_out_total;
	bool exact_s;               /* nothing changed server-to-client so far */
	uint32_t ninspect;
	int next_choice;            /* decision for the next inspection, -1: hash */
	uint32_t pid_changes;
};

static uint32_t hash(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* relay_inspect_cb: what a policy might decide, chosen from the message's bytes. */
static bool inspect(void *arg, uint8_t type, const uint8_t *msg, size_t len, struct relay_inspection *out)
{
	struct harness *h = arg;
	FUZZ_CHECK(len >= PGW_HDR_LEN && msg[0] == type && pgw_get_u32(msg + 1) + 1 == len,
		   "inspected a message that is not whole: type '%c', %zu bytes", type, len);
	FUZZ_CHECK(type == 'Q' || type == 'P', "inspected type '%c'", type);
	uint32_t c = h->next_choice >= 0 ? (uint32_t)h->next_choice : hash(msg, len) + h->ninspect;
	h->ninspect++;
	h->next_choice = -1;
	switch (c % 8) {
	case 0: case 1: case 2:
		return true;
	case 3: {
		/* Deny: replace the message, rewrite its error (guard.c apply_deny). */
		out->x = relay_extra_new();
		out->action = RELAY_REWRITE;
		pgw_build_error(&out->x->error, 'E', "ERROR", "42501", "denied by policy", "rule r", NULL);
		if (type == 'Q') {
			pgw_build_query(&out->replace, "DO $$BEGIN RAISE EXCEPTION 'denied'; END$$");
			if (c & 8)
				memcpy(out->x->only_if, "P0001", 6);
		} else {
			size_t m = pgw_msg_begin(&out->replace, 'P');
			pgw_buf_put_str(&out->replace, "");
			pgw_buf_put_str(&out->replace, "DDLGUARD POLICY REJECTED THIS STATEMENT");
			pgw_buf_put(&out->replace, "\0\0", 2);
			pgw_msg_end(&out->replace, m);
			memcpy(out->x->only_if, "42601", 6);
			pgw_build_error(&out->x->aborted, 'E', "ERROR", "25P02", "aborted", NULL, NULL);
		}
		return true;
	}
	case 4: case 5: {
		/* A timeout set before, restored after; warnings; a retryable Query. */
		out->x = relay_extra_new();
		pgw_build_error(&out->x->notices, 'N', "WARNING", "01000", "careful", NULL, "hint");
		if (type == 'Q') {
			pgw_build_query(&out->before, "SELECT set_config('lock_timeout', '2000', false)");
			out->before_types[out->nbefore++] = 'Q';
			if (c & 16) {
				out->x->retry.enabled = true;
				pgw_buf_put(&out->x->retry.message, msg, len);
				pgw_build_query(&out->x->retry.prefix, "ROLLBACK TO SAVEPOINT ddlguard_retry");
				out->x->retry.nprefix = 1;
			}
		} else {
			static const char types[] = { 'P', 'B', 'E', 'C', 'C', 'S' };
			for (size_t i = 0; i < sizeof(types); i++) {
				size_t m = pgw_msg_begin(&out->before, types[i]);
				if (types[i] != 'S')
					pgw_buf_put(&out->before, "x\0\0\0\0\0", 6);
				pgw_msg_end(&out->before, m);
				out->before_types[out->nbefore++] = (uint8_t)types[i];
			}
		}
		const char *restore = c & 32 ? "SELECT set_config('lock_timeout', '0', false)" : "RESET lock_timeout";
		pgw_buf_put(&out->after_sql, restore, strlen(restore));
		return true;
	}
	case 6:
		/* Facts must be fetched first: the message stays until a control op resumes. */
		h->r.inspect_wait = true;
		return true;
	default:
		if (c % 64 != 7)
			return true;
		snprintf(h->r.error_sqlstate, sizeof(h->r.error_sqlstate), "53200");
		snprintf(h->r.error_message, sizeof(h->r.error_message), "refused by the test");
		return false;
	}
}

static bool on_retry(void *arg, struct relay_extra *x, const struct pgw_error_fields *f,
		     struct evbuffer *client_out)
{
	struct harness *h = arg;
	/* The guard retries lock timeouts (55P03, 57014); the relay's part does not depend on
	 * which error it was, so any error is retried here, twice at most. */
	FUZZ_CHECK(!f->sqlstate || strlen(f->sqlstate) < 4096, "sqlstate");
	if (x->retry.attempt >= 2)
		return false;
	x->retry.attempt++;
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'N', "NOTICE", "00000", "retrying", NULL, NULL);
	evbuffer_add(client_out, b.data, b.len);
	pgw_buf_free(&b);
	h->exact_s = false;
	return true;
}

static uint32_t map_pid(void *arg, uint32_t pid)
{
	struct harness *h = arg;
	if (pid & 1) {
		h->pid_changes++;
		return pid ^ 0x5a5a5a5au;
	}
	return pid;
}

static void on_ready(void *arg, uint8_t status, bool error, const char *last_tag)
{
	FUZZ_CHECK(memchr(last_tag, 0, 24) != NULL, "last_tag not terminated");
	(void)arg;
	(void)status;
	(void)error;
}

/* Move what the relay wrote to an output into its framer (and the exact copy check). */
static void drain(struct evbuffer *b, struct framer *f, uint64_t *total, const struct pgw_buf *want,
		  bool exact)
{
	size_t n = evbuffer_get_length(b);
	if (!n)
		return;
	const uint8_t *p = evbuffer_pullup(b, (ssize_t)n);
	framer_feed(f, p, n);
	if (exact)
		FUZZ_CHECK(*total + n <= want->len && !memcmp(p, want->data + *total, n),
			   "output differs from the input at byte %llu", (unsigned long long)*total);
	*total += n;
	evbuffer_drain(b, n);
}

static bool server_exact(const struct harness *h)
{
	/* Swallowed own queries, rewrites, notices, remapped pids and retries change it. */
	return h->exact_s && !(h->opts & (OPT_INSPECT | OPT_INJECT)) && h->pid_changes == 0;
}

/* One call into the relay in one direction; false when the session would end. */
static bool call(struct harness *h, bool client)
{
	struct evbuffer *in = client ? h->c_in : h->s_in;
	uint64_t before_len = evbuffer_get_length(in);
	uint64_t before_stat = client ? h->r.stats.client_bytes : h->r.stats.server_bytes;
	enum relay_result res = client ? relay_client_data(&h->r, h->c_in, h->s_out)
				       : relay_server_data(&h->r, h->s_in, h->c_out);
	uint64_t taken = before_len - evbuffer_get_length(in);
	uint64_t counted = (client ? h->r.stats.client_bytes : h->r.stats.server_bytes) - before_stat;
	if (client) {
		h->c_taken += taken;
		FUZZ_CHECK(counted == taken, "client: took %llu bytes, counted %llu",
			   (unsigned long long)taken, (unsigned long long)counted);
	} else {
		h->s_taken += taken;
		if (server_exact(h))
			FUZZ_CHECK(counted == taken, "server: took %llu bytes, counted %llu",
				   (unsigned long long)taken, (unsigned long long)counted);
		FUZZ_CHECK(counted <= taken, "server: counted %llu bytes, took %llu",
			   (unsigned long long)counted, (unsigned long long)taken);
	}
	drain(h->s_out, &h->to_server, &h->c_out_total, &h->c_sent, !(h->opts & OPT_INSPECT));
	bool exact = server_exact(h);
	drain(h->c_out, &h->to_client, &h->s_out_total, &h->s_sent, exact);
	if (exact)
		FUZZ_CHECK(h->s_out_total == h->s_taken, "server bytes taken %llu, forwarded %llu",
			   (unsigned long long)h->s_taken, (unsigned long long)h->s_out_total);
	uint64_t own_total = 0;
	drain(h->own, &h->own_frames, &own_total, NULL, false);
	if (res == RELAY_PROTOCOL_ERROR) {
		FUZZ_CHECK(h->r.error_sqlstate[0] && h->r.error_message[0], "protocol error without a message");
		return false;
	}
	FUZZ_CHECK(res == RELAY_OK || (client && res == RELAY_TERMINATE), "result %d", res);
	return res == RELAY_OK;
}

/* OPT_STRICT: give each server header a real type and a length below 16 MB, byte by
 * byte (a header may be split between two chunks). */
static void make_strict(struct framer *f, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f->left) {
			size_t k = n - i < f->left ? n - i : (size_t)f->left;
			f->left -= k;
			i += k - 1;
			continue;
		}
		if (f->have == 0 && (!p[i] || !strchr(be_types, p[i])))
			p[i] = (uint8_t)be_types[p[i] % (sizeof(be_types) - 1)];
		else if (f->have == 1)
			p[i] = 0;
		f->hdr[f->have++] = p[i];
		if (f->have == PGW_HDR_LEN) {
			uint32_t len = pgw_get_u32(f->hdr + 1);
			f->have = 0;
			f->left = len >= 4 ? len - 4 : 0;
		}
	}
}

static void give(struct harness *h, bool client, const uint8_t *data, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	memcpy(p, data, n);
	if (!client && (h->opts & OPT_STRICT))
		make_strict(&h->s_fix, p, n);
	evbuffer_add(client ? h->c_in : h->s_in, p, n);
	pgw_buf_put(client ? &h->c_sent : &h->s_sent, p, n);
	free(p);
	if (client)
		h->c_given += n;
	else
		h->s_given += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct harness h;
	memset(&h, 0, sizeof(h));
	h.opts = data[0];
	h.exact_s = true;
	h.next_choice = -1;
	h.c_in = evbuffer_new();
	h.s_out = evbuffer_new();
	h.s_in = evbuffer_new();
	h.c_out = evbuffer_new();
	h.own = evbuffer_new();
	uint32_t max_packet = h.opts & OPT_SMALL ? 64 : PGW_LARGE_MAX;
	relay_init(&h.r, max_packet, h.own);
	h.to_server = (struct framer){ .frontend = true, .max = max_packet };
	/* ddlguard's replacements and additions may exceed a small client cap. */
	if (h.opts & OPT_INSPECT)
		h.to_server.max = PGW_LARGE_MAX;
	h.to_client = (struct framer){ .frontend = false, .strict = h.opts & OPT_STRICT };
	h.own_frames = (struct framer){ .frontend = true, .max = PGW_LARGE_MAX };
	if (h.opts & OPT_INSPECT) {
		h.r.inspect = inspect;
		h.r.inspect_arg = &h;
		h.r.inspect_max = h.opts & OPT_SMALL ? 200 : 1u << 20;
	}
	if (h.opts & OPT_MAP_PID) {
		h.r.map_pid = map_pid;
		h.r.pid_arg = &h;
	}
	if (h.opts & OPT_READY) {
		h.r.on_ready = on_ready;
		h.r.ready_arg = &h;
	}
	if (h.opts & OPT_RETRY) {
		h.r.on_retry = on_retry;
		h.r.retry_arg = &h;
	}
	if (h.opts & OPT_INJECT)
		h.r.inject_query = "SELECT 'injected'";

	size_t off = 1;
	bool alive = true;
	while (alive && off < size) {
		uint8_t op = data[off++];
		if (op & 0x80) {
			switch ((op & 0x7f) % 6) {
			case 0:
				if (h.r.inspect_wait) {
					h.r.inspect_wait = false;
					alive = call(&h, true);
				}
				break;
			case 1:
				if (h.r.retry_waiting)
					relay_retry_resend(&h.r);
				break;
			case 2:
				if (h.r.retry_waiting) {
					relay_retry_give_up(&h.r, h.c_out);
					h.exact_s = false;
					/* A client's cancel resumes its input (session.c stop_retrying). */
					alive = call(&h, true);
				}
				break;
			case 3:
				relay_run_when_idle(&h.r, op & 1 ? "RESET lock_timeout" : "RESET statement_timeout",
						    op & 1 ? 18 : 23);
				h.exact_s = false;
				break;
			case 4:
				alive = call(&h, true) && call(&h, false);
				break;
			default:
				if (off < size)
					h.next_choice = data[off++];
				break;
			}
			continue;
		}
		bool client = !(op & 0x40);
		size_t n = op & 0x3f;
		if (n == 0x3f && size - off >= 2) {
			n = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
		}
		if (n > size - off)
			n = size - off;
		give(&h, client, data + off, n);
		off += n;
		alive = call(&h, client);
	}
	FUZZ_CHECK(h.c_taken <= h.c_given && h.s_taken <= h.s_given, "took more than given");

	relay_free(&h.r);
	evbuffer_free(h.c_in);
	evbuffer_free(h.s_out);
	evbuffer_free(h.s_in);
	evbuffer_free(h.c_out);
	evbuffer_free(h.own);
	pgw_buf_free(&h.c_sent);
	pgw_buf_free(&h.s_sent);
	return 0;
}
