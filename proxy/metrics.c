/* metrics — see metrics.h. */
#include "proxy/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/audit.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* Decisions per rule, for ddlguard_rule_decisions_total. */
struct rule_count {
	char *rule;
	uint64_t deny, warn;
	struct rule_count *next;
};

void metrics_decision(struct server *srv, const char *decision, const char *rule)
{
	if (!strcmp(decision, "deny"))
		srv->stats.denied++;
	else if (!strcmp(decision, "warn"))
		srv->stats.warned++;
	else
		srv->stats.allowed++;
	if (!rule || !strcmp(decision, "allow"))
		return;
	/* A policy chooses its rule ids (one could put a counter in them): past this many
	 * distinct ones, the rest are counted as "other", so the labels stay bounded. */
	enum { MAX_RULE_LABELS = 256 };
	struct rule_count *c = srv->rule_counts;
	int n = 0;
	for (; c && strcmp(c->rule, rule); c = c->next)
		n++;
	if (!c && n >= MAX_RULE_LABELS) {
		rule = "other";
		for (c = srv->rule_counts; c && strcmp(c->rule, rule); c = c->next)
			;
	}
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || !(c->rule = strdup(rule))) {
			free(c);
			return;
		}
		c->next = srv->rule_counts;
		srv->rule_counts = c;
	}
	if (!strcmp(decision, "deny"))
		c->deny++;
	else
		c->warn++;
}

/* A label value as Prometheus wants it: backslash, quote and newline escaped. */
static void label(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void counter(struct evbuffer *b, const char *name, const char *help, unsigned long long v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	struct server_stats *st = &srv->stats;
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	/* Byte counters of live sessions are folded in only when they end: add them here. */
	unsigned long long cb = st->client_bytes, sb = st->server_bytes;
	for (struct session *s = srv->sessions; s; s = s->next)
		if (s->state != SS_FREED) {
			cb += s->relay.stats.client_bytes;
			sb += s->relay.stats.server_bytes;
		}
	evbuffer_add_printf(b, "# HELP ddlguard_sessions Client sessions now.\n# TYPE ddlguard_sessions gauge\n"
			       "ddlguard_sessions %d\n", srv->nclients);
	counter(b, "ddlguard_sessions_total", "Client sessions that sent a startup packet.", st->sessions);
	counter(b, "ddlguard_logins_total", "Client sessions that logged in.", st->logins);
	counter(b, "ddlguard_login_failures_total", "Logins that failed.", st->login_failures);
	evbuffer_add_printf(b, "# HELP ddlguard_statements_total Guarded statements by decision.\n"
			       "# TYPE ddlguard_statements_total counter\n"
			       "ddlguard_statements_total{decision=\"allow\"} %llu\n"
			       "ddlguard_statements_total{decision=\"warn\"} %llu\n"
			       "ddlguard_statements_total{decision=\"deny\"} %llu\n",
			    (unsigned long long)st->allowed, (unsigned long long)st->warned,
			    (unsigned long long)st->denied);
	evbuffer_add_printf(b, "# HELP ddlguard_rule_decisions_total Denials and warnings by rule.\n"
			       "# TYPE ddlguard_rule_decisions_total counter\n");
	for (struct rule_count *c = srv->rule_counts; c; c = c->next) {
		const char *kinds[2] = { "deny", "warn" };
		uint64_t vals[2] = { c->deny, c->warn };
		for (int i = 0; i < 2; i++) {
			if (!vals[i])
				continue;
			evbuffer_add_printf(b, "ddlguard_rule_decisions_total{rule=\"");
			label(b, c->rule);
			evbuffer_add_printf(b, "\",decision=\"%s\"} %llu\n", kinds[i], (unsigned long long)vals[i]);
		}
	}
	counter(b, "ddlguard_retries_total", "Statements resent after a lock timeout or a lock-monitor cancel.", st->retries);
	counter(b, "ddlguard_lock_waits_total", "Lock waits the lock monitor reported.", st->lock_waits);
	counter(b, "ddlguard_lock_cancels_total", "Statements the lock monitor cancelled.", st->lock_cancels);
	counter(b, "ddlguard_policy_errors_total", "Policy calls that failed (error, budget, memory).", st->policy_errors);
	counter(b, "ddlguard_ledger_errors_total", "Staging-ledger lookups that failed.", st->ledger_errors);
	counter(b, "ddlguard_cancel_requests_total", "CancelRequests received from clients.", st->cancels);
	counter(b, "ddlguard_protocol_errors_total", "Sessions ended for malformed input.", st->protocol_errors);
	evbuffer_add_printf(b, "# HELP ddlguard_bytes_total Bytes relayed.\n# TYPE ddlguard_bytes_total counter\n"
			       "ddlguard_bytes_total{direction=\"from_client\"} %llu\n"
			       "ddlguard_bytes_total{direction=\"from_server\"} %llu\n", cb, sb);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void healthz_cb(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	struct evbuffer *b = evbuffer_new();
	int code = 200;
	const char *why = "ok\n";
	if (srv->draining) {
		code = 503;
		why = "shutting down\n";
	} else if (!audit_ok()) {
		code = 503;
		why = "the audit log cannot be written\n";
	}
	if (b)
		evbuffer_add(b, why, strlen(why));
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Service Unavailable", b);
	if (b)
		evbuffer_free(b);
}

bool metrics_start(struct server *srv, const char *listen, char *err, size_t errlen)
{
	if (!listen || !*listen)
		return true;
	const char *colon = strrchr(listen, ':');
	if (!colon) {
		snprintf(err, errlen, "invalid metrics_listen \"%s\" (ADDR:PORT)", listen);
		return false;
	}
	char host[256];
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	int port = atoi(colon + 1);
	srv->http = evhttp_new(srv->base);
	if (!srv->http || evhttp_bind_socket(srv->http, host, (ev_uint16_t)port) != 0) {
		snprintf(err, errlen, "cannot listen for metrics on %s", listen);
		metrics_stop(srv);
		return false;
	}
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(srv->http, "/metrics", metrics_cb, srv);
	evhttp_set_cb(srv->http, "/healthz", healthz_cb, srv);
	log_info("metrics on http://%s/metrics", listen);
	return true;
}

void metrics_stop(struct server *srv)
{
	if (srv->http)
		evhttp_free(srv->http);
	srv->http = NULL;
	struct rule_count *c = srv->rule_counts, *n;
	for (; c; c = n) {
		n = c->next;
		free(c->rule);
		free(c);
	}
	srv->rule_counts = NULL;
}
