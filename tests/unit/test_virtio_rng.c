/* Unit tests for virtio-rng (devices/virtio_rng.c) through the MMIO transport. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio_mmio.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_spec.h"
#include "tests/unit/test_virtio_helpers.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK
#define BUF 0x100000

static struct fake_ram ram;
static struct vmmio *t;
static struct vq_builder b;
static int irq;

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	vmmio_read(t, off, &v, 4);
	return v;
}

static void setup(void)
{
	struct virtio_dev *d;

	fake_ram_init(&ram, 4 << 20);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d = virtio_rng_create();
	ck_assert_ptr_nonnull(d);
	t = vmmio_create(d, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	vqb_init(&b, &ram, 16, 0x1000);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
}

static void teardown(void)
{
	vmmio_destroy(t);
	close(irq);
	fake_ram_free(&ram);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

START_TEST(test_fills_buffer)
{
	uint64_t n = 0;

	vqb_desc(&b, 0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	vmmio_queue_notify(t, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 1);
	ck_assert_uint_eq(vqb_used(&b, 0).id, 0);
	ck_assert_uint_eq(vqb_used(&b, 0).len, 64);
	ck_assert(!all_zero(fake_ram_at(&ram, BUF, 64), 64));
	ck_assert(all_zero(fake_ram_at(&ram, BUF + 64, 64), 64)); /* not beyond */
	ck_assert_int_eq(read(irq, &n, 8), 8);

	/* A second request gets different bytes. */
	vqb_desc(&b, 1, BUF + 0x1000, 64, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 2);
	ck_assert_int_ne(memcmp(fake_ram_at(&ram, BUF, 64), fake_ram_at(&ram, BUF + 0x1000, 64), 64), 0);
	/* Metrics: two requests, the bytes given. */
	{
		struct minivm_device_metrics m;

		virtio_stats_read(&vmmio_device(t)->stats, &m);
		ck_assert_uint_eq(m.reads, 2);
		ck_assert_uint_eq(m.read_bytes, 128);
	}
}
END_TEST

START_TEST(test_several_buffers_and_readable_ones)
{
	vqb_desc(&b, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1); /* readable: ignored */
	vqb_desc(&b, 1, BUF + 0x100, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	vqb_desc(&b, 2, BUF + 0x200, 16, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	vqb_desc(&b, 3, BUF + 0x300, 32, 0, 0); /* nothing writable */
	vqb_publish(&b, 3);
	vmmio_queue_notify(t, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 2);
	ck_assert_uint_eq(vqb_used(&b, 0).len, 32);
	ck_assert_uint_eq(vqb_used(&b, 1).len, 0);
	ck_assert(all_zero(fake_ram_at(&ram, BUF, 8), 8));
	ck_assert(all_zero(fake_ram_at(&ram, BUF + 0x300, 32), 32));
	ck_assert(!all_zero(fake_ram_at(&ram, BUF + 0x200, 16), 16));
}
END_TEST

START_TEST(test_bounded_per_request)
{
	vqb_desc(&b, 0, BUF, 1 << 20, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	vmmio_queue_notify(t, 0);
	ck_assert_uint_eq(vqb_used(&b, 0).len, VIRTIO_RNG_MAX_BYTES);
	ck_assert(all_zero(fake_ram_at(&ram, BUF + VIRTIO_RNG_MAX_BYTES, 4096), 4096));
}
END_TEST

START_TEST(test_broken_ring_needs_reset)
{
	vqb_desc(&b, 0, ram.size - 8, 64, VIRTQ_DESC_F_WRITE, 0); /* outside RAM */
	vqb_publish(&b, 0);
	vmmio_queue_notify(t, 0);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_rng");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fills_buffer);
	tcase_add_test(tc, test_several_buffers_and_readable_ones);
	tcase_add_test(tc, test_bounded_per_request);
	tcase_add_test(tc, test_broken_ring_needs_reset);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
