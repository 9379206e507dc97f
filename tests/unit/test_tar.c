/* Unit tests for rootfs/agent/tar.c: path cleaning, writer/reader round trips (every type, long names, big ids, any split), archives made by GNU tar, GNU tar reading ours, and every rejection. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"

/* ---- helpers ---- */

#define MAX_ENTRIES 64

/* What a reader delivered: entries and each one's data. */
struct got {
	struct tar_entry e[MAX_ENTRIES];
	uint8_t *data[MAX_ENTRIES];
	size_t len[MAX_ENTRIES];
	size_t n;
	int fail_at; /* entry index whose callback fails (-1: none) */
};

static int got_entry(void *ctx, const struct tar_entry *e)
{
	struct got *g = ctx;

	ck_assert_uint_lt(g->n, MAX_ENTRIES);
	if ((int)g->n == g->fail_at)
		return -EPERM;
	g->e[g->n] = *e;
	g->data[g->n] = NULL;
	g->len[g->n] = 0;
	g->n++;
	return 0;
}

static int got_data(void *ctx, const void *buf, size_t len)
{
	struct got *g = ctx;
	size_t i = g->n - 1;

	ck_assert_uint_gt(g->n, 0);
	ck_assert_uint_gt(len, 0);
	g->data[i] = realloc(g->data[i], g->len[i] + len);
	ck_assert_ptr_nonnull(g->data[i]);
	memcpy(g->data[i] + g->len[i], buf, len);
	g->len[i] += len;
	return 0;
}

static const struct tar_reader_ops got_ops = { got_entry, got_data };

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

/* An archive being built in memory. */
struct arch {
	uint8_t *buf;
	size_t len, cap;
};

