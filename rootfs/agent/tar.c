/* ustar/PAX tar: the push reader (a bounded state machine over hostile bytes) and the deterministic header writer; libc only (also built into the static guest agent). */
#include "tar.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ustar header field offsets and widths (POSIX.1-2001 pax, ustar). */
#define H_NAME 0
#define H_NAME_LEN 100
#define H_MODE 100
#define H_UID 108
#define H_GID 116
#define H_SIZE 124
#define H_MTIME 136
#define H_CHKSUM 148
#define H_TYPE 156
#define H_LINK 157
#define H_LINK_LEN 100
#define H_MAGIC 257
#define H_VERSION 263
#define H_UNAME 265
#define H_GNAME 297
#define H_DEVMAJOR 329
#define H_DEVMINOR 337
#define H_PREFIX 345
#define H_PREFIX_LEN 155

/* Largest value of an 11-digit octal field (size, mtime) and a 7-digit one (ids). */
#define OCT11_MAX 077777777777ULL
#define OCT7_MAX 07777777ULL
/* A name as archived: a directory's may carry a '/' past TAR_PATH_MAX. */
#define RAW_MAX (TAR_PATH_MAX + 1)

enum tar_state {
	ST_HEADER,  /* collecting a 512-byte header */
	ST_DATA,    /* passing an entry's data to ops->data */
	ST_META,    /* collecting a PAX 'x' or GNU 'L'/'K' body */
	ST_SKIP,    /* skipping bytes nobody wants (padding, 'g' bodies, non-regular data) */
	ST_END,     /* after the end-of-archive marker */
	ST_ERROR,
};

/* What the header after metadata headers takes from them. */
struct tar_override {
	bool path, link, size, uid, gid, mtime;
	char path_v[RAW_MAX + 1], link_v[RAW_MAX + 1];
	uint64_t size_v;
	uint32_t uid_v, gid_v;
	int64_t mtime_v;
};

struct tar_reader {
	const struct tar_reader_ops *ops;
	void *ctx;
	enum tar_state state;
	int err;
	uint64_t offset;     /* bytes consumed so far */
	uint64_t hdr_offset; /* where the header being handled starts */
	uint64_t entries;
	uint8_t hdr[TAR_BLOCK];
	size_t hdr_len;
	bool lone_zero; /* one zero block seen; a second ends the archive */
	uint64_t remain;  /* ST_DATA / ST_META / ST_SKIP bytes left */
	uint64_t pad;     /* padding to skip after ST_DATA / ST_META */
	char meta_type;   /* ST_META: 'x', 'L' or 'K' */
	uint8_t *meta;    /* ST_META body */
	size_t meta_len, meta_cap;
	bool pending;     /* metadata headers seen, their entry not yet */
	struct tar_override ov;
	struct tar_entry e;
	char msg[512];
};

int tar_reader_new(const struct tar_reader_ops *ops, void *ctx, struct tar_reader **out)
{
	struct tar_reader *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->ops = ops;
	r->ctx = ctx;
	*out = r;
	return 0;
}

void tar_reader_free(struct tar_reader *r)
{
	if (!r)
		return;
	free(r->meta);
	free(r);
}

const char *tar_reader_error(const struct tar_reader *r)
{
	return r->msg;
}

