/* minivm-runc's guest root: the bundle's rootfs directory (owners, modes, symlinks, hard links, devices kept; nothing followed) plus read-only binds and the agent, written as one ext4 image. */
#include "vmm/runc_rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "vmm/ext4img.h"

#define RUNC_WALK_DEPTH 256
#define RUNC_SYMLINK_HOPS 40
#define RUNC_AGENT_MAX (256u << 20)

static int runc_rf_err(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int runc_rf_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Hard links: the first path of each (dev, ino) with more than one name. */
struct runc_link {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct runc_walk {
	struct fstree *t;
	struct tar_entry *e;        /* scratch entry (large) */
	struct runc_link *links;
	size_t nlinks, caplinks;
	char *buf;                  /* copy buffer */
	char *err;
	size_t errlen;
};

#define RUNC_COPY_BUF (256u << 10)

static const char *runc_link_find(struct runc_walk *w, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].dev == dev && w->links[i].ino == ino)
			return w->links[i].path;
	return NULL;
}

static int runc_link_add(struct runc_walk *w, dev_t dev, ino_t ino, const char *path)
{
	if (w->nlinks == w->caplinks) {
		size_t cap = w->caplinks ? w->caplinks * 2 : 64;
		struct runc_link *n = realloc(w->links, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->links = n;
		w->caplinks = cap;
	}
	w->links[w->nlinks].path = strdup(path);
	if (!w->links[w->nlinks].path)
		return -ENOMEM;
	w->links[w->nlinks].dev = dev;
	w->links[w->nlinks++].ino = ino;
	return 0;
}

/*
 * A relative symlink target that climbs above the root lexically (the
 * kernel stops ".." at the root) becomes the absolute path it reaches, as
 * fstree keeps absolute targets and refuses escaping relative ones.
 */
static void runc_clamp_symlink(const char *path, char *target, size_t size)
{
	char res[TAR_PATH_MAX + 1] = "", rest[TAR_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	int depth = 0, min_depth = 0;
	char *tok, *save = NULL;

	if (target[0] == '/')
		return;
	/* depth of the link's directory: one per '/' in its path */
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	min_depth = depth;
	snprintf(rest, sizeof(rest), "%s", target);
	for (tok = strtok_r(rest, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, "..") == 0)
			depth--;
		else if (strcmp(tok, ".") != 0)
			depth++;
		if (depth < min_depth)
			min_depth = depth;
	}
	if (min_depth >= 0)
		return; /* stays inside: kept as written */
	/* Resolve lexically from the link's directory, clamping at the root. */
	if (slash)
		snprintf(res, sizeof(res), "%.*s", (int)(slash - path), path);
	snprintf(rest, sizeof(rest), "%s", target);
	save = NULL;
	for (tok = strtok_r(rest, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			char *s = strrchr(res, '/');

			if (s)
				*s = '\0';
			else
				res[0] = '\0';
			continue;
		}
		if (strlen(res) + strlen(tok) + 2 > sizeof(res))
			return;
		if (res[0])
			strcat(res, "/");
		strcat(res, tok);
	}
	snprintf(target, size, "/%s", res);
}

static int runc_add(struct runc_walk *w)
{
	int r = fstree_add(w->t, w->e, w->err, w->errlen);

	if (r && w->err && !w->err[0])
		runc_rf_err(w->err, w->errlen, r, "%s: %s", w->e->path, strerror(-r));
	return r;
}

/* Adds one regular file's data from fd (size bytes, as stat said). */
static int runc_add_data(struct runc_walk *w, int fd, uint64_t size, const char *host)
{
	uint64_t done = 0;

	while (done < size) {
		size_t want = size - done > RUNC_COPY_BUF ? RUNC_COPY_BUF : (size_t)(size - done);
		ssize_t n = read(fd, w->buf, want);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return runc_rf_err(w->err, w->errlen, -errno, "%s: %s", host, strerror(errno));
		if (n == 0)
			return runc_rf_err(w->err, w->errlen, -EIO, "%s: changed while being copied", host);
		r = fstree_add_data(w->t, w->buf, (size_t)n, w->err, w->errlen);
		if (r)
			return r;
		done += (uint64_t)n;
	}
	return 0;
}

/* Fills w->e's metadata from st (path already set). */
static void runc_meta(struct runc_walk *w, const struct stat *st)
{
	w->e->mode = st->st_mode & 07777;
	w->e->uid = st->st_uid;
	w->e->gid = st->st_gid;
	w->e->mtime = st->st_mtim.tv_sec;
	w->e->size = 0;
	w->e->link[0] = '\0';
	w->e->devmajor = w->e->devminor = 0;
}

static int runc_walk_dir(struct runc_walk *w, int dfd, const char *prefix, unsigned int depth);

/*
 * One entry `name` of directory dfd (or, with name NULL, dfd's own file
 * given by st) at tree path `path`.
 */
static int runc_walk_entry(struct runc_walk *w, int dfd, const char *name, const char *path,
			   const struct stat *st, unsigned int depth)
{
	char host[64];
	int r, fd;

	snprintf(host, sizeof(host), "%.40s", name ? name : path);
	if (snprintf(w->e->path, sizeof(w->e->path), "%s", path) >= (int)sizeof(w->e->path))
		return runc_rf_err(w->err, w->errlen, -ENAMETOOLONG, "%s: path too long", path);
	runc_meta(w, st);
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		if (depth >= RUNC_WALK_DEPTH)
			return runc_rf_err(w->err, w->errlen, -ELOOP, "%s: nested deeper than %d", path,
					   RUNC_WALK_DEPTH);
		w->e->type = TAR_DIR;
		if (path[0] && (r = runc_add(w)))
			return r;
		fd = name ? openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			  : dup(dfd);
		if (fd < 0)
			return runc_rf_err(w->err, w->errlen, -errno, "%s: %s", path, strerror(errno));
		r = runc_walk_dir(w, fd, path, depth + 1); /* closes fd */
		if (r)
			return r;
		return 0;
	case S_IFREG:
		if (st->st_nlink > 1) {
			const char *first = runc_link_find(w, st->st_dev, st->st_ino);

			if (first) {
				w->e->type = TAR_HARDLINK;
				snprintf(w->e->link, sizeof(w->e->link), "%s", first);
				return runc_add(w);
			}
			if ((r = runc_link_add(w, st->st_dev, st->st_ino, path)))
				return runc_rf_err(w->err, w->errlen, r, "out of memory");
		}
		w->e->type = TAR_REG;
		w->e->size = (uint64_t)st->st_size;
		fd = name ? openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
			  : dup(dfd);
		if (fd < 0)
			return runc_rf_err(w->err, w->errlen, -errno, "%s: %s", path, strerror(errno));
		r = runc_add(w);
		if (!r)
			r = runc_add_data(w, fd, w->e->size, path);
		close(fd);
		return r;
	case S_IFLNK: {
		ssize_t n;

		if (!name)
			return runc_rf_err(w->err, w->errlen, -EINVAL, "%s: a symlink", path);
		n = readlinkat(dfd, name, w->e->link, sizeof(w->e->link) - 1);
		if (n < 0)
			return runc_rf_err(w->err, w->errlen, -errno, "%s: %s", path, strerror(errno));
		if (n == 0)
			return 0; /* an empty target: nothing a kernel would follow; dropped */
		w->e->link[n] = '\0';
		runc_clamp_symlink(path, w->e->link, sizeof(w->e->link));
		w->e->type = TAR_SYMLINK;
		return runc_add(w);
	}
	case S_IFCHR:
	case S_IFBLK:
		w->e->type = S_ISCHR(st->st_mode) ? TAR_CHR : TAR_BLK;
		w->e->devmajor = major(st->st_rdev);
		w->e->devminor = minor(st->st_rdev);
		return runc_add(w);
	case S_IFIFO:
		w->e->type = TAR_FIFO;
		return runc_add(w);
	default:
		return 0; /* sockets: meaningless in another kernel */
	}
}

