/* Unit tests for vmm/api.c over a socketpair with a fake backend: every endpoint, every bad input with its status and message, the state table, streams; every exchange is recorded and validated against vmm/openapi.json by tests/integration/api_check.py. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/api.h"
#include "vmm/http.h"
#include "vmm/jsonw.h"

#define EXCHANGES_DEFAULT "build/tests/api_exchanges.jsonl"

static const char *exchanges_path(void)
{
	const char *p = getenv("API_EXCHANGES");

	return p && *p ? p : EXCHANGES_DEFAULT;
}

/* ---- the fake backend ---- */

struct fake {
	struct api *api;
	int configure_calls, start_calls, exec_calls, pause_calls, resume_calls, snapshot_calls,
		stop_calls, metrics_calls;
	int start_errno;   /* start fails with -start_errno */
	bool ready_in_start; /* post READY from inside start() */
	unsigned int last_vcpus;
	char last_snapshot[256];
	char start_snapshot_dir[256]; /* cfg->snapshot_dir at start() */
	char start_restore_dir[256];  /* cfg->restore_dir at start() */
	bool start_boot_set;          /* cfg->boot_set at start() */
};

static int fake_configure(void *ctx, const struct api_config *cfg, enum api_section sec, char *err,
			  size_t errlen)
{
	struct fake *f = ctx;

	f->configure_calls++;
	if (sec == API_SEC_BOOT && !strcmp(cfg->kernel, "/nonexistent")) {
		snprintf(err, errlen, "%s: No such file or directory", cfg->kernel);
		return -ENOENT;
	}
	return 0;
}

static int fake_start(void *ctx, const struct api_config *cfg, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct api_event ev = { .type = API_EV_READY };

	f->start_calls++;
	f->last_vcpus = cfg->vcpus;
	snprintf(f->start_snapshot_dir, sizeof(f->start_snapshot_dir), "%.200s", cfg->snapshot_dir);
	snprintf(f->start_restore_dir, sizeof(f->start_restore_dir), "%.200s", cfg->restore_dir);
	f->start_boot_set = cfg->boot_set;
	if (f->start_errno) {
		snprintf(err, errlen, "cannot open /dev/kvm");
		return -f->start_errno;
	}
	if (f->ready_in_start)
		ck_assert_int_eq(api_post_event(f->api, &ev), 0);
	return 0;
}

static int fake_exec(void *ctx, const struct api_exec_req *req, const struct api_exec_sink *sink,
		     struct api_exec_result *res, char *err, size_t errlen)
{
	struct fake *f = ctx;
	const char *cmd = req->argv[0];

	f->exec_calls++;
	ck_assert_ptr_null(req->argv[req->argc]);
	ck_assert_ptr_null(req->env[req->nr_env]);
	if (!strcmp(cmd, "fail")) {
		snprintf(err, errlen, "agent unreachable");
		return -EIO;
	}
	if (!strcmp(cmd, "nostart")) {
		res->kind = API_EXIT_START_FAILED;
		res->errnum = ENOENT;
		res->status = 127;
		return 0;
	}
	if (sink->output(sink->sink_ctx, 1, "hello\n", 6))
		return -EPIPE;
	if (sink->output(sink->sink_ctx, 2, "\xff\xfe", 2))
		return -EPIPE;
	if (req->stdin_data && sink->output(sink->sink_ctx, 1, req->stdin_data, req->stdin_len))
		return -EPIPE;
	if (!strcmp(cmd, "killed")) {
		res->kind = API_EXIT_SIGNALED;
		res->signo = 9;
		res->status = 137;
		return 0;
	}
	if (!strcmp(cmd, "broken")) {
		snprintf(err, errlen, "the agent closed mid-command");
		return -ECONNRESET;
	}
	res->kind = API_EXIT_EXITED;
	res->code = !strcmp(cmd, "false") ? 1 : 0;
	res->status = res->code;
	return 0;
}

static int fake_pause(void *ctx, char *err, size_t errlen)
{
	((struct fake *)ctx)->pause_calls++;
	return 0;
}

static int fake_resume(void *ctx, char *err, size_t errlen)
{
	((struct fake *)ctx)->resume_calls++;
	return 0;
}

static int fake_snapshot(void *ctx, const char *dir, char *err, size_t errlen)
{
	struct fake *f = ctx;

	f->snapshot_calls++;
	snprintf(f->last_snapshot, sizeof(f->last_snapshot), "%s", dir);
	if (!strcmp(dir, "/exists")) {
		snprintf(err, errlen, "%s exists", dir);
		return -EEXIST;
	}
	/* As api_front.c's: another dir than snapshot_dir, a second one. */
	if (!strcmp(dir, "/other")) {
		snprintf(err, errlen, "%s is not the snapshot_dir of PUT /machine", dir);
		return -EINVAL;
	}
	if (!strcmp(dir, "/again")) {
		snprintf(err, errlen, "taken already");
		return -EALREADY;
	}
	if (!strcmp(dir, "/broken")) {
		snprintf(err, errlen, "the VMM failed");
		return -EIO;
	}
	return 0;
}

static int fake_stop(void *ctx, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct api_event ev = { .type = API_EV_VM_EXIT, .outcome = MINIVM_STOPPED };

	f->stop_calls++;
	ck_assert_int_eq(api_post_event(f->api, &ev), 0);
	return 0;
}

static int fake_metrics(void *ctx, struct api_metrics *m, char *err, size_t errlen)
{
	struct fake *f = ctx;

	f->metrics_calls++;
	snprintf(m->exits[0].name, sizeof(m->exits[0].name), "io");
	m->exits[0].count = 1234;
	snprintf(m->exits[1].name, sizeof(m->exits[1].name), "mmio");
	m->exits[1].count = 99;
	m->nr_exits = 2;
	snprintf(m->devices[0].name, sizeof(m->devices[0].name), "vda");
	snprintf(m->devices[0].kind, sizeof(m->devices[0].kind), "blk");
	m->devices[0].reads = 10;
	m->devices[0].read_bytes = 40960;
	m->devices[0].flushes = 2;
	snprintf(m->devices[1].name, sizeof(m->devices[1].name), "net0");
	snprintf(m->devices[1].kind, sizeof(m->devices[1].kind), "net");
	m->devices[1].writes = 7;
	m->devices[1].write_bytes = 700;
	m->devices[1].denied = 3;
	m->devices[1].throttled = 4;
	m->nr_devices = 2;
	m->exits_total = 1333;
	m->policy_denials = 3;
	m->ratelimit_throttles = 4;
	m->guest_errors = 1;
	m->events_suppressed = 6;
	m->agent_commands = 5;
	m->commands_started = 5;
	m->commands_exited = 4;
	m->commands_failed = 1;
	return 0;
}

static const struct api_backend_ops fake_ops = {
	.configure = fake_configure,
	.start = fake_start,
	.exec = fake_exec,
	.pause = fake_pause,
	.resume = fake_resume,
	.snapshot = fake_snapshot,
	.stop = fake_stop,
	.metrics = fake_metrics,
};

static struct api *new_api(struct fake *f)
{
	struct api *api;

	memset(f, 0, sizeof(*f));
	f->ready_in_start = true;
	ck_assert_int_eq(api_create(&fake_ops, f, &api), 0);
	f->api = api;
	return api;
}

/* ---- a client over a socketpair ---- */

struct resp {
	int status;
	char ctype[64];
	char allow[64];
	bool chunked, close;
	char *body; /* NUL-terminated */
	size_t len;
};

