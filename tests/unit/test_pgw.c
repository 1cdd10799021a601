/*
 * Unit tests for protocol/pgw: frontend header checks, StartupMessage and CancelRequest
 * parsing, the ErrorResponse builder and parser, and the AuthenticationSASL rewrite that
 * removes SCRAM-SHA-256-PLUS.
 *
 * Every packet is written out byte by byte here (not with the builders under test, except
 * in the round-trip tests), so a builder and its parser cannot agree on the same mistake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/pgw.h"

/* ------------------------------------------------------------------ helpers */

/* Append a big-endian Int32 / Int16 to a raw byte array. */
static size_t put32(uint8_t *p, size_t at, uint32_t v)
{
	p[at] = v >> 24;
	p[at + 1] = v >> 16;
	p[at + 2] = v >> 8;
	p[at + 3] = v;
	return at + 4;
}

static size_t putstr(uint8_t *p, size_t at, const char *s)
{
	size_t n = strlen(s) + 1;
	memcpy(p + at, s, n);
	return at + n;
}

/*
 * Build a StartupMessage from NULL-terminated key/value pairs into pkt (caller-sized).
 * Returns its length; the length word is filled in.
 */
static size_t startup_packet(uint8_t *pkt, uint32_t version, const char *const *kv)
{
	size_t at = put32(pkt, 0, 0);
	at = put32(pkt, at, version);
	for (int i = 0; kv[i]; i += 2) {
		at = putstr(pkt, at, kv[i]);
		at = putstr(pkt, at, kv[i + 1]);
	}
	pkt[at++] = 0;
	put32(pkt, 0, (uint32_t)at);
	return at;
}

/* Walk the fields of an ErrorResponse body; writes the field codes in order into codes. */
static void field_codes(const uint8_t *body, size_t len, char *codes, size_t n)
{
	size_t i = 0, k = 0;
	while (i < len && body[i] && k + 1 < n) {
		codes[k++] = (char)body[i];
		i++;
		while (i < len && body[i])
			i++;
		i++; /* the value's NUL */
	}
	codes[k] = 0;
}

/* ------------------------------------------------------------- header checks */

static void test_fe_header_large_types(void **state)
{
	(void)state;
	const uint8_t large[] = { 'Q', 'P', 'B', 'F', 'd' };
	for (size_t i = 0; i < sizeof(large); i++) {
		uint8_t t = large[i];
		assert_int_equal(pgw_check_fe_header(t, 4, 1000000), PGW_OK);
		/* Above the small cap but within large_max: allowed for the large kinds. */
		assert_int_equal(pgw_check_fe_header(t, PGW_SMALL_MAX + 1, 1000000), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, 1000000, 1000000), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, 1000001, 1000000), PGW_TOO_BIG);
		assert_int_equal(pgw_check_fe_header(t, PGW_LARGE_MAX, PGW_LARGE_MAX), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, PGW_LARGE_MAX + 1, PGW_LARGE_MAX), PGW_TOO_BIG);
		assert_int_equal(pgw_check_fe_header(t, 0xffffffffu, PGW_LARGE_MAX), PGW_TOO_BIG);
		assert_int_equal(pgw_check_fe_header(t, 3, 1000000), PGW_BAD_LENGTH);
		assert_int_equal(pgw_check_fe_header(t, 0, 1000000), PGW_BAD_LENGTH);
	}
}

static void test_fe_header_small_types(void **state)
{
	(void)state;
	/* Close, Describe, Execute, CopyFail: capped at 10000 whatever large_max says. */
	const uint8_t small[] = { 'C', 'D', 'E', 'f' };
	for (size_t i = 0; i < sizeof(small); i++) {
		uint8_t t = small[i];
		assert_int_equal(pgw_check_fe_header(t, 4, PGW_LARGE_MAX), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, 100, PGW_LARGE_MAX), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, PGW_SMALL_MAX, PGW_LARGE_MAX), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, PGW_SMALL_MAX + 1, PGW_LARGE_MAX), PGW_TOO_BIG);
		assert_int_equal(pgw_check_fe_header(t, 1000000, PGW_LARGE_MAX), PGW_TOO_BIG);
		assert_int_equal(pgw_check_fe_header(t, 3, PGW_LARGE_MAX), PGW_BAD_LENGTH);
		assert_int_equal(pgw_check_fe_header(t, 0, PGW_LARGE_MAX), PGW_BAD_LENGTH);
	}
}

