/* The guest agent's server: accept connections, run commands with pipes or a pty, move files, shut down (portable but for the vsock listen). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent_proto.h"

/* Socket bytes read at once, before they go through the frame reader. */
#define AGENT_STAGE_SIZE 16384
/* Room for two data frames and the control frames that end a request. */
#define AGENT_OUTQ_SIZE (2 * (AGENT_FRAME_HDR_SIZE + AGENT_DATA_CHUNK) + 1024)
/* A data read needs this much free queue space. */
#define AGENT_OUTQ_DATA_ROOM (AGENT_FRAME_HDR_SIZE + AGENT_DATA_CHUNK)
/* After the last frame: wait this long for the host to close, then close. */
#define AGENT_LINGER_MS 2000
#define AGENT_MAX_GROUPS 64
#define AGENT_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
/* argv[0]'s candidates on PATH: a directory plus the name. */
#define AGENT_EXEC_PATH_BUF (2 * AGENT_PATH_MAX)

enum agent_sess_state {
	SS_HELLO,     /* waiting for HELLO */
	SS_REQUEST,   /* waiting for EXEC, PUT_FILE, GET_FILE or SHUTDOWN */
	SS_EXEC,      /* a command runs (or drains) */
	SS_PUT,       /* receiving FILE_DATA */
	SS_PUT_DRAIN, /* a PUT failed: discard FILE_DATA up to the end marker */
	SS_GET,       /* sending FILE_DATA */
	SS_LINGER,    /* everything sent, write side shut: wait for the host's close */
};

struct agent_stream {
	int fd;       /* a pipe's read end or the pty master; -1 once done */
	uint8_t type; /* AGENT_MSG_STDOUT or AGENT_MSG_STDERR */
};

struct agent_session {
	int sock;
	enum agent_sess_state state;
	bool dead;          /* to be freed at the end of this loop turn */
	bool closing;       /* send what is queued, then linger */
	int64_t deadline;   /* ms, CLOCK_MONOTONIC; 0: none */

	uint8_t stage[AGENT_STAGE_SIZE];
	size_t stage_off, stage_len;
	struct agent_frame_reader rd;
	/* STDIN bytes not yet written to the command: inside rd's payload, so no
	 * more input is taken from the socket until they are written. */
	const uint8_t *in_data;
	size_t in_len;

	uint8_t outq[AGENT_OUTQ_SIZE];
	size_t out_off, out_len;

	/* SS_EXEC */
	pid_t pid;
	bool running;       /* started and not yet reaped */
	bool timed_out;
	bool tty;
	bool want_stdin;
	int start_fd;       /* the child's report pipe until it has exec'd; -1 */
	int start_err;      /* the child could not exec: errno, and at which step */
	const char *start_what;
	char arg0[256];     /* for messages */
	int wstatus;
	int stdin_fd;       /* pipe write end, or a dup of the pty master; -1 */
	int master_fd;      /* pty master for TIOCSWINSZ/TIOCGPGRP (tty); -1 */
	struct agent_stream out[2];

	/* SS_PUT, SS_GET */
	int file_fd;
	uint64_t file_bytes;

	/* SHUTDOWN */
	bool shutdown_pending;
	int shutdown_status;
};

/* What the forked child needs, all prepared by the parent. */
struct agent_spawn {
	char *const *argv;
	const char *envp[AGENT_EXEC_MAX_ENV + 8];
	const char *path;   /* PATH's value for the search */
	const char *cwd;
	bool set_ids, tty;
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[AGENT_MAX_GROUPS];
	int fd_in, fd_out, fd_err;
	char cand[AGENT_EXEC_PATH_BUF];
	char env_home[AGENT_PATH_MAX + 8];
	char env_user[AGENT_USER_MAX + 8];
	char env_logname[AGENT_USER_MAX + 16];
	int report_fd;      /* the child writes a struct agent_spawn_report here when it fails */
};

/* What a child that could not exec tells the agent through its CLOEXEC pipe. */
struct agent_spawn_report {
	int32_t err;
	int32_t step;       /* index into agent_spawn_steps */
};

static const char *const agent_spawn_steps[] = {
	"setsid", "TIOCSCTTY", "dup2", "setgroups", "setgid", "setuid", "cwd", "exec",
};
enum { STEP_SETSID, STEP_TIOCSCTTY, STEP_DUP2, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID,
       STEP_CWD, STEP_EXEC };

struct agent_server {
	int listen_fd;
	int sig_rd, sig_wr;
	struct agent_server_ops ops;
	struct agent_session *sess[AGENT_MAX_SESSIONS];
	struct agent_msg msg;     /* the frame being handled (large: EXEC's arrays) */
	struct agent_spawn spawn;
	bool shutdown_requested;
	int shutdown_status;
};

/* The SIGCHLD self-pipe's write end (a signal handler reaches nothing else). */
static volatile int agent_sigchld_fd = -1;

static void agent_on_sigchld(int sig)
{
	int saved = errno;
	char c = 0;

	(void)sig;
	if (agent_sigchld_fd >= 0)
		(void)!write(agent_sigchld_fd, &c, 1);
	errno = saved;
}

static void agent_on_sigpipe(int sig)
{
	(void)sig;
}

static void srv_log(const struct agent_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void srv_log(const struct agent_server *srv, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	dprintf(STDERR_FILENO, "%s%s\n", srv->ops.log_prefix ? srv->ops.log_prefix : "", line);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		(void)close(*fd);
		*fd = -1;
	}
}

/* ---- the output queue ---- */

static size_t q_free(struct agent_session *s)
{
	if (s->out_off > 0 && s->out_len == 0)
		s->out_off = 0;
	return AGENT_OUTQ_SIZE - s->out_off - s->out_len;
}

