/* Unit tests for the split virtqueue walker (devices/virtq.c) on a fake guest memory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_spec.h"
#include "devices/virtq.h"
#include "tests/unit/test_virtio_helpers.h"

#define RAM_SIZE (1u << 20)
#define QSIZE 16
#define RING_BASE 0x1000
#define BUF 0x20000
#define ITABLE 0x30000

static struct fake_ram ram;
static struct vq_builder b;
static struct virtq vq;
static struct virtq_chain chain;

static void setup(void)
{
	fake_ram_init(&ram, RAM_SIZE);
	vqb_init(&b, &ram, QSIZE, RING_BASE);
	vqb_attach(&b, &vq, false, true);
}

static void teardown(void)
{
	fake_ram_free(&ram);
}

static void expect_broken(const char *why_part)
{
	uint16_t last = vq.last_avail, inflight = vq.inflight;

	ck_assert_int_eq(virtq_pop(&vq, &chain), -EINVAL);
	ck_assert_ptr_nonnull(vq.error);
	if (why_part && !strstr(vq.error, why_part))
		ck_abort_msg("error \"%s\" lacks \"%s\"", vq.error, why_part);
	ck_assert_uint_eq(vq.last_avail, last); /* nothing consumed */
	ck_assert_uint_eq(vq.inflight, inflight);
}

START_TEST(test_empty_ring)
{
	ck_assert_int_eq(virtq_pop(&vq, &chain), 0);
	ck_assert_int_eq(virtq_enable_notify(&vq), false);
}
END_TEST

START_TEST(test_normal_chain_and_push)
{
	vqb_desc(&b, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 7);
	vqb_desc(&b, 7, BUF + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	vqb_desc(&b, 1, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 3);

	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.head, 3);
	ck_assert_uint_eq(chain.nseg, 3);
	ck_assert_uint_eq(chain.nread, 1);
	ck_assert_uint_eq(chain.read_len, 16);
	ck_assert_uint_eq(chain.write_len, 513);
	ck_assert_uint_eq(chain.seg[0].gpa, BUF);
	ck_assert(!chain.seg[0].write);
	ck_assert_uint_eq(chain.seg[1].gpa, BUF + 0x1000);
	ck_assert_uint_eq(chain.seg[1].len, 512);
	ck_assert(chain.seg[1].write);
	ck_assert_uint_eq(chain.seg[2].len, 1);
	ck_assert_uint_eq(vq.inflight, 1);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 0);

	ck_assert_int_eq(virtq_push(&vq, 3, 513), 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 1);
	ck_assert_uint_eq(vqb_used(&b, 0).id, 3);
	ck_assert_uint_eq(vqb_used(&b, 0).len, 513);
	ck_assert_uint_eq(vq.inflight, 0);
	/* Pushing it again is a device bug and writes nothing. */
	ck_assert_int_eq(virtq_push(&vq, 3, 1), -EINVAL);
	ck_assert_uint_eq(vqb_used_idx(&b), 1);
}
END_TEST

