/*
 * check — `ddlguard check [--policy FILE…] [-c CONFIG] [--environment NAME]
 *          [--format text|json|github] FILE…|-`
 *
 * Runs the same analysis and the same policies as the proxy over migration files, with no
 * server: each file is one session, its statements run in order, BEGIN/COMMIT/ROLLBACK
 * move the simulated transaction status, and objects created earlier count as created in
 * this session, as they would through the proxy. The decision for a statement comes from
 * policy_decide(), the function the proxy uses. Exit status: 0 no deny, 1 a deny (or a
 * file that does not parse), 2 usage or load errors.
 */
#include "proxy/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "policies/engine.h"
#include "proxy/facts.h"
#include "policies/statement.h"

#define CHECK_FILE_MAX (64 << 20)

enum fmt { FMT_TEXT, FMT_JSON, FMT_GITHUB };

static char *read_input(const char *path, char *err, size_t errlen)
{
	FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!fp) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			abort();
		size_t n = fread(buf + len, 1, cap - len - 1, fp);
		len += n;
		if (n == 0)
			break;
		if (len + 1 >= cap) {
			if (cap >= CHECK_FILE_MAX) {
				snprintf(err, errlen, "%s is larger than 64 MiB", path);
				free(buf);
				if (fp != stdin)
					fclose(fp);
				return NULL;
			}
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	if (fp != stdin)
		fclose(fp);
	buf[len] = 0;
	return buf;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* GitHub annotations: escape %, CR and LF in the message. */
static void gh_str(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '%')
			fputs("%25", out);
		else if (*s == '\n')
			fputs("%0A", out);
		else if (*s == '\r')
			fputs("%0D", out);
		else
			fputc(*s, out);
	}
}

struct report {
	enum fmt fmt;
	FILE *out;
	int denies, warnings, findings;
};

static void emit(struct report *r, const char *file, int line, int col, const char *level,
		 const char *rule, const char *message, const char *hint, const char *tag)
{
	if (r->fmt == FMT_TEXT) {
		fprintf(r->out, "%s:%d:%d: %s %s: %s\n", file, line, col, level, rule ? rule : "-", message);
		if (hint)
			fprintf(r->out, "    hint: %s\n", hint);
	} else if (r->fmt == FMT_GITHUB) {
		fprintf(r->out, "::%s file=%s,line=%d,col=%d,title=ddlguard %s::",
			!strcmp(level, "deny") ? "error" : "warning", file, line, col, rule ? rule : "policy");
		gh_str(r->out, message);
		if (hint) {
			fputs("%0A", r->out);
			gh_str(r->out, hint);
		}
		fputc('\n', r->out);
	} else {
		fprintf(r->out, "%s\n  {\"file\": ", r->findings ? "," : "");
		json_str(r->out, file);
		fprintf(r->out, ", \"line\": %d, \"column\": %d, \"decision\": \"%s\", \"rule\": ", line, col, level);
		json_str(r->out, rule ? rule : "");
		fputs(", \"statement\": ", r->out);
		json_str(r->out, tag ? tag : "");
		fputs(", \"message\": ", r->out);
		json_str(r->out, message);
		fputs(", \"hint\": ", r->out);
		if (hint)
			json_str(r->out, hint);
		else
			fputs("null", r->out);
		fputc('}', r->out);
	}
	r->findings++;
}

static void strv_push(char ***v, int *n, const char *s)
{
	*v = realloc(*v, (*n + 1) * sizeof(char *));
	if (!*v || !((*v)[*n] = strdup(s)))
		abort();
	(*n)++;
}

/* facts() offline: asked of the --upstream server, one relation at a time, cached. */
struct offline_facts {
	PGconn *pg;
	char *names[256];
	struct policy_facts facts[256];
	bool ok[256];
	int n;
};

static bool offline_lookup(void *arg, const char *name, struct policy_facts *out)
{
	struct offline_facts *of = arg;
	if (!of->pg)
		return false;
	for (int i = 0; i < of->n; i++)
		if (!strcmp(of->names[i], name)) {
			*out = of->facts[i];
			return of->ok[i];
		}
	bool ok = facts_fetch_blocking(of->pg, name, out);
	if (of->n < 256) {
		of->names[of->n] = strdup(name);
		of->facts[of->n] = *out;
		of->ok[of->n] = ok && of->names[of->n];
		of->n++;
	}
	return ok;
}

