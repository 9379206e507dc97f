/* Unit tests for the virtio-mmio transport (devices/virtio_mmio.c) with a fake device. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio_dev.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_spec.h"
#include "tests/unit/test_virtio_helpers.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK
#define FAILED VIRTIO_STATUS_FAILED
#define NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET

#define FAKE_FEATURES (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(3))

struct fake_dev {
	struct virtio_dev dev;
	uint8_t config[8];
	int activations, resets, notifies[4], config_writes;
	int activate_ret;
	uint64_t acked_at_activate;
	bool *destroyed;
};

static struct fake_ram ram;
static struct fake_dev *fd_;
static struct vmmio *t;
static int irq;
static bool destroyed;

static void fake_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	memcpy(data, f->config + off, len);
}

static void fake_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	memcpy(f->config + off, data, len);
	f->config_writes++;
}

static int fake_activate(struct virtio_dev *dev)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	f->activations++;
	f->acked_at_activate = dev->acked;
	return f->activate_ret;
}

static void fake_notify(struct virtio_dev *dev, unsigned int q)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	ck_assert_uint_lt(q, 2);
	f->notifies[q]++;
}

static void fake_reset(struct virtio_dev *dev)
{
	((struct fake_dev *)dev)->resets++;
}

static void fake_destroy(struct virtio_dev *dev)
{
	struct fake_dev *f = (struct fake_dev *)dev;

	*f->destroyed = true;
	free(f);
}

static const struct virtio_dev_ops fake_ops = {
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.queue_notify = fake_notify,
	.reset = fake_reset,
	.destroy = fake_destroy,
};

static struct fake_dev *fake_new(void)
{
	struct fake_dev *f = calloc(1, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	f->dev.ops = &fake_ops;
	f->dev.name = "fake";
	f->dev.device_id = 42;
	f->dev.features = FAKE_FEATURES;
	f->dev.config_size = sizeof(f->config);
	f->dev.num_queues = 2;
	f->dev.queue_max = 16;
	memcpy(f->config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	f->destroyed = &destroyed;
	return f;
}

static void setup(void)
{
	fake_ram_init(&ram, 1 << 20);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(irq, 0);
	fd_ = fake_new();
	destroyed = false;
	t = vmmio_create(&fd_->dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
}

static void teardown(void)
{
	vmmio_destroy(t);
	ck_assert(destroyed);
	close(irq);
	fake_ram_free(&ram);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	vmmio_read(t, off, &v, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static uint64_t irqs(void)
{
	uint64_t n = 0;

	if (read(irq, &n, 8) != 8)
		return 0;
	return n;
}

static void accept_features(uint64_t f)
{
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

/* Rings for queue q at a free spot in fake RAM. */
static void setup_queue(unsigned int q, uint16_t size, struct vq_builder *b)
{
	uint64_t base = 0x10000 + 0x10000ULL * q;

	vqb_init(b, &ram, size, base);
	wr(VIRTIO_MMIO_QUEUE_SEL, q);
	wr(VIRTIO_MMIO_QUEUE_NUM, size);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b->desc);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b->avail);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b->used);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The Linux driver's sequence (virtio_dev_probe + vm_find_vqs). */
static void bring_up(uint64_t features, struct vq_builder *b0)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	accept_features(features);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK);
	if (b0)
		setup_queue(0, 16, b0);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
}

START_TEST(test_identity_registers)
{
	ck_assert_uint_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_VERSION), 2);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), 42);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)FAKE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 is bit 32 */
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	wr(VIRTIO_MMIO_QUEUE_SEL, 2);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	ck_assert_uint_eq(vmmio_num_queues(t), 2);
}
END_TEST

/* Drives the device to status s (a legal state) from reset. */
static void drive_to(uint32_t s)
{
	static const uint32_t chain[] = { ACK, ACK | DRV, ACK | DRV | FOK, ACK | DRV | FOK | DOK };
	uint32_t base = s & ~(uint32_t)FAILED;

	wr(VIRTIO_MMIO_STATUS, 0);
	for (size_t i = 0; i < 4 && (chain[i] & base) == chain[i] && base; i++) {
		wr(VIRTIO_MMIO_STATUS, chain[i]);
		if (chain[i] == (ACK | DRV))
			accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	}
	if (s & FAILED)
		wr(VIRTIO_MMIO_STATUS, s);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), s);
}