void tar_reader_set_error(struct tar_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

uint64_t tar_reader_entries(const struct tar_reader *r)
{
	return r->entries;
}

/* A printable copy of an archive name for messages: at most 120 bytes, control bytes as '?'. */
static void printable(const char *in, char *out, size_t outsz)
{
	size_t i = 0;

	for (; in[i] && i + 1 < outsz && i < 120; i++)
		out[i] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
	out[i] = '\0';
}

/* Records the reader's error (the entry named by path, may be NULL) and returns err. */
__attribute__((format(printf, 4, 5))) static int fail(struct tar_reader *r, int err, const char *path,
						      const char *fmt, ...)
{
	char what[256], name[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (path) {
		printable(path, name, sizeof(name));
		snprintf(r->msg, sizeof(r->msg), "tar entry '%s' at offset %llu: %s", name,
			 (unsigned long long)r->hdr_offset, what);
	} else {
		snprintf(r->msg, sizeof(r->msg), "tar header at offset %llu: %s",
			 (unsigned long long)r->hdr_offset, what);
	}
	r->err = err;
	r->state = ST_ERROR;
	return err;
}

int tar_path_clean(const char *in, char *out, size_t outsz)
{
	size_t o = 0, cap = outsz ? outsz - 1 : 0;
	const char *p = in;

	if (cap > TAR_PATH_MAX)
		cap = TAR_PATH_MAX;
	if (outsz)
		out[0] = '\0';
	if (in[0] == '/')
		return -EINVAL;
	/* One pass over the components; each step consumes at least one byte. */
	while (*p) {
		const char *c = p;
		size_t n;

		while (*p && *p != '/')
			p++;
		n = (size_t)(p - c);
		while (*p == '/')
			p++;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return -EINVAL;
		if (n + (o ? 1 : 0) > cap - o || outsz == 0)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, n);
		o += n;
		out[o] = '\0';
	}
	return 0;
}

size_t tar_pad(uint64_t size)
{
	return (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
}

/* ---- reading ---- */

/* A field as a C string (stops at the field's end or its first NUL). */
static void field_str(const uint8_t *f, size_t len, char *out)
{
	size_t n = strnlen((const char *)f, len);

	memcpy(out, f, n);
	out[n] = '\0';
}

/*
 * A numeric field: octal (leading spaces, then digits, then spaces or
 * NULs) or base-256 (first byte 0x80 positive, 0xff negative, GNU). An
 * all-blank field is 0. -EBADMSG if it does not parse or leaves int64.
 */
static int field_num(const uint8_t *f, size_t len, int64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;

	if (f[0] == 0x80 || f[0] == 0xff) {
		bool neg = f[0] == 0xff;

		/* Two's complement over the remaining len-1 bytes; the top ones
		 * must be sign copies for the value to fit 64 bits. */
		for (i = 1; i < len; i++) {
			if (len - i > 8) {
				if (f[i] != (neg ? 0xff : 0x00))
					return -EBADMSG;
				continue;
			}
			v = (v << 8) | f[i];
		}
		if (!neg) {
			if (v > INT64_MAX)
				return -EBADMSG;
			*out = (int64_t)v;
		} else {
			/* Sign-extend from the bytes read (at most 8). */
			size_t nb = len - 1 < 8 ? len - 1 : 8;

			if (nb < 8)
				v |= ~0ULL << (nb * 8);
			if ((int64_t)v >= 0)
				return -EBADMSG;
			*out = (int64_t)v;
		}
		return 0;
	}
	while (i < len && f[i] == ' ')
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -EBADMSG;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -EBADMSG;
	if (v > INT64_MAX)
		return -EBADMSG;
	*out = (int64_t)v;
	return 0;
}

static bool block_is_zero(const uint8_t *b)
{
	for (size_t i = 0; i < TAR_BLOCK; i++)
		if (b[i])
			return false;
	return true;
}

/* The stored checksum matches the unsigned or the signed byte sum (old tars used signed chars). */
static bool checksum_ok(const uint8_t *h)
{
	int64_t want;
	uint64_t us = 0;
	int64_t ss = 0;

	if (field_num(h + H_CHKSUM, 8, &want) != 0)
		return false;
	for (size_t i = 0; i < TAR_BLOCK; i++) {
		uint8_t c = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : h[i];

		us += c;
		ss += (int8_t)c;
	}
	return (int64_t)us == want || ss == want;
}

/* A decimal PAX value: digits only, at most max. */
static int pax_uint(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (len == 0)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EBADMSG;
		if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(v[i] - '0'), &x))
			return -EBADMSG;
	}
	if (x > max)
		return -EBADMSG;
	*out = x;
	return 0;
}

/* A PAX time: [-]digits[.digits], the fraction ignored. */
static int pax_time(const char *v, size_t len, int64_t *out)
{
	size_t i = 0, int_len;
	bool neg = false;
	uint64_t x;

	if (len && v[0] == '-') {
		neg = true;
		i = 1;
	}
	int_len = i;
	while (int_len < len && v[int_len] != '.')
		int_len++;
	for (size_t j = int_len + (int_len < len ? 1 : 0); j < len; j++)
		if (v[j] < '0' || v[j] > '9')
			return -EBADMSG;
	if (pax_uint(v + i, int_len - i, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &x))
		return -EBADMSG;
	*out = neg ? (int64_t)(0 - x) : (int64_t)x;
	return 0;
}

