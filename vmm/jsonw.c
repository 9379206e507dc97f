/* A small JSON writer into a growing, bounded buffer: always valid RFC 8259 output, whatever bytes the strings hold. */
#include "vmm/jsonw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max ? max : (size_t)1 << 20;
}

static void jsonw_put(struct jsonw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (n > w->max || w->len > w->max - n) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		char *nb;

		while (cap < w->len + n + 1)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* The comma before a value or key, unless it follows a key or opens a container. */
static void jsonw_sep(struct jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth])
			jsonw_put(w, ",", 1);
		w->first[w->depth] = false;
	}
}

static void jsonw_open(struct jsonw *w, char c)
{
	jsonw_sep(w);
	if (w->depth >= JSONW_DEPTH) {
		if (!w->err)
			w->err = -E2BIG;
		return;
	}
	jsonw_put(w, &c, 1);
	w->depth++;
	w->first[w->depth] = true;
}

static void jsonw_close(struct jsonw *w, char c)
{
	if (w->depth == 0 || w->after_key) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	w->depth--;
	jsonw_put(w, &c, 1);
}

void jsonw_obj_begin(struct jsonw *w) { jsonw_open(w, '{'); }
void jsonw_obj_end(struct jsonw *w) { jsonw_close(w, '}'); }
void jsonw_arr_begin(struct jsonw *w) { jsonw_open(w, '['); }
void jsonw_arr_end(struct jsonw *w) { jsonw_close(w, ']'); }

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0
 * (no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t jsonw_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	jsonw_sep(w);
	jsonw_put(w, "\"", 1);
	while (i < n && !w->err) {
		char esc[8];
		size_t run = 0, l;

		/* Copy runs of plain characters at once. */
		while (i + run < n && p[i + run] >= 0x20 && p[i + run] < 0x80 && p[i + run] != '"' &&
		       p[i + run] != '\\')
			run++;
		if (run) {
			jsonw_put(w, s + i, run);
			i += run;
			continue;
		}
		switch (p[i]) {
		case '"': jsonw_put(w, "\\\"", 2); i++; continue;
		case '\\': jsonw_put(w, "\\\\", 2); i++; continue;
		case '\n': jsonw_put(w, "\\n", 2); i++; continue;
		case '\r': jsonw_put(w, "\\r", 2); i++; continue;
		case '\t': jsonw_put(w, "\\t", 2); i++; continue;
		default: break;
		}
		if (p[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			jsonw_put(w, esc, 6);
			i++;
			continue;
		}
		l = jsonw_utf8_len(p + i, n - i);
		if (l == 0) {
			jsonw_put(w, "\xef\xbf\xbd", 3); /* U+FFFD for a byte that is not UTF-8 */
			i++;
		} else {
			jsonw_put(w, s + i, l);
			i += l;
		}
	}
	jsonw_put(w, "\"", 1);
}

void jsonw_str(struct jsonw *w, const char *s)
{
	jsonw_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	if (w->depth == 0 || w->after_key) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	jsonw_str(w, key);
	jsonw_put(w, ":", 1);
	w->after_key = true;
}

void jsonw_base64(struct jsonw *w, const void *data, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char out[4];

	jsonw_sep(w);
	jsonw_put(w, "\"", 1);
	for (size_t i = 0; i < n && !w->err; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[0] = tbl[v >> 18 & 63];
		out[1] = tbl[v >> 12 & 63];
		out[2] = left > 1 ? tbl[v >> 6 & 63] : '=';
		out[3] = left > 2 ? tbl[v & 63] : '=';
		jsonw_put(w, out, 4);
	}
	jsonw_put(w, "\"", 1);
}

void jsonw_u64(struct jsonw *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	jsonw_sep(w);
	jsonw_put(w, num, (size_t)n);
}

void jsonw_i64(struct jsonw *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	jsonw_sep(w);
	jsonw_put(w, num, (size_t)n);
}

void jsonw_bool(struct jsonw *w, bool v)
{
	jsonw_sep(w);
	jsonw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(struct jsonw *w)
{
	jsonw_sep(w);
	jsonw_put(w, "null", 4);
}

void jsonw_raw(struct jsonw *w, const char *json, size_t n)
{
	jsonw_sep(w);
	jsonw_put(w, json, n);
}

int jsonw_finish(struct jsonw *w, char **out, size_t *len)
{
	int r = w->err;

	if (!r && (w->depth != 0 || !w->buf))
		r = -EINVAL;
	if (r) {
		jsonw_release(w);
		return r;
	}
	*out = w->buf;
	*len = w->len;
	w->buf = NULL;
	jsonw_release(w);
	return 0;
}

void jsonw_release(struct jsonw *w)
{
	size_t max = w->max;

	free(w->buf);
	memset(w, 0, sizeof(*w));
	w->max = max;
}
