/*
 * tls — OpenSSL contexts for both legs, and the TLS facts the session needs.
 *
 * Client leg: ddlguard's certificate and key (client_tls_*). Server leg: one context per
 * route, verifying the server's chain against server_tls_ca_file for verify-ca and
 * verify-full (the host name or IP is checked per connection in tls_server_ssl()).
 * TLS 1.2 is the minimum on both legs.
 */
#ifndef DDLG_TLS_H
#define DDLG_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/config.h"

typedef struct ssl_st SSL;

void tls_global_init(void);
/* Build every SSL_CTX a config needs. False with a message when a file is missing or bad. */
bool tls_build(struct config *cfg, char *err, size_t errlen);
/* A new server-leg SSL for `route`, with SNI and host verification set. */
SSL *tls_server_ssl(struct route *route);
/* tls-server-end-point channel-binding data of the peer certificate (RFC 5929). */
bool tls_server_endpoint(SSL *ssl, unsigned char *out, size_t *outlen);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384" style description for logs. */
const char *tls_describe(SSL *ssl, char *buf, size_t len);

#endif
