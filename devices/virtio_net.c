/* virtio-net: rx/tx queues on a TAP (or any frame-per-message fd), every guest frame copied once, parsed and decided by the egress policy before it reaches the backend. */
#include "devices/virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/ratelimit.h"
#include "devices/virtio_spec.h"
#include "vmm/evl.h"
#include "vmm/snap.h"

/* One direction's rate limit (virtio_net_set_rate_limit): its buckets and
 * the timer that resumes it. */
struct net_limit {
	bool limited;          /* fixed once the VM runs */
	struct rl_timer timer; /* timer.fd fixed likewise; the rest under the lock */
	struct ratelimit rl;
};

struct net_dev {
	struct virtio_dev vdev; /* first */
	int fd;                 /* the backend: one frame per read/write */
	int kick_fd;            /* eventfd: deferred work for the loop */
	struct evl *evl;
	bool watch_fd, watch_kick;

	/* Under the transport lock from here on. */
	bool active;
	bool broken;
	bool quiesced;          /* snapshot: neither queue nor backend served */
	bool tx_more;           /* tx chains left over after a budget ran out */
	bool rx_held;           /* rx_chain was popped and is still unused */
	bool mrg;               /* VIRTIO_NET_F_MRG_RXBUF negotiated */
	/* The frame being delivered to the guest: rxbuf[0..rx_len), rx_done
	 * bytes of it written to the chains rx_heads[0..rx_nbufs) (with
	 * MRG_RXBUF; returned together once it is complete). */
	bool rx_pending;
	bool rx_is_reply;
	uint32_t rx_len, rx_done;
	uint16_t rx_nbufs;
	uint16_t rx_heads[VIRTQ_MAX_SIZE];
	uint32_t rx_lens[VIRTQ_MAX_SIZE];
	uint8_t *rx_nb[2];      /* num_buffers in the frame's first chain */
	struct net_guest guest;
	struct net_policy *policy;
	struct net_stats stats;
	struct virtio_net_counters ctr;
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	struct virtq_chain tx_chain;
	struct virtq_chain rx_chain;
	/* Copies of one frame: guest tx, backend rx (one byte more, to see
	 * frames that are too long), and a reply the device builds. */
	uint8_t txbuf[NET_BUF_MAX];
	uint8_t rxbuf[NET_BUF_MAX + 1];
	uint8_t reply[NET_BUF_MAX];

	/* Rate limiting, per direction. tx: a chain the buckets refuse stays
	 * popped in tx_chain (tx_parked, not yet copied) and nothing more is
	 * popped until txl's timer fires. rx: a backend frame has to be read
	 * before its length is known; one the buckets refuse waits in rx_park
	 * (rx_parked), nothing more is read from the backend until rxl's timer
	 * fires, and the frame goes first then. It is kept apart from rxbuf
	 * so that the device's own replies (ARP, RST, ICMP: not backend
	 * frames, not rx-limited) still reach the guest meanwhile. */
	struct net_limit rxl, txl;
	bool tx_parked;
	bool rx_parked;
	uint32_t rx_park_len;
	uint8_t rx_park[NET_BUF_MAX];
};

