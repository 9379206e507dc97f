/* Unit tests for the packet parser and reply builders (devices/net_pkt.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_pkt.h"

static const uint8_t GUEST_MAC[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x05 };
static const uint8_t GW_MAC[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
#define GUEST_IP 0x0a000205u /* 10.0.2.5 */
#define GW_IP 0x0a000201u    /* 10.0.2.1 */
#define PEER_IP 0xc0a80107u  /* 192.168.1.7 */

static void w16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void w32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t r16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t r32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* virtio-net header + Ethernet header; returns the offset after it. */
static size_t eth(uint8_t *b, uint16_t type)
{
	memset(b, 0, NET_VNET_HDR_LEN);
	memcpy(b + 12, GW_MAC, 6);
	memcpy(b + 18, GUEST_MAC, 6);
	w16(b + 24, type);
	return 26;
}

/* An IPv4 packet (20-byte header) carrying l4[0..l4len); returns the buffer length. */
static size_t ipv4(uint8_t *b, uint8_t proto, uint32_t dst, const uint8_t *l4, size_t l4len)
{
	size_t o = eth(b, NET_ETHERTYPE_IPV4);
	uint8_t *ip = b + o;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	w16(ip + 2, (uint16_t)(20 + l4len));
	w16(ip + 4, 0x1234);
	w16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	w32(ip + 12, GUEST_IP);
	w32(ip + 16, dst);
	w16(ip + 10, net_csum(ip, 20, 0));
	memcpy(ip + 20, l4, l4len);
	return o + 20 + l4len;
}

/* Recomputes the IP header checksum after a test changed a field. */
static void refix_ip(uint8_t *b)
{
	uint8_t *ip = b + 26;
	size_t hlen = (size_t)(ip[0] & 15) * 4;

	w16(ip + 10, 0);
	w16(ip + 10, net_csum(ip, hlen, 0));
}

static size_t tcp(uint8_t *b, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		  size_t payload)
{
	uint8_t t[20 + 64] = { 0 };

	w16(t, sport);
	w16(t + 2, dport);
	w32(t + 4, seq);
	w32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	w16(t + 14, 65535);
	return ipv4(b, NET_IPPROTO_TCP, PEER_IP, t, 20 + payload);
}

static size_t udp(uint8_t *b, uint16_t sport, uint16_t dport, size_t payload)
{
	uint8_t u[8 + 64];

	memset(u, 0x5a, sizeof(u));
	w16(u, sport);
	w16(u + 2, dport);
	w16(u + 4, (uint16_t)(8 + payload));
	w16(u + 6, 0);
	return ipv4(b, NET_IPPROTO_UDP, PEER_IP, u, 8 + payload);
}

static size_t arp(uint8_t *b, uint16_t op, uint32_t tpa)
{
	size_t o = eth(b, NET_ETHERTYPE_ARP);
	uint8_t *a = b + o;

	w16(a, 1);
	w16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	w16(a + 6, op);
	memcpy(a + 8, GUEST_MAC, 6);
	w32(a + 14, GUEST_IP);
	memset(a + 18, 0, 6);
	w32(a + 24, tpa);
	return o + 28;
}

