/* The guest's egress policy without I/O: allow rules (CIDR[:PORT[/tcp|udp]]) and their parsers, the per-frame decision, deny counters and the log-once set. */
#ifndef MINIVM_NET_POLICY_H
#define MINIVM_NET_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/net_pkt.h"

/*
 * What the policy covers: every frame the guest transmits (TX), before it
 * reaches the backend. Frames towards the guest (RX) come from the host
 * side, where the user's own network set-up governs them, and are not
 * filtered: replies to allowed flows therefore pass without connection
 * tracking (a reply the guest sends back on a flow the host opened is
 * still a TX frame and needs a rule). Default deny.
 *
 * Allowed:
 * - IPv4 from the guest's MAC and IP to a destination a rule covers: a rule
 *   without a port allows every protocol (and IPv4 fragments) to its CIDR; a
 *   rule with a port allows TCP and/or UDP first fragments to that port.
 * - with allow_dns, UDP and TCP to port 53 of the configured resolver only.
 * - ARP replies from the guest about itself (sender = guest MAC/IP), so the
 *   host side can resolve the guest.
 * - an ARP request for the gateway is answered by the device (REPLY_ARP)
 *   and never forwarded.
 * Denied: everything else, including IPv6 (there are no IPv6 rules yet),
 * other ethertypes, ARP for any other address, IPv4 fragments no port-less
 * rule covers, and any frame whose source MAC or IP is not the guest's.
 */

#define NET_POLICY_MAX_RULES 1024u
/* Longest rule text, and longest line in a policy file. */
#define NET_RULE_MAX_LEN 64u
#define NET_POLICY_LINE_MAX 256u
#define NET_POLICY_FILE_MAX (1u << 20)
#define NET_PROTO_ANY 0u

struct net_rule {
	uint32_t addr;  /* network, host byte order, host bits zero */
	uint32_t mask;
	uint8_t prefix; /* 0..32 */
	uint16_t port;  /* 0: any port and any protocol */
	uint8_t proto;  /* with a port: NET_PROTO_ANY (TCP and UDP), NET_IPPROTO_TCP or NET_IPPROTO_UDP */
};

struct net_policy {
	struct net_rule rules[NET_POLICY_MAX_RULES];
	size_t n_rules;
	bool allow_dns; /* port 53 of net_guest.dns (no effect while dns is 0) */
};

/* The guest's addressing as minivm configured it. */
struct net_guest {
	uint8_t mac[NET_ETH_ALEN];
	uint32_t ip;     /* host byte order */
	uint8_t prefix;  /* 0..32, the guest's subnet */
	uint32_t gw;
	uint32_t dns;    /* 0: none */
	uint8_t gw_mac[NET_ETH_ALEN]; /* what ARP for gw answers: the TAP's own MAC */
};

/*
 * Parses one rule: A.B.C.D[/LEN][:PORT[/tcp|/udp]]. Dotted quads of decimal
 * octets without leading zeros; LEN 0..32 (default 32) with no host bits
 * set; PORT 1..65535. Returns 0 with *r set, or -EINVAL with a message in
 * err (errlen bytes, always terminated when errlen > 0).
 */
