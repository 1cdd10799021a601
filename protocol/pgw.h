/*
 * pgw — the PostgreSQL v3 wire format, and nothing else.
 *
 * Framing constants and checks, startup-packet parsing, and builders for the few messages
 * ddlguard writes itself (errors, auth requests, BackendKeyData, SASL messages). Everything
 * here works on byte spans handed in by the caller: no sockets, no libevent, no SSL
 * sessions, no Lua, no logging. Functions report problems through a status code or a
 * caller-supplied error buffer so that this module can be unit-tested and fuzzed alone.
 *
 * Integers on the wire are big-endian. A regular message is Byte1 type, Int32 length
 * (counting itself, not the type byte), payload. Initial packets have no type byte.
 */
#ifndef DDLG_PGW_H
#define DDLG_PGW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGW_HDR_LEN          5          /* type byte + Int32 length */
#define PGW_STARTUP_MAX      10000      /* PG's MAX_STARTUP_PACKET_LENGTH */
#define PGW_SMALL_MAX        10000      /* PG's PQ_SMALL_MESSAGE_LIMIT */
#define PGW_LARGE_MAX        0x3fffffffu /* PG's PQ_LARGE_MESSAGE_LIMIT (1 GiB - 1) */
#define PGW_AUTH_MAX         65535      /* PG_MAX_AUTH_TOKEN_LENGTH for 'p' during login */
#define PGW_STARTUP_MAXPARAMS 128

#define PGW_CODE_SSL         80877103u  /* 1234 << 16 | 5679 */
#define PGW_CODE_GSSENC      80877104u  /* 1234 << 16 | 5680 */
#define PGW_CODE_CANCEL      80877102u  /* 1234 << 16 | 5678 */
#define PGW_PROTO_MAJOR(c)   ((c) >> 16)
#define PGW_PROTO_30         0x00030000u

/* Frontend (client to server) message types: the values are the wire characters. */
enum pgw_fe_type {
	PGW_FE_BIND = 'B', PGW_FE_CLOSE = 'C', PGW_FE_DESCRIBE = 'D', PGW_FE_EXECUTE = 'E',
	PGW_FE_FUNCTION = 'F', PGW_FE_FLUSH = 'H', PGW_FE_PARSE = 'P', PGW_FE_QUERY = 'Q',
	PGW_FE_SYNC = 'S', PGW_FE_TERMINATE = 'X', PGW_FE_COPYDATA = 'd', PGW_FE_COPYDONE = 'c',
	PGW_FE_COPYFAIL = 'f', PGW_FE_PASSWORD = 'p',
};

/* Backend (server to client) message types. */
enum pgw_be_type {
	PGW_BE_PARSE_COMPLETE = '1', PGW_BE_BIND_COMPLETE = '2', PGW_BE_CLOSE_COMPLETE = '3',
	PGW_BE_NOTIFICATION = 'A', PGW_BE_COMMAND_COMPLETE = 'C', PGW_BE_DATA_ROW = 'D',
	PGW_BE_ERROR = 'E', PGW_BE_COPY_IN = 'G', PGW_BE_COPY_OUT = 'H', PGW_BE_EMPTY_QUERY = 'I',
	PGW_BE_BACKEND_KEY = 'K', PGW_BE_NOTICE = 'N', PGW_BE_AUTH = 'R', PGW_BE_PARAMETER = 'S',
	PGW_BE_ROW_DESCRIPTION = 'T', PGW_BE_FUNCTION_RESULT = 'V', PGW_BE_COPY_BOTH = 'W',
	PGW_BE_READY = 'Z', PGW_BE_COPYDONE = 'c', PGW_BE_COPYDATA = 'd', PGW_BE_NO_DATA = 'n',
	PGW_BE_SUSPENDED = 's', PGW_BE_PARAM_DESCRIPTION = 't', PGW_BE_NEGOTIATE = 'v',
};

/* AuthenticationRequest subtypes (Int32 after the length of an 'R'). */
enum pgw_auth_code {
	PGW_AUTH_OK = 0, PGW_AUTH_CLEARTEXT = 3, PGW_AUTH_MD5 = 5, PGW_AUTH_SASL = 10,
	PGW_AUTH_SASL_CONTINUE = 11, PGW_AUTH_SASL_FINAL = 12,
};

enum pgw_status {
	PGW_OK = 0,
	PGW_NEED_MORE,      /* not enough bytes yet */
	PGW_BAD_LENGTH,     /* length field below its minimum */
	PGW_BAD_TYPE,       /* message type not valid here */
	PGW_TOO_BIG,        /* length above the cap for this message type */
	PGW_MALFORMED,      /* body does not match the message's grammar */
};

