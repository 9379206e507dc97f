/* The io_uring event loop: registered files, a restricted opcode set, tagged requests, one issuing thread. */
#include "vmm/evl.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

enum evl_op {
	EVL_OP_READV = 1,
	EVL_OP_WRITEV,
	EVL_OP_FSYNC,
	EVL_OP_FDATASYNC,
	EVL_OP_FALLOCATE,
};

/* user_data: a pointer (evl_io and evl_watch are at least 8-aligned) whose
 * low bits say which kind of request completed. */
#define UD_IO 0u
#define UD_WATCH 1u        /* the multishot poll of a watch */
#define UD_WATCH_REMOVE 2u /* the POLL_REMOVE that cancels it */
#define UD_CANCEL 3u       /* the cancel-everything request at stop (no pointer) */
#define UD_MASK 3u

struct evl_watch {
	/* Under evl->lock (kept apart from the loop-only fields below, which
	 * the loop reads without the lock). */
	struct evl_watch *next;         /* evl->watches */
	struct evl_watch *pending_next; /* evl->pending_watches */
	bool queued;                    /* on evl->pending_watches */
	_Atomic bool removing;          /* evl_del_fd() was called */
	/* Set at creation. */
	int fd;
	uint32_t events;
	evl_fd_cb cb;
	void *opaque;
	/* Loop thread only. */
	int slot;          /* registered-file slot once armed, else -1 */
	bool armed;        /* a poll request is in the kernel */
	unsigned int refs; /* CQEs still to come for it, plus dispatch holds */
};

struct evl {
	struct io_uring ring;
	bool disabled;   /* created with IORING_SETUP_R_DISABLED, not yet enabled */
	bool restricted; /* restrictions registered */

	/* Guards the pending lists, the watch list and the file table. */
	pthread_mutex_t lock;
	struct evl_io *pend_head, *pend_tail;
	struct evl_watch *pending_watches;
	struct evl_watch *watches;
	int files[EVL_MAX_FILES]; /* fd per registered slot, -1 when free */

	_Atomic bool stopping;
	_Atomic bool running;
	pthread_t loop_thread;
	int wake_fd; /* eventfd: queued work or evl_stop() */
	unsigned int inflight; /* I/O requests submitted, not completed (loop thread) */
};

#define evl_log(...) fprintf(stderr, "minivm: evl: " __VA_ARGS__)

/* Debian's liburing 2.3 leaves io_uring_register_restrictions() and
 * io_uring_enable_rings() out of its shared library's version script
 * (axboe/liburing#773), so these two go to the syscall directly. */
static int uring_register(struct io_uring *ring, unsigned int op, const void *arg, unsigned int nr)
{
	long r = syscall(__NR_io_uring_register, ring->ring_fd, op, arg, nr);

	return r < 0 ? -errno : (int)r;
}

bool evl_on_loop_thread(const struct evl *evl)
{
	return atomic_load(&evl->running) && pthread_equal(evl->loop_thread, pthread_self());
}

bool evl_restricted(const struct evl *evl)
{
	return evl->restricted;
}

