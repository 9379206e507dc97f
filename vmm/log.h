/* The minivm command's own diagnostics as text lines ("minivm: ...") or JSON lines (--log-format json). */
#ifndef MINIVM_LOG_H
#define MINIVM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "vmm/minivm.h"

/*
 * One struct log per process, owned by main() and passed to whatever
 * reports something: no global state. A line is written with one write(2)
 * so that lines from several threads never interleave.
 *
 * text: "minivm: MSG\n" (the fields are in MSG already: what a person reads).
 * json: {"ts":"2026-12-07T23:41:05.123Z","level":"info","event":"timing",
 *        "msg":"timing kernel 512.000 ms","phase":"kernel","ms":512.0}
 *       ts is RFC 3339 UTC with milliseconds; level is error, warn, info or
 *       debug; event (a stable name, absent for plain messages) and the
 *       fields let a program filter without parsing msg; msg is the text
 *       line's MSG. Strings are escaped by vmm/jsonw.c (always valid JSON).
 */
enum log_format {
	LOG_TEXT = 0,
	LOG_JSON,
};

struct log {
	int fd;               /* where lines go (STDERR_FILENO for the command) */
	enum log_format format;
};

/* A structured field of a JSON line. */
enum log_field_type {
	LOG_FIELD_STR = 0,
	LOG_FIELD_INT,
	LOG_FIELD_MS, /* milliseconds, a number with 3 decimals; negative: null (unknown) */
};

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *str;
	int64_t num;
	double ms;
};

#define LOG_STR(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .str = (v) })
#define LOG_INT(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .num = (v) })
#define LOG_MS(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_MS, .ms = (v) })

/* The most bytes of one line (longer messages are cut, still valid JSON). */
#define LOG_LINE_MAX 8192

void log_init(struct log *log, int fd, enum log_format format);

/* "text" or "json"; 0 or -EINVAL. */
int log_parse_format(const char *s, enum log_format *out) __attribute__((warn_unused_result));

/* "error", "warn", "info", "debug". */
const char *log_level_name(enum minivm_log_level level);

/*
 * Formats one line (with its '\n') into buf (LOG_LINE_MAX bytes) as of now
 * (CLOCK_REALTIME). Pure apart from now: the unit tests call it. event may
 * be NULL; fields may be NULL when nr is 0. Returns the length, or -errno
 * (-ENOMEM from the JSON writer).
 */
int log_format_line(enum log_format format, const struct timespec *now, enum minivm_log_level level,
		    const char *event, const struct log_field *fields, size_t nr, const char *msg,
		    char *buf, size_t len) __attribute__((warn_unused_result));

/* Writes one line: level, an event name or NULL, fields, then the message. */
void log_event(const struct log *log, enum minivm_log_level level, const char *event,
	       const struct log_field *fields, size_t nr, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* A plain message (no event, no fields). */
void log_msg(const struct log *log, enum minivm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(log, ...) log_msg((log), MINIVM_LOG_ERROR, __VA_ARGS__)
#define log_warn(log, ...) log_msg((log), MINIVM_LOG_WARN, __VA_ARGS__)
#define log_info(log, ...) log_msg((log), MINIVM_LOG_INFO, __VA_ARGS__)

/* A minivm_log_fn for the library's front: ctx is a struct log. */
void log_from_front(void *ctx, enum minivm_log_level level, const char *msg);

#endif