/* A path or link PAX value: no NUL, at most RAW_MAX bytes. */
static int pax_path(struct tar_reader *r, const char *key, const char *v, size_t len, char *out)
{
	if (memchr(v, '\0', len))
		return fail(r, -EBADMSG, NULL, "PAX %s holds a NUL byte", key);
	if (len > RAW_MAX)
		return fail(r, -ENAMETOOLONG, NULL, "PAX %s is %zu bytes, over %d", key, len, TAR_PATH_MAX);
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

/* Parses the PAX 'x' body in r->meta into r->ov: records "LEN KEY=VALUE\n". */
static int pax_parse(struct tar_reader *r)
{
	const char *b = (const char *)r->meta;
	size_t pos = 0, n = r->meta_len;

	/* Each record consumes at least 5 bytes ("5 k=\n"), so this ends. */
	while (pos < n) {
		size_t rec = 0, i = pos, keyend, klen, vlen;
		const char *key, *val;
		uint64_t u;

		if (b[pos] == '\0')
			break; /* trailing NUL padding some writers leave */
		for (; i < n && b[i] >= '0' && b[i] <= '9'; i++) {
			if (rec > TAR_PAX_MAX)
				return fail(r, -EBADMSG, NULL, "PAX record length too large");
			rec = rec * 10 + (size_t)(b[i] - '0');
		}
		if (i == pos || i >= n || b[i] != ' ' || rec > n - pos || rec < (i - pos) + 4 ||
		    b[pos + rec - 1] != '\n')
			return fail(r, -EBADMSG, NULL, "PAX record at byte %zu does not parse", pos);
		key = b + i + 1;
		keyend = i + 1;
		while (keyend < pos + rec - 1 && b[keyend] != '=')
			keyend++;
		if (keyend >= pos + rec - 1 || keyend == i + 1)
			return fail(r, -EBADMSG, NULL, "PAX record at byte %zu has no key=value", pos);
		klen = keyend - (i + 1);
		val = b + keyend + 1;
		vlen = pos + rec - 1 - (keyend + 1);
#define KEY_IS(s) (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)
		if (klen >= 11 && memcmp(key, "GNU.sparse.", 11) == 0)
			return fail(r, -EBADMSG, NULL, "unsupported PAX sparse file (%.*s)", (int)klen, key);
		if (vlen == 0) {
			/* An empty value removes the keyword: the ustar field counts again. */
			if (KEY_IS("path"))
				r->ov.path = false;
			else if (KEY_IS("linkpath"))
				r->ov.link = false;
			else if (KEY_IS("size"))
				r->ov.size = false;
			else if (KEY_IS("uid"))
				r->ov.uid = false;
			else if (KEY_IS("gid"))
				r->ov.gid = false;
			else if (KEY_IS("mtime"))
				r->ov.mtime = false;
		} else if (KEY_IS("path")) {
			if (pax_path(r, "path", val, vlen, r->ov.path_v))
				return r->err;
			r->ov.path = true;
		} else if (KEY_IS("linkpath")) {
			if (pax_path(r, "linkpath", val, vlen, r->ov.link_v))
				return r->err;
			r->ov.link = true;
		} else if (KEY_IS("size")) {
			if (pax_uint(val, vlen, INT64_MAX, &r->ov.size_v))
				return fail(r, -EBADMSG, NULL, "PAX size '%.*s' does not parse", (int)(vlen > 40 ? 40 : vlen), val);
			r->ov.size = true;
		} else if (KEY_IS("uid") || KEY_IS("gid")) {
			if (pax_uint(val, vlen, UINT32_MAX, &u))
				return fail(r, -EBADMSG, NULL, "PAX %.*s '%.*s' does not parse", (int)klen, key,
					    (int)(vlen > 40 ? 40 : vlen), val);
			if (key[0] == 'u') {
				r->ov.uid_v = (uint32_t)u;
				r->ov.uid = true;
			} else {
				r->ov.gid_v = (uint32_t)u;
				r->ov.gid = true;
			}
		} else if (KEY_IS("mtime")) {
			if (pax_time(val, vlen, &r->ov.mtime_v))
				return fail(r, -EBADMSG, NULL, "PAX mtime '%.*s' does not parse", (int)(vlen > 40 ? 40 : vlen), val);
			r->ov.mtime = true;
		}
#undef KEY_IS
		pos += rec;
	}
	return 0;
}

/* Ends a metadata body ('x', 'L', 'K'): folds it into the override. */
static int meta_done(struct tar_reader *r)
{
	size_t n;

	if (r->meta_type == 'x')
		return pax_parse(r);
	/* GNU long name/link: the name up to its first NUL. */
	n = strnlen((const char *)r->meta, r->meta_len);
	if (n > RAW_MAX)
		return fail(r, -ENAMETOOLONG, NULL, "GNU long %s is over %d bytes",
			    r->meta_type == 'L' ? "name" : "link", TAR_PATH_MAX);
	if (r->meta_type == 'L') {
		memcpy(r->ov.path_v, r->meta, n);
		r->ov.path_v[n] = '\0';
		r->ov.path = true;
	} else {
		memcpy(r->ov.link_v, r->meta, n);
		r->ov.link_v[n] = '\0';
		r->ov.link = true;
	}
	return 0;
}

/* Handles a complete header block in r->hdr. */
static int header_done(struct tar_reader *r)
{
	const uint8_t *h = r->hdr;
	char type = (char)h[H_TYPE];
	char raw[RAW_MAX + 1];
	int64_t mode, uid, gid, size, mtime, dmaj = 0, dmin = 0;
	struct tar_entry *e = &r->e;
	bool ustar;
	int rc;

	if (block_is_zero(h)) {
		if (r->pending)
			return fail(r, -EBADMSG, NULL, "end of archive right after an extended header");
		if (r->lone_zero) {
			r->state = ST_END;
			return 0;
		}
		r->lone_zero = true;
		return 0;
	}
	if (r->lone_zero)
		return fail(r, -EBADMSG, NULL, "a header after a lone zero block");
	if (!checksum_ok(h))
		return fail(r, -EBADMSG, NULL, "bad header checksum");
	ustar = memcmp(h + H_MAGIC, "ustar\0", 6) == 0; /* POSIX: the prefix field is a prefix */

	/* The name, as the header has it (the overrides come after). */
	if (ustar && h[H_PREFIX]) {
		size_t pl = strnlen((const char *)h + H_PREFIX, H_PREFIX_LEN);

		memcpy(raw, h + H_PREFIX, pl);
		raw[pl] = '/';
		field_str(h + H_NAME, H_NAME_LEN, raw + pl + 1);
	} else {
		field_str(h + H_NAME, H_NAME_LEN, raw);
	}
	if (r->ov.path && (type != 'x' && type != 'g' && type != 'L' && type != 'K'))
		memcpy(raw, r->ov.path_v, sizeof(raw));

	if (field_num(h + H_SIZE, 12, &size) || size < 0)
		return fail(r, -EBADMSG, raw, "bad size field");

	switch (type) {
	case 'x':
	case 'L':
	case 'K':
		if (type == 'x' && (uint64_t)size > TAR_PAX_MAX)
			return fail(r, -E2BIG, NULL, "PAX header of %lld bytes, over %d", (long long)size, TAR_PAX_MAX);
		if (type != 'x' && (uint64_t)size > RAW_MAX + 1)
			return fail(r, -ENAMETOOLONG, NULL, "GNU long %s of %lld bytes, over %d",
				    type == 'L' ? "name" : "link", (long long)size, TAR_PATH_MAX);
		if (r->meta_cap < (size_t)size + 1) {
			uint8_t *m = realloc(r->meta, (size_t)size + 1);

			if (!m)
				return fail(r, -ENOMEM, NULL, "out of memory for an extended header");
			r->meta = m;
			r->meta_cap = (size_t)size + 1;
		}
		r->meta_type = type;
		r->meta_len = 0;
		r->remain = (uint64_t)size;
		r->pad = tar_pad((uint64_t)size);
		r->pending = true;
		r->state = ST_META;
		if (size == 0)
			return meta_done(r);
		return 0;
	case 'g':
		/* Global PAX headers are ignored: skip their body. */
		r->remain = (uint64_t)size + tar_pad((uint64_t)size);
		r->state = ST_SKIP;
		return 0;
	default:
		break;
	}

	memset(e, 0, sizeof(*e));
	switch (type) {
	case '0':
	case '\0':
	case '7':
		e->type = TAR_REG;
		/* Pre-POSIX archives mark directories by a trailing '/'. */
		if (raw[0] && raw[strlen(raw) - 1] == '/')
			e->type = TAR_DIR;
		break;
	case '1':
		e->type = TAR_HARDLINK;
		break;
	case '2':
		e->type = TAR_SYMLINK;
		break;
	case '3':
		e->type = TAR_CHR;
		break;
	case '4':
		e->type = TAR_BLK;
		break;
	case '5':
		e->type = TAR_DIR;
		break;
	case '6':
		e->type = TAR_FIFO;
		break;
	default:
		if (type >= 0x20 && type < 0x7f)
			return fail(r, -EBADMSG, raw, "unsupported type '%c'", type);
		return fail(r, -EBADMSG, raw, "unsupported type 0x%02x", (unsigned char)type);
	}

	if (field_num(h + H_MODE, 8, &mode) || field_num(h + H_UID, 8, &uid) ||
	    field_num(h + H_GID, 8, &gid) || field_num(h + H_MTIME, 12, &mtime))
		return fail(r, -EBADMSG, raw, "bad number field");
	if (e->type == TAR_CHR || e->type == TAR_BLK) {
		if (field_num(h + H_DEVMAJOR, 8, &dmaj) || field_num(h + H_DEVMINOR, 8, &dmin) ||
		    dmaj < 0 || dmin < 0 || (uint64_t)dmaj > OCT7_MAX || (uint64_t)dmin > OCT7_MAX)
			return fail(r, -EBADMSG, raw, "bad device number field");
	}
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX || mode < 0)
		return fail(r, -EBADMSG, raw, "owner or mode out of range");
	if (r->ov.size)
		size = (int64_t)r->ov.size_v;

	rc = tar_path_clean(raw, e->path, sizeof(e->path));
	if (rc == -EINVAL)
		return fail(r, rc, raw, "path is absolute or has a '..' component");
	if (rc)
		return fail(r, rc, raw, "path too long");
	if (e->path[0] == '\0' && e->type != TAR_DIR)
		return fail(r, -EINVAL, raw, "an empty path that is not the root directory");

	if (e->type == TAR_SYMLINK || e->type == TAR_HARDLINK) {
		char lraw[RAW_MAX + 1];

		if (r->ov.link)
			memcpy(lraw, r->ov.link_v, sizeof(lraw));
		else
			field_str(h + H_LINK, H_LINK_LEN, lraw);
		if (lraw[0] == '\0')
			return fail(r, -EINVAL, raw, "link with an empty target");
		if (e->type == TAR_SYMLINK) {
			if (strlen(lraw) > TAR_PATH_MAX)
				return fail(r, -ENAMETOOLONG, raw, "symlink target too long");
			memcpy(e->link, lraw, sizeof(e->link));
		} else {
			rc = tar_path_clean(lraw, e->link, sizeof(e->link));
			if (rc == -EINVAL)
				return fail(r, rc, raw, "hardlink target is absolute or has a '..' component");
			if (rc)
				return fail(r, rc, raw, "hardlink target too long");
			if (e->link[0] == '\0')
				return fail(r, -EINVAL, raw, "hardlink to the root directory");
		}
	}
	e->mode = (uint32_t)mode & 07777;
	e->uid = r->ov.uid ? r->ov.uid_v : (uint32_t)uid;
	e->gid = r->ov.gid ? r->ov.gid_v : (uint32_t)gid;
	e->mtime = r->ov.mtime ? r->ov.mtime_v : mtime;
	e->devmajor = (uint32_t)dmaj;
	e->devminor = (uint32_t)dmin;
	e->size = e->type == TAR_REG ? (uint64_t)size : 0;

	memset(&r->ov, 0, sizeof(r->ov));
	r->pending = false;
	r->entries++;
	r->msg[0] = '\0'; /* only what this callback sets counts */
	rc = r->ops->entry ? r->ops->entry(r->ctx, e) : 0;
	if (rc) {
		if (rc > 0)
			rc = -EIO;
		if (r->msg[0] == '\0')
			fail(r, rc, e->path, "refused (%s)", strerror(-rc));
		r->err = rc;
		r->state = ST_ERROR;
		return rc;
	}
	/* Hard links carry no data whatever their size field says; other
	 * non-regular entries' data is skipped. */
	if (e->type == TAR_REG) {
		r->remain = (uint64_t)size;
		r->pad = tar_pad((uint64_t)size);
		r->state = ST_DATA;
		if (size == 0) {
			r->remain = 0;
			r->state = ST_HEADER;
		}
	} else if (e->type != TAR_HARDLINK && size > 0) {
		r->remain = (uint64_t)size;
		r->pad = tar_pad((uint64_t)size);
		r->state = ST_SKIP;
		/* the padding is skipped with the data (checked sum) */
		if (__builtin_add_overflow(r->remain, r->pad, &r->remain))
			return fail(r, -EBADMSG, raw, "size field too large");
		r->pad = 0;
	}
	return 0;
}

