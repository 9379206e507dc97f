/* The guest's tar tool (`/proc/self/exe tar create|extract`): a directory tree to a tar stream or OCI layer on stdout, and a hostile tar stream on stdin into a directory without escaping it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "tar.h"
#include "tartool.h"

#define TT_TAG "minivm-init tar: "
/* Output buffer, and the read size for stdin and file data. */
#define TT_BUF (64 * 1024)
/* Entries of one directory that create lists (and sorts) at once. */
#define TT_DIR_ENTRIES_MAX (1u << 20)
/* Hard-linked inodes create remembers; directories extract defers. */
#define TT_LINKS_MAX (1u << 22)
#define TT_DIRS_MAX (1u << 22)
/* flistxattr's list is at most XATTR_LIST_MAX (64 KiB) on Linux. */
#define TT_XATTR_LIST_MAX (64 * 1024)
/* Temporary names tried in one directory before giving up. */
#define TT_TMP_TRIES 64

static void tt_usage(void)
{
	dprintf(STDERR_FILENO,
	        "usage: tar create [--overlay] [--exclude PATH]... DIR\n"
	        "       tar extract [--owner UID:GID] DIR\n");
}

/* One line on stderr: "minivm-init tar: OP: PATH: message". */
static __attribute__((format(printf, 3, 4))) void tt_err(const char *op, const char *path,
                                                         const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, TT_TAG "%s: %s%s%s\n", op, path, path[0] ? ": " : "", msg);
}

/* ---- create: the buffered writer ---- */

struct tt_out {
	int fd;
	uint8_t *buf; /* TT_BUF bytes */
	size_t len;
	int err; /* the first write error (the caller reports it once) */
};

static int tt_out_flush(struct tt_out *o)
{
	size_t off = 0;

	while (off < o->len) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return o->err = n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	o->len = 0;
	return 0;
}

static int tt_out_write(struct tt_out *o, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		size_t room = TT_BUF - o->len, k = n < room ? n : room;

		memcpy(o->buf + o->len, b, k);
		o->len += k;
		b += k;
		n -= k;
		if (o->len == TT_BUF) {
			int err = tt_out_flush(o);

			if (err)
				return err;
		}
	}
	return 0;
}

static int tt_out_zeros(struct tt_out *o, size_t n)
{
	static const uint8_t zero[TAR_BLOCK];

	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);
		int err = tt_out_write(o, zero, k);

		if (err)
			return err;
		n -= k;
	}
	return 0;
}

/* ---- create: hard links seen, (dev, ino) -> first path ---- */

struct tt_link {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: free slot */
};

struct tt_links {
	struct tt_link *v;
	size_t cap, n; /* cap: 0 or a power of two */
};

static size_t tt_link_slot(const struct tt_links *l, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full);

	return (size_t)(h ^ (h >> 29)) & (l->cap - 1);
}

static int tt_links_grow(struct tt_links *l)
{
	struct tt_links nl = { .cap = l->cap ? l->cap * 2 : 64 };

	nl.v = calloc(nl.cap, sizeof(*nl.v));
	if (!nl.v)
		return -ENOMEM;
	for (size_t i = 0; i < l->cap; i++) {
		size_t s;

		if (!l->v[i].path)
			continue;
		s = tt_link_slot(&nl, l->v[i].dev, l->v[i].ino);
		while (nl.v[s].path) /* bounded: nl is under half full */
			s = (s + 1) & (nl.cap - 1);
		nl.v[s] = l->v[i];
	}
	nl.n = l->n;
	free(l->v);
	*l = nl;
	return 0;
}

/* *first = the path first seen for (dev, ino), or NULL after remembering path for it. */
static int tt_links_see(struct tt_links *l, dev_t dev, ino_t ino, const char *path,
                        const char **first)
{
	size_t s;

	*first = NULL;
	if (l->n >= TT_LINKS_MAX)
		return -E2BIG;
	if ((l->n + 1) * 2 > l->cap) {
		int err = tt_links_grow(l);

		if (err)
			return err;
	}
	s = tt_link_slot(l, dev, ino);
	while (l->v[s].path) { /* bounded: the table is under half full */
		if (l->v[s].dev == dev && l->v[s].ino == ino) {
			*first = l->v[s].path;
			return 0;
		}
		s = (s + 1) & (l->cap - 1);
	}
	l->v[s].path = strdup(path);
	if (!l->v[s].path)
		return -ENOMEM;
	l->v[s].dev = dev;
	l->v[s].ino = ino;
	l->n++;
	return 0;
}

static void tt_links_free(struct tt_links *l)
{
	for (size_t i = 0; i < l->cap; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->cap = l->n = 0;
}

/* ---- create ---- */

struct tt_create {
	struct tt_out out;
	bool overlay;
	char **excl; /* cleaned --exclude paths */
	size_t nexcl;
	/* The entry being written: its path relative to DIR. */
	char path[TAR_PATH_MAX + 1];
	size_t plen;
	struct tar_entry e;
	uint8_t hdr[TAR_HDR_MAX];
	struct tt_links links;
	uint64_t entries;
};

struct tt_child {
	char *name;
	struct stat st;
	bool whiteout; /* --overlay: a char device 0:0 */
};

static int tt_child_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tt_child *)a)->name, ((const struct tt_child *)b)->name);
}