static struct net_dev *to_net(struct virtio_dev *dev)
{
	return (struct net_dev *)dev;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void kick(struct net_dev *d)
{
	uint64_t one = 1;

	if (d->kick_fd >= 0 && write(d->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, a wake-up is pending */
	}
}

static void fail(struct net_dev *d, struct virtq *vq)
{
	d->broken = true;
	virtio_dev_fail(&d->vdev, vq->error);
}

/* Whether l lets a frame of `len` bytes with its virtio-net header (the
 * header is not counted) go now; if not, l's timer is armed for when it
 * will. Lock held. */
static bool net_admit(struct net_dev *d, struct net_limit *l, uint32_t len)
{
	uint64_t bytes = len > NET_VNET_HDR_LEN ? len - NET_VNET_HDR_LEN : 0;
	int why = 0;

	if (!l->limited || rl_gate(&l->rl, &l->timer, bytes, 1, &why)) {
		/* Cannot happen with a valid timerfd; without a timer the
		 * direction would stall: the frame went instead. */
		if (why)
			virtio_dev_log(&d->vdev, "rate limiter timer: %s; frame not throttled", strerror(why));
		return true;
	}
	return false;
}

/*
 * Makes sure rx_chain holds an unused rx chain. Returns 1 when it does, 0
 * when the guest has none free (notifications are re-enabled so it tells
 * us when it adds some), -1 when the ring is broken (device failed).
 */
static int rx_get(struct net_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_NET_QUEUE_RX];

	if (d->rx_held)
		return 1;
	for (;;) {
		int ret = virtq_pop(vq, &d->rx_chain);

		if (ret < 0) {
			fail(d, vq);
			return -1;
		}
		if (ret > 0) {
			d->rx_held = true;
			return 1;
		}
		if (!virtq_enable_notify(vq))
			return 0;
	}
}

/* Copies src[0..len) to the writable part of c from byte `off` on; returns
 * how many bytes went (all of them when off + len <= c->write_len). When
 * nb is not NULL, points nb[0] and nb[1] at the chain's bytes 10 and 11
 * (num_buffers of the header it starts with). */
static uint32_t chain_write(const struct guest_mem *gm, const struct virtq_chain *c, uint32_t off, const uint8_t *src,
			    uint32_t len, uint8_t *nb[2])
{
	uint32_t pos = 0, done = 0;

	for (unsigned int i = c->nread; i < c->nseg; i++) {
		uint32_t sl = c->seg[i].len;
		uint8_t *p = gm_ptr(gm, c->seg[i].gpa, sl); /* checked by virtq_pop */

		if (!p)
			break;
		if (nb) {
			for (uint32_t b = 10; b < 12; b++)
				if (b >= pos && b - pos < sl)
					nb[b - 10] = p + (b - pos);
		}
		if (off + done < pos + sl && done < len) {
			uint32_t from = off + done - pos, n = sl - from;

			if (n > len - done)
				n = len - done;
			memcpy(p + from, src + done, n);
			done += n;
		}
		pos += sl;
	}
	return done;
}

enum rx_result { RX_DONE, RX_WAIT, RX_DROPPED, RX_BROKEN };

/*
 * Goes on delivering the frame in rxbuf[0..rx_len) (rx_pending). Without
 * VIRTIO_NET_F_MRG_RXBUF the frame must fit one chain (a chain too small
 * for it stays held for the next frame and the frame is dropped). With it,
 * the frame fills as many chains as it needs (spec 5.1.6.4.2), num_buffers
 * in the first one says how many, and all of them are returned together
 * once the frame is complete; when the ring runs dry midway the frame
 * waits for more buffers (RX_WAIT). Lock held.
 */
static enum rx_result rx_continue(struct net_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_NET_QUEUE_RX];
	const struct virtq_chain *c = &d->rx_chain;

	while (d->rx_done < d->rx_len) {
		uint32_t n;
		int r = rx_get(d);

		if (r < 0)
			return RX_BROKEN;
		if (r == 0)
			return RX_WAIT;
		if (!d->mrg) {
			if (c->write_len < d->rx_len) {
				d->rx_pending = false;
				return RX_DROPPED; /* the chain stays held */
			}
			n = chain_write(vq->gm, c, 0, d->rxbuf, d->rx_len, NULL);
			d->rx_held = false;
			d->rx_pending = false;
			if (virtq_push(vq, c->head, n))
				virtio_dev_log(&d->vdev, "%s", vq->error);
			return RX_DONE;
		}
		/* "each buffer MUST be at least the size of the struct
		 * virtio_net_hdr" (spec 5.1.6.3.1). */
		if (c->write_len < NET_VNET_HDR_LEN) {
			d->broken = true;
			virtio_dev_fail(&d->vdev, "rx buffer smaller than the virtio-net header");
			return RX_BROKEN;
		}
		n = chain_write(vq->gm, c, 0, d->rxbuf + d->rx_done, d->rx_len - d->rx_done,
				d->rx_nbufs ? NULL : d->rx_nb);
		d->rx_heads[d->rx_nbufs] = c->head;
		d->rx_lens[d->rx_nbufs] = n;
		d->rx_nbufs++;
		d->rx_done += n;
		d->rx_held = false;
	}
	/* Complete: num_buffers, then the used entries, in order. */
	*d->rx_nb[0] = (uint8_t)d->rx_nbufs;
	*d->rx_nb[1] = (uint8_t)(d->rx_nbufs >> 8);
	for (uint16_t i = 0; i < d->rx_nbufs; i++)
		if (virtq_push(vq, d->rx_heads[i], d->rx_lens[i]))
			virtio_dev_log(&d->vdev, "%s", vq->error);
	d->rx_pending = false;
	return RX_DONE;
}

