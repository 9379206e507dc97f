/* Unit tests for the agent's session server (rootfs/agent/agent.c) driven by the host client (vmm/agent_client.c) over a Unix socket. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rootfs/agent/agent.h"
#include "rootfs/agent/agent_proto.h"
#include "vmm/agent_client.h"
#include "tests/unit/test_sock_helpers.h"

static char t_dir[64];
static char t_sock[100];
static pid_t t_server = -1;


static int shutdown_pipe = -1;

static void test_shutdown_hook(void *ctx, int status)
{
	(void)ctx;
	if (shutdown_pipe >= 0) {
		unsigned char c = (unsigned char)status;

		(void)!write(shutdown_pipe, &c, 1);
	}
}

/* A server process on a Unix socket at path; returns its pid. */
static pid_t start_server(const char *path, int status_fd)
{
	int lfd = listen_unix(path);
	pid_t pid;

	if (lfd < 0) {
		perror("listen");
		exit(1);
	}
	pid = fork();
	if (pid == 0) {
		struct agent_server_ops ops = { .shutdown = test_shutdown_hook, .log_prefix = "test-agent: " };
		struct agent_server *srv;
		int rc;

		shutdown_pipe = status_fd;
		if (agent_server_create(lfd, &ops, &srv) != 0)
			_exit(100);
		rc = agent_server_run(srv);
		agent_server_free(srv);
		exit(rc == 0 ? 0 : 101);
	}
	close(lfd);
	return pid;
}

static int conn_raw(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int conn(void)
{
	char err[256];
	int fd = conn_raw(t_sock);
	int rc = agent_handshake(fd, 5000, err, sizeof(err));

	ck_assert_msg(rc == 0, "handshake: %s", err);
	return fd;
}

/* Everything written to a memfd, NUL-terminated (malloc'd). */
static char *memfd_text(int fd, size_t *len)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)size + 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
	buf[size] = '\0';
	if (len)
		*len = (size_t)size;
	return buf;
}

struct run {
	struct agent_exec_result res;
	int rc;
	char *out, *err;
	size_t out_len, err_len;
	char msg[256];
};

/* Run argv with optional stdin bytes and ctl bytes; capture stdout/stderr. */
static void run_full(struct run *r, const struct agent_exec_req *req, const char *in, const char *ctl,
                     size_t ctl_len)
{
	int out = memfd_create("out", MFD_CLOEXEC), errfd = memfd_create("err", MFD_CLOEXEC);
	int inp[2] = { -1, -1 }, ctlp[2] = { -1, -1 };
	struct agent_exec_io io = { .in_fd = -1, .out_fd = out, .err_fd = errfd, .ctl_fd = -1, .winsize_fd = -1 };
	int fd = conn();

	if (in) {
		ck_assert_int_eq(pipe(inp), 0);
		ck_assert_int_eq(write(inp[1], in, strlen(in)), (ssize_t)strlen(in));
		close(inp[1]);
		io.in_fd = inp[0];
	}
	if (ctl) {
		ck_assert_int_eq(pipe(ctlp), 0);
		ck_assert_int_eq(write(ctlp[1], ctl, ctl_len), (ssize_t)ctl_len);
		io.ctl_fd = ctlp[0];
	}
	memset(&r->res, 0x5a, sizeof(r->res));
	r->rc = agent_exec(fd, req, &io, &r->res, r->msg, sizeof(r->msg));
	close(fd);
	r->out = memfd_text(out, &r->out_len);
	r->err = memfd_text(errfd, &r->err_len);
	close(out);
	close(errfd);
	if (inp[0] >= 0)
		close(inp[0]);
	if (ctlp[0] >= 0) {
		close(ctlp[0]);
		close(ctlp[1]);
	}
}

static void run_argv(struct run *r, const char *const *argv, const char *in)
{
	struct agent_exec_req req = { .argv = argv };

	run_full(r, &req, in, NULL, 0);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

START_TEST(exec_exit_code_and_streams)
{
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	struct run r;

	run_argv(&r, argv, NULL);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_EXITED);
	ck_assert_int_eq(r.res.code, 3);
	ck_assert_uint_gt(r.res.pid, 0);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 3);
	ck_assert_str_eq(r.out, "out\n");
	ck_assert_str_eq(r.err, "err\n");
	run_free(&r);
}
END_TEST

