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
 * An eventfd that becomes readable when the guest signals ready, when an
 * event is queued (minivm_next_event()) and when the VM ends, for a
 * caller's own poll loop: read it (8 bytes) to reset it, then look at
 * minivm_ended() / minivm_wait_ready(vm, 0) / minivm_next_event(). It has one
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

/* ---- metrics and events ---- */

#define MINIVM_METRICS_NAME_MAX 16
#define MINIVM_METRICS_MAX_EXITS 16
#define MINIVM_METRICS_MAX_DEVICES 16

/* KVM exits of one kind, summed over the vCPUs. */
struct minivm_exit_count {
	char name[MINIVM_METRICS_NAME_MAX]; /* "io", "mmio", "intr", "hlt", "shutdown",
					     * "system_event", "internal_error",
					     * "fail_entry", "other" */
	uint64_t count;
};

/* One device's counters since the VM was created. */
struct minivm_device_metrics {
	char name[MINIVM_METRICS_NAME_MAX]; /* "vda", "vdb", ..., "net0", "vsock", "rng" */
	char kind[MINIVM_METRICS_NAME_MAX]; /* "blk", "net", "vsock", "rng" */
	/* blk: read and write requests and their data bytes; net: frames to
	 * the guest (reads, rx) and from it (writes, tx) with their Ethernet
	 * bytes; vsock: packets to the guest (reads) and from it (writes)
	 * with their payload bytes; rng: requests and bytes given (reads). */
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t flushes;   /* blk: flush requests */
	uint64_t throttled; /* times the rate limiter held a request or frame back */
	uint64_t denied;    /* net: frames from the guest the egress policy dropped */
	uint64_t errors;    /* failed requests, frames lost, the guest broke the device */
};

/* Fixed-size, no pointers: it crosses the VMM process's socket as is. */
struct minivm_metrics {
	struct minivm_exit_count exits[MINIVM_METRICS_MAX_EXITS]; /* every kind, zeros too */
	unsigned int nr_exits;
	struct minivm_device_metrics devices[MINIVM_METRICS_MAX_DEVICES]; /* in slot order */
	unsigned int nr_devices;
	uint64_t exits_total;
	uint64_t policy_denials;      /* the NICs' denied, summed */
	uint64_t ratelimit_throttles; /* every device's throttled, summed */
	uint64_t guest_errors;        /* MINIVM_EVENT_GUEST_ERROR events raised */
	uint64_t events_suppressed;   /* events dropped: over MINIVM_EVENTS_PER_S or
				       * the queue full (counted, never delivered) */
	/* The front's own (minivm_vm_metrics(); 0 from minivm_metrics()):
	 * agent commands started, exited (any status, signal or timeout)
	 * and failed to start (not found, the connection failed, ...). */
	uint64_t commands_started, commands_exited, commands_failed;
};

/*
 * Fills *out with the VM's counters: cheap (relaxed atomic loads, no lock
 * a vCPU or the event loop waits on), any thread, any time between
 * minivm_create() and minivm_destroy(). Each counter is exact; the set is
 * not one instant's. 0, or -EINVAL for a NULL argument.
 */
int minivm_metrics(struct minivm *vm, struct minivm_metrics *out) __attribute__((warn_unused_result));

enum minivm_event_type {
	MINIVM_EVENT_POLICY_DENIED = 1, /* the egress policy dropped a frame from the guest */
	MINIVM_EVENT_GUEST_ERROR,       /* the guest crashed, broke a device, or the VMM failed */
};

/* At most this many events a second are queued; the rest are only counted
 * (events_suppressed). The queue holds MINIVM_EVENT_QUEUE. */
#define MINIVM_EVENTS_PER_S 20
#define MINIVM_EVENT_QUEUE 64

