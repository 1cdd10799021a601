/*
 * ddlguard — a PostgreSQL wire-protocol proxy for schema migrations.
 * main: the command line. `ddlguard [options]` runs the proxy; `ddlguard run … -- CMD`
 * wraps one command (run.c).
 */
#include <config.h>   /* autoconf's: PACKAGE_VERSION */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/audit.h"
#include "proxy/check.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/run.h"
#include "proxy/server.h"

static void usage(FILE *fp)
{
	fprintf(fp,
"ddlguard %s — a PostgreSQL proxy that guards schema migrations\n"
"\n"
"Usage:\n"
"  ddlguard [OPTIONS]                    run the proxy\n"
"  ddlguard run [OPTIONS] -- COMMAND…    run COMMAND through a private ddlguard\n"
"  ddlguard check [OPTIONS] FILE…        run the policies over migration files offline\n"
"                                        (ddlguard check --help)\n"
"  ddlguard audit verify FILE            check the audit log's hash chain\n"
"\n"
"Options:\n"
"  -c, --config FILE          INI configuration file ([ddlguard] and [databases])\n"
"  -u, --upstream URL         the PostgreSQL server, e.g. postgres://db.internal:5432/app\n"
"                             (becomes the \"*\" route; sslmode= in the URL sets server TLS)\n"
"  -l, --listen ADDR:PORT     where clients connect (default 127.0.0.1:6432; run: a free port)\n"
"  -e, --environment NAME     environment of the routes that do not name one\n"
"  -s, --unix-socket-dir DIR  also listen on DIR/.s.PGSQL.PORT\n"
"  -r, --rules PROFILE        the rule library: off, none, default or strict (docs/rules.md)\n"
"      --check                check the configuration and exit\n"
"  -v, --verbose              more log output (repeat for debug)\n"
"  -V, --version              print the version and exit\n"
"  -h, --help                 print this help and exit\n"
"\n"
"Flags override the file. Signals: SIGHUP reloads the configuration, SIGTERM stops\n"
"accepting and lets sessions finish (shutdown_timeout), SIGINT stops at once.\n"
"Documentation: docs/configuration.md\n", PACKAGE_VERSION);
}

int main(int argc, char **argv)
{
	struct cli_opts opts = { 0 };
	if (argc > 1 && !strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "audit"))
		return audit_verify_main(argc - 1, argv + 1);
	bool check_only = false;
	bool run_mode = argc > 1 && !strcmp(argv[1], "run");
	if (run_mode) {
		argv++;
		argc--;
	}
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "listen", required_argument, NULL, 'l' },
		{ "environment", required_argument, NULL, 'e' },
		{ "unix-socket-dir", required_argument, NULL, 's' },
		{ "rules", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	/* '+' stops at the first non-option, so `run -- psql -c …` keeps psql's flags. */
	while ((c = getopt_long(argc, argv, "+c:u:l:e:s:r:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opts.config_file = optarg; break;
		case 'u': opts.upstream = optarg; break;
		case 'l': opts.listen = optarg; break;
		case 'e': opts.environment = optarg; break;
		case 's': opts.unix_socket_dir = optarg; break;
		case 'r': opts.rules = optarg; break;
		case 'C': check_only = true; break;
		case 'v': opts.verbose++; break;
		case 'V': printf("ddlguard %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try \"ddlguard --help\" for more information.\n");
			return 2;
		}
	}
	if (run_mode) {
		if (optind >= argc) {
			fprintf(stderr, "ddlguard run: missing the command to run (ddlguard run [OPTIONS] -- COMMAND …)\n");
			return 2;
		}
		return run_main(&opts, argv + optind);
	}
	if (optind < argc) {
		fprintf(stderr, "ddlguard: unexpected argument \"%s\"\nTry \"ddlguard --help\" for more information.\n",
			argv[optind]);
		return 2;
	}
	if (!opts.config_file && !opts.upstream) {
		fprintf(stderr, "ddlguard: give -c FILE or --upstream URL\nTry \"ddlguard --help\" for more information.\n");
		return 2;
	}
	struct server srv;
	char err[1024];
	if (!server_init(&srv, &opts, err, sizeof(err))) {
		fprintf(stderr, "ddlguard: %s\n", err);
		server_free(&srv);
		return 1;
	}
	if (check_only) {
		printf("ddlguard: configuration OK\n");
		server_free(&srv);
		return 0;
	}
	if (!server_listen(&srv, err, sizeof(err))) {
		fprintf(stderr, "ddlguard: %s\n", err);
		server_free(&srv);
		return 1;
	}
	log_info("ddlguard %s listening on %s:%d%s%s", PACKAGE_VERSION,
		 *srv.cfg->listen_addr ? srv.cfg->listen_addr : "(none)", srv.bound_port,
		 srv.unix_path[0] ? " and " : "", srv.unix_path);
	server_run(&srv);
	log_info("ddlguard stopped");
	server_free(&srv);
	return 0;
}
