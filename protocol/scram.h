/*
 * scram — the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) with optional
 * tls-server-end-point channel binding (RFC 5929), as PostgreSQL speaks it.
 *
 * ddlguard is a SCRAM client only when both legs are TLS: then a relayed exchange cannot
 * work (the client would bind to ddlguard's certificate, the server checks its own), so
 * ddlguard takes the password from the client over TLS and logs in upstream itself.
 * Pure computation over strings: no I/O. The password is never stored here; only the salted
 * password derived from it, which scram_client_free() wipes.
 */
#ifndef DDLG_SCRAM_H
#define DDLG_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

struct scram_client {
	char cbind_header[64];        /* gs2 header: "p=tls-server-end-point,," or "n,," / "y,," */
	unsigned char cb_data[64];    /* channel-binding data (hash of the server certificate) */
	size_t cb_len;
	char client_nonce[32];        /* base64 of 18 random bytes */
	char *client_first_bare;      /* "n=,r=<nonce>" (owned) */
	char *server_first;           /* as received (owned) */
	unsigned char salted[32];     /* SaltedPassword */
	unsigned char server_sig[32]; /* expected ServerSignature */
	bool final_done;              /* scram_client_final succeeded: server_sig is set */
};

/*
 * Begin an exchange. cb_data/cb_len: channel-binding data when the server offered
 * SCRAM-SHA-256-PLUS, else NULL/0 with `client_supports_cb` saying whether to send 'y'.
 * Writes the client-first-message (NUL-terminated) into out. Returns false on failure.
 */
bool scram_client_start(struct scram_client *sc, const unsigned char *cb_data, size_t cb_len,
			bool client_supports_cb, char *out, size_t outlen);

/*
 * Process the server-first-message and produce the client-final-message into out.
 * Returns false with a reason in err when the server's message is malformed.
 */
bool scram_client_final(struct scram_client *sc, const char *password, const char *server_first,
			size_t server_first_len, char *out, size_t outlen, char *err, size_t errlen);

/* Check the server-final-message ("v=..."). Fails unless scram_client_final succeeded:
 * before that there is no signature to compare with. */
bool scram_client_verify(struct scram_client *sc, const char *server_final, size_t len,
			 char *err, size_t errlen);

void scram_client_free(struct scram_client *sc);

/* Helpers exposed for tests. */
size_t scram_b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen);
int scram_b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen);

#endif
