/* libFuzzer target: fuzzed device snapshot sections restored into fresh devices (virtio transport + rng/net, UART, RTC, i8042), then the devices run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/i8042.h"
#include "devices/net_policy.h"
#include "devices/rtc_cmos.h"
#include "devices/uart8250.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_spec.h"
#include "vmm/guest_mem.h"
#include "vmm/snap.h"

/*
 * Input: byte 0 picks the target (mod 5: rng, net, UART, RTC, i8042);
 * byte 1 the mode: even = the rest is the section's bytes; odd = the rest
 * is (offset u8, value u8) pairs patched into a valid section of that
 * target (made at start by driving a real device), so mutations reach the
 * checks behind the first fields.
 */

#define RAM_SIZE (1u << 20)
#define QS 16
#define NTARGETS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem gm;
static uint8_t base[NTARGETS][512];
static size_t base_len[NTARGETS];
static const struct net_guest guest = {
	.mac = { 0x02, 0, 0, 0, 0, 5 },
	.ip = 0x0a000205,
	.prefix = 24,
	.gw = 0x0a000201,
	.dns = 0,
	.gw_mac = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};

static void wr(struct vmmio *t, uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static struct vmmio *make(unsigned int target, int *peer)
{
	struct virtio_dev *d;
	struct vmmio *t;

	*peer = -1;
	if (target == 0) {
		d = virtio_rng_create();
	} else {
		struct net_policy *p = calloc(1, sizeof(*p));
		char err[256];
		int sv[2];

		if (!p || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
			free(p);
			abort();
		}
		d = virtio_net_create(sv[0], &guest, p, NULL, err, sizeof(err));
		free(p);
		*peer = sv[1];
	}
	if (!d)
		abort();
	t = vmmio_create(d, &gm, -1);
	if (!t)
		abort();
	return t;
}

static void take(struct snap_writer *w, uint32_t tag, unsigned int target)
{
	struct snap_reader r;
	struct snap_cursor c;
	const uint8_t *file;
	size_t len;
	char err[128];

	if (snap_writer_finish(w, &file, &len) || snap_reader_open(&r, file, len, err, sizeof(err)) ||
	    snap_find(&r, tag, 0, &c) || c.left > sizeof(base[0]))
		abort();
	memcpy(base[target], c.p, c.left);
	base_len[target] = c.left;
	snap_writer_free(w);
}

/* Valid sections: each virtio device driven to DRIVER_OK with its queues
 * at 0x1000 + 0x2000 * q, a few requests served; legacy devices fresh. */
static void init_once(void)
{
	struct snap_writer w;
	struct uart8250 u;
	struct rtc_cmos rtc;
	struct i8042 k;

	ram = calloc(1, RAM_SIZE);
	if (!ram)
		abort();
	gm_layout(&gm, ram, RAM_SIZE);
	for (unsigned int target = 0; target < 2; target++) {
		int peer;
		struct vmmio *t = make(target, &peer);
		unsigned int nq = vmmio_num_queues(t);

		wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
		wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
		wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
		wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						  VIRTIO_STATUS_FEATURES_OK);
		for (unsigned int q = 0; q < nq; q++) {
			uint64_t b = 0x1000 + 0x2000ULL * q;

			wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
			wr(t, VIRTIO_MMIO_QUEUE_NUM, QS);
			wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b);
			wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(b + 16 * QS));
			wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(b + 0x400));
			wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
		}
		wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
		vmmio_quiesce(t);
		snap_writer_init(&w);
		if (vmmio_save(t, &w, 0))
			abort();
		take(&w, SNAP_TAG_VIRTIO, target);
		vmmio_destroy(t);
		if (peer >= 0)
			close(peer);
	}
	uart_init(&u, -1, -1);
	rtc_cmos_init(&rtc);
	i8042_init(&k, NULL, NULL);
	snap_writer_init(&w);
	if (uart_save(&u, &w))
		abort();
	take(&w, SNAP_TAG_UART, 2);
	snap_writer_init(&w);
	if (rtc_cmos_save(&rtc, &w))
		abort();
	take(&w, SNAP_TAG_RTC, 3);
	snap_writer_init(&w);
	if (i8042_save(&k, &w))
		abort();
	take(&w, SNAP_TAG_I8042, 4);
	uart_destroy(&u);
	rtc_cmos_destroy(&rtc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[4096];
	struct snap_cursor c;
	unsigned int target;
	size_t len;
	char err[512];

	if (!ram)
		init_once();
	if (size < 2)
		return 0;
	target = data[0] % NTARGETS;
	if (data[1] & 1) {
		len = base_len[target];
		memcpy(buf, base[target], len);
		for (size_t i = 2; i + 1 < size; i += 2)
			buf[data[i] % len] = data[i + 1];
	} else {
		len = size - 2 < sizeof(buf) ? size - 2 : sizeof(buf);
		memcpy(buf, data + 2, len);
	}
	memset(&c, 0, sizeof(c));
	c.p = buf;
	c.left = len;
	memset(ram, 0, RAM_SIZE);
	if (target < 2) {
		int peer;
		struct vmmio *t = make(target, &peer);

		if (vmmio_restore(t, &c, err, sizeof(err)) == 0) {
			/* Restored: the device must run on whatever passed. */
			vmmio_resume(t);
			for (unsigned int q = 0; q < vmmio_num_queues(t); q++)
				vmmio_queue_notify(t, q);
			if (target == 1) {
				static const uint8_t frame[12 + 60] = { [12] = 0xff, [13] = 0xff };

				if (write(peer, frame, sizeof(frame)) < 0) {
					/* a full socket: the device just has nothing to read */
				}
				virtio_net_poll(vmmio_device(t));
			}
		}
		vmmio_destroy(t);
		if (peer >= 0)
			close(peer);
	} else if (target == 2) {
		struct uart8250 u;
		uint8_t v;

		uart_init(&u, -1, -1);
		if (uart_restore(&u, &c, err, sizeof(err)) == 0)
			for (uint64_t off = 0; off < UART_NR_REGS; off++)
				uart_read(&u, off, &v, 1);
		uart_destroy(&u);
	} else if (target == 3) {
		struct rtc_cmos rtc;

		rtc_cmos_init(&rtc);
		if (rtc_cmos_restore(&rtc, &c, err, sizeof(err)) == 0)
			for (unsigned int reg = 0; reg < RTC_CMOS_RAM_SIZE; reg++)
				(void)rtc_cmos_reg(&rtc, (uint8_t)reg);
		rtc_cmos_destroy(&rtc);
	} else {
		struct i8042 k;

		i8042_init(&k, NULL, NULL);
		if (i8042_restore(&k, &c, err, sizeof(err))) {
			/* refused: fine */
		}
	}
	return 0;
}
