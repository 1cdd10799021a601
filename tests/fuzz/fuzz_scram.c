/*
 * fuzz_scram — the client side of SCRAM-SHA-256 on arbitrary server messages
 * (scram_client_final, scram_client_verify) and the base64 decoder they use.
 *
 * Input: byte 0 holds flags (bit 0: the server offered -PLUS, so channel-binding data is
 * used; bit 1: the client supports channel binding; bit 2: the server-final-message is the
 * right signature followed by the third segment), then up to three segments separated by
 * '\n': the password, the server-first-message and the server-final-message.
 *
 * The client nonce is random in ddlguard; here it is replaced after scram_client_start()
 * by a fixed one (seeds carry it in their server nonces), so a run is reproducible.
 * Iteration counts above 64 that the client would accept are skipped: PBKDF2 is
 * OpenSSL's, and 10 million rounds per input would only measure it.
 *
 * What must hold: a client-final-message is "c=<base64 gs2 header + binding data>,
 * r=<server nonce>,p=<44 base64 characters>" and fits the caller's buffer; verification
 * passes for the right signature, and never when the server-first-message was refused
 * (nothing was computed to compare with). Every base64 decode either fails or yields at
 * most 3/4 of its input, and re-encoding what it yields decodes to the same bytes.
 */
#include <string.h>

#include "protocol/scram.h"
#include "tests/fuzz/fuzz.h"

#define FIXED_NONCE "AAECAwQFBgcICQoLDA0ODxAR"   /* base64 of the bytes 0 … 17 */

static void check_b64(const char *in, size_t n)
{
	unsigned char out[512];
	if (n > 640)
		n = 640;
	int r = scram_b64_decode(in, n, out, sizeof(out));
	if (r < 0) {
		FUZZ_CHECK(r == -1, "decode returned %d", r);
		return;
	}
	FUZZ_CHECK((size_t)r <= 3 * (n / 4), "decoded %d bytes from %zu", r, n);
	char enc[700];
	size_t e = scram_b64_encode(out, (size_t)r, enc, sizeof(enc));
	FUZZ_CHECK(e == 4 * (((size_t)r + 2) / 3) && enc[e] == 0, "encoded %zu bytes to %zu", (size_t)r, e);
	unsigned char back[512];
	int r2 = scram_b64_decode(enc, e, back, sizeof(back));
	FUZZ_CHECK(r2 == r && !memcmp(back, out, (size_t)r), "re-encoded base64 decodes differently");
	/* A buffer too small by one is refused, never overrun. */
	if (n >= 4) {
		unsigned char *small = malloc(3 * (n / 4) - 1);
		FUZZ_CHECK(scram_b64_decode(in, n, small, 3 * (n / 4) - 1) == -1, "short buffer accepted");
		free(small);
	}
}

/* The attribute `name` as scram.c finds it: the first field "name=…". */
static const char *first_attr(const char *msg, size_t len, char name, size_t *vlen)
{
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && msg[e] != ',')
			e++;
		if (e - i >= 2 && msg[i] == name && msg[i + 1] == '=') {
			*vlen = e - i - 2;
			return msg + i + 2;
		}
		i = e + 1;
	}
	return NULL;
}

static bool costly(const char *first, size_t len)
{
	size_t ilen;
	const char *i = first_attr(first, len, 'i', &ilen);
	char buf[16];
	if (!i || ilen == 0 || ilen >= sizeof(buf))
		return false;
	memcpy(buf, i, ilen);
	buf[ilen] = 0;
	char *end;
	long n = strtol(buf, &end, 10);
	return !*end && n > 64 && n <= 10000000;
}

/* The client-final-message's shape. */
static void check_final(const struct scram_client *sc, const char *first, size_t flen, const char *out)
{
	FUZZ_CHECK(!strncmp(out, "c=", 2), "final does not start with c=");
	const char *r = strstr(out, ",r=");
	FUZZ_CHECK(r, "final has no r=");
	unsigned char cb[256];
	int n = scram_b64_decode(out + 2, (size_t)(r - out - 2), cb, sizeof(cb));
	size_t hl = strlen(sc->cbind_header);
	FUZZ_CHECK(n >= 0 && (size_t)n == hl + sc->cb_len && !memcmp(cb, sc->cbind_header, hl) &&
		   !memcmp(cb + hl, sc->cb_data, sc->cb_len), "c= is not the gs2 header and binding data");
	size_t rlen;
	const char *want = first_attr(first, flen, 'r', &rlen);
	FUZZ_CHECK(want && !strncmp(r + 3, want, rlen) && !strncmp(r + 3 + rlen, ",p=", 3),
		   "r= is not the server nonce");
	const char *p = r + 3 + rlen + 3;
	FUZZ_CHECK(strlen(p) == 44, "proof of %zu characters", strlen(p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	const char *seg[3] = { "", "", "" };
	size_t seglen[3] = { 0, 0, 0 };
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	for (int i = 0; i < 3 && p <= end; i++) {
		const char *nl = i < 2 ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		seg[i] = p;
		seglen[i] = (size_t)((nl ? nl : end) - p);
		p = (nl ? nl : end) + 1;
	}
	check_b64((const char *)data + 1, size - 1);
	check_b64(seg[2], seglen[2]);
	if (costly(seg[1], seglen[1]))
		return 0;

	/* Each piece in a buffer of its own size, so that ASan sees any read past it. */
	char *password = strndup(seg[0], seglen[0]);
	char *first = malloc(seglen[1] ? seglen[1] : 1);
	memcpy(first, seg[1], seglen[1]);

	unsigned char cb[32];
	for (int i = 0; i < 32; i++)
		cb[i] = (unsigned char)(i * 7 + 1);
	struct scram_client sc;
	char msg[512], err[160];
	FUZZ_CHECK(scram_client_start(&sc, flags & 1 ? cb : NULL, flags & 1 ? sizeof(cb) : 0, flags & 2,
				      msg, sizeof(msg)), "start failed");
	memcpy(sc.client_nonce, FIXED_NONCE, sizeof(FIXED_NONCE));
	snprintf(sc.client_first_bare, strlen(sc.client_first_bare) + 1, "n=,r=%s", FIXED_NONCE);

	char out[512];   /* what session.c gives it */
	err[0] = 0;
	bool ok = scram_client_final(&sc, password, first, seglen[1], out, sizeof(out), err, sizeof(err));
	if (ok)
		check_final(&sc, first, seglen[1], out);
	else
		FUZZ_CHECK(err[0], "failure without a reason");

	char *final;
	size_t finlen;
	if (flags & 4) {
		char sig[64];
		size_t n = scram_b64_encode(sc.server_sig, sizeof(sc.server_sig), sig, sizeof(sig));
		finlen = 2 + n + seglen[2];
		final = malloc(finlen);
		memcpy(final, "v=", 2);
		memcpy(final + 2, sig, n);
		memcpy(final + 2 + n, seg[2], seglen[2]);
	} else {
		finlen = seglen[2];
		final = malloc(finlen ? finlen : 1);
		memcpy(final, seg[2], finlen);
	}
	err[0] = 0;
	bool verified = scram_client_verify(&sc, final, finlen, err, sizeof(err));
	if (verified)
		FUZZ_CHECK(ok && (flags & 4), "verified a server that did not prove it knows the password");
	else
		FUZZ_CHECK(err[0], "failure without a reason");
	if (ok && (flags & 4) && seglen[2] == 0)
		FUZZ_CHECK(verified, "the right signature was refused: %s", err);

	free(final);
	free(first);
	free(password);
	scram_client_free(&sc);
	return 0;
}
