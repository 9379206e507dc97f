/* Kernel command-line parameters: minivm.run= (percent-coding, shell-like splitting into argv), minivm.scratch=, minivm.net=. */
#include "cmdline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool pct_is_safe(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '.': case '_': case '/': case ',': case ':':
	case '=': case '+': case '@': case '-':
		return true;
	default:
		return false;
	}
}

static int pct_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t agent_pct_encode(const char *in, size_t in_len, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = 0;

	if (in_len > AGENT_CMD_MAX_LEN)
		return -EMSGSIZE;
	if (in_len > 0 && !in)
		return -EFAULT;
	for (size_t i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\0')
			return -EILSEQ;
		need += pct_is_safe(c) ? 1 : 3;
	}
	if (!out) {
		return out_size == 0 ? (ssize_t)need : -EFAULT;
	}
	if (need >= out_size)
		return -ENOBUFS;

	size_t o = 0;
	for (size_t i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (pct_is_safe(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	out[o] = '\0';
	return (ssize_t)o;
}

ssize_t agent_pct_decode(const char *in, size_t in_len, char *out, size_t out_size)
{
	size_t o = 0;

	if ((in_len > 0 && !in) || !out)
		return -EFAULT;
	if (out_size == 0)
		return -ENOBUFS;
	for (size_t i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (in_len - i < 3)
				return -EINVAL;
			hi = pct_hex_value((unsigned char)in[i + 1]);
			lo = pct_hex_value((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -EILSEQ;
		if (o >= AGENT_CMD_MAX_LEN)
			return -EMSGSIZE;
		if (o + 1 >= out_size)
			return -ENOBUFS;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (ssize_t)o;
}

static bool split_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Where agent_split_words writes; put() fails once buf is full. */
struct split_out {
	char *buf;
	size_t size;
	size_t len;
};

static int split_put(struct split_out *o, char c)
{
	if (o->len >= o->size)
		return -ENOBUFS;
	o->buf[o->len++] = c;
	return 0;
}

int agent_split_words(const char *in, size_t in_len, char *buf, size_t buf_size,
                      char **argv, size_t argv_cap)
{
	struct split_out o = { .buf = buf, .size = buf_size, .len = 0 };
	size_t max_words, n = 0, i = 0;
	bool in_word = false;
	int err;

	if ((in_len > 0 && !in) || !buf || !argv)
		return -EFAULT;
	if (argv_cap == 0)
		return -ENOBUFS;
	if (in_len > AGENT_CMD_MAX_LEN)
		return -EMSGSIZE;
	if (in_len > 0 && memchr(in, '\0', in_len))
		return -EILSEQ;
	max_words = argv_cap - 1;
	if (max_words > AGENT_CMD_MAX_WORDS)
		max_words = AGENT_CMD_MAX_WORDS;

	/* Every branch advances i by at least one, so this loop is bounded by in_len. */
	while (i < in_len) {
		char c = in[i];

		/* Backslash-newline is removed before anything else (POSIX 2.2.1). */
		if (c == '\\' && i + 1 < in_len && in[i + 1] == '\n') {
			i += 2;
			continue;
		}
		if (split_is_blank(c)) {
			if (in_word) {
				if ((err = split_put(&o, '\0')))
					return err;
				in_word = false;
			}
			i++;
			continue;
		}
		if (!in_word) {
			if (n >= max_words)
				return -E2BIG;
			argv[n++] = buf + o.len;
			in_word = true;
		}
		if (c == '\'') {
			const char *end = memchr(in + i + 1, '\'', in_len - i - 1);

			if (!end)
				return -EBADMSG;
			for (i++; in + i < end; i++)
				if ((err = split_put(&o, in[i])))
					return err;
			i++; /* the closing quote */
		} else if (c == '"') {
			for (i++;; ) {
				if (i >= in_len)
					return -EBADMSG;
				c = in[i];
				if (c == '"') {
					i++;
					break;
				}
				if (c == '\\' && i + 1 < in_len) {
					char e = in[i + 1];

					if (e == '\n') {
						i += 2;
						continue;
					}
					if (e == '\\' || e == '"' || e == '$' || e == '`') {
						if ((err = split_put(&o, e)))
							return err;
						i += 2;
						continue;
					}
				}
				if ((err = split_put(&o, c)))
					return err;
				i++;
			}
		} else if (c == '\\') {
			if (i + 1 >= in_len)
				return -EBADMSG;
			if ((err = split_put(&o, in[i + 1])))
				return err;
			i += 2;
		} else {
			if ((err = split_put(&o, c)))
				return err;
			i++;
		}
	}
	if (in_word && (err = split_put(&o, '\0')))
		return err;
	argv[n] = NULL;
	return (int)n;
}

static bool cmdline_is_blank(char c)
{
	/* The kernel's isspace(): blanks and the other ASCII white space. */
	return c == ' ' || (c >= '\t' && c <= '\r');
}

int agent_cmdline_find(const char *cmdline, size_t len, const char *prefix,
                       const char **val, size_t *val_len)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t i = 0;
	int found = 0;

	if (!cmdline || plen == 0 || !val || !val_len)
		return 0;
	while (i < len) {
		size_t start, end;
		bool in_quote, quoted;

		while (i < len && cmdline_is_blank(cmdline[i]))
			i++;
		/* As the kernel's next_arg(): a token may be quoted whole ("p=v"). */
		quoted = in_quote = i < len && cmdline[i] == '"';
		if (quoted)
			i++;
		start = i;
		while (i < len && cmdline[i] != '\0' && (in_quote || !cmdline_is_blank(cmdline[i]))) {
			if (cmdline[i] == '"')
				in_quote = !in_quote;
			i++;
		}
		end = i;
		if (end - start >= plen && memcmp(cmdline + start, prefix, plen) == 0) {
			size_t v = start + plen;
			bool stripped = false;

			if (v < end && cmdline[v] == '"') {
				v++;
				if (end > v && cmdline[end - 1] == '"') {
					end--;
					stripped = true;
				}
			}
			if (quoted && !stripped && end > v && cmdline[end - 1] == '"')
				end--;
			*val = cmdline + v;
			*val_len = end - v;
			found = 1;
		}
		if (i < len && cmdline[i] == '\0')
			break; /* the kernel's string ends here */
	}
	return found;
}

int agent_scratch_parse(const char *val, size_t len, struct agent_scratch *out)
{
	if (!val || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len >= 3 && len <= 5 && val[0] == 'v' && val[1] == 'd') {
		for (size_t i = 2; i < len; i++)
			if (val[i] < 'a' || val[i] > 'z')
				return -EINVAL;
		out->kind = AGENT_SCRATCH_DISK;
		memcpy(out->dev, val, len);
		out->dev[len] = '\0';
		return 0;
	}
	if (len == 5 && memcmp(val, "tmpfs", 5) == 0) {
		out->kind = AGENT_SCRATCH_TMPFS;
		return 0;
	}
	if (len > 6 && len <= 6 + 19 && memcmp(val, "tmpfs:", 6) == 0) {
		unsigned long long v = 0;

		for (size_t i = 6; i < len; i++) {
			if (val[i] < '0' || val[i] > '9')
				return -EINVAL;
			v = v * 10 + (unsigned long long)(val[i] - '0'); /* 19 digits: no overflow */
		}
		if (v < (1ULL << 20))
			return -EINVAL;
		out->kind = AGENT_SCRATCH_TMPFS;
		out->size = v;
		return 0;
	}
	return -EINVAL;
}

int agent_scratch_format(const struct agent_scratch *s, char *out, size_t out_size)
{
	int n;

	if (!s || !out)
		return -EINVAL;
	if (s->kind == AGENT_SCRATCH_DISK) {
		size_t len = strnlen(s->dev, sizeof(s->dev));
		struct agent_scratch chk;

		if (len == sizeof(s->dev) || agent_scratch_parse(s->dev, len, &chk))
			return -EINVAL;
		n = snprintf(out, out_size, "%s", s->dev);
	} else if (s->kind == AGENT_SCRATCH_TMPFS) {
		if (s->size && (s->size < (1ULL << 20) || s->size > 9999999999999999999ULL))
			return -EINVAL;
		n = s->size ? snprintf(out, out_size, "tmpfs:%llu", s->size)
			    : snprintf(out, out_size, "tmpfs");
	} else {
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= out_size)
		return -ENOBUFS;
	return n;
}

uint32_t agent_net_mask(unsigned int prefix)
{
	if (prefix == 0)
		return 0;
	if (prefix >= 32)
		return 0xffffffffu;
	return ~(0xffffffffu >> prefix);
}

/*
 * A decimal number of 1..max_digits digits at val[*pos..len), no leading
 * zero unless it is "0" itself, at most max; advances *pos. 0 or -EINVAL.
 */
static int net_parse_num(const char *val, size_t len, size_t *pos, size_t max_digits,
			 unsigned int max, unsigned int *out)
{
	size_t i = *pos, digits = 0;
	unsigned int v = 0;

	while (i < len && val[i] >= '0' && val[i] <= '9') {
		if (++digits > max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned int)(val[i] - '0'); /* <= 3 digits: no overflow */
		i++;
	}
	if (digits == 0 || (digits > 1 && val[*pos] == '0') || v > max)
		return -EINVAL;
	*pos = i;
	*out = v;
	return 0;
}

/* A dotted quad at val[*pos..len); advances *pos. 0 or -EINVAL. */
static int net_parse_quad(const char *val, size_t len, size_t *pos, uint32_t *out)
{
	uint32_t a = 0;

	for (int k = 0; k < 4; k++) {
		unsigned int o;

		if (k > 0) {
			if (*pos >= len || val[*pos] != '.')
				return -EINVAL;
			(*pos)++;
		}
		if (net_parse_num(val, len, pos, 3, 255, &o))
			return -EINVAL;
		a = a << 8 | o;
	}
	*out = a;
	return 0;
}

/* The rules of agent_net_parse() on an already split value. */
static bool net_valid(const struct agent_net *n)
{
	uint32_t mask, host;

	if (n->prefix < 1 || n->prefix > 32 || n->ip == 0 || n->gw == 0)
		return false;
	mask = agent_net_mask(n->prefix);
	host = ~mask;
	if ((n->gw & mask) != (n->ip & mask) || n->gw == n->ip)
		return false;
	if (n->prefix <= 30) {
		/* Neither may be the subnet's network (host bits 0) or broadcast (all 1). */
		if ((n->ip & host) == 0 || (n->ip & host) == host)
			return false;
		if ((n->gw & host) == 0 || (n->gw & host) == host)
			return false;
	}
	return true;
}

int agent_net_parse(const char *val, size_t len, struct agent_net *out)
{
	struct agent_net n = { 0 };
	unsigned int prefix;
	size_t pos = 0;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!val)
		return -EINVAL;
	if (net_parse_quad(val, len, &pos, &n.ip))
		return -EINVAL;
	if (pos >= len || val[pos++] != '/' || net_parse_num(val, len, &pos, 2, 32, &prefix))
		return -EINVAL;
	n.prefix = (uint8_t)prefix;
	if (pos >= len || val[pos++] != ',' || net_parse_quad(val, len, &pos, &n.gw))
		return -EINVAL;
	if (pos < len) {
		if (val[pos++] != ',' || net_parse_quad(val, len, &pos, &n.dns) || n.dns == 0)
			return -EINVAL;
	}
	if (pos != len || !net_valid(&n))
		return -EINVAL;
	*out = n;
	return 0;
}

int agent_net_format(const struct agent_net *n, char *out, size_t out_size)
{
	char buf[AGENT_NET_VALUE_MAX];
	int len;

	if (!n || !out || !net_valid(n))
		return -EINVAL;
#define NET_QUAD(a) (unsigned int)((a) >> 24), (unsigned int)((a) >> 16 & 0xff), \
		    (unsigned int)((a) >> 8 & 0xff), (unsigned int)((a) & 0xff)
	len = snprintf(buf, sizeof(buf), "%u.%u.%u.%u/%u,%u.%u.%u.%u", NET_QUAD(n->ip),
		       (unsigned int)n->prefix, NET_QUAD(n->gw));
	if (len > 0 && n->dns && (size_t)len < sizeof(buf))
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, ",%u.%u.%u.%u", NET_QUAD(n->dns));
#undef NET_QUAD
	if (len < 0 || (size_t)len >= sizeof(buf))
		return -EINVAL; /* cannot happen: 50 bytes at most */
	if ((size_t)len >= out_size)
		return -ENOBUFS;
	memcpy(out, buf, (size_t)len + 1);
	return len;
}

const char *agent_cmd_strerror(int err)
{
	switch (err) {
	case -EINVAL:
		return "malformed %-escape (want %XX with two hex digits)";
	case -EILSEQ:
		return "NUL byte in the command";
	case -EMSGSIZE:
		return "command too long (max 4096 bytes)";
	case -E2BIG:
		return "too many words (max 256)";
	case -EBADMSG:
		return "unterminated quote or trailing backslash";
	case -ENOBUFS:
		return "output buffer too small";
	case -EFAULT:
		return "NULL buffer";
	default:
		return "unknown error";
	}
}
