/* Unit tests for the egress policy (devices/net_policy.c): rule and file parsers, the decision, counters and the log-once set. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/net_policy.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const struct net_guest GUEST = {
	.mac = { 0x02, 0, 0, 0, 0, 5 },
	.ip = IP(10, 0, 2, 5),
	.prefix = 24,
	.gw = IP(10, 0, 2, 1),
	.dns = IP(10, 0, 2, 3),
	.gw_mac = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};

static struct net_policy *new_policy(void)
{
	struct net_policy *p = calloc(1, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	return p;
}

static void parse_ok(const char *s, uint32_t addr, uint8_t prefix, uint16_t port, uint8_t proto)
{
	struct net_rule r;
	char err[256] = "";

	ck_assert_msg(net_rule_parse(s, &r, err, sizeof(err)) == 0, "%s: %s", s, err);
	ck_assert_uint_eq(r.addr, addr);
	ck_assert_uint_eq(r.prefix, prefix);
	ck_assert_uint_eq(r.mask, prefix ? ~0u << (32 - prefix) : 0);
	ck_assert_uint_eq(r.port, port);
	ck_assert_uint_eq(r.proto, proto);
}

static void parse_bad(const char *s, const char *needle)
{
	struct net_rule r;
	char err[256] = "";

	ck_assert_msg(net_rule_parse(s, &r, err, sizeof(err)) == -EINVAL, "accepted '%s'", s);
	ck_assert_msg(strstr(err, needle), "'%s': error '%s' lacks '%s'", s, err, needle);
}

START_TEST(test_rule_parse)
{
	char longrule[128];

	parse_ok("10.0.0.0/8", IP(10, 0, 0, 0), 8, 0, 0);
	parse_ok("1.2.3.4:443/tcp", IP(1, 2, 3, 4), 32, 443, NET_IPPROTO_TCP);
	parse_ok("0.0.0.0/0:53/udp", 0, 0, 53, NET_IPPROTO_UDP);
	parse_ok("1.2.3.4", IP(1, 2, 3, 4), 32, 0, 0);
	parse_ok("1.2.3.4:80", IP(1, 2, 3, 4), 32, 80, NET_PROTO_ANY);
	parse_ok("0.0.0.0/0", 0, 0, 0, 0);
	parse_ok("255.255.255.255/32:65535/udp", 0xffffffffu, 32, 65535, NET_IPPROTO_UDP);
	parse_ok("192.168.0.0/16:1", IP(192, 168, 0, 0), 16, 1, NET_PROTO_ANY);

	parse_bad("", "bad IPv4 address");
	parse_bad("10.0.0", "expected an IPv4 address");
	parse_bad("example.com", "bad IPv4 address");
	parse_bad("10.0.0.256", "bad IPv4 address");
	parse_bad("010.0.0.1", "bad IPv4 address");
	parse_bad("1.2.3.4444", "bad IPv4 address");
	parse_bad("::1", "bad IPv4 address");
	parse_bad("10.0.0.1/8", "did you mean 10.0.0.0/8?");
	parse_bad("10.0.0.0/33", "prefix length");
	parse_bad("10.0.0.0/08", "prefix length");
	parse_bad("10.0.0.0/", "prefix length");
	parse_bad("1.2.3.4/tcp", "prefix length");
	parse_bad("1.2.3.4:0", "port must be 1 to 65535");
	parse_bad("1.2.3.4:65536", "port must be 1 to 65535");
	parse_bad("1.2.3.4:080", "port must be 1 to 65535");
	parse_bad("1.2.3.4:-1", "port must be 1 to 65535");
	parse_bad("1.2.3.4:", "port must be 1 to 65535");
	parse_bad("1.2.3.4:443/sctp", "tcp or udp");
	parse_bad("1.2.3.4:443/", "tcp or udp");
	parse_bad("1.2.3.4:443/TCP", "tcp or udp");
	parse_bad("1.2.3.4:443/tcp/x", "tcp or udp");
	parse_bad("1.2.3.4 ", "unexpected ' '");
	parse_bad(" 1.2.3.4", "bad IPv4 address");
	parse_bad("1.2.3.4:443x", "unexpected 'x'");
	memset(longrule, '1', sizeof(longrule) - 1);
	longrule[sizeof(longrule) - 1] = '\0';
	parse_bad(longrule, "longer than");
}
END_TEST

START_TEST(test_rule_format)
{
	static const char *const in[] = { "10.0.0.0/8", "1.2.3.4/32:443/tcp", "0.0.0.0/0:53/udp", "1.2.3.4/32:80" };
	struct net_rule r, r2;
	char out[64], err[128];

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		ck_assert_int_eq(net_rule_parse(in[i], &r, err, sizeof(err)), 0);
		net_rule_format(&r, out, sizeof(out));
		ck_assert_str_eq(out, in[i]);
		ck_assert_int_eq(net_rule_parse(out, &r2, err, sizeof(err)), 0);
		ck_assert(!memcmp(&r, &r2, sizeof(r)));
	}
}
END_TEST

START_TEST(test_policy_text)
{
	struct net_policy *p = new_policy();
	const char *t = "# egress for the build\n"
			"\n"
			"10.0.0.0/8   # the lab\r\n"
			"\t 1.2.3.4:443/tcp\n"
			"allow-dns\n"
			"   # indented comment\n"
			"0.0.0.0/0:123/udp";
	char err[256] = "";

	ck_assert_int_eq(net_policy_parse_text(p, t, strlen(t), err, sizeof(err)), 0);
	ck_assert_uint_eq(p->n_rules, 3);
	ck_assert(p->allow_dns);
	ck_assert_uint_eq(p->rules[0].addr, IP(10, 0, 0, 0));
	ck_assert_uint_eq(p->rules[1].port, 443);
	ck_assert_uint_eq(p->rules[2].proto, NET_IPPROTO_UDP);

	/* Errors name the line. */
	memset(p, 0, sizeof(*p));
	t = "10.0.0.0/8\n# fine\n10.0.0.1/8\n";
	ck_assert_int_eq(net_policy_parse_text(p, t, strlen(t), err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "line 3: ") && strstr(err, "did you mean"), "%s", err);
	ck_assert_int_eq(net_policy_parse_text(p, "1.2.3.4\0x", 9, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "line 1: contains a NUL"), "%s", err);
	{
		char line[NET_POLICY_LINE_MAX + 2];

		memset(line, ' ', sizeof(line));
		memcpy(line, "1.2.3.4", 7);
		ck_assert_int_eq(net_policy_parse_text(p, line, NET_POLICY_LINE_MAX, err, sizeof(err)), 0);
		ck_assert_int_eq(net_policy_parse_text(p, line, NET_POLICY_LINE_MAX + 1, err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, "line 1: longer than"), "%s", err);
	}
	ck_assert_int_eq(net_policy_parse_text(p, t, NET_POLICY_FILE_MAX + 1, err, sizeof(err)), -EINVAL);

	/* The rule table is bounded. */
	memset(p, 0, sizeof(*p));
	for (unsigned int i = 0; i < NET_POLICY_MAX_RULES; i++)
		ck_assert_int_eq(net_policy_add(p, "1.2.3.4", err, sizeof(err)), 0);
	ck_assert_int_eq(net_policy_add(p, "1.2.3.4", err, sizeof(err)), -ENOSPC);
	ck_assert_int_eq(net_policy_parse_text(p, "\n\n5.6.7.8\n", 9, err, sizeof(err)), -ENOSPC);
	ck_assert_msg(strstr(err, "line 3: more than"), "%s", err);
	free(p);
}
END_TEST

