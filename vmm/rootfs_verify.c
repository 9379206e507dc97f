/* `minivm rootfs verify`: compares an ext4 image (read with libext2fs) with its SBOM and names every difference. */
#include "vmm/rootfs_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "vmm/minivm.h"

#define RV_BUF_SIZE 65536

/* What the walk found at one path. */
struct rv_entry {
	char *path;
	int type; /* enum sbom_ftype, or -1: another kind of inode */
	uint32_t mode, uid, gid;
	uint8_t sha256[SHA256_DIGEST_SIZE];
	char *target;
	bool unreadable;
	char why[96];
};

struct rv_walk {
	ext2_filsys fs;
	struct rv_entry *e;
	size_t n, cap;
	uint64_t image_bytes; /* a file claiming more is unreadable, not hashed */
	char *buf;            /* RV_BUF_SIZE bytes for file reads */
	char *err;
	size_t errlen;
};

static int rv_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int rv_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static const char *rv_type_name(int t)
{
	return t < 0 ? "other (device, fifo or socket)" : sbom_ftype_name((enum sbom_ftype)t);
}

/* Reads a whole regular file (bounded by its size) into its SHA-256. */
static void rv_hash_file(struct rv_walk *w, ext2_ino_t ino, struct ext2_inode *inode,
			 struct rv_entry *e)
{
	uint64_t size = EXT2_I_SIZE(inode), done = 0;
	struct sha256 s;
	ext2_file_t file;
	errcode_t ec;

	if (size > w->image_bytes) {
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "size %llu is larger than the image",
			 (unsigned long long)size);
		return;
	}
	ec = ext2fs_file_open(w->fs, ino, 0, &file);
	if (ec) {
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "open: %s", error_message(ec));
		return;
	}
	sha256_init(&s);
	while (done < size) {
		unsigned int got = 0;

		ec = ext2fs_file_read(file, w->buf, RV_BUF_SIZE, &got);
		if (ec || got == 0)
			break;
		sha256_update(&s, w->buf, got);
		done += got;
	}
	(void)ext2fs_file_close(file);
	if (ec || done != size) {
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "read: %s",
			 ec ? error_message(ec) : "shorter than its size");
		return;
	}
	sha256_final(&s, e->sha256);
}

static void rv_read_link(struct rv_walk *w, ext2_ino_t ino, struct ext2_inode *inode,
			 struct rv_entry *e)
{
	uint64_t size = EXT2_I_SIZE(inode);
	char *t;

	if (size == 0 || size > SBOM_PATH_MAX) {
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "symlink target of %llu bytes",
			 (unsigned long long)size);
		return;
	}
	t = calloc(1, size + 1);
	if (!t) {
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "out of memory");
		return;
	}
	if (ext2fs_is_fast_symlink(inode)) {
		/* The target is in i_block itself (< 60 bytes). */
		if (size >= sizeof(inode->i_block)) {
			free(t);
			e->unreadable = true;
			snprintf(e->why, sizeof(e->why), "fast symlink larger than i_block");
			return;
		}
		memcpy(t, inode->i_block, size);
	} else if (inode->i_flags & EXT4_INLINE_DATA_FL) {
		char ibuf[EXT2_N_BLOCKS * 4 + 4096];
		size_t isz = sizeof(ibuf);
		errcode_t ec = ext2fs_inline_data_size(w->fs, ino, &isz);

		if (ec || isz > sizeof(ibuf) || isz < size ||
		    (ec = ext2fs_inline_data_get(w->fs, ino, inode, ibuf, &isz))) {
			free(t);
			e->unreadable = true;
			snprintf(e->why, sizeof(e->why), "inline symlink: %s",
				 ec ? error_message(ec) : "bad size");
			return;
		}
		memcpy(t, ibuf, size);
	} else {
		ext2_file_t file;
		unsigned int got = 0;
		errcode_t ec = ext2fs_file_open(w->fs, ino, 0, &file);

		if (!ec) {
			ec = ext2fs_file_read(file, t, (unsigned int)size, &got);
			(void)ext2fs_file_close(file);
		}
		if (ec || got != size) {
			free(t);
			e->unreadable = true;
			snprintf(e->why, sizeof(e->why), "symlink: %s",
				 ec ? error_message(ec) : "short read");
			return;
		}
	}
	if (memchr(t, '\0', size)) {
		free(t);
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "NUL byte in the symlink target");
		return;
	}
	e->target = t;
}

