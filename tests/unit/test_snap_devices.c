/* Unit tests for device snapshots: transport/queue/device state saved, restored into fresh devices that then work, and every corrupted field refused. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/i8042.h"
#include "devices/net_policy.h"
#include "devices/rtc_cmos.h"
#include "devices/uart8250.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_spec.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_pkt.h"
#include "vmm/evl.h"
#include "vmm/snap.h"
#include "vmm/vm.h"
#include "vmm/vm_snapshot.h"
#include "tests/unit/test_virtio_helpers.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK
#define RAM_SIZE (4u << 20)
#define BUF 0x100000
#define QSIZE 16

static struct fake_ram ram;

static void wr(struct vmmio *t, uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static uint32_t rd(struct vmmio *t, uint64_t off)
{
	uint32_t v;

	vmmio_read(t, off, &v, 4);
	return v;
}

/* The driver's side of setup: features (low word, then VERSION_1), queues
 * at bases[i] (QSIZE each), DRIVER_OK. */
static void driver_init(struct vmmio *t, uint32_t feat_lo, unsigned int nq, struct vq_builder *b,
			const uint64_t *bases)
{
	wr(t, VIRTIO_MMIO_STATUS, ACK);
	wr(t, VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, feat_lo);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	for (unsigned int q = 0; q < nq; q++) {
		vqb_init(&b[q], &ram, QSIZE, bases[q]);
		wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b[q].desc);
		wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b[q].avail);
		wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b[q].used);
		wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(t, VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(rd(t, VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
}

/* A saved state file in memory, and the section (tag, instance) in it. */
struct saved {
	struct snap_writer w;
	struct snap_reader r;
};

static void saved_finish(struct saved *s)
{
	const uint8_t *data;
	size_t len;
	char err[256];

	ck_assert_int_eq(snap_writer_finish(&s->w, &data, &len), 0);
	ck_assert_msg(snap_reader_open(&s->r, data, len, err, sizeof(err)) == 0, "%s", err);
}

static struct snap_cursor saved_section(struct saved *s, uint32_t tag, uint32_t instance)
{
	struct snap_cursor c;

	ck_assert_int_eq(snap_find(&s->r, tag, instance, &c), 0);
	return c;
}

/* Saves one transport (quiesced, idle) as slot 0. */
static void save_one(struct vmmio *t, struct saved *s)
{
	snap_writer_init(&s->w);
	vmmio_quiesce(t);
	ck_assert_uint_eq(vmmio_inflight(t), 0);
	ck_assert_int_eq(vmmio_save(t, &s->w, 0), 0);
	saved_finish(s);
}

static struct vmmio *new_rng(int irq)
{
	struct virtio_dev *d = virtio_rng_create();
	struct vmmio *t;

	ck_assert_ptr_nonnull(d);
	t = vmmio_create(d, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	return t;
}

static void rng_request(struct vq_builder *b, uint16_t i)
{
	vqb_desc(b, i, BUF + 0x100ULL * i, 32, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(b, i);
}

static void setup(void)
{
	fake_ram_init(&ram, RAM_SIZE);
}

static void teardown(void)
{
	fake_ram_free(&ram);
}

/* ---- round trips ---- */

START_TEST(test_rng_round_trip)
{
	int irq1 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), irq2 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct vmmio *t1 = new_rng(irq1), *t2;
	struct vq_builder b;
	struct snap_cursor c;
	struct saved s;
	struct virtq *q1, *q2;
	uint64_t n;
	char err[256];
	uint64_t base = 0x1000;

	driver_init(t1, 0, 1, &b, &base);
	for (uint16_t i = 0; i < 3; i++)
		rng_request(&b, i);
	vmmio_queue_notify(t1, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 3);
	wr(t1, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t1, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	save_one(t1, &s);
	/* Quiesced: a notification is not served until resume. */
	rng_request(&b, 3);
	vmmio_queue_notify(t1, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 3);

	t2 = new_rng(irq2);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_msg(vmmio_restore(t2, &c, err, sizeof(err)) == 0, "%s", err);
	q1 = vmmio_device(t1)->vqs;
	q2 = vmmio_device(t2)->vqs;
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_STATUS), rd(t1, VIRTIO_MMIO_STATUS));
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_DEVICE_FEATURES), rd(t1, VIRTIO_MMIO_DEVICE_FEATURES));
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_QUEUE_READY), 1);
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_CONFIG_GENERATION), rd(t1, VIRTIO_MMIO_CONFIG_GENERATION));
	ck_assert_uint_eq(vmmio_device(t2)->acked, vmmio_device(t1)->acked);
	ck_assert_uint_eq(q2->size, q1->size);
	ck_assert_uint_eq(q2->desc_gpa, q1->desc_gpa);
	ck_assert_uint_eq(q2->avail_gpa, q1->avail_gpa);
	ck_assert_uint_eq(q2->used_gpa, q1->used_gpa);
	ck_assert_uint_eq(q2->last_avail, 3);
	ck_assert_uint_eq(q2->used_idx, 3);
	ck_assert_uint_eq(q2->signalled_used, q1->signalled_used);
	ck_assert_int_eq(q2->signalled_valid, q1->signalled_valid);
	vmmio_destroy(t1);

	/* Restored but not resumed: nothing served, no interrupt. */
	vmmio_queue_notify(t2, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 3);
	ck_assert_int_lt(read(irq2, &n, 8), 0);
	/* Resume serves what the guest published (without a new notify) and
	 * raises the interrupt InterruptStatus still shows. */
	vmmio_resume(t2);
	ck_assert_uint_eq(vqb_used_idx(&b), 4);
	ck_assert_int_eq(read(irq2, &n, 8), 8);
	rng_request(&b, 4);
	wr(t2, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 5);
	ck_assert_uint_eq(vqb_used(&b, 4).id, 4);
	ck_assert_uint_eq(vqb_used(&b, 4).len, 32);
	/* A second restore into a device in use is refused. */
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_int_eq(vmmio_restore(t2, &c, err, sizeof(err)), -EBUSY);
	vmmio_destroy(t2);
	snap_writer_free(&s.w);
	close(irq1);
	close(irq2);
}
END_TEST

