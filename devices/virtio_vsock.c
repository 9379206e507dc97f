/* virtio-vsock: guest stream sockets carried to host Unix sockets (Firecracker's hybrid form), with bounded buffers and credit. */
#include "devices/virtio_vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_spec.h"
#include "devices/vsock_pkt.h"
#include "vmm/evl.h"
#include "vmm/snap.h"

/*
 * Design. Every host socket (the listener, each connection, a timerfd) sits
 * in one epoll set of the device's own, and only that epoll fd (plus an
 * eventfd to resume deferred work) is watched by the event loop: the loop's
 * registered-file table is small (EVL_MAX_FILES) and a guest may open a
 * thousand connections. Firecracker's muxer nests its epoll the same way.
 * The epoll set is level-triggered; every handler either consumes the
 * readiness or drops the event from the fd's interest mask, and the handler
 * loop runs epoll_wait until it comes back empty, so the loop's poll on the
 * epoll fd (woken only by new readiness) never misses work.
 *
 * Everything runs under the transport lock: queue hooks (vCPU or loop
 * thread) and the epoll callback (loop thread, virtio_dev_lock()). Socket
 * calls are all non-blocking.
 *
 * Guest -> host: a tx packet's payload is written to the host socket
 * straight from guest memory; what the socket does not take is copied into
 * the connection's buffer (at most buf_alloc, guaranteed by the credit
 * check). Host -> guest: the socket is read straight into the guest's rx
 * buffer, only when one is available and the guest has credit; one rx chain
 * may be held popped-but-unused until something is ready to go out.
 * Control packets go out through per-connection pending bits (bounded by the
 * number of connections) and a fixed ring of RSTs (when full, an RST is
 * dropped: the guest's own timeouts recover).
 */

#define TOK_LISTEN 1u
#define TOK_TIMER 2u
#define TOK_CONN_BASE 16u

#define VSOCK_HASH_SIZE 1024u /* power of 2 */
#define VSOCK_RST_RING 128u
#define VSOCK_EPOLL_BATCH 64
#define VSOCK_EPOLL_ROUNDS 32
#define VSOCK_ACCEPT_BATCH 16
#define VSOCK_PUMP_BUDGET 512 /* rx packets per pump call before deferring */
#define VSOCK_TX_BUDGET 1024  /* tx chains per notify before deferring */
#define VSOCK_TICK_MS 200
#define VSOCK_BUF_MIN (16u << 10)

#define PEND_REQUEST 1u
#define PEND_RESPONSE 2u
#define PEND_CREDIT 4u
#define PEND_SHUTDOWN 8u

#define SHUT_BOTH (VIRTIO_VSOCK_SHUTDOWN_F_RCV | VIRTIO_VSOCK_SHUTDOWN_F_SEND)

struct vsock_buf {
	uint8_t *data;
	uint32_t cap, head, len;
};

struct vsock_conn {
	unsigned int idx;
	uint32_t gen;
	int fd;
	enum vsock_state st;
	bool line_phase; /* a host client still writing its CONNECT line */
	bool hashed;     /* reachable by (host_port, guest_port) */
	bool draining;   /* the guest side is gone; flushing buffered bytes */
	uint32_t host_port, guest_port;
	struct vsock_credit cr;
	unsigned int pend;  /* PEND_* */
	uint32_t shut_sent; /* SHUTDOWN flags told (or to tell) the guest */
	uint32_t shut_pend; /* flags not yet sent */
	uint32_t peer_shut; /* the guest's SHUTDOWN flags */
	bool rx_try;        /* the host socket may have bytes for the guest */
	bool host_eof;      /* the host sends no more (read gave 0) */
	bool host_wr_dead;  /* the host takes no more bytes */
	bool wr_shut_done;  /* shutdown(SHUT_WR) done */
	bool hup;           /* out of the epoll set for good */
	bool in_epoll;
	uint32_t ev_mask;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
	char line[VSOCK_CONNECT_LINE_MAX];
	unsigned int line_len;
	char ok[24]; /* "OK <hostport>\n" still to write */
	unsigned int ok_len, ok_off;
	struct vsock_buf buf; /* guest -> host bytes the socket did not take yet */
	struct vsock_conn *hnext;
	struct vsock_conn *rx_prev, *rx_next;
	bool in_rxq;
};

struct vsock_rst {
	uint32_t host_port, guest_port;
};

struct vsock_dev {
	struct virtio_dev vdev; /* first */
	struct evl *evl;
	char *uds_path;
	dev_t sock_dev;
	ino_t sock_ino;
	uint64_t guest_cid;
	int listen_fd, epfd, timer_fd, kick_fd;
	bool watch_ep, watch_kick;

	/* Under the transport lock. */
	bool active, broken;
	bool quiesced; /* snapshot: no queue, no host socket served */
	struct vsock_conn *conns[VIRTIO_VSOCK_MAX_CONNS];
	unsigned int nconns;
	uint32_t gen;
	struct vsock_conn *hash[VSOCK_HASH_SIZE];
	struct vsock_conn *rxq_head, *rxq_tail;
	struct vsock_rst rst[VSOCK_RST_RING];
	unsigned int rst_head, rst_len;
	uint64_t buffered;
	uint32_t next_host_port;
	bool timer_armed;
	bool event_pending;
	bool tx_more; /* the tx budget ran out with chains left: the loop resumes */
	bool rx_held; /* rx_chain was popped and is not used yet */
	struct virtq_chain rx_chain;
	struct virtq_chain tx_chain;
	struct virtq_chain ev_chain;
};

