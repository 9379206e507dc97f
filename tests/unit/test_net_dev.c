/* Unit tests for virtio-net (devices/virtio_net.c): fake guest rings through the MMIO transport; the backend a real SOCK_SEQPACKET pair, and a real TAP in a network namespace of the test's own. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/net_pkt.h"
#include "devices/net_policy.h"
#include "devices/ratelimit.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_spec.h"
#include "vmm/evl.h"
#include "tests/unit/test_virtio_helpers.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK

#define QSIZE 16
#define RX_BUFS 0x100000 /* 16 rx buffers of 0x1000 */
#define TX_BUFS 0x200000 /* 8 tx slots of 0x2000: header at +0, frame at +0x100 */
#define RX_LEN 2048

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static struct net_guest guest = {
	.mac = { 0x02, 0, 0, 0, 0, 5 },
	.ip = IP(10, 0, 2, 5),
	.prefix = 24,
	.gw = IP(10, 0, 2, 1),
	.dns = IP(10, 0, 2, 3),
	.gw_mac = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};

static struct fake_ram ram;
static struct vmmio *t;
static struct virtio_dev *dev;
static struct vq_builder qrx, qtx;
static int irq, peer = -1;
static unsigned int rx_posted, rx_seen, tx_sent;
static bool want_mrg; /* the driver negotiates VIRTIO_NET_F_MRG_RXBUF */

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
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_MTU) |
						(want_mrg ? 1u << VIRTIO_NET_F_MRG_RXBUF : 0));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	queue_setup(VIRTIO_NET_QUEUE_RX, &qrx, 0x1000);
	queue_setup(VIRTIO_NET_QUEUE_TX, &qtx, 0x4000);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
	rx_posted = rx_seen = tx_sent = 0;
}

static struct evl *lim_evl; /* the rate-limit tests' event loop, on lim_thread */
static pthread_t lim_thread;

static void *evl_thread(void *arg)
{
	ck_assert_int_eq(evl_run(arg), 0);
	return NULL;
}

/* A device on fd with the test policy: 1.2.3.4:443/tcp, allow-dns. With
 * evl: rate limits rx and tx (either may be NULL), and evl runs on
 * lim_thread until teardown. */
static void start_on(int fd, struct evl *evl, const struct rl_config *rx, const struct rl_config *tx)
{
	struct net_policy *p = calloc(1, sizeof(*p));
	char err[256];

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(net_policy_add(p, "1.2.3.4:443/tcp", err, sizeof(err)), 0);
	p->allow_dns = true;
	fake_ram_init(&ram, 4 << 20);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dev = virtio_net_create(fd, &guest, p, evl, err, sizeof(err));
	free(p);
	ck_assert_msg(dev != NULL, "%s", err);
	if (evl)
		ck_assert_msg(virtio_net_set_rate_limit(dev, rx, tx, err, sizeof(err)) == 0, "%s", err);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	if (evl) {
		lim_evl = evl;
		ck_assert_int_eq(pthread_create(&lim_thread, NULL, evl_thread, evl), 0);
	}
	driver_init();
}

static void start(int fd)
{
	start_on(fd, NULL, NULL, NULL);
}

static void setup(void)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	peer = sv[1];
	want_mrg = false;
	start(sv[0]);
}

static void teardown(void)
{
	if (!t)
		return; /* a test that never started a device */
	if (lim_evl) {
		evl_stop(lim_evl);
		pthread_join(lim_thread, NULL);
	}
	vmmio_destroy(t);
	evl_destroy(lim_evl);
	lim_evl = NULL;
	t = NULL;
	close(irq);
	if (peer >= 0)
		close(peer);
	peer = -1;
	fake_ram_free(&ram);
}

/* ---- frames ---- */

static void w16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void w32(uint8_t *p, uint32_t v)
{
	w16(p, (uint16_t)(v >> 16));
	w16(p + 2, (uint16_t)v);
}

/* virtio-net header, Ethernet from the guest to the gateway. */
static size_t eth(uint8_t *b, uint16_t type)
{
	memset(b, 0, NET_VNET_HDR_LEN);
	memcpy(b + 12, guest.gw_mac, 6);
	memcpy(b + 18, guest.mac, 6);
	w16(b + 24, type);
	return 26;
}

static size_t ipv4(uint8_t *b, uint8_t proto, uint32_t src, uint32_t dst, const uint8_t *l4, size_t l4len)
{
	size_t o = eth(b, NET_ETHERTYPE_IPV4);
	uint8_t *ip = b + o;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	w16(ip + 2, (uint16_t)(20 + l4len));
	ip[8] = 64;
	ip[9] = proto;
	w32(ip + 12, src);
	w32(ip + 16, dst);
	w16(ip + 10, net_csum(ip, 20, 0));
	memcpy(ip + 20, l4, l4len);
	return o + 20 + l4len;
}

static size_t syn(uint8_t *b, uint32_t dst, uint16_t dport)
{
	uint8_t t4[20] = { 0 };

	w16(t4, 40000);
	w16(t4 + 2, dport);
	w32(t4 + 4, 777);
	t4[12] = 5 << 4;
	t4[13] = NET_TCP_SYN;
	return ipv4(b, NET_IPPROTO_TCP, guest.ip, dst, t4, 20);
}

static size_t udp(uint8_t *b, uint32_t dst, uint16_t dport)
{
	uint8_t u[12] = { 0 };

	w16(u, 5353);
	w16(u + 2, dport);
	w16(u + 4, 12);
	memcpy(u + 8, "ping", 4);
	return ipv4(b, NET_IPPROTO_UDP, guest.ip, dst, u, 12);
}

static size_t arp_req(uint8_t *b, uint32_t tpa)
{
	size_t o = eth(b, NET_ETHERTYPE_ARP);
	uint8_t *a = b + o;

	memset(b + 12, 0xff, 6);
	w16(a, 1);
	w16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	w16(a + 6, NET_ARP_REQUEST);
	memcpy(a + 8, guest.mac, 6);
	w32(a + 14, guest.ip);
	memset(a + 18, 0, 6);
	w32(a + 24, tpa);
	return o + 28;
}

/* ---- driver side ---- */