static void test_fe_header_bodyless_types(void **state)
{
	(void)state;
	/* Sync, Flush, Terminate, CopyDone have no body: the length must be exactly 4. */
	const uint8_t bodyless[] = { 'S', 'H', 'X', 'c' };
	for (size_t i = 0; i < sizeof(bodyless); i++) {
		uint8_t t = bodyless[i];
		assert_int_equal(pgw_check_fe_header(t, 4, PGW_LARGE_MAX), PGW_OK);
		assert_int_equal(pgw_check_fe_header(t, 5, PGW_LARGE_MAX), PGW_BAD_LENGTH);
		assert_int_equal(pgw_check_fe_header(t, 8, PGW_LARGE_MAX), PGW_BAD_LENGTH);
		assert_int_equal(pgw_check_fe_header(t, 3, PGW_LARGE_MAX), PGW_BAD_LENGTH);
		assert_int_equal(pgw_check_fe_header(t, 0, PGW_LARGE_MAX), PGW_BAD_LENGTH);
		assert_int_not_equal(pgw_check_fe_header(t, PGW_SMALL_MAX + 1, PGW_LARGE_MAX), PGW_OK);
	}
}

static void test_fe_header_every_type_byte(void **state)
{
	(void)state;
	/* Exactly the frontend types PostgreSQL's SocketBackend() accepts after login. */
	const char *valid = "QPBFdCDEfSHXc";
	int accepted = 0;
	for (int t = 0; t < 256; t++) {
		enum pgw_status st = pgw_check_fe_header((uint8_t)t, 4, PGW_LARGE_MAX);
		bool expect_valid = t != 0 && strchr(valid, t) != NULL;
		if (expect_valid) {
			assert_int_equal(st, PGW_OK);
			accepted++;
		} else {
			if (st != PGW_BAD_TYPE)
				fail_msg("type byte %d: expected PGW_BAD_TYPE, got %s", t, pgw_status_str(st));
			/* The type is judged before the length. */
			assert_int_equal(pgw_check_fe_header((uint8_t)t, 0, PGW_LARGE_MAX), PGW_BAD_TYPE);
		}
	}
	assert_int_equal(accepted, 13);
	/* The ones named in the brief, spelled out. */
	assert_int_equal(pgw_check_fe_header('Z', 5, PGW_LARGE_MAX), PGW_BAD_TYPE);
	assert_int_equal(pgw_check_fe_header(0, 4, PGW_LARGE_MAX), PGW_BAD_TYPE);
	assert_int_equal(pgw_check_fe_header(0xff, 4, PGW_LARGE_MAX), PGW_BAD_TYPE);
	/* PasswordMessage is a login-phase message only. */
	assert_int_equal(pgw_check_fe_header('p', 10, PGW_LARGE_MAX), PGW_BAD_TYPE);
}

static void test_be_header(void **state)
{
	(void)state;
	assert_int_equal(pgw_check_be_header('T', 4), PGW_OK);
	assert_int_equal(pgw_check_be_header('D', 1000000), PGW_OK);
	assert_int_equal(pgw_check_be_header('D', 3), PGW_BAD_LENGTH);
	assert_int_equal(pgw_check_be_header('Z', 5), PGW_OK);
	assert_int_equal(pgw_check_be_header('Z', 4), PGW_BAD_LENGTH);
	assert_int_equal(pgw_check_be_header('Z', 6), PGW_BAD_LENGTH);
	assert_int_not_equal(pgw_check_be_header('D', 0x80000000u), PGW_OK);
}

/* ------------------------------------------------------------------ startup */

static void test_startup_basic(void **state)
{
	(void)state;
	uint8_t pkt[512];
	const char *kv[] = { "user", "alice", "database", "appdb", "application_name", "psql",
			     "client_encoding", "UTF8", NULL };
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
	struct pgw_startup st;
	char err[128] = "";
	assert_int_equal(pgw_parse_startup(pkt, n, &st, err, sizeof(err)), PGW_OK);
	assert_int_equal(st.version, 196608);
	assert_int_equal(st.nparams, 4);
	assert_string_equal(st.user, "alice");
	assert_string_equal(st.database, "appdb");
	assert_string_equal(st.application_name, "psql");
	assert_false(st.replication);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(st.keys[i], kv[2 * i]);
		assert_string_equal(st.values[i], kv[2 * i + 1]);
	}
	/* The pointers are views into the caller's packet. */
	assert_true((const uint8_t *)st.user > pkt && (const uint8_t *)st.user < pkt + n);
}

