/*
 * fuzz_pgw_sasl — AuthenticationSASL from the server, rewritten without
 * SCRAM-SHA-256-PLUS (pgw_sasl_strip_plus) before the client sees it.
 *
 * Input: the body of an 'R' message (the bytes after the length word, from the Int32 code).
 * It is stripped into an empty buffer and into one already holding other bytes (the
 * builder appends at an offset). On success the output must be one whole 'R' message with
 * code 10, the input's mechanisms in order minus every SCRAM-SHA-256-PLUS, the empty name
 * that ends the list, and flags that say what the input offered.
 */
#include <string.h>

#include "protocol/pgw.h"
#include "tests/fuzz/fuzz.h"

static void check_output(const uint8_t *body, size_t len, const struct pgw_buf *out, size_t start,
			 bool had_plus, bool had_scram)
{
	const uint8_t *m = out->data + start;
	size_t mlen = out->len - start;
	FUZZ_CHECK(mlen >= 10 && m[0] == 'R', "not an 'R' message");
	FUZZ_CHECK(pgw_get_u32(m + 1) == mlen - 1, "length %u for %zu bytes", pgw_get_u32(m + 1), mlen);
	FUZZ_CHECK(pgw_get_u32(m + 5) == PGW_AUTH_SASL, "code");
	FUZZ_CHECK(m[mlen - 1] == 0, "list not ended by an empty name");

	/* Walk the input's names and the output's in step. */
	const char *in = (const char *)body + 4, *in_end = (const char *)body + len;
	const char *o = (const char *)m + 9, *o_end = (const char *)m + mlen;
	bool plus = false, scram = false;
	while (in < in_end && *in) {
		size_t n = strlen(in);
		if (!strcmp(in, "SCRAM-SHA-256-PLUS"))
			plus = true;
		else {
			scram |= !strcmp(in, "SCRAM-SHA-256");
			FUZZ_CHECK(o < o_end && !strcmp(o, in), "mechanism \"%s\" lost or reordered", in);
			o += strlen(o) + 1;
		}
		in += n + 1;
	}
	FUZZ_CHECK(o == o_end - 1 && *o == 0, "extra bytes after the mechanisms");
	FUZZ_CHECK(plus == had_plus && scram == had_scram, "flags plus=%d scram=%d, want %d %d",
		   had_plus, had_scram, plus, scram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgw_buf a = { 0 }, b = { 0 };
	bool plus = true, scram = true;
	enum pgw_status st = pgw_sasl_strip_plus(data, size, &a, &plus, &scram);
	FUZZ_CHECK(st == PGW_OK || st == PGW_MALFORMED, "status %s", pgw_status_str(st));
	if (st == PGW_OK)
		check_output(data, size, &a, 0, plus, scram);

	pgw_buf_put(&b, "prefix", 6);
	bool plus2, scram2;
	enum pgw_status st2 = pgw_sasl_strip_plus(data, size, &b, &plus2, &scram2);
	FUZZ_CHECK(st2 == st, "result depends on the output buffer");
	if (st2 == PGW_OK) {
		check_output(data, size, &b, 6, plus2, scram2);
		FUZZ_CHECK(!memcmp(b.data, "prefix", 6), "bytes before the message changed");
		FUZZ_CHECK(b.len - 6 == a.len && !memcmp(b.data + 6, a.data, a.len), "output depends on the offset");
	}
	pgw_buf_free(&a);
	pgw_buf_free(&b);
	return 0;
}