static void check_text(struct policy_engine *e, const char *file, const char *sql,
		       const char *environment, struct report *r, struct offline_facts *of)
{
	struct stmt_list l;
	if (!stmt_analyze(sql, &l)) {
		emit(r, file, 1, 1, "deny", "ddlguard", l.too_deep ? "statement is nested too deeply to analyse" :
			"out of memory", NULL, NULL);
		r->denies++;
		return;
	}
	if (l.parse_error) {
		emit(r, file, l.error_line > 0 ? l.error_line : 1, l.error_column > 0 ? l.error_column : 1,
		     "deny", "parse-error", l.error ? l.error : "syntax error", NULL, NULL);
		r->denies++;
		stmt_list_free(&l);
		return;
	}
	const char *user = getenv("USER");
	struct policy_session ps = {
		.user = user ? user : "", .database = "", .application_name = "ddlguard check",
		.client_addr = "local", .environment = environment, .tx_status = 'I',
		.facts = offline_lookup, .facts_arg = of,
	};
	/* Each file is a session of its own; a rollback gives its lists a new key. */
	static uint64_t last_key;
	ps.cache_key = ++last_key;
	struct policy_tx_stmt *tx = NULL;
	char **created = NULL;
	int ntx = 0, ncreated = 0, ncommitted = 0;
	bool wants_dml = policy_engine_wants_dml(e);
	bool writes = policy_engine_wants_writes(e);
	for (int i = 0; i < l.n; i++) {
		const struct stmt_info *st = &l.items[i];
		switch (st->txctl) {
		case STMT_TX_BEGIN:
			ps.tx_status = 'T';
			continue;
		case STMT_TX_COMMIT:
		case STMT_TX_ROLLBACK:
			if (st->txctl == STMT_TX_COMMIT)
				ncommitted = ncreated;
			else if (ncreated > ncommitted) {
				while (ncreated > ncommitted)
					free(created[--ncreated]);
				ps.cache_key = ++last_key;
			}
			for (int k = 0; k < ntx; k++) {
				free(tx[k].tag);
				free(tx[k].text);
				free(tx[k].strict_id);
			}
			ntx = 0;
			ps.tx_status = 'I';
			continue;
		default:
			break;
		}
		if (!stmt_guarded(st) && !wants_dml && !(writes && stmt_is_write(st)))
			continue;
		ps.tx = tx;
		ps.ntx = ntx;
		ps.created = created;
		ps.ncreated = ncreated;
		struct verdict v;
		verdict_init(&v);
		policy_decide(e, sql, st, &ps, &v);
		if (v.kind == VERDICT_DENY) {
			emit(r, file, st->line, st->column, "deny", v.rule, v.message, v.hint, st->tag);
			r->denies++;
		}
		for (int w = 0; w < v.nwarnings; w++) {
			emit(r, file, st->line, st->column, "warn", v.warnings[w].rule, v.warnings[w].message,
			     v.warnings[w].hint, st->tag);
			r->warnings++;
		}
		if (v.lock_timeout_ms || v.statement_timeout_ms) {
			char m[160];
			snprintf(m, sizeof(m), "runs with lock_timeout %d ms, statement_timeout %d ms through the proxy",
				 v.lock_timeout_ms, v.statement_timeout_ms);
			if (r->fmt != FMT_GITHUB)
				emit(r, file, st->line, st->column, r->fmt == FMT_TEXT ? "info" : "set", "set", m, NULL, st->tag);
		}
		verdict_free(&v);
		/* Through the proxy a denied statement fails and nothing after it runs in the
		 * same Query; offline, keep going to report every finding of the file. */
		if (st->ddl) {
			tx = realloc(tx, (ntx + 1) * sizeof(*tx));
			if (!tx)
				abort();
			memset(&tx[ntx], 0, sizeof(tx[ntx]));
			tx[ntx].seq = (unsigned long)i + 1;
			tx[ntx].tag = strdup(st->tag);
			tx[ntx].text = strdup(st->text);
			tx[ntx].strict_id = strdup(st->strict_id_hex);
			ntx++;
			for (int k = 0; k < st->nobjects; k++) {
				if (!st->objects[k].created)
					continue;
				char name[512];
				snprintf(name, sizeof(name), "%s%s%s", st->objects[k].schema ? st->objects[k].schema : "",
					 st->objects[k].schema ? "." : "", st->objects[k].name);
				strv_push(&created, &ncreated, name);
			}
			if (ps.tx_status == 'I') {
				/* Autocommit: the statement is its own transaction. */
				ncommitted = ncreated;
				for (int k = 0; k < ntx; k++) {
					free(tx[k].tag);
					free(tx[k].text);
					free(tx[k].strict_id);
				}
				ntx = 0;
			}
		}
	}
	/* The end of the file is the end of the migration: rules that judge the whole of it. */
	ps.tx = tx;
	ps.ntx = ntx;
	ps.created = created;
	ps.ncreated = ncreated;
	struct verdict endv;
	verdict_init(&endv);
	policy_check_end(e, &ps, &endv);
	int last_line = 1;
	for (const char *c = sql; *c; c++)
		if (*c == '\n' && c[1])
			last_line++;
	if (endv.kind == VERDICT_DENY) {
		emit(r, file, last_line, 1, "deny", endv.rule, endv.message, endv.hint, NULL);
		r->denies++;
	}
	for (int w = 0; w < endv.nwarnings; w++) {
		emit(r, file, last_line, 1, "warn", endv.warnings[w].rule, endv.warnings[w].message,
		     endv.warnings[w].hint, NULL);
		r->warnings++;
	}
	verdict_free(&endv);
	for (int k = 0; k < ntx; k++) {
		free(tx[k].tag);
		free(tx[k].text);
		free(tx[k].strict_id);
	}
	free(tx);
	for (int k = 0; k < ncreated; k++)
		free(created[k]);
	free(created);
	stmt_list_free(&l);
}

