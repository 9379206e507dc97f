/* The control socket's server: JSON over HTTP/1.1 on a Unix socket, a strict router and state machine over a backend ops table. */
#include "vmm/api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/net_policy.h"
#include "vmm/http.h"
#include "vmm/json.h"
#include "vmm/jsonw.h"

_Static_assert(API_RULE_MAX == NET_RULE_MAX_LEN, "rule storage matches the policy's limit");

#define API_EVENT_LINE 1024 /* one encoded event, with its newline */
#define API_RESP_MAX (256u * 1024) /* a non-streamed response body */
#define API_JSON_MAX_NODES 8192
#define API_JSON_MAX_DEPTH 8
#define API_MAX_U53 9007199254740991ULL /* 2^53 - 1: exact in every JSON client */
#define API_MAX_WAIT_MS 3600000ULL
#define API_MAX_TIMEOUT_S 31536000ULL
#define API_OUT_CHUNK 16384 /* output bytes per NDJSON event */

struct api_event_slot {
	uint64_t seq;
	size_t len;
	char line[API_EVENT_LINE];
};

struct api {
	const struct api_backend_ops *ops;
	void *ctx;
	/* lock guards everything below but cfg's readers' copy rules (see
	 * op_lock); cond is signalled on every event and state change. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Serializes the lifecycle ops and the writers of cfg. */
	pthread_mutex_t op_lock;
	enum api_state state;
	bool shutdown;
	struct api_config cfg;
	struct api_config *scratch; /* a PUT's candidate, under op_lock */
	uint64_t next_seq;          /* the next event's number; slot seq % RING */
	struct api_event_slot ring[API_EVENT_RING];
	uint64_t next_command;
	uint64_t commands_running, commands_total;
	uint64_t requests, errors_4xx, errors_5xx;
	bool exited;
	enum minivm_outcome exit_outcome;
	int exit_status;
};

/* ---- the state machine ---- */

enum api_call {
	API_CALL_CONFIGURE = 0, /* every PUT */
	API_CALL_START,
	API_CALL_EXEC,
	API_CALL_PAUSE,
	API_CALL_RESUME,
	API_CALL_SNAPSHOT,
	API_CALL_STOP,
	API_CALL_READ, /* GET: status, config, events, metrics */
	API_NR_CALLS,
};

/* What each call does in each state: the state after it succeeds, or
 * API_NR_STATES where the call is refused (409). Reads are allowed always. */
static const enum api_state api_transitions[API_NR_STATES][API_NR_CALLS] = {
	[API_CONFIGURING] = {
		[API_CALL_CONFIGURE] = API_CONFIGURING, [API_CALL_START] = API_STARTING,
		[API_CALL_EXEC] = API_NR_STATES, [API_CALL_PAUSE] = API_NR_STATES,
		[API_CALL_RESUME] = API_NR_STATES, [API_CALL_SNAPSHOT] = API_NR_STATES,
		[API_CALL_STOP] = API_NR_STATES, [API_CALL_READ] = API_CONFIGURING,
	},
	[API_STARTING] = {
		[API_CALL_CONFIGURE] = API_NR_STATES, [API_CALL_START] = API_NR_STATES,
		[API_CALL_EXEC] = API_NR_STATES, [API_CALL_PAUSE] = API_NR_STATES,
		[API_CALL_RESUME] = API_NR_STATES, [API_CALL_SNAPSHOT] = API_NR_STATES,
		[API_CALL_STOP] = API_STOPPED, [API_CALL_READ] = API_STARTING,
	},
	[API_RUNNING] = {
		[API_CALL_CONFIGURE] = API_NR_STATES, [API_CALL_START] = API_NR_STATES,
		[API_CALL_EXEC] = API_RUNNING, [API_CALL_PAUSE] = API_PAUSED,
		[API_CALL_RESUME] = API_NR_STATES, [API_CALL_SNAPSHOT] = API_NR_STATES,
		[API_CALL_STOP] = API_STOPPED, [API_CALL_READ] = API_RUNNING,
	},
	[API_PAUSED] = {
		[API_CALL_CONFIGURE] = API_NR_STATES, [API_CALL_START] = API_NR_STATES,
		[API_CALL_EXEC] = API_NR_STATES, [API_CALL_PAUSE] = API_NR_STATES,
		[API_CALL_RESUME] = API_RUNNING, [API_CALL_SNAPSHOT] = API_PAUSED,
		[API_CALL_STOP] = API_STOPPED, [API_CALL_READ] = API_PAUSED,
	},
	[API_STOPPED] = {
		[API_CALL_CONFIGURE] = API_NR_STATES, [API_CALL_START] = API_NR_STATES,
		[API_CALL_EXEC] = API_NR_STATES, [API_CALL_PAUSE] = API_NR_STATES,
		[API_CALL_RESUME] = API_NR_STATES, [API_CALL_SNAPSHOT] = API_NR_STATES,
		[API_CALL_STOP] = API_NR_STATES, [API_CALL_READ] = API_STOPPED,
	},
};

/* Tables hold arrays, not pointers: no relocations, nothing writable. */
static const char api_state_names[API_NR_STATES][12] = {
	[API_CONFIGURING] = "configuring", [API_STARTING] = "starting",
	[API_RUNNING] = "running",         [API_PAUSED] = "paused",
	[API_STOPPED] = "stopped",
};

const char *api_state_name(enum api_state s)
{
	return (unsigned int)s < API_NR_STATES ? api_state_names[s] : "unknown";
}

static const char *api_outcome_name(enum minivm_outcome o)
{
	switch (o) {
	case MINIVM_GUEST_EXITED: return "guest_exited";
	case MINIVM_GUEST_CRASHED: return "guest_crashed";
	case MINIVM_STOPPED: return "stopped";
	case MINIVM_VMM_ERROR: return "vmm_error";
	case MINIVM_TIMED_OUT: return "timed_out";
	}
	return "vmm_error";
}

/* ---- a response being built ---- */

/* How a streamed response reaches the client. */
struct api_conn {
	int fd;
	bool http;       /* serve mode: an HTTP head first; else raw lines */
	bool chunked;    /* HTTP/1.1: chunked framing; else the close ends it */
	bool follow;     /* GET /events waits for more (serve mode) */
	bool started;    /* the stream's head went out */
	bool broken;     /* a write failed: the client is gone */
};

struct api_resp {
	int status;
	struct jsonw w;
	const char *allow; /* 405: the "Allow: ...\r\n" line, or NULL */
	char allow_buf[48];
	bool streamed;     /* the handler answered on the connection itself */
};