START_TEST(exec_killed_by_signal)
{
	const char *argv[] = { "sh", "-c", "kill -TERM $$", NULL };
	struct run r;

	run_argv(&r, argv, NULL);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_SIGNALED);
	ck_assert_int_eq(r.res.signo, SIGTERM);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 128 + SIGTERM);
	run_free(&r);
}
END_TEST

START_TEST(exec_not_found_and_not_executable)
{
	const char *a1[] = { "minivm-no-such-command", "x", NULL };
	const char *a2[] = { "/no/such/file", NULL };
	const char *a3[] = { "/etc/passwd", NULL };
	struct run r;

	run_argv(&r, a1, NULL);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_START_FAILED);
	ck_assert_int_eq(r.res.err, ENOENT);
	ck_assert_int_eq(r.res.pid, 0);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 127);
	ck_assert_ptr_nonnull(strstr(r.err, "minivm-no-such-command: not found"));
	run_free(&r);

	run_argv(&r, a2, NULL);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_START_FAILED);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 127);
	run_free(&r);

	run_argv(&r, a3, NULL);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_START_FAILED);
	ck_assert_int_eq(r.res.err, EACCES);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 126);
	run_free(&r);
}
END_TEST

START_TEST(exec_stdin_through_cat)
{
	const char *argv[] = { "cat", NULL };
	const char *argv2[] = { "wc", "-c", NULL };
	struct run r;

	run_argv(&r, argv, "hello\nworld\n");
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_EXITED);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_str_eq(r.out, "hello\nworld\n");
	run_free(&r);

	/* No stdin: /dev/null, so cat ends at once. */
	run_argv(&r, argv, NULL);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_str_eq(r.out, "");
	run_free(&r);

	run_argv(&r, argv2, "");
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_int_eq(atoi(r.out), 0);
	run_free(&r);
}
END_TEST

START_TEST(exec_one_mib_identical)
{
	char path[160], cmd[200];
	const char *argv[] = { "cat", path, NULL };
	size_t len = 1 << 20;
	uint8_t *data = malloc(len);
	struct run r;
	int fd;

	ck_assert_ptr_nonnull(data);
	srand(42);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)rand();
	snprintf(path, sizeof(path), "%s/big", t_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	run_argv(&r, argv, NULL);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_uint_eq(r.out_len, len);
	ck_assert(memcmp(r.out, data, len) == 0);
	run_free(&r);

	/* The same bytes through stdin and back, and on stderr. */
	snprintf(cmd, sizeof(cmd), "cat %s >&2", path);
	{
		const char *a2[] = { "sh", "-c", cmd, NULL };

		run_argv(&r, a2, NULL);
		ck_assert_uint_eq(r.err_len, len);
		ck_assert(memcmp(r.err, data, len) == 0);
		ck_assert_uint_eq(r.out_len, 0);
		run_free(&r);
	}
	free(data);
}
END_TEST

START_TEST(exec_timeout)
{
	const char *argv[] = { "sh", "-c", "echo before; sleep 20; echo after", NULL };
	struct agent_exec_req req = { .argv = argv, .timeout_s = 1 };
	double t0 = now_s();
	struct run r;

	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_TIMED_OUT);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 124);
	ck_assert_str_eq(r.out, "before\n");
	ck_assert_double_lt(now_s() - t0, 5.0);
	run_free(&r);
}
END_TEST

START_TEST(exec_signal_forwarded)
{
	const char *argv[] = { "sleep", "20", NULL };
	struct agent_exec_req req = { .argv = argv };
	const char ctl[] = { SIGINT };
	double t0 = now_s();
	struct run r;

	run_full(&r, &req, NULL, ctl, 1);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_SIGNALED);
	ck_assert_int_eq(agent_exec_exit_status(&r.res), 130);
	ck_assert_double_lt(now_s() - t0, 5.0);
	run_free(&r);

	/* Byte 0 aborts at once. */
	const char abort_byte[] = { 0 };
	run_full(&r, &req, NULL, abort_byte, 1);
	ck_assert_int_eq(r.rc, -ECANCELED);
	run_free(&r);
}
END_TEST

