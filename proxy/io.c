/* io — see io.h. */
#include "proxy/io.h"

#include <errno.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define IO_READ_CHUNK   32768
#define IO_READ_MAX     (8 * IO_READ_CHUNK)   /* per callback, so one busy peer cannot starve others */
#define IO_TLS_RECORD   16384

void io_init(struct io *io)
{
	memset(io, 0, sizeof(*io));
	io->fd = -1;
}

bool io_attach(struct io *io, struct event_base *base, int fd, event_callback_fn rcb,
	       event_callback_fn wcb, void *arg)
{
	io->fd = fd;
	io->in = evbuffer_new();
	io->out = evbuffer_new();
	io->rev = event_new(base, fd, EV_READ | EV_PERSIST, rcb, arg);
	io->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, wcb, arg);
	return io->in && io->out && io->rev && io->wev;
}

void io_set_reading(struct io *io, bool on)
{
	if (!io->rev || on == io->reading)
		return;
	io->reading = on;
	if (on)
		event_add(io->rev, NULL);
	else
		event_del(io->rev);
}

static void set_writing(struct io *io, bool on)
{
	if (!io->wev || on == io->writing)
		return;
	io->writing = on;
	if (on)
		event_add(io->wev, NULL);
	else
		event_del(io->wev);
}

/*
 * OpenSSL's error queue is per thread, not per connection, and SSL_get_error() reads it:
 * an error another session left there (a failed SSL_shutdown of a client that vanished
 * mid-handshake) would turn this session's harmless WANT_READ into SSL_ERROR_SSL and end
 * it. So the queue is emptied before every TLS call, and after every SSL_shutdown.
 */
static enum io_result ssl_fail(struct io *io, int r, const char *what)
{
	int e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_ZERO_RETURN)
		return IO_EOF;
	unsigned long code = ERR_get_error();
	if (code)
		snprintf(io->errmsg, sizeof(io->errmsg), "TLS %s: %s", what, ERR_reason_error_string(code));
	else if (e == SSL_ERROR_SYSCALL && errno)
		snprintf(io->errmsg, sizeof(io->errmsg), "TLS %s: %s", what, strerror(errno));
	else if (e == SSL_ERROR_SYSCALL)
		return IO_EOF;  /* peer closed without close_notify */
	else
		snprintf(io->errmsg, sizeof(io->errmsg), "TLS %s failed (%d)", what, e);
	ERR_clear_error();
	return IO_ERROR;
}

enum io_result io_read(struct io *io)
{
	size_t total = 0;
	while (total < IO_READ_MAX) {
		struct evbuffer_iovec v[2];
		int nv = evbuffer_reserve_space(io->in, IO_READ_CHUNK, v, 2);
		if (nv <= 0)
			return IO_ERROR;
		ssize_t n;
		if (io->ssl) {
			ERR_clear_error();
			int r = SSL_read(io->ssl, v[0].iov_base, (int)v[0].iov_len);
			if (r <= 0) {
				evbuffer_commit_space(io->in, v, 0);
				int e = SSL_get_error(io->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return IO_OK;
				return ssl_fail(io, r, "read");
			}
			n = r;
			v[0].iov_len = (size_t)n;
			nv = 1;
		} else {
			n = readv(io->fd, (struct iovec *)v, nv);
			if (n < 0) {
				evbuffer_commit_space(io->in, v, 0);
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return IO_OK;
				snprintf(io->errmsg, sizeof(io->errmsg), "read: %s", strerror(errno));
				return IO_ERROR;
			}
			if (n == 0) {
				evbuffer_commit_space(io->in, v, 0);
				return total ? IO_OK : IO_EOF;
			}
			/* Trim the iovecs to what was actually read before committing. */
			size_t left = (size_t)n;
			for (int i = 0; i < nv; i++) {
				if (v[i].iov_len > left)
					v[i].iov_len = left;
				left -= v[i].iov_len;
			}
			if (nv == 2 && v[1].iov_len == 0)
				nv = 1;
		}
		evbuffer_commit_space(io->in, v, nv);
		total += (size_t)n;
		/* A short plaintext read means the socket is drained; TLS may hold more records. */
		if (!io->ssl && (size_t)n < IO_READ_CHUNK)
			break;
	}
	io_kick_pending(io);
	return IO_OK;
}

void io_kick_pending(struct io *io)
{
	/* Records OpenSSL already decrypted are invisible to epoll: without this nudge they
	 * would wait for the peer's next packet. */
	if (io->ssl && io->reading && SSL_pending(io->ssl) > 0)
		event_active(io->rev, EV_READ, 1);
}

enum io_result io_flush(struct io *io)
{
	while (evbuffer_get_length(io->out) > 0) {
		if (io->ssl) {
			size_t len = evbuffer_get_length(io->out);
			if (len > IO_TLS_RECORD)
				len = IO_TLS_RECORD;
			unsigned char *p = evbuffer_pullup(io->out, (ssize_t)len);
			ERR_clear_error();
			int r = SSL_write(io->ssl, p, (int)len);
			if (r <= 0) {
				int e = SSL_get_error(io->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					set_writing(io, true);
					return IO_PENDING;
				}
				return ssl_fail(io, r, "write");
			}
			evbuffer_drain(io->out, (size_t)r);
		} else {
			int n = evbuffer_write(io->out, io->fd);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
					set_writing(io, true);
					return IO_PENDING;
				}
				snprintf(io->errmsg, sizeof(io->errmsg), "write: %s", strerror(errno));
				return IO_ERROR;
			}
		}
	}
	set_writing(io, false);
	return IO_OK;
}

enum io_result io_handshake(struct io *io)
{
	ERR_clear_error();
	int r = SSL_do_handshake(io->ssl);
	if (r == 1) {
		set_writing(io, false);
		io_set_reading(io, true);
		return IO_OK;
	}
	int e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		set_writing(io, false);
		io_set_reading(io, true);
		return IO_PENDING;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		set_writing(io, true);
		return IO_PENDING;
	}
	enum io_result res = ssl_fail(io, r, "handshake");
	if (res == IO_EOF)
		snprintf(io->errmsg, sizeof(io->errmsg), "TLS handshake: connection closed by peer");
	return IO_ERROR;
}

void io_close(struct io *io)
{
	if (io->rev) {
		event_free(io->rev);
		io->rev = NULL;
	}
	if (io->wev) {
		event_free(io->wev);
		io->wev = NULL;
	}
	io->reading = io->writing = false;
	if (io->ssl) {
		SSL_shutdown(io->ssl);   /* fails when the peer is gone or never finished the handshake */
		ERR_clear_error();
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->fd >= 0) {
		close(io->fd);
		io->fd = -1;
	}
	if (io->in) {
		evbuffer_free(io->in);
		io->in = NULL;
	}
	if (io->out) {
		evbuffer_free(io->out);
		io->out = NULL;
	}
}