static void test_startup_protocol_32(void **state)
{
	(void)state;
	uint8_t pkt[128];
	const char *kv[] = { "user", "bob", NULL };
	size_t n = startup_packet(pkt, 0x00030002u, kv);
	struct pgw_startup st;
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);
	assert_int_equal(st.version, 0x00030002u);
	assert_int_equal(PGW_PROTO_MAJOR(st.version), 3);
}

static void test_startup_database_defaults_to_user(void **state)
{
	(void)state;
	uint8_t pkt[128];
	struct pgw_startup st;
	const char *kv[] = { "user", "carol", NULL };
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);
	assert_string_equal(st.database, "carol");
	assert_null(st.application_name);
	assert_int_equal(st.nparams, 1);

	/* An empty database name also means "same as the user", as the server does. */
	const char *kv2[] = { "database", "", "user", "dave", NULL };
	n = startup_packet(pkt, PGW_PROTO_30, kv2);
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);
	assert_string_equal(st.database, "dave");
}

static void test_startup_options_with_spaces(void **state)
{
	(void)state;
	uint8_t pkt[512];
	const char *opts = "-c search_path=app,public -c statement_timeout=5s  -c x=a\\ b";
	const char *kv[] = { "user", "u", "options", opts, NULL };
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
	struct pgw_startup st;
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);
	assert_int_equal(st.nparams, 2);
	assert_string_equal(st.keys[1], "options");
	assert_string_equal(st.values[1], opts);
}

static void test_startup_replication(void **state)
{
	(void)state;
	uint8_t pkt[128];
	struct pgw_startup st;
	const struct { const char *v; bool repl; } cases[] = {
		{ "database", true }, { "true", true }, { "on", true }, { "yes", true }, { "1", true },
		{ "false", false }, { "off", false }, { "no", false }, { "0", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *kv[] = { "user", "rep", "replication", cases[i].v, NULL };
		size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
		assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);
		if (st.replication != cases[i].repl)
			fail_msg("replication=%s: expected %d", cases[i].v, cases[i].repl);
	}
}

static void test_startup_many_params(void **state)
{
	(void)state;
	/* 128 parameters (the cap) parse; 129 do not. */
	static uint8_t pkt[8192];
	static char names[PGW_STARTUP_MAXPARAMS + 1][16];
	const char *kv[2 * (PGW_STARTUP_MAXPARAMS + 1) + 1];
	int k = 0;
	kv[k++] = "user";
	kv[k++] = "many";
	for (int i = 1; i < PGW_STARTUP_MAXPARAMS; i++) {
		snprintf(names[i], sizeof(names[i]), "guc_%d", i);
		kv[k++] = names[i];
		kv[k++] = "v";
	}
	kv[k] = NULL;
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
	struct pgw_startup st;
	char err[128] = "";
	assert_int_equal(pgw_parse_startup(pkt, n, &st, err, sizeof(err)), PGW_OK);
	assert_int_equal(st.nparams, PGW_STARTUP_MAXPARAMS);
	assert_string_equal(st.keys[PGW_STARTUP_MAXPARAMS - 1], "guc_127");
	assert_string_equal(st.user, "many");
	assert_string_equal(st.database, "many");

	snprintf(names[PGW_STARTUP_MAXPARAMS], sizeof(names[0]), "guc_%d", PGW_STARTUP_MAXPARAMS);
	kv[k++] = names[PGW_STARTUP_MAXPARAMS];
	kv[k++] = "v";
	kv[k] = NULL;
	n = startup_packet(pkt, PGW_PROTO_30, kv);
	assert_int_equal(pgw_parse_startup(pkt, n, &st, err, sizeof(err)), PGW_MALFORMED);
	assert_true(strlen(err) > 0);
}

/* Expect PGW_MALFORMED and a non-empty reason. */
static void expect_bad_startup(const uint8_t *pkt, size_t n, const char *what)
{
	struct pgw_startup st;
	char err[128] = "";
	enum pgw_status s = pgw_parse_startup(pkt, n, &st, err, sizeof(err));
	if (s != PGW_MALFORMED)
		fail_msg("%s: expected PGW_MALFORMED, got %s", what, pgw_status_str(s));
	if (!err[0])
		fail_msg("%s: no reason given", what);
}

