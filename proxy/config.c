/* config — see config.h. */
#include "proxy/config.h"

#include "policies/engine.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (1 << 20)

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static bool errf(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return false;
}

struct config *config_new(void)
{
	struct config *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->refcount = 1;
	c->listen_addr = xstrdup("127.0.0.1");
	c->listen_port = 6432;
	c->client_tls_mode = TLS_DISABLE;
	c->server_tls_mode = TLS_PREFER;
	c->client_login_timeout = 60;
	c->server_connect_timeout = 15;
	c->cancel_wait_timeout = 10;
	c->shutdown_timeout = 30;
	c->max_client_conn = 1000;
	c->max_packet_size = 0x3fffffffu;
	c->log_level = LOG_LVL_INFO;
	c->environment = xstrdup("default");
	c->policy_budget = 1000000;
	c->policy_memory_mb = 64;
	c->policy_time_limit_ms = 1000;
	c->max_query_size = 64u << 20;
	c->rules = xstrdup("off");
	c->staging_environments = xstrdup("staging");
	c->gated_environments = xstrdup("production");
	c->lock_timeout = xstrdup("2s");
	c->statement_timeout = xstrdup("30min");
	c->small_table_rows = 10000;
	c->facts_cache_seconds = 5;
	c->retry_attempts = 8;
	c->lock_watch_after = 200;
	c->lock_poll_interval = 250;
	c->max_queue_wait = 1000;
	c->long_transaction_warn = 60;
	c->retry_budget = 120;
	c->facts_timeout = 2;
	return c;
}

static void route_free(struct route *r)
{
	if (r->server_ctx)
		SSL_CTX_free(r->server_ctx);
	free(r->name);
	free(r->host);
	free(r->dbname);
	free(r->environment);
	free(r->target);
	free(r->server_tls_ca_file);
	free(r);
}

struct config *config_ref(struct config *cfg)
{
	cfg->refcount++;
	return cfg;
}

void config_unref(struct config *c)
{
	if (!c || --c->refcount > 0)
		return;
	struct route *r = c->routes, *n;
	for (; r; r = n) {
		n = r->next;
		route_free(r);
	}
	if (c->fallback)
		route_free(c->fallback);
	if (c->client_ctx)
		SSL_CTX_free(c->client_ctx);
	free(c->listen_addr);
	free(c->unix_socket_dir);
	free(c->client_tls_cert_file);
	free(c->client_tls_key_file);
	free(c->server_tls_ca_file);
	free(c->logfile);
	free(c->environment);
	free(c->debug_inject_query);
	free(c->monitor_user);
	free(c->rules);
	free(c->staging_environments);
	free(c->gated_environments);
	free(c->ledger);
	free(c->audit_log);
	free(c->metrics_listen);
	free(c->lock_timeout);
	free(c->statement_timeout);
	free(c->rule_levels);
	free(c->lua_scripts_dir);
	if (c->monitor_password) {
		memset(c->monitor_password, 0, strlen(c->monitor_password));
		free(c->monitor_password);
	}
	for (int i = 0; i < c->npolicy_files; i++)
		free(c->policy_files[i]);
	free(c->policy_files);
	policy_engine_free(c->policy);
	free(c);
}

const char *tls_mode_name(enum tls_mode m)
{
	static const char *names[] = { "disable", "allow", "prefer", "require", "verify-ca",
				       "verify-full" };
	return names[m];
}

static bool parse_tls_mode(const char *v, enum tls_mode *out)
{
	for (int m = TLS_DISABLE; m <= TLS_VERIFY_FULL; m++)
		if (!strcmp(v, tls_mode_name(m))) {
			*out = m;
			return true;
		}
	return false;
}

