/* Unit tests for the guest's tar tool (rootfs/agent/tartool.c): create, overlay layers, extract, round trips and hostile streams; run as root (mknod, chown, trusted xattrs). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "rootfs/agent/tartool.h"

static char t_dir[64];

/* ---- helpers ---- */

static void t_path(char *out, size_t sz, const char *sub)
{
	int n = snprintf(out, sz, "%s/%s", t_dir, sub);

	ck_assert(n > 0 && (size_t)n < sz);
}

static void t_write(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/* Everything in path (at most max bytes) into a malloc'd buffer; *len its size. */
static uint8_t *t_slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = 0;
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/*
 * Runs tartool_main(argv) in a child with stdin from in_path (or /dev/null),
 * stdout to out_path (or /dev/null; or out_fd when >= 0), stderr to err_path;
 * returns its exit status (or 128 + signal).
 */
static int t_run_as(uid_t uid, const char *const *argv, const char *in_path, const char *out_path,
                    int out_fd, const char *err_path)
{
	int argc = 0, ws;
	pid_t pid;

	while (argv[argc])
		argc++;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int out = out_fd >= 0 ? out_fd
		                      : open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(99);
		if (uid != 0 && (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
			_exit(98);
		_exit(tartool_main(argc, (char **)argv));
	}
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

static int t_run(const char *const *argv, const char *in_path, const char *out_path, int out_fd,
                 const char *err_path)
{
	return t_run_as(0, argv, in_path, out_path, out_fd, err_path);
}

/* stderr of the last t_run, as a string (malloc'd). */
static char *t_stderr(const char *err_path)
{
	size_t len;

	return (char *)t_slurp(err_path, &len);
}

/* ---- reading a stream back ---- */

#define T_MAX_ENTRIES 128

struct t_ent {
	struct tar_entry e;
	uint8_t *data;
	size_t dlen;
};

struct t_stream {
	struct t_ent *v;
	size_t n;
};

static int t_on_entry(void *ctx, const struct tar_entry *e)
{
	struct t_stream *s = ctx;

	if (s->n == T_MAX_ENTRIES)
		return -E2BIG;
	s->v[s->n].e = *e;
	s->v[s->n].data = e->size ? malloc(e->size) : NULL;
	s->v[s->n].dlen = 0;
	s->n++;
	return 0;
}

static int t_on_data(void *ctx, const void *buf, size_t len)
{
	struct t_stream *s = ctx;
	struct t_ent *t = &s->v[s->n - 1];

	if (!t->data || t->dlen + len > t->e.size)
		return -EINVAL;
	memcpy(t->data + t->dlen, buf, len);
	t->dlen += len;
	return 0;
}

/* Parses the archive in path; it must be well-formed and end with the marker. */
static void t_read_stream(const char *path, struct t_stream *s)
{
	static const struct tar_reader_ops ops = { .entry = t_on_entry, .data = t_on_data };
	static const uint8_t zero[TAR_END_SIZE];
	struct tar_reader *r;
	size_t len;
	uint8_t *buf = t_slurp(path, &len);

	s->v = calloc(T_MAX_ENTRIES, sizeof(*s->v));
	s->n = 0;
	ck_assert_ptr_nonnull(s->v);
	ck_assert_int_ge(len, TAR_END_SIZE);
	ck_assert_int_eq(len % TAR_BLOCK, 0);
	ck_assert(memcmp(buf + len - TAR_END_SIZE, zero, TAR_END_SIZE) == 0);
	ck_assert_int_eq(tar_reader_new(&ops, s, &r), 0);
	/* Odd splits: the stream must not depend on block alignment of reads. */
	for (size_t off = 0; off < len;) {
		size_t k = len - off < 777 ? len - off : 777;

		ck_assert_msg(tar_reader_feed(r, buf + off, k) == 0, "%s", tar_reader_error(r));
		off += k;
	}
	ck_assert_int_eq(tar_reader_finish(r), 0);
	tar_reader_free(r);
	free(buf);
}

static void t_stream_free(struct t_stream *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].data);
	free(s->v);
}

static const struct t_ent *t_find(const struct t_stream *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].e.path, path) == 0)
			return &s->v[i];
	return NULL;
}

/* ---- a source tree with every type ---- */

#define T_MTIME 1600000000
#define T_BIG_SIZE 100001

