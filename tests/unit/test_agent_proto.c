/* Unit tests for rootfs/agent/agent_proto.c: frame and message round trips, malformed input, the stream reader. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/agent_proto.h"

static uint8_t t_buf[AGENT_FRAME_MAX_SIZE + 64];
static struct agent_msg t_in, t_out;

/* Encode m, check the header, decode the payload into t_out. */
static ssize_t roundtrip(const struct agent_msg *m)
{
	struct agent_frame_hdr h;
	ssize_t n = agent_msg_encode(m, t_buf, sizeof(t_buf));

	ck_assert_int_ge(n, AGENT_FRAME_HDR_SIZE);
	ck_assert_int_eq(agent_frame_hdr_decode(t_buf, (size_t)n, &h), 0);
	ck_assert_uint_eq(h.type, m->type);
	ck_assert_uint_eq(h.length, (size_t)n - AGENT_FRAME_HDR_SIZE);
	memset(&t_out, 0xa5, sizeof(t_out));
	ck_assert_int_eq(agent_msg_decode(h.type, t_buf + AGENT_FRAME_HDR_SIZE, h.length, &t_out), 0);
	ck_assert_uint_eq(t_out.type, m->type);
	return n;
}

/* Decode a hand-made payload of type. */
static int decode(uint8_t type, const void *p, size_t len)
{
	memset(&t_out, 0, sizeof(t_out));
	return agent_msg_decode(type, p, len, &t_out);
}

START_TEST(header_layout)
{
	uint8_t h[AGENT_FRAME_HDR_SIZE];
	const uint8_t want[] = { 'M', 'A', 1, AGENT_MSG_STDOUT, 0, 0, 0, 0, 0x34, 0x12, 0, 0 };

	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_STDOUT, 0x1234, h), 0);
	ck_assert_mem_eq(h, want, sizeof(want));
	ck_assert_int_eq(agent_frame_hdr_encode(0, 1, h), -EOPNOTSUPP);
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_TYPE_MAX + 1, 1, h), -EOPNOTSUPP);
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_STDOUT, AGENT_PROTO_MAX_PAYLOAD + 1, h), -EMSGSIZE);
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_STDOUT, AGENT_PROTO_MAX_PAYLOAD, h), 0);
}
END_TEST

START_TEST(header_malformed)
{
	uint8_t h[AGENT_FRAME_HDR_SIZE];
	struct agent_frame_hdr d;

	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_EXIT, 8, h), 0);
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), 0);
	for (size_t n = 0; n < sizeof(h); n++)
		ck_assert_int_eq(agent_frame_hdr_decode(h, n, &d), -EBADMSG);
	ck_assert_int_eq(agent_frame_hdr_decode(NULL, 12, &d), -EBADMSG);

	h[0] ^= 1;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EPROTO);
	h[0] ^= 1;
	h[2] = 2;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EPROTONOSUPPORT);
	h[2] = 0;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EPROTONOSUPPORT);
	h[2] = AGENT_PROTO_VERSION;
	h[3] = 0;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EOPNOTSUPP);
	h[3] = AGENT_MSG_TYPE_MAX + 1;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EOPNOTSUPP);
	h[3] = 0xff;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EOPNOTSUPP);
	h[3] = AGENT_MSG_EXIT;
	h[4] = 1; /* flags */
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EPROTO);
	h[4] = 0;
	h[7] = 0x80; /* reserved */
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EPROTO);
	h[7] = 0;
	/* length 65537, and 0xffffffff */
	h[8] = 1, h[9] = 0, h[10] = 1, h[11] = 0;
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EMSGSIZE);
	memset(h + 8, 0xff, 4);
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), -EMSGSIZE);
	h[8] = 0, h[9] = 0, h[10] = 1, h[11] = 0; /* exactly the maximum */
	ck_assert_int_eq(agent_frame_hdr_decode(h, sizeof(h), &d), 0);
	ck_assert_uint_eq(d.length, AGENT_PROTO_MAX_PAYLOAD);
}
END_TEST

