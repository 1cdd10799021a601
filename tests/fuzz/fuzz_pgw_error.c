/*
 * fuzz_pgw_error — the fields of an ErrorResponse or NoticeResponse (pgw_parse_error),
 * which the relay reads from the server to rewrite denials, decide retries and log
 * SQLSTATEs.
 *
 * Input: a message body (the bytes after the length word). What must hold:
 *   - every field pointer lies inside the body with its NUL inside too;
 *   - severity is V when present, else S;
 *   - a parsed error rebuilt with pgw_build_error parses to the same fields.
 */
#include <string.h>

#include "protocol/pgw.h"
#include "tests/fuzz/fuzz.h"

static void check_inside(const uint8_t *body, size_t len, const char *p, const char *what)
{
	if (!p)
		return;
	const char *lo = (const char *)body, *hi = (const char *)body + len;
	FUZZ_CHECK(p >= lo && p < hi, "%s points outside the body", what);
	FUZZ_CHECK(memchr(p, 0, (size_t)(hi - p)) != NULL, "%s is not terminated inside the body", what);
	FUZZ_CHECK(p > lo, "%s has no field code before it", what);
}

/* The last value of field `code`, found by a walk of our own. */
static const char *field(const uint8_t *body, size_t len, char code)
{
	const char *p = (const char *)body, *end = p + len, *found = NULL;
	while (p < end && *p) {
		char c = *p++;
		const char *e = memchr(p, 0, (size_t)(end - p));
		if (!e)
			return NULL;
		if (c == code)
			found = p;
		p = e + 1;
	}
	return found;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgw_error_fields f;
	if (pgw_parse_error(data, size, &f) != PGW_OK)
		return 0;
	check_inside(data, size, f.severity, "severity");
	check_inside(data, size, f.sqlstate, "sqlstate");
	check_inside(data, size, f.message, "message");
	check_inside(data, size, f.detail, "detail");
	check_inside(data, size, f.hint, "hint");
	const char *v = field(data, size, 'V'), *s = field(data, size, 'S');
	FUZZ_CHECK(f.severity == (v ? v : s), "severity is not V, else S");
	FUZZ_CHECK(f.sqlstate == field(data, size, 'C'), "sqlstate is not the last C");
	FUZZ_CHECK(f.message == field(data, size, 'M'), "message is not the last M");

	if (!f.severity || !f.sqlstate || !f.message)
		return 0;
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'E', f.severity, f.sqlstate, f.message, f.detail, f.hint);
	FUZZ_CHECK(b.len >= PGW_HDR_LEN && pgw_get_u32(b.data + 1) == b.len - 1, "built length");
	struct pgw_error_fields g;
	FUZZ_CHECK(pgw_parse_error(b.data + PGW_HDR_LEN, b.len - PGW_HDR_LEN, &g) == PGW_OK,
		   "a built error does not parse");
	FUZZ_CHECK(same(f.severity, g.severity) && same(f.sqlstate, g.sqlstate) &&
		   same(f.message, g.message) && same(f.detail, g.detail) && same(f.hint, g.hint),
		   "fields changed in a rebuild");
	pgw_buf_free(&b);
	return 0;
}