/* Fixed-size, no pointers (it crosses the VMM process's socket). */
struct minivm_event {
	uint32_t type;        /* enum minivm_event_type */
	/* POLICY_DENIED: the frame's IPv4 destination (host byte order; 0:
	 * not IPv4), its TCP/UDP port (0: none), IP protocol (6 tcp, 17 udp,
	 * 1 icmp, 0 not IPv4) and the reason ("dest", "src-ip", "malformed",
	 * ...: net_deny_reason_name()). */
	uint32_t dst_ip;
	uint16_t dst_port;
	uint8_t ip_proto;
	char reason[16];
	char message[216];    /* GUEST_ERROR: what happened; POLICY_DENIED: the device */
	uint64_t time_ns;     /* since minivm_create(), CLOCK_MONOTONIC */
};

/*
 * Takes the oldest queued event: 1 with *ev filled, 0 when none. Events
 * are queued by the vCPU and event-loop threads; minivm_event_fd()
 * becomes readable when one is. Any thread (one consumer at a time).
 */
int minivm_next_event(struct minivm *vm, struct minivm_event *ev) __attribute__((warn_unused_result));

/* ======================================================================
 * The front: a VM in its own jailed VMM process, driven from the caller's
 * (DESIGN.md, "Processes"). Implemented in vmm/front.c. This is what
 * another program links (and what the minivm command is a client of).
 *
 * Call order, per struct minivm_vm:
 *   minivm_vm_config_init() -> fill fields -> minivm_vm_create()
 *   -> minivm_vm_start() -> minivm_vm_wait_ready()
 *   -> any number of minivm_vm_exec() / put_file() / get_file(),
 *      minivm_vm_pause() / resume(), at most one minivm_vm_snapshot()
 *   -> [minivm_vm_shutdown()] -> [minivm_vm_stop()] -> [minivm_vm_wait()]
 *   -> minivm_vm_destroy().
 * destroy() may be called at any point after create() (also after a
 * failure): it stops the VM, waits for its process and removes every file
 * the front made (the run directory, the scratch disk, restored disk
 * copies). A call out of order returns -EINVAL (not started yet),
 * -ECANCELED (after minivm_vm_stop()) or -ECHILD (the VM has ended) with
 * a message, never crashes.
 *
 * Processes and signals: minivm_vm_start() starts the executable
 * minivm-vmm with posix_spawn() (no fork of the caller: safe in a
 * multi-threaded program), as a keeper which forks the VMM. They live as
 * long as the caller's process (any thread may call start(), and may exit
 * afterwards): when the process ends, however it ends, the keeper sees its
 * channel close and kills the VMM (on Linux < 5.3, without pidfds, they
 * die with the thread that called start() instead). A child the caller
 * forks without exec keeps that channel open: the VM then lives until
 * that child ends too.
 * No call installs a signal handler, changes the signal mask of a
 * caller's thread, reads or writes the caller's stdio fds unless given
 * them, calls exit() or abort(). (The front's diagnostics go to
 * config.log_fn; with one set, the VMM process's stderr is a pipe whose
 * lines a thread of the front passes to it as well, so nothing of a VM
 * reaches the caller's stderr; without one, the VMM process writes its
 * warnings to the caller's stderr.) Threads the front makes (one per running exec) block every
 * signal, so the caller's handlers run on the caller's threads; SIGPIPE
 * from writing to a caller's closed fd stays on such a thread and is
 * discarded (the write fails with EPIPE and the output is dropped).
 * Children are reaped by pid (waitpid on the keeper only): a caller's
 * SIGCHLD handler that reaps with waitpid(-1) steals that status (the
 * VM's result still arrives over the socket; only the wait status is lost).
 *
 * Threading: a struct minivm_vm may be used from several threads:
 *   - minivm_vm_exec(), put_file(), get_file() run concurrently from any
 *     number of threads (each is its own agent connection);
 *   - minivm_vm_stop() is async-signal-safe and may be called from any
 *     thread or a signal handler at any time after create();
 *   - every other call is serialised by the VM's lock (wait_ready,
 *     pause, resume, snapshot, shutdown, wait), which blocking waits
 *     (wait_ready, wait) drop between 1 s slices, so a thread may sit in
 *     minivm_vm_wait() while others run commands; snapshot() holds it
 *     throughout and pauses the guest, so running commands stall (not
 *     fail) meanwhile;
 *   - destroy() must not race any other call on the same VM.
 * Different VMs share nothing: one process may run many at once.
 *
 * Errors: every call returns 0 or a negative errno. The message of the
 * VM's last failure is minivm_vm_error(vm) (valid until the next failing
 * call on vm: with calls on several threads, use the per-call message of
 * struct minivm_exec_result instead). minivm_vm_create() writes its
 * message to the caller's buffer.
 * ====================================================================== */

