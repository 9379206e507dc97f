/* The control socket's server: JSON over HTTP/1.1 on a Unix socket, a strict router and state machine over a backend ops table. */
#ifndef MINIVM_API_H
#define MINIVM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/minivm.h"

/*
 * The endpoints (vmm/openapi.json is the reference; docs-api.md the guide):
 *
 *   PUT  /machine     {vcpus, mem_mib, vm_timeout_ms, snapshot_dir}  204  configuring
 *   PUT  /boot        {kernel, cmdline}                  204  configuring
 *   PUT  /rootfs      {path, read_only, rate_limit}      204  configuring
 *   PUT  /disks/{id}  {path, read_only, rate_limit}      204  configuring
 *   PUT  /vsock       {guest_cid, uds_path}              204  configuring
 *   PUT  /net         {tap, mac, ip, gw, dns, rx_limit, tx_limit}  204  configuring
 *   PUT  /policy      {allow: [rule...], allow_dns}      204  configuring
 *   PUT  /restore     {dir}                              204  configuring
 *   GET  /config      the configuration so far           200  any state
 *   POST /start       {wait_ready_ms}                    200  configuring
 *   GET  /status      {state, ...}                       200  any state
 *   POST /exec        {argv, env, cwd, user, timeout_s, stdin}  200 NDJSON stream  running
 *   POST /pause                                          200  running
 *   POST /resume                                         200  paused
 *   POST /snapshot    {dir}                              200  paused
 *   POST /stop                                           200  starting, running, paused
 *   GET  /events      NDJSON stream                      200  any state
 *   GET  /metrics     counters                           200  any state
 *
 * Errors are {"error": "message"} with 400 (bad JSON, unknown field, wrong
 * type, out of range: the message names the field), 404 (no such path),
 * 405 (wrong method, with Allow), 409 (wrong state: the message names the
 * state), 411/413/414/415/417/431/501/505 (HTTP level), 500 (the backend
 * failed) or 503 (shutting down).
 *
 * The state machine, as a table in api.c (api_transitions):
 *   configuring --start--> starting --ready event--> running <--pause/resume--> paused
 *   starting, running, paused --stop or vm_exit event--> stopped
 * A failed start leaves the state configuring (the backend undid it all).
 *
 * PUT /restore makes POST /start restore that snapshot instead of booting:
 * the snapshot decides the kernel, vCPUs, memory, guest CID and disks, so
 * it conflicts (409, naming the other PUT) with PUT /boot, /rootfs,
 * /disks/{id}, PUT /machine's vcpus, mem_mib or snapshot_dir, PUT
 * /vsock's guest_cid and PUT /net (a snapshot has no NIC), whichever comes
 * first.
 */

enum api_state {
	API_CONFIGURING = 0,
	API_STARTING,
	API_RUNNING,
	API_PAUSED,
	API_STOPPED,
	API_NR_STATES,
};

const char *api_state_name(enum api_state s);

/* ---- the configuration the router builds and hands to the backend ---- */

#define API_PATH_MAX 4096
#define API_CMDLINE_MAX 4096
#define API_ID_MAX 32       /* disk ids: [A-Za-z0-9_-]{1,32} */
#define API_TAP_MAX 15      /* IFNAMSIZ - 1 */
#define API_MIN_MEM_MIB 32
#define API_MAX_MEM_MIB 65536
#define API_RULE_MAX 64     /* NET_RULE_MAX_LEN */
#define API_EXEC_MAX_ARGS 1024 /* AGENT_EXEC_MAX_ARGS */
#define API_EXEC_MAX_ENV 1024  /* AGENT_EXEC_MAX_ENV */

struct api_disk {
	char id[API_ID_MAX + 1];
	char path[API_PATH_MAX];
	bool read_only;
	struct minivm_rate_limit limit;
};

/*
 * Owned by the api object; the backend reads it during configure() and
 * start() only, and copies what it keeps. Every string is NUL-terminated,
 * "" when unset; *_set say which PUTs were made.
 */
