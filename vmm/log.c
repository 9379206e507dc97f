/* The minivm command's diagnostics: text or JSON lines, one write(2) each (vmm/log.h). */
#include "vmm/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/jsonw.h"

#define LOG_PREFIX "minivm: "

void log_init(struct log *log, int fd, enum log_format format)
{
	log->fd = fd;
	log->format = format;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (s && !strcmp(s, "text"))
		*out = LOG_TEXT;
	else if (s && !strcmp(s, "json"))
		*out = LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

const char *log_level_name(enum minivm_log_level level)
{
	switch (level) {
	case MINIVM_LOG_ERROR:
		return "error";
	case MINIVM_LOG_WARN:
		return "warn";
	case MINIVM_LOG_INFO:
		return "info";
	case MINIVM_LOG_DEBUG:
		break;
	}
	return "debug";
}

#define LOG_TS_SIZE 40

/* "2026-12-07T23:41:05.123Z" */
static void log_rfc3339(const struct timespec *now, char out[LOG_TS_SIZE])
{
	struct tm tm;
	time_t t = now->tv_sec;
	size_t n;

	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	n = strftime(out, LOG_TS_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, LOG_TS_SIZE - n, ".%03dZ", (int)((now->tv_nsec / 1000000L) % 1000));
}

static void log_json_field(struct jsonw *w, const struct log_field *f)
{
	char num[40];

	jsonw_key(w, f->key);
	switch (f->type) {
	case LOG_FIELD_STR:
		if (f->str)
			jsonw_str(w, f->str);
		else
			jsonw_null(w);
		break;
	case LOG_FIELD_INT:
		jsonw_i64(w, f->num);
		break;
	case LOG_FIELD_MS:
		if (f->ms < 0 || f->ms != f->ms || f->ms > 1e15) {
			jsonw_null(w);
			break;
		}
		snprintf(num, sizeof(num), "%.3f", f->ms);
		jsonw_raw(w, num, strlen(num));
		break;
	}
}

/* The JSON line into buf: 0 or -errno. */
static int log_json(const struct timespec *now, enum minivm_log_level level, const char *event,
		    const struct log_field *fields, size_t nr, const char *msg, char *buf, size_t len)
{
	struct jsonw w;
	char ts[LOG_TS_SIZE], *out;
	size_t n;
	int r;

	log_rfc3339(now, ts);
	jsonw_init(&w, 0);
	jsonw_obj_begin(&w);
	jsonw_key(&w, "ts");
	jsonw_str(&w, ts);
	jsonw_key(&w, "level");
	jsonw_str(&w, log_level_name(level));
	if (event) {
		jsonw_key(&w, "event");
		jsonw_str(&w, event);
	}
	jsonw_key(&w, "msg");
	jsonw_str(&w, msg);
	for (size_t i = 0; i < nr; i++)
		log_json_field(&w, &fields[i]);
	jsonw_obj_end(&w);
	r = jsonw_finish(&w, &out, &n);
	if (r)
		return r;
	if (n + 2 > len) {
		free(out);
		return -E2BIG;
	}
	memcpy(buf, out, n);
	buf[n] = '\n';
	buf[n + 1] = '\0';
	free(out);
	return (int)n + 1;
}

int log_format_line(enum log_format format, const struct timespec *now, enum minivm_log_level level,
		    const char *event, const struct log_field *fields, size_t nr, const char *msg,
		    char *buf, size_t len)
{
	int n;

	if (format == LOG_JSON)
		return log_json(now, level, event, fields, nr, msg, buf, len);
	n = snprintf(buf, len, LOG_PREFIX "%s\n", msg);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len) { /* cut, still one line */
		buf[len - 2] = '\n';
		n = (int)len - 1;
	}
	return n;
}

/* Formats and writes one line; a message too long for a JSON line is cut until it fits. */
static void log_write(const struct log *log, enum minivm_log_level level, const char *event,
		      const struct log_field *fields, size_t nr, char *msg)
{
	char line[LOG_LINE_MAX];
	struct timespec now;
	size_t mlen = strlen(msg);
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	for (;;) {
		n = log_format_line(log->format, &now, level, event, fields, nr, msg, line,
				    sizeof(line));
		if (n != -E2BIG || mlen < 64)
			break;
		mlen /= 2; /* escapes may take 6 bytes a byte: halve until it fits */
		msg[mlen] = '\0';
	}
	if (n > 0 && write(log->fd, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}

__attribute__((format(printf, 6, 0))) static void
log_vevent(const struct log *log, enum minivm_log_level level, const char *event,
	   const struct log_field *fields, size_t nr, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_write(log, level, event, fields, nr, msg);
}

void log_event(const struct log *log, enum minivm_log_level level, const char *event,
	       const struct log_field *fields, size_t nr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(log, level, event, fields, nr, fmt, ap);
	va_end(ap);
}

void log_msg(const struct log *log, enum minivm_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vevent(log, level, NULL, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_from_front(void *ctx, enum minivm_log_level level, const char *msg)
{
	log_msg(ctx, level, "%s", msg);
}
