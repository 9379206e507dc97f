/* The guest's writable layer (--scratch): a sparse ext4 disk the front makes in the run directory, or a tmpfs, announced with minivm.scratch=. */
#ifndef MINIVM_SCRATCH_H
#define MINIVM_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/minivm.h"

enum scratch_mode {
	SCRATCH_DEFAULT = 0, /* DISK with --agent and a read-only root, else NONE */
	SCRATCH_DISK,        /* an ext4 disk of scratch_size bytes (sparse) */
	SCRATCH_TMPFS,       /* a tmpfs in guest RAM, at most scratch_size bytes */
	SCRATCH_NONE,        /* no overlay: the root as it is */
};

#define SCRATCH_DEFAULT_SIZE (1ULL << 30)
#define SCRATCH_MIN_SIZE (16ULL << 20)
#define SCRATCH_MAX_SIZE (1ULL << 40)
#define SCRATCH_IMAGE_NAME "scratch.img"

/* "disk", "tmpfs", "none": 0 with *out set, or -EINVAL. */
int scratch_parse_mode(const char *s, enum scratch_mode *out) __attribute__((warn_unused_result));

/*
 * Sets up cfg for mode (not SCRATCH_DEFAULT): for SCRATCH_DISK creates
 * dir/scratch.img (a new file, mode 0600, size bytes, sparse), formats it
 * as ext4 in this process with libext2fs (no journal: it never outlives the
 * VM; no fsync) and adds
 * it to cfg->disks as the last, writable disk; for both DISK and TMPFS puts
 * "minivm.scratch=..." in front of cfg->cmdline (so a user's --cmdline can
 * override it), written into cmdline_buf which must outlive cfg's use.
 * img_path (img_size bytes) receives the image's path ("" for TMPFS/NONE)
 * for the caller to unlink. Returns 0 or -errno with a message in err.
 */
int scratch_setup(struct minivm_config *cfg, enum scratch_mode mode, uint64_t size,
		  const char *dir, char *img_path, size_t img_size, char *cmdline_buf,
		  size_t cmdline_size, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