static bool parse_int(const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

bool config_set(struct config *c, const char *key, const char *v, char *err, size_t errlen)
{
	long n;
	struct { const char *key; int *dst; long lo, hi; } ints[] = {
		{ "listen_port", &c->listen_port, 0, 65535 },
		{ "client_login_timeout", &c->client_login_timeout, 0, 86400 },
		{ "server_connect_timeout", &c->server_connect_timeout, 1, 3600 },
		{ "query_timeout", &c->query_timeout, 0, 604800 },
		{ "cancel_wait_timeout", &c->cancel_wait_timeout, 1, 3600 },
		{ "shutdown_timeout", &c->shutdown_timeout, 0, 86400 },
		{ "max_client_conn", &c->max_client_conn, 1, 1000000 },
		{ "facts_cache_seconds", &c->facts_cache_seconds, 0, 3600 },
		{ "facts_timeout", &c->facts_timeout, 1, 600 },
		{ "retry_attempts", &c->retry_attempts, 1, 100 },
		{ "retry_budget", &c->retry_budget, 1, 86400 },
		{ "long_transaction_warn", &c->long_transaction_warn, 0, 86400 },
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		if (strcmp(key, ints[i].key))
			continue;
		if (!parse_int(v, ints[i].lo, ints[i].hi, &n)) {
			snprintf(err, errlen, "invalid value for %s: \"%s\" (an integer from %ld to %ld)",
				 key, v, ints[i].lo, ints[i].hi);
			return false;
		}
		*ints[i].dst = (int)n;
		return true;
	}
	struct { const char *key; char **dst; } strs[] = {
		{ "listen_addr", &c->listen_addr },
		{ "unix_socket_dir", &c->unix_socket_dir },
		{ "client_tls_cert_file", &c->client_tls_cert_file },
		{ "client_tls_key_file", &c->client_tls_key_file },
		{ "server_tls_ca_file", &c->server_tls_ca_file },
		{ "logfile", &c->logfile },
		{ "environment", &c->environment },
		{ "debug_inject_query", &c->debug_inject_query },
		{ "monitor_user", &c->monitor_user },
		{ "rule_levels", &c->rule_levels },
		{ "staging_environments", &c->staging_environments },
		{ "gated_environments", &c->gated_environments },
		{ "ledger", &c->ledger },
		{ "audit_log", &c->audit_log },
		{ "metrics_listen", &c->metrics_listen },
		{ "lua_scripts_dir", &c->lua_scripts_dir },
		{ "monitor_password", &c->monitor_password },
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strcmp(key, strs[i].key))
			continue;
		set_str(strs[i].dst, v);
		return true;
	}
	if (!strcmp(key, "client_tls_sslmode")) {
		enum tls_mode m;
		if (!parse_tls_mode(v, &m) || (m != TLS_DISABLE && m != TLS_ALLOW && m != TLS_REQUIRE))
			return errf(err, errlen, "invalid client_tls_sslmode \"%s\" (disable, allow or require)%s", v, "");
		c->client_tls_mode = m;
		return true;
	}
	if (!strcmp(key, "server_tls_sslmode")) {
		enum tls_mode m;
		if (!parse_tls_mode(v, &m) || m == TLS_ALLOW)
			return errf(err, errlen, "invalid server_tls_sslmode \"%s\" (disable, prefer, require, verify-ca or verify-full)%s", v, "");
		c->server_tls_mode = m;
		return true;
	}
	if (!strcmp(key, "policy_files")) {
		for (int i = 0; i < c->npolicy_files; i++)
			free(c->policy_files[i]);
		free(c->policy_files);
		c->policy_files = NULL;
		c->npolicy_files = 0;
		char *list = xstrdup(v), *save = NULL;
		for (char *f = strtok_r(list, ", \t", &save); f; f = strtok_r(NULL, ", \t", &save)) {
			c->policy_files = realloc(c->policy_files, (c->npolicy_files + 1) * sizeof(char *));
			if (!c->policy_files)
				abort();
			c->policy_files[c->npolicy_files++] = xstrdup(f);
		}
		free(list);
		return true;
	}
	if (!strcmp(key, "rules")) {
		if (strcmp(v, "off") && strcmp(v, "none") && strcmp(v, "default") && strcmp(v, "strict"))
			return errf(err, errlen, "invalid rules \"%s\" (off, none, default or strict)%s", v, "");
		set_str(&c->rules, v);
		return true;
	}
	if (!strcmp(key, "lock_timeout") || !strcmp(key, "statement_timeout")) {
		if (policy_parse_duration(v) <= 0)
			return errf(err, errlen, "invalid %s \"%s\" (e.g. 2s, 500ms, 30min)", key, v);
		set_str(!strcmp(key, "lock_timeout") ? &c->lock_timeout : &c->statement_timeout, v);
		return true;
	}
	if (!strcmp(key, "lock_watch_after") || !strcmp(key, "lock_poll_interval") || !strcmp(key, "max_queue_wait")) {
		long ms = !strcmp(v, "off") ? 0 : policy_parse_duration(v);
		if (ms < 0 || ms > 3600000 || (ms < 10 && strcmp(key, "max_queue_wait")))
			return errf(err, errlen, "invalid %s \"%s\" (e.g. 200ms, 1s)", key, v);
		*(!strcmp(key, "lock_watch_after") ? &c->lock_watch_after :
		  !strcmp(key, "lock_poll_interval") ? &c->lock_poll_interval : &c->max_queue_wait) = (int)ms;
		return true;
	}
	if (!strcmp(key, "audit_dml")) {
		if (strcmp(v, "on") && strcmp(v, "off"))
			return errf(err, errlen, "invalid audit_dml \"%s\" (on or off)%s", v, "");
		c->audit_dml = !strcmp(v, "on");
		return true;
	}
	if (!strcmp(key, "unparsed_statements")) {
		if (strcmp(v, "deny") && strcmp(v, "pass"))
			return errf(err, errlen, "invalid unparsed_statements \"%s\" (deny or pass)%s", v, "");
		c->unparsed_pass = !strcmp(v, "pass");
		return true;
	}
	if (!strcmp(key, "audit_failure")) {
		if (strcmp(v, "closed") && strcmp(v, "open"))
			return errf(err, errlen, "invalid audit_failure \"%s\" (closed or open)%s", v, "");
		c->audit_fail_open = !strcmp(v, "open");
		return true;
	}
	if (!strcmp(key, "contract_window")) {
		long ms = !strcmp(v, "off") || !strcmp(v, "0") ? 0 : policy_parse_duration(v);
		if (ms < 0)
			return errf(err, errlen, "invalid contract_window \"%s\" (off, or e.g. 14d, 36h)%s", v, "");
		c->contract_window = ms / 1000;
		return true;
	}
	if (!strcmp(key, "small_table_rows")) {
		if (!parse_int(v, 0, 2000000000L, &n))
			return errf(err, errlen, "invalid small_table_rows \"%s\"%s", v, "");
		c->small_table_rows = n;
		return true;
	}
	if (!strcmp(key, "policy_failure")) {
		if (strcmp(v, "closed") && strcmp(v, "open"))
			return errf(err, errlen, "invalid policy_failure \"%s\" (closed or open)%s", v, "");
		c->policy_fail_open = !strcmp(v, "open");
		return true;
	}
	if (!strcmp(key, "policy_instruction_budget")) {
		if (!parse_int(v, 1000, 1000000000L, &n))
			return errf(err, errlen, "invalid policy_instruction_budget \"%s\" (1000 to 1000000000)%s", v, "");
		c->policy_budget = n;
		return true;
	}
	if (!strcmp(key, "policy_time_limit")) {
		long ms = policy_parse_duration(v);
		if (ms < 10 || ms > 3600000)
			return errf(err, errlen, "invalid policy_time_limit \"%s\" (10ms to 1h, e.g. 1s, 500ms)%s", v, "");
		c->policy_time_limit_ms = ms;
		return true;
	}
	if (!strcmp(key, "policy_memory_limit")) {
		if (!parse_int(v, 1, 4096, &n))
			return errf(err, errlen, "invalid policy_memory_limit \"%s\" (megabytes, 1 to 4096)%s", v, "");
		c->policy_memory_mb = n;
		return true;
	}
	if (!strcmp(key, "max_query_size")) {
		if (!parse_int(v, 10000, 0x3fffffffL, &n))
			return errf(err, errlen, "invalid max_query_size \"%s\" (bytes, from 10000 to 1073741823)%s", v, "");
		c->max_query_size = (uint32_t)n;
		return true;
	}
	if (!strcmp(key, "max_packet_size")) {
		if (!parse_int(v, 10000, 0x3fffffffL, &n))
			return errf(err, errlen, "invalid max_packet_size \"%s\" (bytes, from 10000 to 1073741823)%s", v, "");
		c->max_packet_size = (uint32_t)n;
		return true;
	}
	if (!strcmp(key, "log_level")) {
		if (!log_parse_level(v, &c->log_level))
			return errf(err, errlen, "invalid log_level \"%s\" (error, warning, info or debug)%s", v, "");
		return true;
	}
	return errf(err, errlen, "unknown setting \"%s\"%s", key, "");
}

