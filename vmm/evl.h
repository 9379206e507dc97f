/* The event loop: one thread on io_uring serving fd readiness (eventfds, timers, sockets) and tagged backend I/O. */
#ifndef MINIVM_EVL_H
#define MINIVM_EVL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Threads. One thread runs evl_run() (the loop thread). Only that thread
 * ever touches the ring after evl_run() started: fd callbacks and I/O
 * completions run there, and requests made from any other thread (a vCPU
 * thread on an MMIO exit, the setup thread) are queued and submitted by the
 * loop thread. That keeps the io_uring task work of every request on the
 * loop thread (the ring is IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where
 * the kernel allows), so a vCPU thread's KVM_RUN is never interrupted by it.
 *
 * Call order: evl_create() -> evl_register_file() / evl_add_fd() (setup) ->
 * evl_run() on its thread -> ... -> evl_stop() from anywhere -> evl_run()
 * returns once every submitted I/O has completed -> evl_destroy().
 * Start the loop before vCPUs run and stop vCPUs before stopping the loop.
 *
 * Lock-down: every request uses a registered file (IOSQE_FIXED_FILE is
 * required) and only the opcodes it uses are allowed (POLL_ADD, POLL_REMOVE,
 * READV, WRITEV, FSYNC, FALLOCATE, ASYNC_CANCEL); register calls after start are limited
 * to file-table updates. evl_restricted() says whether the kernel took the
 * restrictions.
 */
struct evl;

/*
 * The tag of one I/O request. The submitter embeds it in its own request
 * struct (container_of) and sets `done`, which runs exactly once on the loop
 * thread with the result (bytes transferred or -errno; -ECANCELED if the
 * loop stopped before the request was submitted). The tag, and the iovec
 * array passed with it, must stay valid until `done` runs.
 */
struct evl_io {
	void (*done)(struct evl_io *io, int res);
	/* Private to vmm/evl.c. */
	struct evl_io *next;
	const struct iovec *iov;
	uint64_t off;
	uint64_t len;
	int slot;
	unsigned int niov;
	int mode;
	uint8_t op;
};

/* Runs on the loop thread when fd is ready; revents is a poll(2) mask
 * (POLLERR/POLLHUP included). It must consume the readiness (read the
 * eventfd, accept the connection...): the poll is multishot and fires again
 * only on the next wake-up of the fd. */
typedef void (*evl_fd_cb)(void *opaque, int fd, uint32_t revents);

#define EVL_MAX_FILES 64 /* registered-file slots, watched fds included */

/*
 * A loop whose ring has `entries` submission slots (rounded up to a power of
 * 2 by the kernel). Returns NULL with a message in err on failure.
 */
struct evl *evl_create(unsigned int entries, char *err, size_t errlen);

/*
 * Registers fd (not owned; keep it open while registered) for backend I/O.
 * Returns its slot (>= 0) or -errno (-ENFILE when the table is full).
 * Call before evl_run() or on the loop thread.
 */
int evl_register_file(struct evl *evl, int fd) __attribute__((warn_unused_result));
void evl_unregister_file(struct evl *evl, int slot);

/*
 * Calls cb(opaque, fd, revents) on the loop thread whenever fd becomes
 * readable (evl_add_fd) or matches `events` (POLLIN, POLLOUT...). fd stays
 * the caller's and must stay open until evl_del_fd(). Any thread. Returns 0,
 * -EEXIST if fd is already watched, -ENOMEM, -ESHUTDOWN after evl_stop().
 */
int evl_add_fd(struct evl *evl, int fd, evl_fd_cb cb, void *opaque)
	__attribute__((warn_unused_result));
int evl_add_fd_events(struct evl *evl, int fd, uint32_t events, evl_fd_cb cb, void *opaque)
	__attribute__((warn_unused_result));

/* Stops watching fd; no callback for it runs once this returns on the loop
 * thread (from another thread, one already dispatched may still be
 * running). Any thread. -ENOENT if fd is not watched. */
int evl_del_fd(struct evl *evl, int fd);

/*
 * Backend I/O on a registered slot, tagged with io (io->done set by the
 * caller). Any thread. Returns 0 when the request is accepted (io->done will
 * run), or -errno and io->done will not run: -EBADF for a bad slot, -EINVAL
 * for niov == 0 or > IOV_MAX, -ESHUTDOWN once the loop is stopping.
 */
int evl_readv(struct evl *evl, struct evl_io *io, int slot, const struct iovec *iov,
	      unsigned int niov, uint64_t off) __attribute__((warn_unused_result));
int evl_writev(struct evl *evl, struct evl_io *io, int slot, const struct iovec *iov,
	       unsigned int niov, uint64_t off) __attribute__((warn_unused_result));
/* fdatasync(2) when datasync, else fsync(2). */
int evl_fsync(struct evl *evl, struct evl_io *io, int slot, bool datasync)
	__attribute__((warn_unused_result));
/* fallocate(2) with mode (FALLOC_FL_*). */
int evl_fallocate(struct evl *evl, struct evl_io *io, int slot, int mode, uint64_t off, uint64_t len)
	__attribute__((warn_unused_result));

/*
 * Runs the loop on the calling thread until evl_stop(); then stops calling
 * fd callbacks, fails queued requests with -ECANCELED, cancels submitted
 * ones that are still waiting (a read on a pipe or socket; file I/O under way
 * completes normally), waits for every submitted I/O to complete (running
 * its `done`), and returns 0, or -errno if the ring failed. Call once.
 */
int evl_run(struct evl *evl) __attribute__((warn_unused_result));

/* Asks evl_run() to return. Any thread; async-signal-safe. */
void evl_stop(struct evl *evl);

/* Whether the calling thread is the loop thread of a running loop. */
bool evl_on_loop_thread(const struct evl *evl);

/* Whether the kernel accepted the opcode/fixed-file restrictions. */
bool evl_restricted(const struct evl *evl);

/* Frees the loop; evl_run() must have returned (or never run). NULL is fine. */
void evl_destroy(struct evl *evl);

#endif