static void test_startup_malformed(void **state)
{
	(void)state;
	uint8_t pkt[256];
	const char *kv[] = { "user", "alice", "database", "db", NULL };
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);

	/* Length word disagrees with the bytes given, both ways. */
	expect_bad_startup(pkt, n - 1, "length word larger than the packet");
	pkt[n] = 0;
	expect_bad_startup(pkt, n + 1, "length word smaller than the packet");
	/* Shorter than length + code. */
	uint8_t tiny[8];
	put32(tiny, 0, 4);
	expect_bad_startup(tiny, 4, "4-byte packet");
	put32(tiny, 0, 8);
	put32(tiny, 4, PGW_PROTO_30);
	expect_bad_startup(tiny, 8, "no parameters and no terminator");

	/* The last byte is not the list terminator. */
	size_t at = put32(pkt, 0, 0);
	at = put32(pkt, at, PGW_PROTO_30);
	at = putstr(pkt, at, "user");
	memcpy(pkt + at, "alice", 5);
	at += 5;
	put32(pkt, 0, (uint32_t)at);
	expect_bad_startup(pkt, at, "value not terminated");

	at = put32(pkt, 0, 0);
	at = put32(pkt, at, PGW_PROTO_30);
	at = putstr(pkt, at, "user");
	at = putstr(pkt, at, "alice");
	put32(pkt, 0, (uint32_t)at);
	expect_bad_startup(pkt, at, "missing list terminator");

	/* A key whose value is missing: "options\0" is the last thing in the packet. */
	at = put32(pkt, 0, 0);
	at = put32(pkt, at, PGW_PROTO_30);
	at = putstr(pkt, at, "user");
	at = putstr(pkt, at, "alice");
	at = putstr(pkt, at, "options");
	put32(pkt, 0, (uint32_t)at);
	expect_bad_startup(pkt, at, "key without value");

	/* No user at all, and an empty user. */
	const char *nouser[] = { "database", "db", "application_name", "x", NULL };
	n = startup_packet(pkt, PGW_PROTO_30, nouser);
	expect_bad_startup(pkt, n, "missing user");
	struct pgw_startup st;
	char err[128] = "";
	pgw_parse_startup(pkt, n, &st, err, sizeof(err));
	assert_non_null(strstr(err, "user"));
	const char *emptyuser[] = { "user", "", NULL };
	n = startup_packet(pkt, PGW_PROTO_30, emptyuser);
	expect_bad_startup(pkt, n, "empty user");

	/* Bytes after the terminator. */
	at = put32(pkt, 0, 0);
	at = put32(pkt, at, PGW_PROTO_30);
	at = putstr(pkt, at, "user");
	at = putstr(pkt, at, "alice");
	pkt[at++] = 0;
	at = putstr(pkt, at, "database");
	at = putstr(pkt, at, "x");
	pkt[at++] = 0;
	put32(pkt, 0, (uint32_t)at);
	expect_bad_startup(pkt, at, "data after the terminator");

	/* A NULL error buffer is allowed. */
	assert_int_equal(pgw_parse_startup(pkt, at, &st, NULL, 0), PGW_MALFORMED);
}

static void test_startup_build_round_trip(void **state)
{
	(void)state;
	uint8_t pkt[512];
	const char *kv[] = { "user", "alice", "database", "appdb", "options", "-c a=b  -c c=d",
			     "application_name", "migrate", "replication", "database", NULL };
	size_t n = startup_packet(pkt, PGW_PROTO_30, kv);
	struct pgw_startup st;
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);

	/* Without a replacement the packet comes back byte for byte. */
	struct pgw_buf b = { 0 };
	pgw_build_startup(&b, &st, NULL);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, pkt, n);

	/* With one, only the database value changes, in place. */
	pgw_buf_reset(&b);
	pgw_build_startup(&b, &st, "upstream_db");
	assert_int_equal(pgw_get_u32(b.data), b.len);
	assert_int_equal(b.len, n + strlen("upstream_db") - strlen("appdb"));
	struct pgw_startup st2;
	assert_int_equal(pgw_parse_startup(b.data, b.len, &st2, NULL, 0), PGW_OK);
	assert_int_equal(st2.version, PGW_PROTO_30);
	assert_int_equal(st2.nparams, st.nparams);
	assert_string_equal(st2.user, "alice");
	assert_string_equal(st2.database, "upstream_db");
	assert_string_equal(st2.keys[1], "database");
	assert_string_equal(st2.values[2], "-c a=b  -c c=d");
	assert_string_equal(st2.application_name, "migrate");
	assert_true(st2.replication);
	pgw_buf_free(&b);
}