static void resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Parses one response at *p (advancing it); false at the end. */
static bool parse_response(const char **p, const char *end, struct resp *r)
{
	const char *s = *p, *eoh;
	size_t clen = 0;
	bool has_len = false;

	memset(r, 0, sizeof(*r));
	if (s >= end)
		return false;
	eoh = memmem(s, (size_t)(end - s), "\r\n\r\n", 4);
	ck_assert_msg(eoh != NULL, "a response without the end of its head");
	ck_assert_int_eq(sscanf(s, "HTTP/1.1 %d", &r->status), 1);
	for (const char *l = strstr(s, "\r\n") + 2; l < eoh; l = strstr(l, "\r\n") + 2) {
		const char *le = strstr(l, "\r\n");
		size_t n = (size_t)(le - l);

		if (!strncasecmp(l, "Content-Type: ", 14))
			snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)(n - 14), l + 14);
		else if (!strncasecmp(l, "Allow: ", 7))
			snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(n - 7), l + 7);
		else if (!strncasecmp(l, "Content-Length: ", 16)) {
			clen = strtoul(l + 16, NULL, 10);
			has_len = true;
		} else if (!strncasecmp(l, "Transfer-Encoding: chunked", 26))
			r->chunked = true;
		else if (!strncasecmp(l, "Connection: close", 17))
			r->close = true;
	}
	s = eoh + 4;
	r->body = calloc(1, (size_t)(end - s) + 1);
	ck_assert_ptr_nonnull(r->body);
	if (r->chunked) {
		for (;;) {
			char *e;
			size_t n = strtoul(s, &e, 16);

			ck_assert(e[0] == '\r' && e[1] == '\n');
			s = e + 2;
			if (n == 0) {
				ck_assert(s + 2 <= end && s[0] == '\r' && s[1] == '\n');
				s += 2;
				break;
			}
			ck_assert(s + n + 2 <= end);
			memcpy(r->body + r->len, s, n);
			r->len += n;
			s += n;
			ck_assert(s[0] == '\r' && s[1] == '\n');
			s += 2;
		}
	} else if (r->status == 200 && !has_len) {
		/* HTTP/1.0 stream: to the end. */
		memcpy(r->body, s, (size_t)(end - s));
		r->len = (size_t)(end - s);
		s = end;
	} else if (r->status != 100) {
		ck_assert(r->status == 204 || has_len);
		ck_assert(s + clen <= end);
		memcpy(r->body, s, clen);
		r->len = clen;
		s += clen;
	}
	*p = s;
	return true;
}

/* Appends one exchange to the record api_check.py validates. */
static void record(const char *method, const char *path, const struct resp *r, const char *req,
		   size_t req_len)
{
	struct jsonw w;
	char *s;
	size_t n;
	FILE *f;

	jsonw_init(&w, 0);
	jsonw_obj_begin(&w);
	jsonw_key(&w, "method");
	jsonw_str(&w, method);
	jsonw_key(&w, "path");
	jsonw_str(&w, path);
	jsonw_key(&w, "status");
	jsonw_u64(&w, (uint64_t)r->status);
	jsonw_key(&w, "content_type");
	jsonw_str(&w, r->ctype);
	jsonw_key(&w, "body");
	jsonw_strn(&w, r->body, r->len);
	if (req_len) {
		jsonw_key(&w, "request");
		jsonw_strn(&w, req, req_len);
	}
	jsonw_obj_end(&w);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), 0);
	f = fopen(exchanges_path(), "a");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", s);
	fclose(f);
	free(s);
}

struct reader {
	int fd;
	char *buf;
	size_t cap, have;
};

/* The client's side reads while the server writes (streams can exceed
 * the socket's buffer). */
static void *reader_thread(void *arg)
{
	struct reader *rd = arg;
	ssize_t k;

	while ((k = read(rd->fd, rd->buf + rd->have, rd->cap - rd->have - 1)) > 0)
		rd->have += (size_t)k;
	return NULL;
}

/* Sends raw (then closes the write side), serves it, and parses up to max
 * responses (100 Continue included). Returns how many. */
static int exchange_raw(struct api *api, const char *raw, size_t len, struct resp *rs, int max)
{
	struct reader rd = { .cap = 4 << 20 };
	int sv[2], n = 0;
	char *buf;
	size_t have;
	pthread_t t;
	const char *p;

	rd.buf = malloc(rd.cap);
	ck_assert_ptr_nonnull(rd.buf);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], raw, len), (ssize_t)len);
	ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
	rd.fd = sv[0];
	ck_assert_int_eq(pthread_create(&t, NULL, reader_thread, &rd), 0);
	ck_assert_int_eq(api_serve_fd(api, sv[1]), 0);
	close(sv[1]);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	close(sv[0]);
	buf = rd.buf;
	have = rd.have;
	p = buf;
	while (n < max && parse_response(&p, buf + have, &rs[n]))
		n++;
	ck_assert_msg(p == buf + have, "bytes after the last response");
	free(buf);
	return n;
}

/* One request: method, path, body (NULL: none, and no Content-Length for
 * GET). Records the exchange. Returns the status; *out (may be NULL) gets
 * the response. */
static int call(struct api *api, const char *method, const char *path, const char *body,
		struct resp *out)
{
	char *raw;
	size_t blen = body ? strlen(body) : 0;
	struct resp r[2];
	int n, status;

	/* Content-Length on every PUT/POST (0 for none), never on GET without a body. */
	if (body || strcmp(method, "GET"))
		ck_assert_int_ge(asprintf(&raw, "%s %s HTTP/1.1\r\nHost: localhost\r\n"
					  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
					  method, path, blen, body ? body : ""), 0);
	else
		ck_assert_int_ge(asprintf(&raw, "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, path), 0);
	n = exchange_raw(api, raw, strlen(raw), r, 2);
	free(raw);
	ck_assert_int_eq(n, 1);
	record(method, path, &r[0], body, blen);
	status = r[0].status;
	if (out)
		*out = r[0];
	else
		resp_free(&r[0]);
	return status;
}

/* call() expecting status and, for errors, a message containing want. */
static void expect(struct api *api, const char *method, const char *path, const char *body,
		   int status, const char *want)
{
	struct resp r;
	int got = call(api, method, path, body, &r);

	ck_assert_msg(got == status, "%s %s %s: %d, not %d: %s", method, path, body ? body : "", got,
		      status, r.body);
	if (want)
		ck_assert_msg(strstr(r.body, want) != NULL, "%s %s %s: %s lacks \"%s\"", method, path,
			      body ? body : "", r.body, want);
	if (status >= 400)
		ck_assert_msg(!strncmp(r.body, "{\"error\":\"", 10), "%s", r.body);
	resp_free(&r);
}

static void configure_all(struct api *api)
{
	expect(api, "PUT", "/machine", "{\"vcpus\": 2, \"mem_mib\": 512, \"vm_timeout_ms\": 60000,"
	       " \"snapshot_dir\": \"/snap/1\"}", 204, NULL);
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k/vmlinux\", \"cmdline\": \"quiet\"}", 204, NULL);
	expect(api, "PUT", "/rootfs",
	       "{\"path\": \"/img/root.img\", \"read_only\": true, \"rate_limit\": {\"bytes_per_s\": 10485760,"
	       " \"ops_per_s\": 100, \"bytes_burst\": 1048576}}", 204, NULL);
	expect(api, "PUT", "/disks/data", "{\"path\": \"/img/data.img\", \"read_only\": false}", 204, NULL);
	expect(api, "PUT", "/disks/cache-1", "{\"path\": \"/img/cache.img\"}", 204, NULL);
	expect(api, "PUT", "/disks/data", "{\"path\": \"/img/data2.img\", \"read_only\": true}", 204, NULL);
	expect(api, "PUT", "/vsock", "{\"guest_cid\": 7, \"uds_path\": \"/run/v.sock\"}", 204, NULL);
	expect(api, "PUT", "/net",
	       "{\"tap\": \"tap0\", \"mac\": \"02:00:00:00:00:01\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\","
	       " \"dns\": \"10.0.0.1\", \"tx_limit\": {\"ops_per_s\": 1000}}", 204, NULL);
	expect(api, "PUT", "/policy", "{\"allow\": [\"1.1.1.1:443/tcp\", \"10.1.0.0/16\"], \"allow_dns\": true}",
	       204, NULL);
}

START_TEST(test_lifecycle)
{
	struct fake f;
	struct api *api = new_api(&f);
	struct resp r;

	expect(api, "GET", "/status", NULL, 200, "\"state\":\"configuring\"");
	configure_all(api);
	ck_assert_int_eq(f.configure_calls, 9);
	ck_assert_int_eq(call(api, "GET", "/config", NULL, &r), 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"disks\":{\"data\":{\"path\":\"/img/data2.img\",\"read_only\":true"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"cache-1\":{\"path\":\"/img/cache.img\",\"read_only\":false"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"ip\":\"10.0.0.2/24\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"allow\":[\"1.1.1.1:443/tcp\",\"10.1.0.0/16\"]"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"vcpus\":2"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"vm_timeout_ms\":60000,\"snapshot_dir\":\"/snap/1\"}"));
	resp_free(&r);
	expect(api, "GET", "/metrics", NULL, 200, "\"exits\":{\"io\":1234,\"mmio\":99}");
	expect(api, "GET", "/metrics", NULL, 200,
	       "{\"name\":\"net0\",\"kind\":\"net\",\"reads\":0,\"writes\":7,\"read_bytes\":0,"
	       "\"write_bytes\":700,\"flushes\":0,\"throttled\":4,\"denied\":3,\"errors\":0}],"
	       "\"exits_total\":1333,\"policy_denials\":3,\"ratelimit_throttles\":4,\"guest_errors\":1,"
	       "\"events_suppressed\":6,\"agent_commands\":5,\"commands_started\":5,"
	       "\"commands_exited\":4,\"commands_failed\":1,\"api\":");