START_TEST(test_chain_of_queue_size_is_accepted)
{
	for (uint16_t i = 0; i < QSIZE; i++)
		vqb_desc(&b, i, BUF + 64ULL * i, 64, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	vqb_publish(&b, 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.nseg, QSIZE);
	ck_assert_uint_eq(chain.read_len, 64 * QSIZE);
}
END_TEST

START_TEST(test_looping_chain)
{
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	vqb_desc(&b, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	vqb_publish(&b, 0);
	expect_broken("longer than");
}
END_TEST

START_TEST(test_self_loop)
{
	vqb_desc(&b, 5, BUF, 8, VIRTQ_DESC_F_NEXT, 5);
	vqb_publish(&b, 5);
	expect_broken("longer than");
}
END_TEST

START_TEST(test_head_out_of_range)
{
	vqb_publish(&b, QSIZE);
	expect_broken("head");
	vqb_init(&b, &ram, QSIZE, RING_BASE);
	vqb_attach(&b, &vq, false, true);
	vqb_publish(&b, 0xffff);
	expect_broken("head");
}
END_TEST

START_TEST(test_next_out_of_range)
{
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_NEXT, QSIZE);
	vqb_publish(&b, 0);
	expect_broken("next");
}
END_TEST

START_TEST(test_buffer_outside_ram)
{
	vqb_desc(&b, 0, RAM_SIZE - 8, 16, 0, 0);
	vqb_publish(&b, 0);
	expect_broken("outside RAM");
}
END_TEST

START_TEST(test_buffer_ending_at_end_of_ram)
{
	vqb_desc(&b, 0, RAM_SIZE - 16, 16, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.seg[0].gpa, RAM_SIZE - 16);
}
END_TEST

START_TEST(test_buffer_address_wraps)
{
	vqb_desc(&b, 0, UINT64_MAX - 4, 16, 0, 0);
	vqb_publish(&b, 0);
	expect_broken("outside RAM");
}
END_TEST

START_TEST(test_huge_length)
{
	vqb_desc(&b, 0, 0, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	expect_broken("outside RAM");
}
END_TEST

/* Lengths whose sum overflows 32 bits, each inside a (pretend) 16 GiB RAM:
 * the walker never dereferences buffers, only the 1 MiB holding the ring. */
START_TEST(test_total_length_overflows)
{
	struct guest_mem big = { .nr = 1 };

	big.r[0] = (struct gm_region){ .gpa = 0, .size = 16ULL << 30, .host = ram.host };
	vq.gm = &big;
	vqb_desc(&b, 0, 1ULL << 30, 0xf0000000u, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, 8ULL << 30, 0x20000000u, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	expect_broken("4 GiB");
}
END_TEST

START_TEST(test_buffer_across_ram_regions)
{
	struct guest_mem two = { .nr = 2 };

	two.r[0] = (struct gm_region){ .gpa = 0, .size = RAM_SIZE / 2, .host = ram.host };
	two.r[1] = (struct gm_region){ .gpa = 1ULL << 32, .size = RAM_SIZE / 2,
				       .host = ram.host + RAM_SIZE / 2 };
	vq.gm = &two;
	/* Ends past the first region: not one contiguous range of RAM. */
	vqb_desc(&b, 0, RAM_SIZE / 2 - 8, 16, 0, 0);
	vqb_publish(&b, 0);
	expect_broken("outside RAM");
}
END_TEST

START_TEST(test_avail_index_jump)
{
	vqb_desc(&b, 0, BUF, 8, 0, 0);
	vqb_set_avail_idx(&b, QSIZE + 1);
	expect_broken("available index");
	/* Exactly queue-size pending is legal. */
	for (uint16_t i = 0; i < QSIZE; i++) {
		vqb_desc(&b, i, BUF, 8, 0, 0);
		memcpy(fake_ram_at(&ram, b.avail + 4 + 2ULL * i, 2), &i, 2);
	}
	vqb_set_avail_idx(&b, QSIZE);
	for (int i = 0; i < QSIZE; i++)
		ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 0);
}
END_TEST

START_TEST(test_avail_index_backwards)
{
	vqb_desc(&b, 0, BUF, 8, 0, 0);
	vqb_publish(&b, 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	vqb_set_avail_idx(&b, 0); /* 0 - 1 = 65535 pending */
	expect_broken("available index");
}
END_TEST

START_TEST(test_readable_after_writable)
{
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, BUF, 8, 0, 0);
	vqb_publish(&b, 0);
	expect_broken("readable");
}
END_TEST

START_TEST(test_head_available_twice)
{
	vqb_desc(&b, 2, BUF, 8, 0, 0);
	vqb_publish(&b, 2);
	vqb_publish(&b, 2);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	expect_broken("twice");
	/* Once returned, the same head may be made available again. */
	ck_assert_int_eq(virtq_push(&vq, 2, 0), 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.head, 2);
}
END_TEST

START_TEST(test_push_out_of_order)
{
	for (uint16_t h = 0; h < 3; h++) {
		vqb_desc(&b, h, BUF + 0x100ULL * h, 0x100, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b, h);
		ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
		ck_assert_uint_eq(chain.head, h);
	}
	ck_assert_int_eq(virtq_push(&vq, 2, 20), 0);
	ck_assert_int_eq(virtq_push(&vq, 0, 0), 0);
	ck_assert_int_eq(virtq_push(&vq, 1, 10), 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 3);
	ck_assert_uint_eq(vqb_used(&b, 0).id, 2);
	ck_assert_uint_eq(vqb_used(&b, 0).len, 20);
	ck_assert_uint_eq(vqb_used(&b, 1).id, 0);
	ck_assert_uint_eq(vqb_used(&b, 2).id, 1);
	ck_assert_uint_eq(vqb_used(&b, 2).len, 10);
	ck_assert_int_eq(virtq_push(&vq, 7, 0), -EINVAL); /* never popped */
	ck_assert_int_eq(virtq_push(&vq, QSIZE, 0), -EINVAL);
}
END_TEST

/* Snapshot quiescing: chains given back newest first are popped again. */
START_TEST(test_unpop)
{
	for (uint16_t h = 0; h < 3; h++) {
		vqb_desc(&b, h, BUF + 0x100ULL * h, 0x100, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b, h);
		ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	}
	ck_assert_int_eq(virtq_push(&vq, 0, 0), 0);
	ck_assert_int_eq(virtq_unpop(&vq, 0), -EINVAL); /* returned already */
	ck_assert_int_eq(virtq_unpop(&vq, QSIZE), -EINVAL);
	ck_assert_int_eq(virtq_unpop(&vq, 2), 0);
	ck_assert_int_eq(virtq_unpop(&vq, 1), 0);
	ck_assert_uint_eq(vq.inflight, 0);
	ck_assert_uint_eq(vq.last_avail, vq.used_idx);
	ck_assert_int_eq(virtq_unpop(&vq, 1), -EINVAL); /* not in flight any more */
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.head, 1);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.head, 2);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 0);
}
END_TEST

