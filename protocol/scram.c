/* scram — see scram.h. */
#include "protocol/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stringprep.h>
#include <stdlib.h>
#include <string.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_ITERATIONS 10000000 /* refuse absurd iteration counts (CPU exhaustion) */

size_t scram_b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	size_t need = 4 * ((n + 2) / 3) + 1;
	if (outlen < need)
		return 0;
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int scram_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
	if (n % 4 != 0 || outlen < 3 * (n / 4))
		return -1;
	int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (r < 0)
		return -1;
	/* EVP_DecodeBlock counts padding as data; subtract it. */
	if (n >= 1 && in[n - 1] == '=')
		r--;
	if (n >= 2 && in[n - 2] == '=')
		r--;
	return r;
}

static bool hmac(const unsigned char *key, size_t keylen, const void *msg, size_t msglen,
		 unsigned char out[SCRAM_KEY_LEN])
{
	unsigned int len = SCRAM_KEY_LEN;
	return HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) != NULL;
}

bool scram_client_start(struct scram_client *sc, const unsigned char *cb_data, size_t cb_len,
			bool client_supports_cb, char *out, size_t outlen)
{
	unsigned char raw[18];
	memset(sc, 0, sizeof(*sc));
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	scram_b64_encode(raw, sizeof(raw), sc->client_nonce, sizeof(sc->client_nonce));
	if (cb_data && cb_len) {
		if (cb_len > sizeof(sc->cb_data))
			return false;
		memcpy(sc->cb_data, cb_data, cb_len);
		sc->cb_len = cb_len;
		strcpy(sc->cbind_header, "p=tls-server-end-point,,");
	} else
		strcpy(sc->cbind_header, client_supports_cb ? "y,," : "n,,");
	/* PostgreSQL ignores the SCRAM user name (it uses the startup user): send it empty. */
	size_t n = strlen("n=,r=") + strlen(sc->client_nonce) + 1;
	sc->client_first_bare = malloc(n);
	if (!sc->client_first_bare)
		return false;
	snprintf(sc->client_first_bare, n, "n=,r=%s", sc->client_nonce);
	int w = snprintf(out, outlen, "%s%s", sc->cbind_header, sc->client_first_bare);
	return w > 0 && (size_t)w < outlen;
}

/* Find attribute `name` ("r", "s", "i") in a comma-separated SCRAM message. */
static const char *attr(const char *msg, size_t len, char name, size_t *vlen)
{
	const char *p = msg, *end = msg + len;
	while (p < end) {
		const char *comma = memchr(p, ',', end - p);
		const char *e = comma ? comma : end;
		if (e - p >= 2 && p[0] == name && p[1] == '=') {
			*vlen = (size_t)(e - p - 2);
			return p + 2;
		}
		p = e + 1;
	}
	return NULL;
}

static bool fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return false;
}