static void t_set_mtime(const char *path)
{
	struct timespec ts[2] = { { .tv_sec = T_MTIME }, { .tv_sec = T_MTIME } };

	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static char t_long_name[201];
static char t_long_dir[256];

/*
 * src/: a.txt (0640, 1234:5678), dir/ (0750), dir/sub/deep.bin (big),
 * hard1 + dir/hard2 (one inode), link -> a.txt, abs -> /etc/passwd,
 * fifo, chr (1:3), blk (7:0), sock (skipped), skip/x (for --exclude),
 * a 200-byte name, a path over 300 bytes, ro/ (0555) with ro/f inside.
 */
static void t_make_tree(const char *src, bool devices)
{
	char p[2048], q[1024];
	uint8_t *big = malloc(T_BIG_SIZE);

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < T_BIG_SIZE; i++)
		big[i] = (uint8_t)(i * 7 + i / 256);
	ck_assert_int_eq(mkdir(src, 0755), 0);
#define P(sub) (snprintf(p, sizeof(p), "%s/%s", src, sub), p)
	t_write(P("a.txt"), "hello\n", 6, 0640);
	ck_assert_int_eq(chown(p, 1234, 5678), 0);
	t_set_mtime(p);
	ck_assert_int_eq(mkdir(P("dir"), 0750), 0);
	ck_assert_int_eq(chmod(p, 0750), 0);
	ck_assert_int_eq(mkdir(P("dir/sub"), 0755), 0);
	t_write(P("dir/sub/deep.bin"), big, T_BIG_SIZE, 0600);
	t_write(P("hard1"), "shared", 6, 0644);
	snprintf(q, sizeof(q), "%s/dir/hard2", src);
	ck_assert_int_eq(link(p, q), 0);
	ck_assert_int_eq(symlink("a.txt", P("link")), 0);
	ck_assert_int_eq(symlink("/etc/passwd", P("abs")), 0);
	ck_assert_int_eq(mkdir(P("skip"), 0755), 0);
	t_write(P("skip/x"), "x", 1, 0644);
	memset(t_long_name, 'n', 200);
	t_long_name[200] = '\0';
	snprintf(q, sizeof(q), "dir/%s", t_long_name);
	t_write(P(q), "long", 4, 0644);
	memset(t_long_dir, 'd', 150);
	t_long_dir[150] = '\0';
	ck_assert_int_eq(mkdir(P(t_long_dir), 0755), 0);
	snprintf(q, sizeof(q), "%s/%s", t_long_dir, t_long_dir);
	ck_assert_int_eq(mkdir(P(q), 0755), 0);
	snprintf(q, sizeof(q), "%s/%s/file", t_long_dir, t_long_dir);
	t_write(P(q), "deep", 4, 0644);
	ck_assert_int_eq(mkdir(P("ro"), 0755), 0);
	t_write(P("ro/f"), "ro", 2, 0444);
	ck_assert_int_eq(chmod(P("ro"), 0555), 0);
	if (devices) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int sfd = socket(AF_UNIX, SOCK_STREAM, 0);

		ck_assert_int_eq(mkfifo(P("fifo"), 0600), 0);
		ck_assert_int_eq(mknod(P("chr"), S_IFCHR | 0666, makedev(1, 3)), 0);
		ck_assert_int_eq(mknod(P("blk"), S_IFBLK | 0660, makedev(7, 0)), 0);
		ck_assert_int_ge(sfd, 0);
		ck_assert(strlen(P("sock")) < sizeof(sa.sun_path));
		memcpy(sa.sun_path, p, strlen(p) + 1);
		ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(sfd);
	}
#undef P
	free(big);
}

/* ---- create ---- */

START_TEST(create_every_type)
{
	char src[256], out[256], err[256];
	const char *argv[] = { "tar", "create", "--exclude", "./skip/", NULL, NULL };
	struct t_stream s;
	const struct t_ent *t;
	char want[1024];

	t_path(src, sizeof(src), "c-src");
	t_path(out, sizeof(out), "c.tar");
	t_path(err, sizeof(err), "c.err");
	t_make_tree(src, true);
	argv[4] = src;
	ck_assert_int_eq(t_run(argv, NULL, out, -1, err), 0);
	t_read_stream(out, &s);

	/* Sorted, depth first, no root, no socket, nothing under skip. */
	{
		static const char *const order[] = { "a.txt", "abs", "blk", "chr", "d", "dir", "dir/hard2",
		                                      "dir/n", "dir/sub", "dir/sub/deep.bin", "fifo",
		                                      "hard1", "link", "ro", "ro/f" };
		size_t k = 0;

		for (size_t i = 0; i < s.n; i++) {
			const char *pth = s.v[i].e.path;

			ck_assert_msg(strncmp(pth, "skip", 4) != 0 && strcmp(pth, "sock") != 0 && pth[0],
			              "unexpected entry %s", pth);
			if (k < sizeof(order) / sizeof(order[0]) &&
			    strncmp(pth, order[k], strlen(order[k])) == 0)
				k++;
			if (i > 0) /* within one directory, names ascend: whole paths here too */
				ck_assert_msg(strcmp(s.v[i - 1].e.path, pth) < 0, "%s before %s",
				              s.v[i - 1].e.path, pth);
		}
		ck_assert_uint_eq(k, sizeof(order) / sizeof(order[0]));
		ck_assert_uint_eq(s.n, 17);
	}
	t = t_find(&s, "a.txt");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->e.type, TAR_REG);
	ck_assert_uint_eq(t->e.mode, 0640);
	ck_assert_uint_eq(t->e.uid, 1234);
	ck_assert_uint_eq(t->e.gid, 5678);
	ck_assert_int_eq(t->e.mtime, T_MTIME);
	ck_assert_uint_eq(t->dlen, 6);
	ck_assert(memcmp(t->data, "hello\n", 6) == 0);
	t = t_find(&s, "dir");
	ck_assert(t && t->e.type == TAR_DIR && t->e.mode == 0750 && t->e.size == 0);
	t = t_find(&s, "dir/sub/deep.bin");
	ck_assert(t && t->e.type == TAR_REG && t->e.size == T_BIG_SIZE && t->dlen == T_BIG_SIZE);
	ck_assert_uint_eq(t->data[T_BIG_SIZE - 1], (uint8_t)((T_BIG_SIZE - 1) * 7 + (T_BIG_SIZE - 1) / 256));
	/* dir/hard2 sorts before hard1: it is the file, hard1 the link. */
	t = t_find(&s, "dir/hard2");
	ck_assert(t && t->e.type == TAR_REG && t->dlen == 6);
	t = t_find(&s, "hard1");
	ck_assert(t && t->e.type == TAR_HARDLINK);
	ck_assert_str_eq(t->e.link, "dir/hard2");
	t = t_find(&s, "link");
	ck_assert(t && t->e.type == TAR_SYMLINK);
	ck_assert_str_eq(t->e.link, "a.txt");
	t = t_find(&s, "abs");
	ck_assert(t && t->e.type == TAR_SYMLINK);
	ck_assert_str_eq(t->e.link, "/etc/passwd");
	t = t_find(&s, "fifo");
	ck_assert(t && t->e.type == TAR_FIFO && t->e.mode == 0600);
	t = t_find(&s, "chr");
	ck_assert(t && t->e.type == TAR_CHR && t->e.devmajor == 1 && t->e.devminor == 3);
	t = t_find(&s, "blk");
	ck_assert(t && t->e.type == TAR_BLK && t->e.devmajor == 7 && t->e.devminor == 0);
	snprintf(want, sizeof(want), "dir/%s", t_long_name);
	t = t_find(&s, want);
	ck_assert(t && t->e.type == TAR_REG && t->dlen == 4);
	snprintf(want, sizeof(want), "%s/%s/file", t_long_dir, t_long_dir);
	t = t_find(&s, want);
	ck_assert(t && t->e.type == TAR_REG && t->dlen == 4 && memcmp(t->data, "deep", 4) == 0);
	t = t_find(&s, "ro");
	ck_assert(t && t->e.type == TAR_DIR && t->e.mode == 0555);
	t_stream_free(&s);
}
END_TEST