static void arch_put(struct arch *a, const void *p, size_t n)
{
	if (a->len + n > a->cap) {
		a->cap = (a->len + n) * 2;
		a->buf = realloc(a->buf, a->cap);
		ck_assert_ptr_nonnull(a->buf);
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void arch_entry(struct arch *a, const struct tar_entry *e, const void *data)
{
	static uint8_t hdr[TAR_HDR_MAX], zero[TAR_BLOCK];
	ssize_t h = tar_write_header(e, hdr, sizeof(hdr));

	ck_assert_int_gt(h, 0);
	ck_assert_int_eq(h % TAR_BLOCK, 0);
	arch_put(a, hdr, (size_t)h);
	if (e->type == TAR_REG && e->size) {
		arch_put(a, data, e->size);
		arch_put(a, zero, tar_pad(e->size));
	}
}

static void arch_end(struct arch *a)
{
	static const uint8_t zero[TAR_END_SIZE];

	arch_put(a, zero, sizeof(zero));
}

/* Feeds buf in pieces of `step` bytes (0: all at once); returns feed's or finish's result. */
static int read_all(const uint8_t *buf, size_t len, size_t step, struct got *g, char *msg, size_t msglen)
{
	struct tar_reader *r;
	int rc = 0;

	g->n = 0;
	ck_assert_int_eq(tar_reader_new(&got_ops, g, &r), 0);
	if (step == 0)
		step = len ? len : 1;
	for (size_t off = 0; off < len && rc == 0; off += step)
		rc = tar_reader_feed(r, buf + off, len - off < step ? len - off : step);
	if (rc == 0)
		rc = tar_reader_finish(r);
	if (msg)
		snprintf(msg, msglen, "%s", tar_reader_error(r));
	if (rc)
		ck_assert_msg(tar_reader_error(r)[0] != '\0', "error %d with no message", rc);
	tar_reader_free(r);
	return rc;
}

static struct tar_entry ent(enum tar_type type, const char *path, const char *link, uint64_t size)
{
	struct tar_entry e;

	memset(&e, 0, sizeof(e));
	e.type = type;
	snprintf(e.path, sizeof(e.path), "%s", path);
	snprintf(e.link, sizeof(e.link), "%s", link ? link : "");
	e.size = size;
	e.mode = type == TAR_DIR ? 0755 : 0644;
	e.mtime = 1700000000;
	return e;
}

/* Recomputes a raw header's checksum after a test edited it. */
static void fix_checksum(uint8_t *h)
{
	unsigned int sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* One ustar header block for e (which must fit ustar), for tests to edit. */
static void raw_header(const struct tar_entry *e, uint8_t h[TAR_BLOCK])
{
	uint8_t buf[TAR_HDR_MAX];

	ck_assert_int_eq(tar_write_header(e, buf, sizeof(buf)), TAR_BLOCK);
	memcpy(h, buf, TAR_BLOCK);
}

static char *repeat_path(char *buf, size_t comps, size_t comp_len)
{
	size_t o = 0;

	for (size_t i = 0; i < comps; i++) {
		if (i)
			buf[o++] = '/';
		memset(buf + o, 'a' + (int)(i % 26), comp_len);
		o += comp_len;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- tests ---- */

START_TEST(test_path_clean)
{
	static const struct {
		const char *in, *out;
		int rc;
	} v[] = {
		{ "a", "a", 0 },
		{ "./a/b", "a/b", 0 },
		{ "a//b/", "a/b", 0 },
		{ "a/./b/.", "a/b", 0 },
		{ ".", "", 0 },
		{ "./", "", 0 },
		{ "", "", 0 },
		{ "././x", "x", 0 },
		{ "...", "...", 0 },
		{ "a/..b", "a/..b", 0 },
		{ "/abs", NULL, -EINVAL },
		{ "../x", NULL, -EINVAL },
		{ "a/../b", NULL, -EINVAL },
		{ "a/..", NULL, -EINVAL },
		{ "..", NULL, -EINVAL },
	};
	char out[TAR_PATH_MAX + 1], big[TAR_PATH_MAX + 10];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int rc = tar_path_clean(v[i].in, out, sizeof(out));

		ck_assert_msg(rc == v[i].rc, "'%s': %d", v[i].in, rc);
		if (rc == 0)
			ck_assert_str_eq(out, v[i].out);
	}
	/* TAR_PATH_MAX exactly fits; one more does not; a small out is respected. */
	memset(big, 'x', TAR_PATH_MAX);
	big[TAR_PATH_MAX] = '\0';
	ck_assert_int_eq(tar_path_clean(big, out, sizeof(out)), 0);
	ck_assert_uint_eq(strlen(out), TAR_PATH_MAX);
	memcpy(big + TAR_PATH_MAX, "y", 2);
	ck_assert_int_eq(tar_path_clean(big, out, sizeof(out)), -ENAMETOOLONG);
	ck_assert_int_eq(tar_path_clean("abcdef", out, 4), -ENAMETOOLONG);
	ck_assert_int_eq(tar_path_clean("abc", out, 4), 0);
	ck_assert_str_eq(out, "abc");
	ck_assert_uint_eq(tar_pad(0), 0);
	ck_assert_uint_eq(tar_pad(1), 511);
	ck_assert_uint_eq(tar_pad(512), 0);
	ck_assert_uint_eq(tar_pad(513), 511);
}
END_TEST

/* Every type, long names (ustar split, PAX), long links, big ids, odd times: read back identically at every split. */
START_TEST(test_roundtrip)
{
	char p150[300], p300[400], p4095[TAR_PATH_MAX + 1], l200[256];
	struct tar_entry es[16];
	const char *data[16] = { 0 };
	struct arch a = { 0 };
	struct got *g = calloc(1, sizeof(*g));
	size_t n = 0;
	uint8_t five[5] = { 'h', 'e', 'l', 'l', 'o' };
	static uint8_t big[3000];

	ck_assert_ptr_nonnull(g);
	g->fail_at = -1;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	repeat_path(p150, 10, 14);  /* 149 bytes: fits prefix+name */
	repeat_path(p300, 20, 14);  /* 299 bytes: needs PAX */
	repeat_path(p4095, 273, 14); /* 273*15-1 = 4094 bytes */
	strcat(p4095, "z");
	memset(l200, 'L', 200);
	l200[200] = '\0';
	ck_assert_uint_eq(strlen(p4095), TAR_PATH_MAX);

	es[n++] = ent(TAR_DIR, "", NULL, 0);
	es[n] = ent(TAR_REG, "f", NULL, 5);
	data[n++] = (const char *)five;
	es[n] = ent(TAR_REG, "big", NULL, sizeof(big));
	data[n++] = (const char *)big;
	es[n++] = ent(TAR_REG, "empty", NULL, 0);
	es[n++] = ent(TAR_DIR, "d", NULL, 0);
	es[n++] = ent(TAR_SYMLINK, "d/sl", "../f", 0);
	es[n++] = ent(TAR_SYMLINK, "d/abs", "/etc/passwd", 0);
	es[n++] = ent(TAR_SYMLINK, "d/longlink", l200, 0);
	es[n++] = ent(TAR_HARDLINK, "d/hl", "f", 0);
	es[n] = ent(TAR_CHR, "dev/null", NULL, 0);
	es[n].devmajor = 1;
	es[n++].devminor = 3;
	es[n] = ent(TAR_BLK, "dev/vda", NULL, 0);
	es[n].devmajor = 254;
	es[n++].devminor = 1048575;
	es[n++] = ent(TAR_FIFO, "fifo", NULL, 0);
	es[n++] = ent(TAR_DIR, p150, NULL, 0);
	es[n++] = ent(TAR_REG, p300, NULL, 0);
	es[n] = ent(TAR_DIR, p4095, NULL, 0);
	es[n].uid = 4000000000u; /* over 07777777: PAX uid */
	es[n].gid = 07777777;
	es[n++].mtime = -12345; /* negative: PAX mtime */
	es[n] = ent(TAR_REG, "ids", NULL, 0);
	es[n].uid = 1000;
	es[n].gid = 100000000;
	es[n].mode = 07755;
	es[n++].mtime = (int64_t)1 << 40; /* over 11 octal digits */
	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++)
		arch_entry(&a, &es[i], data[i]);
	arch_end(&a);

	static const size_t steps[] = { 0, 1, 7, 511, 512, 513, 4096 };
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		ck_assert_int_eq(read_all(a.buf, a.len, steps[s], g, NULL, 0), 0);
		ck_assert_uint_eq(g->n, n);
		for (size_t i = 0; i < n; i++) {
			const struct tar_entry *w = &es[i], *e = &g->e[i];

			ck_assert_int_eq(e->type, w->type);
			ck_assert_str_eq(e->path, w->path);
			ck_assert_str_eq(e->link, w->link);
			ck_assert_uint_eq(e->mode, w->mode);
			ck_assert_uint_eq(e->uid, w->uid);
			ck_assert_uint_eq(e->gid, w->gid);
			ck_assert_int_eq(e->mtime, w->mtime);
			ck_assert_uint_eq(e->size, w->type == TAR_REG ? w->size : 0);
			ck_assert_uint_eq(e->devmajor, w->devmajor);
			ck_assert_uint_eq(e->devminor, w->devminor);
			ck_assert_uint_eq(g->len[i], e->size);
			if (e->size)
				ck_assert_int_eq(memcmp(g->data[i], data[i], e->size), 0);
		}
		got_free(g);
	}
	/* Deterministic: the same entry gives the same bytes. */
	{
		static uint8_t h1[TAR_HDR_MAX], h2[TAR_HDR_MAX];
		ssize_t l1 = tar_write_header(&es[n - 2], h1, sizeof(h1));
		ssize_t l2 = tar_write_header(&es[n - 2], h2, sizeof(h2));

		ck_assert_int_eq(l1, l2);
		ck_assert_int_gt(l1, TAR_BLOCK);
		ck_assert_int_eq(memcmp(h1, h2, (size_t)l1), 0);
	}
	free(a.buf);
	free(g);
}
END_TEST

/* A size over 8 GiB-1 goes through PAX; the archive then ends early: -EPIPE. */
START_TEST(test_huge_size)
{
	struct tar_entry e = ent(TAR_REG, "huge", NULL, (uint64_t)10 << 30);
	static uint8_t h[TAR_HDR_MAX];
	struct got *g = calloc(1, sizeof(*g));
	ssize_t l = tar_write_header(&e, h, sizeof(h));
	char msg[512];

	ck_assert_ptr_nonnull(g);
	g->fail_at = -1;
	ck_assert_int_gt(l, TAR_BLOCK);
	ck_assert_int_eq(read_all(h, (size_t)l, 0, g, msg, sizeof(msg)), -EPIPE);
	ck_assert_uint_eq(g->n, 1);
	ck_assert_uint_eq(g->e[0].size, (uint64_t)10 << 30);
	ck_assert_ptr_nonnull(strstr(msg, "huge"));
	free(g);
}
END_TEST

/* The writer refuses what it cannot write faithfully. */
START_TEST(test_write_refusals)
{
	static uint8_t h[TAR_HDR_MAX];
	struct tar_entry e;

	e = ent(TAR_REG, "a/../b", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_REG, "/abs", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_REG, "a//b", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_REG, "", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_SYMLINK, "s", "", 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_HARDLINK, "h", "../x", 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	e = ent(TAR_REG, "ok", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, TAR_HDR_MAX - 1), -EINVAL);
	e = ent(TAR_CHR, "c", NULL, 0);
	e.devminor = 1u << 30;
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), -EINVAL);
	/* The root directory is "./"; a directory's name ends in '/'. */
	e = ent(TAR_DIR, "", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), TAR_BLOCK);
	ck_assert_str_eq((char *)h, "./");
	e = ent(TAR_DIR, "x/y", NULL, 0);
	ck_assert_int_eq(tar_write_header(&e, h, sizeof(h)), TAR_BLOCK);
	ck_assert_str_eq((char *)h, "x/y/");
	ck_assert_int_eq(memcmp(h + 257, "ustar\0" "00", 8), 0);
	ck_assert_int_eq(h[265], 0); /* uname empty */
}
END_TEST

