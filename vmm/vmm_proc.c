/* The VMM process: the front forks it, it creates the VM, jails itself and runs it; the front follows it over a socket. */
#include "vmm/vmm_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_vsock.h"
#include "vmm/snap.h"
#include "vmm/vm.h"

#define VMM_PROC_STOP_GRACE_MS 30000
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

struct vmm_proc {
	int sock;  /* with the VMM: its events in, stop requests out */
	int ksock; /* from the keeper: the VMM's pid, its end, the keeper's errors */
	pid_t keeper, vmm;
	bool keeper_reaped;
	bool started, ready, have_result, have_error, exited;
	bool eof;  /* the VMM closed its channel (it ended) */
	bool keof; /* the keeper closed its channel (it ended) */
	bool seccomp_killed;
	int seccomp_nr;
	int result_r;
	int wait_status;
	volatile sig_atomic_t stop_requested;
	struct minivm_result res;
	char err[600];
	char cg[320];
	char jail_dir[256];
	char vsock_uds[256];
	dev_t sock_dev;
	ino_t sock_ino;
	bool sock_known;
	bool snap_done;   /* a VMM_MSG_SNAPSHOT arrived */
	int snap_r;
	/* Metrics and events (the block "metrics and events" below). */
	struct minivm_metrics metrics; /* the last VMM_MSG_METRICS, sanitised */
	uint64_t metrics_seq;          /* how many arrived */
	vmm_proc_event_fn event_fn;
	void *event_opaque;
	uint64_t events_lost;          /* front side: arrived before event_fn was set */
};

/* ---- metrics and events: both sides ---- */

/* Their own message types, larger than struct vmm_msg: told apart by size. */
struct vmm_msg_metrics {
	uint32_t type; /* VMM_MSG_METRICS */
	uint32_t pad;
	struct minivm_metrics m;
};

struct vmm_msg_event {
	uint32_t type; /* VMM_MSG_EVENT */
	uint32_t pad;
	struct minivm_event ev;
};

/* vmm_drain() tells messages apart by size first. */
_Static_assert(sizeof(struct vmm_msg_metrics) != sizeof(struct vmm_msg) &&
		       sizeof(struct vmm_msg_event) != sizeof(struct vmm_msg),
	       "the message sizes differ");

