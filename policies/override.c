/* override — see override.h. */
#include "policies/override.h"

#include <ctype.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <string.h>

#define MARK "ddlguard:allow"

/* Does the comment body (after MARK) name `rule`? Fills reason. */
static bool names_rule(const char *p, const char *end, const char *rule, char *reason, size_t rlen)
{
	bool found = false;
	size_t rl = strlen(rule);
	snprintf(reason, rlen, "no reason given");
	while (p < end) {
		while (p < end && (isspace((unsigned char)*p) || *p == ','))
			p++;
		if (end - p >= 7 && !strncmp(p, "reason=", 7)) {
			p += 7;
			char q = (p < end && (*p == '"' || *p == '\'')) ? *p++ : 0;
			const char *r = p;
			while (p < end && (q ? *p != q : !isspace((unsigned char)*p)))
				p++;
			if (p > r)
				snprintf(reason, rlen, "%.*s", (int)(p - r), r);
			if (q && p < end)
				p++;
			continue;
		}
		const char *w = p;
		while (p < end && !isspace((unsigned char)*p) && *p != ',')
			p++;
		if ((size_t)(p - w) == rl && !strncmp(w, rule, rl))
			found = true;
		if (p == w)
			p++;
	}
	return found;
}

bool stmt_find_override(const char *sql, size_t start, size_t end, const char *rule,
			char *reason, size_t reasonlen)
{
	if (!rule || !strstr(sql, MARK))
		return false;
	/* Comments on the rest of the statement's last line count too. */
	size_t limit = end;
	while (sql[limit] && sql[limit] != '\n')
		limit++;
	PgQueryScanResult res = pg_query_scan(sql);
	if (res.error) {
		pg_query_free_scan_result(res);
		return false;
	}
	PgQuery__ScanResult *sr = pg_query__scan_result__unpack(NULL, res.pbuf.len, (const uint8_t *)res.pbuf.data);
	bool found = false;
	for (size_t i = 0; sr && !found && i < sr->n_tokens; i++) {
		PgQuery__ScanToken *t = sr->tokens[i];
		if (t->token != PG_QUERY__TOKEN__SQL_COMMENT && t->token != PG_QUERY__TOKEN__C_COMMENT)
			continue;
		if ((size_t)t->start < start || (size_t)t->start >= limit)
			continue;
		const char *c = sql + t->start, *cend = sql + t->end;
		const char *m = NULL;
		for (const char *p = c; p + strlen(MARK) <= cend; p++)
			if (!strncmp(p, MARK, strlen(MARK))) {
				m = p;
				break;
			}
		if (!m)
			continue;
		if (t->token == PG_QUERY__TOKEN__C_COMMENT && cend - 2 >= m + strlen(MARK))
			cend -= 2;  /* drop the closing star-slash */
		found = names_rule(m + strlen(MARK), cend, rule, reason, reasonlen);
	}
	if (sr)
		pg_query__scan_result__free_unpacked(sr, NULL);
	pg_query_free_scan_result(res);
	return found;
}