/* One bad archive: expected result and a word its message must hold. */
static void expect_bad(const uint8_t *buf, size_t len, int want, const char *word)
{
	struct got *g = calloc(1, sizeof(*g));
	char msg[512];

	ck_assert_ptr_nonnull(g);
	g->fail_at = -1;
	for (size_t step = 0; step <= 1; step++) {
		int rc = read_all(buf, len, step, g, msg, sizeof(msg));

		ck_assert_msg(rc == want, "got %d want %d (%s)", rc, want, msg);
		ck_assert_msg(strstr(msg, word) != NULL, "'%s' not in '%s'", word, msg);
		ck_assert_ptr_nonnull(strstr(msg, "offset"));
		got_free(g);
	}
	free(g);
}

START_TEST(test_rejections)
{
	struct tar_entry e = ent(TAR_REG, "file", NULL, 0);
	uint8_t h[3 * TAR_BLOCK];
	static uint8_t big[TAR_HDR_MAX + 2 * TAR_BLOCK];

	/* Bad checksum. */
	raw_header(&e, h);
	h[0] ^= 1;
	expect_bad(h, TAR_BLOCK, -EBADMSG, "checksum");

	/* Paths: "../x", "/abs", "a/../../b" (and the message names the entry). */
	static const char *const bad_paths[] = { "../x", "/abs", "a/../../b" };
	for (size_t i = 0; i < 3; i++) {
		raw_header(&e, h);
		memset(h, 0, 100);
		memcpy(h, bad_paths[i], strlen(bad_paths[i]));
		fix_checksum(h);
		expect_bad(h, TAR_BLOCK, -EINVAL, bad_paths[i]);
	}
	/* A hardlink to "../x" and to "/etc/shadow". */
	e = ent(TAR_HARDLINK, "hl", "x", 0);
	raw_header(&e, h);
	memcpy(h + 157, "../x", 5);
	fix_checksum(h);
	expect_bad(h, TAR_BLOCK, -EINVAL, "hl");
	memcpy(h + 157, "/etc/shadow", 12);
	fix_checksum(h);
	expect_bad(h, TAR_BLOCK, -EINVAL, "hardlink");

	/* Unknown types: sparse, volume, multi-volume, a control byte. */
	static const char types[] = { 'S', 'V', 'M', 'D', 'A', 0x01 };
	for (size_t i = 0; i < sizeof(types); i++) {
		e = ent(TAR_REG, "odd", NULL, 0);
		raw_header(&e, h);
		h[156] = (uint8_t)types[i];
		fix_checksum(h);
		expect_bad(h, TAR_BLOCK, -EBADMSG, "unsupported type");
	}
	/* Bad numbers. */
	e = ent(TAR_REG, "num", NULL, 0);
	raw_header(&e, h);
	memcpy(h + 124, "0000000009x", 11);
	fix_checksum(h);
	expect_bad(h, TAR_BLOCK, -EBADMSG, "size");
	raw_header(&e, h);
	memcpy(h + 108, "12a4567", 7);
	fix_checksum(h);
	expect_bad(h, TAR_BLOCK, -EBADMSG, "num");

	/* Truncated: in a header, in data, in padding. */
	e = ent(TAR_REG, "data", NULL, 100);
	raw_header(&e, h);
	memset(h + TAR_BLOCK, 'x', 2 * TAR_BLOCK);
	expect_bad(h, 300, -EPIPE, "truncated");
	expect_bad(h, TAR_BLOCK + 50, -EPIPE, "data");
	expect_bad(h, TAR_BLOCK + 100, -EPIPE, "truncated");

	/* An oversized PAX header; a PAX record that does not parse; sparse PAX. */
	e = ent(TAR_REG, "PaxHeaders/x", NULL, 0);
	raw_header(&e, h);
	h[156] = 'x';
	snprintf((char *)h + 124, 12, "%011o", TAR_PAX_MAX + 1);
	fix_checksum(h);
	expect_bad(h, TAR_BLOCK, -E2BIG, "PAX");
	static const char *const bad_pax[] = {
		"99 path=x\n", "6 path\n", "x path=a\n", "9 path=a\nXX", "3 =\n", "5 a=\n\n",
		"22 GNU.sparse.major=1\n", "12 uid=-123\n", "12 mtime=1x\n",
	};
	for (size_t i = 0; i < sizeof(bad_pax) / sizeof(bad_pax[0]); i++) {
		size_t l = strlen(bad_pax[i]);

		memset(big, 0, sizeof(big));
		raw_header(&e, big);
		big[156] = 'x';
		snprintf((char *)big + 124, 12, "%011o", (unsigned int)l);
		fix_checksum(big);
		memcpy(big + TAR_BLOCK, bad_pax[i], l);
		e = ent(TAR_REG, "after", NULL, 0);
		raw_header(&e, big + 2 * TAR_BLOCK);
		e = ent(TAR_REG, "PaxHeaders/x", NULL, 0);
		expect_bad(big, 3 * TAR_BLOCK, -EBADMSG, "PAX");
	}
	/* An extended header with no entry after it. */
	memset(big, 0, sizeof(big));
	raw_header(&e, big);
	big[156] = 'x';
	snprintf((char *)big + 124, 12, "%011o", 10);
	fix_checksum(big);
	memcpy(big + TAR_BLOCK, "10 path=a\n", 10);
	expect_bad(big, 2 * TAR_BLOCK, -EPIPE, "truncated");
	expect_bad(big, 4 * TAR_BLOCK, -EBADMSG, "extended header");
	/* A header after a lone zero block. */
	memset(big, 0, sizeof(big));
	e = ent(TAR_REG, "late", NULL, 0);
	raw_header(&e, big + TAR_BLOCK);
	expect_bad(big, 2 * TAR_BLOCK, -EBADMSG, "zero block");
}
END_TEST