START_TEST(test_policy_file)
{
	struct net_policy *p = new_policy();
	char path[] = "/tmp/test_net_policy.XXXXXX", err[512] = "";
	int fd = mkstemp(path);
	const char *t = "allow-dns\n93.184.216.34:80/tcp\n";

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	ck_assert_int_eq(net_policy_load_file(p, path, err, sizeof(err)), 0);
	ck_assert(p->allow_dns);
	ck_assert_uint_eq(p->n_rules, 1);
	ck_assert_uint_eq(p->rules[0].port, 80);
	/* An error names the file and the line. */
	ck_assert_int_eq(write(fd, "bogus\n", 6), 6);
	ck_assert_int_eq(net_policy_load_file(p, path, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, path) && strstr(err, "line 3: "), "%s", err);
	/* Too long a file. */
	ck_assert_int_eq(ftruncate(fd, NET_POLICY_FILE_MAX + 1), 0);
	ck_assert_int_eq(net_policy_load_file(p, path, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "policy longer than"), "%s", err);
	close(fd);
	unlink(path);
	ck_assert_int_eq(net_policy_load_file(p, path, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, path), "%s", err);
	free(p);
}
END_TEST

/* A parsed-looking IPv4 frame from the guest. */
static struct net_frame v4(uint8_t proto, uint32_t dst, uint16_t dport)
{
	struct net_frame f = { .ethertype = NET_ETHERTYPE_IPV4, .is_ipv4 = true };

