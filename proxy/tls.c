/* tls — see tls.h. */
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

void tls_global_init(void)
{
	OPENSSL_init_ssl(0, NULL);
}

static bool ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	/* A system error (the file is missing or unreadable) has no reason string: its reason
	 * is the errno. Without this the message said "(null)". */
	if (e && !why && ERR_SYSTEM_ERROR(e))
		why = strerror(ERR_GET_REASON(e));
	snprintf(err, errlen, "%s \"%s\": %s", what, file ? file : "", why ? why : "failed");
	ERR_clear_error();
	return false;
}

static bool build_client_ctx(struct config *c, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return ssl_err(err, errlen, "cannot create TLS context", NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->client_tls_cert_file) != 1) {
		SSL_CTX_free(ctx);
		return ssl_err(err, errlen, "cannot load client_tls_cert_file", c->client_tls_cert_file);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->client_tls_key_file, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return ssl_err(err, errlen, "cannot load client_tls_key_file", c->client_tls_key_file);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		SSL_CTX_free(ctx);
		return ssl_err(err, errlen, "client_tls_key_file does not match client_tls_cert_file",
			       c->client_tls_key_file);
	}
	c->client_ctx = ctx;
	return true;
}

static bool build_route_ctx(struct route *r, char *err, size_t errlen)
{
	if (r->server_tls_mode == TLS_DISABLE || r->host[0] == '/')
		return true;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return ssl_err(err, errlen, "cannot create TLS context", NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	if (r->server_tls_mode >= TLS_VERIFY_CA) {
		if (SSL_CTX_load_verify_locations(ctx, r->server_tls_ca_file, NULL) != 1) {
			SSL_CTX_free(ctx);
			char what[160];
			snprintf(what, sizeof(what), "database \"%s\": cannot load server_tls_ca_file", r->name);
			return ssl_err(err, errlen, what, r->server_tls_ca_file);
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	r->server_ctx = ctx;
	return true;
}

bool tls_build(struct config *c, char *err, size_t errlen)
{
	if (c->client_tls_mode != TLS_DISABLE && !build_client_ctx(c, err, errlen))
		return false;
	for (struct route *r = c->routes; r; r = r->next)
		if (!build_route_ctx(r, err, errlen))
			return false;
	if (c->fallback && !build_route_ctx(c->fallback, err, errlen))
		return false;
	return true;
}

SSL *tls_server_ssl(struct route *r)
{
	SSL *ssl = SSL_new(r->server_ctx);
	if (!ssl)
		return NULL;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, r->host, ip) == 1 || inet_pton(AF_INET6, r->host, ip) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, r->host);
	if (r->server_tls_mode == TLS_VERIFY_FULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		if (is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(vp, r->host);
		else {
			X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			X509_VERIFY_PARAM_set1_host(vp, r->host, 0);
		}
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

bool tls_server_endpoint(SSL *ssl, unsigned char *out, size_t *outlen)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return false;
	/* RFC 5929 4.1: hash with the certificate's signature digest; MD5 and SHA-1 become
	 * SHA-256. */
	int md_nid = NID_undef, pk_nid;
	const EVP_MD *md = NULL;
	if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid) &&
	    md_nid != NID_md5 && md_nid != NID_sha1 && md_nid != NID_undef)
		md = EVP_get_digestbynid(md_nid);
	if (!md)
		md = EVP_sha256();
	unsigned int n = 0;
	bool ok = X509_digest(cert, md, out, &n) == 1;
	*outlen = n;
	X509_free(cert);
	return ok;
}

const char *tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}