/* A callback's error stops the reader, sticks, and its message wins. */
static int refuse_entry(void *ctx, const struct tar_entry *e)
{
	struct tar_reader **r = ctx;

	if (strcmp(e->path, "second") == 0) {
		tar_reader_set_error(*r, "no thanks: %s", e->path);
		return -EACCES;
	}
	return 0;
}

START_TEST(test_callback_error)
{
	static const struct tar_reader_ops ops = { refuse_entry, NULL };
	struct tar_entry e1 = ent(TAR_REG, "first", NULL, 3), e2 = ent(TAR_REG, "second", NULL, 0);
	struct arch a = { 0 };
	struct tar_reader *r;

	arch_entry(&a, &e1, "abc");
	arch_entry(&a, &e2, NULL);
	arch_end(&a);
	ck_assert_int_eq(tar_reader_new(&ops, &r, &r), 0);
	ck_assert_int_eq(tar_reader_feed(r, a.buf, a.len), -EACCES);
	ck_assert_str_eq(tar_reader_error(r), "no thanks: second");
	ck_assert_int_eq(tar_reader_feed(r, a.buf, 1), -EACCES);
	ck_assert_int_eq(tar_reader_finish(r), -EACCES);
	ck_assert_uint_eq(tar_reader_entries(r), 2);
	tar_reader_free(r);

	/* Without a message of its own, the reader's names the entry. */
	struct got *g = calloc(1, sizeof(*g));
	char msg[512];

	ck_assert_ptr_nonnull(g);
	g->fail_at = 1;
	ck_assert_int_eq(read_all(a.buf, a.len, 0, g, msg, sizeof(msg)), -EPERM);
	ck_assert_ptr_nonnull(strstr(msg, "second"));
	got_free(g);
	free(g);
	free(a.buf);
}
END_TEST

