/* minivm-runc's commands: create (the guest root, the console, the container's init that boots the VM through the minivm front once started), start, state, kill, delete, ps, exec (a second command through the agent), with runc's logging. */
#include "vmm/runc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmm/agent_client.h"
#include "vmm/oci_priv.h"
#include "vmm/runc_rootfs.h"
#include "vmm/sha256.h"

#define RUNC_VERSION "0.2.0"
/* How long `start` waits for the init to take the start signal. */
#define RUNC_START_MS 10000
/* How long delete waits for killed processes to go. */
#define RUNC_REAP_MS 10000
/* How long exec waits for the guest agent (a boot takes 15-60 s here). */
#define RUNC_EXEC_CONNECT_MS 600000
/* The front's run directory must stay short: Unix socket paths hold 107 bytes. */
#define RUNC_RUNDIR_MAX 60

/* One invocation: the parsed arguments and where its log goes. */
struct runc_ctx {
	struct runc_args a;
	int log_fd;                 /* --log, or -1 */
	char statedir[4096];
};

/* ---- logging, in the format go-runc reads back (the last "error" line) ---- */

static void runc_time(char *buf, size_t size, bool nanos)
{
	struct timespec ts;
	struct tm tm;
	char base[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (nanos)
		snprintf(buf, size, "%s.%09ldZ", base, ts.tv_nsec);
	else
		snprintf(buf, size, "%sZ", base);
}

static void runc_log(struct runc_ctx *c, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void runc_log(struct runc_ctx *c, const char *level, const char *fmt, ...)
{
	char msg[2048], t[64];
	bool err = strcmp(level, "error") == 0;
	va_list ap;

	if (strcmp(level, "debug") == 0 && !c->a.debug)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	runc_time(t, sizeof(t), true);
	if (c->log_fd >= 0) {
		char *line = NULL;
		size_t len = 0;

		if (c->a.log_format == RUNC_LOG_JSON) {
			struct oci_jw w;

			oci_jw_init(&w);
			oci_jw_begin(&w, '{');
			oci_jw_key(&w, "level");
			oci_jw_str(&w, level);
			oci_jw_key(&w, "msg");
			oci_jw_str(&w, msg);
			oci_jw_key(&w, "time");
			oci_jw_str(&w, t);
			oci_jw_end(&w, '}');
			if (oci_jw_finish(&w, &line, &len) == 0) {
				if (oci_write_all(c->log_fd, line, len) || oci_write_all(c->log_fd, "\n", 1)) {
					/* nowhere else to say it */
				}
				free(line);
			}
		} else {
			char buf[2200];
			int n = snprintf(buf, sizeof(buf), "time=\"%s\" level=%s msg=\"%s\"\n", t, level, msg);

			if (n > 0 && oci_write_all(c->log_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n
										       : sizeof(buf) - 1)) {
				/* nowhere else to say it */
			}
		}
	}
	if (err || c->log_fd < 0)
		fprintf(stderr, "minivm-runc: %s%s%s\n", err ? "" : level, err ? "" : ": ", msg);
}

/* ---- files ---- */

/* Writes buf to path through a temporary sibling and a rename. 0 or -errno. */
static int runc_write_atomic(const char *path, const char *buf, size_t len)
{
	char tmp[4200];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	r = oci_write_all(fd, buf, len);
	if (!r && fsync(fd) != 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path) != 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

static int runc_write_pid_file(const char *path, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);

	return runc_write_atomic(path, buf, (size_t)n);
}

/* The field 3 (state) and 22 (start time) of /proc/PID/stat. 0, or -ESRCH when gone. */
static int runc_proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	p += 2;
	*state = *p;
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -EINVAL;
	*start = strtoull(p, NULL, 10);
	return 0;
}

/* Whether the container's init is the process it was (not a zombie, not a reused pid). */
static bool runc_init_alive(const struct runc_state *st)
{
	unsigned long long start;
	char state;

	if (st->pid <= 0 || runc_proc_stat(st->pid, &state, &start))
		return false;
	return start == st->pid_start && state != 'Z' && state != 'X';
}

static enum runc_status runc_status_of(const struct runc_ctx *c, const struct runc_state *st)
{
	char fifo[4200];

	if (!runc_init_alive(st))
		return RUNC_STOPPED;
	snprintf(fifo, sizeof(fifo), "%s/start.fifo", c->statedir);
	return access(fifo, F_OK) == 0 ? RUNC_CREATED : RUNC_RUNNING;
}

/* Loads <root>/<id>/state.json: 0, -ENOENT (no such container: logged), or another error (logged). */
static int runc_load(struct runc_ctx *c, struct runc_state *st)
{
	char path[4200], *buf = NULL, msg[512];
	struct stat sb;
	size_t len;
	int r;

	memset(st, 0, sizeof(*st));
	if (stat(c->statedir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		runc_log(c, "error", "container \"%s\" does not exist", c->a.id);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/state.json", c->statedir);
	r = oci_read_small(AT_FDCWD, path, RUNC_SPEC_MAX_BYTES, &buf, &len, msg, sizeof(msg));
	if (r == -ENOENT) {
		runc_log(c, "error", "container \"%s\" does not exist (no state: its create failed)",
			 c->a.id);
		return -ENOENT;
	}
	if (r) {
		runc_log(c, "error", "container \"%s\": %s", c->a.id, msg);
		return r;
	}
	r = runc_state_parse(buf, len, st, msg, sizeof(msg));
	free(buf);
	if (r)
		runc_log(c, "error", "container \"%s\": %s", c->a.id, msg);
	return r;
}

static int runc_save(struct runc_ctx *c, const struct runc_state *st)
{
	char path[4200], *json;
	int r = runc_state_json(st, NULL, &json);

	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/state.json", c->statedir);
	r = runc_write_atomic(path, json, strlen(json));
	free(json);
	return r;
}

/* The directory of the running binary (for vmlinux and minivm-init beside it). */
static int runc_exe_dir(char *out, size_t size)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(out, size, "%s", exe) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* A file named by an annotation, an environment variable or found beside the binary. */
static int runc_find_file(struct runc_ctx *c, const char *annotation, const char *env,
			  const char *base, char *out, size_t size)
{
	const char *v = annotation ? annotation : getenv(env);
	char dir[4096];

	if (v && *v) {
		if (snprintf(out, size, "%s", v) >= (int)size)
			return -ENAMETOOLONG;
	} else {
		if (runc_exe_dir(dir, sizeof(dir)) ||
		    snprintf(out, size, "%s/%s", dir, base) >= (int)size)
			return -ENAMETOOLONG;
	}
	if (access(out, R_OK) != 0) {
		int e = errno;

		runc_log(c, "error", "%s %s: %s (set %s%s, or put %s beside the binary)",
			 strcmp(base, "vmlinux") == 0 ? "the guest kernel" : "the guest agent", out,
			 strerror(e), env, strcmp(base, "vmlinux") == 0 ? " or the annotation minivm.kernel"
								       : "", base);
		return -e;
	}
	return 0;
}

/* ---- the console socket (as runc: the pty master over SCM_RIGHTS) ---- */

static int runc_send_console(struct runc_ctx *c, const char *sock_path, int master,
			     const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd, r = 0;

	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		runc_log(c, "error", "--console-socket %s: path too long", sock_path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		runc_log(c, "error", "--console-socket %s: %s", sock_path, strerror(-r));
		goto out;
	}
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
		r = -errno;
		runc_log(c, "error", "--console-socket %s: sending the console: %s", sock_path,
			 strerror(-r));
	}
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/* A pty: the master goes to the console socket, the slave is returned in *slave. */
static int runc_console(struct runc_ctx *c, int *slave)
{
	char name[128];
	int master, r;

	*slave = -1;
	if (!c->a.console_socket) {
		runc_log(c, "error", "process.terminal is true: --console-socket is required");
		return -EINVAL;
	}
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) || ptsname_r(master, name, sizeof(name))) {
		r = -errno;
		runc_log(c, "error", "making a pseudo-terminal: %s", strerror(errno));
		if (master >= 0)
			close(master);
		return r;
	}
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0) {
		r = -errno;
		runc_log(c, "error", "%s: %s", name, strerror(errno));
		close(master);
		return r;
	}
	r = runc_send_console(c, c->a.console_socket, master, name);
	close(master);
	if (r) {
		close(*slave);
		*slave = -1;
	}
	return r;
}