/* Starts delivering rxbuf[0..len), a frame with its header. */
static enum rx_result rx_start(struct net_dev *d, uint32_t len)
{
	/* flags (DATA_VALID is not ours to claim without GUEST_CSUM), gso
	 * fields, then num_buffers: 1, or set once the chains are known. */
	memset(d->rxbuf, 0, NET_VNET_HDR_LEN);
	d->rxbuf[10] = 1;
	d->rx_pending = true;
	d->rx_len = len;
	d->rx_done = 0;
	d->rx_nbufs = 0;
	return rx_continue(d);
}

/* Counts how a frame ended (a reply or a backend frame); true when it was
 * put on the ring. */
static bool rx_account(struct net_dev *d, enum rx_result r)
{
	if (r == RX_DONE) {
		if (d->rx_is_reply) {
			d->ctr.replies++;
		} else {
			d->ctr.rx_frames++;
			virtio_stat_add(&d->vdev.stats.reads, 1);
			virtio_stat_add(&d->vdev.stats.read_bytes, d->rx_len - NET_VNET_HDR_LEN);
		}
		return true;
	}
	if (r == RX_DROPPED) {
		if (d->rx_is_reply) {
			d->ctr.replies_dropped++;
		} else {
			d->ctr.rx_dropped++;
			virtio_stat_add(&d->vdev.stats.errors, 1);
		}
	}
	return false;
}

/* Puts the frame the device built in reply[0..len) on the rx queue when
 * the guest has a buffer free now (a reply never waits for the first
 * one, nor behind a frame still being delivered). Returns whether any
 * used entry was written. */
static bool rx_inject(struct net_dev *d, size_t len)
{
	enum rx_result r;

	if (len < NET_VNET_HDR_LEN || len > NET_BUF_MAX || d->rx_pending || rx_get(d) != 1) {
		d->ctr.replies_dropped++;
		return false;
	}
	memcpy(d->rxbuf, d->reply, len);
	d->rx_is_reply = true;
	r = rx_start(d, (uint32_t)len);
	return rx_account(d, r);
}

/* Moves backend frames into the guest's rx buffers while both have some,
 * at most VIRTIO_NET_BUDGET per call. Lock held. */