START_TEST(test_unready_device_round_trip)
{
	struct vmmio *t1 = new_rng(-1), *t2 = new_rng(-1);
	struct snap_cursor c;
	struct saved s;
	char err[256];

	/* Mid-negotiation: ACK | DRIVER, features written, no queue. */
	wr(t1, VIRTIO_MMIO_STATUS, ACK);
	wr(t1, VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(t1, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t1, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	save_one(t1, &s);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_msg(vmmio_restore(t2, &c, err, sizeof(err)) == 0, "%s", err);
	vmmio_resume(t2);
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_STATUS), ACK | DRV);
	/* The driver goes on where it was. */
	wr(t2, VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(t2, VIRTIO_MMIO_STATUS), ACK | DRV | FOK);
	vmmio_destroy(t1);
	vmmio_destroy(t2);
	snap_writer_free(&s.w);
}
END_TEST

/* ---- corrupted sections: each field out of range, refused ---- */

/* The rng section's layout (one queue, no device state). */
enum {
	O_VERSION = 0, O_ID = 4, O_NQ = 8, O_FEAT = 12, O_STATUS = 20, O_ISR = 24, O_DRVFEAT = 36,
	O_ACTIVE = 52, O_QSIZE = 56, O_QREADY = 60, O_QDESC = 64, O_QAVAIL = 72, O_QUSED = 80,
	O_QLAST = 88, O_QUSEDIDX = 92, O_QSIGUSED = 96, O_QSIGVALID = 100, O_END = 104,
};

