/* The workspace: packs a host directory as a tar stream (never following symlinks), and compares the guest's copy (a struct fstree) with it as a git-style diff, or applies it back through openat/O_NOFOLLOW only. */
#include "vmm/workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rootfs/agent/tar.h"
#include "vmm/gitignore.h"

#define WS_BUF 65536
#define WS_CTX 3 /* lines of context in a hunk */
#define WS_BINARY_PEEK 8000 /* git's buffer_is_binary window */
/* Line comparisons one Myers search may make ((N+M)*D in the worst case). */
#define WS_DIFF_WORK_MAX 200000000L

enum ws_op { WS_PACK, WS_DIFF, WS_APPLY };

struct hent {
	char *name;
	struct stat st;
};

struct ws {
	enum ws_op op;
	int rootfd;
	bool respect;
	struct gitignore *gi; /* respect_gitignore only */
	struct fstree *guest;
	struct ws_stats st;
	uint64_t entries;
	unsigned int tmp_seq;
	char path[TAR_PATH_MAX + 1]; /* relative path of the current entry */
	size_t plen;
	char *err;
	size_t errlen;
	uint8_t *buf; /* WS_BUF bytes of scratch */
	/* ws_pack */
	int (*write)(void *ctx, const void *buf, size_t len);
	void *wctx;
	struct tar_entry te;
	uint8_t *hdr;
	/* ws_diff */
	int out_fd;
	char *obuf;
	size_t olen;
};