static void rx_pump(struct net_dev *d)
{
	bool pushed = false;
	unsigned int n;

	if (!d->active || d->broken || d->quiesced)
		return;
	if (d->rx_pending) {
		enum rx_result r = rx_continue(d);

		pushed = rx_account(d, r);
		if (r == RX_WAIT || r == RX_BROKEN)
			goto out;
	}
	for (n = 0; n < VIRTIO_NET_BUDGET; n++) {
		enum rx_result r;
		ssize_t got;

		/* A buffer first, so frames wait in the backend, not here (and
		 * tokens are taken only for a frame that can be delivered). */
		if (rx_get(d) != 1)
			break;
		if (d->rx_parked) {
			/* The frame the limiter refused last time goes first. */
			if (!net_admit(d, &d->rxl, d->rx_park_len))
				break;
			d->rx_parked = false;
			memcpy(d->rxbuf, d->rx_park, d->rx_park_len);
			got = d->rx_park_len;
		} else {
			got = read(d->fd, d->rxbuf, sizeof(d->rxbuf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break; /* EAGAIN: nothing more; the chain stays held */
			/* The backend's header: no offloads were enabled on it,
			 * so a checksum-pending or GSO frame is a backend fault. */
			if ((size_t)got < NET_VNET_HDR_LEN + NET_ETH_HLEN || (size_t)got > NET_BUF_MAX ||
			    (d->rxbuf[0] & NET_VNET_F_NEEDS_CSUM) || d->rxbuf[1] != NET_VNET_GSO_NONE) {
				d->ctr.rx_dropped++;
				virtio_stat_add(&d->vdev.stats.errors, 1);
				continue;
			}
			if (d->rxl.limited && !net_admit(d, &d->rxl, (uint32_t)got)) {
				/* Out of tokens: keep this one, read nothing more.
				 * The guest sees a slower link, not a loss. */
				memcpy(d->rx_park, d->rxbuf, (size_t)got);
				d->rx_park_len = (uint32_t)got;
				d->rx_parked = true;
				d->ctr.rx_throttled++;
				virtio_stat_add(&d->vdev.stats.throttled, 1);
				break;
			}
		}
		d->rx_is_reply = false;
		r = rx_start(d, (uint32_t)got);
		if (rx_account(d, r))
			pushed = true;
		if (r == RX_WAIT || r == RX_BROKEN)
			break;
	}
	if (n == VIRTIO_NET_BUDGET)
		kick(d);
out:
	if (pushed)
		virtio_dev_notify(&d->vdev, VIRTIO_NET_QUEUE_RX);
}

/* Copies the readable part of a tx chain into txbuf (at most its size).
 * Returns the chain's full readable length (may exceed what was copied). */
static uint32_t tx_copy(struct net_dev *d, const struct virtq_chain *c)
{
	const struct guest_mem *gm = d->vdev.vqs[VIRTIO_NET_QUEUE_TX].gm;
	uint32_t done = 0;

	for (unsigned int i = 0; i < c->nread && done < sizeof(d->txbuf); i++) {
		uint32_t n = c->seg[i].len;
		const uint8_t *p;

		if (n > sizeof(d->txbuf) - done)
			n = (uint32_t)sizeof(d->txbuf) - done;
		p = gm_ptr(gm, c->seg[i].gpa, n); /* checked by virtq_pop */
		if (!p)
			break;
		memcpy(d->txbuf + done, p, n);
		done += n;
	}
	return c->read_len;
}

/* Counts a denied frame and tells the VM's owner (an event, rate-limited
 * by the VM). f may hold only what the parser got before an error. */
static void tx_denied(struct net_dev *d, const struct net_decision *dec, const struct net_frame *f)
{
	struct minivm_event ev;

	virtio_stat_add(&d->vdev.stats.denied, 1);
	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_POLICY_DENIED;
	if (f->is_ipv4) {
		ev.dst_ip = f->ip.dst;
		ev.ip_proto = f->ip.proto;
		if (f->has_l4 && (f->ip.proto == NET_IPPROTO_TCP || f->ip.proto == NET_IPPROTO_UDP))
			ev.dst_port = f->l4.dport;
	}
	snprintf(ev.reason, sizeof(ev.reason), "%s", net_deny_reason_name(dec->reason));
	snprintf(ev.message, sizeof(ev.message), "%s", d->vdev.name);
	virtio_dev_event(&d->vdev, &ev);
}

/* One guest frame: parse, decide, act. Returns whether an rx buffer was used. */
static bool tx_frame(struct net_dev *d, uint32_t len)
{
	struct net_frame f;
	enum net_pkt_err perr;
	struct net_decision dec;
	char msg[256];
	size_t n = 0;

	/* A chain longer than the largest frame is oversize whatever it holds
	 * (only its start was copied). */
	if (len > sizeof(d->txbuf)) {
		memset(&f, 0, sizeof(f));
		perr = NET_PKT_OVERSIZE;
	} else {
		perr = net_pkt_parse(d->txbuf, len, &f);
	}
	dec = net_policy_decide(d->policy, &d->guest, perr, &f);
	if (net_stats_account(&d->stats, &dec, perr, &f, now_ms(), msg, sizeof(msg)))
		fprintf(stderr, "minivm: %s: %s\n", d->vdev.name, msg);
	switch (dec.verdict) {
	case NET_VERDICT_ALLOW:
		for (;;) {
			ssize_t w = write(d->fd, d->txbuf, len);

			if (w < 0 && errno == EINTR)
				continue;
			if (w == (ssize_t)len) {
				d->ctr.tx_frames++;
				virtio_stat_add(&d->vdev.stats.writes, 1);
				virtio_stat_add(&d->vdev.stats.write_bytes, len - NET_VNET_HDR_LEN);
			} else {
				d->ctr.tx_errors++; /* EAGAIN/ENOBUFS: dropped, as a full NIC queue would */
				virtio_stat_add(&d->vdev.stats.errors, 1);
			}
			break;
		}
		return false;
	case NET_VERDICT_REPLY_ARP:
		n = net_build_arp_reply(d->reply, sizeof(d->reply), &f, d->guest.gw_mac, d->guest.gw);
		break;
	case NET_VERDICT_DENY:
		tx_denied(d, &dec, &f);
		if (dec.answer == NET_ANSWER_TCP_RST)
			n = net_build_tcp_rst(d->reply, sizeof(d->reply), d->txbuf, &f);
		else if (dec.answer == NET_ANSWER_ICMP_UNREACH)
			n = net_build_icmp_port_unreach(d->reply, sizeof(d->reply), d->txbuf, &f);
		break;
	}
	return n && rx_inject(d, n);
}

/* Handles the guest's tx chains, at most VIRTIO_NET_BUDGET per call; with
 * EVENT_IDX the guest does not notify again for chains it already
 * published, so leftovers go to the loop (tx_more + kick). Lock held. */
static void tx_process(struct net_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_NET_QUEUE_TX];
	bool pushed = false, rx_pushed = false;
	unsigned int n;

	if (d->quiesced)
		return; /* tx_more stays: resume comes back for the rest */
	d->tx_more = false;
	for (n = 0; n < VIRTIO_NET_BUDGET; n++) {
		uint32_t len;

		/* A parked chain (refused by the limiter last time) goes first. */
		if (!d->tx_parked) {
			int ret = virtq_pop(vq, &d->tx_chain);

			if (ret < 0) {
				fail(d, vq);
				return;
			}
			if (ret == 0) {
				if (virtq_enable_notify(vq))
					continue;
				break;
			}
		}
		/* Every chain costs tokens before the policy sees it: a denied
		 * frame, an ARP request, a malformed one too. Denials cost the
		 * device as much work as anything else (a copy, a parse, often
		 * a reply on the rx queue), so a guest must not get them for
		 * free. read_len was fixed by virtq_pop, not read again from
		 * guest memory; the frame is copied only once admitted. */
		if (d->txl.limited && !net_admit(d, &d->txl, d->tx_chain.read_len)) {
			/* Out of tokens: keep this chain, pop nothing more. */
			if (!d->tx_parked) {
				d->ctr.tx_throttled++;
				virtio_stat_add(&d->vdev.stats.throttled, 1);
			}
			d->tx_parked = true;
			break;
		}
		d->tx_parked = false;
		len = tx_copy(d, &d->tx_chain);
		if (tx_frame(d, len))
			rx_pushed = true;
		if (d->broken)
			return;
		/* tx buffers are read-only: nothing written back. */
		if (virtq_push(vq, d->tx_chain.head, 0))
			virtio_dev_log(&d->vdev, "%s", vq->error);
		pushed = true;
	}
	if (n == VIRTIO_NET_BUDGET) {
		d->tx_more = true;
		kick(d);
	}
	if (pushed)
		virtio_dev_notify(&d->vdev, VIRTIO_NET_QUEUE_TX);
	if (rx_pushed)
		virtio_dev_notify(&d->vdev, VIRTIO_NET_QUEUE_RX);
}

/* ---- device hooks ---- */

static void net_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct net_dev *d = to_net(dev);

	if (!d->active || d->broken)
		return;
	if (q == VIRTIO_NET_QUEUE_TX)
		tx_process(d);
	else if (q == VIRTIO_NET_QUEUE_RX)
		rx_pump(d); /* new buffers: frames may be waiting in the backend */
}

