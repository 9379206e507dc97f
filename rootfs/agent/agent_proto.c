/* The guest agent's wire protocol: pure frame and message encoders/decoders, no I/O (shared by host and guest). */
#include "agent_proto.h"

#include <errno.h>
#include <string.h>

/* ---- little-endian fields ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- bounded cursors ---- */

struct rd {
	const uint8_t *p;
	size_t len, off;
};

static bool rd_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (n > r->len - r->off)
		return false;
	*out = r->p + r->off;
	r->off += n;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 2, &p))
		return false;
	*v = get_u16(p);
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 4, &p))
		return false;
	*v = get_u32(p);
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 8, &p))
		return false;
	*v = get_u64(p);
	return true;
}

/*
 * A NUL-terminated string of at most max bytes including its NUL:
 * 0, -EBADMSG (no NUL before the payload ends), -E2BIG (too long).
 */
static int rd_str(struct rd *r, size_t max, const char **s)
{
	size_t left = r->len - r->off;
	const uint8_t *start = r->p + r->off;
	const uint8_t *nul = memchr(start, 0, left < max ? left : max);

	if (!nul)
		return left < max ? -EBADMSG : -E2BIG;
	*s = (const char *)start;
	r->off += (size_t)(nul - start) + 1;
	return 0;
}

static int rd_end(const struct rd *r)
{
	return r->off == r->len ? 0 : -EBADMSG;
}

struct wr {
	uint8_t *p;
	size_t size, off;
	int err;
};

static uint8_t *wr_take(struct wr *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (n > w->size - w->off) {
		w->err = -ENOBUFS;
		return NULL;
	}
	p = w->p + w->off;
	w->off += n;
	return p;
}

static void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t *p = wr_take(w, 2);

	if (p)
		put_u16(p, v);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t *p = wr_take(w, 4);

	if (p)
		put_u32(p, v);
}

static void wr_u64(struct wr *w, uint64_t v)
{
	uint8_t *p = wr_take(w, 8);

	if (p)
		put_u64(p, v);
}

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	uint8_t *p = wr_take(w, n);

	if (p && n)
		memcpy(p, src, n);
}

/* A string with its NUL, of at most max bytes including the NUL. */
static void wr_str(struct wr *w, const char *s, size_t max)
{
	size_t n;

	if (w->err)
		return;
	if (!s)
		s = "";
	n = strnlen(s, max);
	if (n >= max) {
		w->err = -E2BIG;
		return;
	}
	wr_bytes(w, s, n + 1);
}

/* ---- frames ---- */