bool scram_client_final(struct scram_client *sc, const char *password, const char *server_first,
			size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t rlen, slen, ilen;
	const char *r = attr(server_first, len, 'r', &rlen);
	const char *s = attr(server_first, len, 's', &slen);
	const char *i = attr(server_first, len, 'i', &ilen);
	if (!r || !s || !i || memchr(server_first, 0, len))
		return fail(err, errlen, "malformed SCRAM server-first-message");
	size_t cn = strlen(sc->client_nonce);
	/* The server nonce must extend ours, or the server is not answering our exchange. */
	if (rlen <= cn || memcmp(r, sc->client_nonce, cn) != 0)
		return fail(err, errlen, "SCRAM server nonce does not start with the client nonce");
	unsigned char salt[256];
	if (slen > 340)
		return fail(err, errlen, "SCRAM salt too long");
	int saltlen = scram_b64_decode(s, slen, salt, sizeof(salt));
	if (saltlen <= 0)
		return fail(err, errlen, "invalid SCRAM salt");
	char ibuf[16];
	if (ilen == 0 || ilen >= sizeof(ibuf))
		return fail(err, errlen, "invalid SCRAM iteration count");
	memcpy(ibuf, i, ilen);
	ibuf[ilen] = 0;
	char *endp;
	long iters = strtol(ibuf, &endp, 10);
	if (*endp || iters < 1 || iters > SCRAM_MAX_ITERATIONS)
		return fail(err, errlen, "invalid SCRAM iteration count");

	sc->server_first = malloc(len + 1);
	if (!sc->server_first)
		return fail(err, errlen, "out of memory");
	memcpy(sc->server_first, server_first, len);
	sc->server_first[len] = 0;

	/* SaltedPassword := Hi(Normalize(password), salt, i), Normalize being SASLprep
	 * (RFC 4013). Like libpq and the server, a password that SASLprep rejects (invalid
	 * UTF-8, prohibited characters) is used as given. */
	char *prepped = NULL;
	if (stringprep_profile(password, &prepped, "SASLprep", 0) != STRINGPREP_OK) {
		free(prepped);
		prepped = NULL;
	}
	const char *pw = prepped ? prepped : password;
	int rc = PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, saltlen, (int)iters, EVP_sha256(),
				   SCRAM_KEY_LEN, sc->salted);
	if (prepped) {
		OPENSSL_cleanse(prepped, strlen(prepped));
		free(prepped);
	}
	if (rc != 1)
		return fail(err, errlen, "PBKDF2 failed");

	/* c= is base64(gs2-header [cbind-data]). */
	unsigned char cbind[sizeof(sc->cbind_header) + sizeof(sc->cb_data)];
	size_t hl = strlen(sc->cbind_header);
	memcpy(cbind, sc->cbind_header, hl);
	memcpy(cbind + hl, sc->cb_data, sc->cb_len);
	char cbind64[200];
	scram_b64_encode(cbind, hl + sc->cb_len, cbind64, sizeof(cbind64));

	size_t wp_len = 2 + strlen(cbind64) + 3 + rlen + 1;
	char *without_proof = malloc(wp_len);
	if (!without_proof)
		return fail(err, errlen, "out of memory");
	snprintf(without_proof, wp_len, "c=%s,r=%.*s", cbind64, (int)rlen, r);

	/* AuthMessage := client-first-bare "," server-first "," client-final-without-proof */
	size_t am_len = strlen(sc->client_first_bare) + 1 + len + 1 + strlen(without_proof);
	char *am = malloc(am_len + 1);
	if (!am) {
		free(without_proof);
		return fail(err, errlen, "out of memory");
	}
	snprintf(am, am_len + 1, "%s,%s,%s", sc->client_first_bare, sc->server_first, without_proof);

	unsigned char client_key[SCRAM_KEY_LEN], stored_key[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	bool ok = hmac(sc->salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
		  SHA256(client_key, SCRAM_KEY_LEN, stored_key) != NULL &&
		  hmac(stored_key, SCRAM_KEY_LEN, am, am_len, sig) &&
		  hmac(sc->salted, SCRAM_KEY_LEN, "Server Key", 10, server_key) &&
		  hmac(server_key, SCRAM_KEY_LEN, am, am_len, sc->server_sig);
	for (int k = 0; k < SCRAM_KEY_LEN; k++)
		proof[k] = client_key[k] ^ sig[k];
	char proof64[64];
	scram_b64_encode(proof, SCRAM_KEY_LEN, proof64, sizeof(proof64));
	int w = snprintf(out, outlen, "%s,p=%s", without_proof, proof64);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	free(am);
	free(without_proof);
	if (!ok)
		return fail(err, errlen, "HMAC failed");
	if (w < 0 || (size_t)w >= outlen)
		return fail(err, errlen, "SCRAM message too long");
	sc->final_done = true;
	return true;
}

bool scram_client_verify(struct scram_client *sc, const char *server_final, size_t len,
			 char *err, size_t errlen)
{
	size_t vlen, elen;
	/* A server-final-message before our client-final-message (a server that skipped
	 * SASLContinue) would be checked against an all-zero signature. */
	if (!sc->final_done)
		return fail(err, errlen, "SCRAM server-final-message before the exchange");
	const char *e = attr(server_final, len, 'e', &elen);
	if (e)
		return fail(err, errlen, "server reported a SCRAM error");
	const char *v = attr(server_final, len, 'v', &vlen);
	unsigned char sig[64];
	if (!v || vlen > 80)
		return fail(err, errlen, "malformed SCRAM server-final-message");
	int n = scram_b64_decode(v, vlen, sig, sizeof(sig));
	if (n != SCRAM_KEY_LEN || CRYPTO_memcmp(sig, sc->server_sig, SCRAM_KEY_LEN) != 0)
		return fail(err, errlen, "invalid SCRAM server signature");
	return true;
}

void scram_client_free(struct scram_client *sc)
{
	free(sc->client_first_bare);
	free(sc->server_first);
	OPENSSL_cleanse(sc, sizeof(*sc));
}
