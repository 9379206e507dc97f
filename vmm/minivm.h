/* libminivm: the public API for configuring, running and tearing down a microVM. */
#ifndef MINIVM_H
#define MINIVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Call order: minivm_config_init() -> fill fields -> minivm_create() ->
 * either minivm_run() (once), or minivm_start() -> [minivm_wait_ready()]
 * -> minivm_wait() (once each) -> minivm_destroy(). No call exits or aborts the
 * process; every failure returns a negative errno and leaves a message in
 * minivm_error(vm) (or in the caller's buffer for minivm_create()).
 * There is no global state: one process may hold several VMs.
 * Threading: a struct minivm is used from one thread at a time, except
 * minivm_stop(), which any thread (or a signal handler) may call.
 */

/* Exit statuses of the minivm command (documented in --help too). */
#define MINIVM_EXIT_ERROR 125       /* minivm itself failed: usage, setup, VMM fault */
#define MINIVM_EXIT_GUEST_CRASH 123 /* guest reset or shut down without an exit status */
#define MINIVM_EXIT_VM_TIMEOUT 122  /* the whole VM ran past its vm_timeout_ms */

/* Whether the host runs guest kernel code under emulation (HOSTS.md). */
enum minivm_emul {
	MINIVM_EMUL_AUTO = 0, /* probe the KVM API */
	MINIVM_EMUL_YES,
	MINIVM_EMUL_NO,
};

#define MINIVM_MAX_CPUS 32
#define MINIVM_MAX_DISKS 8
#define MINIVM_DEFAULT_GUEST_CID 3

/* A device's rate limit: token buckets as Firecracker's (devices/ratelimit.h).
 * A bucket holds rate x refill period (default 1 s) and starts full; the
 * burst is a one-time extra on top. All zero: no limit. */
struct minivm_rate_limit {
	uint64_t bytes_per_s;     /* 0: bytes unlimited */
	uint64_t bytes_burst;     /* one-time extra bytes */
	uint32_t bytes_refill_ms; /* 0: 1000 */
	uint64_t ops_per_s;       /* 0: operations unlimited */
	uint64_t ops_burst;       /* one-time extra operations */
	uint32_t ops_refill_ms;   /* 0: 1000 */
};

struct minivm_disk {
	const char *path;
	bool read_only;
	bool read_write; /* said explicitly (",rw"); only the CLI looks at it */
	struct minivm_rate_limit limit; /* the guest is throttled, never failed */
};

/* The guest's NIC (virtio-net) on an existing TAP device, and its egress
 * policy, enforced on every frame the guest transmits (README, "The
 * network"). tap == NULL: no NIC at all. */
#define MINIVM_MAX_NET_RULES 1024
struct minivm_net {
	const char *tap;          /* the TAP device's name (made by the user) */
	uint8_t mac[6];           /* the guest's MAC; all zero: a random locally
				   * administered one */
	uint32_t ip;              /* the guest's IPv4 address, host byte order */
	uint8_t prefix;           /* its subnet's prefix length, 1..32 */
	uint32_t gw;              /* the gateway, in that subnet */
	uint32_t dns;             /* the resolver; 0: none */
	/* The policy: default deny. Rules "CIDR[:PORT[/tcp|udp]]" (nr_allow
	 * of them), more rules from policy_file (one per line, '#' comments,
	 * "allow-dns"), and allow_dns: queries to dns only. */
	const char *const *allow;
	unsigned int nr_allow;
	const char *policy_file;
	bool allow_dns;
	struct minivm_rate_limit rx_limit; /* frames to the guest (ops: frames) */
	struct minivm_rate_limit tx_limit; /* frames from the guest */
};

struct minivm_config {
	const char *kernel;      /* bzImage or ELF vmlinux (PVH); required */
	const char *rootfs;      /* ext4 image, becomes /dev/vda; optional */
	bool rootfs_rw;          /* mount it read-write (default: read-only) */
	struct minivm_rate_limit rootfs_limit; /* the root disk's rate limit */
	struct minivm_disk disks[MINIVM_MAX_DISKS]; /* extra disks, /dev/vdb... */
	unsigned int nr_disks;
	const char *run;         /* program for init to run (minivm.run=), or NULL */
	const char *cmdline;     /* appended to the kernel command line, or NULL */
	const char *console;     /* console output file, or NULL for the default */
	int console_fd;          /* used when console == NULL; -1: discard */
	uint64_t mem_bytes;      /* guest RAM; default 256 MiB */
	unsigned int cpus;       /* vCPUs; default 1 */
	enum minivm_emul emul;   /* default AUTO */
	bool timings;            /* record phase timestamps */
	int verbose;             /* 0 quiet, 1 info, 2 debug (to stderr) */
	/* virtio-vsock, host side in Firecracker's hybrid form: a Unix socket
	 * at vsock_uds (host connects, writes "CONNECT <port>\n"); guest
	 * connections to host port P go to "<vsock_uds>_<P>". NULL: no vsock
	 * device. The socket file is created by minivm_create() and removed by
	 * minivm_destroy(); an existing file there is an error. */
	const char *vsock_uds;
	uint32_t guest_cid;      /* default 3 (MINIVM_DEFAULT_GUEST_CID) */
	/* The jailed VMM process (vmm/vmm_proc.c) sets these two; in-process
	 * users leave them alone. vsock_uds_jailed: the same socket as seen
	 * after the VMM's pivot_root (guest connections go to "<it>_<P>");
	 * NULL: vsock_uds. seccomp: each VM thread installs its seccomp
	 * allowlist (vmm/jail.c) when it starts; a syscall outside it kills
	 * the whole process, so never in a process that is not a VMM's own. */
	const char *vsock_uds_jailed;
	bool seccomp;
	/* Wall-clock limit on the whole VM from minivm_start(), in ms (0: none):
	 * the VM is stopped with outcome MINIVM_TIMED_OUT. */
	uint64_t vm_timeout_ms;
	struct minivm_net net;   /* a NIC when net.tap is set */
	/* Snapshots (vmm/SNAPSHOT.md). The front opens every file; the VMM
	 * only uses these fds (they survive into the VMM process).
	 * snapshot_mem_fd/snapshot_state_fd (-1: none): where
	 * minivm_snapshot() writes; the memory file already sized to
	 * mem_bytes, the state file empty. snapshot_disks: nr_snapshot_disks
	 * struct snapshot_disk (vmm/snapshot.h, snapshot_disks_describe()),
	 * recorded as they are; copied by minivm_create().
	 * restore_state_fd/restore_mem_fd (-1: boot): minivm_create()
	 * restores the snapshot instead of loading a kernel (kernel may then
	 * be NULL); mem_bytes, cpus, guest_cid and the disks must be the
	 * snapshot's (the front reads them from the state file), and the
	 * memory file is mapped privately as guest RAM (copy-on-write: many
	 * VMs share its page cache). Both fds stay owned by the caller. */
	int snapshot_mem_fd, snapshot_state_fd;
	const void *snapshot_disks;
	unsigned int nr_snapshot_disks;
	int restore_state_fd, restore_mem_fd;
};

/* Phase timestamps, nanoseconds since minivm_create() started (0: not reached). */
struct minivm_timings {
	uint64_t first_run_ns;    /* first KVM_RUN of the boot vCPU */
	uint64_t init_started_ns; /* guest init wrote MINIVM_PHASE_INIT_STARTED */
	uint64_t ready_ns;        /* guest init wrote MINIVM_PHASE_READY */
	uint64_t exit_ns;         /* the VM stopped */
	/* A restore's phases (0 for a boot): the state file read and
	 * validated, guest memory mapped, vCPU and device state set. */
	uint64_t restore_validated_ns;
	uint64_t restore_mapped_ns;
	uint64_t restore_state_ns;
};

enum minivm_outcome {
	MINIVM_GUEST_EXITED = 0, /* guest wrote a status, then reset */
	MINIVM_GUEST_CRASHED,    /* reset/shutdown/triple fault with no status */
	MINIVM_STOPPED,          /* minivm_stop() was called */
	MINIVM_VMM_ERROR,        /* unexpected exit reason or VMM failure */
	MINIVM_TIMED_OUT,        /* ran past cfg.vm_timeout_ms and was stopped */
};

struct minivm_result {
	enum minivm_outcome outcome;
	int status;               /* guest exit status 0..255 when GUEST_EXITED */
	struct minivm_timings timings;
	bool emulated;            /* the host emulates guest kernel code */
};

struct minivm;

/* Defaults for every field. */
void minivm_config_init(struct minivm_config *cfg);

/*
 * Opens /dev/kvm and every file, builds the VM and loads the kernel. On
 * failure returns -errno, *out is NULL and err holds a message. The config's
 * strings are copied; cfg need not outlive the call.
 */
int minivm_create(const struct minivm_config *cfg, struct minivm **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Runs the VM until it stops. Returns 0 with *res filled, or -errno with
 * minivm_error(vm) set (res->outcome is then MINIVM_VMM_ERROR). */
int minivm_run(struct minivm *vm, struct minivm_result *res) __attribute__((warn_unused_result));

/*
 * Starts the VM's threads (event loop, vCPUs) and returns at once; the
 * caller's thread stays its own. Signals are blocked in those threads, so
 * the caller's handlers run on its own threads. Then minivm_wait() must be
 * called (also after a failure here) before minivm_destroy().
 */
int minivm_start(struct minivm *vm) __attribute__((warn_unused_result));

/*
 * After minivm_start(): waits until the guest signals ready (its agent
 * listens), at most timeout_ms (-1: no limit). Returns 0 when ready,
 * -ETIMEDOUT, -EINTR when a signal interrupted the wait, or -ECHILD when the
 * VM ended first (minivm_wait() then tells how). Any thread.
 */
int minivm_wait_ready(struct minivm *vm, int timeout_ms) __attribute__((warn_unused_result));

/*
 * An eventfd that becomes readable when the guest signals ready and when
 * the VM ends, for a caller's own poll loop: read it (8 bytes) to reset
 * it, then look at minivm_ended() / minivm_wait_ready(vm, 0). It has one
 * reader at a time (minivm_wait_ready() reads it too). Non-blocking; owned
 * by vm, valid until minivm_destroy().
 */
int minivm_event_fd(const struct minivm *vm);

/* Whether the VM has ended (it stopped, exited, crashed or failed). */
bool minivm_ended(const struct minivm *vm);

/* After minivm_start(): waits for the VM to stop and fills *res, as
 * minivm_run() does. */
int minivm_wait(struct minivm *vm, struct minivm_result *res) __attribute__((warn_unused_result));

/*
 * After minivm_start(), from the thread that drives the VM (not a vCPU
 * thread): parks every vCPU at a consistent point (out of KVM_RUN, pending
 * I/O completed), quiesces the devices, and writes the snapshot to
 * cfg.snapshot_mem_fd and cfg.snapshot_state_fd. The VM stays paused,
 * whatever the outcome, until minivm_resume() (so the caller can copy the
 * writable disks meanwhile). 0 or -errno with minivm_error() set;
 * -ECHILD when the VM ended meanwhile.
 */
int minivm_snapshot(struct minivm *vm) __attribute__((warn_unused_result));

/* Lets a paused VM (minivm_snapshot) run again. No-op when not paused. */
void minivm_resume(struct minivm *vm);

/* Asks a running VM to stop; async-signal-safe. */
void minivm_stop(struct minivm *vm);

/* The last error message for this VM. */
const char *minivm_error(const struct minivm *vm);

/* The exit status the minivm command returns for this result. */
int minivm_exit_status(const struct minivm_result *res);

/* Releases everything; vm may be NULL. */
void minivm_destroy(struct minivm *vm);

#endif
