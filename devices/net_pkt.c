/* Ethernet/ARP/IPv4/TCP/UDP parsing and the policy's reply builders: pure, bounds-checked, fuzzed (tests/fuzz/fuzz_net_pkt.c). */
#include "devices/net_pkt.h"

#include <stdio.h>
#include <string.h>

/* Big-endian (network order) and little-endian loads/stores on byte arrays. */
static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static enum net_pkt_err parse_arp(const uint8_t *p, size_t n, struct net_frame *f)
{
	if (n < 28)
		return NET_PKT_ARP_TRUNC;
	/* htype Ethernet, ptype IPv4, hlen 6, plen 4: anything else is not
	 * an ARP the gateway takes part in. */
	if (be16(p) != 1 || be16(p + 2) != NET_ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4)
		return NET_PKT_ARP_FORMAT;
	f->arp.op = be16(p + 6);
	if (f->arp.op != NET_ARP_REQUEST && f->arp.op != NET_ARP_REPLY)
		return NET_PKT_ARP_FORMAT;
	memcpy(f->arp.sha, p + 8, NET_ETH_ALEN);
	f->arp.spa = be32(p + 14);
	memcpy(f->arp.tha, p + 18, NET_ETH_ALEN);
	f->arp.tpa = be32(p + 24);
	f->is_arp = true;
	return NET_PKT_OK;
}

/* p/n: the IP payload (n already bounded by the total length). */
static enum net_pkt_err parse_l4(const uint8_t *p, size_t n, struct net_frame *f)
{
	struct net_l4 *l = &f->l4;

	switch (f->ip.proto) {
	case NET_IPPROTO_TCP:
		if (n < 20)
			return NET_PKT_L4_TRUNC;
		l->sport = be16(p);
		l->dport = be16(p + 2);
		l->seq = be32(p + 4);
		l->ack = be32(p + 8);
		l->tcp_doff = p[12] >> 4;
		l->tcp_flags = p[13];
		if (l->tcp_doff < 5 || (size_t)l->tcp_doff * 4 > n)
			return NET_PKT_L4_TRUNC;
		l->payload_len = (uint16_t)(n - (size_t)l->tcp_doff * 4);
		break;
	case NET_IPPROTO_UDP:
		if (n < 8)
			return NET_PKT_L4_TRUNC;
		l->sport = be16(p);
		l->dport = be16(p + 2);
		l->udp_len = be16(p + 4);
		/* The UDP length covers its header and may not claim more than
		 * the IP datagram holds. */
		if (l->udp_len < 8 || l->udp_len > n)
			return NET_PKT_L4_TRUNC;
		l->payload_len = (uint16_t)(l->udp_len - 8);
		break;
	case NET_IPPROTO_ICMP:
		if (n < 8)
			return NET_PKT_L4_TRUNC;
		l->icmp_type = p[0];
		l->icmp_code = p[1];
		l->payload_len = (uint16_t)(n - 8);
		break;
	default:
		return NET_PKT_OK;
	}
	f->has_l4 = true;
	return NET_PKT_OK;
}

static enum net_pkt_err parse_ipv4(const uint8_t *p, size_t n, struct net_frame *f)
{
	struct net_ipv4 *ip = &f->ip;
	uint16_t frag;
	size_t hlen;

	if (n < 20)
		return NET_PKT_IP_TRUNC;
	if (p[0] >> 4 != 4)
		return NET_PKT_IP_VERSION;
	ip->ihl = p[0] & 0x0f;
	hlen = (size_t)ip->ihl * 4;
	if (ip->ihl < 5 || hlen > n)
		return NET_PKT_IP_IHL;
	ip->tos = p[1];
	ip->total_len = be16(p + 2);
	ip->id = be16(p + 4);
	frag = be16(p + 6);
	ip->df = frag & 0x4000;
	ip->mf = frag & 0x2000;
	ip->frag_off = frag & 0x1fff;
	ip->ttl = p[8];
	ip->proto = p[9];
	ip->src = be32(p + 12);
	ip->dst = be32(p + 16);
	if (ip->total_len < hlen || ip->total_len > n)
		return NET_PKT_IP_LEN;
	/* A header whose checksum verifies sums to 0xffff, i.e. folds to 0. */
	if (net_csum(p, hlen, 0) != 0)
		return NET_PKT_IP_CSUM;
	f->is_ipv4 = true;
	/* Only the first fragment carries the L4 header. */
	if (ip->frag_off != 0)
		return NET_PKT_OK;
	f->l4_off = (uint16_t)(f->ip_off + hlen);
	return parse_l4(p + hlen, ip->total_len - hlen, f);
}