/* Split "k=v k2='quoted v'" (libpq conninfo style) and call fn for each pair. */
static bool parse_kv_list(const char *spec, bool (*fn)(void *, const char *, const char *, char *, size_t),
			  void *arg, char *err, size_t errlen)
{
	const char *p = spec;
	char key[64], val[1024];
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return true;
		size_t k = 0;
		while (*p && *p != '=' && !isspace((unsigned char)*p)) {
			if (k + 1 >= sizeof(key))
				return errf(err, errlen, "key too long in \"%s\"%s", spec, "");
			key[k++] = *p++;
		}
		key[k] = 0;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			return errf(err, errlen, "missing \"=\" after \"%s\"%s", key, "");
		p++;
		while (isspace((unsigned char)*p))
			p++;
		size_t v = 0;
		if (*p == '\'') {
			p++;
			while (*p && *p != '\'') {
				if (*p == '\\' && p[1])
					p++;
				if (v + 1 >= sizeof(val))
					return errf(err, errlen, "value too long for \"%s\"%s", key, "");
				val[v++] = *p++;
			}
			if (*p != '\'')
				return errf(err, errlen, "unterminated quoted value for \"%s\"%s", key, "");
			p++;
		} else {
			while (*p && !isspace((unsigned char)*p)) {
				if (v + 1 >= sizeof(val))
					return errf(err, errlen, "value too long for \"%s\"%s", key, "");
				val[v++] = *p++;
			}
		}
		val[v] = 0;
		if (!fn(arg, key, val, err, errlen))
			return false;
	}
}

