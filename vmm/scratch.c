/* The guest's writable layer (--scratch): a sparse ext4 disk the front makes in the run directory, or a tmpfs, announced with minivm.scratch=. */
#include "vmm/scratch.h"

#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"

#define SCRATCH_LABEL "minivm-scratch"
#define SCRATCH_INODE_RATIO 16384 /* bytes per inode, mke2fs.conf's default */

int scratch_parse_mode(const char *s, enum scratch_mode *out)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "disk"))
		*out = SCRATCH_DISK;
	else if (!strcmp(s, "tmpfs"))
		*out = SCRATCH_TMPFS;
	else if (!strcmp(s, "none"))
		*out = SCRATCH_NONE;
	else
		return -EINVAL;
	return 0;
}

/*
 * Formats path (a new sparse file of size bytes) as ext4 in this process,
 * with libext2fs, as `mkfs.ext4 -q -t ext4 -m 0 -L minivm-scratch -O
 * ^has_journal,^resize_inode -E lazy_itable_init=1` would with Debian's
 * mke2fs.conf (4 KiB blocks, 256-byte inodes, one inode per 16 KiB, flex_bg
 * of 16, metadata_csum, 64bit, extents). Running mkfs.ext4 itself cost 15 to
 * 40 ms of every --agent start-up here (exec, dynamic linking, its
 * configuration, three fsyncs), more than the rest of the start-up; this
 * takes about a millisecond. No journal and no resize inode: the disk
 * dies with the VM and is never grown. Lazy inode tables: a fresh sparse
 * file reads as zeros, and the guest mounts it with noinit_itable.
 * Formatted in a memfd, then its written extents (about 80 KiB) copied into
 * fd, a new sparse file of size bytes: libext2fs fsyncs the file it opens,
 * which on the host's file system forces a journal commit (0.7 ms here,
 * far more under I/O load). No fsync of the image itself: nothing needs to
 * survive a host crash, and the VMM reads it through the same page cache
 * (its O_DIRECT reads flush dirty pages first). 0 or -errno with err set.
 */
static int scratch_copy_extents(int from, int to, uint64_t size)
{
	char buf[65536];
	off_t pos = 0, end;

	while ((uint64_t)pos < size) {
		pos = lseek(from, pos, SEEK_DATA);
		if (pos < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after pos */
		end = lseek(from, pos, SEEK_HOLE);
		if (end < 0)
			return -errno;
		while (pos < end) {
			size_t want = (size_t)(end - pos) < sizeof(buf) ? (size_t)(end - pos) : sizeof(buf);
			ssize_t n = pread(from, buf, want, pos);

			if (n <= 0)
				return n < 0 ? -errno : -EIO;
			if (pwrite(to, buf, (size_t)n, pos) != n)
				return -EIO;
			pos += n;
		}
	}
	return 0;
}

static int scratch_mkfs(int out, const char *path, uint64_t size, char *err, size_t errlen)
{
	struct ext2_super_block param;
	ext2_filsys fs = NULL;
	const char *what;
	errcode_t ec;
	ext2_ino_t lpf;
	blk64_t overhead = 0;
	unsigned char rnd[32];
	char fdname[16];
	int r, mfd, iofd = -1;

	memset(&param, 0, sizeof(param));
	param.s_log_block_size = 2; /* 1024 << 2 = 4096 */
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_inode_size = 256;
	param.s_log_groups_per_flex = 4;
	param.s_inodes_count = (uint32_t)(size / SCRATCH_INODE_RATIO);
	ext2fs_blocks_count_set(&param, size / 4096);
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
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = -errno;
		snprintf(err, errlen, "--scratch disk: getrandom: %s", strerror(errno));
		return r;
	}
	mfd = memfd_create("minivm-scratch", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, (off_t)size) < 0 || (iofd = dup(mfd)) < 0) {
		r = -errno;
		snprintf(err, errlen, "--scratch disk: a memfd to format in: %s", strerror(errno));
		if (mfd >= 0)
			close(mfd);
		return r;
	}
	/* libext2fs's unixfd manager takes the fd as a string, and closes it. */
	snprintf(fdname, sizeof(fdname), "%d", iofd);
	what = "setting up the superblock";
	ec = ext2fs_initialize(fdname, EXT2_FLAG_64BITS, &param, unixfd_io_manager, &fs);
	if (ec) {
		close(iofd);
		goto fail;
	}
	/* A random (version 4) UUID and directory hash seed, as mke2fs. */
	memcpy(fs->super->s_uuid, rnd, 16);
	fs->super->s_uuid[6] = (uint8_t)((fs->super->s_uuid[6] & 0x0f) | 0x40);
	fs->super->s_uuid[8] = (uint8_t)((fs->super->s_uuid[8] & 0x3f) | 0x80);
	memcpy(fs->super->s_hash_seed, rnd + 16, 16);
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	ext2fs_init_csum_seed(fs);
	fs->super->s_max_mnt_count = -1;
	fs->super->s_kbytes_written = 1;
	memset(fs->super->s_volume_name, 0, sizeof(fs->super->s_volume_name));
	memcpy(fs->super->s_volume_name, SCRATCH_LABEL, sizeof(SCRATCH_LABEL) - 1);
	what = "allocating the group tables";
	ec = ext2fs_allocate_tables(fs);
	if (!ec)
		ec = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map);
	/* What the metadata takes, for statfs (as mke2fs records it). */
	if (!ec)
		ec = ext2fs_count_used_clusters(fs, fs->super->s_first_data_block,
						ext2fs_blocks_count(fs->super) - 1, &overhead);
	if (ec)
		goto fail;
	fs->super->s_overhead_clusters = (uint32_t)(overhead + fs->super->s_first_data_block);
	what = "creating the root directory";
	ec = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0);
	if (ec)
		goto fail;
	/* lost+found: 0700, 16 KiB, as mke2fs makes it (e2fsck's place). */
	what = "creating lost+found";
	fs->umask = 077;
	ec = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found");
	if (!ec)
		ec = ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, 0, &lpf);
	for (unsigned int sz = 4096; !ec && sz < 16384; sz += 4096)
		ec = ext2fs_expand_dir(fs, lpf);
	if (ec)
		goto fail;
	/* The reserved inodes (below s_first_ino) in use; the bad-block
	 * inode, empty. */
	for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
		ext2fs_inode_alloc_stats2(fs, i, +1, 0);
	ext2fs_mark_ib_dirty(fs);
	what = "writing the bad-block inode";
	ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
	ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
	ec = ext2fs_update_bb_inode(fs, NULL);
	if (ec)
		goto fail;
	what = "writing the file system";
	ec = ext2fs_close2(fs, EXT2_FLAG_FLUSH_NO_SYNC);
	fs = NULL;
	if (ec)
		goto fail;
	r = scratch_copy_extents(mfd, out, size);
	close(mfd);
	if (r)
		snprintf(err, errlen, "--scratch disk: writing %s: %s", path, strerror(-r));
	return r;