/* The legal transitions, written out independently of the transport's table. */
static bool expected_legal(uint32_t from, uint32_t to)
{
	if (to == from)
		return true; /* no change */
	if (from & FAILED)
		return false; /* only a reset leaves FAILED */
	if (to == (from | FAILED))
		return true;
	switch (from) {
	case 0:
		return to == ACK;
	case ACK:
		return to == (ACK | DRV);
	case ACK | DRV:
		return to == (ACK | DRV | FOK);
	case ACK | DRV | FOK:
		return to == (ACK | DRV | FOK | DOK);
	default:
		return false;
	}
}

START_TEST(test_status_every_transition)
{
	static const uint32_t states[] = {
		0, ACK, ACK | DRV, ACK | DRV | FOK, ACK | DRV | FOK | DOK,
		FAILED, ACK | FAILED, ACK | DRV | FAILED, ACK | DRV | FOK | FAILED,
		ACK | DRV | FOK | DOK | FAILED,
	};
	unsigned int legal = 0, refused = 0;

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		for (uint32_t v = 1; v < 256; v++) {
			uint32_t want = v & ~(uint32_t)NEEDS_RESET, got;

			drive_to(states[i]);
			wr(VIRTIO_MMIO_STATUS, v);
			got = rd(VIRTIO_MMIO_STATUS);
			if (expected_legal(states[i], want)) {
				ck_assert_msg(got == want, "0x%x -> 0x%x: got 0x%x", states[i], v, got);
				legal++;
			} else {
				ck_assert_msg(got == states[i], "0x%x -> 0x%x accepted (0x%x)", states[i], v,
					      got);
				refused++;
			}
		}
	}
	ck_assert_uint_gt(refused, 2000);
	ck_assert_uint_gt(legal, 20);
	/* Reset from every state. */
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		drive_to(states[i]);
		wr(VIRTIO_MMIO_STATUS, 0);
		ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	}
}
END_TEST

START_TEST(test_driver_ok_before_features_ok_refused)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | DOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV);
	ck_assert_int_eq(fd_->activations, 0);
}
END_TEST

START_TEST(test_features_ok_needs_version_1)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	accept_features(VIRTIO_BIT(VIRTIO_F_EVENT_IDX)); /* a legacy driver */
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV);
	/* Features that were not offered. */
	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(5));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV);
	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK);
}
END_TEST

START_TEST(test_feature_writes_after_features_ok_ignored)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	/* Before DRIVER: ignored too. */
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 8);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_int_eq(fd_->activations, 1);
	ck_assert_uint_eq(fd_->acked_at_activate, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert(!fd_->dev.vqs[0].event_idx);
}
END_TEST

START_TEST(test_queue_setup_only_in_setup_state)
{
	struct vq_builder b;

	/* Before FEATURES_OK: ignored, queue stays unready. */
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	setup_queue(0, 16, &b);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert_uint_eq(fd_->dev.vqs[0].size, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET, 0);

	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	setup_queue(0, 16, &b);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	ck_assert_uint_eq(fd_->dev.vqs[0].desc_gpa, b.desc);
	/* A ready queue's layout is frozen. */
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	ck_assert_uint_eq(fd_->dev.vqs[0].desc_gpa, b.desc);

	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_int_eq(fd_->activations, 1);
	ck_assert(fd_->dev.vqs[0].event_idx);
	/* After DRIVER_OK: queue 1 cannot be set up, queue 0 cannot be stopped. */
	setup_queue(1, 16, &b);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert_uint_eq(fd_->dev.vqs[1].size, 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	ck_assert_uint_eq(fd_->dev.vqs[0].size, 16);
}
END_TEST

START_TEST(test_bad_queue_layout_needs_reset)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x10); /* 64 GiB: outside RAM */
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x2000);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x3000);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | NEEDS_RESET);
	ck_assert_uint_eq(irqs(), 0); /* no DRIVER_OK yet: no config interrupt */
	/* The driver can still go on to fail or reset; FAILED keeps NEEDS_RESET. */
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | NEEDS_RESET | FAILED);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | NEEDS_RESET | FAILED);
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
}
END_TEST

START_TEST(test_queue_size_checked)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	accept_features(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 32); /* > QueueNumMax 16 */
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x2000);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x3000);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET, 0);
}
END_TEST