static bool route_kv(void *arg, const char *k, const char *v, char *err, size_t errlen)
{
	struct route *r = arg;
	long n;
	if (!strcmp(k, "host"))
		set_str(&r->host, v);
	else if (!strcmp(k, "port")) {
		if (!parse_int(v, 1, 65535, &n))
			return errf(err, errlen, "invalid port \"%s\"%s", v, "");
		r->port = (int)n;
	} else if (!strcmp(k, "dbname"))
		set_str(&r->dbname, v);
	else if (!strcmp(k, "environment"))
		set_str(&r->environment, v);
	else if (!strcmp(k, "target"))
		set_str(&r->target, v);
	else if (!strcmp(k, "server_tls_sslmode")) {
		if (!parse_tls_mode(v, &r->server_tls_mode) || r->server_tls_mode == TLS_ALLOW)
			return errf(err, errlen, "invalid server_tls_sslmode \"%s\"%s", v, "");
	} else if (!strcmp(k, "server_tls_ca_file"))
		set_str(&r->server_tls_ca_file, v);
	else
		return errf(err, errlen, "unknown route option \"%s\" (host, port, dbname, environment, target, server_tls_sslmode, server_tls_ca_file)%s", k, "");
	return true;
}

static struct route *route_new(struct config *c, const char *name)
{
	struct route *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->name = xstrdup(name);
	r->port = 5432;
	r->server_tls_mode = (enum tls_mode)-1; /* unset: inherit the [ddlguard] default */
	return r;
}

static void route_install(struct config *c, struct route *r)
{
	if (!strcmp(r->name, "*")) {
		if (c->fallback)
			route_free(c->fallback);
		c->fallback = r;
		return;
	}
	struct route **pp = &c->routes;
	for (; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, r->name)) {
			r->next = (*pp)->next;
			route_free(*pp);
			*pp = r;
			return;
		}
	}
	*pp = r;
}

bool config_add_route(struct config *c, const char *name, const char *spec, char *err, size_t errlen)
{
	struct route *r = route_new(c, name);
	char e[512];
	if (!parse_kv_list(spec, route_kv, r, e, sizeof(e))) {
		snprintf(err, errlen, "database \"%s\": %s", name, e);
		route_free(r);
		return false;
	}
	if (!r->host)
		r->host = xstrdup("127.0.0.1");
	route_install(c, r);
	return true;
}

bool config_set_upstream_url(struct config *c, const char *url, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		snprintf(err, errlen, "invalid --upstream \"%s\": %s", url, perr ? perr : "cannot parse");
		PQfreemem(perr);
		return false;
	}
	struct route *r = route_new(c, "*");
	bool ok = true;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "host")) {
			if (strchr(o->val, ',')) {
				snprintf(err, errlen, "--upstream: several hosts are not supported (\"%s\")", o->val);
				ok = false;
			}
			set_str(&r->host, o->val);
		} else if (!strcmp(o->keyword, "hostaddr"))
			set_str(&r->host, o->val);
		else if (!strcmp(o->keyword, "port")) {
			long n = 0;
			if (!parse_int(o->val, 1, 65535, &n)) {
				snprintf(err, errlen, "--upstream: invalid port \"%s\"", o->val);
				ok = false;
			}
			r->port = (int)n;
		} else if (!strcmp(o->keyword, "sslmode")) {
			enum tls_mode m = TLS_PREFER;
			if (!parse_tls_mode(o->val, &m)) {
				snprintf(err, errlen, "--upstream: invalid sslmode \"%s\"", o->val);
				ok = false;
			}
			/* ddlguard does not retry in plaintext after a TLS refusal: "allow" acts as prefer. */
			r->server_tls_mode = m == TLS_ALLOW ? TLS_PREFER : m;
		} else if (!strcmp(o->keyword, "sslrootcert"))
			set_str(&r->server_tls_ca_file, o->val);
	}
	PQconninfoFree(opts);
	if (!ok) {
		route_free(r);
		return false;
	}
	if (!r->host)
		r->host = xstrdup("127.0.0.1");
	route_install(c, r);
	return true;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

