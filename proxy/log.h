/*
 * log — ddlguard's operational log (not the audit log).
 *
 * One line per event on stderr or the configured logfile:
 *   2026-11-21 12:57:10.844 UTC [pid] LOG C-17 appdb/alice@127.0.0.1:51522: message
 * The macros test the level before formatting, so a disabled level costs one compare.
 * Never pass a password, a SCRAM message or a startup packet's raw bytes to these.
 */
#ifndef DDLG_LOG_H
#define DDLG_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_current_level;

bool log_parse_level(const char *s, enum log_level *out);
/* Direct the log to `path` (NULL or "" for stderr). Reopens on each call (logrotate). */
bool log_open(const char *path, char *err, size_t errlen);
void log_close(void);
void log_write(enum log_level lvl, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_at(lvl, ...) do { if ((lvl) <= log_current_level) log_write((lvl), NULL, __VA_ARGS__); } while (0)
#define log_error(...)   log_at(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_at(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...)    log_at(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)   log_at(LOG_LVL_DEBUG, __VA_ARGS__)

/* Per-session variants: the session's prefix ("C-17 db/user@addr:") comes first. */
#define slog_at(s, lvl, ...) do { if ((lvl) <= log_current_level) log_write((lvl), (s)->log_prefix, __VA_ARGS__); } while (0)
#define slog_error(s, ...)   slog_at(s, LOG_LVL_ERROR, __VA_ARGS__)
#define slog_warning(s, ...) slog_at(s, LOG_LVL_WARNING, __VA_ARGS__)
#define slog_info(s, ...)    slog_at(s, LOG_LVL_INFO, __VA_ARGS__)
#define slog_debug(s, ...)   slog_at(s, LOG_LVL_DEBUG, __VA_ARGS__)

#endif
