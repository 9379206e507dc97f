/* Unit tests for vmm/ext4img.c: a tree of every node type written as ext4 (checked by e2fsck), read back node by node, byte-identical twice; bad images and bad trees refused. */
#include <check.h>
#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/ext4img.h"
#include "vmm/fstree.h"

#define BIG_SIZE (1536U * 1024 + 123) /* over 1 MiB, not a whole block */
#define WIDE 500                      /* entries in one directory */

static char tmpdir[64];

static void setup(void)
{
	strcpy(tmpdir, "/tmp/minivm-test-ext4img-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char sh[128];

	snprintf(sh, sizeof(sh), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(sh), 0);
}

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

static struct fstree *new_tree(void)
{
	struct fstree *t;
	char err[256];

	ck_assert_msg(fstree_new(tmpdir, NULL, &t, err, sizeof(err)) == 0, "%s", err);
	return t;
}

static struct tar_entry *ent(enum tar_type type, const char *path, uint32_t mode)
{
	static struct tar_entry e;

	memset(&e, 0, sizeof(e));
	e.type = type;
	snprintf(e.path, sizeof(e.path), "%s", path);
	e.mode = mode;
	e.mtime = 1700000000;
	return &e;
}

static void add(struct fstree *t, const struct tar_entry *e)
{
	char err[256];

	ck_assert_msg(fstree_add(t, e, err, sizeof(err)) == 0, "%s: %s", e->path, err);
}

/* A regular file of size bytes, byte i = (i * seed) >> 3. */
static void add_file(struct fstree *t, struct tar_entry *e, uint64_t size, unsigned int seed)
{
	static uint8_t buf[8192];
	char err[256];
	uint64_t off = 0;

	e->size = size;
	add(t, e);
	while (off < size) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(((off + i) * seed) >> 3);
		ck_assert_msg(fstree_add_data(t, buf, n, err, sizeof(err)) == 0, "%s", err);
		off += n;
	}
}

/* Every node type, hard links, long names and targets, a big file, a wide directory. */
static struct fstree *build_tree(void)
{
	struct fstree *t = new_tree();
	struct tar_entry *e;
	char name[300];

	e = ent(TAR_DIR, "", 0750);
	e->uid = 1000, e->gid = 1001, e->mtime = 1600000000;
	add(t, e);
	e = ent(TAR_DIR, "etc", 0755);
	add(t, e);
	e = ent(TAR_REG, "etc/passwd", 0644);
	add_file(t, e, 41, 7);
	e = ent(TAR_REG, "etc/empty", 0600);
	e->uid = 70000, e->gid = 80000; /* need the high 16 bits */
	add(t, e);
	e = ent(TAR_REG, "etc/shadow", 04751);
	e->mtime = 4200000000LL; /* after 2038: the epoch bits */
	add_file(t, e, 4096, 3);
	e = ent(TAR_REG, "etc/old", 0644);
	e->mtime = -86400; /* before 1970 */
	add_file(t, e, 1, 5);
	e = ent(TAR_DIR, "usr/lib/deep/er/still", 01777);
	add(t, e);
	e = ent(TAR_REG, "usr/lib/big.bin", 0755);
	add_file(t, e, BIG_SIZE, 13);
	e = ent(TAR_HARDLINK, "usr/lib/big-link", 0);
	strcpy(e->link, "usr/lib/big.bin");
	add(t, e);
	e = ent(TAR_HARDLINK, "etc/big-again", 0);
	strcpy(e->link, "usr/lib/big.bin");
	add(t, e);
	e = ent(TAR_REG, "usr/lib/two", 0644);
	add_file(t, e, 100, 11);
	e = ent(TAR_HARDLINK, "usr/lib/deep/two", 0);
	strcpy(e->link, "usr/lib/two");
	add(t, e);
	e = ent(TAR_SYMLINK, "usr/lib/fast", 0777);
	strcpy(e->link, "big.bin");
	add(t, e);
	e = ent(TAR_SYMLINK, "usr/lib/abs", 0777);
	strcpy(e->link, "/etc/passwd");
	add(t, e);
	e = ent(TAR_SYMLINK, "usr/lib/deep/er/still/slow", 0777);
	memset(e->link, 0, sizeof(e->link));
	for (int i = 0; i < 60; i++)
		strcat(e->link, "x/");
	strcat(e->link, "../../target"); /* 132 bytes: a block of its own */
	add(t, e);
	e = ent(TAR_DIR, "dev", 0755);
	add(t, e);
	e = ent(TAR_CHR, "dev/null", 0666);
	e->devmajor = 1, e->devminor = 3;
	add(t, e);
	e = ent(TAR_BLK, "dev/sda", 0660);
	e->devmajor = 8, e->devminor = 0, e->gid = 6;
	add(t, e);
	e = ent(TAR_CHR, "dev/wide", 0600);
	e->devmajor = 300, e->devminor = 70000; /* the new encoding */
	add(t, e);
	e = ent(TAR_FIFO, "dev/fifo", 0620);
	add(t, e);
	memset(name, 'n', 255);
	name[255] = '\0';
	memcpy(name, "long/", 5);
	e = ent(TAR_REG, name, 0644);
	add_file(t, e, 10, 17);
	for (int i = 0; i < WIDE; i++) {
		snprintf(name, sizeof(name), "wide/entry-with-a-longish-name-%04d", i);
		e = ent(i % 5 ? TAR_REG : TAR_DIR, name, 0644);
		if (e->type == TAR_REG)
			add_file(t, e, (uint64_t)i % 7, (unsigned int)i);
		else
			add(t, e);
	}
	return t;
}

