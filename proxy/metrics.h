/*
 * metrics — a Prometheus text endpoint (GET /metrics) and a health check (GET /healthz) on
 * libevent's evhttp, off unless metrics_listen is set. Counters live in struct server.
 */
#ifndef DDLG_METRICS_H
#define DDLG_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct server;

bool metrics_start(struct server *srv, const char *listen, char *err, size_t errlen);
void metrics_stop(struct server *srv);
/* Count a policy decision for a rule (rule may be NULL). */
void metrics_decision(struct server *srv, const char *decision, const char *rule);

#endif
