/*
 * override — inline overrides written in SQL comments by the migration's author:
 *   -- ddlguard:allow require-concurrent-index reason="the table is empty"
 *   a C-style comment holding the same words
 * Comments are found with libpg_query's scanner (never by searching strings), so text
 * inside a string literal is not an override. Whether a rule may be overridden is the
 * rule's decision (deny{ override = true }); the guard only looks when it may.
 */
#ifndef DDLG_OVERRIDE_H
#define DDLG_OVERRIDE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Is there an override for `rule` in a comment that starts within [start, end) of sql, or
 * on the rest of the line where the statement ends? Copies its reason into reason.
 */
bool stmt_find_override(const char *sql, size_t start, size_t end, const char *rule,
			char *reason, size_t reasonlen);

#endif