	memcpy(f.src_mac, GUEST.mac, 6);
	memcpy(f.dst_mac, GUEST.gw_mac, 6);
	f.ip.ihl = 5;
	f.ip.total_len = 40;
	f.ip.proto = proto;
	f.ip.src = GUEST.ip;
	f.ip.dst = dst;
	if (proto == NET_IPPROTO_TCP || proto == NET_IPPROTO_UDP || proto == NET_IPPROTO_ICMP) {
		f.has_l4 = true;
		f.l4.sport = 40000;
		f.l4.dport = dport;
		if (proto == NET_IPPROTO_TCP)
			f.l4.tcp_flags = NET_TCP_SYN;
	}
	return f;
}

static struct net_frame arpf(uint16_t op, uint32_t spa, uint32_t tpa)
{
	struct net_frame f = { .ethertype = NET_ETHERTYPE_ARP, .is_arp = true };

	memcpy(f.src_mac, GUEST.mac, 6);
	memset(f.dst_mac, 0xff, 6);
	f.arp.op = op;
	memcpy(f.arp.sha, GUEST.mac, 6);
	f.arp.spa = spa;
	f.arp.tpa = tpa;
	return f;
}

#define EXPECT(p, f, v, r, a)                                                                         \
	do {                                                                                          \
		struct net_frame f_ = (f);                                                            \
		struct net_decision d_ = net_policy_decide((p), &GUEST, NET_PKT_OK, &f_);             \
		ck_assert_msg(d_.verdict == (v) && d_.reason == (r) && d_.answer == (a),              \
			      "line %d: verdict %d reason %s answer %d", __LINE__, (int)d_.verdict,   \
			      net_deny_reason_name(d_.reason), (int)d_.answer);                       \
	} while (0)