START_TEST(test_notify_routing)
{
	struct vq_builder b;
	uint32_t q0 = 0;

	/* Before DRIVER_OK: nothing reaches the device. */
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	vmmio_queue_notify(t, 0);
	ck_assert_int_eq(fd_->notifies[0], 0);
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1), &b);
	vmmio_write(t, VIRTIO_MMIO_QUEUE_NOTIFY, &q0, 4);
	vmmio_queue_notify(t, 0);
	ck_assert_int_eq(fd_->notifies[0], 2);
	/* Queue 1 was never made ready; queue 7 does not exist. */
	vmmio_queue_notify(t, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	vmmio_queue_notify(t, 7);
	ck_assert_int_eq(fd_->notifies[1], 0);
	/* NEEDS_RESET stops delivery. */
	virtio_dev_lock(&fd_->dev);
	virtio_dev_fail(&fd_->dev, "test");
	virtio_dev_unlock(&fd_->dev);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & NEEDS_RESET, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	ck_assert_uint_eq(irqs(), 1);
	vmmio_queue_notify(t, 0);
	ck_assert_int_eq(fd_->notifies[0], 2);
}
END_TEST

START_TEST(test_used_interrupt_and_ack)
{
	struct vq_builder b;
	struct virtq_chain c;
	struct virtq *vq;

	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1), &b);
	vq = &fd_->dev.vqs[0];
	for (uint16_t h = 0; h < 3; h++) {
		vqb_desc(&b, h, 0x80000, 16, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b, h);
	}
	virtio_dev_lock(&fd_->dev);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(virtq_pop(vq, &c), 1);
	ck_assert_int_eq(virtq_push(vq, 0, 16), 0);
	virtio_dev_notify(&fd_->dev, 0);
	virtio_dev_unlock(&fd_->dev);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	ck_assert_uint_eq(irqs(), 1);

	/* Still pending (the guest has not acked): no second edge. */
	virtio_dev_lock(&fd_->dev);
	ck_assert_int_eq(virtq_push(vq, 1, 16), 0);
	virtio_dev_notify(&fd_->dev, 0);
	virtio_dev_unlock(&fd_->dev);
	ck_assert_uint_eq(irqs(), 0);

	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_dev_lock(&fd_->dev);
	ck_assert_int_eq(virtq_push(vq, 2, 16), 0);
	virtio_dev_notify(&fd_->dev, 0);
	virtio_dev_unlock(&fd_->dev);
	ck_assert_uint_eq(irqs(), 1);
	ck_assert_uint_eq(vqb_used_idx(&b), 3);

	/* The driver suppresses interrupts: none. */
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	vqb_set_avail_flags(&b, VIRTQ_AVAIL_F_NO_INTERRUPT);
	vqb_desc(&b, 0, 0x80000, 16, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	virtio_dev_lock(&fd_->dev);
	ck_assert_int_eq(virtq_pop(vq, &c), 1);
	ck_assert_int_eq(virtq_push(vq, 0, 16), 0);
	virtio_dev_notify(&fd_->dev, 0);
	virtio_dev_unlock(&fd_->dev);
	ck_assert_uint_eq(irqs(), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}
END_TEST

START_TEST(test_reset_clears_everything)
{
	struct vq_builder b;

	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), &b);
	virtio_dev_lock(&fd_->dev);
	virtio_dev_fail(&fd_->dev, "test");
	virtio_dev_unlock(&fd_->dev);
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_int_eq(fd_->resets, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	ck_assert(!fd_->dev.vqs[0].ready);
	ck_assert_uint_eq(fd_->dev.acked, 0);
	/* Linux's vm_del_vq after a reset: QueueReady=0 reads back 0. */
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	/* And the device comes up again. */
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1), &b);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
	ck_assert_int_eq(fd_->activations, 2);
	ck_assert_uint_eq(fd_->acked_at_activate, VIRTIO_BIT(VIRTIO_F_VERSION_1));
}
END_TEST

START_TEST(test_activation_failure_needs_reset)
{
	fd_->activate_ret = -EIO;
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1), NULL);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK | NEEDS_RESET);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	vmmio_queue_notify(t, 0);
	ck_assert_int_eq(fd_->notifies[0], 0);
}
END_TEST

