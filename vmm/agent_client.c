/* Host-side client of the guest agent: hybrid vsock connect, HELLO, EXEC with live I/O, files, shutdown. */
#include "agent_client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define AC_RETRY_MS 20
#define AC_BUSY_RETRY_MS 200 /* after the agent said its session table is full */
#define AC_LINE_MAX 64
#define AC_STAGE_SIZE 16384
/* The outgoing buffer holds one data frame and a few control frames. */
#define AC_OUT_SIZE (AGENT_FRAME_HDR_SIZE + AGENT_DATA_CHUNK + 4096)

/* Receiving side of a connection: staged bytes, the frame reader, the decoded message. */
struct ac_rx {
	uint8_t stage[AC_STAGE_SIZE];
	size_t off, len;
	struct agent_frame_reader rd;
	struct agent_msg msg;
};

static int ac_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write the message and return code (a negative errno). */
static int ac_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int64_t ac_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll()'s timeout for an absolute deadline (-1: none). */
static int ac_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - ac_now_ms();
	if (left <= 0)
		return 0;
	return left > 1000000 ? 1000000 : (int)left;
}

static int ac_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int rc = poll(&p, 1, ac_left(deadline));

		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Send all of buf on a socket (blocking or not), until deadline (-1: none). */
static int ac_send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = ac_wait(fd, POLLOUT, deadline);

			if (rc)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write all of buf to a file descriptor (EAGAIN waits with poll). */