static void wake(struct evl *evl)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the loop wakes anyway. */
	if (write(evl->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		evl_log("cannot wake the loop: %s\n", strerror(errno));
}

/* ---- registered files ---- */

static int slot_add(struct evl *evl, int fd)
{
	int slot = -1, r;

	pthread_mutex_lock(&evl->lock);
	for (int i = 0; i < EVL_MAX_FILES; i++) {
		if (evl->files[i] == -1) {
			slot = i;
			evl->files[i] = fd;
			break;
		}
	}
	pthread_mutex_unlock(&evl->lock);
	if (slot < 0)
		return -ENFILE;
	r = io_uring_register_files_update(&evl->ring, (unsigned int)slot, &fd, 1);
	if (r < 0) {
		pthread_mutex_lock(&evl->lock);
		evl->files[slot] = -1;
		pthread_mutex_unlock(&evl->lock);
		return r;
	}
	return slot;
}

static void slot_del(struct evl *evl, int slot)
{
	int none = -1, r;

	if (slot < 0 || slot >= EVL_MAX_FILES)
		return;
	r = io_uring_register_files_update(&evl->ring, (unsigned int)slot, &none, 1);
	if (r < 0)
		evl_log("cannot unregister file slot %d: %s\n", slot, strerror(-r));
	pthread_mutex_lock(&evl->lock);
	evl->files[slot] = -1;
	pthread_mutex_unlock(&evl->lock);
}

int evl_register_file(struct evl *evl, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (atomic_load(&evl->running) && !evl_on_loop_thread(evl))
		return -EPERM;
	return slot_add(evl, fd);
}

void evl_unregister_file(struct evl *evl, int slot)
{
	if (atomic_load(&evl->running) && !evl_on_loop_thread(evl)) {
		evl_log("evl_unregister_file off the loop thread ignored\n");
		return;
	}
	slot_del(evl, slot);
}

/* ---- submission (loop thread only) ---- */

static struct io_uring_sqe *get_sqe(struct evl *evl)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&evl->ring);

	if (!sqe) {
		/* SQ full: hand what we have to the kernel and retry once. */
		(void)io_uring_submit(&evl->ring);
		sqe = io_uring_get_sqe(&evl->ring);
	}
	return sqe;
}

static void prep_io(struct evl *evl, struct evl_io *io)
{
	struct io_uring_sqe *sqe = get_sqe(evl);

	if (!sqe) {
		io->done(io, -EBUSY);
		return;
	}
	switch (io->op) {
	case EVL_OP_READV:
		io_uring_prep_readv(sqe, io->slot, io->iov, io->niov, io->off);
		break;
	case EVL_OP_WRITEV:
		io_uring_prep_writev(sqe, io->slot, io->iov, io->niov, io->off);
		break;
	case EVL_OP_FSYNC:
		io_uring_prep_fsync(sqe, io->slot, 0);
		break;
	case EVL_OP_FDATASYNC:
		io_uring_prep_fsync(sqe, io->slot, IORING_FSYNC_DATASYNC);
		break;
	case EVL_OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, io->slot, io->mode, io->off, io->len);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, io); /* UD_IO */
	evl->inflight++;
}

static int submit(struct evl *evl, struct evl_io *io)
{
	bool was_empty, bad_slot;

	if (!io || !io->done)
		return -EINVAL;
	pthread_mutex_lock(&evl->lock);
	bad_slot = io->slot < 0 || io->slot >= EVL_MAX_FILES || evl->files[io->slot] == -1;
	if (bad_slot || atomic_load(&evl->stopping)) {
		pthread_mutex_unlock(&evl->lock);
		return bad_slot ? -EBADF : -ESHUTDOWN;
	}
	if (evl_on_loop_thread(evl)) {
		pthread_mutex_unlock(&evl->lock);
		prep_io(evl, io); /* submitted before the loop next waits */
		return 0;
	}
	io->next = NULL;
	was_empty = !evl->pend_head;
	if (evl->pend_tail)
		evl->pend_tail->next = io;
	else
		evl->pend_head = io;
	evl->pend_tail = io;
	pthread_mutex_unlock(&evl->lock);
	if (was_empty)
		wake(evl);
	return 0;
}

static int submit_rw(struct evl *evl, struct evl_io *io, enum evl_op op, int slot,
		     const struct iovec *iov, unsigned int niov, uint64_t off)
{
	if (!io || niov == 0 || niov > IOV_MAX || !iov)
		return -EINVAL;
	io->op = (uint8_t)op;
	io->slot = slot;
	io->iov = iov;
	io->niov = niov;
	io->off = off;
	return submit(evl, io);
}