/* Old and odd encodings: base-256 numbers, a signed checksum, a v7 directory, 'g' headers, PAX details, garbage after the end. */
START_TEST(test_encodings)
{
	struct got *g = calloc(1, sizeof(*g));
	struct tar_entry e = ent(TAR_REG, "b256", NULL, 0);
	static uint8_t buf[16 * TAR_BLOCK];
	uint8_t *h = buf;
	size_t len = 0;

	ck_assert_ptr_nonnull(g);
	g->fail_at = -1;
	memset(buf, 0, sizeof(buf));
	/* base-256 uid 0x12345678 and mtime -2. */
	raw_header(&e, h);
	memset(h + 108, 0, 8);
	h[108] = 0x80;
	h[112] = 0x12, h[113] = 0x34, h[114] = 0x56, h[115] = 0x78;
	memset(h + 136, 0xff, 12);
	h[147] = 0xfe;
	fix_checksum(h);
	len += TAR_BLOCK;
	/* A signed checksum over a name with high bytes. */
	h = buf + len;
	e = ent(TAR_REG, "x", NULL, 0);
	raw_header(&e, h);
	memcpy(h, "\xe9t\xe9", 4);
	{
		int sum = 0;

		memset(h + 148, ' ', 8);
		for (int i = 0; i < TAR_BLOCK; i++)
			sum += (int8_t)h[i];
		snprintf((char *)h + 148, 8, "%06o", (unsigned int)sum);
		h[155] = ' ';
	}
	len += TAR_BLOCK;
	/* A v7 directory: type '0', trailing slash. */
	h = buf + len;
	e = ent(TAR_REG, "olddir", NULL, 0);
	raw_header(&e, h);
	memcpy(h, "olddir/", 8);
	memset(h + 257, 0, 8); /* no magic */
	fix_checksum(h);
	len += TAR_BLOCK;
	/* A 'g' header with a body, skipped. */
	h = buf + len;
	e = ent(TAR_REG, "global", NULL, 0);
	raw_header(&e, h);
	h[156] = 'g';
	memcpy(h + 124, "00000000017", 11);
	fix_checksum(h);
	memcpy(h + TAR_BLOCK, "15 path=nope\n", 13);
	len += 2 * TAR_BLOCK;
	/* A PAX header: unknown keys ignored, mtime fraction ignored, size overrides. */
	{
		static const char pax[] = "20 SCHILY.xattr.a=b\n" "30 mtime=1234567890.123456789\n"
					  "11 size=10\n" "18 path=pax/named\n";
		h = buf + len;
		e = ent(TAR_REG, "PaxHeaders/x", NULL, 0);
		raw_header(&e, h);
		h[156] = 'x';
		snprintf((char *)h + 124, 12, "%011o", (unsigned int)strlen(pax));
		fix_checksum(h);
		memcpy(h + TAR_BLOCK, pax, strlen(pax));
		len += 2 * TAR_BLOCK;
		h = buf + len;
		e = ent(TAR_REG, "short-name", NULL, 0);
		raw_header(&e, h);
		memcpy(h + TAR_BLOCK, "0123456789", 10);
		len += 2 * TAR_BLOCK;
	}
	/* A directory whose header says size 700: its "data" skipped. */
	h = buf + len;
	e = ent(TAR_DIR, "sized", NULL, 0);
	raw_header(&e, h);
	memcpy(h + 124, "00000001274", 11);
	fix_checksum(h);
	len += 3 * TAR_BLOCK;
	/* A hardlink whose header says size 5: no data follows. */
	h = buf + len;
	e = ent(TAR_HARDLINK, "hl", "x", 0);
	raw_header(&e, h);
	memcpy(h + 124, "00000000005", 11);
	fix_checksum(h);
	len += TAR_BLOCK;
	/* The end, then garbage. */
	len += TAR_END_SIZE;
	memset(buf + len, 0x5a, TAR_BLOCK);
	len += TAR_BLOCK;
	ck_assert_uint_le(len, sizeof(buf));

	for (size_t step = 0; step <= 1; step++) {
		ck_assert_int_eq(read_all(buf, len, step, g, NULL, 0), 0);
		ck_assert_uint_eq(g->n, 6);
		ck_assert_str_eq(g->e[0].path, "b256");
		ck_assert_uint_eq(g->e[0].uid, 0x12345678);
		ck_assert_int_eq(g->e[0].mtime, -2);
		ck_assert_str_eq(g->e[1].path, "\xe9t\xe9");
		ck_assert_int_eq(g->e[2].type, TAR_DIR);
		ck_assert_str_eq(g->e[2].path, "olddir");
		ck_assert_str_eq(g->e[3].path, "pax/named");
		ck_assert_int_eq(g->e[3].mtime, 1234567890);
		ck_assert_uint_eq(g->e[3].size, 10);
		ck_assert_uint_eq(g->len[3], 10);
		ck_assert_int_eq(memcmp(g->data[3], "0123456789", 10), 0);
		ck_assert_int_eq(g->e[4].type, TAR_DIR);
		ck_assert_uint_eq(g->e[4].size, 0);
		ck_assert_int_eq(g->e[5].type, TAR_HARDLINK);
		ck_assert_str_eq(g->e[5].link, "x");
		got_free(g);
	}
	/* Ending at an entry boundary without the marker is fine. */
	ck_assert_int_eq(read_all(buf, TAR_BLOCK, 0, g, NULL, 0), 0);
	ck_assert_uint_eq(g->n, 1);
	got_free(g);
	free(g);
}
END_TEST

