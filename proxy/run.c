/* run — see run.h. */
#include "proxy/run.h"

#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/server.h"

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void sb_enc(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			sb_add(b, s, 1);
		else {
			char h[4];
			snprintf(h, sizeof(h), "%%%02X", c);
			sb_add(b, h, 3);
		}
	}
}

static bool ssl_param(const char *k, size_t n)
{
	static const char *ssl[] = { "sslmode", "sslrootcert", "sslcert", "sslkey", "sslaccept", "ssl" };
	for (size_t i = 0; i < sizeof(ssl) / sizeof(ssl[0]); i++)
		if (strlen(ssl[i]) == n && !strncmp(k, ssl[i], n))
			return true;
	return false;
}

/*
 * A URL libpq cannot parse because it carries parameters of another driver (Prisma's
 * ?schema=, ?connection_limit=…): the same URL with only its host and port replaced and
 * its TLS parameters dropped, the rest kept byte for byte. NULL when it is no URL at all.
 */
static char *rewrite_url_text(const char *url, const char *host, int port, bool plain_leg)
{
	const char *p = strstr(url, "://");
	if (!p || (strncmp(url, "postgres://", 11) && strncmp(url, "postgresql://", 13)))
		return NULL;
	p += 3;
	size_t alen = strcspn(p, "/?#");
	const char *at = NULL;
	for (const char *q = p; q < p + alen; q++)
		if (*q == '@')
			at = q;
	struct sbuf b = { 0 };
	char hp[128];
	sb_add(&b, url, (size_t)(p - url));
	if (at)
		sb_add(&b, p, (size_t)(at + 1 - p));
	int n = snprintf(hp, sizeof(hp), "%s:%d", host, port);
	sb_add(&b, hp, (size_t)n);
	const char *rest = p + alen;
	size_t plen = strcspn(rest, "?#");
	sb_add(&b, rest, plen);
	rest += plen;
	char sep = '?';
	if (*rest == '?') {
		rest++;
		while (*rest && *rest != '#') {
			size_t len = strcspn(rest, "&#");
			size_t klen = strcspn(rest, "=&#");
			if (len && !ssl_param(rest, klen < len ? klen : len)) {
				sb_add(&b, &sep, 1);
				sep = '&';
				sb_add(&b, rest, len);
			}
			rest += len;
			if (*rest == '&')
				rest++;
		}
	}
	if (plain_leg) {
		sb_add(&b, &sep, 1);
		sb_add(&b, "sslmode=disable", 15);
	}
	sb_add(&b, rest, strlen(rest));     /* a #fragment, if any */
	return b.p;
}

char *run_rewrite_url(const char *url, const char *host, int port, bool plain_leg)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		PQfreemem(perr);
		return rewrite_url_text(url, host, port, plain_leg);
	}
	const char *user = NULL, *password = NULL, *dbname = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "password"))
			password = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			dbname = o->val;
	}
	struct sbuf b = { 0 };
	char hp[128];
	sb_add(&b, "postgresql://", 13);
	if (user) {
		sb_enc(&b, user);
		if (password) {
			sb_add(&b, ":", 1);
			sb_enc(&b, password);
		}
		sb_add(&b, "@", 1);
	}
	int n = snprintf(hp, sizeof(hp), "%s:%d/", host, port);
	sb_add(&b, hp, (size_t)n);
	if (dbname)
		sb_enc(&b, dbname);
	char sep = '?';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		static const char *skip[] = { "user", "password", "dbname", "host", "hostaddr", "port",
					      "sslmode", "sslrootcert", "sslcert", "sslkey" };
		bool skipped = false;
		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			if (!strcmp(o->keyword, skip[i]))
				skipped = true;
		if (skipped)
			continue;
		sb_add(&b, &sep, 1);
		sep = '&';
		sb_enc(&b, o->keyword);
		sb_add(&b, "=", 1);
		sb_enc(&b, o->val);
	}
	PQconninfoFree(opts);
	/* Drivers that default to TLS (lib/pq, node-postgres with ssl in the URL) must not
	 * ask a plaintext loopback listener for it. */
	if (plain_leg) {
		sb_add(&b, &sep, 1);
		sb_add(&b, "sslmode=disable", 15);
	}
	return b.p;
}

static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
	if (n >= 10ull << 20)
		snprintf(buf, len, "%.1f MB", n / 1048576.0);
	else if (n >= 10ull << 10)
		snprintf(buf, len, "%.1f kB", n / 1024.0);
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)n);
	return buf;
}