int tar_reader_feed(struct tar_reader *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int rc;

	/* Every iteration consumes at least one byte or changes state to one that will. */
	while (len > 0 || (r->state == ST_DATA && r->remain == 0) ||
	       (r->state == ST_META && r->remain == 0)) {
		switch (r->state) {
		case ST_ERROR:
			return r->err;
		case ST_END:
			return 0;
		case ST_HEADER: {
			size_t n = TAR_BLOCK - r->hdr_len;

			if (n > len)
				n = len;
			if (r->hdr_len == 0)
				r->hdr_offset = r->offset;
			memcpy(r->hdr + r->hdr_len, p, n);
			r->hdr_len += n;
			p += n;
			len -= n;
			r->offset += n;
			if (r->hdr_len == TAR_BLOCK) {
				r->hdr_len = 0;
				rc = header_done(r);
				if (rc)
					return rc;
			}
			break;
		}
		case ST_DATA: {
			size_t n;

			if (r->remain == 0) {
				r->remain = r->pad;
				r->pad = 0;
				r->state = r->remain ? ST_SKIP : ST_HEADER;
				break;
			}
			n = r->remain < len ? (size_t)r->remain : len;
			r->msg[0] = '\0';
			rc = r->ops->data ? r->ops->data(r->ctx, p, n) : 0;
			if (rc) {
				if (rc > 0)
					rc = -EIO;
				if (r->msg[0] == '\0')
					fail(r, rc, r->e.path, "data refused (%s)", strerror(-rc));
				r->err = rc;
				r->state = ST_ERROR;
				return rc;
			}
			r->remain -= n;
			p += n;
			len -= n;
			r->offset += n;
			break;
		}
		case ST_META: {
			size_t n;

			if (r->remain == 0) {
				r->remain = r->pad;
				r->pad = 0;
				r->state = r->remain ? ST_SKIP : ST_HEADER;
				break;
			}
			n = r->remain < len ? (size_t)r->remain : len;
			memcpy(r->meta + r->meta_len, p, n);
			r->meta_len += n;
			r->remain -= n;
			p += n;
			len -= n;
			r->offset += n;
			if (r->remain == 0) {
				rc = meta_done(r);
				if (rc)
					return rc;
			}
			break;
		}
		case ST_SKIP: {
			size_t n = r->remain < len ? (size_t)r->remain : len;

			r->remain -= n;
			p += n;
			len -= n;
			r->offset += n;
			if (r->remain == 0)
				r->state = ST_HEADER;
			break;
		}
		}
	}
	return r->state == ST_ERROR ? r->err : 0;
}

