/* libFuzzer target for vmm/snap.c and vmm/snapshot.c's metadata parser: any bytes open or fail cleanly; an opened file's every section can be read to its end without overrun; MACHINE/DISK sections parse or are refused. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/sha256.h"
#include "vmm/snap.h"
#include "vmm/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is taken as a file; when its first byte is odd the header's
 * body length and checksum are fixed up first, so the fuzzer reaches the
 * section walk instead of stopping at the checksum.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 16];
	struct snap_reader r;
	struct snap_cursor c;
	char err[256];
	uint32_t v32;

	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	if (size >= SNAP_HDR_SIZE && (buf[0] & 1)) {
		uint64_t body = size - SNAP_HDR_SIZE;

		memcpy(buf, SNAP_MAGIC, 8);
		for (int i = 0; i < 8; i++)
			buf[16 + i] = (uint8_t)(body >> (8 * i));
		sha256_digest(buf + SNAP_HDR_SIZE, (size_t)body, buf + 24);
	}
	if (snap_reader_open(&r, buf, size, err, sizeof(err)) != 0) {
		assert(memchr(err, '\0', sizeof(err)));
		return 0;
	}
	{
		static struct snapshot_meta m;

		if (snapshot_meta_parse(&r, &m, err, sizeof(err)) == 0) {
			assert(m.nr_disks <= SNAPSHOT_MAX_DISKS);
			assert(m.mem.size == m.ram_size);
			for (uint32_t i = 0; i < m.nr_disks; i++)
				assert(memchr(m.disks[i].path, '\0', sizeof(m.disks[i].path)));
		}
	}
	for (uint32_t tag = 0; tag <= SNAP_TAG_DISK + 1; tag++) {
		for (uint32_t inst = 0; inst < 4; inst++) {
			if (snap_find(&r, tag, inst, &c) != 0)
				continue;
			assert(c.p >= r.body && c.p + c.left <= r.body + r.body_len);
			while (snap_get_u32(&c, &v32) == 0)
				;
			assert(c.left < 4);
		}
	}
	return 0;
}
