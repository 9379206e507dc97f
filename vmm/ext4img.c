/* ext4 images from and to the in-memory file tree, with libext2fs: the writer formats and fills a new image deterministically, the reader walks a (hostile) image into a tree. */
#include "vmm/ext4img.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#define E4_BLOCK 4096U
#define E4_INODE_SIZE 256U
#define E4_BUF (64U * 1024)
/* Bytes of inode past the 128 of the original layout that we fill in:
 * the extra time fields and the creation time. */
#define E4_EXTRA_ISIZE ((uint16_t)(sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE))
/* Kernel limits: a 12-bit major and a 20-bit minor (new_encode_dev). */
#define E4_MAJOR_MAX 0xfffU
#define E4_MINOR_MAX 0xfffffU
/* The time range 32 bits plus 2 epoch bits hold (ext4_decode_extra_time). */
#define E4_TIME_MIN ((int64_t)INT32_MIN)
#define E4_TIME_MAX ((int64_t)INT32_MAX + (3LL << 32))

static int e4_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int e4_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ext4's 34-bit times: the low 32 bits signed, 2 epoch bits in *_extra
 * (nanoseconds stay 0). Out-of-range times are clamped. */
static void e4_time_set(uint32_t *lo, uint32_t *extra, int64_t t)
{
	int64_t s;

	if (t < E4_TIME_MIN)
		t = E4_TIME_MIN;
	if (t > E4_TIME_MAX)
		t = E4_TIME_MAX;
	*lo = (uint32_t)t;
	s = (int32_t)*lo;
	*extra = (uint32_t)(((t - s) >> 32) & EXT4_EPOCH_MASK);
}

static int64_t e4_time_get(uint32_t lo, uint32_t extra)
{
	return (int64_t)(int32_t)lo + ((int64_t)(extra & EXT4_EPOCH_MASK) << 32);
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */

/* The names of one hard-linked file: its link_id, how many, its inode once made. */
struct e4_link {
	uint64_t id;
	uint64_t blocks; /* what its data takes, counted once */
	uint32_t count;
	ext2_ino_t ino;
};

struct e4_dir {
	ext2_ino_t ino;
	const struct fstree_node *n;
};

struct e4w {
	ext2_filsys fs;
	struct fstree *t;
	const char *img;
	char *err;
	size_t errlen;
	struct e4_link *links;
	size_t nlinks, caplinks;
	struct e4_dir *dirs;
	size_t ndirs, capdirs;
	uint64_t inodes, blocks; /* what the tree needs (plan) */
	char *buf;               /* E4_BUF bytes */
	char path[TAR_PATH_MAX + 1];
};

/* The node after n in a depth-first walk of the tree under root, or NULL at
 * the end; *up is how many directories the walk climbed out of (0 when it
 * went down into n's first child). */
static struct fstree_node *e4_next(const struct fstree_node *root, struct fstree_node *n,
				   size_t *up)
{
	*up = 0;
	if (n->type == TAR_DIR && n->child)
		return n->child;
	while (!n->next) {
		n = n->parent;
		if (!n || n == root)
			return NULL;
		(*up)++;
	}
	return n->next;
}

static const char *e4w_path(struct e4w *w, const struct fstree_node *n)
{
	if (fstree_path(n, w->path, sizeof(w->path)) != 0)
		snprintf(w->path, sizeof(w->path), ".../%s", n->name);
	return w->path[0] ? w->path : "/";
}

/* Blocks for a file of size bytes: data plus extent tree blocks once it
 * needs more than the 4 extents the inode holds (an extent maps at most
 * 32768 blocks; allow for breaks at group metadata). */
static uint64_t e4_file_blocks(uint64_t size)
{
	uint64_t d = size / E4_BLOCK + (size % E4_BLOCK != 0);
	uint64_t extents = d / 16384 + 2;

	return d + (extents > 4 ? extents / 340 + 2 : 0);
}

static int e4_link_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct e4_link *)a)->id, y = ((const struct e4_link *)b)->id;

	return x < y ? -1 : x > y;
}

static struct e4_link *e4w_link_find(struct e4w *w, uint64_t id)
{
	struct e4_link key = { .id = id };

	return bsearch(&key, w->links, w->nlinks, sizeof(key), e4_link_cmp);
}

/* Checks one directory's children: names, and its subdirectory count. */
static int e4w_plan_dir(struct e4w *w, const struct fstree_node *d)
{
	uint64_t bytes = 0, subdirs = 0, n = 0;

	for (const struct fstree_node *c = d->child; c; c = c->next) {
		size_t len = strlen(c->name);

		if (len == 0 || len > EXT2_NAME_LEN || strchr(c->name, '/') ||
		    !strcmp(c->name, ".") || !strcmp(c->name, ".."))
			return e4_fail(w->err, w->errlen, -EINVAL,
				       "%s: %s: a name ext4 cannot hold (%zu bytes)", w->img,
				       e4w_path(w, c), len);
		bytes += 8 + ((len + 3) & ~(size_t)3);
		subdirs += c->type == TAR_DIR;
		n++;
	}
	if (subdirs > EXT2_LINK_MAX - 2)
		return e4_fail(w->err, w->errlen, -EMLINK,
			       "%s: %s: %llu subdirectories, more than ext4's %u", w->img,
			       e4w_path(w, d), (unsigned long long)subdirs, EXT2_LINK_MAX - 2);
	/* Linear directory blocks, filled to about three quarters. */
	w->blocks += bytes / 3072 + 2 + n / 256;
	return 0;
}