static int runc_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks directory fd (closed here) whose tree path is prefix. */
static int runc_walk_dir(struct runc_walk *w, int fd, const char *prefix, unsigned int depth)
{
	DIR *d = fdopendir(fd);
	char **names = NULL, *path = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = -errno;
		close(fd);
		return runc_rf_err(w->err, w->errlen, r, "%s: %s", prefix[0] ? prefix : "/",
				   strerror(-r));
	}
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nn = realloc(names, nc * sizeof(*nn));

			if (!nn) {
				r = -ENOMEM;
				goto out;
			}
			names = nn;
			cap = nc;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (errno) {
		r = runc_rf_err(w->err, w->errlen, -errno, "%s: %s", prefix, strerror(errno));
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), runc_name_cmp);
	path = malloc(TAR_PATH_MAX + 2);
	if (!path) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !r; i++) {
		struct stat st;

		if (snprintf(path, TAR_PATH_MAX + 2, "%s%s%s", prefix, prefix[0] ? "/" : "", names[i]) >
		    TAR_PATH_MAX) {
			r = runc_rf_err(w->err, w->errlen, -ENAMETOOLONG, "%s/%s: path too long", prefix,
					names[i]);
			break;
		}
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			r = runc_rf_err(w->err, w->errlen, -errno, "%s: %s", path, strerror(errno));
			break;
		}
		r = runc_walk_entry(w, dirfd(d), names[i], path, &st, depth);
	}