bool config_parse_ini(struct config *c, const char *text, const char *origin, char *err, size_t errlen)
{
	char *copy = xstrdup(text), *save = NULL;
	enum { SEC_NONE, SEC_MAIN, SEC_DB } sec = SEC_NONE;
	int lineno = 0;
	bool ok = true;
	char e[512];
	/* strtok_r would merge empty lines and lose line numbers: walk by hand. */
	for (char *line = copy; line && ok; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = 0;
		lineno++;
		char *s = trim(line);
		if (!*s || *s == ';' || *s == '#')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close || close[1]) {
				snprintf(err, errlen, "%s:%d: malformed section header", origin, lineno);
				ok = false;
				break;
			}
			*close = 0;
			char *name = trim(s + 1);
			if (!strcmp(name, "ddlguard"))
				sec = SEC_MAIN;
			else if (!strcmp(name, "databases"))
				sec = SEC_DB;
			else {
				snprintf(err, errlen, "%s:%d: unknown section [%s] (expected [ddlguard] or [databases])",
					 origin, lineno, name);
				ok = false;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected \"key = value\"", origin, lineno);
			ok = false;
			break;
		}
		*eq = 0;
		char *key = trim(s), *val = trim(eq + 1);
		/* Allow trailing "; comment" after a value, as PgBouncer does, when it is set off by space. */
		for (char *q = val; *q; q++)
			if ((*q == ';' || *q == '#') && (q == val || isspace((unsigned char)q[-1]))) {
				*q = 0;
				val = trim(val);
				break;
			}
		if (sec == SEC_NONE) {
			snprintf(err, errlen, "%s:%d: setting \"%s\" outside of a section", origin, lineno, key);
			ok = false;
		} else if (sec == SEC_MAIN) {
			if (!config_set(c, key, val, e, sizeof(e))) {
				snprintf(err, errlen, "%s:%d: %s", origin, lineno, e);
				ok = false;
			}
		} else if (!config_add_route(c, key, val, e, sizeof(e))) {
			snprintf(err, errlen, "%s:%d: %s", origin, lineno, e);
			ok = false;
		}
	}
	free(copy);
	return ok;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf)
		abort();
	size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, fp);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad || n > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "cannot read config file \"%s\": %s", path,
			 bad ? "read error" : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

bool config_validate(struct config *c, char *err, size_t errlen)
{
	if (!c->routes && !c->fallback) {
		snprintf(err, errlen, "no upstream: give --upstream postgres://… or a [databases] section");
		return false;
	}
	if (!*c->listen_addr && !(c->unix_socket_dir && *c->unix_socket_dir)) {
		snprintf(err, errlen, "nothing to listen on: set listen_addr or unix_socket_dir");
		return false;
	}
	if (c->client_tls_mode != TLS_DISABLE &&
	    (!c->client_tls_cert_file || !*c->client_tls_cert_file ||
	     !c->client_tls_key_file || !*c->client_tls_key_file)) {
		snprintf(err, errlen, "client_tls_sslmode = %s needs client_tls_cert_file and client_tls_key_file",
			 tls_mode_name(c->client_tls_mode));
		return false;
	}
	/* Fill route defaults from [ddlguard]. */
	struct route *all[2] = { c->routes, c->fallback };
	for (int i = 0; i < 2; i++) {
		for (struct route *r = all[i]; r; r = (i == 0 ? r->next : NULL)) {
			if ((int)r->server_tls_mode == -1)
				r->server_tls_mode = c->server_tls_mode;
			if (!r->server_tls_ca_file && c->server_tls_ca_file && *c->server_tls_ca_file)
				r->server_tls_ca_file = xstrdup(c->server_tls_ca_file);
			if (!r->environment)
				r->environment = xstrdup(c->environment);
			if (r->server_tls_mode >= TLS_VERIFY_CA && !r->server_tls_ca_file) {
				snprintf(err, errlen, "database \"%s\": server_tls_sslmode = %s needs server_tls_ca_file",
					 r->name, tls_mode_name(r->server_tls_mode));
				return false;
			}
			if (r->host[0] == '/' && r->server_tls_mode >= TLS_REQUIRE) {
				snprintf(err, errlen, "database \"%s\": TLS cannot be required over a unix socket (%s)",
					 r->name, r->host);
				return false;
			}
		}
	}
	return true;
}

