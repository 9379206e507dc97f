/* virtio-net: the guest's NIC on a TAP backend, every transmitted frame through the egress policy (devices/net_policy.h) before it reaches the TAP. */
#ifndef MINIVM_VIRTIO_NET_H
#define MINIVM_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "devices/net_policy.h"
#include "devices/virtio_dev.h"

struct evl;

/* Feature bits (spec 5.1.3). */
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15

#define VIRTIO_NET_QUEUE_RX 0
#define VIRTIO_NET_QUEUE_TX 1
#define VIRTIO_NET_QUEUE_SIZE 256
/* Config space: mac[6], status, max_virtqueue_pairs, mtu (spec 5.1.4). */
#define VIRTIO_NET_CONFIG_SIZE 12u
/* Frames handled per pass over a queue before the event loop comes back
 * for the rest (a guest cannot keep one thread busy for ever). */
#define VIRTIO_NET_BUDGET 256u

/*
 * Opens the existing TAP device `name` (it is not created: the user makes it
 * and its host side, e.g. `ip tuntap add dev NAME mode tap`, addresses, NAT)
 * through /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte
 * virtio_net_hdr_v1 per frame (TUNSETVNETHDRSZ) and no offloads
 * (TUNSETOFFLOAD 0, so every frame is whole and checksummed). The fd is
 * non-blocking. Writes the TAP's own MAC (the host side, which the guest
 * reaches as its gateway) to host_mac. Returns the fd, or -errno with a
 * one-line message in err.
 */
int net_tap_open(const char *name, uint8_t host_mac[NET_ETH_ALEN], char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * A virtio-net device (id 1; rx and tx queues; VIRTIO_NET_F_MAC with
 * guest->mac, VIRTIO_NET_F_MTU 1500, VIRTIO_NET_F_MRG_RXBUF; no offloads, no
 * control queue) whose backend is fd: a TAP from net_tap_open, or any
 * datagram fd that carries one frame with its 12-byte virtio_net_hdr_v1 per
 * message (tests use a SOCK_SEQPACKET socketpair). The device owns fd from
 * this call on (closed on destroy, and on failure) and makes it non-blocking:
 * a frame the backend cannot take at once is dropped and counted.
 *
 * TX: each frame is copied once out of guest memory, parsed
 * (net_pkt_parse) and decided by `policy` for `guest` (net_policy_decide;
 * both are copied): allowed frames are written to fd; an ARP request for
 * the gateway is answered on the rx queue with guest->gw_mac; denied TCP
 * gets a RST and denied UDP an ICMP port unreachable on the rx queue (when
 * the guest has an rx buffer free: never waited for); everything else
 * denied is dropped. Counters: virtio_net_get_stats; each denied
 * destination is logged once (net_stats_account) to stderr.
 * RX: frames read from fd go to the guest's rx buffers as they are (not
 * filtered: see net_policy.h), header reset to "no offloads"; with
 * MRG_RXBUF a frame spans as many buffers as it needs (num_buffers), and
 * waits for more when the ring runs dry midway; without it a frame larger
 * than the buffer offered is dropped and counted. Frames wait in the
 * backend while the guest has no rx buffer.
 *
 * evl: the loop that watches fd (and one eventfd of the device's); it must
 * outlive the device. NULL for tests, which drive the backend with
 * virtio_net_poll(). Call at setup time, before evl_run(). Returns the
 * device (bind it with vmmio_create, which then owns it), or NULL with a
 * message in err.
 */
struct virtio_dev *virtio_net_create(int fd, const struct net_guest *guest, const struct net_policy *policy,
				     struct evl *evl, char *err, size_t errlen);

/* Serves the backend once (reads what fd has for the guest, finishes
 * deferred tx work, retries a direction waiting for the rate limiter), as
 * the event loop's callback does. For tests built
 * without an event loop. Call without the device's lock. */
void virtio_net_poll(struct virtio_dev *dev);

struct rl_config;
/*
 * Throttles the NIC per direction with token buckets (devices/ratelimit.h):
 * tx counts the frames the guest transmits (bytes = frame length, 1 op per
 * frame), rx the frames the backend delivers to the guest. Either may be
 * NULL (no limit). A direction over its limit stops taking work from its
 * queue / the backend until tokens are back (an rl_timer on the device's
 * event loop resumes it): the guest sees a slower link, frames are not
 * dropped for it (rx frames wait in the backend).
 * Details: the frame length is the Ethernet frame's, without the virtio-net
 * header. Every tx chain pays, before the policy sees it: denied, malformed
 * and ARP frames too (a guest cannot use denials to bypass the limit). The
 * device's own replies on the rx queue (ARP, RST, ICMP) are not backend
 * frames and do not pay. An rx frame is read from the backend before its
 * length is known: at most one refused frame waits in the device (kept
 * across a device reset), the rest in the backend. A config that limits
 * nothing (all zero) leaves that direction as without a limit.
 * Call after virtio_net_create() with an event loop, before the VM runs
 * (without the device's lock), at most once (-EALREADY). 0 or -errno with
 * a message (-EINVAL: no event loop, or a bucket out of bounds; nothing is
 * limited then).
 */
int virtio_net_set_rate_limit(struct virtio_dev *dev, const struct rl_config *rx, const struct rl_config *tx,
			      char *err, size_t errlen) __attribute__((warn_unused_result));

struct virtio_net_counters {
	uint64_t tx_frames;     /* written to the backend */
	uint64_t tx_errors;     /* backend write failed (frame lost) */
	uint64_t rx_frames;     /* backend frames given to the guest */
	uint64_t rx_dropped;    /* backend frames dropped: too big for the buffer, bad header */
	uint64_t replies;       /* ARP/RST/ICMP frames the device put on the rx queue */
	uint64_t replies_dropped; /* ... that found no rx buffer */
	uint64_t tx_throttled;  /* times a tx chain waited for the rate limiter */
	uint64_t rx_throttled;  /* times a backend frame waited for the rate limiter */
};

/* Copies the policy counters (net_stats: allowed, denied per reason,
 * malformed per reason) and the device's own. Either pointer may be NULL.
 * Call without the device's lock. */
void virtio_net_get_stats(struct virtio_dev *dev, struct net_stats *policy, struct virtio_net_counters *c);

#endif