enum net_pkt_err net_pkt_parse(const uint8_t *buf, size_t len, struct net_frame *f)
{
	const uint8_t *eth;
	size_t n;

	memset(f, 0, sizeof(*f));
	if (len < NET_VNET_HDR_LEN + NET_ETH_HLEN)
		return NET_PKT_RUNT;
	if (len - NET_VNET_HDR_LEN > NET_FRAME_MAX)
		return NET_PKT_OVERSIZE;
	f->vnet_flags = buf[0];
	f->vnet_gso_type = buf[1];
	/* The remaining header fields only matter with offloads. */
	if (f->vnet_flags & NET_VNET_F_NEEDS_CSUM || f->vnet_gso_type != NET_VNET_GSO_NONE)
		return NET_PKT_VNET_HDR;
	eth = buf + NET_VNET_HDR_LEN;
	n = len - NET_VNET_HDR_LEN;
	f->len = (uint16_t)n;
	memcpy(f->dst_mac, eth, NET_ETH_ALEN);
	memcpy(f->src_mac, eth + 6, NET_ETH_ALEN);
	f->ethertype = be16(eth + 12);
	f->ip_off = NET_VNET_HDR_LEN + NET_ETH_HLEN;
	switch (f->ethertype) {
	case NET_ETHERTYPE_ARP:
		return parse_arp(eth + NET_ETH_HLEN, n - NET_ETH_HLEN, f);
	case NET_ETHERTYPE_IPV4:
		return parse_ipv4(eth + NET_ETH_HLEN, n - NET_ETH_HLEN, f);
	default:
		return NET_PKT_OK;
	}
}

const char *net_pkt_err_name(enum net_pkt_err e)
{
	static const char *const names[NET_PKT_ERR_COUNT] = {
		[NET_PKT_OK] = "ok",
		[NET_PKT_RUNT] = "runt",
		[NET_PKT_OVERSIZE] = "oversize",
		[NET_PKT_VNET_HDR] = "vnet-hdr",
		[NET_PKT_ARP_TRUNC] = "arp-trunc",
		[NET_PKT_ARP_FORMAT] = "arp-format",
		[NET_PKT_IP_TRUNC] = "ip-trunc",
		[NET_PKT_IP_VERSION] = "ip-version",
		[NET_PKT_IP_IHL] = "ip-ihl",
		[NET_PKT_IP_LEN] = "ip-len",
		[NET_PKT_IP_CSUM] = "ip-csum",
		[NET_PKT_L4_TRUNC] = "l4-trunc",
	};

	if ((unsigned int)e >= NET_PKT_ERR_COUNT)
		return "invalid";
	return names[e];
}

uint16_t net_csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t s = sum;

	for (; len >= 2; p += 2, len -= 2)
		s += be16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + l4_len;
}

void net_ip_str(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

/* Zeroed virtio-net header and the Ethernet header; returns the offset of
 * the payload. */
static size_t put_eth(uint8_t *out, const uint8_t dst[NET_ETH_ALEN], const uint8_t src[NET_ETH_ALEN],
		      uint16_t type)
{
	memset(out, 0, NET_VNET_HDR_LEN);
	memcpy(out + NET_VNET_HDR_LEN, dst, NET_ETH_ALEN);
	memcpy(out + NET_VNET_HDR_LEN + 6, src, NET_ETH_ALEN);
	put16(out + NET_VNET_HDR_LEN + 12, type);
	return NET_VNET_HDR_LEN + NET_ETH_HLEN;
}

/* Pads the frame ending at `end` to the Ethernet minimum; returns the new end. */
static size_t pad(uint8_t *out, size_t end)
{
	if (end < NET_VNET_HDR_LEN + NET_ETH_ZLEN) {
		memset(out + end, 0, NET_VNET_HDR_LEN + NET_ETH_ZLEN - end);
		end = NET_VNET_HDR_LEN + NET_ETH_ZLEN;
	}
	return end;
}

/* A 20-byte IPv4 header without options, checksummed. */
static void put_ipv4(uint8_t *p, uint8_t proto, uint32_t src, uint32_t dst, uint16_t total_len)
{
	p[0] = 0x45;
	p[1] = 0;
	put16(p + 2, total_len);
	put16(p + 4, 0);
	put16(p + 6, 0x4000); /* DF */
	p[8] = 64;
	p[9] = proto;
	put16(p + 10, 0);
	put32(p + 12, src);
	put32(p + 16, dst);
	put16(p + 10, net_csum(p, 20, 0));
}

size_t net_build_arp_reply(uint8_t *out, size_t cap, const struct net_frame *req, const uint8_t gw_mac[NET_ETH_ALEN],
			   uint32_t gw_ip)
{
	uint8_t *a;
	size_t off;

	if (cap < NET_VNET_HDR_LEN + NET_ETH_ZLEN || !req->is_arp || req->arp.op != NET_ARP_REQUEST)
		return 0;
	off = put_eth(out, req->arp.sha, gw_mac, NET_ETHERTYPE_ARP);
	a = out + off;
	put16(a, 1);
	put16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, NET_ARP_REPLY);
	memcpy(a + 8, gw_mac, NET_ETH_ALEN);
	put32(a + 14, gw_ip);
	memcpy(a + 18, req->arp.sha, NET_ETH_ALEN);
	put32(a + 24, req->arp.spa);
	return pad(out, off + 28);
}