static void post_rx_len(unsigned int n, uint32_t len)
{
	for (unsigned int i = 0; i < n; i++) {
		uint16_t k = (uint16_t)(rx_posted % QSIZE);

		memset(fake_ram_at(&ram, RX_BUFS + k * 0x1000ULL, 0x1000), 0xcc, 0x1000);
		vqb_desc(&qrx, k, RX_BUFS + k * 0x1000ULL, len, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&qrx, k);
		rx_posted++;
	}
	vmmio_queue_notify(t, VIRTIO_NET_QUEUE_RX);
}

static void post_rx(unsigned int n)
{
	post_rx_len(n, RX_LEN);
}

/* The next frame the device put on the rx queue (with its header), its
 * length in *len; NULL if none. */
static const uint8_t *next_rx(uint32_t *len)
{
	struct virtq_used_elem e;

	if (vqb_used_idx(&qrx) == (uint16_t)rx_seen)
		return NULL;
	e = vqb_used(&qrx, (uint16_t)rx_seen++);
	ck_assert_uint_lt(e.id, QSIZE);
	*len = e.len;
	return fake_ram_at(&ram, RX_BUFS + e.id * 0x1000ULL, e.len ? e.len : 1);
}

/* The guest transmits frame[0..len) as Linux may: header and frame in
 * separate descriptors; the device may not have taken it on return. */
static void tx_publish(const uint8_t *frame, size_t len)
{
	uint16_t k = (uint16_t)(tx_sent % (QSIZE / 2));
	uint64_t a = TX_BUFS + k * 0x2000ULL;

	ck_assert_uint_ge(len, NET_VNET_HDR_LEN);
	memcpy(fake_ram_at(&ram, a, NET_VNET_HDR_LEN), frame, NET_VNET_HDR_LEN);
	memcpy(fake_ram_at(&ram, a + 0x100, len - NET_VNET_HDR_LEN), frame + NET_VNET_HDR_LEN,
	       len - NET_VNET_HDR_LEN);
	vqb_desc(&qtx, (uint16_t)(2 * k), a, NET_VNET_HDR_LEN, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * k + 1));
	vqb_desc(&qtx, (uint16_t)(2 * k + 1), a + 0x100, (uint32_t)(len - NET_VNET_HDR_LEN), 0, 0);
	vqb_publish(&qtx, (uint16_t)(2 * k));
	tx_sent++;
	vmmio_queue_notify(t, VIRTIO_NET_QUEUE_TX);
}

/* tx_publish, and the device handled the frame at once. */
static void send_tx(const uint8_t *frame, size_t len)
{
	tx_publish(frame, len);
	ck_assert_uint_eq(vqb_used_idx(&qtx), (uint16_t)tx_sent);
	ck_assert_uint_eq(vqb_used(&qtx, (uint16_t)(tx_sent - 1)).len, 0);
}

/* What the backend got: one message, or -1 if nothing is there. */
static ssize_t peer_recv(uint8_t *buf, size_t cap)
{
	return recv(peer, buf, cap, MSG_DONTWAIT);
}

static struct net_stats *stats(struct virtio_net_counters *c)
{
	static struct net_stats s;

	virtio_net_get_stats(dev, &s, c);
	return &s;
}

START_TEST(test_config_and_features)
{
	uint8_t mac[6];
	uint16_t mtu;

	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	/* MAC, MTU and mergeable rx buffers. */
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES) & ((1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_MTU)),
			  (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_MTU));
	/* No offloads: CSUM, GUEST_CSUM, CTRL_GUEST_OFFLOADS, GUEST_TSO4..HOST_UFO (7-14), CTRL_VQ. */
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES) & (0x7u | 0x7f80u | (1u << 17)), 0);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_NET_F_MRG_RXBUF), 0);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES) & 1, 1);
	for (int i = 0; i < 6; i++)
		vmmio_read(t, 0x100 + (uint64_t)i, &mac[i], 1);
	ck_assert(!memcmp(mac, guest.mac, 6));
	vmmio_read(t, 0x100 + 10, &mtu, 2);
	ck_assert_uint_eq(mtu, 1500);
	/* Writes are ignored. */
	mac[0] = 0x7e;
	vmmio_write(t, 0x100, &mac[0], 1);
	vmmio_read(t, 0x100, &mac[0], 1);
	ck_assert_uint_eq(mac[0], guest.mac[0]);
}
END_TEST

START_TEST(test_tx_allowed_reaches_backend)
{
	uint8_t f[NET_BUF_MAX], got[NET_BUF_MAX + 64];
	struct virtio_net_counters c;
	size_t n = syn(f, IP(1, 2, 3, 4), 443);

	send_tx(f, n);
	ck_assert_int_eq(peer_recv(got, sizeof(got)), (ssize_t)n);
	ck_assert(!memcmp(got, f, n));
	n = udp(f, guest.dns, 53);
	send_tx(f, n);
	ck_assert_int_eq(peer_recv(got, sizeof(got)), (ssize_t)n);
	ck_assert(!memcmp(got, f, n));
	ck_assert_uint_eq(stats(&c)->allowed, 2);
	ck_assert_uint_eq(c.tx_frames, 2);
	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);
}
END_TEST

START_TEST(test_tx_denied_answers)
{
	uint8_t f[NET_BUF_MAX], got[NET_BUF_MAX];
	const uint8_t *r;
	struct net_frame rf;
	struct virtio_net_counters c;
	uint32_t len;

	/* A SYN to a denied port: nothing reaches the backend, a RST comes back. */
	post_rx(3);
	send_tx(f, syn(f, IP(1, 2, 3, 4), 80));
	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert_uint_eq(r[10], 1); /* num_buffers */
	ck_assert_uint_eq(rf.ip.proto, NET_IPPROTO_TCP);
	ck_assert_uint_eq(rf.l4.tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	ck_assert_uint_eq(rf.l4.ack, 778);
	ck_assert_uint_eq(rf.ip.src, IP(1, 2, 3, 4));
	ck_assert_uint_eq(rf.l4.sport, 80);
	ck_assert(!memcmp(rf.dst_mac, guest.mac, 6));

	/* UDP to a denied destination: ICMP port unreachable. */
	send_tx(f, udp(f, IP(9, 9, 9, 9), 53));
	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert_uint_eq(rf.ip.proto, NET_IPPROTO_ICMP);
	ck_assert_uint_eq(rf.l4.icmp_type, 3);
	ck_assert_uint_eq(rf.l4.icmp_code, 3);

	/* ARP for the gateway: answered here, never forwarded. */
	send_tx(f, arp_req(f, guest.gw));
	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert(rf.is_arp);
	ck_assert_uint_eq(rf.arp.op, NET_ARP_REPLY);
	ck_assert(!memcmp(rf.arp.sha, guest.gw_mac, 6));
	ck_assert_uint_eq(rf.arp.spa, guest.gw);
	/* ARP for anyone else: dropped, no answer. */
	send_tx(f, arp_req(f, IP(10, 0, 2, 77)));
	ck_assert_ptr_null(next_rx(&len));
	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);

	ck_assert_uint_eq(stats(&c)->denied[NET_DENY_DEST], 2);
	ck_assert_uint_eq(stats(NULL)->denied[NET_DENY_ARP], 1);
	ck_assert_uint_eq(stats(NULL)->arp_replies, 1);
	ck_assert_uint_eq(c.replies, 3);
	ck_assert_uint_eq(c.tx_frames, 0);

	/* With no rx buffer left the answer is dropped, never waited for. */
	send_tx(f, syn(f, IP(5, 5, 5, 5), 22));
	ck_assert_ptr_null(next_rx(&len));
	stats(&c);
	ck_assert_uint_eq(c.replies_dropped, 1);
	/* A buffer posted now gets nothing stale. */
	post_rx(1);
	ck_assert_ptr_null(next_rx(&len));
}
END_TEST

