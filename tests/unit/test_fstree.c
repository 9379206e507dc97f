/* Unit tests for vmm/fstree.c: OCI layers (whiteouts, opaque directories), replacement, the symlink rules, hard links, write_tar read back, limits. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/fstree.h"

/* ---- helpers ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static int buf_write(void *ctx, const void *p, size_t n)
{
	buf_put(ctx, p, n);
	return 0;
}

/* One entry of a layer: type char (f d l h c p w), path, data or link target. */
struct item {
	char type;
	const char *path;
	const char *arg;
	uint32_t mode;
};

/* A tar archive of items (in order). */
static void layer_tar(const struct item *it, size_t n, struct buf *out)
{
	static uint8_t hdr[TAR_HDR_MAX], zero[TAR_END_SIZE];

	for (size_t i = 0; i < n; i++) {
		struct tar_entry e;
		ssize_t h;

		memset(&e, 0, sizeof(e));
		snprintf(e.path, sizeof(e.path), "%s", it[i].path);
		e.mode = it[i].mode ? it[i].mode : 0644;
		e.mtime = 1000 + (int64_t)i;
		switch (it[i].type) {
		case 'f':
			e.type = TAR_REG;
			e.size = it[i].arg ? strlen(it[i].arg) : 0;
			break;
		case 'd':
			e.type = TAR_DIR;
			break;
		case 'l':
			e.type = TAR_SYMLINK;
			snprintf(e.link, sizeof(e.link), "%s", it[i].arg);
			break;
		case 'h':
			e.type = TAR_HARDLINK;
			snprintf(e.link, sizeof(e.link), "%s", it[i].arg);
			break;
		case 'c':
			e.type = TAR_CHR;
			e.devmajor = 1;
			e.devminor = 5;
			break;
		case 'p':
			e.type = TAR_FIFO;
			break;
		default:
			ck_abort_msg("bad item type %c", it[i].type);
		}
		h = tar_write_header(&e, hdr, sizeof(hdr));
		ck_assert_int_gt(h, 0);
		buf_put(out, hdr, (size_t)h);
		if (e.size) {
			buf_put(out, it[i].arg, e.size);
			buf_put(out, zero, tar_pad(e.size));
		}
	}
	buf_put(out, zero, TAR_END_SIZE);
}

/* Applies a tar stream as one layer; the first error (with both messages in msg). */
static int apply_tar(struct fstree *t, const uint8_t *p, size_t len, bool oci, size_t step, char *msg,
		     size_t msglen)
{
	struct tar_reader *r;
	int rc = 0, rc2;

	ck_assert_int_eq(tar_reader_new(&fstree_tar_ops, t, &r), 0);
	fstree_layer_begin(t, oci);
	if (step == 0)
		step = len;
	for (size_t off = 0; off < len && rc == 0; off += step)
		rc = tar_reader_feed(r, p + off, len - off < step ? len - off : step);
	if (rc == 0)
		rc = tar_reader_finish(r);
	if (msg)
		snprintf(msg, msglen, "%s | %s", tar_reader_error(r), fstree_error(t));
	rc2 = fstree_layer_end(t);
	tar_reader_free(r);
	return rc ? rc : rc2;
}

static int apply(struct fstree *t, const struct item *it, size_t n, bool oci, char *msg, size_t msglen)
{
	struct buf b = { 0 };
	int rc;

	layer_tar(it, n, &b);
	rc = apply_tar(t, b.p, b.len, oci, 0, msg, msglen);
	free(b.p);
	return rc;
}

#define APPLY_OK(t, items, oci)                                                              \
	do {                                                                                 \
		char m_[1200];                                                               \
		int r_ = apply(t, items, sizeof(items) / sizeof(items[0]), oci, m_, sizeof(m_)); \
		ck_assert_msg(r_ == 0, "apply: %d %s", r_, m_);                              \
	} while (0)

static struct fstree *new_tree(const struct fstree_limits *lim)
{
	struct fstree *t;
	char err[256];

	ck_assert_int_eq(fstree_new("/tmp", lim, &t, err, sizeof(err)), 0);
	return t;
}