static void net_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len)
{
	/* The transport checked off + len <= config_size. */
	memcpy(data, to_net(dev)->config + off, len);
}

static void net_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len)
{
	/* Read-only for a VERSION_1 driver (the MAC is writable only through
	 * the control queue, which is not offered). */
}

static int net_activate(struct virtio_dev *dev)
{
	struct net_dev *d = to_net(dev);

	d->active = true;
	d->broken = false;
	d->rx_held = false;
	d->rx_pending = false;
	d->tx_more = false;
	d->tx_parked = false;
	d->mrg = dev->acked & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	/* activate runs on a vCPU thread (the driver's status write), whose
	 * seccomp filter has no timerfd_settime (vmm/jail.c): a limited rx,
	 * which may arm its timer, starts on the event loop instead. Queue
	 * notifications reach the device from the loop (ioeventfds). */
	if (d->rxl.limited)
		kick(d);
	else
		rx_pump(d);
	return 0;
}

static void net_reset(struct virtio_dev *dev)
{
	struct net_dev *d = to_net(dev);

	/* The transport forgets the rings; held chains and a frame half
	 * delivered die with them. */
	d->active = false;
	d->broken = false;
	d->rx_held = false;
	d->rx_pending = false;
	d->tx_more = false;
	/* A parked tx chain is gone with the rings; a parked rx frame is the
	 * backend's and waits for the next activation. The buckets stay. */
	d->tx_parked = false;
}