static struct vsock_dev *to_vsock(struct virtio_dev *dev)
{
	return (struct vsock_dev *)dev;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void kick(struct vsock_dev *d)
{
	uint64_t one = 1;

	if (d->kick_fd >= 0 && write(d->kick_fd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the loop */
	}
}

/* ---- descriptor chains: the readable/writable parts as byte streams ---- */

/* iovecs over the chain's readable (writable == false) or writable part,
 * from byte `off`, at most `len` bytes. Segments were checked by virtq_pop. */
static unsigned int chain_iov(const struct guest_mem *gm, const struct virtq_chain *c, bool writable,
			      uint32_t off, uint32_t len, struct iovec *iov, uint32_t *got)
{
	unsigned int first = writable ? c->nread : 0, end = writable ? c->nseg : c->nread, n = 0;

	*got = 0;
	for (unsigned int i = first; i < end && len; i++) {
		uint32_t sl = c->seg[i].len, take;
		uint8_t *p;

		if (off >= sl) {
			off -= sl;
			continue;
		}
		take = sl - off < len ? sl - off : len;
		p = gm_ptr(gm, c->seg[i].gpa + off, take);
		if (!p)
			break;
		iov[n].iov_base = p;
		iov[n].iov_len = take;
		n++;
		*got += take;
		len -= take;
		off = 0;
	}
	return n;
}

static void iov_copy_out(const struct iovec *iov, unsigned int n, void *dst)
{
	uint8_t *d = dst;

	for (unsigned int i = 0; i < n; i++) {
		memcpy(d, iov[i].iov_base, iov[i].iov_len);
		d += iov[i].iov_len;
	}
}

static void iov_copy_in(const struct iovec *iov, unsigned int n, const void *src)
{
	const uint8_t *s = src;

	for (unsigned int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, s, iov[i].iov_len);
		s += iov[i].iov_len;
	}
}

/* ---- connections: table, hash, rx work list, epoll interest ---- */

static unsigned int hash_of(uint32_t host_port, uint32_t guest_port)
{
	return ((host_port * 2654435761u) ^ (guest_port * 40503u)) & (VSOCK_HASH_SIZE - 1);
}

static struct vsock_conn *conn_lookup(struct vsock_dev *d, uint32_t host_port, uint32_t guest_port)
{
	for (struct vsock_conn *c = d->hash[hash_of(host_port, guest_port)]; c; c = c->hnext)
		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	return NULL;
}

static void conn_hash(struct vsock_dev *d, struct vsock_conn *c)
{
	unsigned int h = hash_of(c->host_port, c->guest_port);

	c->hnext = d->hash[h];
	d->hash[h] = c;
	c->hashed = true;
}

static void conn_unhash(struct vsock_dev *d, struct vsock_conn *c)
{
	struct vsock_conn **pp;

	if (!c->hashed)
		return;
	for (pp = &d->hash[hash_of(c->host_port, c->guest_port)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	c->hashed = false;
	c->hnext = NULL;
}

static void rxq_add(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->in_rxq)
		return;
	c->rx_next = NULL;
	c->rx_prev = d->rxq_tail;
	if (d->rxq_tail)
		d->rxq_tail->rx_next = c;
	else
		d->rxq_head = c;
	d->rxq_tail = c;
	c->in_rxq = true;
}

static void rxq_del(struct vsock_dev *d, struct vsock_conn *c)
{
	if (!c->in_rxq)
		return;
	if (c->rx_prev)
		c->rx_prev->rx_next = c->rx_next;
	else
		d->rxq_head = c->rx_next;
	if (c->rx_next)
		c->rx_next->rx_prev = c->rx_prev;
	else
		d->rxq_tail = c->rx_prev;
	c->rx_prev = c->rx_next = NULL;
	c->in_rxq = false;
}

static uint64_t conn_token(const struct vsock_conn *c)
{
	return (uint64_t)c->gen << 32 | (c->idx + TOK_CONN_BASE);
}

static void ep_del(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->in_epoll)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_epoll = false;
	c->ev_mask = 0;
}

static void buf_release(struct vsock_dev *d, struct vsock_buf *b)
{
	d->buffered -= b->cap;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static struct vsock_conn *conn_alloc(struct vsock_dev *d, int fd)
{
	struct vsock_conn *c;
	unsigned int i;

	if (d->nconns >= VIRTIO_VSOCK_MAX_CONNS)
		return NULL;
	for (i = 0; i < VIRTIO_VSOCK_MAX_CONNS && d->conns[i]; i++)
		;
	if (i == VIRTIO_VSOCK_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->idx = i;
	c->gen = ++d->gen ? d->gen : ++d->gen; /* never 0 */
	c->fd = fd;
	d->conns[i] = c;
	d->nconns++;
	return c;
}

static void conn_free(struct vsock_dev *d, struct vsock_conn *c)
{
	ep_del(d, c);
	if (c->fd >= 0)
		close(c->fd);
	conn_unhash(d, c);
	rxq_del(d, c);
	buf_release(d, &c->buf);
	d->conns[c->idx] = NULL;
	d->nconns--;
	free(c);
}

static void push_rst(struct vsock_dev *d, uint32_t host_port, uint32_t guest_port)
{
	if (d->rst_len == VSOCK_RST_RING) {
		virtio_dev_log(&d->vdev, "control queue full: RST to port %u dropped", guest_port);
		return;
	}
	d->rst[(d->rst_head + d->rst_len) % VSOCK_RST_RING] =
		(struct vsock_rst){ .host_port = host_port, .guest_port = guest_port };
	d->rst_len++;
}

static void set_deadline(struct vsock_dev *d, struct vsock_conn *c, unsigned int ms)
{
	c->deadline_ns = now_ns() + (uint64_t)ms * 1000000ULL;
	if (!d->timer_armed) {
		struct itimerspec its = {
			.it_interval = { .tv_sec = 0, .tv_nsec = VSOCK_TICK_MS * 1000000L },
			.it_value = { .tv_sec = 0, .tv_nsec = VSOCK_TICK_MS * 1000000L },
		};

		if (timerfd_settime(d->timer_fd, 0, &its, NULL) == 0)
			d->timer_armed = true;
	}
}

/* Resets an established or connecting connection: RST to the guest, gone. */
static void conn_reset(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->hashed && !(c->pend & PEND_REQUEST))
		push_rst(d, c->host_port, c->guest_port);
	conn_free(d, c);
}

static bool can_read(const struct vsock_conn *c)
{
	return c->st == VSOCK_ST_ESTABLISHED && !c->draining && !c->host_eof &&
	       !(c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_F_RCV);
}

static bool has_out(const struct vsock_conn *c)
{
	return c->ok_off < c->ok_len || c->buf.len;
}

static bool has_rx_work(const struct vsock_conn *c)
{
	if (c->draining)
		return false;
	return c->pend || (c->rx_try && can_read(c) && vsock_credit_peer_avail(&c->cr) > 0);
}

static void update_interest(struct vsock_dev *d, struct vsock_conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (c->hup || c->fd < 0)
		return;
	if (c->line_phase)
		want = EPOLLIN;
	else if (can_read(c) && !c->rx_try && vsock_credit_peer_avail(&c->cr) > 0)
		want = EPOLLIN;
	if (has_out(c) && !c->host_wr_dead)
		want |= EPOLLOUT;
	if (c->in_epoll && want == c->ev_mask)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.u64 = conn_token(c);
	if (epoll_ctl(d->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) == 0) {
		c->in_epoll = true;
		c->ev_mask = want;
	}
}

/* Writes what the host socket takes: the OK line, then buffered bytes. */
static void conn_flush(struct vsock_dev *d, struct vsock_conn *c)
{
	while (!c->host_wr_dead && c->ok_off < c->ok_len) {
		ssize_t n = send(c->fd, c->ok + c->ok_off, c->ok_len - c->ok_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->host_wr_dead = true;
			break;
		}
		c->ok_off += (unsigned int)n;
	}
	while (!c->host_wr_dead && c->buf.len) {
		struct vsock_buf *b = &c->buf;
		struct iovec iov[2];
		struct msghdr msg;
		uint32_t first = b->cap - b->head < b->len ? b->cap - b->head : b->len;
		ssize_t n;

		iov[0].iov_base = b->data + b->head;
		iov[0].iov_len = first;
		iov[1].iov_base = b->data;
		iov[1].iov_len = b->len - first;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = b->len > first ? 2 : 1;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->host_wr_dead = true;
			break;
		}
		b->head = (uint32_t)((b->head + (uint32_t)n) % b->cap);
		b->len -= (uint32_t)n;
		vsock_credit_on_consumed(&c->cr, (uint32_t)n);
		if (!b->len)
			buf_release(d, b);
	}
	if (c->host_wr_dead && c->buf.len) {
		/* Nobody will read these: count them consumed so credit flows;
		 * the guest hears SHUTDOWN(RCV) and stops sending. */
		vsock_credit_on_consumed(&c->cr, c->buf.len);
		buf_release(d, &c->buf);
	}
}

/* Appends n bytes from iov (skipping the first `skip`) to the connection's
 * buffer. -ENOBUFS when the global bound would be crossed. */
static int buf_append(struct vsock_dev *d, struct vsock_conn *c, const struct iovec *iov,
		      unsigned int niov, uint32_t skip, uint32_t n)
{
	struct vsock_buf *b = &c->buf;
	uint32_t need;

	if (__builtin_add_overflow(b->len, n, &need) || need > c->cr.buf_alloc)
		return -ENOBUFS; /* cannot happen: the credit check bounds it */
	if (need > b->cap) {
		uint32_t cap = b->cap ? b->cap : VSOCK_BUF_MIN;
		uint8_t *nd;

		while (cap < need)
			cap *= 2;
		if (cap > c->cr.buf_alloc)
			cap = c->cr.buf_alloc;
		if (d->buffered - b->cap + cap > VIRTIO_VSOCK_MAX_BUFFERED)
			return -ENOBUFS;
		nd = malloc(cap);
		if (!nd)
			return -ENOBUFS;
		if (b->len) {
			uint32_t first = b->cap - b->head < b->len ? b->cap - b->head : b->len;

			memcpy(nd, b->data + b->head, first);
			memcpy(nd + first, b->data, b->len - first);
		}
		free(b->data);
		d->buffered = d->buffered - b->cap + cap;
		b->data = nd;
		b->cap = cap;
		b->head = 0;
	}
	for (unsigned int i = 0; i < niov && n; i++) {
		const uint8_t *p = iov[i].iov_base;
		uint32_t l = (uint32_t)iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		p += skip;
		l -= skip;
		skip = 0;
		if (l > n)
			l = n;
		n -= l;
		while (l) {
			uint32_t tail = (b->head + b->len) % b->cap;
			uint32_t room = b->cap - tail < l ? b->cap - tail : l;

			memcpy(b->data + tail, p, room);
			b->len += room;
			p += room;
			l -= room;
		}
	}
	return 0;
}

/*
 * After any change to c: closes what is finished, then brings the epoll
 * interest and the rx work list up to date. Returns false when c was freed.
 */
static bool conn_refresh(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->draining) {
		if (!has_out(c) || c->host_wr_dead) {
			if (!c->host_wr_dead)
				shutdown(c->fd, SHUT_WR);
			conn_free(d, c);
			return false;
		}
	} else if (c->st == VSOCK_ST_ESTABLISHED || c->st == VSOCK_ST_CLOSING) {
		/* The guest closed both ways: it wants our RST (Linux waits up
		 * to 8 s for it). Bytes still buffered go to the host first. */
		if ((c->peer_shut & SHUT_BOTH) == SHUT_BOTH) {
			push_rst(d, c->host_port, c->guest_port);
			conn_unhash(d, c);
			rxq_del(d, c);
			c->pend = 0;
			if (!has_out(c) || c->host_wr_dead) {
				if (!c->host_wr_dead)
					shutdown(c->fd, SHUT_WR);
				conn_free(d, c);
				return false;
			}
			c->draining = true;
			set_deadline(d, c, VIRTIO_VSOCK_DRAIN_TIMEOUT_MS);
		} else {
			/* The guest will send no more: pass the half-close on
			 * once its bytes are out. */
			if ((c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_F_SEND) && !c->wr_shut_done &&
			    !has_out(c) && !c->host_wr_dead) {
				shutdown(c->fd, SHUT_WR);
				c->wr_shut_done = true;
			}
			/* The host consumed enough that the guest should hear. */
			if (c->st == VSOCK_ST_ESTABLISHED && vsock_credit_update_due(&c->cr))
				c->pend |= PEND_CREDIT;
			/* The host side became unable to receive, or sends no
			 * more: tell the guest. */
			if (c->host_wr_dead && !((c->shut_sent | c->shut_pend) & VIRTIO_VSOCK_SHUTDOWN_F_RCV)) {
				c->shut_pend |= VIRTIO_VSOCK_SHUTDOWN_F_RCV;
				c->pend |= PEND_SHUTDOWN;
			}
			if (c->host_eof && !((c->shut_sent | c->shut_pend) & VIRTIO_VSOCK_SHUTDOWN_F_SEND)) {
				c->shut_pend |= VIRTIO_VSOCK_SHUTDOWN_F_SEND;
				c->pend |= PEND_SHUTDOWN;
			}
		}
	}
	update_interest(d, c);
	if (has_rx_work(c))
		rxq_add(d, c);
	else
		rxq_del(d, c);
	return true;
}