static const struct {
	unsigned int off, width;
	uint64_t value;
	int err;
	const char *what;
} corrupt[] = {
	{ O_VERSION, 4, 2, -EINVAL, "version" },
	{ O_ID, 4, VIRTIO_ID_NET, -EINVAL, "device id" },
	{ O_NQ, 4, 2, -EINVAL, "queue count" },
	{ O_NQ, 4, 0xffffffff, -EINVAL, "queue count" },
	{ O_STATUS, 4, ACK | DOK, -EINVAL, "unreachable status" },
	{ O_STATUS, 4, 0x10f, -EINVAL, "status above a byte" },
	{ O_ISR, 4, 4, -EINVAL, "interrupt bits" },
	{ O_DRVFEAT, 8, VIRTIO_BIT(VIRTIO_F_VERSION_1) | (1ULL << 40), -EINVAL, "feature not offered" },
	{ O_DRVFEAT, 8, 0, -EINVAL, "FEATURES_OK without VERSION_1" },
	{ O_ACTIVE, 4, 2, -EINVAL, "active flag" },
	{ O_ACTIVE, 4, 0, -EINVAL, "DRIVER_OK but inactive" },
	{ O_QSIZE, 4, 128, -EINVAL, "queue size above QueueNumMax" },
	{ O_QSIZE, 4, 12, -EINVAL, "queue size not a power of 2" },
	{ O_QSIZE, 4, 0x10010, -EINVAL, "queue size above 16 bits" },
	{ O_QSIZE, 4, 0, -EINVAL, "queue size 0" },
	{ O_QREADY, 4, 2, -EINVAL, "ready flag" },
	{ O_QREADY, 4, 0, -EINVAL, "positions on a queue not ready" },
	{ O_QDESC, 8, RAM_SIZE - 16, -EINVAL, "descriptor table past RAM" },
	{ O_QDESC, 8, 0x1008, -EINVAL, "descriptor table misaligned" },
	{ O_QDESC, 8, 0xfffffffffffffff0ULL, -EINVAL, "descriptor table wrapping" },
	{ O_QAVAIL, 8, RAM_SIZE, -EINVAL, "available ring outside RAM" },
	{ O_QAVAIL, 8, 0x1101, -EINVAL, "available ring misaligned" },
	{ O_QUSED, 8, RAM_SIZE - 8, -EINVAL, "used ring past RAM" },
	{ O_QUSED, 8, 0x1102, -EINVAL, "used ring misaligned" },
	{ O_QUSED, 8, 0xd0000000ULL, -EINVAL, "used ring in the MMIO hole" },
	{ O_QLAST, 4, 2, -EINVAL, "chains in flight" },
	{ O_QLAST, 4, 0x10003, -EINVAL, "index above 16 bits" },
	{ O_QUSEDIDX, 4, 7, -EINVAL, "used index ahead" },
	{ O_QSIGUSED, 4, 0x10000, -EINVAL, "signalled index above 16 bits" },
	{ O_QSIGVALID, 4, 5, -EINVAL, "signalled flag" },
};

/* A valid rng section (3 requests served), copied out. */
static size_t rng_section(uint8_t *out, size_t cap)
{
	struct vmmio *t = new_rng(-1);
	struct vq_builder b;
	struct snap_cursor c;
	struct saved s;
	uint64_t base = 0x1000;

	driver_init(t, 0, 1, &b, &base);
	for (uint16_t i = 0; i < 3; i++)
		rng_request(&b, i);
	vmmio_queue_notify(t, 0);
	save_one(t, &s);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_uint_eq(c.left, O_END);
	ck_assert_uint_le(c.left, cap);
	memcpy(out, c.p, c.left);
	vmmio_destroy(t);
	snap_writer_free(&s.w);
	return O_END;
}

static int restore_bytes(struct vmmio *t, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	struct snap_cursor c = { .p = p, .left = len, .tag = SNAP_TAG_VIRTIO, .instance = 0 };

	return vmmio_restore(t, &c, err, errlen);
}

START_TEST(test_corrupt_field_refused)
{
	uint8_t good[256], bad[256];
	size_t len = rng_section(good, sizeof(good));
	struct vmmio *t = new_rng(-1);
	char err[256];
	unsigned int i = (unsigned int)_i;
	int r;

	memcpy(bad, good, len);
	memcpy(bad + corrupt[i].off, &corrupt[i].value, corrupt[i].width);
	err[0] = 0;
	r = restore_bytes(t, bad, len, err, sizeof(err));
	ck_assert_msg(r == corrupt[i].err, "%s: got %d (%s)", corrupt[i].what, r, err);
	ck_assert_msg(strstr(err, "virtio-rng") != NULL, "%s: message does not name the device: %s",
		      corrupt[i].what, err);
	/* Nothing was applied: the device is still fresh and takes the good one. */
	ck_assert_uint_eq(vmmio_status(t), 0);
	ck_assert_msg(restore_bytes(t, good, len, err, sizeof(err)) == 0, "%s", err);
	vmmio_destroy(t);
}
END_TEST