/* The contents of a regular file as a string (short files only). */
static const char *contents(struct fstree *t, const char *path)
{
	static char s[256];
	struct fstree_node *n = fstree_lookup(t, path);
	ssize_t r;

	ck_assert_msg(n != NULL, "%s missing", path);
	ck_assert_int_eq(n->type, TAR_REG);
	r = fstree_read(t, n, 0, s, sizeof(s) - 1);
	ck_assert_int_ge(r, 0);
	s[r] = '\0';
	return s;
}

/* Every child list is in strictly increasing name order with consistent links; returns the node count. */
static uint64_t check_sorted(struct fstree *t)
{
	struct fstree_node *n = fstree_root(t);
	uint64_t count = 0;

	while (n) {
		count++;
		for (struct fstree_node *c = n->child; c; c = c->next) {
			ck_assert_ptr_eq(c->parent, n);
			if (c->next)
				ck_assert_msg(strcmp(c->name, c->next->name) < 0, "%s before %s", c->name, c->next->name);
		}
		if (n->child) {
			n = n->child;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
	return count;
}

/* ---- tests ---- */

START_TEST(test_basics)
{
	struct fstree *t = new_tree(NULL);
	static const struct item l1[] = {
		{ 'd', "a", NULL, 0750 }, { 'f', "a/b/file", "hello world", 0600 }, { 'l', "a/s", "b/file", 0 },
		{ 'c', "dev/null", NULL, 0666 }, { 'p', "fifo", NULL, 0 }, { 'f', "z", "", 0 },
	};
	struct fstree_node *n;
	char path[64], buf[8], err[256];
	struct fstree *bad;

	APPLY_OK(t, l1, true);
	/* root, a, a/b, a/b/file, a/s, dev, dev/null, fifo, z */
	ck_assert_uint_eq(fstree_nodes(t), 9);
	ck_assert_uint_eq(fstree_bytes(t), 11);
	ck_assert_ptr_eq(fstree_lookup(t, ""), fstree_root(t));
	n = fstree_lookup(t, "a");
	ck_assert_uint_eq(n->mode, 0750);
	n = fstree_lookup(t, "a/b");
	ck_assert_int_eq(n->type, TAR_DIR);
	ck_assert_uint_eq(n->mode, 0755); /* made for a/b/file */
	n = fstree_lookup(t, "a/b/file");
	ck_assert_uint_eq(n->mode, 0600);
	ck_assert_int_eq(fstree_path(n, path, sizeof(path)), 0);
	ck_assert_str_eq(path, "a/b/file");
	ck_assert_int_eq(fstree_path(n, path, 8), -ENAMETOOLONG);
	ck_assert_int_eq(fstree_path(fstree_root(t), path, sizeof(path)), 0);
	ck_assert_str_eq(path, "");
	ck_assert_str_eq(contents(t, "a/b/file"), "hello world");
	ck_assert_int_eq(fstree_read(t, n, 6, buf, 3), 3);
	ck_assert_int_eq(memcmp(buf, "wor", 3), 0);
	ck_assert_int_eq(fstree_read(t, n, 11, buf, 3), 0);
	ck_assert_int_eq(fstree_read(t, n, 9, buf, 8), 2);
	ck_assert_int_eq(fstree_read(t, fstree_lookup(t, "a"), 0, buf, 1), -EINVAL);
	/* Lookups never follow symlinks. */
	ck_assert_ptr_null(fstree_lookup(t, "a/s/file"));
	ck_assert_ptr_null(fstree_lookup(t, "a/b/file/x"));
	ck_assert_ptr_null(fstree_lookup(t, "nope"));
	ck_assert_str_eq(fstree_lookup(t, "a/s")->link, "b/file");
	n = fstree_lookup(t, "dev/null");
	ck_assert_int_eq(n->type, TAR_CHR);
	ck_assert_uint_eq(n->devmajor, 1);
	ck_assert_uint_eq(n->devminor, 5);
	/* Children sorted by name. */
	n = fstree_root(t)->child;
	ck_assert_str_eq(n->name, "a");
	ck_assert_str_eq(n->next->name, "dev");
	ck_assert_str_eq(n->next->next->name, "fifo");
	ck_assert_str_eq(n->next->next->next->name, "z");
	ck_assert_ptr_null(n->next->next->next->next);
	fstree_free(t);

	ck_assert_int_lt(fstree_new("/nonexistent/dir", NULL, &bad, err, sizeof(err)), 0);
	ck_assert_ptr_null(bad);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir"));
}
END_TEST

START_TEST(test_whiteouts)
{
	struct fstree *t = new_tree(NULL);
	static const struct item l1[] = {
		{ 'f', "a/x", "one", 0 }, { 'f', "a/y", "two", 0 }, { 'f', "b/z", "zz", 0 },
		{ 'f', "b/sub/deep", "d", 0 }, { 'f', "c", "c", 0 }, { 'f', "d/old", "o", 0 },
		{ 'f', "e/sub/x", "x", 0 }, { 'd', "gone", NULL, 0 }, { 'f', "gone/1", "1", 0 },
		{ 'f', "gone/2/3", "3", 0 },
	};
	static const struct item l2[] = {
		{ 'f', "a/.wh.x", NULL, 0 },   /* a lower file */
		{ 'f', ".wh.c", NULL, 0 },     /* at the root */
		{ 'f', ".wh.gone", NULL, 0 },  /* a lower directory, with all under it */
		{ 'f', ".wh.never", NULL, 0 }, /* nothing to remove */
		{ 'f', "b/.wh..wh..opq", NULL, 0 }, /* opaque before this layer's additions */
		{ 'f', "b/new", "n", 0 },
		{ 'f', "d/keep", "k", 0 },     /* this layer's addition before the marker */
		{ 'f', "d/.wh..wh..opq", NULL, 0 },
		{ 'f', "e/sub/y", "y", 0 },    /* through a lower directory, then opaque above it */
		{ 'f', "e/.wh..wh..opq", NULL, 0 },
		{ 'f', "a/w", "w", 0 },
		{ 'f', "a/.wh.w", NULL, 0 },   /* same layer: a/w stays */
	};
	uint64_t before;

	APPLY_OK(t, l1, true);
	before = fstree_nodes(t);
	ck_assert_uint_eq(fstree_bytes(t), 3 + 3 + 2 + 1 + 1 + 1 + 1 + 1 + 1);
	APPLY_OK(t, l2, true);
	ck_assert_uint_eq(check_sorted(t), fstree_nodes(t));
	ck_assert_ptr_null(fstree_lookup(t, "a/x"));
	ck_assert_str_eq(contents(t, "a/y"), "two");
	ck_assert_str_eq(contents(t, "a/w"), "w");
	ck_assert_ptr_null(fstree_lookup(t, "c"));
	ck_assert_ptr_null(fstree_lookup(t, "gone"));
	ck_assert_ptr_null(fstree_lookup(t, "gone/2/3"));
	ck_assert_ptr_null(fstree_lookup(t, "never"));
	ck_assert_ptr_null(fstree_lookup(t, "b/z"));
	ck_assert_ptr_null(fstree_lookup(t, "b/sub"));
	ck_assert_str_eq(contents(t, "b/new"), "n");
	ck_assert_ptr_null(fstree_lookup(t, "d/old"));
	ck_assert_str_eq(contents(t, "d/keep"), "k");
	ck_assert_ptr_null(fstree_lookup(t, "e/sub/x"));
	ck_assert_str_eq(contents(t, "e/sub/y"), "y");
	/* No whiteout is kept; opaque flags end with the layer. */
	ck_assert_ptr_null(fstree_lookup(t, "a/.wh.x"));
	ck_assert_ptr_null(fstree_lookup(t, "b/.wh..wh..opq"));
	ck_assert(!fstree_lookup(t, "b")->opaque);
	/* Removed: a/x c gone gone/1 gone/2 gone/2/3 b/z b/sub b/sub/deep d/old e/sub/x (11);
	 * added: b/new d/keep e/sub/y a/w (4). */
	ck_assert_uint_eq(fstree_nodes(t), before - 11 + 4);
	ck_assert_uint_eq(fstree_bytes(t), 3 + 1 + 1 + 1 + 1);
	fstree_free(t);
}
END_TEST

/* While a layer is open the opaque flag is visible; with oci false whiteouts are files. */
START_TEST(test_whiteout_modes)
{
	struct fstree *t = new_tree(NULL);
	static const struct item l1[] = { { 'f', "x", "1", 0 }, { 'f', "d/y", "2", 0 } };
	static const struct item plain[] = { { 'f', ".wh.x", NULL, 0 }, { 'f', "d/.wh..wh..opq", NULL, 0 } };
	static const struct item bad[][1] = {
		{ { 'f', ".wh.", NULL, 0 } },         { { 'f', "d/.wh..wh.foo", NULL, 0 } },
		{ { 'd', ".wh.x", NULL, 0 } },        { { 'f', ".wh.x", "data", 0 } },
		{ { 'l', ".wh.x", "target", 0 } },
	};
	struct tar_entry e;
	char msg[1200];

	APPLY_OK(t, l1, false);
	APPLY_OK(t, plain, false);
	ck_assert_ptr_nonnull(fstree_lookup(t, "x"));
	ck_assert_ptr_nonnull(fstree_lookup(t, ".wh.x"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "d/y"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "d/.wh..wh..opq"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = apply(t, bad[i], 1, true, msg, sizeof(msg));

		ck_assert_msg(rc == -EINVAL, "%s: %d %s", bad[i][0].path, rc, msg);
		ck_assert_ptr_nonnull(strstr(msg, "whiteout"));
	}
	/* The flag, seen from fstree_add inside a layer. */
	fstree_layer_begin(t, true);
	memset(&e, 0, sizeof(e));
	e.type = TAR_REG;
	snprintf(e.path, sizeof(e.path), "d/" TAR_WH_OPAQUE);
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	ck_assert(fstree_lookup(t, "d")->opaque);
	ck_assert_ptr_null(fstree_lookup(t, "d/y"));
	ck_assert_int_eq(fstree_layer_end(t), 0);
	ck_assert(!fstree_lookup(t, "d")->opaque);
	fstree_free(t);
}
END_TEST

START_TEST(test_replace)
{
	struct fstree *t = new_tree(NULL);
	static const struct item l1[] = {
		{ 'd', "dir", NULL, 0700 }, { 'f', "dir/a", "aaaa", 0 }, { 'f', "dir/sub/b", "bb", 0 },
		{ 'f', "file", "ffff", 0 }, { 'd', "keep", NULL, 0700 }, { 'f', "keep/k", "k", 0 },
	};
	static const struct item l2[] = {
		{ 'f', "dir", "now a file", 0 },  /* dir -> file: the subtree goes */
		{ 'd', "file", NULL, 0711 },      /* file -> dir */
		{ 'd', "keep", NULL, 0751 },      /* dir over dir: children stay, metadata new */
		{ 'l', "file/inside", "../keep", 0 },
	};
	struct fstree_node *n;

	APPLY_OK(t, l1, true);
	ck_assert_uint_eq(fstree_nodes(t), 8);
	APPLY_OK(t, l2, true);
	n = fstree_lookup(t, "dir");
	ck_assert_int_eq(n->type, TAR_REG);
	ck_assert_ptr_null(n->child);
	ck_assert_str_eq(contents(t, "dir"), "now a file");
	ck_assert_int_eq(fstree_lookup(t, "file")->type, TAR_DIR);
	ck_assert_uint_eq(fstree_lookup(t, "file")->mode, 0711);
	n = fstree_lookup(t, "keep");
	ck_assert_uint_eq(n->mode, 0751);
	ck_assert_str_eq(contents(t, "keep/k"), "k");
	/* root dir file file/inside keep keep/k */
	ck_assert_uint_eq(fstree_nodes(t), 6);
	ck_assert_uint_eq(fstree_bytes(t), 10 + 1);
	fstree_free(t);
}
END_TEST

START_TEST(test_symlink_rules)
{
	struct fstree *t = new_tree(NULL);
	static const struct item l1[] = {
		{ 'd', "a/b", NULL, 0 }, { 'l', "a/link", "b", 0 }, { 'f', "a/file", "x", 0 },
		{ 'l', "a/b/up", "../../etc", 0 },   /* lands at the root's etc: fine */
		{ 'l', "a/abs", "/../../etc/shadow", 0 }, /* absolute: the guest resolves it in its root */
		{ 'l', "dot", "./././x", 0 },
	};
	static const struct {
		struct item it;
		int rc;
		const char *word;
	} bad[] = {
		{ { 'f', "a/link/x", "x", 0 }, -ENOTDIR, "symlink" },
		{ { 'd', "a/link/d/e", NULL, 0 }, -ENOTDIR, "symlink" },
		{ { 'f', "a/file/x", "x", 0 }, -ENOTDIR, "not a directory" },
		{ { 'l', "a/esc", "../../x", 0 }, -EINVAL, "escapes the root" },
		{ { 'l', "top", "..", 0 }, -EINVAL, "escapes the root" },
		{ { 'l', "a/b/c", "../x/../../../y", 0 }, -EINVAL, "escapes the root" },
		{ { 'h', "hl", "a/link/x", 0 }, -ENOENT, "not in the tree" },
	};
	char msg[1200];

	APPLY_OK(t, l1, true);
	ck_assert_str_eq(fstree_lookup(t, "a/abs")->link, "/../../etc/shadow");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = apply(t, &bad[i].it, 1, true, msg, sizeof(msg));

		ck_assert_msg(rc == bad[i].rc, "%s: %d %s", bad[i].it.path, rc, msg);
		ck_assert_msg(strstr(msg, bad[i].word) && strstr(msg, bad[i].it.path), "%s", msg);
	}
	/* Nothing was made through the link or the file. */
	ck_assert_ptr_null(fstree_lookup(t, "a/link/x"));
	ck_assert_int_eq(fstree_lookup(t, "a/link")->type, TAR_SYMLINK);
	ck_assert_ptr_null(fstree_lookup(t, "a/esc"));
	fstree_free(t);
}
END_TEST

START_TEST(test_hardlinks)
{
	struct fstree *t = new_tree(NULL), *t2;
	static const struct item l1[] = {
		{ 'f', "z/data", "shared", 0640 }, { 'h', "a/first", "z/data", 0 }, { 'h', "m/mid", "a/first", 0 },
		{ 'h', "z/data", "z/data", 0 }, /* itself: nothing changes */
		{ 'd', "dir", NULL, 0 }, { 'l', "sym", "z/data", 0 },
	};
	static const struct {
		struct item it;
		int rc;
		const char *word;
	} bad[] = {
		{ { 'h', "h1", "missing", 0 }, -ENOENT, "missing" },
		{ { 'h', "h2", "dir", 0 }, -EINVAL, "not a regular file" },
		{ { 'h', "h3", "sym", 0 }, -EINVAL, "not a regular file" },
	};
	static const struct item l2[] = { { 'f', ".wh.a", NULL, 0 } };
	struct fstree_node *a, *z, *m;
	struct buf out = { 0 }, out2 = { 0 };
	char msg[1200];

	APPLY_OK(t, l1, true);
	a = fstree_lookup(t, "a/first");
	z = fstree_lookup(t, "z/data");
	m = fstree_lookup(t, "m/mid");
	ck_assert_uint_ne(a->link_id, 0);
	ck_assert_uint_eq(a->link_id, z->link_id);
	ck_assert_uint_eq(m->link_id, z->link_id);
	ck_assert_uint_eq(a->mode, 0640);
	ck_assert_str_eq(contents(t, "a/first"), "shared");
	ck_assert_uint_eq(fstree_bytes(t), 6); /* one inode */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = apply(t, &bad[i].it, 1, true, msg, sizeof(msg));

		ck_assert_msg(rc == bad[i].rc, "%s: %d %s", bad[i].it.path, rc, msg);
		ck_assert_msg(strstr(msg, bad[i].word) && strstr(msg, bad[i].it.path), "%s", msg);
	}
	/* Written: the first name in walk order (a/first) carries the data, the others link to it. */
	ck_assert_int_eq(fstree_write_tar(t, NULL, buf_write, &out), 0);
	ck_assert_int_eq(fstree_new("/tmp", NULL, &t2, msg, sizeof(msg)), 0);
	ck_assert_int_eq(apply_tar(t2, out.p, out.len, false, 1, msg, sizeof(msg)), 0);
	ck_assert_int_eq(fstree_write_tar(t2, NULL, buf_write, &out2), 0);
	ck_assert_uint_eq(out.len, out2.len);
	ck_assert_int_eq(memcmp(out.p, out2.p, out.len), 0);
	ck_assert_int_eq(fstree_lookup(t2, "m/mid")->link_id, fstree_lookup(t2, "z/data")->link_id);
	ck_assert_uint_eq(fstree_bytes(t2), 6);
	fstree_free(t2);
	/* The tar holds one REG with 6 bytes, and two hardlinks to "a/first". */
	{
		uint8_t *p = out.p;
		int regs = 0, hls = 0;

		for (size_t off = 0; off + TAR_BLOCK <= out.len; off += TAR_BLOCK) {
			if (p[off + 156] == '0' && strcmp((char *)p + off, "a/first") == 0)
				regs++;
			if (p[off + 156] == '1' && strcmp((char *)p + off + 157, "a/first") == 0)
				hls++;
		}
		ck_assert_int_eq(regs, 1);
		ck_assert_int_eq(hls, 2);
	}
	/* A name removed: the others keep the data. */
	APPLY_OK(t, l2, true);
	ck_assert_ptr_null(fstree_lookup(t, "a"));
	ck_assert_str_eq(contents(t, "m/mid"), "shared");
	ck_assert_uint_eq(fstree_bytes(t), 6);
	free(out.p);
	free(out2.p);
	fstree_free(t);
}
END_TEST

/* A tree written and read back is the same tree (the same bytes again), at any split; a subtree writes alone. */
START_TEST(test_write_read_back)
{
	struct fstree *t = new_tree(NULL), *t2;
	char longp[600], msg[1200];
	static char bigdata[70000];
	struct item l1[] = {
		{ 'd', "etc", NULL, 0755 }, { 'f', "etc/passwd", "root:x:0:0\n", 0644 },
		{ 'f', "usr/bin/tool", NULL, 04755 }, { 'l', "bin", "usr/bin", 0 }, { 'p', "run/fifo", NULL, 0600 },
		{ 'c', "dev/null", NULL, 0666 }, { 'd', "empty", NULL, 0700 }, { 'f', NULL, "long", 0 },
		{ 'h', "etc/passwd-", "etc/passwd", 0 },
	};
	struct buf o1 = { 0 }, o2 = { 0 }, o3 = { 0 };
	struct fstree_node *n;

	for (size_t i = 0; i < sizeof(bigdata) - 1; i++)
		bigdata[i] = (char)('a' + i % 23);
	l1[2].arg = bigdata;
	memset(longp, 0, sizeof(longp));
	for (int i = 0; i < 30; i++)
		memcpy(longp + i * 15, i ? "/dddddddddddddd" : "ddddddddddddddd", 15);
	l1[7].path = longp;
	APPLY_OK(t, l1, true);
	ck_assert_int_eq(fstree_write_tar(t, NULL, buf_write, &o1), 0);
	/* Deterministic. */
	ck_assert_int_eq(fstree_write_tar(t, NULL, buf_write, &o3), 0);
	ck_assert_uint_eq(o1.len, o3.len);
	ck_assert_int_eq(memcmp(o1.p, o3.p, o1.len), 0);
	ck_assert_uint_eq(o1.len % TAR_BLOCK, 0);
	static const size_t steps[] = { 0, 1, 1000 };
	for (size_t s = 0; s < 3; s++) {
		ck_assert_int_eq(fstree_new("/tmp", NULL, &t2, msg, sizeof(msg)), 0);
		ck_assert_int_eq(apply_tar(t2, o1.p, o1.len, true, steps[s], msg, sizeof(msg)), 0);
		o2.len = 0;
		ck_assert_int_eq(fstree_write_tar(t2, NULL, buf_write, &o2), 0);
		ck_assert_uint_eq(o1.len, o2.len);
		ck_assert_int_eq(memcmp(o1.p, o2.p, o1.len), 0);
		ck_assert_uint_eq(fstree_nodes(t2), fstree_nodes(t));
		ck_assert_uint_eq(fstree_bytes(t2), fstree_bytes(t));
		n = fstree_lookup(t2, "usr/bin/tool");
		ck_assert_uint_eq(n->size, sizeof(bigdata) - 1);
		ck_assert_uint_eq(n->mode, 04755);
		ck_assert_str_eq(contents(t2, longp), "long");
		fstree_free(t2);
	}
	/* The subtree at etc: its own entry first, full paths, then the end marker. */
	o3.len = 0;
	ck_assert_int_eq(fstree_write_tar(t, fstree_lookup(t, "etc"), buf_write, &o3), 0);
	ck_assert_str_eq((char *)o3.p, "etc/");
	ck_assert_int_eq(fstree_new("/tmp", NULL, &t2, msg, sizeof(msg)), 0);
	ck_assert_int_eq(apply_tar(t2, o3.p, o3.len, false, 0, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(fstree_nodes(t2), 4); /* root etc etc/passwd etc/passwd- */
	ck_assert_str_eq(contents(t2, "etc/passwd-"), "root:x:0:0\n");
	fstree_free(t2);
	/* A write error stops it. */
	free(o1.p);
	free(o2.p);
	free(o3.p);
	fstree_free(t);
}
END_TEST


/* 20000 names in one directory in a scrambled order: fast, sorted after the layer, each found; a whiteout of half and an opaque directory over the rest. */
START_TEST(test_big_directory)
{
	enum { N = 20000 };
	struct fstree *t = new_tree(NULL);
	struct tar_entry e;
	char msg[512], name[32];

	memset(&e, 0, sizeof(e));
	fstree_layer_begin(t, true);
	for (uint32_t i = 0; i < N; i++) {
		uint32_t k = (i * 7919u) % N; /* 7919 is prime: a permutation */

		e.type = TAR_REG;
		snprintf(e.path, sizeof(e.path), "big/f%05u", k);
		ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	}
	ck_assert_int_eq(fstree_layer_end(t), 0);
	ck_assert_uint_eq(check_sorted(t), N + 2);
	ck_assert_uint_eq(fstree_nodes(t), N + 2);
	for (uint32_t i = 0; i < N; i += 97) {
		snprintf(name, sizeof(name), "big/f%05u", i);
		ck_assert_ptr_nonnull(fstree_lookup(t, name));
	}
	fstree_layer_begin(t, true);
	for (uint32_t i = 0; i < N; i += 2) {
		snprintf(e.path, sizeof(e.path), "big/.wh.f%05u", (i * 7919u) % N);
		ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	}
	ck_assert_int_eq(fstree_layer_end(t), 0);
	ck_assert_uint_eq(check_sorted(t), N / 2 + 2);
	fstree_layer_begin(t, true);
	snprintf(e.path, sizeof(e.path), "big/z-new");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	snprintf(e.path, sizeof(e.path), "big/" TAR_WH_OPAQUE);
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	snprintf(e.path, sizeof(e.path), "big/a-new");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	ck_assert_int_eq(fstree_layer_end(t), 0);
	ck_assert_uint_eq(check_sorted(t), 4);
	ck_assert_str_eq(fstree_lookup(t, "big")->child->name, "a-new");
	/* Outside a layer, fstree_add keeps the order as it goes. */
	snprintf(e.path, sizeof(e.path), "big/m");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	snprintf(e.path, sizeof(e.path), "big/b");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(check_sorted(t), 6);
	fstree_free(t);
}
END_TEST

static int failing_write(void *ctx, const void *p, size_t n)
{
	int *calls = ctx;

	return ++*calls == 2 ? -ENOSPC : 0;
}

START_TEST(test_limits)
{
	struct fstree_limits lim = { .max_nodes = 5, .max_bytes = 100 };
	struct fstree *t = new_tree(&lim);
	static const struct item ok[] = { { 'f', "a", "1", 0 }, { 'f', "b", "2", 0 }, { 'f', "c", "3", 0 } };
	static const struct item nodes[] = { { 'f', "d", NULL, 0 }, { 'f', "e", NULL, 0 } };
	static const struct item deep[] = { { 'f', "x/y/z", NULL, 0 } };
	static char big[101];
	struct item bytes[] = { { 'f', "c", big, 0 } };
	struct tar_entry e;
	char msg[1200];
	int calls = 0;

	memset(big, 'b', 100);
	APPLY_OK(t, ok, true);
	ck_assert_int_eq(apply(t, nodes, 2, true, msg, sizeof(msg)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(msg, "'e'"));
	ck_assert_uint_eq(fstree_nodes(t), 5);
	ck_assert_int_eq(apply(t, deep, 1, true, msg, sizeof(msg)), -E2BIG);
	ck_assert_uint_le(fstree_nodes(t), 5);
	/* Replacing a node at the limit is fine. */
	static const struct item repl[] = { { 'f', "a", "new", 0 } };
	APPLY_OK(t, repl, true);
	/* 100 bytes would pass the limit (3 + 3 spooled already). */
	ck_assert_int_eq(apply(t, bytes, 1, true, msg, sizeof(msg)), -EFBIG);
	ck_assert_ptr_nonnull(strstr(msg, "limit"));
	fstree_free(t);

	/* fstree_add: data beyond the size, data with no file, a layer ending short. */
	t = new_tree(NULL);
	fstree_layer_begin(t, false);
	memset(&e, 0, sizeof(e));
	e.type = TAR_REG;
	e.size = 4;
	snprintf(e.path, sizeof(e.path), "f");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), 0);
	ck_assert_int_eq(fstree_add_data(t, "12345", 5, msg, sizeof(msg)), -EINVAL);
	ck_assert_int_eq(fstree_add_data(t, "12", 2, msg, sizeof(msg)), 0);
	snprintf(e.path, sizeof(e.path), "g");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "incomplete"));
	ck_assert_int_eq(fstree_layer_end(t), -EPIPE);
	ck_assert_ptr_nonnull(strstr(fstree_error(t), "'f'"));
	ck_assert_int_eq(fstree_add_data(t, "x", 1, msg, sizeof(msg)), -EINVAL);
	/* Unclean paths and a non-directory root from code that builds a tree. */
	snprintf(e.path, sizeof(e.path), "a/../b");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), -EINVAL);
	snprintf(e.path, sizeof(e.path), "%s", "");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), -EINVAL);
	/* Component over 255 bytes. */
	memset(e.path, 'n', 256);
	e.path[256] = '\0';
	e.size = 0;
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), -ENAMETOOLONG);
	/* A device number tar cannot carry. */
	e.type = TAR_CHR;
	e.devmajor = 1u << 22;
	snprintf(e.path, sizeof(e.path), "dev");
	ck_assert_int_eq(fstree_add(t, &e, msg, sizeof(msg)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "device number"));
	/* A write error stops fstree_write_tar with that error. */
	ck_assert_int_eq(fstree_write_tar(t, NULL, failing_write, &calls), -ENOSPC);
	fstree_free(t);
}
END_TEST

static Suite *fstree_suite(void)
{
	Suite *s = suite_create("fstree");
	TCase *tc = tcase_create("fstree");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_basics);
	tcase_add_test(tc, test_whiteouts);
	tcase_add_test(tc, test_whiteout_modes);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_symlink_rules);
	tcase_add_test(tc, test_hardlinks);
	tcase_add_test(tc, test_write_read_back);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_big_directory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fstree_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