static void net_destroy(struct virtio_dev *dev)
{
	struct net_dev *d = to_net(dev);

	rl_timer_close(&d->rxl.timer);
	rl_timer_close(&d->txl.timer);
	if (d->watch_fd)
		evl_del_fd(d->evl, d->fd);
	if (d->watch_kick)
		evl_del_fd(d->evl, d->kick_fd);
	if (d->fd >= 0)
		close(d->fd);
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	free(d->policy);
	free(d);
}

/* Snapshot: chains popped and not used go back to the rings, newest first
 * (the held rx chain, then the chains of a frame half delivered, which is
 * dropped; a parked tx chain is popped again after resume and pays then). */
static void net_quiesce(struct virtio_dev *dev, bool on)
{
	struct net_dev *d = to_net(dev);
	struct virtq *rx = &dev->vqs[VIRTIO_NET_QUEUE_RX], *tx = &dev->vqs[VIRTIO_NET_QUEUE_TX];

	d->quiesced = on;
	if (!on) {
		kick(d); /* the loop reads what the backend holds (its poll fires on new frames only) */
		return;
	}
	if (d->rx_held && virtq_unpop(rx, d->rx_chain.head))
		virtio_dev_log(dev, "held rx chain: %s", rx->error);
	d->rx_held = false;
	if (d->rx_pending) {
		for (uint16_t i = d->rx_nbufs; i > 0; i--)
			if (virtq_unpop(rx, d->rx_heads[i - 1]))
				virtio_dev_log(dev, "rx chain of a partial frame: %s", rx->error);
		d->rx_pending = false;
		d->rx_nbufs = 0;
		if (d->rx_is_reply)
			d->ctr.replies_dropped++;
		else
			d->ctr.rx_dropped++;
	}
	if (d->tx_parked && virtq_unpop(tx, d->tx_chain.head))
		virtio_dev_log(dev, "parked tx chain: %s", tx->error);
	d->tx_parked = false;
}

#define NET_SNAP_VERSION 1u

/* The guest's addresses: its interface holds them across the snapshot. */
static int net_save(struct virtio_dev *dev, struct snap_writer *w)
{
	struct net_dev *d = to_net(dev);
	int r;

	r = snap_put_u32(w, NET_SNAP_VERSION);
	r = r ? r : snap_put(w, d->guest.mac, NET_ETH_ALEN);
	r = r ? r : snap_put_u32(w, d->guest.ip);
	r = r ? r : snap_put_u32(w, d->guest.prefix);
	r = r ? r : snap_put_u32(w, d->guest.gw);
	r = r ? r : snap_put_u32(w, d->guest.dns);
	return r;
}

static int net_restore(struct virtio_dev *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	static const uint8_t zero[NET_ETH_ALEN];
	struct net_dev *d = to_net(dev);
	uint32_t version, ip, prefix, gw, dns;
	uint8_t mac[NET_ETH_ALEN];
	char a[16], b[16];
	int r;

	r = snap_get_u32(c, &version);
	r = r ? r : snap_get(c, mac, sizeof(mac));
	r = r ? r : snap_get_u32(c, &ip);
	r = r ? r : snap_get_u32(c, &prefix);
	r = r ? r : snap_get_u32(c, &gw);
	r = r ? r : snap_get_u32(c, &dns);
	if (r) {
		snprintf(err, errlen, "NIC state truncated");
		return -EBADMSG;
	}
	if (version != NET_SNAP_VERSION) {
		snprintf(err, errlen, "NIC state version %u, this minivm reads %u", version, NET_SNAP_VERSION);
		return -EINVAL;
	}
	if ((mac[0] & 1) || !memcmp(mac, zero, NET_ETH_ALEN)) {
		snprintf(err, errlen, "the snapshot's MAC address is not unicast");
		return -EINVAL;
	}
	if (ip != d->guest.ip || prefix != d->guest.prefix || gw != d->guest.gw || dns != d->guest.dns) {
		net_ip_str(ip, a);
		net_ip_str(d->guest.ip, b);
		snprintf(err, errlen,
			 "the snapshot's guest network (%s/%u) differs from this VM's (%s/%u, or its gateway "
			 "or resolver): restore with the same --net addresses", a, prefix, b, d->guest.prefix);
		return -EINVAL;
	}
	/* The guest's driver read the MAC at probe time and keeps it: the
	 * device takes the snapshot's, whatever this VM was given. */
	memcpy(d->guest.mac, mac, NET_ETH_ALEN);
	memcpy(d->config, mac, NET_ETH_ALEN);
	return 0;
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.destroy = net_destroy,
	.quiesce = net_quiesce,
	.save = net_save,
	.restore = net_restore,
};