static struct minivm_event events[8];
static unsigned int nr_events;

static void take_event(void *opaque, const struct minivm_event *ev)
{
	(void)opaque;
	if (nr_events < 8)
		events[nr_events] = *ev;
	nr_events++;
}

/* Metrics and events: sent frames with their bytes, every denial counted
 * and told with its destination, port, protocol and reason. */
START_TEST(test_counters_and_denial_events)
{
	uint8_t f[NET_BUF_MAX], got[NET_BUF_MAX + 64];
	struct minivm_device_metrics m;
	size_t n;

	nr_events = 0;
	dev->event_fn = take_event;
	post_rx(4);
	n = syn(f, IP(1, 2, 3, 4), 443);
	send_tx(f, n);
	ck_assert_int_eq(peer_recv(got, sizeof(got)), (ssize_t)n);
	send_tx(f, syn(f, IP(1, 2, 3, 4), 80));
	send_tx(f, udp(f, IP(9, 9, 9, 9), 53));
	send_tx(f, arp_req(f, IP(10, 0, 2, 77)));
	send_tx(f, arp_req(f, guest.gw)); /* answered: not a denial */
	virtio_stats_read(&dev->stats, &m);
	ck_assert_uint_eq(m.writes, 1);
	ck_assert_uint_eq(m.write_bytes, n - NET_VNET_HDR_LEN);
	ck_assert_uint_eq(m.denied, 3);
	ck_assert_uint_eq(m.errors, 0);
	ck_assert_uint_eq(nr_events, 3);
	ck_assert_uint_eq(events[0].type, MINIVM_EVENT_POLICY_DENIED);
	ck_assert_uint_eq(events[0].dst_ip, IP(1, 2, 3, 4));
	ck_assert_uint_eq(events[0].dst_port, 80);
	ck_assert_uint_eq(events[0].ip_proto, NET_IPPROTO_TCP);
	ck_assert_str_eq(events[0].reason, "dest");
	ck_assert_str_eq(events[0].message, "virtio-net");
	ck_assert_uint_eq(events[1].dst_ip, IP(9, 9, 9, 9));
	ck_assert_uint_eq(events[1].dst_port, 53);
	ck_assert_uint_eq(events[1].ip_proto, NET_IPPROTO_UDP);
	ck_assert_uint_eq(events[2].dst_ip, 0); /* ARP: no IPv4 destination */
	ck_assert_uint_eq(events[2].dst_port, 0);
	ck_assert_str_eq(events[2].reason, net_deny_reason_name(NET_DENY_ARP));
}
END_TEST

