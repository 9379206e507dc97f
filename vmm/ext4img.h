/* ext4 images from and to the in-memory file tree (vmm/fstree.h), with libext2fs: the root filesystem built from an OCI image, and the tree read back out of an image. */
#ifndef MINIVM_EXT4IMG_H
#define MINIVM_EXT4IMG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/fstree.h"

/* Deepest directory nesting and most entries ext4img_read walks. */
#define EXT4IMG_MAX_DEPTH 1024
#define EXT4IMG_MAX_ENTRIES (4U << 20)
/* Headroom added to what the tree needs: a tenth, plus this. */
#define EXT4IMG_HEADROOM (16ULL << 20)

/*
 * What makes the image the same bytes for the same tree: nothing here is
 * random or read from the clock.
 */
struct ext4img_opts {
	/* The image is at least this many bytes (rounded up to 4 KiB); 0: what
	 * the tree needs, a tenth more, plus EXT4IMG_HEADROOM. */
	uint64_t min_size;
	uint8_t uuid[16];       /* the file system's UUID (s_uuid), as given */
	uint32_t hash_seed[4];  /* the directory hash seed (s_hash_seed) */
	/* The file system's creation, write and check times (clamped to
	 * 1..UINT32_MAX; e2fsck complains of a time in its future), and the
	 * times of a lost+found the tree does not have (seconds since the epoch). */
	int64_t time;
	const char *label;      /* the volume label, at most 16 bytes; NULL: none */
};

/*
 * Writes t as an ext4 file system into a NEW file at path (O_EXCL, mode
 * 0644: the caller writes to a temporary name and renames it into
 * place). 4 KiB blocks, 256-byte inodes, extents, 64bit, flex_bg,
 * metadata_csum, dir_index, no journal, no resize inode; inode tables
 * marked zeroed (the file is new and sparse). Every node keeps its type,
 * mode, uid, gid, mtime (also atime, ctime and crtime), size and data;
 * symlinks (fast ones under 60 bytes), character and block devices, fifos;
 * regular files that share a non-zero link_id are one inode with one name
 * each and that link count. The root directory takes the tree root's
 * metadata; a lost+found directory (0700, root's) is made unless the tree
 * has one. The result passes `e2fsck -fn`. o may be NULL (all zero).
 * Refused with a message naming the path: a name over 255 bytes, an empty
 * symlink target, a device number ext4 cannot hold (major > 4095 or minor
 * > 1048575), more than 65000 names for one inode or subdirectories in one
 * directory, a label over 16 bytes. On error the file is removed if this
 * call made it. 0 or -errno with a message in err.
 */
int ext4img_write(struct fstree *t, const char *path, const struct ext4img_opts *o, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads the ext2/3/4 image at path (read-only; any block size) into t, a
 * tree fresh from fstree_new (its limits bound what is read): every
 * directory, regular file (with its data), symlink, device and fifo with
 * its mode, owner and mtime; the root's metadata goes on the tree's root.
 * Sockets are skipped, and so is /lost+found when it is an empty
 * directory. A regular file's inode met again under another name becomes a
 * TAR_HARDLINK to the first name seen. Walks at most EXT4IMG_MAX_DEPTH
 * levels and EXT4IMG_MAX_ENTRIES entries; a directory inode reached twice,
 * a name with '/', a file shorter than its size, an image shorter than its
 * block count or anything libext2fs cannot read is an error (-EINVAL,
 * -EIO, -E2BIG, or fstree's error), never a crash. 0 or -errno with a
 * message in err naming the image and the path at fault; on error t holds
 * what was read so far (the caller frees it).
 */
int ext4img_read(const char *path, struct fstree *t, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