static void api_err(struct api_resp *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void api_err(struct api_resp *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jsonw_release(&r->w);
	r->status = status;
	jsonw_obj_begin(&r->w);
	jsonw_key(&r->w, "error");
	jsonw_str(&r->w, msg);
	jsonw_obj_end(&r->w);
}

/* A backend's -errno as a status (api.h, the ops contract). */
static int api_errno_status(int r)
{
	switch (r) {
	case -EINVAL: case -ENOENT: case -EACCES: case -ENOTDIR: case -EISDIR:
	case -E2BIG: case -ENAMETOOLONG: case -EEXIST:
		return 400;
	case -EBUSY: case -EALREADY:
		return 409;
	default:
		return 500;
	}
}

static void api_backend_err(struct api_resp *r, const char *op, int rc, const char *msg)
{
	api_err(r, api_errno_status(rc), "%s: %s", op, msg[0] ? msg : strerror(-rc));
}

/* ---- strict body validation ---- */

/* One request's JSON and where the message for a bad field goes. */
struct api_body {
	struct json_doc *doc;
	const struct json_node *root; /* an object, or NULL: no body */
	struct api_resp *resp;
};

/* Parses an optional (required == false) or required JSON object body. */
static int api_body_parse(struct api_body *b, const char *body, size_t len, bool required)
{
	static const struct json_limits lim = {
		.max_bytes = HTTP_MAX_BODY,
		.max_depth = API_JSON_MAX_DEPTH,
		.max_nodes = API_JSON_MAX_NODES,
	};
	char err[192];
	int r;

	b->doc = NULL;
	b->root = NULL;
	if (len == 0) {
		if (required) {
			api_err(b->resp, 400, "a JSON object body is required");
			return -EINVAL;
		}
		return 0;
	}
	r = json_parse(body, len, &lim, &b->doc, err, sizeof(err));
	if (r) {
		api_err(b->resp, 400, "invalid JSON: %s", err);
		return -EINVAL;
	}
	b->root = json_root(b->doc);
	if (b->root->type != JSON_OBJECT) {
		api_err(b->resp, 400, "the body must be a JSON object");
		json_free(b->doc);
		b->doc = NULL;
		b->root = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Every member of obj is one of names ("a\0b\0", ending in an empty
 * name), and none twice. */
static int api_fields(struct api_body *b, const struct json_node *obj, const char *prefix,
		      const char *names)
{
	const struct json_node *c, *d;

	if (!obj)
		return 0;
	for (c = json_first(b->doc, obj); c; c = json_next(b->doc, c)) {
		bool known = false;

		for (const char *n = names; *n; n += strlen(n) + 1)
			if (!strcmp(c->key, n))
				known = true;
		if (!known) {
			api_err(b->resp, 400, "unknown field \"%s%.64s\"", prefix, c->key);
			return -EINVAL;
		}
		for (d = json_first(b->doc, obj); d != c; d = json_next(b->doc, d)) {
			if (!strcmp(c->key, d->key)) {
				api_err(b->resp, 400, "field \"%s%s\" appears twice", prefix, c->key);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The member key of obj, or NULL (absent, or obj NULL); api_fields ran first. */
static const struct json_node *api_member(struct api_body *b, const struct json_node *obj,
					  const char *key)
{
	const struct json_node *v;

	if (!obj || json_get(b->doc, obj, key, &v))
		return NULL;
	return v;
}

static int api_missing(struct api_body *b, const char *prefix, const char *key)
{
	api_err(b->resp, 400, "field \"%s%s\" is required", prefix, key);
	return -EINVAL;
}

/* An integer member in [min, max]; absent: *out untouched, 0 (or an
 * error when required). */
static int api_uint(struct api_body *b, const struct json_node *obj, const char *prefix,
		    const char *key, bool required, uint64_t min, uint64_t max, uint64_t *out)
{
	const struct json_node *v = api_member(b, obj, key);
	uint64_t val = 0;
	bool neg, big = false;

	if (!v)
		return required ? api_missing(b, prefix, key) : 0;
	if (v->type != JSON_NUMBER || strpbrk(v->str, ".eE")) {
		api_err(b->resp, 400, "field \"%s%s\" must be an integer", prefix, key);
		return -EINVAL;
	}
	neg = v->str[0] == '-';
	for (const char *p = v->str + neg; *p; p++) {
		if (val > (UINT64_MAX - 9) / 10)
			big = true;
		else
			val = val * 10 + (uint64_t)(*p - '0');
	}
	if ((neg && val != 0) || big || val < min || val > max) {
		api_err(b->resp, 400, "field \"%s%s\" must be from %" PRIu64 " to %" PRIu64, prefix, key,
			min, max);
		return -EINVAL;
	}
	*out = val;
	return 0;
}

static int api_bool(struct api_body *b, const struct json_node *obj, const char *prefix,
		    const char *key, bool *out)
{
	const struct json_node *v = api_member(b, obj, key);

	if (!v)
		return 0;
	if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
		api_err(b->resp, 400, "field \"%s%s\" must be a boolean", prefix, key);
		return -EINVAL;
	}
	*out = v->type == JSON_TRUE;
	return 0;
}

/* A string member of 1..max bytes (no NUL: the reader refuses \u0000). */
static int api_str(struct api_body *b, const struct json_node *obj, const char *prefix,
		   const char *key, bool required, size_t max, const char **out)
{
	const struct json_node *v = api_member(b, obj, key);

	if (!v)
		return required ? api_missing(b, prefix, key) : 0;
	if (v->type != JSON_STRING) {
		api_err(b->resp, 400, "field \"%s%s\" must be a string", prefix, key);
		return -EINVAL;
	}
	if (v->len == 0 || v->len > max) {
		api_err(b->resp, 400, "field \"%s%s\" must be 1 to %zu bytes long", prefix, key, max);
		return -EINVAL;
	}
	*out = v->str;
	return 0;
}

/* An absolute host or guest path. */
static int api_path(struct api_body *b, const struct json_node *obj, const char *prefix,
		    const char *key, bool required, const char **out)
{
	const char *s = NULL;
	int r = api_str(b, obj, prefix, key, required, API_PATH_MAX - 1, &s);

	if (r || !s)
		return r;
	if (s[0] != '/') {
		api_err(b->resp, 400, "field \"%s%s\" must be an absolute path", prefix, key);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

static int api_rate_limit(struct api_body *b, const struct json_node *obj, const char *key,
			  struct minivm_rate_limit *out)
{
	static const char names[] = "bytes_per_s\0bytes_burst\0bytes_refill_ms\0ops_per_s\0ops_burst\0ops_refill_ms\0";
	const struct json_node *v = api_member(b, obj, key);
	struct minivm_rate_limit l = { 0 };
	uint64_t refill_b = 0, refill_o = 0;
	char prefix[40];

	if (!v)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s.", key);
	if (v->type != JSON_OBJECT) {
		api_err(b->resp, 400, "field \"%s\" must be an object", key);
		return -EINVAL;
	}
	if (api_fields(b, v, prefix, names) ||
	    api_uint(b, v, prefix, "bytes_per_s", false, 0, API_MAX_U53, &l.bytes_per_s) ||
	    api_uint(b, v, prefix, "bytes_burst", false, 0, API_MAX_U53, &l.bytes_burst) ||
	    api_uint(b, v, prefix, "bytes_refill_ms", false, 0, 3600000, &refill_b) ||
	    api_uint(b, v, prefix, "ops_per_s", false, 0, API_MAX_U53, &l.ops_per_s) ||
	    api_uint(b, v, prefix, "ops_burst", false, 0, API_MAX_U53, &l.ops_burst) ||
	    api_uint(b, v, prefix, "ops_refill_ms", false, 0, 3600000, &refill_o))
		return -EINVAL;
	l.bytes_refill_ms = (uint32_t)refill_b;
	l.ops_refill_ms = (uint32_t)refill_o;
	*out = l;
	return 0;
}

/* A dotted quad without leading zeros; *prefix_out (NULL: none allowed)
 * gets "/N" (required when prefix_out is given). */
static bool api_parse_ip(const char *s, uint32_t *ip, uint8_t *prefix_out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned int oct = 0, n = 0;

		while (s[n] >= '0' && s[n] <= '9' && n < 4)
			oct = oct * 10 + (unsigned int)(s[n++] - '0');
		if (n == 0 || n > 3 || oct > 255 || (n > 1 && s[0] == '0'))
			return false;
		s += n;
		v = v << 8 | oct;
		if (i < 3 && *s++ != '.')
			return false;
	}
	if (prefix_out) {
		unsigned int p = 0, n = 0;

		if (*s++ != '/')
			return false;
		while (s[n] >= '0' && s[n] <= '9' && n < 3)
			p = p * 10 + (unsigned int)(s[n++] - '0');
		if (n == 0 || (n > 1 && s[0] == '0') || p < 1 || p > 32)
			return false;
		s += n;
		*prefix_out = (uint8_t)p;
	}
	if (*s)
		return false;
	*ip = v;
	return true;
}

static bool api_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = *s++;

			if (c >= '0' && c <= '9')
				v = v << 4 | (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v << 4 | (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v << 4 | (unsigned int)(c - 'A' + 10);
			else
				return false;
		}
		mac[i] = (uint8_t)v;
		if (i < 5 && *s++ != ':')
			return false;
	}
	return *s == '\0';
}

/* ---- the configuration endpoints (state configuring, under op_lock) ---- */

static int api_put_machine(struct api_body *b, struct api_config *c)
{
	static const char names[] = "vcpus\0mem_mib\0vm_timeout_ms\0snapshot_dir\0";
	uint64_t vcpus = c->vcpus, mem = c->mem_mib, tmo = c->vm_timeout_ms;
	const char *snap = NULL;

	if (api_fields(b, b->root, "", names) ||
	    api_uint(b, b->root, "", "vcpus", false, 1, MINIVM_MAX_CPUS, &vcpus) ||
	    api_uint(b, b->root, "", "mem_mib", false, API_MIN_MEM_MIB, API_MAX_MEM_MIB, &mem) ||
	    api_uint(b, b->root, "", "vm_timeout_ms", false, 0, API_MAX_TIMEOUT_S * 1000, &tmo) ||
	    api_path(b, b->root, "", "snapshot_dir", false, &snap))
		return -EINVAL;
	c->vcpus = (unsigned int)vcpus;
	c->mem_mib = mem;
	c->vm_timeout_ms = tmo;
	c->vcpus_set |= api_member(b, b->root, "vcpus") != NULL;
	c->mem_set |= api_member(b, b->root, "mem_mib") != NULL;
	if (snap) /* absent: unchanged, as the other fields */
		snprintf(c->snapshot_dir, sizeof(c->snapshot_dir), "%s", snap);
	c->machine_set = true;
	return 0;
}

static int api_put_boot(struct api_body *b, struct api_config *c)
{
	static const char names[] = "kernel\0cmdline\0";
	const char *kernel = NULL, *cmdline = "";

	if (api_fields(b, b->root, "", names) ||
	    api_path(b, b->root, "", "kernel", true, &kernel))
		return -EINVAL;
	if (api_member(b, b->root, "cmdline")) {
		const struct json_node *v = api_member(b, b->root, "cmdline");

		/* An empty cmdline is fine: nothing to append. */
		if (v->type != JSON_STRING) {
			api_err(b->resp, 400, "field \"cmdline\" must be a string");
			return -EINVAL;
		}
		if (v->len >= API_CMDLINE_MAX) {
			api_err(b->resp, 400, "field \"cmdline\" must be under %u bytes", API_CMDLINE_MAX);
			return -EINVAL;
		}
		cmdline = v->str;
	}
	snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
	snprintf(c->cmdline, sizeof(c->cmdline), "%s", cmdline);
	c->boot_set = true;
	return 0;
}

static int api_put_rootfs(struct api_body *b, struct api_config *c)
{
	static const char names[] = "path\0read_only\0rate_limit\0";
	const char *path = NULL;
	bool ro = true;
	struct minivm_rate_limit l = { 0 };

	if (api_fields(b, b->root, "", names) || api_path(b, b->root, "", "path", true, &path) ||
	    api_bool(b, b->root, "", "read_only", &ro) || api_rate_limit(b, b->root, "rate_limit", &l))
		return -EINVAL;
	snprintf(c->rootfs, sizeof(c->rootfs), "%s", path);
	c->rootfs_read_only = ro;
	c->rootfs_limit = l;
	c->rootfs_set = true;
	return 0;
}

static int api_put_disk(struct api_body *b, struct api_config *c, const char *id)
{
	static const char names[] = "path\0read_only\0rate_limit\0";
	struct api_disk d = { 0 };
	const char *path = NULL;
	unsigned int i;

	d.read_only = false;
	if (api_fields(b, b->root, "", names) || api_path(b, b->root, "", "path", true, &path) ||
	    api_bool(b, b->root, "", "read_only", &d.read_only) ||
	    api_rate_limit(b, b->root, "rate_limit", &d.limit))
		return -EINVAL;
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.path, sizeof(d.path), "%s", path);
	for (i = 0; i < c->nr_disks; i++)
		if (!strcmp(c->disks[i].id, id))
			break;
	if (i == c->nr_disks) {
		if (c->nr_disks >= MINIVM_MAX_DISKS) {
			api_err(b->resp, 400, "at most %d disks", MINIVM_MAX_DISKS);
			return -EINVAL;
		}
		c->nr_disks++;
	}
	c->disks[i] = d;
	return 0;
}

static int api_put_vsock(struct api_body *b, struct api_config *c)
{
	static const char names[] = "guest_cid\0uds_path\0";
	uint64_t cid = MINIVM_DEFAULT_GUEST_CID;
	const char *uds = "";

	if (api_fields(b, b->root, "", names) ||
	    api_uint(b, b->root, "", "guest_cid", false, 3, UINT32_MAX - 1, &cid) ||
	    api_path(b, b->root, "", "uds_path", false, &uds))
		return -EINVAL;
	/* sun_path holds 108 bytes; guest connections add "_PORT". */
	if (strlen(uds) > 90) {
		api_err(b->resp, 400, "field \"uds_path\" must be at most 90 bytes (a socket path)");
		return -EINVAL;
	}
	c->guest_cid = (uint32_t)cid;
	c->cid_set = api_member(b, b->root, "guest_cid") != NULL;
	snprintf(c->vsock_uds, sizeof(c->vsock_uds), "%s", uds);
	c->vsock_set = true;
	return 0;
}

static int api_put_net(struct api_body *b, struct api_config *c)
{
	static const char names[] = "tap\0mac\0ip\0gw\0dns\0rx_limit\0tx_limit\0";
	const char *tap = NULL, *mac = NULL, *ip = NULL, *gw = NULL, *dns = NULL;
	uint8_t m[6] = { 0 }, prefix = 0;
	uint32_t ipv = 0, gwv = 0, dnsv = 0, mask;
	struct minivm_rate_limit rx = { 0 }, tx = { 0 };

	if (api_fields(b, b->root, "", names) ||
	    api_str(b, b->root, "", "tap", true, API_TAP_MAX, &tap) ||
	    api_str(b, b->root, "", "mac", false, 17, &mac) ||
	    api_str(b, b->root, "", "ip", true, 18, &ip) ||
	    api_str(b, b->root, "", "gw", true, 15, &gw) ||
	    api_str(b, b->root, "", "dns", false, 15, &dns) ||
	    api_rate_limit(b, b->root, "rx_limit", &rx) || api_rate_limit(b, b->root, "tx_limit", &tx))
		return -EINVAL;
	if (strpbrk(tap, "/ \t\n:") || !strcmp(tap, ".") || !strcmp(tap, "..")) {
		api_err(b->resp, 400, "field \"tap\" is not a valid interface name");
		return -EINVAL;
	}
	if (mac && (!api_parse_mac(mac, m) || (m[0] & 1))) {
		api_err(b->resp, 400, "field \"mac\" must be a unicast MAC as aa:bb:cc:dd:ee:ff");
		return -EINVAL;
	}
	if (!api_parse_ip(ip, &ipv, &prefix)) {
		api_err(b->resp, 400, "field \"ip\" must be an IPv4 address with its prefix, A.B.C.D/N");
		return -EINVAL;
	}
	if (!api_parse_ip(gw, &gwv, NULL)) {
		api_err(b->resp, 400, "field \"gw\" must be an IPv4 address A.B.C.D");
		return -EINVAL;
	}
	if (dns && !api_parse_ip(dns, &dnsv, NULL)) {
		api_err(b->resp, 400, "field \"dns\" must be an IPv4 address A.B.C.D");
		return -EINVAL;
	}
	mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
	if ((ipv & mask) != (gwv & mask) || ipv == gwv) {
		api_err(b->resp, 400, "field \"gw\" must be another address in the subnet of \"ip\"");
		return -EINVAL;
	}
	snprintf(c->tap, sizeof(c->tap), "%s", tap);
	memcpy(c->mac, m, sizeof(m));
	c->ip = ipv;
	c->prefix = prefix;
	c->gw = gwv;
	c->dns = dnsv;
	c->rx_limit = rx;
	c->tx_limit = tx;
	c->net_set = true;
	return 0;
}

static int api_put_policy(struct api_body *b, struct api_config *c)
{
	static const char names[] = "allow\0allow_dns\0";
	const struct json_node *allow = api_member(b, b->root, "allow"), *e;
	bool dns = false;
	unsigned int n = 0;

	if (api_fields(b, b->root, "", names) || api_bool(b, b->root, "", "allow_dns", &dns))
		return -EINVAL;
	if (allow && allow->type != JSON_ARRAY) {
		api_err(b->resp, 400, "field \"allow\" must be an array of rules");
		return -EINVAL;
	}
	if (allow && allow->count > MINIVM_MAX_NET_RULES) {
		api_err(b->resp, 400, "field \"allow\" has more than %d rules", MINIVM_MAX_NET_RULES);
		return -EINVAL;
	}
	for (e = allow ? json_first(b->doc, allow) : NULL; e; e = json_next(b->doc, e), n++) {
		struct net_rule rule;
		char err[128];

		if (e->type != JSON_STRING) {
			api_err(b->resp, 400, "field \"allow[%u]\" must be a string", n);
			return -EINVAL;
		}
		if (net_rule_parse(e->str, &rule, err, sizeof(err))) {
			api_err(b->resp, 400, "field \"allow[%u]\": %s", n, err);
			return -EINVAL;
		}
		snprintf(c->allow[n], sizeof(c->allow[n]), "%s", e->str);
	}
	c->nr_allow = n;
	c->allow_dns = dns;
	c->policy_set = true;
	return 0;
}

static int api_put_restore(struct api_body *b, struct api_config *c)
{
	static const char names[] = "dir\0";
	const char *dir = NULL;

	if (api_fields(b, b->root, "", names) || api_path(b, b->root, "", "dir", true, &dir))
		return -EINVAL;
	snprintf(c->restore_dir, sizeof(c->restore_dir), "%s", dir);
	return 0;
}

/* What a restore_dir conflicts with in c (the snapshot decides it), or NULL. */
static const char *api_restore_conflict(const struct api_config *c)
{
	if (!c->restore_dir[0])
		return NULL;
	if (c->boot_set)
		return "PUT /boot (the snapshot has the kernel)";
	if (c->rootfs_set || c->nr_disks)
		return "PUT /rootfs and /disks (the snapshot has the disks)";
	if (c->vcpus_set || c->mem_set)
		return "PUT /machine's vcpus and mem_mib (the snapshot has them)";
	if (c->snapshot_dir[0])
		return "PUT /machine's snapshot_dir (a snapshot is taken of a booted VM)";
	if (c->cid_set)
		return "PUT /vsock's guest_cid (the snapshot has it)";
	if (c->net_set) /* vm.c refuses it too, but only in the VMM at start */
		return "PUT /net (snapshots are of VMs without a NIC)";
	return NULL;
}

/* ---- events ---- */

static uint64_t api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char api_event_names[][16] = {
	[API_EV_READY] = "ready",
	[API_EV_COMMAND_EXITED] = "command_exited",
	[API_EV_POLICY_DENIED] = "policy_denied",
	[API_EV_GUEST_ERROR] = "guest_error",
	[API_EV_VM_EXIT] = "vm_exit",
};

/* Encodes ev as one NDJSON line into slot (lock held). */
static int api_event_encode(const struct api_event *ev, uint64_t seq, struct api_event_slot *slot)
{
	struct jsonw w;
	char *s;
	size_t n;
	int r;

	jsonw_init(&w, API_EVENT_LINE - 2);
	jsonw_obj_begin(&w);
	jsonw_key(&w, "type");
	jsonw_str(&w, api_event_names[ev->type]);
	jsonw_key(&w, "seq");
	jsonw_u64(&w, seq);
	jsonw_key(&w, "time_ms");
	jsonw_u64(&w, api_now_ms());
	switch (ev->type) {
	case API_EV_READY:
		break;
	case API_EV_COMMAND_EXITED:
		jsonw_key(&w, "id");
		jsonw_u64(&w, ev->command_id);
		jsonw_key(&w, "status");
		jsonw_i64(&w, ev->status);
		break;
	case API_EV_POLICY_DENIED:
		jsonw_key(&w, "dst");
		jsonw_strn(&w, ev->dst, strnlen(ev->dst, sizeof(ev->dst)));
		jsonw_key(&w, "port");
		jsonw_u64(&w, ev->port);
		jsonw_key(&w, "proto");
		jsonw_strn(&w, ev->proto, strnlen(ev->proto, sizeof(ev->proto)));
		jsonw_key(&w, "reason");
		jsonw_strn(&w, ev->reason, strnlen(ev->reason, sizeof(ev->reason)));
		break;
	case API_EV_GUEST_ERROR:
		break;
	case API_EV_VM_EXIT:
		jsonw_key(&w, "outcome");
		jsonw_str(&w, api_outcome_name(ev->outcome));
		jsonw_key(&w, "status");
		jsonw_i64(&w, ev->status);
		break;
	}
	if (ev->message[0] || ev->type == API_EV_GUEST_ERROR) {
		jsonw_key(&w, "message");
		jsonw_strn(&w, ev->message, strnlen(ev->message, sizeof(ev->message)));
	}
	jsonw_obj_end(&w);
	r = jsonw_finish(&w, &s, &n);
	if (r)
		return r;
	memcpy(slot->line, s, n);
	slot->line[n] = '\n';
	slot->len = n + 1;
	slot->seq = seq;
	free(s);
	return 0;
}

int api_post_event(struct api *api, const struct api_event *ev)
{
	struct api_event_slot *slot;
	int r;

	if ((unsigned int)ev->type > API_EV_VM_EXIT)
		return -EINVAL;
	pthread_mutex_lock(&api->lock);
	slot = &api->ring[api->next_seq % API_EVENT_RING];
	r = api_event_encode(ev, api->next_seq, slot);
	if (r) {
		pthread_mutex_unlock(&api->lock);
		return r;
	}
	api->next_seq++;
	if (ev->type == API_EV_READY && api->state == API_STARTING)
		api->state = API_RUNNING;
	if (ev->type == API_EV_VM_EXIT) {
		api->state = API_STOPPED;
		api->exited = true;
		api->exit_outcome = ev->outcome;
		api->exit_status = ev->status;
	}
	pthread_cond_broadcast(&api->cond);
	pthread_mutex_unlock(&api->lock);
	return 0;
}

enum api_state api_state(struct api *api)
{
	enum api_state s;

	pthread_mutex_lock(&api->lock);
	s = api->state;
	pthread_mutex_unlock(&api->lock);
	return s;
}

/* ---- streams ---- */

/* Writes all of buf; waits for POLLOUT at most API_IO_TIMEOUT_MS at a time. */
static int api_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int pr;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			pr = poll(&pfd, 1, API_IO_TIMEOUT_MS);
			if (pr < 0 && errno != EINTR)
				return -errno;
			if (pr == 0)
				return -ETIMEDOUT;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the stream's head once. */
static int api_stream_start(struct api_conn *c)
{
	char head[160];
	int n;

	if (c->started)
		return c->broken ? -EPIPE : 0;
	c->started = true;
	if (!c->http)
		return 0;
	n = http_format_stream_head(head, sizeof(head), "application/x-ndjson", c->chunked);
	if (n < 0 || api_write_all(c->fd, head, (size_t)n)) {
		c->broken = true;
		return -EPIPE;
	}
	return 0;
}

/* Sends one NDJSON line (with its newline) on a stream, starting it
 * first; a chunk goes out in one write. */
static int api_stream_line(struct api_conn *c, const char *line, size_t len)
{
	char *chunk;
	int n, r;

	if (api_stream_start(c) || c->broken)
		return -EPIPE;
	if (c->chunked) {
		chunk = malloc(len + 24);
		if (!chunk)
			return -ENOMEM;
		n = http_format_chunk_head(chunk, 20, len);
		if (n < 0) {
			free(chunk);
			return n;
		}
		memcpy(chunk + n, line, len);
		memcpy(chunk + (size_t)n + len, "\r\n", 2);
		r = api_write_all(c->fd, chunk, (size_t)n + len + 2);
		free(chunk);
	} else {
		r = api_write_all(c->fd, line, len);
	}
	if (r) {
		c->broken = true;
		return -EPIPE;
	}
	return 0;
}

static int api_stream_json(struct api_conn *c, struct jsonw *w)
{
	char *s;
	size_t n;
	int r = jsonw_finish(w, &s, &n);

	if (r)
		return r;
	s[n] = '\n'; /* over the NUL: the length stays n + 1 */
	r = api_stream_line(c, s, n + 1);
	free(s);
	return r;
}

static void api_stream_end(struct api_conn *c)
{
	if (c->chunked && c->started && !c->broken &&
	    api_write_all(c->fd, HTTP_CHUNK_END, strlen(HTTP_CHUNK_END)))
		c->broken = true;
}

/* Whether the client of a stream has closed its side (or sent anything). */
static bool api_client_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };

	if (poll(&pfd, 1, 0) <= 0)
		return false;
	return (pfd.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ---- handlers ---- */

struct api_req {
	struct api *api;
	const char *method;
	const char *path;
	const char *body;
	size_t len;
	struct api_conn *conn;
	struct api_resp *resp;
	const char *disk_id; /* PUT /disks/{id} */
	const char *arg;     /* POST /snapshot: the directory */
};

static void api_state_err(struct api_resp *r, const char *what, enum api_state s)
{
	api_err(r, 409, "%s is not allowed in state %s", what, api_state_name(s));
}

static void api_ok_state(struct api *api, struct api_resp *r)
{
	enum api_state s = api_state(api);

	r->status = 200;
	jsonw_obj_begin(&r->w);
	jsonw_key(&r->w, "state");
	jsonw_str(&r->w, api_state_name(s));
	jsonw_obj_end(&r->w);
}

typedef int (*api_put_fn)(struct api_body *b, struct api_config *c);

static void api_h_put(struct api_req *q, enum api_section sec, api_put_fn fn)
{
	struct api *api = q->api;
	struct api_body b = { .resp = q->resp };
	char err[256] = "";
	const char *conflict;
	enum api_state s;
	int r;

	if (api_body_parse(&b, q->body, q->len, true))
		return;
	pthread_mutex_lock(&api->op_lock);
	s = api_state(api);
	if (api_transitions[s][API_CALL_CONFIGURE] == API_NR_STATES) {
		api_state_err(q->resp, "configuration", s);
		goto out;
	}
	memcpy(api->scratch, &api->cfg, sizeof(api->cfg));
	r = sec == API_SEC_DISK ? api_put_disk(&b, api->scratch, q->disk_id) : fn(&b, api->scratch);
	if (r)
		goto out;
	conflict = api_restore_conflict(api->scratch);
	if (conflict) {
		api_err(q->resp, 409, "PUT /restore conflicts with %s", conflict);
		goto out;
	}
	if (api->ops->configure) {
		r = api->ops->configure(api->ctx, api->scratch, sec, err, sizeof(err));
		if (r) {
			api_backend_err(q->resp, "configure", r, err);
			goto out;
		}
	}
	pthread_mutex_lock(&api->lock);
	memcpy(&api->cfg, api->scratch, sizeof(api->cfg));
	pthread_mutex_unlock(&api->lock);
	q->resp->status = 204;
out:
	pthread_mutex_unlock(&api->op_lock);
	json_free(b.doc);
}


static void api_w_ip(struct jsonw *w, const char *key, uint32_t ip, int prefix)
{
	char s[32];

	if (prefix >= 0)
		snprintf(s, sizeof(s), "%u.%u.%u.%u/%d", ip >> 24, ip >> 16 & 255, ip >> 8 & 255,
			 ip & 255, prefix);
	else
		snprintf(s, sizeof(s), "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
	jsonw_key(w, key);
	jsonw_str(w, s);
}

static void api_w_limit(struct jsonw *w, const char *key, const struct minivm_rate_limit *l)
{
	jsonw_key(w, key);
	jsonw_obj_begin(w);
	jsonw_key(w, "bytes_per_s");
	jsonw_u64(w, l->bytes_per_s);
	jsonw_key(w, "bytes_burst");
	jsonw_u64(w, l->bytes_burst);
	jsonw_key(w, "bytes_refill_ms");
	jsonw_u64(w, l->bytes_refill_ms);
	jsonw_key(w, "ops_per_s");
	jsonw_u64(w, l->ops_per_s);
	jsonw_key(w, "ops_burst");
	jsonw_u64(w, l->ops_burst);
	jsonw_key(w, "ops_refill_ms");
	jsonw_u64(w, l->ops_refill_ms);
	jsonw_obj_end(w);
}

/* GET /config: what the PUTs made, in their own shapes. */
static void api_h_config(struct api_req *q)
{
	struct api *api = q->api;
	struct jsonw *w = &q->resp->w;
	const struct api_config *c = &api->cfg;

	pthread_mutex_lock(&api->lock);
	q->resp->status = 200;
	jsonw_obj_begin(w);
	jsonw_key(w, "machine");
	jsonw_obj_begin(w);
	jsonw_key(w, "vcpus");
	jsonw_u64(w, c->vcpus);
	jsonw_key(w, "mem_mib");
	jsonw_u64(w, c->mem_mib);
	jsonw_key(w, "vm_timeout_ms");
	jsonw_u64(w, c->vm_timeout_ms);
	if (c->snapshot_dir[0]) {
		jsonw_key(w, "snapshot_dir");
		jsonw_str(w, c->snapshot_dir);
	}
	jsonw_obj_end(w);
	if (c->boot_set) {
		jsonw_key(w, "boot");
		jsonw_obj_begin(w);
		jsonw_key(w, "kernel");
		jsonw_str(w, c->kernel);
		jsonw_key(w, "cmdline");
		jsonw_str(w, c->cmdline);
		jsonw_obj_end(w);
	}
	if (c->rootfs_set) {
		jsonw_key(w, "rootfs");
		jsonw_obj_begin(w);
		jsonw_key(w, "path");
		jsonw_str(w, c->rootfs);
		jsonw_key(w, "read_only");
		jsonw_bool(w, c->rootfs_read_only);
		api_w_limit(w, "rate_limit", &c->rootfs_limit);
		jsonw_obj_end(w);
	}
	jsonw_key(w, "disks");
	jsonw_obj_begin(w);
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		jsonw_key(w, c->disks[i].id);
		jsonw_obj_begin(w);
		jsonw_key(w, "path");
		jsonw_str(w, c->disks[i].path);
		jsonw_key(w, "read_only");
		jsonw_bool(w, c->disks[i].read_only);
		api_w_limit(w, "rate_limit", &c->disks[i].limit);
		jsonw_obj_end(w);
	}
	jsonw_obj_end(w);
	if (c->vsock_set) {
		jsonw_key(w, "vsock");
		jsonw_obj_begin(w);
		jsonw_key(w, "guest_cid");
		jsonw_u64(w, c->guest_cid);
		if (c->vsock_uds[0]) {
			jsonw_key(w, "uds_path");
			jsonw_str(w, c->vsock_uds);
		}
		jsonw_obj_end(w);
	}
	if (c->net_set) {
		char mac[18];

		jsonw_key(w, "net");
		jsonw_obj_begin(w);
		jsonw_key(w, "tap");
		jsonw_str(w, c->tap);
		if (c->mac[0] | c->mac[1] | c->mac[2] | c->mac[3] | c->mac[4] | c->mac[5]) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1],
				 c->mac[2], c->mac[3], c->mac[4], c->mac[5]);
			jsonw_key(w, "mac");
			jsonw_str(w, mac);
		}
		api_w_ip(w, "ip", c->ip, c->prefix);
		api_w_ip(w, "gw", c->gw, -1);
		if (c->dns)
			api_w_ip(w, "dns", c->dns, -1);
		api_w_limit(w, "rx_limit", &c->rx_limit);
		api_w_limit(w, "tx_limit", &c->tx_limit);
		jsonw_obj_end(w);
	}
	if (c->restore_dir[0]) {
		jsonw_key(w, "restore");
		jsonw_obj_begin(w);
		jsonw_key(w, "dir");
		jsonw_str(w, c->restore_dir);
		jsonw_obj_end(w);
	}
	if (c->policy_set) {
		jsonw_key(w, "policy");
		jsonw_obj_begin(w);
		jsonw_key(w, "allow");
		jsonw_arr_begin(w);
		for (unsigned int i = 0; i < c->nr_allow; i++)
			jsonw_str(w, c->allow[i]);
		jsonw_arr_end(w);
		jsonw_key(w, "allow_dns");
		jsonw_bool(w, c->allow_dns);
		jsonw_obj_end(w);
	}
	jsonw_obj_end(w);
	pthread_mutex_unlock(&api->lock);
}

/* A lifecycle op in the states the table allows; the transition applies
 * only if no event moved the state meanwhile. */
static int api_lifecycle(struct api_req *q, enum api_call call, const char *what,
			 int (*op)(struct api_req *q, char *err, size_t errlen))
{
	struct api *api = q->api;
	char err[256] = "";
	enum api_state s, next;
	int r;

	pthread_mutex_lock(&api->op_lock);
	s = api_state(api);
	next = api_transitions[s][call];
	if (next == API_NR_STATES) {
		api_state_err(q->resp, what, s);
		pthread_mutex_unlock(&api->op_lock);
		return -EBUSY;
	}
	if (call == API_CALL_START) {
		/* The backend may post READY before start() returns: be in
		 * starting already, and go back if it fails. */
		pthread_mutex_lock(&api->lock);
		api->state = API_STARTING;
		pthread_mutex_unlock(&api->lock);
		s = API_STARTING;
	}
	r = op(q, err, sizeof(err));
	if (r) {
		api_backend_err(q->resp, what, r, err);
		pthread_mutex_lock(&api->lock);
		if (call == API_CALL_START && api->state == API_STARTING)
			api->state = API_CONFIGURING;
		pthread_mutex_unlock(&api->lock);
		pthread_mutex_unlock(&api->op_lock);
		return r;
	}
	pthread_mutex_lock(&api->lock);
	if (api->state == s) {
		api->state = next;
		pthread_cond_broadcast(&api->cond);
	}
	pthread_mutex_unlock(&api->lock);
	pthread_mutex_unlock(&api->op_lock);
	return 0;
}

static int api_op_start(struct api_req *q, char *err, size_t errlen)
{
	const struct api_config *c = &q->api->cfg;
	const char *conflict;

	if (!c->boot_set && !c->restore_dir[0]) {
		snprintf(err, errlen, "no kernel: PUT /boot (or PUT /restore) first");
		return -EINVAL;
	}
	conflict = api_restore_conflict(c);
	if (conflict) { /* the PUTs refuse it: never reached */
		snprintf(err, errlen, "PUT /restore conflicts with %s", conflict);
		return -EINVAL;
	}
	return q->api->ops->start(q->api->ctx, &q->api->cfg, err, errlen);
}

static void api_h_start(struct api_req *q)
{
	static const char names[] = "wait_ready_ms\0";
	struct api *api = q->api;
	struct api_body b = { .resp = q->resp };
	uint64_t wait_ms = 0;

	if (api_body_parse(&b, q->body, q->len, false) || api_fields(&b, b.root, "", names) ||
	    api_uint(&b, b.root, "", "wait_ready_ms", false, 0, API_MAX_WAIT_MS, &wait_ms))
		goto out;
	if (api_lifecycle(q, API_CALL_START, "start", api_op_start))
		goto out;
	if (wait_ms) {
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(wait_ms / 1000);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&api->lock);
		while (api->state == API_STARTING && !api->shutdown)
			if (pthread_cond_timedwait(&api->cond, &api->lock, &until) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&api->lock);
	}
	api_ok_state(api, q->resp);
out:
	json_free(b.doc);
}

static int api_op_pause(struct api_req *q, char *err, size_t errlen)
{
	return q->api->ops->pause(q->api->ctx, err, errlen);
}

static int api_op_resume(struct api_req *q, char *err, size_t errlen)
{
	return q->api->ops->resume(q->api->ctx, err, errlen);
}

static int api_op_stop(struct api_req *q, char *err, size_t errlen)
{
	return q->api->ops->stop(q->api->ctx, err, errlen);
}

/* POST /pause, /resume, /stop: an empty body or {}. */
static void api_h_simple(struct api_req *q, enum api_call call, const char *what,
			 int (*op)(struct api_req *q, char *err, size_t errlen))
{
	static const char names[] = "";
	struct api_body b = { .resp = q->resp };

	if (api_body_parse(&b, q->body, q->len, false) || api_fields(&b, b.root, "", names))
		goto out;
	if (!api_lifecycle(q, call, what, op))
		api_ok_state(q->api, q->resp);
out:
	json_free(b.doc);
}


static int api_op_snapshot(struct api_req *q, char *err, size_t errlen)
{
	return q->api->ops->snapshot(q->api->ctx, q->arg, err, errlen);
}

static void api_h_snapshot(struct api_req *q)
{
	static const char names[] = "dir\0";
	struct api_body b = { .resp = q->resp };
	const char *dir = NULL;

	if (api_body_parse(&b, q->body, q->len, true) || api_fields(&b, b.root, "", names) ||
	    api_path(&b, b.root, "", "dir", true, &dir))
		goto out;
	q->arg = dir;
	if (!api_lifecycle(q, API_CALL_SNAPSHOT, "snapshot", api_op_snapshot)) {
		q->resp->status = 200;
		jsonw_obj_begin(&q->resp->w);
		jsonw_key(&q->resp->w, "state");
		jsonw_str(&q->resp->w, api_state_name(api_state(q->api)));
		jsonw_key(&q->resp->w, "dir");
		jsonw_str(&q->resp->w, dir);
		jsonw_obj_end(&q->resp->w);
	}
out:
	json_free(b.doc);
}

static void api_h_status(struct api_req *q)
{
	struct api *api = q->api;
	struct jsonw *w = &q->resp->w;

	pthread_mutex_lock(&api->lock);
	q->resp->status = 200;
	jsonw_obj_begin(w);
	jsonw_key(w, "state");
	jsonw_str(w, api_state_name(api->state));
	jsonw_key(w, "commands_running");
	jsonw_u64(w, api->commands_running);
	jsonw_key(w, "commands_total");
	jsonw_u64(w, api->commands_total);
	jsonw_key(w, "events");
	jsonw_u64(w, api->next_seq);
	if (api->exited) {
		jsonw_key(w, "vm_exit");
		jsonw_obj_begin(w);
		jsonw_key(w, "outcome");
		jsonw_str(w, api_outcome_name(api->exit_outcome));
		jsonw_key(w, "status");
		jsonw_i64(w, api->exit_status);
		jsonw_obj_end(w);
	}
	jsonw_obj_end(w);
	pthread_mutex_unlock(&api->lock);
}

/* A counter as "key": value. */
static void api_json_count(struct jsonw *w, const char *key, uint64_t v)
{
	jsonw_key(w, key);
	jsonw_u64(w, v);
}

/* GET /metrics' "exits": {name: count}. */
static void api_metrics_exits(struct jsonw *w, const struct api_metrics *m)
{
	jsonw_key(w, "exits");
	jsonw_obj_begin(w);
	for (unsigned int i = 0; i < m->nr_exits && i < API_METRICS_MAX_EXITS; i++) {
		char name[API_METRIC_NAME_MAX + 1];

		snprintf(name, sizeof(name), "%.*s", API_METRIC_NAME_MAX, m->exits[i].name);
		api_json_count(w, name, m->exits[i].count);
	}
	jsonw_obj_end(w);
}

/* One entry of GET /metrics' "devices". */
static void api_metrics_device(struct jsonw *w, const struct api_device_metrics *d)
{
	jsonw_obj_begin(w);
	jsonw_key(w, "name");
	jsonw_strn(w, d->name, strnlen(d->name, sizeof(d->name)));
	jsonw_key(w, "kind");
	jsonw_strn(w, d->kind, strnlen(d->kind, sizeof(d->kind)));
	api_json_count(w, "reads", d->reads);
	api_json_count(w, "writes", d->writes);
	api_json_count(w, "read_bytes", d->read_bytes);
	api_json_count(w, "write_bytes", d->write_bytes);
	api_json_count(w, "flushes", d->flushes);
	api_json_count(w, "throttled", d->throttled);
	api_json_count(w, "denied", d->denied);
	api_json_count(w, "errors", d->errors);
	jsonw_obj_end(w);
}

/* GET /metrics' totals. */
static void api_metrics_totals(struct jsonw *w, const struct api_metrics *m)
{
	api_json_count(w, "exits_total", m->exits_total);
	api_json_count(w, "policy_denials", m->policy_denials);
	api_json_count(w, "ratelimit_throttles", m->ratelimit_throttles);
	api_json_count(w, "guest_errors", m->guest_errors);
	api_json_count(w, "events_suppressed", m->events_suppressed);
	api_json_count(w, "agent_commands", m->agent_commands);
	api_json_count(w, "commands_started", m->commands_started);
	api_json_count(w, "commands_exited", m->commands_exited);
	api_json_count(w, "commands_failed", m->commands_failed);
}

/* GET /metrics' "api": the server's own counters. */
static void api_metrics_server(struct api *api, struct jsonw *w)
{
	pthread_mutex_lock(&api->lock);
	jsonw_key(w, "api");
	jsonw_obj_begin(w);
	api_json_count(w, "requests", api->requests);
	api_json_count(w, "errors_4xx", api->errors_4xx);
	api_json_count(w, "errors_5xx", api->errors_5xx);
	api_json_count(w, "commands", api->commands_total);
	jsonw_obj_end(w);
	pthread_mutex_unlock(&api->lock);
}

static void api_h_metrics(struct api_req *q)
{
	struct api *api = q->api;
	struct jsonw *w = &q->resp->w;
	struct api_metrics *m = calloc(1, sizeof(*m));
	char err[256] = "";
	int r;

	if (!m) {
		api_err(q->resp, 500, "out of memory");
		return;
	}
	r = api->ops->metrics(api->ctx, m, err, sizeof(err));
	if (r) {
		api_backend_err(q->resp, "metrics", r, err);
		free(m);
		return;
	}
	q->resp->status = 200;
	jsonw_obj_begin(w);
	api_metrics_exits(w, m);
	jsonw_key(w, "devices");
	jsonw_arr_begin(w);
	for (unsigned int i = 0; i < m->nr_devices && i < API_METRICS_MAX_DEVICES; i++)
		api_metrics_device(w, &m->devices[i]);
	jsonw_arr_end(w);
	api_metrics_totals(w, m);
	api_metrics_server(api, w);
	jsonw_obj_end(w);
	free(m);
}

/* GET /events: the retained events, then (following) new ones until the
 * VM has stopped, the client left or the server shuts down. */
static void api_h_events(struct api_req *q)
{
	struct api *api = q->api;
	struct api_conn *c = q->conn;
	char *line = malloc(API_EVENT_LINE + 128);
	uint64_t cursor;

	if (!line) {
		api_err(q->resp, 500, "out of memory");
		return;
	}
	if (c->fd < 0) {
		free(line);
		api_err(q->resp, 400, "events are a stream: they need a connection");
		return;
	}
	q->resp->streamed = true;
	pthread_mutex_lock(&api->lock);
	cursor = api->next_seq > API_EVENT_RING ? api->next_seq - API_EVENT_RING : 0;
	for (;;) {
		struct timespec until;
		size_t len;

		while (cursor < api->next_seq && !c->broken) {
			if (api->next_seq - cursor > API_EVENT_RING) {
				/* Fell behind: say how much is gone and skip it. */
				uint64_t lost = api->next_seq - API_EVENT_RING - cursor;

				len = (size_t)snprintf(line, API_EVENT_LINE + 128,
						       "{\"type\":\"lost\",\"count\":%" PRIu64 "}\n", lost);
				cursor += lost;
			} else {
				const struct api_event_slot *s = &api->ring[cursor % API_EVENT_RING];

				memcpy(line, s->line, s->len);
				len = s->len;
				cursor++;
			}
			pthread_mutex_unlock(&api->lock);
			(void)api_stream_line(c, line, len);
			pthread_mutex_lock(&api->lock);
		}
		if (!c->started) {
			/* An empty stream still has its head. */
			pthread_mutex_unlock(&api->lock);
			(void)api_stream_start(c);
			pthread_mutex_lock(&api->lock);
		}
		if (!c->follow || c->broken || api->shutdown || api->state == API_STOPPED)
			break;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += API_POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (cursor == api->next_seq)
			(void)pthread_cond_timedwait(&api->cond, &api->lock, &until);
		if (cursor == api->next_seq) {
			bool gone;

			pthread_mutex_unlock(&api->lock);
			gone = api_client_gone(c->fd);
			pthread_mutex_lock(&api->lock);
			if (gone)
				break;
		}
	}
	pthread_mutex_unlock(&api->lock);
	api_stream_end(c);
	free(line);
}

/* The exec sink: each piece of output becomes {"type":"stdout","data":B64}. */
static int api_exec_output(void *sink_ctx, int stream, const void *data, size_t len)
{
	struct api_conn *c = sink_ctx;
	const char *p = data;

	if (stream != 1 && stream != 2)
		return -EINVAL;
	while (len) {
		size_t n = len > API_OUT_CHUNK ? API_OUT_CHUNK : len;
		struct jsonw w;

		jsonw_init(&w, API_OUT_CHUNK * 2);
		jsonw_obj_begin(&w);
		jsonw_key(&w, "type");
		jsonw_str(&w, stream == 1 ? "stdout" : "stderr");
		jsonw_key(&w, "data");
		jsonw_base64(&w, p, n);
		jsonw_obj_end(&w);
		if (api_stream_json(c, &w))
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

static const char api_exit_kinds[][16] = {
	[API_EXIT_EXITED] = "exited",
	[API_EXIT_SIGNALED] = "signaled",
	[API_EXIT_TIMED_OUT] = "timed_out",
	[API_EXIT_START_FAILED] = "start_failed",
};

/* A string array member: 1.. (or 0.. when !nonempty) strings, into a
 * NULL-terminated array the caller frees. */
static int api_str_array(struct api_body *b, const char *key, bool required, unsigned int max,
			 const char ***out, unsigned int *count)
{
	const struct json_node *v = api_member(b, b->root, key), *e;
	const char **arr;
	unsigned int n = 0;

	*out = NULL;
	*count = 0;
	if (!v)
		return required ? api_missing(b, "", key) : 0;
	if (v->type != JSON_ARRAY) {
		api_err(b->resp, 400, "field \"%s\" must be an array of strings", key);
		return -EINVAL;
	}
	if ((required && v->count == 0) || v->count > max) {
		api_err(b->resp, 400, "field \"%s\" must have %u to %u entries", key, required ? 1u : 0u, max);
		return -EINVAL;
	}
	arr = calloc((size_t)v->count + 1, sizeof(*arr));
	if (!arr) {
		api_err(b->resp, 500, "out of memory");
		return -ENOMEM;
	}
	for (e = json_first(b->doc, v); e; e = json_next(b->doc, e), n++) {
		if (e->type != JSON_STRING) {
			api_err(b->resp, 400, "field \"%s[%u]\" must be a string", key, n);
			free(arr);
			return -EINVAL;
		}
		arr[n] = e->str;
	}
	*out = arr;
	*count = n;
	return 0;
}

static void api_h_exec(struct api_req *q)
{
	static const char names[] = "argv\0env\0cwd\0user\0timeout_s\0stdin\0";
	struct api *api = q->api;
	struct api_body b = { .resp = q->resp };
	struct api_exec_req req = { 0 };
	struct api_exec_sink sink = { .output = api_exec_output, .sink_ctx = q->conn };
	struct api_exec_result res = { 0 };
	const char **argv = NULL, **env = NULL;
	const struct json_node *in;
	uint64_t tmo = 0;
	char err[256] = "";
	struct api_event ev = { .type = API_EV_COMMAND_EXITED };
	struct jsonw *w;
	enum api_state s;
	int r;

	if (api_body_parse(&b, q->body, q->len, true) || api_fields(&b, b.root, "", names) ||
	    api_str_array(&b, "argv", true, API_EXEC_MAX_ARGS, &argv, &req.argc) ||
	    api_str_array(&b, "env", false, API_EXEC_MAX_ENV, &env, &req.nr_env) ||
	    api_path(&b, b.root, "", "cwd", false, &req.cwd) ||
	    api_str(&b, b.root, "", "user", false, 255, &req.user) ||
	    api_uint(&b, b.root, "", "timeout_s", false, 0, API_MAX_TIMEOUT_S, &tmo))
		goto out;
	for (unsigned int i = 0; i < req.nr_env; i++) {
		const char *eq = strchr(env[i], '=');

		if (!eq || eq == env[i]) {
			api_err(q->resp, 400, "field \"env[%u]\" must be NAME=VALUE", i);
			goto out;
		}
	}
	if (argv[0][0] == '\0') {
		api_err(q->resp, 400, "field \"argv[0]\" must not be empty");
		goto out;
	}
	in = api_member(&b, b.root, "stdin");
	if (in) {
		if (in->type != JSON_STRING) {
			api_err(q->resp, 400, "field \"stdin\" must be a string");
			goto out;
		}
		req.stdin_data = in->str;
		req.stdin_len = in->len;
	}
	req.argv = argv;
	req.env = env ? env : (const char **)argv + req.argc; /* an empty list */
	req.timeout_s = (uint32_t)tmo;
	if (q->conn->fd < 0) {
		api_err(q->resp, 400, "exec streams its output: it needs a connection");
		goto out;
	}
	pthread_mutex_lock(&api->lock);
	s = api->state;
	if (api_transitions[s][API_CALL_EXEC] == API_NR_STATES) {
		pthread_mutex_unlock(&api->lock);
		api_state_err(q->resp, "exec", s);
		goto out;
	}
	req.id = ++api->next_command;
	api->commands_running++;
	api->commands_total++;
	pthread_mutex_unlock(&api->lock);

	r = api->ops->exec(api->ctx, &req, &sink, &res, err, sizeof(err));

	pthread_mutex_lock(&api->lock);
	api->commands_running--;
	pthread_mutex_unlock(&api->lock);
	if (r && !q->conn->started) {
		api_backend_err(q->resp, "exec", r, err);
		goto out;
	}
	q->resp->streamed = true;
	w = &q->resp->w;
	jsonw_release(w);
	jsonw_obj_begin(w);
	if (r) {
		jsonw_key(w, "type");
		jsonw_str(w, "error");
		jsonw_key(w, "error");
		jsonw_str(w, err[0] ? err : strerror(-r));
	} else {
		if ((unsigned int)res.kind > API_EXIT_START_FAILED)
			res.kind = API_EXIT_START_FAILED;
		jsonw_key(w, "type");
		jsonw_str(w, "exit");
		jsonw_key(w, "id");
		jsonw_u64(w, req.id);
		jsonw_key(w, "kind");
		jsonw_str(w, api_exit_kinds[res.kind]);
		jsonw_key(w, "status");
		jsonw_i64(w, res.status);
		if (res.kind == API_EXIT_EXITED) {
			jsonw_key(w, "code");
			jsonw_i64(w, res.code);
		} else if (res.kind == API_EXIT_SIGNALED) {
			jsonw_key(w, "signal");
			jsonw_i64(w, res.signo);
		} else if (res.kind == API_EXIT_START_FAILED) {
			jsonw_key(w, "errno");
			jsonw_i64(w, res.errnum);
		}
	}
	jsonw_obj_end(w);
	(void)api_stream_json(q->conn, w);
	api_stream_end(q->conn);
	if (!r) {
		ev.command_id = req.id;
		ev.status = res.status;
		snprintf(ev.message, sizeof(ev.message), "%.200s", argv[0]);
		if (api_post_event(api, &ev))
			ev.status = -1; /* cannot fail: the type is valid */
	}
out:
	free(argv);
	free(env);
	json_free(b.doc);
}

/* ---- routing ---- */

enum api_endpoint {
	API_EP_MACHINE = 0, API_EP_BOOT, API_EP_ROOTFS, API_EP_DISK, API_EP_VSOCK, API_EP_NET,
	API_EP_POLICY, API_EP_RESTORE, API_EP_CONFIG, API_EP_START, API_EP_STATUS, API_EP_EXEC,
	API_EP_PAUSE, API_EP_RESUME, API_EP_SNAPSHOT, API_EP_STOP, API_EP_EVENTS, API_EP_METRICS,
};

/* Arrays and an enum rather than pointers: the table needs no relocation. */
struct api_route {
	char method[5];
	char path[10]; /* "/disks/" matches "/disks/{id}" */
	bool body_ok;  /* the method takes a body */
	enum api_endpoint ep;
};

static const struct api_route api_routes[] = {
	{ "PUT", "/machine", true, API_EP_MACHINE },
	{ "PUT", "/boot", true, API_EP_BOOT },
	{ "PUT", "/rootfs", true, API_EP_ROOTFS },
	{ "PUT", "/disks/", true, API_EP_DISK },
	{ "PUT", "/vsock", true, API_EP_VSOCK },
	{ "PUT", "/net", true, API_EP_NET },
	{ "PUT", "/policy", true, API_EP_POLICY },
	{ "PUT", "/restore", true, API_EP_RESTORE },
	{ "GET", "/config", false, API_EP_CONFIG },
	{ "POST", "/start", true, API_EP_START },
	{ "GET", "/status", false, API_EP_STATUS },
	{ "POST", "/exec", true, API_EP_EXEC },
	{ "POST", "/pause", true, API_EP_PAUSE },
	{ "POST", "/resume", true, API_EP_RESUME },
	{ "POST", "/snapshot", true, API_EP_SNAPSHOT },
	{ "POST", "/stop", true, API_EP_STOP },
	{ "GET", "/events", false, API_EP_EVENTS },
	{ "GET", "/metrics", false, API_EP_METRICS },
};

static void api_dispatch(enum api_endpoint ep, struct api_req *q)
{
	switch (ep) {
	case API_EP_MACHINE: api_h_put(q, API_SEC_MACHINE, api_put_machine); break;
	case API_EP_BOOT: api_h_put(q, API_SEC_BOOT, api_put_boot); break;
	case API_EP_ROOTFS: api_h_put(q, API_SEC_ROOTFS, api_put_rootfs); break;
	case API_EP_DISK: api_h_put(q, API_SEC_DISK, NULL); break;
	case API_EP_VSOCK: api_h_put(q, API_SEC_VSOCK, api_put_vsock); break;
	case API_EP_NET: api_h_put(q, API_SEC_NET, api_put_net); break;
	case API_EP_POLICY: api_h_put(q, API_SEC_POLICY, api_put_policy); break;
	case API_EP_RESTORE: api_h_put(q, API_SEC_RESTORE, api_put_restore); break;
	case API_EP_CONFIG: api_h_config(q); break;
	case API_EP_START: api_h_start(q); break;
	case API_EP_STATUS: api_h_status(q); break;
	case API_EP_EXEC: api_h_exec(q); break;
	case API_EP_PAUSE: api_h_simple(q, API_CALL_PAUSE, "pause", api_op_pause); break;
	case API_EP_RESUME: api_h_simple(q, API_CALL_RESUME, "resume", api_op_resume); break;
	case API_EP_SNAPSHOT: api_h_snapshot(q); break;
	case API_EP_STOP: api_h_simple(q, API_CALL_STOP, "stop", api_op_stop); break;
	case API_EP_EVENTS: api_h_events(q); break;
	case API_EP_METRICS: api_h_metrics(q); break;
	}
}

static bool api_path_match(const char *route, const char *path, const char **id)
{
	size_t n = strlen(route);

	if (route[n - 1] != '/')
		return strcmp(route, path) == 0;
	if (strncmp(route, path, n) != 0 || path[n] == '\0')
		return false;
	*id = path + n;
	return true;
}

static bool api_valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > API_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Whether a Content-Type value is application/json (parameters allowed). */
static bool api_json_type(const char *t, size_t n)
{
	static const char want[] = "application/json";
	size_t l = sizeof(want) - 1;

	if (n < l || strncasecmp(t, want, l) != 0)
		return false;
	return n == l || t[l] == ';' || t[l] == ' ' || t[l] == '\t';
}

static void api_route(struct api *api, const char *method, const char *target, const char *body,
		      size_t len, const char *ctype, size_t ctype_len, struct api_conn *conn,
		      struct api_resp *resp)
{
	struct api_req q = {
		.api = api, .method = method, .path = target, .body = body, .len = len,
		.conn = conn, .resp = resp,
	};
	static const char allow_names[][5] = { "GET", "PUT", "POST" };
	char allow[32] = "";
	bool shutdown;
	const struct api_route *hit = NULL;

	pthread_mutex_lock(&api->lock);
	api->requests++;
	shutdown = api->shutdown;
	pthread_mutex_unlock(&api->lock);
	if (shutdown) {
		api_err(resp, 503, "the server is shutting down");
		return;
	}
	if (strchr(target, '?') || strchr(target, '#')) {
		api_err(resp, 400, "query strings are not supported");
		return;
	}
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const char *id = NULL;

		if (!api_path_match(api_routes[i].path, target, &id))
			continue;
		for (size_t m = 0; m < sizeof(allow_names) / sizeof(allow_names[0]); m++) {
			if (!strcmp(api_routes[i].method, allow_names[m]) && !strstr(allow, allow_names[m])) {
				if (allow[0])
					strcat(allow, ", ");
				strcat(allow, allow_names[m]);
			}
		}
		if (!strcmp(api_routes[i].method, method)) {
			hit = &api_routes[i];
			q.disk_id = id;
		}
	}
	if (!allow[0]) {
		api_err(resp, 404, "no such endpoint: %.200s", target);
		return;
	}
	if (!hit) {
		api_err(resp, 405, "%s takes %s, not %.16s", target, allow, method);
		snprintf(resp->allow_buf, sizeof(resp->allow_buf), "Allow: %s\r\n", allow);
		resp->allow = resp->allow_buf;
		return;
	}
	if (q.disk_id && !api_valid_id(q.disk_id)) {
		api_err(resp, 400, "a disk id is 1 to %d of [A-Za-z0-9_-]", API_ID_MAX);
		return;
	}
	if (len && !hit->body_ok) {
		api_err(resp, 400, "%s %s takes no body", method, hit->path);
		return;
	}
	if (len && ctype && !api_json_type(ctype, ctype_len)) {
		api_err(resp, 415, "the body must be application/json");
		return;
	}
	api_dispatch(hit->ep, &q);
}

static void api_count(struct api *api, int status)
{
	pthread_mutex_lock(&api->lock);
	if (status >= 500)
		api->errors_5xx++;
	else if (status >= 400)
		api->errors_4xx++;
	pthread_mutex_unlock(&api->lock);
}

int api_handle(struct api *api, const char *method, const char *target, const char *body,
	       size_t len, const char *content_type, int stream_fd, int *status, char **out,
	       size_t *out_len)
{
	struct api_conn conn = { .fd = stream_fd };
	struct api_resp resp = { .status = 500 };
	int r;

	*out = NULL;
	*out_len = 0;
	jsonw_init(&resp.w, API_RESP_MAX);
	api_route(api, method, target, len ? body : NULL, len, content_type,
		  content_type ? strlen(content_type) : 0, &conn, &resp);
	if (resp.streamed) {
		jsonw_release(&resp.w);
		*status = 200;
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	*status = resp.status;
	api_count(api, resp.status);
	if (resp.status == 204) {
		jsonw_release(&resp.w);
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	r = jsonw_finish(&resp.w, out, out_len);
	if (r == -ENOMEM)
		return r;
	if (r) {
		/* Cannot happen with bounded contents; answer something valid. */
		*status = 500;
		*out = strdup("{\"error\":\"response too large\"}");
		if (!*out)
			return -ENOMEM;
		*out_len = strlen(*out);
	}
	return 0;
}

/* ---- the connection loop ---- */

/* Sends a complete JSON response (the head then the body). */
static int api_send(int fd, int status, const char *body, size_t len, bool keep_alive,
		    const char *extra)
{
	char head[512];
	int n = http_format_head(head, sizeof(head), status, status == 204 ? NULL : "application/json",
				 len, keep_alive, extra);

	if (n < 0)
		return n;
	n = api_write_all(fd, head, (size_t)n);
	if (!n && len)
		n = api_write_all(fd, body, len);
	return n;
}

static int api_send_error(int fd, int status, const char *msg)
{
	struct jsonw w;
	char *s;
	size_t n;
	int r;

	jsonw_init(&w, 4096);
	jsonw_obj_begin(&w);
	jsonw_key(&w, "error");
	jsonw_str(&w, msg);
	jsonw_obj_end(&w);
	r = jsonw_finish(&w, &s, &n);
	if (r)
		return r;
	r = api_send(fd, status, s, n, false, NULL);
	free(s);
	return r;
}

static bool api_is_shutdown(struct api *api)
{
	bool s;

	pthread_mutex_lock(&api->lock);
	s = api->shutdown;
	pthread_mutex_unlock(&api->lock);
	return s;
}

/* Waits until fd is readable: 0, -ETIMEDOUT after timeout_ms, -ESHUTDOWN. */
static int api_wait_readable(struct api *api, int fd, int timeout_ms)
{
	int waited = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r;

		if (api_is_shutdown(api))
			return -ESHUTDOWN;
		r = poll(&pfd, 1, API_POLL_MS);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 0;
		waited += API_POLL_MS;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
	}
}

int api_serve_fd(struct api *api, int fd)
{
	char *buf = malloc(HTTP_MAX_REQUEST);
	struct http_request *req = calloc(1, sizeof(*req)); /* read before the first parse */
	size_t have = 0;
	bool sent_continue = false;
	int ret = 0;

	if (!buf || !req) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		enum http_result pr = have ? http_parse(buf, have, req) : HTTP_NEED_MORE;
		struct api_conn conn = { .fd = fd, .http = true, .follow = true };
		struct api_resp resp = { .status = 500 };
		char ctype[128] = "", *body = NULL;
		size_t body_len = 0;
		ssize_t n;
		int r;

		if (pr == HTTP_ERROR) {
			api_count(api, req->status);
			(void)api_send_error(fd, req->status, req->error);
			ret = 0;
			break;
		}
		if (pr == HTTP_NEED_MORE) {
			if (req->headers_done && req->expect_continue && !sent_continue) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

				sent_continue = true;
				if (api_write_all(fd, cont, sizeof(cont) - 1)) {
					ret = -EPIPE;
					break;
				}
			}
			if (have == HTTP_MAX_REQUEST) { /* cannot happen: 431/413 come first */
				(void)api_send_error(fd, 413, "request too large");
				break;
			}
			r = api_wait_readable(api, fd, have ? API_IO_TIMEOUT_MS : API_IDLE_TIMEOUT_MS);
			if (r == -ETIMEDOUT && have) {
				(void)api_send_error(fd, 408, "timed out reading the request");
				ret = r;
				break;
			}
			if (r) {
				ret = r == -ETIMEDOUT || r == -ESHUTDOWN ? 0 : r;
				break;
			}
			n = recv(fd, buf + have, HTTP_MAX_REQUEST - have, MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK)
				n = read(fd, buf + have, HTTP_MAX_REQUEST - have);
			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
					continue;
				ret = -errno;
				break;
			}
			if (n == 0) {
				if (have) {
					api_count(api, 400);
					(void)api_send_error(fd, 400, "truncated request: the connection closed mid-request");
				}
				break;
			}
			have += (size_t)n;
			continue;
		}
		/* A whole request. */
		sent_continue = false;
		conn.chunked = req->minor == 1;
		if (req->content_type)
			snprintf(ctype, sizeof(ctype), "%.*s", (int)(req->content_type_len > 120 ? 120 : req->content_type_len),
				 req->content_type);
		jsonw_init(&resp.w, API_RESP_MAX);
		api_route(api, req->method, req->target, req->body, req->content_length,
			  req->content_type ? ctype : NULL, req->content_type ? strlen(ctype) : 0, &conn,
			  &resp);
		if (resp.streamed) {
			jsonw_release(&resp.w);
			break; /* a stream ends its connection */
		}
		api_count(api, resp.status);
		if (resp.status != 204) {
			r = jsonw_finish(&resp.w, &body, &body_len);
			if (r) {
				(void)api_send_error(fd, 500, "response too large");
				break;
			}
		} else {
			jsonw_release(&resp.w);
		}
		r = api_send(fd, resp.status, body, body_len, req->keep_alive, resp.allow);
		free(body);
		if (r) {
			ret = r;
			break;
		}
		if (!req->keep_alive)
			break;
		memmove(buf, buf + req->consumed, have - req->consumed);
		have -= req->consumed;
	}
out:
	free(req);
	free(buf);
	return ret;
}