/* A growable byte buffer owned by the caller; builders append to it. */
struct pgw_buf {
	uint8_t *data;      /* owned; NULL until the first append */
	size_t len;
	size_t cap;
};

void pgw_buf_reset(struct pgw_buf *b);   /* len = 0, keeps the allocation */
void pgw_buf_free(struct pgw_buf *b);    /* wipes (the buffer may have held a secret) and frees */
void pgw_buf_put(struct pgw_buf *b, const void *p, size_t n);
void pgw_buf_put_u8(struct pgw_buf *b, uint8_t v);
void pgw_buf_put_u32(struct pgw_buf *b, uint32_t v);
void pgw_buf_put_str(struct pgw_buf *b, const char *s);   /* with its NUL */
/* Start a typed message; pgw_msg_end() fills in the length. Returns the offset to pass on. */
size_t pgw_msg_begin(struct pgw_buf *b, char type);
void pgw_msg_end(struct pgw_buf *b, size_t start);

static inline uint32_t pgw_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Check the header of a frontend message after login. `len` is the Int32 length field.
 * Large messages (Query, Parse, Bind, FunctionCall, CopyData) may be up to `large_max`
 * bytes; everything else up to PGW_SMALL_MAX, as PostgreSQL's SocketBackend() enforces.
 */
enum pgw_status pgw_check_fe_header(uint8_t type, uint32_t len, uint32_t large_max);

/* Check the header of a backend message: only the length's lower bound. */
enum pgw_status pgw_check_be_header(uint8_t type, uint32_t len);

/* A parsed StartupMessage. Pointers point into the packet the caller passed in. */
struct pgw_startup {
	uint32_t version;
	int nparams;
	const char *keys[PGW_STARTUP_MAXPARAMS];
	const char *values[PGW_STARTUP_MAXPARAMS];
	const char *user;               /* NULL if absent (an error for the caller to report) */
	const char *database;           /* defaults to user, as the server does */
	const char *application_name;   /* NULL if absent */
	bool replication;
};

/*
 * Parse a whole StartupMessage packet (length word included). Returns PGW_OK, or
 * PGW_MALFORMED with a reason in err.
 */
enum pgw_status pgw_parse_startup(const uint8_t *pkt, size_t len, struct pgw_startup *out,
				  char *err, size_t errlen);

/* Build a StartupMessage with the same parameters, replacing `database` when db != NULL. */
void pgw_build_startup(struct pgw_buf *b, const struct pgw_startup *st, const char *db);

/* A parsed CancelRequest packet (length word included). */
struct pgw_cancel {
	uint32_t pid;
	uint8_t secret[256];
	size_t secret_len;
};
enum pgw_status pgw_parse_cancel(const uint8_t *pkt, size_t len, struct pgw_cancel *out);
void pgw_build_cancel(struct pgw_buf *b, uint32_t pid, const uint8_t *secret, size_t secret_len);

/* Fields of an ErrorResponse or NoticeResponse. Pointers into the caller's message body. */
struct pgw_error_fields {
	const char *severity;     /* 'V' when present, else 'S' */
	const char *sqlstate;     /* 'C' */
	const char *message;      /* 'M' */
	const char *detail;       /* 'D' */
	const char *hint;         /* 'H' */
};
/* body: the bytes after the length word. */
enum pgw_status pgw_parse_error(const uint8_t *body, size_t len, struct pgw_error_fields *out);

/*
 * Append an ErrorResponse ('E') or NoticeResponse ('N') carrying S, V, C, M and, when not
 * NULL, D and H. severity is the non-localized word: ERROR, FATAL, WARNING, NOTICE.
 */
void pgw_build_error(struct pgw_buf *b, char type, const char *severity, const char *sqlstate,
		     const char *message, const char *detail, const char *hint);

void pgw_build_auth(struct pgw_buf *b, uint32_t code);
void pgw_build_backend_key(struct pgw_buf *b, uint32_t pid, const uint8_t *secret, size_t n);
void pgw_build_query(struct pgw_buf *b, const char *sql);

/*
 * Rewrite an AuthenticationSASL body (bytes after the length word, starting with the Int32
 * code 10) into a whole 'R' message in `out` without SCRAM-SHA-256-PLUS. Reports which
 * mechanisms the server offered.
 */
enum pgw_status pgw_sasl_strip_plus(const uint8_t *body, size_t len, struct pgw_buf *out,
				    bool *had_plus, bool *had_scram);

/* SASLInitialResponse / SASLResponse ('p') messages. */
void pgw_build_sasl_initial(struct pgw_buf *b, const char *mech, const char *data, size_t n);
void pgw_build_sasl_response(struct pgw_buf *b, const char *data, size_t n);

/* Human-readable name of a status, for error messages. */
const char *pgw_status_str(enum pgw_status s);

#endif