START_TEST(exec_env_cwd_user)
{
	const char *argv[] = { "sh", "-c", "echo \"$FOO|$PATH|$TERM\"; pwd; id -u; id -g", NULL };
	const char *env[] = { "FOO=bar baz", "PATH=/usr/bin:/bin", NULL };
	struct agent_exec_req req = { .argv = argv, .env = env, .cwd = "/tmp", .user = "65534:65533" };
	struct run r;

	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_str_eq(r.out, "bar baz|/usr/bin:/bin|linux\n/tmp\n65534\n65533\n");
	run_free(&r);

	/* Defaults: cwd /, the default PATH. */
	req.env = NULL, req.cwd = NULL, req.user = NULL;
	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "|/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin|linux\n/\n"));
	run_free(&r);

	/* Unknown user, missing cwd. */
	req.user = "minivm-no-such-user";
	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_START_FAILED);
	ck_assert_int_eq(r.res.err, EINVAL);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown user"));
	run_free(&r);
	req.user = NULL;
	req.cwd = "/no/such/dir";
	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_START_FAILED);
	ck_assert_int_eq(r.res.err, ENOENT);
	ck_assert_ptr_nonnull(strstr(r.err, "cwd"));
	run_free(&r);
}
END_TEST

START_TEST(exec_tty)
{
	const char *argv[] = { "sh", "-c", "tty; stty size; test -t 0 && test -t 2 && echo ttys", NULL };
	struct agent_exec_req req = { .argv = argv, .flags = AGENT_EXEC_TTY, .rows = 50, .cols = 132 };
	struct run r;

	run_full(&r, &req, NULL, NULL, 0);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.code, 0);
	ck_assert_msg(strncmp(r.out, "/dev/pts/", 9) == 0, "out: %s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "50 132\r\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "ttys\r\n"));
	run_free(&r);
}
END_TEST

/* Read a pipe, noting when its first byte came. */
struct first_byte {
	int fd;
	double t;
	char buf[256];
	size_t len;
};

static void *first_byte_reader(void *arg)
{
	struct first_byte *f = arg;
	ssize_t n;

	while ((n = read(f->fd, f->buf + f->len, sizeof(f->buf) - 1 - f->len)) > 0) {
		if (f->len == 0)
			f->t = now_s();
		f->len += (size_t)n;
	}
	f->buf[f->len] = '\0';
	return NULL;
}

START_TEST(exec_output_is_live)
{
	const char *argv[] = { "sh", "-c", "echo first; sleep 2; echo second", NULL };
	struct agent_exec_req req = { .argv = argv };
	struct first_byte f = { 0 };
	struct agent_exec_io io = { .in_fd = -1, .err_fd = -1, .ctl_fd = -1, .winsize_fd = -1 };
	struct agent_exec_result res;
	char msg[256];
	pthread_t th;
	int p[2], fd = conn(), rc;
	double t_end;

	ck_assert_int_eq(pipe(p), 0);
	f.fd = p[0];
	io.out_fd = p[1];
	ck_assert_int_eq(pthread_create(&th, NULL, first_byte_reader, &f), 0);
	rc = agent_exec(fd, &req, &io, &res, msg, sizeof(msg));
	t_end = now_s();
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	close(fd);
	ck_assert_msg(rc == 0, "%s", msg);
	ck_assert_str_eq(f.buf, "first\nsecond\n");
	ck_assert_double_gt(t_end - f.t, 1.0);
}
END_TEST

struct par {
	int rc;
	struct agent_exec_result res;
	char msg[256];
};