int evl_readv(struct evl *evl, struct evl_io *io, int slot, const struct iovec *iov,
	      unsigned int niov, uint64_t off)
{
	return submit_rw(evl, io, EVL_OP_READV, slot, iov, niov, off);
}

int evl_writev(struct evl *evl, struct evl_io *io, int slot, const struct iovec *iov,
	       unsigned int niov, uint64_t off)
{
	return submit_rw(evl, io, EVL_OP_WRITEV, slot, iov, niov, off);
}

int evl_fsync(struct evl *evl, struct evl_io *io, int slot, bool datasync)
{
	if (!io)
		return -EINVAL;
	io->op = datasync ? EVL_OP_FDATASYNC : EVL_OP_FSYNC;
	io->slot = slot;
	return submit(evl, io);
}

int evl_fallocate(struct evl *evl, struct evl_io *io, int slot, int mode, uint64_t off, uint64_t len)
{
	if (!io)
		return -EINVAL;
	io->op = EVL_OP_FALLOCATE;
	io->slot = slot;
	io->mode = mode;
	io->off = off;
	io->len = len;
	return submit(evl, io);
}

/* ---- fd watches ---- */

static void watch_maybe_free(struct evl *evl, struct evl_watch *w)
{
	struct evl_watch **pp;

	if (!atomic_load(&w->removing) || w->refs || w->armed)
		return;
	pthread_mutex_lock(&evl->lock);
	if (w->queued) { /* still on the pending list: freed when taken off it */
		pthread_mutex_unlock(&evl->lock);
		return;
	}
	for (pp = &evl->watches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&evl->lock);
	slot_del(evl, w->slot);
	free(w);
}

static void watch_arm(struct evl *evl, struct evl_watch *w)
{
	struct io_uring_sqe *sqe;

	if (w->slot < 0) {
		int slot = slot_add(evl, w->fd);

		if (slot < 0) {
			evl_log("cannot register fd %d: %s; not watched\n", w->fd, strerror(-slot));
			return;
		}
		w->slot = slot;
	}
	sqe = get_sqe(evl);
	if (!sqe) {
		evl_log("submission queue full; fd %d not watched\n", w->fd);
		return;
	}
	io_uring_prep_poll_multishot(sqe, w->slot, w->events);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, (void *)((uintptr_t)w | UD_WATCH));
	w->armed = true;
	w->refs++;
}

static void watch_remove(struct evl *evl, struct evl_watch *w)
{
	if (w->armed) {
		struct io_uring_sqe *sqe = get_sqe(evl);

		if (sqe) {
			io_uring_prep_poll_remove(sqe, (uintptr_t)w | UD_WATCH);
			sqe->flags |= IOSQE_FIXED_FILE; /* required by the ring's restrictions */
			io_uring_sqe_set_data(sqe, (void *)((uintptr_t)w | UD_WATCH_REMOVE));
			w->refs++;
		}
		/* Without an SQE the poll stays armed until evl_destroy(); its
		 * CQEs are ignored because w->removing is set. */
	}
	watch_maybe_free(evl, w);
}

int evl_add_fd_events(struct evl *evl, int fd, uint32_t events, evl_fd_cb cb, void *opaque)
{
	struct evl_watch *w;

	if (fd < 0 || !cb)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->slot = -1;
	w->events = events;
	w->cb = cb;
	w->opaque = opaque;
	pthread_mutex_lock(&evl->lock);
	if (atomic_load(&evl->stopping)) {
		pthread_mutex_unlock(&evl->lock);
		free(w);
		return -ESHUTDOWN;
	}
	for (struct evl_watch *o = evl->watches; o; o = o->next) {
		if (o->fd == fd && !atomic_load(&o->removing)) {
			pthread_mutex_unlock(&evl->lock);
			free(w);
			return -EEXIST;
		}
	}
	w->next = evl->watches;
	evl->watches = w;
	if (!evl_on_loop_thread(evl)) {
		w->queued = true;
		w->pending_next = evl->pending_watches;
		evl->pending_watches = w;
		pthread_mutex_unlock(&evl->lock);
		wake(evl);
		return 0;
	}
	pthread_mutex_unlock(&evl->lock);
	watch_arm(evl, w);
	return 0;
}