static int rv_add(struct rv_walk *w, const char *path, ext2_ino_t ino, struct rv_entry **out)
{
	struct ext2_inode inode;
	struct rv_entry *e;
	errcode_t ec;

	if (w->n >= ROOTFS_VERIFY_MAX_ENTRIES)
		return rv_fail(w->err, w->errlen, -E2BIG, "more than %u paths in the image",
			       ROOTFS_VERIFY_MAX_ENTRIES);
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 1024;
		struct rv_entry *ne = realloc(w->e, cap * sizeof(*ne));

		if (!ne)
			return rv_fail(w->err, w->errlen, -ENOMEM, "out of memory");
		w->e = ne;
		w->cap = cap;
	}
	e = &w->e[w->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return rv_fail(w->err, w->errlen, -ENOMEM, "out of memory");
	w->n++;
	*out = e;
	ec = ext2fs_read_inode(w->fs, ino, &inode);
	if (ec) {
		e->type = -1;
		e->unreadable = true;
		snprintf(e->why, sizeof(e->why), "inode %u: %s", ino, error_message(ec));
		return 0;
	}
	e->mode = inode.i_mode & 07777;
	e->uid = inode_uid(inode);
	e->gid = inode_gid(inode);
	if (LINUX_S_ISREG(inode.i_mode)) {
		e->type = SBOM_REGULAR;
		rv_hash_file(w, ino, &inode, e);
	} else if (LINUX_S_ISDIR(inode.i_mode)) {
		e->type = SBOM_DIRECTORY;
	} else if (LINUX_S_ISLNK(inode.i_mode)) {
		e->type = SBOM_SYMLINK;
		rv_read_link(w, ino, &inode, e);
	} else {
		e->type = -1;
	}
	return 0;
}

/* One directory's children, collected before recursing. */
struct rv_names {
	char **name;
	ext2_ino_t *ino;
	size_t n, cap;
	bool oom;
};

static int rv_dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
		     int blocksize, char *buf, void *priv)
{
	struct rv_names *nm = priv;
	int len = ext2fs_dirent_name_len(d);

	(void)dir, (void)offset, (void)blocksize, (void)buf;
	if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || d->inode == 0)
		return 0;
	if ((len == 1 && d->name[0] == '.') || (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (nm->n >= ROOTFS_VERIFY_MAX_ENTRIES) {
		nm->oom = true;
		return DIRENT_ABORT;
	}
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? 2 * nm->cap : 64;
		char **nn = realloc(nm->name, cap * sizeof(*nn));
		ext2_ino_t *ni;

		if (!nn) {
			nm->oom = true;
			return DIRENT_ABORT;
		}
		nm->name = nn;
		ni = realloc(nm->ino, cap * sizeof(*ni));
		if (!ni) {
			nm->oom = true;
			return DIRENT_ABORT;
		}
		nm->ino = ni;
		nm->cap = cap;
	}
	nm->name[nm->n] = strndup(d->name, (size_t)len);
	if (!nm->name[nm->n]) {
		nm->oom = true;
		return DIRENT_ABORT;
	}
	nm->ino[nm->n++] = d->inode;
	return 0;
}

static void rv_names_free(struct rv_names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->name[i]);
	free(nm->name);
	free(nm->ino);
}

/* Adds every child of directory ino (whose path is path, len bytes) and
 * recurses into subdirectories, depth bounded. */
static int rv_walk_dir(struct rv_walk *w, ext2_ino_t ino, char *path, size_t len,
		       unsigned int depth)
{
	struct rv_names nm = { 0 };
	errcode_t ec;
	int r = 0;

	if (depth > ROOTFS_VERIFY_MAX_DEPTH)
		return rv_fail(w->err, w->errlen, -E2BIG, "%s: directories nested deeper than %u",
			       path, ROOTFS_VERIFY_MAX_DEPTH);
	ec = ext2fs_dir_iterate2(w->fs, ino, 0, NULL, rv_dir_cb, &nm);
	if (nm.oom) {
		rv_names_free(&nm);
		return rv_fail(w->err, w->errlen, -ENOMEM, "out of memory or too many entries");
	}
	if (ec) {
		rv_names_free(&nm);
		return rv_fail(w->err, w->errlen, -EIO, "reading directory %s: %s",
			       len ? path : "/", error_message(ec));
	}
	for (size_t i = 0; i < nm.n && !r; i++) {
		size_t nl = strlen(nm.name[i]);
		struct rv_entry *e;

		if (memchr(nm.name[i], '/', nl) || len + 1 + nl >= SBOM_PATH_MAX) {
			r = rv_fail(w->err, w->errlen, -EINVAL, "%s: a bad or too long name inside",
				    len ? path : "/");
			break;
		}
		path[len] = '/';
		memcpy(path + len + 1, nm.name[i], nl + 1);
		r = rv_add(w, path, nm.ino[i], &e);
		if (!r && e->type == SBOM_DIRECTORY)
			r = rv_walk_dir(w, nm.ino[i], path, len + 1 + nl, depth + 1);
		path[len] = '\0';
	}
	rv_names_free(&nm);
	return r;
}