/* ---- life cycle ---- */

int api_create(const struct api_backend_ops *ops, void *ctx, struct api **out)
{
	struct api *api;

	*out = NULL;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->scratch = calloc(1, sizeof(*api->scratch));
	if (!api->scratch)
		goto err_api;
	if (pthread_mutex_init(&api->lock, NULL))
		goto err_scratch;
	if (pthread_mutex_init(&api->op_lock, NULL))
		goto err_lock;
	{
		pthread_condattr_t ca;

		if (pthread_condattr_init(&ca))
			goto err_op;
		/* Timed waits use CLOCK_MONOTONIC: no jumps with the wall clock. */
		if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
		    pthread_cond_init(&api->cond, &ca)) {
			pthread_condattr_destroy(&ca);
			goto err_op;
		}
		pthread_condattr_destroy(&ca);
	}
	api->ops = ops;
	api->ctx = ctx;
	api->state = API_CONFIGURING;
	api->cfg.vcpus = 1;
	api->cfg.mem_mib = 256;
	api->cfg.rootfs_read_only = true;
	api->cfg.guest_cid = MINIVM_DEFAULT_GUEST_CID;
	*out = api;
	return 0;

err_op:
	pthread_mutex_destroy(&api->op_lock);
err_lock:
	pthread_mutex_destroy(&api->lock);