/* The VMM process's jail (vmm/jail.h). */
enum minivm_jail {
	MINIVM_JAIL_AUTO = 0, /* jail when root; a step that cannot be applied: a warning */
	MINIVM_JAIL_OFF,      /* no jail (the VMM still runs in its own process) */
	MINIVM_JAIL_REQUIRED, /* a step that cannot be applied is an error */
};

#define MINIVM_JAIL_DEFAULT_ID 99900u /* vmm/jail.h JAIL_DEFAULT_ID */

/* The guest's writable layer over a read-only root (vmm/scratch.h). */
enum minivm_scratch {
	MINIVM_SCRATCH_DEFAULT = 0, /* a disk with agent and a read-only root, else none */
	MINIVM_SCRATCH_DISK,        /* a sparse ext4 disk in the run directory */
	MINIVM_SCRATCH_TMPFS,       /* a tmpfs in guest RAM */
	MINIVM_SCRATCH_NONE,
};

/* How much a message of the front's log callback matters. */
enum minivm_log_level {
	MINIVM_LOG_ERROR = 0,
	MINIVM_LOG_WARN,
	MINIVM_LOG_INFO,  /* what the front did: a summary, a saved image */
	MINIVM_LOG_DEBUG, /* only with vm.verbose: the steps (restored disk copies, ...) */
};

/*
 * The front's diagnostics (the library never prints): msg is one line
 * without a trailing newline or "minivm: " prefix, valid during the call.
 * Called on the thread of the minivm_vm_* (or private front_*) call that
 * has something to say (create, start, wait, wait_ready, destroy, the
 * workspace and save helpers), never from a signal handler; and, from
 * start() until destroy() joins it, on the VM's relay thread (all signals
 * blocked) with each line the VMM process writes to its stderr (its
 * warnings, policy denials, -v's steps; "minivm: " taken off). So calls
 * for one VM, and for different VMs, may come at the same time: log_fn
 * must be thread-safe. It must not call back into the same VM.
 */
typedef void (*minivm_log_fn)(void *ctx, enum minivm_log_level level, const char *msg);
/*
 * Events from the VM (struct minivm_event: policy denials, guest errors),
 * as the VMM raises them (at most MINIVM_EVENTS_PER_S a second; the rest
 * are counted in minivm_metrics.events_suppressed). Threading: called on
 * whichever caller thread is inside a front call that takes in the VMM's
 * messages (minivm_vm_wait(), wait_ready(), ended(), metrics(), a running
 * exec's checks every second), one call at a time, with the VM's lock
 * held: it must return quickly and must not call any minivm_vm_*
 * function on the same VM but minivm_vm_stop(). Events come in only while
 * some thread makes such calls: keep one in minivm_vm_wait() (or call
 * minivm_vm_ended() now and then). ev is valid during the call only.
 */
typedef void (*minivm_event_fn)(void *opaque, const struct minivm_event *ev);