/* Two runs over the same tree give the same bytes. */
START_TEST(create_is_deterministic)
{
	char src[256], o1[256], o2[256], err[256];
	const char *argv[] = { "tar", "create", NULL, NULL };
	uint8_t *b1, *b2;
	size_t l1, l2;

	t_path(src, sizeof(src), "d-src");
	t_path(o1, sizeof(o1), "d1.tar");
	t_path(o2, sizeof(o2), "d2.tar");
	t_path(err, sizeof(err), "d.err");
	t_make_tree(src, false);
	argv[2] = src;
	ck_assert_int_eq(t_run(argv, NULL, o1, -1, err), 0);
	ck_assert_int_eq(t_run(argv, NULL, o2, -1, err), 0);
	b1 = t_slurp(o1, &l1);
	b2 = t_slurp(o2, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert(memcmp(b1, b2, l1) == 0);
	free(b1);
	free(b2);
}
END_TEST

START_TEST(create_epipe_is_status_1)
{
	char src[256], err[256], p[300];
	const char *argv[] = { "tar", "create", NULL, NULL };
	uint8_t *big = calloc(1, 1 << 20);
	int pfd[2];
	char *msg;

	t_path(src, sizeof(src), "e-src");
	t_path(err, sizeof(err), "e.err");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	snprintf(p, sizeof(p), "%s/big", src);
	t_write(p, big, 1 << 20, 0644);
	free(big);
	ck_assert_int_eq(pipe(pfd), 0);
	close(pfd[0]);
	argv[2] = src;
	ck_assert_int_eq(t_run(argv, NULL, NULL, pfd[1], err), 1);
	close(pfd[1]);
	msg = t_stderr(err);
	ck_assert_msg(strstr(msg, "minivm-init tar: ") == msg && strstr(msg, "writing the stream"),
	              "stderr: %s", msg);
	free(msg);
}
END_TEST

START_TEST(create_too_deep_and_too_long)
{
	char src[256], err[256], name[300];
	const char *argv[] = { "tar", "create", NULL, NULL };
	char *msg;
	int fd;

	t_path(src, sizeof(src), "deep-src");
	t_path(err, sizeof(err), "deep.err");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	fd = open(src, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < TARTOOL_DEPTH_MAX + 2; i++) {
		int next;

		ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		ck_assert_int_ge(next, 0);
		close(fd);
		fd = next;
	}
	close(fd);
	argv[2] = src;
	ck_assert_int_eq(t_run(argv, NULL, NULL, -1, err), 1);
	msg = t_stderr(err);
	ck_assert_msg(strstr(msg, "directories deep"), "stderr: %s", msg);
	free(msg);

	/* 20 components of 250 bytes: over TAR_PATH_MAX. */
	t_path(src, sizeof(src), "long-src");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	fd = open(src, O_RDONLY | O_DIRECTORY);
	memset(name, 'L', 250);
	name[250] = '\0';
	for (int i = 0; i < 20; i++) {
		int next;

		ck_assert_int_eq(mkdirat(fd, name, 0755), 0);
		next = openat(fd, name, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = next;
	}
	close(fd);
	argv[2] = src;
	ck_assert_int_eq(t_run(argv, NULL, NULL, -1, err), 1);
	msg = t_stderr(err);
	ck_assert_msg(strstr(msg, "path longer than"), "stderr: %s", msg);
	free(msg);
}
END_TEST

START_TEST(usage_is_status_2)
{
	char err[256];
	const char *a1[] = { "tar", NULL };
	const char *a2[] = { "tar", "create", NULL };
	const char *a3[] = { "tar", "extract", "--owner", "x:1", "/tmp/nowhere-tartool", NULL };
	const char *a4[] = { "tar", "create", "--bogus", "/tmp", NULL };
	const char *a5[] = { "tar", "extract", "a", "b", NULL };
	const char *a6[] = { "tar", "extract", "--owner", "4294967295:0", "/tmp/nowhere-tartool", NULL };

	t_path(err, sizeof(err), "u.err");
	ck_assert_int_eq(t_run(a1, NULL, NULL, -1, err), 2);
	ck_assert_int_eq(t_run(a2, NULL, NULL, -1, err), 2);
	ck_assert_int_eq(t_run(a3, NULL, NULL, -1, err), 2);
	ck_assert_int_eq(t_run(a4, NULL, NULL, -1, err), 2);
	ck_assert_int_eq(t_run(a5, NULL, NULL, -1, err), 2);
	ck_assert_int_eq(t_run(a6, NULL, NULL, -1, err), 2);
	ck_assert_int_ne(access("/tmp/nowhere-tartool", F_OK), 0);
}
END_TEST

/* ---- overlay ---- */

START_TEST(create_overlay_whiteouts)
{
	char up[256], out[256], err[256], p[512], q[512];
	const char *argv[] = { "tar", "create", "--overlay", NULL, NULL };
	struct t_stream s;
	const struct t_ent *t;

	t_path(up, sizeof(up), "upper");
	t_path(out, sizeof(out), "o.tar");
	t_path(err, sizeof(err), "o.err");
	ck_assert_int_eq(mkdir(up, 0755), 0);
	snprintf(p, sizeof(p), "%s/gone", up);
	ck_assert_int_eq(mknod(p, S_IFCHR | 0000, makedev(0, 0)), 0);
	snprintf(p, sizeof(p), "%s/dir", up);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	/* Overlayfs shares one whiteout inode between names: not a hard link here. */
	snprintf(p, sizeof(p), "%s/gone", up);
	snprintf(q, sizeof(q), "%s/dir/gone2", up);
	ck_assert_int_eq(link(p, q), 0);
	snprintf(p, sizeof(p), "%s/dir/kept", up);
	t_write(p, "k", 1, 0644);
	snprintf(p, sizeof(p), "%s/opq", up);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_msg(setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0, "setxattr: %s", strerror(errno));
	/* Bookkeeping xattrs overlayfs writes on copy-up are ignored. */
	ck_assert_int_eq(setxattr(p, "trusted.overlay.origin", "\0\xfb", 2, 0), 0);
	ck_assert_int_eq(setxattr(p, "trusted.overlay.impure", "y", 1, 0), 0);
	snprintf(p, sizeof(p), "%s/opq/new", up);
	t_write(p, "new", 3, 0644);
	snprintf(p, sizeof(p), "%s/uopq", up);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	ck_assert_int_eq(setxattr(p, "user.overlay.opaque", "y", 1, 0), 0);
	snprintf(p, sizeof(p), "%s/a-first", up);
	t_write(p, "a", 1, 0644);
	/* A real (non-0:0) char device stays a device. */
	snprintf(p, sizeof(p), "%s/null", up);
	ck_assert_int_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);

	argv[3] = up;
	ck_assert_int_eq(t_run(argv, NULL, out, -1, err), 0);
	t_read_stream(out, &s);
	{
		static const char *const want[] = {
			".wh.gone", "a-first", "dir", "dir/.wh.gone2", "dir/kept", "null",
			"opq", "opq/.wh..wh..opq", "opq/new", "uopq", "uopq/.wh..wh..opq",
		};

		ck_assert_uint_eq(s.n, sizeof(want) / sizeof(want[0]));
		for (size_t i = 0; i < s.n; i++)
			ck_assert_str_eq(s.v[i].e.path, want[i]);
	}
	t = t_find(&s, ".wh.gone");
	ck_assert(t->e.type == TAR_REG && t->e.mode == 0644 && t->e.uid == 0 && t->e.gid == 0 && t->e.size == 0);
	t = t_find(&s, "dir/.wh.gone2");
	ck_assert(t->e.type == TAR_REG && t->e.size == 0);
	t = t_find(&s, "opq/.wh..wh..opq");
	ck_assert(t->e.type == TAR_REG && t->e.mode == 0644 && t->e.size == 0);
	t = t_find(&s, "opq");
	ck_assert(t->e.type == TAR_DIR && t->e.mode == 0700);
	t = t_find(&s, "null");
	ck_assert(t->e.type == TAR_CHR && t->e.devmajor == 1 && t->e.devminor == 3);
	t_stream_free(&s);

	/* Without --overlay the same tree is plain: 0:0 devices, a hard link, no markers. */
	argv[2] = up;
	argv[3] = NULL;
	ck_assert_int_eq(t_run(argv, NULL, out, -1, err), 0);
	t_read_stream(out, &s);
	ck_assert_ptr_null(t_find(&s, "opq/.wh..wh..opq"));
	t = t_find(&s, "dir/gone2");
	ck_assert(t && t->e.type == TAR_CHR);
	t = t_find(&s, "gone");
	ck_assert(t && t->e.type == TAR_HARDLINK);
	ck_assert_str_eq(t->e.link, "dir/gone2");
	t_stream_free(&s);
}
END_TEST

START_TEST(create_overlay_refuses)
{
	static const struct {
		const char *xattr, *value, *msg;
		bool on_file;
	} cases[] = {
		{ "trusted.overlay.redirect", "/elsewhere", "trusted.overlay.redirect not supported", false },
		{ "trusted.overlay.metacopy", "", "trusted.overlay.metacopy not supported", true },
		{ "user.overlay.redirect", "x", "user.overlay.redirect not supported", false },
		{ "trusted.overlay.opaque", "x", "opaque=x not supported", false },
		{ "trusted.overlay.futurefeature", "1", "futurefeature not supported", true },
	};
	char up[256], err[256], p[512];
	const char *argv[] = { "tar", "create", "--overlay", NULL, NULL };
	char *msg;

	t_path(err, sizeof(err), "r.err");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sub[32];

		snprintf(sub, sizeof(sub), "r-up%zu", i);
		t_path(up, sizeof(up), sub);
		ck_assert_int_eq(mkdir(up, 0755), 0);
		snprintf(p, sizeof(p), "%s/victim", up);
		if (cases[i].on_file)
			t_write(p, "v", 1, 0644);
		else
			ck_assert_int_eq(mkdir(p, 0755), 0);
		ck_assert_int_eq(setxattr(p, cases[i].xattr, cases[i].value, strlen(cases[i].value), 0), 0);
		argv[3] = up;
		ck_assert_int_eq(t_run(argv, NULL, NULL, -1, err), 1);
		msg = t_stderr(err);
		ck_assert_msg(strstr(msg, "victim") && strstr(msg, cases[i].msg), "case %zu stderr: %s", i, msg);
		free(msg);
	}
	/* A name that would read as a whiteout. */
	t_path(up, sizeof(up), "r-wh");
	ck_assert_int_eq(mkdir(up, 0755), 0);
	snprintf(p, sizeof(p), "%s/.wh.sneaky", up);
	t_write(p, "", 0, 0644);
	argv[3] = up;
	ck_assert_int_eq(t_run(argv, NULL, NULL, -1, err), 1);
	msg = t_stderr(err);
	ck_assert_msg(strstr(msg, ".wh.sneaky") && strstr(msg, "whiteout"), "stderr: %s", msg);
	free(msg);
}
END_TEST