START_TEST(test_tx_spoofed_ipv6_malformed)
{
	uint8_t f[NET_BUF_MAX + 100], got[NET_BUF_MAX];
	struct net_stats *s;
	uint32_t len;
	size_t n;

	post_rx(4);
	/* Spoofed source IP, to an allowed destination. */
	n = ipv4(f, NET_IPPROTO_TCP, IP(10, 0, 2, 6), IP(1, 2, 3, 4), (const uint8_t[20]){ 0, 1, 1, 187, [12] = 0x50, [13] = 2 }, 20);
	send_tx(f, n);
	/* Spoofed source MAC. */
	n = syn(f, IP(1, 2, 3, 4), 443);
	f[12 + 6 + 5] ^= 1;
	send_tx(f, n);
	/* IPv6. */
	n = eth(f, NET_ETHERTYPE_IPV6);
	memset(f + n, 0, 48);
	f[n] = 0x60;
	send_tx(f, n + 48);
	/* A fragment of an allowed flow. */
	n = syn(f, IP(1, 2, 3, 4), 443);
	w16(f + 26 + 6, 0x2000);
	w16(f + 26 + 10, 0);
	w16(f + 26 + 10, net_csum(f + 26, 20, 0));
	send_tx(f, n);
	/* Malformed: bad checksum, a runt, checksum offload requested, and a
	 * chain longer than any frame. */
	n = syn(f, IP(1, 2, 3, 4), 443);
	f[26 + 8] ^= 1;
	send_tx(f, n);
	send_tx(f, 20);
	n = syn(f, IP(1, 2, 3, 4), 443);
	f[0] = NET_VNET_F_NEEDS_CSUM;
	send_tx(f, n);
	memset(f, 0, sizeof(f));
	eth(f, 0x88b5);
	send_tx(f, NET_BUF_MAX + 1);

	ck_assert_int_eq(peer_recv(got, sizeof(got)), -1);
	ck_assert_ptr_null(next_rx(&len)); /* no answers to any of these */
	s = stats(NULL);
	ck_assert_uint_eq(s->denied[NET_DENY_SRC_IP], 1);
	ck_assert_uint_eq(s->denied[NET_DENY_SRC_MAC], 1);
	ck_assert_uint_eq(s->denied[NET_DENY_IPV6], 1);
	ck_assert_uint_eq(s->denied[NET_DENY_FRAGMENT], 1);
	ck_assert_uint_eq(s->denied[NET_DENY_MALFORMED], 4);
	ck_assert_uint_eq(s->malformed[NET_PKT_IP_CSUM], 1);
	ck_assert_uint_eq(s->malformed[NET_PKT_RUNT], 1);
	ck_assert_uint_eq(s->malformed[NET_PKT_VNET_HDR], 1);
	ck_assert_uint_eq(s->malformed[NET_PKT_OVERSIZE], 1);
	ck_assert_uint_eq(s->allowed, 0);
	/* The device is still fine. */
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(test_rx_from_backend)
{
	uint8_t f[NET_BUF_MAX];
	struct virtio_net_counters c;
	const uint8_t *r;
	uint32_t len;
	size_t n = udp(f, IP(10, 0, 2, 5), 7);

	/* The backend's header flags (DATA_VALID) are not passed on. */
	f[0] = 2;
	f[10] = 9;
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	/* No buffer yet: the frame waits in the backend. */
	virtio_net_poll(dev);
	ck_assert_ptr_null(next_rx(&len));
	post_rx(1);
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(len, n);
	ck_assert_uint_eq(r[0], 0);
	ck_assert_uint_eq(r[10], 1);
	ck_assert_uint_eq(r[11], 0);
	ck_assert(!memcmp(r + NET_VNET_HDR_LEN, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN));
	ck_assert_uint_eq(((const uint8_t *)fake_ram_at(&ram, RX_BUFS, 0x1000))[n], 0xcc); /* nothing past it */
	ck_assert_uint_ne(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING, 0);

	/* Too big for the buffer offered: dropped; the buffer takes the next. */
	post_rx_len(1, 50);
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	f[NET_VNET_HDR_LEN + 14] = 0x99;
	ck_assert_int_eq(send(peer, f, 12 + 36, 0), 12 + 36);
	virtio_net_poll(dev);
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(len, 12 + 36);
	ck_assert_uint_eq(r[NET_VNET_HDR_LEN + 14], 0x99);
	/* Runts and GSO frames from the backend are dropped too. */
	post_rx(1);
	ck_assert_int_eq(send(peer, f, 20, 0), 20);
	f[1] = 1;
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	virtio_net_poll(dev);
	ck_assert_ptr_null(next_rx(&len));
	stats(&c);
	ck_assert_uint_eq(c.rx_frames, 2);
	ck_assert_uint_eq(c.rx_dropped, 3);
	/* Metrics: frames to the guest and their Ethernet bytes; drops are errors. */
	{
		struct minivm_device_metrics m;

		virtio_stats_read(&dev->stats, &m);
		ck_assert_uint_eq(m.reads, 2);
		ck_assert_uint_eq(m.read_bytes, (n - NET_VNET_HDR_LEN) + 36);
		ck_assert_uint_eq(m.errors, 3);
		ck_assert_uint_eq(m.writes, 0);
	}
}
END_TEST

START_TEST(test_reset_and_broken_ring)
{
	uint8_t f[NET_BUF_MAX], got[NET_BUF_MAX];
	size_t n = syn(f, IP(1, 2, 3, 4), 443);

	/* After a reset the device takes nothing until the driver is back. */
	post_rx(1);
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	driver_init();
	send_tx(f, n);
	ck_assert_int_eq(peer_recv(got, sizeof(got)), (ssize_t)n);

	/* A descriptor outside RAM fails the device, no crash. */
	vqb_desc(&qtx, 0, ram.size - 8, 64, 0, 0);
	vqb_publish(&qtx, 0);
	vmmio_queue_notify(t, VIRTIO_NET_QUEUE_TX);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* With VIRTIO_NET_F_MRG_RXBUF: a frame spans small buffers, num_buffers
 * counts them, and a frame waits when the ring runs dry midway. */
START_TEST(test_rx_mergeable)
{
	uint8_t f[NET_BUF_MAX], whole[NET_BUF_MAX];
	struct virtio_net_counters c;
	struct virtq_used_elem e;
	size_t n = udp(f, guest.ip, 7);
	uint32_t off = 0;

	want_mrg = true;
	wr(VIRTIO_MMIO_STATUS, 0);
	driver_init();
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n); /* 58 bytes */
	post_rx_len(1, 24);
	ck_assert_uint_eq(vqb_used_idx(&qrx), 0); /* 24 of 58: waits */
	post_rx_len(1, 24);
	ck_assert_uint_eq(vqb_used_idx(&qrx), 0);
	post_rx_len(1, 24); /* the third completes it */
	ck_assert_uint_eq(vqb_used_idx(&qrx), 3);
	for (uint16_t i = 0; i < 3; i++) {
		e = vqb_used(&qrx, i);
		ck_assert_uint_eq(e.id, i);
		ck_assert_uint_eq(e.len, i < 2 ? 24 : 10);
		memcpy(whole + off, fake_ram_at(&ram, RX_BUFS + e.id * 0x1000ULL, e.len), e.len);
		off += e.len;
	}
	ck_assert_uint_eq(off, n);
	ck_assert_uint_eq(whole[10], 3); /* num_buffers */
	ck_assert_uint_eq(whole[11], 0);
	ck_assert(!memcmp(whole + NET_VNET_HDR_LEN, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN));
	rx_seen = 3;
	/* A frame that fits one buffer says 1; so does a device reply. */
	post_rx(2);
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	virtio_net_poll(dev);
	{
		uint32_t len;
		const uint8_t *r = next_rx(&len);

		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(len, n);
		ck_assert_uint_eq(r[10], 1);
		send_tx(f, arp_req(f, guest.gw));
		r = next_rx(&len);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r[10], 1);
		ck_assert_uint_eq(len, NET_VNET_HDR_LEN + NET_ETH_ZLEN);
	}
	stats(&c);
	ck_assert_uint_eq(c.rx_frames, 2);
	ck_assert_uint_eq(c.replies, 1);
	/* A buffer smaller than the header breaks the spec: NEEDS_RESET. */
	ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	post_rx_len(1, 8);
	ck_assert_uint_ne(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* The real event loop serves the backend (its fd polled through io_uring),
 * with no virtio_net_poll() calls: a frame from the backend reaches the
 * guest's rx buffer. */
START_TEST(test_served_by_event_loop)
{
	struct vmmio *t0 = t;
	struct virtio_dev *dev0 = dev;
	struct net_policy *p = calloc(1, sizeof(*p));
	struct evl *evl;
	pthread_t th;
	uint8_t f[NET_BUF_MAX];
	const uint8_t *r = NULL;
	char err[256];
	uint32_t len = 0;
	int sv[2];
	size_t n = udp(f, guest.ip, 7);

	ck_assert_ptr_nonnull(p);
	evl = evl_create(64, err, sizeof(err));
	ck_assert_msg(evl != NULL, "%s", err);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	dev = virtio_net_create(sv[0], &guest, p, evl, err, sizeof(err));
	free(p);
	ck_assert_msg(dev != NULL, "%s", err);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	driver_init();
	post_rx(2);
	ck_assert_int_eq(pthread_create(&th, NULL, evl_thread, evl), 0);
	ck_assert_int_eq(send(sv[1], f, n, 0), (ssize_t)n);
	for (int i = 0; i < 400 && !r; i++) {
		vmmio_read(t, VIRTIO_MMIO_STATUS, &(uint32_t){ 0 }, 4); /* takes the lock: a barrier */
		r = next_rx(&len);
		if (!r)
			usleep(5000);
	}
	ck_assert_msg(r != NULL, "the loop never delivered the frame");
	ck_assert_uint_eq(len, n);
	ck_assert(!memcmp(r + NET_VNET_HDR_LEN, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN));
	evl_stop(evl);
	pthread_join(th, NULL);
	vmmio_destroy(t);
	evl_destroy(evl);
	close(sv[1]);
	t = t0;
	dev = dev0;
}
END_TEST

START_TEST(test_create_errors)
{
	struct net_policy *p = calloc(1, sizeof(*p));
	struct net_guest g = guest;
	uint8_t mac[6];
	char err[256] = "";
	int sv[2];

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(virtio_net_create(-1, &g, p, NULL, err, sizeof(err)));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	g.mac[0] = 0x01; /* multicast */
	ck_assert_ptr_null(virtio_net_create(sv[0], &g, p, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "unicast MAC"), "%s", err);
	/* The fd was the device's: closed on failure, so the peer sees EOF. */
	ck_assert_int_eq(recv(sv[1], mac, 1, MSG_DONTWAIT), 0);
	close(sv[1]);
	free(p);

	ck_assert_int_eq(net_tap_open("minivm-no-such", mac, err, sizeof(err)), -ENODEV);
	ck_assert_msg(strstr(err, "ip tuntap add dev minivm-no-such mode tap"), "%s", err);
	ck_assert_int_eq(net_tap_open("a-name-far-too-long-for-linux", mac, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(net_tap_open("", mac, err, sizeof(err)), -EINVAL);
}
END_TEST

/* ---- a real TAP, in a network namespace of this test process's own ---- */

static void enter_netns(void)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];
	int fd;

	if (unshare(CLONE_NEWNET) == 0)
		return;
	/* Not privileged: a user namespace gives CAP_NET_ADMIN over a new
	 * network namespace. */
	ck_assert_msg(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0, "unshare: %s", strerror(errno));
	fd = open("/proc/self/setgroups", O_WRONLY);
	if (fd >= 0) {
		ck_assert_int_eq(write(fd, "deny", 4), 4);
		close(fd);
	}
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
	fd = open("/proc/self/uid_map", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, map, strlen(map)), (ssize_t)strlen(map));
	close(fd);
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
	fd = open("/proc/self/gid_map", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, map, strlen(map)), (ssize_t)strlen(map));
	close(fd);
}