/* Make n contiguous bytes free at the end of the queue; NULL if they are not there. */
static uint8_t *q_reserve(struct agent_session *s, size_t n)
{
	if (q_free(s) < n && s->out_off > 0) {
		memmove(s->outq, s->outq + s->out_off, s->out_len);
		s->out_off = 0;
	}
	if (q_free(s) < n)
		return NULL;
	return s->outq + s->out_off + s->out_len;
}

/* Queue a message (control frames always fit: the queue keeps room for them). */
static void q_msg(struct agent_server *srv, struct agent_session *s, const struct agent_msg *m)
{
	uint8_t *p = q_reserve(s, 512);
	ssize_t n;

	if (!p) {
		srv_log(srv, "output queue full, dropping %s", agent_msg_type_name(m->type));
		s->dead = true;
		return;
	}
	n = agent_msg_encode(m, p, 512);
	if (n < 0) {
		srv_log(srv, "encoding %s: %s", agent_msg_type_name(m->type), strerror((int)-n));
		s->dead = true;
		return;
	}
	s->out_len += (size_t)n;
}

static void q_data(struct agent_server *srv, struct agent_session *s, uint8_t type,
                   const void *data, size_t len)
{
	struct agent_msg m = { .type = type };

	m.u.data.data = data;
	m.u.data.len = len;
	q_msg(srv, s, &m);
}

static void q_error(struct agent_server *srv, struct agent_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Queue ERROR and close the session once it is sent; a running command is killed. */
static void session_stop_exec(struct agent_session *s);

static void q_error(struct agent_server *srv, struct agent_session *s, int code, const char *fmt, ...)
{
	struct agent_msg m = { .type = AGENT_MSG_ERROR };
	char text[AGENT_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->state == SS_EXEC)
		session_stop_exec(s);
	close_fd(&s->file_fd);
	m.u.error.code = code > 0 && code <= 4095 ? code : EPROTO;
	m.u.error.msg = text;
	q_msg(srv, s, &m);
	s->closing = true;
	s->stage_len = s->stage_off = 0;
	s->in_data = NULL;
}

/* ---- sessions ---- */

static struct agent_session *session_new(int sock)
{
	struct agent_session *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->sock = sock;
	s->state = SS_HELLO;
	s->dead = s->closing = false;
	s->deadline = now_ms() + AGENT_REQUEST_TIMEOUT_S * 1000;
	s->stage_off = s->stage_len = 0;
	agent_frame_reader_init(&s->rd);
	s->in_data = NULL;
	s->in_len = 0;
	s->out_off = s->out_len = 0;
	s->pid = 0;
	s->running = s->timed_out = s->tty = s->want_stdin = false;
	s->wstatus = 0;
	s->start_fd = -1;
	s->start_err = 0;
	s->start_what = NULL;
	s->arg0[0] = '\0';
	s->stdin_fd = s->master_fd = -1;
	s->out[0].fd = s->out[1].fd = -1;
	s->out[0].type = AGENT_MSG_STDOUT;
	s->out[1].type = AGENT_MSG_STDERR;
	s->file_fd = -1;
	s->file_bytes = 0;
	s->shutdown_pending = false;
	s->shutdown_status = 0;
	return s;
}

static void session_kill(struct agent_session *s, pid_t pg, int sig);

static void session_stop_exec(struct agent_session *s)
{
	if (s->running && s->pid > 0)
		session_kill(s, s->pid, SIGKILL);
	close_fd(&s->start_fd);
	close_fd(&s->stdin_fd);
	close_fd(&s->master_fd);
	close_fd(&s->out[0].fd);
	close_fd(&s->out[1].fd);
	s->in_data = NULL;
}

static void session_free(struct agent_session *s)
{
	session_stop_exec(s);
	close_fd(&s->file_fd);
	close_fd(&s->sock);
	free(s);
}

/* ---- users, environment ---- */

static bool parse_id(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= 0xffffffffu)
		return false;
	*out = (uint32_t)v;
	return true;
}

/*
 * "name", "uid", "name:group", "uid:gid" (either part numeric or a name)
 * into sp's ids, HOME and USER. 0 or -EINVAL with a message.
 */
static int resolve_user(struct agent_spawn *sp, const char *spec, const char **home,
                        const char **name, char *msg, size_t msglen)
{
	char user[AGENT_USER_MAX];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw = NULL;
	uint32_t id;

	if (ulen >= sizeof(user) || ulen == 0) {
		snprintf(msg, msglen, "bad user '%s'", spec);
		return -EINVAL;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	if (parse_id(user, ulen, &id)) {
		pw = getpwuid(id);
		sp->uid = id;
	} else {
		pw = getpwnam(user);
		if (!pw) {
			snprintf(msg, msglen, "unknown user '%s'", user);
			return -EINVAL;
		}
		sp->uid = pw->pw_uid;
	}
	sp->gid = pw ? pw->pw_gid : sp->uid;
	if (colon) {
		const char *g = colon + 1;

		if (parse_id(g, strlen(g), &id)) {
			sp->gid = id;
		} else {
			struct group *gr = getgrnam(g);

			if (!gr) {
				snprintf(msg, msglen, "unknown group '%s'", g);
				return -EINVAL;
			}
			sp->gid = gr->gr_gid;
		}
	}
	sp->ngroups = 1;
	sp->groups[0] = sp->gid;
	if (pw) {
		int n = AGENT_MAX_GROUPS;

		if (getgrouplist(pw->pw_name, sp->gid, sp->groups, &n) < 0 || n < 1 ||
		    n > AGENT_MAX_GROUPS)
			n = n > AGENT_MAX_GROUPS ? AGENT_MAX_GROUPS : 1;
		if (n == 1)
			sp->groups[0] = sp->gid;
		sp->ngroups = (size_t)n;
	}
	sp->set_ids = true;
	*home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/";
	*name = pw ? pw->pw_name : NULL;
	return 0;
}

static bool env_has(const char *const *env, const char *name, size_t nlen)
{
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, nlen) == 0 && env[i][nlen] == '=')
			return true;
	return false;
}

