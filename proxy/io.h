/*
 * io — one non-blocking socket, optionally TLS, with an input and an output evbuffer.
 *
 * Bufferevents would defer every write to the next loop iteration (one more epoll_wait
 * per hop) and read 4 KiB at a time; a relay on the round-trip path cannot afford either,
 * so io writes as soon as the relay has moved bytes and reads in large chunks. Events are
 * persistent; the owner enables and disables them. No protocol knowledge lives here.
 */
#ifndef DDLG_IO_H
#define DDLG_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/event.h>

typedef struct ssl_st SSL;
struct evbuffer;

enum io_result { IO_OK = 0, IO_PENDING, IO_EOF, IO_ERROR };

struct io {
	int fd;                     /* owned; -1 when closed */
	SSL *ssl;                   /* owned; NULL for plaintext */
	struct event *rev, *wev;    /* persistent read / write events (owned) */
	struct evbuffer *in, *out;  /* owned */
	bool reading;               /* rev is added */
	bool writing;               /* wev is added */
	char errmsg[128];           /* last error, for the log */
};

void io_init(struct io *io);
bool io_attach(struct io *io, struct event_base *base, int fd, event_callback_fn rcb,
	       event_callback_fn wcb, void *arg);
/* Read what the socket has (up to a bound). IO_OK also when nothing was there. */
enum io_result io_read(struct io *io);
/* Write as much of `out` as the socket takes; IO_PENDING leaves the write event on. */
enum io_result io_flush(struct io *io);
/* Drive a TLS handshake; IO_PENDING when it waits for the socket. */
enum io_result io_handshake(struct io *io);
void io_set_reading(struct io *io, bool on);
/* Schedule a read callback if TLS holds decrypted bytes the socket will not announce. */
void io_kick_pending(struct io *io);
void io_close(struct io *io);

#endif