START_TEST(roundtrip_hello)
{
	t_in.type = AGENT_MSG_HELLO;
	t_in.u.hello.version = AGENT_PROTO_VERSION;
	t_in.u.hello.max_payload = AGENT_PROTO_MAX_PAYLOAD;
	strcpy(t_in.u.hello.ident, "minivm-agent");
	ck_assert_int_eq(roundtrip(&t_in), AGENT_FRAME_HDR_SIZE + 8 + 13);
	ck_assert_uint_eq(t_out.u.hello.version, AGENT_PROTO_VERSION);
	ck_assert_uint_eq(t_out.u.hello.max_payload, AGENT_PROTO_MAX_PAYLOAD);
	ck_assert_str_eq(t_out.u.hello.ident, "minivm-agent");
	/* an ident of exactly 63 bytes fits, 64 does not */
	memset(t_in.u.hello.ident, 'x', AGENT_IDENT_MAX - 1);
	t_in.u.hello.ident[AGENT_IDENT_MAX - 1] = 0;
	roundtrip(&t_in);
	ck_assert_uint_eq(strlen(t_out.u.hello.ident), AGENT_IDENT_MAX - 1);
}
END_TEST

START_TEST(roundtrip_exec)
{
	const char *argv[] = { "sh", "-c", "echo hi; exit 3", "", NULL };
	const char *env[] = { "A=1", "EMPTY=", "X=y=z", NULL };
	struct agent_exec_req q = {
		.argv = argv, .env = env, .cwd = "/tmp", .user = "1000:1000",
		.flags = AGENT_EXEC_TTY | AGENT_EXEC_STDIN, .timeout_s = 30, .rows = 50, .cols = 132,
	};
	ssize_t n = agent_exec_encode(&q, t_buf, sizeof(t_buf));
	struct agent_frame_hdr h;
	const struct agent_exec_req *d = &t_out.u.exec.req;

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(agent_frame_hdr_decode(t_buf, (size_t)n, &h), 0);
	ck_assert_int_eq(h.type, AGENT_MSG_EXEC);
	ck_assert_int_eq(decode(h.type, t_buf + AGENT_FRAME_HDR_SIZE, h.length), 0);
	ck_assert_uint_eq(d->flags, q.flags);
	ck_assert_uint_eq(d->timeout_s, 30);
	ck_assert_uint_eq(d->rows, 50);
	ck_assert_uint_eq(d->cols, 132);
	ck_assert_str_eq(d->cwd, "/tmp");
	ck_assert_str_eq(d->user, "1000:1000");
	for (int i = 0; argv[i]; i++)
		ck_assert_str_eq(d->argv[i], argv[i]);
	ck_assert_ptr_null(d->argv[4]);
	for (int i = 0; env[i]; i++)
		ck_assert_str_eq(d->env[i], env[i]);
	ck_assert_ptr_null(d->env[3]);

	/* Same bytes through agent_msg_encode of the decoded message. */
	t_in.type = AGENT_MSG_EXEC;
	t_in.u.exec.req = q;
	ck_assert_int_eq(roundtrip(&t_in), n);

	/* Defaults: NULL env, cwd, user. */
	q.env = NULL, q.cwd = NULL, q.user = NULL, q.flags = 0;
	n = agent_exec_encode(&q, t_buf, sizeof(t_buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, t_buf + AGENT_FRAME_HDR_SIZE, (size_t)n - AGENT_FRAME_HDR_SIZE), 0);
	ck_assert_str_eq(d->cwd, "");
	ck_assert_str_eq(d->user, "");
	ck_assert_ptr_null(d->env[0]);
}
END_TEST