START_TEST(test_used_ring_wraps)
{
	for (unsigned i = 0; i < 3 * QSIZE + 5; i++) {
		uint16_t h = (uint16_t)(i * 5 % QSIZE);

		vqb_desc(&b, h, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b, h);
		ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
		ck_assert_uint_eq(chain.head, h);
		ck_assert_int_eq(virtq_push(&vq, h, i), 0);
		ck_assert_uint_eq(vqb_used(&b, (uint16_t)i).id, h);
		ck_assert_uint_eq(vqb_used(&b, (uint16_t)i).len, i);
	}
	ck_assert_uint_eq(vqb_used_idx(&b), 3 * QSIZE + 5);
}
END_TEST

START_TEST(test_indirect_chain)
{
	desc_at(&ram, ITABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	desc_at(&ram, ITABLE, 2, BUF + 0x100, 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc_at(&ram, ITABLE, 1, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	/* WRITE on the indirect descriptor itself is ignored (2.7.5.3.2). */
	vqb_desc(&b, 4, ITABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 4);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.head, 4);
	ck_assert_uint_eq(chain.nseg, 3);
	ck_assert_uint_eq(chain.nread, 1);
	ck_assert_uint_eq(chain.seg[1].len, 4096);
	ck_assert_uint_eq(chain.write_len, 4097);
	ck_assert_int_eq(virtq_push(&vq, 4, 4097), 0);
	ck_assert_uint_eq(vqb_used(&b, 0).id, 4);
}
END_TEST

START_TEST(test_indirect_not_negotiated)
{
	vq.indirect = false;
	desc_at(&ram, ITABLE, 0, BUF, 16, 0, 0);
	vqb_desc(&b, 0, ITABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("not negotiated");
}
END_TEST

START_TEST(test_indirect_table_outside_ram)
{
	vqb_desc(&b, 0, RAM_SIZE - 32, 64, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("outside RAM");
}
END_TEST

START_TEST(test_indirect_nested)
{
	desc_at(&ram, ITABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(&ram, ITABLE, 1, ITABLE + 0x100, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_desc(&b, 0, ITABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("nested");
}
END_TEST

START_TEST(test_indirect_too_long)
{
	for (uint16_t i = 0; i <= QSIZE; i++)
		desc_at(&ram, ITABLE, i, BUF, 8, i < QSIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	vqb_desc(&b, 0, ITABLE, 16 * (QSIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("longer than the queue");
}
END_TEST

START_TEST(test_indirect_bad_length)
{
	desc_at(&ram, ITABLE, 0, BUF, 8, 0, 0);
	vqb_desc(&b, 0, ITABLE, 24, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("multiple of 16");
	vqb_desc(&b, 0, ITABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
	expect_broken("multiple of 16");
}
END_TEST

START_TEST(test_indirect_with_next)
{
	desc_at(&ram, ITABLE, 0, BUF, 8, 0, 0);
	vqb_desc(&b, 0, ITABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, BUF, 8, 0, 0);
	vqb_publish(&b, 0);
	expect_broken("NEXT");
}
END_TEST

START_TEST(test_indirect_loop)
{
	desc_at(&ram, ITABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	desc_at(&ram, ITABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	vqb_desc(&b, 0, ITABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("longer than");
}
END_TEST

START_TEST(test_indirect_next_out_of_table)
{
	desc_at(&ram, ITABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2); /* table has 2 entries */
	desc_at(&ram, ITABLE, 1, BUF, 8, 0, 0);
	vqb_desc(&b, 0, ITABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	expect_broken("next");
}
END_TEST

/* A direct descriptor then an indirect table: legal, but the total number of
 * buffers is still bounded by the queue size. */
START_TEST(test_direct_then_indirect_bounded)
{
	for (uint16_t i = 0; i < QSIZE - 1; i++)
		desc_at(&ram, ITABLE + 0x1000, i, BUF, 8, i + 2 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	for (uint16_t i = 0; i < QSIZE; i++)
		desc_at(&ram, ITABLE, i, BUF, 8, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, ITABLE + 0x1000, 16 * (QSIZE - 1), VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_uint_eq(chain.nseg, QSIZE);

	vqb_desc(&b, 3, BUF, 8, VIRTQ_DESC_F_NEXT, 4);
	vqb_desc(&b, 4, ITABLE, 16 * QSIZE, VIRTQ_DESC_F_INDIRECT, 0);
	vqb_publish(&b, 3);
	expect_broken("more buffers");
}
END_TEST

START_TEST(test_no_interrupt_flag)
{
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_int_eq(virtq_push(&vq, 0, 8), 0);
	vqb_set_avail_flags(&b, VIRTQ_AVAIL_F_NO_INTERRUPT);
	ck_assert(!virtq_should_notify(&vq));
	vqb_set_avail_flags(&b, 0);
	ck_assert(virtq_should_notify(&vq));
}
END_TEST

static void pop_push_one(uint16_t h)
{
	vqb_desc(&b, h, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, h);
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	ck_assert_int_eq(virtq_push(&vq, h, 8), 0);
}

START_TEST(test_event_idx_suppression)
{
	vqb_attach(&b, &vq, true, true);
	vqb_set_avail_flags(&b, VIRTQ_AVAIL_F_NO_INTERRUPT); /* ignored with EVENT_IDX */
	vqb_set_used_event(&b, 5);
	pop_push_one(0); /* used_idx 1: the first decision always notifies */
	ck_assert(virtq_should_notify(&vq));
	pop_push_one(1); /* used_idx 2: driver wants to hear about entry 5 */
	ck_assert(!virtq_should_notify(&vq));
	for (uint16_t h = 2; h < 5; h++)
		pop_push_one(h); /* used_idx 5: entry 5 not written yet */
	ck_assert(!virtq_should_notify(&vq));
	pop_push_one(5); /* used_idx 6: entry 5 published since the last decision */
	ck_assert(virtq_should_notify(&vq));
	pop_push_one(6); /* used_idx 7: 5 is behind us now */
	ck_assert(!virtq_should_notify(&vq));
	/* Several entries in one batch crossing used_event. */
	vqb_set_used_event(&b, 8);
	pop_push_one(7);
	pop_push_one(8);
	pop_push_one(9);
	ck_assert(virtq_should_notify(&vq));
	/* Nothing new since the last decision: no interrupt. */
	ck_assert(!virtq_should_notify(&vq));
}
END_TEST

START_TEST(test_event_idx_wraps_16_bits)
{
	vqb_attach(&b, &vq, true, true);
	/* Start both sides near the 16-bit wrap. */
	vq.last_avail = 0xfffe;
	vq.used_idx = 0xfffe;
	vqb_set_avail_idx(&b, 0xfffe);
	memcpy(fake_ram_at(&ram, b.used + 2, 2), &vq.used_idx, 2);
	pop_push_one(0);
	ck_assert(virtq_should_notify(&vq)); /* first decision */
	vqb_set_used_event(&b, 0x0000);
	pop_push_one(1); /* used_idx 0x0000: 0xffff written */
	ck_assert(!virtq_should_notify(&vq));
	pop_push_one(2); /* used_idx 0x0001: entry 0x0000 written */
	ck_assert(virtq_should_notify(&vq));
	ck_assert_uint_eq(vqb_used_idx(&b), 1);
}
END_TEST

START_TEST(test_enable_notify_publishes_avail_event)
{
	vqb_attach(&b, &vq, true, true);
	pop_push_one(0);
	pop_push_one(1);
	ck_assert(!virtq_enable_notify(&vq));
	ck_assert_uint_eq(vqb_avail_event(&b), 2);
	vqb_desc(&b, 2, BUF, 8, 0, 0);
	vqb_publish(&b, 2); /* arrives after the last pop */
	ck_assert(virtq_enable_notify(&vq));
}
END_TEST

START_TEST(test_check_layout)
{
	struct virtq q;

	virtq_init(&q, &ram.gm);
	q.desc_gpa = b.desc;
	q.avail_gpa = b.avail;
	q.used_gpa = b.used;
	q.size = 0;
	ck_assert_int_eq(virtq_check(&q, 256), -EINVAL);
	q.size = 3;
	ck_assert_int_eq(virtq_check(&q, 256), -EINVAL);
	q.size = 512;
	ck_assert_int_eq(virtq_check(&q, 1024), -EINVAL); /* > VIRTQ_MAX_SIZE */
	q.size = 32;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL); /* > QueueNumMax */
	q.size = 16;
	ck_assert_int_eq(virtq_check(&q, 16), 0);

	q.desc_gpa = b.desc + 8;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
	q.desc_gpa = b.desc;
	q.avail_gpa = b.avail + 1;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
	q.avail_gpa = b.avail;
	q.used_gpa = b.used + 2;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
	q.used_gpa = b.used;

	/* A table ending exactly at the end of RAM is fine; 16 bytes later
	 * it is not. The used ring (with avail_event) likewise. */
	q.desc_gpa = RAM_SIZE - 16 * 16;
	ck_assert_int_eq(virtq_check(&q, 16), 0);
	q.desc_gpa = RAM_SIZE - 16 * 15;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
	q.desc_gpa = b.desc;
	q.used_gpa = (RAM_SIZE - (6 + 8 * 16)) & ~3ULL;
	ck_assert_int_eq(virtq_check(&q, 16), 0);
	q.used_gpa = RAM_SIZE - 4;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
	q.used_gpa = b.used;
	q.desc_gpa = 0xfffffffffffffff0ULL;
	ck_assert_int_eq(virtq_check(&q, 16), -EINVAL);
}
END_TEST

START_TEST(test_not_ready_pops_nothing)
{
	vqb_desc(&b, 0, BUF, 8, 0, 0);
	vqb_publish(&b, 0);
	vq.ready = false;
	ck_assert_int_eq(virtq_pop(&vq, &chain), 0);
	vq.ready = true;
	ck_assert_int_eq(virtq_pop(&vq, &chain), 1);
	virtq_reset(&vq);
	ck_assert(!vq.ready);
	ck_assert_int_eq(virtq_push(&vq, 0, 0), -EINVAL); /* in-flight forgotten */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtq");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_ring);
	tcase_add_test(tc, test_normal_chain_and_push);
	tcase_add_test(tc, test_chain_of_queue_size_is_accepted);
	tcase_add_test(tc, test_looping_chain);
	tcase_add_test(tc, test_self_loop);
	tcase_add_test(tc, test_head_out_of_range);
	tcase_add_test(tc, test_next_out_of_range);
	tcase_add_test(tc, test_buffer_outside_ram);
	tcase_add_test(tc, test_buffer_ending_at_end_of_ram);
	tcase_add_test(tc, test_buffer_address_wraps);
	tcase_add_test(tc, test_huge_length);
	tcase_add_test(tc, test_total_length_overflows);
	tcase_add_test(tc, test_buffer_across_ram_regions);
	tcase_add_test(tc, test_avail_index_jump);
	tcase_add_test(tc, test_avail_index_backwards);
	tcase_add_test(tc, test_readable_after_writable);
	tcase_add_test(tc, test_head_available_twice);
	tcase_add_test(tc, test_push_out_of_order);
	tcase_add_test(tc, test_unpop);
	tcase_add_test(tc, test_used_ring_wraps);
	tcase_add_test(tc, test_indirect_chain);
	tcase_add_test(tc, test_indirect_not_negotiated);
	tcase_add_test(tc, test_indirect_table_outside_ram);
	tcase_add_test(tc, test_indirect_nested);
	tcase_add_test(tc, test_indirect_too_long);
	tcase_add_test(tc, test_indirect_bad_length);
	tcase_add_test(tc, test_indirect_with_next);
	tcase_add_test(tc, test_indirect_loop);
	tcase_add_test(tc, test_indirect_next_out_of_table);
	tcase_add_test(tc, test_direct_then_indirect_bounded);
	tcase_add_test(tc, test_no_interrupt_flag);
	tcase_add_test(tc, test_event_idx_suppression);
	tcase_add_test(tc, test_event_idx_wraps_16_bits);
	tcase_add_test(tc, test_enable_notify_publishes_avail_event);
	tcase_add_test(tc, test_check_layout);
	tcase_add_test(tc, test_not_ready_pops_nothing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