err_scratch:
	free(api->scratch);
err_api:
	free(api);
	return -ENOMEM;
}

void api_shutdown(struct api *api)
{
	pthread_mutex_lock(&api->lock);
	api->shutdown = true;
	pthread_cond_broadcast(&api->cond);
	pthread_mutex_unlock(&api->lock);
}

void api_destroy(struct api *api)
{
	if (!api)
		return;
	pthread_cond_destroy(&api->cond);
	pthread_mutex_destroy(&api->op_lock);
	pthread_mutex_destroy(&api->lock);
	free(api->scratch);
	free(api);
}

int api_listen(const char *path, int *fd_out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	*fd_out = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* A socket file: in use if something accepts on it. */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0)
			return -EADDRINUSE;
		if (unlink(path) && errno != ENOENT)
			return -errno;
	} else if (errno != ENOENT) {
		return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Created 0600 from the start, with no window where others could
	 * connect: Linux gives the socket file the mode of the socket's inode
	 * (minus the umask), and umask itself is process-wide, not ours. */
	if (fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		goto err_fd;
	}
	if (chmod(path, 0600) || listen(fd, 16)) {
		r = -errno;
		goto err_unlink;
	}
	*fd_out = fd;
	return 0;

err_unlink:
	unlink(path);
err_fd:
	close(fd);
	return r;
}