static void write_ok(struct fstree *t, const char *path, const struct ext4img_opts *o)
{
	char err[512];

	ck_assert_msg(ext4img_write(t, path, o, err, sizeof(err)) == 0, "%s", err);
}

static void fsck_ok(const char *path)
{
	char sh[512];

	snprintf(sh, sizeof(sh), "PATH=\"$PATH:/sbin:/usr/sbin\" e2fsck -fn '%s' >%s/fsck.log 2>&1",
		 path, tmpdir);
	ck_assert_msg(system(sh) == 0, "e2fsck -fn %s failed: see %s/fsck.log", path, tmpdir);
}

static void same_data(struct fstree *a, const struct fstree_node *x, struct fstree *b,
		      const struct fstree_node *y, const char *path)
{
	static uint8_t ba[65536], bb[65536];
	uint64_t off = 0;

	while (off < x->size) {
		ssize_t na = fstree_read(a, x, off, ba, sizeof(ba));
		ssize_t nb = fstree_read(b, y, off, bb, sizeof(bb));

		ck_assert_msg(na > 0 && na == nb, "%s: read %zd and %zd at %llu", path, na, nb,
			      (unsigned long long)off);
		ck_assert_msg(memcmp(ba, bb, (size_t)na) == 0, "%s: data differs near %llu", path,
			      (unsigned long long)off);
		off += (uint64_t)na;
	}
}

/* Walks both trees side by side (children are sorted): same shape, same
 * metadata and data; hard-link groups map one to one. Returns the nodes. */
static uint64_t same_tree(struct fstree *a, struct fstree *b)
{
	const struct fstree_node *x = fstree_root(a), *y = fstree_root(b);
	uint64_t ids[64][2], nids = 0, nodes = 0;
	char path[TAR_PATH_MAX + 1];

	for (;;) {
		ck_assert_int_eq(fstree_path(x, path, sizeof(path)), 0);
		ck_assert_msg(y != NULL, "%s: missing from the image", path);
		ck_assert_msg(!strcmp(x->name, y->name), "%s: the image has %s", path, y->name);
		ck_assert_msg(x->type == y->type, "%s: type %d, read %d", path, x->type, y->type);
		ck_assert_msg(x->mode == y->mode, "%s: mode %o, read %o", path, x->mode, y->mode);
		ck_assert_msg(x->uid == y->uid && x->gid == y->gid, "%s: owner %u:%u, read %u:%u",
			      path, x->uid, x->gid, y->uid, y->gid);
		ck_assert_msg(x->mtime == y->mtime, "%s: mtime %lld, read %lld", path,
			      (long long)x->mtime, (long long)y->mtime);
		ck_assert_msg(x->size == y->size, "%s: size", path);
		ck_assert_msg(x->devmajor == y->devmajor && x->devminor == y->devminor,
			      "%s: device %u:%u, read %u:%u", path, x->devmajor, x->devminor,
			      y->devmajor, y->devminor);
		ck_assert_msg((x->link == NULL) == (y->link == NULL), "%s: link", path);
		if (x->link)
			ck_assert_str_eq(x->link, y->link);
		ck_assert_msg((x->link_id != 0) == (y->link_id != 0), "%s: hard link", path);
		if (x->link_id) {
			uint64_t i;

			for (i = 0; i < nids && ids[i][0] != x->link_id; i++)
				;
			if (i == nids) {
				ck_assert_uint_lt(nids, 64);
				ids[nids][0] = x->link_id, ids[nids++][1] = y->link_id;
			}
			ck_assert_msg(ids[i][1] == y->link_id, "%s: other link group", path);
		}
		if (x->type == TAR_REG)
			same_data(a, x, b, y, path);
		nodes++;
		/* Next in depth-first order, both sides at once. */
		if (x->child || y->child) {
			ck_assert_msg(x->child && y->child, "%s: children differ", path);
			x = x->child, y = y->child;
			continue;
		}
		while (!x->next) {
			ck_assert_msg(!y->next, "%s: the image has %s after it", path, y->next->name);
			x = x->parent, y = y->parent;
			if (!x) {
				ck_assert_ptr_null(y);
				return nodes;
			}
		}
		ck_assert_msg(y->next != NULL, "%s: the image lacks what follows", path);
		x = x->next, y = y->next;
	}
}