struct config *config_load(const struct cli_opts *o, char *err, size_t errlen)
{
	struct config *c = config_new();
	char e[768];
	if (o->config_file) {
		char *text = read_file(o->config_file, e, sizeof(e));
		if (!text || !config_parse_ini(c, text, o->config_file, e, sizeof(e))) {
			snprintf(err, errlen, "%s", e);
			free(text);
			config_unref(c);
			return NULL;
		}
		free(text);
	}
	if (o->upstream && !config_set_upstream_url(c, o->upstream, e, sizeof(e)))
		goto fail;
	if (o->listen) {
		const char *colon = strrchr(o->listen, ':');
		long port;
		if (!colon || !parse_int(colon + 1, 0, 65535, &port)) {
			snprintf(e, sizeof(e), "invalid --listen \"%s\" (expected ADDR:PORT)", o->listen);
			goto fail;
		}
		char addr[256];
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - o->listen), o->listen);
		/* [::1]:6432 → ::1 */
		if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') {
			memmove(addr, addr + 1, strlen(addr));
			addr[strlen(addr) - 1] = 0;
		}
		set_str(&c->listen_addr, addr);
		c->listen_port = (int)port;
	}
	if (o->environment) {
		set_str(&c->environment, o->environment);
		/* The flag names the environment of every route that does not set its own. */
	}
	if (o->unix_socket_dir)
		set_str(&c->unix_socket_dir, o->unix_socket_dir);
	if (o->rules) {
		if (strcmp(o->rules, "off") && strcmp(o->rules, "none") && strcmp(o->rules, "default") &&
		    strcmp(o->rules, "strict")) {
			snprintf(e, sizeof(e), "invalid --rules \"%s\" (off, none, default or strict)", o->rules);
			goto fail;
		}
		set_str(&c->rules, o->rules);
	}
	for (int i = 0; i < o->verbose && c->log_level < LOG_LVL_DEBUG; i++)
		c->log_level++;
	if (!config_validate(c, e, sizeof(e)) || !config_load_policies(c, e, sizeof(e)))
		goto fail;
	return c;
fail:
	snprintf(err, errlen, "%s", e);
	config_unref(c);
	return NULL;
}

const char *config_library_dir(const struct config *c)
{
	static char buf[1024];
	if (c->lua_scripts_dir && *c->lua_scripts_dir)
		return c->lua_scripts_dir;
	snprintf(buf, sizeof(buf), "%s/library.lua", DDLG_PKGDATADIR);
	FILE *fp = fopen(buf, "r");
	if (fp) {
		fclose(fp);
		return DDLG_PKGDATADIR;
	}
	/* Not installed: run from the build tree with the source tree's library. */
	return DDLG_SRCDIR "/lua-scripts";
}

bool config_load_policies(struct config *c, char *err, size_t errlen)
{
	bool library = strcmp(c->rules, "off") != 0;
	if (!c->npolicy_files && !library)
		return true;
	struct policy_options o = {
		.files = c->policy_files,
		.nfiles = c->npolicy_files,
		.fail_open = c->policy_fail_open,
		.budget = c->policy_budget,
		.time_limit_ms = c->policy_time_limit_ms,
		.mem_limit = (size_t)c->policy_memory_mb << 20,
		.library_dir = library ? config_library_dir(c) : NULL,
		.profile = library ? c->rules : NULL,
		.rule_levels = c->rule_levels,
		.small_table_rows = c->small_table_rows,
		.lock_timeout = c->lock_timeout,
		.statement_timeout = c->statement_timeout,
	};
	char e[600];
	c->policy = policy_engine_load(&o, e, sizeof(e));
	if (!c->policy) {
		snprintf(err, errlen, "cannot load policies: %s", e);
		return false;
	}
	return true;
}

struct route *config_find_route(struct config *c, const char *dbname)
{
	for (struct route *r = c->routes; r; r = r->next)
		if (!strcmp(r->name, dbname))
			return r;
	return c->fallback;
}
