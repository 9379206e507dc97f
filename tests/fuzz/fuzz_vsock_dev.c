/* libFuzzer target: the virtio-vsock device driven by a fuzzed guest (tx packets, rx buffers) and host clients over real Unix sockets. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio_mmio.h"
#include "devices/virtio_spec.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_pkt.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (4u << 20)
#define QS 16
#define GUEST_CID 3
#define MAX_CLIENTS 8
#define TXBUF 0x100000 /* 16 slots of 0x11000 */
#define RXBUF 0x40000  /* 16 slots of 0x2000 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ring {
	uint64_t desc, avail, used;
	uint16_t idx;
};

static uint8_t *ram;
static struct guest_mem gm;
static struct vmmio *t;
static struct virtio_dev *dev;
static struct ring rings[3];
static int lfd = -1;
static char path[96], dir[64];

/* Leaves no socket files behind when libFuzzer exits. */
static void cleanup(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s_6000", path);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static void put(uint64_t gpa, const void *p, size_t n)
{
	memcpy(ram + gpa, p, n); /* every gpa here is a constant inside RAM */
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

static void driver_init(void)
{
	memset(ram, 0, 0x10000);
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < 3; q++) {
		struct ring *r = &rings[q];

		r->desc = 0x1000 + 0x1000ULL * q * 2;
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
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void init_once(void)
{
	struct sockaddr_un sa;
	char err[256];
	int irq;

	ram = calloc(1, RAM_SIZE);
	gm_layout(&gm, ram, RAM_SIZE);
	snprintf(dir, sizeof(dir), "/tmp/fuzz_vsock.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	dev = virtio_vsock_create(path, GUEST_CID, NULL, err, sizeof(err));
	if (!dev) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t = vmmio_create(dev, &gm, irq);
	if (!t)
		abort();
	/* Guest connections to host port 6000 succeed. */
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_6000", path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 64))
		abort();
	atexit(cleanup);
}

static int client(uint32_t port)
{
	struct sockaddr_un sa;
	char line[32];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int n;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0) {
		/* the device may have closed it already */
	}
	return fd;
}

/*
 * Input: a script of steps, each one byte of opcode and its operands:
 *   0: a tx packet: 44 header bytes (CIDs forced valid unless bit 0 of the
 *      next byte is set), a payload length byte (x 256), a layout byte;
 *   1: post N rx buffers (N, size byte);
 *   2: a host client sends CONNECT to a guest port (2 bytes);
 *   3: host clients and accepted sockets write or close (2 bytes);
 *   4: serve the host side once; 5: transport reset; 6: device reset.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds[MAX_CLIENTS], nfds = 0;
	size_t p = 0;
	unsigned int tx_slot = 0, rx_slot = 0, steps = 0;

	if (!ram)
		init_once();
	driver_init();
	while (p < size && steps++ < 64) {
		uint8_t op = data[p++] % 7;

		switch (op) {
		case 0: {
			uint8_t hdr[VSOCK_HDR_SIZE];
			uint64_t a = TXBUF + 0x11000ULL * (tx_slot % QS);
			uint16_t d0 = (uint16_t)(tx_slot % QS);
			uint32_t len;
			uint8_t flags, layout;

			if (size - p < VSOCK_HDR_SIZE + 3)
				goto out;
			memcpy(hdr, data + p, sizeof(hdr));
			flags = data[p + VSOCK_HDR_SIZE];
			len = (uint32_t)data[p + VSOCK_HDR_SIZE + 1] * 256;
			layout = data[p + VSOCK_HDR_SIZE + 2];
			p += VSOCK_HDR_SIZE + 3;
			if (!(flags & 1)) {
				uint64_t src = GUEST_CID, dst = VIRTIO_VSOCK_CID_HOST;

				memcpy(hdr, &src, 8);
				memcpy(hdr + 8, &dst, 8);
			}
			if (flags & 2)
				memcpy(hdr + 24, &len, 4); /* a len that matches the payload */
			put(a, hdr, sizeof(hdr));
			memset(ram + a + VSOCK_HDR_SIZE, 'p', len);
			/* Header and payload in one descriptor of the slot, or a
			 * descriptor of a fuzzed (often too short) length. */
			if (layout & 1)
				ring_desc(&rings[1], d0, a, (uint32_t)(layout >> 1), 0, 0);
			else
				ring_desc(&rings[1], d0, a, VSOCK_HDR_SIZE + len, 0, 0);
			ring_publish(&rings[1], d0);
			tx_slot++;
			vmmio_queue_notify(t, 1);
			break;
		}
		case 1: {
			unsigned int n;
			uint32_t bsz;

			if (size - p < 2)
				goto out;
			n = data[p] % 8;
			bsz = (uint32_t)data[p + 1] * 32;
			p += 2;
			for (unsigned int i = 0; i < n; i++) {
				uint16_t d = (uint16_t)(rx_slot % QS);

				ring_desc(&rings[0], d, RXBUF + 0x2000ULL * d, bsz > 0x2000 ? 0x2000 : bsz,
					  VIRTQ_DESC_F_WRITE, 0);
				ring_publish(&rings[0], d);
				rx_slot++;
			}
			vmmio_queue_notify(t, 0);
			break;
		}
		case 2:
			if (size - p < 2)
				goto out;
			if (nfds < MAX_CLIENTS) {
				int fd = client((uint32_t)data[p] | (uint32_t)data[p + 1] << 8);

				if (fd >= 0)
					fds[nfds++] = fd;
			}
			p += 2;
			break;
		case 3: {
			int afd;

			if (size - p < 2)
				goto out;
			afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (afd >= 0 && nfds < MAX_CLIENTS)
				fds[nfds++] = afd;
			else if (afd >= 0)
				close(afd);
			if (nfds) {
				int i = data[p] % nfds;

				if (data[p + 1] & 1) {
					close(fds[i]);
					fds[i] = fds[--nfds];
				} else if (data[p + 1] & 2) {
					shutdown(fds[i], SHUT_WR);
				} else if (send(fds[i], "data", 4, MSG_NOSIGNAL) < 0) {
					/* closed by the device */
				}
			}
			p += 2;
			break;
		}
		case 4:
			virtio_vsock_poll(dev, 0);
			break;
		case 5:
			(void)virtio_vsock_send_transport_reset(dev);
			break;
		case 6:
			driver_init();
			tx_slot = rx_slot = 0;
			break;
		}
	}
out:
	virtio_vsock_poll(dev, 0);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	for (int afd; (afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
		close(afd);
	wr(VIRTIO_MMIO_STATUS, 0); /* drops every connection */
	if (virtio_vsock_nr_conns(dev))
		abort();
	return 0;
}
