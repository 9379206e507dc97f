/* libFuzzer target: the virtqueue walker (devices/virtq.c) on fuzzed guest ring memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_spec.h"
#include "devices/virtq.h"
#include "vmm/guest_mem.h"

#define FUZZ_RAM (64u << 10)
#define FUZZ_HDR 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Input: a 16-byte header (queue size exponent, flags, ring offsets, a seed
 * for guest writes between pops), then the initial RAM contents; the tail of
 * the input doubles as a script of 3-byte guest stores (offset, value) that
 * run between pops, as a racing guest would. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain chain;
	static uint8_t *ram;
	struct guest_mem gm;
	struct virtq vq;
	uint16_t popped[VIRTQ_MAX_SIZE];
	unsigned npopped = 0;
	const uint8_t *script;
	size_t script_len, sp = 0;

	if (size < FUZZ_HDR)
		return 0;
	if (!ram)
		ram = malloc(FUZZ_RAM);
	memset(ram, 0, FUZZ_RAM);
	memcpy(ram, data + FUZZ_HDR, size - FUZZ_HDR < FUZZ_RAM ? size - FUZZ_HDR : FUZZ_RAM);
	script = data + FUZZ_HDR;
	script_len = size - FUZZ_HDR;
	gm_layout(&gm, ram, FUZZ_RAM);

	virtq_init(&vq, &gm);
	vq.size = (uint16_t)(1u << (data[0] % 10)); /* 1..512: 512 must be refused */
	vq.event_idx = data[1] & 1;
	vq.indirect = data[1] & 2;
	vq.desc_gpa = rd16(data + 2) * (data[1] & 4 ? 1u : 16u);
	vq.avail_gpa = rd16(data + 4) * (data[1] & 8 ? 1u : 2u);
	vq.used_gpa = rd16(data + 6) * (data[1] & 16 ? 1u : 4u);
	if (data[1] & 32)
		vq.used_gpa += (uint64_t)rd16(data + 8) << 32; /* outside RAM */
	if (virtq_check(&vq, VIRTQ_MAX_SIZE))
		return 0;
	if (vq.size > VIRTQ_MAX_SIZE)
		abort(); /* virtq_check must have refused it */
	vq.ready = true;

	for (unsigned round = 0; round < 4 * VIRTQ_MAX_SIZE; round++) {
		int r = virtq_pop(&vq, &chain);
		uint64_t rl = 0, wl = 0;

		if (r < 0 || (r == 0 && !virtq_enable_notify(&vq)))
			break;
		if (r == 0)
			continue;
		/* Invariants of every chain the walker hands out. */
		if (chain.head >= vq.size || chain.nseg > vq.size || chain.nread > chain.nseg)
			abort();
		for (unsigned i = 0; i < chain.nseg; i++) {
			const struct virtq_seg *s = &chain.seg[i];

			if (!gm_ptr(&gm, s->gpa, s->len))
				abort();
			if (s->write != (i >= chain.nread))
				abort();
			*(s->write ? &wl : &rl) += s->len;
		}
		if (rl != chain.read_len || wl != chain.write_len)
			abort();
		popped[npopped++] = chain.head;
		/* Return chains in a fuzzed order, sometimes holding them. */
		while (npopped && (sp >= script_len || script[sp % script_len] & 1 ||
				   npopped == vq.size)) {
			unsigned k = sp < script_len ? script[sp] % npopped : 0;
			uint16_t h = popped[k];

			popped[k] = popped[--npopped];
			if (virtq_push(&vq, h, (uint32_t)(chain.write_len & 0xffff)))
				abort(); /* every popped head must be accepted once */
			sp++;
		}
		(void)virtq_should_notify(&vq);
		/* A guest store between pops. */
		if (sp + 3 <= script_len) {
			ram[rd16(script + sp) % FUZZ_RAM] = script[sp + 2];
			sp += 3;
		}
	}
	while (npopped)
		if (virtq_push(&vq, popped[--npopped], 0))
			abort();
	if (vq.inflight)
		abort();
	return 0;
}