START_TEST(test_csum)
{
	/* RFC 1071's example: the ones'-complement sum of these bytes is 0xddf2. */
	static const uint8_t v[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	static const uint8_t odd[3] = { 0x12, 0x34, 0x56 };
	char s[16];

	ck_assert_uint_eq(net_csum(v, 8, 0), (uint16_t)~0xddf2);
	/* An odd byte counts as the high byte of a final word. */
	ck_assert_uint_eq(net_csum(odd, 3, 0), (uint16_t)~(0x1234 + 0x5600));
	ck_assert_uint_eq(net_pseudo_sum(0x01020304, 0x05060708, 6, 20), 0x0102 + 0x0304 + 0x0506 + 0x0708 + 6 + 20);
	net_ip_str(0xc0a80107, s);
	ck_assert_str_eq(s, "192.168.1.7");
}
END_TEST

START_TEST(test_parse_tcp)
{
	uint8_t b[NET_BUF_MAX];
	struct net_frame f;
	size_t n = tcp(b, 40000, 443, 1000, 0, NET_TCP_SYN, 0);

	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.is_ipv4 && !f.is_arp && f.has_l4);
	ck_assert_uint_eq(f.ethertype, NET_ETHERTYPE_IPV4);
	ck_assert_uint_eq(f.len, n - NET_VNET_HDR_LEN);
	ck_assert(!memcmp(f.src_mac, GUEST_MAC, 6) && !memcmp(f.dst_mac, GW_MAC, 6));
	ck_assert_uint_eq(f.ip.src, GUEST_IP);
	ck_assert_uint_eq(f.ip.dst, PEER_IP);
	ck_assert_uint_eq(f.ip.proto, NET_IPPROTO_TCP);
	ck_assert_uint_eq(f.ip.ihl, 5);
	ck_assert_uint_eq(f.ip.total_len, 40);
	ck_assert_uint_eq(f.ip.id, 0x1234);
	ck_assert(f.ip.df && !f.ip.mf);
	ck_assert_uint_eq(f.ip.frag_off, 0);
	ck_assert_uint_eq(f.ip.ttl, 64);
	ck_assert_uint_eq(f.ip_off, 26);
	ck_assert_uint_eq(f.l4_off, 46);
	ck_assert_uint_eq(f.l4.sport, 40000);
	ck_assert_uint_eq(f.l4.dport, 443);
	ck_assert_uint_eq(f.l4.seq, 1000);
	ck_assert_uint_eq(f.l4.tcp_flags, NET_TCP_SYN);
	ck_assert_uint_eq(f.l4.tcp_doff, 5);
	ck_assert_uint_eq(f.l4.payload_len, 0);

	/* With 7 bytes of data and Ethernet padding after the datagram: the
	 * payload is what the IP total length says. */
	n = tcp(b, 1, 2, 0, 0, NET_TCP_ACK | NET_TCP_PSH, 7);
	memset(b + n, 0xee, 10);
	ck_assert_int_eq(net_pkt_parse(b, n + 10, &f), NET_PKT_OK);
	ck_assert_uint_eq(f.l4.payload_len, 7);
	ck_assert_uint_eq(f.len, n + 10 - NET_VNET_HDR_LEN);
}
END_TEST

START_TEST(test_parse_udp_icmp_options)
{
	uint8_t b[NET_BUF_MAX], icmp[12] = { 8, 0 };
	struct net_frame f;
	size_t n = udp(b, 5353, 53, 30);

	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.has_l4);
	ck_assert_uint_eq(f.l4.sport, 5353);
	ck_assert_uint_eq(f.l4.dport, 53);
	ck_assert_uint_eq(f.l4.udp_len, 38);
	ck_assert_uint_eq(f.l4.payload_len, 30);

	n = ipv4(b, NET_IPPROTO_ICMP, PEER_IP, icmp, sizeof(icmp));
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.has_l4);
	ck_assert_uint_eq(f.l4.icmp_type, 8);
	ck_assert_uint_eq(f.l4.payload_len, 4);

	/* Another protocol: IP fields only. */
	n = ipv4(b, 47, PEER_IP, icmp, sizeof(icmp));
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.is_ipv4 && !f.has_l4);
	ck_assert_uint_eq(f.ip.proto, 47);

	/* A header with 4 bytes of options (IHL 6): L4 starts after them. */
	{
		uint8_t u[8] = { 0, 1, 0, 2, 0, 8, 0, 0 };
		uint8_t *ip = b + 26;

		n = ipv4(b, NET_IPPROTO_UDP, PEER_IP, u, 8);
		memmove(ip + 24, ip + 20, 8);
		memset(ip + 20, 1, 4); /* NOPs */
		ip[0] = 0x46;
		w16(ip + 2, 32);
		refix_ip(b);
		ck_assert_int_eq(net_pkt_parse(b, n + 4, &f), NET_PKT_OK);
		ck_assert_uint_eq(f.ip.ihl, 6);
		ck_assert_uint_eq(f.l4_off, 26 + 24);
		ck_assert_uint_eq(f.l4.dport, 2);
	}
}
END_TEST

START_TEST(test_parse_arp_other)
{
	uint8_t b[NET_BUF_MAX];
	struct net_frame f;
	size_t n = arp(b, NET_ARP_REQUEST, GW_IP);

	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.is_arp && !f.is_ipv4);
	ck_assert_uint_eq(f.arp.op, NET_ARP_REQUEST);
	ck_assert(!memcmp(f.arp.sha, GUEST_MAC, 6));
	ck_assert_uint_eq(f.arp.spa, GUEST_IP);
	ck_assert_uint_eq(f.arp.tpa, GW_IP);

	/* IPv6 and unknown ethertypes: Ethernet only, and exactly the minimum
	 * length is enough for that. */
	n = eth(b, NET_ETHERTYPE_IPV6);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert_uint_eq(f.ethertype, NET_ETHERTYPE_IPV6);
	ck_assert(!f.is_ipv4 && !f.is_arp && !f.has_l4);
	n = eth(b, 0x8100);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert_uint_eq(f.ethertype, 0x8100);
}
END_TEST