static void serve(struct net_dev *d)
{
	uint64_t v;

	if (read(d->kick_fd, &v, sizeof(v)) < 0) {
		/* nothing deferred */
	}
	virtio_dev_lock(&d->vdev);
	if (d->active && !d->broken) {
		/* A parked chain is the timer's to resume; trying it here too
		 * costs one refusal at most (rl_gate keeps the timer as is). */
		if (d->tx_more || d->tx_parked)
			tx_process(d);
		rx_pump(d);
	}
	virtio_dev_unlock(&d->vdev);
}

static void net_loop_cb(void *opaque, int fd, uint32_t revents)
{
	serve(opaque);
}

void virtio_net_poll(struct virtio_dev *dev)
{
	serve(to_net(dev));
}

/* A limiter's timer fired: tokens are back for the parked frame. */
static void net_rx_timer(void *opaque, int fd, uint32_t revents)
{
	struct net_dev *d = opaque;

	(void)fd;
	(void)revents;
	virtio_dev_lock(&d->vdev);
	rl_timer_fired(&d->rxl.timer);
	rx_pump(d); /* checks active and broken */
	virtio_dev_unlock(&d->vdev);
}

static void net_tx_timer(void *opaque, int fd, uint32_t revents)
{
	struct net_dev *d = opaque;

	(void)fd;
	(void)revents;
	virtio_dev_lock(&d->vdev);
	rl_timer_fired(&d->txl.timer);
	if (d->active && !d->broken)
		tx_process(d);
	virtio_dev_unlock(&d->vdev);
}

/* Sets one direction up from cfg (NULL: no limit). */
static int net_limit_set(struct net_dev *d, struct net_limit *l, const struct rl_config *cfg,
			 void (*cb)(void *opaque, int fd, uint32_t revents), const char *what, char *err,
			 size_t errlen)
{
	int r;

	if (!cfg)
		return 0;
	r = rl_init(&l->rl, cfg, rl_now_ns());
	if (r) {
		snprintf(err, errlen, "net: %s rate limit out of bounds", what);
		return r;
	}
	if (!rl_enabled(&l->rl))
		return 0; /* nothing limited: the data path stays as it was */
	r = rl_timer_open(&l->timer, d->evl, cb, d);
	if (r) {
		snprintf(err, errlen, "net: the %s rate limiter's timer: %s", what, strerror(-r));
		return r;
	}
	l->limited = true;
	return 0;
}

int virtio_net_set_rate_limit(struct virtio_dev *dev, const struct rl_config *rx, const struct rl_config *tx,
			      char *err, size_t errlen)
{
	struct net_dev *d = to_net(dev);
	int r;

	if (d->rxl.limited || d->txl.limited) {
		snprintf(err, errlen, "net: rate limit already set");
		return -EALREADY;
	}
	if (!d->evl && (rx || tx)) {
		snprintf(err, errlen, "net: a rate limit needs the device's event loop");
		return -EINVAL;
	}
	r = net_limit_set(d, &d->rxl, rx, net_rx_timer, "rx", err, errlen);
	if (!r)
		r = net_limit_set(d, &d->txl, tx, net_tx_timer, "tx", err, errlen);
	if (r) {
		/* All or nothing. */
		rl_timer_close(&d->rxl.timer);
		d->rxl.limited = false;
	}
	return r;
}

void virtio_net_get_stats(struct virtio_dev *dev, struct net_stats *policy, struct virtio_net_counters *c)
{
	struct net_dev *d = to_net(dev);

	virtio_dev_lock(dev);
	if (policy)
		*policy = d->stats;
	if (c)
		*c = d->ctr;
	virtio_dev_unlock(dev);
}