START_TEST(test_truncated_and_trailing_refused)
{
	uint8_t good[256], bad[256];
	size_t len = rng_section(good, sizeof(good));
	char err[256];

	for (size_t cut = 0; cut < len; cut++) {
		struct vmmio *t = new_rng(-1);
		int r = restore_bytes(t, good, cut, err, sizeof(err));

		ck_assert_msg(r == -EBADMSG || r == -EINVAL, "cut at %zu: %d", cut, r);
		ck_assert_uint_eq(vmmio_status(t), 0);
		vmmio_destroy(t);
	}
	memcpy(bad, good, len);
	bad[len] = 0;
	{
		struct vmmio *t = new_rng(-1);

		ck_assert_int_eq(restore_bytes(t, bad, len + 1, err, sizeof(err)), -EBADMSG);
		ck_assert_ptr_nonnull(strstr(err, "after the device state"));
		vmmio_destroy(t);
	}
}
END_TEST

START_TEST(test_save_refuses_unquiesced_and_busy)
{
	struct vmmio *t = new_rng(-1);
	struct snap_writer w;
	struct vq_builder b;
	uint64_t base = 0x1000;

	driver_init(t, 0, 1, &b, &base);
	snap_writer_init(&w);
	ck_assert_int_eq(vmmio_save(t, &w, 0), -EINVAL); /* not quiesced */
	vmmio_quiesce(t);
	/* A chain popped behind the device's back is "in flight". */
	{
		struct virtq_chain *ch = malloc(sizeof(*ch));

		rng_request(&b, 0);
		ck_assert_int_eq(virtq_pop(&vmmio_device(t)->vqs[0], ch), 1);
		ck_assert_uint_eq(vmmio_inflight(t), 1);
		ck_assert_int_eq(vmmio_save(t, &w, 0), -EBUSY);
		ck_assert_int_eq(virtq_unpop(&vmmio_device(t)->vqs[0], ch->head), 0);
		ck_assert_int_eq(virtq_unpop(&vmmio_device(t)->vqs[0], ch->head), -EINVAL);
		free(ch);
	}
	ck_assert_uint_eq(vmmio_inflight(t), 0);
	ck_assert_int_eq(vmmio_save(t, &w, 0), 0);
	vmmio_resume(t);
	ck_assert_uint_eq(vqb_used_idx(&b), 1); /* the given-back request was served */
	snap_writer_free(&w);
	vmmio_destroy(t);
}
END_TEST

/* ---- virtio-net: held rx chain given back, MAC adopted, addresses checked ---- */

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const struct net_guest net_guest1 = {
	.mac = { 0x02, 0, 0, 0, 0, 5 },
	.ip = IP(10, 0, 2, 5),
	.prefix = 24,
	.gw = IP(10, 0, 2, 1),
	.dns = IP(10, 0, 2, 3),
	.gw_mac = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};

static struct vmmio *new_net(const struct net_guest *g, int *peer)
{
	struct net_policy *p = calloc(1, sizeof(*p));
	struct virtio_dev *d;
	struct vmmio *t;
	char err[256];
	int sv[2];

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	d = virtio_net_create(sv[0], g, p, NULL, err, sizeof(err));
	free(p);
	ck_assert_msg(d != NULL, "%s", err);
	t = vmmio_create(d, &ram.gm, -1);
	ck_assert_ptr_nonnull(t);
	*peer = sv[1];
	return t;
}