START_TEST(test_parse_rejects)
{
	uint8_t b[NET_BUF_MAX + 16];
	struct net_frame f;
	size_t n;

	/* Runts: one byte short of virtio-net header + Ethernet header. */
	n = eth(b, NET_ETHERTYPE_IPV6);
	ck_assert_int_eq(net_pkt_parse(b, n - 1, &f), NET_PKT_RUNT);
	ck_assert_int_eq(net_pkt_parse(b, 0, &f), NET_PKT_RUNT);
	/* Size: exactly the largest frame passes, one more byte does not. */
	memset(b, 0, sizeof(b));
	eth(b, 0x88b5);
	ck_assert_int_eq(net_pkt_parse(b, NET_BUF_MAX, &f), NET_PKT_OK);
	ck_assert_int_eq(net_pkt_parse(b, NET_BUF_MAX + 1, &f), NET_PKT_OVERSIZE);
	/* Offload requests nobody negotiated. */
	n = udp(b, 1, 2, 0);
	b[0] = NET_VNET_F_NEEDS_CSUM;
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_VNET_HDR);
	b[0] = 0;
	b[1] = 1; /* GSO TCPv4 */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_VNET_HDR);

	/* ARP */
	n = arp(b, NET_ARP_REQUEST, GW_IP);
	ck_assert_int_eq(net_pkt_parse(b, n - 1, &f), NET_PKT_ARP_TRUNC);
	b[26 + 1] = 6; /* htype 6 */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_ARP_FORMAT);
	n = arp(b, 3, GW_IP); /* RARP op */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_ARP_FORMAT);
	n = arp(b, 1, GW_IP);
	b[26 + 5] = 16; /* plen */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_ARP_FORMAT);

	/* IPv4 header */
	n = udp(b, 1, 2, 4);
	ck_assert_int_eq(net_pkt_parse(b, 26 + 19, &f), NET_PKT_IP_TRUNC);
	b[26] = 0x65;
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_VERSION);
	b[26] = 0x44;
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_IHL);
	b[26] = 0x4f; /* 60 bytes of header in a 32-byte datagram */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_IHL);
	n = udp(b, 1, 2, 4);
	w16(b + 26 + 2, 19);
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_LEN);
	w16(b + 26 + 2, (uint16_t)(n - 26 + 1));
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_LEN);
	n = udp(b, 1, 2, 4);
	b[26 + 8] ^= 1; /* TTL changed, checksum not */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_IP_CSUM);

	/* L4 headers */
	n = tcp(b, 1, 2, 0, 0, NET_TCP_SYN, 0);
	w16(b + 26 + 2, 39);
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	n = tcp(b, 1, 2, 0, 0, NET_TCP_SYN, 0);
	b[46 + 12] = 4 << 4;
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	b[46 + 12] = 6 << 4; /* 24 bytes of header in 20 */
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	n = udp(b, 1, 2, 4);
	w16(b + 46 + 4, 7);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	w16(b + 46 + 4, 13);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	w16(b + 46 + 4, 12);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	{
		uint8_t icmp[7] = { 8 };

		n = ipv4(b, NET_IPPROTO_ICMP, PEER_IP, icmp, 7);
		ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	}

	ck_assert_str_eq(net_pkt_err_name(NET_PKT_IP_IHL), "ip-ihl");
	ck_assert_str_eq(net_pkt_err_name(NET_PKT_ERR_COUNT), "invalid");
	for (int e = 0; e < NET_PKT_ERR_COUNT; e++)
		ck_assert_str_ne(net_pkt_err_name((enum net_pkt_err)e), "invalid");
}
END_TEST