/* First pass: validates every node and sums what the image needs. */
static int e4w_plan(struct e4w *w)
{
	struct fstree_node *root = fstree_root(w->t), *n;
	size_t up, j = 0;
	int r;

	w->inodes = EXT2_GOOD_OLD_FIRST_INO + 1; /* reserved ones, lost+found */
	w->blocks = 8;                           /* root and lost+found */
	r = e4w_plan_dir(w, root);
	for (n = root->child; n && !r; n = e4_next(root, n, &up)) {
		switch (n->type) {
		case TAR_DIR:
			w->inodes++;
			r = e4w_plan_dir(w, n);
			break;
		case TAR_REG:
			if (n->link_id) {
				if (w->nlinks == w->caplinks) {
					size_t cap = w->caplinks ? 2 * w->caplinks : 64;
					struct e4_link *nl = realloc(w->links, cap * sizeof(*nl));

					if (!nl)
						return e4_fail(w->err, w->errlen, -ENOMEM,
							       "%s: out of memory", w->img);
					w->links = nl;
					w->caplinks = cap;
				}
				w->links[w->nlinks++] = (struct e4_link){
					.id = n->link_id, .blocks = e4_file_blocks(n->size), .count = 1
				};
				break;
			}
			w->inodes++;
			w->blocks += e4_file_blocks(n->size);
			break;
		case TAR_SYMLINK: {
			size_t len = n->link ? strlen(n->link) : 0;

			if (len == 0 || len > TAR_PATH_MAX)
				return e4_fail(w->err, w->errlen, -EINVAL,
					       "%s: %s: a symlink target of %zu bytes", w->img,
					       e4w_path(w, n), len);
			w->inodes++;
			w->blocks += len >= sizeof(((struct ext2_inode *)0)->i_block);
			break;
		}
		case TAR_CHR:
		case TAR_BLK:
			if (n->devmajor > E4_MAJOR_MAX || n->devminor > E4_MINOR_MAX)
				return e4_fail(w->err, w->errlen, -EINVAL,
					       "%s: %s: device %u:%u does not fit ext4", w->img,
					       e4w_path(w, n), n->devmajor, n->devminor);
			w->inodes++;
			break;
		case TAR_FIFO:
			w->inodes++;
			break;
		default:
			return e4_fail(w->err, w->errlen, -EINVAL, "%s: %s: node of type %d",
				       w->img, e4w_path(w, n), (int)n->type);
		}
	}
	if (r)
		return r;
	/* One inode per link_id, its data counted once. */
	if (w->nlinks)
		qsort(w->links, w->nlinks, sizeof(*w->links), e4_link_cmp);
	for (size_t i = 0; i < w->nlinks; i++) {
		if (j && w->links[j - 1].id == w->links[i].id) {
			if (w->links[j - 1].count >= EXT2_LINK_MAX)
				return e4_fail(w->err, w->errlen, -EMLINK,
					       "%s: more than %u names for one file (link id %llu)",
					       w->img, EXT2_LINK_MAX,
					       (unsigned long long)w->links[i].id);
			w->links[j - 1].count++;
			continue;
		}
		w->links[j++] = w->links[i];
		w->inodes++;
		w->blocks += w->links[i].blocks;
	}
	w->nlinks = j;
	return 0;
}

/* Image size and inode count for the plan: data and directories, inode
 * tables, bitmaps and descriptors, then a tenth and EXT4IMG_HEADROOM more. */
static int e4w_size(struct e4w *w, uint64_t min_size, uint64_t *size, uint32_t *inodes)
{
	uint64_t ino = w->inodes, blocks = w->blocks, groups, meta, total, s;

	ino += ino / 10 + 1024;
	if (ino > UINT32_MAX / 2)
		return e4_fail(w->err, w->errlen, -EFBIG, "%s: %llu inodes: too many for ext4",
			       w->img, (unsigned long long)ino);
	groups = blocks / 32768 + 1;
	meta = ino * E4_INODE_SIZE / E4_BLOCK + 1 + groups * (4 + (groups * 64) / E4_BLOCK + 1);
	if (__builtin_add_overflow(blocks, meta, &total) ||
	    __builtin_mul_overflow(total, (uint64_t)E4_BLOCK, &total) ||
	    __builtin_add_overflow(total, total / 10 + EXT4IMG_HEADROOM, &s) ||
	    s > (1ULL << 50))
		return e4_fail(w->err, w->errlen, -EFBIG, "%s: the tree needs too large an image",
			       w->img);
	if (min_size > (1ULL << 50))
		return e4_fail(w->err, w->errlen, -EFBIG, "%s: min_size %llu is too large", w->img,
			       (unsigned long long)min_size);
	if (min_size > s) {
		s = min_size;
		/* Room the caller asked for: an inode per 64 KiB of it. */
		if (s / 65536 > ino)
			ino = s / 65536 < UINT32_MAX / 2 ? s / 65536 : UINT32_MAX / 2;
	}
	s = (s + E4_BLOCK - 1) / E4_BLOCK * E4_BLOCK;
	*size = s;
	*inodes = (uint32_t)ino;
	return 0;
}

/* ext2fs_link, growing the directory when it is full. */
static errcode_t e4w_link(struct e4w *w, ext2_ino_t dir, const char *name, ext2_ino_t ino, int ft)
{
	errcode_t ec = ext2fs_link(w->fs, dir, name, ino, ft);

	if (ec == EXT2_ET_DIR_NO_SPACE) {
		ec = ext2fs_expand_dir(w->fs, dir);
		if (!ec)
			ec = ext2fs_link(w->fs, dir, name, ino, ft);
	}
	return ec;
}

/* Mode, owner, times and the large-inode fields from the node. */
static void e4_meta(struct ext2_inode_large *in, uint16_t ifmt, uint32_t mode, uint32_t uid,
		    uint32_t gid, int64_t mtime)
{
	in->i_mode = (uint16_t)(ifmt | (mode & 07777));
	in->i_uid = (uint16_t)uid;
	ext2fs_set_i_uid_high(*in, (uint16_t)(uid >> 16));
	in->i_gid = (uint16_t)gid;
	ext2fs_set_i_gid_high(*in, (uint16_t)(gid >> 16));
	in->i_extra_isize = E4_EXTRA_ISIZE;
	e4_time_set(&in->i_atime, &in->i_atime_extra, mtime);
	e4_time_set(&in->i_ctime, &in->i_ctime_extra, mtime);
	e4_time_set(&in->i_mtime, &in->i_mtime_extra, mtime);
	e4_time_set(&in->i_crtime, &in->i_crtime_extra, mtime);
}