START_TEST(roundtrip_small_types)
{
	static const uint8_t bytes[] = { 0, 1, 2, 0xff };
	const uint8_t data_types[] = { AGENT_MSG_STDIN, AGENT_MSG_STDOUT, AGENT_MSG_STDERR, AGENT_MSG_FILE_DATA };

	for (size_t i = 0; i < sizeof(data_types); i++) {
		t_in.type = data_types[i];
		t_in.u.data.data = bytes;
		t_in.u.data.len = sizeof(bytes);
		roundtrip(&t_in);
		ck_assert_uint_eq(t_out.u.data.len, sizeof(bytes));
		ck_assert_mem_eq(t_out.u.data.data, bytes, sizeof(bytes));
	}
	/* The empty FILE_DATA ends a PUT; other empty data frames are invalid. */
	t_in.type = AGENT_MSG_FILE_DATA;
	t_in.u.data.len = 0;
	ck_assert_int_eq(roundtrip(&t_in), AGENT_FRAME_HDR_SIZE);
	t_in.type = AGENT_MSG_STDOUT;
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EINVAL);
	ck_assert_int_eq(decode(AGENT_MSG_STDIN, NULL, 0), -EBADMSG);

	t_in.type = AGENT_MSG_STDIN_EOF;
	ck_assert_int_eq(roundtrip(&t_in), AGENT_FRAME_HDR_SIZE);
	t_in.type = AGENT_MSG_SHUTDOWN_ACK;
	ck_assert_int_eq(roundtrip(&t_in), AGENT_FRAME_HDR_SIZE);

	t_in.type = AGENT_MSG_SIGNAL;
	t_in.u.signal = 15;
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.signal, 15);

	t_in.type = AGENT_MSG_WINSIZE;
	t_in.u.winsize.rows = 40;
	t_in.u.winsize.cols = 0xffff;
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.winsize.rows, 40);
	ck_assert_uint_eq(t_out.u.winsize.cols, 0xffff);

	t_in.type = AGENT_MSG_STARTED;
	t_in.u.pid = 4194304;
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.pid, 4194304);

	t_in.type = AGENT_MSG_SHUTDOWN;
	t_in.u.status = 255;
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.status, 255);
}
END_TEST

START_TEST(roundtrip_exit)
{
	const struct agent_exit ok[] = {
		{ AGENT_EXIT_EXITED, 0 }, { AGENT_EXIT_EXITED, 255 }, { AGENT_EXIT_SIGNALED, 9 },
		{ AGENT_EXIT_SIGNALED, 64 }, { AGENT_EXIT_TIMED_OUT, 0 }, { AGENT_EXIT_START_FAILED, ENOENT },
	};
	const struct agent_exit bad[] = {
		{ AGENT_EXIT_EXITED, -1 }, { AGENT_EXIT_EXITED, 256 }, { AGENT_EXIT_SIGNALED, 0 },
		{ AGENT_EXIT_SIGNALED, 65 }, { AGENT_EXIT_TIMED_OUT, 9 }, { AGENT_EXIT_START_FAILED, 0 },
		{ AGENT_EXIT_START_FAILED, 4096 }, { 0, 0 }, { 5, 0 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t_in.type = AGENT_MSG_EXIT;
		t_in.u.exit = ok[i];
		roundtrip(&t_in);
		ck_assert_uint_eq(t_out.u.exit.kind, ok[i].kind);
		ck_assert_int_eq(t_out.u.exit.value, ok[i].value);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t p[8];

		t_in.type = AGENT_MSG_EXIT;
		t_in.u.exit = bad[i];
		ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EINVAL);
		memcpy(p, &bad[i].kind, 4); /* the test host is little-endian */
		memcpy(p + 4, &bad[i].value, 4);
		ck_assert_int_eq(decode(AGENT_MSG_EXIT, p, 8), -EBADMSG);
	}
}
END_TEST