	expect(api, "POST", "/start", "{\"wait_ready_ms\": 1000}", 200, "\"state\":\"running\"");
	ck_assert_int_eq(f.last_vcpus, 2);
	ck_assert_str_eq(f.start_snapshot_dir, "/snap/1");
	ck_assert_int_eq(api_state(api), API_RUNNING);
	expect(api, "GET", "/status", NULL, 200, "\"state\":\"running\"");

	/* exec: output as base64 events, then exit. */
	ck_assert_int_eq(call(api, "POST", "/exec",
			      "{\"argv\": [\"echo\", \"hi\"], \"env\": [\"A=1\"], \"cwd\": \"/tmp\", \"user\": \"1000\","
			      " \"timeout_s\": 5, \"stdin\": \"in\"}", &r), 200);
	ck_assert(r.chunked);
	ck_assert(r.close);
	ck_assert_str_eq(r.ctype, "application/x-ndjson");
	ck_assert_str_eq(r.body, "{\"type\":\"stdout\",\"data\":\"aGVsbG8K\"}\n"
				 "{\"type\":\"stderr\",\"data\":\"//4=\"}\n"
				 "{\"type\":\"stdout\",\"data\":\"aW4=\"}\n"
				 "{\"type\":\"exit\",\"id\":1,\"kind\":\"exited\",\"status\":0,\"code\":0}\n");
	resp_free(&r);
	expect(api, "POST", "/exec", "{\"argv\": [\"killed\"]}", 200, "\"kind\":\"signaled\",\"status\":137,\"signal\":9");
	expect(api, "POST", "/exec", "{\"argv\": [\"nostart\"]}", 200, "\"kind\":\"start_failed\",\"status\":127,\"errno\":2");
	expect(api, "POST", "/exec", "{\"argv\": [\"false\"]}", 200, "\"status\":1,\"code\":1");
	expect(api, "POST", "/exec", "{\"argv\": [\"broken\"]}", 200, "{\"type\":\"error\",\"error\":\"the agent closed mid-command\"}");
	expect(api, "POST", "/exec", "{\"argv\": [\"fail\"]}", 500, "exec: agent unreachable");
	ck_assert_int_eq(f.exec_calls, 6);
	expect(api, "GET", "/status", NULL, 200, "\"commands_running\":0,\"commands_total\":6");

	expect(api, "POST", "/pause", NULL, 200, "\"state\":\"paused\"");
	expect(api, "POST", "/exec", "{\"argv\": [\"true\"]}", 409, "exec is not allowed in state paused");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/snap/1\"}", 200, "\"dir\":\"/snap/1\"");
	ck_assert_str_eq(f.last_snapshot, "/snap/1");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/exists\"}", 400, "snapshot: /exists exists");
	/* The backend's errors as api.h says: -EINVAL 400, -EALREADY 409, others 500. */
	expect(api, "POST", "/snapshot", "{\"dir\": \"/other\"}", 400, "snapshot: /other is not the snapshot_dir");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/again\"}", 409, "snapshot: taken already");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/broken\"}", 500, "snapshot: the VMM failed");
	expect(api, "GET", "/status", NULL, 200, "\"state\":\"paused\"");
	expect(api, "POST", "/resume", "{}", 200, "\"state\":\"running\"");
	expect(api, "GET", "/metrics", NULL, 200, "\"api\":{\"requests\":");
	expect(api, "POST", "/stop", "", 200, "\"state\":\"stopped\"");
	expect(api, "GET", "/status", NULL, 200, "\"vm_exit\":{\"outcome\":\"stopped\",\"status\":0}");

	/* The events so far, and the stream ends: the VM stopped. */
	ck_assert_int_eq(call(api, "GET", "/events", NULL, &r), 200);
	ck_assert_str_eq(r.ctype, "application/x-ndjson");
	ck_assert_ptr_nonnull(strstr(r.body, "{\"type\":\"ready\",\"seq\":0,"));
	ck_assert_ptr_nonnull(strstr(r.body, "{\"type\":\"command_exited\",\"seq\":1,"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"vm_exit\""));
	resp_free(&r);
	ck_assert_int_eq(f.pause_calls, 1);
	ck_assert_int_eq(f.resume_calls, 1);
	ck_assert_int_eq(f.stop_calls, 1);
	api_destroy(api);
}
END_TEST

/* The state table: each call in each state it is refused in. */
START_TEST(test_wrong_state)
{
	struct fake f;
	struct api *api = new_api(&f);

	expect(api, "POST", "/exec", "{\"argv\": [\"true\"]}", 409, "exec is not allowed in state configuring");
	expect(api, "POST", "/pause", NULL, 409, "pause is not allowed in state configuring");
	expect(api, "POST", "/resume", NULL, 409, "in state configuring");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/s\"}", 409, "in state configuring");
	expect(api, "POST", "/stop", NULL, 409, "stop is not allowed in state configuring");
	expect(api, "POST", "/start", NULL, 400, "no kernel: PUT /boot (or PUT /restore) first");
	ck_assert_int_eq(f.start_calls, 0);
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 204, NULL);

	/* starting: the agent is not ready yet. */
	f.ready_in_start = false;
	expect(api, "POST", "/start", NULL, 200, "\"state\":\"starting\"");
	expect(api, "POST", "/start", NULL, 409, "start is not allowed in state starting");
	expect(api, "PUT", "/machine", "{\"vcpus\": 1}", 409, "configuration is not allowed in state starting");
	expect(api, "POST", "/exec", "{\"argv\": [\"true\"]}", 409, "in state starting");
	expect(api, "POST", "/pause", NULL, 409, "in state starting");
	{
		struct api_event ev = { .type = API_EV_READY };

		ck_assert_int_eq(api_post_event(api, &ev), 0);
	}
	ck_assert_int_eq(api_state(api), API_RUNNING);
	expect(api, "POST", "/resume", NULL, 409, "resume is not allowed in state running");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/s\"}", 409, "snapshot is not allowed in state running");
	expect(api, "POST", "/pause", NULL, 200, NULL);
	expect(api, "POST", "/pause", NULL, 409, "pause is not allowed in state paused");
	expect(api, "POST", "/stop", NULL, 200, "stopped");
	expect(api, "POST", "/stop", NULL, 409, "stop is not allowed in state stopped");
	expect(api, "POST", "/start", NULL, 409, "in state stopped");
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 409, "in state stopped");
	expect(api, "GET", "/config", NULL, 200, NULL);
	api_destroy(api);
}
END_TEST

