/*
 * cancel — ddlguard's own BackendKeyData and the map from it to sessions.
 *
 * Each client gets a random pid and secret; the server's key stays with the session and is
 * only ever used on a fresh upstream connection that ddlguard opens for a CancelRequest.
 */
#ifndef DDLG_CANCEL_H
#define DDLG_CANCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct session;

/* Give `s` a fresh key (secret as long as the server's) and enter it into the map. */
bool cancel_register(struct server *srv, struct session *s, size_t secret_len);
void cancel_unregister(struct server *srv, struct session *s);
/* The session owning this key, compared in constant time; NULL when none. */
struct session *cancel_lookup(struct server *srv, uint32_t pid, const uint8_t *secret, size_t len);

#endif