__attribute__((format(printf, 3, 4))) static int ws_fail(struct ws *w, int ret, const char *fmt,
							   ...)
{
	va_list ap;

	if (w->err && w->errlen && !w->err[0]) {
		va_start(ap, fmt);
		vsnprintf(w->err, w->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* The current path for messages: "." for HOSTDIR itself. */
static const char *cur(const struct ws *w)
{
	return w->plen ? w->path : ".";
}

static int path_push(struct ws *w, const char *name, size_t *saved)
{
	size_t nl = strlen(name), need = w->plen + (w->plen ? 1 : 0) + nl;

	*saved = w->plen;
	if (need > TAR_PATH_MAX)
		return ws_fail(w, -ENAMETOOLONG, "%s/%s: path longer than %d bytes", cur(w), name,
			       TAR_PATH_MAX);
	if (w->plen)
		w->path[w->plen++] = '/';
	memcpy(w->path + w->plen, name, nl + 1);
	w->plen += nl;
	return 0;
}

static void path_pop(struct ws *w, size_t saved)
{
	w->plen = saved;
	w->path[saved] = '\0';
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Reads exactly len bytes (fewer only at end of file: *got says how many). */
static int read_full(int fd, void *buf, size_t len, size_t *got)
{
	uint8_t *p = buf;

	*got = 0;
	while (*got < len) {
		ssize_t r = read(fd, p + *got, len - *got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* ---- the host side: sorted directory listings, .gitignore, the filter ---- */

static int hent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hent *)a)->name, ((const struct hent *)b)->name);
}

static void hents_free(struct hent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* Lists directory fd (lstat of each entry), sorted by name. */
static int list_dir(struct ws *w, int fd, struct hent **out, size_t *nout)
{
	struct hent *e = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int dfd, ret = 0;

	*out = NULL;
	*nout = 0;
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return ws_fail(w, -errno, "%s: dup: %s", cur(w), strerror(errno));
	/* Read from the start even if this fd was listed before. */
	if (lseek(dfd, 0, SEEK_SET) < 0) {
		ret = -errno;
		close(dfd);
		return ws_fail(w, ret, "%s: seek: %s", cur(w), strerror(-ret));
	}
	dir = fdopendir(dfd);
	if (!dir) {
		ret = -errno;
		close(dfd);
		return ws_fail(w, ret, "%s: %s", cur(w), strerror(-ret));
	}
	for (;;) {
		errno = 0;
		d = readdir(dir);
		if (!d) {
			if (errno) {
				ret = ws_fail(w, -errno, "%s: readdir: %s", cur(w), strerror(errno));
				goto fail;
			}
			break;
		}
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (++w->entries > WS_ENTRIES_MAX) {
			ret = ws_fail(w, -E2BIG, "%s: more than %u entries in the workspace", cur(w),
				      WS_ENTRIES_MAX);
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct hent *ne = reallocarray(e, ncap, sizeof(*ne));

			if (!ne) {
				ret = -ENOMEM;
				goto fail;
			}
			e = ne;
			cap = ncap;
		}
		if (fstatat(fd, d->d_name, &e[n].st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* gone since readdir */
			ret = ws_fail(w, -errno, "%s/%s: %s", cur(w), d->d_name, strerror(errno));
			goto fail;
		}
		e[n].name = strdup(d->d_name);
		if (!e[n].name) {
			ret = -ENOMEM;
			goto fail;
		}
		n++;
	}
	closedir(dir);
	if (n)
		qsort(e, n, sizeof(*e), hent_cmp);
	*out = e;
	*nout = n;
	return 0;

fail:
	closedir(dir);
	hents_free(e, n);
	return ret;
}

/* Adds directory fd's .gitignore (a regular file; a symlink is not read, as git does). */
static int load_gitignore(struct ws *w, int fd)
{
	struct stat st;
	size_t got;
	char *text;
	int gfd, ret;

	if (!w->gi)
		return 0;
	gfd = openat(fd, ".gitignore", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (gfd < 0)
		return (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) ?
			       0 :
			       ws_fail(w, -errno, "%s/.gitignore: %s", cur(w), strerror(errno));
	if (fstat(gfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(gfd);
		return 0;
	}
	if (st.st_size > WS_GITIGNORE_MAX) {
		close(gfd);
		return ws_fail(w, -EFBIG, "%s/.gitignore: larger than %u bytes", cur(w),
			       WS_GITIGNORE_MAX);
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(gfd);
		return -ENOMEM;
	}
	ret = read_full(gfd, text, (size_t)st.st_size, &got);
	close(gfd);
	if (ret == 0)
		ret = gi_add(w->gi, w->path, text, got, w->err, w->errlen);
	else
		ret = ws_fail(w, ret, "%s/.gitignore: %s", cur(w), strerror(-ret));
	free(text);
	return ret;
}

/* Whether the current path (already pushed) is left out. */
static bool excluded(struct ws *w, const char *name, bool is_dir)
{
	if (!strcmp(name, ".git"))
		return w->op != WS_PACK || w->respect;
	return w->gi && gi_ignored(w->gi, w->path, is_dir);
}

static int open_dir_at(struct ws *w, int fd, const char *name)
{
	int d = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (d < 0)
		return ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
	return d;
}

/* ---- ws_pack ---- */

static int pack_emit(struct ws *w, const void *buf, size_t len)
{
	int ret = w->write(w->wctx, buf, len);

	return ret ? ws_fail(w, ret < 0 ? ret : -EIO, "%s: writing the archive: %s", cur(w),
			     strerror(ret < 0 ? -ret : EIO)) :
		     0;
}

static int pack_header(struct ws *w, enum tar_type type, const struct stat *st, uint64_t size,
		       const char *link)
{
	struct tar_entry *e = &w->te;
	ssize_t n;

	memset(e, 0, sizeof(*e));
	e->type = type;
	memcpy(e->path, w->path, w->plen + 1);
	if (link)
		snprintf(e->link, sizeof(e->link), "%s", link);
	e->mode = st->st_mode & 07777;
	e->mtime = st->st_mtim.tv_sec;
	e->size = size;
	n = tar_write_header(e, w->hdr, TAR_HDR_MAX);
	if (n < 0)
		return ws_fail(w, (int)n, "%s: cannot write a tar header: %s", cur(w),
			       strerror((int)-n));
	return pack_emit(w, w->hdr, (size_t)n);
}

static int pack_file(struct ws *w, int dfd, const char *name)
{
	uint64_t left;
	struct stat st;
	size_t got;
	int fd, ret;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = ws_fail(w, -EAGAIN, "%s: changed type while being read", cur(w));
		goto out;
	}
	ret = pack_header(w, TAR_REG, &st, (uint64_t)st.st_size, NULL);
	if (ret)
		goto out;
	for (left = (uint64_t)st.st_size; left;) {
		size_t want = left < WS_BUF ? (size_t)left : WS_BUF;

		ret = read_full(fd, w->buf, want, &got);
		if (ret) {
			ret = ws_fail(w, ret, "%s: %s", cur(w), strerror(-ret));
			goto out;
		}
		if (got < want) {
			ret = ws_fail(w, -EAGAIN, "%s: shrank while being read", cur(w));
			goto out;
		}
		ret = pack_emit(w, w->buf, got);
		if (ret)
			goto out;
		left -= got;
	}
	ret = read_full(fd, w->buf, 1, &got);
	if (!ret && got) {
		ret = ws_fail(w, -EAGAIN, "%s: grew while being read", cur(w));
		goto out;
	}
	memset(w->buf, 0, TAR_BLOCK);
	ret = pack_emit(w, w->buf, tar_pad((uint64_t)st.st_size));
out:
	close(fd);
	return ret;
}

static int pack_dir(struct ws *w, int fd, unsigned int depth)
{
	struct hent *e;
	size_t n;
	int ret;

	if (depth > WS_DEPTH_MAX)
		return ws_fail(w, -ELOOP, "%s: deeper than %d directories", cur(w), WS_DEPTH_MAX);
	ret = load_gitignore(w, fd);
	if (ret)
		return ret;
	ret = list_dir(w, fd, &e, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n && !ret; i++) {
		const struct stat *st = &e[i].st;
		size_t saved;

		ret = path_push(w, e[i].name, &saved);
		if (ret)
			break;
		if (excluded(w, e[i].name, S_ISDIR(st->st_mode))) {
			w->st.ignored++;
		} else if (S_ISDIR(st->st_mode)) {
			ret = pack_header(w, TAR_DIR, st, 0, NULL);
			if (!ret) {
				int cfd = open_dir_at(w, fd, e[i].name);

				if (cfd < 0) {
					ret = cfd;
				} else {
					ret = pack_dir(w, cfd, depth + 1);
					close(cfd);
				}
			}
		} else if (S_ISREG(st->st_mode)) {
			ret = pack_file(w, fd, e[i].name);
		} else if (S_ISLNK(st->st_mode)) {
			ssize_t l = readlinkat(fd, e[i].name, (char *)w->buf, WS_BUF);

			if (l < 0)
				ret = ws_fail(w, -errno, "%s: readlink: %s", cur(w), strerror(errno));
			else if (l > TAR_PATH_MAX)
				ret = ws_fail(w, -ENAMETOOLONG, "%s: symlink target too long", cur(w));
			else {
				w->buf[l] = '\0';
				ret = pack_header(w, TAR_SYMLINK, st, 0, (const char *)w->buf);
			}
		} else {
			w->st.skipped++;
		}
		path_pop(w, saved);
	}
	hents_free(e, n);
	return ret;
}

static int ws_init(struct ws *w, enum ws_op op, const char *hostdir, bool respect, char *err,
		   size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->op = op;
	w->rootfd = -1;
	w->out_fd = -1;
	w->err = err;
	w->errlen = errlen;
	w->respect = respect;
	if (err && errlen)
		err[0] = '\0';
	w->buf = malloc(WS_BUF + 1);
	if (!w->buf)
		return -ENOMEM;
	if (respect && gi_new(&w->gi))
		return -ENOMEM;
	w->rootfd = open(hostdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->rootfd < 0)
		return ws_fail(w, -errno, "%s: %s", hostdir, strerror(errno));
	return 0;
}

static void ws_fini(struct ws *w, struct ws_stats *st)
{
	if (st)
		*st = w->st;
	if (w->rootfd >= 0)
		close(w->rootfd);
	gi_free(w->gi);
	free(w->buf);
	free(w->hdr);
	free(w->obuf);
}

int ws_pack(const char *hostdir, bool respect_gitignore,
	    int (*write)(void *ctx, const void *buf, size_t len), void *ctx, struct ws_stats *st,
	    char *err, size_t errlen)
{
	struct ws *w = malloc(sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	ret = ws_init(w, WS_PACK, hostdir, respect_gitignore, err, errlen);
	if (ret)
		goto out;
	w->write = write;
	w->wctx = ctx;
	w->hdr = malloc(TAR_HDR_MAX);
	if (!w->hdr) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pack_dir(w, w->rootfd, 0);
	if (ret)
		goto out;
	memset(w->buf, 0, TAR_END_SIZE);
	ret = pack_emit(w, w->buf, TAR_END_SIZE);
out:
	if (ret && err && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", hostdir, strerror(-ret));
	ws_fini(w, st);
	free(w);
	return ret;
}

/* ---- SHA-1, for git's blob ids on index lines (not for security) ---- */

struct sha1 {
	uint32_t h[5];
	uint64_t len;
	uint8_t blk[64];
	size_t n;
};

static uint32_t rol(uint32_t x, unsigned int s)
{
	return (x << s) | (x >> (32 - s));
}

static void sha1_block(struct sha1 *s, const uint8_t *p)
{
	uint32_t wd[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];

	for (int i = 0; i < 16; i++)
		wd[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
			(uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		wd[i] = rol(wd[i - 3] ^ wd[i - 8] ^ wd[i - 14] ^ wd[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;

		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = rol(a, 5) + f + e + k + wd[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
}

static void sha1_init(struct sha1 *s)
{
	static const uint32_t iv[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
					0xc3d2e1f0 };

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->n = 0;
}

static void sha1_update(struct sha1 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->len += len;
	while (len) {
		size_t take = 64 - s->n < len ? 64 - s->n : len;

		memcpy(s->blk + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n == 64) {
			sha1_block(s, s->blk);
			s->n = 0;
		}
	}
}

static void sha1_hex(struct sha1 *s, char hex[41])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, z = 0, lenb[8];

	sha1_update(s, &pad, 1);
	while (s->n != 56)
		sha1_update(s, &z, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha1_update(s, lenb, 8);
	for (int i = 0; i < 5; i++)
		snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- file contents for the diff ---- */

struct blob {
	bool present;
	bool loaded; /* data holds all len bytes (else: too large to show) */
	unsigned int mode; /* git's: 0100644, 0100755, 0120000 */
	char *data;
	uint64_t len;
	char hex[41]; /* git's blob id */
};

static void blob_hash_start(struct sha1 *s, uint64_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "blob %llu", (unsigned long long)len);

	sha1_init(s);
	sha1_update(s, head, (size_t)n + 1); /* with its NUL */
}

/* A host file or symlink at dfd/name (its lstat in st). */
static int blob_host(struct ws *w, int dfd, const char *name, const struct stat *st,
		     struct blob *b)
{
	struct sha1 s;
	struct stat fst;
	uint64_t left;
	size_t got;
	int fd, ret = 0;

	memset(b, 0, sizeof(*b));
	b->present = true;
	if (S_ISLNK(st->st_mode)) {
		ssize_t l = readlinkat(dfd, name, (char *)w->buf, WS_BUF);

		if (l < 0)
			return ws_fail(w, -errno, "%s: readlink: %s", cur(w), strerror(errno));
		b->mode = 0120000;
		b->data = malloc((size_t)l + 1);
		if (!b->data)
			return -ENOMEM;
		memcpy(b->data, w->buf, (size_t)l);
		b->len = (uint64_t)l;
		b->loaded = true;
		blob_hash_start(&s, b->len);
		sha1_update(&s, b->data, (size_t)l);
		sha1_hex(&s, b->hex);
		return 0;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
	if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode)) {
		ret = ws_fail(w, -EAGAIN, "%s: changed while being read", cur(w));
		goto out;
	}
	b->mode = (fst.st_mode & 0100) ? 0100755 : 0100644;
	b->len = (uint64_t)fst.st_size;
	b->loaded = b->len <= WS_DIFF_FILE_MAX;
	if (b->loaded) {
		b->data = malloc((size_t)b->len + 1);
		if (!b->data) {
			ret = -ENOMEM;
			goto out;
		}
	}
	blob_hash_start(&s, b->len);
	for (left = b->len; left;) {
		size_t want = left < WS_BUF ? (size_t)left : WS_BUF;
		uint8_t *dst = b->loaded ? (uint8_t *)b->data + (b->len - left) : w->buf;

		ret = read_full(fd, dst, want, &got);
		if (ret) {
			ret = ws_fail(w, ret, "%s: %s", cur(w), strerror(-ret));
			goto out;
		}
		if (got < want) {
			ret = ws_fail(w, -EAGAIN, "%s: shrank while being read", cur(w));
			goto out;
		}
		sha1_update(&s, dst, got);
		left -= got;
	}
	sha1_hex(&s, b->hex);
out:
	close(fd);
	return ret;
}

static int blob_guest(struct ws *w, const struct fstree_node *g, struct blob *b)
{
	struct sha1 s;
	uint64_t left;

	memset(b, 0, sizeof(*b));
	b->present = true;
	if (g->type == TAR_SYMLINK) {
		size_t l = g->link ? strlen(g->link) : 0;

		b->mode = 0120000;
		b->data = malloc(l + 1);
		if (!b->data)
			return -ENOMEM;
		memcpy(b->data, g->link ? g->link : "", l);
		b->len = l;
		b->loaded = true;
		blob_hash_start(&s, b->len);
		sha1_update(&s, b->data, l);
		sha1_hex(&s, b->hex);
		return 0;
	}
	b->mode = (g->mode & 0100) ? 0100755 : 0100644;
	b->len = g->size;
	b->loaded = b->len <= WS_DIFF_FILE_MAX;
	if (b->loaded) {
		b->data = malloc((size_t)b->len + 1);
		if (!b->data)
			return -ENOMEM;
	}
	blob_hash_start(&s, b->len);
	for (left = b->len; left;) {
		size_t want = left < WS_BUF ? (size_t)left : WS_BUF;
		uint8_t *dst = b->loaded ? (uint8_t *)b->data + (b->len - left) : w->buf;
		ssize_t r = fstree_read(w->guest, g, b->len - left, dst, want);

		if (r <= 0)
			return ws_fail(w, r < 0 ? (int)r : -EIO, "%s: reading the guest's copy: %s",
				       cur(w), strerror(r < 0 ? (int)-r : EIO));
		sha1_update(&s, dst, (size_t)r);
		left -= (uint64_t)r;
	}
	sha1_hex(&s, b->hex);
	return 0;
}

static void blob_free(struct blob *b)
{
	free(b->data);
	b->data = NULL;
}

static bool blob_binary(const struct blob *b)
{
	size_t n = b->len < WS_BINARY_PEEK ? (size_t)b->len : WS_BINARY_PEEK;

	return b->present && b->loaded && memchr(b->data, 0, n);
}

/* ---- diff output ---- */

static int out(struct ws *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		size_t take;

		if (w->olen == WS_BUF) {
			int ret = write_all(w->out_fd, w->obuf, w->olen);

			if (ret)
				return ws_fail(w, ret, "writing the diff: %s", strerror(-ret));
			w->olen = 0;
		}
		take = WS_BUF - w->olen < len ? WS_BUF - w->olen : len;
		memcpy(w->obuf + w->olen, p, take);
		w->olen += take;
		p += take;
		len -= take;
	}
	return 0;
}

static int outs(struct ws *w, const char *s)
{
	return out(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static int outf(struct ws *w, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return ws_fail(w, -EINVAL, "%s: diff line too long", cur(w));
	return out(w, line, (size_t)n);
}

static bool needs_quote(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '"' || *p == '\\' || *p < 0x20 || *p >= 0x7f)
			return true;
	return false;
}

/* prefix + the current path, C-quoted as git quotes (core.quotePath). */
static int out_name(struct ws *w, const char *prefix)
{
	int ret = 0;

	if (!needs_quote(w->path)) {
		ret = outs(w, prefix);
		return ret ? ret : outs(w, w->path);
	}
	ret = outs(w, "\"");
	if (!ret)
		ret = outs(w, prefix);
	for (const unsigned char *p = (const unsigned char *)w->path; *p && !ret; p++) {
		static const char esc[] = "\a\b\t\n\v\f\r";
		static const char let[] = "abtnvfr";
		const char *e = *p ? strchr(esc, *p) : NULL;
		char q[8];

		if (e)
			snprintf(q, sizeof(q), "\\%c", let[e - esc]);
		else if (*p == '"' || *p == '\\')
			snprintf(q, sizeof(q), "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			snprintf(q, sizeof(q), "\\%03o", *p);
		else
			snprintf(q, sizeof(q), "%c", *p);
		ret = outs(w, q);
	}
	return ret ? ret : outs(w, "\"");
}

/* "--- a/P" or "--- /dev/null" (a tab after a name with a space, as git). */
static int out_file_line(struct ws *w, const char *mark, const char *prefix, bool present)
{
	int ret = outs(w, mark);

	if (ret)
		return ret;
	ret = present ? out_name(w, prefix) : outs(w, "/dev/null");
	/* git's name_a_tab: after either label when the path holds a space. */
	if (!ret && strchr(w->path, ' '))
		ret = outs(w, "\t");
	return ret ? ret : outs(w, "\n");
}

/* git's base85 alphabet (base85.c). */
static const char en85[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "abcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";

/* One "literal N" hunk of a GIT binary patch: data deflated (zlib), base85 lines. */
static int out_literal(struct ws *w, const struct blob *b)
{
	uLongf zlen;
	uint8_t *z;
	int ret;

	zlen = compressBound((uLong)b->len);
	z = malloc(zlen);
	if (!z)
		return -ENOMEM;
	if (compress2(z, &zlen, (const Bytef *)(b->present ? b->data : ""),
		      (uLong)(b->present ? b->len : 0), Z_DEFAULT_COMPRESSION) != Z_OK) {
		free(z);
		return ws_fail(w, -EIO, "%s: zlib failed", cur(w));
	}
	ret = outf(w, "literal %llu\n", (unsigned long long)(b->present ? b->len : 0));
	for (uLongf off = 0; off < zlen && !ret; off += 52) {
		size_t n = zlen - off < 52 ? zlen - off : 52;
		char line[2 + 13 * 5 + 1];
		char *o = line + 1;

		line[0] = n <= 26 ? (char)('A' + n - 1) : (char)('a' + n - 27);
		for (size_t i = 0; i < n; i += 4) {
			uint32_t acc = 0;

			for (size_t j = 0; j < 4; j++)
				acc |= (uint32_t)(i + j < n ? z[off + i + j] : 0) << (24 - 8 * j);
			for (int c = 4; c >= 0; c--) {
				o[c] = en85[acc % 85];
				acc /= 85;
			}
			o += 5;
		}
		*o++ = '\n';
		ret = out(w, line, (size_t)(o - line));
	}
	free(z);
	return ret ? ret : outs(w, "\n");
}

/* ---- Myers' O(ND) line diff ---- */

struct line {
	const char *p;
	size_t len; /* with its '\n' if it has one */
	uint64_t h;
};

static int split_lines(const struct blob *b, struct line **out_lines, size_t *n)
{
	size_t cap = 0, cnt = 0;
	struct line *l = NULL;
	const char *p = b->present ? b->data : NULL, *end = p ? p + b->len : NULL;

	*out_lines = NULL;
	*n = 0;
	for (const char *s = p; s && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl + 1 : end;
		uint64_t h = 1469598103934665603ull;

		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct line *nlp = reallocarray(l, ncap, sizeof(*nlp));

			if (!nlp) {
				free(l);
				return -ENOMEM;
			}
			l = nlp;
			cap = ncap;
		}
		for (const char *c = s; c < e; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
		l[cnt].p = s;
		l[cnt].len = (size_t)(e - s);
		l[cnt].h = h;
		cnt++;
		s = e;
	}
	*out_lines = l;
	*n = cnt;
	return 0;
}

static bool line_eq(const struct line *a, const struct line *b)
{
	return a->h == b->h && a->len == b->len && !memcmp(a->p, b->p, a->len);
}

/*
 * Marks in ach/bch the lines of a[lo..na-hi) and b[lo..nb-hi) that a
 * shortest edit script deletes and inserts; if it needs more than
 * WS_DIFF_D_MAX edits, marks them all.
 */
static int myers(const struct line *a, size_t na, const struct line *b, size_t nb, bool *ach,
		 bool *bch)
{
	size_t pre = 0, suf = 0, n, m, dmax = 0;
	const struct line *A, *B;
	int32_t *v = NULL, **trace = NULL;
	long found = -1, budget = WS_DIFF_WORK_MAX;
	int ret = 0;

	while (pre < na && pre < nb && line_eq(&a[pre], &b[pre]))
		pre++;
	while (suf < na - pre && suf < nb - pre && line_eq(&a[na - 1 - suf], &b[nb - 1 - suf]))
		suf++;
	A = a + pre;
	B = b + pre;
	n = na - pre - suf;
	m = nb - pre - suf;
	if (!n || !m) {
		for (size_t i = 0; i < n; i++)
			ach[pre + i] = true;
		for (size_t j = 0; j < m; j++)
			bch[pre + j] = true;
		return 0;
	}
	if (n > INT32_MAX / 4 || m > INT32_MAX / 4)
		goto all;
	dmax = n + m < WS_DIFF_D_MAX ? n + m : WS_DIFF_D_MAX;
	v = calloc(2 * dmax + 3, sizeof(*v));
	trace = calloc(dmax + 1, sizeof(*trace));
	if (!v || !trace) {
		ret = -ENOMEM;
		goto out;
	}
	{
		int32_t *V = v + dmax + 1; /* V[k] for k in [-dmax-1, dmax+1] */

		V[1] = 0;
		for (long d = 0; d <= (long)dmax && found < 0; d++) {
			for (long k = -d; k <= d; k += 2) {
				long x, y;

				if (k == -d || (k != d && V[k - 1] < V[k + 1]))
					x = V[k + 1];
				else
					x = V[k - 1] + 1;
				y = x - k;
				while (x < (long)n && y < (long)m && line_eq(&A[x], &B[y])) {
					x++;
					y++;
					budget--;
				}
				if (--budget < 0)
					goto all; /* too slow to find: replace it all */
				V[k] = (int32_t)x;
				if (x >= (long)n && y >= (long)m) {
					found = d;
					break;
				}
			}
			trace[d] = malloc((size_t)(2 * d + 1) * sizeof(int32_t));
			if (!trace[d]) {
				ret = -ENOMEM;
				goto out;
			}
			memcpy(trace[d], V - d, (size_t)(2 * d + 1) * sizeof(int32_t));
		}
		if (found < 0)
			goto all;
		{
			long x = (long)n, y = (long)m;

			for (long d = found; d > 0; d--) {
				const int32_t *P = trace[d - 1] + (d - 1); /* P[k], k in [-(d-1), d-1] */
				long k = x - y, pk, px, py;

				if (k == -d || (k != d && P[k - 1] < P[k + 1]))
					pk = k + 1; /* came down: an insertion */
				else
					pk = k - 1; /* came right: a deletion */
				px = P[pk];
				py = px - pk;
				while (x > px && y > py) {
					x--;
					y--;
				}
				if (pk == k + 1)
					bch[pre + (size_t)py] = true;
				else
					ach[pre + (size_t)px] = true;
				x = px;
				y = py;
			}
		}
	}
	goto out;

all:
	for (size_t i = 0; i < n; i++)
		ach[pre + i] = true;
	for (size_t j = 0; j < m; j++)
		bch[pre + j] = true;
out:
	if (trace)
		for (size_t d = 0; d <= dmax; d++)
			free(trace[d]);
	free(trace);
	free(v);
	return ret;
}

static int out_line(struct ws *w, char mark, const struct line *l)
{
	int ret = out(w, &mark, 1);

	if (!ret)
		ret = out(w, l->p, l->len);
	if (!ret && (!l->len || l->p[l->len - 1] != '\n'))
		ret = outs(w, "\n\\ No newline at end of file\n");
	return ret;
}

static int out_range(struct ws *w, size_t start, size_t count)
{
	if (count == 1)
		return outf(w, "%zu", start + 1);
	return outf(w, "%zu,%zu", count ? start + 1 : start, count);
}

struct change {
	size_t i0, i1, j0, j1;
};

/* Unified hunks between the text blobs a and b. */
static int out_hunks(struct ws *w, const struct blob *ba, const struct blob *bb)
{
	struct line *a = NULL, *b = NULL;
	struct change *ch = NULL;
	size_t na, nb, nch = 0, i = 0, j = 0;
	bool *ach = NULL, *bch = NULL;
	int ret;

	ret = split_lines(ba, &a, &na);
	if (!ret)
		ret = split_lines(bb, &b, &nb);
	if (ret)
		goto out;
	ach = calloc(na + 1, 1);
	bch = calloc(nb + 1, 1);
	ch = calloc(na + nb + 1, sizeof(*ch));
	if (!ach || !bch || !ch) {
		ret = -ENOMEM;
		goto out;
	}
	ret = myers(a, na, b, nb, ach, bch);
	if (ret)
		goto out;
	while (i < na || j < nb) {
		if (i < na && j < nb && !ach[i] && !bch[j]) {
			i++;
			j++;
			continue;
		}
		ch[nch].i0 = i;
		ch[nch].j0 = j;
		while (i < na && ach[i])
			i++;
		while (j < nb && bch[j])
			j++;
		ch[nch].i1 = i;
		ch[nch].j1 = j;
		if (ch[nch].i0 == i && ch[nch].j0 == j) {
			ret = ws_fail(w, -EPROTO, "%s: internal error in the line diff", cur(w));
			goto out;
		}
		nch++;
	}
	for (size_t c = 0; c < nch && !ret;) {
		size_t e = c, sa, ea, sb, eb, x, y;

		/* Changes closer than two contexts share a hunk. */
		while (e + 1 < nch && ch[e + 1].i0 - ch[e].i1 <= 2 * WS_CTX)
			e++;
		sa = ch[c].i0 > WS_CTX ? ch[c].i0 - WS_CTX : 0;
		sb = ch[c].j0 - (ch[c].i0 - sa);
		ea = ch[e].i1 + WS_CTX < na ? ch[e].i1 + WS_CTX : na;
		eb = ch[e].j1 + (ea - ch[e].i1);
		ret = outs(w, "@@ -");
		if (!ret)
			ret = out_range(w, sa, ea - sa);
		if (!ret)
			ret = outs(w, " +");
		if (!ret)
			ret = out_range(w, sb, eb - sb);
		if (!ret)
			ret = outs(w, " @@\n");
		x = sa;
		y = sb;
		for (size_t k = c; k <= e && !ret; k++) {
			for (; x < ch[k].i0 && !ret; x++, y++)
				ret = out_line(w, ' ', &a[x]);
			for (; x < ch[k].i1 && !ret; x++)
				ret = out_line(w, '-', &a[x]);
			for (y = ch[k].j0; y < ch[k].j1 && !ret; y++)
				ret = out_line(w, '+', &b[y]);
		}
		for (; x < ea && !ret; x++)
			ret = out_line(w, ' ', &a[x]);
		c = e + 1;
	}
out:
	free(a);
	free(b);
	free(ach);
	free(bch);
	free(ch);
	return ret;
}

static const char zero_hex[] = "0000000000000000000000000000000000000000";

/* One file's diff: a or b may be absent (added, deleted). */
static int diff_file(struct ws *w, const struct blob *a, const struct blob *b)
{
	bool same = a->present && b->present && !strcmp(a->hex, b->hex);
	bool bin, big;
	int ret;

	if (same && a->mode == b->mode)
		return 0;
	if (!a->present)
		w->st.added++;
	else if (!b->present)
		w->st.deleted++;
	else
		w->st.modified++;
	ret = outs(w, "diff --git ");
	if (!ret)
		ret = out_name(w, "a/");
	if (!ret)
		ret = outs(w, " ");
	if (!ret)
		ret = out_name(w, "b/");
	if (!ret)
		ret = outs(w, "\n");
	if (!ret && !a->present)
		ret = outf(w, "new file mode %o\n", b->mode);
	else if (!ret && !b->present)
		ret = outf(w, "deleted file mode %o\n", a->mode);
	else if (!ret && a->mode != b->mode)
		ret = outf(w, "old mode %o\nnew mode %o\n", a->mode, b->mode);
	if (ret || same)
		return ret;
	ret = outf(w, "index %s..%s", a->present ? a->hex : zero_hex, b->present ? b->hex : zero_hex);
	if (!ret && a->present && b->present && a->mode == b->mode)
		ret = outf(w, " %o", a->mode);
	if (!ret)
		ret = outs(w, "\n");
	if (ret)
		return ret;
	/* An empty file added or deleted: the headers say it all. */
	if ((!a->present && !b->len) || (!b->present && !a->len))
		return 0;
	big = (a->present && !a->loaded) || (b->present && !b->loaded);
	bin = blob_binary(a) || blob_binary(b);
	if (big || bin)
		w->st.binary++;
	if (big) {
		ret = outs(w, "Binary files ");
		if (!ret)
			ret = a->present ? out_name(w, "a/") : outs(w, "/dev/null");
		if (!ret)
			ret = outs(w, " and ");
		if (!ret)
			ret = b->present ? out_name(w, "b/") : outs(w, "/dev/null");
		return ret ? ret : outs(w, " differ\n");
	}
	if (bin) {
		ret = outs(w, "GIT binary patch\n");
		if (!ret)
			ret = out_literal(w, b);
		return ret ? ret : out_literal(w, a);
	}
	ret = out_file_line(w, "--- ", "a/", a->present);
	if (!ret)
		ret = out_file_line(w, "+++ ", "b/", b->present);
	return ret ? ret : out_hunks(w, a, b);
}

/* ---- walking the host directory and the guest tree together ---- */

static int check_guest_name(struct ws *w, const struct fstree_node *g)
{
	size_t l = g->name ? strlen(g->name) : 0;

	if (!l || l > 255 || strchr(g->name, '/') || !strcmp(g->name, ".") ||
	    !strcmp(g->name, ".."))
		return ws_fail(w, -EINVAL, "%s: the guest's copy holds a bad name '%s'", cur(w),
			       g->name ? g->name : "");
	return 0;
}

enum kind { K_NONE, K_REG, K_LNK, K_DIR, K_OTHER };

static enum kind host_kind(const struct hent *h)
{
	if (!h)
		return K_NONE;
	if (S_ISREG(h->st.st_mode))
		return K_REG;
	if (S_ISLNK(h->st.st_mode))
		return K_LNK;
	if (S_ISDIR(h->st.st_mode))
		return K_DIR;
	return K_OTHER;
}

static enum kind guest_kind(const struct fstree_node *g)
{
	if (!g)
		return K_NONE;
	switch (g->type) {
	case TAR_REG:
		return K_REG;
	case TAR_SYMLINK:
		return K_LNK;
	case TAR_DIR:
		return K_DIR;
	default:
		return K_OTHER;
	}
}

static int walk(struct ws *w, int hfd, struct fstree_node *gdir, unsigned int depth);

/* ---- ws_apply's writes: everything through hfd, nothing followed ---- */

/* A fresh name in hfd for a file about to be renamed over name. */
static void tmp_name(struct ws *w, char *buf, size_t size)
{
	snprintf(buf, size, ".minivm-ws-%ld-%u.tmp", (long)getpid(), w->tmp_seq++);
}

static int apply_reg(struct ws *w, int hfd, const char *name, struct fstree_node *g)
{
	char tmp[64];
	uint64_t off;
	int fd = -1, ret = 0;

	for (int tries = 0; fd < 0; tries++) {
		tmp_name(w, tmp, sizeof(tmp));
		fd = openat(hfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || tries > 100))
			return ws_fail(w, -errno, "%s: creating a temporary file: %s", cur(w),
				       strerror(errno));
	}
	for (off = 0; off < g->size;) {
		size_t want = g->size - off < WS_BUF ? (size_t)(g->size - off) : WS_BUF;
		ssize_t r = fstree_read(w->guest, g, off, w->buf, want);

		if (r <= 0) {
			ret = ws_fail(w, r < 0 ? (int)r : -EIO, "%s: reading the guest's copy", cur(w));
			goto fail;
		}
		ret = write_all(fd, w->buf, (size_t)r);
		if (ret) {
			ret = ws_fail(w, ret, "%s: %s", cur(w), strerror(-ret));
			goto fail;
		}
		off += (uint64_t)r;
	}
	if (fchmod(fd, g->mode & 0777) < 0 || close(fd) < 0) {
		fd = -1;
		ret = ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
		goto fail;
	}
	fd = -1;
	if (renameat(hfd, tmp, hfd, name) < 0) {
		ret = ws_fail(w, -errno, "%s: rename: %s", cur(w), strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(hfd, tmp, 0);
	return ret;
}

static int apply_lnk(struct ws *w, int hfd, const char *name, const struct fstree_node *g)
{
	char tmp[64];
	int tries = 0;

	if (!g->link || !g->link[0])
		return ws_fail(w, -EINVAL, "%s: the guest's symlink has no target", cur(w));
	for (;;) {
		tmp_name(w, tmp, sizeof(tmp));
		if (symlinkat(g->link, hfd, tmp) == 0)
			break;
		if (errno != EEXIST || ++tries > 100)
			return ws_fail(w, -errno, "%s: symlink: %s", cur(w), strerror(errno));
	}
	if (renameat(hfd, tmp, hfd, name) < 0) {
		int ret = -errno;

		unlinkat(hfd, tmp, 0);
		return ws_fail(w, ret, "%s: rename: %s", cur(w), strerror(-ret));
	}
	return 0;
}

/* Whether host file hfd/name already has g's bytes (and is a regular file). */
static int same_content(struct ws *w, int hfd, const char *name, const struct fstree_node *g,
			bool *same, int *fdout)
{
	struct stat st;
	uint64_t off;
	uint8_t *gb;
	size_t got;
	int fd, ret = 0;

	*same = false;
	*fdout = -1;
	fd = openat(hfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ws_fail(w, -errno, "%s: %s", cur(w), strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ws_fail(w, -EAGAIN, "%s: changed while being read", cur(w));
	}
	if ((uint64_t)st.st_size != g->size) {
		*fdout = fd;
		return 0;
	}
	gb = malloc(WS_BUF);
	if (!gb) {
		close(fd);
		return -ENOMEM;
	}
	*same = true;
	for (off = 0; off < g->size && *same;) {
		size_t want = g->size - off < WS_BUF ? (size_t)(g->size - off) : WS_BUF;
		ssize_t r = fstree_read(w->guest, g, off, gb, want);

		if (r <= 0) {
			ret = ws_fail(w, r < 0 ? (int)r : -EIO, "%s: reading the guest's copy", cur(w));
			break;
		}
		ret = read_full(fd, w->buf, (size_t)r, &got);
		if (ret) {
			ret = ws_fail(w, ret, "%s: %s", cur(w), strerror(-ret));
			break;
		}
		*same = got == (size_t)r && !memcmp(gb, w->buf, got);
		off += (uint64_t)r;
	}
	free(gb);
	if (ret) {
		close(fd);
		return ret;
	}
	*fdout = fd;
	return 0;
}

static int apply_entry(struct ws *w, int hfd, const struct hent *h, struct fstree_node *g,
		       unsigned int depth)
{
	enum kind hk = host_kind(h), gk = guest_kind(g);
	const char *name = h ? h->name : g->name;
	bool same_kind = hk == gk && (hk == K_REG || hk == K_LNK);
	int ret = 0;

	if (hk == K_OTHER || gk == K_OTHER) {
		/* Never packed (host) or not representable (guest): left alone. */
		w->st.skipped++;
		if (hk == K_OTHER && gk != K_NONE && gk != K_OTHER)
			return ws_fail(w, -EEXIST, "%s: a special file on the host is in the way",
				       cur(w));
		return 0;
	}
	/* 1: what the guest removed or replaced by another type. */
	if ((hk == K_REG || hk == K_LNK) && !same_kind) {
		if (unlinkat(hfd, name, 0) < 0)
			return ws_fail(w, -errno, "%s: unlink: %s", cur(w), strerror(errno));
		if (gk == K_NONE)
			w->st.deleted++;
	}
	/* 2: directories. */
	if (hk == K_DIR || gk == K_DIR) {
		int cfd;

		if (hk != K_DIR) {
			if (mkdirat(hfd, name, 0700) < 0)
				return ws_fail(w, -errno, "%s: mkdir: %s", cur(w), strerror(errno));
		}
		cfd = open_dir_at(w, hfd, name);
		if (cfd < 0)
			return cfd;
		ret = walk(w, cfd, gk == K_DIR ? g : NULL, depth + 1);
		if (!ret && gk == K_DIR) {
			struct stat st;

			if (fstat(cfd, &st) < 0 ||
			    ((st.st_mode & 0777) != (g->mode & 0777) && fchmod(cfd, g->mode & 0777) < 0))
				ret = ws_fail(w, -errno, "%s: chmod: %s", cur(w), strerror(errno));
		}
		close(cfd);
		if (ret)
			return ret;
		if (gk != K_DIR && unlinkat(hfd, name, AT_REMOVEDIR) < 0)
			return ws_fail(w, -errno,
				       "%s: cannot remove the directory the guest replaced: %s%s",
				       cur(w), strerror(errno),
				       errno == ENOTEMPTY ? " (it holds ignored or special files)" : "");
	}
	/* 3: what the guest added or changed. */
	if (gk == K_REG || gk == K_LNK) {
		if (!same_kind) {
			ret = gk == K_REG ? apply_reg(w, hfd, name, g) : apply_lnk(w, hfd, name, g);
			if (!ret)
				w->st.added++;
		} else if (gk == K_LNK) {
			ssize_t l = readlinkat(hfd, name, (char *)w->buf, WS_BUF);

			if (l < 0)
				return ws_fail(w, -errno, "%s: readlink: %s", cur(w), strerror(errno));
			if ((size_t)l != strlen(g->link ? g->link : "") ||
			    memcmp(w->buf, g->link, (size_t)l)) {
				ret = apply_lnk(w, hfd, name, g);
				if (!ret)
					w->st.modified++;
			}
		} else {
			bool same;
			int fd;
			struct stat st;

			ret = same_content(w, hfd, name, g, &same, &fd);
			if (ret)
				return ret;
			if (!same) {
				close(fd);
				ret = apply_reg(w, hfd, name, g);
				if (!ret)
					w->st.modified++;
			} else {
				if (fstat(fd, &st) == 0 && (st.st_mode & 0777) != (g->mode & 0777)) {
					if (fchmod(fd, g->mode & 0777) < 0)
						ret = ws_fail(w, -errno, "%s: chmod: %s", cur(w),
							      strerror(errno));
					else
						w->st.modified++;
				}
				close(fd);
			}
		}
	}
	return ret;
}

static int diff_entry(struct ws *w, int hfd, const struct hent *h, struct fstree_node *g,
		      unsigned int depth)
{
	enum kind hk = host_kind(h), gk = guest_kind(g);
	const char *name = h ? h->name : g->name;
	bool same_kind = hk == gk && (hk == K_REG || hk == K_LNK);
	struct blob a = { 0 }, b = { 0 }, none = { 0 };
	int ret = 0;

	if (hk == K_OTHER || gk == K_OTHER) {
		w->st.skipped++;
		return 0;
	}
	if (hk == K_REG || hk == K_LNK) {
		ret = blob_host(w, hfd, name, &h->st, &a);
		if (ret)
			goto out;
	}
	if (gk == K_REG || gk == K_LNK) {
		ret = blob_guest(w, g, &b);
		if (ret)
			goto out;
	}
	if (same_kind) {
		ret = diff_file(w, &a, &b);
		goto out;
	}
	if (a.present) {
		ret = diff_file(w, &a, &none);
		if (ret)
			goto out;
	}
	if (hk == K_DIR || gk == K_DIR) {
		int cfd = -1;

		if (hk == K_DIR) {
			cfd = open_dir_at(w, hfd, name);
			if (cfd < 0) {
				ret = cfd;
				goto out;
			}
		}
		ret = walk(w, cfd, gk == K_DIR ? g : NULL, depth + 1);
		if (cfd >= 0)
			close(cfd);
		if (ret)
			goto out;
	}
	if (b.present)
		ret = diff_file(w, &none, &b);
out:
	blob_free(&a);
	blob_free(&b);
	return ret;
}

/* One directory: host fd hfd (-1: none) against guest directory gdir (NULL: none). */
static int walk(struct ws *w, int hfd, struct fstree_node *gdir, unsigned int depth)
{
	struct hent *e = NULL;
	size_t n = 0, i = 0;
	struct fstree_node *g = gdir ? gdir->child : NULL;
	uint64_t guard = 0;
	int ret = 0;

	if (depth > WS_DEPTH_MAX)
		return ws_fail(w, -ELOOP, "%s: deeper than %d directories", cur(w), WS_DEPTH_MAX);
	if (hfd >= 0) {
		ret = load_gitignore(w, hfd);
		if (!ret)
			ret = list_dir(w, hfd, &e, &n);
		if (ret)
			return ret;
	}
	while ((i < n || g) && !ret) {
		const struct hent *h = NULL;
		struct fstree_node *gn = NULL;
		size_t saved;
		int c;

		if (++guard > 2 * (uint64_t)WS_ENTRIES_MAX + fstree_nodes(w->guest)) {
			ret = ws_fail(w, -ELOOP, "%s: too many entries", cur(w));
			break;
		}
		if (g) {
			ret = check_guest_name(w, g);
			if (ret)
				break;
		}
		c = i >= n ? 1 : !g ? -1 : strcmp(e[i].name, g->name);
		if (c <= 0)
			h = &e[i++];
		if (c >= 0) {
			gn = g;
			g = g->next;
		}
		ret = path_push(w, h ? h->name : gn->name, &saved);
		if (ret)
			break;
		/* Left out if ignored as it is on either side. */
		if (!strcmp(h ? h->name : gn->name, ".git") ||
		    (h && excluded(w, h->name, S_ISDIR(h->st.st_mode))) ||
		    (gn && excluded(w, gn->name, gn->type == TAR_DIR))) {
			w->st.ignored++;
		} else if (w->op == WS_DIFF) {
			ret = diff_entry(w, hfd, h, gn, depth);
		} else {
			ret = apply_entry(w, hfd, h, gn, depth);
		}
		path_pop(w, saved);
	}
	hents_free(e, n);
	return ret;
}

static int walk_root(struct ws *w)
{
	struct fstree_node *root = fstree_root(w->guest);

	if (!root || root->type != TAR_DIR)
		return ws_fail(w, -EINVAL, "the guest's copy is not a directory");
	return walk(w, w->rootfd, root, 0);
}

int ws_diff(const char *hostdir, bool respect_gitignore, struct fstree *guest, int out_fd,
	    struct ws_stats *st, char *err, size_t errlen)
{
	struct ws *w = malloc(sizeof(*w));
	int ret, fret;

	if (!w)
		return -ENOMEM;
	ret = ws_init(w, WS_DIFF, hostdir, respect_gitignore, err, errlen);
	if (ret)
		goto out;
	w->guest = guest;
	w->out_fd = out_fd;
	w->obuf = malloc(WS_BUF);
	if (!w->obuf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = walk_root(w);
	fret = write_all(out_fd, w->obuf, w->olen);
	if (!ret && fret)
		ret = ws_fail(w, fret, "writing the diff: %s", strerror(-fret));
out:
	if (ret && err && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", hostdir, strerror(-ret));
	ws_fini(w, st);
	free(w);
	return ret;
}

int ws_apply(const char *hostdir, bool respect_gitignore, struct fstree *guest,
	     struct ws_stats *st, char *err, size_t errlen)
{
	struct ws *w = malloc(sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	ret = ws_init(w, WS_APPLY, hostdir, respect_gitignore, err, errlen);
	if (ret)
		goto out;
	w->guest = guest;
	ret = walk_root(w);
out:
	if (ret && err && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", hostdir, strerror(-ret));
	ws_fini(w, st);
	free(w);
	return ret;
}