START_TEST(test_start_failure)
{
	struct fake f;
	struct api *api = new_api(&f);

	expect(api, "PUT", "/boot", "{\"kernel\": \"/nonexistent\"}", 400, "configure: /nonexistent: No such file");
	expect(api, "GET", "/config", NULL, 200, NULL);
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 204, NULL);
	f.start_errno = EACCES;
	expect(api, "POST", "/start", NULL, 400, "start: cannot open /dev/kvm");
	ck_assert_int_eq(api_state(api), API_CONFIGURING);
	f.start_errno = EIO;
	expect(api, "POST", "/start", NULL, 500, "start: cannot open /dev/kvm");
	ck_assert_int_eq(api_state(api), API_CONFIGURING);
	f.start_errno = 0;
	expect(api, "POST", "/start", "{\"wait_ready_ms\": 10}", 200, "running");
	api_destroy(api);
}
END_TEST

/* Bad bodies: each with its status and a message naming the field. */
START_TEST(test_bad_bodies)
{
	static const struct {
		const char *method, *path, *body;
		int status;
		const char *want;
	} v[] = {
		{ "PUT", "/machine", "", 400, "a JSON object body is required" },
		{ "PUT", "/machine", "{\"vcpus\": 2", 400, "invalid JSON: JSON at byte 11" },
		{ "PUT", "/machine", "{\"vcpus\": 2,}", 400, "invalid JSON" },
		{ "PUT", "/machine", "[1]", 400, "the body must be a JSON object" },
		{ "PUT", "/machine", "{\"cpus\": 2}", 400, "unknown field \\\"cpus\\\"" },
		{ "PUT", "/machine", "{\"vcpus\": \"2\"}", 400, "field \\\"vcpus\\\" must be an integer" },
		{ "PUT", "/machine", "{\"vcpus\": 2.0}", 400, "field \\\"vcpus\\\" must be an integer" },
		{ "PUT", "/machine", "{\"vcpus\": 1e1}", 400, "must be an integer" },
		{ "PUT", "/machine", "{\"vcpus\": null}", 400, "must be an integer" },
		{ "PUT", "/machine", "{\"vcpus\": 0}", 400, "field \\\"vcpus\\\" must be from 1 to 32" },
		{ "PUT", "/machine", "{\"vcpus\": 33}", 400, "from 1 to 32" },
		{ "PUT", "/machine", "{\"vcpus\": -1}", 400, "from 1 to 32" },
		{ "PUT", "/machine", "{\"vcpus\": 99999999999999999999999}", 400, "from 1 to 32" },
		{ "PUT", "/machine", "{\"mem_mib\": 16}", 400, "field \\\"mem_mib\\\" must be from 32 to 65536" },
		{ "PUT", "/machine", "{\"vcpus\": 1, \"vcpus\": 2}", 400, "field \\\"vcpus\\\" appears twice" },
		{ "PUT", "/machine", "{\"snapshot_dir\": \"snap\"}", 400,
		  "field \\\"snapshot_dir\\\" must be an absolute path" },
		{ "PUT", "/machine", "{\"snapshot_dir\": \"\"}", 400,
		  "field \\\"snapshot_dir\\\" must be 1 to 4095 bytes long" },
		{ "PUT", "/machine", "{\"snapshot_dir\": 5}", 400, "field \\\"snapshot_dir\\\" must be a string" },
		{ "PUT", "/machine", "{\"snapshot_dir\": null}", 400, "field \\\"snapshot_dir\\\" must be a string" },
		{ "PUT", "/machine", "{\"snapshot_dir\": [\"/s\"]}", 400, "must be a string" },
		{ "PUT", "/machine", "{\"snapshot_dir\": \"/a\", \"snapshot_dir\": \"/b\"}", 400,
		  "field \\\"snapshot_dir\\\" appears twice" },
		{ "PUT", "/machine", "{\"snapshot\": \"/s\"}", 400, "unknown field \\\"snapshot\\\"" },
		{ "PUT", "/boot", "{}", 400, "field \\\"kernel\\\" is required" },
		{ "PUT", "/boot", "{\"kernel\": \"vmlinux\"}", 400, "field \\\"kernel\\\" must be an absolute path" },
		{ "PUT", "/boot", "{\"kernel\": \"\"}", 400, "field \\\"kernel\\\" must be 1 to 4095 bytes long" },
		{ "PUT", "/boot", "{\"kernel\": \"/k\", \"cmdline\": 1}", 400, "field \\\"cmdline\\\" must be a string" },
		{ "PUT", "/boot", "{\"kernel\": \"/k\\u0000x\"}", 400, "invalid JSON" },
		{ "PUT", "/rootfs", "{\"path\": \"/r\", \"read_only\": 1}", 400, "field \\\"read_only\\\" must be a boolean" },
		{ "PUT", "/rootfs", "{\"path\": \"/r\", \"rate_limit\": {\"bps\": 1}}", 400, "unknown field \\\"rate_limit.bps\\\"" },
		{ "PUT", "/rootfs", "{\"path\": \"/r\", \"rate_limit\": {\"ops_refill_ms\": 3600001}}", 400,
		  "field \\\"rate_limit.ops_refill_ms\\\" must be from 0 to 3600000" },
		{ "PUT", "/rootfs", "{\"path\": \"/r\", \"rate_limit\": []}", 400, "field \\\"rate_limit\\\" must be an object" },
		{ "PUT", "/disks/a.b", "{\"path\": \"/d\"}", 400, "a disk id is 1 to 32 of [A-Za-z0-9_-]" },
		{ "PUT", "/disks/x", "{\"path\": 5}", 400, "field \\\"path\\\" must be a string" },
		{ "PUT", "/vsock", "{\"guest_cid\": 2}", 400, "field \\\"guest_cid\\\" must be from 3 to 4294967294" },
		{ "PUT", "/vsock", "{\"uds_path\": \"rel\"}", 400, "must be an absolute path" },
		{ "PUT", "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.2\", \"gw\": \"10.0.0.1\"}", 400,
		  "field \\\"ip\\\" must be an IPv4 address with its prefix" },
		{ "PUT", "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.02/24\", \"gw\": \"10.0.0.1\"}", 400, "field \\\"ip\\\"" },
		{ "PUT", "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.1.1\"}", 400,
		  "field \\\"gw\\\" must be another address in the subnet" },
		{ "PUT", "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\", \"mac\": \"01:00:00:00:00:01\"}",
		  400, "field \\\"mac\\\" must be a unicast MAC" },
		{ "PUT", "/net", "{\"tap\": \"a/b\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\"}", 400, "field \\\"tap\\\"" },
		{ "PUT", "/net", "{\"tap\": \"a_very_long_tap_name\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\"}", 400,
		  "field \\\"tap\\\" must be 1 to 15 bytes long" },
		{ "PUT", "/net", "{\"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\"}", 400, "field \\\"tap\\\" is required" },
		{ "PUT", "/policy", "{\"allow\": \"1.1.1.1\"}", 400, "field \\\"allow\\\" must be an array of rules" },
		{ "PUT", "/policy", "{\"allow\": [\"1.1.1.1\", 5]}", 400, "field \\\"allow[1]\\\" must be a string" },
		{ "PUT", "/policy", "{\"allow\": [\"1.1.1.1\", \"1.1.1.1/33\"]}", 400, "field \\\"allow[1]\\\": " },
		{ "PUT", "/policy", "{\"allow_dns\": \"yes\"}", 400, "field \\\"allow_dns\\\" must be a boolean" },
		{ "POST", "/start", "{\"wait\": 1}", 400, "unknown field \\\"wait\\\"" },
		{ "POST", "/start", "{\"wait_ready_ms\": 3600001}", 400, "from 0 to 3600000" },
		{ "POST", "/pause", "{\"now\": true}", 400, "unknown field \\\"now\\\"" },
		{ "POST", "/stop", "nope", 400, "invalid JSON" },
		{ "POST", "/snapshot", "{}", 400, "field \\\"dir\\\" is required" },
		{ "POST", "/snapshot", "{\"dir\": \"rel\"}", 400, "field \\\"dir\\\" must be an absolute path" },
		{ "POST", "/exec", "{}", 400, "field \\\"argv\\\" is required" },
		{ "POST", "/exec", "{\"argv\": []}", 400, "field \\\"argv\\\" must have 1 to 1024 entries" },
		{ "POST", "/exec", "{\"argv\": \"ls\"}", 400, "field \\\"argv\\\" must be an array of strings" },
		{ "POST", "/exec", "{\"argv\": [\"ls\", 1]}", 400, "field \\\"argv[1]\\\" must be a string" },
		{ "POST", "/exec", "{\"argv\": [\"\"]}", 400, "field \\\"argv[0]\\\" must not be empty" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"env\": [\"NOEQUALS\"]}", 400, "field \\\"env[0]\\\" must be NAME=VALUE" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"env\": [\"=x\"]}", 400, "field \\\"env[0]\\\" must be NAME=VALUE" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"cwd\": \"tmp\"}", 400, "field \\\"cwd\\\" must be an absolute path" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"timeout_s\": -5}", 400, "field \\\"timeout_s\\\" must be from 0" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"stdin\": 5}", 400, "field \\\"stdin\\\" must be a string" },
		{ "POST", "/exec", "{\"argv\": [\"ls\"], \"tty\": true}", 400, "unknown field \\\"tty\\\"" },
		{ "GET", "/status", "{}", 400, "GET /status takes no body" },
		{ "GET", "/nothing", NULL, 404, "no such endpoint: /nothing" },
		{ "GET", "/disks/", NULL, 404, "no such endpoint" },
		{ "DELETE", "/machine", NULL, 405, "/machine takes PUT, not DELETE" },
		{ "GET", "/machine", NULL, 405, "/machine takes PUT, not GET" },
		{ "POST", "/status", NULL, 405, "/status takes GET" },
		{ "GET", "/status?x=1", NULL, 400, "query strings are not supported" },
	};
	struct fake f;
	struct api *api = new_api(&f);

	/* The exec cases need state running; the configuration ones come first. */
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(v[i].path, "/exec") && strcmp(v[i].path, "/snapshot"))
			expect(api, v[i].method, v[i].path, v[i].body, v[i].status, v[i].want);
	ck_assert_int_eq(f.configure_calls, 0);
	expect(api, "GET", "/config", NULL, 200, "\"machine\":{\"vcpus\":1,\"mem_mib\":256");
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 204, NULL);
	expect(api, "POST", "/start", NULL, 200, "running");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(v[i].path, "/exec"))
			expect(api, v[i].method, v[i].path, v[i].body, v[i].status, v[i].want);
	expect(api, "POST", "/pause", NULL, 200, "paused");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(v[i].path, "/snapshot"))
			expect(api, v[i].method, v[i].path, v[i].body, v[i].status, v[i].want);
	ck_assert_int_eq(f.exec_calls, 0);
	ck_assert_int_eq(f.snapshot_calls, 0);
	api_destroy(api);
}
END_TEST

