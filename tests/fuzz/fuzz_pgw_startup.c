/*
 * fuzz_pgw_startup — the initial packets a client sends before any typed message:
 * StartupMessage (pgw_parse_startup) and CancelRequest (pgw_parse_cancel).
 *
 * Input: one packet, length word included. Both parsers see it as given and again with the
 * length word replaced by the input's size (so the fuzzer reaches the parameters without
 * first having to guess a matching length). What must hold:
 *   - every pointer a parse returns lies inside the packet, with its NUL inside too;
 *   - a packet that parses is rebuilt byte for byte by pgw_build_startup (ddlguard forwards
 *     the client's parameters verbatim), and with a database override the rebuilt packet
 *     parses again with that database;
 *   - a cancel packet that parses is rebuilt byte for byte by pgw_build_cancel.
 */
#include <string.h>

#include "protocol/pgw.h"
#include "tests/fuzz/fuzz.h"

static void check_inside(const uint8_t *pkt, size_t len, const char *p, const char *what)
{
	if (!p)
		return;
	const char *lo = (const char *)pkt, *hi = (const char *)pkt + len;
	FUZZ_CHECK(p >= lo && p < hi, "%s points outside the packet", what);
	FUZZ_CHECK(memchr(p, 0, (size_t)(hi - p)) != NULL, "%s is not terminated inside the packet", what);
}

static void check_startup(const uint8_t *pkt, size_t len)
{
	struct pgw_startup st;
	char err[128];
	err[0] = 0;
	enum pgw_status rc = pgw_parse_startup(pkt, len, &st, err, sizeof(err));
	if (rc != PGW_OK) {
		FUZZ_CHECK(rc == PGW_MALFORMED && err[0], "failure %s without a reason", pgw_status_str(rc));
		return;
	}
	FUZZ_CHECK(st.nparams >= 1 && st.nparams <= PGW_STARTUP_MAXPARAMS, "nparams %d", st.nparams);
	FUZZ_CHECK(st.user && *st.user, "accepted without a user");
	FUZZ_CHECK(st.database && *st.database, "no database");
	check_inside(pkt, len, st.user, "user");
	check_inside(pkt, len, st.database, "database");
	check_inside(pkt, len, st.application_name, "application_name");
	for (int i = 0; i < st.nparams; i++) {
		check_inside(pkt, len, st.keys[i], "key");
		check_inside(pkt, len, st.values[i], "value");
		FUZZ_CHECK(*st.keys[i], "empty key %d", i);
	}

	struct pgw_buf b = { 0 };
	pgw_build_startup(&b, &st, NULL);
	FUZZ_CHECK(b.len == len && !memcmp(b.data, pkt, len), "rebuilt packet differs (%zu vs %zu bytes)",
		   b.len, len);

	/* With the database replaced (a route's dbname), it parses again and says so. */
	const char *db = len & 1 ? "routed_db" : st.user;
	pgw_buf_reset(&b);
	pgw_build_startup(&b, &st, db);
	struct pgw_startup again;
	enum pgw_status rc2 = pgw_parse_startup(b.data, b.len, &again, err, sizeof(err));
	/* Adding a parameter to a packet already holding the most there may be is refused. */
	bool had_db = false;
	for (int i = 0; i < st.nparams; i++)
		had_db |= !strcmp(st.keys[i], "database");
	if (had_db || st.nparams < PGW_STARTUP_MAXPARAMS) {
		FUZZ_CHECK(rc2 == PGW_OK, "rebuilt packet with database %s does not parse: %s", db, err);
		FUZZ_CHECK(!strcmp(again.database, db), "database %s became %s", db, again.database);
		FUZZ_CHECK(!strcmp(again.user, st.user), "user changed");
		FUZZ_CHECK(again.version == st.version, "version changed");
	}
	pgw_buf_free(&b);
}

static void check_cancel(const uint8_t *pkt, size_t len)
{
	struct pgw_cancel c;
	if (pgw_parse_cancel(pkt, len, &c) != PGW_OK)
		return;
	FUZZ_CHECK(c.secret_len >= 4 && c.secret_len <= sizeof(c.secret), "secret of %zu bytes", c.secret_len);
	struct pgw_buf b = { 0 };
	pgw_build_cancel(&b, c.pid, c.secret, c.secret_len);
	FUZZ_CHECK(b.len == len && !memcmp(b.data, pkt, len), "rebuilt cancel packet differs");
	pgw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_startup(data, size);
	check_cancel(data, size);
	if (size >= 4 && size <= 0xffffffffu) {
		/* The same bytes with a matching length word, in an exactly sized copy (ASan
		 * sees every read past the end). */
		uint8_t *pkt = malloc(size);
		if (!pkt)
			return 0;
		memcpy(pkt, data, size);
		pkt[0] = (uint8_t)(size >> 24);
		pkt[1] = (uint8_t)(size >> 16);
		pkt[2] = (uint8_t)(size >> 8);
		pkt[3] = (uint8_t)size;
		check_startup(pkt, size);
		check_cancel(pkt, size);
		free(pkt);
	}
	return 0;
}