static void net_post_rx(struct vq_builder *b, uint16_t i)
{
	vqb_desc(b, i, BUF + 0x1000ULL * i, 2048, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(b, i);
}

START_TEST(test_net_round_trip)
{
	struct net_guest g2 = net_guest1;
	struct vq_builder b[2];
	uint64_t bases[2] = { 0x1000, 0x4000 };
	struct vmmio *t1, *t2, *t3;
	struct snap_cursor c;
	struct saved s;
	uint8_t frame[12 + 60], mac[6];
	int peer1, peer2, peer3;
	char err[256];

	t1 = new_net(&net_guest1, &peer1);
	driver_init(t1, 1u << VIRTIO_NET_F_MAC, 2, b, bases);
	net_post_rx(&b[0], 0);
	net_post_rx(&b[0], 1);
	vmmio_queue_notify(t1, VIRTIO_NET_QUEUE_RX); /* holds a chain, no frame yet */
	ck_assert_uint_eq(vmmio_inflight(t1), 1);
	save_one(t1, &s); /* quiesce gave it back */
	ck_assert_uint_eq(vmmio_device(t1)->vqs[0].last_avail, 0);

	/* Another MAC here: the device takes the snapshot's. */
	g2.mac[5] = 9;
	t2 = new_net(&g2, &peer2);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_msg(vmmio_restore(t2, &c, err, sizeof(err)) == 0, "%s", err);
	vmmio_read(t2, VIRTIO_MMIO_CONFIG, mac, 4);
	vmmio_read(t2, VIRTIO_MMIO_CONFIG + 4, mac + 4, 2);
	ck_assert_int_eq(memcmp(mac, net_guest1.mac, 6), 0);
	/* A frame from the backend reaches the first rx buffer after resume. */
	memset(frame, 0, sizeof(frame));
	memset(frame + 12, 0xff, 6);
	memcpy(frame + 18, net_guest1.gw_mac, 6);
	frame[24] = 0x08;
	ck_assert_int_eq(write(peer2, frame, sizeof(frame)), (ssize_t)sizeof(frame));
	vmmio_resume(t2);
	virtio_net_poll(vmmio_device(t2));
	ck_assert_uint_eq(vqb_used_idx(&b[0]), 1);
	ck_assert_uint_eq(vqb_used(&b[0], 0).id, 0);
	ck_assert_uint_eq(vqb_used(&b[0], 0).len, sizeof(frame));

	/* Other guest addresses: refused, naming the device. */
	g2.ip = IP(10, 0, 2, 6);
	t3 = new_net(&g2, &peer3);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_int_eq(vmmio_restore(t3, &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "virtio-net"));
	ck_assert_ptr_nonnull(strstr(err, "10.0.2.5"));
	vmmio_destroy(t1);
	vmmio_destroy(t2);
	vmmio_destroy(t3);
	close(peer1);
	close(peer2);
	close(peer3);
	snap_writer_free(&s.w);
}
END_TEST

/* ---- virtio-vsock: restored with another CID, transport reset delivered ---- */

START_TEST(test_vsock_transport_reset_after_restore)
{
	char dir[] = "/tmp/snapvsockXXXXXX", p1[128], p2[128], err[256];
	struct vq_builder b[3];
	uint64_t bases[3] = { 0x1000, 0x4000, 0x8000 };
	struct virtio_dev *d;
	struct vmmio *t1, *t2;
	struct snap_cursor c;
	struct saved s;
	uint64_t cid = 0;
	uint32_t ev;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(p1, sizeof(p1), "%s/a.sock", dir);
	snprintf(p2, sizeof(p2), "%s/b.sock", dir);
	d = virtio_vsock_create(p1, 3, NULL, err, sizeof(err));
	ck_assert_msg(d != NULL, "%s", err);
	t1 = vmmio_create(d, &ram.gm, -1);
	driver_init(t1, 0, 3, b, bases);
	for (uint16_t i = 0; i < 4; i++) {
		vqb_desc(&b[2], i, BUF + 0x10ULL * i, 4, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b[2], i);
	}
	vmmio_queue_notify(t1, 2);
	save_one(t1, &s);
	vmmio_destroy(t1);

	d = virtio_vsock_create(p2, 42, NULL, err, sizeof(err));
	ck_assert_msg(d != NULL, "%s", err);
	t2 = vmmio_create(d, &ram.gm, -1);
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_msg(vmmio_restore(t2, &c, err, sizeof(err)) == 0, "%s", err);
	vmmio_resume(t2);
	ck_assert_int_eq(virtio_vsock_send_transport_reset(d), 0);
	ck_assert_uint_eq(vqb_used_idx(&b[2]), 1);
	ck_assert_uint_eq(vqb_used(&b[2], 0).len, 4);
	memcpy(&ev, fake_ram_at(&ram, BUF, 4), 4);
	ck_assert_uint_eq(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	vmmio_read(t2, VIRTIO_MMIO_CONFIG, &cid, 8); /* what the guest rereads */
	ck_assert_uint_eq(cid, 42);
	vmmio_destroy(t2);
	rmdir(dir);
	snap_writer_free(&s.w);
}
END_TEST

/* ---- virtio-blk: requests drained, restored on the same image, works ---- */

static struct evl *blk_evl;

static void *blk_loop(void *arg)
{
	ck_assert_int_eq(evl_run(arg), 0);
	return NULL;
}

static bool wait_used(struct vq_builder *b, uint16_t n)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n((uint16_t *)fake_ram_at(&ram, b->used + 2, 2), __ATOMIC_ACQUIRE) == n)
			return true;
		usleep(1000);
	}
	return false;
}

