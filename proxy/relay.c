/* relay — see relay.h. */
#include "proxy/relay.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A client that pipelines this many unanswered requests is cut off rather than grown. */
#define RELAY_MAX_PENDING (1u << 20)
#define MARK_COPY_END 'c'

void relay_init(struct relay *r, uint32_t max_packet, struct evbuffer *to_server)
{
	memset(r, 0, sizeof(*r));
	r->max_packet = max_packet;
	r->last_status = 'I';
	r->to_server = to_server;
}

struct relay_extra *relay_extra_new(void)
{
	struct relay_extra *x = calloc(1, sizeof(*x));
	if (!x)
		abort();
	return x;
}

void relay_extra_free(struct relay_extra *x)
{
	if (!x)
		return;
	pgw_buf_free(&x->notices);
	pgw_buf_free(&x->error);
	pgw_buf_free(&x->aborted);
	pgw_buf_free(&x->retry.message);
	pgw_buf_free(&x->retry.prefix);
	free(x);
}

void relay_inspection_free(struct relay_inspection *in)
{
	pgw_buf_free(&in->before);
	pgw_buf_free(&in->replace);
	pgw_buf_free(&in->after_sql);
	relay_extra_free(in->x);
	in->x = NULL;
}

static struct relay_req *req_at(const struct relay *r, uint32_t i)
{
	return &r->q[(r->q_head + i) & (r->q_cap - 1)];
}

static void pop_head(struct relay *r)
{
	struct relay_req *h = req_at(r, 0);
	relay_extra_free(h->x);
	h->x = NULL;
	r->q_head = (r->q_head + 1) & (r->q_cap - 1);
	r->q_len--;
}

/* The entry the next server message answers; CopyDone markers only separate entries. */
static struct relay_req *head(struct relay *r)
{
	while (r->q_len && req_at(r, 0)->type == MARK_COPY_END)
		pop_head(r);
	return r->q_len ? req_at(r, 0) : NULL;
}

void relay_free(struct relay *r)
{
	while (r->q_len)
		pop_head(r);
	free(r->q);
	r->q = NULL;
	r->q_cap = 0;
	pgw_buf_free(&r->pending_sql);
	pgw_buf_free(&r->held_error);
	relay_extra_free(r->retry_x);
	r->retry_x = NULL;
}

void relay_push(struct relay *r, uint8_t type, enum relay_action action, struct relay_extra *x)
{
	if (r->q_len == r->q_cap) {
		uint32_t ncap = r->q_cap ? r->q_cap * 2 : 16;
		struct relay_req *nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			abort();
		for (uint32_t i = 0; i < r->q_len; i++)
			nq[i] = *req_at(r, i);
		free(r->q);
		r->q = nq;
		r->q_head = 0;
		r->q_cap = ncap;
	}
	struct relay_req *e = &r->q[(r->q_head + r->q_len) & (r->q_cap - 1)];
	e->type = type;
	e->action = (uint8_t)action;
	e->x = x;
	r->q_len++;
}

bool relay_idle(const struct relay *r)
{
	for (uint32_t i = 0; i < r->q_len; i++)
		if (req_at(r, i)->type != MARK_COPY_END)
			return false;
	return r->c_left == 0 && r->s_left == 0;
}

bool relay_at_server_boundary(const struct relay *r)
{
	return r->s_left == 0;
}