START_TEST(roundtrip_files_and_error)
{
	t_in.type = AGENT_MSG_PUT_FILE;
	t_in.u.put_file.mode = 0755;
	t_in.u.put_file.path = "/scratch/a b";
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.put_file.mode, 0755);
	ck_assert_str_eq(t_out.u.put_file.path, "/scratch/a b");

	t_in.type = AGENT_MSG_GET_FILE;
	t_in.u.get_file.path = "/etc/passwd";
	roundtrip(&t_in);
	ck_assert_str_eq(t_out.u.get_file.path, "/etc/passwd");

	t_in.type = AGENT_MSG_FILE_INFO;
	t_in.u.file_info.mode = 0644;
	t_in.u.file_info.size = 0x123456789aull;
	roundtrip(&t_in);
	ck_assert_uint_eq(t_out.u.file_info.mode, 0644);
	ck_assert_uint_eq(t_out.u.file_info.size, 0x123456789aull);

	t_in.type = AGENT_MSG_FILE_RESULT;
	t_in.u.file_result.err = ENOSPC;
	t_in.u.file_result.size = 77;
	roundtrip(&t_in);
	ck_assert_int_eq(t_out.u.file_result.err, ENOSPC);
	ck_assert_uint_eq(t_out.u.file_result.size, 77);

	t_in.type = AGENT_MSG_ERROR;
	t_in.u.error.code = EBADMSG;
	t_in.u.error.msg = "bad frame";
	roundtrip(&t_in);
	ck_assert_int_eq(t_out.u.error.code, EBADMSG);
	ck_assert_str_eq(t_out.u.error.msg, "bad frame");

	/* Relative paths are refused both ways. */
	t_in.type = AGENT_MSG_GET_FILE;
	t_in.u.get_file.path = "etc/passwd";
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EINVAL);
	ck_assert_int_eq(decode(AGENT_MSG_GET_FILE, "etc\0", 4), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_GET_FILE, "", 0), -EBADMSG);
	t_in.type = AGENT_MSG_PUT_FILE;
	t_in.u.put_file.path = "/x";
	t_in.u.put_file.mode = 010000;
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EINVAL);
}
END_TEST

START_TEST(malformed_payloads)
{
	static uint8_t p[AGENT_PROTO_MAX_PAYLOAD + 8];

	/* Wrong sizes for fixed-size messages: one short, one long. */
	memset(p, 0, sizeof(p));
	p[0] = 1; /* SIGNAL 1, STARTED 1, ... */
	ck_assert_int_eq(decode(AGENT_MSG_SIGNAL, p, 3), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_SIGNAL, p, 5), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_SIGNAL, p, 4), 0);
	p[0] = 65;
	ck_assert_int_eq(decode(AGENT_MSG_SIGNAL, p, 4), -EBADMSG);
	p[0] = 0;
	ck_assert_int_eq(decode(AGENT_MSG_SIGNAL, p, 4), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_STARTED, p, 4), -EBADMSG); /* pid 0 */
	ck_assert_int_eq(decode(AGENT_MSG_WINSIZE, p, 3), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_STDIN_EOF, p, 1), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_SHUTDOWN_ACK, p, 1), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_FILE_INFO, p, 11), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_FILE_RESULT, p, 13), -EBADMSG);
	p[1] = 1; /* status 256 */
	ck_assert_int_eq(decode(AGENT_MSG_SHUTDOWN, p, 4), -EBADMSG);
	p[1] = 0;
	/* Unknown types and oversized payloads. */
	ck_assert_int_eq(decode(0, p, 0), -EOPNOTSUPP);
	ck_assert_int_eq(decode(AGENT_MSG_TYPE_MAX + 1, p, 0), -EOPNOTSUPP);
	ck_assert_int_eq(decode(AGENT_MSG_STDOUT, p, AGENT_PROTO_MAX_PAYLOAD + 1), -EMSGSIZE);

	/* HELLO: ident without a NUL, too long, trailing bytes. */
	memset(p, 'a', 100);
	ck_assert_int_eq(decode(AGENT_MSG_HELLO, p, 8 + 10), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_HELLO, p, 8 + 100), -E2BIG);
	p[8] = 0;
	ck_assert_int_eq(decode(AGENT_MSG_HELLO, p, 9), 0);
	ck_assert_int_eq(decode(AGENT_MSG_HELLO, p, 10), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_HELLO, p, 7), -EBADMSG);

	/* ERROR: code 0, negative, message missing its NUL. */
	memset(p, 0, 16);
	ck_assert_int_eq(decode(AGENT_MSG_ERROR, p, 5), -EBADMSG);
	p[0] = EIO;
	ck_assert_int_eq(decode(AGENT_MSG_ERROR, p, 5), 0);
	ck_assert_int_eq(decode(AGENT_MSG_ERROR, p, 4), -EBADMSG);
	p[3] = 0x80;
	ck_assert_int_eq(decode(AGENT_MSG_ERROR, p, 5), -EBADMSG);
	/* FILE_RESULT: negative err */
	ck_assert_int_eq(decode(AGENT_MSG_FILE_RESULT, p, 12), -EBADMSG);
}
END_TEST

