/* The VMM process: the front starts minivm-vmm, which creates the VM, jails itself and runs it; the front follows it over a socket. */
#ifndef MINIVM_VMM_PROC_H
#define MINIVM_VMM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/jail.h"
#include "vmm/minivm.h"

/*
 * Processes: the front (the caller, never jailed) starts the executable
 * minivm-vmm (vmm/vmm_main.c) with posix_spawn(), never fork(): the front
 * may be multi-threaded, and a forked copy of it could block on a lock
 * another thread held. What the executable needs crosses as fds at fixed
 * numbers and one configuration message (vmm/vmm_wire.h). It runs first as
 * the keeper, which enters the cgroup and unshares the namespaces (a new
 * PID namespace only applies to children), then forks the VMM process
 * (itself single-threaded then), PID 1 of its namespace, and waits for it;
 * the VMM calls minivm_create(), jails itself (jail_enter()),
 * minivm_start(), installs the seccomp filter of its own thread, and then
 * serves the front until the VM ends. The keeper reports the VMM's wait
 * status, so that a seccomp kill (SIGSYS) reaches the front. Both die with
 * the front's process: until the configuration is in, by PR_SET_PDEATHSIG
 * (set by the keeper first thing after exec, then getppid() checked
 * against the front's pid; it follows the thread inside vmm_proc_start());
 * afterwards the keeper clears it and kills the VMM when its channel from
 * the front closes (the fd is the process's, not a thread's), so the
 * thread that called vmm_proc_start() may exit. Every exit of those processes is in
 * the executable; the library only spawns, talks and reaps.
 *
 * Two SOCK_SEQPACKET socketpairs join them: the front sends the
 * configuration to the keeper on the keeper's; the VMM and the keeper send
 * events (pid, started, ready, result, seccomp kill, exit status), each on
 * its own, the VMM also its counters (asked for, and once more before its
 * result) and the VM's events (policy denials, guest errors); the front
 * sends requests (stop, snapshot, resume, metrics) to the VMM.
 *
 * Call order mirrors libminivm: vmm_proc_start() -> [vmm_proc_wait_ready()]
 * -> vmm_proc_wait() (once) -> vmm_proc_destroy(). Only vmm_proc_stop() may
 * be called from another thread or a signal handler; the other calls read
 * the socket and are used from one thread at a time.
 */

/* ---- the protocol, shared with vmm/vmm_main.c ---- */

#define VMM_PROC_STOP_BYTE 'S'
#define VMM_PROC_SNAPSHOT_BYTE 'P' /* pause and write the snapshot; stay paused */
#define VMM_PROC_RESUME_BYTE 'R'
#define VMM_PROC_METRICS_BYTE 'M' /* send the VM's counters (VMM_MSG_METRICS) */

/* Two channels, so that a VMM taken over by its guest cannot speak for the
 * keeper (a forged pid would have the front kill another process). */
enum vmm_msg_type {
	VMM_MSG_PID = 1, /* keeper: val = the VMM's pid */
	VMM_MSG_STARTED, /* VMM: the VM runs, jailed */
	VMM_MSG_READY,   /* VMM: the guest signalled ready */
	VMM_MSG_RESULT,  /* VMM: val = minivm_wait()'s return, res, text = its error */
	VMM_MSG_ERROR,   /* VMM or keeper: setup failed, text says why */
	VMM_MSG_SECCOMP, /* VMM's SIGSYS handler: val = the syscall number */
	VMM_MSG_EXIT,    /* keeper: val = the VMM's wait status */
	VMM_MSG_SNAPSHOT, /* VMM: minivm_snapshot()'s return in val, text = its error */
	VMM_MSG_METRICS,  /* VMM: struct vmm_msg_metrics (asked for, and before the result) */
	VMM_MSG_EVENT,    /* VMM: struct vmm_msg_event, one per minivm_next_event() */
};

struct vmm_msg {
	uint32_t type;
	int32_t val;
	struct minivm_result res;
	char text[480];
};

/* ---- the front's side ---- */

struct vmm_proc;

/* The test-only switch: the VMM attempts this forbidden syscall right after
 * its setup ("execve", "ptrace", "mount" or "open"): see README. */
#define VMM_PROC_TEST_ENV "MINIVM_TEST_FORBIDDEN_SYSCALL"

/* Where the executable is looked for when vmm_path is NULL and
 * $MINIVM_VMM is unset (the Makefile's LIBEXECDIR). */
#ifndef MINIVM_LIBEXECDIR
#define MINIVM_LIBEXECDIR "/usr/local/libexec/minivm"
#endif
#define VMM_PROC_DEFAULT_PATH MINIVM_LIBEXECDIR "/minivm-vmm"
#define VMM_PROC_PATH_ENV "MINIVM_VMM"

/* How vmm_proc_start() starts and reports (NULL: every default). */
struct vmm_proc_opts {
	const char *vmm_path; /* the executable; NULL: see vmm_proc_start() */
	int stderr_fd;        /* the processes' stderr; -1: the caller's */
	/* The front side's own diagnostics (a VMM killed after the stop
	 * grace, ...); NULL: dropped. Called on the calling thread. */
	minivm_log_fn log_fn;
	void *log_ctx;
};