START_TEST(test_parse_fragments)
{
	uint8_t b[NET_BUF_MAX];
	struct net_frame f;
	size_t n = udp(b, 1, 2, 16);

	/* First fragment (MF, offset 0): the UDP header is there, but its
	 * length covers the whole datagram, more than this fragment holds. */
	w16(b + 26 + 6, 0x2000);
	w16(b + 46 + 4, 200);
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_L4_TRUNC);
	w16(b + 46 + 4, 24);
	ck_assert_int_eq(net_pkt_parse(b, n, &f), NET_PKT_OK);
	ck_assert(f.ip.mf && f.has_l4);
	/* A later fragment: no L4 header is read, whatever the bytes are. */
	w16(b + 26 + 6, 0x0003);
	w16(b + 26 + 2, 21);
	refix_ip(b);
	ck_assert_int_eq(net_pkt_parse(b, 26 + 21, &f), NET_PKT_OK);
	ck_assert(f.is_ipv4 && !f.has_l4 && !f.ip.mf);
	ck_assert_uint_eq(f.ip.frag_off, 3);
}
END_TEST

START_TEST(test_build_arp_reply)
{
	uint8_t b[NET_BUF_MAX], out[NET_BUF_MAX];
	struct net_frame req, rep;
	size_t n = arp(b, NET_ARP_REQUEST, GW_IP), m;

	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_arp_reply(out, NET_VNET_HDR_LEN + NET_ETH_ZLEN - 1, &req, GW_MAC, GW_IP), 0);
	m = net_build_arp_reply(out, sizeof(out), &req, GW_MAC, GW_IP);
	ck_assert_uint_eq(m, NET_VNET_HDR_LEN + NET_ETH_ZLEN);
	for (int i = 0; i < 12; i++)
		ck_assert_uint_eq(out[i], 0);
	ck_assert_int_eq(net_pkt_parse(out, m, &rep), NET_PKT_OK);
	ck_assert(rep.is_arp);
	ck_assert_uint_eq(rep.arp.op, NET_ARP_REPLY);
	ck_assert(!memcmp(rep.dst_mac, GUEST_MAC, 6) && !memcmp(rep.src_mac, GW_MAC, 6));
	ck_assert(!memcmp(rep.arp.sha, GW_MAC, 6) && !memcmp(rep.arp.tha, GUEST_MAC, 6));
	ck_assert_uint_eq(rep.arp.spa, GW_IP);
	ck_assert_uint_eq(rep.arp.tpa, GUEST_IP);
	/* Only requests are answered. */
	n = arp(b, NET_ARP_REPLY, GW_IP);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_arp_reply(out, sizeof(out), &req, GW_MAC, GW_IP), 0);
}
END_TEST

/* The TCP checksum of a parsed segment verifies (sums to 0 with the pseudo-header). */
static void assert_tcp_csum(const uint8_t *b, const struct net_frame *f)
{
	uint16_t l4len = (uint16_t)(f->ip.total_len - f->ip.ihl * 4);

	ck_assert_uint_eq(net_csum(b + f->l4_off, l4len, net_pseudo_sum(f->ip.src, f->ip.dst, f->ip.proto, l4len)), 0);
}

