/*
 * Unit tests for protocol/scram: the SCRAM-SHA-256 client against the RFC 7677 test vector,
 * channel binding (gs2 header and c= contents), and rejection of malformed server messages.
 *
 * Besides the RFC vector, proofs are checked against a second, independent computation
 * written here directly on OpenSSL (ref_scram), so the channel-binding variants are held to
 * the RFC's formulas too, not only to what the code under test happens to produce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "protocol/scram.h"

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
			 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
			 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* ------------------------------------------------------------------ helpers */

/*
 * RFC 5802 section 3, computed independently: ClientProof and ServerSignature (base64) for
 * a password, salt, iteration count and AuthMessage.
 */
static void ref_scram(const char *password, const unsigned char *salt, int saltlen, int iters,
		      const char *auth_message, char proof64[64], char sig64[64])
{
	unsigned char salted[32], ck[32], sk[32], stored[32], csig[32], ssig[32], proof[32];
	unsigned int l = 32;
	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltlen, iters,
					   EVP_sha256(), 32, salted), 1);
	assert_non_null(HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ck, &l));
	SHA256(ck, 32, stored);
	assert_non_null(HMAC(EVP_sha256(), stored, 32, (const unsigned char *)auth_message,
			     strlen(auth_message), csig, &l));
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ csig[i];
	assert_non_null(HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, sk, &l));
	assert_non_null(HMAC(EVP_sha256(), sk, 32, (const unsigned char *)auth_message,
			     strlen(auth_message), ssig, &l));
	EVP_EncodeBlock((unsigned char *)proof64, proof, 32);
	EVP_EncodeBlock((unsigned char *)sig64, ssig, 32);
}

/* Start an exchange and return the client nonce found in the client-first-message. */
static void start(struct scram_client *sc, const unsigned char *cb, size_t cblen, bool supports,
		  const char *expect_prefix, char *nonce, size_t noncelen)
{
	char out[256];
	assert_true(scram_client_start(sc, cb, cblen, supports, out, sizeof(out)));
	size_t pl = strlen(expect_prefix);
	if (strncmp(out, expect_prefix, pl) != 0)
		fail_msg("client-first-message \"%s\" does not start with \"%s\"", out, expect_prefix);
	snprintf(nonce, noncelen, "%s", out + pl);
}

/*
 * Run scram_client_final against a server-first built from the client's nonce, check the
 * client-final-message field by field against ref_scram, and return the expected server
 * signature message in server_final.
 */
static void final_and_check(struct scram_client *sc, const char *nonce,
			    const unsigned char *expect_cbind, size_t expect_cbind_len,
			    char *server_final, size_t sflen)
{
	static const unsigned char salt[] = "0123456789abcdef";
	char salt64[64];
	EVP_EncodeBlock((unsigned char *)salt64, salt, 16);
	char server_first[256];
	snprintf(server_first, sizeof(server_first), "r=%sSRVnonce+/x,s=%s,i=4096", nonce, salt64);

	char out[512], err[128] = "";
	assert_true(scram_client_final(sc, "s3cr3t pass", server_first, strlen(server_first), out,
				       sizeof(out), err, sizeof(err)));

	/* c=<base64 of the gs2 header and any channel-binding data>,r=<server nonce>,p=<proof> */
	char cbind64[256];
	EVP_EncodeBlock((unsigned char *)cbind64, expect_cbind, (int)expect_cbind_len);
	char without_proof[512];
	snprintf(without_proof, sizeof(without_proof), "c=%s,r=%sSRVnonce+/x", cbind64, nonce);
	size_t wl = strlen(without_proof);
	if (strncmp(out, without_proof, wl) != 0 || strncmp(out + wl, ",p=", 3) != 0)
		fail_msg("client-final \"%s\" should start with \"%s,p=\"", out, without_proof);

	char am[1024], proof64[64], sig64[64];
	snprintf(am, sizeof(am), "%s,%s,%s", sc->client_first_bare, server_first, without_proof);
	ref_scram("s3cr3t pass", salt, 16, 4096, am, proof64, sig64);
	assert_string_equal(out + wl + 3, proof64);
	snprintf(server_final, sflen, "v=%s", sig64);
}

/* ------------------------------------------------------------------- tests */

