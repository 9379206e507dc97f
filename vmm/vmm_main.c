/* minivm-vmm: the VMM process libminivm exec's (vmm/vmm_proc.h): as the keeper it reads the configuration, enters the cgroup and namespaces and forks the VMM, which builds, jails and runs the VM. Not part of the library: every exit of those processes is here. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/jail.h"
#include "vmm/snap.h"
#include "vmm/vm.h"
#include "vmm/vmm_proc.h"
#include "vmm/vmm_wire.h"

/* ---- the VMM process ---- */

/* The SIGSYS handler's channel to the front: a handler gets no argument
 * of ours, so it is process-wide; this process runs one VMM. */
static int vmm_report_fd = -1;

static void vmm_send(int fd, uint32_t type, int32_t val, const struct minivm_result *res,
		     const char *text)
{
	struct vmm_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.val = val;
	if (res)
		m.res = *res;
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) < 0) {
		/* The front is gone: nothing to tell. */
	}
}

/* The SIGSYS handler (jail_sigsys_install()): tells the front which
 * syscall seccomp refused, then dies of it. Async-signal-safe: write(2) is
 * in every thread's allowlist. */
static void vmm_on_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct vmm_msg m;

	(void)sig;
	(void)uc;
	if (jail_sigsys_is_seccomp(si)) {
		memset(&m, 0, sizeof(m));
		m.type = VMM_MSG_SECCOMP;
		m.val = si->si_syscall;
		if (vmm_report_fd >= 0 && write(vmm_report_fd, &m, sizeof(m)) < 0) {
			/* Dying anyway. */
		}
	}
	jail_sigsys_kill(si);
}

static int vmm_max_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int max = -1;

	if (!d)
		return 1023;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (fd > max)
			max = fd;
	}
	closedir(d);
	return max;
}

static uint64_t vmm_max_writable(const struct minivm_config *c)
{
	uint64_t max = 0;
	struct stat st;

	if (c->rootfs && c->rootfs_rw && stat(c->rootfs, &st) == 0 && (uint64_t)st.st_size > max)
		max = (uint64_t)st.st_size;
	for (unsigned int i = 0; i < c->nr_disks && i < MINIVM_MAX_DISKS; i++)
		if (!c->disks[i].read_only && stat(c->disks[i].path, &st) == 0 &&
		    (uint64_t)st.st_size > max)
			max = (uint64_t)st.st_size;
	return max;
}

/* jail_prepare() on a thread of its own, beside minivm_create(). */
struct vmm_prep {
	const struct jail_config *jail;
	bool have_ns, seccomp;
	int netns_fd;
	struct jail_filters filters;
	pthread_t thread;
	bool started;
};

static void *vmm_prep_thread(void *arg)
{
	struct vmm_prep *p = arg;

	jail_prepare(p->jail, p->have_ns, p->seccomp, &p->netns_fd, &p->filters);
	return NULL;
}

/* The VM's counters to the front; unsent: events the VMM could
 * not send (vmm_forward_events). */
static void vmm_send_metrics(int fd, struct minivm *vm, uint64_t unsent)
{
	struct minivm_metrics m;

	if (minivm_metrics(vm, &m))
		return;
	m.events_suppressed += unsent;
	if (vmm_proc_send_metrics(fd, &m)) {
		/* The front is gone: nothing to tell. */
	}
}

/* Consumes minivm_event_fd()'s wake-up and forwards every queued
 * event. Non-blocking: a front that does not read loses events (counted in
 * *unsent), never the control thread's stop requests. */