struct api_config {
	bool machine_set, boot_set, rootfs_set, vsock_set, net_set, policy_set;
	bool vcpus_set, mem_set, cid_set; /* given explicitly (restore conflicts) */
	unsigned int vcpus;       /* 1..MINIVM_MAX_CPUS, default 1 */
	uint64_t mem_mib;         /* API_MIN_MEM_MIB..API_MAX_MEM_MIB, default 256 */
	uint64_t vm_timeout_ms;   /* 0: none */
	char snapshot_dir[API_PATH_MAX]; /* absolute; "": no snapshot (the only
				   * dir POST /snapshot accepts: its files are
				   * opened before start) */
	char kernel[API_PATH_MAX]; /* required before start */
	char cmdline[API_CMDLINE_MAX];
	char rootfs[API_PATH_MAX];
	bool rootfs_read_only;    /* default true */
	struct minivm_rate_limit rootfs_limit;
	struct api_disk disks[MINIVM_MAX_DISKS]; /* in the order first PUT */
	unsigned int nr_disks;
	uint32_t guest_cid;       /* 3..UINT32_MAX-1, default 3 */
	char vsock_uds[API_PATH_MAX]; /* "": the backend picks one */
	char tap[API_TAP_MAX + 1];
	uint8_t mac[6];           /* all zero: the backend picks one */
	uint32_t ip, gw, dns;     /* host byte order; dns 0: none */
	uint8_t prefix;           /* 1..32 */
	struct minivm_rate_limit rx_limit, tx_limit;
	char allow[MINIVM_MAX_NET_RULES][API_RULE_MAX + 1]; /* nr_allow rules, each
				   * valid for net_rule_parse() */
	unsigned int nr_allow;
	bool allow_dns;
	char restore_dir[API_PATH_MAX]; /* absolute; "": boot (PUT /restore) */
};

/* Which PUT changed the configuration (for configure()). */
enum api_section {
	API_SEC_MACHINE = 0,
	API_SEC_BOOT,
	API_SEC_ROOTFS,
	API_SEC_DISK,
	API_SEC_VSOCK,
	API_SEC_NET,
	API_SEC_POLICY,
	API_SEC_RESTORE,
};

/* ---- exec ---- */

struct api_exec_req {
	const char *const *argv; /* argc >= 1 entries, NULL-terminated */
	unsigned int argc;
	const char *const *env;  /* "K=V", nr_env entries, NULL-terminated */
	unsigned int nr_env;
	const char *cwd;         /* absolute, or NULL: the agent's default */
	const char *user;        /* "name", "uid", "uid:gid", ... or NULL: root */
	uint32_t timeout_s;      /* 0: none */
	const char *stdin_data;  /* NULL: stdin is /dev/null */
	size_t stdin_len;
	uint64_t id;             /* the router's number for this command */
};

/* Where exec() sends the command's output as it comes. */
struct api_exec_sink {
	/*
	 * stream: 1 stdout, 2 stderr. Blocks until the bytes went to the client
	 * (bounded by the api's write timeout). Returns 0, or -EPIPE when the
	 * client is gone or too slow: exec() should then end the command (close
	 * its agent connection) and return -EPIPE.
	 */
	int (*output)(void *sink_ctx, int stream, const void *data, size_t len);
	void *sink_ctx;
};

enum api_exit_kind {
	API_EXIT_EXITED = 0, /* code */
	API_EXIT_SIGNALED,   /* signo */
	API_EXIT_TIMED_OUT,  /* killed after timeout_s */
	API_EXIT_START_FAILED, /* errnum: the guest's errno */
};

struct api_exec_result {
	enum api_exit_kind kind;
	int code;   /* EXITED: 0..255 */
	int signo;  /* SIGNALED */
	int errnum; /* START_FAILED: ENOENT, EACCES, ... */
	int status; /* the shell's status: code, 128+signo, 124, 127 or 126 */
};

/* ---- metrics ---- */

#define API_METRICS_MAX_EXITS 32
#define API_METRICS_MAX_DEVICES 16
#define API_METRIC_NAME_MAX 32

struct api_metric_count {
	char name[API_METRIC_NAME_MAX]; /* [a-z0-9_]+, e.g. "io", "mmio", "hlt" */
	uint64_t count;
};

struct api_device_metrics {
	char name[API_METRIC_NAME_MAX]; /* "vda", "vdb", "net0", "vsock", "rng" */
	char kind[API_METRIC_NAME_MAX]; /* "blk", "net", "vsock", "rng" */
	/* blk: reads/writes are requests; net: reads are frames to the guest
	 * (rx), writes frames from it (tx); vsock: packets each way. */
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t flushes;   /* blk: flush requests */
	uint64_t throttled; /* times its rate limiter held the queue */
	uint64_t denied;    /* net: frames the egress policy dropped */
	uint64_t errors;    /* requests failed, frames lost, device failed by the guest */
};