static void test_startup_build_adds_database(void **state)
{
	(void)state;
	uint8_t pkt[256];
	const char *kv[] = { "user", "alice", "application_name", "x", NULL };
	size_t n = startup_packet(pkt, 0x00030002u, kv);
	struct pgw_startup st;
	assert_int_equal(pgw_parse_startup(pkt, n, &st, NULL, 0), PGW_OK);

	/* Appended after a prefix, to check the length word is written at the right place. */
	struct pgw_buf b = { 0 };
	pgw_buf_put(&b, "xyz", 3);
	pgw_build_startup(&b, &st, "real_db");
	assert_memory_equal(b.data, "xyz", 3);
	const uint8_t *p = b.data + 3;
	size_t len = b.len - 3;
	assert_int_equal(pgw_get_u32(p), len);
	assert_int_equal(len, n + sizeof("database") + sizeof("real_db"));
	struct pgw_startup st2;
	assert_int_equal(pgw_parse_startup(p, len, &st2, NULL, 0), PGW_OK);
	assert_int_equal(st2.version, 0x00030002u);
	assert_int_equal(st2.nparams, 3);
	assert_string_equal(st2.database, "real_db");
	assert_string_equal(st2.keys[2], "database");
	assert_string_equal(st2.user, "alice");
	pgw_buf_free(&b);
}

/* ------------------------------------------------------------------- cancel */

static void test_cancel_30(void **state)
{
	(void)state;
	uint8_t pkt[16];
	put32(pkt, 0, 16);
	put32(pkt, 4, PGW_CODE_CANCEL);
	put32(pkt, 8, 0x01020304);
	memcpy(pkt + 12, "\xde\xad\xbe\xef", 4);
	struct pgw_cancel c;
	assert_int_equal(pgw_parse_cancel(pkt, 16, &c), PGW_OK);
	assert_int_equal(c.pid, 0x01020304);
	assert_int_equal(c.secret_len, 4);
	assert_memory_equal(c.secret, "\xde\xad\xbe\xef", 4);

	/* The builder writes the same packet. */
	struct pgw_buf b = { 0 };
	pgw_build_cancel(&b, 0x01020304, (const uint8_t *)"\xde\xad\xbe\xef", 4);
	assert_int_equal(b.len, 16);
	assert_memory_equal(b.data, pkt, 16);
	pgw_buf_free(&b);
}

static void test_cancel_32_long_secret(void **state)
{
	(void)state;
	uint8_t pkt[12 + 257];
	struct pgw_cancel c;
	for (size_t keylen = 4; keylen <= 257; keylen++) {
		put32(pkt, 0, (uint32_t)(12 + keylen));
		put32(pkt, 4, PGW_CODE_CANCEL);
		put32(pkt, 8, 4242);
		for (size_t i = 0; i < keylen; i++)
			pkt[12 + i] = (uint8_t)(i * 7 + 1);
		enum pgw_status s = pgw_parse_cancel(pkt, 12 + keylen, &c);
		if (keylen <= 256) {
			assert_int_equal(s, PGW_OK);
			assert_int_equal(c.pid, 4242);
			assert_int_equal(c.secret_len, keylen);
			assert_memory_equal(c.secret, pkt + 12, keylen);
		} else {
			assert_int_equal(s, PGW_MALFORMED);
		}
	}
	/* The 32-byte key PostgreSQL 18 sends round-trips through the builder. */
	struct pgw_buf b = { 0 };
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(255 - i);
	pgw_build_cancel(&b, 99, key, 32);
	assert_int_equal(b.len, 44);
	assert_int_equal(pgw_parse_cancel(b.data, b.len, &c), PGW_OK);
	assert_int_equal(c.pid, 99);
	assert_int_equal(c.secret_len, 32);
	assert_memory_equal(c.secret, key, 32);
	pgw_buf_free(&b);
}