int tar_reader_finish(struct tar_reader *r)
{
	switch (r->state) {
	case ST_ERROR:
		return r->err;
	case ST_END:
		return 0;
	case ST_HEADER:
		if (r->hdr_len == 0 && !r->pending)
			return 0;
		if (r->hdr_len == 0)
			r->hdr_offset = r->offset;
		return fail(r, -EPIPE, NULL, "archive truncated in a header");
	case ST_DATA:
		return fail(r, -EPIPE, r->e.path, "archive truncated in the entry's data");
	case ST_META:
		return fail(r, -EPIPE, NULL, "archive truncated in an extended header");
	case ST_SKIP:
		return fail(r, -EPIPE, NULL, "archive truncated in skipped data or padding");
	}
	return 0;
}

/* ---- writing ---- */

/* An octal field of width w: w-1 digits and a NUL. The caller checked the value fits. */
static void put_oct(uint8_t *f, size_t w, uint64_t v)
{
	f[w - 1] = '\0';
	for (size_t i = w - 1; i-- > 0;) {
		f[i] = (uint8_t)('0' + (v & 7));
		v >>= 3;
	}
}

/* Digits of v in decimal. */
static size_t dec_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Appends one PAX record "LEN key=value\n" at out[*pos] (room checked by the caller's bound). */
static int pax_add(uint8_t *out, size_t cap, size_t *pos, const char *key, const char *val, size_t vlen)
{
	size_t klen = strlen(key), body = 1 + klen + 1 + vlen + 1, len = body + 1, d;

	/* The length counts its own digits: grow until stable (at most twice). */
	for (int i = 0; i < 4; i++) {
		d = dec_len(len);
		if (d + body == len)
			break;
		len = d + body;
	}
	if (len > cap - *pos)
		return -ENAMETOOLONG;
	*pos += (size_t)snprintf((char *)out + *pos, cap - *pos, "%zu %s=", len, key);
	memcpy(out + *pos, val, vlen);
	*pos += vlen;
	out[(*pos)++] = '\n';
	return 0;
}

/* Fills in a ustar header's fixed parts and its checksum. */
static void ustar_finish(uint8_t *h)
{
	unsigned int sum = 0;

	memcpy(h + H_MAGIC, "ustar\0", 6);
	memcpy(h + H_VERSION, "00", 2);
	memset(h + H_CHKSUM, ' ', 8);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	put_oct(h + H_CHKSUM, 7, sum); /* six digits, NUL, then the space left from above */
	h[H_CHKSUM + 7] = ' ';
}

/* Splits name (len bytes) into ustar prefix and name; false if it cannot. */
static bool ustar_split(const char *name, size_t len, size_t *cut)
{
	if (len <= H_NAME_LEN) {
		*cut = 0;
		return true;
	}
	/* The leftmost '/' leaving at most 155 before and 1..100 after. */
	for (size_t i = len - H_NAME_LEN - 1; i < len && i <= H_PREFIX_LEN; i++) {
		if (name[i] == '/' && i > 0 && len - i - 1 >= 1) {
			*cut = i;
			return true;
		}
	}
	return false;
}

ssize_t tar_write_header(const struct tar_entry *e, uint8_t *out, size_t outsz)
{
	static const char types[] = { [TAR_REG] = '0', [TAR_DIR] = '5', [TAR_SYMLINK] = '2',
				      [TAR_HARDLINK] = '1', [TAR_CHR] = '3', [TAR_BLK] = '4',
				      [TAR_FIFO] = '6' };
	char name[TAR_PATH_MAX + 2], clean[TAR_PATH_MAX + 1], num[32];
	size_t nlen, llen, cut = 0, plen, hoff;
	uint8_t *pax, *h;
	uint64_t size = e->type == TAR_REG ? e->size : 0;
	bool long_path, long_link, split;
	int rc;

	if (outsz < TAR_HDR_MAX || (unsigned int)e->type > TAR_FIFO)
		return -EINVAL;
	nlen = strnlen(e->path, sizeof(e->path));
	if (nlen > TAR_PATH_MAX)
		return -ENAMETOOLONG;
	rc = tar_path_clean(e->path, clean, sizeof(clean));
	if (rc)
		return rc;
	if (strcmp(clean, e->path) != 0)
		return -EINVAL;
	if (nlen == 0 && e->type != TAR_DIR)
		return -EINVAL;
	llen = strnlen(e->link, sizeof(e->link));
	if (llen > TAR_PATH_MAX)
		return -ENAMETOOLONG;
	if (e->type == TAR_SYMLINK || e->type == TAR_HARDLINK) {
		if (llen == 0)
			return -EINVAL;
		if (e->type == TAR_HARDLINK) {
			rc = tar_path_clean(e->link, clean, sizeof(clean));
			if (rc)
				return rc;
			if (strcmp(clean, e->link) != 0)
				return -EINVAL;
		}
	} else {
		llen = 0;
	}
	if ((e->type == TAR_CHR || e->type == TAR_BLK) &&
	    (e->devmajor > OCT7_MAX || e->devminor > OCT7_MAX))
		return -EINVAL;

	/* The name as archived: the root is "./", a directory ends in '/'. */
	if (nlen == 0) {
		memcpy(name, "./", 3);
		nlen = 2;
	} else {
		memcpy(name, e->path, nlen + 1);
		if (e->type == TAR_DIR) {
			name[nlen++] = '/';
			name[nlen] = '\0';
		}
	}
	split = ustar_split(name, nlen, &cut);
	long_path = !split;
	long_link = llen > H_LINK_LEN;

	/* The PAX body goes after its header block; build it at out+512. */
	pax = out + TAR_BLOCK;
	plen = 0;
	{
		size_t cap = outsz - 2 * TAR_BLOCK - TAR_BLOCK; /* room for both headers + padding */

		if (long_path && (rc = pax_add(pax, cap, &plen, "path", name, nlen)))
			return rc;
		if (long_link && (rc = pax_add(pax, cap, &plen, "linkpath", e->link, llen)))
			return rc;
		if (size > OCT11_MAX) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
			if ((rc = pax_add(pax, cap, &plen, "size", num, strlen(num))))
				return rc;
		}
		if (e->uid > OCT7_MAX) {
			snprintf(num, sizeof(num), "%u", e->uid);
			if ((rc = pax_add(pax, cap, &plen, "uid", num, strlen(num))))
				return rc;
		}
		if (e->gid > OCT7_MAX) {
			snprintf(num, sizeof(num), "%u", e->gid);
			if ((rc = pax_add(pax, cap, &plen, "gid", num, strlen(num))))
				return rc;
		}
		if (e->mtime < 0 || (uint64_t)e->mtime > OCT11_MAX) {
			snprintf(num, sizeof(num), "%lld", (long long)e->mtime);
			if ((rc = pax_add(pax, cap, &plen, "mtime", num, strlen(num))))
				return rc;
		}
	}

	hoff = 0;
	if (plen) {
		/* The 'x' header block: a fixed name from the entry's last component. */
		const char *base = strrchr(e->path, '/');
		uint8_t *x = out;

		base = base ? base + 1 : e->path;
		memset(x, 0, TAR_BLOCK);
		snprintf((char *)x + H_NAME, H_NAME_LEN, "PaxHeaders/%.88s", base);
		put_oct(x + H_MODE, 8, 0644);
		put_oct(x + H_UID, 8, 0);
		put_oct(x + H_GID, 8, 0);
		put_oct(x + H_SIZE, 12, plen);
		put_oct(x + H_MTIME, 12, 0);
		x[H_TYPE] = 'x';
		put_oct(x + H_DEVMAJOR, 8, 0);
		put_oct(x + H_DEVMINOR, 8, 0);
		ustar_finish(x);
		memset(pax + plen, 0, tar_pad(plen));
		hoff = TAR_BLOCK + plen + tar_pad(plen);
	}

	h = out + hoff;
	memset(h, 0, TAR_BLOCK);
	if (long_path) {
		memcpy(h + H_NAME, name, H_NAME_LEN); /* truncated; the PAX path counts */
	} else if (cut) {
		memcpy(h + H_PREFIX, name, cut);
		memcpy(h + H_NAME, name + cut + 1, nlen - cut - 1);
	} else {
		memcpy(h + H_NAME, name, nlen);
	}
	put_oct(h + H_MODE, 8, e->mode & 07777);
	put_oct(h + H_UID, 8, e->uid > OCT7_MAX ? 0 : e->uid);
	put_oct(h + H_GID, 8, e->gid > OCT7_MAX ? 0 : e->gid);
	put_oct(h + H_SIZE, 12, size > OCT11_MAX ? 0 : size);
	put_oct(h + H_MTIME, 12, (e->mtime < 0 || (uint64_t)e->mtime > OCT11_MAX) ? 0 : (uint64_t)e->mtime);
	h[H_TYPE] = (uint8_t)types[e->type];
	if (llen)
		memcpy(h + H_LINK, e->link, llen > H_LINK_LEN ? H_LINK_LEN : llen);
	put_oct(h + H_DEVMAJOR, 8, (e->type == TAR_CHR || e->type == TAR_BLK) ? e->devmajor : 0);
	put_oct(h + H_DEVMINOR, 8, (e->type == TAR_CHR || e->type == TAR_BLK) ? e->devminor : 0);
	ustar_finish(h);
	return (ssize_t)(hoff + TAR_BLOCK);
}