struct minivm_vm_config {
	/*
	 * The machine, as minivm_config_init() sets it; its strings are
	 * copied by minivm_vm_create(). vm.rootfs may be "oci:DIR[:TAG]" or
	 * "oci-archive:FILE[:TAG]": the image is verified and made an ext4
	 * root (cached in $MINIVM_CACHE or ~/.cache/minivm) with the agent
	 * as init. vm.vsock_uds NULL: in the VM's private run directory
	 * (created by minivm_vm_create(), removed by destroy()); so is the
	 * console log when vm.console is NULL and agent is set (the console
	 * never mixes with a command's output; without agent, vm.console_fd).
	 * The snapshot_* and restore_* fds are the front's to set: leave them
	 * -1 and use snapshot_dir / restore_dir.
	 */
	struct minivm_config vm;
	enum minivm_jail jail;
	uint32_t jail_uid, jail_gid;  /* default MINIVM_JAIL_DEFAULT_ID (an unused id) */
	unsigned int cpu_quota_pct;   /* cpu.max in percent of one CPU; 0: none */
	/* The guest runs minivm's agent (the rootfs from rootfs/ or an OCI
	 * root): wait_ready() then waits for its answer, and exec, files,
	 * shutdown work. false: only minivm_vm_wait() and stop() make sense. */
	bool agent;
	enum minivm_scratch scratch;
	uint64_t scratch_size;        /* 0: 1 GiB for a disk, the default for a tmpfs */
	/* A directory minivm_vm_snapshot() writes to (created 0700 when
	 * missing); its files are opened before start() because the jailed
	 * VMM opens no file. NULL: no snapshot. */
	const char *snapshot_dir;
	/* Restore the snapshot in this directory instead of booting: kernel,
	 * mem_bytes, cpus, guest_cid and the disks come from it (writable
	 * disks are copied into the run directory); after ready, the guest's
	 * clock is set and its CRNG reseeded. NULL: boot. */
	const char *restore_dir;
	/* Where the front's diagnostics go (see minivm_log_fn); NULL: dropped.
	 * log_ctx is passed back as is; both must outlive the VM. The
	 * failures of calls are not logged: they are the calls' returns and
	 * minivm_vm_error(). */
	minivm_log_fn log_fn;
	void *log_ctx;
	/* The VMM process's executable, minivm-vmm (vmm/vmm_proc.h). NULL:
	 * $MINIVM_VMM (ignored in a set-uid process), else the one installed
	 * in the Makefile's LIBEXECDIR. */
	const char *vmm_path;
	minivm_event_fn event_fn;     /* NULL: events are only counted */
	void *event_opaque;           /* passed to event_fn */
};

/* Defaults: minivm_config_init() for vm, agent true, the jail's default
 * ids, everything else 0/NULL. */
void minivm_vm_config_init(struct minivm_vm_config *cfg);

struct minivm_vm;

/*
 * Checks cfg and prepares every host file the VM needs (run directory,
 * OCI root, scratch disk, restored disk copies, snapshot files); starts no
 * process. The caller keeps ownership of cfg (copied). On failure returns
 * -errno, *out is NULL and err (errlen bytes) holds a message.
 */
