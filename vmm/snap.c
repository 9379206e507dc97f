/* The snapshot state file's container: tagged sections appended to a buffer, a checksummed header, and a reader that validates everything before use. */
#include "vmm/snap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/sha256.h"

#define SNAP_SECTION_HDR 16 /* u32 tag, u32 instance, u64 length */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->section_start = SIZE_MAX;
	/* The header is reserved up front; finish fills it in. */
	w->buf = calloc(1, 4096);
	if (!w->buf) {
		w->err = -ENOMEM;
		return;
	}
	w->cap = 4096;
	w->len = SNAP_HDR_SIZE;
}

/* Makes room for n more bytes; the file never grows past SNAP_MAX_FILE. */
static int writer_reserve(struct snap_writer *w, size_t n)
{
	size_t need, cap;
	uint8_t *nb;

	if (w->err)
		return w->err;
	if (__builtin_add_overflow(w->len, n, &need) || need > SNAP_MAX_FILE)
		return w->err = -EFBIG;
	if (need <= w->cap)
		return 0;
	cap = w->cap;
	while (cap < need)
		cap *= 2;
	if (cap > SNAP_MAX_FILE)
		cap = SNAP_MAX_FILE;
	nb = realloc(w->buf, cap);
	if (!nb)
		return w->err = -ENOMEM;
	w->buf = nb;
	w->cap = cap;
	return 0;
}

int snap_begin(struct snap_writer *w, uint32_t tag, uint32_t instance)
{
	int err;

	if (w->err)
		return w->err;
	if (w->section_start != SIZE_MAX)
		return w->err = -EINVAL; /* the previous section is still open */
	err = writer_reserve(w, SNAP_SECTION_HDR);
	if (err)
		return err;
	w->section_start = w->len;
	put_le32(w->buf + w->len, tag);
	put_le32(w->buf + w->len + 4, instance);
	put_le64(w->buf + w->len + 8, 0);
	w->len += SNAP_SECTION_HDR;
	return 0;
}

