/* The ext superblock check behind --rootfs: a clear error before a boot is spent. */
#include "vmm/rootfs_check.h"

#include <errno.h>
#include <stdio.h>

#define EXT_SB_OFFSET 1024
#define EXT_SB_MAGIC_OFF 56
#define EXT_SB_LOG_BLOCK_OFF 24
#define EXT_SB_BLOCKS_OFF 4
#define EXT_MAGIC 0xef53

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int rootfs_check(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	const uint8_t *sb = buf + EXT_SB_OFFSET;
	uint32_t log_block;

	if (len < EXT_SB_OFFSET + EXT_SB_MAGIC_OFF + 2) {
		snprintf(why, whylen, "too small to hold a filesystem (%zu bytes)", len);
		return -EINVAL;
	}
	if ((uint16_t)(sb[EXT_SB_MAGIC_OFF] | sb[EXT_SB_MAGIC_OFF + 1] << 8) != EXT_MAGIC) {
		snprintf(why, whylen, "no ext4 superblock (the guest kernel mounts ext4 only)");
		return -EINVAL;
	}
	log_block = le32(sb + EXT_SB_LOG_BLOCK_OFF);
	if (log_block > 6) { /* 1 KiB << 6 = 64 KiB, the largest ext block size */
		snprintf(why, whylen, "ext superblock has an invalid block size (log %u)", log_block);
		return -EINVAL;
	}
	if (le32(sb + EXT_SB_BLOCKS_OFF) == 0) {
		snprintf(why, whylen, "ext superblock says the filesystem has no blocks");
		return -EINVAL;
	}
	return 0;
}