/* In a forked child: a new session with the slave as controlling terminal and stdio. */
static void runc_child_stdio(int slave)
{
	(void)setsid();
	if (slave < 0)
		return;
	(void)ioctl(slave, TIOCSCTTY, 0);
	/* The guest's pty does the line discipline; this one only carries bytes. */
	{
		struct termios t;

		if (tcgetattr(slave, &t) == 0) {
			cfmakeraw(&t);
			(void)tcsetattr(slave, TCSANOW, &t);
		}
	}
	(void)dup2(slave, 0);
	(void)dup2(slave, 1);
	(void)dup2(slave, 2);
	if (slave > 2)
		close(slave);
}

/* ---- create ---- */

/* The front's argv: minivm --kernel ... -- ARGS. Strings are kept in *store (freed by the caller). */
struct runc_argv {
	char *v[RUNC_MAX_ARGS + 2 * RUNC_MAX_ENV + 64];
	unsigned int n;
	char store[16][4200];
	unsigned int nstore;
};

static void runc_argv_add(struct runc_argv *av, const char *s)
{
	if (av->n + 1 < sizeof(av->v) / sizeof(av->v[0]))
		av->v[av->n++] = (char *)s;
	av->v[av->n] = NULL;
}

static const char *runc_argv_fmt(struct runc_argv *av, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *runc_argv_fmt(struct runc_argv *av, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (av->nstore >= sizeof(av->store) / sizeof(av->store[0]))
		return "";
	s = av->store[av->nstore++];
	va_start(ap, fmt);
	vsnprintf(s, sizeof(av->store[0]), fmt, ap);
	va_end(ap);
	return s;
}

static int runc_front_argv(struct runc_ctx *c, const struct runc_spec *s, const char *kernel,
			   const struct runc_state *st, struct runc_argv *av)
{
	char msg[256];
	uint64_t mem;
	unsigned int cpus;
	int r = runc_spec_vm_size(s, &mem, &cpus, msg, sizeof(msg));

	if (r) {
		runc_log(c, "error", "%s", msg);
		return r;
	}
	runc_argv_add(av, "minivm-runc");
	runc_argv_add(av, "_init");
	runc_argv_add(av, "--kernel");
	runc_argv_add(av, kernel);
	runc_argv_add(av, "--rootfs");
	runc_argv_add(av, runc_argv_fmt(av, "%s/rootfs.img", c->statedir));
	runc_argv_add(av, "--cmdline");
	runc_argv_add(av, "init=/sbin/minivm-init");
	runc_argv_add(av, "--console");
	runc_argv_add(av, runc_argv_fmt(av, "%s/console.log", c->statedir));
	runc_argv_add(av, "--vsock");
	runc_argv_add(av, st->vsock);
	if (mem) {
		runc_argv_add(av, "--mem");
		runc_argv_add(av, runc_argv_fmt(av, "%" PRIu64 "M", mem >> 20));
	}
	if (cpus) {
		runc_argv_add(av, "--cpus");
		runc_argv_add(av, runc_argv_fmt(av, "%u", cpus));
	}
	if (s->root_readonly) {
		runc_argv_add(av, "--scratch");
		runc_argv_add(av, "none");
	}
	if (s->process.terminal)
		runc_argv_add(av, "--tty");
	for (unsigned int i = 0; i < s->process.nenv; i++) {
		runc_argv_add(av, "--env");
		runc_argv_add(av, s->process.env[i]);
	}
	runc_argv_add(av, "--workdir");
	runc_argv_add(av, s->process.cwd);
	if (s->process.uid || s->process.gid) {
		runc_argv_add(av, "--user");
		runc_argv_add(av, runc_argv_fmt(av, "%u:%u", s->process.uid, s->process.gid));
	}
	runc_argv_add(av, "--");
	for (unsigned int i = 0; i < s->process.nargs; i++)
		runc_argv_add(av, s->process.args[i]);
	return 0;
}

/*
 * The container's init, in the forked child: waits on start.fifo (opening
 * it for writing blocks until `start` opens it for reading), then execs
 * `minivm-runc _init` (runc_front_main: the minivm front that forwards
 * signals to the workload). Exec'd rather than called: a clean process
 * whose command line names the container's image (delete looks for it).
 * Never returns.
 */
static void runc_init(const char *fifo, const char *rundir, int slave, char *const argv[])
{
	char one = '0';
	int fd;

	runc_child_stdio(slave);
	(void)close_range(3, ~0U, 0);
	fd = open(fifo, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		dprintf(2, "minivm-runc: init: %s: %s\n", fifo, strerror(errno));
		_exit(125);
	}
	if (write(fd, &one, 1) != 1) {
		dprintf(2, "minivm-runc: init: %s: %s\n", fifo, strerror(errno));
		_exit(125);
	}
	close(fd);
	/* The front's run directory (vsock socket, scratch disk, console) under ours. */
	unsetenv("XDG_RUNTIME_DIR");
	setenv("TMPDIR", rundir, 1);
	execv("/proc/self/exe", argv);
	dprintf(2, "minivm-runc: init: exec of the front: %s\n", strerror(errno));
	_exit(125);
}

static int runc_mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char ch = *p;

			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = ch;
			if (!ch)
				break;
		}
	}
	return 0;
}