static int ac_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = ac_wait(fd, POLLOUT, -1);

			if (rc)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ac_send_msg(int fd, const struct agent_msg *m, int64_t deadline)
{
	uint8_t buf[AGENT_FRAME_HDR_SIZE + AGENT_PATH_MAX + 64];
	ssize_t n = agent_msg_encode(m, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	return ac_send_all(fd, buf, (size_t)n, deadline);
}

static struct ac_rx *ac_rx_new(void)
{
	struct ac_rx *rx = malloc(sizeof(*rx));

	if (rx) {
		rx->off = rx->len = 0;
		agent_frame_reader_init(&rx->rd);
	}
	return rx;
}

/*
 * Take the next whole frame out of the staged bytes and decode it into
 * rx->msg: 1 a message, 0 need more bytes, -errno a malformed frame.
 */
static int ac_rx_take(struct ac_rx *rx)
{
	while (rx->len > 0) {
		size_t used = 0;
		int rc = agent_frame_reader_push(&rx->rd, rx->stage + rx->off, rx->len, &used);

		rx->off += used;
		rx->len -= used;
		if (rc < 0)
			return rc;
		if (rc == 1) {
			rc = agent_msg_decode(rx->rd.hdr.type, agent_frame_reader_payload(&rx->rd),
			                      rx->rd.hdr.length, &rx->msg);
			return rc < 0 ? rc : 1;
		}
	}
	return 0;
}

/* Receive more bytes (stage empty): >0 read, 0 EOF, -EAGAIN, -errno. */
static int ac_rx_fill(int fd, struct ac_rx *rx)
{
	ssize_t n;

	do
		n = recv(fd, rx->stage, sizeof(rx->stage), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	rx->off = 0;
	rx->len = (size_t)n;
	return (int)(n > 0);
}

/* Block until the next message (deadline -1: none). */
static int ac_rx_next(int fd, struct ac_rx *rx, int64_t deadline, char *err, size_t errlen)
{
	for (;;) {
		int rc = ac_rx_take(rx);

		if (rc == 1)
			return 0;
		if (rc < 0)
			return ac_fail(err, errlen, rc, "malformed frame from the agent: %s", strerror(-rc));
		rc = ac_rx_fill(fd, rx);
		if (rc == 0)
			return ac_fail(err, errlen, -ECONNRESET, "the agent closed the connection");
		if (rc == -EAGAIN) {
			rc = ac_wait(fd, POLLIN, deadline);
			if (rc)
				return ac_fail(err, errlen, rc, "waiting for the agent: %s", strerror(-rc));
			continue;
		}
		if (rc < 0)
			return ac_fail(err, errlen, rc, "reading from the agent: %s", strerror(-rc));
	}
}

/* An ERROR frame as the result, or -EPROTO for any other unexpected message. */
static int ac_unexpected(const struct agent_msg *m, const char *when, char *err, size_t errlen)
{
	if (m->type == AGENT_MSG_ERROR)
		return ac_fail(err, errlen, -m->u.error.code, "agent: %s", m->u.error.msg);
	return ac_fail(err, errlen, -EPROTO, "unexpected %s from the agent %s",
	               agent_msg_type_name(m->type), when);
}

int agent_handshake(int fd, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ac_now_ms() + timeout_ms;
	struct agent_msg m = { .type = AGENT_MSG_HELLO };
	struct ac_rx *rx;
	int rc;

	m.u.hello.version = AGENT_PROTO_VERSION;
	m.u.hello.max_payload = AGENT_PROTO_MAX_PAYLOAD;
	strcpy(m.u.hello.ident, "minivm");
	rc = ac_send_msg(fd, &m, deadline);
	rx = ac_rx_new();
	if (!rx)
		return ac_fail(err, errlen, -ENOMEM, "out of memory");
	if (rc == -EPIPE || rc == -ECONNRESET) {
		/* The agent may have refused the connection before reading
		 * HELLO (a full session table): its ERROR frame says why. */
		int send_rc = rc;

		rc = ac_rx_next(fd, rx, ac_now_ms() + 1000, err, errlen);
		if (rc == 0 && rx->msg.type == AGENT_MSG_ERROR)
			rc = ac_unexpected(&rx->msg, "instead of HELLO", err, errlen);
		else
			rc = ac_fail(err, errlen, send_rc, "sending HELLO: %s", strerror(-send_rc));
		free(rx);
		return rc;
	}
	if (rc) {
		free(rx);
		return ac_fail(err, errlen, rc, "sending HELLO: %s", strerror(-rc));
	}
	rc = ac_rx_next(fd, rx, deadline, err, errlen);
	if (rc == 0 && rx->msg.type != AGENT_MSG_HELLO)
		rc = ac_unexpected(&rx->msg, "instead of HELLO", err, errlen);
	else if (rc == 0 && rx->msg.u.hello.version != AGENT_PROTO_VERSION)
		rc = ac_fail(err, errlen, -EPROTONOSUPPORT, "the agent speaks protocol %u, minivm %u",
		             rx->msg.u.hello.version, AGENT_PROTO_VERSION);
	/* One request per connection: no bytes may follow HELLO yet. */
	else if (rc == 0 && rx->len > 0)
		rc = ac_fail(err, errlen, -EPROTO, "unexpected bytes after the agent's HELLO");
	free(rx);
	return rc;
}

/*
 * One try of the hybrid handshake: 1 connected (OK line read), 0 not yet
 * (the reason in why), -errno a hard failure.
 */
static int ac_try_connect(int fd, const struct sockaddr_un *sa, uint32_t port, int64_t deadline,
                          char *why, size_t whylen)
{
	char line[AC_LINE_MAX];
	size_t len = 0;
	int n, rc;

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		snprintf(why, whylen, "connect %s: %s", sa->sun_path, strerror(errno));
		return 0;
	}
	n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	rc = ac_send_all(fd, line, (size_t)n, deadline);
	if (rc) {
		snprintf(why, whylen, "writing CONNECT: %s", strerror(-rc));
		return rc == -ETIMEDOUT ? -ETIMEDOUT : 0;
	}
	/* Byte by byte: the agent's bytes follow the line. */
	for (;;) {
		char c;
		ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = ac_wait(fd, POLLIN, deadline);
			if (rc) {
				snprintf(why, whylen, "no reply to CONNECT %u: %s", port, strerror(-rc));
				return 0;
			}
			continue;
		}
		if (r <= 0) {
			snprintf(why, whylen, "the VMM closed the connection: nothing listens on guest port %u yet", port);
			return 0;
		}
		if (c == '\n')
			break;
		if (len + 1 >= sizeof(line))
			return -EPROTO;
		line[len++] = c;
	}
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		snprintf(why, whylen, "the VMM replied '%.40s' to CONNECT %u", line, port);
		return -EPROTO;
	}
	return 1;
}