struct api_metrics {
	struct api_metric_count exits[API_METRICS_MAX_EXITS]; /* exits by reason */
	unsigned int nr_exits;
	struct api_device_metrics devices[API_METRICS_MAX_DEVICES];
	unsigned int nr_devices;
	uint64_t exits_total;         /* all exits, every vCPU */
	uint64_t policy_denials;      /* frames the egress policy dropped */
	uint64_t ratelimit_throttles; /* all devices together */
	uint64_t guest_errors;        /* guest errors raised (events, delivered or not) */
	uint64_t events_suppressed;   /* events over the VMM's rate limit or lost */
	uint64_t agent_commands;      /* commands the agent ran (any client) */
	/* minivm_vm_exec() calls (any client of the front): started, ended
	 * with the command's fate, failed (did not start, or no fate) */
	uint64_t commands_started, commands_exited, commands_failed;
};

/* ---- the backend ---- */

/*
 * The ops table the router calls. Common contract for every op:
 * - ctx is the pointer given to api_create(); err[0..errlen) receives a
 *   one-line message on failure (the router sends it to the client).
 * - Returns 0 or a negative errno: -EINVAL, -ENOENT, -EACCES, -ENOTDIR,
 *   -EISDIR, -E2BIG, -ENAMETOOLONG, -EEXIST become 400 (the client's request named
 *   something unusable), -EBUSY/-EALREADY 409, anything else 500.
 * - Called from the thread that serves the connection (api_serve_fd's
 *   caller), never with the api's lock held; the router serializes the
 *   lifecycle ops (configure, start, pause, resume, snapshot, stop): at most
 *   one of them runs at a time, and only in the states the table allows.
 *   exec() and metrics() may run concurrently with each other and with a
 *   lifecycle op (e.g. stop() while commands stream), from several threads.
 * - Blocking is allowed but must be bounded (the client waits); exec() is
 *   bounded by the command (and its timeout_s) or by a sink error.
 * - The backend reports what happens on its own through api_post_event():
 *   READY (starting -> running; it may come during start(), the state is
 *   starting by then), VM_EXIT (-> stopped), policy denials, guest errors. It must post READY once the agent answers and VM_EXIT
 *   exactly once when the VM ends for any reason (also after stop()).
 */
struct api_backend_ops {
	/* Optional (NULL: every valid PUT is accepted). After a PUT changed
	 * section `sec` of cfg (state configuring): check what the router
	 * cannot (files exist, the TAP exists); an error undoes the PUT. No
	 * resources are to be held. */
	int (*configure)(void *ctx, const struct api_config *cfg, enum api_section sec, char *err,
			 size_t errlen);
	/* Starts the VM from cfg (cfg->boot_set or cfg->restore_dir[0] is
	 * guaranteed, never both: a restore_dir restores that snapshot instead
	 * of booting, without rootfs or disks) and returns once it is
	 * launched, without waiting for the guest; READY comes later as an
	 * event. On failure everything is undone (a new start may follow). */
	int (*start)(void *ctx, const struct api_config *cfg, char *err, size_t errlen);
	/* Runs one command in the guest (state running), streaming its output
	 * into sink, and fills *res when it ended (its fate, whatever it is: a
	 * command that failed to start is 0 with START_FAILED). The request's
	 * pointers are valid during the call only. */
	int (*exec)(void *ctx, const struct api_exec_req *req, const struct api_exec_sink *sink,
		    struct api_exec_result *res, char *err, size_t errlen);
	/* Pauses the vCPUs (running -> paused); returns when they are stopped. */
	int (*pause)(void *ctx, char *err, size_t errlen);
	/* Resumes them (paused -> running). */
	int (*resume)(void *ctx, char *err, size_t errlen);
	/* Writes a snapshot of the paused VM into dir (absolute), which must be
	 * cfg->snapshot_dir as given at start (-EINVAL otherwise, -EALREADY for
	 * a second one); the VM is paused again when it returns. */
	int (*snapshot)(void *ctx, const char *dir, char *err, size_t errlen);
	/* Stops the VM (starting, running or paused) and returns once it has
	 * ended; VM_EXIT may be posted before or after it returns. */
	int (*stop)(void *ctx, char *err, size_t errlen);
	/* Fills *m (zeroed by the router) with the VM's counters; any state
	 * (before start: whatever it has, usually zeros). Non-blocking. */
	int (*metrics)(void *ctx, struct api_metrics *m, char *err, size_t errlen);
};

/* ---- events ---- */