int snap_put(struct snap_writer *w, const void *data, size_t len)
{
	int err;

	if (w->err)
		return w->err;
	if (w->section_start == SIZE_MAX)
		return w->err = -EINVAL; /* data outside a section */
	err = writer_reserve(w, len);
	if (err)
		return err;
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

int snap_put_u32(struct snap_writer *w, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	return snap_put(w, b, sizeof(b));
}

int snap_put_u64(struct snap_writer *w, uint64_t v)
{
	uint8_t b[8];

	put_le64(b, v);
	return snap_put(w, b, sizeof(b));
}

int snap_end(struct snap_writer *w)
{
	if (w->err)
		return w->err;
	if (w->section_start == SIZE_MAX)
		return w->err = -EINVAL;
	put_le64(w->buf + w->section_start + 8, w->len - w->section_start - SNAP_SECTION_HDR);
	w->section_start = SIZE_MAX;
	return 0;
}

int snap_writer_finish(struct snap_writer *w, const uint8_t **data, size_t *len)
{
	if (w->err)
		return w->err;
	if (w->section_start != SIZE_MAX)
		return w->err = -EINVAL; /* a section left open */
	memcpy(w->buf, SNAP_MAGIC, 8);
	put_le32(w->buf + 8, SNAP_VERSION);
	put_le32(w->buf + 12, 0);
	put_le64(w->buf + 16, w->len - SNAP_HDR_SIZE);
	sha256_digest(w->buf + SNAP_HDR_SIZE, w->len - SNAP_HDR_SIZE, w->buf + 24);
	*data = w->buf;
	*len = w->len;
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
	w->section_start = SIZE_MAX;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Section headers in file order: (tag, instance, offset of the section header). */
struct sec_key {
	uint32_t tag, instance;
};

static int sec_key_cmp(const void *a, const void *b)
{
	const struct sec_key *x = a, *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	if (x->instance != y->instance)
		return x->instance < y->instance ? -1 : 1;
	return 0;
}

int snap_reader_open(struct snap_reader *r, const uint8_t *data, size_t len, char *err,
		     size_t errlen)
{
	uint8_t sum[SHA256_DIGEST_SIZE];
	struct sec_key *keys = NULL;
	size_t off, n = 0;
	uint64_t body_len;
	uint32_t version;
	int ret = -EBADMSG;

	memset(r, 0, sizeof(*r));
	if (len < 8 || memcmp(data, SNAP_MAGIC, 8) != 0) {
		set_err(err, errlen, "not a minivm snapshot state file (bad magic)");
		return -EINVAL;
	}
	if (len < SNAP_HDR_SIZE) {
		set_err(err, errlen, "snapshot state file truncated: %zu bytes, the header needs %d",
			len, SNAP_HDR_SIZE);
		return -EBADMSG;
	}
	version = get_le32(data + 8);
	if (version != SNAP_VERSION) {
		set_err(err, errlen, "snapshot format version %u is not supported (this minivm reads version %u)",
			version, SNAP_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (get_le32(data + 12) != 0) {
		set_err(err, errlen, "snapshot state file has unknown flags 0x%x", get_le32(data + 12));
		return -EBADMSG;
	}
	if (len > SNAP_MAX_FILE) {
		set_err(err, errlen, "snapshot state file too large: %zu bytes (limit %u)", len,
			SNAP_MAX_FILE);
		return -EBADMSG;
	}
	body_len = get_le64(data + 16);
	if (body_len != len - SNAP_HDR_SIZE) {
		set_err(err, errlen,
			"snapshot state file truncated or padded: body is %zu bytes, header says %llu",
			len - SNAP_HDR_SIZE, (unsigned long long)body_len);
		return -EBADMSG;
	}
	sha256_digest(data + SNAP_HDR_SIZE, (size_t)body_len, sum);
	if (memcmp(sum, data + 24, SHA256_DIGEST_SIZE) != 0) {
		set_err(err, errlen, "snapshot state file checksum mismatch (corrupted)");
		return -EBADMSG;
	}

	/* Walk the sections: each within the body; collect keys for the duplicate check. */
	keys = calloc(SNAP_MAX_SECTIONS, sizeof(*keys));
	if (!keys) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	off = 0;
	while (off < body_len) {
		const uint8_t *h = data + SNAP_HDR_SIZE + off;
		uint64_t slen, end;

		if (body_len - off < SNAP_SECTION_HDR) {
			set_err(err, errlen, "snapshot section header at body offset %zu runs past the end", off);
			goto out;
		}
		slen = get_le64(h + 8);
		if (slen > body_len - off - SNAP_SECTION_HDR) {
			set_err(err, errlen,
				"snapshot section (tag %u, instance %u) at body offset %zu: length %llu runs past the end",
				get_le32(h), get_le32(h + 4), off, (unsigned long long)slen);
			goto out;
		}
		if (n == SNAP_MAX_SECTIONS) {
			set_err(err, errlen, "snapshot has more than %d sections", SNAP_MAX_SECTIONS);
			goto out;
		}
		keys[n].tag = get_le32(h);
		keys[n].instance = get_le32(h + 4);
		n++;
		end = off + SNAP_SECTION_HDR + slen;
		off = (size_t)end;
	}
	qsort(keys, n, sizeof(*keys), sec_key_cmp);
	for (size_t i = 1; i < n; i++) {
		if (sec_key_cmp(&keys[i - 1], &keys[i]) == 0) {
			set_err(err, errlen, "snapshot section (tag %u, instance %u) appears twice",
				keys[i].tag, keys[i].instance);
			goto out;
		}
	}
	r->body = data + SNAP_HDR_SIZE;
	r->body_len = (size_t)body_len;
	r->version = version;
	ret = 0;
out:
	free(keys);
	return ret;
}

int snap_find(const struct snap_reader *r, uint32_t tag, uint32_t instance, struct snap_cursor *c)
{
	size_t off = 0;

	/* Bounds were all checked by snap_reader_open. */
	while (r->body && off + SNAP_SECTION_HDR <= r->body_len) {
		const uint8_t *h = r->body + off;
		uint64_t slen = get_le64(h + 8);

		if (slen > r->body_len - off - SNAP_SECTION_HDR)
			return -EBADMSG;
		if (get_le32(h) == tag && get_le32(h + 4) == instance) {
			c->p = h + SNAP_SECTION_HDR;
			c->left = (size_t)slen;
			c->tag = tag;
			c->instance = instance;
			return 0;
		}
		off += SNAP_SECTION_HDR + (size_t)slen;
	}
	return -ENOENT;
}

int snap_get(struct snap_cursor *c, void *out, size_t len)
{
	if (len > c->left)
		return -EBADMSG;
	if (len)
		memcpy(out, c->p, len);
	c->p += len;
	c->left -= len;
	return 0;
}

int snap_get_u32(struct snap_cursor *c, uint32_t *v)
{
	uint8_t b[4];
	int err = snap_get(c, b, sizeof(b));

	if (err)
		return err;
	*v = get_le32(b);
	return 0;
}

int snap_get_u64(struct snap_cursor *c, uint64_t *v)
{
	uint8_t b[8];
	int err = snap_get(c, b, sizeof(b));

	if (err)
		return err;
	*v = get_le64(b);
	return 0;
}
