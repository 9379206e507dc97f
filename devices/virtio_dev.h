/* The interface between a virtio device (blk, rng, ...) and its transport: a handful of hooks each way. */
#ifndef MINIVM_VIRTIO_DEV_H
#define MINIVM_VIRTIO_DEV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "devices/virtq.h"
#include "vmm/minivm.h"

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;
struct snap_writer;
struct snap_cursor;

/*
 * Device hooks. The transport calls every hook with its lock held, so hooks
 * of one device never run concurrently with each other or with the
 * device's own virtio_dev_lock() sections. Hooks may run on a vCPU thread
 * (MMIO exits) or on the event-loop thread (ioeventfd notifications).
 */
struct virtio_dev_ops {
	/* Config space access at `off` (from the start of the device's config,
	 * i.e. MMIO 0x100); the transport has checked off + len <= config_size
	 * and len is 1, 2, 4 or 8. Little-endian, as the guest sees it. */
	void (*config_read)(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len);
	void (*config_write)(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len);
	/* The driver set DRIVER_OK: dev->acked holds the negotiated features and
	 * dev->vqs[i] the queues (only those with .ready set are usable). 0, or
	 * -errno and the transport sets NEEDS_RESET. */
	int (*activate)(struct virtio_dev *dev);
	/* The driver notified queue q (< num_queues); only between activate and
	 * reset, never while NEEDS_RESET or FAILED is set. */
	void (*queue_notify)(struct virtio_dev *dev, unsigned int q);
	/* Device reset (status 0 written, or teardown): forget the queues. Work
	 * still in flight must not touch the rings or raise interrupts once
	 * this returns (it may complete later and be dropped). May be called
	 * without a prior activate. */
	void (*reset)(struct virtio_dev *dev);
	/* Frees the device; called once, after reset, without the lock. */
	void (*destroy)(struct virtio_dev *dev);

	/* ---- snapshot support: every hook below is optional (NULL) ---- */
	/* on: stop taking new work from the queues and from the backend (work
	 * already started still completes and is returned to the used ring),
	 * and give back (virtq_unpop) every chain popped but not in use yet,
	 * so that nothing is in flight once started work is done. off: take
	 * work again (the transport then notifies every ready queue). May be
	 * called while the device is not active. Lock held. */
	void (*quiesce)(struct virtio_dev *dev, bool on);
	/* Work started and not complete yet, counting work of before a reset
	 * that no longer has a chain but may still write guest memory. Lock held. */
	unsigned int (*busy)(struct virtio_dev *dev);
	/* Device-specific state for a snapshot (after the transport's), e.g.
	 * the disk's capacity or the NIC's addresses. Quiesced, lock held.
	 * 0 or -errno (the writer's sticky error). */
	int (*save)(struct virtio_dev *dev, struct snap_writer *w);
	/* Reads back what save wrote, from an untrusted snapshot: validates all
	 * of it against the device before changing anything, then applies it;
	 * must consume c exactly. Called on a fresh device, before activate.
	 * 0, or -EINVAL/-EBADMSG with a message (without the device's name) in
	 * err. Lock held. */
	int (*restore)(struct virtio_dev *dev, struct snap_cursor *c, char *err, size_t errlen);
};

/* Upcalls a transport provides to its device (see the helpers below). */
struct virtio_transport_ops {
	void (*lock)(void *t);
	void (*unlock)(void *t);
	void (*notify)(void *t, unsigned int q);
	void (*needs_reset)(void *t);
};

/* A rate limit for guest-triggered log lines: a burst per window. */
struct virtio_ratelimit {
	struct timespec window_start;
	unsigned int printed;
	unsigned int suppressed;
};

/*
 * A device's counters for metrics (minivm.h, struct minivm_device_metrics,
 * says what reads and writes mean per kind). Relaxed atomics: the device
 * adds under its own lock, on whichever thread serves it, and a reader on
 * another thread (the VMM's control thread) takes a snapshot without the
 * lock; a counter is exact, a set of them is not taken atomically.
 */
struct virtio_stats {
	_Atomic uint64_t reads, writes, read_bytes, write_bytes;
	_Atomic uint64_t flushes, throttled, denied, errors;
};

static inline void virtio_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Copies the counters into out's counter fields (its names are left alone). Any thread. */
void virtio_stats_read(const struct virtio_stats *s, struct minivm_device_metrics *out);

/*
 * Where a device reports what the VM's owner should hear about as events
 * (minivm.h, struct minivm_event): a policy denial, a device the guest
 * broke. Called with the device's lock held, on the thread serving it: it
 * must not block nor call back into the device. NULL: nobody listens.
 */
typedef void (*virtio_event_fn)(void *opaque, const struct minivm_event *ev);

/*
 * A device as the transport sees it. The device fills the first block at
 * creation; the transport fills the second when it binds the device.
 */
struct virtio_dev {
	const struct virtio_dev_ops *ops;
	const char *name;      /* for log lines, e.g. "virtio-blk vda" */
	uint32_t device_id;    /* VIRTIO_ID_* */
	uint64_t features;     /* offered; must include VIRTIO_F_VERSION_1 */
	uint32_t config_size;  /* bytes of device config space */
	unsigned int num_queues; /* 1..VIRTIO_MAX_QUEUES */
	uint16_t queue_max;    /* QueueNumMax: a power of 2 <= VIRTQ_MAX_SIZE */

	/* Set by the transport. */
	const struct virtio_transport_ops *tops;
	void *transport;
	uint64_t acked;        /* negotiated features, valid from activate until reset */
	struct virtq *vqs;     /* num_queues queues, owned by the transport */
	struct virtio_ratelimit rl; /* under the transport lock */

	/* Metrics and events: any time before the VM runs (vm_devices.c). */
	struct virtio_stats stats;
	virtio_event_fn event_fn;
	void *event_opaque;
};

/* Takes/releases the transport lock: for device work that does not come
 * through a hook (I/O completions on the event-loop thread). */
static inline void virtio_dev_lock(struct virtio_dev *dev)
{
	dev->tops->lock(dev->transport);
}

static inline void virtio_dev_unlock(struct virtio_dev *dev)
{
	dev->tops->unlock(dev->transport);
}

/* After virtq_push() on queue q: raises the used-buffer interrupt if the
 * driver wants one (virtq_should_notify). Lock held. */
static inline void virtio_dev_notify(struct virtio_dev *dev, unsigned int q)
{
	dev->tops->notify(dev->transport, q);
}

/*
 * The guest broke the device (a malformed ring): logs `why` (rate-limited),
 * sets DEVICE_NEEDS_RESET and sends a config-change interrupt; the transport
 * stops delivering notifications until the driver resets. Lock held.
 */
void virtio_dev_fail(struct virtio_dev *dev, const char *why);

/* Hands ev to dev->event_fn when set. Lock held. */
void virtio_dev_event(struct virtio_dev *dev, const struct minivm_event *ev);

/* A rate-limited log line about guest behaviour: "minivm: <name>: ...".
 * At most a burst of lines per few seconds per device, then a count of the
 * suppressed ones. Lock held. */
void virtio_dev_log(struct virtio_dev *dev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