static errcode_t e4w_inode_write(struct e4w *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
	return ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)in, sizeof(*in));
}

static int e4w_dir_push(struct e4w *w, ext2_ino_t ino, const struct fstree_node *n)
{
	if (w->ndirs == w->capdirs) {
		size_t cap = w->capdirs ? 2 * w->capdirs : 256;
		struct e4_dir *nd = realloc(w->dirs, cap * sizeof(*nd));

		if (!nd)
			return e4_fail(w->err, w->errlen, -ENOMEM, "%s: out of memory", w->img);
		w->dirs = nd;
		w->capdirs = cap;
	}
	w->dirs[w->ndirs++] = (struct e4_dir){ .ino = ino, .n = n };
	return 0;
}

/* Copies a regular file's data from the tree's spool into inode ino. */
static int e4w_data(struct e4w *w, const struct fstree_node *n, ext2_ino_t ino)
{
	ext2_file_t f;
	errcode_t ec, ec2;
	uint64_t off = 0;

	ec = ext2fs_file_open(w->fs, ino, EXT2_FILE_WRITE, &f);
	if (ec)
		return e4_fail(w->err, w->errlen, -EIO, "%s: %s: opening: %s", w->img,
			       e4w_path(w, n), error_message(ec));
	while (off < n->size) {
		size_t want = n->size - off < E4_BUF ? (size_t)(n->size - off) : E4_BUF;
		ssize_t got = fstree_read(w->t, n, off, w->buf, want);
		unsigned int done = 0;

		if (got <= 0) {
			(void)ext2fs_file_close(f);
			return e4_fail(w->err, w->errlen, got < 0 ? (int)got : -EIO,
				       "%s: %s: reading the tree's data at %llu: %s", w->img,
				       e4w_path(w, n), (unsigned long long)off,
				       got < 0 ? strerror((int)-got) : "short");
		}
		ec = ext2fs_file_write(f, w->buf, (unsigned int)got, &done);
		if (ec || done != (unsigned int)got) {
			(void)ext2fs_file_close(f);
			return e4_fail(w->err, w->errlen, -EIO, "%s: %s: writing at %llu: %s",
				       w->img, e4w_path(w, n), (unsigned long long)off,
				       ec ? error_message(ec) : "short write");
		}
		off += (uint64_t)got;
	}
	ec2 = ext2fs_file_close(f);
	if (ec2)
		return e4_fail(w->err, w->errlen, -EIO, "%s: %s: closing: %s", w->img,
			       e4w_path(w, n), error_message(ec2));
	return 0;
}

/* Makes node n (not the root) in directory parent; *ino is its inode. */
static int e4w_node(struct e4w *w, const struct fstree_node *n, ext2_ino_t parent,
		    ext2_ino_t *ino)
{
	struct ext2_inode_large in;
	struct e4_link *l = NULL;
	const char *what = "allocating an inode";
	uint16_t ifmt;
	errcode_t ec;
	int ft = 0;

	memset(&in, 0, sizeof(in));
	switch (n->type) {
	case TAR_DIR:
		ifmt = LINUX_S_IFDIR;
		break;
	case TAR_SYMLINK:
		ifmt = LINUX_S_IFLNK;
		break;
	case TAR_CHR:
		ifmt = LINUX_S_IFCHR, ft = EXT2_FT_CHRDEV;
		break;
	case TAR_BLK:
		ifmt = LINUX_S_IFBLK, ft = EXT2_FT_BLKDEV;
		break;
	case TAR_FIFO:
		ifmt = LINUX_S_IFIFO, ft = EXT2_FT_FIFO;
		break;
	default:
		ifmt = LINUX_S_IFREG, ft = EXT2_FT_REG_FILE;
		if (n->link_id) {
			l = e4w_link_find(w, n->link_id);
			if (l && l->ino) {
				/* Another name of a file already made. */
				*ino = l->ino;
				what = "linking";
				ec = e4w_link(w, parent, n->name, l->ino, EXT2_FT_REG_FILE);
				goto out;
			}
		}
		break;
	}
	ec = ext2fs_new_inode(w->fs, parent, ifmt | 0755, 0, ino);
	if (ec)
		goto out;
	if (n->type == TAR_DIR) {
		what = "making the directory";
		ec = ext2fs_mkdir(w->fs, parent, *ino, n->name);
		if (ec == EXT2_ET_DIR_NO_SPACE) {
			ec = ext2fs_expand_dir(w->fs, parent);
			if (!ec)
				ec = ext2fs_mkdir(w->fs, parent, *ino, n->name);
		}
		if (ec)
			goto out;
		/* Its metadata is set at the end: links and growth change it. */
		return e4w_dir_push(w, *ino, n);
	}
	if (n->type == TAR_SYMLINK) {
		what = "making the symlink";
		ec = ext2fs_symlink(w->fs, parent, *ino, n->name, n->link);
		if (ec == EXT2_ET_DIR_NO_SPACE) {
			ec = ext2fs_expand_dir(w->fs, parent);
			if (!ec)
				ec = ext2fs_symlink(w->fs, parent, *ino, n->name, n->link);
		}
		if (!ec)
			ec = ext2fs_read_inode_full(w->fs, *ino, (struct ext2_inode *)&in,
						    sizeof(in));
		if (ec)
			goto out;
		e4_meta(&in, ifmt, n->mode, n->uid, n->gid, n->mtime);
		what = "writing the inode";
		ec = e4w_inode_write(w, *ino, &in);
		goto out;
	}
	what = "linking";
	ec = e4w_link(w, parent, n->name, *ino, ft);
	if (ec)
		goto out;
	ext2fs_inode_alloc_stats2(w->fs, *ino, +1, 0);
	e4_meta(&in, ifmt, n->mode, n->uid, n->gid, n->mtime);
	in.i_links_count = (uint16_t)(l ? l->count : 1);
	if (n->type == TAR_CHR || n->type == TAR_BLK) {
		/* As the kernel encodes it: the old 8:8 form when it fits. */
		if (n->devmajor < 256 && n->devminor < 256) {
			in.i_block[0] = n->devmajor << 8 | n->devminor;
		} else {
			in.i_block[1] = (n->devminor & 0xff) | n->devmajor << 8 |
					(n->devminor & ~0xffU) << 12;
		}
	} else if (n->type == TAR_REG) {
		ext2_extent_handle_t h;

		what = "setting the size";
		ec = ext2fs_inode_size_set(w->fs, (struct ext2_inode *)&in, n->size);
		if (ec)
			goto out;
		/* An empty extent tree in i_block (and the extents flag). */
		what = "starting the extent tree";
		ec = ext2fs_extent_open2(w->fs, *ino, (struct ext2_inode *)&in, &h);
		if (ec)
			goto out;
		ext2fs_extent_free(h);
		if (l)
			l->ino = *ino;
	}
	what = "writing the inode";
	ec = e4w_inode_write(w, *ino, &in);
	if (!ec && n->type == TAR_REG && n->size)
		return e4w_data(w, n, *ino);
out:
	if (ec)
		return e4_fail(w->err, w->errlen, ec == EXT2_ET_BLOCK_ALLOC_FAIL ||
				ec == EXT2_ET_INODE_ALLOC_FAIL ? -ENOSPC : -EIO,
			       "%s: %s: %s: %s", w->img, e4w_path(w, n), what, error_message(ec));
	return 0;
}

