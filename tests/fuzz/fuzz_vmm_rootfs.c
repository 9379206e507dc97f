/* libFuzzer target for vmm/rootfs_check.c: any bytes as the start of a root filesystem image. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/rootfs_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[128];
	int r;

	/* data is an exact-size heap copy: any read past size is caught. */
	memset(why, 'X', sizeof(why));
	r = rootfs_check(data, size, why, sizeof(why));
	if (r == 0) {
		/* Accepted: the magic must be there, at 1024 + 56. */
		if (size < 1024 + 58 || data[1024 + 56] != 0x53 || data[1024 + 57] != 0xef)
			abort();
	} else if (r != -EINVAL || memchr(why, '\0', sizeof(why)) == NULL || why[0] == '\0') {
		abort();
	}
	return 0;
}