/* ---- guest -> host ---- */

static void conn_rx_data(struct vsock_dev *d, struct vsock_conn *c, const struct vsock_hdr *h,
			 const struct virtq_chain *chain)
{
	const struct guest_mem *gm = d->vdev.vqs[VIRTIO_VSOCK_QUEUE_TX].gm;
	struct iovec iov[VIRTQ_MAX_SIZE];
	unsigned int niov;
	uint32_t got, done = 0;

	if (!vsock_credit_rx_ok(&c->cr, h->len)) {
		virtio_dev_log(&d->vdev, "guest port %u sent %u bytes beyond its credit; reset",
			       c->guest_port, h->len);
		conn_reset(d, c);
		return;
	}
	vsock_credit_on_rx(&c->cr, h->len);
	if (!h->len)
		goto out;
	niov = chain_iov(gm, chain, false, VSOCK_HDR_SIZE, h->len, iov, &got);
	if (got != h->len) { /* checked by the caller; the ring did not change */
		conn_reset(d, c);
		return;
	}
	if (c->host_wr_dead || c->wr_shut_done) {
		/* Nobody reads them (or the guest said it would not send). */
		vsock_credit_on_consumed(&c->cr, h->len);
		goto out;
	}
	if (!has_out(c)) {
		struct msghdr msg;
		ssize_t n;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = niov;
		do
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			done = (uint32_t)n;
			vsock_credit_on_consumed(&c->cr, done);
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			c->host_wr_dead = true;
			vsock_credit_on_consumed(&c->cr, h->len);
			goto out;
		}
	}
	if (done < h->len && buf_append(d, c, iov, niov, done, h->len - done)) {
		virtio_dev_log(&d->vdev, "host-side buffers full (%u bytes); guest port %u reset",
			       VIRTIO_VSOCK_MAX_BUFFERED, c->guest_port);
		conn_reset(d, c);
		return;
	}
