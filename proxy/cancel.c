/* cancel — see cancel.h. */
#include "proxy/cancel.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "proxy/server.h"
#include "proxy/session.h"

static unsigned bucket(uint32_t pid)
{
	return (pid * 2654435761u) >> 20 & (SERVER_KEYMAP_SIZE - 1);
}

static bool pid_taken(struct server *srv, uint32_t pid)
{
	for (struct session *s = srv->keymap[bucket(pid)]; s; s = s->key_next)
		if (s->key_pid == pid)
			return true;
	return false;
}

bool cancel_register(struct server *srv, struct session *s, size_t secret_len)
{
	if (secret_len > sizeof(s->key_secret))
		return false;
	if (s->key_pid)
		cancel_unregister(srv, s);
	uint32_t pid;
	do {
		if (RAND_bytes((unsigned char *)&pid, sizeof(pid)) != 1)
			return false;
		/* Positive and non-zero, like a real backend pid. */
		pid &= 0x7fffffff;
	} while (pid == 0 || pid_taken(srv, pid));
	if (RAND_bytes(s->key_secret, (int)secret_len) != 1)
		return false;
	s->key_pid = pid;
	s->key_len = secret_len;
	unsigned b = bucket(pid);
	s->key_next = srv->keymap[b];
	srv->keymap[b] = s;
	return true;
}

void cancel_unregister(struct server *srv, struct session *s)
{
	struct session **pp = &srv->keymap[bucket(s->key_pid)];
	for (; *pp; pp = &(*pp)->key_next)
		if (*pp == s) {
			*pp = s->key_next;
			break;
		}
	s->key_pid = 0;
}

struct session *cancel_lookup(struct server *srv, uint32_t pid, const uint8_t *secret, size_t len)
{
	for (struct session *s = srv->keymap[bucket(pid)]; s; s = s->key_next)
		if (s->key_pid == pid && s->key_len == len && CRYPTO_memcmp(s->key_secret, secret, len) == 0)
			return s;
	return NULL;
}
