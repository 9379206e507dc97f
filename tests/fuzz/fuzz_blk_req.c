/* libFuzzer target: the virtio-blk request parser (blk_req_parse) on fuzzed chains and guest memory. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_spec.h"
#include "vmm/guest_mem.h"

#define FUZZ_RAM (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Input: flags (1), capacity (8), segment count (1), then 5 bytes per
 * segment (offset 2, length 2, flags 1), then the RAM contents. Segments are
 * clipped into RAM, as virtq_pop guarantees, and readable ones go first. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain c;
	static struct blk_req r;
	static uint8_t *ram;
	struct virtq_seg rd[VIRTQ_MAX_SIZE], wr[VIRTQ_MAX_SIZE];
	unsigned int nrd = 0, nwr = 0, nseg;
	struct guest_mem gm;
	struct blk_geom g;
	uint64_t sum = 0;
	size_t p = 10;
	int ret;

	if (size < 10)
		return 0;
	if (!ram)
		ram = malloc(FUZZ_RAM);
	g = (struct blk_geom){
		.read_only = data[0] & 1,
		.discard = data[0] & 2,
		.write_zeroes = data[0] & 4,
		.capacity = data[0] & 8 ? rd64(data + 1) : rd64(data + 1) & 0xffff,
		.max_discard_sectors = 1u << (data[0] >> 4),
		.max_write_zeroes_sectors = 1u << (data[0] >> 5),
	};
	nseg = data[9] % (VIRTQ_MAX_SIZE + 1);
	for (unsigned int i = 0; i < nseg && p + 5 <= size; i++, p += 5) {
		uint64_t off = (data[p] | data[p + 1] << 8) % FUZZ_RAM;
		uint64_t len = (data[p + 2] | data[p + 3] << 8) % (FUZZ_RAM - off + 1);
		struct virtq_seg s = { .gpa = off, .len = (uint32_t)len, .write = data[p + 4] & 1 };

		if (s.write)
			wr[nwr++] = s;
		else
			rd[nrd++] = s;
	}
	memset(ram, 0, FUZZ_RAM);
	if (p < size)
		memcpy(ram, data + p, size - p < FUZZ_RAM ? size - p : FUZZ_RAM);
	gm_layout(&gm, ram, FUZZ_RAM);

	memset(&c, 0, sizeof(c));
	for (unsigned int i = 0; i < nrd; i++) {
		c.seg[c.nseg++] = rd[i];
		c.read_len += rd[i].len;
	}
	c.nread = (uint16_t)nrd;
	for (unsigned int i = 0; i < nwr; i++) {
		c.seg[c.nseg++] = wr[i];
		c.write_len += wr[i].len;
	}

	ret = blk_req_parse(&gm, &c, &g, &r);
	if (ret < 0) {
		if (ret != -EINVAL || c.write_len != 0 || !r.error)
			abort(); /* only a chain without a writable byte has no status */
		return 0;
	}
	if (!gm_ptr(&gm, r.status_gpa, 1))
		abort();
	if (ret > 0) {
		if ((ret != VIRTIO_BLK_S_IOERR && ret != VIRTIO_BLK_S_UNSUPP) || !r.error)
			abort();
		return 0;
	}
	/* A valid request: every promise of the parser holds. */
	for (unsigned int i = 0; i < r.ndata; i++) {
		if (!gm_ptr(&gm, r.data[i].gpa, r.data[i].len))
			abort();
		sum += r.data[i].len;
	}
	if (sum != r.data_len || r.ndata > c.nseg)
		abort();
	switch (r.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r.data_len % 512 || r.sector > g.capacity ||
		    g.capacity - r.sector < r.data_len / 512)
			abort();
		if (r.type == VIRTIO_BLK_T_OUT && (g.read_only || r.data_len + 16 != c.read_len))
			abort();
		if (r.type == VIRTIO_BLK_T_IN && r.data_len + 1 != c.write_len)
			abort();
		for (unsigned int i = 0; i < r.ndata; i++)
			if (r.data[i].write != (r.type == VIRTIO_BLK_T_IN))
				abort();
		break;
	case VIRTIO_BLK_T_GET_ID:
		if (r.data_len == 0 || r.data_len > VIRTIO_BLK_ID_BYTES)
			abort();
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (g.read_only || r.nsectors == 0 || r.sector > g.capacity ||
		    g.capacity - r.sector < r.nsectors)
			abort();
		if (r.type == VIRTIO_BLK_T_DISCARD ? !g.discard || r.nsectors > g.max_discard_sectors :
						     !g.write_zeroes || r.nsectors > g.max_write_zeroes_sectors)
			abort();
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	default:
		abort(); /* an unknown type was accepted */
	}
	return 0;
}
