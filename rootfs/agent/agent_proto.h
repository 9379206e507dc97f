/* The guest agent's wire protocol: frame layout, message types, limits, pure encoders and decoders (host and guest). */
#ifndef AGENT_PROTO_H
#define AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Transport: a stream socket, AF_VSOCK in the guest (the agent listens on
 * AGENT_VSOCK_PORT), the VMM's hybrid Unix socket on the host ("CONNECT
 * <port>\n" / "OK <hostport>\n", then these bytes).
 *
 * Frames. Every frame is a 12-byte header followed by `length` payload bytes.
 * All integers are little-endian, whatever the hosts' byte order.
 *
 *   offset size  field
 *   0      2     magic    AGENT_PROTO_MAGIC ("MA" on the wire: 0x4d 0x41)
 *   2      1     version  AGENT_PROTO_VERSION
 *   3      1     type     enum agent_msg_type
 *   4      2     flags    0 (no flags are defined; others are rejected)
 *   6      2     reserved 0
 *   8      4     length   payload bytes, <= AGENT_PROTO_MAX_PAYLOAD
 *
 * Sessions. One connection carries one request:
 *   host  -> HELLO                     guest -> HELLO (or ERROR, then close)
 *   host  -> EXEC                      guest -> STARTED, STDOUT/STDERR*, EXIT
 *            STDIN* STDIN_EOF SIGNAL* WINSIZE*     (EXIT is the last frame)
 *            (or guest -> EXIT{START_FAILED} alone when it cannot start)
 *   host  -> PUT_FILE FILE_DATA* FILE_DATA(empty: end)
 *                                      guest -> FILE_RESULT
 *            (the guest may send FILE_RESULT with an error early; the host
 *            then stops sending)
 *   host  -> GET_FILE                  guest -> FILE_INFO FILE_DATA*
 *                                               FILE_RESULT, or FILE_RESULT
 *                                               alone with an error
 *   host  -> SHUTDOWN                  guest -> SHUTDOWN_ACK (after sync),
 *                                               then powers off
 * then the guest closes the connection. Closing the connection early ends
 * the request: a running command's process group gets SIGKILL.
 * A malformed frame, a frame of the wrong type for the state, or a bad
 * version gets ERROR and the connection closes; the agent keeps serving.
 */
#define AGENT_VSOCK_PORT 1024
#define AGENT_VSOCK_HOST_CID 2
#define AGENT_VSOCK_GUEST_CID 3

#define AGENT_PROTO_MAGIC 0x414du /* bytes 'M' 'A' */
#define AGENT_PROTO_VERSION 1
#define AGENT_FRAME_HDR_SIZE 12
#define AGENT_PROTO_MAX_PAYLOAD 65536u
#define AGENT_FRAME_MAX_SIZE (AGENT_FRAME_HDR_SIZE + AGENT_PROTO_MAX_PAYLOAD)

/* Data frames (STDIN, STDOUT, STDERR, FILE_DATA) carry at most this much;
 * a receiver rejects more than AGENT_PROTO_MAX_PAYLOAD only. */
#define AGENT_DATA_CHUNK 32768u

/* Limits on the contents of payloads (strings count their NUL). */
#define AGENT_EXEC_MAX_ARGS 1024 /* argv entries, >= 1 */
#define AGENT_EXEC_MAX_ENV 1024  /* env entries */
#define AGENT_PATH_MAX 4096      /* cwd, file paths */
#define AGENT_USER_MAX 256       /* "name", "uid", "uid:gid", "name:group" */
#define AGENT_IDENT_MAX 64       /* HELLO identification string */
#define AGENT_ERRMSG_MAX 256     /* ERROR message */
#define AGENT_SIGNAL_MAX 64      /* signals 1..64 */

enum agent_msg_type {
	AGENT_MSG_HELLO = 1,        /* both ways: struct agent_hello */
	AGENT_MSG_EXEC = 2,         /* host: struct agent_exec_req */
	AGENT_MSG_STDIN = 3,        /* host: data (never empty) */
	AGENT_MSG_STDIN_EOF = 4,    /* host: empty */
	AGENT_MSG_SIGNAL = 5,       /* host: u32 signal, 1..AGENT_SIGNAL_MAX */
	AGENT_MSG_WINSIZE = 6,      /* host: u16 rows, u16 cols */
	AGENT_MSG_STARTED = 7,      /* guest: u32 pid */
	AGENT_MSG_STDOUT = 8,       /* guest: data (never empty) */
	AGENT_MSG_STDERR = 9,       /* guest: data (never empty) */
	AGENT_MSG_EXIT = 10,        /* guest: struct agent_exit */
	AGENT_MSG_PUT_FILE = 11,    /* host: struct agent_put_file */
	AGENT_MSG_GET_FILE = 12,    /* host: struct agent_get_file */
	AGENT_MSG_FILE_DATA = 13,   /* both: data; an empty one ends PUT_FILE data */
	AGENT_MSG_FILE_INFO = 14,   /* guest: struct agent_file_info */
	AGENT_MSG_FILE_RESULT = 15, /* guest: struct agent_file_result */
	AGENT_MSG_SHUTDOWN = 16,    /* host: u32 status to report */
	AGENT_MSG_SHUTDOWN_ACK = 17,/* guest: empty */
	AGENT_MSG_ERROR = 18,       /* guest: struct agent_error */
	AGENT_MSG_TYPE_MAX = 18,
};

