/* The virtio-mmio transport (version 2): registers, status state machine, feature negotiation, queues, interrupts. */
#ifndef MINIVM_VIRTIO_MMIO_H
#define MINIVM_VIRTIO_MMIO_H

#include <stdint.h>

#include "devices/virtio_dev.h"
#include "vmm/guest_mem.h"

/* One device per 4 KiB slot: registers at 0x000-0x0ff, config from 0x100. */
#define VMMIO_SLOT_SIZE 0x1000
/* Where the per-queue ioeventfd goes: slot base + VMMIO_NOTIFY_OFF, 4 bytes,
 * datamatch = queue index (the value the driver writes to QueueNotify). */
#define VMMIO_NOTIFY_OFF 0x50

struct vmmio;

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

/* Resets the device (in-flight work is dropped as on a guest reset), then
 * destroys it and frees the transport. For teardown the event loop must have
 * stopped first (evl_run returned), so no completion is still to come. NULL
 * is fine. */
void vmmio_destroy(struct vmmio *t);

#endif