/* ---- extract ---- */

/* dst's entry must match src's: type, mode, owner, mtime, contents, target. */
static void t_same(const char *src, const char *dst, const char *sub)
{
	char a[1024], b[1024];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "%s/%s", src, sub);
	snprintf(b, sizeof(b), "%s/%s", dst, sub);
	ck_assert_msg(lstat(a, &sa) == 0 && lstat(b, &sb) == 0, "%s: missing", sub);
	ck_assert_msg((sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT), "%s: type", sub);
	ck_assert_msg(sa.st_uid == sb.st_uid && sa.st_gid == sb.st_gid, "%s: owner %d:%d", sub,
	              (int)sb.st_uid, (int)sb.st_gid);
	if (S_ISLNK(sa.st_mode)) {
		char la[512], lb[512];
		ssize_t na = readlink(a, la, sizeof(la)), nb = readlink(b, lb, sizeof(lb));

		ck_assert(na > 0 && na == nb && memcmp(la, lb, (size_t)na) == 0);
		return;
	}
	ck_assert_msg((sa.st_mode & 07777) == (sb.st_mode & 07777), "%s: mode %o", sub, sb.st_mode & 07777);
	ck_assert_msg(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec, "%s: mtime", sub);
	if (S_ISREG(sa.st_mode)) {
		size_t la, lb;
		uint8_t *da = t_slurp(a, &la), *db = t_slurp(b, &lb);

		ck_assert_msg(la == lb && memcmp(da, db, la) == 0, "%s: contents", sub);
		free(da);
		free(db);
	}
}