/* Every node under the root, depth first; a stack of directory inodes. */
static int e4w_fill(struct e4w *w)
{
	struct fstree_node *root = fstree_root(w->t), *n, *nx;
	ext2_ino_t *stack;
	size_t depth = 0, cap = 64, up;
	int r = 0;

	stack = malloc(cap * sizeof(*stack));
	if (!stack)
		return e4_fail(w->err, w->errlen, -ENOMEM, "%s: out of memory", w->img);
	stack[0] = EXT2_ROOT_INO;
	for (n = root->child; n && !r; n = nx) {
		ext2_ino_t ino = 0;

		r = e4w_node(w, n, stack[depth], &ino);
		if (r)
			break;
		nx = e4_next(root, n, &up);
		if (nx && nx == n->child) {
			if (depth + 1 == cap) {
				ext2_ino_t *ns = realloc(stack, 2 * cap * sizeof(*ns));

				if (!ns) {
					r = e4_fail(w->err, w->errlen, -ENOMEM, "%s: out of memory",
						    w->img);
					break;
				}
				stack = ns;
				cap *= 2;
			}
			stack[++depth] = ino;
		} else {
			depth -= up; /* up <= depth: it climbed only through pushed directories */
		}
	}
	free(stack);
	return r;
}

/* Directories' metadata, once nothing more is linked into them. */
static int e4w_dirs_finish(struct e4w *w)
{
	for (size_t i = 0; i < w->ndirs; i++) {
		const struct fstree_node *n = w->dirs[i].n;
		struct ext2_inode_large in;
		errcode_t ec;

		memset(&in, 0, sizeof(in));
		ec = ext2fs_read_inode_full(w->fs, w->dirs[i].ino, (struct ext2_inode *)&in,
					    sizeof(in));
		if (!ec) {
			e4_meta(&in, LINUX_S_IFDIR, n->mode, n->uid, n->gid, n->mtime);
			ec = e4w_inode_write(w, w->dirs[i].ino, &in);
		}
		if (ec)
			return e4_fail(w->err, w->errlen, -EIO, "%s: %s: directory inode: %s",
				       w->img, e4w_path(w, n), error_message(ec));
	}
	return 0;
}

/* lost+found, as mke2fs makes it: 0700, 16 KiB, e2fsck's place. */
static errcode_t e4w_lost_found(struct e4w *w, int64_t time)
{
	struct ext2_inode_large in;
	ext2_ino_t ino;
	errcode_t ec;

	ec = ext2fs_mkdir(w->fs, EXT2_ROOT_INO, 0, "lost+found");
	if (!ec)
		ec = ext2fs_lookup(w->fs, EXT2_ROOT_INO, "lost+found", 10, 0, &ino);
	for (unsigned int sz = E4_BLOCK; !ec && sz < 16384; sz += E4_BLOCK)
		ec = ext2fs_expand_dir(w->fs, ino);
	if (ec)
		return ec;
	memset(&in, 0, sizeof(in));
	ec = ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (ec)
		return ec;
	e4_meta(&in, LINUX_S_IFDIR, 0700, 0, 0, time);
	return e4w_inode_write(w, ino, &in);
}