static int tt_emit_header(struct tt_create *c, const struct tar_entry *e)
{
	ssize_t n = tar_write_header(e, c->hdr, sizeof(c->hdr));

	if (n < 0) {
		tt_err("create", e->path, "cannot write its header: %s", strerror((int)-n));
		return (int)n;
	}
	c->entries++;
	return tt_out_write(&c->out, c->hdr, (size_t)n);
}

/* Fill c->e's common fields from st for c->path. */
static void tt_entry_from_stat(struct tt_create *c, enum tar_type type, const struct stat *st)
{
	struct tar_entry *e = &c->e;

	e->type = type;
	memcpy(e->path, c->path, c->plen + 1);
	e->link[0] = '\0';
	e->mode = (uint32_t)st->st_mode & 07777;
	e->uid = (uint32_t)st->st_uid;
	e->gid = (uint32_t)st->st_gid;
	e->mtime = (int64_t)st->st_mtim.tv_sec;
	e->size = 0;
	e->devmajor = e->devminor = 0;
}

/* An empty regular file (0644, 0:0) named prefix + name in dir's path (whiteouts). */
static int tt_emit_marker(struct tt_create *c, const char *dir, size_t dlen, const char *name,
                          int64_t mtime)
{
	struct tar_entry *e = &c->e;
	int n = snprintf(e->path, sizeof(e->path), "%.*s%s%s", (int)dlen, dir, dlen ? "/" : "", name);

	if (n < 0 || (size_t)n > TAR_PATH_MAX) {
		tt_err("create", c->path, "whiteout name too long");
		return -ENAMETOOLONG;
	}
	e->type = TAR_REG;
	e->link[0] = '\0';
	e->mode = 0644;
	e->uid = e->gid = 0;
	e->mtime = mtime;
	e->size = 0;
	e->devmajor = e->devminor = 0;
	return tt_emit_header(c, e);
}

/*
 * --overlay: the overlay xattrs of a directory or regular file (fd): sets
 * *opaque for opaque = "y", refuses what makes the layer depend on the
 * lower layers. Without xattr support there are none.
 */
static int tt_overlay_xattrs(struct tt_create *c, int fd, bool *opaque)
{
	static const char *const benign[] = { "origin", "impure", "nlink", "upper", "uuid", "protattr" };
	static const char *const prefixes[] = { "trusted.overlay.", "user.overlay." };
	char *list = NULL;
	ssize_t len;
	int err = 0;

	*opaque = false;
	len = flistxattr(fd, NULL, 0);
	if (len < 0 && errno == ENOTSUP)
		return 0;
	if (len < 0) {
		err = -errno;
		tt_err("create", c->path, "listxattr: %s", strerror(-err));
		return err;
	}
	if (len == 0)
		return 0;
	if (len > TT_XATTR_LIST_MAX)
		len = TT_XATTR_LIST_MAX;
	list = malloc((size_t)len);
	if (!list)
		return -ENOMEM;
	len = flistxattr(fd, list, (size_t)len);
	if (len < 0) {
		err = -errno;
		tt_err("create", c->path, "listxattr: %s", strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < (size_t)len;) { /* bounded by len */
		const char *name = list + off, *end = memchr(name, '\0', (size_t)len - off);
		const char *feature = NULL;
		bool known = false;

		if (!end)
			break;
		off = (size_t)(end - list) + 1;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
			if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
				feature = name + strlen(prefixes[i]);
		if (!feature)
			continue;
		if (strcmp(feature, "opaque") == 0) {
			char v[8];
			ssize_t vl = fgetxattr(fd, name, v, sizeof(v));

			if (vl == 1 && v[0] == 'y') {
				*opaque = true;
				continue;
			}
			err = -ENOTSUP;
			tt_err("create", c->path, "overlay feature %s=%.*s not supported", name,
			       vl > 0 ? (int)vl : 0, v);
			goto out;
		}
		for (size_t i = 0; i < sizeof(benign) / sizeof(benign[0]); i++)
			known = known || strcmp(feature, benign[i]) == 0;
		if (known)
			continue;
		err = -ENOTSUP;
		tt_err("create", c->path, "overlay feature %s not supported (the layer would not be self-contained)",
		       name);
		goto out;
	}
out:
	free(list);
	return err;
}

/* Copy exactly st->st_size bytes of fd after its header. */
static int tt_emit_data(struct tt_create *c, int fd, uint64_t size)
{
	uint64_t left = size;
	int err;

	while (left > 0) {
		struct tt_out *o = &c->out;
		size_t room = TT_BUF - o->len, want = left < room ? (size_t)left : room;
		ssize_t n = read(fd, o->buf + o->len, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tt_err("create", c->path, "read: %s", strerror(errno));
			return -errno;
		}
		if (n == 0) {
			tt_err("create", c->path, "file shrank while being read");
			return -EIO;
		}
		o->len += (size_t)n;
		left -= (uint64_t)n;
		if (o->len == TT_BUF && (err = tt_out_flush(o)))
			return err;
	}
	return tt_out_zeros(&c->out, tar_pad(size));
}

static bool tt_excluded(const struct tt_create *c)
{
	for (size_t i = 0; i < c->nexcl; i++)
		if (strcmp(c->excl[i], c->path) == 0)
			return true;
	return false;
}

static int tt_walk(struct tt_create *c, int dfd, unsigned depth);

/* A directory (name in dfd, c->path set): its header, opaque marker, contents. */
static int tt_emit_dir(struct tt_create *c, int dfd, const char *name, unsigned depth)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bool opaque = false;
	struct stat st;
	int err;

	if (fd < 0) {
		tt_err("create", c->path, "open: %s", strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) != 0) {
		err = -errno;
		tt_err("create", c->path, "stat: %s", strerror(errno));
		goto out;
	}
	if (depth + 1 > TARTOOL_DEPTH_MAX) {
		err = -ELOOP;
		tt_err("create", c->path, "more than %d directories deep", TARTOOL_DEPTH_MAX);
		goto out;
	}
	if (c->overlay && (err = tt_overlay_xattrs(c, fd, &opaque)))
		goto out;
	tt_entry_from_stat(c, TAR_DIR, &st);
	if ((err = tt_emit_header(c, &c->e)))
		goto out;
	if (opaque && (err = tt_emit_marker(c, c->path, c->plen, TAR_WH_OPAQUE, (int64_t)st.st_mtim.tv_sec)))
		goto out;
	err = tt_walk(c, fd, depth + 1); /* takes fd */
	fd = -1;
out:
	if (fd >= 0)
		(void)close(fd);
	return err;
}