START_TEST(round_trip)
{
	char src[256], dst[256], out[256], err[256], a[512], b[512], sub[600];
	const char *cr[] = { "tar", "create", NULL, NULL };
	const char *ex[] = { "tar", "extract", NULL, NULL };
	struct stat sa, sb;

	t_path(src, sizeof(src), "rt-src");
	t_path(dst, sizeof(dst), "rt-dst/made/by/extract");
	t_path(out, sizeof(out), "rt.tar");
	t_path(err, sizeof(err), "rt.err");
	t_make_tree(src, false);
	t_set_mtime(src);
	snprintf(a, sizeof(a), "%s/dir", src);
	t_set_mtime(a);
	snprintf(a, sizeof(a), "%s/ro", src);
	t_set_mtime(a);
	cr[2] = src;
	ck_assert_int_eq(t_run(cr, NULL, out, -1, err), 0);
	ex[2] = dst;
	ck_assert_int_eq(t_run(ex, out, NULL, -1, err), 0);

	static const char *const subs[] = { "a.txt", "abs", "dir", "dir/sub", "dir/sub/deep.bin", "dir/hard2",
	                                    "hard1", "link", "skip", "skip/x", "ro", "ro/f" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		t_same(src, dst, subs[i]);
	snprintf(sub, sizeof(sub), "dir/%s", t_long_name);
	t_same(src, dst, sub);
	snprintf(sub, sizeof(sub), "%s/%s/file", t_long_dir, t_long_dir);
	t_same(src, dst, sub);
	/* The hard link is one inode again. */
	snprintf(a, sizeof(a), "%s/hard1", dst);
	snprintf(b, sizeof(b), "%s/dir/hard2", dst);
	ck_assert(stat(a, &sa) == 0 && stat(b, &sb) == 0);
	ck_assert(sa.st_ino == sb.st_ino && sa.st_nlink == 2);
	/* No temporary names left behind. */
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s' -name '.minivm-tar.*')\"", dst);
		ck_assert_int_eq(system(cmd), 0);
	}

	/* Again over the same tree: files are replaced, directories kept. */
	ck_assert_int_eq(t_run(ex, out, NULL, -1, err), 0);
	t_same(src, dst, "a.txt");
	t_same(src, dst, "hard1");
	snprintf(a, sizeof(a), "%s/hard1", dst);
	ck_assert(stat(a, &sa) == 0 && sa.st_nlink == 2);
}
END_TEST