/* PUT /machine's snapshot_dir: absent from GET /config until set, kept by
 * a PUT without it and by a refused PUT, at most 4095 bytes, given to start(). */
START_TEST(test_snapshot_dir)
{
	struct fake f;
	struct api *api = new_api(&f);
	char path[API_PATH_MAX + 1], body[API_PATH_MAX + 64];

	expect(api, "GET", "/config", NULL, 200, "\"machine\":{\"vcpus\":1,\"mem_mib\":256,\"vm_timeout_ms\":0}");
	expect(api, "PUT", "/machine", "{\"snapshot_dir\": \"/snap/a\"}", 204, NULL);
	expect(api, "PUT", "/machine", "{\"vcpus\": 2}", 204, NULL);
	expect(api, "GET", "/config", NULL, 200,
	       "\"machine\":{\"vcpus\":2,\"mem_mib\":256,\"vm_timeout_ms\":0,\"snapshot_dir\":\"/snap/a\"}");
	expect(api, "PUT", "/machine", "{\"snapshot_dir\": \"/snap/b\", \"vcpus\": 0}", 400, "vcpus");
	expect(api, "GET", "/config", NULL, 200, "\"snapshot_dir\":\"/snap/a\"}");
	/* 4095 bytes is the most (API_PATH_MAX with its NUL). */
	memset(path, 'd', sizeof(path));
	path[0] = '/';
	path[API_PATH_MAX - 1] = '\0';
	snprintf(body, sizeof(body), "{\"snapshot_dir\": \"%s\"}", path);
	expect(api, "PUT", "/machine", body, 204, NULL);
	path[API_PATH_MAX - 1] = 'd';
	path[API_PATH_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"snapshot_dir\": \"%s\"}", path);
	expect(api, "PUT", "/machine", body, 400, "field \\\"snapshot_dir\\\" must be 1 to 4095 bytes long");
	expect(api, "PUT", "/machine", "{\"snapshot_dir\": \"/snap/c\"}", 204, NULL);
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 204, NULL);
	expect(api, "POST", "/start", NULL, 200, "running");
	ck_assert_str_eq(f.start_snapshot_dir, "/snap/c");
	expect(api, "PUT", "/machine", "{\"snapshot_dir\": \"/snap/d\"}", 409, "in state running");
	expect(api, "POST", "/pause", NULL, 200, "paused");
	expect(api, "POST", "/snapshot", "{\"dir\": \"/snap/c\"}", 200, "{\"state\":\"paused\",\"dir\":\"/snap/c\"}");
	api_destroy(api);
}
END_TEST

/* PUT /restore: a start without PUT /boot that restores; refused when
 * relative, empty, of the wrong type or with unknown fields, in any state
 * but configuring, and with what the snapshot decides, in either order. */
