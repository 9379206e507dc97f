/* Unit tests for virtio-vsock (devices/virtio_vsock.c): fake guest rings through the MMIO transport, real Unix sockets on the host side. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio_mmio.h"
#include "devices/virtio_spec.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_pkt.h"
#include "vmm/evl.h"
#include "tests/unit/test_virtio_helpers.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK

#define QSIZE 64
#define RX_BUFS 0x100000   /* 32 rx buffers of 0x2000: header at +0, data at +0x1000 */
#define TX_BUFS 0x200000   /* 32 tx slots of 0x11000 */
#define EV_BUF 0x80000
#define RX_DATA 4096
#define GUEST_CID 3

static struct fake_ram ram;
static struct vmmio *t;
static struct virtio_dev *dev;
static struct vq_builder qrx, qtx, qev;
static int irq;
static char dir[40], path[64];
static unsigned int rx_posted, rx_seen, tx_sent;

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

static void queue_setup(unsigned int q, struct vq_builder *b, uint64_t base)
{
	vqb_init(b, &ram, QSIZE, base);
	wr(VIRTIO_MMIO_QUEUE_SEL, q);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b->desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b->avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b->used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

static void driver_init(void)
{
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	queue_setup(0, &qrx, 0x1000);
	queue_setup(1, &qtx, 0x4000);
	queue_setup(2, &qev, 0x7000);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
	rx_posted = rx_seen = tx_sent = 0;
}

static void setup(void)
{
	char err[256];

	fake_ram_init(&ram, 16 << 20);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	snprintf(dir, sizeof(dir), "/tmp/test_vsock.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	dev = virtio_vsock_create(path, GUEST_CID, NULL, err, sizeof(err));
	ck_assert_msg(dev != NULL, "%s", err);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	driver_init();
}

static void teardown(void)
{
	char p[160];

	vmmio_destroy(t);
	close(irq);
	fake_ram_free(&ram);
	/* The device removed its socket; listeners a test made are removed here. */
	snprintf(p, sizeof(p), "%s_6000", path);
	unlink(p);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(rmdir(dir), 0);
}

/* ---- driver side ---- */

static void post_rx(unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint16_t k = (uint16_t)(rx_posted % 32);
		uint64_t a = RX_BUFS + (uint64_t)k * 0x2000;

		/* Linux 6.1's layout: the header, then a 4 KiB buffer. */
		vqb_desc(&qrx, (uint16_t)(2 * k), a, VSOCK_HDR_SIZE, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			 (uint16_t)(2 * k + 1));
		vqb_desc(&qrx, (uint16_t)(2 * k + 1), a + 0x1000, RX_DATA, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&qrx, (uint16_t)(2 * k));
		rx_posted++;
	}
	vmmio_queue_notify(t, 0);
}

/* The next packet the device put on the rx queue; false if none. */
static bool next_rx(struct vsock_hdr *h, uint8_t *payload)
{
	struct virtq_used_elem e;
	uint64_t a;
	const char *why;
	uint8_t raw[VSOCK_HDR_SIZE];
	struct virtio_vsock_hdr w;

	if (vqb_used_idx(&qrx) == (uint16_t)rx_seen)
		return false;
	e = vqb_used(&qrx, (uint16_t)rx_seen++);
	ck_assert_uint_eq(e.id % 2, 0);
	a = RX_BUFS + (uint64_t)(e.id / 2) * 0x2000;
	memcpy(raw, fake_ram_at(&ram, a, VSOCK_HDR_SIZE), VSOCK_HDR_SIZE);
	memcpy(&w, raw, sizeof(w));
	h->src_cid = w.src_cid;
	h->dst_cid = w.dst_cid;
	h->src_port = w.src_port;
	h->dst_port = w.dst_port;
	h->len = w.len;
	h->type = w.type;
	h->op = w.op;
	h->flags = w.flags;
	h->buf_alloc = w.buf_alloc;
	h->fwd_cnt = w.fwd_cnt;
	(void)why;
	ck_assert_uint_eq(h->src_cid, VIRTIO_VSOCK_CID_HOST);
	ck_assert_uint_eq(h->dst_cid, GUEST_CID);
	ck_assert_uint_eq(h->type, VIRTIO_VSOCK_TYPE_STREAM);
	ck_assert_uint_eq(e.len, VSOCK_HDR_SIZE + h->len);
	ck_assert_uint_le(h->len, RX_DATA);
	if (payload && h->len)
		memcpy(payload, fake_ram_at(&ram, a + 0x1000, h->len), h->len);
	return true;
}

/* Polls the host side until a packet arrives on rx (or ~2 s pass). */
static bool wait_rx(struct vsock_hdr *h, uint8_t *payload)
{
	for (int i = 0; i < 200; i++) {
		if (next_rx(h, payload))
			return true;
		virtio_vsock_poll(dev, 10);
	}
	return false;
}

static void send_tx_raw(const void *hdr, uint32_t hdr_len, const void *payload, uint32_t len)
{
	uint16_t k = (uint16_t)(tx_sent % 32);
	uint64_t a = TX_BUFS + (uint64_t)k * 0x11000;

	memcpy(fake_ram_at(&ram, a, hdr_len), hdr, hdr_len);
	if (len) {
		/* Header and payload in separate descriptors, as Linux sends them. */
		memcpy(fake_ram_at(&ram, a + 0x1000, len), payload, len);
		vqb_desc(&qtx, (uint16_t)(2 * k), a, hdr_len, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * k + 1));
		vqb_desc(&qtx, (uint16_t)(2 * k + 1), a + 0x1000, len, 0, 0);
	} else {
		vqb_desc(&qtx, (uint16_t)(2 * k), a, hdr_len, 0, 0);
	}
	vqb_publish(&qtx, (uint16_t)(2 * k));
	tx_sent++;
	vmmio_queue_notify(t, 1);
	ck_assert_uint_eq(vqb_used_idx(&qtx), (uint16_t)tx_sent);
}

