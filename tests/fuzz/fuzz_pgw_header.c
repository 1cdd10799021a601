/*
 * fuzz_pgw_header — the framing checks of regular messages (pgw_check_fe_header,
 * pgw_check_be_header) and the builders whose output the relay frames.
 *
 * Input: byte 0 chooses the cap on large client messages (max_packet_size); the rest is
 * read as a stream of messages, type byte and Int32 length, as the relay reads it. Each
 * header goes through both checks, whose answers are compared with the rules written out
 * below (PostgreSQL's SocketBackend() for the client side). The walk then skips the body
 * the length announces. Finally the input's bytes become the strings of the messages
 * ddlguard builds itself, and the built messages must frame exactly.
 */
#include <string.h>

#include "protocol/pgw.h"
#include "tests/fuzz/fuzz.h"

static const uint32_t caps[] = { 0, 4, 5, PGW_SMALL_MAX, 1u << 20, PGW_LARGE_MAX, 0xffffffffu };

/* The client-side rule for one header, written independently of pgw.c. */
static enum pgw_status fe_model(uint8_t type, uint32_t len, uint32_t large_max)
{
	const char *large = "QPBFd", *small = "CDEHSXcf", *empty = "HSXc";
	uint32_t max;
	if (type && strchr(large, type))
		max = large_max;
	else if (type && strchr(small, type))
		max = PGW_SMALL_MAX;
	else
		return PGW_BAD_TYPE;
	if (len < 4 || (strchr(empty, type) && len != 4))
		return PGW_BAD_LENGTH;
	return len > max ? PGW_TOO_BIG : PGW_OK;
}

static void check_header(uint8_t type, uint32_t len, uint32_t large_max)
{
	enum pgw_status fe = pgw_check_fe_header(type, len, large_max);
	enum pgw_status want = fe_model(type, len, large_max);
	FUZZ_CHECK(fe == want, "fe header '%c' (%u) len %u cap %u: got %s, want %s", type, type, len,
		   large_max, pgw_status_str(fe), pgw_status_str(want));

	enum pgw_status be = pgw_check_be_header(type, len);
	FUZZ_CHECK(be == PGW_OK || be == PGW_BAD_LENGTH || be == PGW_TOO_BIG, "be status %d", be);
	if (be == PGW_OK) {
		FUZZ_CHECK(len >= 4 && len <= 0x7fffffffu, "be header accepted length %u", len);
		FUZZ_CHECK(type != PGW_BE_READY || len == 5, "ReadyForQuery of length %u accepted", len);
	} else
		FUZZ_CHECK(len < 4 || len > 0x7fffffffu || (type == PGW_BE_READY && len != 5),
			   "be header '%c' len %u refused", type, len);
	FUZZ_CHECK(strcmp(pgw_status_str(fe), "unknown") && strcmp(pgw_status_str(be), "unknown"),
		   "status without a name");
}

/* Walk built messages: each header passes the check and the lengths add up exactly. */
static void check_framing(const struct pgw_buf *b, size_t start, bool frontend)
{
	size_t off = start;
	while (off < b->len) {
		FUZZ_CHECK(b->len - off >= PGW_HDR_LEN, "truncated header at %zu of %zu", off, b->len);
		uint8_t type = b->data[off];
		uint32_t len = pgw_get_u32(b->data + off + 1);
		/* 'p' (password and SASL responses) is valid only during login, where session.c
		 * caps it at PGW_AUTH_MAX instead. */
		enum pgw_status st = !frontend ? pgw_check_be_header(type, len) :
				     type != PGW_FE_PASSWORD ? pgw_check_fe_header(type, len, PGW_LARGE_MAX) :
				     len >= 4 && len <= PGW_AUTH_MAX ? PGW_OK : PGW_BAD_LENGTH;
		FUZZ_CHECK(st == PGW_OK, "built '%c' message of length %u fails its check: %s", type, len,
			   pgw_status_str(st));
		FUZZ_CHECK((size_t)len + 1 <= b->len - off, "length %u runs past the buffer", len);
		off += (size_t)len + 1;
	}
}

/* Build the messages ddlguard writes itself from NUL-free pieces of the input. */
static void check_builders(const uint8_t *data, size_t size)
{
	char s[4][256];
	size_t at = 0;
	for (int i = 0; i < 4; i++) {
		size_t n = 0;
		while (at < size && n < sizeof(s[i]) - 1 && data[at] != 0)
			s[i][n++] = (char)data[at++];
		s[i][n] = 0;
		if (at < size)
			at++;
	}
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'E', "ERROR", s[0], s[1], size & 1 ? s[2] : NULL, size & 2 ? s[3] : NULL);
	pgw_build_error(&b, 'N', "WARNING", "01000", s[3], NULL, NULL);
	pgw_build_auth(&b, (uint32_t)size);
	pgw_build_backend_key(&b, (uint32_t)size, data, size < 256 ? size : 256);
	check_framing(&b, 0, false);
	size_t fe = b.len;
	pgw_build_query(&b, s[0]);
	pgw_build_sasl_initial(&b, s[1], (const char *)data, size);
	pgw_build_sasl_response(&b, (const char *)data, size);
	check_framing(&b, fe, true);
	pgw_buf_reset(&b);
	FUZZ_CHECK(b.len == 0, "reset");
	pgw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t large_max = caps[data[0] % (sizeof(caps) / sizeof(caps[0]))];
	size_t off = 1;
	while (size - off >= PGW_HDR_LEN) {
		uint8_t type = data[off];
		uint32_t len = pgw_get_u32(data + off + 1);
		check_header(type, len, large_max);
		/* Skip the announced body; a bad length resynchronises at the next byte. */
		if (len >= 4 && (size_t)len + 1 <= size - off)
			off += (size_t)len + 1;
		else
			off++;
	}
	check_builders(data + 1, size - 1);
	return 0;
}