static void test_rfc7677_vector(void **state)
{
	(void)state;
	struct scram_client sc;
	char out[512], err[128] = "";
	assert_true(scram_client_start(&sc, NULL, 0, false, out, sizeof(out)));
	/* Replace the random nonce and the empty user name with the RFC's. */
	snprintf(sc.client_nonce, sizeof(sc.client_nonce), "%s", RFC_NONCE);
	free(sc.client_first_bare);
	sc.client_first_bare = strdup("n=user,r=" RFC_NONCE);
	assert_non_null(sc.client_first_bare);

	assert_true(scram_client_final(&sc, "pencil", RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
				       out, sizeof(out), err, sizeof(err)));
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_true(scram_client_verify(&sc, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err,
					sizeof(err)));

	/* One character of the signature changed. */
	char bad[] = RFC_SERVER_FINAL;
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	err[0] = 0;
	assert_false(scram_client_verify(&sc, bad, strlen(bad), err, sizeof(err)));
	assert_true(err[0] != 0);
	/* The right signature truncated: 31 bytes. */
	static const char short_sig[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G==";
	assert_false(scram_client_verify(&sc, short_sig, strlen(short_sig), err, sizeof(err)));
	/* The server reports an error. */
	err[0] = 0;
	assert_false(scram_client_verify(&sc, "e=invalid-proof", 15, err, sizeof(err)));
	assert_true(err[0] != 0);
	/* No v= at all, an empty one, not base64. */
	assert_false(scram_client_verify(&sc, "x=abcd", 6, err, sizeof(err)));
	assert_false(scram_client_verify(&sc, "v=", 2, err, sizeof(err)));
	assert_false(scram_client_verify(&sc, "v=!!!!", 6, err, sizeof(err)));
	/* Only the given length counts: the right signature past `len` is not looked at. */
	assert_false(scram_client_verify(&sc, RFC_SERVER_FINAL, 20, err, sizeof(err)));
	scram_client_free(&sc);
}

static void test_rfc_vector_matches_reference(void **state)
{
	(void)state;
	/* The independent computation agrees with RFC 7677, so it can judge the other tests. */
	unsigned char salt[32];
	int saltlen = scram_b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt));
	assert_int_equal(saltlen, 16);
	char proof64[64], sig64[64];
	ref_scram("pencil", salt, saltlen, 4096,
		  "n=user,r=" RFC_NONCE "," RFC_SERVER_FIRST ","
		  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", proof64, sig64);
	assert_string_equal(proof64, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	assert_string_equal(sig64, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void test_client_first_format(void **state)
{
	(void)state;
	struct scram_client a, b;
	char out[256];
	assert_true(scram_client_start(&a, NULL, 0, false, out, sizeof(out)));
	/* "n,," gs2 header, empty user name (PostgreSQL uses the startup user), 24-char nonce. */
	assert_int_equal(strncmp(out, "n,,n=,r=", 8), 0);
	const char *nonce = out + 8;
	assert_int_equal(strlen(nonce), 24);
	for (const char *p = nonce; *p; p++)
		if (!(*p >= 'A' && *p <= 'Z') && !(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') &&
		    *p != '+' && *p != '/')
			fail_msg("nonce \"%s\" has a character outside base64 (or a comma)", nonce);
	assert_string_equal(a.client_nonce, nonce);
	char bare[sizeof(out) + 8];
	snprintf(bare, sizeof(bare), "n=,r=%s", nonce);
	assert_string_equal(a.client_first_bare, bare);
	assert_string_equal(a.cbind_header, "n,,");

	/* A second exchange gets a different nonce. */
	char out2[256];
	assert_true(scram_client_start(&b, NULL, 0, false, out2, sizeof(out2)));
	assert_string_not_equal(a.client_nonce, b.client_nonce);

	/* The output buffer must hold the message and its NUL. */
	struct scram_client c;
	assert_false(scram_client_start(&c, NULL, 0, false, out, strlen("n,,n=,r=") + 24));
	scram_client_free(&c);
	assert_true(scram_client_start(&c, NULL, 0, false, out, strlen("n,,n=,r=") + 24 + 1));
	scram_client_free(&c);
	scram_client_free(&a);
	scram_client_free(&b);
}

static void test_gs2_no_channel_binding(void **state)
{
	(void)state;
	struct scram_client sc;
	char nonce[64], server_final[128], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	final_and_check(&sc, nonce, (const unsigned char *)"n,,", 3, server_final, sizeof(server_final));
	assert_true(scram_client_verify(&sc, server_final, strlen(server_final), err, sizeof(err)));
	scram_client_free(&sc);
}

static void test_gs2_supported_but_not_offered(void **state)
{
	(void)state;
	/* 'y': the client could bind but the server did not offer PLUS (c= is "eSws"). */
	struct scram_client sc;
	char nonce[64], server_final[128], err[128];
	start(&sc, NULL, 0, true, "y,,n=,r=", nonce, sizeof(nonce));
	assert_string_equal(sc.cbind_header, "y,,");
	final_and_check(&sc, nonce, (const unsigned char *)"y,,", 3, server_final, sizeof(server_final));
	assert_true(scram_client_verify(&sc, server_final, strlen(server_final), err, sizeof(err)));
	scram_client_free(&sc);

	/* Spelled out once: base64("y,,") is "eSws". */
	char out[512];
	start(&sc, NULL, 0, true, "y,,n=,r=", nonce, sizeof(nonce));
	char sf[128];
	snprintf(sf, sizeof(sf), "r=%sXYZ,s=QUJDRA==,i=1", nonce);
	assert_true(scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)));
	assert_int_equal(strncmp(out, "c=eSws,r=", 9), 0);
	scram_client_free(&sc);
}

static void test_gs2_channel_binding(void **state)
{
	(void)state;
	/* tls-server-end-point: c= carries the header followed by the certificate hash. */
	unsigned char cb[32];
	for (int i = 0; i < 32; i++)
		cb[i] = (unsigned char)(i * 37 + 200); /* includes NUL and high bytes */
	struct scram_client sc;
	char nonce[64], server_final[128], err[128];
	start(&sc, cb, sizeof(cb), false, "p=tls-server-end-point,,n=,r=", nonce, sizeof(nonce));
	assert_int_equal(sc.cb_len, 32);
	unsigned char expect[64];
	size_t hl = strlen("p=tls-server-end-point,,");
	memcpy(expect, "p=tls-server-end-point,,", hl);
	memcpy(expect + hl, cb, 32);
	final_and_check(&sc, nonce, expect, hl + 32, server_final, sizeof(server_final));
	assert_true(scram_client_verify(&sc, server_final, strlen(server_final), err, sizeof(err)));
	scram_client_free(&sc);

	/* A SHA-512 certificate hash (64 bytes) still fits; more does not. */
	unsigned char big[65] = { 0 };
	char out[256];
	assert_true(scram_client_start(&sc, big, 64, true, out, sizeof(out)));
	assert_int_equal(strncmp(out, "p=tls-server-end-point,,", hl), 0);
	scram_client_free(&sc);
	assert_false(scram_client_start(&sc, big, 65, true, out, sizeof(out)));
	scram_client_free(&sc);
}

/* scram_client_final on a fresh exchange with this server-first must fail with a reason. */
static void expect_reject(const char *server_first_fmt, const char *why)
{
	struct scram_client sc;
	char nonce[64], sf[512], out[512], err[128] = "";
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	snprintf(sf, sizeof(sf), server_first_fmt, nonce);
	if (scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)))
		fail_msg("%s: server-first \"%s\" was accepted", why, sf);
	if (!err[0])
		fail_msg("%s: no reason given", why);
	scram_client_free(&sc);
}