/*
 * Payload layouts (little-endian, no padding; strings are NUL-terminated,
 * so never contain a NUL; a payload has no trailing bytes):
 *   HELLO       u32 version, u32 max_payload, ident string
 *   EXEC        u32 flags, u32 timeout_s, u16 rows, u16 cols, u16 argc,
 *               u16 envc, cwd string, user string, argc strings, envc strings
 *   SIGNAL      u32 signal      STARTED u32 pid      SHUTDOWN u32 status
 *   WINSIZE     u16 rows, u16 cols
 *   EXIT        u32 kind, i32 value
 *   PUT_FILE    u32 mode, path string
 *   GET_FILE    path string
 *   FILE_INFO   u32 mode, u64 size
 *   FILE_RESULT i32 err, u64 size
 *   ERROR       i32 code, message string
 * Errno values on the wire are Linux's (both ends run Linux).
 */

/* HELLO: each side sends its version; the guest refuses a different one. */
struct agent_hello {
	uint32_t version;             /* AGENT_PROTO_VERSION */
	uint32_t max_payload;         /* AGENT_PROTO_MAX_PAYLOAD */
	char ident[AGENT_IDENT_MAX];  /* NUL-terminated, e.g. "minivm-agent" */
};

/* EXEC flags. */
#define AGENT_EXEC_TTY 0x1u   /* a pty for stdin/stdout/stderr (stderr merged into STDOUT) */
#define AGENT_EXEC_STDIN 0x2u /* STDIN frames feed stdin; without it stdin is /dev/null */
#define AGENT_EXEC_FLAGS_ALL (AGENT_EXEC_TTY | AGENT_EXEC_STDIN)

/*
 * EXEC request. The pointers are borrowed: the encoder copies the strings,
 * the decoder points them into the frame's payload (see agent_msg_decode).
 * Guest defaults: cwd "/" when NULL or ""; user: the agent's own (root) when
 * NULL or ""; user "name" or "uid" takes the gid and groups from
 * /etc/passwd and /etc/group (a bare uid not in passwd gets gid = uid),
 * "uid:gid" / "name:group" set the gid; env starts from
 * PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin, HOME (the user's home
 * or "/"), USER and LOGNAME (when the user has a name), TERM=linux, and the
 * request's entries override those of the same name.
 */
struct agent_exec_req {
	const char *const *argv; /* argv[0..argc) then NULL; argc in 1..AGENT_EXEC_MAX_ARGS */
	const char *const *env;  /* NULL, or "NAME=value" entries then NULL; <= AGENT_EXEC_MAX_ENV */
	const char *cwd;         /* NULL or "": default */
	const char *user;        /* NULL or "": default */
	uint32_t flags;          /* AGENT_EXEC_* */
	uint32_t timeout_s;      /* 0: none; else SIGKILL the process group after it, EXIT{TIMED_OUT} */
	uint16_t rows, cols;     /* AGENT_EXEC_TTY: window size (0: 24 x 80) */
};

/* EXIT kinds and their value. */
enum agent_exit_kind {
	AGENT_EXIT_EXITED = 1,       /* value: exit code 0..255 */
	AGENT_EXIT_SIGNALED = 2,     /* value: signal 1..AGENT_SIGNAL_MAX */
	AGENT_EXIT_TIMED_OUT = 3,    /* value: 0 (the group got SIGKILL) */
	AGENT_EXIT_START_FAILED = 4, /* value: errno 1..4095 (ENOENT, EACCES, ...) */
};

struct agent_exit {
	uint32_t kind;  /* enum agent_exit_kind */
	int32_t value;
};

struct agent_put_file {
	uint32_t mode;    /* permission bits, <= 07777 */
	const char *path; /* absolute, into the payload */
};

struct agent_get_file {
	const char *path; /* absolute, into the payload */
};

struct agent_file_info {
	uint32_t mode;    /* permission bits of the file */
	uint64_t size;    /* its size when opened (FILE_RESULT says what was sent) */
};

struct agent_file_result {
	int32_t err;      /* 0, or a positive errno */
	uint64_t size;    /* bytes written (PUT) or sent (GET) */
};

struct agent_error {
	int32_t code;     /* a positive errno: EPROTO, EBADMSG, EMSGSIZE, ... */
	const char *msg;  /* NUL-terminated, < AGENT_ERRMSG_MAX bytes, into the payload */
};