fail:
	if (fs)
		ext2fs_free(fs);
	close(mfd);
	snprintf(err, errlen, "--scratch disk: formatting %s: %s: %s", path, what,
		 error_message(ec));
	return -EIO;
}

int scratch_setup(struct minivm_config *cfg, enum scratch_mode mode, uint64_t size,
		  const char *dir, char *img_path, size_t img_size, char *cmdline_buf,
		  size_t cmdline_size, char *err, size_t errlen)
{
	struct agent_scratch sc = { 0 };
	char hint[AGENT_SCRATCH_VALUE_MAX];
	int n, fd, r;

	if (img_size)
		img_path[0] = '\0';
	if (mode == SCRATCH_NONE || mode == SCRATCH_DEFAULT)
		return 0;
	if (mode == SCRATCH_DISK) {
		unsigned int idx = cfg->nr_disks;

		/* The root is vda, extra disks vdb...; this one comes last. */
		if (idx >= MINIVM_MAX_DISKS - 1) {
			snprintf(err, errlen, "--scratch disk: no disk slot left (%u --disk given)", idx);
			return -ENOSPC;
		}
		if (size < SCRATCH_MIN_SIZE || size > SCRATCH_MAX_SIZE) {
			snprintf(err, errlen, "--scratch-size must be 16M to 1T");
			return -EINVAL;
		}
		n = snprintf(img_path, img_size, "%s/" SCRATCH_IMAGE_NAME, dir);
		if (n < 0 || (size_t)n >= img_size) {
			snprintf(err, errlen, "--scratch disk: run directory path too long");
			return -ENAMETOOLONG;
		}
		fd = open(img_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			snprintf(err, errlen, "--scratch disk: %s: %s", img_path, strerror(errno));
			img_path[0] = '\0';
			return r;
		}
		r = ftruncate(fd, (off_t)size) ? -errno : 0;
		if (r) {
			close(fd);
			snprintf(err, errlen, "--scratch disk: %s: %s", img_path, strerror(-r));
			return r;
		}
		r = scratch_mkfs(fd, img_path, size, err, errlen);
		close(fd);
		if (r)
			return r;
		sc.kind = AGENT_SCRATCH_DISK;
		snprintf(sc.dev, sizeof(sc.dev), "vd%c", 'b' + idx);
		memset(&cfg->disks[idx], 0, sizeof(cfg->disks[idx]));
		cfg->disks[idx].path = img_path;
		cfg->disks[idx].read_only = false;
		cfg->nr_disks = idx + 1;
	} else {
		sc.kind = AGENT_SCRATCH_TMPFS;
		sc.size = size;
	}
	n = agent_scratch_format(&sc, hint, sizeof(hint));
	if (n < 0) {
		snprintf(err, errlen, "--scratch: cannot encode the guest's hint");
		return -EINVAL;
	}
	n = snprintf(cmdline_buf, cmdline_size, MINIVM_SCRATCH_PARAM "%s%s%s", hint,
		     cfg->cmdline ? " " : "", cfg->cmdline ? cfg->cmdline : "");
	if (n < 0 || (size_t)n >= cmdline_size) {
		snprintf(err, errlen, "--cmdline too long");
		return -E2BIG;
	}
	cfg->cmdline = cmdline_buf;
	return 0;
}
