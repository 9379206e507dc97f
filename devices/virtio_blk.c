/* virtio-blk: request parsing (pure) and execution through the io_uring event loop, several requests in flight. */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/ratelimit.h"
#include "devices/virtio_spec.h"
#include "vmm/evl.h"
#include "vmm/snap.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- the parser ---- */

static int refuse(struct blk_req *r, int status, const char *why)
{
	r->error = why;
	return status;
}

/* Copies len bytes found `skip` bytes into the chain part seg[from, to). */
static int gather(const struct guest_mem *gm, const struct virtq_chain *c, unsigned int from,
		  unsigned int to, uint64_t skip, void *dst, size_t len)
{
	uint8_t *out = dst;

	for (unsigned int i = from; i < to && len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t n;

		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		n = s->len - skip;
		if (n > len)
			n = len;
		if (gm_read(gm, s->gpa + skip, out, n))
			return -EFAULT;
		out += n;
		len -= n;
		skip = 0;
	}
	return len ? -EINVAL : 0;
}

/* Sets r->data to the bytes [skip, skip + len) of the chain part seg[from, to). */
static int slice(const struct virtq_chain *c, unsigned int from, unsigned int to, uint64_t skip,
		 uint32_t len, struct blk_req *r)
{
	uint32_t left = len;

	r->ndata = 0;
	r->data_len = len;
	for (unsigned int i = from; i < to && left; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t n;

		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		n = s->len - skip;
		if (n > left)
			n = left;
		r->data[r->ndata++] = (struct virtq_seg){ .gpa = s->gpa + skip, .len = (uint32_t)n,
							  .write = s->write };
		left -= (uint32_t)n;
		skip = 0;
	}
	return left ? -EINVAL : 0;
}

static bool range_ok(const struct blk_geom *g, uint64_t sector, uint64_t nsectors)
{
	uint64_t end;

	return !__builtin_add_overflow(sector, nsectors, &end) && end <= g->capacity;
}

int blk_req_parse(const struct guest_mem *gm, const struct virtq_chain *c, const struct blk_geom *g,
		  struct blk_req *r)
{
	struct virtio_blk_outhdr h;
	struct virtio_blk_discard_write_zeroes dz;
	uint32_t rdata, wdata, max;
	int i;
	bool discard;

	r->error = NULL;
	r->type = 0;
	r->sector = 0;
	r->nsectors = 0;
	r->unmap = false;
	r->data_len = 0;
	r->ndata = 0;
	r->status_gpa = 0;
	if (c->nseg > VIRTQ_MAX_SIZE || c->nread > c->nseg)
		return refuse(r, -EINVAL, "malformed chain");

	/* 5.2.6: the status is the last byte, device-writable. */
	for (i = (int)c->nseg - 1; i >= (int)c->nread; i--)
		if (c->seg[i].len)
			break;
	if (i < (int)c->nread)
		return refuse(r, -EINVAL, "no device-writable status byte");
	r->status_gpa = c->seg[i].gpa + c->seg[i].len - 1; /* inside a checked range */
	wdata = c->write_len - 1;

