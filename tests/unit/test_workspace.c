/* Unit tests for vmm/workspace.c: packing a host directory, the git-style diff (checked with git apply), applying the guest's copy, symlinks never followed, .gitignore respected. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "vmm/fstree.h"
#include "vmm/workspace.h"

struct mem {
	uint8_t *p;
	size_t len, cap;
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->len + len > m->cap) {
		size_t ncap = (m->len + len) * 2;
		uint8_t *np = realloc(m->p, ncap);

		if (!np)
			return -ENOMEM;
		m->p = np;
		m->cap = ncap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

static int sh_rc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_rc(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void put(const char *dir, const char *rel, const void *data, size_t len, mode_t mode)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void puts_(const char *dir, const char *rel, const char *text)
{
	put(dir, rel, text, strlen(text), 0644);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void mktmp(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "/tmp/ws-%s-XXXXXX", tag);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Packs dir (as the front would) and reads the stream back into a tree (as the guest's copy). */
static struct fstree *tree_of(const char *dir, bool respect, struct ws_stats *st)
{
	struct mem m = { 0 };
	struct tar_reader *r;
	struct fstree *t;
	char err[512] = "";

	ck_assert_msg(ws_pack(dir, respect, mem_write, &m, st, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.len % TAR_BLOCK, 0);
	ck_assert_int_eq(fstree_new("/tmp", NULL, &t, err, sizeof(err)), 0);
	fstree_layer_begin(t, false);
	ck_assert_int_eq(tar_reader_new(&fstree_tar_ops, t, &r), 0);
	ck_assert_msg(tar_reader_feed(r, m.p, m.len) == 0, "%s / %s", tar_reader_error(r),
		      fstree_error(t));
	ck_assert_int_eq(tar_reader_finish(r), 0);
	ck_assert_int_eq(fstree_layer_end(t), 0);
	tar_reader_free(r);
	free(m.p);
	return t;
}

/* Same content, types and file modes; ".git" left out. */
static void assert_same_dirs(const char *a, const char *b)
{
	static const char *const list =
		"find . -path ./.git -prune -o -printf '%P %y %m\\n' | grep -v ' d ' | sort";

	sh("diff -r --no-dereference -x .git '%s' '%s'", a, b);
	sh("cd '%s' && %s > '%s.lst' && cd '%s' && %s > '%s.lst' && cmp '%s.lst' '%s.lst' && "
	   "rm '%s.lst' '%s.lst'",
	   a, list, a, b, list, b, a, b, a, b);
}

static char *diff_of(const char *host, bool respect, struct fstree *g, struct ws_stats *st,
		     const char *out)
{
	char err[512] = "";
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(ws_diff(host, respect, g, fd, st, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	return slurp(out, NULL);
}

#define HAS(text, s) ck_assert_msg(strstr(text, s) != NULL, "missing in the diff: %s\n---\n%s", s, text)
#define HASNT(text, s) ck_assert_msg(strstr(text, s) == NULL, "unexpected in the diff: %s", s)

START_TEST(test_pack_roundtrip)
{
	char d[64], err[256];
	struct ws_stats st;
	struct fstree *t;
	struct fstree_node *n;
	char buf[64];

	mktmp(d, sizeof(d), "pack");
	puts_(d, "a.txt", "hello\n");
	put(d, "run.sh", "#!/bin/sh\n", 10, 0755);
	puts_(d, "sub/deeper/f", "deep");
	put(d, "empty", "", 0, 0600);
	sh("ln -s a.txt '%s/link' && ln -s /etc/passwd '%s/abs' && mkfifo '%s/fifo'", d, d, d);

	t = tree_of(d, false, &st);
	ck_assert_uint_eq(st.skipped, 1);
	ck_assert_ptr_null(fstree_lookup(t, "fifo"));
	n = fstree_lookup(t, "a.txt");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->type, TAR_REG);
	ck_assert_uint_eq(n->size, 6);
	ck_assert_uint_eq(n->uid, 0);
	ck_assert_int_eq(fstree_read(t, n, 0, buf, sizeof(buf)), 6);
	ck_assert_int_eq(memcmp(buf, "hello\n", 6), 0);
	ck_assert_uint_eq(fstree_lookup(t, "run.sh")->mode, 0755);
	ck_assert_uint_eq(fstree_lookup(t, "empty")->mode, 0600);
	ck_assert_uint_eq(fstree_lookup(t, "empty")->size, 0);
	ck_assert_int_eq(fstree_lookup(t, "sub/deeper")->type, TAR_DIR);
	ck_assert_uint_eq(fstree_lookup(t, "sub/deeper/f")->size, 4);
	n = fstree_lookup(t, "link");
	ck_assert_int_eq(n->type, TAR_SYMLINK);
	ck_assert_str_eq(n->link, "a.txt");
	ck_assert_str_eq(fstree_lookup(t, "abs")->link, "/etc/passwd");
	fstree_free(t);

	/* A missing directory is a clear error naming it. */
	ck_assert_int_eq(ws_pack("/nonexistent-ws-dir", false, mem_write, &(struct mem){ 0 }, NULL,
				 err, sizeof(err)),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-ws-dir"));
	sh("rm -rf '%s'", d);
}
END_TEST

static const char bin1[] = { 'B', 'I', 'N', 0, 1, 2, 3, '\n', 'x' };
static const char bin2[] = { 'B', 'I', 'N', 0, 1, 9, 3, '\n', 'y', 'z' };

static void make_host(const char *h)
{
	char ten[256] = "";

	for (int i = 1; i <= 10; i++)
		snprintf(ten + strlen(ten), sizeof(ten) - strlen(ten), "line %d\n", i);
	puts_(h, "keep.txt", "unchanged\n");
	puts_(h, "mod.txt", ten);
	puts_(h, "del.txt", "to be deleted\nsecond\n");
	puts_(h, "mode.sh", "#!/bin/sh\necho hi\n");
	puts_(h, "noeol.txt", "a\nb");
	puts_(h, "crlf.txt", "x\r\ny\r\nw\r\n");
	puts_(h, "old_name.txt", "moving\nfile\n");
	put(h, "bin.dat", bin1, sizeof(bin1), 0644);
	put(h, "bin_del.dat", bin1, sizeof(bin1), 0644);
	puts_(h, "emptyme.txt", "not for long\n");
	put(h, "was_empty", "", 0, 0644);
	puts_(h, "typechg", "a file that becomes a directory\n");
	puts_(h, "dir2file/inner.txt", "inner\n");
	puts_(h, "with space.txt", "spaced\n");
	puts_(h, "git/.git/config", "[core]\n");
	sh("ln -s keep.txt '%s/link'", h);
}

/* The guest's changes, made on a copy. */
static void change_guest(const char *g)
{
	char ten[256] = "";

	for (int i = 1; i <= 10; i++)
		snprintf(ten + strlen(ten), sizeof(ten) - strlen(ten),
			 i == 2 ? "LINE TWO\n" : i == 9 ? "line 9\ninserted\n" : "line %d\n", i);
	puts_(g, "mod.txt", ten);
	sh("rm '%s/del.txt' '%s/bin_del.dat' && chmod 755 '%s/mode.sh'", g, g, g);
	puts_(g, "noeol.txt", "a\nc");
	puts_(g, "crlf.txt", "x\r\nz\r\nw\r\n");
	sh("mv '%s/old_name.txt' '%s/new_name.txt'", g, g);
	put(g, "bin.dat", bin2, sizeof(bin2), 0644);
	put(g, "bin_new.dat", bin2, sizeof(bin2), 0755);
	put(g, "emptyme.txt", "", 0, 0644);
	puts_(g, "was_empty", "now full\n");
	sh("rm '%s/typechg' && rm -r '%s/dir2file'", g, g);
	puts_(g, "typechg/inside.txt", "dir now\n");
	puts_(g, "dir2file", "file now\n");
	puts_(g, "added.txt", "brand new\n");
	puts_(g, "newdir/sub/f.txt", "nested new\n");
	put(g, "empty_new", "", 0, 0644);
	puts_(g, "with space.txt", "spaced out\n");
	puts_(g, "git/.git/config", "[core] changed\n");
	sh("ln -sfn mod.txt '%s/link' && ln -s added.txt '%s/newlink'", g, g);
}

START_TEST(test_diff_apply_cases)
{
	char h[64], g[64], c[64], snap[64], out[128], err[512];
	struct ws_stats st;
	struct fstree *t;
	char *d;

	mktmp(h, sizeof(h), "host");
	mktmp(g, sizeof(g), "guest");
	mktmp(c, sizeof(c), "copy");
	mktmp(snap, sizeof(snap), "snap");
	snprintf(out, sizeof(out), "%s.diff", h);
	make_host(h);
	sh("cp -a '%s/.' '%s/' && cp -a '%s/.' '%s/'", h, g, h, snap);
	change_guest(g);
	t = tree_of(g, false, NULL);

	d = diff_of(h, false, t, &st, out);
	HAS(d, "diff --git a/added.txt b/added.txt\nnew file mode 100644\n"
	       "index 0000000000000000000000000000000000000000..");
	HAS(d, "--- /dev/null\n+++ b/added.txt\n@@ -0,0 +1 @@\n+brand new\n");
	HAS(d, "diff --git a/del.txt b/del.txt\ndeleted file mode 100644\n");
	HAS(d, "--- a/del.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-to be deleted\n-second\n");
	HAS(d, "diff --git a/mode.sh b/mode.sh\nold mode 100644\nnew mode 100755\n");
	HAS(d, "@@ -1,5 +1,5 @@\n line 1\n-line 2\n+LINE TWO\n line 3\n");
	HAS(d, "@@ -7,4 +7,5 @@\n line 7\n line 8\n line 9\n+inserted\n line 10\n");
	HAS(d, "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n");
	HAS(d, "-y\r\n+z\r\n");
	HAS(d, "diff --git a/old_name.txt b/old_name.txt\ndeleted file mode 100644\n");
	HAS(d, "diff --git a/new_name.txt b/new_name.txt\nnew file mode 100644\n");
	HAS(d, "diff --git a/bin.dat b/bin.dat\nindex ");
	HAS(d, "GIT binary patch\nliteral 10\n");
	HAS(d, "diff --git a/bin_new.dat b/bin_new.dat\nnew file mode 100755\n");
	HAS(d, "diff --git a/empty_new b/empty_new\nnew file mode 100644\n"
	       "index 0000000000000000000000000000000000000000..e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n");
	HAS(d, "--- a/emptyme.txt\n+++ b/emptyme.txt\n@@ -1 +0,0 @@\n-not for long\n");
	HAS(d, "index e69de29bb2d1d6434b8b29ae775ad8c2e48c5391..");
	HAS(d, "diff --git a/typechg b/typechg\ndeleted file mode 100644\n");
	HAS(d, "diff --git a/typechg/inside.txt b/typechg/inside.txt\nnew file mode 100644\n");
	HAS(d, "diff --git a/dir2file/inner.txt b/dir2file/inner.txt\ndeleted file mode 100644\n");
	HAS(d, "diff --git a/newdir/sub/f.txt b/newdir/sub/f.txt\nnew file mode 100644\n");
	HAS(d, "--- a/with space.txt\t\n+++ b/with space.txt\t\n");
	HAS(d, "diff --git a/link b/link\nindex ");
	HAS(d, " 120000\n--- a/link\n+++ b/link\n@@ -1 +1 @@\n-keep.txt\n\\ No newline at end of file\n"
	       "+mod.txt\n\\ No newline at end of file\n");
	HAS(d, "diff --git a/newlink b/newlink\nnew file mode 120000\n");
	HASNT(d, "keep.txt b/keep.txt");
	HASNT(d, ".git/");
	/* Deletion of a directory's contents comes before the file that replaces it. */
	ck_assert(strstr(d, "a/dir2file/inner.txt") < strstr(d, "a/dir2file b/dir2file"));
	ck_assert(strstr(d, "a/typechg b/typechg") < strstr(d, "a/typechg/inside.txt"));
	ck_assert_uint_eq(st.added, 8);   /* new_name bin_new empty_new typechg/inside dir2file added newdir/sub/f newlink */
	ck_assert_uint_eq(st.deleted, 5); /* del bin_del old_name typechg dir2file/inner */
	ck_assert_uint_eq(st.modified, 9); /* mod mode noeol crlf bin emptyme was_empty space link */
	ck_assert_uint_eq(st.binary, 3);
	free(d);

	/* The diff never wrote HOSTDIR; git accepts it and it makes the guest's copy. */
	assert_same_dirs(h, snap);
	sh("cp -a '%s/.' '%s/' && cd '%s' && git apply --check '%s' && git apply '%s'", h, c, c, out,
	   out);
	assert_same_dirs(c, g);

	/* ws_apply makes HOSTDIR the guest's copy, and leaves .git alone. */
	ck_assert_msg(ws_apply(h, false, t, &st, err, sizeof(err)) == 0, "%s", err);
	assert_same_dirs(h, g);
	d = slurp(strcat(strcpy(err, h), "/git/.git/config"), NULL);
	ck_assert_str_eq(d, "[core]\n");
	free(d);
	/* Applying again changes nothing; the diff is then empty. */
	ck_assert_int_eq(ws_apply(h, false, t, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.added + st.modified + st.deleted, 0);
	d = diff_of(h, false, t, &st, out);
	ck_assert_str_eq(d, "");
	free(d);
	fstree_free(t);
	sh("rm -rf '%s' '%s' '%s' '%s' '%s'", h, g, c, snap, out);
}
END_TEST

/* Random line edits over a long file: several hunks, checked by git apply. */
START_TEST(test_diff_random_edits)
{
	char h[64], g[64], out[128];
	char *a = malloc(1 << 16), *b = malloc(1 << 16);
	size_t la = 0, lb = 0;
	unsigned int seed = 12345;
	struct fstree *t;
	struct ws_stats st;
	char *d;

	mktmp(h, sizeof(h), "rh");
	mktmp(g, sizeof(g), "rg");
	snprintf(out, sizeof(out), "%s.diff", h);
	for (int i = 0; i < 600; i++) {
		int r = (int)(rand_r(&seed) % 20);

		la += (size_t)sprintf(a + la, "line %d\n", i % 50);
		if (r == 0)
			continue; /* deleted */
		if (r == 1)
			lb += (size_t)sprintf(b + lb, "new %d\n", i);
		lb += (size_t)sprintf(b + lb, r == 2 ? "changed %d\n" : "line %d\n", i % 50);
	}
	put(h, "f.txt", a, la, 0644);
	put(g, "f.txt", b, lb, 0644);
	/* Beyond the edit bound: every line differs. */
	la = lb = 0;
	for (int i = 0; i < 2500; i++) {
		la += (size_t)sprintf(a + la, "a%d\n", i);
		lb += (size_t)sprintf(b + lb, "b%d\n", i);
	}
	memcpy(a + la, "same tail\n", 10);
	memcpy(b + lb, "same tail\n", 10);
	put(h, "big.txt", a, la + 10, 0644);
	put(g, "big.txt", b, lb + 10, 0644);
	t = tree_of(g, false, NULL);
	d = diff_of(h, false, t, &st, out);
	ck_assert_uint_eq(st.modified, 2);
	HAS(d, "@@ -1,2501 +1,2501 @@\n-a0\n");
	/* Several hunks in f.txt. */
	ck_assert_ptr_nonnull(strstr(strstr(strstr(d, "@@ -"), "\n@@ -"), "\n@@ -"));
	sh("cd '%s' && git apply --check '%s' && git apply '%s'", h, out, out);
	assert_same_dirs(h, g);
	free(d);
	fstree_free(t);
	free(a);
	free(b);
	sh("rm -rf '%s' '%s' '%s'", h, g, out);
}
END_TEST

/* A symlink in HOSTDIR that points outside is never followed. */
START_TEST(test_symlink_outside)
{
	char h[64], g[64], o[64], err[512];
	struct fstree *t;
	struct ws_stats st;
	char *s;

	mktmp(h, sizeof(h), "sh");
	mktmp(g, sizeof(g), "sg");
	mktmp(o, sizeof(o), "outside");
	puts_(o, "secret.txt", "secret\n");
	sh("ln -s '%s' '%s/esc' && ln -s '%s/secret.txt' '%s/lnk'", o, h, o, h);
	puts_(h, "normal.txt", "n\n");

	/* Pack: links as links, not what they point to. */
	t = tree_of(h, false, NULL);
	ck_assert_int_eq(fstree_lookup(t, "esc")->type, TAR_SYMLINK);
	ck_assert_ptr_null(fstree_lookup(t, "esc/secret.txt"));
	fstree_free(t);

	/* The guest makes esc a directory holding secret.txt, and lnk a file. */
	puts_(g, "esc/secret.txt", "pwned\n");
	puts_(g, "lnk", "pwned too\n");
	puts_(g, "normal.txt", "n\n");
	t = tree_of(g, false, NULL);
	s = diff_of(h, false, t, &st, "/tmp/ws-sym.diff");
	HAS(s, "diff --git a/esc b/esc\ndeleted file mode 120000\n");
	HAS(s, "diff --git a/esc/secret.txt b/esc/secret.txt\nnew file mode 100644\n");
	free(s);
	ck_assert_msg(ws_apply(h, false, t, &st, err, sizeof(err)) == 0, "%s", err);
	s = slurp(strcat(strcpy(err, o), "/secret.txt"), NULL);
	ck_assert_str_eq(s, "secret\n");
	free(s);
	sh("test -d '%s/esc' && ! test -L '%s/esc' && test -f '%s/lnk' && ! test -L '%s/lnk'", h, h,
	   h, h);
	sh("test \"$(ls '%s')\" = secret.txt", o);
	assert_same_dirs(h, g);
	fstree_free(t);
	sh("rm -rf '%s' '%s' '%s' /tmp/ws-sym.diff", h, g, o);
}
END_TEST

/* A hostile name in the guest's tree is refused, nothing written outside. */
START_TEST(test_bad_guest_name)
{
	char h[64], g[64], err[512] = "";
	struct fstree *t;
	struct fstree_node *n;
	char *saved;

	mktmp(h, sizeof(h), "bh");
	mktmp(g, sizeof(g), "bg");
	puts_(g, "evil", "x\n");
	t = tree_of(g, false, NULL);
	n = fstree_lookup(t, "evil");
	saved = n->name;
	n->name = (char *)"..";
	ck_assert_int_eq(ws_apply(h, false, t, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad name"));
	n->name = (char *)"a/../../x";
	ck_assert_int_eq(ws_diff(h, false, t, -1, NULL, err, sizeof(err)), -EINVAL);
	n->name = saved;
	sh("test -z \"$(ls -A '%s')\"", h);
	ck_assert_int_ne(sh_rc("test -e /tmp/x"), 0);
	fstree_free(t);
	sh("rm -rf '%s' '%s'", h, g);
}
END_TEST

START_TEST(test_gitignore)
{
	char h[64], g[64], out[128], err[512];
	struct fstree *t;
	struct ws_stats st;
	char *d;

	mktmp(h, sizeof(h), "ih");
	mktmp(g, sizeof(g), "ig");
	snprintf(out, sizeof(out), "%s.diff", h);
	puts_(h, ".gitignore", "*.log\nbuild/\n");
	puts_(h, "a.log", "log\n");
	puts_(h, "build/out.o", "obj\n");
	puts_(h, "src/x.c", "int x;\n");
	puts_(h, "src/.gitignore", "!keep.log\n");
	puts_(h, "src/keep.log", "kept\n");
	puts_(h, ".git/config", "[core]\n");

	/* Without respect_gitignore everything goes, .git included. */
	t = tree_of(h, false, NULL);
	ck_assert_ptr_nonnull(fstree_lookup(t, ".git/config"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "a.log"));
	fstree_free(t);

	t = tree_of(h, true, &st);
	ck_assert_ptr_null(fstree_lookup(t, ".git"));
	ck_assert_ptr_null(fstree_lookup(t, "a.log"));
	ck_assert_ptr_null(fstree_lookup(t, "build"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "src/x.c"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "src/keep.log"));
	ck_assert_ptr_nonnull(fstree_lookup(t, ".gitignore"));
	ck_assert_uint_eq(st.ignored, 3);
	fstree_free(t);

	/* The guest's copy: what was packed, then changed. */
	sh("cd '%s' && cp .gitignore '%s/' && mkdir '%s/src' && cp src/x.c src/.gitignore src/keep.log '%s/src/'",
	   h, g, g, g);
	puts_(g, "src/x.c", "int x = 1;\n");
	puts_(g, "new.log", "ignored\n");
	puts_(g, "build/other.o", "ignored too\n");
	puts_(g, "src/keep.log", "kept, changed\n");
	t = tree_of(g, false, NULL);
	d = diff_of(h, true, t, &st, out);
	HAS(d, "diff --git a/src/x.c b/src/x.c\n");
	HAS(d, "diff --git a/src/keep.log b/src/keep.log\n");
	HASNT(d, "a.log");
	HASNT(d, "new.log");
	HASNT(d, "build");
	HASNT(d, ".git/");
	ck_assert_uint_eq(st.modified, 2);
	ck_assert_uint_eq(st.added + st.deleted, 0);
	free(d);
	ck_assert_msg(ws_apply(h, true, t, &st, err, sizeof(err)) == 0, "%s", err);
	sh("cd '%s' && test -f a.log && test -f build/out.o && ! test -e build/other.o && "
	   "! test -e new.log && grep -q 'int x = 1;' src/x.c && grep -q changed src/keep.log && "
	   "grep -q core .git/config",
	   h);
	fstree_free(t);
	sh("rm -rf '%s' '%s' '%s'", h, g, out);
}
END_TEST

static Suite *workspace_suite(void)
{
	Suite *s = suite_create("workspace");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_pack_roundtrip);
	tcase_add_test(tc, test_diff_apply_cases);
	tcase_add_test(tc, test_diff_random_edits);
	tcase_add_test(tc, test_symlink_outside);
	tcase_add_test(tc, test_bad_guest_name);
	tcase_add_test(tc, test_gitignore);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(workspace_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