/* Copy n bytes at offset off of buf into dst. The caller knows they are there. */
static void peek(struct evbuffer *buf, size_t off, void *dst, size_t n)
{
	struct evbuffer_ptr p;
	evbuffer_ptr_set(buf, &p, off, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(buf, &p, dst, n);
}

static bool answered(uint8_t t)
{
	switch (t) {
	case 'Q': case 'P': case 'B': case 'D': case 'E': case 'C': case 'S': case 'F':
		return true;
	default:
		return false;
	}
}

static enum relay_result proto_error(struct relay *r, const char *sqlstate, const char *msg)
{
	snprintf(r->error_sqlstate, sizeof(r->error_sqlstate), "%s", sqlstate);
	snprintf(r->error_message, sizeof(r->error_message), "%s", msg);
	return RELAY_PROTOCOL_ERROR;
}

/* Push a FIFO entry unless the server will not answer the message. */
static void push_if_answered(struct relay *r, uint8_t type, enum relay_action a, struct relay_extra *x)
{
	bool ignored = (r->skip_until_sync && type != 'S') || (r->copy_ignores_sync && type == 'S');
	if (ignored) {
		relay_extra_free(x);
		return;
	}
	relay_push(r, type, a, x);
}

static void add_query(struct evbuffer *out, const char *sql, size_t n)
{
	uint32_t len = (uint32_t)(4 + n + 1);
	uint8_t hdr[5] = { 'Q', len >> 24, len >> 16, len >> 8, len };
	evbuffer_add(out, hdr, 5);
	evbuffer_add(out, sql, n);
	evbuffer_add(out, "", 1);
}

/* Send our pending queries if the session is idle at a Sync boundary. */
static void send_own_if_idle(struct relay *r)
{
	if ((!r->pending_sql.len && !(r->inject_due && r->inject_query)) || r->retry_waiting ||
	    r->unsynced || r->skip_until_sync || r->copy_ignores_sync || !relay_idle(r) || !r->to_server)
		return;
	if (r->pending_sql.len) {
		add_query(r->to_server, (const char *)r->pending_sql.data, r->pending_sql.len);
		relay_push(r, 'Q', RELAY_SWALLOW, NULL);
		pgw_buf_reset(&r->pending_sql);
		r->stats.own_queries++;
	}
	if (r->inject_due && r->inject_query) {
		add_query(r->to_server, r->inject_query, strlen(r->inject_query));
		relay_push(r, 'Q', RELAY_SWALLOW, NULL);
		r->inject_due = false;
		r->stats.own_queries++;
	}
	r->wrote_to_server = true;
}

void relay_run_when_idle(struct relay *r, const char *sql, size_t len)
{
	/* The same restore twice would restore a value already restored: run it once. The
	 * pending text is statements joined by "; "; compare whole statements only. */
	const char *p = (const char *)r->pending_sql.data;
	const char *end = p ? p + r->pending_sql.len : NULL;  /* no arithmetic on NULL (UB) */
	while (p && p < end) {
		const char *sep = NULL;
		for (const char *q = p; q + 1 < end; q++)
			if (q[0] == ';' && q[1] == ' ') {
				sep = q;
				break;
			}
		const char *stop = sep ? sep : end;
		if ((size_t)(stop - p) == len && !memcmp(p, sql, len))
			return;
		p = sep ? sep + 2 : NULL;
	}
	if (r->pending_sql.len)
		pgw_buf_put(&r->pending_sql, "; ", 2);
	pgw_buf_put(&r->pending_sql, sql, len);
	send_own_if_idle(r);
}

void relay_retry_resend(struct relay *r)
{
	struct relay_extra *x = r->retry_x;
	if (!x)
		return;
	r->retry_x = NULL;
	r->retry_waiting = false;
	pgw_buf_reset(&r->held_error);
	if (x->retry.prefix.len) {
		evbuffer_add(r->to_server, x->retry.prefix.data, x->retry.prefix.len);
		for (int i = 0; i < x->retry.nprefix; i++)
			relay_push(r, 'Q', RELAY_SWALLOW, NULL);
	}
	evbuffer_add(r->to_server, x->retry.message.data, x->retry.message.len);
	x->notices_sent = true;  /* the statement's warnings went with the first attempt */
	relay_push(r, 'Q', RELAY_FORWARD, x);
	r->wrote_to_server = true;
}

static void emit_held_error(struct relay *r, struct evbuffer *client_out)
{
	evbuffer_add(client_out, r->held_error.data, r->held_error.len);
	if (r->held_error.len >= 6)
		r->last_status = r->held_error.data[r->held_error.len - 1];
	pgw_buf_reset(&r->held_error);
	r->give_up_pending = false;
}

void relay_retry_give_up(struct relay *r, struct evbuffer *client_out)
{
	if (!r->retry_waiting)
		return;
	/* While we wait the server may still send asynchronous messages (a notification, a
	 * ParameterStatus), and one may be half-forwarded now: the held error goes between
	 * two server messages, so maybe only at the end of this one (relay_server_data). */
	if (r->s_left)
		r->give_up_pending = true;
	else
		emit_held_error(r, client_out);
	relay_extra_free(r->retry_x);
	r->retry_x = NULL;
	r->retry_waiting = false;
}

/* A whole Query or Parse is at the head of `in`: ask the session, then send. */
static bool inspect_message(struct relay *r, struct evbuffer *in, struct evbuffer *out,
			    uint8_t type, size_t total)
{
	struct relay_inspection ins = { .action = RELAY_FORWARD };
	const uint8_t *msg = evbuffer_pullup(in, (ssize_t)total);
	if (!r->inspect(r->inspect_arg, type, msg, total, &ins)) {
		relay_inspection_free(&ins);
		return false;
	}
	if (r->inspect_wait) {
		relay_inspection_free(&ins);
		return true;    /* the message stays in `in` */
	}
	if (ins.before.len) {
		evbuffer_add(out, ins.before.data, ins.before.len);
		for (int i = 0; i < ins.nbefore; i++)
			if (answered(ins.before_types[i]))
				push_if_answered(r, ins.before_types[i], RELAY_SWALLOW, NULL);
	}
	if (ins.replace.len) {
		evbuffer_drain(in, total);
		evbuffer_add(out, ins.replace.data, ins.replace.len);
	} else
		evbuffer_remove_buffer(in, out, total);
	r->stats.client_bytes += total;
	if (type == 'Q') {
		r->stats.queries++;
		r->unsynced = false;
		r->inject_due = true;
	} else {
		r->stats.parses++;
		r->unsynced = true;
	}
	push_if_answered(r, type, ins.action, ins.x);
	ins.x = NULL;
	if (ins.after_sql.len)
		relay_run_when_idle(r, (const char *)ins.after_sql.data, ins.after_sql.len);
	relay_inspection_free(&ins);
	return true;
}

/* Book-keeping for a client message whose header was just read. */
static void client_message(struct relay *r, uint8_t t)
{
	switch (t) {
	case 'S':
		if (!r->copy_ignores_sync) {
			r->skip_until_sync = false;
			r->unsynced = false;
			r->inject_due = true;
		}
		break;
	case 'Q':
	case 'F':
		r->unsynced = false;
		r->inject_due = true;
		break;
	case 'P': case 'B': case 'D': case 'E': case 'C': case 'H':
		r->unsynced = true;
		break;
	case 'c':
	case 'f':
		/* CopyDone/CopyFail end the server's COPY-in: Syncs after it count again. */
		if (r->copy_ignores_sync)
			r->copy_ignores_sync = false;
		else if (r->q_len)
			relay_push(r, MARK_COPY_END, RELAY_FORWARD, NULL);
		break;
	default:
		break;
	}
}

enum relay_result relay_client_data(struct relay *r, struct evbuffer *in, struct evbuffer *out)
{
	size_t avail = evbuffer_get_length(in);
	size_t off = 0;             /* bytes of `in` ready to move as one run */
	enum relay_result res = RELAY_OK;

	/* Held until the pending inspection or retry is over; from a retried request's error
	 * on, too: a message sent behind it would run before the resend and be answered first. */
	if (r->inspect_wait || r->retry_waiting || r->retry_capture)
		return RELAY_OK;
	for (;;) {
		if (r->c_left) {
			size_t take = avail - off < r->c_left ? avail - off : r->c_left;
			off += take;
			r->c_left -= (uint32_t)take;
			if (r->c_left)
				break;  /* the rest of this message has not arrived yet */
			if (r->c_type == 'X') {
				res = RELAY_TERMINATE;
				break;
			}
			continue;
		}
		if (avail - off < PGW_HDR_LEN)
			break;
		uint8_t hdr[PGW_HDR_LEN];
		peek(in, off, hdr, PGW_HDR_LEN);
		uint32_t len = pgw_get_u32(hdr + 1);
		enum pgw_status st = pgw_check_fe_header(hdr[0], len, r->max_packet);
		if (st != PGW_OK) {
			char msg[160];
			if (st == PGW_BAD_TYPE)
				snprintf(msg, sizeof(msg), "invalid frontend message type %d", hdr[0]);
			else if (st == PGW_TOO_BIG)
				snprintf(msg, sizeof(msg), "message of type '%c' too large: %u bytes", hdr[0], len);
			else
				snprintf(msg, sizeof(msg), "invalid message length %u for message type '%c'", len, hdr[0]);
			evbuffer_remove_buffer(in, out, off); /* what came before was valid */
			r->stats.client_bytes += off;
			return proto_error(r, "08P01", msg);
		}
		if (r->inspect && (hdr[0] == 'Q' || hdr[0] == 'P')) {
			if (len > r->inspect_max) {
				evbuffer_remove_buffer(in, out, off);
				r->stats.client_bytes += off;
				char msg[160];
				snprintf(msg, sizeof(msg), "statement of %u bytes is larger than ddlguard can inspect (max_query_size = %u)",
					 len, r->inspect_max);
				return proto_error(r, "54000", msg);
			}
			if (avail - off < (size_t)len + 1)
				break;  /* inspect only a whole message */
			evbuffer_remove_buffer(in, out, off);
			r->stats.client_bytes += off;
			avail -= off;
			off = 0;
			if (!inspect_message(r, in, out, hdr[0], len + 1))
				return RELAY_PROTOCOL_ERROR;
			if (r->inspect_wait)
				return RELAY_OK;
			avail -= len + 1;
			continue;
		}
		if (answered(hdr[0])) {
			if (r->q_len >= RELAY_MAX_PENDING) {
				evbuffer_remove_buffer(in, out, off);
				r->stats.client_bytes += off;
				return proto_error(r, "54000", "too many pipelined requests without reading the responses");
			}
			push_if_answered(r, hdr[0], RELAY_FORWARD, NULL);
		}
		client_message(r, hdr[0]);
		if (hdr[0] == 'Q')
			r->stats.queries++;
		else if (hdr[0] == 'P')
			r->stats.parses++;
		r->c_type = hdr[0];
		r->c_left = len + 1;
	}
	if (off)
		evbuffer_remove_buffer(in, out, off);
	r->stats.client_bytes += off;
	return res;
}

/*
 * After an ErrorResponse in the extended protocol the server discards every message up to
 * the next Sync: drop the entries it will never answer.
 */
static void skip_to_sync(struct relay *r)
{
	while (r->q_len && req_at(r, 0)->type != 'S')
		pop_head(r);
	if (r->q_len == 0)
		r->skip_until_sync = true;
}

/*
 * CopyInResponse: until the client's CopyDone/CopyFail the server ignores Sync, so drop the
 * Sync entries the client sent after the COPY's own request and before its CopyDone.
 */
static void copy_in_started(struct relay *r)
{
	if (r->q_len == 0)
		return;
	uint32_t n = r->q_len, w = 1;
	bool marker = false;
	struct relay_req *tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		abort();
	tmp[0] = *req_at(r, 0);
	for (uint32_t i = 1; i < n; i++) {
		struct relay_req *e = req_at(r, i);
		if (e->type == MARK_COPY_END)
			marker = true;
		if (!marker && e->type == 'S') {
			relay_extra_free(e->x);
			continue;
		}
		tmp[w++] = *e;
	}
	for (uint32_t i = 0; i < w; i++)
		*req_at(r, i) = tmp[i];
	r->q_len = w;
	free(tmp);
	if (!marker)
		r->copy_ignores_sync = true;
	/* The Syncs the server ignores did not close the client's extended sequence. */
	if (req_at(r, 0)->type == 'E' && !marker)
		r->unsynced = true;
}

/*
 * What a server message of type t means for the FIFO head; pops entries the message
 * completes. Called once per message, at its header.
 */
static void account(struct relay *r, uint8_t t)
{
	struct relay_req *hd = head(r);
	if (!hd)
		return;
	uint8_t h = hd->type;
	switch (t) {
	case 'Z':
		if (h == 'S' || h == 'Q' || h == 'F')
			pop_head(r);
		break;
	case 'E':
		/* An error ends COPY-in on the server's side too: Syncs count again. */
		r->copy_ignores_sync = false;
		if (h == 'P' || h == 'B' || h == 'D' || h == 'E' || h == 'C') {
			pop_head(r);
			skip_to_sync(r);
		}
		break;
	case 'G':
		copy_in_started(r);
		break;
	case '1':
		if (h == 'P') pop_head(r);
		break;
	case '2':
		if (h == 'B') pop_head(r);
		break;
	case '3':
		if (h == 'C') pop_head(r);
		break;
	case 'T': case 'n':
		if (h == 'D') pop_head(r);
		break;
	case 'C': case 'I': case 's':
		if (h == 'E') pop_head(r);
		break;
	default:
		break;
	}
}

/* Replace the whole ErrorResponse at the head of `in` as the request's extra says. */
static void rewrite_error(struct relay *r, struct relay_extra *x, struct evbuffer *in,
			  struct evbuffer *out, size_t total)
{
	const uint8_t *m = evbuffer_pullup(in, (ssize_t)total);
	struct pgw_error_fields f;
	bool match = pgw_parse_error(m + PGW_HDR_LEN, total - PGW_HDR_LEN, &f) == PGW_OK &&
		     (!x->only_if[0] || (f.sqlstate && !strcmp(f.sqlstate, x->only_if)));
	if (!match) {
		evbuffer_remove_buffer(in, out, total);
		return;
	}
	evbuffer_drain(in, total);
	/* The status before this error is the last ReadyForQuery forwarded: responses are
	 * ordered, so it describes the start of this request's Sync segment. */
	if (r->last_status == 'E' && x->aborted.len)
		evbuffer_add(out, x->aborted.data, x->aborted.len);
	else
		evbuffer_add(out, x->error.data, x->error.len);
}

enum relay_result relay_server_data(struct relay *r, struct evbuffer *in, struct evbuffer *out)
{
	size_t avail = evbuffer_get_length(in);
	size_t off = 0;
	enum relay_result res = RELAY_OK;

#define FLUSH_RUN() do { \
		if (off) \
			evbuffer_remove_buffer(in, out, off); \
		r->stats.server_bytes += off; \
		avail -= off; \
		off = 0; \
	} while (0)

	for (;;) {
		if (r->s_left) {
			size_t take = avail - off < r->s_left ? avail - off : r->s_left;
			if (r->s_swallow) {
				/* Move what precedes, then drop this message's bytes. */
				FLUSH_RUN();
				evbuffer_drain(in, take);
				avail -= take;
			} else
				off += take;
			r->s_left -= (uint32_t)take;
			if (r->s_left)
				break;
			continue;
		}
		if (r->give_up_pending) {
			FLUSH_RUN();
			emit_held_error(r, out);
		}
		if (avail - off < PGW_HDR_LEN)
			break;
		uint8_t hdr[PGW_HDR_LEN + 1];
		peek(in, off, hdr, PGW_HDR_LEN);
		uint32_t len = pgw_get_u32(hdr + 1);
		if (pgw_check_be_header(hdr[0], len) != PGW_OK) {
			FLUSH_RUN();
			res = proto_error(r, "08P01", "invalid message from the server");
			break;
		}
		uint8_t status = 0;
		if (hdr[0] == 'Z') {
			if (avail - off < PGW_HDR_LEN + 1)
				break;  /* wait for the status byte */
			peek(in, off, hdr, PGW_HDR_LEN + 1);
			status = hdr[5];
		}
		struct relay_req *hd = head(r);
		uint8_t action = hd ? hd->action : RELAY_FORWARD;
		/* Notifications are for the client whatever query happens to be running. */
		if (hdr[0] == 'A')
			action = RELAY_FORWARD;
		if (hd && hd->x && action != RELAY_SWALLOW && !hd->x->notices_sent) {
			/* The policy's warnings go just before this request's first response. */
			hd->x->notices_sent = true;
			if (hd->x->notices.len) {
				FLUSH_RUN();
				evbuffer_add(out, hd->x->notices.data, hd->x->notices.len);
			}
		}
		if (hdr[0] == 'E' && hd && hd->x && hd->x->retry.enabled && r->on_retry &&
		    action != RELAY_SWALLOW && r->q_len == 1 && r->c_left == 0) {
			if (avail - off < (size_t)len + 1)
				break;  /* decide on a whole message */
			FLUSH_RUN();
			const uint8_t *m = evbuffer_pullup(in, len + 1);
			struct pgw_error_fields f;
			if (pgw_parse_error(m + PGW_HDR_LEN, len + 1 - PGW_HDR_LEN, &f) == PGW_OK &&
			    r->on_retry(r->retry_arg, hd->x, &f, out)) {
				/* Keep the error (and, below, its ReadyForQuery) in case retrying stops. */
				pgw_buf_reset(&r->held_error);
				pgw_buf_put(&r->held_error, m, len + 1);
				evbuffer_drain(in, len + 1);
				avail -= len + 1;
				r->retry_capture = true;
				hd->action = RELAY_SWALLOW;
				continue;
			}
		}
		if (hdr[0] == 'Z' && r->retry_capture && hd && hd->action == RELAY_SWALLOW) {
			/* The failed attempt's ReadyForQuery: keep it, and the request's extra. */
			uint8_t z[6];
			peek(in, off, z, 6);
			pgw_buf_put(&r->held_error, z, 6);
			r->retry_capture = false;
			r->retry_waiting = true;
			r->retry_x = hd->x;
			hd->x = NULL;
		}
		if (hdr[0] == 'A' && r->map_pid && len >= 8) {
			/* NotificationResponse names the notifying backend by pid; clients know
			 * ddlguard's pids (BackendKeyData), so translate, or a client that ignores its
			 * own notifications by comparing pids would not recognise them. */
			if (avail - off < PGW_HDR_LEN + 4)
				break;
			uint8_t head9[PGW_HDR_LEN + 4];
			peek(in, off, head9, sizeof(head9));
			uint32_t pid = pgw_get_u32(head9 + PGW_HDR_LEN);
			uint32_t mapped = r->map_pid(r->pid_arg, pid);
			if (mapped != pid) {
				FLUSH_RUN();
				head9[5] = mapped >> 24;
				head9[6] = mapped >> 16;
				head9[7] = mapped >> 8;
				head9[8] = mapped;
				evbuffer_add(out, head9, sizeof(head9));
				evbuffer_drain(in, sizeof(head9));
				avail -= sizeof(head9);
				r->stats.server_bytes += sizeof(head9);
				r->s_swallow = false;
				r->s_left = len + 1 - sizeof(head9);
				continue;
			}
		}
		if (action == RELAY_REWRITE && hdr[0] == 'E') {
			if (avail - off < (size_t)len + 1)
				break;  /* replace only a whole message */
			FLUSH_RUN();
			rewrite_error(r, hd->x, in, out, len + 1);
			avail -= len + 1;
			r->seg_error = true;
			account(r, 'E');
			continue;
		}
		if (action != RELAY_SWALLOW) {
			if (hdr[0] == 'E') {
				r->seg_error = true;
				/* Keep its SQLSTATE for the audit log, and whether it ends the session
				 * (errors are short and rare). */
				if (len < 4096 && avail - off >= (size_t)len + 1) {
					uint8_t body[4096];
					struct pgw_error_fields f;
					peek(in, off + PGW_HDR_LEN, body, len - 4);
					if (pgw_parse_error(body, len - 4, &f) == PGW_OK) {
						if (r->on_ready && f.sqlstate)
							snprintf(r->last_sqlstate, sizeof(r->last_sqlstate), "%s", f.sqlstate);
						r->fatal_forwarded = f.severity && (!strcmp(f.severity, "FATAL") ||
										   !strcmp(f.severity, "PANIC"));
					}
				}
			}
			else if (hdr[0] == 'C' && r->on_ready) {
				/* Keep the command tag (COMMIT, ROLLBACK …) for commit detection. */
				if (len > 64)
					r->last_tag[0] = 0;
				else if (avail - off < (size_t)len + 1)
					break;
				else {
					char tag[70];
					size_t n = len - 4 < sizeof(r->last_tag) ? len - 4 : sizeof(r->last_tag) - 1;
					peek(in, off + PGW_HDR_LEN, tag, len - 4);
					memcpy(r->last_tag, tag, n);
					r->last_tag[n] = 0;
				}
			} else if (hdr[0] == 'Z') {
				r->last_status = status;
				if (r->on_ready)
					r->on_ready(r->ready_arg, status, r->seg_error, r->last_tag);
				r->seg_error = false;
				r->last_tag[0] = 0;
				r->last_sqlstate[0] = 0;
			}
		}
		account(r, hdr[0]);
		r->s_swallow = action == RELAY_SWALLOW;
		r->s_left = len + 1;
	}
	FLUSH_RUN();
#undef FLUSH_RUN
	send_own_if_idle(r);
	return res;
}