static void *par_run(void *arg)
{
	struct par *p = arg;
	const char *argv[] = { "sleep", "1", NULL };
	struct agent_exec_req req = { .argv = argv };
	struct agent_exec_io io = { .in_fd = -1, .out_fd = -1, .err_fd = -1, .ctl_fd = -1, .winsize_fd = -1 };
	int fd = conn_raw(t_sock);

	p->rc = agent_handshake(fd, 5000, p->msg, sizeof(p->msg));
	if (p->rc == 0)
		p->rc = agent_exec(fd, &req, &io, &p->res, p->msg, sizeof(p->msg));
	close(fd);
	return NULL;
}

START_TEST(exec_sessions_run_concurrently)
{
	struct par p[4];
	pthread_t th[4];
	double t0 = now_s();

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(p[i].rc == 0, "%s", p[i].msg);
		ck_assert_int_eq(p[i].res.kind, AGENT_EXIT_EXITED);
		ck_assert_int_eq(p[i].res.code, 0);
	}
	ck_assert_double_lt(now_s() - t0, 1.9);
}
END_TEST

/* Read one frame from a raw connection into m (payload kept in buf). */
static int read_frame(int fd, uint8_t *buf, size_t size, struct agent_msg *m)
{
	struct agent_frame_hdr h;
	size_t got = 0;

	while (got < AGENT_FRAME_HDR_SIZE) {
		ssize_t n = read(fd, buf + got, AGENT_FRAME_HDR_SIZE - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	if (agent_frame_hdr_decode(buf, got, &h) != 0 || AGENT_FRAME_HDR_SIZE + h.length > size)
		return -1;
	while (got < AGENT_FRAME_HDR_SIZE + h.length) {
		ssize_t n = read(fd, buf + got, AGENT_FRAME_HDR_SIZE + h.length - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return agent_msg_decode(h.type, buf + AGENT_FRAME_HDR_SIZE, h.length, m);
}

static void expect_error_then_close(int fd, int code)
{
	static uint8_t buf[AGENT_FRAME_MAX_SIZE];
	static struct agent_msg m;
	char c;

	ck_assert_int_eq(read_frame(fd, buf, sizeof(buf), &m), 0);
	ck_assert_int_eq(m.type, AGENT_MSG_ERROR);
	ck_assert_int_eq(m.u.error.code, code);
	ck_assert_int_eq(read(fd, &c, 1), 0);
}

START_TEST(bad_frames_get_error_and_close)
{
	uint8_t h[AGENT_FRAME_HDR_SIZE];
	const char *argv[] = { "true", NULL };
	struct run r;
	int fd;

	/* Garbage instead of HELLO. */
	fd = conn_raw(t_sock);
	ck_assert_int_eq(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	expect_error_then_close(fd, EPROTO);
	close(fd);

	/* An oversized length. */
	fd = conn_raw(t_sock);
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_HELLO, 0, h), 0);
	h[10] = 0x10; /* 1 MiB */
	ck_assert_int_eq(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	expect_error_then_close(fd, EMSGSIZE);
	close(fd);

	/* A request before HELLO; a malformed EXEC after it. */
	fd = conn_raw(t_sock);
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_STDIN_EOF, 0, h), 0);
	ck_assert_int_eq(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	expect_error_then_close(fd, EPROTO);
	close(fd);
	fd = conn();
	{
		uint8_t f[AGENT_FRAME_HDR_SIZE + 3] = { 0 };

		ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_EXEC, 3, f), 0);
		ck_assert_int_eq(write(fd, f, sizeof(f)), (ssize_t)sizeof(f));
	}
	expect_error_then_close(fd, EBADMSG);
	close(fd);

	/* Another protocol version in HELLO. */
	fd = conn_raw(t_sock);
	{
		struct agent_msg m = { .type = AGENT_MSG_HELLO };
		uint8_t f[128];
		ssize_t n;

		m.u.hello.version = 99;
		n = agent_msg_encode(&m, f, sizeof(f));
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(write(fd, f, (size_t)n), n);
	}
	expect_error_then_close(fd, EPROTONOSUPPORT);
	close(fd);

	/* The server still serves. */
	run_argv(&r, argv, NULL);
	ck_assert_msg(r.rc == 0, "%s", r.msg);
	ck_assert_int_eq(r.res.kind, AGENT_EXIT_EXITED);
	ck_assert_int_eq(r.res.code, 0);
	run_free(&r);
}
END_TEST

START_TEST(host_disconnect_kills_command)
{
	char cmd[256], pidfile[160];
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct agent_exec_req req = { .argv = argv };
	uint8_t buf[4096];
	ssize_t n;
	int fd = conn();
	FILE *f;
	int pid = 0;

	snprintf(pidfile, sizeof(pidfile), "%s/pid", t_dir);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; exec sleep 30", pidfile);
	n = agent_exec_encode(&req, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	for (int i = 0; i < 200 && pid == 0; i++) {
		usleep(20000);
		f = fopen(pidfile, "r");
		if (f) {
			if (fscanf(f, "%d", &pid) != 1)
				pid = 0;
			fclose(f);
		}
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, 0), 0);
	close(fd);
	for (int i = 0; i < 250 && kill(pid, 0) == 0; i++)
		usleep(20000);
	ck_assert_int_ne(kill(pid, 0), 0);
}
END_TEST

START_TEST(files_round_trip)
{
	char path[160], missing[160], src[160], back[160];
	size_t len = 200000;
	uint8_t *data = malloc(len);
	uint64_t size = 0;
	uint32_t mode = 0;
	char msg[256];
	int fd, sfd, dfd, rc;
	struct stat st;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	snprintf(src, sizeof(src), "%s/src", t_dir);
	snprintf(path, sizeof(path), "%s/put", t_dir);
	snprintf(back, sizeof(back), "%s/back", t_dir);
	snprintf(missing, sizeof(missing), "%s/no/such/dir/f", t_dir);
	sfd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(write(sfd, data, len), (ssize_t)len);
	ck_assert_int_eq(lseek(sfd, 0, SEEK_SET), 0);

	fd = conn();
	rc = agent_put_file(fd, path, 0640, sfd, &size, msg, sizeof(msg));
	close(fd);
	ck_assert_msg(rc == 0, "%s", msg);
	ck_assert_uint_eq(size, len);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, (off_t)len);

	fd = conn();
	dfd = open(back, O_RDWR | O_CREAT | O_TRUNC, 0600);
	rc = agent_get_file(fd, path, dfd, &mode, &size, msg, sizeof(msg));
	close(fd);
	ck_assert_msg(rc == 0, "%s", msg);
	ck_assert_uint_eq(mode, 0640);
	ck_assert_uint_eq(size, len);
	{
		uint8_t *got = malloc(len);

		ck_assert_int_eq(pread(dfd, got, len, 0), (ssize_t)len);
		ck_assert(memcmp(got, data, len) == 0);
		free(got);
	}

	/* Empty file. */
	fd = conn();
	{
		int efd = open("/dev/null", O_RDONLY);

		rc = agent_put_file(fd, path, 0600, efd, &size, msg, sizeof(msg));
		close(efd);
	}
	close(fd);
	ck_assert_msg(rc == 0, "%s", msg);
	ck_assert_uint_eq(size, 0);

	/* Errors. */
	fd = conn();
	rc = agent_get_file(fd, missing, dfd, NULL, NULL, msg, sizeof(msg));
	close(fd);
	ck_assert_int_eq(rc, -ENOENT);
	fd = conn();
	rc = agent_get_file(fd, t_dir, dfd, NULL, NULL, msg, sizeof(msg));
	close(fd);
	ck_assert_int_eq(rc, -EISDIR);
	ck_assert_int_eq(lseek(sfd, 0, SEEK_SET), 0);
	fd = conn();
	rc = agent_put_file(fd, missing, 0600, sfd, NULL, msg, sizeof(msg));
	close(fd);
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_ptr_nonnull(strstr(msg, "No such file"));

	close(sfd);
	close(dfd);
	free(data);
}
END_TEST

