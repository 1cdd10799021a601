/*
 * Unit tests for proxy/config: the INI file ([ddlguard] keys, [databases] routes, comments,
 * errors with line numbers), the --upstream URL, config_validate's checks and the route
 * defaults it fills in, and route lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/config.h"

/* ------------------------------------------------------------------ helpers */

static struct config *parse_ok(const char *text)
{
	struct config *c = config_new();
	char err[512] = "";
	if (!config_parse_ini(c, text, "test.ini", err, sizeof(err)))
		fail_msg("config_parse_ini failed: %s", err);
	return c;
}

/* The text must fail to parse with an error naming `line` and containing `needle`. */
static void parse_fails(const char *text, int line, const char *needle)
{
	struct config *c = config_new();
	char err[512] = "";
	if (config_parse_ini(c, text, "test.ini", err, sizeof(err)))
		fail_msg("accepted: \"%s\"", text);
	char where[32];
	snprintf(where, sizeof(where), "test.ini:%d:", line);
	if (strncmp(err, where, strlen(where)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, where);
	if (needle && !strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	config_unref(c);
}

static void validate_ok(struct config *c)
{
	char err[512] = "";
	if (!config_validate(c, err, sizeof(err)))
		fail_msg("config_validate failed: %s", err);
}

static void validate_fails(const char *text, const char *needle)
{
	struct config *c = parse_ok(text);
	char err[512] = "";
	if (config_validate(c, err, sizeof(err)))
		fail_msg("config_validate accepted: \"%s\"", text);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	config_unref(c);
}

static struct route *route_named(struct config *c, const char *name)
{
	for (struct route *r = c->routes; r; r = r->next)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

/* ------------------------------------------------------------------- tests */

static const char full_file[] =
	"; ddlguard test configuration\n"
	"# comments of both kinds\n"
	"\n"
	"[ddlguard]\n"
	"listen_addr = 0.0.0.0,::1 ; trailing comment\n"
	"listen_port = 7432\n"
	"unix_socket_dir = /tmp/ddlg   # another trailing comment\n"
	"client_tls_sslmode = require\n"
	"client_tls_cert_file = /etc/ddlguard/server.crt\n"
	"client_tls_key_file = /etc/ddlguard/server.key\n"
	"  server_tls_sslmode   =   verify-ca  \n"
	"server_tls_ca_file = /etc/ddlguard/ca.pem\n"
	"client_login_timeout = 0\n"
	"server_connect_timeout = 5\n"
	"query_timeout = 600\n"
	"cancel_wait_timeout = 7\n"
	"shutdown_timeout = 45\n"
	"max_client_conn = 250\n"
	"max_packet_size = 2000000\n"
	"log_level = debug\n"
	"logfile = /var/log/ddlguard.log\n"
	"environment = staging\n"
	"debug_inject_query = SELECT 1;SELECT 2\n"
	"\r\n"
	"[databases]\r\n"
	"app = host=10.0.0.5 port=5433 environment=production ; the main one\r\n"
	"quoted = host='/var/run/postgresql' dbname='my db' server_tls_sslmode=disable\n"
	"spaced   =   host = db.internal   port = 6543\n"
	"ca_route = host=db2 server_tls_sslmode=verify-full server_tls_ca_file='/etc/other ca.pem'\n"
	"* = host=10.0.0.9\n";

static void test_full_file(void **state)
{
	(void)state;
	struct config *c = parse_ok(full_file);
	assert_string_equal(c->listen_addr, "0.0.0.0,::1");
	assert_int_equal(c->listen_port, 7432);
	assert_string_equal(c->unix_socket_dir, "/tmp/ddlg");
	assert_int_equal(c->client_tls_mode, TLS_REQUIRE);
	assert_string_equal(c->client_tls_cert_file, "/etc/ddlguard/server.crt");
	assert_string_equal(c->client_tls_key_file, "/etc/ddlguard/server.key");
	assert_int_equal(c->server_tls_mode, TLS_VERIFY_CA);
	assert_string_equal(c->server_tls_ca_file, "/etc/ddlguard/ca.pem");
	assert_int_equal(c->client_login_timeout, 0);
	assert_int_equal(c->server_connect_timeout, 5);
	assert_int_equal(c->query_timeout, 600);
	assert_int_equal(c->cancel_wait_timeout, 7);
	assert_int_equal(c->shutdown_timeout, 45);
	assert_int_equal(c->max_client_conn, 250);
	assert_int_equal(c->max_packet_size, 2000000);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_string_equal(c->logfile, "/var/log/ddlguard.log");
	assert_string_equal(c->environment, "staging");
	/* A ';' not preceded by space is part of the value. */
	assert_string_equal(c->debug_inject_query, "SELECT 1;SELECT 2");

	/* Routes, in file order; "*" is kept apart. */
	struct route *r = c->routes;
	assert_non_null(r);
	assert_string_equal(r->name, "app");
	assert_string_equal(r->host, "10.0.0.5");
	assert_int_equal(r->port, 5433);
	assert_null(r->dbname);
	assert_string_equal(r->environment, "production");
	r = r->next;
	assert_non_null(r);
	assert_string_equal(r->name, "quoted");
	assert_string_equal(r->host, "/var/run/postgresql");
	assert_int_equal(r->port, 5432);
	assert_string_equal(r->dbname, "my db");
	assert_int_equal(r->server_tls_mode, TLS_DISABLE);
	r = r->next;
	assert_non_null(r);
	assert_string_equal(r->name, "spaced");
	assert_string_equal(r->host, "db.internal");
	assert_int_equal(r->port, 6543);
	r = r->next;
	assert_non_null(r);
	assert_string_equal(r->name, "ca_route");
	assert_string_equal(r->server_tls_ca_file, "/etc/other ca.pem");
	assert_int_equal(r->server_tls_mode, TLS_VERIFY_FULL);
	assert_null(r->next);
	assert_non_null(c->fallback);
	assert_string_equal(c->fallback->name, "*");
	assert_string_equal(c->fallback->host, "10.0.0.9");
	assert_int_equal(c->fallback->port, 5432);

	validate_ok(c);
	config_unref(c);
}

static void test_quoted_value_escapes(void **state)
{
	(void)state;
	/* Single quotes with backslash escapes, libpq conninfo style. */
	struct config *c = parse_ok("[databases]\n"
				    "a = dbname='it\\'s' host='a b'\n"
				    "b = host=x port=1 dbname=\n");
	struct route *a = route_named(c, "a");
	assert_non_null(a);
	assert_string_equal(a->dbname, "it's");
	assert_string_equal(a->host, "a b");
	struct route *b = route_named(c, "b");
	assert_non_null(b);
	assert_int_equal(b->port, 1);
	config_unref(c);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config *c = config_new();
	assert_int_equal(c->refcount, 1);
	assert_string_equal(c->listen_addr, "127.0.0.1");
	assert_int_equal(c->listen_port, 6432);
	assert_null(c->unix_socket_dir);
	assert_int_equal(c->client_tls_mode, TLS_DISABLE);
	assert_int_equal(c->server_tls_mode, TLS_PREFER);
	assert_int_equal(c->client_login_timeout, 60);
	assert_int_equal(c->server_connect_timeout, 15);
	assert_int_equal(c->query_timeout, 0);      /* off: a long migration is silent too */
	assert_int_equal(c->cancel_wait_timeout, 10);
	assert_int_equal(c->shutdown_timeout, 30);
	assert_int_equal(c->max_client_conn, 1000);
	assert_int_equal(c->max_packet_size, 1073741823u);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_string_equal(c->environment, "default");
	assert_null(c->debug_inject_query);
	assert_null(c->routes);
	assert_null(c->fallback);
	/* A route with no options: 127.0.0.1:5432. */
	char err[256];
	assert_true(config_add_route(c, "x", "", err, sizeof(err)));
	assert_string_equal(c->routes->host, "127.0.0.1");
	assert_int_equal(c->routes->port, 5432);
	/* References. */
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refcount, 2);
	config_unref(c);
	assert_int_equal(c->refcount, 1);
	config_unref(c);
	config_unref(NULL);
}

static void test_find_route(void **state)
{
	(void)state;
	struct config *c = parse_ok("[databases]\n"
				    "app = host=a\n"
				    "app2 = host=b\n"
				    "* = host=c\n");
	struct route *r = config_find_route(c, "app");
	assert_non_null(r);
	assert_string_equal(r->host, "a");
	r = config_find_route(c, "app2");
	assert_non_null(r);
	assert_string_equal(r->host, "b");
	/* Names are exact: no prefix or case folding. */
	r = config_find_route(c, "ap");
	assert_ptr_equal(r, c->fallback);
	assert_string_equal(r->host, "c");
	assert_ptr_equal(config_find_route(c, "APP"), c->fallback);
	assert_ptr_equal(config_find_route(c, "*"), c->fallback);
	config_unref(c);

	c = parse_ok("[databases]\napp = host=a\n");
	assert_non_null(config_find_route(c, "app"));
	assert_null(config_find_route(c, "other"));
	config_unref(c);
}

static void test_route_redefined(void **state)
{
	(void)state;
	/* A later line for the same name replaces the earlier one in its place. */
	struct config *c = parse_ok("[databases]\n"
				    "a = host=one\n"
				    "b = host=two\n"
				    "a = host=three port=9\n"
				    "* = host=x\n"
				    "* = host=y\n");
	assert_string_equal(c->routes->name, "a");
	assert_string_equal(c->routes->host, "three");
	assert_int_equal(c->routes->port, 9);
	assert_string_equal(c->routes->next->name, "b");
	assert_null(c->routes->next->next);
	assert_string_equal(c->fallback->host, "y");
	config_unref(c);
}

static void test_parse_errors(void **state)
{
	(void)state;
	parse_fails("[ddlguard]\nlisten_port = 6432\n\n[bogus]\n", 4, "bogus");
	parse_fails("[ddlguard]\n; comment\n\nfoo = 1\n", 4, "foo");
	parse_fails("[ddlguard]\nlisten_port = abc\n", 2, "listen_port");
	parse_fails("[ddlguard]\nmax_client_conn = 12x\n", 2, "max_client_conn");
	parse_fails("[ddlguard]\nshutdown_timeout =\n", 2, "shutdown_timeout");
	parse_fails("[ddlguard]\nlisten_port = 70000\n", 2, "listen_port");
	parse_fails("[ddlguard]\nlisten_port = 65536\n", 2, "listen_port");
	parse_fails("[ddlguard]\nlisten_port = -1\n", 2, "listen_port");
	parse_fails("[ddlguard]\nlisten_port = 99999999999999999999\n", 2, "listen_port");
	parse_fails("[ddlguard]\nserver_connect_timeout = 0\n", 2, "server_connect_timeout");
	parse_fails("[ddlguard]\nquery_timeout = -1\n", 2, "query_timeout");
	parse_fails("[ddlguard]\nquery_timeout = 5s\n", 2, "query_timeout");
	parse_fails("[ddlguard]\nmax_packet_size = 9999\n", 2, "max_packet_size");
	parse_fails("[ddlguard]\nmax_packet_size = 1073741824\n", 2, "max_packet_size");
	parse_fails("[ddlguard]\nlog_level = verbose\n", 2, "log_level");
	/* Client TLS: disable, allow, require only. */
	parse_fails("[ddlguard]\nclient_tls_sslmode = verify-full\n", 2, "client_tls_sslmode");
	parse_fails("[ddlguard]\nclient_tls_sslmode = prefer\n", 2, "client_tls_sslmode");
	parse_fails("[ddlguard]\nclient_tls_sslmode = on\n", 2, "client_tls_sslmode");
	/* Server TLS: no "allow" (ddlguard never falls back to plaintext after TLS). */
	parse_fails("[ddlguard]\nserver_tls_sslmode = allow\n", 2, "server_tls_sslmode");
	parse_fails("[databases]\napp = host=x server_tls_sslmode=allow\n", 2, "server_tls_sslmode");
	/* Routes. */
	parse_fails("[databases]\n\napp = host=x sslmode=require\n", 3, "sslmode");
	parse_fails("[databases]\napp = host=x user=bob\n", 2, "user");
	parse_fails("[databases]\napp = host=x port=0\n", 2, "port");
	parse_fails("[databases]\napp = host=x port=http\n", 2, "port");
	parse_fails("[databases]\napp = host='x\n", 2, "app");
	parse_fails("[databases]\napp = host\n", 2, "=");
	/* Structure. */
	parse_fails("listen_port = 6432\n[ddlguard]\n", 1, "outside");
	parse_fails("# comment\n\napp = host=x\n", 3, "outside");
	parse_fails("[ddlguard]\nlisten_port 6432\n", 2, NULL);
	parse_fails("[ddlguard]\n\n\nlisten_port\n", 4, NULL);
	parse_fails("[ddlguard\n", 1, NULL);
	parse_fails("[ddlguard] x\n", 1, NULL);
}

static void test_parse_error_stops_at_first(void **state)
{
	(void)state;
	/* The earlier settings were applied; the line reported is the first bad one. */
	struct config *c = config_new();
	char err[512] = "";
	assert_false(config_parse_ini(c, "[ddlguard]\nlisten_port = 1234\nbad = 1\nworse\n",
				      "f.ini", err, sizeof(err)));
	assert_int_equal(strncmp(err, "f.ini:3:", 8), 0);
	assert_int_equal(c->listen_port, 1234);
	config_unref(c);
}

static void test_upstream_url(void **state)
{
	(void)state;
	struct config *c = config_new();
	char err[512] = "";
	assert_true(config_set_upstream_url(c, "postgres://user@host:5433/db?sslmode=require", err,
					    sizeof(err)));
	struct route *r = c->fallback;
	assert_non_null(r);
	assert_string_equal(r->name, "*");
	assert_string_equal(r->host, "host");
	assert_int_equal(r->port, 5433);
	assert_int_equal(r->server_tls_mode, TLS_REQUIRE);
	/* The client's database name is kept (docs: "under the same name"). */
	assert_null(r->dbname);
	assert_null(c->routes);
	assert_ptr_equal(config_find_route(c, "anything"), r);
	config_unref(c);

	/* A unix socket directory. */
	c = config_new();
	assert_true(config_set_upstream_url(c, "postgresql:///db?host=/tmp", err, sizeof(err)));
	assert_string_equal(c->fallback->host, "/tmp");
	assert_int_equal(c->fallback->port, 5432);
	validate_ok(c);
	/* Default TLS (prefer) is fine on a socket: it is simply not used there. */
	assert_int_equal(c->fallback->server_tls_mode, TLS_PREFER);
	config_unref(c);

	/* allow acts as prefer; sslrootcert is the CA; an IPv6 literal. */
	c = config_new();
	assert_true(config_set_upstream_url(
		c, "postgres://[::1]:6000/x?sslmode=allow&sslrootcert=/etc/ca.pem", err, sizeof(err)));
	assert_string_equal(c->fallback->host, "::1");
	assert_int_equal(c->fallback->port, 6000);
	assert_int_equal(c->fallback->server_tls_mode, TLS_PREFER);
	assert_string_equal(c->fallback->server_tls_ca_file, "/etc/ca.pem");
	config_unref(c);
	/* The conninfo form works too. */
	c = config_new();
	assert_true(config_set_upstream_url(c, "host=10.1.2.3 port=6001 sslmode=verify-full "
					    "sslrootcert=/ca.pem", err, sizeof(err)));
	assert_string_equal(c->fallback->host, "10.1.2.3");
	assert_int_equal(c->fallback->port, 6001);
	assert_int_equal(c->fallback->server_tls_mode, TLS_VERIFY_FULL);
	validate_ok(c);
	config_unref(c);
}

static void test_upstream_url_invalid(void **state)
{
	(void)state;
	static const char *bad[] = {
		"postgres://h1,h2/db",
		"postgres://host:99999/db",
		"postgres://host:0/db",
		"postgres://host/db?sslmode=bogus",
		"postgres://host/db?nosuchparam=1",
		"not a url",
		"postgres://host/db?sslmode",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = config_new();
		char err[512] = "";
		if (config_set_upstream_url(c, bad[i], err, sizeof(err)))
			fail_msg("accepted \"%s\"", bad[i]);
		if (!err[0])
			fail_msg("\"%s\": no reason given", bad[i]);
		/* A failed URL installs no route. */
		assert_null(c->fallback);
		assert_null(c->routes);
		config_unref(c);
	}
}

static void test_validate_errors(void **state)
{
	(void)state;
	/* No upstream at all. */
	struct config *c = config_new();
	char err[512] = "";
	assert_false(config_validate(c, err, sizeof(err)));
	assert_non_null(strstr(err, "upstream"));
	config_unref(c);

	/* Client TLS needs both files. */
	validate_fails("[ddlguard]\nclient_tls_sslmode = allow\n[databases]\n* = host=x\n",
		       "client_tls_cert_file");
	validate_fails("[ddlguard]\nclient_tls_sslmode = require\nclient_tls_cert_file = /c.pem\n"
		       "[databases]\n* = host=x\n", "client_tls_key_file");
	validate_fails("[ddlguard]\nclient_tls_sslmode = require\nclient_tls_key_file = /k.pem\n"
		       "client_tls_cert_file =\n[databases]\n* = host=x\n", "client_tls_cert_file");

	/* verify-ca / verify-full need a CA, on the route or as the default. */
	validate_fails("[databases]\napp = host=x server_tls_sslmode=verify-ca\n", "app");
	validate_fails("[ddlguard]\nserver_tls_sslmode = verify-full\n[databases]\n* = host=x\n",
		       "server_tls_ca_file");

	/* TLS cannot be required over a unix socket. */
	validate_fails("[databases]\nlocal = host=/var/run/postgresql server_tls_sslmode=require\n",
		       "local");
	validate_fails("[ddlguard]\nserver_tls_sslmode = require\n[databases]\n"
		       "local = host=/tmp\n", "unix socket");
	c = config_new();
	assert_true(config_set_upstream_url(c, "postgresql:///db?host=/tmp&sslmode=require", err,
					    sizeof(err)));
	assert_false(config_validate(c, err, sizeof(err)));
	config_unref(c);

	/* Nothing to listen on. */
	validate_fails("[ddlguard]\nlisten_addr =\n[databases]\n* = host=x\n", "listen");
	/* ... unless there is a unix socket. */
	c = parse_ok("[ddlguard]\nlisten_addr =\nunix_socket_dir = /tmp\n[databases]\n* = host=x\n");
	validate_ok(c);
	config_unref(c);
}

static void test_validate_fills_route_defaults(void **state)
{
	(void)state;
	struct config *c = parse_ok("[ddlguard]\n"
				    "environment = staging\n"
				    "server_tls_sslmode = verify-ca\n"
				    "server_tls_ca_file = /etc/ca.pem\n"
				    "[databases]\n"
				    "plain = host=a\n"
				    "own = host=b environment=production server_tls_sslmode=require "
				    "server_tls_ca_file=/own.pem\n"
				    "sock = host=/tmp server_tls_sslmode=disable\n"
				    "* = host=c\n");
	/* Before validation, unset fields are unset. */
	struct route *plain = route_named(c, "plain");
	assert_non_null(plain);
	assert_null(plain->environment);
	assert_null(plain->server_tls_ca_file);
	validate_ok(c);
	assert_string_equal(plain->environment, "staging");
	assert_int_equal(plain->server_tls_mode, TLS_VERIFY_CA);
	assert_string_equal(plain->server_tls_ca_file, "/etc/ca.pem");
	struct route *own = route_named(c, "own");
	assert_string_equal(own->environment, "production");
	assert_int_equal(own->server_tls_mode, TLS_REQUIRE);
	assert_string_equal(own->server_tls_ca_file, "/own.pem");
	struct route *sock = route_named(c, "sock");
	assert_int_equal(sock->server_tls_mode, TLS_DISABLE);
	assert_string_equal(sock->environment, "staging");
	/* The fallback gets the defaults too. */
	assert_string_equal(c->fallback->environment, "staging");
	assert_int_equal(c->fallback->server_tls_mode, TLS_VERIFY_CA);
	assert_string_equal(c->fallback->server_tls_ca_file, "/etc/ca.pem");
	/* Validating twice changes nothing. */
	validate_ok(c);
	assert_string_equal(plain->server_tls_ca_file, "/etc/ca.pem");
	config_unref(c);

	/* Defaults of the [ddlguard] section itself when it sets nothing. */
	c = parse_ok("[databases]\n* = host=x\n");
	validate_ok(c);
	assert_string_equal(c->fallback->environment, "default");
	assert_int_equal(c->fallback->server_tls_mode, TLS_PREFER);
	assert_null(c->fallback->server_tls_ca_file);
	config_unref(c);
}

static void test_tls_mode_names(void **state)
{
	(void)state;
	assert_string_equal(tls_mode_name(TLS_DISABLE), "disable");
	assert_string_equal(tls_mode_name(TLS_ALLOW), "allow");
	assert_string_equal(tls_mode_name(TLS_PREFER), "prefer");
	assert_string_equal(tls_mode_name(TLS_REQUIRE), "require");
	assert_string_equal(tls_mode_name(TLS_VERIFY_CA), "verify-ca");
	assert_string_equal(tls_mode_name(TLS_VERIFY_FULL), "verify-full");
	/* Every name config_set accepts maps back to itself. */
	struct config *c = config_new();
	char err[256];
	const enum tls_mode server_ok[] = { TLS_DISABLE, TLS_PREFER, TLS_REQUIRE, TLS_VERIFY_CA,
					    TLS_VERIFY_FULL };
	for (size_t i = 0; i < sizeof(server_ok) / sizeof(server_ok[0]); i++) {
		assert_true(config_set(c, "server_tls_sslmode", tls_mode_name(server_ok[i]), err,
				       sizeof(err)));
		assert_int_equal(c->server_tls_mode, server_ok[i]);
	}
	const enum tls_mode client_ok[] = { TLS_DISABLE, TLS_ALLOW, TLS_REQUIRE };
	for (size_t i = 0; i < sizeof(client_ok) / sizeof(client_ok[0]); i++) {
		assert_true(config_set(c, "client_tls_sslmode", tls_mode_name(client_ok[i]), err,
				       sizeof(err)));
		assert_int_equal(c->client_tls_mode, client_ok[i]);
	}
	config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_quoted_value_escapes),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_find_route),
		cmocka_unit_test(test_route_redefined),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_error_stops_at_first),
		cmocka_unit_test(test_upstream_url),
		cmocka_unit_test(test_upstream_url_invalid),
		cmocka_unit_test(test_validate_errors),
		cmocka_unit_test(test_validate_fills_route_defaults),
		cmocka_unit_test(test_tls_mode_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