static void test_cancel_malformed(void **state)
{
	(void)state;
	uint8_t pkt[32] = { 0 };
	struct pgw_cancel c;
	/* Secrets shorter than 4 bytes (len 12 to 15). */
	for (uint32_t len = 8; len < 16; len++) {
		put32(pkt, 0, len);
		put32(pkt, 4, PGW_CODE_CANCEL);
		assert_int_equal(pgw_parse_cancel(pkt, len, &c), PGW_MALFORMED);
	}
	/* The length word disagrees with the packet size. */
	put32(pkt, 0, 16);
	put32(pkt, 4, PGW_CODE_CANCEL);
	assert_int_equal(pgw_parse_cancel(pkt, 20, &c), PGW_MALFORMED);
	put32(pkt, 0, 20);
	assert_int_equal(pgw_parse_cancel(pkt, 16, &c), PGW_MALFORMED);
	/* Right shape, wrong request code. */
	put32(pkt, 0, 16);
	put32(pkt, 4, PGW_CODE_SSL);
	assert_int_equal(pgw_parse_cancel(pkt, 16, &c), PGW_MALFORMED);
	put32(pkt, 4, PGW_PROTO_30);
	assert_int_equal(pgw_parse_cancel(pkt, 16, &c), PGW_MALFORMED);
}

/* ----------------------------------------------------------- ErrorResponse */

static void test_error_round_trip(void **state)
{
	(void)state;
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'E', "ERROR", "42501", "DDL is not allowed", "rule no_drop", "use a migration");
	assert_int_equal(b.data[0], 'E');
	assert_int_equal(pgw_get_u32(b.data + 1), b.len - 1);
	assert_int_equal(b.data[b.len - 1], 0);
	assert_int_equal(b.data[b.len - 2], 0); /* end of the hint value, then the terminator */

	char codes[16];
	field_codes(b.data + 5, b.len - 5, codes, sizeof(codes));
	assert_string_equal(codes, "SVCMDH");

	struct pgw_error_fields f;
	assert_int_equal(pgw_parse_error(b.data + 5, b.len - 5, &f), PGW_OK);
	assert_string_equal(f.severity, "ERROR");
	assert_string_equal(f.sqlstate, "42501");
	assert_string_equal(f.message, "DDL is not allowed");
	assert_string_equal(f.detail, "rule no_drop");
	assert_string_equal(f.hint, "use a migration");

	/* The exact bytes of S and V: both carry the non-localized severity. */
	const uint8_t head[] = "E\0\0\0\0SERROR\0VERROR\0C42501\0";
	assert_memory_equal(b.data + 5, head + 5, sizeof(head) - 1 - 5);
	pgw_buf_free(&b);
}

static void test_error_without_detail_hint(void **state)
{
	(void)state;
	struct pgw_buf b = { 0 };
	pgw_build_error(&b, 'N', "WARNING", "01000", "careful", NULL, NULL);
	assert_int_equal(b.data[0], 'N');
	assert_int_equal(pgw_get_u32(b.data + 1), b.len - 1);
	char codes[16];
	field_codes(b.data + 5, b.len - 5, codes, sizeof(codes));
	assert_string_equal(codes, "SVCM");
	/* Whole message, byte for byte. */
	static const char expect[] = "N\0\0\0\x27SWARNING\0VWARNING\0C01000\0Mcareful\0";
	assert_int_equal(b.len, sizeof(expect)); /* the implicit NUL of the literal is the terminator */
	assert_memory_equal(b.data, expect, sizeof(expect));

	struct pgw_error_fields f;
	assert_int_equal(pgw_parse_error(b.data + 5, b.len - 5, &f), PGW_OK);
	assert_string_equal(f.severity, "WARNING");
	assert_string_equal(f.sqlstate, "01000");
	assert_string_equal(f.message, "careful");
	assert_null(f.detail);
	assert_null(f.hint);
	pgw_buf_free(&b);
}

