/* The egress policy: rule and policy-file parsers, the per-frame decision, counters and the bounded log-once set (pure but for net_policy_load_file). */
#include "devices/net_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A decimal number of 1..maxdigits digits without a leading zero (but "0"
 * itself), at most maxval. Advances *sp past it. Returns 0 or -1.
 */
static int parse_num(const char **sp, unsigned int maxdigits, uint32_t maxval, uint32_t *out)
{
	const char *s = *sp;
	uint32_t v = 0;
	unsigned int n = 0;

	while (is_digit(s[n])) {
		if (n == maxdigits)
			return -1;
		v = v * 10 + (uint32_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > maxval)
		return -1;
	*sp = s + n;
	*out = v;
	return 0;
}

static uint32_t prefix_mask(uint8_t prefix)
{
	return prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
}

int net_rule_parse(const char *s, struct net_rule *r, char *err, size_t errlen)
{
	const char *p = s;
	uint32_t addr = 0, v;
	char net[16];

	memset(r, 0, sizeof(*r));
	if (strnlen(s, NET_RULE_MAX_LEN + 1) > NET_RULE_MAX_LEN) {
		set_err(err, errlen, "rule longer than %u characters", NET_RULE_MAX_LEN);
		return -EINVAL;
	}
	for (int i = 0; i < 4; i++) {
		if (i && *p++ != '.') {
			set_err(err, errlen, "'%s': expected an IPv4 address such as 10.0.0.0/8 or 1.2.3.4:443/tcp", s);
			return -EINVAL;
		}
		if (parse_num(&p, 3, 255, &v)) {
			set_err(err, errlen, "'%s': bad IPv4 address (four decimal octets 0-255, no leading zeros)", s);
			return -EINVAL;
		}
		addr = addr << 8 | v;
	}
	r->prefix = 32;
	if (*p == '/') {
		p++;
		if (parse_num(&p, 2, 32, &v)) {
			set_err(err, errlen, "'%s': prefix length must be 0 to 32", s);
			return -EINVAL;
		}
		r->prefix = (uint8_t)v;
	}
	r->mask = prefix_mask(r->prefix);
	if (addr & ~r->mask) {
		net_ip_str(addr & r->mask, net);
		set_err(err, errlen, "'%s': address has bits set outside the /%u prefix (did you mean %s/%u?)", s,
			r->prefix, net, r->prefix);
		return -EINVAL;
	}
	r->addr = addr;
	if (*p == ':') {
		p++;
		if (parse_num(&p, 5, 65535, &v) || v == 0) {
			set_err(err, errlen, "'%s': port must be 1 to 65535", s);
			return -EINVAL;
		}
		r->port = (uint16_t)v;
		if (*p == '/') {
			p++;
			if (!strcmp(p, "tcp")) {
				r->proto = NET_IPPROTO_TCP;
			} else if (!strcmp(p, "udp")) {
				r->proto = NET_IPPROTO_UDP;
			} else {
				set_err(err, errlen, "'%s': protocol after the port must be tcp or udp", s);
				return -EINVAL;
			}
			p += 3;
		}
	}
	if (*p) {
		set_err(err, errlen, "'%s': unexpected '%s' (the form is CIDR[:PORT[/tcp|udp]])", s, p);
		return -EINVAL;
	}
	return 0;
}

void net_rule_format(const struct net_rule *r, char *out, size_t outlen)
{
	char ip[16];

	net_ip_str(r->addr, ip);
	if (!r->port)
		snprintf(out, outlen, "%s/%u", ip, r->prefix);
	else
		snprintf(out, outlen, "%s/%u:%u%s", ip, r->prefix, r->port,
			 r->proto == NET_IPPROTO_TCP ? "/tcp" : r->proto == NET_IPPROTO_UDP ? "/udp" : "");
}

int net_policy_add(struct net_policy *p, const char *rule, char *err, size_t errlen)
{
	struct net_rule r;
	int ret;

	if (p->n_rules >= NET_POLICY_MAX_RULES) {
		set_err(err, errlen, "more than %u rules", NET_POLICY_MAX_RULES);
		return -ENOSPC;
	}
	ret = net_rule_parse(rule, &r, err, errlen);
	if (ret)
		return ret;
	p->rules[p->n_rules++] = r;
	return 0;
}

int net_policy_parse_text(struct net_policy *p, const char *text, size_t len, char *err, size_t errlen)
{
	char line[NET_POLICY_LINE_MAX + 1], sub[NET_POLICY_LINE_MAX];
	size_t pos = 0, lineno = 0;

	if (len > NET_POLICY_FILE_MAX) {
		set_err(err, errlen, "policy longer than %u bytes", NET_POLICY_FILE_MAX);
		return -EINVAL;
	}
	while (pos < len) {
		size_t start = pos, n, b, e;
		int ret;

		lineno++;
		while (pos < len && text[pos] != '\n')
			pos++;
		n = pos - start;
		if (pos < len)
			pos++; /* the newline */
		if (n > NET_POLICY_LINE_MAX) {
			set_err(err, errlen, "line %zu: longer than %u characters", lineno, NET_POLICY_LINE_MAX);
			return -EINVAL;
		}
		if (memchr(text + start, '\0', n)) {
			set_err(err, errlen, "line %zu: contains a NUL byte", lineno);
			return -EINVAL;
		}
		memcpy(line, text + start, n);
		line[n] = '\0';
		/* Strip a comment, then surrounding blanks (and a CR from CRLF). */
		for (e = 0; e < n && line[e] != '#'; e++)
			;
		for (b = 0; b < e && (line[b] == ' ' || line[b] == '\t'); b++)
			;
		while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
			e--;
		if (e == b)
			continue;
		line[e] = '\0';
		if (!strcmp(line + b, "allow-dns")) {
			p->allow_dns = true;
			continue;
		}
		ret = net_policy_add(p, line + b, sub, sizeof(sub));
		if (ret) {
			set_err(err, errlen, "line %zu: %s", lineno, sub);
			return ret;
		}
	}
	return 0;
}

int net_policy_load_file(struct net_policy *p, const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t len = 0;
	int fd, ret;
	char sub[NET_POLICY_LINE_MAX + 64];

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	/* One byte more than allowed, to tell "too long" from "just fits". */
	buf = malloc(NET_POLICY_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (len < NET_POLICY_FILE_MAX + 1) {
		ssize_t n = read(fd, buf + len, NET_POLICY_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			set_err(err, errlen, "%s: %s", path, strerror(-ret));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ret = net_policy_parse_text(p, buf, len, sub, sizeof(sub));
	if (ret)
		set_err(err, errlen, "%s: %s", path, sub);
out:
	free(buf);
	close(fd);
	return ret;
}

static bool is_tcp_udp(const struct net_frame *f)
{
	return f->has_l4 && (f->ip.proto == NET_IPPROTO_TCP || f->ip.proto == NET_IPPROTO_UDP);
}

static bool rule_covers(const struct net_rule *r, const struct net_frame *f, bool fragment)
{
	if ((f->ip.dst & r->mask) != r->addr)
		return false;
	if (!r->port)
		return true;
	if (fragment || !is_tcp_udp(f) || f->l4.dport != r->port)
		return false;
	return r->proto == NET_PROTO_ANY || r->proto == f->ip.proto;
}

static bool dest_allowed(const struct net_policy *p, const struct net_guest *g, const struct net_frame *f,
			 bool fragment)
{
	if (!fragment && p->allow_dns && g->dns && f->ip.dst == g->dns && is_tcp_udp(f) && f->l4.dport == 53)
		return true;
	for (size_t i = 0; i < p->n_rules; i++)
		if (rule_covers(&p->rules[i], f, fragment))
			return true;
	return false;
}

/* Whether an answer may go back: only about unicast traffic (RFC 1122
 * 3.2.2: no ICMP errors about broadcast or multicast datagrams). */
static bool unicast_dest(const struct net_guest *g, const struct net_frame *f)
{
	uint32_t dst = f->ip.dst, hostmask = ~prefix_mask(g->prefix);

	if (f->dst_mac[0] & 1)
		return false;
	if (dst == 0xffffffffu || (dst & 0xf0000000u) == 0xe0000000u || dst == 0)
		return false;
	/* The guest subnet's broadcast address (not for /31 and /32). */
	if (g->prefix < 31 && (dst & hostmask) == hostmask && (dst & ~hostmask) == (g->ip & ~hostmask))
		return false;
	return true;
}

static struct net_decision deny(enum net_deny_reason why)
{
	return (struct net_decision){ .verdict = NET_VERDICT_DENY, .reason = why };
}

struct net_decision net_policy_decide(const struct net_policy *p, const struct net_guest *g, enum net_pkt_err perr,
				      const struct net_frame *f)
{
	struct net_decision d;
	bool fragment;

	if (perr != NET_PKT_OK)
		return deny(NET_DENY_MALFORMED);
	if (memcmp(f->src_mac, g->mac, NET_ETH_ALEN))
		return deny(NET_DENY_SRC_MAC);
	switch (f->ethertype) {
	case NET_ETHERTYPE_ARP:
		if (!f->is_arp)
			return deny(NET_DENY_MALFORMED);
		if (memcmp(f->arp.sha, g->mac, NET_ETH_ALEN))
			return deny(NET_DENY_SRC_MAC);
		if (f->arp.spa != g->ip)
			return deny(NET_DENY_SRC_IP);
		if (f->arp.op == NET_ARP_REQUEST && f->arp.tpa == g->gw)
			return (struct net_decision){ .verdict = NET_VERDICT_REPLY_ARP };
		if (f->arp.op == NET_ARP_REPLY)
			return (struct net_decision){ .verdict = NET_VERDICT_ALLOW };
		return deny(NET_DENY_ARP);
	case NET_ETHERTYPE_IPV6:
		return deny(NET_DENY_IPV6);
	case NET_ETHERTYPE_IPV4:
		break;
	default:
		return deny(NET_DENY_ETHERTYPE);
	}
	if (!f->is_ipv4)
		return deny(NET_DENY_MALFORMED);
	if (f->ip.src != g->ip)
		return deny(NET_DENY_SRC_IP);
	fragment = f->ip.mf || f->ip.frag_off;
	if (dest_allowed(p, g, f, fragment))
		return (struct net_decision){ .verdict = NET_VERDICT_ALLOW };
	if (fragment)
		return deny(NET_DENY_FRAGMENT);
	d = deny(NET_DENY_DEST);
	if (f->has_l4 && unicast_dest(g, f)) {
		if (f->ip.proto == NET_IPPROTO_TCP && !(f->l4.tcp_flags & NET_TCP_RST))
			d.answer = NET_ANSWER_TCP_RST;
		else if (f->ip.proto == NET_IPPROTO_UDP)
			d.answer = NET_ANSWER_ICMP_UNREACH;
	}
	return d;
}

const char *net_deny_reason_name(enum net_deny_reason r)
{
	static const char *const names[NET_DENY_COUNT] = {
		[NET_DENY_NONE] = "none",
		[NET_DENY_MALFORMED] = "malformed",
		[NET_DENY_SRC_MAC] = "src-mac",
		[NET_DENY_SRC_IP] = "src-ip",
		[NET_DENY_IPV6] = "ipv6",
		[NET_DENY_ETHERTYPE] = "ethertype",
		[NET_DENY_ARP] = "arp",
		[NET_DENY_FRAGMENT] = "fragment",
		[NET_DENY_DEST] = "dest",
	};

	if ((unsigned int)r >= NET_DENY_COUNT)
		return "invalid";
	return names[r];
}

static const char *proto_name(uint8_t proto, char buf[16])
{
	switch (proto) {
	case NET_IPPROTO_TCP:
		return "tcp";
	case NET_IPPROTO_UDP:
		return "udp";
	case NET_IPPROTO_ICMP:
		return "icmp";
	default:
		snprintf(buf, 16, "proto %u", proto);
		return buf;
	}
}

/* Logs a destination the first time it is denied, counting what the full
 * set cannot name. */
static bool account_dest(struct net_stats *s, const struct net_decision *d, const struct net_frame *f,
			 uint64_t now_ms, char *msg, size_t msglen)
{
	struct net_dest k = { .ip = f->ip.dst, .proto = f->ip.proto };
	char ip[16], pbuf[16];
	const char *pn;

	if (f->has_l4 && (f->ip.proto == NET_IPPROTO_TCP || f->ip.proto == NET_IPPROTO_UDP))
		k.port = f->l4.dport;
	for (size_t i = 0; i < s->n_seen; i++)
		if (s->seen[i].ip == k.ip && s->seen[i].port == k.port && s->seen[i].proto == k.proto)
			return false;
	if (s->n_seen < NET_LOG_SET_SIZE) {
		s->seen[s->n_seen++] = k;
		net_ip_str(k.ip, ip);
		pn = proto_name(k.proto, pbuf);
		if (k.port)
			snprintf(msg, msglen, "denied %s %s:%u (%s)", pn, ip, k.port, net_deny_reason_name(d->reason));
		else
			snprintf(msg, msglen, "denied %s %s (%s)", pn, ip, net_deny_reason_name(d->reason));
		return true;
	}
	s->unlogged++;
	if (s->summary_printed && now_ms - s->last_summary_ms < NET_LOG_SUMMARY_MS)
		return false;
	snprintf(msg, msglen, "%llu more denied packets to destinations not logged (already %u logged)",
		 (unsigned long long)s->unlogged, NET_LOG_SET_SIZE);
	s->unlogged = 0;
	s->last_summary_ms = now_ms;
	s->summary_printed = true;
	return true;
}

bool net_stats_account(struct net_stats *s, const struct net_decision *d, enum net_pkt_err perr,
		       const struct net_frame *f, uint64_t now_ms, char *msg, size_t msglen)
{
	switch (d->verdict) {
	case NET_VERDICT_ALLOW:
		s->allowed++;
		return false;
	case NET_VERDICT_REPLY_ARP:
		s->arp_replies++;
		return false;
	case NET_VERDICT_DENY:
		break;
	}
	if ((unsigned int)d->reason >= NET_DENY_COUNT)
		return false;
	s->denied[d->reason]++;
	if (d->answer != NET_ANSWER_NONE)
		s->answers++;
	if (d->reason == NET_DENY_MALFORMED) {
		unsigned int e = (unsigned int)perr < NET_PKT_ERR_COUNT ? (unsigned int)perr : NET_PKT_OK;

		s->malformed[e]++;
		if (s->malformed_logged & (1u << e))
			return false;
		s->malformed_logged |= 1u << e;
		snprintf(msg, msglen, "dropped a malformed frame from the guest (%s); further ones are only counted",
			 net_pkt_err_name((enum net_pkt_err)e));
		return true;
	}
	if ((d->reason == NET_DENY_DEST || d->reason == NET_DENY_FRAGMENT) && f->is_ipv4)
		return account_dest(s, d, f, now_ms, msg, msglen);
	if (s->reasons_logged & (1u << d->reason))
		return false;
	s->reasons_logged |= 1u << d->reason;
	snprintf(msg, msglen, "denied a frame from the guest (%s, ethertype 0x%04x); further ones are only counted",
		 net_deny_reason_name(d->reason), f->ethertype);
	return true;
}