/* The command's environment: the request's entries, then the defaults they do not set. */
static void build_env(struct agent_spawn *sp, const char *const *req_env, const char *home,
                      const char *name)
{
	const char *defaults[5];
	size_t n = 0, nd = 0;

	for (size_t i = 0; req_env && req_env[i] && n < AGENT_EXEC_MAX_ENV; i++)
		sp->envp[n++] = req_env[i];
	defaults[nd++] = "PATH=" AGENT_DEFAULT_PATH;
	snprintf(sp->env_home, sizeof(sp->env_home), "HOME=%s", home);
	defaults[nd++] = sp->env_home;
	defaults[nd++] = "TERM=linux";
	if (name) {
		snprintf(sp->env_user, sizeof(sp->env_user), "USER=%s", name);
		snprintf(sp->env_logname, sizeof(sp->env_logname), "LOGNAME=%s", name);
		defaults[nd++] = sp->env_user;
		defaults[nd++] = sp->env_logname;
	}
	for (size_t i = 0; i < nd; i++) {
		size_t nlen = (size_t)(strchr(defaults[i], '=') - defaults[i]);

		if (!env_has(req_env, defaults[i], nlen))
			sp->envp[n++] = defaults[i];
	}
	sp->envp[n] = NULL;
	sp->path = AGENT_DEFAULT_PATH;
	for (size_t i = 0; i < n; i++)
		if (strncmp(sp->envp[i], "PATH=", 5) == 0) {
			sp->path = sp->envp[i] + 5;
			break;
		}
}

/*
 * ---- spawning ----
 * fork, not vfork/posix_spawn: a vfork parent waits until the child's
 * execve is done, and an exec costs 1.5-2 s of emulated guest kernel time
 * here, which would serialize every session's start behind the others.
 * After fork the agent goes on at once (the agent is small: its page
 * tables are cheap to copy) and learns the exec's outcome from a CLOEXEC
 * pipe: EOF when the exec happened, a struct agent_spawn_report if not.
 */

static __attribute__((noreturn)) void spawn_fail(struct agent_spawn *sp, int step)
{
	struct agent_spawn_report r = { .err = errno ? errno : EINVAL, .step = step };

	(void)!write(sp->report_fd, &r, sizeof(r));
	_exit(127);
}

/* execvp's search with the command's own PATH, in the child. */
static void spawn_exec(struct agent_spawn *sp)
{
	const char *file = sp->argv[0];
	const char *p = sp->path;
	bool eacces = false;
	size_t flen = strlen(file);

	if (file[0] == '\0') {
		errno = ENOENT;
		return;
	}
	if (strchr(file, '/')) {
		execve(file, sp->argv, (char *const *)sp->envp);
		return;
	}
	for (;;) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);

		if (dlen + 1 + flen < sizeof(sp->cand)) {
			if (dlen == 0) {
				memcpy(sp->cand, file, flen + 1);
			} else {
				memcpy(sp->cand, p, dlen);
				sp->cand[dlen] = '/';
				memcpy(sp->cand + dlen + 1, file, flen + 1);
			}
			execve(sp->cand, sp->argv, (char *const *)sp->envp);
			if (errno == EACCES)
				eacces = true;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
				return;
		}
		if (!end)
			break;
		p = end + 1;
	}
	errno = eacces ? EACCES : ENOENT;
}

static __attribute__((noreturn)) void spawn_child(struct agent_spawn *sp)
{
	errno = 0;
	if (setsid() < 0)
		spawn_fail(sp, STEP_SETSID);
	if (sp->tty && ioctl(sp->fd_in, TIOCSCTTY, 0) < 0)
		spawn_fail(sp, STEP_TIOCSCTTY);
	if (dup2(sp->fd_in, 0) < 0 || dup2(sp->fd_out, 1) < 0 || dup2(sp->fd_err, 2) < 0)
		spawn_fail(sp, STEP_DUP2);
	if (sp->set_ids) {
		if (setgroups(sp->ngroups, sp->groups) < 0)
			spawn_fail(sp, STEP_SETGROUPS);
		if (setresgid(sp->gid, sp->gid, sp->gid) < 0)
			spawn_fail(sp, STEP_SETGID);
		if (setresuid(sp->uid, sp->uid, sp->uid) < 0)
			spawn_fail(sp, STEP_SETUID);
	}
	if (chdir(sp->cwd) < 0)
		spawn_fail(sp, STEP_CWD);
	/* The command gets default signal dispositions and mask (ours have handlers, which exec resets). */
	spawn_exec(sp);
	spawn_fail(sp, STEP_EXEC);
}

/* Start the command: 0 with *pid and *report_fd (non-blocking; see above), or -errno. */
static int spawn_run(struct agent_spawn *sp, pid_t *pid, int *report_fd)
{
	int rp[2], err;
	pid_t p;

	if (pipe2(rp, O_CLOEXEC) < 0)
		return -errno;
	sp->report_fd = rp[1];
	p = fork();
	if (p == 0) {
		(void)close(rp[0]);
		spawn_child(sp);
	}
	err = errno;
	(void)close(rp[1]);
	if (p < 0) {
		(void)close(rp[0]);
		return -err;
	}
	(void)set_nonblock(rp[0]);
	*pid = p;
	*report_fd = rp[0];
	return 0;
}

/* Signal the command's process group (or the child itself before its setsid). */
static void session_kill(struct agent_session *s, pid_t pg, int sig)
{
	if (kill(-pg, sig) < 0 && errno == ESRCH && pg == s->pid)
		(void)kill(s->pid, sig);
}

/* ---- EXEC ---- */