out:
	conn_refresh(d, c);
}

/* A guest REQUEST to host port P: connect to "<uds>_<P>". */
static void guest_connect(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct sockaddr_un sa;
	struct vsock_conn *c;
	int fd;

	if (d->nconns >= VIRTIO_VSOCK_MAX_CONNS) {
		virtio_dev_log(&d->vdev, "too many connections (%u); REQUEST refused",
			       VIRTIO_VSOCK_MAX_CONNS);
		push_rst(d, h->dst_port, h->src_port);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* Fits: checked at creation with room for "_4294967295". */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", d->uds_path, h->dst_port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		push_rst(d, h->dst_port, h->src_port);
		return;
	}
	/* A Unix stream connect completes at once or fails (EAGAIN when the
	 * listener's backlog is full: refused too; the guest may retry). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		push_rst(d, h->dst_port, h->src_port);
		return;
	}
	c = conn_alloc(d, fd);
	if (!c) {
		close(fd);
		push_rst(d, h->dst_port, h->src_port);
		return;
	}
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->st = VSOCK_ST_ESTABLISHED;
	vsock_credit_init(&c->cr, VIRTIO_VSOCK_BUF_ALLOC, h->buf_alloc, h->fwd_cnt);
	c->pend = PEND_RESPONSE;
	conn_hash(d, c);
	conn_refresh(d, c);
}

static void handle_tx(struct vsock_dev *d, const struct virtq_chain *chain)
{
	const struct guest_mem *gm = d->vdev.vqs[VIRTIO_VSOCK_QUEUE_TX].gm;
	uint8_t raw[VSOCK_HDR_SIZE];
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct vsock_hdr h;
	struct vsock_conn *c;
	enum vsock_action act;
	const char *why;
	uint32_t got;
	unsigned int niov;
	int r;

	if (chain->read_len < VSOCK_HDR_SIZE) {
		virtio_dev_log(&d->vdev, "tx packet of %u bytes, shorter than a header; dropped",
			       chain->read_len);
		virtio_stat_add(&d->vdev.stats.errors, 1);
		return;
	}
	niov = chain_iov(gm, chain, false, 0, VSOCK_HDR_SIZE, iov, &got);
	if (got != VSOCK_HDR_SIZE)
		return;
	iov_copy_out(iov, niov, raw); /* the one copy of the header */
	r = vsock_hdr_parse(raw, d->guest_cid, &h, &why);
	if (r == -EADDRNOTAVAIL) {
		virtio_dev_log(&d->vdev, "%s packet dropped: %s", vsock_op_name(h.op), why);
		virtio_stat_add(&d->vdev.stats.errors, 1);
		return;
	}
	if (r == 0 && h.len > chain->read_len - VSOCK_HDR_SIZE) {
		r = -EINVAL;
		why = "len exceeds the buffer";
	}
	c = conn_lookup(d, h.dst_port, h.src_port);
	if (r) {
		virtio_dev_log(&d->vdev, "bad %s packet from guest port %u: %s", vsock_op_name(h.op),
			       h.src_port, why);
		virtio_stat_add(&d->vdev.stats.errors, 1);
		if (h.op == VIRTIO_VSOCK_OP_RST)
			return; /* never answer an RST */
		if (c)
			conn_reset(d, c);
		else
			push_rst(d, h.dst_port, h.src_port);
		return;
	}
	virtio_stat_add(&d->vdev.stats.writes, 1);
	virtio_stat_add(&d->vdev.stats.write_bytes, h.len);
	act = vsock_conn_action(c ? c->st : VSOCK_ST_NONE, h.op);
	/* Every header carries the guest's credit (5.10.6.3); conn_refresh
	 * below resumes a sender that was blocked on it. */
	if (c)
		(void)vsock_credit_peer_update(&c->cr, h.buf_alloc, h.fwd_cnt);
	switch (act) {
	case VSOCK_ACT_IGNORE:
		break;
	case VSOCK_ACT_CONNECT:
		guest_connect(d, &h);
		return;
	case VSOCK_ACT_ESTABLISH: {
		int n = snprintf(c->ok, sizeof(c->ok), "OK %u\n", c->host_port);

		c->st = VSOCK_ST_ESTABLISHED;
		c->deadline_ns = 0;
		c->ok_len = (unsigned int)n;
		c->ok_off = 0;
		conn_flush(d, c);
		break;
	}
	case VSOCK_ACT_DATA:
		conn_rx_data(d, c, &h, chain);
		return;
	case VSOCK_ACT_CREDIT:
		break;
	case VSOCK_ACT_CREDIT_REPLY:
		c->pend |= PEND_CREDIT;
		break;
	case VSOCK_ACT_SHUTDOWN:
		/* RCV: the guest reads no more; the host's writes now fail
		 * (EPIPE) instead of filling a buffer nobody drains. SEND is
		 * passed on by conn_refresh once buffered bytes are out. */
		c->peer_shut |= h.flags;
		if (h.flags & VIRTIO_VSOCK_SHUTDOWN_F_RCV)
			shutdown(c->fd, SHUT_RD);
		break;
	case VSOCK_ACT_CLOSE:
		conn_free(d, c);
		return;
	case VSOCK_ACT_RESET:
		if (c)
			conn_reset(d, c);
		else
			push_rst(d, h.dst_port, h.src_port);
		return;
	}
	if (c)
		conn_refresh(d, c);
}