static int runc_create(struct runc_ctx *c)
{
	static struct runc_spec spec; /* large */
	static struct runc_argv av;   /* large */
	static struct runc_state st;
	char path[4200], rootfs[4200], kernel[4096], agent[4096], fifo[4200], msg[1024];
	char bundle[4096], *buf = NULL;
	bool made_dir = false, have_spec = false;
	int r, slave = -1;
	size_t len;
	pid_t pid;

	memset(&st, 0, sizeof(st));
	if (c->a.systemd_cgroup)
		runc_log(c, "info", "--systemd-cgroup ignored: a container is a VM, sized by its spec");
	if (!realpath(c->a.bundle, bundle)) {
		r = -errno;
		runc_log(c, "error", "bundle %s: %s", c->a.bundle, strerror(errno));
		return r;
	}
	r = runc_mkdir_p(c->a.root, 0711);
	if (r) {
		runc_log(c, "error", "--root %s: %s", c->a.root, strerror(-r));
		return r;
	}
	if (mkdir(c->statedir, 0711) != 0) {
		r = -errno;
		if (errno == EEXIST)
			runc_log(c, "error", "container with id \"%s\" already exists", c->a.id);
		else
			runc_log(c, "error", "%s: %s", c->statedir, strerror(errno));
		return r;
	}
	made_dir = true;
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	r = oci_read_small(AT_FDCWD, path, RUNC_SPEC_MAX_BYTES, &buf, &len, msg, sizeof(msg));
	if (r) {
		runc_log(c, "error", "bundle %s: %s", bundle, msg);
		goto fail;
	}
	r = runc_spec_parse(buf, len, &spec, msg, sizeof(msg));
	free(buf);
	buf = NULL;
	if (r) {
		runc_log(c, "error", "bundle %s: %s", bundle, msg);
		goto fail;
	}
	have_spec = true;
	if (spec.notes[0])
		runc_log(c, "warning", "%s", spec.notes);
	if (snprintf(rootfs, sizeof(rootfs), "%s%s%s", spec.root_path[0] == '/' ? "" : bundle,
		     spec.root_path[0] == '/' ? "" : "/", spec.root_path) >= (int)sizeof(rootfs)) {
		r = -ENAMETOOLONG;
		runc_log(c, "error", "root.path: too long");
		goto fail;
	}
	{
		struct stat sb;

		if (stat(rootfs, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			r = -ENOENT;
			runc_log(c, "error", "bundle %s has no rootfs: %s: %s", bundle, rootfs,
				 errno && !S_ISDIR(sb.st_mode) ? strerror(errno) : "not a directory");
			goto fail;
		}
	}
	r = runc_find_file(c, runc_spec_annotation(&spec, "minivm.kernel"), "MINIVM_KERNEL",
			   "vmlinux", kernel, sizeof(kernel));
	if (!r)
		r = runc_find_file(c, NULL, "MINIVM_AGENT_INIT", "minivm-init", agent, sizeof(agent));
	if (r)
		goto fail;

	/* Where the front keeps its files: short enough for the vsock socket's path. */
	snprintf(st.id, sizeof(st.id), "%s", c->a.id);
	snprintf(st.bundle, sizeof(st.bundle), "%s", bundle);
	if (snprintf(st.rootfs, sizeof(st.rootfs), "%s", rootfs) >= (int)sizeof(st.rootfs)) {
		r = -ENAMETOOLONG;
		runc_log(c, "error", "root.path: too long");
		goto fail;
	}
	runc_time(st.created, sizeof(st.created), true);
	if (strlen(c->statedir) <= RUNC_RUNDIR_MAX) {
		memcpy(st.rundir, c->statedir, strlen(c->statedir) + 1); /* <= RUNC_RUNDIR_MAX */
	} else {
		uint8_t d[SHA256_DIGEST_SIZE];
		char hex[SHA256_HEX_SIZE];

		sha256_digest(c->statedir, strlen(c->statedir), d);
		sha256_to_hex(d, hex);
		snprintf(st.rundir, sizeof(st.rundir), "/tmp/minivm-runc-%.16s", hex);
		if (mkdir(st.rundir, 0700) != 0 && errno != EEXIST) {
			r = -errno;
			runc_log(c, "error", "%s: %s", st.rundir, strerror(errno));
			goto fail;
		}
	}
	if (snprintf(st.vsock, sizeof(st.vsock), "%s/vsock.sock", st.rundir) >= (int)sizeof(st.vsock)) {
		r = -ENAMETOOLONG;
		goto fail;
	}

	/* The guest's root. */
	snprintf(path, sizeof(path), "%s/rootfs.img", c->statedir);
	r = runc_rootfs_build(&spec, rootfs, agent, c->statedir, path, msg, sizeof(msg));
	if (r) {
		runc_log(c, "error", "building the VM's root from %s: %s", rootfs, msg);
		goto fail;
	}
	runc_log(c, "debug", "wrote %s from %s", path, rootfs);
	memset(&av, 0, sizeof(av));
	r = runc_front_argv(c, &spec, kernel, &st, &av);
	if (r)
		goto fail;
	if (spec.process.terminal && (r = runc_console(c, &slave)))
		goto fail;
	snprintf(fifo, sizeof(fifo), "%s/start.fifo", c->statedir);
	if (mkfifo(fifo, 0600) != 0) {
		r = -errno;
		runc_log(c, "error", "%s: %s", fifo, strerror(errno));
		goto fail;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		runc_log(c, "error", "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		runc_init(fifo, st.rundir, slave, av.v);
	if (slave >= 0)
		close(slave);
	slave = -1;
	st.pid = pid;
	{
		char state;

		if (runc_proc_stat(pid, &state, &st.pid_start)) {
			r = -ESRCH;
			runc_log(c, "error", "the container's init (pid %d) died at once", (int)pid);
			goto fail_kill;
		}
	}
	if (spec.annotations_node) {
		/* The state keeps the spec's annotations: its doc moves into st. */
		st.doc = spec.doc;
		st.annotations = spec.annotations_node;
	}
	r = runc_save(c, &st);
	st.doc = NULL;
	if (r) {
		runc_log(c, "error", "%s/state.json: %s", c->statedir, strerror(-r));
		goto fail_kill;
	}
	if (c->a.pid_file && (r = runc_write_pid_file(c->a.pid_file, pid))) {
		runc_log(c, "error", "--pid-file %s: %s", c->a.pid_file, strerror(-r));
		goto fail_kill;
	}
	runc_log(c, "debug", "created %s: init pid %d: %s", c->a.id, (int)pid, av.v[0]);
	runc_spec_free(&spec);
	return 0;
fail_kill:
	kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
fail:
	if (slave >= 0)
		close(slave);
	if (have_spec)
		runc_spec_free(&spec);
	if (made_dir && oci_rm_rf(c->statedir))
		runc_log(c, "warning", "could not remove %s", c->statedir);
	if (st.rundir[0] && strcmp(st.rundir, c->statedir) != 0)
		if (oci_rm_rf(st.rundir))
			runc_log(c, "warning", "could not remove %s", st.rundir);
	return r;
}

/* ---- start, state, kill, ps ---- */

static int runc_start(struct runc_ctx *c)
{
	struct runc_state st;
	enum runc_status s;
	struct timespec t0, now;
	char fifo[4200];
	int r, fd;

	r = runc_load(c, &st);
	if (r)
		return r;
	s = runc_status_of(c, &st);
	if (s != RUNC_CREATED) {
		runc_log(c, "error", "cannot start a container that is %s", runc_status_name(s));
		r = -EINVAL;
		goto out;
	}
	snprintf(fifo, sizeof(fifo), "%s/start.fifo", c->statedir);
	fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		runc_log(c, "error", "%s: %s", fifo, strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char b;
		ssize_t n;

		(void)poll(&p, 1, 100);
		n = read(fd, &b, 1);
		if (n == 1) {
			r = 0;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!runc_init_alive(&st) ||
		    (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > RUNC_START_MS) {
			r = -ESRCH;
			runc_log(c, "error", "the container's init (pid %d) did not take the start signal",
				 (int)st.pid);
			break;
		}
	}
	close(fd);
	if (r == 0 && unlink(fifo) != 0)
		runc_log(c, "warning", "%s: %s", fifo, strerror(errno));
	if (r == 0)
		runc_log(c, "debug", "started %s (pid %d)", c->a.id, (int)st.pid);
out:
	runc_state_free(&st);
	return r;
}

static int runc_state_cmd(struct runc_ctx *c)
{
	struct runc_state st;
	char *json;
	int r = runc_load(c, &st);

	if (r)
		return r;
	r = runc_state_json(&st, runc_status_name(runc_status_of(c, &st)), &json);
	if (r) {
		runc_log(c, "error", "state: %s", strerror(-r));
	} else {
		printf("%s\n", json);
		free(json);
	}
	runc_state_free(&st);
	return r;
}

static int runc_kill(struct runc_ctx *c)
{
	struct runc_state st;
	int r = runc_load(c, &st);

	if (r)
		return r;
	if (runc_status_of(c, &st) == RUNC_STOPPED) {
		runc_log(c, "error", "container not running");
		r = -ESRCH;
	} else if (kill(st.pid, c->a.signal) != 0) {
		r = -errno;
		runc_log(c, "error", "kill %d: %s", (int)st.pid, strerror(errno));
	} else {
		runc_log(c, "debug", "sent signal %d to %s (pid %d)", c->a.signal, c->a.id, (int)st.pid);
	}
	runc_state_free(&st);
	return r;
}

static int runc_ps(struct runc_ctx *c)
{
	struct runc_state st;
	int r = runc_load(c, &st);
	bool alive;

	if (r)
		return r;
	alive = runc_status_of(c, &st) != RUNC_STOPPED;
	if (c->a.ps_json)
		printf(alive ? "[%d]\n" : "[]\n", (int)st.pid);
	else if (alive)
		printf("PID\n%d\n", (int)st.pid);
	else
		printf("PID\n");
	runc_state_free(&st);
	return 0;
}

/* ---- delete ---- */

/*
 * The processes whose command line names this container's image: the
 * front and the VMM processes it forked (they share its argv). Each found
 * one is sent sig; returns how many were found, their pids in pids[].
 */
static size_t runc_find_procs(const char *needle, int sig, pid_t *pids, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], buf[8192];
		ssize_t len;
		pid_t pid;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = '\0';
		if (!strstr(buf, needle))
			continue;
		{
			char state;
			unsigned long long start;

			if (runc_proc_stat(pid, &state, &start) || state == 'Z')
				continue;
		}
		if (sig)
			kill(pid, sig);
		if (n < max)
			pids[n] = pid;
		n++;
	}
	closedir(d);
	return n;
}

static int runc_delete(struct runc_ctx *c)
{
	struct runc_state st;
	enum runc_status s = RUNC_STOPPED;
	char needle[4200];
	pid_t pids[16];
	size_t npids = 0;
	struct timespec t0, now;
	int r;

	if (c->a.force && access(c->statedir, F_OK) != 0 && errno == ENOENT) {
		/* As runc: deleting what is already gone is done (the shim's cleanup does it). */
		runc_log(c, "debug", "delete --force: container \"%s\" does not exist", c->a.id);
		return 0;
	}
	r = runc_load(c, &st);
	if (r == -ENOENT && access(c->statedir, F_OK) != 0)
		return r; /* logged: does not exist */
	if (r == 0)
		s = runc_status_of(c, &st);
	else
		runc_log(c, "warning", "removing the remains of container \"%s\"", c->a.id);
	if (s == RUNC_RUNNING && !c->a.force) {
		runc_log(c, "error", "cannot delete container \"%s\" that is not stopped: running "
				     "(use --force)", c->a.id);
		runc_state_free(&st);
		return -EBUSY;
	}
	if (s != RUNC_STOPPED)
		kill(st.pid, SIGKILL);
	/* The front's VMM processes die with it (PR_SET_PDEATHSIG); make sure. */
	snprintf(needle, sizeof(needle), "%s/rootfs.img", c->statedir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		bool init_alive = r == 0 && runc_init_alive(&st);
		size_t n = runc_find_procs(needle, SIGKILL, pids + npids,
					   sizeof(pids) / sizeof(pids[0]) - npids);

		npids += n < sizeof(pids) / sizeof(pids[0]) - npids ? n : sizeof(pids) / sizeof(pids[0]) - npids;
		if (!init_alive && n == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > RUNC_REAP_MS) {
			runc_log(c, "error", "container \"%s\": its processes did not exit after SIGKILL",
				 c->a.id);
			runc_state_free(&st);
			return -EBUSY;
		}
		usleep(20000);
	}
	/* A killed front cannot remove its VMM's cgroup: the keeper's pid names it. */
	for (size_t i = 0; i < npids; i++) {
		char cg[128];

		snprintf(cg, sizeof(cg), "/sys/fs/cgroup/minivm/vm-%d", (int)pids[i]);
		(void)rmdir(cg);
		snprintf(cg, sizeof(cg), "/sys/fs/cgroup/unified/minivm/vm-%d", (int)pids[i]);
		(void)rmdir(cg);
	}
	if (r == 0 && st.rundir[0] && strcmp(st.rundir, c->statedir) != 0 && oci_rm_rf(st.rundir))
		runc_log(c, "warning", "could not remove %s", st.rundir);
	runc_state_free(&st);
	r = oci_rm_rf(c->statedir);
	if (r) {
		runc_log(c, "error", "removing %s: %s", c->statedir, strerror(-r));
		return r;
	}
	runc_log(c, "debug", "deleted %s", c->a.id);
	return 0;
}

/* ---- exec: a second command through the guest agent ---- */

/* The signal handler's pipe: signals become SIGNAL frames (agent_exec's ctl_fd). */
static int runc_exec_ctl_wr = -1;

static void runc_exec_on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;

	if (runc_exec_ctl_wr >= 0 && write(runc_exec_ctl_wr, &b, 1) < 0) {
		/* a full pipe: the signal is dropped */
	}
}

/* Runs the command; returns its status (a shell's), or 125 when minivm failed. */
static int runc_exec_run(struct runc_ctx *c, const struct runc_state *st,
			 const struct runc_process *p, bool tty)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	struct agent_exec_result res;
	struct agent_exec_req req;
	struct agent_exec_io io;
	struct timespec t0, now;
	struct termios saved;
	struct sigaction sa;
	char err[512], user[32];
	int ctl[2], fd = -1, r;
	bool raw = false;

	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK) != 0) {
		runc_log(c, "error", "pipe: %s", strerror(errno));
		return 125;
	}
	runc_exec_ctl_wr = ctl[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = runc_exec_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = agent_connect(st->vsock, AGENT_VSOCK_PORT, 1000, &fd, err, sizeof(err));
		if (r != -ETIMEDOUT)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!runc_init_alive(st) || now.tv_sec - t0.tv_sec > RUNC_EXEC_CONNECT_MS / 1000)
			break;
	}
	if (r) {
		runc_log(c, "error", "exec in %s: no answer from the guest agent: %s", c->a.id, err);
		r = 125;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.argv = p->args;
	req.env = p->nenv ? p->env : NULL;
	req.cwd = p->cwd;
	snprintf(user, sizeof(user), "%u:%u", p->uid, p->gid);
	req.user = p->uid || p->gid ? user : NULL;
	io.in_fd = STDIN_FILENO;
	io.out_fd = STDOUT_FILENO;
	io.err_fd = STDERR_FILENO;
	io.ctl_fd = ctl[0];
	io.winsize_fd = -1;
	if (tty) {
		struct winsize ws;

		req.flags |= AGENT_EXEC_TTY;
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			req.rows = ws.ws_row;
			req.cols = ws.ws_col;
		}
		io.winsize_fd = STDIN_FILENO;
		if (tcgetattr(STDIN_FILENO, &saved) == 0) {
			struct termios t = saved;

			cfmakeraw(&t);
			raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
		}
	}
	r = agent_exec(fd, &req, &io, &res, err, sizeof(err));
	if (raw)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (r) {
		runc_log(c, "error", "exec in %s: %s", c->a.id, err);
		r = 125;
	} else {
		r = agent_exec_exit_status(&res);
		if (res.kind == AGENT_EXIT_START_FAILED)
			runc_log(c, "error", "exec in %s: %s: %s in the guest", c->a.id, p->args[0],
				 res.err == ENOENT ? "command not found" : strerror(res.err));
	}