START_TEST(extract_owner)
{
	char src[256], dst[256], out[256], err[256], p[512];
	const char *cr[] = { "tar", "create", NULL, NULL };
	const char *ex[] = { "tar", "extract", "--owner", "1000:1001", NULL, NULL };
	const char *const subs[] = { "a.txt", "dir", "dir/sub/deep.bin", "link", "ro/f" };
	struct stat st;

	t_path(src, sizeof(src), "ow-src");
	t_path(dst, sizeof(dst), "ow-dst");
	t_path(out, sizeof(out), "ow.tar");
	t_path(err, sizeof(err), "ow.err");
	t_make_tree(src, false);
	cr[2] = src;
	ck_assert_int_eq(t_run(cr, NULL, out, -1, err), 0);
	ex[4] = dst;
	ck_assert_int_eq(t_run(ex, out, NULL, -1, err), 0);
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dst, subs[i]);
		ck_assert_int_eq(lstat(p, &st), 0);
		ck_assert_msg(st.st_uid == 1000 && st.st_gid == 1001, "%s: %d:%d", subs[i], (int)st.st_uid,
		              (int)st.st_gid);
	}
	snprintf(p, sizeof(p), "%s/a.txt", dst);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
}
END_TEST

/* ---- hostile streams, built by hand ---- */

struct t_tar {
	uint8_t buf[64 * 1024];
	size_t len;
	size_t hdr[32]; /* where t_raw put each header */
	size_t nhdr;
};

/* Recompute the checksum of the header at h. */
static void t_fix_sum(uint8_t *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A raw ustar header, name taken as is (may be unclean), then data padded. */
static void t_raw(struct t_tar *t, const char *name, char type, const char *link, const void *data,
                  size_t size, unsigned dmaj, unsigned dmin)
{
	uint8_t *h = t->buf + t->len;

	ck_assert(t->len + TAR_BLOCK + size + TAR_BLOCK <= sizeof(t->buf));
	if (t->nhdr < sizeof(t->hdr) / sizeof(t->hdr[0]))
		t->hdr[t->nhdr++] = t->len;
	memset(h, 0, TAR_BLOCK);
	ck_assert(strlen(name) < 100 && strlen(link) < 100);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	snprintf((char *)h + 124, 12, "%011zo", size);
	memcpy(h + 136, "13000000000", 11);
	h[156] = (uint8_t)type;
	memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar\0" "00", 8);
	snprintf((char *)h + 329, 8, "%07o", dmaj);
	snprintf((char *)h + 337, 8, "%07o", dmin);
	t_fix_sum(h);
	t->len += TAR_BLOCK;
	if (size)
		memcpy(t->buf + t->len, data, size);
	t->len += size;
	memset(t->buf + t->len, 0, tar_pad(size));
	t->len += tar_pad(size);
}

static void t_raw_end(struct t_tar *t, const char *path)
{
	int fd;

	memset(t->buf + t->len, 0, TAR_END_SIZE);
	t->len += TAR_END_SIZE;
	t->nhdr = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, t->buf, t->len), (ssize_t)t->len);
	close(fd);
	t->len = 0;
}

/* Extract the stream in `in` into a fresh dir; expect status 1 and msg on stderr. */
static void t_extract_fails(const char *tag, const char *in, const char *msg)
{
	char dst[256], err[256];
	const char *ex[] = { "tar", "extract", NULL, NULL };
	char *got;

	t_path(dst, sizeof(dst), tag);
	t_path(err, sizeof(err), "h.err");
	ex[2] = dst;
	ck_assert_int_eq(t_run(ex, in, NULL, -1, err), 1);
	got = t_stderr(err);
	ck_assert_msg(strncmp(got, "minivm-init tar: extract: ", 26) == 0 && strstr(got, msg) &&
	              strchr(got, '\n') == got + strlen(got) - 1,
	              "%s: want '%s' in one line, got: %s", tag, msg, got);
	free(got);
}