/* ---- host -> guest ---- */

/* Takes an rx chain if none is held. false: none available. */
static bool rx_take(struct vsock_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_VSOCK_QUEUE_RX];

	while (!d->rx_held) {
		int r = virtq_pop(vq, &d->rx_chain);

		if (r < 0) {
			d->broken = true;
			virtio_dev_fail(&d->vdev, vq->error);
			return false;
		}
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			return false;
		}
		if (d->rx_chain.write_len < VSOCK_HDR_SIZE) {
			virtio_dev_log(&d->vdev, "rx buffer of %u bytes, shorter than a header",
				       d->rx_chain.write_len);
			if (virtq_push(vq, d->rx_chain.head, 0))
				virtio_dev_log(&d->vdev, "%s", vq->error);
			continue; /* bounded: each pass consumes a chain */
		}
		d->rx_held = true;
	}
	return true;
}

/* Sends the held chain with header h (payload, if any, already in place). */
static void rx_send(struct vsock_dev *d, struct vsock_hdr *h)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_VSOCK_QUEUE_RX];
	struct iovec iov[VIRTQ_MAX_SIZE];
	uint8_t raw[VSOCK_HDR_SIZE];
	unsigned int niov;
	uint32_t got;

	h->src_cid = VIRTIO_VSOCK_CID_HOST;
	h->dst_cid = d->guest_cid;
	h->type = VIRTIO_VSOCK_TYPE_STREAM;
	vsock_hdr_encode(h, raw);
	niov = chain_iov(vq->gm, &d->rx_chain, true, 0, VSOCK_HDR_SIZE, iov, &got);
	iov_copy_in(iov, niov, raw); /* got == 44: rx_take checked write_len */
	if (virtq_push(vq, d->rx_chain.head, VSOCK_HDR_SIZE + h->len))
		virtio_dev_log(&d->vdev, "%s", vq->error);
	virtio_stat_add(&d->vdev.stats.reads, 1);
	virtio_stat_add(&d->vdev.stats.read_bytes, h->len);
	d->rx_held = false;
}

/* One control packet or one read for c. true when a packet went out. */
static bool rx_conn(struct vsock_dev *d, struct vsock_conn *c)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_VSOCK_QUEUE_RX];
	struct vsock_hdr h;

	memset(&h, 0, sizeof(h));
	h.src_port = c->host_port;
	h.dst_port = c->guest_port;
	if (c->pend & (PEND_REQUEST | PEND_RESPONSE)) {
		h.op = (c->pend & PEND_REQUEST) ? VIRTIO_VSOCK_OP_REQUEST : VIRTIO_VSOCK_OP_RESPONSE;
		c->pend &= ~(PEND_REQUEST | PEND_RESPONSE);
	} else if (c->rx_try && can_read(c) && vsock_credit_peer_avail(&c->cr) > 0) {
		struct iovec iov[VIRTQ_MAX_SIZE];
		uint32_t room = d->rx_chain.write_len - VSOCK_HDR_SIZE, want = vsock_credit_peer_avail(&c->cr);
		uint32_t got;
		unsigned int niov;
		ssize_t n;

		if (want > room)
			want = room;
		if (want > VSOCK_MAX_PKT_LEN)
			want = VSOCK_MAX_PKT_LEN;
		if (!want) {
			/* An rx buffer with room for a header only: fine for
			 * control packets, useless for data. Use it for a
			 * credit update so it is not wasted, and go on. */
			h.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
			c->pend &= ~PEND_CREDIT;
			goto send;
		}
		niov = chain_iov(vq->gm, &d->rx_chain, true, VSOCK_HDR_SIZE, want, iov, &got);
		do
			n = readv(c->fd, iov, (int)niov);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->rx_try = false;
			return false;
		}
		if (n <= 0) {
			/* EOF, or the host end failed: it sends no more. */
			c->host_eof = true;
			c->rx_try = false;
			if (n < 0)
				c->host_wr_dead = true;
			return false;
		}
		h.op = VIRTIO_VSOCK_OP_RW;
		h.len = (uint32_t)n;
		vsock_credit_on_tx(&c->cr, (uint32_t)n);
		c->pend &= ~PEND_CREDIT; /* the header carries it */
	} else if (c->pend & PEND_CREDIT) {
		h.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
		c->pend &= ~PEND_CREDIT;
	} else if (c->pend & PEND_SHUTDOWN) {
		h.op = VIRTIO_VSOCK_OP_SHUTDOWN;
		c->shut_sent |= c->shut_pend;
		c->shut_pend = 0;
		h.flags = c->shut_sent;
		c->pend &= ~PEND_SHUTDOWN;
		if ((c->shut_sent & SHUT_BOTH) == SHUT_BOTH && c->st == VSOCK_ST_ESTABLISHED) {
			c->st = VSOCK_ST_CLOSING;
			set_deadline(d, c, VIRTIO_VSOCK_CLOSE_TIMEOUT_MS);
		}
	} else {
		return false;
	}
send:
	vsock_credit_stamp(&c->cr, &h);
	rx_send(d, &h);
	return true;
}