out:
	if (fd >= 0)
		close(fd);
	runc_exec_ctl_wr = -1;
	close(ctl[0]);
	close(ctl[1]);
	return r;
}

static int runc_exec(struct runc_ctx *c)
{
	static struct runc_spec ps; /* large */
	struct runc_state st;
	char msg[512], *buf = NULL;
	bool have = false, tty;
	int r, slave = -1, status;
	size_t len;
	pid_t pid;

	r = runc_load(c, &st);
	if (r)
		return r;
	if (runc_status_of(c, &st) != RUNC_RUNNING) {
		runc_log(c, "error", "cannot exec in a container that is not running");
		r = -EINVAL;
		goto out;
	}
	memset(&ps, 0, sizeof(ps));
	if (c->a.process) {
		r = oci_read_small(AT_FDCWD, c->a.process, RUNC_SPEC_MAX_BYTES, &buf, &len, msg,
				   sizeof(msg));
		if (!r)
			r = runc_process_parse(buf, len, &ps, msg, sizeof(msg));
		free(buf);
		if (r) {
			runc_log(c, "error", "--process %s: %s", c->a.process, msg);
			goto out;
		}
		have = true;
	} else {
		for (int i = 0; i < c->a.exec_argc && i < RUNC_MAX_ARGS; i++)
			ps.process.args[ps.process.nargs++] = c->a.exec_argv[i];
		for (unsigned int i = 0; i < c->a.exec_nenv; i++)
			ps.process.env[ps.process.nenv++] = c->a.exec_env[i];
		ps.process.cwd = c->a.exec_cwd ? c->a.exec_cwd : "/";
		ps.process.terminal = c->a.tty;
	}
	tty = ps.process.terminal;
	if (tty && (r = runc_console(c, &slave)))
		goto out;
	if (!c->a.detach) {
		if (c->a.pid_file && (r = runc_write_pid_file(c->a.pid_file, getpid()))) {
			runc_log(c, "error", "--pid-file %s: %s", c->a.pid_file, strerror(-r));
			goto out;
		}
		if (slave >= 0) {
			(void)dup2(slave, 0);
			(void)dup2(slave, 1);
			(void)dup2(slave, 2);
		}
		status = runc_exec_run(c, &st, &ps.process, tty);
		if (have)
			runc_spec_free(&ps);
		runc_state_free(&st);
		if (slave >= 0)
			close(slave);
		exit(status);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		runc_log(c, "error", "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		runc_child_stdio(slave);
		if (c->log_fd >= 0)
			close(c->log_fd);
		c->log_fd = -1;
		_exit(runc_exec_run(c, &st, &ps.process, tty));
	}
	if (c->a.pid_file && (r = runc_write_pid_file(c->a.pid_file, pid))) {
		runc_log(c, "error", "--pid-file %s: %s", c->a.pid_file, strerror(-r));
		kill(pid, SIGKILL);
		goto out;
	}
	runc_log(c, "debug", "exec in %s: pid %d", c->a.id, (int)pid);
out:
	if (slave >= 0)
		close(slave);
	if (have)
		runc_spec_free(&ps);
	runc_state_free(&st);
	return r;
}

/* ---- the entry point ---- */

static void runc_features(void)
{
	printf("{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.0.2\",\"hooks\":[],"
	       "\"mountOptions\":[\"bind\",\"rbind\",\"ro\"],"
	       "\"annotations\":{\"org.minivm.runtime\":\"microvm\"}}\n");
}

int runc_main(int argc, char **argv)
{
	static struct runc_ctx c; /* large */
	char err[512];
	int r;

	if (argc >= 2 && strcmp(argv[1], "runc") == 0) {
		argc--;
		argv++;
	}
	if (argc >= 2 && strcmp(argv[1], "_init") == 0)
		return runc_front_main(argc - 1, argv + 1);
	memset(&c, 0, sizeof(c));
	c.log_fd = -1;
	r = runc_args_parse(argc, argv, &c.a, err, sizeof(err));
	if (c.a.log) {
		/* Even a bad command line is reported in the log the shim reads. */
		c.log_fd = open(c.a.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	}
	if (r) {
		runc_log(&c, "error", "%s", err);
		return 1;
	}
	switch (c.a.cmd) {
	case RUNC_CMD_HELP:
		fputs(runc_usage, stdout);
		return 0;
	case RUNC_CMD_VERSION:
		printf("minivm-runc version %s\nspec: 1.0.2\n", RUNC_VERSION);
		return 0;
	case RUNC_CMD_FEATURES:
		runc_features();
		return 0;
	default:
		break;
	}
	if (snprintf(c.statedir, sizeof(c.statedir), "%s/%s", c.a.root, c.a.id) >=
	    (int)sizeof(c.statedir)) {
		runc_log(&c, "error", "--root %s: path too long", c.a.root);
		return 1;
	}
	runc_log(&c, "debug", "command %d for %s", (int)c.a.cmd, c.a.id);
	switch (c.a.cmd) {
	case RUNC_CMD_CREATE:
		r = runc_create(&c);
		break;
	case RUNC_CMD_START:
		r = runc_start(&c);
		break;
	case RUNC_CMD_STATE:
		r = runc_state_cmd(&c);
		break;
	case RUNC_CMD_KILL:
		r = runc_kill(&c);
		break;
	case RUNC_CMD_DELETE:
		r = runc_delete(&c);
		break;
	case RUNC_CMD_PS:
		r = runc_ps(&c);
		break;
	case RUNC_CMD_EXEC:
		r = runc_exec(&c);
		break;
	default:
		r = -EINVAL;
		break;
	}
	fflush(stdout);
	if (c.log_fd >= 0)
		close(c.log_fd);
	return r ? 1 : 0;
}