static void test_error_parse_variants(void **state)
{
	(void)state;
	struct pgw_error_fields f;
	/* No 'C': parses, sqlstate NULL (PgBouncer CVE-2026-6666 was a NULL deref here). */
	static const char noc[] = "SERROR\0Mno code here\0";
	assert_int_equal(pgw_parse_error((const uint8_t *)noc, sizeof(noc), &f), PGW_OK);
	assert_null(f.sqlstate);
	assert_string_equal(f.severity, "ERROR");
	assert_string_equal(f.message, "no code here");

	/* Missing the final terminator. */
	assert_int_equal(pgw_parse_error((const uint8_t *)noc, sizeof(noc) - 1, &f), PGW_MALFORMED);
	/* A value cut short. */
	assert_int_equal(pgw_parse_error((const uint8_t *)noc, 10, &f), PGW_MALFORMED);
	/* A field code with nothing after it. */
	assert_int_equal(pgw_parse_error((const uint8_t *)"S", 1, &f), PGW_MALFORMED);
	/* Empty body: not even the terminator. */
	assert_int_equal(pgw_parse_error((const uint8_t *)"", 0, &f), PGW_MALFORMED);
	/* Only the terminator: valid, no fields. */
	assert_int_equal(pgw_parse_error((const uint8_t *)"", 1, &f), PGW_OK);
	assert_null(f.severity);
	assert_null(f.message);

	/* 'V' wins over a localized 'S'; unknown fields are skipped. */
	static const char pg[] = "SFEHLER\0VFATAL\0C57P01\0Mterminating connection\0Fpostgres.c\0L3300\0"
				 "RProcessInterrupts\0";
	assert_int_equal(pgw_parse_error((const uint8_t *)pg, sizeof(pg), &f), PGW_OK);
	assert_string_equal(f.severity, "FATAL");
	assert_string_equal(f.sqlstate, "57P01");
	assert_string_equal(f.message, "terminating connection");
	assert_null(f.detail);
}

/* --------------------------------------------------------- SASL strip PLUS */

/* An AuthenticationSASL body: Int32 10 then the given raw mechanism bytes. */
static size_t sasl_body(uint8_t *p, uint32_t code, const void *mechs, size_t n)
{
	put32(p, 0, code);
	memcpy(p + 4, mechs, n);
	return 4 + n;
}

static void test_sasl_strip_plus(void **state)
{
	(void)state;
	uint8_t body[128];
	static const char both[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0"; /* + implicit NUL */
	size_t n = sasl_body(body, 10, both, sizeof(both));
	struct pgw_buf out = { 0 };
	bool had_plus = false, had_scram = false;
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_OK);
	assert_true(had_plus);
	assert_true(had_scram);
	static const uint8_t expect[] = { 'R', 0, 0, 0, 23, 0, 0, 0, 10,
		'S', 'C', 'R', 'A', 'M', '-', 'S', 'H', 'A', '-', '2', '5', '6', 0, 0 };
	assert_int_equal(out.len, sizeof(expect));
	assert_memory_equal(out.data, expect, sizeof(expect));

	/* Same result with PLUS listed last. */
	static const char rev[] = "SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0";
	n = sasl_body(body, 10, rev, sizeof(rev));
	pgw_buf_reset(&out);
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_OK);
	assert_true(had_plus);
	assert_true(had_scram);
	assert_int_equal(out.len, sizeof(expect));
	assert_memory_equal(out.data, expect, sizeof(expect));
	pgw_buf_free(&out);
}

static void test_sasl_strip_plus_plain_only(void **state)
{
	(void)state;
	uint8_t body[128];
	static const char plain[] = "SCRAM-SHA-256\0";
	size_t n = sasl_body(body, 10, plain, sizeof(plain));
	struct pgw_buf out = { 0 };
	bool had_plus = true, had_scram = false;
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_OK);
	assert_false(had_plus);
	assert_true(had_scram);
	/* Unchanged: 'R', the recomputed length (4 + body), and the body itself. */
	assert_int_equal(out.len, 5 + n);
	assert_int_equal(out.data[0], 'R');
	assert_int_equal(pgw_get_u32(out.data + 1), 4 + n);
	assert_memory_equal(out.data + 5, body, n);

	/* Only PLUS offered: an empty list, and no plain SCRAM. */
	static const char plus[] = "SCRAM-SHA-256-PLUS\0";
	n = sasl_body(body, 10, plus, sizeof(plus));
	pgw_buf_reset(&out);
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_OK);
	assert_true(had_plus);
	assert_false(had_scram);
	static const uint8_t empty[] = { 'R', 0, 0, 0, 9, 0, 0, 0, 10, 0 };
	assert_int_equal(out.len, sizeof(empty));
	assert_memory_equal(out.data, empty, sizeof(empty));
	pgw_buf_free(&out);
}