START_TEST(test_restore)
{
	static const struct { const char *path, *body; } first[] = {
		{ "/boot", "{\"kernel\": \"/k\"}" },
		{ "/rootfs", "{\"path\": \"/r\"}" },
		{ "/disks/d1", "{\"path\": \"/d\"}" },
		{ "/machine", "{\"vcpus\": 1}" },
		{ "/machine", "{\"mem_mib\": 256}" },
		{ "/machine", "{\"snapshot_dir\": \"/s\"}" },
		{ "/vsock", "{\"guest_cid\": 5}" },
		{ "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\"}" },
	};
	struct fake f;
	struct api *api = new_api(&f);

	expect(api, "PUT", "/restore", "{\"dir\": \"snap\"}", 400,
	       "field \\\"dir\\\" must be an absolute path");
	expect(api, "PUT", "/restore", "{\"dir\": \"\"}", 400,
	       "field \\\"dir\\\" must be 1 to 4095 bytes long");
	expect(api, "PUT", "/restore", "{\"dir\": 5}", 400, "field \\\"dir\\\" must be a string");
	expect(api, "PUT", "/restore", "{}", 400, "dir");
	expect(api, "PUT", "/restore", "{\"dir\": \"/s\", \"mem_mib\": 64}", 400, "mem_mib");
	expect(api, "GET", "/restore", NULL, 405, "PUT");
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		struct fake g;
		struct api *a = new_api(&g);

		/* The other call first, then the restore; and the other way round. */
		expect(a, "PUT", first[i].path, first[i].body, 204, NULL);
		expect(a, "PUT", "/restore", "{\"dir\": \"/snap\"}", 409,
		       "PUT /restore conflicts with");
		api_destroy(a);
		a = new_api(&g);
		expect(a, "PUT", "/restore", "{\"dir\": \"/snap\"}", 204, NULL);
		expect(a, "PUT", first[i].path, first[i].body, 409, "PUT /restore conflicts with");
		expect(a, "GET", "/config", NULL, 200, "\"restore\":{\"dir\":\"/snap\"}");
		api_destroy(a);
	}
	expect(api, "GET", "/config", NULL, 200, "\"disks\":{}}");
	expect(api, "PUT", "/machine", "{\"vm_timeout_ms\": 60000}", 204, NULL);
	expect(api, "PUT", "/vsock", "{\"uds_path\": \"/tmp/v.sock\"}", 204, NULL);
	expect(api, "PUT", "/restore", "{\"dir\": \"/snap/1\"}", 204, NULL);
	expect(api, "PUT", "/boot", "{\"kernel\": \"/k\"}", 409, "conflicts with PUT /boot");
	expect(api, "PUT", "/machine", "{\"vcpus\": 2}", 409, "vcpus and mem_mib");
	expect(api, "GET", "/config", NULL, 200, "\"restore\":{\"dir\":\"/snap/1\"}");
	expect(api, "POST", "/start", NULL, 200, "running");
	ck_assert_str_eq(f.start_restore_dir, "/snap/1");
	ck_assert(!f.start_boot_set);
	expect(api, "PUT", "/restore", "{\"dir\": \"/snap/2\"}", 409, "in state running");
	expect(api, "GET", "/config", NULL, 200, "\"restore\":{\"dir\":\"/snap/1\"}");
	api_destroy(api);
}
END_TEST

/* A restore whose snapshot cannot be read fails at start: configuring again. */
START_TEST(test_restore_failure)
{
	struct fake f;
	struct api *api = new_api(&f);

	f.start_errno = ENOENT;
	expect(api, "PUT", "/restore", "{\"dir\": \"/nonexistent\"}", 204, NULL);
	expect(api, "POST", "/start", NULL, 400, "cannot open");
	ck_assert_int_eq(api_state(api), API_CONFIGURING);
	f.start_errno = 0;
	expect(api, "POST", "/start", NULL, 200, "running");
	api_destroy(api);
}
END_TEST

START_TEST(test_disk_limit)
{
	struct fake f;
	struct api *api = new_api(&f);
	char path[32];

	for (int i = 0; i < MINIVM_MAX_DISKS; i++) {
		snprintf(path, sizeof(path), "/disks/d%d", i);
		expect(api, "PUT", path, "{\"path\": \"/x\"}", 204, NULL);
	}
	expect(api, "PUT", "/disks/d0", "{\"path\": \"/y\"}", 204, NULL);
	expect(api, "PUT", "/disks/one-more", "{\"path\": \"/x\"}", 400, "at most 8 disks");
	api_destroy(api);
}
END_TEST

/* Records raw exchanges for the validator too. */
static int raw_one(struct api *api, const char *raw, struct resp *r, const char *method, const char *path)
{
	struct resp rs[2];
	int n = exchange_raw(api, raw, strlen(raw), rs, 2);

	ck_assert_int_eq(n, 1);
	record(method, path, &rs[0], NULL, 0);
	*r = rs[0];
	return r->status;
}

