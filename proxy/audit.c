/* audit — see audit.h. */
#include "proxy/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "protocol/pgw.h"
#include "proxy/log.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_LINE_MAX (4 << 20)

struct audit_record {
	struct pgw_buf b;
};

static struct {
	char *path;
	FILE *fp;
	bool ok;
	uint64_t seq;
	char head[65];
} A;

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

/* The hash of a line: SHA-256 of its text before ,"hash": with a closing brace. */
static bool line_hash(const char *line, size_t len, char *out_hex, size_t *body_len)
{
	const char *mark = NULL;
	for (size_t i = len; i >= 8; i--) {
		if (!memcmp(line + i - 8, ",\"hash\":", 8)) {
			mark = line + i - 8;
			break;
		}
	}
	if (!mark)
		return false;
	*body_len = (size_t)(mark - line);
	unsigned char md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		  EVP_DigestUpdate(ctx, line, *body_len) == 1 && EVP_DigestUpdate(ctx, "}", 1) == 1 &&
		  EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (ok)
		hex(md, sizeof(md), out_hex);
	return ok;
}

/* Find "key": in a record line and copy its string or number value. */
static bool field(const char *line, const char *key, char *out, size_t outlen)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(line, pat);
	if (!p)
		return false;
	p += strlen(pat);
	size_t n = 0;
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < outlen)
			out[n++] = *p++;
	} else {
		while (*p && *p != ',' && *p != '}' && n + 1 < outlen)
			out[n++] = *p++;
	}
	out[n] = 0;
	return true;
}

/* Continue the chain from the file's last line (after a restart or logrotate's copy). */
static void load_tail(FILE *fp)
{
	A.seq = 0;
	snprintf(A.head, sizeof(A.head), "%s", ZERO_HASH);
	if (fseek(fp, 0, SEEK_END) != 0)
		return;
	long size = ftell(fp);
	if (size <= 0)
		return;
	long start = size > AUDIT_LINE_MAX ? size - AUDIT_LINE_MAX : 0;
	fseek(fp, start, SEEK_SET);
	char *buf = malloc((size_t)(size - start) + 1);
	if (!buf)
		return;
	size_t n = fread(buf, 1, (size_t)(size - start), fp);
	buf[n] = 0;
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	char seq[32], hash[80];
	if (field(last, "seq", seq, sizeof(seq)) && field(last, "hash", hash, sizeof(hash)) && strlen(hash) == 64) {
		A.seq = strtoull(seq, NULL, 10);
		memcpy(A.head, hash, 64);
		A.head[64] = 0;
	}
	free(buf);
}

bool audit_open(const char *path, char *err, size_t errlen)
{
	audit_close();
	if (!path || !*path)
		return true;
	/* Created owner read-write, group read (a log shipper), nobody else: it names users,
	 * databases and every schema change. An existing file keeps its mode. */
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	FILE *fp = fd >= 0 ? fdopen(fd, "a+") : NULL;
	if (!fp) {
		snprintf(err, errlen, "cannot open audit_log \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		/* Still configured, just failing: audit_ok() is false and schema changes are
		 * denied (audit_failure = closed) until a reopen succeeds. Forgetting the path
		 * here would turn auditing off, and let them through unaudited. */
		A.path = strdup(path);
		A.ok = false;
		return false;
	}
	load_tail(fp);
	A.fp = fp;
	A.path = strdup(path);
	A.ok = A.path != NULL;
	return A.ok;
}

bool audit_check_path(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open audit_log \"%s\": %s", path, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

bool audit_reopen(char *err, size_t errlen)
{
	if (!A.path)
		return true;
	char *path = strdup(A.path);
	uint64_t seq = A.seq;
	char head[65];
	snprintf(head, sizeof(head), "%s", A.head);
	bool ok = path && audit_open(path, err, errlen);
	free(path);
	/* A fresh file (rotated away) continues the chain where the old one ended. */
	if (ok && A.seq == 0 && seq) {
		A.seq = seq;
		snprintf(A.head, sizeof(A.head), "%s", head);
	}
	if (ok)
		log_info("audit log reopened; chain head seq %llu hash %s", (unsigned long long)A.seq, A.head);
	return ok;
}

void audit_close(void)
{
	if (A.fp)
		fclose(A.fp);
	A.fp = NULL;
	free(A.path);
	A.path = NULL;
}

bool audit_enabled(void)
{
	return A.path != NULL;
}

bool audit_ok(void)
{
	return !A.path || A.ok;
}

const char *audit_head(void)
{
	return A.head[0] ? A.head : ZERO_HASH;
}

uint64_t audit_seq(void)
{
	return A.seq;
}

static void put_json_string(struct pgw_buf *b, const char *s)
{
	pgw_buf_put_u8(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"': pgw_buf_put(b, "\\\"", 2); break;
		case '\\': pgw_buf_put(b, "\\\\", 2); break;
		case '\n': pgw_buf_put(b, "\\n", 2); break;
		case '\r': pgw_buf_put(b, "\\r", 2); break;
		case '\t': pgw_buf_put(b, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				pgw_buf_put(b, esc, 6);
			} else
				pgw_buf_put_u8(b, *p);
		}
	}
	pgw_buf_put_u8(b, '"');
}