int run_main(struct cli_opts *opts, char **argv)
{
	struct server srv;
	char err[1024];
	const char *dburl = getenv("DATABASE_URL");
	if (!opts->upstream && !opts->config_file) {
		if (!dburl || !*dburl) {
			fprintf(stderr, "ddlguard run: give --upstream postgres://… (or -c FILE, or set DATABASE_URL)\n");
			return 2;
		}
		opts->upstream = dburl;
	}
	if (!opts->listen)
		opts->listen = "127.0.0.1:0";
	if (!server_init(&srv, opts, err, sizeof(err)) || !server_listen(&srv, err, sizeof(err))) {
		fprintf(stderr, "ddlguard run: %s\n", err);
		server_free(&srv);
		return 2;
	}
	/* The command's own output matters more than ours: only warnings, unless -v. */
	if (!opts->verbose && !opts->config_file)
		log_current_level = LOG_LVL_WARNING;
	int port = srv.bound_port;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	char *newurl = NULL;
	if (dburl && *dburl) {
		newurl = run_rewrite_url(dburl, "127.0.0.1", port, srv.cfg->client_tls_mode == TLS_DISABLE);
		if (!newurl) {
			fprintf(stderr, "ddlguard run: cannot parse DATABASE_URL\n");
			server_free(&srv);
			return 2;
		}
	}
	log_info("listening on 127.0.0.1:%d; running %s", port, argv[0]);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ddlguard run: fork: %s\n", strerror(errno));
		server_free(&srv);
		return 2;
	}
	if (pid == 0) {
		setenv("PGHOST", "127.0.0.1", 1);
		setenv("PGPORT", portstr, 1);
		unsetenv("PGHOSTADDR");
		unsetenv("PGSERVICE");
		if (newurl)
			setenv("DATABASE_URL", newurl, 1);
		/* ddlguard talks TLS to the server itself; the child's leg is loopback and
		 * plaintext. "disable", not "prefer": node-postgres takes prefer as require. */
		if (srv.cfg->client_tls_mode == TLS_DISABLE)
			setenv("PGSSLMODE", "disable", 1);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "ddlguard run: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(newurl);
	srv.child = pid;
	server_run(&srv);
	/* SIGINT or SIGTERM to ddlguard: pass it on and wait for the command. */
	if (!srv.child_done) {
		kill(pid, SIGTERM);
		int st;
		if (waitpid(pid, &st, 0) == pid) {
			srv.child_status = st;
			srv.child_done = true;
		}
	}
	int code = 1;
	char desc[64];
	if (WIFEXITED(srv.child_status)) {
		code = WEXITSTATUS(srv.child_status);
		snprintf(desc, sizeof(desc), "exited with status %d", code);
	} else if (WIFSIGNALED(srv.child_status)) {
		code = 128 + WTERMSIG(srv.child_status);
		snprintf(desc, sizeof(desc), "was killed by signal %d", WTERMSIG(srv.child_status));
	} else
		snprintf(desc, sizeof(desc), "ended");
	struct server_stats *st = &srv.stats;
	char cb[32], sb[32];
	struct route *r = srv.cfg->fallback ? srv.cfg->fallback : srv.cfg->routes;
	fprintf(stderr,
		"ddlguard: %s %s. Through ddlguard on 127.0.0.1:%d to %s:%d (%s): %llu sessions "
		"(%llu logged in, %llu failed logins), %llu simple queries and %llu prepared "
		"statements, %s from the client and %s from the server, %llu cancel requests, "
		"%llu protocol errors. ",
		argv[0], desc, port, r ? r->host : "?", r ? r->port : 0, r ? r->environment : "?",
		(unsigned long long)st->sessions, (unsigned long long)st->logins,
		(unsigned long long)st->login_failures, (unsigned long long)st->queries,
		(unsigned long long)st->parses, human_bytes(st->client_bytes, cb, sizeof(cb)),
		human_bytes(st->server_bytes, sb, sizeof(sb)), (unsigned long long)st->cancels,
		(unsigned long long)st->protocol_errors);
	if (srv.cfg->npolicy_files || strcmp(srv.cfg->rules, "off"))
		fprintf(stderr, "Guarded statements: %llu allowed, %llu warned, %llu denied.\n",
			(unsigned long long)st->allowed, (unsigned long long)st->warned,
			(unsigned long long)st->denied);
	else
		fprintf(stderr, "Statements were relayed unchecked: no policies are loaded "
			"(--rules default, or policies in -c FILE).\n");
	server_free(&srv);
	return code;
}