static void exec_start_failed(struct agent_server *srv, struct agent_session *s, int err,
                              const char *what, const char *arg0, const char *detail)
{
	struct agent_msg m = { .type = AGENT_MSG_EXIT };
	char line[AGENT_PATH_MAX + 128];
	int n;

	if (detail)
		n = snprintf(line, sizeof(line), "minivm-agent: %s\n", detail);
	else if (what && strcmp(what, "exec") == 0 && err == ENOENT)
		n = snprintf(line, sizeof(line), "minivm-agent: %.1024s: not found\n", arg0);
	else if (what && strcmp(what, "exec") == 0)
		n = snprintf(line, sizeof(line), "minivm-agent: %.1024s: %s\n", arg0, strerror(err));
	else
		n = snprintf(line, sizeof(line), "minivm-agent: %s: %s\n", what ? what : "start",
		             strerror(err));
	if (n > 0)
		q_data(srv, s, AGENT_MSG_STDERR, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	m.u.exit.kind = AGENT_EXIT_START_FAILED;
	m.u.exit.value = err > 0 && err <= 4095 ? err : EINVAL;
	q_msg(srv, s, &m);
	s->closing = true;
}

/* A pty pair: master (ours) and slave (the command's). */
static int open_pty(uint16_t rows, uint16_t cols, int *master, int *slave)
{
	struct winsize ws = { .ws_row = rows ? rows : 24, .ws_col = cols ? cols : 80 };
	char name[128];
	int m, sl, err;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0)
		goto fail;
	(void)ioctl(m, TIOCSWINSZ, &ws);
	*master = m;
	*slave = sl;
	return 0;
fail:
	err = errno ? errno : EIO;
	(void)close(m);
	return -err;
}

static void session_exec(struct agent_server *srv, struct agent_session *s,
                         const struct agent_exec_req *q)
{
	struct agent_spawn *sp = &srv->spawn;
	int child_fds[3] = { -1, -1, -1 }; /* stdin, stdout, stderr ends for the child */
	int pfd[2];
	const char *home = "/", *name = NULL;
	char detail[AGENT_USER_MAX + 64];
	pid_t pid = 0;
	int err;

	s->state = SS_EXEC;
	s->deadline = 0;
	s->tty = q->flags & AGENT_EXEC_TTY;
	s->want_stdin = q->flags & AGENT_EXEC_STDIN;
	sp->set_ids = false;
	sp->tty = s->tty;
	sp->argv = (char *const *)q->argv;
	sp->cwd = q->cwd && q->cwd[0] ? q->cwd : "/";
	if (q->user && q->user[0]) {
		err = resolve_user(sp, q->user, &home, &name, detail, sizeof(detail));
		if (err) {
			exec_start_failed(srv, s, -err, "user", q->argv[0], detail);
			return;
		}
	} else {
		struct passwd *pw = getpwuid(getuid());

		if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
			home = pw->pw_dir;
		name = pw ? pw->pw_name : NULL;
	}
	build_env(sp, q->env, home, name);

	if (s->tty) {
		int slave = -1;

		err = open_pty(q->rows, q->cols, &s->master_fd, &slave);
		if (err)
			goto fail_setup;
		child_fds[0] = slave;
		child_fds[1] = slave;
		child_fds[2] = slave;
		s->out[0].fd = fcntl(s->master_fd, F_DUPFD_CLOEXEC, 3);
		s->stdin_fd = fcntl(s->master_fd, F_DUPFD_CLOEXEC, 3);
		if (s->out[0].fd < 0 || s->stdin_fd < 0) {
			err = -errno;
			goto fail_setup;
		}
	} else {
		if (s->want_stdin) {
			if (pipe2(pfd, O_CLOEXEC) < 0) {
				err = -errno;
				goto fail_setup;
			}
			child_fds[0] = pfd[0];
			s->stdin_fd = pfd[1];
		} else {
			child_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (child_fds[0] < 0) {
				err = -errno;
				goto fail_setup;
			}
		}
		for (int i = 0; i < 2; i++) {
			if (pipe2(pfd, O_CLOEXEC) < 0) {
				err = -errno;
				goto fail_setup;
			}
			child_fds[1 + i] = pfd[1];
			s->out[i].fd = pfd[0];
		}
	}
	sp->fd_in = child_fds[0];
	sp->fd_out = child_fds[1];
	sp->fd_err = child_fds[2];
	err = spawn_run(sp, &pid, &s->start_fd);
	/* The child's ends (a tty's slave appears up to three times: close once). */
	for (int i = 0; i < 3; i++)
		if (child_fds[i] >= 0 && (i == 0 || child_fds[i] != child_fds[i - 1]))
			(void)close(child_fds[i]);
	if (err) {
		session_stop_exec(s);
		exec_start_failed(srv, s, -err, "fork", q->argv[0], NULL);
		return;
	}
	s->pid = pid;
	s->running = true;
	snprintf(s->arg0, sizeof(s->arg0), "%s", q->argv[0]);
	if (q->timeout_s)
		s->deadline = now_ms() + (int64_t)q->timeout_s * 1000;
	if ((s->stdin_fd >= 0 && set_nonblock(s->stdin_fd)) ||
	    (s->out[0].fd >= 0 && set_nonblock(s->out[0].fd)) ||
	    (s->out[1].fd >= 0 && set_nonblock(s->out[1].fd)))
		srv_log(srv, "O_NONBLOCK: %s", strerror(errno));
	return;

fail_setup:
	for (int i = 0; i < 3; i++)
		if (child_fds[i] >= 0 && (i == 0 || child_fds[i] != child_fds[i - 1]))
			(void)close(child_fds[i]);
	session_stop_exec(s);
	exec_start_failed(srv, s, -err, s->tty ? "pty" : "pipe", q->argv[0], NULL);
}