int net_tap_open(const char *name, uint8_t host_mac[NET_ETH_ALEN], char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, sock, hdr = NET_VNET_HDR_LEN, ret;

	if (!name || !*name || strlen(name) >= IFNAMSIZ || strchr(name, '/')) {
		snprintf(err, errlen, "net: bad TAP device name '%s' (1 to %d characters)", name ? name : "",
			 IFNAMSIZ - 1);
		return -EINVAL;
	}
	/* TUNSETIFF would create a missing device (with CAP_NET_ADMIN): the
	 * user's set-up must exist, so look first. */
	if (!if_nametoindex(name)) {
		snprintf(err, errlen, "net: no network device %s (create it first, e.g. ip tuntap add dev %s mode tap)",
			 name, name);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "net: /dev/net/tun: %s", strerror(-ret));
		return ret;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		snprintf(err, errlen, "net: cannot attach to TAP %s: %s%s", name, strerror(-ret),
			 ret == -EBUSY   ? " (another process has it open)"
			 : ret == -EINVAL ? " (is it a TUN or multi-queue device? a single-queue TAP is needed)"
			 : ret == -EPERM  ? " (no permission: the TAP's owner/group, or CAP_NET_ADMIN)"
					  : "");
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "net: TAP %s: cannot set its virtio-net header/offloads: %s", name,
			 strerror(-ret));
		goto fail;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (sock < 0 || ioctl(sock, SIOCGIFHWADDR, &ifr) < 0) {
		ret = -errno;
		snprintf(err, errlen, "net: TAP %s: cannot read its MAC address: %s", name, strerror(-ret));
		if (sock >= 0)
			close(sock);
		goto fail;
	}
	close(sock);
	memcpy(host_mac, ifr.ifr_hwaddr.sa_data, NET_ETH_ALEN);
	return fd;
fail:
	close(fd);
	return ret;
}

struct virtio_dev *virtio_net_create(int fd, const struct net_guest *guest, const struct net_policy *policy,
				     struct evl *evl, char *err, size_t errlen)
{
	static const uint8_t zero[NET_ETH_ALEN];
	struct net_dev *d;
	int r;

	if (fd < 0) {
		snprintf(err, errlen, "net: no backend");
		return NULL;
	}
	if ((guest->mac[0] & 1) || !memcmp(guest->mac, zero, NET_ETH_ALEN) || (guest->gw_mac[0] & 1) ||
	    !memcmp(guest->gw_mac, zero, NET_ETH_ALEN) || guest->prefix > 32 || !guest->ip || !guest->gw) {
		snprintf(err, errlen,
			 "net: the guest needs unicast MACs (its own and the gateway's), an IPv4 address, a gateway "
			 "and a prefix of 0..32");
		close(fd);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "net: out of memory");
		close(fd);
		return NULL;
	}
	d->fd = fd;
	d->kick_fd = -1;
	d->rxl.timer.fd = d->txl.timer.fd = -1;
	/* Hooks run on vCPU threads: a backend write must never block one. */
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "net: backend fd: %s", strerror(errno));
		goto fail;
	}
	d->evl = evl;
	d->guest = *guest;
	d->policy = malloc(sizeof(*d->policy));
	if (!d->policy) {
		snprintf(err, errlen, "net: out of memory");
		goto fail;
	}
	*d->policy = *policy;
	d->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->kick_fd < 0) {
		snprintf(err, errlen, "net: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (evl) {
		r = evl_add_fd(evl, d->fd, net_loop_cb, d);
		if (!r) {
			d->watch_fd = true;
			r = evl_add_fd(evl, d->kick_fd, net_loop_cb, d);
			d->watch_kick = !r;
		}
		if (r) {
			snprintf(err, errlen, "net: cannot watch its backend: %s", strerror(-r));
			goto fail;
		}
	}
	/* virtio_net_config: mac, status (unused without F_STATUS),
	 * max_virtqueue_pairs (unused without F_MQ), mtu; little-endian. */
	memcpy(d->config, guest->mac, NET_ETH_ALEN);
	d->config[10] = (uint8_t)(NET_MTU & 0xff);
	d->config[11] = (uint8_t)(NET_MTU >> 8);
	d->vdev.ops = &net_ops;
	d->vdev.name = "virtio-net";
	d->vdev.device_id = VIRTIO_ID_NET;
	/* No checksum/GSO offloads: the policy must see every frame whole and
	 * final. VIRTIO_NET_F_MTU keeps the guest at 1500. Mergeable rx
	 * buffers let the guest post page fragments of any size. */
	d->vdev.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
			   VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	d->vdev.config_size = VIRTIO_NET_CONFIG_SIZE;
	d->vdev.num_queues = 2;
	d->vdev.queue_max = VIRTIO_NET_QUEUE_SIZE;
	return &d->vdev;
fail:
	net_destroy(&d->vdev);
	return NULL;
}