/* HTTP-level errors through the socket: status, JSON message, closed. */
START_TEST(test_http_errors)
{
	struct fake f;
	struct api *api = new_api(&f);
	struct resp r;
	char *big;
	int n;

	ck_assert_int_eq(raw_one(api, "PUT /machine HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"vcpus\"", &r,
				 "PUT", "/machine"), 400);
	ck_assert_ptr_nonnull(strstr(r.body, "truncated request"));
	ck_assert(r.close);
	resp_free(&r);
	ck_assert_int_eq(raw_one(api, "GET /stat", &r, "GET", "/status"), 400);
	resp_free(&r);
	ck_assert_int_eq(raw_one(api, "PUT /machine HTTP/1.1\r\nHost: x\r\n\r\n", &r, "PUT", "/machine"), 411);
	ck_assert_ptr_nonnull(strstr(r.body, "PUT needs Content-Length"));
	resp_free(&r);
	ck_assert_int_eq(raw_one(api, "PUT /machine HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "2\r\n{}\r\n0\r\n\r\n", &r, "PUT", "/machine"), 501);
	ck_assert_ptr_nonnull(strstr(r.body, "chunked) is not supported"));
	resp_free(&r);
	ck_assert_int_eq(raw_one(api, "GET /status HTTP/3.0\r\nHost: x\r\n\r\n", &r, "GET", "/status"), 505);
	resp_free(&r);
	ck_assert_int_eq(raw_one(api, "PUT /machine HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
				 "Content-Length: 2\r\n\r\n{}", &r, "PUT", "/machine"), 415);
	resp_free(&r);

	/* An oversized body is refused from its Content-Length, unread. */
	big = malloc(HTTP_MAX_BODY + 256);
	ck_assert_ptr_nonnull(big);
	n = snprintf(big, 256, "PUT /policy HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", HTTP_MAX_BODY + 1);
	memset(big + n, ' ', HTTP_MAX_BODY + 1);
	big[n + HTTP_MAX_BODY + 1] = '\0';
	ck_assert_int_eq(raw_one(api, big, &r, "PUT", "/policy"), 413);
	ck_assert_ptr_nonnull(strstr(r.body, "body over 65536 bytes"));
	resp_free(&r);
	/* A long target. */
	memset(big, 'a', 2000);
	memcpy(big, "GET /", 5);
	strcpy(big + 2000, " HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(raw_one(api, big, &r, "GET", "/status"), 414);
	resp_free(&r);
	free(big);
	ck_assert_int_eq(api_state(api), API_CONFIGURING);
	api_destroy(api);
}
END_TEST

/* Keep-alive: pipelined requests on one connection, answered in order;
 * "Expect: 100-continue" gets its interim response. */
START_TEST(test_keep_alive)
{
	static const char raw[] =
		"PUT /machine HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"vcpus\": 3}"
		"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
		"PUT /boot HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"kernel\":\"/k\"}"
		"GET /config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		"GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
	struct fake f;
	struct api *api = new_api(&f);
	struct resp rs[8];
	int n = exchange_raw(api, raw, strlen(raw), rs, 8);

	ck_assert_int_eq(n, 4); /* nothing after Connection: close */
	ck_assert_int_eq(rs[0].status, 204);
	ck_assert(!rs[0].close);
	ck_assert_int_eq(rs[1].status, 404);
	ck_assert_int_eq(rs[2].status, 204);
	ck_assert_int_eq(rs[3].status, 200);
	ck_assert(rs[3].close);
	ck_assert_ptr_nonnull(strstr(rs[3].body, "\"vcpus\":3"));
	ck_assert_ptr_nonnull(strstr(rs[3].body, "\"kernel\":\"/k\""));
	record("PUT", "/machine", &rs[0], "{\"vcpus\": 3}", 12);
	record("GET", "/nothing", &rs[1], NULL, 0);
	record("PUT", "/boot", &rs[2], "{\"kernel\":\"/k\"}", 15);
	record("GET", "/config", &rs[3], NULL, 0);
	for (int i = 0; i < n; i++)
		resp_free(&rs[i]);
	/* Expect: 100-continue with the body still to come: the interim
	 * response, then (the client gave up) a truncated request. */
	n = exchange_raw(api, "PUT /boot HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 15\r\n\r\n",
			 strlen("PUT /boot HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 15\r\n\r\n"),
			 rs, 8);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(rs[0].status, 100);
	ck_assert_int_eq(rs[1].status, 400);
	record("PUT", "/boot", &rs[1], NULL, 0);
	for (int i = 0; i < n; i++)
		resp_free(&rs[i]);
	/* A 405 names the allowed methods. */
	ck_assert_int_eq(raw_one(api, "POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &rs[0],
				 "POST", "/config"), 405);
	ck_assert_str_eq(rs[0].allow, "GET");
	resp_free(&rs[0]);
	api_destroy(api);
}
END_TEST

/* A stream that fell behind the ring hears how much it lost. */
START_TEST(test_events_lost)
{
	struct fake f;
	struct api *api = new_api(&f);
	struct api_event ev = { .type = API_EV_POLICY_DENIED, .port = 443 };
	struct resp r;
	const char *p;
	int lines = 0;

	snprintf(ev.dst, sizeof(ev.dst), "93.184.216.34");
	snprintf(ev.proto, sizeof(ev.proto), "tcp");
	snprintf(ev.reason, sizeof(ev.reason), "not_allowed");
	for (int i = 0; i < API_EVENT_RING + 10; i++)
		ck_assert_int_eq(api_post_event(api, &ev), 0);
	ev.type = API_EV_GUEST_ERROR;
	snprintf(ev.message, sizeof(ev.message), "virtio-blk: bad descriptor \"x\"\n\xff");
	ck_assert_int_eq(api_post_event(api, &ev), 0);
	memset(&ev, 0, sizeof(ev));
	ev.type = API_EV_VM_EXIT;
	ev.outcome = MINIVM_GUEST_CRASHED;
	ck_assert_int_eq(api_post_event(api, &ev), 0);
	ev.type = (enum api_event_type)99;
	ck_assert_int_eq(api_post_event(api, &ev), -EINVAL);
	ck_assert_int_eq(api_state(api), API_STOPPED);
	ck_assert_int_eq(call(api, "GET", "/events", NULL, &r), 200);
	for (p = r.body; (p = strchr(p, '\n')); p++)
		lines++;
	ck_assert_int_eq(lines, API_EVENT_RING);
	ck_assert_ptr_nonnull(strstr(r.body, "\"dst\":\"93.184.216.34\",\"port\":443,\"proto\":\"tcp\",\"reason\":\"not_allowed\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"message\":\"virtio-blk: bad descriptor \\\"x\\\"\\n\xef\xbf\xbd\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"outcome\":\"guest_crashed\""));
	resp_free(&r);
	/* HTTP/1.0: no chunks, the close ends the stream. */
	ck_assert_int_eq(raw_one(api, "GET /events HTTP/1.0\r\n\r\n", &r, "GET", "/events"), 200);
	ck_assert(!r.chunked);
	ck_assert(r.close);
	ck_assert_ptr_nonnull(strstr(r.body, "\"outcome\":\"guest_crashed\",\"status\":0}\n"));
	resp_free(&r);
	api_destroy(api);
}
END_TEST

/* GET /events follows: a client thread reads while events arrive. */
struct follower {
	int fd;
	char buf[65536];
	size_t len;
};

static void *follow_thread(void *arg)
{
	struct follower *fl = arg;
	ssize_t n;

	while ((n = read(fl->fd, fl->buf + fl->len, sizeof(fl->buf) - 1 - fl->len)) > 0)
		fl->len += (size_t)n;
	fl->buf[fl->len] = '\0';
	return NULL;
}

struct server_arg {
	struct api *api;
	int fd;
	int ret;
};

static void *serve_thread(void *arg)
{
	struct server_arg *sa = arg;

	sa->ret = api_serve_fd(sa->api, sa->fd);
	return NULL;
}

START_TEST(test_events_follow)
{
	static const char req[] = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
	struct fake f;
	struct api *api = new_api(&f);
	struct follower *fl = calloc(1, sizeof(*fl));
	struct server_arg sa = { .api = api };
	struct api_event ev = { .type = API_EV_READY };
	pthread_t st, ct;
	int sv[2];

	ck_assert_ptr_nonnull(fl);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fl->fd = sv[0];
	sa.fd = sv[1];
	ck_assert_int_eq(write(sv[0], req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_int_eq(pthread_create(&st, NULL, serve_thread, &sa), 0);
	ck_assert_int_eq(pthread_create(&ct, NULL, follow_thread, fl), 0);
	usleep(50000);
	ck_assert_int_eq(api_post_event(api, &ev), 0);
	usleep(50000);
	ev.type = API_EV_VM_EXIT;
	ev.outcome = MINIVM_GUEST_EXITED;
	ev.status = 3;
	ck_assert_int_eq(api_post_event(api, &ev), 0);
	ck_assert_int_eq(pthread_join(st, NULL), 0);
	ck_assert_int_eq(sa.ret, 0);
	close(sv[1]);
	ck_assert_int_eq(pthread_join(ct, NULL), 0);
	close(sv[0]);
	ck_assert_ptr_nonnull(strstr(fl->buf, "Transfer-Encoding: chunked"));
	ck_assert_ptr_nonnull(strstr(fl->buf, "\"type\":\"ready\""));
	ck_assert_ptr_nonnull(strstr(fl->buf, "\"outcome\":\"guest_exited\",\"status\":3"));
	ck_assert_ptr_nonnull(strstr(fl->buf, "\r\n0\r\n\r\n"));
	free(fl);
	api_destroy(api);
}
END_TEST

/* api_shutdown ends a following stream and an idle connection. */
START_TEST(test_shutdown)
{
	static const char req[] = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
	struct fake f;
	struct api *api = new_api(&f);
	struct server_arg sa = { .api = api }, sb = { .api = api };
	pthread_t st, st2;
	int sv[2], sw[2];
	int status;
	char *out;
	size_t len;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sw), 0);
	ck_assert_int_eq(write(sv[0], req, strlen(req)), (ssize_t)strlen(req));
	sa.fd = sv[1];
	sb.fd = sw[1];
	ck_assert_int_eq(pthread_create(&st, NULL, serve_thread, &sa), 0);
	ck_assert_int_eq(pthread_create(&st2, NULL, serve_thread, &sb), 0);
	usleep(100000);
	api_shutdown(api);
	ck_assert_int_eq(pthread_join(st, NULL), 0);
	ck_assert_int_eq(pthread_join(st2, NULL), 0);
	ck_assert_int_eq(sa.ret, 0);
	ck_assert_int_eq(sb.ret, 0);
	ck_assert_int_eq(api_handle(api, "GET", "/status", NULL, 0, NULL, -1, &status, &out, &len), 0);
	ck_assert_int_eq(status, 503);
	free(out);
	close(sv[0]);
	close(sv[1]);
	close(sw[0]);
	close(sw[1]);
	api_destroy(api);
}
END_TEST

START_TEST(test_handle)
{
	struct fake f;
	struct api *api = new_api(&f);
	int status, devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char *out;
	size_t len;

	ck_assert_int_ge(devnull, 0);
	ck_assert_int_eq(api_handle(api, "PUT", "/boot", "{\"kernel\":\"/k\"}", 15, "application/json; charset=utf-8",
				    -1, &status, &out, &len), 0);
	ck_assert_int_eq(status, 204);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(api_handle(api, "POST", "/start", NULL, 0, NULL, -1, &status, &out, &len), 0);
	ck_assert_int_eq(status, 200);
	free(out);
	ck_assert_int_eq(api_handle(api, "POST", "/exec", "{\"argv\":[\"x\"]}", 14, NULL, -1, &status, &out, &len), 0);
	ck_assert_int_eq(status, 400);
	ck_assert_ptr_nonnull(strstr(out, "it needs a connection"));
	free(out);
	ck_assert_int_eq(api_handle(api, "POST", "/exec", "{\"argv\":[\"x\"]}", 14, NULL, devnull, &status, &out, &len), 0);
	ck_assert_int_eq(status, 200);
	free(out);
	close(devnull);
	api_destroy(api);
}
END_TEST

START_TEST(test_listen)
{
	char dir[] = "/tmp/minivm-api-test.XXXXXX";
	char path[128];
	struct stat st;
	int fd, fd2, c;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	ck_assert_int_eq(api_listen(path, &fd), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* A live socket is not taken over. */
	ck_assert_int_eq(api_listen(path, &fd2), -EADDRINUSE);
	ck_assert_int_eq(fd2, -1);
	memcpy(sa.sun_path, path, strlen(path) + 1); /* about 40 bytes */
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(c);
	close(fd);
	/* A stale one is replaced. */
	ck_assert_int_eq(api_listen(path, &fd), 0);
	close(fd);
	unlink(path);
	/* Anything else is refused and left alone. */
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(api_listen(path, &fd), -EEXIST);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	unlink(path);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(api_listen(path, &fd), -EEXIST);
	rmdir(path);
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(api_listen(path, &fd), -ENAMETOOLONG);
	rmdir(dir);
}
END_TEST

/* A real client: the standard-library Python example over api_listen's
 * socket, one thread per connection as the front would run it. */
struct acceptor {
	struct api *api;
	int lfd;
	pthread_t threads[64];
	struct server_arg args[64];
	int n;
};

static void *accept_thread(void *arg)
{
	struct acceptor *a = arg;

	for (;;) {
		int c = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			break; /* the test shut the socket down */
		if (a->n == 64) {
			close(c);
			continue;
		}
		a->args[a->n].api = a->api;
		a->args[a->n].fd = c;
		ck_assert_int_eq(pthread_create(&a->threads[a->n], NULL, serve_thread, &a->args[a->n]), 0);
		a->n++;
	}
	return NULL;
}

START_TEST(test_python_client)
{
	char dir[] = "/tmp/minivm-api-py.XXXXXX";
	char path[128], cmd[512];
	struct fake f;
	struct api *api = new_api(&f);
	struct acceptor *a = calloc(1, sizeof(*a));
	pthread_t t;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	ck_assert_int_eq(api_listen(path, &a->lfd), 0);
	a->api = api;
	ck_assert_int_eq(pthread_create(&t, NULL, accept_thread, a), 0);
	snprintf(cmd, sizeof(cmd), "python3 tests/examples/api_client.py %s --kernel /k/vmlinux --rootfs /r.img "
		 "--pause --snapshot /snap/py --stop", path);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(shutdown(a->lfd, SHUT_RDWR), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	for (int i = 0; i < a->n; i++) {
		ck_assert_int_eq(pthread_join(a->threads[i], NULL), 0);
		ck_assert_int_eq(a->args[i].ret, 0);
		close(a->args[i].fd);
	}
	ck_assert_int_eq(f.exec_calls, 3);
	ck_assert_str_eq(f.start_snapshot_dir, "/snap/py");
	ck_assert_int_eq(f.snapshot_calls, 1);
	ck_assert_str_eq(f.last_snapshot, "/snap/py");
	ck_assert_int_eq(f.resume_calls, 1);
	ck_assert_int_eq(f.stop_calls, 1);
	close(a->lfd);
	unlink(path);
	rmdir(dir);
	free(a);
	api_destroy(api);
}
END_TEST

/* The JSON writer: escapes, invalid UTF-8, base64 vectors, misuse, limits. */
static char *jw_text(struct jsonw *w)
{
	char *s;
	size_t n;

	ck_assert_int_eq(jsonw_finish(w, &s, &n), 0);
	ck_assert_uint_eq(strlen(s), n);
	return s;
}

START_TEST(test_jsonw)
{
	static const struct {
		const char *in, *b64;
	} rfc4648[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	/* Escapes, UTF-8 kept, and bytes that are not UTF-8 (0xff, a
	 * surrogate, past U+10FFFF) replaced one by one. */
	static const char mixed[] = "x\n\t\x01\\\"\xc3\xa9\xff\xe2\x82\xac\xed\xa0\x80\xf4\x90\x80\x80z";
	struct jsonw w;
	char *s, *t;
	size_t n;

	jsonw_init(&w, 0);
	jsonw_obj_begin(&w);
	jsonw_key(&w, "a\"b");
	jsonw_strn(&w, mixed, sizeof(mixed) - 1);
	jsonw_key(&w, "n");
	jsonw_i64(&w, -5);
	jsonw_key(&w, "u");
	jsonw_u64(&w, UINT64_MAX);
	jsonw_key(&w, "l");
	jsonw_arr_begin(&w);
	jsonw_bool(&w, true);
	jsonw_bool(&w, false);
	jsonw_null(&w);
	jsonw_raw(&w, "{}", 2);
	jsonw_arr_end(&w);
	jsonw_obj_end(&w);
	s = jw_text(&w);
	ck_assert_str_eq(s, "{\"a\\\"b\":\"x\\n\\t\\u0001\\\\\\\"\xc3\xa9\xef\xbf\xbd\xe2\x82\xac"
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\","
			    "\"n\":-5,\"u\":18446744073709551615,\"l\":[true,false,null,{}]}");
	free(s);
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		jsonw_init(&w, 0);
		jsonw_arr_begin(&w);
		jsonw_base64(&w, rfc4648[i].in, strlen(rfc4648[i].in));
		jsonw_arr_end(&w);
		s = jw_text(&w);
		ck_assert_int_ge(asprintf(&t, "[\"%s\"]", rfc4648[i].b64), 0);
		ck_assert_str_eq(s, t);
		free(s);
		free(t);
	}
	/* Misuse and limits stick as errors. */
	jsonw_init(&w, 0);
	jsonw_obj_begin(&w);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -EINVAL); /* unclosed */
	jsonw_init(&w, 0);
	jsonw_key(&w, "k"); /* a key outside an object */
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -EINVAL);
	jsonw_init(&w, 0);
	jsonw_arr_end(&w);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -EINVAL);
	jsonw_init(&w, 0);
	for (int i = 0; i < JSONW_DEPTH + 1; i++)
		jsonw_arr_begin(&w);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -E2BIG);
	jsonw_init(&w, 16);
	jsonw_arr_begin(&w);
	jsonw_str(&w, "more than sixteen bytes");
	jsonw_arr_end(&w);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -E2BIG);
	jsonw_init(&w, 0);
	ck_assert_int_eq(jsonw_finish(&w, &s, &n), -EINVAL); /* nothing written */
}
END_TEST