out:
	if (r == -ENOMEM && w->err && !w->err[0])
		runc_rf_err(w->err, w->errlen, r, "out of memory");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	closedir(d);
	return r;
}

/*
 * Resolves the directory path dir (clean, relative) in t the way the guest
 * kernel would, following symlinks (absolute targets from the root);
 * missing components are kept (fstree_add makes them). As oci_rootfs.c's.
 */
static int runc_resolve_dir(struct fstree *t, const char *dir, char *out, size_t outsz)
{
	char rest[TAR_PATH_MAX + 1], cur[TAR_PATH_MAX + 1] = "", cand[TAR_PATH_MAX + 1];
	unsigned int hops = 0;

	if (snprintf(rest, sizeof(rest), "%s", dir) >= (int)sizeof(rest))
		return -ENAMETOOLONG;
	while (rest[0]) {
		char comp[256], *slash = strchr(rest, '/');
		size_t cl = slash ? (size_t)(slash - rest) : strlen(rest);
		struct fstree_node *n;

		if (cl >= sizeof(comp))
			return -ENAMETOOLONG;
		memcpy(comp, rest, cl);
		comp[cl] = '\0';
		memmove(rest, slash ? slash + 1 : rest + cl, strlen(slash ? slash + 1 : rest + cl) + 1);
		if (!comp[0] || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *s = strrchr(cur, '/');

			if (s)
				*s = '\0';
			else
				cur[0] = '\0';
			continue;
		}
		if (snprintf(cand, sizeof(cand), "%s%s%s", cur, cur[0] ? "/" : "", comp) >=
		    (int)sizeof(cand))
			return -ENAMETOOLONG;
		n = fstree_lookup(t, cand);
		if (n && n->type == TAR_SYMLINK && n->link) {
			char nrest[TAR_PATH_MAX + 1];

			if (++hops > RUNC_SYMLINK_HOPS)
				return -ELOOP;
			if (snprintf(nrest, sizeof(nrest), "%s%s%s", n->link, rest[0] ? "/" : "", rest) >=
			    (int)sizeof(nrest))
				return -ENAMETOOLONG;
			if (n->link[0] == '/')
				cur[0] = '\0';
			memcpy(rest, nrest, sizeof(rest));
			continue;
		}
		memcpy(cur, cand, sizeof(cur));
	}
	if (snprintf(out, outsz, "%s", cur) >= (int)outsz)
		return -ENAMETOOLONG;
	return 0;
}

/* A guest path ("/a/b") as the tree's relative path, its parent resolved through symlinks. */
static int runc_guest_path(struct fstree *t, const char *dest, char *out, size_t size)
{
	char parent[TAR_PATH_MAX + 1], base[256];
	const char *p = dest, *slash;
	int r;

	while (*p == '/')
		p++;
	slash = strrchr(p, '/');
	if (!*p)
		return -EINVAL;
	if (snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - p) : 0, p) >=
	    (int)sizeof(parent) ||
	    snprintf(base, sizeof(base), "%s", slash ? slash + 1 : p) >= (int)sizeof(base))
		return -ENAMETOOLONG;
	if (!base[0] || strcmp(base, "..") == 0 || strcmp(base, ".") == 0)
		return -EINVAL;
	r = runc_resolve_dir(t, parent, parent, sizeof(parent));
	if (r)
		return r;
	if (snprintf(out, size, "%s%s%s", parent, parent[0] ? "/" : "", base) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* A directory at the guest path dest unless something is there. */
static int runc_add_dir(struct runc_walk *w, const char *dest, uint32_t mode)
{
	char path[TAR_PATH_MAX + 1];
	int r = runc_guest_path(w->t, dest, path, sizeof(path));

	if (r)
		return runc_rf_err(w->err, w->errlen, r, "mount point %s: %s", dest, strerror(-r));
	if (fstree_lookup(w->t, path))
		return 0;
	memset(w->e, 0, sizeof(*w->e));
	w->e->type = TAR_DIR;
	w->e->mode = mode;
	snprintf(w->e->path, sizeof(w->e->path), "%s", path);
	return runc_add(w);
}

/* A bind mount of the spec: a copy of its source at create time, or a refusal. */
static int runc_add_bind(struct runc_walk *w, const struct runc_mount *m)
{
	char path[TAR_PATH_MAX + 1];
	bool etc_file;
	struct stat st;
	int fd, r;

	fd = open(m->source, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return runc_rf_err(w->err, w->errlen, r, "mounts: bind source %s (for %s): %s",
				   m->source, m->destination, strerror(-r));
	}
	etc_file = S_ISREG(st.st_mode) && strncmp(m->destination, "/etc/", 5) == 0;
	if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) || (!m->readonly && !etc_file)) {
		close(fd);
		return runc_rf_err(w->err, w->errlen, -EINVAL,
				   "mounts: bind of %s at %s: a VM shares no host directory; minivm "
				   "copies read-only binds (option \"ro\") and files bound into /etc "
				   "into the VM's root when the container is created, and refuses "
				   "writable binds of anything else",
				   m->source, m->destination);
	}
	r = runc_guest_path(w->t, m->destination, path, sizeof(path));
	if (r) {
		close(fd);
		return runc_rf_err(w->err, w->errlen, r, "mounts: %s: %s", m->destination, strerror(-r));
	}
	r = runc_walk_entry(w, fd, NULL, path, &st, 0); /* dup()s fd where it keeps one */
	close(fd);
	if (r && w->err && !strstr(w->err, m->source)) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", w->err);
		runc_rf_err(w->err, w->errlen, r, "mounts: bind of %s at %s: %s", m->source,
			    m->destination, msg);
	}
	return r;
}

