/* The VMM process's jail: namespaces, pivot_root, capabilities, uid/gid, no_new_privs, rlimits, cgroup v2, seccomp per thread. */
#ifndef MINIVM_JAIL_H
#define MINIVM_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/filter.h>

/*
 * The default uid and gid of a jailed VMM: a fixed id that no account
 * should own (outside Debian's allocated ranges 0-59999 and 60000-65535,
 * below the usual subordinate-id ranges that start at 100000). Every VM
 * jailed with the default shares it; give --uid/--gid to separate them.
 */
#define JAIL_DEFAULT_ID 99900u

/* RLIMIT_NOFILE: the fds open at setup plus one per vsock connection and
 * this margin (the event loop's, logs, the control socket). */
#define JAIL_NOFILE_MARGIN 64u
/* RLIMIT_NPROC when the uid is switched: counted per uid, so it bounds the
 * threads (vCPUs, the event loop, io_uring workers) of every VM that shares
 * the uid; a jailed VMM never forks (seccomp), so this is a second fence. */
#define JAIL_NPROC 1024u
/* RLIMIT_FSIZE at least this (the console log), or the largest writable
 * disk file. */
#define JAIL_FSIZE_MIN (64ULL << 20)
/* cgroup memory.max: guest RAM plus this margin (the VMM's own heap,
 * io_uring, page tables) plus 1/8 of the RAM. */
#define JAIL_MEM_MARGIN (128ULL << 20)
/* cgroup pids.max: vCPUs plus this (event loop, control thread, io workers). */
#define JAIL_PIDS_MARGIN 64u
/* cpu.max's period, microseconds. */
#define JAIL_CPU_PERIOD_US 100000u
#define JAIL_MAX_CPU_QUOTA 100000u /* percent of one CPU: 1000 CPUs */

enum jail_mode {
	JAIL_AUTO = 0, /* jail when root; a step that cannot be applied: a warning, continue */
	JAIL_OFF,      /* --no-jail */
	JAIL_REQUIRED, /* --jail: a step that cannot be applied is an error */
};

struct jail_config {
	enum jail_mode mode;
	uint32_t uid, gid;          /* default JAIL_DEFAULT_ID */
	unsigned int cpu_quota_pct; /* cpu.max as percent of one CPU; 0: no limit */
};

/* Which thread a seccomp filter is for. */
enum jail_thread {
	JAIL_THREAD_VCPU = 0, /* KVM_RUN and the exits it dispatches */
	JAIL_THREAD_EVL,      /* the io_uring event loop: device backends */
	JAIL_THREAD_CONTROL,  /* the VMM process's main thread: talks to the front */
	JAIL_THREAD_REINJECT, /* vm.c's KVM_REINJECT_CONTROL thread: that ioctl, then it ends */
};

#define JAIL_THREAD_KINDS (JAIL_THREAD_REINJECT + 1)

/* Every thread kind's seccomp filter, compiled ahead by jail_prepare()
 * (filter NULL: not compiled; jail_seccomp_thread() builds it then).
 * Owned by the VMM process's main function, which never returns; the
 * programs are never freed (they live as long as that process). */
struct jail_filters {
	struct sock_fprog prog[JAIL_THREAD_KINDS];
};

/* What jail_enter() needs to know besides the config. */
struct jail_setup {
	const char *dir;            /* the per-VM run directory: the new root */
	const char *vsock_uds;      /* the vsock socket path (host view), or NULL */
	uint64_t mem_bytes;         /* guest RAM, for memory.max */
	unsigned int cpus;          /* vCPUs, for pids.max */
	uint64_t max_writable_file; /* the largest writable disk file, for RLIMIT_FSIZE */
	int max_fd;                 /* the highest fd open at setup */
	int verbose;                /* info lines on stderr when >= 1 */
	int netns_fd;               /* a new network namespace made ahead (jail_prepare()), or -1 */
};

/*
 * What the VMM can make ahead of jail_enter(), on a thread of its own while
 * the main thread builds the VM: a new, empty network namespace (the
 * calling thread enters it; *netns_fd refers to it for jail_enter(), -1
 * when not made: not root, or no /proc) and every thread kind's seccomp
 * filter compiled into *filters (zeroed first; when seccomp is on), which
 * jail_seccomp_thread() then only loads. Creating a network namespace cost 0.5 ms or more, compiling
 * a filter 0.1 to 0.3 ms, both on the path to the first guest instruction.
 * Call from a thread that then ends (it stays in that namespace), before
 * any jail_seccomp_thread(), with the caller joining it first. Failures
 * leave the work to jail_enter() and jail_seccomp_thread() as before.
 */
void jail_prepare(const struct jail_config *j, bool have_namespaces, bool seccomp, int *netns_fd,
		  struct jail_filters *filters);

void jail_config_init(struct jail_config *j);

/* Whether seccomp filters are built into this binary (not in sanitizer
 * builds: ASan and UBSan make syscalls of their own at any time). */
bool jail_seccomp_supported(void);