int minivm_vm_create(const struct minivm_vm_config *cfg, struct minivm_vm **out, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

/* Starts the VMM process (it creates the VM, jails itself and runs it);
 * returns once the VM runs. Once per VM. */
int minivm_vm_start(struct minivm_vm *vm) __attribute__((warn_unused_result));

/*
 * Waits until the guest is ready: the VMM saw the guest's ready marker
 * within timeout_ms (-1: no limit), then, with cfg.agent, the agent
 * answered a handshake (tried for up to 120 s more), and after a restore
 * the clock/reseed fix-up ran. 0; -ETIMEDOUT (the marker did not come in
 * time); -ECHILD when the VM ended first (minivm_vm_wait() tells how);
 * -ECANCELED after minivm_vm_stop(); -ENOTCONN (or the agent's error,
 * e.g. -EPROTONOSUPPORT) when the agent did not answer; the fix-up's error.
 * Calling it again after success returns 0 at once.
 */
int minivm_vm_wait_ready(struct minivm_vm *vm, int timeout_ms) __attribute__((warn_unused_result));

/*
 * Callbacks for a command's I/O; they run on the thread that called
 * minivm_vm_exec(), one at a time.
 * minivm_read_fn: fill buf with up to len bytes of stdin; return the count,
 * 0 at end of input, or -errno (ends the input too). It may block.
 * minivm_write_fn: take len bytes of output; 0, or -errno: the rest of
 * that stream is read and discarded.
 */
typedef long (*minivm_read_fn)(void *opaque, void *buf, size_t len);
typedef int (*minivm_write_fn)(void *opaque, const void *buf, size_t len);

struct minivm_exec {
	const char *const *argv;  /* NULL-terminated, argv[0] looked up in PATH */
	const char *const *env;   /* NULL-terminated "K=V", or NULL: the agent's default
				   * (with an OCI root: the image's Env when env is NULL) */
	const char *cwd;          /* NULL: the agent's default (OCI: WorkingDir) */
	const char *user;         /* NULL: root (OCI: the image's User) */
	unsigned int timeout_s;   /* 0: none; else killed, kind MINIVM_EXEC_TIMED_OUT */
	bool tty;                 /* a pseudo-terminal in the guest (stdout and stderr merge) */
	unsigned short rows, cols; /* its size with tty (0: the agent's default) */
	/* Each stream is a callback when set, else the fd (-1: stdin is
	 * /dev/null, output is discarded). fds are the caller's: never
	 * closed; blocking or not. */
	int stdin_fd, stdout_fd, stderr_fd;
	minivm_read_fn stdin_fn;
	minivm_write_fn stdout_fn, stderr_fn;
	void *opaque;             /* passed to the callbacks */
	/* -1, or the read end of a pipe the caller writes to (e.g. from its
	 * signal handler): each byte N in 1..64 forwards signal N to the
	 * command's process group (SIGWINCH: sends winsize_fd's size); byte
	 * 0 aborts the command (exec returns -ECANCELED). */
	int ctl_fd;
	int winsize_fd;           /* -1, or a terminal whose size goes with SIGWINCH */
};

/* Sets every fd to -1 and everything else to 0/NULL. */
void minivm_exec_init(struct minivm_exec *cmd);

enum minivm_exec_kind {
	MINIVM_EXEC_EXITED = 0,
	MINIVM_EXEC_SIGNALED,
	MINIVM_EXEC_TIMED_OUT,
	MINIVM_EXEC_START_FAILED, /* err: the guest's errno (ENOENT: not found) */
};

struct minivm_exec_result {
	enum minivm_exec_kind kind;
	int code;       /* EXITED: 0..255 */
	int signo;      /* SIGNALED */
	int err;        /* START_FAILED */
	uint32_t pid;   /* the guest pid, 0 if it never started */
	int status;     /* as a shell says it: code, 128+signo, 124 timeout, 127/126 */
	char message[256]; /* why exec returned an error (also minivm_vm_error()) */
};

/*
 * Runs cmd in the guest on a connection of its own and pumps its I/O until
 * it exits. 0 with *res filled whenever the command's fate is known
 * (whatever its status); -ECANCELED (a 0 byte on ctl_fd, or
 * minivm_vm_stop()); -ECHILD when the VM ended meanwhile; other -errno for
 * connection or protocol failures (res->message says). Closing the
 * connection kills the command in the guest. Any thread, concurrently.
 */
int minivm_vm_exec(struct minivm_vm *vm, const struct minivm_exec *cmd,
		   struct minivm_exec_result *res) __attribute__((warn_unused_result));

/* Writes the guest file guest_path (absolute; created or truncated, mode &
 * 07777) with src_fd's bytes until EOF. Any thread, concurrently. */
int minivm_vm_put_file(struct minivm_vm *vm, const char *guest_path, uint32_t mode, int src_fd)
	__attribute__((warn_unused_result));

/* Writes the guest's regular file guest_path to dst_fd; *mode (may be NULL)
 * gets its permission bits. On failure part of it may have been written. */
int minivm_vm_get_file(struct minivm_vm *vm, const char *guest_path, int dst_fd, uint32_t *mode)
	__attribute__((warn_unused_result));

/*
 * Freezes the whole VMM process (SIGSTOP: vCPUs and devices); the guest's
 * clock jumps on resume, as after a restore. Commands and file transfers
 * stall meanwhile (they are not failed). minivm_vm_stop() resumes first.
 */
int minivm_vm_pause(struct minivm_vm *vm) __attribute__((warn_unused_result));
int minivm_vm_resume(struct minivm_vm *vm) __attribute__((warn_unused_result));

/*
 * Writes a snapshot to dir, which must be cfg.snapshot_dir (or NULL for
 * it; -EINVAL otherwise): pauses the vCPUs at a consistent point, writes
 * memory and state, copies the writable disks while paused, resumes, then
 * puts the files in place (state last: a directory with a state file is
 * complete). Once per VM (-EALREADY after): VMs restored from it map its
 * memory file. Close nothing meanwhile; running commands stall for its
 * duration. On a VM paused by minivm_vm_pause() it works too: the VMM
 * process runs (SIGCONT) only for the snapshot, with its vCPUs paused
 * (the guest may run a few milliseconds before that pause takes hold),
 * and is frozen again before its vCPUs are let go, so the VM is still
 * paused when this returns and the guest runs again at minivm_vm_resume().
 */
int minivm_vm_snapshot(struct minivm_vm *vm, const char *dir) __attribute__((warn_unused_result));

/*
 * A clean power-off through the agent: the guest syncs and powers off with
 * exit status `status`; waits up to timeout_ms for the VM to end, then
 * asks it to stop. Needed when writable disks must keep what the guest wrote.
 */
int minivm_vm_shutdown(struct minivm_vm *vm, int status, int timeout_ms)
	__attribute__((warn_unused_result));

/* Asks the VM to stop and aborts running commands (-ECANCELED).
 * Async-signal-safe; any thread; no-op before start or after the end. */
void minivm_vm_stop(struct minivm_vm *vm);

/* Whether the VM has ended (it never started, stopped, exited, crashed). */
bool minivm_vm_ended(struct minivm_vm *vm);

/*
 * Waits for the VM's end and its process's exit and fills *res (as
 * minivm_wait()). A VMM process killed (seccomp, crash) is
 * MINIVM_VMM_ERROR and -EIO. After minivm_vm_stop() the VMM gets 30 s,
 * then it is killed. Again after the first: the same result at once.
 */
int minivm_vm_wait(struct minivm_vm *vm, struct minivm_result *res)
	__attribute__((warn_unused_result));

/*
 * The VM's counters (struct minivm_metrics: KVM exits, devices, denials,
 * throttles, events) from its VMM process, plus the front's own command
 * counts. Asks the VMM and waits up to 2 s for the answer, under the VM's
 * lock. Any state: zeros (but the command counts) before start; after the
 * end, the VMM's final counts; while paused, the last counts received.
 * 0, or -ETIMEDOUT (the VMM did not answer: *out holds the last counts
 * received) with a message. Any thread.
 */
int minivm_vm_metrics(struct minivm_vm *vm, struct minivm_metrics *out)
	__attribute__((warn_unused_result));

/* Front-side times, CLOCK_MONOTONIC ns (0: not reached). */
struct minivm_vm_times {
	uint64_t create_ns;          /* minivm_vm_create() began */
	uint64_t restore_validated_ns; /* restore: snapshot files opened and checked */
	uint64_t restore_copied_ns;  /* restore: disks checked and copied */
	uint64_t started_ns;         /* minivm_vm_start() saw the VM run */
	uint64_t ready_ns;           /* the agent answered */
	uint64_t fixed_ns;           /* restore: the guest's fix-up done */
};
void minivm_vm_times(const struct minivm_vm *vm, struct minivm_vm_times *out);

/* The host paths of the VM's vsock socket (the agent's, for callers that
 * speak its protocol themselves, vmm/agent_client.h), console log and run
 * directory. Owned by vm, valid until destroy(). */
const char *minivm_vm_vsock_path(const struct minivm_vm *vm);
const char *minivm_vm_console_path(const struct minivm_vm *vm);
const char *minivm_vm_run_dir(const struct minivm_vm *vm);

/* The last error message for this VM ("" when none). Owned by vm. */
const char *minivm_vm_error(const struct minivm_vm *vm);

/* Stops the VM if it runs, reaps its processes, removes the files the
 * front made and frees vm; vm may be NULL. */
void minivm_vm_destroy(struct minivm_vm *vm);

#endif