/* Makes a persistent TAP `name` (as `ip tuntap add` would) and brings it up. */
static int make_tap(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), s, idx;

	ck_assert_msg(fd >= 0, "/dev/net/tun: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	ck_assert_msg(ioctl(fd, TUNSETIFF, &ifr) == 0, "TUNSETIFF: %s", strerror(errno));
	ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
	/* No IPv6 chatter from the host side. */
	{
		char path[128];

		snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			ck_assert_int_eq(write(fd, "1", 1), 1);
			close(fd);
		}
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	idx = (int)if_nametoindex(name);
	ck_assert_int_gt(idx, 0);
	return idx;
}

/* Waits up to ms for a frame on the packet socket equal to want[0..n)
 * (sent or received on the TAP); true if it came. */
static bool packet_seen(int ps, const uint8_t *want, size_t n, int ms)
{
	uint8_t buf[2048];

	for (int i = 0; i < ms / 10; i++) {
		struct pollfd pfd = { .fd = ps, .events = POLLIN };
		ssize_t got;

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		got = recv(ps, buf, sizeof(buf), MSG_DONTWAIT);
		if (got == (ssize_t)n && !memcmp(buf, want, n))
			return true;
	}
	return false;
}

START_TEST(test_real_tap)
{
	struct sockaddr_ll sll;
	uint8_t mac[6], f[NET_BUF_MAX];
	char err[256] = "";
	const uint8_t *r = NULL;
	uint32_t len = 0;
	size_t n;
	int idx, fd, ps;

	enter_netns();
	idx = make_tap("mvtest0");
	fd = net_tap_open("mvtest0", mac, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(mac[0] & 1, 0);
	/* One user at a time. */
	ck_assert_int_eq(net_tap_open("mvtest0", f, err, sizeof(err)), -EBUSY);
	ck_assert_msg(strstr(err, "another process"), "%s", err);

	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	ck_assert_int_ge(ps, 0);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = idx;
	ck_assert_int_eq(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	memcpy(guest.gw_mac, mac, 6);
	start(fd);
	post_rx(8);

	/* Allowed: the frame arrives on the host side, byte for byte. */
	n = syn(f, IP(1, 2, 3, 4), 443);
	send_tx(f, n);
	ck_assert(packet_seen(ps, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN, 1000));
	/* Denied: it does not (and the guest got its RST). */
	n = syn(f, IP(1, 2, 3, 5), 443);
	send_tx(f, n);
	ck_assert(!packet_seen(ps, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN, 300));
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r[NET_VNET_HDR_LEN + 14 + 20 + 13], NET_TCP_RST | NET_TCP_ACK);

	/* Host -> guest: a frame sent out of the TAP reaches the rx queue. */
	n = udp(f, guest.ip, 7);
	memcpy(f + NET_VNET_HDR_LEN, guest.mac, 6);
	memcpy(f + NET_VNET_HDR_LEN + 6, mac, 6);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = idx;
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, guest.mac, 6);
	ck_assert_int_eq(sendto(ps, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN, 0, (struct sockaddr *)&sll, sizeof(sll)),
			 (ssize_t)(n - NET_VNET_HDR_LEN));
	for (int i = 0; i < 100; i++) {
		struct pollfd pfd = { .fd = -1 };

		virtio_net_poll(dev);
		while ((r = next_rx(&len)) != NULL)
			if (len == n && !memcmp(r + NET_VNET_HDR_LEN, f + NET_VNET_HDR_LEN, n - NET_VNET_HDR_LEN))
				break;
		if (r)
			break;
		(void)poll(&pfd, 0, 10);
	}
	ck_assert_msg(r != NULL, "the host's frame never reached the guest");
	ck_assert_uint_eq(r[10], 1);
	close(ps);
	/* The namespace, and the TAP with it, go when this process ends. */
}
END_TEST