int evl_add_fd(struct evl *evl, int fd, evl_fd_cb cb, void *opaque)
{
	return evl_add_fd_events(evl, fd, POLLIN, cb, opaque);
}

int evl_del_fd(struct evl *evl, int fd)
{
	struct evl_watch *w;

	pthread_mutex_lock(&evl->lock);
	for (w = evl->watches; w; w = w->next)
		if (w->fd == fd && !atomic_load(&w->removing))
			break;
	if (!w) {
		pthread_mutex_unlock(&evl->lock);
		return -ENOENT;
	}
	atomic_store(&w->removing, true);
	if (!evl_on_loop_thread(evl)) {
		if (!w->queued) {
			w->queued = true;
			w->pending_next = evl->pending_watches;
			evl->pending_watches = w;
		}
		pthread_mutex_unlock(&evl->lock);
		wake(evl);
		return 0;
	}
	pthread_mutex_unlock(&evl->lock);
	watch_remove(evl, w);
	return 0;
}

static void wake_cb(void *opaque, int fd, uint32_t revents)
{
	uint64_t v;

	(void)opaque;
	(void)revents;
	/* Drain the counter; the loop looks at its lists and flags anyway. */
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		evl_log("wake eventfd: %s\n", strerror(errno));
}

/* ---- the loop ---- */

/* Takes the work other threads queued. With `stopping`, I/O is failed
 * with -ECANCELED and no new watch is armed. */
static void take_pending(struct evl *evl, bool stopping)
{
	struct evl_io *io;
	struct evl_watch *w;

	pthread_mutex_lock(&evl->lock);
	io = evl->pend_head;
	evl->pend_head = evl->pend_tail = NULL;
	w = evl->pending_watches;
	evl->pending_watches = NULL;
	for (struct evl_watch *x = w; x; x = x->pending_next)
		x->queued = false;
	pthread_mutex_unlock(&evl->lock);

	while (w) {
		struct evl_watch *next = w->pending_next;

		if (atomic_load(&w->removing))
			watch_remove(evl, w);
		else if (!stopping && !w->armed)
			watch_arm(evl, w);
		w = next;
	}
	while (io) {
		struct evl_io *next = io->next;

		if (stopping)
			io->done(io, -ECANCELED);
		else
			prep_io(evl, io);
		io = next;
	}
}

static void dispatch(struct evl *evl, uint64_t ud, int res, unsigned int flags, bool fds)
{
	struct evl_watch *w = (struct evl_watch *)(uintptr_t)(ud & ~(uint64_t)UD_MASK);

	switch (ud & UD_MASK) {
	case UD_IO: {
		struct evl_io *io = (struct evl_io *)(uintptr_t)ud;

		evl->inflight--;
		io->done(io, res);
		return;
	}
	case UD_WATCH:
		w->refs++; /* keeps w alive if the callback calls evl_del_fd() */
		if (!(flags & IORING_CQE_F_MORE)) {
			w->armed = false;
			w->refs--;
		}
		if (res > 0 && fds && !atomic_load(&w->removing))
			w->cb(w->opaque, w->fd, (uint32_t)res);
		if (res < 0 && res != -ECANCELED && !atomic_load(&w->removing))
			evl_log("poll on fd %d failed: %s\n", w->fd, strerror(-res));
		/* A multishot poll ends on overflow or error: re-arm it unless
		 * it failed (re-arming a failing poll would spin). */
		if (!w->armed && res >= 0 && fds && !atomic_load(&w->removing))
			watch_arm(evl, w);
		w->refs--;
		watch_maybe_free(evl, w);
		return;
	case UD_WATCH_REMOVE:
		w->refs--;
		watch_maybe_free(evl, w);
		return;
	case UD_CANCEL:
		if (res < 0 && res != -ENOENT)
			evl_log("cancelling requests at stop: %s\n", strerror(-res));
		return;
	}
}

