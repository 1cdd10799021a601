/*
 * audit — the audit log: JSON Lines, one record per event, chained by SHA-256.
 *
 * Every record is one JSON object on one line. Its fields come in the order they were
 * added, then "seq" (1, 2, 3 … across reopenings), "prev_hash" (the previous record's hash;
 * 64 zeros for the very first) and last "hash": the SHA-256, in hex, of the line's text up
 * to the comma before "hash", followed by "}". Editing, deleting or reordering a record
 * breaks the chain at that record; `ddlguard audit verify FILE` finds where.
 * Secrets never reach it: role and user-mapping statements are written normalized.
 * If the log cannot be written, audit_ok() turns false and guarded statements are denied
 * (audit_failure = closed) or go on (open).
 */
#ifndef DDLG_AUDIT_H
#define DDLG_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit_record;

/* Open (append to) the log; continues the chain from the file's last record. */
bool audit_open(const char *path, char *err, size_t errlen);
/* Reopen after logrotate (SIGHUP); logs the chain head. */
bool audit_reopen(char *err, size_t errlen);
/* Can `path` be opened for appending (created if missing)? For a reload to refuse a new
 * audit_log it could not write, before it gives up the current one. */
bool audit_check_path(const char *path, char *err, size_t errlen);
void audit_close(void);
bool audit_enabled(void);
/* False after a write or an open failed (until a reopen succeeds). */
bool audit_ok(void);
const char *audit_head(void);
uint64_t audit_seq(void);

/* Build a record: begin, add fields, write. Strings are JSON-escaped. */
struct audit_record *audit_begin(const char *event);
void audit_str(struct audit_record *r, const char *key, const char *value);   /* NULL: null */
void audit_int(struct audit_record *r, const char *key, long long value);
void audit_num(struct audit_record *r, const char *key, double value);
void audit_bool(struct audit_record *r, const char *key, bool value);
/* Adds seq, prev_hash and hash, writes the line, frees r. False when the write failed. */
bool audit_write(struct audit_record *r);

/* `ddlguard audit verify FILE`: exit status 0 when the chain holds. */
int audit_verify_main(int argc, char **argv);

#endif