static void send_pkt(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
		     uint32_t buf_alloc, uint32_t fwd_cnt, const void *payload, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = VIRTIO_VSOCK_CID_HOST,
		.src_port = src_port,
		.dst_port = dst_port,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(&h, raw);
	send_tx_raw(raw, sizeof(raw), payload, len);
}

/* ---- host side ---- */

static int host_connect(const char *p)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads up to n bytes with the device polled meanwhile; returns the count
 * (0 on EOF, -1 when nothing came within ~2 s). */
static ssize_t host_read(int fd, void *buf, size_t n)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 0) == 1)
			return read(fd, buf, n);
		virtio_vsock_poll(dev, 10);
	}
	errno = ETIMEDOUT;
	return -1;
}

/* Whether the device closed fd: EOF, or ECONNRESET when it closed with our
 * bytes unread (AF_UNIX reports that), within ~2 s. */
static bool host_closed(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t n = host_read(fd, buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false;
	}
}

static void host_write(int fd, const char *s)
{
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* A host-initiated connection to guest port 5000, accepted by the guest
 * (port 1234 on its side of nothing: the REQUEST's ports are reused).
 * Returns the host socket; *hport is the device's host port. */
static int establish(uint32_t *hport, uint32_t guest_buf_alloc)
{
	struct vsock_hdr h;
	char line[32], want[32];
	int fd = host_connect(path);
	ssize_t n;

	host_write(fd, "CONNECT 5000\n");
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(h.dst_port, 5000);
	ck_assert_uint_ge(h.src_port, VIRTIO_VSOCK_HOST_PORT_FIRST);
	ck_assert_uint_lt(h.src_port, VIRTIO_VSOCK_HOST_PORT_END);
	ck_assert_uint_eq(h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	*hport = h.src_port;
	send_pkt(VIRTIO_VSOCK_OP_RESPONSE, 5000, h.src_port, 0, guest_buf_alloc, 0, NULL, 0);
	n = host_read(fd, line, sizeof(line) - 1);
	ck_assert_int_gt(n, 0);
	line[n] = 0;
	snprintf(want, sizeof(want), "OK %u\n", h.src_port);
	ck_assert_str_eq(line, want);
	return fd;
}

START_TEST(test_identity_and_config)
{
	uint32_t lo, hi;

	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	vmmio_read(t, VIRTIO_MMIO_CONFIG, &lo, 4);
	vmmio_read(t, VIRTIO_MMIO_CONFIG + 4, &hi, 4);
	ck_assert_uint_eq(lo, GUEST_CID);
	ck_assert_uint_eq(hi, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
}
END_TEST

START_TEST(test_create_refuses_existing_path)
{
	char err[256];
	struct virtio_dev *d2 = virtio_vsock_create(path, GUEST_CID, NULL, err, sizeof(err));

	ck_assert_ptr_null(d2);
	ck_assert_ptr_nonnull(strstr(err, "already exists"));
	ck_assert_int_eq(access(path, F_OK), 0); /* the first device's socket stays */
	d2 = virtio_vsock_create("/tmp/x.sock", 2, NULL, err, sizeof(err));
	ck_assert_ptr_null(d2);
	ck_assert_ptr_nonnull(strstr(err, "CID"));
}
END_TEST

START_TEST(test_host_initiated_flow)
{
	struct vsock_hdr h;
	uint8_t payload[RX_DATA];
	char buf[64];
	uint32_t hport;
	int fd;

	post_rx(8);
	fd = establish(&hport, 65536);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 1);

	/* host -> guest */
	host_write(fd, "ping");
	ck_assert(wait_rx(&h, payload));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.src_port, hport);
	ck_assert_uint_eq(h.dst_port, 5000);
	ck_assert_uint_eq(h.len, 4);
	ck_assert_mem_eq(payload, "ping", 4);

	/* guest -> host */
	send_pkt(VIRTIO_VSOCK_OP_RW, 5000, hport, 0, 65536, 4, "pong!", 5);
	ck_assert_int_eq(host_read(fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "pong!", 5);

	/* guest RST closes the host socket */
	send_pkt(VIRTIO_VSOCK_OP_RST, 5000, hport, 0, 0, 0, NULL, 0);
	ck_assert(host_closed(fd));
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	close(fd);
	/* Metrics: packets each way (the handshake's too), payload bytes. */
	{
		struct minivm_device_metrics m;

		virtio_stats_read(&dev->stats, &m);
		ck_assert_uint_ge(m.reads, 2);  /* REQUEST and the data */
		ck_assert_uint_eq(m.read_bytes, 4);
		ck_assert_uint_ge(m.writes, 3); /* RESPONSE, data, RST */
		ck_assert_uint_eq(m.write_bytes, 5);
		ck_assert_uint_eq(m.errors, 0);
	}
}
END_TEST

START_TEST(test_host_initiated_refused)
{
	struct vsock_hdr h;
	int fd;

	post_rx(2);
	fd = host_connect(path);
	host_write(fd, "CONNECT 42\n");
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	send_pkt(VIRTIO_VSOCK_OP_RST, 42, h.src_port, 0, 0, 0, NULL, 0);
	ck_assert(host_closed(fd));
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	close(fd);
}
END_TEST

START_TEST(test_bad_connect_lines)
{
	static const char *const lines[] = {
		"HELLO\n",
		"CONNECT x\n",
		"CONNECT 99999999999\n",
		"CONNECT 5000 and some more bytes than fit",
	};

	post_rx(2);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int fd = host_connect(path);

		host_write(fd, lines[i]);
		ck_assert_msg(host_closed(fd), "'%s' not refused", lines[i]);
		close(fd);
	}
	virtio_vsock_poll(dev, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	ck_assert_uint_eq(vqb_used_idx(&qrx), 0); /* nothing reached the guest */
}
END_TEST

START_TEST(test_client_before_driver_ready)
{
	char buf[16];
	int fd;

	wr(VIRTIO_MMIO_STATUS, 0); /* driver gone */
	fd = host_connect(path);
	host_write(fd, "CONNECT 5000\n");
	ck_assert(host_closed(fd));
	close(fd);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	(void)buf;
}
END_TEST

START_TEST(test_guest_exceeding_credit_gets_rst)
{
	static uint8_t chunk[VSOCK_MAX_PKT_LEN];
	struct vsock_hdr h;
	uint32_t hport, sent = 0;
	char buf[16];
	int fd, i;

	post_rx(1);
	fd = establish(&hport, 65536);
	/* No rx buffers left to carry a credit update, and the host does not
	 * read: the guest's credit is exactly VIRTIO_VSOCK_BUF_ALLOC. */
	while (next_rx(&h, NULL))
		;
	for (i = 0; sent + sizeof(chunk) <= VIRTIO_VSOCK_BUF_ALLOC; i++) {
		send_pkt(VIRTIO_VSOCK_OP_RW, 5000, hport, 0, 65536, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
	}
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 1);
	/* One byte more than the credit. */
	send_pkt(VIRTIO_VSOCK_OP_RW, 5000, hport, 0, 65536, 0, chunk, 1);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	post_rx(4);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.src_port, hport);
	ck_assert_uint_eq(h.dst_port, 5000);
	/* The host sees its socket closed (after the bytes that fit, if any). */
	ck_assert(host_closed(fd));
	(void)buf;
	close(fd);
}
END_TEST

START_TEST(test_credit_update_and_request)
{
	static uint8_t chunk[VSOCK_MAX_PKT_LEN];
	static char sink[4 * VSOCK_MAX_PKT_LEN];
	struct vsock_hdr h;
	uint32_t hport;
	size_t got = 0;
	int fd;
	bool update = false;

	post_rx(8);
	fd = establish(&hport, 65536);
	/* The host consumes what the guest sends: after half the credit the
	 * device says so with CREDIT_UPDATE. */
	for (int i = 0; i < 3; i++)
		send_pkt(VIRTIO_VSOCK_OP_RW, 5000, hport, 0, 65536, 0, chunk, sizeof(chunk));
	while (got < 3 * sizeof(chunk)) {
		ssize_t n = host_read(fd, sink, sizeof(sink));

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	while (wait_rx(&h, NULL)) {
		if (h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE) {
			update = true;
			ck_assert_uint_ge(h.fwd_cnt, 2 * sizeof(chunk));
			break;
		}
	}
	ck_assert(update);
	/* CREDIT_REQUEST is answered. */
	send_pkt(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5000, hport, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	ck_assert_uint_eq(h.fwd_cnt, 3 * sizeof(chunk));
	ck_assert_uint_eq(h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	close(fd);
}
END_TEST

START_TEST(test_host_to_guest_respects_credit)
{
	uint8_t payload[RX_DATA];
	struct vsock_hdr h;
	uint32_t hport;
	char big[300];
	int fd;

	post_rx(8);
	fd = establish(&hport, 100); /* the guest has room for 100 bytes */
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	ck_assert(wait_rx(&h, payload));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 100);
	for (int i = 0; i < 20; i++)
		virtio_vsock_poll(dev, 5);
	ck_assert(!next_rx(&h, payload)); /* no credit: nothing more */
	/* The guest consumed 60 bytes. */
	send_pkt(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, hport, 0, 100, 60, NULL, 0);
	ck_assert(wait_rx(&h, payload));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 60);
	close(fd);
}
END_TEST

START_TEST(test_host_close_becomes_shutdown)
{
	struct vsock_hdr h;
	uint32_t hport, flags = 0;
	int fd;

	post_rx(8);
	fd = establish(&hport, 65536);
	host_write(fd, "bye");
	close(fd);
	/* The bytes first, then SHUTDOWN until both flags are told. */
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 3);
	while (flags != 3 && wait_rx(&h, NULL)) {
		ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
		flags |= h.flags;
	}
	ck_assert_uint_eq(flags, 3);
	/* The guest answers with RST: gone. */
	send_pkt(VIRTIO_VSOCK_OP_RST, 5000, hport, 0, 0, 0, NULL, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
}
END_TEST

START_TEST(test_guest_initiated)
{
	struct sockaddr_un sa;
	struct vsock_hdr h;
	uint8_t payload[RX_DATA];
	char buf[16];
	int lfd, fd;

	post_rx(8);
	/* Nobody listens on host port 7777: RST. */
	send_pkt(VIRTIO_VSOCK_OP_REQUEST, 40000, 7777, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.src_port, 7777);
	ck_assert_uint_eq(h.dst_port, 40000);

	/* A listener at <path>_6000. */
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_6000", path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	send_pkt(VIRTIO_VSOCK_OP_REQUEST, 40001, 6000, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	ck_assert_uint_eq(h.src_port, 6000);
	ck_assert_uint_eq(h.dst_port, 40001);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	send_pkt(VIRTIO_VSOCK_OP_RW, 40001, 6000, 0, 65536, 0, "abc", 3);
	ck_assert_int_eq(host_read(fd, buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	host_write(fd, "xyz");
	ck_assert(wait_rx(&h, payload));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_mem_eq(payload, "xyz", 3);
	/* A duplicate REQUEST on a live connection resets it. */
	send_pkt(VIRTIO_VSOCK_OP_REQUEST, 40001, 6000, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert(host_closed(fd));
	close(fd);
	close(lfd);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
}
END_TEST

START_TEST(test_guest_shutdown_half_close)
{
	struct sockaddr_un sa;
	struct vsock_hdr h;
	char buf[16];
	int lfd, fd;

	post_rx(8);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_6000", path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	send_pkt(VIRTIO_VSOCK_OP_REQUEST, 40002, 6000, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept(lfd, NULL, NULL);
	send_pkt(VIRTIO_VSOCK_OP_RW, 40002, 6000, 0, 65536, 0, "last", 4);
	send_pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 40002, 6000, VIRTIO_VSOCK_SHUTDOWN_F_SEND, 65536, 0, NULL, 0);
	ck_assert_int_eq(host_read(fd, buf, sizeof(buf)), 4);
	ck_assert_int_eq(host_read(fd, buf, sizeof(buf)), 0); /* EOF: half-closed */
	/* The other direction still works. */
	host_write(fd, "reply");
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 5);
	/* Full shutdown from the guest: RST back at once, host socket closed. */
	send_pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 40002, 6000, 3, 65536, 5, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	close(fd);
	close(lfd);
}
END_TEST

START_TEST(test_malformed_packets)
{
	struct vsock_hdr h;
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr bad = {
		.src_cid = GUEST_CID,
		.dst_cid = VIRTIO_VSOCK_CID_HOST,
		.src_port = 50,
		.dst_port = 60,
		.type = VIRTIO_VSOCK_TYPE_SEQPACKET,
		.op = VIRTIO_VSOCK_OP_RW,
	};

	post_rx(8);
	/* Wrong type: RST. */
	send_pkt(VIRTIO_VSOCK_OP_RW, 50, 60, 0, 0, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL)); /* RW for no connection: RST */
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	vsock_hdr_encode(&bad, raw);
	send_tx_raw(raw, sizeof(raw), NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.dst_port, 50);
	/* An RST with a bad type gets no answer. */
	bad.op = VIRTIO_VSOCK_OP_RST;
	vsock_hdr_encode(&bad, raw);
	send_tx_raw(raw, sizeof(raw), NULL, 0);
	/* Spoofed source CID: dropped silently. */
	bad.type = VIRTIO_VSOCK_TYPE_STREAM;
	bad.op = VIRTIO_VSOCK_OP_REQUEST;
	bad.src_cid = 7;
	vsock_hdr_encode(&bad, raw);
	send_tx_raw(raw, sizeof(raw), NULL, 0);
	/* Shorter than a header: dropped. */
	send_tx_raw(raw, 20, NULL, 0);
	/* len larger than what the chain holds: RST. */
	bad.src_cid = GUEST_CID;
	bad.op = VIRTIO_VSOCK_OP_RW;
	bad.len = 1000;
	vsock_hdr_encode(&bad, raw);
	send_tx_raw(raw, sizeof(raw), "x", 1);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	virtio_vsock_poll(dev, 0);
	ck_assert(!next_rx(&h, NULL));
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
}
END_TEST

START_TEST(test_broken_tx_ring_needs_reset)
{
	vqb_desc(&qtx, 0, ram.size - 8, 64, 0, 0); /* outside RAM */
	vqb_publish(&qtx, 0);
	vmmio_queue_notify(t, 1);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(test_device_reset_drops_connections)
{
	uint32_t hport;
	int fd;

	post_rx(4);
	fd = establish(&hport, 65536);
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	ck_assert(host_closed(fd));
	close(fd);
	/* The driver comes back and connections work again. */
	driver_init();
	post_rx(4);
	fd = establish(&hport, 65536);
	close(fd);
}
END_TEST

START_TEST(test_transport_reset_event)
{
	struct virtq_used_elem e;
	uint32_t hport, id = 0xffffffff;
	int fd;

	post_rx(4);
	fd = establish(&hport, 65536);
	/* No event buffer yet: the event waits for one. */
	ck_assert_int_eq(virtio_vsock_send_transport_reset(dev), 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	ck_assert(host_closed(fd));
	close(fd);
	ck_assert_uint_eq(vqb_used_idx(&qev), 0);
	memcpy(fake_ram_at(&ram, EV_BUF, 4), &id, 4);
	vqb_desc(&qev, 0, EV_BUF, 4, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&qev, 0);
	vmmio_queue_notify(t, 2);
	ck_assert_uint_eq(vqb_used_idx(&qev), 1);
	e = vqb_used(&qev, 0);
	ck_assert_uint_eq(e.len, 4);
	memcpy(&id, fake_ram_at(&ram, EV_BUF, 4), 4);
	ck_assert_uint_eq(id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	/* With a buffer already there it goes out at once. */
	vqb_desc(&qev, 1, EV_BUF + 0x100, 4, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&qev, 1);
	vmmio_queue_notify(t, 2);
	ck_assert_int_eq(virtio_vsock_send_transport_reset(dev), 0);
	ck_assert_uint_eq(vqb_used_idx(&qev), 2);
	/* Not running: nothing to reset. */
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_int_eq(virtio_vsock_send_transport_reset(dev), -ENOTCONN);
}
END_TEST

START_TEST(test_many_connections_bounded)
{
	int fds[40];
	struct vsock_hdr h;
	unsigned int reqs = 0;

	post_rx(32);
	for (int i = 0; i < 40; i++) {
		fds[i] = host_connect(path);
		host_write(fds[i], "CONNECT 9\n");
	}
	for (int i = 0; i < 100; i++)
		virtio_vsock_poll(dev, 1);
	while (next_rx(&h, NULL))
		reqs += h.op == VIRTIO_VSOCK_OP_REQUEST;
	ck_assert_uint_eq(reqs, 32); /* as many as rx buffers */
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 40);
	post_rx(16);
	for (int i = 0; i < 10; i++)
		virtio_vsock_poll(dev, 1);
	while (next_rx(&h, NULL))
		reqs += h.op == VIRTIO_VSOCK_OP_REQUEST;
	ck_assert_uint_eq(reqs, 40);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	for (int i = 0; i < 10; i++)
		virtio_vsock_poll(dev, 1);
}
END_TEST

/* A listener at <path>_6000 and a guest connection to it from guest port
 * gport; returns the accepted host socket, *lfd the listener. */
static int guest_connection(uint32_t gport, int *lfd)
{
	struct sockaddr_un sa;
	struct vsock_hdr h;
	int fd;

	*lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_6000", path);
	ck_assert_int_eq(bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(*lfd, 4), 0);
	send_pkt(VIRTIO_VSOCK_OP_REQUEST, gport, 6000, 0, 65536, 0, NULL, 0);
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept(*lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(test_guest_close_drains_buffered_bytes)
{
	static uint8_t chunk[VSOCK_MAX_PKT_LEN];
	static uint8_t sink[1 << 20];
	struct vsock_hdr h;
	size_t got = 0;
	int lfd, fd, sz = 4096;

	post_rx(8);
	fd = guest_connection(40010, &lfd);
	/* A small host receive buffer, so most bytes wait in the device. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	for (int i = 0; i < 4; i++) {
		memset(chunk, 'a' + i, sizeof(chunk));
		send_pkt(VIRTIO_VSOCK_OP_RW, 40010, 6000, 0, 65536, 0, chunk, sizeof(chunk));
	}
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 1);
	send_pkt(VIRTIO_VSOCK_OP_SHUTDOWN, 40010, 6000, 3, 65536, 0, NULL, 0);
	/* RST to the guest at once, whatever is still buffered. */
	do
		ck_assert(wait_rx(&h, NULL));
	while (h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	/* The host still gets every byte, in order, then EOF. */
	for (;;) {
		ssize_t n = host_read(fd, sink + got, sizeof(sink) - got);

		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	ck_assert_uint_eq(got, 4 * sizeof(chunk));
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(sink[(size_t)i * sizeof(chunk) + 100], 'a' + i);
	virtio_vsock_poll(dev, 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	close(fd);
	close(lfd);
}
END_TEST

START_TEST(test_unanswered_request_times_out)
{
	struct vsock_hdr h;
	int fd;

	post_rx(4);
	fd = host_connect(path);
	host_write(fd, "CONNECT 5000\n");
	ck_assert(wait_rx(&h, NULL));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	/* The guest never answers: after VIRTIO_VSOCK_CONNECT_TIMEOUT_MS the
	 * device gives up, tells the guest (RST) and closes the socket. */
	for (int i = 0; i < (VIRTIO_VSOCK_CONNECT_TIMEOUT_MS + 2000) / 50 && !next_rx(&h, NULL); i++)
		virtio_vsock_poll(dev, 50);
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.dst_port, 5000);
	ck_assert(host_closed(fd));
	ck_assert_uint_eq(virtio_vsock_nr_conns(dev), 0);
	close(fd);
}
END_TEST

static void *evl_thread(void *arg)
{
	ck_assert_int_eq(evl_run(arg), 0);
	return NULL;
}

/* The real event loop serves the device (its epoll fd polled through
 * io_uring), with no virtio_vsock_poll() calls: a host client's CONNECT
 * reaches the guest, the guest's RESPONSE reaches the client. */
START_TEST(test_served_by_event_loop)
{
	struct vmmio *t0 = t;
	struct virtio_dev *dev0 = dev;
	struct evl *evl;
	pthread_t th;
	struct vsock_hdr h;
	char err[256], line[32], p2[80];
	int fd;
	ssize_t n;
	bool got = false;

	evl = evl_create(64, err, sizeof(err));
	ck_assert_msg(evl != NULL, "%s", err);
	snprintf(p2, sizeof(p2), "%s.evl", path);
	dev = virtio_vsock_create(p2, GUEST_CID, evl, err, sizeof(err));
	ck_assert_msg(dev != NULL, "%s", err);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	driver_init();
	post_rx(4);
	ck_assert_int_eq(pthread_create(&th, NULL, evl_thread, evl), 0);
	fd = host_connect(p2);
	host_write(fd, "CONNECT 5000\n");
	for (int i = 0; i < 400 && !got; i++) {
		vmmio_read(t, VIRTIO_MMIO_STATUS, &(uint32_t){ 0 }, 4); /* takes the lock: a barrier */
		got = next_rx(&h, NULL);
		if (!got)
			usleep(5000);
	}
	ck_assert(got);
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	send_pkt(VIRTIO_VSOCK_OP_RESPONSE, 5000, h.src_port, 0, 65536, 0, NULL, 0);
	n = read(fd, line, sizeof(line) - 1); /* blocking: the loop writes it */
	ck_assert_int_gt(n, 3);
	ck_assert_mem_eq(line, "OK ", 3);
	close(fd);
	evl_stop(evl);
	pthread_join(th, NULL);
	vmmio_destroy(t);
	ck_assert_int_eq(access(p2, F_OK), -1);
	evl_destroy(evl);
	t = t0;
	dev = dev0;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_identity_and_config);
	tcase_add_test(tc, test_create_refuses_existing_path);
	tcase_add_test(tc, test_host_initiated_flow);
	tcase_add_test(tc, test_host_initiated_refused);
	tcase_add_test(tc, test_bad_connect_lines);
	tcase_add_test(tc, test_client_before_driver_ready);
	tcase_add_test(tc, test_guest_exceeding_credit_gets_rst);
	tcase_add_test(tc, test_credit_update_and_request);
	tcase_add_test(tc, test_host_to_guest_respects_credit);
	tcase_add_test(tc, test_host_close_becomes_shutdown);
	tcase_add_test(tc, test_guest_initiated);
	tcase_add_test(tc, test_guest_shutdown_half_close);
	tcase_add_test(tc, test_malformed_packets);
	tcase_add_test(tc, test_broken_tx_ring_needs_reset);
	tcase_add_test(tc, test_device_reset_drops_connections);
	tcase_add_test(tc, test_transport_reset_event);
	tcase_add_test(tc, test_many_connections_bounded);
	tcase_add_test(tc, test_guest_close_drains_buffered_bytes);
	tcase_add_test(tc, test_unanswered_request_times_out);
	tcase_add_test(tc, test_served_by_event_loop);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