START_TEST(test_decide)
{
	struct net_policy *p = new_policy();
	struct net_frame f;
	struct net_decision d;
	char err[128];

	/* Default deny, with an answer so the workload fails fast. */
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(1, 2, 3, 4), 53), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	EXPECT(p, v4(NET_IPPROTO_ICMP, IP(1, 2, 3, 4), 0), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	EXPECT(p, v4(47, IP(1, 2, 3, 4), 0), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);

	ck_assert_int_eq(net_policy_add(p, "1.2.3.4:443/tcp", err, sizeof(err)), 0);
	ck_assert_int_eq(net_policy_add(p, "10.9.0.0/16", err, sizeof(err)), 0);
	ck_assert_int_eq(net_policy_add(p, "0.0.0.0/0:123/udp", err, sizeof(err)), 0);
	ck_assert_int_eq(net_policy_add(p, "8.8.4.4:8080", err, sizeof(err)), 0);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(1, 2, 3, 4), 443), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 444), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(1, 2, 3, 5), 443), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_ICMP, IP(1, 2, 3, 4), 0), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	/* A rule without a port: every protocol, within the CIDR's edges. */
	EXPECT(p, v4(NET_IPPROTO_ICMP, IP(10, 9, 0, 0), 0), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(10, 9, 255, 255), 22), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(47, IP(10, 9, 1, 1), 0), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(10, 10, 0, 0), 22), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(10, 8, 255, 255), 22), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(9, 9, 9, 9), 123), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(9, 9, 9, 9), 123), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	EXPECT(p, v4(NET_IPPROTO_TCP, IP(8, 8, 4, 4), 8080), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(8, 8, 4, 4), 8080), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);

	/* DNS: only with allow_dns, only to the resolver, only port 53. */
	EXPECT(p, v4(NET_IPPROTO_UDP, GUEST.dns, 53), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	p->allow_dns = true;
	EXPECT(p, v4(NET_IPPROTO_UDP, GUEST.dns, 53), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_TCP, GUEST.dns, 53), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, GUEST.dns, 54), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(1, 1, 1, 1), 53), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	EXPECT(p, v4(NET_IPPROTO_ICMP, GUEST.dns, 53), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);

	/* Never an RST to an RST. */
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 1);
	f.l4.tcp_flags = NET_TCP_RST | NET_TCP_ACK;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	f.l4.tcp_flags = NET_TCP_ACK;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_TCP_RST);
	/* No answers about broadcast or multicast. */
	EXPECT(p, v4(NET_IPPROTO_UDP, 0xffffffffu, 9), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(10, 0, 2, 255), 9), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(224, 0, 0, 251), 5353), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(239, 1, 1, 1), 9), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);
	EXPECT(p, v4(NET_IPPROTO_UDP, IP(10, 0, 2, 254), 9), NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_ICMP_UNREACH);
	f = v4(NET_IPPROTO_UDP, IP(1, 2, 3, 9), 9);
	memset(f.dst_mac, 0xff, 6);
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_DEST, NET_ANSWER_NONE);

	/* Spoofed sources, even to allowed destinations. */
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	f.ip.src = IP(10, 0, 2, 6);
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_SRC_IP, NET_ANSWER_NONE);
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	f.src_mac[5] ^= 1;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_SRC_MAC, NET_ANSWER_NONE);

	/* Fragments: only a port-less rule lets them through. */
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	f.ip.mf = true;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_FRAGMENT, NET_ANSWER_NONE);
	f = v4(NET_IPPROTO_UDP, IP(1, 2, 3, 4), 443);
	f.has_l4 = false;
	f.ip.frag_off = 100;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_FRAGMENT, NET_ANSWER_NONE);
	f.ip.dst = IP(10, 9, 3, 3);
	EXPECT(p, f, NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	f = v4(NET_IPPROTO_UDP, GUEST.dns, 53);
	f.ip.mf = true;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_FRAGMENT, NET_ANSWER_NONE);

	/* IPv6 and other ethertypes; a 0.0.0.0/0 rule does not change that. */
	ck_assert_int_eq(net_policy_add(p, "0.0.0.0/0", err, sizeof(err)), 0);
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	f.ethertype = NET_ETHERTYPE_IPV6;
	f.is_ipv4 = false;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_IPV6, NET_ANSWER_NONE);
	f.ethertype = 0x8100;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_ETHERTYPE, NET_ANSWER_NONE);
	/* An IPv4 ethertype the parser did not accept as IPv4 is malformed. */
	f.ethertype = NET_ETHERTYPE_IPV4;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_MALFORMED, NET_ANSWER_NONE);
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	d = net_policy_decide(p, &GUEST, NET_PKT_IP_CSUM, &f);
	ck_assert_int_eq(d.verdict, NET_VERDICT_DENY);
	ck_assert_int_eq(d.reason, NET_DENY_MALFORMED);

	/* ARP: the gateway is answered, replies about the guest pass. */
	EXPECT(p, arpf(NET_ARP_REQUEST, GUEST.ip, GUEST.gw), NET_VERDICT_REPLY_ARP, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, arpf(NET_ARP_REQUEST, GUEST.ip, IP(10, 0, 2, 7)), NET_VERDICT_DENY, NET_DENY_ARP, NET_ANSWER_NONE);
	EXPECT(p, arpf(NET_ARP_REQUEST, IP(10, 0, 2, 9), GUEST.gw), NET_VERDICT_DENY, NET_DENY_SRC_IP, NET_ANSWER_NONE);
	EXPECT(p, arpf(NET_ARP_REPLY, GUEST.ip, GUEST.gw), NET_VERDICT_ALLOW, NET_DENY_NONE, NET_ANSWER_NONE);
	EXPECT(p, arpf(NET_ARP_REPLY, GUEST.gw, GUEST.gw), NET_VERDICT_DENY, NET_DENY_SRC_IP, NET_ANSWER_NONE);
	f = arpf(NET_ARP_REPLY, GUEST.ip, GUEST.gw);
	f.arp.sha[0] = 0x04;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_SRC_MAC, NET_ANSWER_NONE);
	f = arpf(NET_ARP_REQUEST, GUEST.ip, GUEST.gw);
	f.is_arp = false;
	EXPECT(p, f, NET_VERDICT_DENY, NET_DENY_MALFORMED, NET_ANSWER_NONE);

	ck_assert_str_eq(net_deny_reason_name(NET_DENY_DEST), "dest");
	ck_assert_str_eq(net_deny_reason_name(NET_DENY_COUNT), "invalid");
	free(p);
}
END_TEST