/* Write pending STDIN bytes; 0 when all are written (or dropped), 1 when the pipe is full. */
static int session_write_stdin(struct agent_session *s)
{
	while (s->in_len > 0) {
		ssize_t n;

		if (s->stdin_fd < 0) {
			s->in_len = 0;
			break;
		}
		n = write(s->stdin_fd, s->in_data, s->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n < 0) {
			/* EPIPE: the command closed its stdin; drop the rest, as a pipe would. */
			close_fd(&s->stdin_fd);
			s->in_len = 0;
			break;
		}
		s->in_data += n;
		s->in_len -= (size_t)n;
	}
	s->in_data = NULL;
	return 0;
}

static void session_exec_frame(struct agent_server *srv, struct agent_session *s,
                               const struct agent_msg *m)
{
	switch (m->type) {
	case AGENT_MSG_STDIN:
		if (!s->want_stdin) {
			q_error(srv, s, EPROTO, "STDIN without AGENT_EXEC_STDIN");
			return;
		}
		s->in_data = m->u.data.data;
		s->in_len = m->u.data.len;
		(void)session_write_stdin(s);
		return;
	case AGENT_MSG_STDIN_EOF:
		if (s->tty && s->stdin_fd >= 0) {
			struct termios t;
			uint8_t eof = 4;

			if (tcgetattr(s->master_fd, &t) == 0 && t.c_cc[VEOF])
				eof = t.c_cc[VEOF];
			(void)!write(s->stdin_fd, &eof, 1);
		} else {
			close_fd(&s->stdin_fd);
		}
		return;
	case AGENT_MSG_SIGNAL:
		if (s->running) {
			pid_t pg = s->pid;

			if (s->tty && s->master_fd >= 0) {
				pid_t fg = tcgetpgrp(s->master_fd);

				if (fg > 0)
					pg = fg;
			}
			session_kill(s, pg, (int)m->u.signal);
		}
		return;
	case AGENT_MSG_WINSIZE:
		if (s->tty && s->master_fd >= 0) {
			struct winsize ws = { .ws_row = m->u.winsize.rows, .ws_col = m->u.winsize.cols };

			(void)ioctl(s->master_fd, TIOCSWINSZ, &ws);
		}
		return;
	default:
		q_error(srv, s, EPROTO, "unexpected %s while a command runs", agent_msg_type_name(m->type));
	}
}

/*
 * Read one chunk of a command's output into the queue: 1 read some, 0 the
 * stream is done (EOF, a pty's EIO, or nothing left once the command has
 * exited), -1 nothing now (no room or EAGAIN while it runs).
 */
static int stream_read(struct agent_session *s, struct agent_stream *st)
{
	uint8_t *p;
	ssize_t n;

	if (st->fd < 0)
		return 0;
	p = q_reserve(s, AGENT_OUTQ_DATA_ROOM + 1024);
	if (!p)
		return -1;
	do
		n = read(st->fd, p + AGENT_FRAME_HDR_SIZE, AGENT_DATA_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		if (agent_frame_hdr_encode(st->type, (size_t)n, p) != 0)
			return -1;
		s->out_len += AGENT_FRAME_HDR_SIZE + (size_t)n;
		return 1;
	}
	if (n < 0 && errno == EAGAIN && s->running)
		return -1;
	close_fd(&st->fd);
	return 0;
}

/* The child's report pipe: EOF once it has exec'd (then STARTED), or why it could not. */
static void session_start_report(struct agent_server *srv, struct agent_session *s)
{
	struct agent_spawn_report r;
	struct agent_msg m = { .type = AGENT_MSG_STARTED };
	ssize_t n;

	if (s->start_fd < 0)
		return;
	do
		n = read(s->start_fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	close_fd(&s->start_fd);
	if (n == (ssize_t)sizeof(r)) {
		s->start_err = r.err > 0 && r.err <= 4095 ? r.err : EINVAL;
		s->start_what = r.step >= 0 && (size_t)r.step < sizeof(agent_spawn_steps) / sizeof(agent_spawn_steps[0])
		                    ? agent_spawn_steps[r.step] : "start";
		return;
	}
	m.u.pid = (uint32_t)s->pid;
	q_msg(srv, s, &m);
}

static void session_exec_progress(struct agent_server *srv, struct agent_session *s)
{
	struct agent_msg m;

	if (s->state != SS_EXEC || s->closing || s->dead || s->running)
		return;
	/* The child is gone, so its report (or the pipe's EOF) is there. */
	session_start_report(srv, s);
	if (s->start_fd >= 0)
		return;
	if (s->start_err && !s->timed_out) {
		session_stop_exec(s);
		exec_start_failed(srv, s, s->start_err, s->start_what, s->arg0, NULL);
		return;
	}
	/* Exited: what it wrote is in the pipes; drain them, then EXIT. */
	for (int i = 0; i < 2; i++)
		while (stream_read(s, &s->out[i]) > 0)
			;
	if (s->out[0].fd >= 0 || s->out[1].fd >= 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = AGENT_MSG_EXIT;
	if (s->timed_out) {
		m.u.exit.kind = AGENT_EXIT_TIMED_OUT;
	} else if (WIFEXITED(s->wstatus)) {
		m.u.exit.kind = AGENT_EXIT_EXITED;
		m.u.exit.value = WEXITSTATUS(s->wstatus);
	} else if (WIFSIGNALED(s->wstatus) && WTERMSIG(s->wstatus) <= AGENT_SIGNAL_MAX) {
		m.u.exit.kind = AGENT_EXIT_SIGNALED;
		m.u.exit.value = WTERMSIG(s->wstatus);
	} else {
		m.u.exit.kind = AGENT_EXIT_EXITED;
		m.u.exit.value = 255;
	}
	session_stop_exec(s);
	q_msg(srv, s, &m);
	s->closing = true;
}

/* ---- files ---- */

static void q_file_result(struct agent_server *srv, struct agent_session *s, int err)
{
	struct agent_msg m = { .type = AGENT_MSG_FILE_RESULT };

	m.u.file_result.err = err;
	m.u.file_result.size = s->file_bytes;
	q_msg(srv, s, &m);
}

/* Open a regular file without blocking on FIFOs or devices; -errno. */
static int open_regular(const char *path, int flags, mode_t mode, struct stat *st)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	int err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		err = -errno;
		(void)close(fd);
		return err;
	}
	if (!S_ISREG(st->st_mode)) {
		(void)close(fd);
		return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	}
	return fd;
}