static void test_sasl_strip_plus_malformed(void **state)
{
	(void)state;
	uint8_t body[128];
	struct pgw_buf out = { 0 };
	bool had_plus, had_scram;
	static const char plain[] = "SCRAM-SHA-256\0";

	/* Not AuthenticationSASL (11 is SASLContinue). */
	size_t n = sasl_body(body, 11, plain, sizeof(plain));
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_MALFORMED);
	assert_int_equal(out.len, 0);
	/* No NUL at all after the mechanism name. */
	n = sasl_body(body, 10, "SCRAM-SHA-256", 13);
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_MALFORMED);
	assert_int_equal(out.len, 0);
	/* Shorter than the code and a terminator. */
	n = sasl_body(body, 10, "", 0);
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_MALFORMED);
	assert_int_equal(out.len, 0);
	pgw_buf_free(&out);
}

/*
 * BUG: the mechanism list must end with an empty string (a second NUL). A body whose last
 * mechanism is terminated but whose list is not ("SCRAM-SHA-256\0" and nothing more) is not
 * an AuthenticationSASL message, yet pgw_sasl_strip_plus() accepts it and writes a
 * well-formed message to the client, repairing the server's malformed one.
 */
static void test_bug_sasl_strip_plus_accepts_list_without_terminator(void **state)
{
	(void)state;
	uint8_t body[64];
	struct pgw_buf out = { 0 };
	bool had_plus, had_scram;
	size_t n = sasl_body(body, 10, "SCRAM-SHA-256", 14); /* one NUL: the name's, no list end */
	assert_int_equal(pgw_sasl_strip_plus(body, n, &out, &had_plus, &had_scram), PGW_MALFORMED);
	pgw_buf_free(&out);
}

/* ------------------------------------------------------------ small builders */

static void test_small_builders(void **state)
{
	(void)state;
	struct pgw_buf b = { 0 };
	pgw_build_query(&b, "SELECT 1");
	static const char q[] = "Q\0\0\0\x0dSELECT 1";
	assert_int_equal(b.len, sizeof(q));
	assert_memory_equal(b.data, q, sizeof(q));

	pgw_buf_reset(&b);
	pgw_build_auth(&b, PGW_AUTH_OK);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "R\0\0\0\x08\0\0\0\0", 9);

	pgw_buf_reset(&b);
	pgw_build_backend_key(&b, 0x0a0b0c0d, (const uint8_t *)"\x01\x02\x03\x04", 4);
	assert_int_equal(b.len, 13);
	assert_memory_equal(b.data, "K\0\0\0\x0c\x0a\x0b\x0c\x0d\x01\x02\x03\x04", 13);

	pgw_buf_reset(&b);
	pgw_build_sasl_initial(&b, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
	assert_int_equal(b.data[0], 'p');
	assert_int_equal(pgw_get_u32(b.data + 1), b.len - 1);
	assert_string_equal((const char *)b.data + 5, "SCRAM-SHA-256");
	assert_int_equal(pgw_get_u32(b.data + 5 + 14), 11);
	assert_memory_equal(b.data + 5 + 14 + 4, "n,,n=,r=abc", 11);
	assert_int_equal(b.len, 5 + 14 + 4 + 11);

	pgw_buf_reset(&b);
	pgw_build_sasl_response(&b, "c=biws", 6);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "p\0\0\0\x0a" "c=biws", 11);
	pgw_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fe_header_large_types),
		cmocka_unit_test(test_fe_header_small_types),
		cmocka_unit_test(test_fe_header_bodyless_types),
		cmocka_unit_test(test_fe_header_every_type_byte),
		cmocka_unit_test(test_be_header),
		cmocka_unit_test(test_startup_basic),
		cmocka_unit_test(test_startup_protocol_32),
		cmocka_unit_test(test_startup_database_defaults_to_user),
		cmocka_unit_test(test_startup_options_with_spaces),
		cmocka_unit_test(test_startup_replication),
		cmocka_unit_test(test_startup_many_params),
		cmocka_unit_test(test_startup_malformed),
		cmocka_unit_test(test_startup_build_round_trip),
		cmocka_unit_test(test_startup_build_adds_database),
		cmocka_unit_test(test_cancel_30),
		cmocka_unit_test(test_cancel_32_long_secret),
		cmocka_unit_test(test_cancel_malformed),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_error_without_detail_hint),
		cmocka_unit_test(test_error_parse_variants),
		cmocka_unit_test(test_sasl_strip_plus),
		cmocka_unit_test(test_sasl_strip_plus_plain_only),
		cmocka_unit_test(test_sasl_strip_plus_malformed),
		cmocka_unit_test(test_bug_sasl_strip_plus_accepts_list_without_terminator),
		cmocka_unit_test(test_small_builders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