/* Reads a file from disk through the reader. */
static int read_file(const char *path, struct got *g)
{
	FILE *f = fopen(path, "rb");
	struct arch a = { 0 };
	uint8_t buf[1000];
	size_t n;
	int rc;

	ck_assert_ptr_nonnull(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		arch_put(&a, buf, n);
	fclose(f);
	rc = read_all(a.buf, a.len, 333, g, NULL, 0);
	free(a.buf);
	return rc;
}

static const struct tar_entry *find(const struct got *g, const char *path)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->e[i].path, path) == 0)
			return &g->e[i];
	return NULL;
}

/* Archives from GNU tar (pax and gnu formats) read right; GNU tar extracts ours. */
START_TEST(test_gnu_tar_interop)
{
	char dir[] = "/tmp/test_tar.XXXXXX", cmd[4096], lp[400], longname[600];
	static const char *const fmts[] = { "pax", "gnu", "ustar" };
	struct got *g = calloc(1, sizeof(*g));

	ck_assert_ptr_nonnull(g);
	g->fail_at = -1;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	repeat_path(lp, 20, 14); /* 299 bytes */
	snprintf(longname, sizeof(longname), "t/%s", lp);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; mkdir -p t/sub t/%s; printf hello > t/sub/f; ln t/sub/f t/hl;"
		 "ln -s ../sub/f t/sub/sl; mkfifo t/fifo; printf x > t/%s/leaf;"
		 "chmod 4750 t/sub/f; touch -d @1600000000 t/sub/f", dir, lp, lp);
	ck_assert_int_eq(system(cmd), 0);
	for (size_t i = 0; i < 3; i++) {
		char tarfile[256];
		const struct tar_entry *e;

		snprintf(tarfile, sizeof(tarfile), "%s/%s.tar", dir, fmts[i]);
		snprintf(cmd, sizeof(cmd),
			 "cd %s && tar --format=%s --owner=0 --group=0 -cf %s t 2>/dev/null", dir,
			 fmts[i], tarfile);
		if (strcmp(fmts[i], "ustar") == 0) {
			/* ustar cannot hold the 299-byte name: GNU tar skips it but still writes the rest. */
			ck_assert_int_ne(system(cmd), -1);
		} else {
			ck_assert_int_eq(system(cmd), 0);
		}
		ck_assert_int_eq(read_file(tarfile, g), 0);
		/* Which name of the hard link comes first is readdir's order. */
		{
			const struct tar_entry *f = find(g, "t/sub/f"), *l = find(g, "t/hl");

			ck_assert_ptr_nonnull(f);
			ck_assert_ptr_nonnull(l);
			if (f->type == TAR_HARDLINK) {
				e = f;
				f = l;
				l = e;
			}
			ck_assert_int_eq(f->type, TAR_REG);
			ck_assert_int_eq(f->mode, 04750);
			ck_assert_int_eq(f->mtime, 1600000000);
			ck_assert_uint_eq(f->size, 5);
			ck_assert_int_eq(l->type, TAR_HARDLINK);
			ck_assert_str_eq(l->link, f->path);
		}
		e = find(g, "t/sub/sl");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->type, TAR_SYMLINK);
		ck_assert_str_eq(e->link, "../sub/f");
		e = find(g, "t/fifo");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->type, TAR_FIFO);
		e = find(g, "t/sub");
		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(e->type, TAR_DIR);
		if (strcmp(fmts[i], "ustar") != 0) {
			char leaf[700];

			snprintf(leaf, sizeof(leaf), "%s/leaf", longname);
			e = find(g, leaf);
			ck_assert_ptr_nonnull(e);
			ck_assert_uint_eq(e->size, 1);
		}
		got_free(g);
	}

	/* Ours, extracted by GNU tar. */
	{
		struct arch a = { 0 };
		struct tar_entry e;
		char path[4200];
		FILE *f;

		e = ent(TAR_DIR, "o", NULL, 0);
		arch_entry(&a, &e, NULL);
		e = ent(TAR_REG, longname, NULL, 3); /* parents missing: tar makes them */
		memcpy(e.path, "o", 1);
		arch_entry(&a, &e, "abc");
		e = ent(TAR_REG, "o/f", NULL, 2);
		e.mode = 0600;
		arch_entry(&a, &e, "hi");
		e = ent(TAR_HARDLINK, "o/h", "o/f", 0);
		arch_entry(&a, &e, NULL);
		e = ent(TAR_SYMLINK, "o/s", "f", 0);
		arch_entry(&a, &e, NULL);
		arch_end(&a);
		snprintf(path, sizeof(path), "%s/ours.tar", dir);
		f = fopen(path, "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(a.buf, 1, a.len, f), a.len);
		fclose(f);
		free(a.buf);
		snprintf(cmd, sizeof(cmd),
			 "set -e; cd %s; mkdir x; tar -xf ours.tar -C x; test \"$(cat x/o/f)\" = hi;"
			 "test \"$(stat -c %%h x/o/h)\" = 2; test \"$(readlink x/o/s)\" = f;"
			 "test \"$(cat 'x/o/%s')\" = abc; test \"$(stat -c %%a x/o/f)\" = 600",
			 dir, longname + 2);
		ck_assert_int_eq(system(cmd), 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(g);
}
END_TEST

static Suite *tar_suite(void)
{
	Suite *s = suite_create("tar");
	TCase *tc = tcase_create("tar");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_path_clean);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_huge_size);
	tcase_add_test(tc, test_write_refusals);
	tcase_add_test(tc, test_rejections);
	tcase_add_test(tc, test_callback_error);
	tcase_add_test(tc, test_encodings);
	tcase_add_test(tc, test_gnu_tar_interop);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tar_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