static void vmm_forward_events(int fd, struct minivm *vm, uint64_t *unsent)
{
	struct minivm_event ev;
	uint64_t cnt;

	if (read(minivm_event_fd(vm), &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing pending; the queue is looked at anyway. */
	}
	while (minivm_next_event(vm, &ev) == 1)
		if (vmm_proc_send_event(fd, &ev))
			(*unsent)++;
}

/* The VMM process: PID 1 of its namespace when jailed. Never returns. */
static void vmm_child(const struct minivm_config *cfg_in, const struct jail_config *jail,
		      const char *jail_dir, int sock, bool have_ns)
{
	struct minivm_config cfg = *cfg_in;
	struct jail_setup setup;
	struct minivm_result res;
	struct minivm *vm;
	char err[480], jpath[256];
	bool seccomp = jail->mode != JAIL_OFF && jail_seccomp_supported();
	bool ready_sent = false, front_gone = false;
	uint64_t unsent = 0; /* events not sent: metrics' events_suppressed */
	struct vmm_prep prep = { .jail = jail, .have_ns = have_ns, .seccomp = seccomp,
				 .netns_fd = -1 };
	const char *test;
	int r;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	(void)prctl(PR_SET_NAME, "minivm-vmm", 0, 0, 0);
	vmm_report_fd = sock;
	cfg.seccomp = seccomp;
	cfg.vsock_uds_jailed = NULL;
	if (have_ns && geteuid() == 0 && cfg.vsock_uds) {
		if (jail_vsock_path(jail_dir, cfg.vsock_uds, jpath, sizeof(jpath))) {
			vmm_send(sock, VMM_MSG_ERROR, 0, NULL, "jail: the vsock path does not fit");
			_exit(1);
		}
		cfg.vsock_uds_jailed = jpath;
	}
	/* The jail's network namespace and seccomp filters are made beside
	 * the VM (joined before the jail: no thread but this one then). */
	if (jail->mode != JAIL_OFF)
		prep.started = pthread_create(&prep.thread, NULL, vmm_prep_thread, &prep) == 0;
	r = minivm_create(&cfg, &vm, err, sizeof(err));
	if (prep.started)
		pthread_join(prep.thread, NULL);
	if (r) {
		vmm_send(sock, VMM_MSG_ERROR, r, NULL, err);
		_exit(1);
	}
	/* prep lives in this frame, which never returns (_exit below). */
	if (prep.started)
		vm->seccomp_filters = &prep.filters;
	memset(&setup, 0, sizeof(setup));
	setup.netns_fd = prep.netns_fd;
	setup.dir = jail_dir;
	setup.vsock_uds = cfg.vsock_uds;
	setup.mem_bytes = cfg.mem_bytes;
	setup.cpus = cfg.cpus;
	setup.max_writable_file = vmm_max_writable(&cfg);
	/* The snapshot's memory file is written through its fd, up to the RAM size. */
	if (cfg.snapshot_mem_fd >= 0 && setup.max_writable_file < cfg.mem_bytes + SNAP_MAX_FILE)
		setup.max_writable_file = cfg.mem_bytes + SNAP_MAX_FILE;
	setup.max_fd = vmm_max_fd();
	setup.verbose = cfg.verbose;
	if (seccomp && jail_sigsys_install(vmm_on_sigsys)) {
		vmm_send(sock, VMM_MSG_ERROR, -errno, NULL, "jail: cannot handle SIGSYS");
		_exit(1);
	}
	r = jail_enter(jail, &setup, have_ns, err, sizeof(err));
	if (r) {
		vmm_send(sock, VMM_MSG_ERROR, r, NULL, err);
		_exit(1);
	}
	r = minivm_start(vm);
	if (r == 0 && seccomp) {
		r = jail_seccomp_thread(vm->seccomp_filters, JAIL_THREAD_CONTROL, err, sizeof(err));
		if (r) {
			minivm_stop(vm);
			if (minivm_wait(vm, &res)) {
				/* Reported as the setup error below. */
			}
			vmm_send(sock, VMM_MSG_ERROR, r, NULL, err);
			_exit(1);
		}
	}
	if (r == 0) {
		vmm_send(sock, VMM_MSG_STARTED, 0, NULL, NULL);
		/* Test-only: a syscall no thread is allowed gets the VMM killed. */
		test = getenv(VMM_PROC_TEST_ENV);
		if (test && *test) {
			if (!seccomp)
				fprintf(stderr, "minivm: warning: %s ignored: no seccomp filter\n",
					VMM_PROC_TEST_ENV);
			else
				fprintf(stderr, "minivm: warning: %s=%s: attempted, not stopped (%d)\n",
					VMM_PROC_TEST_ENV, test, jail_test_forbidden(test));
		}
	}
	while (r == 0 && !minivm_ended(vm)) {
		struct pollfd pfd[2] = {
			{ .fd = front_gone ? -1 : sock, .events = POLLIN },
			{ .fd = minivm_event_fd(vm), .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			char b;
			ssize_t n = recv(sock, &b, 1, MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
			    (pfd[0].revents & (POLLHUP | POLLERR))) {
				front_gone = true;
				minivm_stop(vm);
			} else if (n == 1 && b == VMM_PROC_STOP_BYTE) {
				minivm_stop(vm);
			} else if (n == 1 && b == VMM_PROC_SNAPSHOT_BYTE) {
				int sr = minivm_snapshot(vm);

				vmm_send(sock, VMM_MSG_SNAPSHOT, sr, NULL, sr ? minivm_error(vm) : NULL);
			} else if (n == 1 && b == VMM_PROC_RESUME_BYTE) {
				minivm_resume(vm);
			} else if (n == 1 && b == VMM_PROC_METRICS_BYTE) {
				vmm_send_metrics(sock, vm, unsent);
			}
		}
		/* Reading the event fd there also keeps this poll from spinning
		 * once the guest is ready (nothing else reads it after that). */
		if (pfd[1].revents & POLLIN)
			vmm_forward_events(sock, vm, &unsent);
		if (!ready_sent && minivm_wait_ready(vm, 0) == 0) {
			ready_sent = true;
			vmm_send(sock, VMM_MSG_READY, 0, NULL, NULL);
		}
	}
	r = minivm_wait(vm, &res);
	vmm_forward_events(sock, vm, &unsent);
	vmm_send_metrics(sock, vm, unsent); /* the final counts, before the result */
	vmm_send(sock, VMM_MSG_RESULT, r, &res, r ? minivm_error(vm) : NULL);
	minivm_destroy(vm);
	_exit(0);
}

/* ---- the keeper ---- */

/* The cgroup (its directory into cg, "" when none) and the namespaces,
 * for a root keeper with a jail. A step JAIL_REQUIRED cannot do without:
 * tells the front and exits. */
static void vmm_keeper_jail(const struct minivm_config *cfg, const struct jail_config *jail,
			    int sock, char *cg, size_t cglen, bool *have_ns)
{
	struct jail_setup setup;
	char err[400];

	memset(&setup, 0, sizeof(setup));
	setup.mem_bytes = cfg->mem_bytes;
	setup.cpus = cfg->cpus;
	setup.verbose = cfg->verbose;
	if (jail_cgroup_enter(jail, &setup, cg, cglen, err, sizeof(err))) {
		if (jail->mode == JAIL_REQUIRED) {
			vmm_send(sock, VMM_MSG_ERROR, -EPERM, NULL, err);
			_exit(1);
		}
		fprintf(stderr, "minivm: warning: jail: %s; continuing without a cgroup\n", err);
	}
	if (unshare(jail_unshare_flags()) == 0) {
		*have_ns = true;
	} else if (jail->mode == JAIL_REQUIRED) {
		snprintf(err, sizeof(err), "jail: cannot make new namespaces: %s", strerror(errno));
		vmm_send(sock, VMM_MSG_ERROR, -EPERM, NULL, err);
		_exit(1);
	} else {
		fprintf(stderr, "minivm: warning: jail: cannot make new namespaces (%s): no "
				"pivot_root either; continuing without them\n",
			strerror(errno));
	}
}

/*
 * The keeper's wait for the VMM's end; its wait status. The front's
 * process, not the thread that started us, decides how long the VM lives:
 * the parent-death signal (which follows that thread) is cleared once the
 * configuration is in, and the end of the front's process is the end of
 * its channel (every front thread shares that fd), upon which the VMM is
 * killed. Without a pidfd (Linux < 5.3), the parent-death signal stays.
 */
static int vmm_keeper_wait(pid_t vmm, int sock)
{
	int pfd = (int)syscall(SYS_pidfd_open, vmm, 0), st;

	if (pfd >= 0)
		(void)prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	while (pfd >= 0) {
		struct pollfd p[2] = { { .fd = pfd, .events = POLLIN },
				       { .fd = sock, .events = POLLIN } };
		char b;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		/* The front sends nothing after the configuration: any byte,
		 * a hang-up or an error is its end. */
		if (p[1].revents && (recv(sock, &b, 1, MSG_DONTWAIT) != -1 ||
				     (p[1].revents & (POLLHUP | POLLERR)))) {
			kill(vmm, SIGKILL);
			break;
		}
	}
	if (pfd >= 0)
		close(pfd);
	while (waitpid(vmm, &st, 0) < 0) {
		if (errno != EINTR)
			return 0x7f00; /* "exited 127": should not happen */
	}
	return st;
}

/* The keeper: cgroup, namespaces, then forks the VMM (this process has
 * one thread: fork is safe here) and reports its end. Never returns. */
static void vmm_keeper(const struct vmm_wire_config *w, int events, int sock)
{
	const struct minivm_config *cfg = &w->cfg;
	bool have_ns = false;
	struct sigaction sa;
	char err[400], cg[320];
	pid_t vmm;
	int st;

	/* Signals come at their defaults and unblocked (posix_spawn's
	 * attributes). Out of the foreground group, the console and logs
	 * still go to a terminal with TOSTOP set. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGPIPE, &sa, NULL);
	(void)sigaction(SIGTTOU, &sa, NULL);
	cg[0] = '\0';
	if (w->jail.mode != JAIL_OFF && geteuid() == 0)
		vmm_keeper_jail(cfg, &w->jail, sock, cg, sizeof(cg), &have_ns);
	vmm = fork();
	if (vmm < 0) {
		snprintf(err, sizeof(err), "fork: %s", strerror(errno));
		vmm_send(sock, VMM_MSG_ERROR, -errno, NULL, err);
		_exit(1);
	}
	if (vmm == 0) {
		close(sock);
		vmm_child(cfg, &w->jail, w->jail_dir, events, have_ns);
	}
	close(events);
	vmm_send(sock, VMM_MSG_PID, (int32_t)vmm, NULL, cg);
	st = vmm_keeper_wait(vmm, sock);
	vmm_send(sock, VMM_MSG_EXIT, st, NULL, NULL);
	_exit(0);
}

/* Reads the configuration message from sock (records of at most
 * VMM_WIRE_CHUNK bytes) and decodes it. 0, or -errno with err. */
static int vmm_read_config(int sock, struct vmm_wire_config *w, char *err, size_t errlen)
{
	uint8_t *buf = malloc(VMM_WIRE_CHUNK), *nb;
	size_t len = 0, total = VMM_WIRE_CHUNK;
	int r = 0;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (!r && len < total) {
		ssize_t n = recv(sock, buf + len, total - len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "the configuration message: %s",
				 n ? strerror(errno) : "the front closed the channel");
			r = n ? -errno : -EPIPE;
			break;
		}
		if (len == 0) { /* the first record holds the header */
			r = vmm_wire_size(buf, (size_t)n, &total, err, errlen);
			if (!r && total < (size_t)n) {
				snprintf(err, errlen, "the configuration message is longer than it says");
				r = -EINVAL;
			}
			nb = r ? NULL : realloc(buf, total);
			if (!r && !nb) {
				snprintf(err, errlen, "out of memory");
				r = -ENOMEM;
			}
			if (nb)
				buf = nb;
		}
		len += (size_t)n;
	}
	if (!r)
		r = vmm_wire_decode(buf, len, w, err, errlen);
	free(buf);
	return r;
}

/* Whether fd is an open socket (the fds libminivm places). */
static bool vmm_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int main(int argc, char **argv)
{
	struct vmm_wire_config w;
	char err[480], *end;
	long front;

	/* First: die with the front. It may have died before this call,
	 * then this process is someone else's child already. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	front = argc == 3 && !strcmp(argv[1], VMM_WIRE_ARG) ? strtol(argv[2], &end, 10) : 0;
	if (front <= 0 || *end || !vmm_is_socket(VMM_FD_EVENTS) || !vmm_is_socket(VMM_FD_KEEPER)) {
		fprintf(stderr, "minivm-vmm: this is the VMM process of libminivm, started by it "
				"with its fds in place (vmm/vmm_proc.h); not a command\n");
		return MINIVM_EXIT_ERROR;
	}
	if (getppid() != (pid_t)front)
		_exit(1);
	(void)prctl(PR_SET_NAME, "minivm-keeper", 0, 0, 0);
	if (vmm_read_config(VMM_FD_KEEPER, &w, err, sizeof(err))) {
		vmm_send(VMM_FD_KEEPER, VMM_MSG_ERROR, -EINVAL, NULL, err);
		_exit(1);
	}
	vmm_keeper(&w, VMM_FD_EVENTS, VMM_FD_KEEPER);
}