int agent_frame_hdr_encode(uint8_t type, size_t length, uint8_t out[AGENT_FRAME_HDR_SIZE])
{
	if (type == 0 || type > AGENT_MSG_TYPE_MAX)
		return -EOPNOTSUPP;
	if (length > AGENT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	put_u16(out, AGENT_PROTO_MAGIC);
	out[2] = AGENT_PROTO_VERSION;
	out[3] = type;
	put_u16(out + 4, 0);
	put_u16(out + 6, 0);
	put_u32(out + 8, (uint32_t)length);
	return 0;
}

int agent_frame_hdr_decode(const uint8_t *in, size_t len, struct agent_frame_hdr *out)
{
	uint32_t length;

	if (!in || len < AGENT_FRAME_HDR_SIZE)
		return -EBADMSG;
	if (get_u16(in) != AGENT_PROTO_MAGIC || get_u16(in + 4) != 0 || get_u16(in + 6) != 0)
		return -EPROTO;
	if (in[2] != AGENT_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (in[3] == 0 || in[3] > AGENT_MSG_TYPE_MAX)
		return -EOPNOTSUPP;
	length = get_u32(in + 8);
	if (length > AGENT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	out->type = in[3];
	out->length = length;
	return 0;
}

/* ---- messages ---- */

static bool exit_value_ok(uint32_t kind, int32_t v)
{
	switch (kind) {
	case AGENT_EXIT_EXITED:
		return v >= 0 && v <= 255;
	case AGENT_EXIT_SIGNALED:
		return v >= 1 && v <= AGENT_SIGNAL_MAX;
	case AGENT_EXIT_TIMED_OUT:
		return v == 0;
	case AGENT_EXIT_START_FAILED:
		return v >= 1 && v <= 4095;
	default:
		return false;
	}
}

/* An absolute path: starts with '/' (and its length is bounded by rd_str). */
static bool path_ok(const char *p)
{
	return p[0] == '/';
}

static int decode_exec(struct rd *r, struct agent_msg *m)
{
	struct agent_exec_req *q = &m->u.exec.req;
	uint16_t argc, envc;
	int err;

	memset(q, 0, sizeof(*q));
	if (!rd_u32(r, &q->flags) || !rd_u32(r, &q->timeout_s) || !rd_u16(r, &q->rows) ||
	    !rd_u16(r, &q->cols) || !rd_u16(r, &argc) || !rd_u16(r, &envc))
		return -EBADMSG;
	if (q->flags & ~AGENT_EXEC_FLAGS_ALL)
		return -EBADMSG;
	if (argc == 0)
		return -EBADMSG;
	if (argc > AGENT_EXEC_MAX_ARGS || envc > AGENT_EXEC_MAX_ENV)
		return -E2BIG;
	if ((err = rd_str(r, AGENT_PATH_MAX, &q->cwd)) || (err = rd_str(r, AGENT_USER_MAX, &q->user)))
		return err;
	if (q->cwd[0] != '\0' && !path_ok(q->cwd))
		return -EBADMSG;
	/* Each string is bounded by the payload (<= 64 KiB) only. */
	for (unsigned i = 0; i < argc; i++)
		if ((err = rd_str(r, AGENT_PROTO_MAX_PAYLOAD, &m->u.exec.argv[i])))
			return err;
	m->u.exec.argv[argc] = NULL;
	for (unsigned i = 0; i < envc; i++) {
		const char *e;

		if ((err = rd_str(r, AGENT_PROTO_MAX_PAYLOAD, &e)))
			return err;
		/* "NAME=value" with a non-empty NAME. */
		if (e[0] == '=' || !strchr(e, '='))
			return -EBADMSG;
		m->u.exec.env[i] = e;
	}
	m->u.exec.env[envc] = NULL;
	q->argv = m->u.exec.argv;
	q->env = m->u.exec.env;
	return rd_end(r);
}

static bool data_type(uint8_t type)
{
	return type == AGENT_MSG_STDIN || type == AGENT_MSG_STDOUT || type == AGENT_MSG_STDERR ||
	       type == AGENT_MSG_FILE_DATA;
}

int agent_msg_decode(uint8_t type, const uint8_t *payload, size_t len, struct agent_msg *m)
{
	struct rd r = { payload, len, 0 };
	uint32_t u;
	int err;

	if (type == 0 || type > AGENT_MSG_TYPE_MAX)
		return -EOPNOTSUPP;
	if (len > AGENT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (!payload && len)
		return -EBADMSG;
	if (!payload)
		r.p = (const uint8_t *)"";
	m->type = type;
	if (data_type(type)) {
		if (len == 0 && type != AGENT_MSG_FILE_DATA)
			return -EBADMSG;
		m->u.data.data = r.p;
		m->u.data.len = len;
		return 0;
	}
	switch (type) {
	case AGENT_MSG_HELLO: {
		const char *ident;

		if (!rd_u32(&r, &m->u.hello.version) || !rd_u32(&r, &m->u.hello.max_payload))
			return -EBADMSG;
		if ((err = rd_str(&r, AGENT_IDENT_MAX, &ident)))
			return err;
		memcpy(m->u.hello.ident, ident, strlen(ident) + 1);
		return rd_end(&r);
	}
	case AGENT_MSG_EXEC:
		return decode_exec(&r, m);
	case AGENT_MSG_STDIN_EOF:
	case AGENT_MSG_SHUTDOWN_ACK:
		return rd_end(&r);
	case AGENT_MSG_SIGNAL:
		if (!rd_u32(&r, &m->u.signal) || m->u.signal == 0 || m->u.signal > AGENT_SIGNAL_MAX)
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_WINSIZE:
		if (!rd_u16(&r, &m->u.winsize.rows) || !rd_u16(&r, &m->u.winsize.cols))
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_STARTED:
		if (!rd_u32(&r, &m->u.pid) || m->u.pid == 0)
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_EXIT:
		if (!rd_u32(&r, &m->u.exit.kind) || !rd_u32(&r, &u))
			return -EBADMSG;
		m->u.exit.value = (int32_t)u;
		if (!exit_value_ok(m->u.exit.kind, m->u.exit.value))
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_PUT_FILE:
		if (!rd_u32(&r, &m->u.put_file.mode) || m->u.put_file.mode > 07777)
			return -EBADMSG;
		if ((err = rd_str(&r, AGENT_PATH_MAX, &m->u.put_file.path)))
			return err;
		if (!path_ok(m->u.put_file.path))
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_GET_FILE:
		if ((err = rd_str(&r, AGENT_PATH_MAX, &m->u.get_file.path)))
			return err;
		if (!path_ok(m->u.get_file.path))
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_FILE_INFO:
		if (!rd_u32(&r, &m->u.file_info.mode) || m->u.file_info.mode > 07777 ||
		    !rd_u64(&r, &m->u.file_info.size))
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_FILE_RESULT:
		if (!rd_u32(&r, &u) || !rd_u64(&r, &m->u.file_result.size))
			return -EBADMSG;
		m->u.file_result.err = (int32_t)u;
		if (m->u.file_result.err < 0 || m->u.file_result.err > 4095)
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_SHUTDOWN:
		if (!rd_u32(&r, &m->u.status) || m->u.status > 255)
			return -EBADMSG;
		return rd_end(&r);
	case AGENT_MSG_ERROR:
		if (!rd_u32(&r, &u))
			return -EBADMSG;
		m->u.error.code = (int32_t)u;
		if (m->u.error.code <= 0 || m->u.error.code > 4095)
			return -EBADMSG;
		if ((err = rd_str(&r, AGENT_ERRMSG_MAX, &m->u.error.msg)))
			return err;
		return rd_end(&r);
	}
	return -EOPNOTSUPP;
}

static void wr_exec(struct wr *w, const struct agent_exec_req *q)
{
	size_t argc = 0, envc = 0;

	if (!q->argv || !q->argv[0]) {
		w->err = -EINVAL;
		return;
	}
	while (q->argv[argc] && argc <= AGENT_EXEC_MAX_ARGS)
		argc++;
	while (q->env && q->env[envc] && envc <= AGENT_EXEC_MAX_ENV)
		envc++;
	if (argc > AGENT_EXEC_MAX_ARGS || envc > AGENT_EXEC_MAX_ENV) {
		w->err = -E2BIG;
		return;
	}
	if (q->flags & ~AGENT_EXEC_FLAGS_ALL) {
		w->err = -EINVAL;
		return;
	}
	if (q->cwd && q->cwd[0] != '\0' && q->cwd[0] != '/') {
		w->err = -EINVAL;
		return;
	}
	for (size_t i = 0; i < envc; i++)
		if (q->env[i][0] == '=' || !strchr(q->env[i], '=')) {
			w->err = -EINVAL;
			return;
		}
	wr_u32(w, q->flags);
	wr_u32(w, q->timeout_s);
	wr_u16(w, q->rows);
	wr_u16(w, q->cols);
	wr_u16(w, (uint16_t)argc);
	wr_u16(w, (uint16_t)envc);
	wr_str(w, q->cwd, AGENT_PATH_MAX);
	wr_str(w, q->user, AGENT_USER_MAX);
	for (size_t i = 0; i < argc; i++)
		wr_str(w, q->argv[i], AGENT_PROTO_MAX_PAYLOAD);
	for (size_t i = 0; i < envc; i++)
		wr_str(w, q->env[i], AGENT_PROTO_MAX_PAYLOAD);
}

/* Close a frame written from out[0]: fill its header, map a too-long payload to -EMSGSIZE. */
static ssize_t wr_finish(struct wr *w, uint8_t type)
{
	size_t plen;
	int err;

	if (w->err == -ENOBUFS && w->size >= AGENT_FRAME_MAX_SIZE)
		return -EMSGSIZE;
	if (w->err)
		return w->err;
	plen = w->off - AGENT_FRAME_HDR_SIZE;
	if (plen > AGENT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	err = agent_frame_hdr_encode(type, plen, w->p);
	if (err)
		return err;
	return (ssize_t)w->off;
}

/* A writer over out that never lets the payload exceed the frame maximum. */
static struct wr wr_start(uint8_t *out, size_t size)
{
	struct wr w = { out, size < AGENT_FRAME_MAX_SIZE ? size : AGENT_FRAME_MAX_SIZE, 0, 0 };

	if (!out || w.size < AGENT_FRAME_HDR_SIZE)
		w.err = -ENOBUFS;
	else
		w.off = AGENT_FRAME_HDR_SIZE;
	return w;
}

ssize_t agent_exec_encode(const struct agent_exec_req *req, uint8_t *out, size_t size)
{
	struct wr w = wr_start(out, size);

	if (!req)
		return -EINVAL;
	wr_exec(&w, req);
	return wr_finish(&w, AGENT_MSG_EXEC);
}

ssize_t agent_msg_encode(const struct agent_msg *m, uint8_t *out, size_t size)
{
	struct wr w = wr_start(out, size);
	const struct agent_exit *e;

	if (!m)
		return -EINVAL;
	if (data_type(m->type)) {
		if (m->u.data.len == 0 && m->type != AGENT_MSG_FILE_DATA)
			return -EINVAL;
		if (m->u.data.len > AGENT_PROTO_MAX_PAYLOAD)
			return -EMSGSIZE;
		if (!m->u.data.data && m->u.data.len)
			return -EINVAL;
		wr_bytes(&w, m->u.data.data, m->u.data.len);
		return wr_finish(&w, m->type);
	}
	switch (m->type) {
	case AGENT_MSG_HELLO:
		wr_u32(&w, m->u.hello.version);
		wr_u32(&w, m->u.hello.max_payload);
		wr_str(&w, m->u.hello.ident, AGENT_IDENT_MAX);
		break;
	case AGENT_MSG_EXEC:
		wr_exec(&w, &m->u.exec.req);
		break;
	case AGENT_MSG_STDIN_EOF:
	case AGENT_MSG_SHUTDOWN_ACK:
		break;
	case AGENT_MSG_SIGNAL:
		if (m->u.signal == 0 || m->u.signal > AGENT_SIGNAL_MAX)
			return -EINVAL;
		wr_u32(&w, m->u.signal);
		break;
	case AGENT_MSG_WINSIZE:
		wr_u16(&w, m->u.winsize.rows);
		wr_u16(&w, m->u.winsize.cols);
		break;
	case AGENT_MSG_STARTED:
		if (m->u.pid == 0)
			return -EINVAL;
		wr_u32(&w, m->u.pid);
		break;
	case AGENT_MSG_EXIT:
		e = &m->u.exit;
		if (!exit_value_ok(e->kind, e->value))
			return -EINVAL;
		wr_u32(&w, e->kind);
		wr_u32(&w, (uint32_t)e->value);
		break;
	case AGENT_MSG_PUT_FILE:
		if (m->u.put_file.mode > 07777 || !m->u.put_file.path || !path_ok(m->u.put_file.path))
			return -EINVAL;
		wr_u32(&w, m->u.put_file.mode);
		wr_str(&w, m->u.put_file.path, AGENT_PATH_MAX);
		break;
	case AGENT_MSG_GET_FILE:
		if (!m->u.get_file.path || !path_ok(m->u.get_file.path))
			return -EINVAL;
		wr_str(&w, m->u.get_file.path, AGENT_PATH_MAX);
		break;
	case AGENT_MSG_FILE_INFO:
		if (m->u.file_info.mode > 07777)
			return -EINVAL;
		wr_u32(&w, m->u.file_info.mode);
		wr_u64(&w, m->u.file_info.size);
		break;
	case AGENT_MSG_FILE_RESULT:
		if (m->u.file_result.err < 0 || m->u.file_result.err > 4095)
			return -EINVAL;
		wr_u32(&w, (uint32_t)m->u.file_result.err);
		wr_u64(&w, m->u.file_result.size);
		break;
	case AGENT_MSG_SHUTDOWN:
		if (m->u.status > 255)
			return -EINVAL;
		wr_u32(&w, m->u.status);
		break;
	case AGENT_MSG_ERROR:
		if (m->u.error.code <= 0 || m->u.error.code > 4095)
			return -EINVAL;
		wr_u32(&w, (uint32_t)m->u.error.code);
		wr_str(&w, m->u.error.msg, AGENT_ERRMSG_MAX);
		break;
	default:
		return -EOPNOTSUPP;
	}
	return wr_finish(&w, m->type);
}

/* ---- stream reader ---- */

void agent_frame_reader_init(struct agent_frame_reader *r)
{
	r->len = 0;
	r->ready = false;
	r->hdr.type = 0;
	r->hdr.length = 0;
}

int agent_frame_reader_push(struct agent_frame_reader *r, const uint8_t *in, size_t len,
                            size_t *consumed)
{
	size_t used = 0;

	if (r->ready)
		agent_frame_reader_init(r);
	while (used < len) {
		size_t want, n;

		if (r->len < AGENT_FRAME_HDR_SIZE)
			want = AGENT_FRAME_HDR_SIZE - r->len;
		else
			want = AGENT_FRAME_HDR_SIZE + (size_t)r->hdr.length - r->len;
		n = len - used < want ? len - used : want;
		memcpy(r->buf + r->len, in + used, n);
		r->len += n;
		used += n;
		if (r->len == AGENT_FRAME_HDR_SIZE && n > 0 && n == want) {
			int err = agent_frame_hdr_decode(r->buf, r->len, &r->hdr);

			if (err) {
				*consumed += used;
				return err;
			}
		}
		if (r->len >= AGENT_FRAME_HDR_SIZE && r->len == AGENT_FRAME_HDR_SIZE + (size_t)r->hdr.length) {
			r->ready = true;
			*consumed += used;
			return 1;
		}
	}
	*consumed += used;
	return 0;
}

const uint8_t *agent_frame_reader_payload(const struct agent_frame_reader *r)
{
	return r->buf + AGENT_FRAME_HDR_SIZE;
}

const char *agent_msg_type_name(uint8_t type)
{
	static const char *const names[] = {
		[AGENT_MSG_HELLO] = "HELLO",
		[AGENT_MSG_EXEC] = "EXEC",
		[AGENT_MSG_STDIN] = "STDIN",
		[AGENT_MSG_STDIN_EOF] = "STDIN_EOF",
		[AGENT_MSG_SIGNAL] = "SIGNAL",
		[AGENT_MSG_WINSIZE] = "WINSIZE",
		[AGENT_MSG_STARTED] = "STARTED",
		[AGENT_MSG_STDOUT] = "STDOUT",
		[AGENT_MSG_STDERR] = "STDERR",
		[AGENT_MSG_EXIT] = "EXIT",
		[AGENT_MSG_PUT_FILE] = "PUT_FILE",
		[AGENT_MSG_GET_FILE] = "GET_FILE",
		[AGENT_MSG_FILE_DATA] = "FILE_DATA",
		[AGENT_MSG_FILE_INFO] = "FILE_INFO",
		[AGENT_MSG_FILE_RESULT] = "FILE_RESULT",
		[AGENT_MSG_SHUTDOWN] = "SHUTDOWN",
		[AGENT_MSG_SHUTDOWN_ACK] = "SHUTDOWN_ACK",
		[AGENT_MSG_ERROR] = "ERROR",
	};

	if (type == 0 || type > AGENT_MSG_TYPE_MAX)
		return "?";
	return names[type];
}