size_t net_build_tcp_rst(uint8_t *out, size_t cap, const uint8_t *buf, const struct net_frame *req)
{
	const struct net_l4 *l = &req->l4;
	uint8_t *ip, *t;
	uint32_t seq, ack = 0;
	uint8_t flags;
	size_t off;

	if (cap < NET_VNET_HDR_LEN + NET_ETH_ZLEN || !req->is_ipv4 || !req->has_l4 ||
	    req->ip.proto != NET_IPPROTO_TCP || (l->tcp_flags & NET_TCP_RST))
		return 0;
	if (l->tcp_flags & NET_TCP_ACK) {
		seq = l->ack;
		flags = NET_TCP_RST;
	} else {
		seq = 0;
		/* What the segment occupies in sequence space: its data, plus
		 * one each for SYN and FIN (unsigned wrap is the TCP rule). */
		ack = l->seq + l->payload_len + !!(l->tcp_flags & NET_TCP_SYN) + !!(l->tcp_flags & NET_TCP_FIN);
		flags = NET_TCP_RST | NET_TCP_ACK;
	}
	off = put_eth(out, req->src_mac, req->dst_mac, NET_ETHERTYPE_IPV4);
	ip = out + off;
	t = ip + 20;
	put_ipv4(ip, NET_IPPROTO_TCP, req->ip.dst, req->ip.src, 40);
	put16(t, l->dport);
	put16(t + 2, l->sport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 0); /* window */
	put16(t + 16, 0); /* checksum, below */
	put16(t + 18, 0); /* urgent */
	put16(t + 16, net_csum(t, 20, net_pseudo_sum(req->ip.dst, req->ip.src, NET_IPPROTO_TCP, 20)));
	return pad(out, off + 40);
}

size_t net_build_icmp_port_unreach(uint8_t *out, size_t cap, const uint8_t *buf, const struct net_frame *req)
{
	size_t hlen = (size_t)req->ip.ihl * 4, quote, icmp_len, off;
	uint8_t *ip, *c;

	if (!req->is_ipv4 || !req->has_l4 || req->ip.proto == NET_IPPROTO_ICMP)
		return 0;
	/* The original header and up to 8 bytes of what followed it. */
	quote = req->ip.total_len - hlen;
	if (quote > 8)
		quote = 8;
	quote += hlen;
	icmp_len = 8 + quote;
	if (cap < NET_VNET_HDR_LEN + NET_ETH_HLEN + 20 + icmp_len || cap < NET_VNET_HDR_LEN + NET_ETH_ZLEN)
		return 0;
	off = put_eth(out, req->src_mac, req->dst_mac, NET_ETHERTYPE_IPV4);
	ip = out + off;
	c = ip + 20;
	put_ipv4(ip, NET_IPPROTO_ICMP, req->ip.dst, req->ip.src, (uint16_t)(20 + icmp_len));
	c[0] = 3; /* destination unreachable */
	c[1] = 3; /* port unreachable */
	put16(c + 2, 0);
	put32(c + 4, 0);
	memcpy(c + 8, buf + req->ip_off, quote);
	put16(c + 2, net_csum(c, icmp_len, 0));
	return pad(out, off + 20 + icmp_len);
}