struct agent_frame_hdr {
	uint8_t type;     /* enum agent_msg_type, validated */
	uint32_t length;  /* payload length, validated <= AGENT_PROTO_MAX_PAYLOAD */
};

/*
 * One decoded message. Pointers (strings, data, exec.req.argv/env) point
 * into the frame's payload or into this struct itself: the struct must not
 * be copied (copy the fields you need) and is valid while the payload is.
 */
struct agent_msg {
	uint8_t type;
	union {
		struct agent_hello hello;
		struct {
			struct agent_exec_req req;
			const char *argv[AGENT_EXEC_MAX_ARGS + 1];
			const char *env[AGENT_EXEC_MAX_ENV + 1];
		} exec;
		struct {               /* STDIN, STDOUT, STDERR, FILE_DATA */
			const uint8_t *data;
			size_t len;
		} data;
		uint32_t signal;       /* SIGNAL */
		struct { uint16_t rows, cols; } winsize;
		uint32_t pid;          /* STARTED */
		struct agent_exit exit;
		struct agent_put_file put_file;
		struct agent_get_file get_file;
		struct agent_file_info file_info;
		struct agent_file_result file_result;
		uint32_t status;       /* SHUTDOWN */
		struct agent_error error;
	} u;
};

/*
 * Errors (negative errno), shared by every decoder here:
 *   -EPROTO          bad magic, non-zero flags or reserved bits
 *   -EPROTONOSUPPORT another protocol version
 *   -EOPNOTSUPP      unknown message type
 *   -EMSGSIZE        length over AGENT_PROTO_MAX_PAYLOAD (or an encoder's
 *                    message would not fit in one frame)
 *   -EBADMSG         truncated or trailing bytes, a string without its NUL,
 *                    a field out of range, an empty data frame where one is
 *                    not allowed
 *   -E2BIG           argc/envc beyond the limits, a string over its limit
 *   -ENOBUFS         the caller's output buffer is too small (encoders)
 *   -EINVAL          an invalid message to encode (e.g. argv empty)
 */

/* Write a frame header for (type, length) into out[0..AGENT_FRAME_HDR_SIZE). */
__attribute__((warn_unused_result)) int
agent_frame_hdr_encode(uint8_t type, size_t length, uint8_t out[AGENT_FRAME_HDR_SIZE]);

/* Validate and decode the header at in[0..len); len < AGENT_FRAME_HDR_SIZE is -EBADMSG. */
__attribute__((warn_unused_result)) int
agent_frame_hdr_decode(const uint8_t *in, size_t len, struct agent_frame_hdr *out);

/*
 * Decode the payload of one frame of type `type` into *m (see struct
 * agent_msg for lifetimes). Checks everything the layout above says.
 */
__attribute__((warn_unused_result)) int
agent_msg_decode(uint8_t type, const uint8_t *payload, size_t len, struct agent_msg *m);

/*
 * Encode message m as a whole frame (header + payload) into out[0..size);
 * returns the frame's length. For data types, m->u.data may be empty only
 * for FILE_DATA (the PUT end marker). Validates m as the decoder would, so
 * whatever encodes also decodes.
 */
__attribute__((warn_unused_result)) ssize_t
agent_msg_encode(const struct agent_msg *m, uint8_t *out, size_t size);

/*
 * Encode an EXEC frame from req (no struct agent_msg needed: the host's
 * argv/env arrays are used as they are).
 */
__attribute__((warn_unused_result)) ssize_t
agent_exec_encode(const struct agent_exec_req *req, uint8_t *out, size_t size);

/*
 * Stream reader: accumulates bytes from a stream into whole frames with a
 * fixed buffer (AGENT_FRAME_MAX_SIZE bytes, no allocation). The header is
 * validated as soon as its 12 bytes are in, so an oversized or bad header
 * is refused before its payload is read.
 */
struct agent_frame_reader {
	size_t len;                /* bytes buffered for the current frame */
	bool ready;                /* a whole frame is buffered */
	struct agent_frame_hdr hdr;
	uint8_t buf[AGENT_FRAME_MAX_SIZE];
};

void agent_frame_reader_init(struct agent_frame_reader *r);

/*
 * Feed in[0..len): consumes bytes up to the end of the current frame at
 * most and adds *consumed. Returns 1 when a whole frame is buffered (read
 * r->hdr and agent_frame_reader_payload(); the next push starts a new frame),
 * 0 when it needs more bytes (all of in was consumed), or a negative errno
 * from agent_frame_hdr_decode() (the stream is then unusable).
 */
__attribute__((warn_unused_result)) int
agent_frame_reader_push(struct agent_frame_reader *r, const uint8_t *in, size_t len,
                        size_t *consumed);

/* The payload of the ready frame (r->hdr.length bytes). */
const uint8_t *agent_frame_reader_payload(const struct agent_frame_reader *r);

/* Names for logs: "EXEC", ...; "?" for an unknown type. */
const char *agent_msg_type_name(uint8_t type);

#endif