START_TEST(test_build_tcp_rst)
{
	uint8_t b[NET_BUF_MAX], out[NET_BUF_MAX];
	struct net_frame req, rst;
	size_t n, m;

	/* A SYN: RST|ACK, seq 0, ack = ISN + 1. */
	n = tcp(b, 40000, 443, 0xfffffffeu, 0, NET_TCP_SYN, 0);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	m = net_build_tcp_rst(out, sizeof(out), b, &req);
	ck_assert_uint_eq(m, NET_VNET_HDR_LEN + NET_ETH_ZLEN);
	ck_assert_int_eq(net_pkt_parse(out, m, &rst), NET_PKT_OK); /* IP checksum checked there */
	ck_assert(rst.has_l4);
	ck_assert(!memcmp(rst.dst_mac, GUEST_MAC, 6) && !memcmp(rst.src_mac, GW_MAC, 6));
	ck_assert_uint_eq(rst.ip.src, PEER_IP);
	ck_assert_uint_eq(rst.ip.dst, GUEST_IP);
	ck_assert_uint_eq(rst.ip.total_len, 40);
	ck_assert_uint_eq(rst.l4.sport, 443);
	ck_assert_uint_eq(rst.l4.dport, 40000);
	ck_assert_uint_eq(rst.l4.tcp_flags, NET_TCP_RST | NET_TCP_ACK);
	ck_assert_uint_eq(rst.l4.seq, 0);
	ck_assert_uint_eq(rst.l4.ack, 0xffffffffu);
	assert_tcp_csum(out, &rst);

	/* SYN|FIN with 5 bytes of data and the ISN at the top: ack wraps. */
	n = tcp(b, 1, 2, 0xfffffffeu, 0, NET_TCP_SYN | NET_TCP_FIN, 5);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	m = net_build_tcp_rst(out, sizeof(out), b, &req);
	ck_assert_int_eq(net_pkt_parse(out, m, &rst), NET_PKT_OK);
	ck_assert_uint_eq(rst.l4.ack, 5);

	/* A segment with ACK: RST alone, seq = its ack. */
	n = tcp(b, 40000, 80, 77, 0x12345678u, NET_TCP_ACK | NET_TCP_PSH, 10);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	m = net_build_tcp_rst(out, sizeof(out), b, &req);
	ck_assert_int_eq(net_pkt_parse(out, m, &rst), NET_PKT_OK);
	ck_assert_uint_eq(rst.l4.tcp_flags, NET_TCP_RST);
	ck_assert_uint_eq(rst.l4.seq, 0x12345678u);
	ck_assert_uint_eq(rst.l4.ack, 0);
	assert_tcp_csum(out, &rst);

	/* Never an RST to an RST, nor to UDP; nothing past cap. */
	n = tcp(b, 1, 2, 0, 0, NET_TCP_RST, 0);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_tcp_rst(out, sizeof(out), b, &req), 0);
	n = udp(b, 1, 2, 0);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_tcp_rst(out, sizeof(out), b, &req), 0);
	n = tcp(b, 1, 2, 0, 0, NET_TCP_SYN, 0);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_tcp_rst(out, NET_VNET_HDR_LEN + NET_ETH_ZLEN - 1, b, &req), 0);
}
END_TEST

START_TEST(test_build_icmp)
{
	uint8_t b[NET_BUF_MAX], out[NET_BUF_MAX];
	struct net_frame req, rep;
	size_t n, m;

	n = udp(b, 5000, 9999, 40);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_icmp_port_unreach(out, 12 + 14 + 20 + 8 + 20 + 8 - 1, b, &req), 0);
	m = net_build_icmp_port_unreach(out, sizeof(out), b, &req);
	ck_assert_uint_eq(m, 12 + 14 + 20 + 8 + 20 + 8);
	ck_assert_int_eq(net_pkt_parse(out, m, &rep), NET_PKT_OK);
	ck_assert(rep.has_l4);
	ck_assert_uint_eq(rep.ip.proto, NET_IPPROTO_ICMP);
	ck_assert_uint_eq(rep.ip.src, PEER_IP);
	ck_assert_uint_eq(rep.ip.dst, GUEST_IP);
	ck_assert(!memcmp(rep.dst_mac, GUEST_MAC, 6));
	ck_assert_uint_eq(rep.l4.icmp_type, 3);
	ck_assert_uint_eq(rep.l4.icmp_code, 3);
	ck_assert_uint_eq(net_csum(out + rep.l4_off, 8 + 28, 0), 0);
	/* The quote: the original IP header and the UDP header. */
	ck_assert(!memcmp(out + rep.l4_off + 8, b + 26, 28));
	ck_assert_uint_eq(r16(out + rep.l4_off + 8 + 20 + 2), 9999);
	ck_assert_uint_eq(r32(out + rep.l4_off + 8 + 12), GUEST_IP);

	/* A UDP datagram with no payload quotes 8 bytes; the reply is padded
	 * only when short. ICMP is never answered with ICMP. */
	n = udp(b, 5000, 9999, 0);
	ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
	ck_assert_uint_eq(net_build_icmp_port_unreach(out, sizeof(out), b, &req), 12 + 70);
	{
		uint8_t icmp[8] = { 8 };

		n = ipv4(b, NET_IPPROTO_ICMP, PEER_IP, icmp, 8);
		ck_assert_int_eq(net_pkt_parse(b, n, &req), NET_PKT_OK);
		ck_assert_uint_eq(net_build_icmp_port_unreach(out, sizeof(out), b, &req), 0);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_pkt");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_csum);
	tcase_add_test(tc, test_parse_tcp);
	tcase_add_test(tc, test_parse_udp_icmp_options);
	tcase_add_test(tc, test_parse_arp_other);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_fragments);
	tcase_add_test(tc, test_build_arp_reply);
	tcase_add_test(tc, test_build_tcp_rst);
	tcase_add_test(tc, test_build_icmp);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