	/* The header: the first 16 device-readable bytes, copied once. */
	if (c->read_len < sizeof(h))
		return refuse(r, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
	if (gather(gm, c, 0, c->nread, 0, &h, sizeof(h)))
		return refuse(r, VIRTIO_BLK_S_IOERR, "request header outside RAM");
	rdata = c->read_len - (uint32_t)sizeof(h);
	r->type = h.type;

	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		if (rdata)
			return refuse(r, VIRTIO_BLK_S_IOERR, "read request with device-readable data");
		if (wdata % VIRTIO_BLK_SECTOR_SIZE)
			return refuse(r, VIRTIO_BLK_S_IOERR, "read length not a multiple of 512");
		if (!range_ok(g, h.sector, wdata >> VIRTIO_BLK_SECTOR_SHIFT))
			return refuse(r, VIRTIO_BLK_S_IOERR, "read beyond the end of the disk");
		r->sector = h.sector;
		if (slice(c, c->nread, c->nseg, 0, wdata, r))
			return refuse(r, VIRTIO_BLK_S_IOERR, "malformed chain");
		return 0;

	case VIRTIO_BLK_T_OUT:
		if (g->read_only)
			return refuse(r, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
		if (wdata)
			return refuse(r, VIRTIO_BLK_S_IOERR, "write request with device-writable data");
		if (rdata % VIRTIO_BLK_SECTOR_SIZE)
			return refuse(r, VIRTIO_BLK_S_IOERR, "write length not a multiple of 512");
		if (!range_ok(g, h.sector, rdata >> VIRTIO_BLK_SECTOR_SHIFT))
			return refuse(r, VIRTIO_BLK_S_IOERR, "write beyond the end of the disk");
		r->sector = h.sector;
		if (slice(c, 0, c->nread, sizeof(h), rdata, r))
			return refuse(r, VIRTIO_BLK_S_IOERR, "malformed chain");
		return 0;

	case VIRTIO_BLK_T_FLUSH:
		return 0; /* sector and any data are ignored */

	case VIRTIO_BLK_T_GET_ID:
		if (rdata)
			return refuse(r, VIRTIO_BLK_S_IOERR, "GET_ID with device-readable data");
		if (wdata == 0)
			return refuse(r, VIRTIO_BLK_S_IOERR, "GET_ID without a buffer");
		if (slice(c, c->nread, c->nseg, 0,
			  wdata < VIRTIO_BLK_ID_BYTES ? wdata : VIRTIO_BLK_ID_BYTES, r))
			return refuse(r, VIRTIO_BLK_S_IOERR, "malformed chain");
		return 0;

	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		discard = h.type == VIRTIO_BLK_T_DISCARD;
		if (!(discard ? g->discard : g->write_zeroes))
			return refuse(r, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes not negotiated");
		if (g->read_only)
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard/write-zeroes on a read-only disk");
		if (wdata)
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard/write-zeroes with device-writable data");
		/* max_discard_seg = max_write_zeroes_seg = 1. */
		if (rdata != sizeof(dz))
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard/write-zeroes needs one 16-byte segment");
		if (gather(gm, c, 0, c->nread, sizeof(h), &dz, sizeof(dz)))
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard segment outside RAM");
		/* 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
		if (dz.flags & ~(discard ? 0u : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			return refuse(r, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes flags not supported");
		max = discard ? g->max_discard_sectors : g->max_write_zeroes_sectors;
		if (dz.num_sectors == 0 || dz.num_sectors > max)
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard/write-zeroes length out of bounds");
		if (!range_ok(g, dz.sector, dz.num_sectors))
			return refuse(r, VIRTIO_BLK_S_IOERR, "discard/write-zeroes beyond the end of the disk");
		r->sector = dz.sector;
		r->nsectors = dz.num_sectors;
		r->unmap = dz.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		return 0;

	default:
		return refuse(r, VIRTIO_BLK_S_UNSUPP, "unsupported request type");
	}
}

/* ---- the device ---- */

/* One request in flight; its evl_io tag comes back on the loop thread. */
struct blk_io {
	struct evl_io io;
	struct blk_dev *blk;
	bool busy;
	uint32_t gen; /* blk->gen when started: a reset since makes it stale */
	uint16_t head;
	uint32_t type;
	uint64_t status_gpa;
	uint32_t used_len;
	uint64_t off;       /* file offset of the next byte */
	uint64_t len;       /* fallocate length */
	int mode;           /* fallocate mode */
	uint32_t remaining; /* read/write bytes still to transfer */
	uint32_t data_len;  /* the request's data bytes, for metrics */
	unsigned int iov_first, niov;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

struct blk_dev {
	struct virtio_dev vdev; /* first: the transport hands us &vdev */
	char name[64];
	struct evl *evl;
	int fd;    /* the image, through the page cache; holds the OFD lock */
	int dfd;   /* the same file with O_DIRECT, or -1 */
	int slot;  /* fd's registered slot in evl */
	int dslot; /* dfd's, or -1 */
	uint32_t dio_mem_align, dio_off_align;
	bool read_only;
	bool can_punch;
	uint64_t capacity;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config cfg;

	/* Under the transport lock. */
	bool active;  /* between activate and reset */
	bool broken;  /* we asked for NEEDS_RESET */
	bool waiting; /* stopped popping: every blk_io busy */
	bool quiesced; /* snapshot: pop nothing (completions still return) */
	uint32_t gen;
	unsigned int busy;
	struct virtq_chain chain; /* scratch for blk_process */
	struct blk_req req;       /* scratch for blk_process; the parked request */
	struct blk_io ios[VIRTIO_BLK_QUEUE_SIZE];

	/* Rate limiting (virtio_blk_set_rate_limit). When the buckets refuse a
	 * request, it stays parsed in req (parked) and nothing more is popped
	 * until a timer on the event loop fires at the time the limiter named.
	 * Under the transport lock, but for the fixed limited and timer.fd. */
	bool limited;
	struct rl_timer timer;
	bool parked;
	uint16_t parked_head;
	uint64_t throttled; /* times a request was parked, for tests and logs */
	struct ratelimit rl;
};

static struct blk_dev *to_blk(struct virtio_dev *dev)
{
	return (struct blk_dev *)dev;
}

uint64_t virtio_blk_capacity(const struct virtio_dev *dev)
{
	return ((const struct blk_dev *)dev)->capacity;
}

bool virtio_blk_direct_io(const struct virtio_dev *dev)
{
	return ((const struct blk_dev *)dev)->dslot >= 0;
}

static struct blk_geom blk_geom_of(const struct blk_dev *b)
{
	return (struct blk_geom){
		.capacity = b->capacity,
		.read_only = b->read_only,
		.discard = b->vdev.acked & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD),
		.write_zeroes = b->vdev.acked & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES),
		.max_discard_sectors = b->cfg.max_discard_sectors,
		.max_write_zeroes_sectors = b->cfg.max_write_zeroes_sectors,
	};
}

static void blk_io_done(struct evl_io *eio, int res);

static struct blk_io *io_get(struct blk_dev *b)
{
	for (unsigned int i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		if (!b->ios[i].busy) {
			/* Set here, not at creation: each slot is 16 KiB (its iovec
			 * table), and touching all 256 up front cost every VMM 1 MiB
			 * of private memory per disk that only deep queues use. */
			b->ios[i].blk = b;
			b->ios[i].io.done = blk_io_done;
			return &b->ios[i];
		}
	return NULL;
}

static void io_put(struct blk_dev *b, struct blk_io *io)
{
	io->busy = false;
	b->busy--;
}

/* Writes the status byte and returns the chain to the driver. */
static void finish(struct blk_dev *b, uint16_t head, uint64_t status_gpa, uint8_t status,
		   uint32_t used_len)
{
	struct virtq *vq = &b->vdev.vqs[0];

	if (gm_write(vq->gm, status_gpa, &status, 1))
		virtio_dev_log(&b->vdev, "status byte outside RAM");
	if (virtq_push(vq, head, used_len))
		virtio_dev_log(&b->vdev, "returning chain %u: %s", head, vq->error);
}

/* Counts a request that ended with status for metrics: reads, writes and
 * flushes that succeeded, and every failure. Lock held. */
static void blk_account(struct blk_dev *b, uint32_t type, uint32_t data_len, uint8_t status)
{
	struct virtio_stats *s = &b->vdev.stats;

	if (status != VIRTIO_BLK_S_OK) {
		virtio_stat_add(&s->errors, 1);
		return;
	}
	switch (type) {
	case VIRTIO_BLK_T_IN:
		virtio_stat_add(&s->reads, 1);
		virtio_stat_add(&s->read_bytes, data_len);
		break;
	case VIRTIO_BLK_T_OUT:
		virtio_stat_add(&s->writes, 1);
		virtio_stat_add(&s->write_bytes, data_len);
		break;
	case VIRTIO_BLK_T_FLUSH:
		virtio_stat_add(&s->flushes, 1);
		break;
	default:
		break;
	}
}

/* O_DIRECT when the offset and every buffer suit it, else the page cache. */
static int choose_slot(const struct blk_dev *b, const struct blk_io *io)
{
	if (b->dslot < 0 || io->off % b->dio_off_align)
		return b->slot;
	for (unsigned int i = io->iov_first; i < io->niov; i++)
		if ((uintptr_t)io->iov[i].iov_base % b->dio_mem_align ||
		    io->iov[i].iov_len % b->dio_off_align)
			return b->slot;
	return b->dslot;
}

static int submit_rw(struct blk_dev *b, struct blk_io *io, int slot)
{
	const struct iovec *iov = io->iov + io->iov_first;
	unsigned int n = io->niov - io->iov_first;

	if (io->type == VIRTIO_BLK_T_IN)
		return evl_readv(b->evl, &io->io, slot, iov, n, io->off);
	return evl_writev(b->evl, &io->io, slot, iov, n, io->off);
}

/* Starts a parsed request. Returns true when it completed at once (the
 * chain is already back in the used ring), false when it is in flight. */
static bool blk_start(struct blk_dev *b, struct blk_io *io, const struct blk_req *req, uint16_t head)
{
	const struct guest_mem *gm = b->vdev.vqs[0].gm;
	uint8_t status = VIRTIO_BLK_S_OK;
	int r = 0;

	io->head = head;
	io->type = req->type;
	io->data_len = req->data_len;
	io->status_gpa = req->status_gpa;
	io->gen = b->gen;
	io->used_len = 1;
	io->busy = true;
	b->busy++;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (req->type == VIRTIO_BLK_T_IN)
			io->used_len = req->data_len + 1;
		if (req->data_len == 0)
			goto done;
		for (unsigned int i = 0; i < req->ndata; i++) {
			/* Checked by virtq_pop; the mapping outlives the request. */
			void *p = gm_ptr(gm, req->data[i].gpa, req->data[i].len);

			if (!p) {
				status = VIRTIO_BLK_S_IOERR;
				goto done;
			}
			io->iov[i] = (struct iovec){ .iov_base = p, .iov_len = req->data[i].len };
		}
		io->niov = req->ndata;
		io->iov_first = 0;
		io->remaining = req->data_len;
		io->off = req->sector << VIRTIO_BLK_SECTOR_SHIFT; /* < capacity * 512 */
		r = submit_rw(b, io, choose_slot(b, io));
		break;
	case VIRTIO_BLK_T_FLUSH:
		r = evl_fsync(b->evl, &io->io, b->slot, true);
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t off = 0;

		for (unsigned int i = 0; i < req->ndata; i++) {
			if (gm_write(gm, req->data[i].gpa, b->serial + off, req->data[i].len)) {
				status = VIRTIO_BLK_S_IOERR;
				break;
			}
			off += req->data[i].len; /* data_len <= VIRTIO_BLK_ID_BYTES */
		}
		io->used_len = req->data_len + 1;
		goto done;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		io->off = req->sector << VIRTIO_BLK_SECTOR_SHIFT;
		io->len = (uint64_t)req->nsectors << VIRTIO_BLK_SECTOR_SHIFT;
		/* Discard, or zeroes that may be unmapped: punch a hole (reads
		 * back as zeroes). Plain write-zeroes keeps the blocks. */
		io->mode = req->type == VIRTIO_BLK_T_DISCARD || req->unmap ?
				   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
				   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		r = evl_fallocate(b->evl, &io->io, b->slot, io->mode, io->off, io->len);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP; /* blk_req_parse let through a type we lack */
		goto done;
	}
	if (r == 0)
		return false;
	virtio_dev_log(&b->vdev, "cannot submit a request: %s", strerror(-r));
	status = VIRTIO_BLK_S_IOERR;
done:
	blk_account(b, io->type, io->data_len, status);
	finish(b, head, io->status_gpa, status, io->used_len);
	io_put(b, io);
	return true;
}

/* Whether the limiter lets req go now; if not, the timer is armed for when
 * it will. One operation; the bytes are the data a read or write moves
 * (flush, GET_ID, discard and write-zeroes move none). Lock held. */
static bool blk_admit(struct blk_dev *b, const struct blk_req *req)
{
	uint64_t bytes = req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT ? req->data_len : 0;
	int why = 0;

	if (!b->limited || rl_gate(&b->rl, &b->timer, bytes, 1, &why)) {
		/* Cannot happen with a valid timerfd; without a timer the
		 * request would wait for the next kick: it went instead. */
		if (why)
			virtio_dev_log(&b->vdev, "rate limiter timer: %s; request not throttled",
				       strerror(why));
		return true;
	}
	return false;
}

/* Takes every available request. Lock held. */
static void blk_process(struct blk_dev *b)
{
	struct virtq *vq = &b->vdev.vqs[0];
	struct blk_geom g = blk_geom_of(b);
	bool pushed = false;

	if (!b->active || b->broken || !vq->ready || b->quiesced)
		return;
	for (;;) {
		struct blk_io *io = io_get(b);
		int r;

		if (!io) {
			/* Only stale requests from before a reset can fill the
			 * pool (live ones are bounded by the queue size): resume
			 * when one completes. */
			b->waiting = true;
			break;
		}
		if (b->parked) {
			/* The request the limiter refused last time goes first. */
			if (!blk_admit(b, &b->req))
				break;
			b->parked = false;
			if (blk_start(b, io, &b->req, b->parked_head))
				pushed = true;
			continue;
		}
		r = virtq_pop(vq, &b->chain);
		if (r < 0) {
			b->broken = true;
			virtio_dev_fail(&b->vdev, vq->error);
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			break;
		}
		r = blk_req_parse(vq->gm, &b->chain, &g, &b->req);
		if (r < 0) {
			virtio_dev_log(&b->vdev, "request %u dropped: %s", b->chain.head, b->req.error);
			virtio_stat_add(&b->vdev.stats.errors, 1);
			if (virtq_push(vq, b->chain.head, 0))
				virtio_dev_log(&b->vdev, "%s", vq->error);
			pushed = true;
		} else if (r > 0) {
			virtio_dev_log(&b->vdev, "request type %u failed (%s): %s", b->req.type,
				       r == VIRTIO_BLK_S_UNSUPP ? "UNSUPP" : "IOERR", b->req.error);
			blk_account(b, b->req.type, 0, (uint8_t)r);
			finish(b, b->chain.head, b->req.status_gpa, (uint8_t)r, 1);
			pushed = true;
		} else if (b->limited && !blk_admit(b, &b->req)) {
			/* Out of tokens: keep this one, pop nothing more. The guest
			 * sees a slower disk, not an error. */
			b->parked = true;
			b->parked_head = b->chain.head;
			b->throttled++;
			virtio_stat_add(&b->vdev.stats.throttled, 1);
			break;
		} else if (blk_start(b, io, &b->req, b->chain.head)) {
			pushed = true;
		}
	}
	if (pushed)
		virtio_dev_notify(&b->vdev, 0);
}

/* Completion of one request, on the event-loop thread. */
static void blk_io_done(struct evl_io *eio, int res)
{
	struct blk_io *io = container_of(eio, struct blk_io, io);
	struct blk_dev *b = io->blk;
	uint8_t status = VIRTIO_BLK_S_OK;

	virtio_dev_lock(&b->vdev);
	if (io->gen != b->gen) {
		/* The driver reset the device meanwhile: the chain is gone. */
		io_put(b, io);
		goto resume;
	}
	switch (io->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (res > 0 && (uint32_t)res < io->remaining) {
			/* Short transfer: go on from where it stopped, through
			 * the page cache (the rest may not be aligned). */
			uint32_t n = (uint32_t)res;

			io->remaining -= n;
			io->off += n;
			while (n) {
				struct iovec *v = &io->iov[io->iov_first];

				if (n >= v->iov_len) {
					n -= (uint32_t)v->iov_len;
					io->iov_first++;
				} else {
					v->iov_base = (uint8_t *)v->iov_base + n;
					v->iov_len -= n;
					n = 0;
				}
			}
			if (submit_rw(b, io, b->slot) == 0)
				goto unlock;
			status = VIRTIO_BLK_S_IOERR;
		} else if (res == -ECANCELED) {
			status = VIRTIO_BLK_S_IOERR; /* the loop is stopping: no log */
		} else if (res < 0 || (uint32_t)res != io->remaining) {
			virtio_dev_log(&b->vdev, "%s at byte %llu: %s",
				       io->type == VIRTIO_BLK_T_IN ? "read" : "write",
				       (unsigned long long)io->off,
				       res < 0 ? strerror(-res) : "end of file");
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (res == -EOPNOTSUPP && (io->mode & FALLOC_FL_ZERO_RANGE)) {
			/* No ZERO_RANGE here (tmpfs): a hole reads back as zeroes. */
			io->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
			if (evl_fallocate(b->evl, &io->io, b->slot, io->mode, io->off, io->len) == 0)
				goto unlock;
		}
		/* fall through */
	default:
		if (res < 0) {
			if (res != -ECANCELED)
				virtio_dev_log(&b->vdev, "request type %u: %s", io->type, strerror(-res));
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	}
	blk_account(b, io->type, io->data_len, status);
	finish(b, io->head, io->status_gpa, status, io->used_len);
	virtio_dev_notify(&b->vdev, 0);
	io_put(b, io);
resume:
	if (b->waiting) {
		b->waiting = false;
		blk_process(b);
	}
unlock:
	virtio_dev_unlock(&b->vdev);
}

/* ---- hooks ---- */

static void blk_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len)
{
	memcpy(data, (const uint8_t *)&to_blk(dev)->cfg + off, len); /* off + len <= 60 */
}

static void blk_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len)
{
	/* Only `writeback` is writable, and only with CONFIG_WCE (not offered). */
	virtio_dev_log(dev, "config write at %u ignored", off);
}

static int blk_activate(struct virtio_dev *dev)
{
	struct blk_dev *b = to_blk(dev);

	if (!dev->vqs[0].ready)
		virtio_dev_log(dev, "driver started without a request queue");
	b->active = true;
	b->broken = false;
	return 0;
}

static void blk_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	if (q == 0)
		blk_process(to_blk(dev));
}

static void blk_reset(struct virtio_dev *dev)
{
	struct blk_dev *b = to_blk(dev);

	/* Requests in flight complete later and are dropped (gen differs).
	 * A read may still land in buffers the driver gave us; the spec has
	 * the driver wait for the reset to finish, and Linux frees the rings
	 * only after it. */
	b->gen++;
	b->active = false;
	b->broken = false;
	b->waiting = false;
	b->parked = false; /* its chain is gone with the rings; the buckets stay */
}

static void blk_destroy(struct virtio_dev *dev)
{
	struct blk_dev *b = to_blk(dev);

	if (b->busy) {
		/* The loop still owes completions that write into b: keep it. */
		fprintf(stderr, "minivm: %s: destroyed with %u requests in flight; leaking it\n",
			b->name, b->busy);
		return;
	}
	rl_timer_close(&b->timer);
	/* The event loop's ring still holds the files it registered (its slots
	 * go with the loop, whose thread owns the ring), and it drops them
	 * asynchronously: release the lock explicitly, so the image is free as
	 * soon as this returns. */
	if (fcntl(b->fd, F_OFD_SETLK, &(struct flock){ .l_type = F_UNLCK, .l_whence = SEEK_SET }) < 0)
		fprintf(stderr, "minivm: %s: cannot unlock the image: %s\n", b->name, strerror(errno));
	if (b->dfd >= 0)
		close(b->dfd);
	close(b->fd);
	free(b);
}

/* Snapshot: the parked request (popped, refused by the limiter) goes
 * back to the ring; the guest's avail slot still names it, so it is popped
 * again after resume (and pays then). Requests in flight complete as usual. */
static void blk_quiesce(struct virtio_dev *dev, bool on)
{
	struct blk_dev *b = to_blk(dev);

	b->quiesced = on;
	if (on && b->parked) {
		if (virtq_unpop(&dev->vqs[0], b->parked_head))
			virtio_dev_log(dev, "parked request: %s", dev->vqs[0].error);
		b->parked = false;
	}
}

static unsigned int blk_busy(struct virtio_dev *dev)
{
	return to_blk(dev)->busy;
}

#define BLK_SNAP_VERSION 1u

/* The disk as the guest knows it: its size and whether it is read-only. */
static int blk_save(struct virtio_dev *dev, struct snap_writer *w)
{
	struct blk_dev *b = to_blk(dev);
	int r;

	r = snap_put_u32(w, BLK_SNAP_VERSION);
	r = r ? r : snap_put_u64(w, b->capacity);
	r = r ? r : snap_put_u32(w, b->read_only);
	return r;
}

static int blk_restore(struct virtio_dev *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct blk_dev *b = to_blk(dev);
	uint32_t version, ro;
	uint64_t capacity;
	int r;

	r = snap_get_u32(c, &version);
	r = r ? r : snap_get_u64(c, &capacity);
	r = r ? r : snap_get_u32(c, &ro);
	if (r) {
		snprintf(err, errlen, "disk state truncated");
		return -EBADMSG;
	}
	if (version != BLK_SNAP_VERSION) {
		snprintf(err, errlen, "disk state version %u, this minivm reads %u", version, BLK_SNAP_VERSION);
		return -EINVAL;
	}
	if (capacity != b->capacity) {
		snprintf(err, errlen, "the snapshot's disk has %llu sectors, this one %llu",
			 (unsigned long long)capacity, (unsigned long long)b->capacity);
		return -EINVAL;
	}
	if (ro > 1 || (ro != 0) != b->read_only) {
		snprintf(err, errlen, "the snapshot's disk was %s, this one is %s", ro ? "read-only" : "writable",
			 b->read_only ? "read-only" : "writable");
		return -EINVAL;
	}
	return 0;
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy,
	.quiesce = blk_quiesce,
	.busy = blk_busy,
	.save = blk_save,
	.restore = blk_restore,
};

/* ---- creation ---- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A second descriptor with O_DIRECT, when the file system supports it. */
static void open_direct(struct blk_dev *b, bool blockdev)
{
	char proc[64];
	struct statx stx;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", b->fd);
	b->dfd = open(proc, (b->read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (b->dfd < 0)
		return;
	if (statx(b->dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align && stx.stx_dio_offset_align) {
		b->dio_mem_align = stx.stx_dio_mem_align;
		b->dio_off_align = stx.stx_dio_offset_align;
	} else if (blockdev) {
		int lbs = 0;

		if (ioctl(b->dfd, BLKSSZGET, &lbs) == 0 && lbs > 0)
			b->dio_mem_align = b->dio_off_align = (uint32_t)lbs;
	}
	if (!b->dio_mem_align || !b->dio_off_align) {
		close(b->dfd);
		b->dfd = -1;
	}
}

struct virtio_dev *virtio_blk_create(const char *path, bool read_only, const char *serial,
				     struct evl *evl, char *err, size_t errlen)
{
	struct flock fl = { .l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct blk_dev *b;
	const char *base;
	struct stat st;
	uint64_t size;

	b = calloc(1, sizeof(*b));
	if (!b) {
		set_err(err, errlen, "disk %s: out of memory", path);
		return NULL;
	}
	b->fd = b->dfd = b->slot = b->dslot = b->timer.fd = -1;
	b->read_only = read_only;
	b->evl = evl;

	b->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		set_err(err, errlen, "cannot open disk %s: %s%s", path, strerror(errno),
			!read_only && (errno == EROFS || errno == EACCES) ? " (use ,ro?)" : "");
		goto err_free;
	}
	/* An OFD lock belongs to this open file description: another minivm,
	 * or another open in this process, conflicts with it. */
	if (fcntl(b->fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			set_err(err, errlen, "%s is in use by another VM", path);
		else
			set_err(err, errlen, "cannot lock disk %s: %s", path, strerror(errno));
		goto err_close;
	}
	if (fstat(b->fd, &st) < 0) {
		set_err(err, errlen, "cannot stat disk %s: %s", path, strerror(errno));
		goto err_close;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size) < 0) {
			set_err(err, errlen, "cannot size block device %s: %s", path, strerror(errno));
			goto err_close;
		}
	} else {
		set_err(err, errlen, "disk %s is not a regular file or a block device", path);
		goto err_close;
	}
	if (size < VIRTIO_BLK_SECTOR_SIZE) {
		set_err(err, errlen, "disk %s is smaller than one 512-byte sector", path);
		goto err_close;
	}
	if (size % VIRTIO_BLK_SECTOR_SIZE)
		fprintf(stderr, "minivm: disk %s: size %llu is not a multiple of 512; the last %llu bytes are not used\n",
			path, (unsigned long long)size,
			(unsigned long long)(size % VIRTIO_BLK_SECTOR_SIZE));
	b->capacity = size / VIRTIO_BLK_SECTOR_SIZE;

	open_direct(b, S_ISBLK(st.st_mode));
	/* Punching a hole past the end changes nothing and tells whether the
	 * file system can (ext4, xfs, btrfs, tmpfs can). */
	if (!read_only && S_ISREG(st.st_mode))
		b->can_punch = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 (off_t)((size + 4095) & ~4095ULL), 4096) == 0;

	b->slot = evl_register_file(evl, b->fd);
	if (b->slot < 0) {
		set_err(err, errlen, "disk %s: cannot register with the event loop: %s", path,
			strerror(-b->slot));
		goto err_close;
	}
	if (b->dfd >= 0) {
		b->dslot = evl_register_file(evl, b->dfd);
		if (b->dslot < 0) {
			close(b->dfd);
			b->dfd = -1;
		}
	}

	memset(b->serial, 0, sizeof(b->serial));
	strncpy(b->serial, serial ? serial : "minivm", sizeof(b->serial));
	base = strrchr(path, '/');
	snprintf(b->name, sizeof(b->name), "virtio-blk %s", base ? base + 1 : path);

	b->cfg.capacity = b->capacity;
	b->cfg.seg_max = VIRTIO_BLK_SEG_MAX;
	b->cfg.blk_size = VIRTIO_BLK_SECTOR_SIZE;
	b->cfg.num_queues = 1;
	b->vdev.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
			   VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE);
	if (read_only)
		b->vdev.features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (b->can_punch) {
		b->vdev.features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
		b->cfg.max_discard_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS;
		b->cfg.max_discard_seg = 1;
		b->cfg.discard_sector_alignment = VIRTIO_BLK_DISCARD_ALIGN_SECTORS;
		b->cfg.max_write_zeroes_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS;
		b->cfg.max_write_zeroes_seg = 1;
		b->cfg.write_zeroes_may_unmap = 1;
	}
	b->vdev.ops = &blk_ops;
	b->vdev.name = b->name;
	b->vdev.device_id = VIRTIO_ID_BLOCK;
	b->vdev.config_size = VIRTIO_BLK_CONFIG_SIZE;
	b->vdev.num_queues = 1;
	b->vdev.queue_max = VIRTIO_BLK_QUEUE_SIZE;
	return &b->vdev;

err_close:
	if (b->dfd >= 0)
		close(b->dfd);
	close(b->fd);
err_free:
	free(b);
	return NULL;
}

/* ---- rate limiting ---- */

/* The limiter's timer fired: tokens are back for the parked request. */
static void blk_timer_fired(void *opaque, int fd, uint32_t revents)
{
	struct blk_dev *b = opaque;

	(void)fd;
	(void)revents;
	virtio_dev_lock(&b->vdev);
	rl_timer_fired(&b->timer);
	blk_process(b);
	virtio_dev_unlock(&b->vdev);
}

int virtio_blk_set_rate_limit(struct virtio_dev *dev, const struct rl_config *cfg, char *err,
			      size_t errlen)
{
	struct blk_dev *b = to_blk(dev);
	int r;

	if (b->limited) {
		set_err(err, errlen, "%s: rate limit already set", b->name);
		return -EALREADY;
	}
	r = rl_init(&b->rl, cfg, rl_now_ns());
	if (r) {
		set_err(err, errlen, "%s: rate limit out of bounds", b->name);
		return r;
	}
	if (!rl_enabled(&b->rl))
		return 0; /* nothing limited: the data path stays as it was */
	r = rl_timer_open(&b->timer, b->evl, blk_timer_fired, b);
	if (r) {
		set_err(err, errlen, "%s: the rate limiter's timer: %s", b->name, strerror(-r));
		return r;
	}
	b->limited = true;
	return 0;
}

uint64_t virtio_blk_throttled(struct virtio_dev *dev)
{
	struct blk_dev *b = to_blk(dev);
	uint64_t n;

	virtio_dev_lock(&b->vdev);
	n = b->throttled;
	virtio_dev_unlock(&b->vdev);
	return n;
}