static void session_put_start(struct agent_server *srv, struct agent_session *s,
                              const struct agent_put_file *pf)
{
	struct stat st;
	int fd = open_regular(pf->path, O_WRONLY | O_CREAT | O_TRUNC, pf->mode & 07777, &st);

	s->deadline = 0;
	if (fd >= 0 && fchmod(fd, pf->mode & 07777) < 0) {
		int err = -errno;

		(void)close(fd);
		fd = err;
	}
	if (fd < 0) {
		/* Tell the host at once; swallow its data up to the end marker. */
		q_file_result(srv, s, -fd);
		s->state = SS_PUT_DRAIN;
		return;
	}
	s->file_fd = fd;
	s->state = SS_PUT;
}

static void session_put_frame(struct agent_server *srv, struct agent_session *s,
                              const struct agent_msg *m)
{
	const uint8_t *p = m->u.data.data;
	size_t left = m->u.data.len;

	if (m->type != AGENT_MSG_FILE_DATA) {
		q_error(srv, s, EPROTO, "unexpected %s during PUT_FILE", agent_msg_type_name(m->type));
		return;
	}
	if (s->state == SS_PUT_DRAIN) {
		if (left == 0)
			s->closing = true;
		return;
	}
	while (left > 0) {
		ssize_t n = write(s->file_fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			close_fd(&s->file_fd);
			q_file_result(srv, s, err);
			s->state = SS_PUT_DRAIN;
			return;
		}
		p += n;
		left -= (size_t)n;
		s->file_bytes += (uint64_t)n;
	}
	if (m->u.data.len == 0) {
		int err = close(s->file_fd) < 0 ? errno : 0;

		s->file_fd = -1;
		q_file_result(srv, s, err);
		s->closing = true;
	}
}

static void session_get_start(struct agent_server *srv, struct agent_session *s,
                              const struct agent_get_file *gf)
{
	struct agent_msg m = { .type = AGENT_MSG_FILE_INFO };
	struct stat st;
	int fd = open_regular(gf->path, O_RDONLY, 0, &st);

	s->deadline = 0;
	if (fd < 0) {
		q_file_result(srv, s, -fd);
		s->closing = true;
		return;
	}
	s->file_fd = fd;
	s->state = SS_GET;
	m.u.file_info.mode = st.st_mode & 07777;
	m.u.file_info.size = (uint64_t)st.st_size;
	q_msg(srv, s, &m);
}

static void session_get_progress(struct agent_server *srv, struct agent_session *s)
{
	if (s->state != SS_GET || s->closing || s->dead)
		return;
	for (;;) {
		uint8_t *p = q_reserve(s, AGENT_OUTQ_DATA_ROOM + 1024);
		ssize_t n;

		if (!p)
			return;
		n = read(s->file_fd, p + AGENT_FRAME_HDR_SIZE, AGENT_DATA_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			if (agent_frame_hdr_encode(AGENT_MSG_FILE_DATA, (size_t)n, p) != 0)
				return;
			s->out_len += AGENT_FRAME_HDR_SIZE + (size_t)n;
			s->file_bytes += (uint64_t)n;
			continue;
		}
		close_fd(&s->file_fd);
		q_file_result(srv, s, n < 0 ? errno : 0);
		s->closing = true;
		return;
	}
}

/* ---- frames ---- */

static void session_frame(struct agent_server *srv, struct agent_session *s)
{
	struct agent_msg *m = &srv->msg;
	const struct agent_frame_hdr *h = &s->rd.hdr;
	int err = agent_msg_decode(h->type, agent_frame_reader_payload(&s->rd), h->length, m);

	if (err) {
		q_error(srv, s, -err, "bad %s frame: %s", agent_msg_type_name(h->type), strerror(-err));
		return;
	}
	switch (s->state) {
	case SS_HELLO: {
		struct agent_msg r = { .type = AGENT_MSG_HELLO };

		if (m->type != AGENT_MSG_HELLO) {
			q_error(srv, s, EPROTO, "expected HELLO, got %s", agent_msg_type_name(m->type));
			return;
		}
		if (m->u.hello.version != AGENT_PROTO_VERSION) {
			q_error(srv, s, EPROTONOSUPPORT, "protocol version %u not supported (agent speaks %u)",
			        m->u.hello.version, AGENT_PROTO_VERSION);
			return;
		}
		r.u.hello.version = AGENT_PROTO_VERSION;
		r.u.hello.max_payload = AGENT_PROTO_MAX_PAYLOAD;
		strcpy(r.u.hello.ident, "minivm-agent");
		q_msg(srv, s, &r);
		s->state = SS_REQUEST;
		return;
	}
	case SS_REQUEST:
		switch (m->type) {
		case AGENT_MSG_EXEC:
			session_exec(srv, s, &m->u.exec.req);
			return;
		case AGENT_MSG_PUT_FILE:
			session_put_start(srv, s, &m->u.put_file);
			return;
		case AGENT_MSG_GET_FILE:
			session_get_start(srv, s, &m->u.get_file);
			return;
		case AGENT_MSG_SHUTDOWN: {
			struct agent_msg r = { .type = AGENT_MSG_SHUTDOWN_ACK };

			sync();
			q_msg(srv, s, &r);
			s->shutdown_pending = true;
			s->shutdown_status = (int)m->u.status;
			s->closing = true;
			return;
		}
		default:
			q_error(srv, s, EPROTO, "expected a request, got %s", agent_msg_type_name(m->type));
			return;
		}
	case SS_EXEC:
		session_exec_frame(srv, s, m);
		return;
	case SS_PUT:
	case SS_PUT_DRAIN:
		session_put_frame(srv, s, m);
		return;
	case SS_GET:
	case SS_LINGER:
		q_error(srv, s, EPROTO, "unexpected %s", agent_msg_type_name(m->type));
		return;
	}
}