START_TEST(extract_hostile)
{
	static struct t_tar t;
	char in[256], outside[256], link[300], p[600];
	struct stat st;
	size_t len;
	uint8_t *b;

	t_path(in, sizeof(in), "h.tar");
	t_path(outside, sizeof(outside), "outside");
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/target", outside);
	t_write(p, "precious", 8, 0644);

	/* A symlink to outside, then a file through it. */
	t_raw(&t, "a", '2', outside, NULL, 0, 0, 0);
	t_raw(&t, "a/x", '0', "", "pwned", 5, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h1", in, "a/x: a exists and is not a directory");
	snprintf(p, sizeof(p), "%s/x", outside);
	ck_assert_int_ne(access(p, F_OK), 0);
	/* ... and a directory through it. */
	t_raw(&t, "a", '2', outside, NULL, 0, 0, 0);
	t_raw(&t, "a/sub/", '5', "", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h1b", in, "a/sub: a exists and is not a directory");
	snprintf(p, sizeof(p), "%s/sub", outside);
	ck_assert_int_ne(access(p, F_OK), 0);

	/* "..", absolute, hard link escapes. */
	t_raw(&t, "../x", '0', "", "pwned", 5, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h2", in, "..");
	t_path(p, sizeof(p), "x");
	ck_assert_int_ne(access(p, F_OK), 0);
	t_raw(&t, "ok/../../x", '0', "", "pwned", 5, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h2b", in, "..");
	t_raw(&t, "/abs-x", '0', "", "pwned", 5, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h3", in, "abs-x");
	ck_assert_int_ne(access("/abs-x", F_OK), 0);
	t_raw(&t, "h", '1', "../outside/target", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h4", in, "h");

	/* A hard link to a symlink pointing out links the symlink; a file then replaces it. */
	snprintf(link, sizeof(link), "%s/target", outside);
	t_raw(&t, "s", '2', link, NULL, 0, 0, 0);
	t_raw(&t, "h", '1', "s", NULL, 0, 0, 0);
	t_raw(&t, "h", '0', "", "pwned", 5, 0, 0);
	t_raw(&t, "s", '0', "", "pwned", 5, 0, 0);
	t_raw_end(&t, in);
	{
		char dst[256], err[256];
		const char *ex[] = { "tar", "extract", NULL, NULL };

		t_path(dst, sizeof(dst), "h5");
		t_path(err, sizeof(err), "h.err");
		ex[2] = dst;
		ck_assert_int_eq(t_run(ex, in, NULL, -1, err), 0);
		snprintf(p, sizeof(p), "%s/h", dst);
		ck_assert(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
	}
	b = t_slurp(link, &len);
	ck_assert(len == 8 && memcmp(b, "precious", 8) == 0);
	free(b);

	/* A file where a directory is needed, a directory where a file goes. */
	t_raw(&t, "f", '0', "", "f", 1, 0, 0);
	t_raw(&t, "f/x", '0', "", "x", 1, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h6", in, "f/x: f exists and is not a directory");
	t_raw(&t, "f", '0', "", "f", 1, 0, 0);
	t_raw(&t, "f/", '5', "", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h7", in, "f: exists and is not a directory");
	t_raw(&t, "d/", '5', "", NULL, 0, 0, 0);
	t_raw(&t, "d/inner", '0', "", "i", 1, 0, 0);
	t_raw(&t, "d", '0', "", "f", 1, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h8", in, "d: a directory is in the way");
	t_raw(&t, "d/", '5', "", NULL, 0, 0, 0);
	t_raw(&t, "d", '2', "/etc", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h8b", in, "d: a directory is in the way");

	/* Devices and fifos. */
	t_raw(&t, "null", '3', "", NULL, 0, 1, 3);
	t_raw_end(&t, in);
	t_extract_fails("h9", in, "null: devices and fifos are not extracted");
	t_raw(&t, "p", '6', "", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h10", in, "p: devices and fifos");

	/* A hard link to something not there. */
	t_raw(&t, "h", '1', "nothere", NULL, 0, 0, 0);
	t_raw_end(&t, in);
	t_extract_fails("h11", in, "h: hard link to nothere");

	/* Truncated inside a file's data: no temporary left behind. */
	t_raw(&t, "big", '0', "", "0123456789", 10, 0, 0);
	t.len -= TAR_BLOCK; /* cut the data block */
	{
		int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		ck_assert_int_eq(write(fd, t.buf, t.len), (ssize_t)t.len);
		close(fd);
		t.len = 0;
	}
	t_extract_fails("h12", in, "");
	{
		char cmd[700];

		t_path(p, sizeof(p), "h12");
		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", p);
		ck_assert_int_eq(system(cmd), 0);
	}

	/* Garbage. */
	memset(t.buf, 'x', 1024);
	t.len = 1024;
	t_raw_end(&t, in);
	t_extract_fails("h13", in, "");

	/* Nothing at all was written outside. */
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = target", outside);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* Not root: no chown, and a 0555 directory listed before its entries still gets them. */
START_TEST(extract_unprivileged_readonly_dir)
{
	static struct t_tar t;
	char in[256], base[256], dst[300], err[256], p[400];
	const char *ex[] = { "tar", "extract", NULL, NULL };
	struct stat st;

	t_path(in, sizeof(in), "np.tar");
	t_path(err, sizeof(err), "np.err");
	t_path(base, sizeof(base), "np");
	ck_assert_int_eq(mkdir(base, 0755), 0);
	ck_assert_int_eq(chown(base, 65534, 65534), 0);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	t_raw(&t, "ro/", '5', "", NULL, 0, 0, 0);
	t.buf[t.len - TAR_BLOCK + 100 + 4] = '5'; /* mode 0000555 */
	t.buf[t.len - TAR_BLOCK + 100 + 5] = '5';
	t.buf[t.len - TAR_BLOCK + 100 + 6] = '5';
	t_fix_sum(t.buf + t.len - TAR_BLOCK);
	t_raw(&t, "ro/f", '0', "", "data", 4, 0, 0);
	t_raw(&t, "ro/sub/g", '0', "", "g", 1, 0, 0);
	t_raw_end(&t, in);
	ex[2] = dst;
	ck_assert_int_eq(t_run_as(65534, ex, in, NULL, -1, err), 0);
	snprintf(p, sizeof(p), "%s/ro", dst);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0555);
	ck_assert_uint_eq(st.st_uid, 65534);
	snprintf(p, sizeof(p), "%s/ro/f", dst);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_int_eq(st.st_size, 4);
	snprintf(p, sizeof(p), "%s/ro/sub/g", dst);
	ck_assert_int_eq(stat(p, &st), 0);
}
END_TEST

/* Mutated streams: never a crash, status 0 or 1, nothing outside the target. */
START_TEST(extract_mutations_stay_inside)
{
	static struct t_tar t;
	static uint8_t orig[16 * 1024];
	char in[256], outside[256], err[256], dst[64], cmd[700];
	const char *ex[] = { "tar", "extract", NULL, NULL };
	size_t olen, nhdr;
	unsigned seed = 12345;

	t_path(in, sizeof(in), "m.tar");
	t_path(err, sizeof(err), "m.err");
	t_path(outside, sizeof(outside), "m-outside");
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	t_raw(&t, "d/", '5', "", NULL, 0, 0, 0);
	t_raw(&t, "d/l", '2', outside, NULL, 0, 0, 0);
	t_raw(&t, "d/f", '0', "", "contents", 8, 0, 0);
	t_raw(&t, "d/h", '1', "d/f", NULL, 0, 0, 0);
	t_raw(&t, "e/l/x", '0', "", "x", 1, 0, 0);
	ck_assert(t.len + TAR_END_SIZE <= sizeof(orig));
	memset(t.buf + t.len, 0, TAR_END_SIZE);
	olen = t.len + TAR_END_SIZE;
	memcpy(orig, t.buf, olen);
	t.len = 0;
	nhdr = t.nhdr;
	for (int i = 0; i < 400; i++) {
		int fd, rc;

		memcpy(t.buf, orig, olen);
		for (int k = 0; k < 1 + i % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly headers' names, types, sizes and links; sometimes anywhere. */
			size_t at = seed % 4 ? t.hdr[(seed >> 4) % nhdr] + (seed >> 12) % 257 : (seed >> 8) % olen;
			const char *pick = "/.l2015\0xd";

			seed = seed * 1103515245u + 12345u;
			t.buf[at] = seed % 3 ? (uint8_t)pick[(seed >> 9) % 10] : (uint8_t)(seed >> 16);
		}
		/* Mostly valid checksums, so that the mutation reaches the tool. */
		for (size_t h = 0; h < nhdr && i % 8; h++)
			t_fix_sum(t.buf + t.hdr[h]);
		fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_eq(write(fd, t.buf, olen), (ssize_t)olen);
		close(fd);
		snprintf(dst, sizeof(dst), "m-dst%d", i);
		{
			char full[256];

			t_path(full, sizeof(full), dst);
			ex[2] = full;
			rc = t_run(ex, in, NULL, -1, err);
		}
		ck_assert_msg(rc == 0 || rc == 1, "mutation %d: status %d", i, rc);
	}
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", outside);
	ck_assert_int_eq(system(cmd), 0);
	/* Only the m-dst* trees, the stream, its stderr and m-outside beside them. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && test -z \"$(ls -A | grep '^m' | grep -v -e '^m-dst[0-9]*$' -e '^m.tar$' -e '^m.err$' -e '^m-outside$')\"", t_dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *tartool_suite(void)
{
	Suite *s = suite_create("tartool");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_every_type);
	tcase_add_test(tc, create_is_deterministic);
	tcase_add_test(tc, create_epipe_is_status_1);
	tcase_add_test(tc, create_too_deep_and_too_long);
	tcase_add_test(tc, usage_is_status_2);
	tcase_add_test(tc, create_overlay_whiteouts);
	tcase_add_test(tc, create_overlay_refuses);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, extract_owner);
	tcase_add_test(tc, extract_hostile);
	tcase_add_test(tc, extract_unprivileged_readonly_dir);
	tcase_add_test(tc, extract_mutations_stay_inside);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;
	char cmd[128];

	if (geteuid() != 0) {
		fprintf(stderr, "test_tartool: needs root (mknod, chown, trusted xattrs)\n");
		return EXIT_FAILURE;
	}
	umask(022);
	signal(SIGPIPE, SIG_IGN);
	snprintf(t_dir, sizeof(t_dir), "/tmp/minivm-tartool-test.XXXXXX");
	if (!mkdtemp(t_dir)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(t_dir, 0755);

	sr = srunner_create(tartool_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t_dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