enum api_event_type {
	API_EV_READY = 0,       /* the agent answered: starting -> running */
	API_EV_COMMAND_EXITED,  /* posted by the router when an exec ends */
	API_EV_POLICY_DENIED,   /* the egress policy dropped a frame */
	API_EV_GUEST_ERROR,     /* a device failed, the guest misbehaved, ... */
	API_EV_VM_EXIT,         /* the VM ended: -> stopped */
};

struct api_event {
	enum api_event_type type;
	char message[256];   /* GUEST_ERROR: what happened; others: optional */
	/* POLICY_DENIED */
	char dst[64];        /* "A.B.C.D" */
	uint16_t port;       /* 0: none (not TCP/UDP) */
	char proto[8];       /* "tcp", "udp", "icmp", "other" */
	char reason[32];     /* net_deny_reason_name() */
	/* VM_EXIT */
	enum minivm_outcome outcome;
	int status;          /* VM_EXIT: guest status when GUEST_EXITED; COMMAND_EXITED: shell status */
	/* COMMAND_EXITED */
	uint64_t command_id;
};

/* ---- the server ---- */

struct api;

/*
 * Makes a server over ops (a static const table the caller keeps alive)
 * and ctx (passed back to every op; not owned). State configuring. Returns
 * 0 or -ENOMEM.
 */
int api_create(const struct api_backend_ops *ops, void *ctx, struct api **out)
	__attribute__((warn_unused_result));

/*
 * Records an event for GET /events streams and applies its transition
 * (READY: starting -> running; VM_EXIT: -> stopped, from any state). Any
 * thread, never blocks on a client: events go into a ring of
 * API_EVENT_RING entries; a stream that falls behind gets a "lost" event.
 * Returns 0, or -EINVAL for an unknown type.
 */
#define API_EVENT_RING 256
int api_post_event(struct api *api, const struct api_event *ev) __attribute__((warn_unused_result));

/* The current state (any thread). */
enum api_state api_state(struct api *api);

/*
 * Serves one connection on client_fd (a connected stream socket, blocking
 * or not; not closed here: the caller owns it) until the client closes it,
 * an error, a timeout (API_IO_TIMEOUT_MS without progress on a request,
 * API_IDLE_TIMEOUT_MS idle between requests) or api_shutdown(). Keep-alive
 * and pipelining are supported; a streamed response (exec, events) or an
 * HTTP-level error ends the connection. Call it from a thread of its own
 * per connection (GET /events holds its thread until the VM stops);
 * several may run at once. Writes use MSG_NOSIGNAL, so no SIGPIPE.
 * Returns 0 when the connection ended normally, or -errno.
 */
#define API_IO_TIMEOUT_MS 10000
#define API_IDLE_TIMEOUT_MS 60000
int api_serve_fd(struct api *api, int client_fd) __attribute__((warn_unused_result));

/*
 * Makes every api_serve_fd return soon (within API_POLL_MS): streams end,
 * new requests get 503. Any thread. Then join the serving threads and call
 * api_destroy.
 */
#define API_POLL_MS 200
void api_shutdown(struct api *api);

/* Frees the server; no api_serve_fd may be running. api may be NULL. */
void api_destroy(struct api *api);

/*
 * Creates a listening Unix stream socket at path (mode 0600, CLOEXEC,
 * backlog 16). A stale socket file there is replaced; any other kind of
 * file is refused with -EEXIST. Returns 0 with *fd set, or -errno
 * (-ENAMETOOLONG for a path over sun_path).
 */
int api_listen(const char *path, int *fd) __attribute__((warn_unused_result));

/* ---- for tests and fuzzers: one request without a socket ---- */

/*
 * Runs the router on one parsed request: method, target, body (len bytes,
 * may be NULL when 0), content_type (NULL: none). Non-streaming responses
 * come back as *status and a malloc'd NUL-terminated JSON body (*out,
 * *out_len; "" for 204) the caller frees. Streaming endpoints (exec,
 * events) write their NDJSON lines to stream_fd when it is >= 0 (raw lines,
 * no chunked framing; GET /events writes the retained events and returns,
 * it does not follow) and answer 200 with an empty *out; with stream_fd < 0
 * they are answered 400. Returns 0, or -ENOMEM.
 */
int api_handle(struct api *api, const char *method, const char *target, const char *body,
	       size_t len, const char *content_type, int stream_fd, int *status, char **out,
	       size_t *out_len) __attribute__((warn_unused_result));

#endif