static void usage(FILE *fp)
{
	fprintf(fp,
"Usage: ddlguard check [OPTIONS] FILE…   (FILE - reads standard input)\n"
"  -p, --policy FILE        a policy file (repeatable; default: policy_files of -c)\n"
"  -c, --config FILE        take policy_files, policy_failure and limits from this file\n"
"  -e, --environment NAME   the environment policies see (default \"default\")\n"
"  -f, --format FMT         text (default), json or github (workflow annotations)\n"
"  -u, --upstream URL       fetch live facts (rows, size, lock holders) from this server\n"
"      --rules PROFILE      the shipped rule library: default, strict, none (only --rule-level)\n"
"      --rule-level ID:LEVEL  set a rule to deny, warn or off (repeatable; ENV/ID:LEVEL per environment)\n"
"      --lua-scripts DIR    the rule library's directory (default: the installed one)\n"
"Exit status: 0 nothing denied, 1 a statement denied or a file that does not parse,\n"
"2 a usage error or a policy that does not load.\n");
}

int check_main(int argc, char **argv)
{
	char *files[64];
	int nfiles = 0;
	const char *config_file = NULL, *environment = "default", *upstream = NULL;
	const char *profile = NULL, *scripts = NULL;
	char levels[4096] = "";
	enum fmt fmt = FMT_TEXT;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		bool takes = !strcmp(a, "-p") || !strcmp(a, "--policy") || !strcmp(a, "-c") ||
			     !strcmp(a, "--config") || !strcmp(a, "-e") || !strcmp(a, "--environment") ||
			     !strcmp(a, "-f") || !strcmp(a, "--format") || !strcmp(a, "-u") ||
			     !strcmp(a, "--upstream") || !strcmp(a, "--rules") || !strcmp(a, "--rule-level") ||
			     !strcmp(a, "--lua-scripts");
		if (!takes) {
			if (a[0] == '-' && a[1]) {
				fprintf(stderr, "ddlguard check: unknown option %s\n", a);
				usage(stderr);
				return 2;
			}
			break;
		}
		if (!val) {
			fprintf(stderr, "ddlguard check: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--rules")) {
			profile = val;
			continue;
		}
		if (!strcmp(a, "--lua-scripts")) {
			scripts = val;
			continue;
		}
		if (!strcmp(a, "--rule-level")) {
			size_t l = strlen(levels);
			snprintf(levels + l, sizeof(levels) - l, "%s%s", l ? ", " : "", val);
			continue;
		}
		if (a[1] == 'p' || !strcmp(a, "--policy")) {
			if (nfiles >= 64) {
				fprintf(stderr, "ddlguard check: at most 64 policy files\n");
				return 2;
			}
			files[nfiles++] = (char *)val;
		} else if (a[1] == 'c' || !strcmp(a, "--config"))
			config_file = val;
		else if (a[1] == 'e' || !strcmp(a, "--environment"))
			environment = val;
		else if (a[1] == 'u' || !strcmp(a, "--upstream"))
			upstream = val;
		else if (!strcmp(val, "text"))
			fmt = FMT_TEXT;
		else if (!strcmp(val, "json"))
			fmt = FMT_JSON;
		else if (!strcmp(val, "github"))
			fmt = FMT_GITHUB;
		else {
			fprintf(stderr, "ddlguard check: unknown format \"%s\" (text, json or github)\n", val);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "ddlguard check: no migration files given\n");
		usage(stderr);
		return 2;
	}
	struct policy_options o = { .files = files, .nfiles = nfiles, .budget = 1000000, .mem_limit = 64u << 20,
				    .small_table_rows = 10000 };
	struct config *cfg = NULL;
	char err[1024];
	if (config_file) {
		/* Only the policy settings are needed: parse without requiring routes. */
		cfg = config_new();
		char *text = NULL;
		FILE *fp = fopen(config_file, "r");
		if (fp) {
			text = calloc(1, 1 << 20);
			if (text && fread(text, 1, (1 << 20) - 1, fp) == 0 && ferror(fp)) {
				free(text);
				text = NULL;
			}
			fclose(fp);
		}
		if (!text || !config_parse_ini(cfg, text, config_file, err, sizeof(err))) {
			fprintf(stderr, "ddlguard check: %s\n", text ? err : "cannot read the config file");
			free(text);
			config_unref(cfg);
			return 2;
		}
		free(text);
		if (!nfiles) {
			o.files = cfg->policy_files;
			o.nfiles = cfg->npolicy_files;
		}
		o.fail_open = cfg->policy_fail_open;
		o.budget = cfg->policy_budget;
		o.time_limit_ms = cfg->policy_time_limit_ms;
		o.mem_limit = (size_t)cfg->policy_memory_mb << 20;
		o.small_table_rows = cfg->small_table_rows;
		o.lock_timeout = cfg->lock_timeout;
		o.statement_timeout = cfg->statement_timeout;
		if (strcmp(cfg->rules, "off")) {
			o.profile = cfg->rules;
			o.rule_levels = cfg->rule_levels;
			o.library_dir = config_library_dir(cfg);
		}
	}
	if (profile) {
		o.profile = strcmp(profile, "off") ? profile : NULL;
		if (strcmp(profile, "off") && strcmp(profile, "none") && strcmp(profile, "default") && strcmp(profile, "strict")) {
			fprintf(stderr, "ddlguard check: --rules takes off, none, default or strict\n");
			config_unref(cfg);
			return 2;
		}
	}
	if (o.profile && !o.library_dir) {
		struct config *tmp = config_new();
		static char dir[1024];
		snprintf(dir, sizeof(dir), "%s", config_library_dir(tmp));
		config_unref(tmp);
		o.library_dir = dir;
	}
	if (scripts)
		o.library_dir = scripts;
	if (levels[0])
		o.rule_levels = levels;
	if (!o.nfiles && !o.profile) {
		fprintf(stderr, "ddlguard check: no policies: give --policy FILE, --rules PROFILE, or -c CONFIG\n");
		config_unref(cfg);
		return 2;
	}
	struct policy_engine *e = policy_engine_load(&o, err, sizeof(err));
	if (!e) {
		fprintf(stderr, "ddlguard check: %s\n", err);
		config_unref(cfg);
		return 2;
	}
	struct offline_facts of = { 0 };
	if (upstream) {
		of.pg = PQconnectdb(upstream);
		if (PQstatus(of.pg) != CONNECTION_OK) {
			fprintf(stderr, "ddlguard check: cannot connect to --upstream: %s", PQerrorMessage(of.pg));
			PQfinish(of.pg);
			policy_engine_free(e);
			config_unref(cfg);
			return 2;
		}
	}
	struct report r = { .fmt = fmt, .out = stdout };
	if (fmt == FMT_JSON)
		fputs("[", stdout);
	int status = 0;
	for (; i < argc; i++) {
		char *sql = read_input(argv[i], err, sizeof(err));
		if (!sql) {
			fprintf(stderr, "ddlguard check: %s\n", err);
			status = 2;
			continue;
		}
		check_text(e, strcmp(argv[i], "-") ? argv[i] : "<stdin>", sql, environment, &r, &of);
		free(sql);
	}
	if (fmt == FMT_JSON)
		fputs("\n]\n", stdout);
	else if (fmt == FMT_TEXT)
		fprintf(stdout, "%d denied, %d warnings\n", r.denies, r.warnings);
	policy_engine_free(e);
	config_unref(cfg);
	if (of.pg)
		PQfinish(of.pg);
	for (int k = 0; k < of.n; k++)
		free(of.names[k]);
	if (status)
		return status;
	return r.denies ? 1 : 0;
}
