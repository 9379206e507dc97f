/* libFuzzer target: the virtio-net device driven by a fuzzed guest (tx frames, rx buffers) and backend (frames towards the guest), with or without rate limits; whatever reaches the backend must be a frame the policy allows. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net_pkt.h"
#include "devices/net_policy.h"
#include "devices/ratelimit.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_spec.h"
#include "vmm/evl.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (4u << 20)
#define QS 16
#define TXBUF 0x100000 /* 16 slots of 0x1000 (two segments: +0 and +0x800) */
#define RXBUF 0x200000 /* 16 slots of 0x1000 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ring {
	uint64_t desc, avail, used;
	uint16_t idx;
};

/* Two devices on the same guest memory: [0] unlimited, [1] rate-limited
 * in both directions to a frame per millisecond, so that frames wait
 * and resume within one input. [1]'s event loop never runs: its timers
 * expire unseen, and virtio_net_poll() (op 3, the end of an input) and tx
 * notifications retry the waiting directions instead. */
struct fdev {
	struct vmmio *t;
	struct virtio_dev *dev;
	int peer;
	int backend; /* the device's end, drained directly after a limited run */
};

static uint8_t *ram;
static struct guest_mem gm;
static struct fdev devs[2];
static struct evl *evl;
static struct vmmio *t;
static struct virtio_dev *dev;
static struct ring rings[2];
static int peer = -1;
static struct net_policy policy;
static const struct net_guest guest = {
	.mac = { 0x02, 0, 0, 0, 0, 5 },
	.ip = 0x0a000205,
	.prefix = 24,
	.gw = 0x0a000201,
	.dns = 0x0a000203,
	.gw_mac = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static void put(uint64_t gpa, const void *p, size_t n)
{
	memcpy(ram + gpa, p, n); /* every gpa here is inside RAM */
}

static void ring_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	put(r->desc + 16u * i, &d, sizeof(d));
}

static void ring_publish(struct ring *r, uint16_t head)
{
	put(r->avail + 4 + 2u * (r->idx % QS), &head, 2);
	r->idx++;
	put(r->avail + 2, &r->idx, 2);
}

static bool mrg; /* negotiate VIRTIO_NET_F_MRG_RXBUF */

static void driver_init(void)
{
	memset(ram, 0, 0x10000);
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (1u << VIRTIO_NET_F_MAC) | (mrg ? 1u << VIRTIO_NET_F_MRG_RXBUF : 0));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < 2; q++) {
		struct ring *r = &rings[q];

		r->desc = 0x1000 + 0x2000ULL * q;
		r->avail = r->desc + 16 * QS;
		r->used = r->desc + 0x800;
		r->idx = 0;
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		wr(VIRTIO_MMIO_QUEUE_NUM, QS);
		wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc);
		wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)r->avail);
		wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)r->used);
		wr(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
}