static int rv_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rv_entry *)a)->path, ((const struct rv_entry *)b)->path);
}

static void rv_report(rootfs_diff_fn fn, void *ctx, size_t *nd, enum rootfs_diff_kind k,
		      const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void rv_report(rootfs_diff_fn fn, void *ctx, size_t *nd, enum rootfs_diff_kind k,
		      const char *path, const char *fmt, ...)
{
	char detail[SBOM_PATH_MAX * 2 + 128];
	struct rootfs_diff d = { .kind = k, .path = path, .detail = detail };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	(*nd)++;
	if (fn)
		fn(ctx, &d);
}

/* Both sides of one path. */
static void rv_compare(const struct sbom_file *f, const struct rv_entry *e, rootfs_diff_fn fn,
		       void *ctx, size_t *nd)
{
	if (e->type != (int)f->type) {
		rv_report(fn, ctx, nd, ROOTFS_DIFF_TYPE, f->path, "sbom %s, image %s",
			  sbom_ftype_name(f->type), rv_type_name(e->type));
		return;
	}
	if (e->mode != f->mode)
		rv_report(fn, ctx, nd, ROOTFS_DIFF_MODE, f->path, "sbom %04o, image %04o", f->mode,
			  e->mode);
	if (e->uid != f->uid || e->gid != f->gid)
		rv_report(fn, ctx, nd, ROOTFS_DIFF_OWNER, f->path, "sbom %u:%u, image %u:%u", f->uid,
			  f->gid, e->uid, e->gid);
	if (e->unreadable) {
		rv_report(fn, ctx, nd, ROOTFS_DIFF_UNREADABLE, f->path, "%s", e->why);
		return;
	}
	if (f->type == SBOM_REGULAR && memcmp(e->sha256, f->sha256, SHA256_DIGEST_SIZE) != 0) {
		char a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];

		sha256_to_hex(f->sha256, a);
		sha256_to_hex(e->sha256, b);
		rv_report(fn, ctx, nd, ROOTFS_DIFF_HASH, f->path, "sha256 sbom %s, image %s", a, b);
	}
	if (f->type == SBOM_SYMLINK && strcmp(e->target, f->target) != 0)
		rv_report(fn, ctx, nd, ROOTFS_DIFF_TARGET, f->path, "sbom -> %s, image -> %s",
			  f->target, e->target);
}