START_TEST(test_bad_accesses)
{
	uint8_t b8[8];
	uint16_t v16 = 0xffff;
	uint64_t v64 = ~0ULL;

	/* Sub-word and misaligned register accesses read zero, write nothing. */
	vmmio_read(t, VIRTIO_MMIO_MAGIC_VALUE, &v16, 2);
	ck_assert_uint_eq(v16, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_MAGIC_VALUE + 1), 0);
	vmmio_read(t, VIRTIO_MMIO_MAGIC_VALUE, &v64, 8);
	ck_assert_uint_eq(v64, 0);
	v16 = ACK;
	vmmio_write(t, VIRTIO_MMIO_STATUS, &v16, 2);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	memset(b8, 0xff, sizeof(b8));
	vmmio_read(t, VIRTIO_MMIO_MAGIC_VALUE, b8, 3);
	/* Unknown registers, and offsets beyond the slot. */
	ck_assert_uint_eq(rd(0x0f0), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_DESC_LOW), 0); /* write-only */
	ck_assert_uint_eq(rd(VMMIO_SLOT_SIZE), 0);
	wr(0x0f0, 1);
	wr(VMMIO_SLOT_SIZE + 0x70, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_RESET), 0);
}
END_TEST

START_TEST(test_config_space)
{
	uint8_t b;
	uint16_t h;
	uint32_t w;
	uint64_t d;

	vmmio_read(t, 0x100, &b, 1);
	ck_assert_uint_eq(b, 1);
	vmmio_read(t, 0x102, &h, 2);
	ck_assert_uint_eq(h, 0x0403);
	vmmio_read(t, 0x104, &w, 4);
	ck_assert_uint_eq(w, 0x08070605);
	vmmio_read(t, 0x100, &d, 8);
	ck_assert_uint_eq(d, 0x0807060504030201ULL);
	/* The last byte, and one past it. */
	vmmio_read(t, 0x107, &b, 1);
	ck_assert_uint_eq(b, 8);
	w = 0xffffffff;
	vmmio_read(t, 0x106, &w, 4);
	ck_assert_uint_eq(w, 0);
	w = 0xaabbccdd;
	vmmio_write(t, 0x104, &w, 4);
	ck_assert_int_eq(fd_->config_writes, 1);
	ck_assert_uint_eq(fd_->config[4], 0xdd);
	vmmio_write(t, 0x108, &w, 4);
	vmmio_write(t, 0x105, &w, 4);
	ck_assert_int_eq(fd_->config_writes, 1);
}
END_TEST

START_TEST(test_create_validates_device)
{
	struct fake_dev *f = fake_new();

	f->dev.features = VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	errno = 0;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	ck_assert_int_eq(errno, EINVAL);
	f->dev.features = FAKE_FEATURES;
	f->dev.queue_max = 24;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	f->dev.queue_max = 512;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	f->dev.queue_max = 16;
	f->dev.num_queues = 0;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	f->dev.num_queues = VIRTIO_MAX_QUEUES + 1;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	f->dev.num_queues = 1;
	f->dev.config_size = 0xf01;
	ck_assert_ptr_null(vmmio_create(&f->dev, &ram.gm, irq));
	free(f);
}
END_TEST

/* A guest hammering bad registers gets a handful of log lines, not one each. */
START_TEST(test_log_rate_limited)
{
	char path[] = "/tmp/minivm-log-XXXXXX";
	int lf = mkstemp(path), saved = dup(2), lines = 0;
	char buf[65536];
	ssize_t n;

	ck_assert_int_ge(lf, 0);
	unlink(path);
	fflush(stderr);
	dup2(lf, 2);
	for (int i = 0; i < 1000; i++)
		(void)rd(0x0f0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(lf, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	ck_assert_int_ge(lines, 1);
	ck_assert_int_le(lines, 11);
	ck_assert_ptr_nonnull(strstr(buf, "minivm: fake: read of register 0x0f0 refused"));
	close(lf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_mmio");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_identity_registers);
	tcase_add_test(tc, test_status_every_transition);
	tcase_add_test(tc, test_driver_ok_before_features_ok_refused);
	tcase_add_test(tc, test_features_ok_needs_version_1);
	tcase_add_test(tc, test_feature_writes_after_features_ok_ignored);
	tcase_add_test(tc, test_queue_setup_only_in_setup_state);
	tcase_add_test(tc, test_bad_queue_layout_needs_reset);
	tcase_add_test(tc, test_queue_size_checked);
	tcase_add_test(tc, test_notify_routing);
	tcase_add_test(tc, test_used_interrupt_and_ack);
	tcase_add_test(tc, test_reset_clears_everything);
	tcase_add_test(tc, test_activation_failure_needs_reset);
	tcase_add_test(tc, test_bad_accesses);
	tcase_add_test(tc, test_config_space);
	tcase_add_test(tc, test_create_validates_device);
	tcase_add_test(tc, test_log_rate_limited);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
