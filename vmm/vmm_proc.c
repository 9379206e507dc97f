/* The VMM process, the front's side: spawns minivm-vmm, sends it the configuration, follows it over a socket. */
#include "vmm/vmm_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm_wire.h"

#define VMM_PROC_STOP_GRACE_MS 30000

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
	minivm_log_fn log_fn;          /* vmm_proc_opts' */
	void *log_ctx;
};

/* The front side's diagnostics, through the caller's log callback. */
__attribute__((format(printf, 3, 4))) static void vmm_log(const struct vmm_proc *p,
							    enum minivm_log_level level,
							    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!p->log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->log_fn(p->log_ctx, level, msg);
}

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

/* The executable: vmm_path, else $MINIVM_VMM (not for a set-uid caller),
 * else the installed one. */
static const char *vmm_exe_path(const char *vmm_path)
{
	const char *env;

	if (vmm_path && *vmm_path)
		return vmm_path;
	env = secure_getenv(VMM_PROC_PATH_ENV);
	return env && *env ? env : VMM_PROC_DEFAULT_PATH;
}

/*
 * The fds the executable needs, indexed by their VMM_FD_* number (-1:
 * none). The console fd only when the VMM writes to it (no console path)
 * and it is open: a closed one is discarded output, as before.
 */
static void vmm_spawn_fds(const struct minivm_config *cfg, int stderr_fd, int sock, int ksock,
			  int src[VMM_FD_FIRST_FREE])
{
	for (int i = 0; i < VMM_FD_FIRST_FREE; i++)
		src[i] = -1;
	src[STDERR_FILENO] = stderr_fd;
	src[VMM_FD_EVENTS] = sock;
	src[VMM_FD_KEEPER] = ksock;
	if (!cfg->console && cfg->console_fd >= 0 && fcntl(cfg->console_fd, F_GETFD) >= 0)
		src[VMM_FD_CONSOLE] = cfg->console_fd;
	src[VMM_FD_SNAPSHOT_MEM] = cfg->snapshot_mem_fd;
	src[VMM_FD_SNAPSHOT_STATE] = cfg->snapshot_state_fd;
	src[VMM_FD_RESTORE_STATE] = cfg->restore_state_fd;
	src[VMM_FD_RESTORE_MEM] = cfg->restore_mem_fd;
}

/*
 * File actions: stdin and stdout /dev/null, stderr tmp's or inherited, each fd of
 * tmp (copies above VMM_FD_FIRST_FREE, so that no dup2 overwrites a source
 * still to be placed) at its number, every other fd closed. A positive
 * errno, as posix_spawn's calls return.
 */
static int vmm_spawn_actions(posix_spawn_file_actions_t *fa, const int tmp[VMM_FD_FIRST_FREE])
{
	int r;

	r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDWR, 0);
	if (!r)
		r = posix_spawn_file_actions_adddup2(fa, STDIN_FILENO, STDOUT_FILENO);
	if (!r && tmp[STDERR_FILENO] >= 0)
		r = posix_spawn_file_actions_adddup2(fa, tmp[STDERR_FILENO], STDERR_FILENO);
	for (int i = STDERR_FILENO + 1; !r && i < VMM_FD_FIRST_FREE; i++)
		r = tmp[i] >= 0 ? posix_spawn_file_actions_adddup2(fa, tmp[i], i) :
				  posix_spawn_file_actions_addclose(fa, i);
	if (!r)
		r = posix_spawn_file_actions_addclosefrom_np(fa, VMM_FD_FIRST_FREE);
	return r;
}

/* Signals at their defaults, none blocked, its own process group (terminal
 * signals go to the front, which stops the VM itself). Positive errno. */
static int vmm_spawn_attrs(posix_spawnattr_t *at)
{
	sigset_t all, none;
	int r;

	sigfillset(&all);
	sigemptyset(&none);
	r = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						 POSIX_SPAWN_SETPGROUP);
	if (!r)
		r = posix_spawnattr_setsigmask(at, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(at, &all);
	if (!r)
		r = posix_spawnattr_setpgroup(at, 0);
	return r;
}