static void reap(struct evl *evl, bool fds)
{
	struct io_uring_cqe *cqe;

	/* One at a time, marked seen before dispatch: callbacks may queue
	 * more SQEs (and submit when the SQ is full). */
	while (io_uring_peek_cqe(&evl->ring, &cqe) == 0) {
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		unsigned int flags = cqe->flags;

		io_uring_cqe_seen(&evl->ring, cqe);
		dispatch(evl, ud, res, flags, fds);
	}
}

static int wait_once(struct evl *evl)
{
	int r = io_uring_submit_and_wait(&evl->ring, 1);

	if (r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ETIME)
		return 0;
	return r;
}

int evl_run(struct evl *evl)
{
	int r, ret = 0;

	evl->loop_thread = pthread_self();
	atomic_store(&evl->running, true);
	if (evl->disabled) {
		/* Enabling on this thread makes it the ring's single issuer. */
		r = uring_register(&evl->ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		if (r < 0) {
			evl_log("cannot enable the ring: %s\n", strerror(-r));
			atomic_store(&evl->stopping, true);
			ret = r;
		}
		evl->disabled = false;
	}
	while (!atomic_load(&evl->stopping)) {
		take_pending(evl, false);
		r = wait_once(evl);
		if (r < 0) {
			evl_log("io_uring_enter: %s\n", strerror(-r));
			ret = r;
			break;
		}
		reap(evl, true);
	}
	/* Stopping: no more fd callbacks; cancel what can be cancelled (polls,
	 * reads waiting on pipes or sockets; file I/O already under way
	 * completes), fail what was queued, and wait for every request. */
	atomic_store(&evl->stopping, true);
	take_pending(evl, true);
	if (ret == 0) {
		struct io_uring_sqe *sqe = get_sqe(evl);

		if (sqe) {
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY); /* 5.19 */
			sqe->flags |= IOSQE_FIXED_FILE; /* required by the restrictions */
			io_uring_sqe_set_data64(sqe, UD_CANCEL);
		}
	}
	while (ret == 0 && evl->inflight) {
		r = wait_once(evl);
		if (r < 0) {
			evl_log("io_uring_enter while draining: %s\n", strerror(-r));
			ret = r;
			break;
		}
		reap(evl, false);
		take_pending(evl, true);
	}
	atomic_store(&evl->running, false);
	return ret;
}

void evl_stop(struct evl *evl)
{
	uint64_t one = 1;

	atomic_store(&evl->stopping, true);
	/* write(2) is async-signal-safe; a full counter still wakes the loop. */
	if (write(evl->wake_fd, &one, sizeof(one)) < 0) {
		/* nothing safe to do in a signal handler */
	}
}

/* ---- setup and teardown ---- */

static int ring_init(struct evl *evl, unsigned int entries)
{
	/* Newest first; each step back drops what an older kernel lacks. */
	static const unsigned int flag_sets[] = {
		IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN, /* 6.1 */
		IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL, /* 5.18 */
		IORING_SETUP_R_DISABLED,                           /* 5.10 */
		0,
	};
	int r = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		r = io_uring_queue_init_params(entries, &evl->ring, &p);
		if (r == 0) {
			evl->disabled = p.flags & IORING_SETUP_R_DISABLED;
			if (i > 0)
				evl_log("kernel lacks some io_uring setup flags (using 0x%x)\n", p.flags);
			return 0;
		}
		if (r != -EINVAL)
			return r;
	}
	return r;
}