int net_rule_parse(const char *s, struct net_rule *r, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Writes r in the form net_rule_parse reads ("10.0.0.0/8", "1.2.3.4:443/tcp"). */
void net_rule_format(const struct net_rule *r, char *out, size_t outlen);

/* Adds a rule from text (net_rule_parse); -ENOSPC past NET_POLICY_MAX_RULES. */
int net_policy_add(struct net_policy *p, const char *rule, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Adds the rules of a policy file's text (len bytes, not necessarily
 * terminated): one rule per line, blank lines and '#' comments (to the end
 * of the line) ignored, surrounding spaces/tabs trimmed; a line "allow-dns"
 * sets allow_dns. NUL bytes, lines over NET_POLICY_LINE_MAX and text over
 * NET_POLICY_FILE_MAX are errors. Returns 0, or -EINVAL/-ENOSPC with
 * "line N: ..." in err; on error p may hold the rules of earlier lines.
 */
int net_policy_parse_text(struct net_policy *p, const char *text, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Reads `path` (at most NET_POLICY_FILE_MAX bytes) and parses it as above.
 * Returns 0 or -errno with a message in err naming the file. */
int net_policy_load_file(struct net_policy *p, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

enum net_verdict {
	NET_VERDICT_ALLOW = 0, /* send it to the backend */
	NET_VERDICT_DENY,      /* drop it (and maybe answer, see net_answer) */
	NET_VERDICT_REPLY_ARP, /* drop it and answer with net_build_arp_reply(gw_mac, gw) */
};

enum net_deny_reason {
	NET_DENY_NONE = 0,
	NET_DENY_MALFORMED, /* the parser rejected the frame */
	NET_DENY_SRC_MAC,   /* Ethernet (or ARP sender) MAC is not the guest's */
	NET_DENY_SRC_IP,    /* IPv4 (or ARP sender) address is not the guest's */
	NET_DENY_IPV6,
	NET_DENY_ETHERTYPE, /* neither IPv4, ARP nor IPv6 (VLAN tags included) */
	NET_DENY_ARP,       /* ARP other than a request for the gateway or a reply about the guest */
	NET_DENY_FRAGMENT,  /* an IPv4 fragment no port-less rule covers */
	NET_DENY_DEST,      /* no rule allows the destination */
	NET_DENY_COUNT
};

enum net_answer {
	NET_ANSWER_NONE = 0,
	NET_ANSWER_TCP_RST,      /* net_build_tcp_rst */
	NET_ANSWER_ICMP_UNREACH, /* net_build_icmp_port_unreach */
};

struct net_decision {
	enum net_verdict verdict;
	enum net_deny_reason reason; /* NET_DENY_NONE unless DENY */
	enum net_answer answer;      /* for DENY: what to send the guest so it fails fast */
};

/*
 * The decision for a frame the guest transmitted: `perr` is what
 * net_pkt_parse returned for it and `f` the frame. Answers are given only
 * for a destination no rule allows, from the guest's own addresses, to a
 * unicast destination (never to broadcast/multicast), and never to an RST
 * or to ICMP. Pure.
 */
struct net_decision net_policy_decide(const struct net_policy *p, const struct net_guest *g, enum net_pkt_err perr,
				      const struct net_frame *f);

/* A short name for a reason ("dest", "src-ip", ...); "invalid" outside the enum. */
const char *net_deny_reason_name(enum net_deny_reason r);

/* ---- accounting: per-reason counters and "log each denied destination once" ---- */

#define NET_LOG_SET_SIZE 256u
/* While the set is full, at most one summary line per this many ms. */
#define NET_LOG_SUMMARY_MS 10000u

struct net_dest {
	uint32_t ip;
	uint16_t port;  /* 0 for protocols without ports */
	uint8_t proto;
};

struct net_stats {
	uint64_t allowed;
	uint64_t arp_replies;
	uint64_t denied[NET_DENY_COUNT];
	uint64_t malformed[NET_PKT_ERR_COUNT];
	uint64_t answers;
	/* Destinations already logged (insertion order); past the set's size,
	 * denials of new destinations are only counted. */
	struct net_dest seen[NET_LOG_SET_SIZE];
	size_t n_seen;
	uint64_t unlogged;          /* denials of new destinations not logged since the last summary */
	uint64_t last_summary_ms;
	bool summary_printed;
	uint32_t reasons_logged;    /* bit per net_deny_reason logged once */
	uint32_t malformed_logged;  /* bit per net_pkt_err logged once */
};

/*
 * Counts decision d for frame f (parse result perr) at time now_ms and
 * says whether to log: returns true with a line in msg (msglen bytes) the
 * first time a destination is denied ("denied tcp 10.9.8.7:443 (dest)"),
 * or, once the set is full, for a summary ("N more denied packets to
 * destinations not logged") at most every NET_LOG_SUMMARY_MS. Denials
 * without a destination worth naming (malformed, ARP, other ethertypes,
 * spoofed sources) are logged once per reason. Returns false otherwise.
 */
bool net_stats_account(struct net_stats *s, const struct net_decision *d, enum net_pkt_err perr,
		       const struct net_frame *f, uint64_t now_ms, char *msg, size_t msglen);

#endif