/* Sends what is ready to go to the guest while rx buffers last. */
static void rx_pump(struct vsock_dev *d)
{
	unsigned int sent = 0, steps = 0;

	if (!d->active || d->broken || d->quiesced)
		return;
	/* Each step either sends a packet or takes a connection off the
	 * list (its socket had nothing, or it is done); bounded regardless. */
	while (sent < VSOCK_PUMP_BUDGET && steps++ < 4 * VSOCK_PUMP_BUDGET) {
		struct vsock_conn *c;

		if (!d->rst_len && !d->rxq_head)
			break;
		if (!rx_take(d))
			break;
		if (d->rst_len) {
			struct vsock_hdr h;

			memset(&h, 0, sizeof(h));
			h.op = VIRTIO_VSOCK_OP_RST;
			h.src_port = d->rst[d->rst_head].host_port;
			h.dst_port = d->rst[d->rst_head].guest_port;
			h.buf_alloc = VIRTIO_VSOCK_BUF_ALLOC;
			d->rst_head = (d->rst_head + 1) % VSOCK_RST_RING;
			d->rst_len--;
			rx_send(d, &h);
			sent++;
			continue;
		}
		/* Off the list and back at its tail if it still has work
		 * (conn_refresh): connections take turns. */
		c = d->rxq_head;
		rxq_del(d, c);
		if (rx_conn(d, c))
			sent++;
		(void)conn_refresh(d, c);
	}
	if (sent)
		virtio_dev_notify(&d->vdev, VIRTIO_VSOCK_QUEUE_RX);
	if (sent >= VSOCK_PUMP_BUDGET || steps >= 4 * VSOCK_PUMP_BUDGET)
		kick(d); /* more later, without holding the lock for long */
}

/* ---- the event queue ---- */

static void event_deliver(struct vsock_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_VSOCK_QUEUE_EVENT];
	unsigned int budget = VIRTQ_MAX_SIZE;

	while (d->event_pending && d->active && !d->broken && !d->quiesced && budget--) {
		struct virtio_vsock_event ev = { .id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET };
		struct iovec iov[VIRTQ_MAX_SIZE];
		unsigned int niov;
		uint32_t got;
		int r = virtq_pop(vq, &d->ev_chain);

		if (r < 0) {
			d->broken = true;
			virtio_dev_fail(&d->vdev, vq->error);
			return;
		}
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			return;
		}
		niov = chain_iov(vq->gm, &d->ev_chain, true, 0, sizeof(ev), iov, &got);
		if (got == sizeof(ev)) {
			iov_copy_in(iov, niov, &ev);
			d->event_pending = false;
		} else {
			virtio_dev_log(&d->vdev, "event buffer of %u bytes, too short",
				       d->ev_chain.write_len);
			got = 0;
		}
		if (virtq_push(vq, d->ev_chain.head, got))
			virtio_dev_log(&d->vdev, "%s", vq->error);
		virtio_dev_notify(&d->vdev, VIRTIO_VSOCK_QUEUE_EVENT);
	}
}

/* ---- host-side events ---- */

static void drop_all(struct vsock_dev *d)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		if (d->conns[i])
			conn_free(d, d->conns[i]);
	d->rst_len = 0;
	d->rst_head = 0;
}

static uint32_t alloc_host_port(struct vsock_dev *d, uint32_t guest_port)
{
	/* At most MAX_CONNS ports are taken, so this ends quickly. */
	for (unsigned int tries = 0; tries <= VIRTIO_VSOCK_MAX_CONNS; tries++) {
		uint32_t p = d->next_host_port++;

		if (d->next_host_port >= VIRTIO_VSOCK_HOST_PORT_END)
			d->next_host_port = VIRTIO_VSOCK_HOST_PORT_FIRST;
		if (!conn_lookup(d, p, guest_port))
			return p;
	}
	return 0;
}

/* A host client's CONNECT line, one byte at a time so that bytes after the
 * newline stay in the socket for the guest. */
static void host_line(struct vsock_dev *d, struct vsock_conn *c)
{
	uint32_t port;

	while (c->line_len < VSOCK_CONNECT_LINE_MAX) {
		ssize_t n = read(c->fd, &c->line[c->line_len], 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_free(d, c);
			return;
		}
		if (c->line[c->line_len++] == '\n')
			break;
	}
	if (vsock_parse_connect_line(c->line, c->line_len, &port) || !d->active || d->broken) {
		conn_free(d, c);
		return;
	}
	c->host_port = alloc_host_port(d, port);
	if (!c->host_port) {
		conn_free(d, c);
		return;
	}
	c->guest_port = port;
	c->line_phase = false;
	c->st = VSOCK_ST_CONNECTING;
	/* The guest's credit is unknown until its RESPONSE: 0 until then. */
	vsock_credit_init(&c->cr, VIRTIO_VSOCK_BUF_ALLOC, 0, 0);
	c->pend = PEND_REQUEST;
	conn_hash(d, c);
	set_deadline(d, c, VIRTIO_VSOCK_CONNECT_TIMEOUT_MS);
	conn_refresh(d, c);
}

static void host_accept(struct vsock_dev *d)
{
	for (int i = 0; i < VSOCK_ACCEPT_BATCH; i++) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the next event retries */
		/* Before the driver runs there is nobody to connect to: the
		 * client retries. */
		if (!d->active || d->broken) {
			close(fd);
			continue;
		}
		c = conn_alloc(d, fd);
		if (!c) {
			close(fd);
			continue;
		}
		c->line_phase = true;
		set_deadline(d, c, VIRTIO_VSOCK_LINE_TIMEOUT_MS);
		update_interest(d, c);
	}
}

static void host_timer(struct vsock_dev *d)
{
	uint64_t v, now = now_ns();
	bool any = false;

	if (read(d->timer_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: spurious */
	}
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = d->conns[i];

		if (!c || !c->deadline_ns)
			continue;
		if (c->deadline_ns > now) {
			any = true;
			continue;
		}
		/* Expired: a silent host client, a guest that never answered
		 * REQUEST or never sent RST after our SHUTDOWN, or a host
		 * that never read what the guest left. */
		if (!c->line_phase && !c->draining)
			conn_reset(d, c);
		else
			conn_free(d, c);
	}
	if (!any && d->timer_armed) {
		struct itimerspec off;

		memset(&off, 0, sizeof(off));
		timerfd_settime(d->timer_fd, 0, &off, NULL);
		d->timer_armed = false;
	}
}

static void host_conn_event(struct vsock_dev *d, struct vsock_conn *c, uint32_t ev)
{
	if (c->line_phase) {
		if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
			host_line(d, c);
		return;
	}
	if (ev & EPOLLOUT)
		conn_flush(d, c);
	if (ev & EPOLLIN)
		c->rx_try = true;
	if (ev & (EPOLLHUP | EPOLLERR)) {
		/* Both directions are shut on the host end: what is still
		 * readable is read (rx_try), nothing more can be written. */
		ep_del(d, c);
		c->hup = true;
		c->rx_try = true;
		c->host_wr_dead = true;
		if (c->st == VSOCK_ST_CONNECTING) {
			conn_reset(d, c);
			return;
		}
		conn_flush(d, c); /* drops the buffer */
	}
	conn_refresh(d, c);
}