/* Build an EXEC payload by hand. */
static size_t exec_payload(uint8_t *p, uint32_t flags, uint16_t argc, uint16_t envc,
                           const char *strings, size_t slen)
{
	memset(p, 0, 16);
	memcpy(p, &flags, 4);
	memcpy(p + 12, &argc, 2);
	memcpy(p + 14, &envc, 2);
	memcpy(p + 16, strings, slen);
	return 16 + slen;
}

START_TEST(malformed_exec)
{
	static uint8_t p[AGENT_PROTO_MAX_PAYLOAD];
	size_t n;

	/* cwd "", user "", argv "ls" */
	n = exec_payload(p, 0, 1, 0, "\0\0ls", 5);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), 0);
	ck_assert_str_eq(t_out.u.exec.req.argv[0], "ls");
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, k), -EBADMSG);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n - 1), -EBADMSG); /* argv[0] without NUL */
	n = exec_payload(p, 0, 1, 0, "\0\0ls\0x", 6);                  /* trailing byte */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 0, 0, "\0\0", 2);                       /* argc 0 */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 2, 0, "\0\0ls", 5);                     /* argc beyond the strings */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, AGENT_EXEC_MAX_ARGS + 1, 0, "\0\0ls", 5);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -E2BIG);
	n = exec_payload(p, 0, 1, AGENT_EXEC_MAX_ENV + 1, "\0\0ls", 5);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -E2BIG);
	n = exec_payload(p, 0, 0xffff, 0xffff, "\0\0ls", 5);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -E2BIG);
	n = exec_payload(p, 4, 1, 0, "\0\0ls", 5);                     /* unknown flag */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 1, 0, "tmp\0\0ls", 8);                  /* relative cwd */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 1, 1, "\0\0ls\0NOEQ", 10);              /* env without '=' */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 1, 1, "\0\0ls\0=x", 8);                 /* empty name */
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), -EBADMSG);
	n = exec_payload(p, 0, 1, 1, "\0\0ls\0A=", 8);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n), 0);
	/* A user string over the limit. */
	n = exec_payload(p, 0, 1, 0, "", 0);
	p[n] = 0; /* cwd "" */
	memset(p + n + 1, 'u', AGENT_USER_MAX + 10);
	p[n + 1 + AGENT_USER_MAX + 10] = 0;
	memcpy(p + n + 2 + AGENT_USER_MAX + 10, "ls", 3);
	ck_assert_int_eq(decode(AGENT_MSG_EXEC, p, n + 5 + AGENT_USER_MAX + 10), -E2BIG);
}
END_TEST