START_TEST(shutdown_acks_then_calls_hook)
{
	char path[160], msg[256];
	int p[2], fd, ws;
	unsigned char status = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/shut.sock", t_dir);
	ck_assert_int_eq(pipe(p), 0);
	pid = start_server(path, p[1]);
	close(p[1]);
	fd = conn_raw(path);
	ck_assert_int_eq(agent_handshake(fd, 5000, msg, sizeof(msg)), 0);
	ck_assert_msg(agent_shutdown(fd, 7, msg, sizeof(msg)) == 0, "%s", msg);
	close(fd);
	ck_assert_int_eq(read(p[0], &status, 1), 1);
	ck_assert_int_eq(status, 7);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	close(p[0]);
	ck_assert_int_eq(agent_shutdown(0, 256, msg, sizeof(msg)), -EINVAL);
}
END_TEST

/* A stand-in for the VMM's hybrid socket: refuses the first attempts, then relays to the agent. */
static void fake_vmm(const char *path, int refuse)
{
	int lfd = listen_unix(path);

	signal(SIGPIPE, SIG_IGN);
	if (lfd < 0)
		_exit(1);
	for (;;) {
		char line[64];
		size_t len = 0;
		int c = accept(lfd, NULL, NULL), a;

		if (c < 0)
			_exit(1);
		while (len < sizeof(line) - 1 && read(c, line + len, 1) == 1 && line[len] != '\n')
			len++;
		line[len] = '\0';
		if (strcmp(line, "CONNECT 1024") != 0 || refuse-- > 0) {
			close(c);
			continue;
		}
		(void)!write(c, "OK 1073741824\n", 14);
		a = socket(AF_UNIX, SOCK_STREAM, 0);
		{
			struct sockaddr_un sa = { .sun_family = AF_UNIX };

			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t_sock);
			if (connect(a, (struct sockaddr *)&sa, sizeof(sa)) < 0)
				_exit(1);
		}
		for (bool a_open = true;;) {
			struct pollfd p[2] = { { .fd = a_open ? c : -1, .events = POLLIN }, { .fd = a, .events = POLLIN } };
			char buf[65536];
			ssize_t n;

			if (poll(p, 2, -1) <= 0)
				_exit(1);
			if (p[0].revents) {
				n = read(c, buf, sizeof(buf));
				if (n <= 0)
					break;
				/* An agent that refused us may have closed already:
				 * what it said before is still relayed below. */
				if (write(a, buf, (size_t)n) != n)
					a_open = false;
			}
			if (p[1].revents) {
				n = read(a, buf, sizeof(buf));
				if (n <= 0 || write(c, buf, (size_t)n) != n)
					break;
			}
		}
		close(a);
		close(c);
	}
}