static struct fstree *read_ok(const char *path)
{
	struct fstree *t = new_tree();
	char err[512];

	ck_assert_msg(ext4img_read(path, t, err, sizeof(err)) == 0, "%s", err);
	return t;
}

static int cmp_files(const char *a, const char *b)
{
	char sh[300];

	snprintf(sh, sizeof(sh), "cmp -s '%s' '%s'", a, b);
	return system(sh);
}

START_TEST(test_roundtrip)
{
	struct ext4img_opts o = { .uuid = { 1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10 },
				  .hash_seed = { 1, 2, 3, 4 }, .time = 1650000000, .label = "root" };
	struct fstree *t = build_tree(), *back;
	char img[128];
	ext2_filsys fs;
	ext2_ino_t ino;
	struct ext2_inode inode;

	tmp_path(img, sizeof(img), "a.img");
	write_ok(t, img, &o);
	fsck_ok(img);
	back = read_ok(img);
	ck_assert_uint_eq(same_tree(t, back), fstree_nodes(t));
	ck_assert_uint_eq(fstree_nodes(back), fstree_nodes(t));
	ck_assert_uint_eq(fstree_bytes(back), fstree_bytes(t));
	fstree_free(back);
	/* What the image holds: the options, lost+found, one inode per hard-link group. */
	ck_assert_int_eq(ext2fs_open(img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
	ck_assert_str_eq((const char *)fs->super->s_volume_name, "root");
	ck_assert_int_eq(memcmp(fs->super->s_uuid, o.uuid, 16), 0);
	ck_assert_uint_eq(fs->super->s_hash_seed[2], 3);
	ck_assert_uint_eq(fs->super->s_mkfs_time, 1650000000);
	ck_assert_uint_eq(fs->super->s_wtime, 1650000000);
	/* One hash signedness, whatever the host's char is. */
	ck_assert_uint_eq(fs->super->s_flags & (EXT2_FLAGS_SIGNED_HASH | EXT2_FLAGS_UNSIGNED_HASH),
			  EXT2_FLAGS_UNSIGNED_HASH);
	ck_assert_uint_eq(fs->blocksize, 4096);
	ck_assert_uint_eq(EXT2_INODE_SIZE(fs->super), 256);
	ck_assert(!ext2fs_has_feature_journal(fs->super));
	ck_assert(ext2fs_has_feature_extents(fs->super));
	ck_assert_int_eq(ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, 0, &ino), 0);
	ck_assert_int_eq(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "usr/lib/big.bin", &ino), 0);
	ck_assert_int_eq(ext2fs_read_inode(fs, ino, &inode), 0);
	ck_assert_uint_eq(inode.i_links_count, 3);
	ck_assert(inode.i_flags & EXT4_EXTENTS_FL);
	{
		ext2_ino_t ino2;

		ck_assert_int_eq(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "etc/big-again",
					      &ino2), 0);
		ck_assert_uint_eq(ino2, ino);
	}
	ck_assert_int_eq(ext2fs_read_inode(fs, EXT2_ROOT_INO, &inode), 0);
	ck_assert_uint_eq(inode.i_mode & 07777, 0750);
	ck_assert_uint_eq(inode.i_uid, 1000);
	ck_assert_int_eq(ext2fs_close_free(&fs), 0);
	fstree_free(t);
}
END_TEST

