/* Device state in snapshots: quiescing, saving and restoring every device of a VM (vmm/vm_devices.c), for the machine side's snapshot code. */
#ifndef MINIVM_VM_SNAPSHOT_H
#define MINIVM_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

struct minivm;
struct snap_writer;
struct snap_reader;

/* How long vm_devices_quiesce() waits for started work by default. */
#define VM_QUIESCE_TIMEOUT_MS 5000u

/*
 * Sections written (vmm/snap.h; layouts in vmm/SNAPSHOT.md):
 *   SNAP_TAG_VIRTIO, instance = slot index (0 .. nr_devs-1): the virtio-mmio
 *     transport's registers, each queue's layout and device-side ring
 *     positions, then the device's own state (blk: capacity and read-only;
 *     net: MAC and guest addresses; vsock: CID, connections not carried;
 *     rng: nothing).
 *   SNAP_TAG_UART, SNAP_TAG_RTC, SNAP_TAG_I8042, instance 0.
 *
 * Snapshot, in this order:
 *   1. every vCPU paused (out of KVM_RUN, kept out);
 *   2. vm_devices_quiesce(vm, timeout): devices stop taking work from their
 *      queues and backends, give back chains they held unused, and the
 *      event loop (still running) completes what was started, so nothing is
 *      in flight and the rings in guest memory are consistent; from here
 *      until step 5 no device writes guest memory;
 *   3. vm_devices_save(vm, w) and the machine's own sections, and the
 *      memory file;
 *   4. (the snapshot is written)
 *   5. vm_devices_resume(vm, false) if the VM goes on, then vCPUs resume;
 *      its vsock connections are untouched. Or destroy the VM.
 *
 * Restore, in this order:
 *   1. the VM made from the same configuration as the snapshot's (same
 *      disks in the same order, same net addresses, vsock present or not):
 *      minivm setup including vm_devices_setup(), guest RAM mapped with the
 *      snapshot's memory; vCPUs not running;
 *   2. vm_devices_restore(vm, r, ...): every slot's section checked and
 *      applied (devices activated as on DRIVER_OK, quiesced: no guest memory
 *      write, no interrupt yet), UART, RTC and i8042 likewise;
 *   3. the machine restores irqchip, PIT, clock and vCPU state;
 *   4. vm_devices_start() (the event loop) — before or after step 5;
 *   5. vm_devices_resume(vm, true), from a thread that is not a vCPU thread
 *      (a rate-limited NIC may arm a timerfd): queues served again,
 *      pending interrupts sent again, and the vsock device sends
 *      VIRTIO_VSOCK_EVENT_TRANSPORT_RESET so the guest drops connections of
 *      the snapshot's time and keeps its listening sockets;
 *   6. vCPUs run.
 */

/*
 * Quiesces every device and waits, up to timeout_ms, until none has work
 * in flight (completions run on the event loop thread, which must be
 * running; a VM whose loop never started has nothing in flight). vCPUs must
 * be paused. 0, or -ETIMEDOUT with vm's error naming the device that is
 * still busy (the devices stay quiesced: resume or destroy).
 */
int vm_devices_quiesce(struct minivm *vm, unsigned int timeout_ms) __attribute__((warn_unused_result));

/*
 * Appends the device sections above to w. After vm_devices_quiesce()
 * succeeded, before vm_devices_resume(). 0, or -errno with vm's error set
 * (-EBUSY: a device has work in flight, quiesce first).
 */
int vm_devices_save(struct minivm *vm, struct snap_writer *w) __attribute__((warn_unused_result));

/*
 * Restores every device from r (an opened, checksummed reader; its content
 * is still untrusted). The snapshot must have exactly one SNAP_TAG_VIRTIO
 * section per slot of this VM, of the same device kind, and the UART, RTC
 * and i8042 sections. 0, or -errno with a one-line message naming the slot
 * and device in err (and in vm's error). On failure the devices may be half
 * restored: destroy the VM.
 */
int vm_devices_restore(struct minivm *vm, const struct snap_reader *r, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Lets quiesced (or restored) devices work again; with `restored`, also
 * resets the vsock transport in the guest (connections of the snapshot are
 * gone). Idempotent for devices not quiesced.
 */
void vm_devices_resume(struct minivm *vm, bool restored);

#endif