/* A regular file (name in dfd, c->path set): a hard link to an earlier name, or header and data. */
static int tt_emit_file(struct tt_create *c, int dfd, const char *name, const struct stat *lst)
{
	/* O_NONBLOCK: if it became a fifo since the listing, open must not wait. */
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	const char *first = NULL;
	bool opaque;
	struct stat st;
	int err;

	if (fd < 0) {
		tt_err("create", c->path, "open: %s", strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) != 0) {
		err = -errno;
		tt_err("create", c->path, "stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_ino != lst->st_ino || st.st_dev != lst->st_dev) {
		err = -EAGAIN;
		tt_err("create", c->path, "changed while being read");
		goto out;
	}
	if (c->overlay && (err = tt_overlay_xattrs(c, fd, &opaque)))
		goto out;
	if (st.st_nlink > 1 && (err = tt_links_see(&c->links, st.st_dev, st.st_ino, c->path, &first))) {
		tt_err("create", c->path, "remembering a hard link: %s", strerror(-err));
		goto out;
	}
	tt_entry_from_stat(c, first ? TAR_HARDLINK : TAR_REG, &st);
	if (first) {
		memcpy(c->e.link, first, strlen(first) + 1);
		err = tt_emit_header(c, &c->e);
		goto out;
	}
	c->e.size = (uint64_t)st.st_size;
	if ((err = tt_emit_header(c, &c->e)))
		goto out;
	err = tt_emit_data(c, fd, (uint64_t)st.st_size);
out:
	(void)close(fd);
	return err;
}

/* Anything but a directory or regular file (c->path set, st from the listing). */
static int tt_emit_other(struct tt_create *c, int dfd, const char *name, const struct stat *st)
{
	const char *first = NULL;
	enum tar_type type;
	int err;

	if (S_ISLNK(st->st_mode))
		type = TAR_SYMLINK;
	else if (S_ISCHR(st->st_mode))
		type = TAR_CHR;
	else if (S_ISBLK(st->st_mode))
		type = TAR_BLK;
	else if (S_ISFIFO(st->st_mode))
		type = TAR_FIFO;
	else
		return 0; /* sockets: nothing a tar stream can carry */
	if (st->st_nlink > 1 && (err = tt_links_see(&c->links, st->st_dev, st->st_ino, c->path, &first))) {
		tt_err("create", c->path, "remembering a hard link: %s", strerror(-err));
		return err;
	}
	tt_entry_from_stat(c, first ? TAR_HARDLINK : type, st);
	if (first) {
		memcpy(c->e.link, first, strlen(first) + 1);
	} else if (type == TAR_SYMLINK) {
		ssize_t n = readlinkat(dfd, name, c->e.link, sizeof(c->e.link));

		if (n < 0) {
			tt_err("create", c->path, "readlink: %s", strerror(errno));
			return -errno;
		}
		if ((size_t)n >= sizeof(c->e.link)) {
			tt_err("create", c->path, "symlink target longer than %d bytes", TAR_PATH_MAX);
			return -ENAMETOOLONG;
		}
		c->e.link[n] = '\0';
	} else if (type == TAR_CHR || type == TAR_BLK) {
		c->e.devmajor = (uint32_t)major(st->st_rdev);
		c->e.devminor = (uint32_t)minor(st->st_rdev);
	}
	return tt_emit_header(c, &c->e);
}

/* Read dfd's entries (lstat'ed, sorted) into *out. */
static int tt_list(struct tt_create *c, DIR *d, struct tt_child **out, size_t *nout)
{
	struct tt_child *v = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	for (;;) { /* bounded by TT_DIR_ENTRIES_MAX */
		struct dirent *de;
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				err = -errno;
				tt_err("create", c->path, "readdir: %s", strerror(errno));
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue; /* gone since readdir */
			err = -errno;
			tt_err("create", c->path, "stat %s: %s", de->d_name, strerror(errno));
			break;
		}
		if (n == TT_DIR_ENTRIES_MAX) {
			err = -E2BIG;
			tt_err("create", c->path, "more than %u entries", TT_DIR_ENTRIES_MAX);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct tt_child *nv = reallocarray(v, ncap, sizeof(*v));

			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n].name = strdup(de->d_name);
		if (!v[n].name) {
			err = -ENOMEM;
			break;
		}
		v[n].st = st;
		v[n].whiteout = c->overlay && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
		n++;
	}
	if (err) {
		for (size_t i = 0; i < n; i++)
			free(v[i].name);
		free(v);
		if (err == -ENOMEM)
			tt_err("create", c->path, "out of memory");
		return err;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), tt_child_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/* Set c->path to the current directory's path plus name; restore with c->plen = saved. */
static int tt_path_push(struct tt_create *c, const char *name)
{
	size_t nl = strlen(name), add = nl + (c->plen ? 1 : 0);

	if (c->plen + add > TAR_PATH_MAX) {
		tt_err("create", c->path, "%s: path longer than %d bytes", name, TAR_PATH_MAX);
		return -ENAMETOOLONG;
	}
	if (c->plen)
		c->path[c->plen++] = '/';
	memcpy(c->path + c->plen, name, nl + 1);
	c->plen += nl;
	return 0;
}

/* Everything below the directory fd (at c->path), which it closes. */
static int tt_walk(struct tt_create *c, int fd, unsigned depth)
{
	size_t base = c->plen, n = 0;
	struct tt_child *v = NULL;
	DIR *d = fdopendir(fd);
	int err = 0;

	if (!d) {
		err = -errno;
		tt_err("create", c->path, "opendir: %s", strerror(errno));
		(void)close(fd);
		return err;
	}
	if ((err = tt_list(c, d, &v, &n)))
		goto out;
	/* OCI layer.md: whiteouts SHOULD come before their siblings. */
	for (size_t i = 0; i < n && c->overlay; i++) {
		if (!v[i].whiteout)
			continue;
		if ((err = tt_path_push(c, v[i].name)))
			goto out;
		if (!tt_excluded(c)) {
			char wh[NAME_MAX + sizeof(TAR_WH_PREFIX)];

			snprintf(wh, sizeof(wh), TAR_WH_PREFIX "%s", v[i].name);
			if ((err = tt_emit_marker(c, c->path, base, wh, (int64_t)v[i].st.st_mtim.tv_sec)))
				goto out;
		}
		c->path[c->plen = base] = '\0';
	}
	for (size_t i = 0; i < n; i++) {
		const struct tt_child *ch = &v[i];

		if (ch->whiteout)
			continue;
		if ((err = tt_path_push(c, ch->name)))
			goto out;
		if (c->overlay && strncmp(ch->name, TAR_WH_PREFIX, strlen(TAR_WH_PREFIX)) == 0) {
			err = -EINVAL;
			tt_err("create", c->path, "the name would read as an OCI whiteout");
			goto out;
		}
		if (tt_excluded(c))
			err = 0;
		else if (S_ISDIR(ch->st.st_mode))
			err = tt_emit_dir(c, dirfd(d), ch->name, depth);
		else if (S_ISREG(ch->st.st_mode))
			err = tt_emit_file(c, dirfd(d), ch->name, &ch->st);
		else
			err = tt_emit_other(c, dirfd(d), ch->name, &ch->st);
		if (err)
			goto out;
		c->path[c->plen = base] = '\0';
	}
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	(void)closedir(d);
	return err;
}

static int tt_create(int argc, char **argv)
{
	struct tt_create *c = calloc(1, sizeof(*c));
	const char *dir = NULL;
	int fd = -1, err = 0, status = 1;

	if (!c) {
		tt_err("create", "", "out of memory");
		return 1;
	}
	c->out.fd = STDOUT_FILENO;
	c->out.buf = malloc(TT_BUF);
	c->excl = calloc((size_t)argc, sizeof(*c->excl));
	if (!c->out.buf || !c->excl) {
		tt_err("create", "", "out of memory");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--overlay") == 0) {
			c->overlay = true;
		} else if (strcmp(argv[i], "--exclude") == 0 && i + 1 < argc) {
			char *p = malloc(TAR_PATH_MAX + 1);

			if (!p) {
				tt_err("create", "", "out of memory");
				goto out;
			}
			c->excl[c->nexcl++] = p;
			err = tar_path_clean(argv[++i], p, TAR_PATH_MAX + 1);
			if (err) {
				tt_err("create", argv[i], "bad --exclude: %s", strerror(-err));
				status = 2;
				goto out;
			}
		} else if (argv[i][0] == '-' || dir) {
			tt_usage();
			status = 2;
			goto out;
		} else {
			dir = argv[i];
		}
	}
	if (!dir) {
		tt_usage();
		status = 2;
		goto out;
	}
	/* A reader that goes away is a write error (status 1), not a signal. */
	(void)signal(SIGPIPE, SIG_IGN);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		tt_err("create", dir, "open: %s", strerror(errno));
		goto out;
	}
	err = tt_walk(c, fd, 0); /* takes fd */
	if (!err)
		err = tt_out_zeros(&c->out, TAR_END_SIZE);
	if (!err)
		err = tt_out_flush(&c->out);
	if (c->out.err)
		tt_err("create", "", "writing the stream after %llu entries: %s",
		       (unsigned long long)c->entries, strerror(-c->out.err));
	status = err ? 1 : 0;
