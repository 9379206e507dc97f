/* libFuzzer target: the guest frame parser, the policy's decision on what it parsed, and the reply builders (each reply parses back and its checksums verify). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_policy policy;
static struct net_stats stats;
static bool ready;

static void setup(void)
{
	static const char *const rules[] = { "10.0.0.0/8", "1.2.3.4:443/tcp", "0.0.0.0/0:53/udp", "192.168.1.7:80" };
	char err[128];

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (net_policy_add(&policy, rules[i], err, sizeof(err)))
			abort();
	policy.allow_dns = true;
	ready = true;
}

/* A reply the device would send the guest: it parses, and what it says
 * is consistent with the request. */
static void check_reply(const uint8_t *out, size_t n, const struct net_frame *req, uint8_t proto)
{
	struct net_frame r;
	uint16_t l4len;

	if (n < NET_VNET_HDR_LEN + NET_ETH_ZLEN || n > NET_BUF_MAX)
		abort();
	if (net_pkt_parse(out, n, &r) != NET_PKT_OK || !r.is_ipv4 || !r.has_l4 || r.ip.proto != proto)
		abort();
	if (r.ip.src != req->ip.dst || r.ip.dst != req->ip.src || memcmp(r.dst_mac, req->src_mac, NET_ETH_ALEN))
		abort();
	l4len = (uint16_t)(r.ip.total_len - r.ip.ihl * 4u);
	if (proto == NET_IPPROTO_TCP) {
		if (!(r.l4.tcp_flags & NET_TCP_RST) || r.l4.sport != req->l4.dport || r.l4.dport != req->l4.sport)
			abort();
		if (net_csum(out + r.l4_off, l4len, net_pseudo_sum(r.ip.src, r.ip.dst, proto, l4len)))
			abort();
	} else {
		if (r.l4.icmp_type != 3 || r.l4.icmp_code != 3 || net_csum(out + r.l4_off, l4len, 0))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf, out[NET_BUF_MAX];
	struct net_frame f;
	struct net_guest g = { .ip = 0x0a000205, .prefix = 24, .gw = 0x0a000201, .dns = 0x0a000203 };
	struct net_decision d;
	enum net_pkt_err e;
	char msg[256];
	size_t n;

	if (!ready)
		setup();
	/* An exact-size copy, so ASan sees any read past the end. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	e = net_pkt_parse(buf, size, &f);
	if ((unsigned int)e >= NET_PKT_ERR_COUNT)
		abort();
	if (e == NET_PKT_OK) {
		if (size > NET_BUF_MAX || f.len != size - NET_VNET_HDR_LEN)
			abort();
		if (f.is_ipv4 && (f.ip.ihl < 5 || f.ip_off + (size_t)f.ip.total_len > size ||
				  f.ip.total_len < f.ip.ihl * 4u))
			abort();
		if (f.has_l4 && (!f.is_ipv4 || f.ip.frag_off || f.l4_off != f.ip_off + f.ip.ihl * 4u))
			abort();
		if (f.is_arp && f.ethertype != NET_ETHERTYPE_ARP)
			abort();
		/* Pretend the guest is who the frame claims, to reach the
		 * destination checks too. */
		memcpy(g.mac, f.src_mac, NET_ETH_ALEN);
		if (f.is_ipv4)
			g.ip = f.ip.src;
		else if (f.is_arp)
			g.ip = f.arp.spa;
	}
	d = net_policy_decide(&policy, &g, e, &f);
	if ((d.verdict == NET_VERDICT_DENY) != (d.reason != NET_DENY_NONE))
		abort();
	if (e != NET_PKT_OK && d.verdict != NET_VERDICT_DENY)
		abort();
	(void)net_stats_account(&stats, &d, e, &f, size, msg, sizeof(msg));
	if (e != NET_PKT_OK)
		goto out;
	if (d.verdict == NET_VERDICT_REPLY_ARP) {
		n = net_build_arp_reply(out, sizeof(out), &f, g.gw_mac, g.gw);
		if (n != NET_VNET_HDR_LEN + NET_ETH_ZLEN)
			abort();
	}
	n = net_build_tcp_rst(out, sizeof(out), buf, &f);
	if (n)
		check_reply(out, n, &f, NET_IPPROTO_TCP);
	else if (d.answer == NET_ANSWER_TCP_RST)
		abort();
	n = net_build_icmp_port_unreach(out, sizeof(out), buf, &f);
	if (n)
		check_reply(out, n, &f, NET_IPPROTO_ICMP);
	else if (d.answer == NET_ANSWER_ICMP_UNREACH)
		abort();
out:
	free(buf);
	return 0;
}