/* ---- rate limiting (virtio_net_set_rate_limit), on a real event loop ---- */

#define MS 1000000ULL

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A device whose loop runs on lim_thread, with these limits. */
static void start_limited(const struct rl_config *rx, const struct rl_config *tx)
{
	char err[256];
	struct evl *evl = evl_create(64, err, sizeof(err));
	int sv[2];

	ck_assert_msg(evl != NULL, "%s", err);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	peer = sv[1];
	want_mrg = false;
	start_on(sv[0], evl, rx, tx);
}

static struct rl_config ops_limit(uint64_t size, uint64_t burst, uint64_t refill_ns)
{
	struct rl_config c = { .ops = { .size = size, .burst = burst, .refill_ns = refill_ns } };

	return c;
}

/* Frame number k: UDP with a payload of plen bytes, k in its first byte and
 * a pattern after it; from the guest to dst:dport. */
static size_t udp_k(uint8_t *b, uint32_t dst, uint16_t dport, size_t plen, uint8_t k)
{
	uint8_t u[8 + 1400];

	ck_assert_uint_le(plen, 1400);
	ck_assert_uint_ge(plen, 1);
	memset(u, 0, 8);
	w16(u, 5353);
	w16(u + 2, dport);
	w16(u + 4, (uint16_t)(8 + plen));
	u[8] = k;
	for (size_t i = 1; i < plen; i++)
		u[8 + i] = (uint8_t)(k * 31 + i);
	return ipv4(b, NET_IPPROTO_UDP, guest.ip, dst, u, 8 + plen);
}

#define UDP_K_AT (NET_VNET_HDR_LEN + 14 + 20 + 8) /* where k sits in the frame */