/*
 * Starts the VMM process for cfg: the executable opts->vmm_path, or when NULL
 * $MINIVM_VMM (ignored in a set-uid process), else VMM_PROC_DEFAULT_PATH.
 * It is jailed by jail into jail_dir (the per-VM run directory: it must
 * exist, hold the vsock socket and console log if they are to be reachable
 * by path, and be removable by the caller); returns once the VM runs.
 * cfg's vsock_uds_jailed and seccomp are set there. On failure returns
 * -errno with a message in err (e.g. "cannot start the VMM process PATH:
 * No such file or directory") and *out is NULL.
 */
int vmm_proc_start(const struct minivm_config *cfg, const struct jail_config *jail,
		   const char *jail_dir, const struct vmm_proc_opts *opts, struct vmm_proc **out,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/* The VMM process's pid (in the caller's PID namespace). */
pid_t vmm_proc_pid(const struct vmm_proc *p);

/* A fd that becomes readable when an event arrives: then call
 * vmm_proc_ended() or vmm_proc_wait_ready(p, 0) to take it in. */
int vmm_proc_event_fd(const struct vmm_proc *p);

/* Takes in pending events; whether the VM has ended (or its process died). */
bool vmm_proc_ended(struct vmm_proc *p);

/* As minivm_wait_ready(): 0 when ready, -ETIMEDOUT, -EINTR, -ECHILD. */
int vmm_proc_wait_ready(struct vmm_proc *p, int timeout_ms) __attribute__((warn_unused_result));

/*
 * After vmm_proc_start() with cfg.snapshot_mem_fd/state_fd set, from the
 * thread that reads the events (nothing else may read them meanwhile):
 * the VMM pauses the VM and writes the snapshot (minivm_snapshot()); the
 * VM stays paused until vmm_proc_resume(), so the caller can copy the
 * writable disks. 0, or -errno with vmm_proc_error() set; -EINTR when a
 * stop was requested meanwhile.
 */
int vmm_proc_snapshot(struct vmm_proc *p) __attribute__((warn_unused_result));

/* Lets the VM paused by vmm_proc_snapshot() run again. */
void vmm_proc_resume(struct vmm_proc *p);

/* Asks the VM to stop; async-signal-safe, any thread. */
void vmm_proc_stop(struct vmm_proc *p);

/*
 * Waits for the VM's end and its process's exit; fills *res as
 * minivm_wait() does. A VMM process that died without a result (seccomp
 * kill, crash) is MINIVM_VMM_ERROR and -EIO with a message in
 * vmm_proc_error(), e.g. "the VMM process was killed by seccomp (syscall
 * 59: execve)". After a stop request the VMM gets 30 s, then it is killed.
 */
int vmm_proc_wait(struct vmm_proc *p, struct minivm_result *res) __attribute__((warn_unused_result));

/*
 * The VM's counters: asks the VMM and takes in its messages until the
 * answer comes, at most timeout_ms. 0 with *out filled (after the VM's
 * end: the final counts it sent before its result); -ETIMEDOUT (a paused
 * or busy VMM) or -ECHILD (ended without counts) with *out holding the
 * last counts received (zeros when none). From the thread that reads the
 * events. The front's command counters are left 0.
 */
int vmm_proc_metrics(struct vmm_proc *p, struct minivm_metrics *out, int timeout_ms)
	__attribute__((warn_unused_result));

/*
 * Events from the VMM (policy denials, guest errors: minivm_next_event()
 * on its side) go to fn, on the thread that takes the VMM's messages in
 * (any vmm_proc call that reads them), as they arrive. Their strings are
 * terminated; nothing else in them is checked. Until set, events are
 * dropped and counted (metrics' events_suppressed).
 */
typedef void (*vmm_proc_event_fn)(void *opaque, const struct minivm_event *ev);
void vmm_proc_set_event_fn(struct vmm_proc *p, vmm_proc_event_fn fn, void *opaque);

const char *vmm_proc_error(const struct vmm_proc *p);

/* The VMM side's messages of counters and events, as the VMM process sends
 * them on the front's socket fd (the event one never blocks). 0 or -errno. */
int vmm_proc_send_metrics(int fd, const struct minivm_metrics *m) __attribute__((warn_unused_result));
int vmm_proc_send_event(int fd, const struct minivm_event *ev) __attribute__((warn_unused_result));

/* For tests: a vmm_proc with no process behind it, whose VMM and keeper
 * ends of the sockets are *vmm_fd and *keeper_fd (the caller's to close).
 * NULL on failure. */
struct vmm_proc *vmm_proc_test_pair(int *vmm_fd, int *keeper_fd);

/* Kills the processes if still running, reaps them, removes the cgroup, the
 * vsock mount point and a vsock socket the jailed VMM could not remove. */
void vmm_proc_destroy(struct vmm_proc *p);

#endif
