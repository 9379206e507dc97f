/* minivm-runc's guest root: a bundle's rootfs directory, the spec's binds and the agent as one ext4 image. */
#ifndef MINIVM_RUNC_ROOTFS_H
#define MINIVM_RUNC_ROOTFS_H

#include <stddef.h>

#include "vmm/runc.h"

/*
 * Writes a NEW ext4 image at `image` (it must not exist) holding:
 * - the host directory rootfs_dir, walked without following any symlink
 *   (openat O_NOFOLLOW, fstatat AT_SYMLINK_NOFOLLOW), keeping owners, modes,
 *   mtimes, symlinks (a relative target that climbs above the root becomes
 *   the absolute path the guest kernel would reach), hard links (one inode),
 *   character and block devices and fifos; sockets are skipped;
 * - s's mounts: a directory at each mount point the guest mounts itself or
 *   that is a tmpfs elsewhere, and for binds a copy of the source taken now
 *   (a regular file bound anywhere under /etc/, or a file or directory bound
 *   read-only); any other bind is refused;
 * - /dev, /proc, /sys, /run, /tmp, /mnt if missing, and the agent binary
 *   agent_bin at /sbin/minivm-init (/sbin resolved through the root's
 *   symlinks), the init the VM boots with.
 * File data is spooled to an unlinked file in spool_dir. 0 or -errno with a
 * message naming the path at fault in err; on error no image is left.
 */
int runc_rootfs_build(const struct runc_spec *s, const char *rootfs_dir, const char *agent_bin,
		      const char *spool_dir, const char *image, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