START_TEST(test_deterministic)
{
	struct ext4img_opts o = { .uuid = { 9, 9, 9 }, .hash_seed = { 7 }, .time = 1 };
	struct fstree *t = build_tree();
	char a[128], b[128], c[128];
	struct stat st;

	tmp_path(a, sizeof(a), "a.img");
	tmp_path(b, sizeof(b), "b.img");
	tmp_path(c, sizeof(c), "c.img");
	write_ok(t, a, &o);
	sleep(1); /* a clock that leaks in would show */
	write_ok(t, b, &o);
	ck_assert_int_eq(cmp_files(a, b), 0);
	o.uuid[0] = 10;
	write_ok(t, c, &o);
	ck_assert_int_ne(cmp_files(a, c), 0);
	/* min_size: at least that big, still a good file system. */
	ck_assert_int_eq(unlink(c), 0);
	o.min_size = 200ULL << 20;
	write_ok(t, c, &o);
	ck_assert_int_eq(stat(c, &st), 0);
	ck_assert_int_eq(st.st_size, 200LL << 20);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	fsck_ok(c);
	/* An existing file is never overwritten. */
	{
		char err[256];

		ck_assert_int_eq(ext4img_write(t, c, &o, err, sizeof(err)), -EEXIST);
		ck_assert(strstr(err, c) != NULL);
	}
	fstree_free(t);
}
END_TEST

/* The smallest tree, with its own lost+found (kept, not made again); NULL options. */
START_TEST(test_minimal)
{
	struct fstree *t = new_tree(), *back;
	struct tar_entry *e;
	char img[128];
	struct stat st;

	e = ent(TAR_DIR, "lost+found", 0700);
	add(t, e);
	e = ent(TAR_REG, "lost+found/x", 0600);
	add_file(t, e, 5, 1);
	tmp_path(img, sizeof(img), "m.img");
	write_ok(t, img, NULL);
	fsck_ok(img);
	ck_assert_int_eq(stat(img, &st), 0);
	ck_assert_int_lt(st.st_size, 32LL << 20);
	/* NULL options (time 0): still no clock in the bytes. */
	{
		char img2[128];

		tmp_path(img2, sizeof(img2), "m2.img");
		sleep(1);
		write_ok(t, img2, NULL);
		ck_assert_int_eq(cmp_files(img, img2), 0);
	}
	back = read_ok(img);
	ck_assert_uint_eq(same_tree(t, back), 3);
	fstree_free(back);
	fstree_free(t);
}
END_TEST

/* Trees ext4 cannot hold: refused, and no file left behind. */
START_TEST(test_write_refused)
{
	struct fstree *t = new_tree();
	struct ext4img_opts o = { .label = "seventeen-bytes-x" };
	struct tar_entry *e;
	char img[128], err[256];

	tmp_path(img, sizeof(img), "r.img");
	ck_assert_int_eq(ext4img_write(t, img, &o, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "label") != NULL);
	e = ent(TAR_CHR, "dev/huge", 0600);
	e->devmajor = 5000;
	add(t, e);
	ck_assert_int_eq(ext4img_write(t, img, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "dev/huge") != NULL, "%s", err);
	ck_assert_int_eq(access(img, F_OK), -1);
	fstree_free(t);
	/* No such directory for the image. */
	t = new_tree();
	ck_assert_int_eq(ext4img_write(t, "/nonexistent/x.img", NULL, err, sizeof(err)), -ENOENT);
	fstree_free(t);
}
END_TEST