/* posix_spawn()s the executable as the keeper (p->keeper), with src's fds at their numbers. */
static int vmm_spawn(struct vmm_proc *p, const char *path, const int src[VMM_FD_FIRST_FREE],
		     char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int tmp[VMM_FD_FIRST_FREE];
	char front[24];
	char *argv[] = { "minivm-vmm", VMM_WIRE_ARG, front, NULL };
	int r = 0;

	snprintf(front, sizeof(front), "%d", (int)getpid());
	for (int i = 0; i < VMM_FD_FIRST_FREE; i++) {
		tmp[i] = -1;
		if (src[i] >= 0 && !r) {
			tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, VMM_FD_FIRST_FREE);
			if (tmp[i] < 0)
				r = errno;
		}
	}
	if (!r)
		r = posix_spawn_file_actions_init(&fa);
	if (!r) {
		r = posix_spawnattr_init(&at);
		if (!r) {
			r = vmm_spawn_actions(&fa, tmp);
			if (!r)
				r = vmm_spawn_attrs(&at);
			if (!r)
				r = posix_spawn(&p->keeper, path, &fa, &at, argv, environ);
			posix_spawnattr_destroy(&at);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	for (int i = 0; i < VMM_FD_FIRST_FREE; i++)
		if (tmp[i] >= 0)
			close(tmp[i]);
	if (r) {
		p->keeper = 0;
		snprintf(err, errlen, "cannot start the VMM process %s: %s", path, strerror(r));
		return -r;
	}
	return 0;
}

/*
 * Sends the configuration to the keeper in records of VMM_WIRE_CHUNK
 * bytes. A keeper that died meanwhile is not an error here: its report,
 * or its end, says why.
 */
static void vmm_send_config(struct vmm_proc *p, const uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		size_t n = len - off < VMM_WIRE_CHUNK ? len - off : VMM_WIRE_CHUNK;
		ssize_t w = send(p->ksock, buf + off, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return;
		off += (size_t)w;
	}
}

/* The two channels, the front's ends in p; the others in *sock, *ksock. */
static int vmm_channels(struct vmm_proc *p, int *sock, int *ksock, char *err, size_t errlen)
{
	int sv[2], kv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -EIO;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -EIO;
	}
	p->sock = sv[0];
	p->ksock = kv[0];
	*sock = sv[1];
	*ksock = kv[1];
	return 0;
}

int vmm_proc_start(const struct minivm_config *cfg, const struct jail_config *jail,
		   const char *jail_dir, const struct vmm_proc_opts *opts, struct vmm_proc **out,
		   char *err, size_t errlen)
{
	static const struct vmm_proc_opts defaults = { .stderr_fd = -1 };
	struct vmm_proc *p;
	int src[VMM_FD_FIRST_FREE];
	uint8_t *msg;
	size_t msg_len;
	int sock, ksock, r;

	*out = NULL;
	if (!jail_dir || strlen(jail_dir) >= sizeof(p->jail_dir) ||
	    (cfg->vsock_uds && strlen(cfg->vsock_uds) >= sizeof(p->vsock_uds))) {
		snprintf(err, errlen, "the run directory or vsock path is too long");
		return -ENAMETOOLONG;
	}
	r = vmm_wire_encode(cfg, jail, jail_dir, &msg, &msg_len, err, errlen);
	if (r)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		free(msg);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!opts)
		opts = &defaults;
	p->log_fn = opts->log_fn;
	p->log_ctx = opts->log_ctx;
	snprintf(p->jail_dir, sizeof(p->jail_dir), "%s", jail_dir);
	if (cfg->vsock_uds)
		snprintf(p->vsock_uds, sizeof(p->vsock_uds), "%s", cfg->vsock_uds);
	r = vmm_channels(p, &sock, &ksock, err, errlen);
	if (r) {
		free(msg);
		free(p);
		return r;
	}
	vmm_spawn_fds(cfg, opts->stderr_fd, sock, ksock, src);
	r = vmm_spawn(p, vmm_exe_path(opts->vmm_path), src, err, errlen);
	close(sock);
	close(ksock);
	if (r) {
		free(msg);
		p->keeper_reaped = true;
		vmm_proc_destroy(p);
		return r;
	}
	vmm_send_config(p, msg, msg_len);
	free(msg);
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
		vmm_log(p, MINIVM_LOG_INFO, "the VMM process is PID %d (%s)", (int)p->vmm,
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
				vmm_log(p, MINIVM_LOG_WARN,
					"the VMM process did not stop within %d s: killing it",
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
			vmm_log(p, MINIVM_LOG_WARN, "%s after the VM ended", why);
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