out:
	if (c->excl)
		for (size_t i = 0; i < c->nexcl; i++)
			free(c->excl[i]);
	free(c->excl);
	free(c->out.buf);
	tt_links_free(&c->links);
	free(c);
	return status;
}

/* ---- extract ---- */

struct tt_dir {
	char *path;
	uint32_t mode;
	int64_t mtime;
	unsigned depth;
};

struct tt_extract {
	int root; /* DIR */
	struct tar_reader *r;
	bool chown; /* set owners: root, or --owner */
	bool owner_set;
	uint32_t uid, gid;
	/* The last parent directory opened: its path and fd (-1: none). */
	char cpath[TAR_PATH_MAX + 1];
	int cfd;
	/* The regular file being written: its temporary and final names in cfd. */
	int ffd;
	char ftmp[32];
	char fname[NAME_MAX + 1];
	uint64_t fleft;
	struct tar_entry fmeta; /* path, mode, uid, gid, mtime */
	uint64_t tmpseq;
	/* Directories whose mode and mtime are set at the end. */
	struct tt_dir *dirs;
	size_t ndirs, dcap;
};

/* Puts "PATH: message" in the reader's error (printed at the end); returns err. */
static __attribute__((format(printf, 4, 5))) int tt_x_fail(struct tt_extract *x, const char *path,
                                                           int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tar_reader_set_error(x->r, "%s: %s", path, msg);
	return err;
}

