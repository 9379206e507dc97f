/* A strict, bounded JSON (RFC 8259) reader: bytes in, a read-only tree or an error with its offset out. */
#include "vmm/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_doc {
	struct json_node *nodes;
	uint32_t n, cap;
	char *arena; /* decoded strings; sized so that it never moves */
	size_t arena_len, arena_cap;
};

struct json_parser {
	const char *in;
	size_t len, pos;
	struct json_limits lim;
	struct json_doc *doc;
	char *err;
	size_t errlen;
};

static int json_fail(struct json_parser *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int json_fail(struct json_parser *p, int code, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (p->err && p->errlen) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(p->err, p->errlen, "JSON at byte %zu: %s", p->pos, msg);
	}
	return code;
}

static void json_skip_ws(struct json_parser *p)
{
	while (p->pos < p->len) {
		char c = p->in[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static int json_new_node(struct json_parser *p, enum json_type t, uint32_t *idx)
{
	struct json_doc *d = p->doc;

	if (d->n >= p->lim.max_nodes)
		return json_fail(p, -E2BIG, "more than %u values", p->lim.max_nodes);
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct json_node *nn;

		if (cap > p->lim.max_nodes)
			cap = p->lim.max_nodes;
		nn = realloc(d->nodes, (size_t)cap * sizeof(*nn));
		if (!nn)
			return json_fail(p, -ENOMEM, "out of memory");
		d->nodes = nn;
		d->cap = cap;
	}
	memset(&d->nodes[d->n], 0, sizeof(d->nodes[0]));
	d->nodes[d->n].type = t;
	d->nodes[d->n].child = JSON_NONE;
	d->nodes[d->n].next = JSON_NONE;
	*idx = d->n++;
	return 0;
}

static int json_hex4(const char *s, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0
 * (Unicode 15 table 3-7: no overlongs, no surrogates, <= U+10FFFF). */
static size_t json_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

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

static void json_put_utf8(char *o, size_t *ol, uint32_t cp)
{
	if (cp < 0x80) {
		o[(*ol)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*ol)++] = (char)(0xc0 | cp >> 6);
		o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*ol)++] = (char)(0xe0 | cp >> 12);
		o[(*ol)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*ol)++] = (char)(0xf0 | cp >> 18);
		o[(*ol)++] = (char)(0x80 | (cp >> 12 & 0x3f));
		o[(*ol)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/*
 * A string at p->pos (the opening quote), decoded into the arena. The
 * decoded form is never longer than the source (an escape of n bytes
 * yields at most n bytes of UTF-8), and the arena holds the input's length
 * plus one NUL per string, so it never overflows.
 */
static int json_string(struct json_parser *p, const char **out, size_t *out_len)
{
	struct json_doc *d = p->doc;
	char *o = d->arena + d->arena_len;
	size_t ol = 0;

	p->pos++; /* the quote */
	for (;;) {
		unsigned char c;

		if (p->pos >= p->len)
			return json_fail(p, -EINVAL, "unterminated string");
		c = (unsigned char)p->in[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20)
			return json_fail(p, -EINVAL, "control character 0x%02x in a string", c);
		if (c == '\\') {
			char e;

			if (p->pos + 1 >= p->len)
				return json_fail(p, -EINVAL, "unterminated escape");
			e = p->in[p->pos + 1];
			switch (e) {
			case '"': case '\\': case '/':
				o[ol++] = e;
				p->pos += 2;
				continue;
			case 'b': o[ol++] = '\b'; p->pos += 2; continue;
			case 'f': o[ol++] = '\f'; p->pos += 2; continue;
			case 'n': o[ol++] = '\n'; p->pos += 2; continue;
			case 'r': o[ol++] = '\r'; p->pos += 2; continue;
			case 't': o[ol++] = '\t'; p->pos += 2; continue;
			case 'u': {
				uint32_t cp, lo;

				if (p->len - p->pos < 6 || json_hex4(p->in + p->pos + 2, &cp))
					return json_fail(p, -EINVAL, "bad \\u escape");
				p->pos += 6;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return json_fail(p, -EINVAL, "lone low surrogate");
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (p->len - p->pos < 6 || p->in[p->pos] != '\\' ||
					    p->in[p->pos + 1] != 'u' || json_hex4(p->in + p->pos + 2, &lo) ||
					    lo < 0xdc00 || lo > 0xdfff)
						return json_fail(p, -EINVAL, "lone high surrogate");
					p->pos += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				if (cp == 0)
					return json_fail(p, -EINVAL, "\\u0000 is not allowed");
				json_put_utf8(o, &ol, cp);
				continue;
			}
			default:
				return json_fail(p, -EINVAL, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
			}
		}
		{
			size_t n = json_utf8_len((const unsigned char *)p->in + p->pos, p->len - p->pos);

			if (n == 0)
				return json_fail(p, -EINVAL, "invalid UTF-8");
			memcpy(o + ol, p->in + p->pos, n);
			ol += n;
			p->pos += n;
		}
	}
	o[ol] = '\0';
	d->arena_len += ol + 1;
	*out = o;
	*out_len = ol;
	return 0;
}

static bool json_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int json_number(struct json_parser *p, uint32_t idx)
{
	struct json_doc *d = p->doc;
	size_t start = p->pos, n;
	char *o;

	if (p->pos < p->len && p->in[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || !json_digit(p->in[p->pos]))
		return json_fail(p, -EINVAL, "bad number");
	if (p->in[p->pos] == '0') {
		p->pos++;
		if (p->pos < p->len && json_digit(p->in[p->pos]))
			return json_fail(p, -EINVAL, "leading zero in a number");
	} else {
		while (p->pos < p->len && json_digit(p->in[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && p->in[p->pos] == '.') {
		p->pos++;
		if (p->pos >= p->len || !json_digit(p->in[p->pos]))
			return json_fail(p, -EINVAL, "no digits after the decimal point");
		while (p->pos < p->len && json_digit(p->in[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && (p->in[p->pos] == 'e' || p->in[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->in[p->pos] == '+' || p->in[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !json_digit(p->in[p->pos]))
			return json_fail(p, -EINVAL, "no digits in the exponent");
		while (p->pos < p->len && json_digit(p->in[p->pos]))
			p->pos++;
	}
	n = p->pos - start;
	o = d->arena + d->arena_len;
	memcpy(o, p->in + start, n);
	o[n] = '\0';
	d->arena_len += n + 1;
	d->nodes[idx].str = o;
	d->nodes[idx].len = n;
	return 0;
}

static int json_literal(struct json_parser *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->in + p->pos, word, n) != 0)
		return json_fail(p, -EINVAL, "unexpected character");
	p->pos += n;
	return 0;
}

static int json_value(struct json_parser *p, uint32_t depth, uint32_t *out);

/* An array or object at p->pos; children are parsed recursively, the
 * depth bounded by lim.max_depth. */
static int json_container(struct json_parser *p, uint32_t depth, uint32_t idx, bool object)
{
	char close = object ? '}' : ']';
	uint32_t last = JSON_NONE;
	int r;

	if (depth >= p->lim.max_depth)
		return json_fail(p, -E2BIG, "nested deeper than %u", p->lim.max_depth);
	p->pos++;
	json_skip_ws(p);
	if (p->pos < p->len && p->in[p->pos] == close) {
		p->pos++;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		uint32_t child;

		json_skip_ws(p);
		if (object) {
			if (p->pos >= p->len || p->in[p->pos] != '"')
				return json_fail(p, -EINVAL, "expected a member name");
			r = json_string(p, &key, &key_len);
			if (r)
				return r;
			json_skip_ws(p);
			if (p->pos >= p->len || p->in[p->pos] != ':')
				return json_fail(p, -EINVAL, "expected ':'");
			p->pos++;
		}
		r = json_value(p, depth + 1, &child);
		if (r)
			return r;
		/* nodes may have moved (realloc): index, never hold pointers */
		p->doc->nodes[child].key = key;
		p->doc->nodes[child].key_len = key_len;
		if (last == JSON_NONE)
			p->doc->nodes[idx].child = child;
		else
			p->doc->nodes[last].next = child;
		last = child;
		p->doc->nodes[idx].count++;
		json_skip_ws(p);
		if (p->pos >= p->len)
			return json_fail(p, -EINVAL, "unterminated %s", object ? "object" : "array");
		if (p->in[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->in[p->pos] == close) {
			p->pos++;
			return 0;
		}
		return json_fail(p, -EINVAL, "expected ',' or '%c'", close);
	}
}

static int json_value(struct json_parser *p, uint32_t depth, uint32_t *out)
{
	uint32_t idx;
	int r;
	char c;

	json_skip_ws(p);
	if (p->pos >= p->len)
		return json_fail(p, -EINVAL, "expected a value");
	c = p->in[p->pos];
	switch (c) {
	case '{':
	case '[':
		r = json_new_node(p, c == '{' ? JSON_OBJECT : JSON_ARRAY, &idx);
		if (!r)
			r = json_container(p, depth, idx, c == '{');
		break;
	case '"':
		r = json_new_node(p, JSON_STRING, &idx);
		if (!r)
			r = json_string(p, &p->doc->nodes[idx].str, &p->doc->nodes[idx].len);
		break;
	case 't':
		r = json_new_node(p, JSON_TRUE, &idx);
		if (!r)
			r = json_literal(p, "true");
		break;
	case 'f':
		r = json_new_node(p, JSON_FALSE, &idx);
		if (!r)
			r = json_literal(p, "false");
		break;
	case 'n':
		r = json_new_node(p, JSON_NULL, &idx);
		if (!r)
			r = json_literal(p, "null");
		break;
	default:
		if (c != '-' && !json_digit(c))
			return json_fail(p, -EINVAL, "unexpected character");
		r = json_new_node(p, JSON_NUMBER, &idx);
		if (!r)
			r = json_number(p, idx);
		break;
	}
	if (r)
		return r;
	*out = idx;
	return 0;
}

int json_parse(const char *in, size_t len, const struct json_limits *lim,
	       struct json_doc **out, char *err, size_t errlen)
{
	static const struct json_limits defaults = {
		.max_bytes = 16u << 20, .max_depth = 64, .max_nodes = 4u << 20,
	};
	struct json_parser p = { .in = in, .len = len, .err = err, .errlen = errlen };
	struct json_doc *d;
	uint32_t root;
	int r;

	*out = NULL;
	p.lim = lim ? *lim : defaults;
	if (p.lim.max_nodes == 0 || p.lim.max_nodes >= JSON_NONE)
		p.lim.max_nodes = JSON_NONE - 1;
	if (!in && len)
		return json_fail(&p, -EINVAL, "no input");
	if (len > p.lim.max_bytes)
		return json_fail(&p, -E2BIG, "input of %zu bytes is over the limit of %zu", len,
				 p.lim.max_bytes);
	d = calloc(1, sizeof(*d));
	if (!d)
		return json_fail(&p, -ENOMEM, "out of memory");
	/* Decoded strings and numbers are no longer than their source; each
	 * needs one more byte for its NUL, and each starts with at least one
	 * source byte (a quote or a digit): 2 * len + 1 always suffices. */
	d->arena_cap = 2 * len + 1;
	d->arena = malloc(d->arena_cap);
	if (!d->arena) {
		free(d);
		return json_fail(&p, -ENOMEM, "out of memory");
	}
	p.doc = d;
	r = json_value(&p, 0, &root);
	if (!r) {
		json_skip_ws(&p);
		if (p.pos != p.len)
			r = json_fail(&p, -EINVAL, "trailing data after the value");
	}
	if (r) {
		json_free(d);
		return r;
	}
	*out = d;
	return 0;
}

void json_free(struct json_doc *doc)
{
	if (!doc)
		return;
	free(doc->nodes);
	free(doc->arena);
	free(doc);
}

const struct json_node *json_root(const struct json_doc *doc)
{
	return doc && doc->n ? &doc->nodes[0] : NULL;
}

const struct json_node *json_first(const struct json_doc *doc, const struct json_node *n)
{
	return n && n->child != JSON_NONE ? &doc->nodes[n->child] : NULL;
}

const struct json_node *json_next(const struct json_doc *doc, const struct json_node *n)
{
	return n && n->next != JSON_NONE ? &doc->nodes[n->next] : NULL;
}

int json_get(const struct json_doc *doc, const struct json_node *obj, const char *key,
	     const struct json_node **out)
{
	const struct json_node *found = NULL;
	size_t klen = strlen(key);

	*out = NULL;
	if (!obj || obj->type != JSON_OBJECT)
		return -EINVAL;
	for (const struct json_node *c = json_first(doc, obj); c; c = json_next(doc, c)) {
		if (c->key_len == klen && memcmp(c->key, key, klen) == 0) {
			if (found)
				return -EEXIST;
			found = c;
		}
	}
	if (!found)
		return -ENOENT;
	*out = found;
	return 0;
}

const char *json_get_str(const struct json_doc *doc, const struct json_node *obj, const char *key)
{
	const struct json_node *v;

	if (json_get(doc, obj, key, &v) || v->type != JSON_STRING)
		return NULL;
	return v->str;
}