static void init_dev(struct fdev *fd, bool limited)
{
	/* A frame and 2000 bytes per ms each way: a second frame within a
	 * millisecond waits, a large one leaves the bytes bucket in debt. */
	static const struct rl_config lim = {
		.bytes = { .size = 2000, .refill_ns = 1000000 },
		.ops = { .size = 1, .refill_ns = 1000000 },
	};
	char err[256];
	int sv[2], irq;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	fd->peer = sv[1];
	fd->backend = sv[0];
	fd->dev = virtio_net_create(sv[0], &guest, &policy, limited ? evl : NULL, err, sizeof(err));
	if (!fd->dev || (limited && virtio_net_set_rate_limit(fd->dev, &lim, &lim, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fd->t = vmmio_create(fd->dev, &gm, irq);
	if (!fd->t)
		abort();
}

static void init_once(void)
{
	char err[256];

	ram = calloc(1, RAM_SIZE);
	if (!ram)
		abort();
	gm_layout(&gm, ram, RAM_SIZE);
	if (net_policy_add(&policy, "1.2.3.4:443/tcp", err, sizeof(err)) ||
	    net_policy_add(&policy, "10.9.0.0/16", err, sizeof(err)))
		abort();
	policy.allow_dns = true;
	evl = evl_create(16, err, sizeof(err));
	if (!evl) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	init_dev(&devs[0], false);
	init_dev(&devs[1], true);
}

/* Every frame the backend got must be one the policy allows. */
static void drain_backend(void)
{
	uint8_t buf[NET_BUF_MAX + 64];
	ssize_t n;

	while ((n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		struct net_frame f;
		enum net_pkt_err e = net_pkt_parse(buf, (size_t)n, &f);
		struct net_decision d = net_policy_decide(&policy, &guest, e, &f);

		if (e != NET_PKT_OK || d.verdict != NET_VERDICT_ALLOW)
			abort();
	}
}

/*
 * Input: a script of steps, each one byte of opcode and its operands:
 *   0: a tx frame: 2 length bytes (mod 1600), a flags byte (bit 0: force the
 *      guest's source MAC and IP and fix the IP checksum; bit 1: one
 *      segment), then the frame bytes;
 *   1: post N rx buffers (N, size byte x 8);
 *   2: the backend sends a frame (length byte x 8, then that many bytes);
 *   3: serve the backend once; 4: device reset, then the driver comes
 *      back with mergeable rx buffers or without (1 byte, bit 0).
 * The first opcode byte's top bit picks the rate-limited device.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t p = 0;
	unsigned int tx_slot = 0, rx_slot = 0, steps = 0;

	struct fdev *fd;

	if (!ram)
		init_once();
	fd = &devs[size && (data[0] & 0x80) ? 1 : 0];
	t = fd->t;
	dev = fd->dev;
	peer = fd->peer;
	mrg = false;
	driver_init();
	while (p < size && steps++ < 64) {
		uint8_t op = data[p++] % 5;

		switch (op) {
		case 0: {
			uint8_t frame[1600];
			uint16_t d0 = (uint16_t)(2 * (tx_slot % (QS / 2)));
			uint64_t a = TXBUF + 0x1000ULL * (tx_slot % QS);
			size_t len, cut;
			uint8_t flags;

			if (size - p < 3)
				goto out;
			len = ((size_t)data[p] << 8 | data[p + 1]) % sizeof(frame);
			flags = data[p + 2];
			p += 3;
			memset(frame, 0, sizeof(frame));
			memcpy(frame, data + p, len < size - p ? len : size - p);
			p += len < size - p ? len : size - p;
			if ((flags & 1) && len >= 12 + 14 + 20) {
				uint8_t *ip = frame + 26;
				uint32_t src = guest.ip;
				uint16_t c;

				memcpy(frame + 18, guest.mac, 6);
				ip[12] = (uint8_t)(src >> 24);
				ip[13] = (uint8_t)(src >> 16);
				ip[14] = (uint8_t)(src >> 8);
				ip[15] = (uint8_t)src;
				ip[10] = ip[11] = 0;
				c = net_csum(ip, (size_t)(ip[0] & 15) * 4 <= len - 26 ? (size_t)(ip[0] & 15) * 4 : 20, 0);
				ip[10] = (uint8_t)(c >> 8);
				ip[11] = (uint8_t)c;
			}
			cut = (flags & 2) || len < 12 ? len : 12;
			put(a, frame, cut);
			put(a + 0x800, frame + cut, len - cut);
			if (cut < len) {
				ring_desc(&rings[1], d0, a, (uint32_t)cut, VIRTQ_DESC_F_NEXT, (uint16_t)(d0 + 1));
				ring_desc(&rings[1], (uint16_t)(d0 + 1), a + 0x800, (uint32_t)(len - cut), 0, 0);
			} else {
				ring_desc(&rings[1], d0, a, (uint32_t)len, 0, 0);
			}
			ring_publish(&rings[1], d0);
			tx_slot++;
			vmmio_queue_notify(t, VIRTIO_NET_QUEUE_TX);
			drain_backend();
			break;
		}
		case 1: {
			unsigned int n;
			uint32_t sz;

			if (size - p < 2)
				goto out;
			n = data[p] % 8u;
			sz = (uint32_t)data[p + 1] * 8u;
			p += 2;
			for (unsigned int i = 0; i < n; i++) {
				uint16_t k = (uint16_t)(rx_slot % QS);

				ring_desc(&rings[0], k, RXBUF + 0x1000ULL * k, sz, VIRTQ_DESC_F_WRITE, 0);
				ring_publish(&rings[0], k);
				rx_slot++;
			}
			vmmio_queue_notify(t, VIRTIO_NET_QUEUE_RX);
			break;
		}
		case 2: {
			size_t len;

			if (size - p < 1)
				goto out;
			len = (size_t)data[p++] * 8u;
			if (len > size - p)
				len = size - p;
			if (send(peer, data + p, len, MSG_DONTWAIT) < 0) {
				/* full: fine */
			}
			p += len;
			break;
		}
		case 3:
			virtio_net_poll(dev);
			break;
		case 4:
			if (size - p < 1)
				goto out;
			mrg = data[p++] & 1;
			driver_init();
			rx_slot = tx_slot = 0;
			break;
		}
	}
out:
	virtio_net_poll(dev);
	drain_backend();
	/* Leave no backend frame queued for the next input: hand them all to
	 * fresh rx buffers. */
	for (unsigned int round = 0; round < 64; round++) {
		uint16_t before;

		driver_init();
		for (uint16_t k = 0; k < QS; k++) {
			ring_desc(&rings[0], k, RXBUF + 0x1000ULL * k, 0x1000, VIRTQ_DESC_F_WRITE, 0);
			ring_publish(&rings[0], k);
		}
		vmmio_queue_notify(t, VIRTIO_NET_QUEUE_RX);
		memcpy(&before, ram + rings[0].used + 2, 2);
		if (before < QS)
			break;
	}
	/* Frames the limiter kept in the backend would reach the next input:
	 * drop them (at most one more waits in the device). */
	if (fd == &devs[1]) {
		uint8_t buf[NET_BUF_MAX + 64];

		while (recv(fd->backend, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
		}
	}
	return 0;
}