/*
 * The jailed path of the vsock socket, given the host path and the jail
 * directory: "/NAME" when the socket is in the jail directory itself, else
 * "/vsock/NAME" (jail_enter() bind-mounts the socket's directory there).
 * Pure. Returns 0, or -ENAMETOOLONG / -EINVAL.
 */
int jail_vsock_path(const char *jail_dir, const char *uds, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* Limits derived from the setup (pure). */
uint64_t jail_nofile_limit(int max_fd, unsigned int vsock_conns);
uint64_t jail_fsize_limit(uint64_t max_writable_file);
uint64_t jail_memory_max(uint64_t mem_bytes);
unsigned int jail_pids_max(unsigned int cpus);
/* "QUOTA PERIOD" for cpu.max, or "max PERIOD" for 0. 0 or -ENOSPC. */
int jail_cpu_max(unsigned int pct, char *out, size_t outlen) __attribute__((warn_unused_result));

/* Whether a cgroup.controllers text lists every word of need ("cpu memory pids"). Pure. */
bool jail_controllers_have(const char *controllers, const char *need);

/*
 * Parses a --uid/--gid value: decimal, 0 < id < 2^32 - 1 (0 is root, which
 * the jail refuses; -1 is "unchanged" to the kernel). 0 or -EINVAL.
 */
int jail_parse_id(const char *s, uint32_t *out) __attribute__((warn_unused_result));

/*
 * In the process that is about to fork the VMM (the VMM's parent, root,
 * single-threaded): makes the cgroup v2 "MOUNT/minivm/vm-PID" (at the top of
 * the hierarchy, as Firecracker's jailer does, where no process lives to
 * stop controllers being enabled) with memory.max, cpu.max, pids.max and
 * moves itself in, so that the VMM forked next starts inside. Writes the directory made into cg (empty when
 * none). Returns 0 (done or skipped with an info line: no cgroup v2 with
 * these controllers here) or -errno with a message in err when a step
 * failed after the cgroup was found usable.
 */
int jail_cgroup_enter(const struct jail_config *j, const struct jail_setup *s, char *cg,
		      size_t cglen, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Removes a cgroup made by jail_cgroup_enter() once its processes are gone. */
void jail_cgroup_remove(const char *cg);

/* The namespaces unshare()d by the VMM's parent before it forks the VMM
 * (mount, PID, IPC, UTS, cgroup); the VMM enters a new network namespace
 * itself in jail_enter(), after its devices are open. */
int jail_unshare_flags(void);

/*
 * In the VMM process after minivm_create() (every file open, one thread):
 * a new network namespace (s->netns_fd's, entered with setns(), when made
 * ahead; closed here), pivot_root into s->dir (bind-mounting the vsock socket's directory at
 * /vsock when it lies outside), rlimits, then all capabilities dropped and
 * uid/gid switched (libcap-ng), no_new_privs. Seccomp comes later, per
 * thread (jail_seccomp_thread()). Steps that need root are skipped with a
 * warning when not root (JAIL_AUTO). Returns 0, or -errno with a message in
 * err (JAIL_REQUIRED, or a step whose failure leaves no safe state).
 */
int jail_enter(const struct jail_config *j, const struct jail_setup *s, bool have_namespaces,
	       char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Installs the calling thread's seccomp allowlist (call it in the thread,
 * after its setup). A syscall outside the list raises SIGSYS (SCMP_ACT_TRAP)
 * whose handler (jail_sigsys_install()) reports the number and then kills
 * the process with SIGSYS. Unblocks SIGSYS in the thread. filters: what
 * jail_prepare() compiled, or NULL (the filter is built here). 0 or -errno
 * with a message in err.
 */
int jail_seccomp_thread(const struct jail_filters *filters, enum jail_thread kind, char *err,
			size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Process-wide, before the filters: SIGSYS runs handler, which the VMM
 * process owns (vmm/vmm_main.c: where it reports to is its own state, not
 * the library's). The handler must be async-signal-safe and end with
 * jail_sigsys_kill(si). 0 or -errno.
 */
int jail_sigsys_install(void (*handler)(int sig, siginfo_t *si, void *uc))
	__attribute__((warn_unused_result));

/* In a SIGSYS handler: whether a seccomp filter raised it (the syscall
 * number is then si->si_syscall). Async-signal-safe. */
bool jail_sigsys_is_seccomp(const siginfo_t *si);

/* The end of a SIGSYS handler: the kernel kills the process with SIGSYS,
 * at once under a filter, else when the handler returns. Async-signal-safe. */
void jail_sigsys_kill(const siginfo_t *si);

/*
 * The name of syscall nr on this architecture, into out ("?" when
 * unknown). Allocation-free callers may pass a small buffer.
 */
void jail_syscall_name(int nr, char *out, size_t outlen);

/*
 * Test-only (MINIVM_TEST_FORBIDDEN_SYSCALL): attempts one syscall a VMM
 * never makes: "execve", "ptrace", "mount" or "open" (of /etc/passwd, a
 * host path). Returns -EINVAL for another name; returns at all only when
 * the syscall was not stopped (no filter), with its -errno or 0.
 */
int jail_test_forbidden(const char *which);

#endif