/* Waits (at most ms) for the next message to the backend. */
static ssize_t peer_wait(uint8_t *buf, size_t cap, int ms)
{
	struct pollfd pfd = { .fd = peer, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return peer_recv(buf, cap);
}

/* The transport's lock, as a barrier with the loop thread's ring updates. */
static void sync_dev(void)
{
	(void)rd(VIRTIO_MMIO_STATUS);
}

/* Waits (at most ms) for the next frame on the rx queue. */
static const uint8_t *rx_wait(uint32_t *len, int ms)
{
	const uint8_t *r = NULL;

	for (int i = 0; i <= ms && !r; i++) {
		sync_dev();
		r = next_rx(len);
		if (!r)
			usleep(1000);
	}
	return r;
}

static uint16_t tx_used(void)
{
	sync_dev();
	return vqb_used_idx(&qtx);
}

static uint16_t rx_used(void)
{
	sync_dev();
	return vqb_used_idx(&qrx);
}

/* Polls the counters (at most ms) until the one at offset `off` reaches
 * want; returns them. */
static struct virtio_net_counters counters_when(size_t off, uint64_t want, int ms)
{
	struct virtio_net_counters c;
	uint64_t v;

	for (int i = 0; i < ms; i++) {
		virtio_net_get_stats(dev, NULL, &c);
		memcpy(&v, (const char *)&c + off, sizeof(v));
		if (v >= want)
			break;
		usleep(1000);
	}
	virtio_net_get_stats(dev, NULL, &c);
	return c;
}

START_TEST(test_limit_tx_delays_frames)
{
	/* One frame per 100 ms, a bucket of one: six frames queued at once
	 * reach the backend one by one, frame k not before k x 100 ms (the
	 * bucket starts full: frame 0 goes at once). The guest's ring is
	 * not drained ahead of the limit: the device takes a chain only when
	 * it may send it. */
	struct rl_config c = ops_limit(1, 0, 100 * MS);
	struct virtio_net_counters ctr;
	uint8_t f[6][NET_BUF_MAX], got[NET_BUF_MAX + 64];
	size_t n[6];
	uint64_t t0, at = 0;

	start_limited(NULL, &c);
	for (uint8_t k = 0; k < 6; k++)
		n[k] = udp_k(f[k], guest.dns, 53, 100, k);
	t0 = mono_ns();
	for (uint8_t k = 0; k < 6; k++)
		tx_publish(f[k], n[k]);
	for (unsigned int k = 0; k < 6; k++) {
		ssize_t m = peer_wait(got, sizeof(got), 5000);
		uint16_t used;
		uint64_t now;

		at = mono_ns();
		ck_assert_msg(m == (ssize_t)n[k], "frame %u: %zd bytes", k, m);
		ck_assert_msg(!memcmp(got, f[k], n[k]), "frame %u altered or out of order (k=%u)", k, got[UDP_K_AT]);
		ck_assert_msg(at - t0 >= k * 100 * MS, "frame %u after only %llu ms", k,
			      (unsigned long long)((at - t0) / MS));
		used = tx_used();
		now = mono_ns();
		ck_assert_msg(used <= 1 + (now - t0) / (100 * MS), "%u chains taken after %llu ms", used,
			      (unsigned long long)((now - t0) / MS));
	}
	ck_assert_msg(at - t0 < 5000 * MS, "6 frames took %llu ms", (unsigned long long)((at - t0) / MS));
	ck_assert_int_eq(peer_wait(got, sizeof(got), 0), -1);
	ck_assert_uint_eq(tx_used(), 6);
	for (uint16_t k = 0; k < 6; k++)
		ck_assert_uint_eq(vqb_used(&qtx, k).id, 2 * k);
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.tx_frames, 6);
	ck_assert_uint_ge(ctr.tx_throttled, 1);
	ck_assert_uint_le(ctr.tx_throttled, 5);
	{
		struct minivm_device_metrics m;

		virtio_stats_read(&dev->stats, &m);
		ck_assert_uint_eq(m.throttled, ctr.tx_throttled);
		ck_assert_uint_eq(m.writes, 6);
	}
	ck_assert_uint_eq(ctr.rx_throttled, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(test_limit_rx_delays_frames)
{
	/* 1000 bytes per 100 ms (10 kB/s), a bucket of 1000: six 500-byte
	 * frames (Ethernet length; the virtio-net header is not counted)
	 * from the backend: 0 and 1 at once, frame k >= 1 not before
	 * (k - 1) x 50 ms. They reach the guest whole and in order. */
	struct rl_config c = { .bytes = { .size = 1000, .refill_ns = 100 * MS } };
	struct virtio_net_counters ctr;
	uint8_t f[6][NET_BUF_MAX];
	size_t n[6];
	uint64_t t0, at = 0;

	start_limited(&c, NULL);
	post_rx(8);
	for (uint8_t k = 0; k < 6; k++) {
		n[k] = udp_k(f[k], guest.ip, 7, 458, k);
		ck_assert_uint_eq(n[k] - NET_VNET_HDR_LEN, 500);
	}
	t0 = mono_ns();
	for (unsigned int k = 0; k < 6; k++)
		ck_assert_int_eq(send(peer, f[k], n[k], 0), (ssize_t)n[k]);
	for (unsigned int k = 0; k < 6; k++) {
		uint32_t len = 0;
		const uint8_t *r = rx_wait(&len, 5000);
		uint16_t used;
		uint64_t now;

		at = mono_ns();
		ck_assert_msg(r != NULL, "frame %u never reached the guest", k);
		ck_assert_uint_eq(len, n[k]);
		ck_assert_uint_eq(r[10], 1);
		ck_assert_msg(!memcmp(r + NET_VNET_HDR_LEN, f[k] + NET_VNET_HDR_LEN, n[k] - NET_VNET_HDR_LEN),
			      "frame %u altered or out of order (k=%u)", k, r[UDP_K_AT]);
		if (k >= 1)
			ck_assert_msg(at - t0 >= (k - 1) * 50 * MS, "frame %u after only %llu ms", k,
				      (unsigned long long)((at - t0) / MS));
		used = rx_used();
		now = mono_ns();
		ck_assert_msg(used <= 2 + (now - t0) / (50 * MS), "%u frames delivered after %llu ms", used,
			      (unsigned long long)((now - t0) / MS));
	}
	ck_assert_msg(at - t0 < 5000 * MS, "6 frames took %llu ms", (unsigned long long)((at - t0) / MS));
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.rx_frames, 6);
	ck_assert_uint_eq(ctr.rx_dropped, 0);
	ck_assert_uint_ge(ctr.rx_throttled, 1);
	ck_assert_uint_eq(ctr.tx_throttled, 0);
}
END_TEST

START_TEST(test_limit_directions_independent)
{
	/* Both directions limited to one frame per 500 ms (rx with a burst
	 * of 2). An exhausted rx does not hold tx back, and a tx waiting for
	 * tokens does not hold rx back. */
	struct rl_config rc = ops_limit(1, 2, 500 * MS), tc = ops_limit(1, 0, 500 * MS);
	struct virtio_net_counters ctr;
	uint8_t f[NET_BUF_MAX], g[NET_BUF_MAX], got[NET_BUF_MAX + 64];
	const uint8_t *r;
	uint32_t len;
	size_t n;
	uint64_t t_rx, t_tx;

	start_limited(&rc, &tc);
	post_rx(8);
	/* rx: three frames use the burst and the bucket, the fourth waits. */
	t_rx = mono_ns();
	for (uint8_t k = 0; k < 4; k++) {
		n = udp_k(f, guest.ip, 7, 60, k);
		ck_assert_int_eq(send(peer, f, n, 0), (ssize_t)n);
	}
	for (uint8_t k = 0; k < 3; k++) {
		r = rx_wait(&len, 3000);
		ck_assert_msg(r != NULL, "rx frame %u never came", k);
		ck_assert_uint_eq(r[UDP_K_AT], k);
	}
	ctr = counters_when(offsetof(struct virtio_net_counters, rx_throttled), 1, 3000);
	ck_assert_uint_eq(ctr.rx_throttled, 1);
	/* tx goes at once (send_tx checks it was taken synchronously). */
	n = udp_k(g, guest.dns, 53, 60, 100);
	t_tx = mono_ns();
	send_tx(g, n);
	ck_assert_int_eq(peer_wait(got, sizeof(got), 0), (ssize_t)n);
	ck_assert(!memcmp(got, g, n));
	/* A second tx frame now waits for tx tokens... */
	n = udp_k(g, guest.dns, 53, 60, 101);
	tx_publish(g, n);
	ck_assert_uint_eq(tx_used(), 1);
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.tx_throttled, 1);
	/* ... and rx is served meanwhile: the fourth frame comes when rx
	 * tokens are back, 500 ms after the third was admitted. */
	r = rx_wait(&len, 5000);
	ck_assert_msg(r != NULL, "rx frame 3 never came");
	ck_assert_uint_eq(r[UDP_K_AT], 3);
	ck_assert_uint_ge(mono_ns() - t_rx, 500 * MS);
	/* The second tx frame, after its own wait. */
	ck_assert_int_eq(peer_wait(got, sizeof(got), 5000), (ssize_t)n);
	ck_assert_uint_ge(mono_ns() - t_tx, 500 * MS);
	ck_assert(!memcmp(got, g, n));
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.rx_frames, 4);
	ck_assert_uint_eq(ctr.tx_frames, 2);
	ck_assert_uint_eq(ctr.rx_throttled, 1);
	ck_assert_uint_eq(ctr.tx_throttled, 1);
}
END_TEST