int agent_connect(const char *uds_path, uint32_t port, int timeout_ms, int *fd_out,
                  char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t start = ac_now_ms(), deadline = start + (timeout_ms < 0 ? 0 : timeout_ms);
	char why[256] = "not tried";
	int fd = -1, rc;

	if (!uds_path || !fd_out)
		return ac_fail(err, errlen, -EINVAL, "agent_connect: no socket path");
	if (strlen(uds_path) >= sizeof(sa.sun_path))
		return ac_fail(err, errlen, -ENAMETOOLONG, "%s: path too long for a Unix socket", uds_path);
	strcpy(sa.sun_path, uds_path);
	for (;;) {
		int64_t now;

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return ac_fail(err, errlen, -errno, "socket: %s", strerror(errno));
		rc = ac_try_connect(fd, &sa, port, deadline, why, sizeof(why));
		if (rc == 1) {
			int left = ac_left(deadline);

			/* The agent answers HELLO at once: leave it a moment even at the deadline. */
			rc = agent_handshake(fd, left < 1000 ? 1000 : left, err, errlen);
			if (rc == 0)
				break;
			/* A full session table (EBUSY) is transient: connections
			 * the host gave up on during a slow boot linger in the
			 * guest until the agent sees them close. Try again. */
			if (rc != -EBUSY || ac_now_ms() >= deadline) {
				(void)close(fd);
				return rc;
			}
			snprintf(why, sizeof(why), "%s", err);
		}
		(void)close(fd);
		if (rc < 0 && rc != -EBUSY)
			return ac_fail(err, errlen, rc, "%s: %s", uds_path, why);
		now = ac_now_ms();
		if (now >= deadline)
			return ac_fail(err, errlen, -ETIMEDOUT, "no agent after %d ms: %s", timeout_ms, why);
		{
			int64_t want = rc == -EBUSY ? AC_BUSY_RETRY_MS : AC_RETRY_MS;
			int64_t nap = deadline - now < want ? deadline - now : want;
			struct timespec ts = { nap / 1000, (long)(nap % 1000) * 1000000L };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
	*fd_out = fd;
	return 0;
}

/* ---- EXEC ---- */

struct ac_out {
	uint8_t buf[AC_OUT_SIZE];
	size_t off, len;
};

static void ac_out_frame(struct ac_out *o, const struct agent_msg *m)
{
	ssize_t n;

	if (o->off > 0) {
		memmove(o->buf, o->buf + o->off, o->len);
		o->off = 0;
	}
	n = agent_msg_encode(m, o->buf + o->len, sizeof(o->buf) - o->len);
	if (n > 0)
		o->len += (size_t)n;
}

/* Send what the socket takes now: 0, or -errno. */
static int ac_out_flush(int fd, struct ac_out *o)
{
	while (o->len > 0) {
		ssize_t n = send(fd, o->buf + o->off, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		o->off += (size_t)n;
		o->len -= (size_t)n;
	}
	o->off = 0;
	return 0;
}

static void ac_exec_result(const struct agent_exit *e, struct agent_exec_result *res)
{
	res->kind = (enum agent_exit_kind)e->kind;
	switch (e->kind) {
	case AGENT_EXIT_EXITED:
		res->code = e->value;
		break;
	case AGENT_EXIT_SIGNALED:
		res->signo = e->value;
		break;
	case AGENT_EXIT_START_FAILED:
		res->err = e->value;
		break;
	default:
		break;
	}
}

struct ac_exec {
	int fd;
	const struct agent_exec_io *io;
	struct agent_exec_result *res;
	bool out_dead, err_dead, stdin_open, ctl_open, started;
	struct ac_out out;
	struct ac_rx rx;
};

/* Handle one message from the agent during EXEC: 1 EXIT, 0 go on, -errno. */
static int ac_exec_msg(struct ac_exec *x, char *err, size_t errlen)
{
	const struct agent_msg *m = &x->rx.msg;
	bool *dead;
	int fd, rc;

	switch (m->type) {
	case AGENT_MSG_STARTED:
		x->res->pid = m->u.pid;
		x->started = true;
		return 0;
	case AGENT_MSG_STDOUT:
	case AGENT_MSG_STDERR:
		fd = m->type == AGENT_MSG_STDOUT ? x->io->out_fd : x->io->err_fd;
		dead = m->type == AGENT_MSG_STDOUT ? &x->out_dead : &x->err_dead;
		if (fd < 0 || *dead)
			return 0;
		rc = ac_write_all(fd, m->u.data.data, m->u.data.len);
		if (rc)
			*dead = true; /* EPIPE and the like: discard from now on */
		return 0;
	case AGENT_MSG_EXIT:
		ac_exec_result(&m->u.exit, x->res);
		return 1;
	default:
		return ac_unexpected(m, "during EXEC", err, errlen);
	}
}

/* Read the host's stdin into one STDIN frame (or STDIN_EOF). */
static void ac_exec_stdin(struct ac_exec *x)
{
	struct agent_msg m = { .type = AGENT_MSG_STDIN_EOF };
	uint8_t chunk[AGENT_DATA_CHUNK];
	ssize_t n;

	do
		n = read(x->io->in_fd, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n > 0) {
		m.type = AGENT_MSG_STDIN;
		m.u.data.data = chunk;
		m.u.data.len = (size_t)n;
	} else {
		x->stdin_open = false; /* EOF, or an error (a hung-up tty's EIO): the end of input */
	}
	ac_out_frame(&x->out, &m);
}

/* Control bytes from the caller's signal handler: 1 abort, 0 go on. */
static int ac_exec_ctl(struct ac_exec *x)
{
	uint8_t bytes[8];
	ssize_t n;

	do
		n = read(x->io->ctl_fd, bytes, sizeof(bytes));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		x->ctl_open = false;
		return 0;
	}
	for (ssize_t i = 0; i < n; i++) {
		struct agent_msg m = { .type = AGENT_MSG_SIGNAL };
		struct winsize ws;

		if (bytes[i] == 0)
			return 1;
		if (bytes[i] == SIGWINCH) {
			if (x->io->winsize_fd < 0 || ioctl(x->io->winsize_fd, TIOCGWINSZ, &ws) < 0)
				continue;
			m.type = AGENT_MSG_WINSIZE;
			m.u.winsize.rows = ws.ws_row;
			m.u.winsize.cols = ws.ws_col;
		} else if (bytes[i] > AGENT_SIGNAL_MAX) {
			continue;
		} else {
			m.u.signal = bytes[i];
		}
		ac_out_frame(&x->out, &m);
	}
	return 0;
}

static int ac_exec_pump(struct ac_exec *x, char *err, size_t errlen)
{
	for (;;) {
		struct pollfd p[3];
		int n = 0, isock, iin = -1, ictl = -1, rc;

		/* Frames already staged first (they may be all that is left). */
		while ((rc = ac_rx_take(&x->rx)) == 1) {
			rc = ac_exec_msg(x, err, errlen);
			if (rc)
				return rc < 0 ? rc : 0;
		}
		if (rc < 0)
			return ac_fail(err, errlen, rc, "malformed frame from the agent: %s", strerror(-rc));

		isock = n;
		p[n++] = (struct pollfd){ .fd = x->fd, .events = (short)(POLLIN | (x->out.len ? POLLOUT : 0)) };
		/* Flow control: host stdin is read only when the previous frame is sent. */
		if (x->stdin_open && x->out.len == 0) {
			iin = n;
			p[n++] = (struct pollfd){ .fd = x->io->in_fd, .events = POLLIN };
		}
		if (x->ctl_open && x->out.len + 8 * 32 <= sizeof(x->out.buf)) {
			ictl = n;
			p[n++] = (struct pollfd){ .fd = x->io->ctl_fd, .events = POLLIN };
		}
		rc = poll(p, (nfds_t)n, -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return ac_fail(err, errlen, -errno, "poll: %s", strerror(errno));
		if (ictl >= 0 && p[ictl].revents && ac_exec_ctl(x))
			return ac_fail(err, errlen, -ECANCELED, "aborted");
		if (iin >= 0 && p[iin].revents)
			ac_exec_stdin(x);
		if (p[isock].revents & POLLOUT || x->out.len) {
			rc = ac_out_flush(x->fd, &x->out);
			if (rc && rc != -EPIPE && rc != -ECONNRESET)
				return ac_fail(err, errlen, rc, "sending to the agent: %s", strerror(-rc));
			if (rc)
				x->out.len = 0; /* the agent is gone; its last frames may still be readable */
		}
		if (p[isock].revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = ac_rx_fill(x->fd, &x->rx);
			if (rc == 0)
				return ac_fail(err, errlen, -ECONNRESET,
				               "the agent closed the connection before the command's exit status");
			if (rc < 0 && rc != -EAGAIN)
				return ac_fail(err, errlen, rc, "reading from the agent: %s", strerror(-rc));
		}
	}
}

int agent_exec(int fd, const struct agent_exec_req *req, const struct agent_exec_io *io,
               struct agent_exec_result *res, char *err, size_t errlen)
{
	struct agent_exec_req q;
	struct ac_exec *x;
	ssize_t n;
	int rc;

	if (fd < 0 || !req || !io || !res)
		return ac_fail(err, errlen, -EINVAL, "agent_exec: bad arguments");
	memset(res, 0, sizeof(*res));
	x = malloc(sizeof(*x));
	if (!x)
		return ac_fail(err, errlen, -ENOMEM, "out of memory");
	x->fd = fd;
	x->io = io;
	x->res = res;
	x->out_dead = x->err_dead = x->started = false;
	x->stdin_open = io->in_fd >= 0;
	x->ctl_open = io->ctl_fd >= 0;
	x->out.off = x->out.len = 0;
	x->rx.off = x->rx.len = 0;
	agent_frame_reader_init(&x->rx.rd);

	q = *req;
	q.flags = (q.flags & ~AGENT_EXEC_STDIN) | (io->in_fd >= 0 ? AGENT_EXEC_STDIN : 0);
	{
		uint8_t *frame = malloc(AGENT_FRAME_MAX_SIZE);

		if (!frame) {
			free(x);
			return ac_fail(err, errlen, -ENOMEM, "out of memory");
		}
		n = agent_exec_encode(&q, frame, AGENT_FRAME_MAX_SIZE);
		if (n < 0) {
			rc = ac_fail(err, errlen, (int)n, "the command does not fit in a request: %s",
			             strerror((int)-n));
		} else {
			rc = ac_send_all(fd, frame, (size_t)n, -1);
			if (rc)
				rc = ac_fail(err, errlen, rc, "sending EXEC: %s", strerror(-rc));
		}
		free(frame);
	}
	if (rc == 0)
		rc = ac_exec_pump(x, err, errlen);
	free(x);
	return rc;
}

int agent_exec_exit_status(const struct agent_exec_result *res)
{
	switch (res->kind) {
	case AGENT_EXIT_EXITED:
		return res->code & 0xff;
	case AGENT_EXIT_SIGNALED:
		return 128 + res->signo;
	case AGENT_EXIT_TIMED_OUT:
		return 124;
	case AGENT_EXIT_START_FAILED:
		return res->err == ENOENT ? 127 : 126;
	}
	return 125;
}

/* ---- files, shutdown ---- */

int agent_put_file(int fd, const char *path, uint32_t mode, int src_fd, uint64_t *size_out,
                   char *err, size_t errlen)
{
	struct agent_msg m = { .type = AGENT_MSG_PUT_FILE };
	uint8_t *frame = NULL;
	struct ac_rx *rx = NULL;
	bool eof = false;
	int rc;

	if (fd < 0 || !path || src_fd < 0)
		return ac_fail(err, errlen, -EINVAL, "agent_put_file: bad arguments");
	m.u.put_file.mode = mode & 07777;
	m.u.put_file.path = path;
	rc = ac_send_msg(fd, &m, -1);
	if (rc)
		return ac_fail(err, errlen, rc, "sending PUT_FILE %s: %s", path, strerror(-rc));
	frame = malloc(AGENT_FRAME_HDR_SIZE + AGENT_DATA_CHUNK);
	rx = ac_rx_new();
	if (!frame || !rx) {
		rc = ac_fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	while (!eof) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		/* The guest answers early when it cannot write the file: stop sending then. */
		if (poll(&p, 1, 0) > 0)
			break;
		do
			n = read(src_fd, frame + AGENT_FRAME_HDR_SIZE, AGENT_DATA_CHUNK);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			rc = ac_fail(err, errlen, -errno, "reading the file to send: %s", strerror(errno));
			goto out;
		}
		eof = n == 0;
		rc = agent_frame_hdr_encode(AGENT_MSG_FILE_DATA, (size_t)n, frame);
		if (rc == 0)
			rc = ac_send_all(fd, frame, AGENT_FRAME_HDR_SIZE + (size_t)n, -1);
		if (rc == -EPIPE || rc == -ECONNRESET)
			break; /* the guest's FILE_RESULT or ERROR says why */
		if (rc) {
			rc = ac_fail(err, errlen, rc, "sending %s: %s", path, strerror(-rc));
			goto out;
		}
	}
	rc = ac_rx_next(fd, rx, -1, err, errlen);
	if (rc)
		goto out;
	if (rx->msg.type != AGENT_MSG_FILE_RESULT) {
		rc = ac_unexpected(&rx->msg, "after PUT_FILE", err, errlen);
		goto out;
	}
	if (size_out)
		*size_out = rx->msg.u.file_result.size;
	if (rx->msg.u.file_result.err)
		rc = ac_fail(err, errlen, -rx->msg.u.file_result.err, "guest: %s: %s", path,
		             strerror(rx->msg.u.file_result.err));
	else if (!eof)
		rc = ac_fail(err, errlen, -EPROTO, "the agent answered before the end of %s", path);
out:
	free(frame);
	free(rx);
	return rc;
}

int agent_get_file(int fd, const char *path, int dst_fd, uint32_t *mode_out, uint64_t *size_out,
                   char *err, size_t errlen)
{
	struct agent_msg m = { .type = AGENT_MSG_GET_FILE };
	struct ac_rx *rx;
	uint64_t got = 0;
	bool info = false;
	int rc;

	if (fd < 0 || !path || dst_fd < 0)
		return ac_fail(err, errlen, -EINVAL, "agent_get_file: bad arguments");
	m.u.get_file.path = path;
	rc = ac_send_msg(fd, &m, -1);
	if (rc)
		return ac_fail(err, errlen, rc, "sending GET_FILE %s: %s", path, strerror(-rc));
	rx = ac_rx_new();
	if (!rx)
		return ac_fail(err, errlen, -ENOMEM, "out of memory");
	for (;;) {
		const struct agent_msg *r = &rx->msg;

		rc = ac_rx_next(fd, rx, -1, err, errlen);
		if (rc)
			break;
		if (r->type == AGENT_MSG_FILE_INFO && !info) {
			info = true;
			if (mode_out)
				*mode_out = r->u.file_info.mode;
		} else if (r->type == AGENT_MSG_FILE_DATA && info && r->u.data.len > 0) {
			rc = ac_write_all(dst_fd, r->u.data.data, r->u.data.len);
			if (rc) {
				rc = ac_fail(err, errlen, rc, "writing %s: %s", path, strerror(-rc));
				break;
			}
			got += r->u.data.len;
		} else if (r->type == AGENT_MSG_FILE_RESULT) {
			if (r->u.file_result.err)
				rc = ac_fail(err, errlen, -r->u.file_result.err, "guest: %s: %s", path,
				             strerror(r->u.file_result.err));
			else if (!info || r->u.file_result.size != got)
				rc = ac_fail(err, errlen, -EPROTO, "the agent sent %llu bytes of %s but says %llu",
				             (unsigned long long)got, path,
				             (unsigned long long)r->u.file_result.size);
			break;
		} else {
			rc = ac_unexpected(r, "during GET_FILE", err, errlen);
			break;
		}
	}
	if (size_out)
		*size_out = got;
	free(rx);
	return rc;
}

int agent_shutdown(int fd, int status, char *err, size_t errlen)
{
	struct agent_msg m = { .type = AGENT_MSG_SHUTDOWN };
	struct ac_rx *rx;
	int rc;

	if (fd < 0 || status < 0 || status > 255)
		return ac_fail(err, errlen, -EINVAL, "agent_shutdown: status %d is not 0..255", status);
	m.u.status = (uint32_t)status;
	rc = ac_send_msg(fd, &m, -1);
	if (rc)
		return ac_fail(err, errlen, rc, "sending SHUTDOWN: %s", strerror(-rc));
	rx = ac_rx_new();
	if (!rx)
		return ac_fail(err, errlen, -ENOMEM, "out of memory");
	rc = ac_rx_next(fd, rx, -1, err, errlen);
	if (rc == 0 && rx->msg.type != AGENT_MSG_SHUTDOWN_ACK)
		rc = ac_unexpected(&rx->msg, "after SHUTDOWN", err, errlen);
	free(rx);
	return rc;
}
