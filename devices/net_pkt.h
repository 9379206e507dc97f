/* Ethernet/ARP/IPv4/TCP/UDP frames without I/O: the parser the egress policy reads (virtio-net header in front) and the replies it builds (ARP, TCP RST, ICMP unreachable). */
#ifndef MINIVM_NET_PKT_H
#define MINIVM_NET_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct virtio_net_hdr_v1 (spec 5.1.6): flags, gso_type, hdr_len, gso_size,
 * csum_start, csum_offset, num_buffers; little-endian, 12 bytes. */
#define NET_VNET_HDR_LEN 12u
#define NET_VNET_F_NEEDS_CSUM 1u
#define NET_VNET_GSO_NONE 0u

#define NET_ETH_ALEN 6u
#define NET_ETH_HLEN 14u
/* The MTU the device advertises (and the only one it accepts: no offloads,
 * so every frame is whole and at most this plus the Ethernet header). */
#define NET_MTU 1500u
#define NET_FRAME_MAX (NET_ETH_HLEN + NET_MTU)
/* The largest buffer a caller needs: virtio-net header plus the largest frame. */
#define NET_BUF_MAX (NET_VNET_HDR_LEN + NET_FRAME_MAX)
/* Ethernet's minimum frame without FCS; replies are padded to it. */
#define NET_ETH_ZLEN 60u

#define NET_ETHERTYPE_IPV4 0x0800u
#define NET_ETHERTYPE_ARP 0x0806u
#define NET_ETHERTYPE_IPV6 0x86ddu

#define NET_ARP_REQUEST 1u
#define NET_ARP_REPLY 2u

#define NET_IPPROTO_ICMP 1u
#define NET_IPPROTO_TCP 6u
#define NET_IPPROTO_UDP 17u

#define NET_TCP_FIN 0x01u
#define NET_TCP_SYN 0x02u
#define NET_TCP_RST 0x04u
#define NET_TCP_PSH 0x08u
#define NET_TCP_ACK 0x10u

/* Why a frame was rejected. NET_PKT_OK is 0. */
enum net_pkt_err {
	NET_PKT_OK = 0,
	NET_PKT_RUNT,          /* shorter than virtio-net header + Ethernet header */
	NET_PKT_OVERSIZE,      /* longer than NET_FRAME_MAX after the virtio-net header */
	NET_PKT_VNET_HDR,      /* checksum/GSO requested: no offload was negotiated */
	NET_PKT_ARP_TRUNC,     /* ARP shorter than its 28 bytes */
	NET_PKT_ARP_FORMAT,    /* not Ethernet/IPv4 ARP, or an op other than request/reply */
	NET_PKT_IP_TRUNC,      /* less than 20 bytes of IPv4 header */
	NET_PKT_IP_VERSION,    /* version is not 4 */
	NET_PKT_IP_IHL,        /* IHL < 5 or the options run past the frame */
	NET_PKT_IP_LEN,        /* total length < header length or > the bytes present */
	NET_PKT_IP_CSUM,       /* header checksum does not verify */
	NET_PKT_L4_TRUNC,      /* TCP/UDP/ICMP header cut short (or a bad TCP data offset / UDP length) */
	NET_PKT_ERR_COUNT
};

struct net_arp {
	uint16_t op;
	uint8_t sha[NET_ETH_ALEN];
	uint32_t spa; /* host byte order */
	uint8_t tha[NET_ETH_ALEN];
	uint32_t tpa;
};

struct net_ipv4 {
	uint8_t ihl;        /* in 32-bit words, 5..15 */
	uint8_t tos;
	uint8_t ttl;
	uint8_t proto;
	uint16_t total_len; /* header + payload, <= the bytes present */
	uint16_t id;
	uint16_t frag_off;  /* in 8-byte units */
	bool df, mf;
	uint32_t src, dst;  /* host byte order */
};

/* TCP/UDP/ICMP fields, present when has_l4 (IPv4, not a non-first fragment,
 * protocol TCP, UDP or ICMP). */