static void test_nonce_mismatch(void **state)
{
	(void)state;
	expect_reject("r=AAAA%.0sBBBBCCCCDDDDEEEEFFFFGGGG,s=QUJDRA==,i=4096", "unrelated nonce");
	/* The server must extend the client nonce, not just echo it. */
	expect_reject("r=%s,s=QUJDRA==,i=4096", "nonce not extended");
	/* A prefix of the client nonce is not the client nonce. */
	struct scram_client sc;
	char nonce[64], sf[256], out[512], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	snprintf(sf, sizeof(sf), "r=%.10s,s=QUJDRA==,i=4096", nonce);
	assert_false(scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)));
	/* First character changed. */
	snprintf(sf, sizeof(sf), "r=%c%sXYZ,s=QUJDRA==,i=4096", nonce[0] == 'A' ? 'B' : 'A', nonce + 1);
	assert_false(scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)));
	scram_client_free(&sc);
	expect_reject("s=QUJDRA==,i=4096%.0s", "no nonce");
}

static void test_iteration_count(void **state)
{
	(void)state;
	expect_reject("r=%sX,s=QUJDRA==,i=0", "i=0");
	expect_reject("r=%sX,s=QUJDRA==,i=-1", "negative");
	expect_reject("r=%sX,s=QUJDRA==,i=10000001", "above the cap");
	expect_reject("r=%sX,s=QUJDRA==,i=4294967297", "above 32 bits");
	expect_reject("r=%sX,s=QUJDRA==,i=99999999999999999999999", "huge");
	expect_reject("r=%sX,s=QUJDRA==,i=abc", "not a number");
	expect_reject("r=%sX,s=QUJDRA==,i=4096x", "trailing garbage");
	expect_reject("r=%sX,s=QUJDRA==,i=", "empty");
	expect_reject("r=%sX,s=QUJDRA==", "missing");

	/* The smallest valid count is accepted. */
	struct scram_client sc;
	char nonce[64], sf[256], out[512], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	snprintf(sf, sizeof(sf), "r=%sX,s=QUJDRA==,i=1", nonce);
	assert_true(scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)));
	scram_client_free(&sc);
}