START_TEST(test_limit_denied_frames_pay)
{
	/* One frame per 300 ms: a denied SYN is answered at once but takes
	 * the token, so an allowed frame right after it waits; an ARP
	 * request pays too. */
	struct rl_config c = ops_limit(1, 0, 300 * MS);
	struct virtio_net_counters ctr;
	uint8_t f[NET_BUF_MAX], got[NET_BUF_MAX + 64];
	struct net_frame rf;
	const uint8_t *r;
	uint32_t len;
	uint64_t t0;
	size_t n;

	start_limited(NULL, &c);
	post_rx(4);
	t0 = mono_ns();
	send_tx(f, syn(f, IP(1, 2, 3, 4), 80));
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert_uint_eq(rf.l4.tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	n = syn(f, IP(1, 2, 3, 4), 443);
	tx_publish(f, n);
	ck_assert_int_eq(peer_wait(got, sizeof(got), 5000), (ssize_t)n);
	ck_assert_uint_ge(mono_ns() - t0, 300 * MS);
	ck_assert(!memcmp(got, f, n));
	/* The ARP request waits for its token, then is answered. */
	tx_publish(f, arp_req(f, guest.gw));
	r = rx_wait(&len, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_ge(mono_ns() - t0, 600 * MS);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert(rf.is_arp);
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.tx_throttled, 2);
	ck_assert_uint_eq(ctr.tx_frames, 1);
	ck_assert_uint_eq(ctr.replies, 2);
}
END_TEST

START_TEST(test_limit_rx_parked_replies_and_reset)
{
	/* One backend frame per 300 ms. While the second waits for tokens,
	 * the device's own answers (ARP) still reach the guest, and the
	 * waiting frame is not spoiled by them; it survives a device reset
	 * and reaches the re-initialised driver, whole. */
	struct rl_config c = ops_limit(1, 0, 300 * MS);
	struct virtio_net_counters ctr;
	uint8_t f[2][NET_BUF_MAX], a[NET_BUF_MAX];
	struct net_frame rf;
	const uint8_t *r;
	uint32_t len;
	size_t n[2];

	start_limited(&c, NULL);
	post_rx(4);
	for (uint8_t k = 0; k < 2; k++) {
		n[k] = udp_k(f[k], guest.ip, 7, 300 + k, k);
		ck_assert_int_eq(send(peer, f[k], n[k], 0), (ssize_t)n[k]);
	}
	r = rx_wait(&len, 3000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(len, n[0]);
	ctr = counters_when(offsetof(struct virtio_net_counters, rx_throttled), 1, 3000);
	ck_assert_uint_eq(ctr.rx_throttled, 1);
	/* The ARP answer goes now, synchronously. */
	send_tx(a, arp_req(a, guest.gw));
	sync_dev();
	r = next_rx(&len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(net_pkt_parse(r, len, &rf), NET_PKT_OK);
	ck_assert(rf.is_arp);
	ck_assert(!memcmp(rf.arp.sha, guest.gw_mac, 6));
	/* Reset with frame 1 waiting, then the driver comes back. */
	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	driver_init();
	post_rx(2);
	r = rx_wait(&len, 5000);
	ck_assert_msg(r != NULL, "the waiting frame was lost in the reset");
	ck_assert_uint_eq(len, n[1]);
	ck_assert(!memcmp(r + NET_VNET_HDR_LEN, f[1] + NET_VNET_HDR_LEN, n[1] - NET_VNET_HDR_LEN));
	virtio_net_get_stats(dev, NULL, &ctr);
	ck_assert_uint_eq(ctr.rx_frames, 2);
	ck_assert_uint_eq(ctr.rx_dropped, 0);
	ck_assert_uint_eq(ctr.replies, 1);
}
END_TEST

START_TEST(test_limit_set_errors)
{
	struct rl_config c = ops_limit(1, 0, 100 * MS), none = ops_limit(0, 0, 0);
	struct rl_config huge = { .bytes = { .size = RL_MAX_TOKENS + 1, .refill_ns = 1000 * MS } };
	struct net_policy *p = calloc(1, sizeof(*p));
	struct virtio_dev *d;
	struct evl *evl;
	char err[256] = "";
	int sv[2];

	ck_assert_ptr_nonnull(p);
	/* Without an event loop: refused (nothing would resume it). */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	d = virtio_net_create(sv[0], &guest, p, NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(virtio_net_set_rate_limit(d, NULL, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "event loop") != NULL, "%s", err);
	ck_assert_int_eq(virtio_net_set_rate_limit(d, NULL, NULL, err, sizeof(err)), 0);
	d->ops->destroy(d);
	close(sv[1]);

	evl = evl_create(16, err, sizeof(err));
	ck_assert_ptr_nonnull(evl);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	d = virtio_net_create(sv[0], &guest, p, evl, err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	/* Out of bounds in tx after a good rx: nothing set, so it may be
	 * set again. */
	ck_assert_int_eq(virtio_net_set_rate_limit(d, &c, &huge, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "tx rate limit out of bounds") != NULL, "%s", err);
	/* A limit of nothing is no limit: it may be set again too. */
	ck_assert_int_eq(virtio_net_set_rate_limit(d, &none, &none, err, sizeof(err)), 0);
	ck_assert_int_eq(virtio_net_set_rate_limit(d, &c, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(virtio_net_set_rate_limit(d, NULL, &c, err, sizeof(err)), -EALREADY);
	d->ops->destroy(d);
	close(sv[1]);
	evl_destroy(evl);
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_dev");
	TCase *tc = tcase_create("socketpair");
	TCase *tap = tcase_create("tap");
	TCase *lim = tcase_create("rate limits");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config_and_features);
	tcase_add_test(tc, test_tx_allowed_reaches_backend);
	tcase_add_test(tc, test_tx_denied_answers);
	tcase_add_test(tc, test_counters_and_denial_events);
	tcase_add_test(tc, test_tx_spoofed_ipv6_malformed);
	tcase_add_test(tc, test_rx_from_backend);
	tcase_add_test(tc, test_reset_and_broken_ring);
	tcase_add_test(tc, test_served_by_event_loop);
	tcase_add_test(tc, test_rx_mergeable);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(lim, NULL, teardown);
	tcase_set_timeout(lim, 60);
	tcase_add_test(lim, test_limit_tx_delays_frames);
	tcase_add_test(lim, test_limit_rx_delays_frames);
	tcase_add_test(lim, test_limit_directions_independent);
	tcase_add_test(lim, test_limit_denied_frames_pay);
	tcase_add_test(lim, test_limit_rx_parked_replies_and_reset);
	tcase_add_test(lim, test_limit_set_errors);
	suite_add_tcase(s, lim);
	tcase_add_test(tap, test_create_errors);
	tcase_add_test(tap, test_real_tap);
	tcase_add_checked_fixture(tap, NULL, teardown);
	suite_add_tcase(s, tap);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
