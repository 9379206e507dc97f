/* Test helpers for virtio unit tests: a fake guest memory and a driver-side split-ring builder. */
#ifndef MINIVM_TEST_VIRTIO_HELPERS_H
#define MINIVM_TEST_VIRTIO_HELPERS_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_spec.h"
#include "devices/virtq.h"
#include "vmm/guest_mem.h"

/* Guest RAM from calloc, laid out as minivm lays out real RAM. */
struct fake_ram {
	uint8_t *host;
	uint64_t size;
	struct guest_mem gm;
};

static inline void fake_ram_init(struct fake_ram *r, uint64_t size)
{
	r->host = calloc(1, size);
	ck_assert_ptr_nonnull(r->host);
	r->size = size;
	gm_layout(&r->gm, r->host, size);
}

static inline void fake_ram_free(struct fake_ram *r)
{
	free(r->host);
	r->host = NULL;
}

static inline void *fake_ram_at(struct fake_ram *r, uint64_t gpa, uint64_t len)
{
	void *p = gm_ptr(&r->gm, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

/* The driver's view of one split ring placed at `base` in fake RAM:
 * descriptor table, then the available ring, then the used ring (4-aligned). */
struct vq_builder {
	struct fake_ram *ram;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

static inline void vqb_init(struct vq_builder *b, struct fake_ram *ram, uint16_t size, uint64_t base)
{
	b->ram = ram;
	b->size = size;
	b->desc = base;
	b->avail = base + 16ULL * size;
	b->used = (b->avail + 6 + 2ULL * size + 3) & ~3ULL;
	b->avail_idx = 0;
	memset(fake_ram_at(ram, base, b->used + 6 + 8ULL * size - base), 0,
	       b->used + 6 + 8ULL * size - base);
}

/* Points vq at the builder's rings and makes it ready (as the transport does). */
static inline void vqb_attach(struct vq_builder *b, struct virtq *vq, bool event_idx, bool indirect)
{
	virtq_init(vq, &b->ram->gm);
	vq->size = b->size;
	vq->desc_gpa = b->desc;
	vq->avail_gpa = b->avail;
	vq->used_gpa = b->used;
	ck_assert_int_eq(virtq_check(vq, VIRTQ_MAX_SIZE), 0);
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->ready = true;
}

static inline void desc_at(struct fake_ram *ram, uint64_t table, uint16_t i, uint64_t addr,
			   uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(fake_ram_at(ram, table + 16ULL * i, 16), &d, sizeof(d));
}

static inline void vqb_desc(struct vq_builder *b, uint16_t i, uint64_t addr, uint32_t len,
			    uint16_t flags, uint16_t next)
{
	desc_at(b->ram, b->desc, i, addr, len, flags, next);
}

static inline void vqb_set_avail_idx(struct vq_builder *b, uint16_t idx)
{
	b->avail_idx = idx;
	memcpy(fake_ram_at(b->ram, b->avail + 2, 2), &idx, 2);
}

/* Makes the chain at `head` available and publishes the new index. */
static inline void vqb_publish(struct vq_builder *b, uint16_t head)
{
	memcpy(fake_ram_at(b->ram, b->avail + 4 + 2ULL * (b->avail_idx % b->size), 2), &head, 2);
	vqb_set_avail_idx(b, (uint16_t)(b->avail_idx + 1));
}

static inline void vqb_set_avail_flags(struct vq_builder *b, uint16_t flags)
{
	memcpy(fake_ram_at(b->ram, b->avail, 2), &flags, 2);
}

static inline void vqb_set_used_event(struct vq_builder *b, uint16_t ev)
{
	memcpy(fake_ram_at(b->ram, b->avail + 4 + 2ULL * b->size, 2), &ev, 2);
}

static inline uint16_t vqb_avail_event(struct vq_builder *b)
{
	uint16_t v;

	memcpy(&v, fake_ram_at(b->ram, b->used + 4 + 8ULL * b->size, 2), 2);
	return v;
}

static inline uint16_t vqb_used_idx(struct vq_builder *b)
{
	uint16_t v;

	memcpy(&v, fake_ram_at(b->ram, b->used + 2, 2), 2);
	return v;
}

static inline struct virtq_used_elem vqb_used(struct vq_builder *b, uint16_t i)
{
	struct virtq_used_elem e;

	memcpy(&e, fake_ram_at(b->ram, b->used + 4 + 8ULL * (i % b->size), 8), 8);
	return e;
}

#endif