/* Formats the new file behind fd (size bytes) and opens it as w->fs. */
static int e4w_mkfs(struct e4w *w, int fd, uint64_t size, uint32_t inodes,
		    const struct ext4img_opts *o)
{
	struct ext2_super_block param;
	const char *what;
	char fdname[16];
	blk64_t overhead = 0;
	errcode_t ec;
	int iofd;

	memset(&param, 0, sizeof(param));
	param.s_log_block_size = 2; /* 1024 << 2 = 4096 */
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_inode_size = E4_INODE_SIZE;
	param.s_log_groups_per_flex = 4;
	param.s_inodes_count = inodes;
	ext2fs_blocks_count_set(&param, size / E4_BLOCK);
	ext2fs_r_blocks_count_set(&param, 0);
	param.s_feature_compat = EXT2_FEATURE_COMPAT_EXT_ATTR | EXT2_FEATURE_COMPAT_DIR_INDEX;
	param.s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
				   EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_64BIT;
	param.s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
				    EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
				    EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
				    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
				    EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
	param.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
	/* libext2fs's unixfd manager takes the fd as a string, and closes it. */
	iofd = dup(fd);
	if (iofd < 0)
		return e4_fail(w->err, w->errlen, -errno, "%s: dup: %s", w->img, strerror(errno));
	snprintf(fdname, sizeof(fdname), "%d", iofd);
	what = "setting up the superblock";
	ec = ext2fs_initialize(fdname, EXT2_FLAG_64BITS, &param, unixfd_io_manager, &w->fs);
	if (ec) {
		close(iofd);
		w->fs = NULL;
		goto fail;
	}
	/* Every time libext2fs would take from the clock comes from o; it
	 * reads the clock when fs->now is 0, and the superblock's times are
	 * unsigned 32 bits, so they hold o->time clamped to 1..UINT32_MAX. */
	{
		int64_t st = o->time < 1 ? 1 : o->time > UINT32_MAX ? UINT32_MAX : o->time;

		w->fs->now = (time_t)st;
		w->fs->super->s_mkfs_time = w->fs->super->s_lastcheck = (uint32_t)st;
		w->fs->super->s_wtime = (uint32_t)st;
	}
	memcpy(w->fs->super->s_uuid, o->uuid, sizeof(o->uuid));
	for (int i = 0; i < 4; i++)
		w->fs->super->s_hash_seed[i] = o->hash_seed[i];
	w->fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	/* Fixed, not the host's char signedness (ext2fs_initialize's pick). */
	w->fs->super->s_flags &= ~(uint32_t)EXT2_FLAGS_SIGNED_HASH;
	w->fs->super->s_flags |= EXT2_FLAGS_UNSIGNED_HASH;
	w->fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	ext2fs_init_csum_seed(w->fs);
	w->fs->super->s_max_mnt_count = -1;
	memset(w->fs->super->s_volume_name, 0, sizeof(w->fs->super->s_volume_name));
	if (o->label)
		memcpy(w->fs->super->s_volume_name, o->label, strlen(o->label));
	what = "allocating the group tables";
	ec = ext2fs_allocate_tables(w->fs);
	if (!ec)
		ec = ext2fs_convert_subcluster_bitmap(w->fs, &w->fs->block_map);
	if (!ec)
		ec = ext2fs_count_used_clusters(w->fs, w->fs->super->s_first_data_block,
						ext2fs_blocks_count(w->fs->super) - 1, &overhead);
	if (ec)
		goto fail;
	w->fs->super->s_overhead_clusters = (uint32_t)(overhead + w->fs->super->s_first_data_block);
	/* The file is new and sparse: its inode tables read as zeros. */
	for (dgrp_t g = 0; g < w->fs->group_desc_count; g++) {
		ext2fs_bg_flags_set(w->fs, g, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(w->fs, g);
	}
	what = "creating the root directory";
	w->fs->umask = 022;
	ec = ext2fs_mkdir(w->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0);
	if (ec)
		goto fail;
	/* The reserved inodes (below s_first_ino) in use; the bad-block inode, empty. */
	for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(w->fs->super); i++)
		ext2fs_inode_alloc_stats2(w->fs, i, +1, 0);
	ext2fs_mark_ib_dirty(w->fs);
	what = "writing the bad-block inode";
	ext2fs_mark_inode_bitmap2(w->fs->inode_map, EXT2_BAD_INO);
	ext2fs_inode_alloc_stats2(w->fs, EXT2_BAD_INO, +1, 0);
	ec = ext2fs_update_bb_inode(w->fs, NULL);
	if (ec)
		goto fail;
	what = "creating lost+found";
	if (!fstree_lookup(w->t, "lost+found"))
		ec = e4w_lost_found(w, o->time);
	if (ec)
		goto fail;
	return e4w_dir_push(w, EXT2_ROOT_INO, fstree_root(w->t));
fail:
	return e4_fail(w->err, w->errlen, -EIO, "%s: formatting: %s: %s", w->img, what,
		       error_message(ec));
}

