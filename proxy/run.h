/*
 * run — `ddlguard run [flags] -- COMMAND ARGS…`: the connection-string swap in one line.
 * Starts the proxy on a free loopback port, runs COMMAND with PGHOST/PGPORT (and a
 * rewritten DATABASE_URL) pointing at it, prints a summary when COMMAND exits, and exits
 * with COMMAND's status.
 */
#ifndef DDLG_RUN_H
#define DDLG_RUN_H

#include "proxy/config.h"

/* argv: the words after "--". Returns the process exit status. */
int run_main(struct cli_opts *opts, char **argv);
/* Rewrite a libpq URL or conninfo to point at host:port (TLS parameters dropped; with
 * plain_leg, sslmode=disable added). A postgres:// URL libpq rejects for parameters of
 * another driver is rewritten as text. NULL if it cannot be parsed at all. */
char *run_rewrite_url(const char *url, const char *host, int port, bool plain_leg);

#endif