START_TEST(encode_limits)
{
	static const char *argv[AGENT_EXEC_MAX_ARGS + 2];
	static char big[AGENT_PROTO_MAX_PAYLOAD];
	const char *av1[] = { big, NULL };
	const char *empty[] = { NULL };
	struct agent_exec_req q = { .argv = argv };
	uint8_t small[AGENT_FRAME_HDR_SIZE + 4];

	for (int i = 0; i < AGENT_EXEC_MAX_ARGS; i++)
		argv[i] = "a";
	ck_assert_int_gt(agent_exec_encode(&q, t_buf, sizeof(t_buf)), 0);
	argv[AGENT_EXEC_MAX_ARGS] = "a";
	ck_assert_int_eq(agent_exec_encode(&q, t_buf, sizeof(t_buf)), -E2BIG);
	q.argv = empty;
	ck_assert_int_eq(agent_exec_encode(&q, t_buf, sizeof(t_buf)), -EINVAL);
	q.argv = NULL;
	ck_assert_int_eq(agent_exec_encode(&q, t_buf, sizeof(t_buf)), -EINVAL);
	/* One argument as large as a frame: does not fit. */
	memset(big, 'b', sizeof(big) - 1);
	q.argv = av1;
	ck_assert_int_eq(agent_exec_encode(&q, t_buf, sizeof(t_buf)), -EMSGSIZE);
	big[AGENT_PROTO_MAX_PAYLOAD - 40] = 0;
	ck_assert_int_gt(agent_exec_encode(&q, t_buf, sizeof(t_buf)), 0);
	ck_assert_int_eq(agent_exec_encode(&q, small, sizeof(small)), -ENOBUFS);
	ck_assert_int_eq(agent_exec_encode(&q, small, 3), -ENOBUFS);
	q.argv = argv;
	argv[1] = NULL;
	q.cwd = "rel";
	ck_assert_int_eq(agent_exec_encode(&q, t_buf, sizeof(t_buf)), -EINVAL);
	/* Data frames: the maximum payload fits, one more byte does not. */
	t_in.type = AGENT_MSG_STDOUT;
	t_in.u.data.data = (const uint8_t *)big;
	t_in.u.data.len = AGENT_PROTO_MAX_PAYLOAD;
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), AGENT_FRAME_MAX_SIZE);
	t_in.u.data.len = AGENT_PROTO_MAX_PAYLOAD + 1;
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EMSGSIZE);
	t_in.type = AGENT_MSG_TYPE_MAX + 1;
	ck_assert_int_eq(agent_msg_encode(&t_in, t_buf, sizeof(t_buf)), -EOPNOTSUPP);
}
END_TEST

/* A stream of several frames of different kinds. */
static size_t make_stream(uint8_t *s, size_t size)
{
	static const uint8_t bytes[] = "hello\n";
	const char *argv[] = { "cat", NULL };
	struct agent_exec_req q = { .argv = argv, .flags = AGENT_EXEC_STDIN };
	size_t off = 0;
	ssize_t n;

	n = agent_exec_encode(&q, s, size);
	ck_assert_int_gt(n, 0);
	off += (size_t)n;
	t_in.type = AGENT_MSG_STDIN;
	t_in.u.data.data = bytes;
	t_in.u.data.len = 6;
	n = agent_msg_encode(&t_in, s + off, size - off);
	ck_assert_int_gt(n, 0);
	off += (size_t)n;
	t_in.type = AGENT_MSG_STDIN_EOF;
	n = agent_msg_encode(&t_in, s + off, size - off);
	ck_assert_int_gt(n, 0);
	off += (size_t)n;
	t_in.type = AGENT_MSG_SIGNAL;
	t_in.u.signal = 2;
	n = agent_msg_encode(&t_in, s + off, size - off);
	ck_assert_int_gt(n, 0);
	off += (size_t)n;
	return off;
}

static void check_stream_frames(const uint8_t *types, int count)
{
	const uint8_t want[] = { AGENT_MSG_EXEC, AGENT_MSG_STDIN, AGENT_MSG_STDIN_EOF, AGENT_MSG_SIGNAL };

	ck_assert_int_eq(count, 4);
	ck_assert_mem_eq(types, want, 4);
}

START_TEST(reader_split_everywhere)
{
	static struct agent_frame_reader r;
	uint8_t s[512];
	size_t len = make_stream(s, sizeof(s));

	/* Two pieces, split at every byte. */
	for (size_t cut = 0; cut <= len; cut++) {
		uint8_t types[8];
		int count = 0;
		size_t off = 0;

		agent_frame_reader_init(&r);
		const size_t ends[2] = { cut, len };
		for (int piece = 0; piece < 2; piece++) {
			while (off < ends[piece]) {
				size_t used = 0;
				int rc = agent_frame_reader_push(&r, s + off, ends[piece] - off, &used);

				ck_assert_int_ge(rc, 0);
				ck_assert_uint_le(used, ends[piece] - off);
				off += used;
				if (rc == 1) {
					struct agent_msg *m = &t_out;

					ck_assert_int_lt(count, 8);
					types[count++] = r.hdr.type;
					ck_assert_int_eq(agent_msg_decode(r.hdr.type, agent_frame_reader_payload(&r),
					                                  r.hdr.length, m), 0);
					if (r.hdr.type == AGENT_MSG_STDIN)
						ck_assert_mem_eq(m->u.data.data, "hello\n", 6);
				} else {
					ck_assert_uint_eq(off, ends[piece]);
				}
			}
		}
		check_stream_frames(types, count);
	}

	/* One byte at a time. */
	{
		uint8_t types[8];
		int count = 0;

		agent_frame_reader_init(&r);
		for (size_t off = 0; off < len; off++) {
			size_t used = 0;
			int rc = agent_frame_reader_push(&r, s + off, 1, &used);

			ck_assert_int_ge(rc, 0);
			ck_assert_uint_eq(used, 1);
			if (rc == 1)
				types[count++] = r.hdr.type;
		}
		check_stream_frames(types, count);
	}
}
END_TEST