int ext4img_write(struct fstree *t, const char *path, const struct ext4img_opts *o, char *err,
		  size_t errlen)
{
	static const struct ext4img_opts zero;
	struct e4w w = { .t = t, .img = path, .err = err, .errlen = errlen };
	uint64_t size = 0;
	uint32_t inodes = 0;
	errcode_t ec;
	int fd = -1, r;

	if (err && errlen)
		err[0] = '\0';
	if (!o)
		o = &zero;
	if (o->label && strlen(o->label) > sizeof(((struct ext2_super_block *)0)->s_volume_name))
		return e4_fail(err, errlen, -EINVAL, "%s: label '%s' is longer than 16 bytes", path,
			       o->label);
	initialize_ext2_error_table();
	r = e4w_plan(&w);
	if (!r)
		r = e4w_size(&w, o->min_size, &size, &inodes);
	if (r)
		goto out;
	w.buf = malloc(E4_BUF);
	if (!w.buf) {
		r = e4_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = e4_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (ftruncate(fd, (off_t)size) != 0) {
		r = e4_fail(err, errlen, -errno, "%s: setting the size to %llu: %s", path,
			    (unsigned long long)size, strerror(errno));
		goto out_unlink;
	}
	r = e4w_mkfs(&w, fd, size, inodes, o);
	if (!r)
		r = e4w_fill(&w);
	if (!r)
		r = e4w_dirs_finish(&w);
	if (r)
		goto out_unlink;
	/* On failure ext2fs_close2 leaves fs allocated: freed below. */
	ec = ext2fs_close2(w.fs, EXT2_FLAG_FLUSH_NO_SYNC);
	if (!ec)
		w.fs = NULL;
	if (ec) {
		r = e4_fail(err, errlen, -EIO, "%s: writing the file system: %s", path,
			    error_message(ec));
		goto out_unlink;
	}
	/* Durable before the caller renames it into place. */
	if (fsync(fd) != 0) {
		r = e4_fail(err, errlen, -errno, "%s: fsync: %s", path, strerror(errno));
		goto out_unlink;
	}
	goto out;
out_unlink:
	if (w.fs)
		ext2fs_free(w.fs);
	w.fs = NULL;
	unlink(path);
out:
	if (fd >= 0)
		close(fd);
	free(w.buf);
	free(w.links);
	free(w.dirs);
	return r;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */

/* An open-addressing set of inode numbers, each with an optional string. */
struct e4_map {
	ext2_ino_t *key; /* 0: empty */
	char **val;
	size_t cap, n;
};

static size_t e4_map_slot(const struct e4_map *m, ext2_ino_t k)
{
	size_t i = ((size_t)k * 0x9e3779b1U) & (m->cap - 1);

	while (m->key[i] && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static char **e4_map_find(struct e4_map *m, ext2_ino_t k)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = e4_map_slot(m, k);
	return m->key[i] ? &m->val[i] : NULL;
}

/* Adds k (not already there) with v (owned by the map). 0 or -ENOMEM. */
static int e4_map_put(struct e4_map *m, ext2_ino_t k, char *v)
{
	size_t i;

	if (2 * (m->n + 1) > m->cap) {
		struct e4_map nm = { .cap = m->cap ? 2 * m->cap : 256 };

		nm.key = calloc(nm.cap, sizeof(*nm.key));
		nm.val = calloc(nm.cap, sizeof(*nm.val));
		if (!nm.key || !nm.val) {
			free(nm.key);
			free(nm.val);
			return -ENOMEM;
		}
		for (size_t j = 0; j < m->cap; j++) {
			if (!m->key[j])
				continue;
			i = e4_map_slot(&nm, m->key[j]);
			nm.key[i] = m->key[j];
			nm.val[i] = m->val[j];
		}
		nm.n = m->n;
		free(m->key);
		free(m->val);
		*m = nm;
	}
	i = e4_map_slot(m, k);
	m->key[i] = k;
	m->val[i] = v;
	m->n++;
	return 0;
}

static void e4_map_free(struct e4_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->val[i]);
	free(m->key);
	free(m->val);
}

struct e4r {
	ext2_filsys fs;
	struct fstree *t;
	const char *img;
	char *err;
	size_t errlen;
	uint64_t entries;
	struct e4_map dirs;  /* directory inodes entered */
	struct e4_map links; /* regular files with more than one link: first path */
	struct tar_entry *e; /* the entry being added (large: on the heap) */
	char *buf;           /* E4_BUF bytes */
	char path[TAR_PATH_MAX + 1];
};

/* One directory's children, collected before recursing. */
struct e4_names {
	char **name;
	ext2_ino_t *ino;
	size_t n, cap, max;
	int r; /* -ENOMEM, -E2BIG (more than max), -EINVAL (a bad name) */
};

static int e4r_dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
		      int blocksize, char *buf, void *priv)
{
	struct e4_names *nm = priv;
	int len = ext2fs_dirent_name_len(d);

	(void)dir, (void)offset, (void)blocksize, (void)buf;
	if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || d->inode == 0)
		return 0;
	if ((len == 1 && d->name[0] == '.') || (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (len <= 0 || memchr(d->name, '/', (size_t)len) || memchr(d->name, '\0', (size_t)len)) {
		nm->r = -EINVAL;
		return DIRENT_ABORT;
	}
	if (nm->n >= nm->max) {
		nm->r = -E2BIG;
		return DIRENT_ABORT;
	}
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? 2 * nm->cap : 64;
		char **nn = realloc(nm->name, cap * sizeof(*nn));
		ext2_ino_t *ni;

		if (!nn) {
			nm->r = -ENOMEM;
			return DIRENT_ABORT;
		}
		nm->name = nn;
		ni = realloc(nm->ino, cap * sizeof(*ni));
		if (!ni) {
			nm->r = -ENOMEM;
			return DIRENT_ABORT;
		}
		nm->ino = ni;
		nm->cap = cap;
	}
	nm->name[nm->n] = strndup(d->name, (size_t)len);
	if (!nm->name[nm->n]) {
		nm->r = -ENOMEM;
		return DIRENT_ABORT;
	}
	nm->ino[nm->n++] = d->inode;
	return 0;
}

static void e4_names_free(struct e4_names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->name[i]);
	free(nm->name);
	free(nm->ino);
}

static const char *e4r_where(const struct e4r *r)
{
	return r->path[0] ? r->path : "/";
}

/* Children of directory ino, at most max of them, into nm. */
static int e4r_list(struct e4r *r, ext2_ino_t ino, size_t max, struct e4_names *nm)
{
	errcode_t ec;

	memset(nm, 0, sizeof(*nm));
	nm->max = max;
	ec = ext2fs_dir_iterate2(r->fs, ino, 0, NULL, e4r_dir_cb, nm);
	if (nm->r == -ENOMEM)
		return e4_fail(r->err, r->errlen, -ENOMEM, "%s: out of memory", r->img);
	if (nm->r == -E2BIG)
		return e4_fail(r->err, r->errlen, -E2BIG, "%s: more than %u entries", r->img,
			       EXT4IMG_MAX_ENTRIES);
	if (nm->r == -EINVAL)
		return e4_fail(r->err, r->errlen, -EINVAL,
			       "%s: %s: a name with '/' or a NUL byte inside", r->img, e4r_where(r));
	if (ec)
		return e4_fail(r->err, r->errlen, -EIO, "%s: reading directory %s: %s", r->img,
			       e4r_where(r), error_message(ec));
	return 0;
}

static int e4r_add(struct e4r *r)
{
	char msg[256];
	int rc;

	msg[0] = '\0';
	rc = fstree_add(r->t, r->e, msg, sizeof(msg));
	if (rc)
		return e4_fail(r->err, r->errlen, rc, "%s: %s: %s", r->img, e4r_where(r),
			       msg[0] ? msg : strerror(-rc));
	return 0;
}