static void write_bytes(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static void read_fails(const char *path, const char *what)
{
	struct fstree *t = new_tree();
	char err[512];
	int r;

	err[0] = '\0';
	r = ext4img_read(path, t, err, sizeof(err));
	ck_assert_msg(r < 0, "%s: read", what);
	ck_assert_msg(err[0] != '\0', "%s: no message", what);
	ck_assert_msg(strstr(err, path) != NULL, "%s: message does not name the image: %s", what,
		      err);
	fstree_free(t);
}

START_TEST(test_read_bad)
{
	struct fstree *t = build_tree();
	char img[128], bad[128], sh[512];
	static uint8_t junk[256 * 1024];
	struct stat st;

	tmp_path(img, sizeof(img), "good.img");
	write_ok(t, img, NULL);
	fstree_free(t);
	ck_assert_int_eq(stat(img, &st), 0);
	tmp_path(bad, sizeof(bad), "bad.img");
	/* Truncated: half the image. */
	snprintf(sh, sizeof(sh), "head -c %lld '%s' > '%s'", (long long)st.st_size / 2, img, bad);
	ck_assert_int_eq(system(sh), 0);
	read_fails(bad, "truncated");
	/* Garbage. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 2654435761U >> 13);
	write_bytes(bad, junk, sizeof(junk));
	read_fails(bad, "garbage");
	/* Empty, missing, a directory. */
	write_bytes(bad, junk, 0);
	read_fails(bad, "empty");
	tmp_path(bad, sizeof(bad), "missing.img");
	read_fails(bad, "missing");
	read_fails(tmpdir, "a directory");
}
END_TEST

/* Another writer's image (mkfs.ext4 -d, 1 KiB blocks, a journal): read, with the same content. */
START_TEST(test_read_mkfs)
{
	char dir[128], img[128], sh[2048], path[256];
	struct fstree *t;
	const struct fstree_node *n;
	uint8_t buf[16];

	tmp_path(dir, sizeof(dir), "src");
	tmp_path(img, sizeof(img), "mkfs.img");
	snprintf(sh, sizeof(sh),
		 "set -e; mkdir -p '%1$s/d/e'; printf hello > '%1$s/d/f'; ln '%1$s/d/f' '%1$s/g';"
		 " ln -s d/f '%1$s/s'; mkfifo '%1$s/p'; chmod 0710 '%1$s/d';"
		 " touch -d @1234567890 '%1$s/d/f';"
		 " PATH=\"$PATH:/sbin:/usr/sbin\" mkfs.ext4 -q -b 1024 -d '%1$s' '%2$s' 2M >/dev/null",
		 dir, img);
	ck_assert_int_eq(system(sh), 0);
	t = read_ok(img);
	n = fstree_lookup(t, "d/f");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->type, TAR_REG);
	ck_assert_uint_eq(n->size, 5);
	ck_assert_int_eq(n->mtime, 1234567890);
	ck_assert_int_eq(fstree_read(t, n, 0, buf, sizeof(buf)), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	ck_assert_uint_ne(n->link_id, 0);
	ck_assert_uint_eq(fstree_lookup(t, "g")->link_id, n->link_id);
	ck_assert_uint_eq(fstree_lookup(t, "d")->mode, 0710);
	ck_assert_str_eq(fstree_lookup(t, "s")->link, "d/f");
	ck_assert_int_eq(fstree_lookup(t, "p")->type, TAR_FIFO);
	ck_assert_int_eq(fstree_lookup(t, "d/e")->type, TAR_DIR);
	/* The empty lost+found mkfs made is not part of the tree. */
	ck_assert_ptr_null(fstree_lookup(t, "lost+found"));
	ck_assert_int_eq(fstree_path(fstree_lookup(t, "d/e"), path, sizeof(path)), 0);
	ck_assert_str_eq(path, "d/e");
	fstree_free(t);
}
END_TEST

/* Images made valid by e2fsprogs but hostile to a tree: a directory
 * linked twice (a cycle), a symlink that climbs out of the root, a socket. */
START_TEST(test_read_hostile)
{
	char dir[128], img[128], sh[2048], err[512];
	struct fstree *t;

	tmp_path(dir, sizeof(dir), "src");
	tmp_path(img, sizeof(img), "h.img");
	snprintf(sh, sizeof(sh),
		 "set -e; mkdir -p '%1$s/d/e'; printf x > '%1$s/d/f';"
		 " python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])'"
		 " '%1$s/d/sock';"
		 " PATH=\"$PATH:/sbin:/usr/sbin\"; mkfs.ext4 -q -b 1024 -N 64 -O ^has_journal -d '%1$s' '%2$s' 1M >/dev/null;"
		 " cp '%2$s' '%2$s.cycle'; debugfs -w -R 'link /d /d/e/loop' '%2$s.cycle' 2>/dev/null;"
		 " cp '%2$s' '%2$s.escape'; debugfs -w -R 'symlink /d/out ../../etc' '%2$s.escape' 2>/dev/null",
		 dir, img);
	ck_assert_int_eq(system(sh), 0);
	/* The socket is skipped; the rest is there. */
	t = read_ok(img);
	ck_assert_ptr_null(fstree_lookup(t, "d/sock"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "d/f"));
	fstree_free(t);
	snprintf(sh, sizeof(sh), "%s.cycle", img);
	t = new_tree();
	ck_assert_int_eq(ext4img_read(sh, t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "d/e/loop") && strstr(err, "twice"), "%s", err);
	fstree_free(t);
	snprintf(sh, sizeof(sh), "%s.escape", img);
	t = new_tree();
	ck_assert_int_eq(ext4img_read(sh, t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "d/out") && strstr(err, "escapes"), "%s", err);
	fstree_free(t);
}
END_TEST

static Suite *ext4img_suite(void)
{
	Suite *s = suite_create("ext4img");
	TCase *tc = tcase_create("ext4img");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_minimal);
	tcase_add_test(tc, test_write_refused);
	tcase_add_test(tc, test_read_bad);
	tcase_add_test(tc, test_read_mkfs);
	tcase_add_test(tc, test_read_hostile);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ext4img_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
