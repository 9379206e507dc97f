/* The virtio-mmio transport (version 2): registers, status state machine, feature negotiation, queues, interrupts. */
#ifndef MINIVM_VIRTIO_MMIO_H
#define MINIVM_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_dev.h"
#include "vmm/guest_mem.h"

/* One device per 4 KiB slot: registers at 0x000-0x0ff, config from 0x100. */
#define VMMIO_SLOT_SIZE 0x1000
/* Where the per-queue ioeventfd goes: slot base + VMMIO_NOTIFY_OFF, 4 bytes,
 * datamatch = queue index (the value the driver writes to QueueNotify). */
#define VMMIO_NOTIFY_OFF 0x50

struct vmmio;
struct snap_writer;
struct snap_cursor;

/*
 * Threads: one mutex per transport serialises everything: vmmio_read/write
 * (vCPU threads, any of them), vmmio_queue_notify (the event-loop thread),
 * and the device's own completion work (virtio_dev_lock). Device hooks run
 * with it held. The functions below may be called from any thread.
 *
 * Interrupts: the transport sets InterruptStatus bits and writes 1 to irq_fd
 * (an eventfd the VMM binds to the slot's GSI with KVM_IRQFD, edge) when a
 * bit goes from clear to set; a bit that is still set means the guest has
 * not read it yet and will see the new work when it does (Linux reads and
 * acknowledges InterruptStatus before it walks the used rings), so no edge
 * is sent for it and the guest gets no spurious interrupt.
 */

/*
 * Binds dev to a new transport. gm (guest RAM) must outlive the transport;
 * irq_fd stays the caller's and must stay open until vmmio_destroy().
 * dev must offer VIRTIO_F_VERSION_1, have 1..VIRTIO_MAX_QUEUES queues, a
 * power-of-2 queue_max <= VIRTQ_MAX_SIZE and config_size <= 0xf00. On success
 * the transport owns dev (vmmio_destroy destroys it); on failure returns
 * NULL with errno set (EINVAL, ENOMEM) and dev is still the caller's.
 */
struct vmmio *vmmio_create(struct virtio_dev *dev, const struct guest_mem *gm, int irq_fd);

/*
 * An MMIO access at `off` inside the slot (0 <= off < VMMIO_SLOT_SIZE), len
 * 1, 2, 4 or 8. Registers below 0x100 take aligned 32-bit accesses only;
 * config space takes any access inside config_size. A bad size or offset is
 * logged (rate-limited) and ignored; a bad read returns zeros.
 */
void vmmio_read(struct vmmio *t, uint64_t off, void *data, unsigned int len);
void vmmio_write(struct vmmio *t, uint64_t off, const void *data, unsigned int len);

/* Queue q was notified through its ioeventfd (the event-loop thread calls
 * this after reading the eventfd). Same as writing q to QueueNotify. */
void vmmio_queue_notify(struct vmmio *t, unsigned int q);

/* The number of queues (one ioeventfd each). */
unsigned int vmmio_num_queues(const struct vmmio *t);

/* The device's status register, for logs and tests. */
uint32_t vmmio_status(struct vmmio *t);

/* The device the transport owns (its id, name and ops). */
struct virtio_dev *vmmio_device(struct vmmio *t);

/*
 * Snapshot and restore (vmm/snap.h sections; the format is in vmm/SNAPSHOT.md).
 *
 * Snapshot, with every vCPU paused (no register access can come):
 *   vmmio_quiesce() -> wait until vmmio_inflight() is 0 (completions arrive
 *   on the event loop, which keeps running) -> vmmio_save() -> either
 *   vmmio_resume() (the VM goes on) or vmmio_destroy().
 * Restore, into a transport just made by vmmio_create() (the guest has never
 * touched it) and guest RAM that already holds the snapshot's memory:
 *   vmmio_restore() (no side effect on guest memory or interrupts; leaves
 *   the transport quiesced) -> the machine restores irqchip and vCPUs ->
 *   vmmio_resume() -> vCPUs run.
 */

/* Stops the device taking work (queue notifications are ignored, the
 * device's quiesce hook stops its backend and gives back held chains);
 * started work still completes. Idempotent. Any thread. */
void vmmio_quiesce(struct vmmio *t);

/* Chains popped and not returned, plus the device's own started work
 * (its busy hook): 0 once a quiesced device is idle. Any thread. */
unsigned int vmmio_inflight(struct vmmio *t);

/*
 * Appends section (SNAP_TAG_VIRTIO, instance): the transport's registers,
 * each queue's layout and device-side positions, then the device's own
 * state (its save hook). The transport must be quiesced (-EINVAL) and idle
 * (-EBUSY: vmmio_inflight() is not 0). 0 or -errno (the writer's error).
 */
int vmmio_save(struct vmmio *t, struct snap_writer *w, uint32_t instance)
	__attribute__((warn_unused_result));

/*
 * Reads a section written by vmmio_save() from c (untrusted: every field is
 * validated against this device and guest RAM before anything changes:
 * device id, queue count, status a state the driver can reach, interrupt
 * bits, driver features a subset of what the device offers now, queue
 * sizes within QueueNumMax, ring addresses aligned and inside RAM, ring
 * positions consistent with nothing in flight; then the device's restore
 * hook, which must consume the rest exactly). Applies it and, when the
 * device was running, activates it as on DRIVER_OK. The transport stays
 * quiesced until vmmio_resume(). 0, or -EBUSY (the transport is not fresh),
 * -EBADMSG (truncated, trailing bytes), -EINVAL (a field out of range, the
 * activation failed) with a one-line message naming the device in err. On
 * failure the transport may be half restored: destroy it.
 */
int vmmio_restore(struct vmmio *t, struct snap_cursor *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Lets the device take work again: resumes its backend, notifies it of
 * every ready queue (buffers the guest made available meanwhile, or before
 * the snapshot, get served: with EVENT_IDX the guest does not notify twice)
 * and, when InterruptStatus has bits set, sends the interrupt again (the
 * restored guest may not have seen it; a spurious one is harmless). No-op
 * when not quiesced. Any thread. */
void vmmio_resume(struct vmmio *t);

/* Resets the device (in-flight work is dropped as on a guest reset), then
 * destroys it and frees the transport. For teardown the event loop must have
 * stopped first (evl_run returned), so no completion is still to come. NULL
 * is fine. */
void vmmio_destroy(struct vmmio *t);

#endif
