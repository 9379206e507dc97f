/* Checks that a root filesystem image is one the guest kernel can mount (ext2/3/4). */
#ifndef MINIVM_ROOTFS_CHECK_H
#define MINIVM_ROOTFS_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes from the start of the image that rootfs_check() needs. */
#define ROOTFS_PROBE_BYTES 2048

/* Pure: looks at the first `len` bytes of an image. 0 when it holds an ext
 * superblock the guest kernel can mount; -EINVAL with a reason otherwise
 * (too short, no magic, a block size out of range, incompatible features
 * the kernel lacks are left to the kernel). */
int rootfs_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
	__attribute__((warn_unused_result));

#endif