static void key(struct audit_record *r, const char *k)
{
	pgw_buf_put_u8(&r->b, ',');
	put_json_string(&r->b, k);
	pgw_buf_put_u8(&r->b, ':');
}

struct audit_record *audit_begin(const char *event)
{
	if (!A.path)
		return NULL;
	struct audit_record *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	struct timeval tv;
	struct tm tm;
	char ts[64];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	char full[80];
	snprintf(full, sizeof(full), "%s.%03dZ", ts, (int)(tv.tv_usec / 1000));
	pgw_buf_put(&r->b, "{\"ts\":", 6);
	put_json_string(&r->b, full);
	key(r, "event");
	put_json_string(&r->b, event);
	return r;
}

void audit_str(struct audit_record *r, const char *k, const char *v)
{
	if (!r)
		return;
	key(r, k);
	if (v)
		put_json_string(&r->b, v);
	else
		pgw_buf_put(&r->b, "null", 4);
}

void audit_int(struct audit_record *r, const char *k, long long v)
{
	if (!r)
		return;
	char n[32];
	key(r, k);
	pgw_buf_put(&r->b, n, (size_t)snprintf(n, sizeof(n), "%lld", v));
}

void audit_num(struct audit_record *r, const char *k, double v)
{
	if (!r)
		return;
	char n[48];
	key(r, k);
	pgw_buf_put(&r->b, n, (size_t)snprintf(n, sizeof(n), "%.3f", v));
}

void audit_bool(struct audit_record *r, const char *k, bool v)
{
	if (!r)
		return;
	key(r, k);
	pgw_buf_put(&r->b, v ? "true" : "false", v ? 4 : 5);
}

bool audit_write(struct audit_record *r)
{
	if (!r)
		return audit_ok();
	audit_int(r, "seq", (long long)A.seq + 1);
	audit_str(r, "prev_hash", audit_head());
	/* The hash covers the line up to here, closed with "}". */
	pgw_buf_put(&r->b, ",\"hash\":\"", 9);
	size_t body = r->b.len - 9;
	unsigned char md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		  EVP_DigestUpdate(ctx, r->b.data, body) == 1 && EVP_DigestUpdate(ctx, "}", 1) == 1 &&
		  EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	char h[65];
	hex(md, sizeof(md), h);
	pgw_buf_put(&r->b, h, 64);
	pgw_buf_put(&r->b, "\"}\n", 3);
	ok = ok && A.fp && fwrite(r->b.data, 1, r->b.len, A.fp) == r->b.len && fflush(A.fp) == 0;
	if (ok) {
		A.seq++;
		snprintf(A.head, sizeof(A.head), "%s", h);
	} else if (A.ok) {
		log_error("cannot write the audit log %s: %s", A.path, strerror(errno));
	}
	A.ok = ok;
	pgw_buf_free(&r->b);
	free(r);
	return ok;
}

int audit_verify_main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "verify")) {
		fprintf(stderr, "usage: ddlguard audit verify FILE\n");
		return 2;
	}
	FILE *fp = fopen(argv[2], "r");
	if (!fp) {
		fprintf(stderr, "ddlguard audit verify: cannot open %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long long n = 0, expect_seq = 0;
	char prev[80] = "";
	int status = 0;
	while ((len = getline(&line, &cap, fp)) > 0) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len)
			continue;
		n++;
		char seq[32], ph[80], h[80], computed[65];
		size_t body;
		const char *why = NULL;
		if (!field(line, "seq", seq, sizeof(seq)) || !field(line, "prev_hash", ph, sizeof(ph)) ||
		    !field(line, "hash", h, sizeof(h)))
			why = "not an audit record (seq, prev_hash or hash missing)";
		else if (!line_hash(line, (size_t)len, computed, &body) || strcmp(computed, h))
			why = "its hash does not match its contents (the record was edited)";
		else if (n > 1 && strcmp(ph, prev))
			why = "its prev_hash is not the previous record's hash (a record was removed, inserted or moved)";
		else if (n > 1 && strtoull(seq, NULL, 10) != expect_seq)
			why = "its seq does not follow the previous record's (a record was removed or moved)";
		if (why) {
			printf("BROKEN at record %llu (line %llu, seq %s): %s\n", n, n, field(line, "seq", seq, sizeof(seq)) ? seq : "?", why);
			status = 1;
			break;
		}
		if (n == 1 && strcmp(ph, ZERO_HASH))
			printf("note: the first record continues a chain from an earlier file (prev_hash %s)\n", ph);
		expect_seq = strtoull(seq, NULL, 10) + 1;
		snprintf(prev, sizeof(prev), "%s", h);
	}
	free(line);
	fclose(fp);
	if (!status)
		printf("OK: %llu records, chain head seq %llu hash %s\n", n, expect_seq ? expect_seq - 1 : 0,
		       prev[0] ? prev : ZERO_HASH);
	return status;
}
