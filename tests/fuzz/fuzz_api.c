/* libFuzzer target for vmm/api.c over a fake backend: request bodies through the router in each state, and raw bytes through api_serve_fd; every answer is a status with valid JSON. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/api.h"
#include "vmm/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	struct api *api;
};

static int f_start(void *ctx, const struct api_config *cfg, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct api_event ev = { .type = API_EV_READY };

	return api_post_event(f->api, &ev);
}

static int f_exec(void *ctx, const struct api_exec_req *req, const struct api_exec_sink *sink,
		  struct api_exec_result *res, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < req->argc; i++)
		if (sink->output(sink->sink_ctx, 1 + (int)(i & 1), req->argv[i], strlen(req->argv[i])))
			return -EPIPE;
	if (req->stdin_data && sink->output(sink->sink_ctx, 1, req->stdin_data, req->stdin_len))
		return -EPIPE;
	res->kind = (enum api_exit_kind)(req->argc % 4);
	res->status = (int)(req->argc & 255);
	if (req->argc == 7) {
		snprintf(err, errlen, "\xff broken \"agent\"");
		return -EIO;
	}
	return 0;
}

static int f_ok(void *ctx, char *err, size_t errlen)
{
	return 0;
}

static int f_snapshot(void *ctx, const char *dir, char *err, size_t errlen)
{
	return strlen(dir) % 3 ? 0 : -EEXIST;
}

static int f_stop(void *ctx, char *err, size_t errlen)
{
	struct fake *f = ctx;
	struct api_event ev = { .type = API_EV_VM_EXIT };

	return api_post_event(f->api, &ev);
}

static int f_metrics(void *ctx, struct api_metrics *m, char *err, size_t errlen)
{
	m->nr_exits = 1;
	memcpy(m->exits[0].name, "io", 3);
	return 0;
}

static const struct api_backend_ops ops = {
	.start = f_start, .exec = f_exec, .pause = f_ok, .resume = f_ok,
	.snapshot = f_snapshot, .stop = f_stop, .metrics = f_metrics,
};

static const struct {
	char method[5];
	char path[16];
} eps[] = {
	{ "PUT", "/machine" }, { "PUT", "/boot" }, { "PUT", "/rootfs" }, { "PUT", "/disks/a" },
	{ "PUT", "/vsock" }, { "PUT", "/net" }, { "PUT", "/policy" }, { "GET", "/config" },
	{ "POST", "/start" }, { "GET", "/status" }, { "POST", "/exec" }, { "POST", "/pause" },
	{ "POST", "/resume" }, { "POST", "/snapshot" }, { "POST", "/stop" }, { "GET", "/events" },
	{ "GET", "/metrics" }, { "PUT", "/disks/" }, { "GET", "/x" }, { "HEAD", "/status" },
	{ "PUT", "/restore" }, /* last: the seeds' data[1] index this table */
};

static void valid_json(const char *s, size_t n)
{
	struct json_doc *d;
	char err[128];

	assert(json_parse(s, n, NULL, &d, err, sizeof(err)) == 0);
	assert(json_root(d)->type == JSON_OBJECT);
	json_free(d);
}

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake f;
	struct api *api;
	int status, devnull, sv[2];
	char *out;
	size_t len;
	pthread_t t;

	if (size < 2 || size > 70000)
		return 0;
	if (api_create(&ops, &f, &api))
		return 0;
	f.api = api;
	/* data[0] bits 0-1: the state to start from; bit 7: raw HTTP. */
	if (data[0] & 3) {
		assert(api_handle(api, "PUT", "/boot", "{\"kernel\":\"/k\"}", 15, NULL, -1, &status, &out, &len) == 0);
		free(out);
		assert(api_handle(api, "POST", "/start", NULL, 0, NULL, -1, &status, &out, &len) == 0);
		assert(status == 200);
		free(out);
		if ((data[0] & 3) >= 2) {
			assert(api_handle(api, "POST", (data[0] & 3) == 2 ? "/pause" : "/stop", NULL, 0, NULL,
					  -1, &status, &out, &len) == 0);
			free(out);
		}
	}
	if (data[0] & 0x80) {
		/* Raw bytes through the connection loop. */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
			if (pthread_create(&t, NULL, drain, &sv[0]) == 0) {
				if (write(sv[0], data + 1, size - 1) == (ssize_t)(size - 1))
					(void)shutdown(sv[0], SHUT_WR);
				else
					(void)shutdown(sv[0], SHUT_RDWR);
				(void)!api_serve_fd(api, sv[1]);
				close(sv[1]);
				pthread_join(t, NULL);
			}
			close(sv[0]);
		}
	} else {
		unsigned int e = data[1] % (sizeof(eps) / sizeof(eps[0]));

		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		assert(api_handle(api, eps[e].method, eps[e].path, (const char *)data + 2, size - 2,
				  (data[0] & 4) ? "text/plain" : NULL, devnull, &status, &out, &len) == 0);
		assert(status >= 200 && status <= 599);
		if (status == 200 && (!strcmp(eps[e].path, "/exec") || !strcmp(eps[e].path, "/events")))
			assert(len == 0);
		else if (status == 204)
			assert(len == 0);
		else
			valid_json(out, len);
		free(out);
		if (devnull >= 0)
			close(devnull);
	}
	api_destroy(api);
	return 0;
}