START_TEST(reader_rejects_bad_header_early)
{
	static struct agent_frame_reader r;
	uint8_t h[AGENT_FRAME_HDR_SIZE + 4];
	size_t used = 0;

	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_STDOUT, 4, h), 0);
	h[8] = 0xff, h[9] = 0xff, h[10] = 0xff, h[11] = 0x7f; /* 2 GiB */
	agent_frame_reader_init(&r);
	ck_assert_int_eq(agent_frame_reader_push(&r, h, 11, &used), 0);
	ck_assert_int_eq(agent_frame_reader_push(&r, h + 11, 5, &used), -EMSGSIZE);
	ck_assert_uint_eq(used, 12);

	/* Garbage: bad magic at once. */
	agent_frame_reader_init(&r);
	used = 0;
	ck_assert_int_eq(agent_frame_reader_push(&r, (const uint8_t *)"GET / HTTP/1.0\r\n", 16, &used), -EPROTO);

	/* A frame of the maximum size is accepted. */
	static uint8_t big[AGENT_FRAME_MAX_SIZE + 3];
	ck_assert_int_eq(agent_frame_hdr_encode(AGENT_MSG_FILE_DATA, AGENT_PROTO_MAX_PAYLOAD, big), 0);
	agent_frame_reader_init(&r);
	used = 0;
	ck_assert_int_eq(agent_frame_reader_push(&r, big, sizeof(big), &used), 1);
	ck_assert_uint_eq(used, AGENT_FRAME_MAX_SIZE);
	ck_assert_uint_eq(r.hdr.length, AGENT_PROTO_MAX_PAYLOAD);
	ck_assert_int_eq(agent_frame_reader_push(&r, big, 0, &used), 0);
	ck_assert_uint_eq(r.len, 0);
}
END_TEST

START_TEST(type_names)
{
	ck_assert_str_eq(agent_msg_type_name(AGENT_MSG_EXEC), "EXEC");
	ck_assert_str_eq(agent_msg_type_name(AGENT_MSG_ERROR), "ERROR");
	ck_assert_str_eq(agent_msg_type_name(0), "?");
	ck_assert_str_eq(agent_msg_type_name(200), "?");
	for (int t = 1; t <= AGENT_MSG_TYPE_MAX; t++)
		ck_assert_ptr_nonnull(agent_msg_type_name((uint8_t)t));
}
END_TEST

static Suite *agent_proto_suite(void)
{
	Suite *s = suite_create("agent_proto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, header_layout);
	tcase_add_test(tc, header_malformed);
	tcase_add_test(tc, roundtrip_hello);
	tcase_add_test(tc, roundtrip_exec);
	tcase_add_test(tc, roundtrip_small_types);
	tcase_add_test(tc, roundtrip_exit);
	tcase_add_test(tc, roundtrip_files_and_error);
	tcase_add_test(tc, malformed_payloads);
	tcase_add_test(tc, malformed_exec);
	tcase_add_test(tc, encode_limits);
	tcase_add_test(tc, reader_split_everywhere);
	tcase_add_test(tc, reader_rejects_bad_header_early);
	tcase_add_test(tc, type_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(agent_proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