static void host_events(struct vsock_dev *d, int timeout_ms)
{
	struct epoll_event evs[VSOCK_EPOLL_BATCH];
	int round, n = 0;

	for (round = 0; round < VSOCK_EPOLL_ROUNDS; round++) {
		n = epoll_wait(d->epfd, evs, VSOCK_EPOLL_BATCH, round ? 0 : timeout_ms);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t tok = evs[i].data.u64;
			uint32_t idx = (uint32_t)tok, gen = (uint32_t)(tok >> 32);
			struct vsock_conn *c;

			if (tok == TOK_LISTEN) {
				host_accept(d);
				continue;
			}
			if (tok == TOK_TIMER) {
				host_timer(d);
				continue;
			}
			if (idx < TOK_CONN_BASE || idx - TOK_CONN_BASE >= VIRTIO_VSOCK_MAX_CONNS)
				continue;
			c = d->conns[idx - TOK_CONN_BASE];
			if (!c || c->gen != gen)
				continue; /* freed earlier in this batch */
			host_conn_event(d, c, evs[i].events);
		}
		rx_pump(d);
	}
	if (round == VSOCK_EPOLL_ROUNDS)
		kick(d);
}

static void tx_process(struct vsock_dev *d);

static void vsock_loop_cb(void *opaque, int fd, uint32_t revents)
{
	struct vsock_dev *d = opaque;
	uint64_t v;

	if (fd == d->kick_fd && read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up took it */
	}
	virtio_dev_lock(&d->vdev);
	if (!d->quiesced) { /* else resume kicks the loop back here */
		if (d->tx_more && d->active)
			tx_process(d);
		host_events(d, 0);
		rx_pump(d);
	}
	virtio_dev_unlock(&d->vdev);
}

void virtio_vsock_poll(struct virtio_dev *dev, int timeout_ms)
{
	struct vsock_dev *d = to_vsock(dev);
	uint64_t v;

	if (read(d->kick_fd, &v, sizeof(v)) < 0) {
		/* nothing deferred */
	}
	if (timeout_ms > 0) {
		/* Wait without the lock, as the loop's poll does. */
		struct epoll_event ev;

		(void)epoll_wait(d->epfd, &ev, 1, timeout_ms); /* level-triggered: nothing consumed */
	}
	virtio_dev_lock(dev);
	if (!d->quiesced) {
		if (d->tx_more && d->active)
			tx_process(d);
		host_events(d, 0);
		rx_pump(d);
	}
	virtio_dev_unlock(dev);
}

unsigned int virtio_vsock_nr_conns(struct virtio_dev *dev)
{
	unsigned int n;

	virtio_dev_lock(dev);
	n = to_vsock(dev)->nconns;
	virtio_dev_unlock(dev);
	return n;
}

int virtio_vsock_send_transport_reset(struct virtio_dev *dev)
{
	struct vsock_dev *d = to_vsock(dev);

	virtio_dev_lock(dev);
	if (!d->active || d->broken) {
		virtio_dev_unlock(dev);
		return -ENOTCONN;
	}
	drop_all(d);
	d->event_pending = true;
	event_deliver(d);
	virtio_dev_unlock(dev);
	return 0;
}

/* ---- device hooks ---- */

/* Handles the guest's tx chains, at most VSOCK_TX_BUDGET per call; when
 * chains remain, the event loop comes back for them (tx_more + kick), since
 * with EVENT_IDX the guest does not notify again for chains it already
 * published. */
static void tx_process(struct vsock_dev *d)
{
	struct virtq *vq = &d->vdev.vqs[VIRTIO_VSOCK_QUEUE_TX];
	unsigned int n = 0;
	bool pushed = false;

	if (d->quiesced)
		return; /* tx_more stays: resume comes back for the rest */
	d->tx_more = false;
	while (!d->broken) {
		int r;

		if (n++ == VSOCK_TX_BUDGET) {
			d->tx_more = true;
			kick(d);
			break;
		}
		r = virtq_pop(vq, &d->tx_chain);
		if (r < 0) {
			d->broken = true;
			virtio_dev_fail(&d->vdev, vq->error);
			return;
		}
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			break;
		}
		handle_tx(d, &d->tx_chain);
		if (virtq_push(vq, d->tx_chain.head, 0))
			virtio_dev_log(&d->vdev, "%s", vq->error);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify(&d->vdev, VIRTIO_VSOCK_QUEUE_TX);
}

static void vsock_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct vsock_dev *d = to_vsock(dev);

	if (!d->active || d->broken)
		return;
	if (q == VIRTIO_VSOCK_QUEUE_EVENT) {
		event_deliver(d);
		return;
	}
	if (q == VIRTIO_VSOCK_QUEUE_TX)
		tx_process(d);
	/* rx buffers arrived, or tx made replies, credit or data ready. */
	rx_pump(d);
}

static void vsock_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len)
{
	struct virtio_vsock_config cfg = { .guest_cid = to_vsock(dev)->guest_cid };

	/* The transport checked off + len <= VIRTIO_VSOCK_CONFIG_SIZE. */
	memcpy(data, (const uint8_t *)&cfg + off, len);
}

static void vsock_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len)
{
	/* 5.10.4: read-only. */
	virtio_dev_log(dev, "write to the read-only config space ignored");
}

static int vsock_activate(struct virtio_dev *dev)
{
	struct vsock_dev *d = to_vsock(dev);

	for (unsigned int q = 0; q < 3; q++)
		if (!dev->vqs[q].ready)
			return -EINVAL; /* the driver must set up all three */
	d->active = true;
	d->broken = false;
	return 0;
}

static void vsock_reset(struct virtio_dev *dev)
{
	struct vsock_dev *d = to_vsock(dev);

	drop_all(d);
	d->active = false;
	d->broken = false;
	d->rx_held = false;
	d->event_pending = false;
	d->tx_more = false;
}

static void vsock_destroy(struct virtio_dev *dev)
{
	struct vsock_dev *d = to_vsock(dev);
	struct stat st;

	drop_all(d);
	if (d->watch_ep)
		evl_del_fd(d->evl, d->epfd);
	if (d->watch_kick)
		evl_del_fd(d->evl, d->kick_fd);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	/* Remove the socket file only if it is still ours. */
	if (d->uds_path && lstat(d->uds_path, &st) == 0 && st.st_dev == d->sock_dev &&
	    st.st_ino == d->sock_ino)
		unlink(d->uds_path);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	free(d->uds_path);
	free(d);
}