int rootfs_verify(const char *image, const struct sbom *sbom, rootfs_diff_fn fn, void *ctx,
		  size_t *ndiffs, char *err, size_t errlen)
{
	char path[SBOM_PATH_MAX + 1];
	struct rv_walk w = { .err = err, .errlen = errlen };
	struct rv_entry *root;
	struct stat st;
	errcode_t ec;
	size_t i = 0, j = 0, nd = 0;
	int r;

	*ndiffs = 0;
	if (stat(image, &st) != 0)
		return rv_fail(err, errlen, -errno, "%s: %s", image, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return rv_fail(err, errlen, -EINVAL, "%s: not a regular file", image);
	w.image_bytes = (uint64_t)st.st_size;
	w.buf = malloc(RV_BUF_SIZE);
	if (!w.buf)
		return rv_fail(err, errlen, -ENOMEM, "out of memory");
	initialize_ext2_error_table();
	/* Read-only: EXT2_FLAG_RW is not given, and nothing is written back. */
	ec = ext2fs_open(image, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &w.fs);
	if (ec) {
		free(w.buf);
		return rv_fail(err, errlen, -EINVAL, "%s: not a readable ext2/3/4 image: %s", image,
			       error_message(ec));
	}
	path[0] = '\0';
	r = rv_add(&w, "/", EXT2_ROOT_INO, &root);
	if (!r && root->type != SBOM_DIRECTORY)
		r = rv_fail(err, errlen, -EINVAL, "%s: the root inode is not a directory", image);
	if (!r)
		r = rv_walk_dir(&w, EXT2_ROOT_INO, path, 0, 0);
	(void)ext2fs_close_free(&w.fs);
	if (r)
		goto out;
	qsort(w.e, w.n, sizeof(*w.e), rv_entry_cmp);
	/* Two sorted lists: walk them side by side. */
	while (i < sbom->nr_files || j < w.n) {
		int c = i >= sbom->nr_files ? 1 : j >= w.n ? -1
			: strcmp(sbom->files[i].path, w.e[j].path);

		if (c < 0) {
			rv_report(fn, ctx, &nd, ROOTFS_DIFF_MISSING, sbom->files[i].path,
				  "listed in the sbom (%s, from %s), not in the image",
				  sbom_ftype_name(sbom->files[i].type), sbom->files[i].package);
			i++;
		} else if (c > 0) {
			rv_report(fn, ctx, &nd, ROOTFS_DIFF_EXTRA, w.e[j].path,
				  "in the image (%s), not in the sbom", rv_type_name(w.e[j].type));
			j++;
		} else {
			rv_compare(&sbom->files[i], &w.e[j], fn, ctx, &nd);
			i++, j++;
		}
	}
	*ndiffs = nd;
out:
	for (size_t k = 0; k < w.n; k++) {
		free(w.e[k].path);
		free(w.e[k].target);
	}
	free(w.e);
	free(w.buf);
	return r;
}

static const char *rv_kind_name(enum rootfs_diff_kind k)
{
	switch (k) {
	case ROOTFS_DIFF_MISSING: return "missing";
	case ROOTFS_DIFF_EXTRA: return "extra";
	case ROOTFS_DIFF_TYPE: return "type";
	case ROOTFS_DIFF_MODE: return "mode";
	case ROOTFS_DIFF_OWNER: return "owner";
	case ROOTFS_DIFF_HASH: return "hash";
	case ROOTFS_DIFF_TARGET: return "target";
	case ROOTFS_DIFF_UNREADABLE: return "unreadable";
	}
	return "?";
}

static void rv_print(void *ctx, const struct rootfs_diff *d)
{
	(void)ctx;
	printf("%s %s: %s\n", rv_kind_name(d->kind), d->path, d->detail);
}

/* Reads a whole file of at most max bytes. */
static int rv_slurp(const char *path, size_t max, char **buf, size_t *len, char *err,
		    size_t errlen)
{
	struct stat st;
	size_t off = 0;
	char *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return rv_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return rv_fail(err, errlen, -EINVAL, "%s: not a regular file of at most %zu bytes",
			       path, max);
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return rv_fail(err, errlen, -ENOMEM, "out of memory");
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, b + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			free(b);
			close(fd);
			return rv_fail(err, errlen, -e, "%s: read: %s", path, strerror(e));
		}
		off += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = off;
	return 0;
}

int rootfs_verify_main(int argc, char **argv)
{
	struct sbom *sbom = NULL;
	char err[512], *buf = NULL;
	size_t len = 0, nd = 0;
	int r;

	if (argc != 3 || strcmp(argv[0], "verify") != 0) {
		fprintf(stderr, "usage: minivm rootfs verify IMAGE SBOM\n"
				"  exit 0: the image matches its SBOM; 1: it does not (each "
				"difference on stdout); 125: error\n");
		return MINIVM_EXIT_ERROR;
	}
	r = rv_slurp(argv[2], SBOM_MAX_BYTES, &buf, &len, err, sizeof(err));
	if (!r)
		r = sbom_parse(buf, len, &sbom, err, sizeof(err));
	free(buf);
	if (r) {
		fprintf(stderr, "minivm: rootfs verify: %s: %s\n", argv[2], err);
		return MINIVM_EXIT_ERROR;
	}
	r = rootfs_verify(argv[1], sbom, rv_print, NULL, &nd, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: rootfs verify: %s\n", err);
		sbom_free(sbom);
		return MINIVM_EXIT_ERROR;
	}
	fflush(stdout);
	if (nd)
		fprintf(stderr, "minivm: rootfs verify: %s does not match %s: %zu difference%s\n",
			argv[1], argv[2], nd, nd == 1 ? "" : "s");
	else
		fprintf(stderr, "minivm: rootfs verify: %s matches %s (%zu paths)\n", argv[1],
			argv[2], sbom->nr_files);
	sbom_free(sbom);
	return nd ? 1 : 0;
}
