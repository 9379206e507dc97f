/* The device side of a split virtqueue: pops bounded, checked descriptor chains and returns used buffers. */
#ifndef MINIVM_VIRTQ_H
#define MINIVM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

/*
 * The largest queue size any minivm device offers (QueueNumMax). A chain
 * never holds more segments than the queue size, so a struct virtq_chain has
 * room for any chain of any queue.
 */
#define VIRTQ_MAX_SIZE 256

/* One buffer of a chain: a guest range already checked with gm_ptr(). */
struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable (VIRTQ_DESC_F_WRITE) */
};

/*
 * A descriptor chain copied out of guest memory. seg[0..nread) are
 * device-readable and seg[nread..nseg) device-writable (virtq_pop() refuses
 * chains that mix the order, spec 2.7.4.2). read_len and write_len are the
 * byte totals of each part; both fit in 32 bits.
 */
struct virtq_chain {
	uint16_t head;
	uint16_t nseg;
	uint16_t nread;
	uint32_t read_len;
	uint32_t write_len;
	struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

/*
 * One split virtqueue. The layout fields are the guest's register values,
 * written by the transport while the queue is not ready; the rest is the
 * device's private ring state. Not thread-safe: the transport serialises
 * every call for one queue under its lock.
 */
struct virtq {
	/* Layout, from the transport's registers (QueueNum, QueueDesc, ...). */
	const struct guest_mem *gm;
	uint16_t size;       /* QueueNum; a power of 2, checked by virtq_check() */
	uint64_t desc_gpa;   /* QueueDesc: descriptor table */
	uint64_t avail_gpa;  /* QueueDriver: available ring */
	uint64_t used_gpa;   /* QueueDevice: used ring */
	bool ready;          /* QueueReady, set only after virtq_check() passed */
	bool event_idx;      /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;       /* VIRTIO_F_INDIRECT_DESC negotiated */

	/* Device-side state; never read back from guest memory. */
	uint16_t last_avail;     /* next available-ring slot to consume */
	uint16_t used_idx;       /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when we last decided about an interrupt */
	bool signalled_valid;
	uint16_t inflight;       /* chains popped and not yet pushed */
	uint64_t inflight_map[VIRTQ_MAX_SIZE / 64]; /* by head */
	const char *error;       /* why the last call failed (a static string) */
};

/* Zeroes vq (layout and state) and binds it to gm, which must outlive it. */
void virtq_init(struct virtq *vq, const struct guest_mem *gm);

/* Forgets the layout and every in-flight chain (device reset): afterwards
 * the queue is not ready and virtq_push() refuses the old heads. */
void virtq_reset(struct virtq *vq);

/*
 * Checks the layout the guest wrote before the queue goes live: size a power
 * of 2 in [1, max_size] (max_size <= VIRTQ_MAX_SIZE), each area aligned as
 * spec 2.7.1 requires and wholly inside RAM (both rings with their event
 * fields). Returns 0 or -EINVAL with vq->error set. Resets the ring state.
 */
int virtq_check(struct virtq *vq, uint16_t max_size) __attribute__((warn_unused_result));

/*
 * Takes the next available chain. Returns 1 with *c filled, 0 when the ring
 * is empty, or -EINVAL when the ring is broken (vq->error says how): avail
 * index jumped by more than the queue size, head or next out of range, a
 * head already in flight, a chain longer than the queue (a loop), an address
 * or indirect table outside RAM, nested or malformed indirect descriptors,
 * readable after writable, a part longer than 4 GiB. A broken ring is a
 * device error (the transport sets NEEDS_RESET); nothing is consumed.
 * Each descriptor is copied once from guest memory before it is checked.
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *c) __attribute__((warn_unused_result));

/*
 * Returns the chain at `head` with `len` bytes written to its device-writable
 * part: writes the used element, then used->idx. -EINVAL when head is not in
 * flight (a device bug; nothing written). Any order of heads is allowed.
 */
int virtq_push(struct virtq *vq, uint16_t head, uint32_t len) __attribute__((warn_unused_result));

/*
 * Gives back the chain at `head`, popped last and not yet pushed, as if it
 * had never been popped: the next virtq_pop() returns it again (snapshot
 * quiescing: a device holding a chain it has not used). Chains popped
 * after it must have been given back first (LIFO). -EINVAL when head is
 * not in flight or nothing was popped; nothing changes then.
 */
int virtq_unpop(struct virtq *vq, uint16_t head) __attribute__((warn_unused_result));

/*
 * After one or more virtq_push() calls: whether the driver wants a used
 * buffer notification (interrupt), honouring VIRTQ_AVAIL_F_NO_INTERRUPT or,
 * with VIRTIO_F_EVENT_IDX, used_event (spec 2.7.10).
 */
bool virtq_should_notify(struct virtq *vq);

/*
 * Call when virtq_pop() returned 0: with VIRTIO_F_EVENT_IDX, publishes
 * avail_event so the driver notifies on its next buffer; then re-reads the
 * available index. Returns true when buffers arrived meanwhile (pop again).
 */
bool virtq_enable_notify(struct virtq *vq);

#endif