/* Snapshot: the held rx chain goes back to the ring. Connections stay
 * as they are (the running VM keeps them); a restored VM gets none of them
 * (only the CID is saved) and virtio_vsock_send_transport_reset() tells
 * its guest to drop its copies. */
static void vsock_quiesce(struct virtio_dev *dev, bool on)
{
	struct vsock_dev *d = to_vsock(dev);

	d->quiesced = on;
	if (!on) {
		kick(d); /* host sockets that became ready meanwhile */
		return;
	}
	if (d->rx_held && virtq_unpop(&dev->vqs[VIRTIO_VSOCK_QUEUE_RX], d->rx_chain.head))
		virtio_dev_log(dev, "held rx chain: %s", dev->vqs[VIRTIO_VSOCK_QUEUE_RX].error);
	d->rx_held = false;
}

#define VSOCK_SNAP_VERSION 1u

static int vsock_save(struct virtio_dev *dev, struct snap_writer *w)
{
	struct vsock_dev *d = to_vsock(dev);
	int r;

	r = snap_put_u32(w, VSOCK_SNAP_VERSION);
	r = r ? r : snap_put_u64(w, d->guest_cid);
	/* For the record only: connections are not carried. */
	r = r ? r : snap_put_u32(w, d->nconns);
	return r;
}

static int vsock_restore(struct virtio_dev *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	uint32_t version, nconns;
	uint64_t cid;
	int r;

	(void)dev;
	r = snap_get_u32(c, &version);
	r = r ? r : snap_get_u64(c, &cid);
	r = r ? r : snap_get_u32(c, &nconns);
	if (r) {
		snprintf(err, errlen, "vsock state truncated");
		return -EBADMSG;
	}
	if (version != VSOCK_SNAP_VERSION) {
		snprintf(err, errlen, "vsock state version %u, this minivm reads %u", version,
			 VSOCK_SNAP_VERSION);
		return -EINVAL;
	}
	if (cid < 3 || cid > 0xfffffffeULL || nconns > VIRTIO_VSOCK_MAX_CONNS) {
		snprintf(err, errlen, "vsock state out of range (CID %llu, %u connections)",
			 (unsigned long long)cid, nconns);
		return -EINVAL;
	}
	/* This VM's CID may differ: the transport reset sent on resume makes
	 * the guest read it again (virtio_vsock_update_guest_cid). */
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
	.quiesce = vsock_quiesce,
	.save = vsock_save,
	.restore = vsock_restore,
};

static int ep_add(int epfd, int fd, uint64_t tok)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = tok;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int virtio_vsock_set_path(struct virtio_dev *dev, const char *path)
{
	struct vsock_dev *d = to_vsock(dev);
	struct sockaddr_un sa;
	char *copy;

	if (!path || !*path || strlen(path) + sizeof("_4294967295") > sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	free(d->uds_path);
	d->uds_path = copy;
	return 0;
}

struct virtio_dev *virtio_vsock_create(const char *uds_path, uint64_t guest_cid, struct evl *evl,
				       char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct vsock_dev *d;
	struct stat st;
	int r;

	if (!uds_path || !*uds_path) {
		snprintf(err, errlen, "vsock: no socket path");
		return NULL;
	}
	if (guest_cid < 3 || guest_cid > 0xfffffffeULL) {
		snprintf(err, errlen, "vsock: guest CID %llu out of range (3..4294967294)",
			 (unsigned long long)guest_cid);
		return NULL;
	}
	/* Room for the path and for "<path>_<port>" of guest connections. */
	if (strlen(uds_path) + sizeof("_4294967295") > sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vsock: socket path %s is too long (at most %zu bytes)", uds_path,
			 sizeof(sa.sun_path) - sizeof("_4294967295"));
		return NULL;
	}
	if (lstat(uds_path, &st) == 0) {
		snprintf(err, errlen,
			 "vsock: %s already exists (another VM's socket, or a stale one: remove it)",
			 uds_path);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "vsock: out of memory");
		return NULL;
	}
	d->listen_fd = d->epfd = d->timer_fd = d->kick_fd = -1;
	d->evl = evl;
	d->guest_cid = guest_cid;
	d->next_host_port = VIRTIO_VSOCK_HOST_PORT_FIRST;
	d->uds_path = strdup(uds_path);
	if (!d->uds_path) {
		snprintf(err, errlen, "vsock: out of memory");
		goto fail;
	}
	d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->listen_fd < 0) {
		snprintf(err, errlen, "vsock: socket: %s", strerror(errno));
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, uds_path, strlen(uds_path) + 1);
	if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "vsock: cannot bind %s: %s%s", uds_path, strerror(errno),
			 errno == EADDRINUSE ? " (remove the stale socket)" : "");
		goto fail;
	}
	if (lstat(uds_path, &st) == 0) {
		d->sock_dev = st.st_dev;
		d->sock_ino = st.st_ino;
	}
	if (listen(d->listen_fd, 64) < 0) {
		snprintf(err, errlen, "vsock: listen on %s: %s", uds_path, strerror(errno));
		goto fail_unlink;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->epfd < 0 || d->timer_fd < 0 || d->kick_fd < 0 ||
	    ep_add(d->epfd, d->listen_fd, TOK_LISTEN) || ep_add(d->epfd, d->timer_fd, TOK_TIMER)) {
		snprintf(err, errlen, "vsock: epoll/timerfd/eventfd: %s", strerror(errno));
		goto fail_unlink;
	}
	if (evl) {
		r = evl_add_fd(evl, d->epfd, vsock_loop_cb, d);
		if (!r) {
			d->watch_ep = true;
			r = evl_add_fd(evl, d->kick_fd, vsock_loop_cb, d);
			d->watch_kick = !r;
		}
		if (r) {
			snprintf(err, errlen, "vsock: cannot watch its sockets: %s", strerror(-r));
			goto fail_unlink;
		}
	}
	d->vdev.ops = &vsock_ops;
	d->vdev.name = "virtio-vsock";
	d->vdev.device_id = VIRTIO_ID_VSOCK;
	d->vdev.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	d->vdev.config_size = VIRTIO_VSOCK_CONFIG_SIZE;
	d->vdev.num_queues = 3;
	d->vdev.queue_max = VIRTIO_VSOCK_QUEUE_SIZE;
	return &d->vdev;

fail_unlink:
	unlink(uds_path);
fail:
	vsock_destroy(&d->vdev);
	return NULL;
}