static int runc_add_agent(struct runc_walk *w, const char *agent_bin)
{
	char dir[TAR_PATH_MAX + 1];
	struct stat st;
	int fd, r;

	fd = open(agent_bin, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > RUNC_AGENT_MAX) {
		r = fd < 0 ? -errno : -EINVAL;
		if (fd >= 0)
			close(fd);
		return runc_rf_err(w->err, w->errlen, r, "the agent binary %s: %s (build it with 'make "
							 "rootfs', or name it with MINIVM_AGENT_INIT)",
				   agent_bin, r == -EINVAL ? "not a regular file of a sane size" :
				   strerror(-r));
	}
	r = runc_resolve_dir(w->t, "sbin", dir, sizeof(dir));
	if (r) {
		close(fd);
		return runc_rf_err(w->err, w->errlen, r, "the root's /sbin: %s", strerror(-r));
	}
	memset(w->e, 0, sizeof(*w->e));
	if (snprintf(w->e->path, sizeof(w->e->path), "%s%sminivm-init", dir, dir[0] ? "/" : "") >=
	    (int)sizeof(w->e->path)) {
		close(fd);
		return runc_rf_err(w->err, w->errlen, -ENAMETOOLONG, "the root's /sbin: path too long");
	}
	w->e->type = TAR_REG;
	w->e->mode = 0755;
	w->e->size = (uint64_t)st.st_size;
	r = runc_add(w);
	if (!r)
		r = runc_add_data(w, fd, w->e->size, agent_bin);
	close(fd);
	return r;
}

int runc_rootfs_build(const struct runc_spec *s, const char *rootfs_dir, const char *agent_bin,
		      const char *spool_dir, const char *image, char *err, size_t errlen)
{
	static const char *const dirs[] = { "/dev", "/proc", "/sys", "/run", "/tmp", "/mnt" };
	struct runc_walk w = { .err = err, .errlen = errlen };
	struct ext4img_opts o;
	struct stat st;
	int fd = -1, r;

	if (err && errlen)
		err[0] = '\0';
	w.e = calloc(1, sizeof(*w.e));
	w.buf = malloc(RUNC_COPY_BUF);
	if (!w.e || !w.buf) {
		r = runc_rf_err(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	fd = open(rootfs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		r = runc_rf_err(err, errlen, -errno, "the bundle's rootfs %s: %s", rootfs_dir,
				strerror(errno));
		goto out;
	}
	r = fstree_new(spool_dir, NULL, &w.t, err, errlen);
	if (r)
		goto out;
	/* The root's own metadata, then everything under it. */
	{
		struct fstree_node *root = fstree_root(w.t);

		root->mode = st.st_mode & 07777;
		root->uid = st.st_uid;
		root->gid = st.st_gid;
		root->mtime = st.st_mtim.tv_sec;
	}
	r = runc_walk_entry(&w, fd, NULL, "", &st, 0);
	if (r)
		goto out;
	for (unsigned int i = 0; i < s->nmounts && !r; i++) {
		if (s->mounts[i].kind == RUNC_MOUNT_BIND)
			r = runc_add_bind(&w, &s->mounts[i]);
		else if (!s->mounts[i].bind) /* an ignored bind (under /dev) gets nothing */
			r = runc_add_dir(&w, s->mounts[i].destination, 0755);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !r; i++)
		r = runc_add_dir(&w, dirs[i], strcmp(dirs[i], "/tmp") == 0 ? 01777 : 0755);
	if (!r)
		r = runc_add_agent(&w, agent_bin);
	if (r)
		goto out;
	memset(&o, 0, sizeof(o));
	o.label = "minivm-runc";
	o.time = 1;
	r = ext4img_write(w.t, image, &o, err, errlen);
out:
	if (fd >= 0)
		close(fd);
	fstree_free(w.t);
	for (size_t i = 0; i < w.nlinks; i++)
		free(w.links[i].path);
	free(w.links);
	free(w.buf);
	free(w.e);
	return r;
}