static int files_init(struct evl *evl)
{
	int fds[EVL_MAX_FILES];
	int r;

	for (int i = 0; i < EVL_MAX_FILES; i++)
		evl->files[i] = -1;
	r = io_uring_register_files_sparse(&evl->ring, EVL_MAX_FILES);
	if (r == 0)
		return 0;
	/* Before 5.19: a table of -1 entries is a sparse table too. */
	for (int i = 0; i < EVL_MAX_FILES; i++)
		fds[i] = -1;
	return io_uring_register_files(&evl->ring, fds, EVL_MAX_FILES);
}

static void restrict_ring(struct evl *evl)
{
	static const uint8_t ops[] = {
		IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_READV,
		IORING_OP_WRITEV,   IORING_OP_FSYNC,       IORING_OP_FALLOCATE,
		IORING_OP_ASYNC_CANCEL,
	};
	struct io_uring_restriction res[sizeof(ops) + 3];
	unsigned int n = 0;
	int r;

	if (!evl->disabled) {
		/* Restrictions need IORING_SETUP_R_DISABLED (5.10). */
		evl_log("io_uring restrictions unavailable on this kernel; ring unrestricted\n");
		return;
	}
	memset(res, 0, sizeof(res));
	res[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[n++].register_op = IORING_REGISTER_FILES_UPDATE;
	for (size_t i = 0; i < sizeof(ops); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	r = uring_register(&evl->ring, IORING_REGISTER_RESTRICTIONS, res, n);
	if (r < 0) {
		evl_log("io_uring restrictions refused (%s); ring unrestricted\n", strerror(-r));
		return;
	}
	evl->restricted = true;
}

struct evl *evl_create(unsigned int entries, char *err, size_t errlen)
{
	struct evl *evl = calloc(1, sizeof(*evl));
	int r;

	if (!evl) {
		snprintf(err, errlen, "event loop: out of memory");
		return NULL;
	}
	evl->wake_fd = -1;
	r = pthread_mutex_init(&evl->lock, NULL);
	if (r) {
		snprintf(err, errlen, "event loop: pthread_mutex_init: %s", strerror(r));
		goto err_free;
	}
	evl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (evl->wake_fd < 0) {
		snprintf(err, errlen, "event loop: eventfd: %s", strerror(errno));
		goto err_mutex;
	}
	r = ring_init(evl, entries ? entries : 256);
	if (r < 0) {
		snprintf(err, errlen, "event loop: io_uring_setup: %s%s", strerror(-r),
			 r == -EPERM ? " (io_uring disabled? see kernel.io_uring_disabled)" : "");
		goto err_wake;
	}
	r = files_init(evl);
	if (r < 0) {
		snprintf(err, errlen, "event loop: registering the file table: %s", strerror(-r));
		goto err_ring;
	}
	restrict_ring(evl);
	r = evl_add_fd(evl, evl->wake_fd, wake_cb, evl);
	if (r < 0) {
		snprintf(err, errlen, "event loop: watching its eventfd: %s", strerror(-r));
		goto err_ring;
	}
	return evl;

err_ring:
	io_uring_queue_exit(&evl->ring);
err_wake:
	close(evl->wake_fd);
err_mutex:
	pthread_mutex_destroy(&evl->lock);
err_free:
	free(evl);
	return NULL;
}

void evl_destroy(struct evl *evl)
{
	struct evl_watch *w;

	if (!evl)
		return;
	if (atomic_load(&evl->running))
		evl_log("evl_destroy while the loop runs: leaking it\n");
	if (atomic_load(&evl->running))
		return;
	/* Closing the ring cancels the remaining polls; only then free. */
	io_uring_queue_exit(&evl->ring);
	while ((w = evl->watches)) {
		evl->watches = w->next;
		free(w);
	}
	if (evl->pend_head)
		evl_log("evl_destroy: I/O queued but never submitted (was evl_run called?)\n");
	close(evl->wake_fd);
	pthread_mutex_destroy(&evl->lock);
	free(evl);
}