static void test_bad_salt(void **state)
{
	(void)state;
	expect_reject("r=%sX,s=!!!!,i=4096", "not base64");
	expect_reject("r=%sX,s=QUJDRA=,i=4096", "length not a multiple of 4");
	expect_reject("r=%sX,s=,i=4096", "empty salt");
	expect_reject("r=%sX,i=4096", "no salt");
}

static void test_embedded_nul_rejected(void **state)
{
	(void)state;
	struct scram_client sc;
	char nonce[64], sf[256], out[512], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	int n = snprintf(sf, sizeof(sf), "r=%sX,s=QUJDRA==,i=4096,x=a", nonce);
	sf[n - 1] = 0; /* the message as given to the function contains a NUL */
	assert_false(scram_client_final(&sc, "pw", sf, (size_t)n, out, sizeof(out), err, sizeof(err)));
	scram_client_free(&sc);
}

static void test_final_output_too_small(void **state)
{
	(void)state;
	struct scram_client sc;
	char nonce[64], sf[256], out[512], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	snprintf(sf, sizeof(sf), "r=%sX,s=QUJDRA==,i=1", nonce);
	assert_false(scram_client_final(&sc, "pw", sf, strlen(sf), out, 40, err, sizeof(err)));
	scram_client_free(&sc);
}

/* A server that skips SASLContinue and sends a server-final-message at once: there is no
 * signature to compare with yet, and the all-zero one must not pass (found by fuzz_scram). */
static void test_verify_before_final(void **state)
{
	(void)state;
	struct scram_client sc;
	char out[512], err[128] = "";
	static const char zero_sig[] = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	assert_true(scram_client_start(&sc, NULL, 0, false, out, sizeof(out)));
	assert_false(scram_client_verify(&sc, zero_sig, strlen(zero_sig), err, sizeof(err)));
	assert_true(err[0] != 0);
	/* Nor after a server-first-message that was refused. */
	assert_false(scram_client_final(&sc, "pw", "r=x,s=QUJDRA==,i=1", 18, out, sizeof(out), err, sizeof(err)));
	assert_false(scram_client_verify(&sc, zero_sig, strlen(zero_sig), err, sizeof(err)));
	scram_client_free(&sc);
}

static void test_free_wipes(void **state)
{
	(void)state;
	struct scram_client sc;
	char nonce[64], sf[256], out[512], err[128];
	start(&sc, NULL, 0, false, "n,,n=,r=", nonce, sizeof(nonce));
	snprintf(sf, sizeof(sf), "r=%sX,s=QUJDRA==,i=1", nonce);
	assert_true(scram_client_final(&sc, "pw", sf, strlen(sf), out, sizeof(out), err, sizeof(err)));
	static const unsigned char zero[32];
	assert_memory_not_equal(sc.salted, zero, 32);
	scram_client_free(&sc);
	assert_memory_equal(sc.salted, zero, 32);
	assert_memory_equal(sc.server_sig, zero, 32);
	assert_null(sc.client_first_bare);
	assert_null(sc.server_first);
}

static void test_base64(void **state)
{
	(void)state;
	static const struct { const char *raw, *b64; } v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char enc[32];
		unsigned char dec[32];
		size_t n = strlen(v[i].raw);
		assert_int_equal(scram_b64_encode((const unsigned char *)v[i].raw, n, enc, sizeof(enc)),
				 strlen(v[i].b64));
		assert_string_equal(enc, v[i].b64);
		assert_int_equal(scram_b64_decode(v[i].b64, strlen(v[i].b64), dec, sizeof(dec)), (int)n);
		assert_memory_equal(dec, v[i].raw, n);
	}
	char small[4];
	assert_int_equal(scram_b64_encode((const unsigned char *)"foo", 3, small, sizeof(small)), 0);
	unsigned char dec[8];
	assert_int_equal(scram_b64_decode("Zm9", 3, dec, sizeof(dec)), -1);
	assert_int_equal(scram_b64_decode("Zm*v", 4, dec, sizeof(dec)), -1);
	assert_int_equal(scram_b64_decode("Zm9vYmFy", 8, dec, 5), -1); /* output too small */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_vector),
		cmocka_unit_test(test_rfc_vector_matches_reference),
		cmocka_unit_test(test_client_first_format),
		cmocka_unit_test(test_gs2_no_channel_binding),
		cmocka_unit_test(test_gs2_supported_but_not_offered),
		cmocka_unit_test(test_gs2_channel_binding),
		cmocka_unit_test(test_nonce_mismatch),
		cmocka_unit_test(test_iteration_count),
		cmocka_unit_test(test_bad_salt),
		cmocka_unit_test(test_embedded_nul_rejected),
		cmocka_unit_test(test_final_output_too_small),
		cmocka_unit_test(test_verify_before_final),
		cmocka_unit_test(test_free_wipes),
		cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