/* A regular file's data into the tree (after fstree_add of its entry). */
static int e4r_data(struct e4r *r, ext2_ino_t ino, struct ext2_inode_large *in, uint64_t size)
{
	ext2_file_t f;
	errcode_t ec;
	uint64_t done = 0;
	char msg[256];
	int rc = 0;

	ec = ext2fs_file_open2(r->fs, ino, (struct ext2_inode *)in, 0, &f);
	if (ec)
		return e4_fail(r->err, r->errlen, -EIO, "%s: %s: opening: %s", r->img,
			       e4r_where(r), error_message(ec));
	while (done < size) {
		unsigned int want = size - done < E4_BUF ? (unsigned int)(size - done) : E4_BUF;
		unsigned int got = 0;

		ec = ext2fs_file_read(f, r->buf, want, &got);
		if (ec || got == 0)
			break;
		if (got > want) {
			ec = EXT2_ET_SHORT_READ;
			break;
		}
		msg[0] = '\0';
		rc = fstree_add_data(r->t, r->buf, got, msg, sizeof(msg));
		if (rc)
			break;
		done += got;
	}
	(void)ext2fs_file_close(f);
	if (rc)
		return e4_fail(r->err, r->errlen, rc, "%s: %s: %s", r->img, e4r_where(r),
			       msg[0] ? msg : strerror(-rc));
	if (ec || done != size)
		return e4_fail(r->err, r->errlen, -EIO, "%s: %s: reading data at %llu of %llu: %s",
			       r->img, e4r_where(r), (unsigned long long)done,
			       (unsigned long long)size,
			       ec ? error_message(ec) : "shorter than its size");
	return 0;
}

/* A symlink's target into r->e->link. */
static int e4r_symlink(struct e4r *r, ext2_ino_t ino, struct ext2_inode_large *in)
{
	uint64_t size = EXT2_I_SIZE(in);
	char *t = r->e->link;
	errcode_t ec = 0;

	if (size == 0 || size > TAR_PATH_MAX)
		return e4_fail(r->err, r->errlen, -EINVAL, "%s: %s: a symlink target of %llu bytes",
			       r->img, e4r_where(r), (unsigned long long)size);
	if (ext2fs_is_fast_symlink((struct ext2_inode *)in)) {
		if (size >= sizeof(in->i_block))
			return e4_fail(r->err, r->errlen, -EINVAL,
				       "%s: %s: fast symlink larger than its inode", r->img,
				       e4r_where(r));
		memcpy(t, in->i_block, size);
	} else if (in->i_flags & EXT4_INLINE_DATA_FL) {
		char ibuf[EXT2_N_BLOCKS * 4 + E4_BLOCK];
		size_t isz = sizeof(ibuf);

		ec = ext2fs_inline_data_size(r->fs, ino, &isz);
		if (!ec && (isz > sizeof(ibuf) || isz < size))
			ec = EXT2_ET_INLINE_DATA_CANT_ITERATE;
		if (!ec)
			ec = ext2fs_inline_data_get(r->fs, ino, (struct ext2_inode *)in, ibuf,
						    &isz);
		if (!ec)
			memcpy(t, ibuf, size);
	} else {
		ext2_file_t f;
		unsigned int got = 0;

		ec = ext2fs_file_open2(r->fs, ino, (struct ext2_inode *)in, 0, &f);
		if (!ec) {
			ec = ext2fs_file_read(f, t, (unsigned int)size, &got);
			(void)ext2fs_file_close(f);
			if (!ec && got != size)
				ec = EXT2_ET_SHORT_READ;
		}
	}
	if (ec)
		return e4_fail(r->err, r->errlen, -EIO, "%s: %s: symlink: %s", r->img,
			       e4r_where(r), error_message(ec));
	t[size] = '\0';
	if (memchr(t, '\0', size))
		return e4_fail(r->err, r->errlen, -EINVAL, "%s: %s: a NUL byte in the symlink target",
			       r->img, e4r_where(r));
	return 0;
}