struct net_l4 {
	uint16_t sport, dport; /* TCP/UDP */
	uint8_t tcp_flags;
	uint8_t tcp_doff;      /* in 32-bit words, 5..15 */
	uint32_t seq, ack;
	uint16_t udp_len;
	uint8_t icmp_type, icmp_code;
	uint16_t payload_len;  /* bytes after the L4 header, within the IP total length */
};

/*
 * A frame from the guest, parsed. Offsets are into the buffer that was
 * parsed (virtio-net header included); the parser never reads the buffer
 * again after it returns, and the builders below read only the fields here
 * plus the bytes at these offsets in the same buffer.
 */
struct net_frame {
	uint16_t vnet_flags;
	uint8_t vnet_gso_type;
	uint16_t len;           /* frame bytes after the virtio-net header */
	uint8_t dst_mac[NET_ETH_ALEN], src_mac[NET_ETH_ALEN];
	uint16_t ethertype;
	bool is_arp, is_ipv4;
	struct net_arp arp;
	struct net_ipv4 ip;
	uint16_t ip_off;        /* offset of the IPv4 header in the buffer */
	uint16_t l4_off;        /* offset of the L4 header in the buffer */
	bool has_l4;
	struct net_l4 l4;
};

/*
 * Parses buf[0..len): a virtio_net_hdr_v1 then an Ethernet frame the guest
 * transmitted. Ethertypes other than ARP and IPv4 are parsed up to the
 * Ethernet header only (ethertype set, is_arp/is_ipv4 false); IPv4 with a
 * protocol other than TCP/UDP/ICMP, and non-first fragments, up to the IP
 * header (has_l4 false). Bytes past the IP total length (Ethernet padding)
 * are allowed. Returns NET_PKT_OK with *f filled, or the reason (f then
 * holds what was parsed before the error). Never reads outside buf.
 */
enum net_pkt_err net_pkt_parse(const uint8_t *buf, size_t len, struct net_frame *f)
	__attribute__((warn_unused_result));

/* A short name for a reason ("runt", "ip-ihl", ...), "invalid" outside the enum. */
const char *net_pkt_err_name(enum net_pkt_err e);

/* The Internet checksum (RFC 1071) of p[0..len) folded into 16 bits and
 * complemented, continuing from a partial 32-bit sum `sum`. */
uint16_t net_csum(const void *p, size_t len, uint32_t sum);

/* The partial sum of the IPv4 pseudo-header (addresses in host byte order). */
uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len);

/* Writes an IPv4 address in dotted form into out (at least 16 bytes). */
void net_ip_str(uint32_t ip, char out[16]);

/*
 * The builders write a zeroed virtio_net_hdr_v1 then an Ethernet frame into
 * out (cap bytes) and return the total length, or 0 when cap is too small or
 * the request frame is not of the kind answered. `buf` is the buffer `req`
 * was parsed from. Frames are padded to NET_ETH_ZLEN.
 */

/* An ARP reply to req (an ARP request for gw_ip): "gw_ip is at gw_mac",
 * addressed to the requester. */
size_t net_build_arp_reply(uint8_t *out, size_t cap, const struct net_frame *req, const uint8_t gw_mac[NET_ETH_ALEN],
			   uint32_t gw_ip) __attribute__((warn_unused_result));

/* A TCP RST answering the segment req (TCP, has_l4, without RST), as its
 * destination would (RFC 9293 3.10.7.1): from req's destination to its
 * source, MACs swapped; with ACK in req: seq = its ack; without: seq 0,
 * RST|ACK, ack = its seq + its length (SYN and FIN count one). */
size_t net_build_tcp_rst(uint8_t *out, size_t cap, const uint8_t *buf, const struct net_frame *req)
	__attribute__((warn_unused_result));

/* An ICMP destination unreachable, port unreachable (type 3 code 3), about
 * the datagram req (IPv4 with has_l4, not ICMP), from req's destination:
 * quotes its IP header and first 8 bytes of payload (RFC 792). */
size_t net_build_icmp_port_unreach(uint8_t *out, size_t cap, const uint8_t *buf, const struct net_frame *req)
	__attribute__((warn_unused_result));

#endif