int vmm_proc_send_metrics(int fd, const struct minivm_metrics *metrics)
{
	struct vmm_msg_metrics m;

	memset(&m, 0, sizeof(m));
	m.type = VMM_MSG_METRICS;
	m.m = *metrics;
	return send(fd, &m, sizeof(m), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int vmm_proc_send_event(int fd, const struct minivm_event *ev)
{
	struct vmm_msg_event m;

	memset(&m, 0, sizeof(m));
	m.type = VMM_MSG_EVENT;
	m.ev = *ev;
	return send(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* VMM side: the VM's counters to the front; unsent: events the VMM could
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

/* VMM side: consumes minivm_event_fd()'s wake-up and forwards every queued
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

/* Front side: a string from the VMM made a C string of its own buffer. */
static void vmm_terminate(char *s, size_t size)
{
	s[size - 1] = '\0';
}

/* Front side: the VMM is not trusted: bound its counts, end its strings. */
static void vmm_sanitize_metrics(struct minivm_metrics *m)
{
	if (m->nr_exits > MINIVM_METRICS_MAX_EXITS)
		m->nr_exits = MINIVM_METRICS_MAX_EXITS;
	if (m->nr_devices > MINIVM_METRICS_MAX_DEVICES)
		m->nr_devices = MINIVM_METRICS_MAX_DEVICES;
	for (unsigned int i = 0; i < MINIVM_METRICS_MAX_EXITS; i++)
		vmm_terminate(m->exits[i].name, sizeof(m->exits[i].name));
	for (unsigned int i = 0; i < MINIVM_METRICS_MAX_DEVICES; i++) {
		vmm_terminate(m->devices[i].name, sizeof(m->devices[i].name));
		vmm_terminate(m->devices[i].kind, sizeof(m->devices[i].kind));
	}
	m->commands_started = m->commands_exited = m->commands_failed = 0; /* the front's */
}

/* Front side: a message of a type of this block (n bytes). */
static void vmm_take_counters(struct vmm_proc *p, const void *buf, size_t n)
{
	uint32_t type;

	memcpy(&type, buf, sizeof(type));
	if (type == VMM_MSG_METRICS && n == sizeof(struct vmm_msg_metrics)) {
		memcpy(&p->metrics, &((const struct vmm_msg_metrics *)buf)->m, sizeof(p->metrics));
		vmm_sanitize_metrics(&p->metrics);
		p->metrics_seq++;
	} else if (type == VMM_MSG_EVENT && n == sizeof(struct vmm_msg_event)) {
		struct minivm_event ev;

		memcpy(&ev, &((const struct vmm_msg_event *)buf)->ev, sizeof(ev));
		vmm_terminate(ev.reason, sizeof(ev.reason));
		vmm_terminate(ev.message, sizeof(ev.message));
		if (p->event_fn && (ev.type == MINIVM_EVENT_POLICY_DENIED ||
				    ev.type == MINIVM_EVENT_GUEST_ERROR))
			p->event_fn(p->event_opaque, &ev);
		else
			p->events_lost++;
	}
}

/* ---- the VMM side ---- */

/* The SIGSYS handler's channel to the front (one VMM per process). */
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

/* Async-signal-safe: write(2) is in every thread's allowlist. */
static void vmm_report_seccomp(int nr)
{
	struct vmm_msg m;

	memset(&m, 0, sizeof(m));
	m.type = VMM_MSG_SECCOMP;
	m.val = nr;
	if (vmm_report_fd >= 0 && write(vmm_report_fd, &m, sizeof(m)) < 0) {
		/* Dying anyway. */
	}
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
	if (seccomp && jail_sigsys_install(vmm_report_seccomp)) {
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

/* Closes every fd from 3 up except those in keep (-1 entries ignored). */
static void vmm_close_fds_except(int *keep, unsigned int n)
{
	unsigned int from = 3;

	/* Sorted, so the gaps between them are ranges to close. */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (unsigned int i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned int)keep[i] > from)
			(void)close_range(from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	(void)close_range(from, ~0U, 0);
}

/* The keeper: cgroup, namespaces, then forks the VMM and reports its end. */
static void vmm_keeper(const struct minivm_config *cfg, const struct jail_config *jail,
		       const char *jail_dir, int vsock_fd, int sock, pid_t front)
{
	bool root = geteuid() == 0, have_ns = false;
	struct jail_setup setup;
	struct sigaction sa;
	char err[400], cg[320];
	pid_t vmm;
	int st, nul;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != front)
		_exit(1);
	(void)prctl(PR_SET_NAME, "minivm-keeper", 0, 0, 0);
	/* Nothing of the front's but stderr, the two channels and the
	 * snapshot files the config names. */
	{
		int keep[6] = { vsock_fd, sock, cfg->snapshot_mem_fd, cfg->snapshot_state_fd,
				cfg->restore_state_fd, cfg->restore_mem_fd };

		vmm_close_fds_except(keep, 6);
	}
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		(void)dup2(nul, STDIN_FILENO);
		(void)dup2(nul, STDOUT_FILENO);
		if (nul > STDERR_FILENO)
			close(nul);
	}
	/* Terminal signals go to the front, which stops the VM itself. */
	(void)setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	/* Out of the foreground group, the console and logs still go to a
	 * terminal with TOSTOP set. */
	(void)sigaction(SIGTTOU, &sa, NULL);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	cg[0] = '\0';
	if (jail->mode != JAIL_OFF && root) {
		memset(&setup, 0, sizeof(setup));
		setup.mem_bytes = cfg->mem_bytes;
		setup.cpus = cfg->cpus;
		setup.verbose = cfg->verbose;
		if (jail_cgroup_enter(jail, &setup, cg, sizeof(cg), err, sizeof(err))) {
			if (jail->mode == JAIL_REQUIRED) {
				vmm_send(sock, VMM_MSG_ERROR, -EPERM, NULL, err);
				_exit(1);
			}
			fprintf(stderr, "minivm: warning: jail: %s; continuing without a cgroup\n",
				err);
		}
		if (unshare(jail_unshare_flags()) == 0) {
			have_ns = true;
		} else if (jail->mode == JAIL_REQUIRED) {
			snprintf(err, sizeof(err), "jail: cannot make new namespaces: %s",
				 strerror(errno));
			vmm_send(sock, VMM_MSG_ERROR, -EPERM, NULL, err);
			_exit(1);
		} else {
			fprintf(stderr, "minivm: warning: jail: cannot make new namespaces (%s): no "
					"pivot_root either; continuing without them\n",
				strerror(errno));
		}
	}
	vmm = fork();
	if (vmm < 0) {
		snprintf(err, sizeof(err), "fork: %s", strerror(errno));
		vmm_send(sock, VMM_MSG_ERROR, -errno, NULL, err);
		_exit(1);
	}
	if (vmm == 0) {
		close(sock);
		vmm_child(cfg, jail, jail_dir, vsock_fd, have_ns);
	}
	close(vsock_fd);
	vmm_send(sock, VMM_MSG_PID, (int32_t)vmm, NULL, cg);
	while (waitpid(vmm, &st, 0) < 0) {
		if (errno != EINTR) {
			st = 0x7f00; /* "exited 127": should not happen */
			break;
		}
	}
	vmm_send(sock, VMM_MSG_EXIT, st, NULL, NULL);
	_exit(0);
}

/* ---- the front side ---- */

static void vmm_take(struct vmm_proc *p, const struct vmm_msg *m, bool from_keeper)
{
	bool keeper_only = m->type == VMM_MSG_PID || m->type == VMM_MSG_EXIT;

	if (keeper_only != from_keeper && m->type != VMM_MSG_ERROR)
		return; /* not that channel's to say */
	switch (m->type) {
	case VMM_MSG_PID:
		if (p->vmm > 0 || m->val <= 0)
			break;
		p->vmm = (pid_t)m->val;
		{
			size_t l = strnlen(m->text, sizeof(m->text));

			if (l < sizeof(p->cg)) {
				memcpy(p->cg, m->text, l);
				p->cg[l] = '\0';
			}
		}
		break;
	case VMM_MSG_STARTED:
		p->started = true;
		break;
	case VMM_MSG_READY:
		p->ready = true;
		break;
	case VMM_MSG_RESULT:
		p->have_result = true;
		p->result_r = m->val;
		p->res = m->res;
		if (m->val)
			snprintf(p->err, sizeof(p->err), "%.*s", (int)sizeof(m->text), m->text);
		break;
	case VMM_MSG_ERROR:
		p->have_error = true;
		snprintf(p->err, sizeof(p->err), "%.*s", (int)sizeof(m->text), m->text);
		break;
	case VMM_MSG_SECCOMP:
		p->seccomp_killed = true;
		p->seccomp_nr = m->val;
		break;
	case VMM_MSG_SNAPSHOT:
		p->snap_done = true;
		p->snap_r = m->val;
		if (m->val)
			snprintf(p->err, sizeof(p->err), "%.*s", (int)sizeof(m->text), m->text);
		break;
	case VMM_MSG_EXIT:
		if (p->exited)
			break;
		p->exited = true;
		p->wait_status = m->val;
		break;
	default:
		break;
	}
}

/* Takes in one channel's pending messages. */
static void vmm_drain(struct vmm_proc *p, int fd, bool *eof, bool from_keeper)
{
	union {
		struct vmm_msg m;
		struct vmm_msg_metrics mm;
		struct vmm_msg_event me;
	} u;
	struct vmm_msg m;

	while (!*eof) {
		ssize_t n = recv(fd, &u, sizeof(u), MSG_DONTWAIT);

		/* The peer closed with bytes of ours unread (a stop or metrics
		 * request it never took): the error comes first, once; what it
		 * sent before (its result) is still queued behind it. */
		if (n < 0 && errno == ECONNRESET)
			continue;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			*eof = true;
			return;
		}
		if (n < 0)
			return;
		if ((size_t)n == sizeof(m)) {
			memcpy(&m, &u.m, sizeof(m));
			vmm_take(p, &m, from_keeper);
		} else if (!from_keeper && (size_t)n >= sizeof(uint32_t)) {
			vmm_take_counters(p, &u, (size_t)n);
		}
	}
}

/* Takes in every pending message; waits up to timeout_ms for the first. */
static int vmm_pump(struct vmm_proc *p, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = p->eof ? -1 : p->sock, .events = POLLIN },
		{ .fd = p->keof ? -1 : p->ksock, .events = POLLIN },
	};

	if (p->eof && p->keof)
		return 0;
	if (poll(pfd, 2, timeout_ms) < 0)
		return -errno;
	vmm_drain(p, p->sock, &p->eof, false);
	vmm_drain(p, p->ksock, &p->keof, true);
	return 0;
}

/* The VMM process has ended (the keeper said so, or is gone itself). */
static bool vmm_gone(const struct vmm_proc *p)
{
	return p->exited || p->keof;
}

static void vmm_reap(struct vmm_proc *p)
{
	int st;

	if (p->keeper_reaped || p->keeper <= 0)
		return;
	while (waitpid(p->keeper, &st, 0) < 0 && errno == EINTR) {
	}
	p->keeper_reaped = true;
}

/* Why the VMM process ended without a result. */
static void vmm_death_message(struct vmm_proc *p, char *out, size_t len)
{
	char name[64];
	int st = p->wait_status;

	if (p->seccomp_killed || (p->exited && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)) {
		if (p->seccomp_killed) {
			jail_syscall_name(p->seccomp_nr, name, sizeof(name));
			snprintf(out, len, "the VMM process was killed by seccomp (syscall %d: %s)",
				 p->seccomp_nr, name);
		} else {
			snprintf(out, len, "the VMM process was killed by seccomp (syscall unknown)");
		}
	} else if (p->exited && WIFSIGNALED(st)) {
		snprintf(out, len, "the VMM process died of signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	} else if (p->exited && WIFEXITED(st)) {
		snprintf(out, len, "the VMM process exited with status %d before the VM ended",
			 WEXITSTATUS(st));
	} else {
		snprintf(out, len, "the VMM process vanished without a result");
	}
}

int vmm_proc_start(const struct minivm_config *cfg, const struct jail_config *jail,
		   const char *jail_dir, struct vmm_proc **out, char *err, size_t errlen)
{
	struct vmm_proc *p;
	pid_t front = getpid();
	int sv[2], kv[2];

	*out = NULL;
	if (!jail_dir || strlen(jail_dir) >= sizeof(p->jail_dir) ||
	    (cfg->vsock_uds && strlen(cfg->vsock_uds) >= sizeof(p->vsock_uds))) {
		snprintf(err, errlen, "the run directory or vsock path is too long");
		return -ENAMETOOLONG;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(p->jail_dir, sizeof(p->jail_dir), "%s", jail_dir);
	if (cfg->vsock_uds)
		snprintf(p->vsock_uds, sizeof(p->vsock_uds), "%s", cfg->vsock_uds);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		free(p);
		return -EIO;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(p);
		return -EIO;
	}
	p->sock = sv[0];
	p->ksock = kv[0];
	p->keeper = fork();
	if (p->keeper < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		close(kv[0]);
		close(kv[1]);
		free(p);
		return -EAGAIN;
	}
	if (p->keeper == 0) {
		close(sv[0]);
		close(kv[0]);
		vmm_keeper(cfg, jail, jail_dir, sv[1], kv[1], front);
	}
	close(sv[1]);
	close(kv[1]);
	/* Until the VM runs (both reports in), fails, or its process ends. */
	while (!(p->started && p->vmm > 0) && !p->have_error && !vmm_gone(p) && !p->eof)
		if (vmm_pump(p, -1) < 0 && errno != EINTR)
			break;
	if (!p->started || p->have_error) {
		char why[sizeof(p->err)];

		/* Let the processes finish, then say why. */
		while (!vmm_gone(p))
			if (vmm_pump(p, -1) < 0 && errno != EINTR)
				break;
		if (p->have_error)
			snprintf(why, sizeof(why), "%s", p->err);
		else
			vmm_death_message(p, why, sizeof(why));
		snprintf(err, errlen, "%s", why);
		vmm_proc_destroy(p);
		return -EIO;
	}
	if (p->vsock_uds[0]) {
		struct stat st;

		if (lstat(p->vsock_uds, &st) == 0 && S_ISSOCK(st.st_mode)) {
			p->sock_dev = st.st_dev;
			p->sock_ino = st.st_ino;
			p->sock_known = true;
		}
	}
	if (cfg->verbose >= 1)
		fprintf(stderr, "minivm: the VMM process is PID %d (%s)\n", (int)p->vmm,
			jail->mode == JAIL_OFF ? "not jailed" : "jailed");
	*out = p;
	return 0;
}

pid_t vmm_proc_pid(const struct vmm_proc *p)
{
	return p->vmm;
}

int vmm_proc_event_fd(const struct vmm_proc *p)
{
	return p->sock;
}

bool vmm_proc_ended(struct vmm_proc *p)
{
	(void)vmm_pump(p, 0);
	return p->have_result || p->eof || vmm_gone(p);
}

static long vmm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int vmm_proc_wait_ready(struct vmm_proc *p, int timeout_ms)
{
	long deadline = timeout_ms >= 0 ? vmm_now_ms() + timeout_ms : 0;

	for (;;) {
		int wait_ms = -1;

		if (vmm_pump(p, 0) < 0)
			return -EINTR;
		if (p->ready)
			return 0;
		if (p->have_result || p->eof || vmm_gone(p))
			return -ECHILD;
		if (timeout_ms >= 0) {
			long left = deadline - vmm_now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			wait_ms = left > 1000000000L ? 1000000000 : (int)left;
		}
		if (vmm_pump(p, wait_ms) == -EINTR)
			return -EINTR;
	}
}

int vmm_proc_snapshot(struct vmm_proc *p)
{
	char b = VMM_PROC_SNAPSHOT_BYTE;

	p->snap_done = false;
	if (send(p->sock, &b, 1, MSG_NOSIGNAL) < 0) {
		snprintf(p->err, sizeof(p->err), "snapshot: the VMM process is gone");
		return -ECHILD;
	}
	while (!p->snap_done) {
		if (p->have_result || p->eof || vmm_gone(p)) {
			snprintf(p->err, sizeof(p->err), "snapshot: the VM ended first");
			return -ECHILD;
		}
		if (vmm_pump(p, -1) < 0 && errno != EINTR)
			return -EIO;
		if (p->stop_requested)
			return -EINTR;
	}
	return p->snap_r;
}

void vmm_proc_resume(struct vmm_proc *p)
{
	char b = VMM_PROC_RESUME_BYTE;

	if (send(p->sock, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* The VMM is gone: nothing to resume. */
	}
}

void vmm_proc_stop(struct vmm_proc *p)
{
	char b = VMM_PROC_STOP_BYTE;

	if (!p)
		return;
	p->stop_requested = 1;
	if (send(p->sock, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* Full or closed: a stop byte is pending, or the VMM is gone. */
	}
}

int vmm_proc_wait(struct vmm_proc *p, struct minivm_result *res)
{
	long stop_at = 0;
	int r;

	memset(res, 0, sizeof(*res));
	while (!vmm_gone(p)) {
		int wait_ms = -1;

		if (p->stop_requested) {
			if (!stop_at)
				stop_at = vmm_now_ms();
			wait_ms = (int)(stop_at + VMM_PROC_STOP_GRACE_MS - vmm_now_ms());
			if (wait_ms <= 0) {
				fprintf(stderr, "minivm: the VMM process did not stop within %d s: "
						"killing it\n",
					VMM_PROC_STOP_GRACE_MS / 1000);
				/* The VMM dies with it (parent-death signal); its
				 * own pid may already be free for reuse. */
				kill(p->keeper, SIGKILL);
				p->stop_requested = 0;
				wait_ms = -1;
			}
		}
		if (vmm_pump(p, wait_ms) < 0 && errno != EINTR)
			break;
	}
	vmm_reap(p);
	if (p->have_result) {
		*res = p->res;
		r = p->result_r;
		if (p->seccomp_killed || (p->exited && WIFSIGNALED(p->wait_status))) {
			char why[300];

			vmm_death_message(p, why, sizeof(why));
			fprintf(stderr, "minivm: warning: %s after the VM ended\n", why);
		}
		return r;
	}
	res->outcome = MINIVM_VMM_ERROR;
	vmm_death_message(p, p->err, sizeof(p->err));
	return -EIO;
}

struct vmm_proc *vmm_proc_test_pair(int *vmm_fd, int *keeper_fd)
{
	struct vmm_proc *p = calloc(1, sizeof(*p));
	int sv[2], kv[2];

	if (!p)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(p);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kv) < 0) {
		close(sv[0]);
		close(sv[1]);
		free(p);
		return NULL;
	}
	p->sock = sv[0];
	p->ksock = kv[0];
	*vmm_fd = sv[1];
	*keeper_fd = kv[1];
	p->keeper = -1;
	p->started = true;
	snprintf(p->jail_dir, sizeof(p->jail_dir), "/nonexistent/minivm-test");
	return p;
}

void vmm_proc_set_event_fn(struct vmm_proc *p, vmm_proc_event_fn fn, void *opaque)
{
	p->event_fn = fn;
	p->event_opaque = opaque;
}

int vmm_proc_metrics(struct vmm_proc *p, struct minivm_metrics *out, int timeout_ms)
{
	uint64_t seq = p->metrics_seq;
	long deadline = vmm_now_ms() + timeout_ms;
	char b = VMM_PROC_METRICS_BYTE;
	bool asked = false;

	if (!(p->have_result || p->eof || vmm_gone(p)))
		asked = send(p->sock, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
	while (asked && p->metrics_seq == seq && !(p->have_result || p->eof || vmm_gone(p))) {
		long left = deadline - vmm_now_ms();

		if (left <= 0)
			break;
		if (vmm_pump(p, (int)left) < 0 && errno != EINTR)
			break;
	}
	*out = p->metrics;
	out->events_suppressed += p->events_lost;
	if (p->metrics_seq != seq)
		return 0;
	/* The VM ended: its last counts (sent before the result) stand. */
	if (p->have_result || p->eof || vmm_gone(p))
		return p->metrics_seq ? 0 : -ECHILD;
	return -ETIMEDOUT;
}

const char *vmm_proc_error(const struct vmm_proc *p)
{
	return p ? p->err : "no VMM process";
}

void vmm_proc_destroy(struct vmm_proc *p)
{
	char mp[300];
	struct stat st;

	if (!p)
		return;
	if (!p->keeper_reaped && p->keeper > 0) {
		if (!vmm_gone(p))
			kill(p->keeper, SIGKILL); /* and the VMM with it */
		vmm_reap(p);
	}
	close(p->sock);
	close(p->ksock);
	jail_cgroup_remove(p->cg);
	/* The mount point of an outside vsock directory (empty out here). */
	if (snprintf(mp, sizeof(mp), "%s/vsock", p->jail_dir) < (int)sizeof(mp))
		(void)rmdir(mp);
	/* The jailed VMM may not remove its socket where its uid cannot write. */
	if (p->sock_known && lstat(p->vsock_uds, &st) == 0 && st.st_dev == p->sock_dev &&
	    st.st_ino == p->sock_ino)
		(void)unlink(p->vsock_uds);
	free(p);
}