static int e4r_inode(struct e4r *r, ext2_ino_t ino, struct ext2_inode_large *in)
{
	errcode_t ec;

	memset(in, 0, sizeof(*in));
	ec = ext2fs_read_inode_full(r->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	if (ec)
		return e4_fail(r->err, r->errlen, -EIO, "%s: %s: inode %u: %s", r->img,
			       e4r_where(r), ino, error_message(ec));
	return 0;
}

/* The entry's metadata from the inode. */
static void e4r_meta(struct e4r *r, const struct ext2_inode_large *in)
{
	struct tar_entry *e = r->e;
	uint32_t extra = 0;

	e->mode = in->i_mode & 07777;
	e->uid = inode_uid(*in);
	e->gid = inode_gid(*in);
	/* The epoch bits only if the inode is large enough to hold them. */
	if (EXT2_INODE_SIZE(r->fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
	    in->i_extra_isize >= offsetof(struct ext2_inode_large, i_mtime_extra) +
					 sizeof(in->i_mtime_extra) - EXT2_GOOD_OLD_INODE_SIZE)
		extra = in->i_mtime_extra;
	e->mtime = e4_time_get(in->i_mtime, extra);
	e->size = 0;
	e->devmajor = e->devminor = 0;
	e->link[0] = '\0';
}

/* Whether directory ino has no entries but "." and "..". */
static int e4r_empty(struct e4r *r, ext2_ino_t ino, bool *empty)
{
	struct e4_names nm;
	int rc = e4r_list(r, ino, 1, &nm);

	*empty = rc == 0 && nm.n == 0;
	e4_names_free(&nm);
	return rc == -E2BIG ? 0 : rc;
}

static int e4r_dir(struct e4r *r, ext2_ino_t dino, size_t len, unsigned int depth);

/* One child (name, ino) of a directory whose path is r->path[0..len). */
static int e4r_child(struct e4r *r, const char *name, ext2_ino_t ino, size_t len,
		     unsigned int depth)
{
	struct ext2_inode_large in;
	size_t nl = strlen(name), plen = len ? len + 1 + nl : nl;
	uint16_t fmt;
	int rc;

	if (plen > TAR_PATH_MAX)
		return e4_fail(r->err, r->errlen, -ENAMETOOLONG, "%s: %s/%s: path too long", r->img,
			       e4r_where(r), name);
	if (len)
		r->path[len] = '/';
	memcpy(r->path + (len ? len + 1 : 0), name, nl + 1);
	rc = e4r_inode(r, ino, &in);
	if (rc)
		return rc;
	fmt = in.i_mode & LINUX_S_IFMT;
	if (depth == 0 && fmt == LINUX_S_IFDIR && !strcmp(name, "lost+found")) {
		bool empty;

		rc = e4r_empty(r, ino, &empty);
		if (rc || empty)
			return rc;
	}
	memcpy(r->e->path, r->path, plen + 1);
	e4r_meta(r, &in);
	switch (fmt) {
	case LINUX_S_IFDIR:
		r->e->type = TAR_DIR;
		rc = e4r_add(r);
		return rc ? rc : e4r_dir(r, ino, plen, depth + 1);
	case LINUX_S_IFREG: {
		char **first = NULL, *p;

		r->e->type = TAR_REG;
		if (in.i_links_count > 1) {
			first = e4_map_find(&r->links, ino);
			if (first) {
				r->e->type = TAR_HARDLINK;
				memcpy(r->e->link, *first, strlen(*first) + 1);
				return e4r_add(r);
			}
			p = strdup(r->path);
			if (!p || e4_map_put(&r->links, ino, p)) {
				free(p);
				return e4_fail(r->err, r->errlen, -ENOMEM, "%s: out of memory",
					       r->img);
			}
		}
		r->e->size = EXT2_I_SIZE(&in);
		rc = e4r_add(r);
		return rc ? rc : r->e->size ? e4r_data(r, ino, &in, r->e->size) : 0;
	}
	case LINUX_S_IFLNK:
		r->e->type = TAR_SYMLINK;
		rc = e4r_symlink(r, ino, &in);
		return rc ? rc : e4r_add(r);
	case LINUX_S_IFCHR:
	case LINUX_S_IFBLK:
		r->e->type = fmt == LINUX_S_IFCHR ? TAR_CHR : TAR_BLK;
		/* The kernel's old (8:8) and new (12:20) encodings. */
		if (in.i_block[0]) {
			r->e->devmajor = (in.i_block[0] >> 8) & 0xff;
			r->e->devminor = in.i_block[0] & 0xff;
		} else {
			r->e->devmajor = (in.i_block[1] & 0xfff00) >> 8;
			r->e->devminor = (in.i_block[1] & 0xff) | ((in.i_block[1] >> 12) & 0xfff00);
		}
		return e4r_add(r);
	case LINUX_S_IFIFO:
		r->e->type = TAR_FIFO;
		return e4r_add(r);
	case LINUX_S_IFSOCK:
		return 0; /* a socket means nothing in an image */
	default:
		return e4_fail(r->err, r->errlen, -EINVAL, "%s: %s: inode %u of unknown type 0%o",
			       r->img, e4r_where(r), ino, (unsigned int)fmt);
	}
}

/* Every child of directory dino, whose path is r->path[0..len). */
static int e4r_dir(struct e4r *r, ext2_ino_t dino, size_t len, unsigned int depth)
{
	struct e4_names nm;
	int rc;

	r->path[len] = '\0';
	if (depth > EXT4IMG_MAX_DEPTH)
		return e4_fail(r->err, r->errlen, -E2BIG, "%s: %s: directories nested deeper than %u",
			       r->img, e4r_where(r), EXT4IMG_MAX_DEPTH);
	if (e4_map_find(&r->dirs, dino))
		return e4_fail(r->err, r->errlen, -EINVAL,
			       "%s: %s: directory inode %u is reached twice", r->img,
			       e4r_where(r), dino);
	if (e4_map_put(&r->dirs, dino, NULL))
		return e4_fail(r->err, r->errlen, -ENOMEM, "%s: out of memory", r->img);
	rc = e4r_list(r, dino, EXT4IMG_MAX_ENTRIES - r->entries, &nm);
	if (!rc)
		r->entries += nm.n;
	for (size_t i = 0; i < nm.n && !rc; i++) {
		rc = e4r_child(r, nm.name[i], nm.ino[i], len, depth);
		r->path[len] = '\0';
	}
	e4_names_free(&nm);
	return rc;
}

int ext4img_read(const char *path, struct fstree *t, char *err, size_t errlen)
{
	struct e4r r = { .t = t, .img = path, .err = err, .errlen = errlen };
	struct ext2_inode_large in;
	struct stat st;
	uint64_t need;
	errcode_t ec;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (stat(path, &st) != 0)
		return e4_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return e4_fail(err, errlen, -EINVAL, "%s: not a regular file", path);
	initialize_ext2_error_table();
	/* Read-only: EXT2_FLAG_RW is not given, and nothing is written back. */
	ec = ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &r.fs);
	if (ec)
		return e4_fail(err, errlen, -EINVAL, "%s: not a readable ext2/3/4 image: %s", path,
			       error_message(ec));
	if (__builtin_mul_overflow(ext2fs_blocks_count(r.fs->super), (uint64_t)r.fs->blocksize,
				   &need) ||
	    (S_ISREG(st.st_mode) && need > (uint64_t)st.st_size)) {
		rc = e4_fail(err, errlen, -EINVAL,
			     "%s: truncated: %llu blocks of %u bytes in a file of %lld bytes", path,
			     (unsigned long long)ext2fs_blocks_count(r.fs->super), r.fs->blocksize,
			     (long long)st.st_size);
		goto out;
	}
	r.e = calloc(1, sizeof(*r.e));
	r.buf = malloc(E4_BUF);
	if (!r.e || !r.buf) {
		rc = e4_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	rc = e4r_inode(&r, EXT2_ROOT_INO, &in);
	if (rc)
		goto out;
	if (!LINUX_S_ISDIR(in.i_mode)) {
		rc = e4_fail(err, errlen, -EINVAL, "%s: the root inode is not a directory", path);
		goto out;
	}
	e4r_meta(&r, &in);
	r.e->type = TAR_DIR;
	r.e->path[0] = '\0';
	rc = e4r_add(&r);
	if (!rc)
		rc = e4r_dir(&r, EXT2_ROOT_INO, 0, 0);
out:
	(void)ext2fs_close_free(&r.fs);
	e4_map_free(&r.dirs);
	e4_map_free(&r.links);
	free(r.e);
	free(r.buf);
	return rc;
}