/* Run staged socket bytes through the frame reader while the session takes input. */
static void session_feed(struct agent_server *srv, struct agent_session *s)
{
	while (s->stage_len > 0 && !s->in_data && !s->closing && !s->dead) {
		size_t used = 0;
		int rc = agent_frame_reader_push(&s->rd, s->stage + s->stage_off, s->stage_len, &used);

		s->stage_off += used;
		s->stage_len -= used;
		if (rc < 0) {
			q_error(srv, s, -rc, "bad frame header: %s", strerror(-rc));
			return;
		}
		if (rc == 1)
			session_frame(srv, s);
	}
	if (s->stage_len == 0)
		s->stage_off = 0;
}

static void session_lost(struct agent_session *s)
{
	/* The host went away: the request ends (a running command is killed). */
	s->dead = true;
}

static void session_sock_read(struct agent_server *srv, struct agent_session *s)
{
	ssize_t n;

	do
		n = recv(s->sock, s->stage, sizeof(s->stage), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		session_lost(s);
		return;
	}
	if (s->state == SS_LINGER || s->closing)
		return; /* everything after the last frame is ignored */
	s->stage_off = 0;
	s->stage_len = (size_t)n;
	session_feed(srv, s);
}

static void session_sock_write(struct agent_session *s)
{
	while (s->out_len > 0) {
		ssize_t n = send(s->sock, s->outq + s->out_off, s->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			session_lost(s);
			return;
		}
		s->out_off += (size_t)n;
		s->out_len -= (size_t)n;
	}
	s->out_off = 0;
}

/* After events: move every session's work forward and end the finished ones. */
static void session_progress(struct agent_server *srv, struct agent_session *s, int64_t now)
{
	if (s->dead)
		return;
	if (s->deadline && now >= s->deadline) {
		s->deadline = 0;
		if (s->state == SS_LINGER) {
			s->dead = true;
			return;
		}
		if (s->state == SS_EXEC && s->running) {
			s->timed_out = true;
			session_kill(s, s->pid, SIGKILL);
		} else if (s->state == SS_HELLO || s->state == SS_REQUEST) {
			q_error(srv, s, ETIMEDOUT, "no request within %d s", AGENT_REQUEST_TIMEOUT_S);
		}
	}
	/* Input held back by a full stdin pipe or a full queue may go on now. */
	if (!s->in_data)
		session_feed(srv, s);
	session_exec_progress(srv, s);
	session_get_progress(srv, s);
	if (s->out_len > 0)
		session_sock_write(s);
	if (s->dead)
		return;
	if (s->closing && s->out_len == 0 && s->state != SS_LINGER) {
		if (s->shutdown_pending) {
			srv->shutdown_requested = true;
			srv->shutdown_status = s->shutdown_status;
		}
		session_stop_exec(s);
		close_fd(&s->file_fd);
		(void)shutdown(s->sock, SHUT_WR);
		s->state = SS_LINGER;
		s->deadline = now + AGENT_LINGER_MS;
	}
}

/* Work a session can do without waiting for an event (then poll must not sleep). */
static bool session_has_work(struct agent_session *s)
{
	bool room = AGENT_OUTQ_SIZE - s->out_len >= AGENT_OUTQ_DATA_ROOM + 1024;

	if (s->dead)
		return false;
	if (s->stage_len > 0 && !s->in_data && !s->closing)
		return true;
	if (s->closing)
		return s->out_len == 0 && s->state != SS_LINGER;
	if (s->state == SS_EXEC && !s->running && room)
		return true;
	return s->state == SS_GET && room;
}

/* ---- the server ---- */