START_TEST(test_stats_log_once)
{
	struct net_policy *p = new_policy();
	struct net_stats *s = calloc(1, sizeof(*s));
	struct net_frame f;
	struct net_decision d;
	char msg[256];
	uint64_t t = 1000;

	ck_assert_ptr_nonnull(s);
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	d = net_policy_decide(p, &GUEST, NET_PKT_OK, &f);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_str_eq(msg, "denied tcp 1.2.3.4:443 (dest)");
	ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_uint_eq(s->denied[NET_DENY_DEST], 2);
	ck_assert_uint_eq(s->answers, 2);
	/* Another port or protocol is another destination. */
	f = v4(NET_IPPROTO_UDP, IP(1, 2, 3, 4), 443);
	d = net_policy_decide(p, &GUEST, NET_PKT_OK, &f);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_str_eq(msg, "denied udp 1.2.3.4:443 (dest)");
	f = v4(NET_IPPROTO_ICMP, IP(5, 6, 7, 8), 0);
	d = net_policy_decide(p, &GUEST, NET_PKT_OK, &f);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_str_eq(msg, "denied icmp 5.6.7.8 (dest)");

	/* Reasons without a destination: once per reason. */
	f.ethertype = NET_ETHERTYPE_IPV6;
	f.is_ipv4 = false;
	d = net_policy_decide(p, &GUEST, NET_PKT_OK, &f);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_msg(strstr(msg, "ipv6"), "%s", msg);
	ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	d = net_policy_decide(p, &GUEST, NET_PKT_RUNT, &f);
	ck_assert(net_stats_account(s, &d, NET_PKT_RUNT, &f, t, msg, sizeof(msg)));
	ck_assert_msg(strstr(msg, "runt"), "%s", msg);
	ck_assert(!net_stats_account(s, &d, NET_PKT_RUNT, &f, t, msg, sizeof(msg)));
	ck_assert(net_stats_account(s, &d, NET_PKT_IP_LEN, &f, t, msg, sizeof(msg)));
	ck_assert_uint_eq(s->malformed[NET_PKT_RUNT], 2);
	ck_assert_uint_eq(s->denied[NET_DENY_MALFORMED], 3);
	ck_assert_uint_eq(s->denied[NET_DENY_IPV6], 2);

	/* Allowed and ARP are counted, never logged. */
	d = (struct net_decision){ .verdict = NET_VERDICT_ALLOW };
	ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	d = (struct net_decision){ .verdict = NET_VERDICT_REPLY_ARP };
	ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_uint_eq(s->allowed, 1);
	ck_assert_uint_eq(s->arp_replies, 1);

	/* Fill the set: 3 destinations are in it already. */
	for (uint32_t i = 3; i < NET_LOG_SET_SIZE; i++) {
		f = v4(NET_IPPROTO_TCP, IP(20, 0, 0, 0) + i, 80);
		d = net_policy_decide(p, &GUEST, NET_PKT_OK, &f);
		ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	}
	ck_assert_uint_eq(s->n_seen, NET_LOG_SET_SIZE);
	/* Full: the first new destination gives a summary, the next ones are
	 * counted until the interval has passed; known ones stay quiet. */
	f = v4(NET_IPPROTO_TCP, IP(30, 0, 0, 1), 80);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t, msg, sizeof(msg)));
	ck_assert_msg(strstr(msg, "1 more denied packets"), "%s", msg);
	for (int i = 0; i < 5; i++) {
		f = v4(NET_IPPROTO_TCP, IP(30, 0, 1, 1) + (uint32_t)i, 80);
		ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t + NET_LOG_SUMMARY_MS - 1, msg, sizeof(msg)));
	}
	f = v4(NET_IPPROTO_TCP, IP(1, 2, 3, 4), 443);
	ck_assert(!net_stats_account(s, &d, NET_PKT_OK, &f, t + NET_LOG_SUMMARY_MS, msg, sizeof(msg)));
	f = v4(NET_IPPROTO_TCP, IP(30, 0, 2, 1), 80);
	ck_assert(net_stats_account(s, &d, NET_PKT_OK, &f, t + NET_LOG_SUMMARY_MS, msg, sizeof(msg)));
	ck_assert_msg(strstr(msg, "6 more denied packets"), "%s", msg);
	ck_assert_uint_eq(s->unlogged, 0);
	free(s);
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_policy");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_rule_parse);
	tcase_add_test(tc, test_rule_format);
	tcase_add_test(tc, test_policy_text);
	tcase_add_test(tc, test_policy_file);
	tcase_add_test(tc, test_decide);
	tcase_add_test(tc, test_stats_log_once);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