/* Re-checks the reader's cleaning: relative, no "", "." or ".." components. */
static bool tt_path_safe(const char *p)
{
	size_t i = 0;

	if (p[0] == '\0' || p[0] == '/')
		return false;
	while (p[i]) { /* bounded by the NUL */
		size_t j = i;

		while (p[j] && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		if (!p[j])
			break;
		i = j + 1;
		if (!p[i])
			return false; /* trailing '/' */
	}
	return true;
}

/*
 * Opens the directory at path[0..len) below the root, one component at a
 * time with O_NOFOLLOW | O_DIRECTORY; with create, a missing one is made
 * 0755 (owned by --owner). *fd is a new fd. what names the entry for errors.
 */
static int tt_open_dir(struct tt_extract *x, const char *what, const char *path, size_t len,
                       bool create, int *fd)
{
	int cur = openat(x->root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t i = 0;

	if (cur < 0)
		return tt_x_fail(x, what, -errno, "open the target directory: %s", strerror(errno));
	while (i < len) { /* bounded by len */
		char comp[NAME_MAX + 1];
		size_t j = i;
		int next, err;

		while (j < len && path[j] != '/')
			j++;
		if (j - i > NAME_MAX) {
			(void)close(cur);
			return tt_x_fail(x, what, -ENAMETOOLONG, "a component is longer than %d bytes", NAME_MAX);
		}
		memcpy(comp, path + i, j - i);
		comp[j - i] = '\0';
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
				err = -errno;
				(void)close(cur);
				return tt_x_fail(x, what, err, "mkdir %.*s: %s", (int)j, path, strerror(-err));
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0 && x->owner_set && fchown(next, x->uid, x->gid) != 0) {
				err = -errno;
				(void)close(next);
				(void)close(cur);
				return tt_x_fail(x, what, err, "chown %.*s: %s", (int)j, path, strerror(-err));
			}
		}
		err = -errno;
		(void)close(cur);
		if (next < 0) {
			if (err == -ELOOP || err == -ENOTDIR)
				return tt_x_fail(x, what, -ENOTDIR, "%.*s exists and is not a directory",
				                 (int)j, path);
			return tt_x_fail(x, what, err, "open %.*s: %s", (int)j, path, strerror(-err));
		}
		cur = next;
		i = j + 1;
	}
	*fd = cur;
	return 0;
}

/* The parent directory of path (cached in x->cfd, created if missing) and its last component. */
static int tt_parent(struct tt_extract *x, const char *path, int *pfd, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int fd, err;

	*leaf = slash ? slash + 1 : path;
	if (strlen(*leaf) > NAME_MAX)
		return tt_x_fail(x, path, -ENAMETOOLONG, "name longer than %d bytes", NAME_MAX);
	if (x->cfd >= 0 && strlen(x->cpath) == plen && memcmp(x->cpath, path, plen) == 0) {
		*pfd = x->cfd;
		return 0;
	}
	if ((err = tt_open_dir(x, path, path, plen, true, &fd)))
		return err;
	if (x->cfd >= 0)
		(void)close(x->cfd);
	x->cfd = fd;
	memcpy(x->cpath, path, plen);
	x->cpath[plen] = '\0';
	*pfd = fd;
	return 0;
}

