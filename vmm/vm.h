/* The VM object behind libminivm (struct minivm): internal to vmm/. */
#ifndef MINIVM_VM_H
#define MINIVM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "devices/i8042.h"
#include "devices/rtc_cmos.h"
#include "devices/uart8250.h"
#include "vmm/bus.h"
#include "vmm/evq.h"
#include "vmm/exit.h"
#include "vmm/guest_mem.h"
#include "vmm/jail.h"
#include "vmm/kvm.h"
#include "vmm/minivm.h"
#include "vmm/snap.h"

#define VM_CMDLINE_MAX 2048
#define VM_MAX_DEVICES 16
#define VM_DEV_PARAM_MAX 64
#define VM_MMIO_BASE 0xd0000000ULL
#define VM_FIRST_DEVICE_IRQ 5

struct evl;
struct vmmio;
struct virtio_dev;

#define VM_DEV_MAX_QUEUES 8

/* A queue's ioeventfd and what to tell when it fires. */
struct vm_notify {
	struct vmmio *transport;
	unsigned int queue;
	int fd;
};

/* One virtio-mmio slot: transport (which owns the device) and its eventfds. */
struct vm_device {
	struct vmmio *transport;
	char name[MINIVM_METRICS_NAME_MAX]; /* for metrics: "vda", "net0", "vsock", "rng" */
	char kind[MINIVM_METRICS_NAME_MAX]; /* "blk", "net", "vsock", "rng" */
	uint64_t base;
	unsigned int irq;
	int irq_fd;
	struct vm_notify notify[VM_DEV_MAX_QUEUES];
	unsigned int nr_notify;
};

struct vcpu {
	struct minivm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	_Atomic bool in_guest_thread; /* the thread exists and may be kicked */
	/* KVM exits by kind: written by this vCPU's thread only (relaxed),
	 * read by minivm_metrics() from any thread. */
	_Atomic uint64_t exits[EXIT_K_COUNT];
};

enum vm_state {
	VM_RUNNING = 0,
	VM_ENDED, /* vm->result holds the outcome */
};

struct minivm {
	struct minivm_config cfg; /* strings owned (strdup'd) */
	/* With cfg.seccomp: the filters the VMM process compiled ahead
	 * (vmm/vmm_proc.c sets it before minivm_start(); it outlives the VM),
	 * or NULL: each thread builds its own. */
	const struct jail_filters *seccomp_filters;
	char err[512];
	uint64_t t0_ns;

	struct kvm_sys kvm;
	int vm_fd;
	bool emulated;

	uint8_t *ram;
	uint64_t ram_size;
	struct guest_mem gm;

	struct bus pio;
	struct bus mmio;
	struct uart8250 uart;
	bool uart_ready;
	struct i8042 kbd;
	struct rtc_cmos rtc; /* initialised with the UART (uart_ready) */
	int uart_irq_fd;
	int console_fd;
	bool own_console_fd;

	struct vcpu vcpus[MINIVM_MAX_CPUS];
	unsigned int nr_vcpus;

	char cmdline[VM_CMDLINE_MAX];
	struct boot_entry entry;

	/* virtio-mmio devices (vmm/vm_devices.c) */
	struct vm_device devs[VM_MAX_DEVICES];
	unsigned int nr_devs;
	/* virtio_mmio.device=... per device, and the NIC's minivm.net= */
	char dev_params[VM_MAX_DEVICES + 1][VM_DEV_PARAM_MAX];
	unsigned int nr_dev_params;
	struct virtio_dev *net_dev; /* the NIC (owned by its transport), or NULL */
	struct evl *evl;
	pthread_t evl_thread;
	bool evl_started;
	/* KVM_REINJECT_CONTROL's thread (vm.c): may still run after
	 * minivm_create; minivm_destroy joins it. */
	pthread_t reinject_thread;
	bool reinject_started;

	/* Guest signals and the outcome; written from vCPU threads. */
	pthread_mutex_t lock;
	_Atomic int state;
	bool status_written;
	int status;
	struct minivm_result result;
	char fatal[256];
	_Atomic uint64_t first_run_ns, init_started_ns, ready_ns, exit_ns;
	int event_fd;      /* eventfd: written on ready, on an event and on end (minivm_event_fd) */
	struct evq events; /* minivm_next_event(); initialised by minivm_create */
	bool started;      /* minivm_start() ran; minivm_wait() joins */
	int start_err;     /* minivm_start()'s failure, reported by minivm_wait() */
	int timeout_fd;    /* timerfd of cfg.vm_timeout_ms on the event loop, or -1 (vm_devices.c) */

	/* Snapshots (vm.c's minivm_snapshot, vmm/snapshot.c). pause_req asks
	 * every vCPU to park; parked counts them (under pause_lock). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	_Atomic bool pause_req;
	unsigned int parked;
	bool paused;           /* minivm_snapshot() paused it; minivm_resume() undoes */
	/* A restore: the state file, read and validated by minivm_create
	 * (restore_buf owns the bytes restore reads). */
	bool restored;
	uint8_t *restore_buf;
	struct snap_reader restore;
	uint64_t restore_validated_ns, restore_mapped_ns, restore_state_ns;
};

/* vmm/vm_devices.c: virtio-mmio devices and the event loop, called by vm.c. */
int vm_devices_setup(struct minivm *vm) __attribute__((warn_unused_result));
int vm_devices_start(struct minivm *vm) __attribute__((warn_unused_result));
void vm_devices_stop(struct minivm *vm);
void vm_devices_destroy(struct minivm *vm);
/* Ends the VM with outcome MINIVM_TIMED_OUT (vm.c; the vm-timeout timer). */
void vm_time_out(struct minivm *vm);

/* The devices' part of minivm_metrics(): out->devices, nr_devices and the
 * sums over them (vm_devices.c). */
void vm_devices_metrics(struct minivm *vm, struct minivm_metrics *out);
/* Queues ev (rate-limited, vmm/evq.h) and wakes minivm_event_fd()'s
 * poller. Any thread but a signal handler. */
void vm_post_event(struct minivm *vm, const struct minivm_event *ev);

/* Shared by vm.c and vm_devices.c. */
void vm_set_error(struct minivm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line on stderr when cfg.verbose >= level. */
void vm_log(const struct minivm *vm, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