static void srv_reap(struct agent_server *srv)
{
	char buf[64];
	pid_t p;
	int ws;

	while (read(srv->sig_rd, buf, sizeof(buf)) > 0)
		;
	while ((p = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (int i = 0; i < AGENT_MAX_SESSIONS; i++) {
			struct agent_session *s = srv->sess[i];

			if (s && s->running && s->pid == p) {
				s->running = false;
				s->wstatus = ws;
				if (s->state == SS_EXEC)
					s->deadline = 0;
				break;
			}
		}
	}
}

static void srv_accept(struct agent_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int slot = -1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				srv_log(srv, "accept: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < AGENT_MAX_SESSIONS && slot < 0; i++)
			if (!srv->sess[i])
				slot = i;
		if (slot >= 0)
			srv->sess[slot] = session_new(fd);
		if (slot < 0 || !srv->sess[slot]) {
			struct agent_msg m = { .type = AGENT_MSG_ERROR };
			uint8_t buf[128];
			ssize_t n;

			m.u.error.code = slot < 0 ? EBUSY : ENOMEM;
			m.u.error.msg = slot < 0 ? "too many sessions" : "out of memory";
			n = agent_msg_encode(&m, buf, sizeof(buf));
			if (n > 0)
				(void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
			(void)close(fd);
		}
	}
}

enum { ROLE_SOCK, ROLE_STDIN, ROLE_START, ROLE_OUT0, ROLE_OUT1 };

int agent_server_create(int listen_fd, const struct agent_server_ops *ops, struct agent_server **out)
{
	struct agent_server *srv;
	struct sigaction sa;
	int pfd[2], err;

	if (listen_fd < 0 || !ops || !out)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
		err = -errno;
		free(srv);
		return err;
	}
	err = set_nonblock(listen_fd);
	if (err) {
		(void)close(pfd[0]);
		(void)close(pfd[1]);
		free(srv);
		return err;
	}
	srv->listen_fd = listen_fd;
	srv->sig_rd = pfd[0];
	srv->sig_wr = pfd[1];
	srv->ops = *ops;
	agent_sigchld_fd = pfd[1];
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sa.sa_handler = agent_on_sigchld;
	(void)sigaction(SIGCHLD, &sa, NULL);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = agent_on_sigpipe;
	(void)sigaction(SIGPIPE, &sa, NULL);
	*out = srv;
	return 0;
}

int agent_server_run(struct agent_server *srv)
{
	struct pollfd pfds[2 + 5 * AGENT_MAX_SESSIONS];
	struct { struct agent_session *s; int role; } map[2 + 5 * AGENT_MAX_SESSIONS];

	for (;;) {
		int64_t now = now_ms(), next = -1;
		int n = 0, timeout, rc;
		bool busy = false;

		pfds[n++] = (struct pollfd){ .fd = srv->sig_rd, .events = POLLIN };
		for (int i = 0; i < AGENT_MAX_SESSIONS; i++) {
			struct agent_session *s = srv->sess[i];
			short ev = 0;

			if (!s)
				continue;
			busy |= session_has_work(s);
			if (s->deadline && (next < 0 || s->deadline < next))
				next = s->deadline;
			if (s->stage_len == 0 && !s->in_data)
				ev |= POLLIN;
			if (s->out_len > 0)
				ev |= POLLOUT;
			map[n].s = s, map[n].role = ROLE_SOCK;
			pfds[n++] = (struct pollfd){ .fd = s->sock, .events = ev };
			if (s->start_fd >= 0) {
				map[n].s = s, map[n].role = ROLE_START;
				pfds[n++] = (struct pollfd){ .fd = s->start_fd, .events = POLLIN };
			}
			if (s->in_data && s->stdin_fd >= 0) {
				map[n].s = s, map[n].role = ROLE_STDIN;
				pfds[n++] = (struct pollfd){ .fd = s->stdin_fd, .events = POLLOUT };
			}
			for (int k = 0; k < 2; k++)
				if (s->running && !s->closing && s->out[k].fd >= 0 && s->start_fd < 0 &&
				    AGENT_OUTQ_SIZE - s->out_len >= AGENT_OUTQ_DATA_ROOM + 1024) {
					map[n].s = s, map[n].role = ROLE_OUT0 + k;
					pfds[n++] = (struct pollfd){ .fd = s->out[k].fd, .events = POLLIN };
				}
		}
		/* Always accept: one connection too many gets ERROR EBUSY rather than a hang. */
		map[n].s = NULL, map[n].role = 0;
		pfds[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
		if (busy)
			timeout = 0;
		rc = poll(pfds, (nfds_t)n, timeout);
		if (rc < 0 && errno != EINTR) {
			srv_log(srv, "poll: %s", strerror(errno));
			return -errno;
		}
		if (rc > 0) {
			if (pfds[0].revents)
				srv_reap(srv);
			for (int i = 1; i < n; i++) {
				struct agent_session *s = map[i].s;
				short re = pfds[i].revents;

				if (!re)
					continue;
				if (!s) {
					srv_accept(srv);
					continue;
				}
				if (s->dead)
					continue;
				switch (map[i].role) {
				case ROLE_SOCK:
					if (re & POLLOUT)
						session_sock_write(s);
					if (s->dead || !(re & (POLLIN | POLLHUP | POLLERR)))
						break;
					if (s->stage_len == 0 && !s->in_data)
						session_sock_read(srv, s);
					else if (re & (POLLHUP | POLLERR))
						session_lost(s); /* gone while its input waits: the request ends */
					break;
				case ROLE_STDIN:
					if (session_write_stdin(s) == 0)
						session_feed(srv, s);
					break;
				case ROLE_START:
					session_start_report(srv, s);
					break;
				default:
					(void)stream_read(s, &s->out[map[i].role - ROLE_OUT0]);
					break;
				}
			}
		}
		/* SIGCHLD may have come while we were busy: reap before deciding a command's end. */
		srv_reap(srv);
		now = now_ms();
		for (int i = 0; i < AGENT_MAX_SESSIONS; i++) {
			struct agent_session *s = srv->sess[i];

			if (!s)
				continue;
			session_progress(srv, s, now);
			if (s->dead) {
				session_free(s);
				srv->sess[i] = NULL;
			}
		}
		if (srv->shutdown_requested) {
			srv->shutdown_requested = false;
			if (srv->ops.shutdown)
				srv->ops.shutdown(srv->ops.ctx, srv->shutdown_status);
			return 0;
		}
	}
}

void agent_server_free(struct agent_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
		if (srv->sess[i])
			session_free(srv->sess[i]);
	agent_sigchld_fd = -1;
	(void)close(srv->sig_rd);
	(void)close(srv->sig_wr);
	(void)close(srv->listen_fd);
	free(srv);
}

/* ---- vsock (the only guest-specific part) ---- */

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* struct sockaddr_vm from <linux/vm_sockets.h>, which musl's headers do not reach. */
struct agent_sockaddr_vm {
	unsigned short svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};

#define AGENT_VMADDR_CID_ANY 0xffffffffu

int agent_vsock_listen(uint32_t port, int *fd_out)
{
	struct agent_sockaddr_vm a;
	int fd, err;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.svm_family = AF_VSOCK;
	a.svm_port = port;
	a.svm_cid = AGENT_VMADDR_CID_ANY;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		err = -errno;
		(void)close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}