/* A read of sector `sector` into BUF + slot * 0x1000 (512 bytes). */
static void blk_read(struct vq_builder *b, uint16_t slot, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = sector };
	uint16_t d = (uint16_t)(slot * 3);

	memcpy(fake_ram_at(&ram, 0x80000 + 16ULL * slot, 16), &h, 16);
	vqb_desc(b, d, 0x80000 + 16ULL * slot, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
	vqb_desc(b, (uint16_t)(d + 1), BUF + 0x1000ULL * slot, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
		 (uint16_t)(d + 2));
	vqb_desc(b, (uint16_t)(d + 2), 0x90000 + slot, 1, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(b, d);
}

START_TEST(test_blk_drain_and_round_trip)
{
	char img[] = "/tmp/snapblkXXXXXX", img2[] = "/tmp/snapblk2XXXXXX", img3[] = "/tmp/snapblk3XXXXXX";
	char err[256];
	struct virtio_dev *d;
	struct vmmio *t[4];
	struct vq_builder b;
	struct snap_cursor c;
	struct saved s;
	pthread_t loop;
	uint64_t base = 0x1000;
	uint8_t sector[512];
	int fd = mkstemp(img), fd2 = mkstemp(img2), fd3 = mkstemp(img3);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_ge(fd3, 0);
	ck_assert_int_eq(ftruncate(fd3, 64 * 512), 0);
	close(fd3);
	for (unsigned int i = 0; i < 64; i++) {
		memset(sector, (int)i, sizeof(sector));
		ck_assert_int_eq(write(fd, sector, sizeof(sector)), 512);
	}
	ck_assert_int_eq(ftruncate(fd2, 128 * 512), 0);
	close(fd);
	close(fd2);
	/* Every device before the loop starts (files register at setup). */
	blk_evl = evl_create(64, err, sizeof(err));
	ck_assert_msg(blk_evl != NULL, "%s", err);
	for (unsigned int i = 0; i < 4; i++) {
		/* 0: the snapshot's; 1: the same image (read-only: shared lock);
		 * 2: another size; 3: same size, writable instead of read-only. */
		d = virtio_blk_create(i == 2 ? img2 : i == 3 ? img3 : img, i != 3, "snap", blk_evl, err, sizeof(err));
		ck_assert_msg(d != NULL, "%s", err);
		t[i] = vmmio_create(d, &ram.gm, -1);
		ck_assert_ptr_nonnull(t[i]);
	}
	ck_assert_int_eq(pthread_create(&loop, NULL, blk_loop, blk_evl), 0);
	driver_init(t[0], 0, 1, &b, &base);
	for (uint16_t i = 0; i < 4; i++)
		blk_read(&b, i, i);
	wr(t[0], VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* Quiesce right away: whatever is in flight completes first. */
	vmmio_quiesce(t[0]);
	for (int i = 0; i < 5000 && vmmio_inflight(t[0]); i++)
		usleep(1000);
	ck_assert_uint_eq(vmmio_inflight(t[0]), 0);
	ck_assert_uint_eq(vqb_used_idx(&b), 4);
	ck_assert_uint_eq(*(uint8_t *)fake_ram_at(&ram, BUF + 0x3000, 1), 3);
	snap_writer_init(&s.w);
	ck_assert_int_eq(vmmio_save(t[0], &s.w, 0), 0);
	saved_finish(&s);

	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_msg(vmmio_restore(t[1], &c, err, sizeof(err)) == 0, "%s", err);
	vmmio_resume(t[1]);
	blk_read(&b, 4, 9);
	wr(t[1], VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert(wait_used(&b, 5));
	ck_assert_uint_eq(*(uint8_t *)fake_ram_at(&ram, 0x90000 + 4, 1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*(uint8_t *)fake_ram_at(&ram, BUF + 0x4000, 1), 9);

	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_int_eq(vmmio_restore(t[2], &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "sectors"));
	c = saved_section(&s, SNAP_TAG_VIRTIO, 0);
	ck_assert_int_eq(vmmio_restore(t[3], &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "read-only"));

	evl_stop(blk_evl);
	pthread_join(loop, NULL);
	for (unsigned int i = 0; i < 4; i++)
		vmmio_destroy(t[i]);
	evl_destroy(blk_evl);
	unlink(img);
	unlink(img2);
	unlink(img3);
	snap_writer_free(&s.w);
}
END_TEST

/* ---- legacy devices ---- */

static void pio_w(struct uart8250 *u, uint64_t off, uint8_t v)
{
	uart_write(u, off, &v, 1);
}

static uint8_t pio_r(struct uart8250 *u, uint64_t off)
{
	uint8_t v;

	uart_read(u, off, &v, 1);
	return v;
}

START_TEST(test_legacy_round_trip_and_refusals)
{
	struct uart8250 u1, u2;
	struct rtc_cmos r1, r2;
	struct i8042 k1, k2;
	struct snap_cursor c;
	struct saved s;
	uint8_t bad[64];
	char err[256];
	uint8_t v;

	uart_init(&u1, -1, -1);
	uart_init(&u2, -1, -1);
	pio_w(&u1, 3, 0x83); /* DLAB */
	pio_w(&u1, 0, 0x01);
	pio_w(&u1, 1, 0x00);
	pio_w(&u1, 3, 0x03);
	pio_w(&u1, 1, 0x05);
	pio_w(&u1, 7, 0x5a);
	pio_w(&u1, 4, 0x1b); /* loopback */
	pio_w(&u1, 0, 'x');
	rtc_cmos_init(&r1);
	rtc_cmos_init(&r2);
	v = 0x40;
	rtc_cmos_write(&r1, 0, &v, 1);
	v = 0x77;
	rtc_cmos_write(&r1, 1, &v, 1);
	i8042_init(&k1, NULL, NULL);
	i8042_init(&k2, NULL, NULL);

	snap_writer_init(&s.w);
	ck_assert_int_eq(uart_save(&u1, &s.w), 0);
	ck_assert_int_eq(rtc_cmos_save(&r1, &s.w), 0);
	ck_assert_int_eq(i8042_save(&k1, &s.w), 0);
	saved_finish(&s);
	c = saved_section(&s, SNAP_TAG_UART, 0);
	ck_assert_msg(uart_restore(&u2, &c, err, sizeof(err)) == 0, "%s", err);
	for (uint64_t off = 1; off < 8; off++)
		if (off != 2) /* IIR reads change state */
			ck_assert_uint_eq(pio_r(&u2, off), pio_r(&u1, off));
	ck_assert_uint_eq(pio_r(&u2, 0), 'x'); /* the looped-back byte */
	c = saved_section(&s, SNAP_TAG_RTC, 0);
	ck_assert_msg(rtc_cmos_restore(&r2, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(rtc_cmos_reg(&r2, 0x40), 0x77);
	ck_assert_uint_eq(r2.index, 0x40);
	c = saved_section(&s, SNAP_TAG_I8042, 0);
	ck_assert_int_eq(i8042_restore(&k2, &c, err, sizeof(err)), 0);

	/* UART: IER above 4 bits, a FIFO longer than 16, truncated. */
	c = saved_section(&s, SNAP_TAG_UART, 0);
	ck_assert_uint_le(c.left, sizeof(bad));
	memcpy(bad, c.p, c.left);
	bad[4] = 0xff;
	{
		struct snap_cursor b = { .p = bad, .left = c.left };

		ck_assert_int_eq(uart_restore(&u2, &b, err, sizeof(err)), -EINVAL);
	}
	memcpy(bad, c.p, c.left);
	bad[14] = 17;
	{
		struct snap_cursor b = { .p = bad, .left = c.left };

		ck_assert_int_eq(uart_restore(&u2, &b, err, sizeof(err)), -EINVAL);
	}
	{
		struct snap_cursor b = { .p = c.p, .left = c.left - 1 };

		ck_assert_int_eq(uart_restore(&u2, &b, err, sizeof(err)), -EBADMSG);
	}
	/* RTC: index beyond the RAM. */
	c = saved_section(&s, SNAP_TAG_RTC, 0);
	memcpy(bad, c.p, 8);
	bad[4] = 200;
	{
		uint8_t full[8 + RTC_CMOS_RAM_SIZE];
		struct snap_cursor b = { .p = full, .left = sizeof(full) };

		ck_assert_uint_eq(c.left, sizeof(full));
		memcpy(full, c.p, sizeof(full));
		memcpy(full, bad, 8);
		ck_assert_int_eq(rtc_cmos_restore(&r2, &b, err, sizeof(err)), -EINVAL);
	}
	/* i8042: another version. */
	{
		uint32_t ver = 9;
		struct snap_cursor b = { .p = (const uint8_t *)&ver, .left = 4 };

		ck_assert_int_eq(i8042_restore(&k2, &b, err, sizeof(err)), -EINVAL);
	}
	uart_destroy(&u1);
	uart_destroy(&u2);
	rtc_cmos_destroy(&r1);
	rtc_cmos_destroy(&r2);
	snap_writer_free(&s.w);
}
END_TEST

/* ---- vm_devices_*: slot count and device kinds must match ---- */

/* A VM shell holding `n` rng devices (plus a NIC in slot `net_slot` if
 * not -1) and the legacy devices: what vm_devices_* read. */
static struct minivm *fake_vm(unsigned int n, int net_slot, int *peer)
{
	struct minivm *vm = calloc(1, sizeof(*vm));

	ck_assert_ptr_nonnull(vm);
	for (unsigned int i = 0; i < n; i++) {
		vm->devs[i].transport = (int)i == net_slot ? new_net(&net_guest1, peer) : new_rng(-1);
		vm->devs[i].irq_fd = -1;
	}
	vm->nr_devs = n;
	uart_init(&vm->uart, -1, -1);
	rtc_cmos_init(&vm->rtc);
	i8042_init(&vm->kbd, NULL, NULL);
	vm->uart_ready = true;
	return vm;
}

static void fake_vm_free(struct minivm *vm)
{
	for (unsigned int i = 0; i < vm->nr_devs; i++)
		vmmio_destroy(vm->devs[i].transport);
	uart_destroy(&vm->uart);
	rtc_cmos_destroy(&vm->rtc);
	free(vm);
}

START_TEST(test_vm_devices_layout_checked)
{
	struct minivm *src = fake_vm(2, -1, NULL), *dst;
	struct saved s;
	char err[512];
	int peer = -1;

	snap_writer_init(&s.w);
	ck_assert_int_eq(vm_devices_save(src, &s.w), -EINVAL); /* not quiesced */
	ck_assert_ptr_nonnull(strstr(src->err, "virtio-rng"));
	snap_writer_free(&s.w);
	snap_writer_init(&s.w);
	ck_assert_int_eq(vm_devices_quiesce(src, 1000), 0);
	ck_assert_int_eq(vm_devices_save(src, &s.w), 0);
	saved_finish(&s);
	vm_devices_resume(src, false);

	dst = fake_vm(2, -1, NULL);
	ck_assert_msg(vm_devices_restore(dst, &s.r, err, sizeof(err)) == 0, "%s", err);
	vm_devices_resume(dst, true);
	fake_vm_free(dst);

	dst = fake_vm(1, -1, NULL);
	ck_assert_int_eq(vm_devices_restore(dst, &s.r, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "more devices"));
	fake_vm_free(dst);

	dst = fake_vm(3, -1, NULL);
	ck_assert_int_eq(vm_devices_restore(dst, &s.r, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "slot 2"));
	fake_vm_free(dst);

	dst = fake_vm(2, 1, &peer);
	ck_assert_int_eq(vm_devices_restore(dst, &s.r, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "slot 1") && strstr(err, "virtio-net") && strstr(err, "id 4"), "%s", err);
	ck_assert_ptr_nonnull(strstr(dst->err, "slot 1"));
	fake_vm_free(dst);
	close(peer);

	fake_vm_free(src);
	snap_writer_free(&s.w);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("snap_devices");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rng_round_trip);
	tcase_add_test(tc, test_unready_device_round_trip);
	tcase_add_loop_test(tc, test_corrupt_field_refused, 0, (int)(sizeof(corrupt) / sizeof(corrupt[0])));
	tcase_add_test(tc, test_truncated_and_trailing_refused);
	tcase_add_test(tc, test_save_refuses_unquiesced_and_busy);
	tcase_add_test(tc, test_net_round_trip);
	tcase_add_test(tc, test_vsock_transport_reset_after_restore);
	tcase_add_test(tc, test_blk_drain_and_round_trip);
	tcase_add_test(tc, test_legacy_round_trip_and_refusals);
	tcase_add_test(tc, test_vm_devices_layout_checked);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