/* A fresh temporary name in pfd (x->ftmp); with make, open it as an empty file (*fd). */
static int tt_tmpname(struct tt_extract *x, int pfd, bool make, int *fd)
{
	for (int i = 0; i < TT_TMP_TRIES; i++) {
		snprintf(x->ftmp, sizeof(x->ftmp), ".minivm-tar.%llu", (unsigned long long)x->tmpseq++);
		if (!make) {
			struct stat st;

			if (fstatat(pfd, x->ftmp, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
				return 0;
			continue;
		}
		*fd = openat(pfd, x->ftmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (*fd >= 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static uint32_t tt_uid(const struct tt_extract *x, const struct tar_entry *e)
{
	return x->owner_set ? x->uid : e->uid;
}

static uint32_t tt_gid(const struct tt_extract *x, const struct tar_entry *e)
{
	return x->owner_set ? x->gid : e->gid;
}

/* Rename x->ftmp over leaf in pfd; the temporary goes away either way. */
static int tt_commit(struct tt_extract *x, int pfd, const char *leaf, const char *path)
{
	int err;

	if (renameat(pfd, x->ftmp, pfd, leaf) != 0) {
		err = -errno;
		(void)unlinkat(pfd, x->ftmp, 0);
		if (err == -EISDIR || err == -ENOTEMPTY || err == -EEXIST)
			return tt_x_fail(x, path, err, "a directory is in the way");
		return tt_x_fail(x, path, err, "rename into place: %s", strerror(-err));
	}
	/* rename() of two names of one inode does nothing: then the temporary is still there. */
	(void)unlinkat(pfd, x->ftmp, 0);
	return 0;
}

/* The current file's data is complete: owner, mode, mtime, rename into place. */
static int tt_file_done(struct tt_extract *x)
{
	const struct tar_entry *e = &x->fmeta;
	struct timespec ts[2] = { { .tv_sec = (time_t)e->mtime }, { .tv_sec = (time_t)e->mtime } };
	int fd = x->ffd, err = 0;
	const char *what = "";

	x->ffd = -1;
	if (x->chown && fchown(fd, tt_uid(x, e), tt_gid(x, e)) != 0)
		what = "chown";
	else if (fchmod(fd, e->mode) != 0)
		what = "chmod";
	else if (futimens(fd, ts) != 0)
		what = "set mtime";
	if (what[0])
		err = -errno;
	if (close(fd) != 0 && !err) {
		err = -errno;
		what = "write";
	}
	if (err) {
		(void)unlinkat(x->cfd, x->ftmp, 0);
		return tt_x_fail(x, e->path, err, "%s: %s", what, strerror(-err));
	}
	return tt_commit(x, x->cfd, x->fname, e->path);
}

static int tt_defer_dir(struct tt_extract *x, const struct tar_entry *e)
{
	unsigned depth = 0;

	if (x->ndirs == TT_DIRS_MAX)
		return tt_x_fail(x, e->path, -E2BIG, "more than %u directories", TT_DIRS_MAX);
	if (x->ndirs == x->dcap) {
		size_t ncap = x->dcap ? x->dcap * 2 : 64;
		struct tt_dir *nv = reallocarray(x->dirs, ncap, sizeof(*nv));

		if (!nv)
			return tt_x_fail(x, e->path, -ENOMEM, "out of memory");
		x->dirs = nv;
		x->dcap = ncap;
	}
	for (const char *p = e->path; *p; p++)
		depth += *p == '/';
	x->dirs[x->ndirs].path = strdup(e->path);
	if (!x->dirs[x->ndirs].path)
		return tt_x_fail(x, e->path, -ENOMEM, "out of memory");
	x->dirs[x->ndirs].mode = e->mode;
	x->dirs[x->ndirs].mtime = e->mtime;
	x->dirs[x->ndirs].depth = depth;
	x->ndirs++;
	return 0;
}

static int tt_x_dir(struct tt_extract *x, const struct tar_entry *e, int pfd, const char *leaf)
{
	int fd, err;

	/* 0700 until the end: its entries must be creatable whatever its mode. */
	if (mkdirat(pfd, leaf, 0700) != 0 && errno != EEXIST)
		return tt_x_fail(x, e->path, -errno, "mkdir: %s", strerror(errno));
	fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ELOOP || err == -ENOTDIR)
			return tt_x_fail(x, e->path, -ENOTDIR, "exists and is not a directory");
		return tt_x_fail(x, e->path, err, "open: %s", strerror(-err));
	}
	if (x->chown && fchown(fd, tt_uid(x, e), tt_gid(x, e)) != 0) {
		err = -errno;
		(void)close(fd);
		return tt_x_fail(x, e->path, err, "chown: %s", strerror(-err));
	}
	(void)close(fd);
	return tt_defer_dir(x, e);
}

static int tt_x_symlink(struct tt_extract *x, const struct tar_entry *e, int pfd, const char *leaf)
{
	struct timespec ts[2] = { { .tv_sec = (time_t)e->mtime }, { .tv_sec = (time_t)e->mtime } };
	int err;

	if ((err = tt_tmpname(x, pfd, false, NULL)))
		return tt_x_fail(x, e->path, err, "no temporary name: %s", strerror(-err));
	/* The target is stored, never followed here: it may point anywhere. */
	if (symlinkat(e->link, pfd, x->ftmp) != 0)
		return tt_x_fail(x, e->path, -errno, "symlink: %s", strerror(errno));
	if (x->chown && fchownat(pfd, x->ftmp, tt_uid(x, e), tt_gid(x, e), AT_SYMLINK_NOFOLLOW) != 0) {
		err = -errno;
		(void)unlinkat(pfd, x->ftmp, 0);
		return tt_x_fail(x, e->path, err, "chown: %s", strerror(-err));
	}
	(void)utimensat(pfd, x->ftmp, ts, AT_SYMLINK_NOFOLLOW); /* not every fs has symlink times */
	return tt_commit(x, pfd, leaf, e->path);
}

static int tt_x_hardlink(struct tt_extract *x, const struct tar_entry *e, int pfd, const char *leaf)
{
	const char *slash = strrchr(e->link, '/');
	const char *tleaf = slash ? slash + 1 : e->link;
	int tfd, err;

	if (!tt_path_safe(e->link))
		return tt_x_fail(x, e->path, -EINVAL, "hard link target %s leaves the directory", e->link);
	if ((err = tt_open_dir(x, e->path, e->link, slash ? (size_t)(slash - e->link) : 0, false, &tfd)))
		return err;
	if ((err = tt_tmpname(x, pfd, false, NULL))) {
		(void)close(tfd);
		return tt_x_fail(x, e->path, err, "no temporary name: %s", strerror(-err));
	}
	/* flags 0: a symlink target is linked itself, never followed. */
	if (linkat(tfd, tleaf, pfd, x->ftmp, 0) != 0) {
		err = -errno;
		(void)close(tfd);
		return tt_x_fail(x, e->path, err, "hard link to %s: %s", e->link, strerror(-err));
	}
	(void)close(tfd);
	return tt_commit(x, pfd, leaf, e->path);
}

static int tt_x_entry(void *ctx, const struct tar_entry *e)
{
	struct tt_extract *x = ctx;
	const char *leaf = NULL;
	int pfd = -1, err;

	if (e->path[0] == '\0') {
		if (e->type == TAR_DIR)
			return 0; /* the root itself: DIR stays as it is */
		return tt_x_fail(x, "(root)", -EINVAL, "a non-directory entry for the root");
	}
	if (!tt_path_safe(e->path))
		return tt_x_fail(x, e->path, -EINVAL, "unsafe path (absolute or with ..)");
	if (e->type == TAR_CHR || e->type == TAR_BLK || e->type == TAR_FIFO)
		return tt_x_fail(x, e->path, -EPERM, "devices and fifos are not extracted");
	if (e->type != TAR_REG && e->type != TAR_DIR && e->type != TAR_SYMLINK && e->type != TAR_HARDLINK)
		return tt_x_fail(x, e->path, -EBADMSG, "unknown entry type %d", (int)e->type);
	if ((err = tt_parent(x, e->path, &pfd, &leaf)))
		return err;
	switch (e->type) {
	case TAR_DIR:
		return tt_x_dir(x, e, pfd, leaf);
	case TAR_SYMLINK:
		return tt_x_symlink(x, e, pfd, leaf);
	case TAR_HARDLINK:
		return tt_x_hardlink(x, e, pfd, leaf);
	default:
		break;
	}
	/* TAR_REG */
	if ((err = tt_tmpname(x, pfd, true, &x->ffd))) {
		x->ffd = -1;
		return tt_x_fail(x, e->path, err, "create a temporary file: %s", strerror(-err));
	}
	memcpy(&x->fmeta, e, sizeof(*e));
	memcpy(x->fname, leaf, strlen(leaf) + 1);
	x->fleft = e->size;
	return e->size == 0 ? tt_file_done(x) : 0;
}

static int tt_x_data(void *ctx, const void *buf, size_t len)
{
	struct tt_extract *x = ctx;
	const uint8_t *p = buf;

	if (x->ffd < 0 || len > x->fleft)
		return tt_x_fail(x, x->fmeta.path, -EBADMSG, "data without a file");
	while (len > 0) { /* bounded by len */
		ssize_t n = write(x->ffd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;

			(void)close(x->ffd);
			x->ffd = -1;
			(void)unlinkat(x->cfd, x->ftmp, 0);
			return tt_x_fail(x, x->fmeta.path, err, "write: %s", strerror(-err));
		}
		p += n;
		len -= (size_t)n;
		x->fleft -= (uint64_t)n;
	}
	return x->fleft == 0 ? tt_file_done(x) : 0;
}

static int tt_dir_cmp(const void *a, const void *b)
{
	const struct tt_dir *da = a, *db = b;

	/* Deepest first, so that a parent's mode cannot block its children. */
	if (da->depth != db->depth)
		return da->depth > db->depth ? -1 : 1;
	return strcmp(da->path, db->path);
}

/* The deferred directory modes and mtimes; 0 or 1 (after a message). */
static int tt_dirs_apply(struct tt_extract *x)
{
	if (x->ndirs > 1)
		qsort(x->dirs, x->ndirs, sizeof(*x->dirs), tt_dir_cmp);
	for (size_t i = 0; i < x->ndirs; i++) {
		const struct tt_dir *d = &x->dirs[i];
		struct timespec ts[2] = { { .tv_sec = (time_t)d->mtime }, { .tv_sec = (time_t)d->mtime } };
		int fd, err;

		if ((err = tt_open_dir(x, d->path, d->path, strlen(d->path), false, &fd))) {
			dprintf(STDERR_FILENO, TT_TAG "extract: %s\n", tar_reader_error(x->r));
			return 1;
		}
		if (fchmod(fd, d->mode) != 0 || futimens(fd, ts) != 0) {
			tt_err("extract", d->path, "chmod/set mtime: %s", strerror(errno));
			(void)close(fd);
			return 1;
		}
		(void)close(fd);
	}
	return 0;
}

/* mkdir -p dir, 0755 (dir is the host's choice: symlinks in it are followed). */
static int tt_mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -errno;
		p[i] = i < len ? '/' : '\0';
	}
	return 0;
}

static int tt_parse_owner(const char *s, uint32_t *uid, uint32_t *gid)
{
	uint32_t *out[2] = { uid, gid };

	for (int k = 0; k < 2; k++) {
		uint64_t v = 0;
		size_t digits = 0;

		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			v = v * 10 + (uint64_t)(*s - '0');
			if (v >= UINT32_MAX) /* (uint32_t)-1 means "unchanged" to chown */
				return -EINVAL;
		}
		if (digits == 0 || *s != (k == 0 ? ':' : '\0'))
			return -EINVAL;
		*out[k] = (uint32_t)v;
		s++;
	}
	return 0;
}

static int tt_extract(int argc, char **argv)
{
	static const struct tar_reader_ops ops = { .entry = tt_x_entry, .data = tt_x_data };
	struct tt_extract *x = calloc(1, sizeof(*x));
	const char *dir = NULL;
	uint8_t *buf = NULL;
	int err, status = 1;

	if (!x) {
		tt_err("extract", "", "out of memory");
		return 1;
	}
	x->root = x->cfd = x->ffd = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--owner") == 0 && i + 1 < argc) {
			if (tt_parse_owner(argv[++i], &x->uid, &x->gid)) {
				tt_err("extract", argv[i], "bad --owner (want UID:GID)");
				status = 2;
				goto out;
			}
			x->owner_set = true;
		} else if (argv[i][0] == '-' || dir) {
			tt_usage();
			status = 2;
			goto out;
		} else {
			dir = argv[i];
		}
	}
	if (!dir) {
		tt_usage();
		status = 2;
		goto out;
	}
	x->chown = x->owner_set || geteuid() == 0;
	if ((err = tt_mkdir_p(dir)) || (x->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tt_err("extract", dir, "%s", strerror(err ? -err : errno));
		goto out;
	}
	/* With --owner the target itself is the owner's too (a workspace the
	 * command, running as that user, must be able to add files to). */
	if (x->owner_set && fchown(x->root, x->uid, x->gid) != 0) {
		tt_err("extract", dir, "chown: %s", strerror(errno));
		goto out;
	}
	buf = malloc(TT_BUF);
	if (!buf || tar_reader_new(&ops, x, &x->r)) {
		tt_err("extract", "", "out of memory");
		goto out;
	}
	for (err = 0; !err;) { /* bounded by stdin's end */
		ssize_t n = read(STDIN_FILENO, buf, TT_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tt_err("extract", "", "reading the stream: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		err = tar_reader_feed(x->r, buf, (size_t)n);
	}
	if (!err)
		err = tar_reader_finish(x->r);
	if (err) {
		const char *msg = tar_reader_error(x->r);

		if (msg[0])
			dprintf(STDERR_FILENO, TT_TAG "extract: %s\n", msg);
		else
			tt_err("extract", "", "%s", err == -EPIPE ? "the stream is truncated" : strerror(-err));
		goto out;
	}
	status = tt_dirs_apply(x);
out:
	if (x->ffd >= 0) {
		(void)close(x->ffd);
		(void)unlinkat(x->cfd, x->ftmp, 0);
	}
	if (x->cfd >= 0)
		(void)close(x->cfd);
	if (x->root >= 0)
		(void)close(x->root);
	for (size_t i = 0; i < x->ndirs; i++)
		free(x->dirs[i].path);
	free(x->dirs);
	tar_reader_free(x->r);
	free(buf);
	free(x);
	return status;
}

int tartool_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return tt_create(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "extract") == 0)
		return tt_extract(argc - 1, argv + 1);
	tt_usage();
	return 2;
}