/* Last: every recorded exchange against the OpenAPI document. */
START_TEST(test_openapi)
{
	char cmd[512];

	ck_assert_msg(access("vmm/openapi.json", R_OK) == 0, "run from the repository's root");
	snprintf(cmd, sizeof(cmd), "python3 tests/integration/api_check.py --require-all vmm/openapi.json %s",
		 exchanges_path());
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	TCase *doc = tcase_create("openapi");
	SRunner *sr;
	FILE *f;
	int failed;

	/* Every test appends its exchanges; start afresh. */
	f = fopen(exchanges_path(), "w");
	if (!f) {
		perror(exchanges_path());
		return 1;
	}
	fclose(f);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_wrong_state);
	tcase_add_test(tc, test_start_failure);
	tcase_add_test(tc, test_bad_bodies);
	tcase_add_test(tc, test_snapshot_dir);
	tcase_add_test(tc, test_restore);
	tcase_add_test(tc, test_restore_failure);
	tcase_add_test(tc, test_disk_limit);
	tcase_add_test(tc, test_http_errors);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_events_lost);
	tcase_add_test(tc, test_events_follow);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_handle);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_python_client);
	tcase_add_test(tc, test_jsonw);
	tcase_set_timeout(doc, 60);
	tcase_add_test(doc, test_openapi);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, doc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
