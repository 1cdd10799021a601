/* pgw — see pgw.h. */
#include "protocol/pgw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void buf_grow(struct pgw_buf *b, size_t need)
{
	if (b->len + need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + need)
		cap *= 2;
	uint8_t *p = malloc(cap);
	if (!p)
		abort(); /* out of memory while building a small protocol message */
	if (b->data) {
		memcpy(p, b->data, b->len);
		/* The old buffer may have held a password message: wipe before freeing. */
		memset(b->data, 0, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
}

void pgw_buf_reset(struct pgw_buf *b)
{
	b->len = 0;
}

void pgw_buf_free(struct pgw_buf *b)
{
	if (b->data) {
		volatile uint8_t *p = b->data;
		for (size_t i = 0; i < b->cap; i++)
			p[i] = 0;
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

void pgw_buf_put(struct pgw_buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pgw_buf_put_u8(struct pgw_buf *b, uint8_t v)
{
	pgw_buf_put(b, &v, 1);
}

void pgw_buf_put_u32(struct pgw_buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };
	pgw_buf_put(b, x, 4);
}

void pgw_buf_put_str(struct pgw_buf *b, const char *s)
{
	pgw_buf_put(b, s, strlen(s) + 1);
}

size_t pgw_msg_begin(struct pgw_buf *b, char type)
{
	size_t start = b->len;
	pgw_buf_put_u8(b, (uint8_t)type);
	pgw_buf_put_u32(b, 0);
	return start;
}

void pgw_msg_end(struct pgw_buf *b, size_t start)
{
	/* The length counts itself and the payload, not the type byte at `start`. */
	size_t at = start + 1;
	uint32_t len = (uint32_t)(b->len - at);
	b->data[at] = len >> 24;
	b->data[at + 1] = len >> 16;
	b->data[at + 2] = len >> 8;
	b->data[at + 3] = len;
}

enum pgw_status pgw_check_fe_header(uint8_t type, uint32_t len, uint32_t large_max)
{
	uint32_t max;

	switch (type) {
	case PGW_FE_QUERY:
	case PGW_FE_PARSE:
	case PGW_FE_BIND:
	case PGW_FE_FUNCTION:
	case PGW_FE_COPYDATA:
		max = large_max;
		break;
	case PGW_FE_CLOSE:
	case PGW_FE_DESCRIBE:
	case PGW_FE_EXECUTE:
	case PGW_FE_FLUSH:
	case PGW_FE_SYNC:
	case PGW_FE_TERMINATE:
	case PGW_FE_COPYDONE:
	case PGW_FE_COPYFAIL:
		max = PGW_SMALL_MAX;
		break;
	default:
		return PGW_BAD_TYPE;
	}
	if (len < 4)
		return PGW_BAD_LENGTH;
	/* Messages that have no body must say so: Sync, Flush, Terminate and CopyDone are 4. */
	if ((type == PGW_FE_SYNC || type == PGW_FE_FLUSH || type == PGW_FE_TERMINATE ||
	     type == PGW_FE_COPYDONE) && len != 4)
		return PGW_BAD_LENGTH;
	if (len > max)
		return PGW_TOO_BIG;
	return PGW_OK;
}

enum pgw_status pgw_check_be_header(uint8_t type, uint32_t len)
{
	if (len < 4)
		return PGW_BAD_LENGTH;
	if (len > 0x7fffffffu)
		return PGW_TOO_BIG;
	if (type == PGW_BE_READY && len != 5)
		return PGW_BAD_LENGTH;
	return PGW_OK;
}

static bool parse_fail(char *err, size_t errlen, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", why);
	return false;
}

enum pgw_status pgw_parse_startup(const uint8_t *pkt, size_t len, struct pgw_startup *out,
				  char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (len < 8 || pgw_get_u32(pkt) != len) {
		parse_fail(err, errlen, "invalid startup packet length");
		return PGW_MALFORMED;
	}
	out->version = pgw_get_u32(pkt + 4);
	const char *p = (const char *)pkt + 8;
	const char *end = (const char *)pkt + len;
	/* key\0value\0 ... \0: the packet must end with the terminating NUL. */
	if (end[-1] != '\0') {
		parse_fail(err, errlen, "startup packet is not terminated");
		return PGW_MALFORMED;
	}
	while (p < end && *p) {
		const char *k = p;
		const char *kend = memchr(k, 0, end - k);
		if (!kend || kend + 1 >= end) {
			parse_fail(err, errlen, "startup parameter has no value");
			return PGW_MALFORMED;
		}
		const char *v = kend + 1;
		const char *vend = memchr(v, 0, end - v);
		if (!vend) {
			parse_fail(err, errlen, "startup parameter value is not terminated");
			return PGW_MALFORMED;
		}
		if (out->nparams >= PGW_STARTUP_MAXPARAMS) {
			parse_fail(err, errlen, "too many startup parameters");
			return PGW_MALFORMED;
		}
		out->keys[out->nparams] = k;
		out->values[out->nparams] = v;
		out->nparams++;
		if (!strcmp(k, "user"))
			out->user = v;
		else if (!strcmp(k, "database"))
			out->database = v;
		else if (!strcmp(k, "application_name"))
			out->application_name = v;
		else if (!strcmp(k, "replication"))
			out->replication = strcmp(v, "false") && strcmp(v, "off") &&
					   strcmp(v, "no") && strcmp(v, "0");
		p = vend + 1;
	}
	/* p now points at the final NUL; it must be the last byte. */
	if (p != end - 1) {
		parse_fail(err, errlen, "unexpected data after the startup parameters");
		return PGW_MALFORMED;
	}
	if (out->user == NULL || !*out->user) {
		parse_fail(err, errlen, "no PostgreSQL user name specified in startup packet");
		return PGW_MALFORMED;
	}
	if (out->database == NULL || !*out->database)
		out->database = out->user;
	return PGW_OK;
}

void pgw_build_startup(struct pgw_buf *b, const struct pgw_startup *st, const char *db)
{
	size_t start = b->len;
	pgw_buf_put_u32(b, 0);
	pgw_buf_put_u32(b, st->version);
	bool db_done = false;
	for (int i = 0; i < st->nparams; i++) {
		pgw_buf_put_str(b, st->keys[i]);
		if (db && !strcmp(st->keys[i], "database")) {
			pgw_buf_put_str(b, db);
			db_done = true;
		} else
			pgw_buf_put_str(b, st->values[i]);
	}
	if (db && !db_done) {
		pgw_buf_put_str(b, "database");
		pgw_buf_put_str(b, db);
	}
	pgw_buf_put_u8(b, 0);
	uint32_t len = (uint32_t)(b->len - start);
	b->data[start] = len >> 24;
	b->data[start + 1] = len >> 16;
	b->data[start + 2] = len >> 8;
	b->data[start + 3] = len;
}

enum pgw_status pgw_parse_cancel(const uint8_t *pkt, size_t len, struct pgw_cancel *out)
{
	/* Protocol 3.0: 4-byte secret (len 16); 3.2: 4 to 256 bytes. */
	if (len < 16 || len > 12 + sizeof(out->secret) || pgw_get_u32(pkt) != len ||
	    pgw_get_u32(pkt + 4) != PGW_CODE_CANCEL)
		return PGW_MALFORMED;
	out->pid = pgw_get_u32(pkt + 8);
	out->secret_len = len - 12;
	memcpy(out->secret, pkt + 12, out->secret_len);
	return PGW_OK;
}

void pgw_build_cancel(struct pgw_buf *b, uint32_t pid, const uint8_t *secret, size_t secret_len)
{
	pgw_buf_put_u32(b, (uint32_t)(12 + secret_len));
	pgw_buf_put_u32(b, PGW_CODE_CANCEL);
	pgw_buf_put_u32(b, pid);
	pgw_buf_put(b, secret, secret_len);
}

enum pgw_status pgw_parse_error(const uint8_t *body, size_t len, struct pgw_error_fields *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = (const char *)body, *end = (const char *)body + len;
	const char *sev_s = NULL, *sev_v = NULL;
	while (p < end && *p) {
		char code = *p++;
		const char *v = p;
		const char *vend = memchr(v, 0, end - v);
		if (!vend)
			return PGW_MALFORMED;
		switch (code) {
		case 'S': sev_s = v; break;
		case 'V': sev_v = v; break;
		case 'C': out->sqlstate = v; break;
		case 'M': out->message = v; break;
		case 'D': out->detail = v; break;
		case 'H': out->hint = v; break;
		default: break;
		}
		p = vend + 1;
	}
	if (p >= end)
		return PGW_MALFORMED; /* missing the final terminator */
	out->severity = sev_v ? sev_v : sev_s;
	return PGW_OK;
}

void pgw_build_error(struct pgw_buf *b, char type, const char *severity, const char *sqlstate,
		     const char *message, const char *detail, const char *hint)
{
	size_t m = pgw_msg_begin(b, type);
	pgw_buf_put_u8(b, 'S');
	pgw_buf_put_str(b, severity);
	pgw_buf_put_u8(b, 'V');
	pgw_buf_put_str(b, severity);
	pgw_buf_put_u8(b, 'C');
	pgw_buf_put_str(b, sqlstate);
	pgw_buf_put_u8(b, 'M');
	pgw_buf_put_str(b, message);
	if (detail) {
		pgw_buf_put_u8(b, 'D');
		pgw_buf_put_str(b, detail);
	}
	if (hint) {
		pgw_buf_put_u8(b, 'H');
		pgw_buf_put_str(b, hint);
	}
	pgw_buf_put_u8(b, 0);
	pgw_msg_end(b, m);
}

void pgw_build_auth(struct pgw_buf *b, uint32_t code)
{
	size_t m = pgw_msg_begin(b, 'R');
	pgw_buf_put_u32(b, code);
	pgw_msg_end(b, m);
}

void pgw_build_backend_key(struct pgw_buf *b, uint32_t pid, const uint8_t *secret, size_t n)
{
	size_t m = pgw_msg_begin(b, 'K');
	pgw_buf_put_u32(b, pid);
	pgw_buf_put(b, secret, n);
	pgw_msg_end(b, m);
}

void pgw_build_query(struct pgw_buf *b, const char *sql)
{
	size_t m = pgw_msg_begin(b, 'Q');
	pgw_buf_put_str(b, sql);
	pgw_msg_end(b, m);
}

enum pgw_status pgw_sasl_strip_plus(const uint8_t *body, size_t len, struct pgw_buf *out,
				    bool *had_plus, bool *had_scram)
{
	*had_plus = *had_scram = false;
	if (len < 5 || pgw_get_u32(body) != PGW_AUTH_SASL || body[len - 1] != 0)
		return PGW_MALFORMED;
	size_t m = pgw_msg_begin(out, 'R');
	pgw_buf_put_u32(out, PGW_AUTH_SASL);
	const char *p = (const char *)body + 4, *end = (const char *)body + len;
	while (p < end && *p) {
		const char *e = memchr(p, 0, end - p);
		if (!e)
			return PGW_MALFORMED;
		if (!strcmp(p, "SCRAM-SHA-256-PLUS"))
			*had_plus = true;
		else {
			if (!strcmp(p, "SCRAM-SHA-256"))
				*had_scram = true;
			pgw_buf_put_str(out, p);
		}
		p = e + 1;
	}
	if (p >= end)
		return PGW_MALFORMED;  /* the list must end with an empty name */
	pgw_buf_put_u8(out, 0);
	pgw_msg_end(out, m);
	return PGW_OK;
}

void pgw_build_sasl_initial(struct pgw_buf *b, const char *mech, const char *data, size_t n)
{
	size_t m = pgw_msg_begin(b, 'p');
	pgw_buf_put_str(b, mech);
	pgw_buf_put_u32(b, (uint32_t)n);
	pgw_buf_put(b, data, n);
	pgw_msg_end(b, m);
}

void pgw_build_sasl_response(struct pgw_buf *b, const char *data, size_t n)
{
	size_t m = pgw_msg_begin(b, 'p');
	pgw_buf_put(b, data, n);
	pgw_msg_end(b, m);
}

const char *pgw_status_str(enum pgw_status s)
{
	switch (s) {
	case PGW_OK: return "ok";
	case PGW_NEED_MORE: return "incomplete message";
	case PGW_BAD_LENGTH: return "invalid message length";
	case PGW_BAD_TYPE: return "invalid message type";
	case PGW_TOO_BIG: return "message too large";
	case PGW_MALFORMED: return "malformed message";
	}
	return "unknown";
}