START_TEST(connect_hybrid_with_retries)
{
	char path[160], msg[256];
	const char *argv[] = { "echo", "via vmm", NULL };
	struct agent_exec_req req = { .argv = argv };
	int out = memfd_create("out", MFD_CLOEXEC);
	struct agent_exec_io io = { .in_fd = -1, .out_fd = out, .err_fd = -1, .ctl_fd = -1, .winsize_fd = -1 };
	struct agent_exec_result res;
	double t0;
	pid_t pid;
	int fd = -1, rc;
	char *text;

	snprintf(path, sizeof(path), "%s/vmm.sock", t_dir);
	/* No socket yet: times out, saying why. */
	t0 = now_s();
	rc = agent_connect(path, AGENT_VSOCK_PORT, 100, &fd, msg, sizeof(msg));
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(msg, "vmm.sock"));
	ck_assert_double_lt(now_s() - t0, 1.0);

	pid = fork();
	if (pid == 0)
		fake_vmm(path, 3);
	rc = agent_connect(path, AGENT_VSOCK_PORT, 5000, &fd, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	rc = agent_exec(fd, &req, &io, &res, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	close(fd);
	text = memfd_text(out, NULL);
	ck_assert_str_eq(text, "via vmm\n");
	free(text);
	close(out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* A full session table (32 connections that never send HELLO) answers
 * "too many sessions"; agent_connect waits that out and connects once a
 * slot frees, and gives up with the agent's word at its deadline. */
START_TEST(connect_waits_for_a_free_session)
{
	int idle[AGENT_MAX_SESSIONS], fd = -1, rc;
	char path[160], msg[256];
	double t0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/vmm-busy.sock", t_dir);
	pid = fork();
	if (pid == 0)
		fake_vmm(path, 0);
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++) {
		idle[i] = conn_raw(t_sock);
		ck_assert_int_ge(idle[i], 0);
	}
	usleep(200 * 1000); /* the agent accepts them all */
	t0 = now_s();
	rc = agent_connect(path, AGENT_VSOCK_PORT, 700, &fd, msg, sizeof(msg));
	/* It kept trying until its deadline (the last try may still have been
	 * on its way: -ETIMEDOUT), instead of failing at the first EBUSY. */
	ck_assert_msg((rc == -EBUSY && strstr(msg, "too many sessions")) || rc == -ETIMEDOUT, "%d %s", rc, msg);
	ck_assert_double_ge(now_s() - t0, 0.65);
	ck_assert_double_lt(now_s() - t0, 5.0);

	/* Slots free up while it waits: it connects. */
	t0 = now_s();
	{
		pid_t closer = fork();

		if (closer == 0) {
			usleep(500 * 1000);
			for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
				shutdown(idle[i], SHUT_RDWR);
			_exit(0);
		}
		rc = agent_connect(path, AGENT_VSOCK_PORT, 10000, &fd, msg, sizeof(msg));
		ck_assert_msg(rc == 0, "%s", msg);
		ck_assert_double_ge(now_s() - t0, 0.5);
		{
			const char *argv[] = { "true", NULL };
			struct agent_exec_req req = { .argv = argv };
			struct agent_exec_io io = { .in_fd = -1, .out_fd = -1, .err_fd = -1, .ctl_fd = -1,
						    .winsize_fd = -1 };
			struct agent_exec_result res;

			rc = agent_exec(fd, &req, &io, &res, msg, sizeof(msg));
			ck_assert_msg(rc == 0, "%s", msg);
			ck_assert_int_eq(agent_exec_exit_status(&res), 0);
		}
		close(fd);
		waitpid(closer, NULL, 0);
	}
	for (int i = 0; i < AGENT_MAX_SESSIONS; i++)
		close(idle[i]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* The next test finds the agent's table empty again. */
	unlink(path);
	for (int i = 0; i < 100; i++) {
		int c = conn_raw(t_sock);

		rc = agent_handshake(c, 5000, msg, sizeof(msg));
		close(c);
		if (rc != -EBUSY)
			break;
		usleep(50 * 1000);
	}
	ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

static Suite *agent_session_suite(void)
{
	Suite *s = suite_create("agent_session");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, exec_exit_code_and_streams);
	tcase_add_test(tc, connect_waits_for_a_free_session);
	tcase_add_test(tc, exec_killed_by_signal);
	tcase_add_test(tc, exec_not_found_and_not_executable);
	tcase_add_test(tc, exec_stdin_through_cat);
	tcase_add_test(tc, exec_one_mib_identical);
	tcase_add_test(tc, exec_timeout);
	tcase_add_test(tc, exec_signal_forwarded);
	tcase_add_test(tc, exec_env_cwd_user);
	tcase_add_test(tc, exec_tty);
	tcase_add_test(tc, exec_output_is_live);
	tcase_add_test(tc, exec_sessions_run_concurrently);
	tcase_add_test(tc, bad_frames_get_error_and_close);
	tcase_add_test(tc, host_disconnect_kills_command);
	tcase_add_test(tc, files_round_trip);
	tcase_add_test(tc, shutdown_acks_then_calls_hook);
	tcase_add_test(tc, connect_hybrid_with_retries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;
	char cmd[128];

	signal(SIGPIPE, SIG_IGN);
	snprintf(t_dir, sizeof(t_dir), "/tmp/minivm-agent-test.XXXXXX");
	if (!mkdtemp(t_dir)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(t_dir, 0755);
	snprintf(t_sock, sizeof(t_sock), "%s/agent.sock", t_dir);
	t_server = start_server(t_sock, -1);

	sr = srunner_create(agent_session_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	kill(t_server, SIGKILL);
	waitpid(t_server, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t_dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
