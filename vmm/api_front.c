/* The control socket wired to the library front: vmm/api.h's backend ops over minivm_vm_*, and a thread accepting connections. */
#include "vmm/api_front.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct api_front_conn {
	struct api_front *f;
	int fd;
	pthread_t thread;
	atomic_bool done;
	bool used;
};

struct api_front {
	struct api *api;
	struct minivm_vm_config base;
	char path[108];
	int lfd;
	int quit[2];               /* the accept thread's wake-up */
	int start_pipe[2];         /* the monitor's minivm_vm_start() result */
	pthread_t accept_thread;
	bool accept_started;
	pthread_mutex_t lock;      /* vm's lifecycle, the connection slots */
	struct minivm_vm *_Atomic vm;
	pthread_t monitor;
	bool monitor_started;      /* under lock */
	pthread_mutex_t mon_lock;  /* joining the monitor (a stop waits there, up to the VMM's grace) */
	bool monitor_joined;       /* under mon_lock */
	struct api_front_conn conns[API_FRONT_MAX_CONNS];
	atomic_uint_fast64_t commands;
	struct minivm_result res;  /* the VM's end: written before ended is set */
	atomic_bool ended;
	atomic_bool vm_started;    /* start() succeeded: vm lives until destroy */
	char snapshot_dir[API_PATH_MAX]; /* PUT /machine's, as at start ("": none) */
};

/* ---- the backend ---- */

/* The name of an IP protocol in a policy_denied event. */
static const char *api_front_proto(uint8_t p)
{
	switch (p) {
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	default: return "other";
	}
}

void api_front_event_from(struct api_event *a, const struct minivm_event *ev)
{
	uint32_t ip = ev->dst_ip;

	memset(a, 0, sizeof(*a));
	snprintf(a->message, sizeof(a->message), "%s", ev->message);
	if (ev->type != MINIVM_EVENT_POLICY_DENIED) {
		a->type = API_EV_GUEST_ERROR;
		return;
	}
	a->type = API_EV_POLICY_DENIED;
	if (ip)
		snprintf(a->dst, sizeof(a->dst), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff,
			 (ip >> 8) & 0xff, ip & 0xff);
	a->port = ev->dst_port;
	snprintf(a->proto, sizeof(a->proto), "%s", ip ? api_front_proto(ev->ip_proto) : "other");
	snprintf(a->reason, sizeof(a->reason), "%s", ev->reason);
}

/* The VM's events (minivm_event_fn: the VM's lock held, never blocks)
 * become the socket's. */
static void api_front_on_event(void *opaque, const struct minivm_event *ev)
{
	struct api_front *f = opaque;
	struct api_event a;

	api_front_event_from(&a, ev);
	(void)!api_post_event(f->api, &a);
}

/* The VM's config from the socket's, over the base. */
static int api_front_config(struct api_front *f, const struct api_config *a,
			    struct minivm_vm_config *c, const char ***allow)
{
	struct minivm_config *m = &c->vm;

	*c = f->base;
	m->kernel = a->kernel[0] ? a->kernel : NULL;
	m->cmdline = a->cmdline[0] ? a->cmdline : NULL;
	m->cpus = a->vcpus ? a->vcpus : 1;
	m->mem_bytes = (a->mem_mib ? a->mem_mib : 256) << 20;
	m->vm_timeout_ms = a->vm_timeout_ms;
	c->snapshot_dir = a->snapshot_dir[0] ? a->snapshot_dir : NULL;
	/* The snapshot decides kernel, vCPUs, memory, CID and disks: the
	 * router refused them with a restore_dir; the front reads them. */
	c->restore_dir = a->restore_dir[0] ? a->restore_dir : NULL;
	m->rootfs = a->rootfs[0] ? a->rootfs : NULL;
	m->rootfs_rw = a->rootfs[0] && !a->rootfs_read_only;
	m->rootfs_limit = a->rootfs_limit;
	m->nr_disks = a->nr_disks;
	for (unsigned int i = 0; i < a->nr_disks; i++) {
		memset(&m->disks[i], 0, sizeof(m->disks[i]));
		m->disks[i].path = a->disks[i].path;
		m->disks[i].read_only = a->disks[i].read_only;
		m->disks[i].limit = a->disks[i].limit;
	}
	if (a->guest_cid)
		m->guest_cid = a->guest_cid;
	m->vsock_uds = a->vsock_uds[0] ? a->vsock_uds : NULL;
	*allow = NULL;
	if (a->tap[0]) {
		m->net.tap = a->tap;
		memcpy(m->net.mac, a->mac, sizeof(m->net.mac));
		m->net.ip = a->ip;
		m->net.prefix = a->prefix;
		m->net.gw = a->gw;
		m->net.dns = a->dns;
		m->net.rx_limit = a->rx_limit;
		m->net.tx_limit = a->tx_limit;
		m->net.allow_dns = a->allow_dns;
		if (a->nr_allow) {
			*allow = calloc(a->nr_allow, sizeof(**allow));
			if (!*allow)
				return -ENOMEM;
			for (unsigned int i = 0; i < a->nr_allow; i++)
				(*allow)[i] = a->allow[i];
			m->net.allow = *allow;
			m->net.nr_allow = a->nr_allow;
		}
	}
	c->agent = true;
	c->event_fn = api_front_on_event;
	c->event_opaque = f;
	return 0;
}

/*
 * Starts the VM, then waits for ready and for the end; posts READY and
 * VM_EXIT. The start happens on this long-lived thread (the VMM process
 * once died with the thread that started it, and a connection's thread
 * ends with its connection; now it follows the process, but the monitor
 * is where the VM's life is followed anyway). start()'s result goes to
 * start_wr.
 */
static void *api_front_monitor(void *arg)
{
	struct api_front *f = arg;
	struct minivm_vm *vm = atomic_load(&f->vm);
	struct minivm_result res;
	struct api_event ev;
	sigset_t all;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	r = minivm_vm_start(vm);
	if (write(f->start_pipe[1], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
		/* Cannot fail: a pipe with room for it. */
	}
	if (r)
		return NULL;
	if (minivm_vm_wait_ready(vm, -1) == 0) {
		memset(&ev, 0, sizeof(ev));
		ev.type = API_EV_READY;
		(void)!api_post_event(f->api, &ev);
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = API_EV_VM_EXIT;
	memset(&res, 0, sizeof(res));
	if (minivm_vm_wait(vm, &res)) {
		snprintf(ev.message, sizeof(ev.message), "%s", minivm_vm_error(vm));
		res.outcome = MINIVM_VMM_ERROR;
	}
	ev.outcome = res.outcome;
	ev.status = res.status;
	f->res = res;
	atomic_store(&f->ended, true);
	(void)!api_post_event(f->api, &ev);
	return NULL;
}

bool api_front_result(struct api_front *f, struct minivm_result *out)
{
	if (!atomic_load(&f->ended))
		return false;
	*out = f->res;
	return true;
}

static int api_front_start(void *ctx, const struct api_config *cfg, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm_config c;
	struct minivm_vm *vm = NULL;
	const char **allow = NULL;
	int r;

	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->vm)) {
		snprintf(err, errlen, "a VM was started already");
		r = -EALREADY;
		goto out;
	}
	r = api_front_config(f, cfg, &c, &allow);
	if (r) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = minivm_vm_create(&c, &vm, err, errlen); /* copies the strings */
	free(allow);
	if (r)
		goto out;
	atomic_store(&f->vm, vm);
	r = pthread_create(&f->monitor, NULL, api_front_monitor, f);
	if (r) {
		atomic_store(&f->vm, NULL);
		minivm_vm_destroy(vm);
		snprintf(err, errlen, "pthread_create: %s", strerror(r));
		r = -r;
		goto out;
	}
	{
		int sr = -EIO;

		while (read(f->start_pipe[0], &sr, sizeof(sr)) < 0 && errno == EINTR) {
		}
		r = sr;
	}
	if (r) {
		/* A failed start leaves the state configuring: all undone. */
		pthread_join(f->monitor, NULL);
		snprintf(err, errlen, "%s", minivm_vm_error(vm));
		atomic_store(&f->vm, NULL);
		minivm_vm_destroy(vm);
		goto out;
	}
	f->monitor_started = true;
	snprintf(f->snapshot_dir, sizeof(f->snapshot_dir), "%s", cfg->snapshot_dir);
	atomic_store(&f->vm_started, true);
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

struct api_front_io {
	const struct api_exec_req *req;
	const struct api_exec_sink *sink;
	size_t in_off;
	int abort_wr;  /* a 0 byte here aborts the command: the client is gone */
	bool sink_failed;
};

static long api_front_stdin(void *opaque, void *buf, size_t len)
{
	struct api_front_io *io = opaque;
	size_t n = io->req->stdin_len - io->in_off;

	if (n > len)
		n = len;
	memcpy(buf, io->req->stdin_data + io->in_off, n);
	io->in_off += n;
	return (long)n;
}

static int api_front_output(struct api_front_io *io, int stream, const void *buf, size_t len)
{
	unsigned char zero = 0;

	if (io->sink->output(io->sink->sink_ctx, stream, buf, len) == 0)
		return 0;
	if (!io->sink_failed && write(io->abort_wr, &zero, 1) < 0) {
		/* Cannot fail: an empty pipe. */
	}
	io->sink_failed = true;
	return -EPIPE;
}

static int api_front_stdout(void *opaque, const void *buf, size_t len)
{
	return api_front_output(opaque, 1, buf, len);
}

static int api_front_stderr(void *opaque, const void *buf, size_t len)
{
	return api_front_output(opaque, 2, buf, len);
}

static int api_front_exec(void *ctx, const struct api_exec_req *req,
			  const struct api_exec_sink *sink, struct api_exec_result *res, char *err,
			  size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm *vm = atomic_load(&f->vm);
	struct minivm_exec_result xr;
	struct api_front_io io = { .req = req, .sink = sink };
	struct minivm_exec cmd;
	int ctl[2], r;

	if (!vm) {
		snprintf(err, errlen, "no VM");
		return -EINVAL;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -EIO;
	}
	io.abort_wr = ctl[1];
	minivm_exec_init(&cmd);
	cmd.argv = req->argv;
	cmd.env = req->nr_env ? req->env : NULL;
	cmd.cwd = req->cwd;
	cmd.user = req->user;
	cmd.timeout_s = req->timeout_s;
	if (req->stdin_data)
		cmd.stdin_fn = api_front_stdin;
	cmd.stdout_fn = api_front_stdout;
	cmd.stderr_fn = api_front_stderr;
	cmd.opaque = &io;
	cmd.ctl_fd = ctl[0];
	atomic_fetch_add(&f->commands, 1);
	r = minivm_vm_exec(vm, &cmd, &xr);
	close(ctl[0]);
	close(ctl[1]);
	if (r == -ECANCELED && io.sink_failed)
		return -EPIPE;
	if (r) {
		snprintf(err, errlen, "%s", xr.message);
		return r;
	}
	switch (xr.kind) {
	case MINIVM_EXEC_SIGNALED:
		res->kind = API_EXIT_SIGNALED;
		break;
	case MINIVM_EXEC_TIMED_OUT:
		res->kind = API_EXIT_TIMED_OUT;
		break;
	case MINIVM_EXEC_START_FAILED:
		res->kind = API_EXIT_START_FAILED;
		break;
	default:
		res->kind = API_EXIT_EXITED;
		break;
	}
	res->code = xr.code;
	res->signo = xr.signo;
	res->errnum = xr.err;
	res->status = xr.status;
	return 0;
}

static int api_front_pause(void *ctx, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm *vm = atomic_load(&f->vm);
	int r = vm ? minivm_vm_pause(vm) : -EINVAL;

	if (r)
		snprintf(err, errlen, "%s", vm ? minivm_vm_error(vm) : "no VM");
	return r;
}

static int api_front_resume(void *ctx, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm *vm = atomic_load(&f->vm);
	int r = vm ? minivm_vm_resume(vm) : -EINVAL;

	if (r)
		snprintf(err, errlen, "%s", vm ? minivm_vm_error(vm) : "no VM");
	return r;
}

/*
 * The jailed VMM writes only to files the front opened before it started:
 * a snapshot goes to PUT /machine's snapshot_dir, once. The router calls
 * this in state paused only; minivm_vm_snapshot() leaves the VM paused.
 */
static int api_front_snapshot(void *ctx, const char *dir, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm *vm = atomic_load(&f->vm);
	int r;

	if (!vm) {
		snprintf(err, errlen, "no VM");
		return -EINVAL;
	}
	if (!f->snapshot_dir[0]) {
		snprintf(err, errlen, "no snapshot_dir: give it in PUT /machine before start (the "
				      "jailed VMM cannot open %.200s)", dir);
		return -EINVAL;
	}
	if (strcmp(dir, f->snapshot_dir)) {
		snprintf(err, errlen, "%.200s is not the snapshot_dir of PUT /machine (%.200s): the "
				      "jailed VMM writes only there", dir, f->snapshot_dir);
		return -EINVAL;
	}
	r = minivm_vm_snapshot(vm, dir);
	if (r) {
		const char *m = minivm_vm_error(vm);

		/* The router puts its own "snapshot: " first. */
		snprintf(err, errlen, "%s", strncmp(m, "snapshot: ", 10) ? m : m + 10);
	}
	return r;
}

static void api_front_join_monitor(struct api_front *f)
{
	bool started;

	pthread_mutex_lock(&f->lock);
	started = f->monitor_started;
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&f->mon_lock);
	if (started && !f->monitor_joined) {
		pthread_join(f->monitor, NULL);
		f->monitor_joined = true;
	}
	pthread_mutex_unlock(&f->mon_lock);
}

static int api_front_stop(void *ctx, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_vm *vm = atomic_load(&f->vm);

	if (!vm) {
		snprintf(err, errlen, "no VM");
		return -EINVAL;
	}
	minivm_vm_stop(vm);
	api_front_join_monitor(f); /* it took the result and posted VM_EXIT */
	return 0;
}

/* Whether a name from the VMM may be a JSON key of /metrics: [a-z0-9_]+. */
static bool api_front_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* minivm_metrics' device counters into the API's. */
static void api_front_device(struct api_device_metrics *d, const struct minivm_device_metrics *s)
{
	snprintf(d->name, sizeof(d->name), "%s", s->name);
	snprintf(d->kind, sizeof(d->kind), "%s", s->kind);
	d->reads = s->reads;
	d->writes = s->writes;
	d->read_bytes = s->read_bytes;
	d->write_bytes = s->write_bytes;
	d->flushes = s->flushes;
	d->throttled = s->throttled;
	d->denied = s->denied;
	d->errors = s->errors;
}

void api_front_metrics_from(struct api_metrics *m, const struct minivm_metrics *s)
{
	for (unsigned int i = 0; i < s->nr_exits && m->nr_exits < API_METRICS_MAX_EXITS; i++) {
		if (!api_front_name_ok(s->exits[i].name))
			continue;
		snprintf(m->exits[m->nr_exits].name, API_METRIC_NAME_MAX, "%s", s->exits[i].name);
		m->exits[m->nr_exits++].count = s->exits[i].count;
	}
	for (unsigned int i = 0; i < s->nr_devices && m->nr_devices < API_METRICS_MAX_DEVICES; i++)
		api_front_device(&m->devices[m->nr_devices++], &s->devices[i]);
	m->exits_total = s->exits_total;
	m->policy_denials = s->policy_denials;
	m->ratelimit_throttles = s->ratelimit_throttles;
	m->guest_errors = s->guest_errors;
	m->events_suppressed = s->events_suppressed;
	m->commands_started = s->commands_started;
	m->commands_exited = s->commands_exited;
	m->commands_failed = s->commands_failed;
}

static int api_front_metrics(void *ctx, struct api_metrics *m, char *err, size_t errlen)
{
	struct api_front *f = ctx;
	struct minivm_metrics mm;
	struct minivm_vm *vm;
	int r;

	m->agent_commands = atomic_load(&f->commands);
	/* Before a start succeeded there is nothing to count, and a failing
	 * start frees its VM under us: the flag first, then the VM. */
	if (!atomic_load(&f->vm_started))
		return 0;
	vm = atomic_load(&f->vm);
	if (!vm)
		return 0;
	r = minivm_vm_metrics(vm, &mm);
	if (r) {
		snprintf(err, errlen, "%s", minivm_vm_error(vm));
		return r;
	}
	api_front_metrics_from(m, &mm);
	return 0;
}

static const struct api_backend_ops api_front_ops = {
	.start = api_front_start,
	.exec = api_front_exec,
	.pause = api_front_pause,
	.resume = api_front_resume,
	.snapshot = api_front_snapshot,
	.stop = api_front_stop,
	.metrics = api_front_metrics,
};

/* ---- the connections ---- */

static void *api_front_conn_thread(void *arg)
{
	struct api_front_conn *c = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	(void)!api_serve_fd(c->f->api, c->fd);
	close(c->fd);
	atomic_store(&c->done, true);
	return NULL;
}

/* Joins the threads of connections that ended; the slot's index or -1 when all are busy. */
static int api_front_free_slot(struct api_front *f)
{
	int slot = -1;

	for (int i = 0; i < API_FRONT_MAX_CONNS; i++) {
		struct api_front_conn *c = &f->conns[i];

		if (c->used && atomic_load(&c->done)) {
			pthread_join(c->thread, NULL);
			c->used = false;
		}
		if (!c->used && slot < 0)
			slot = i;
	}
	return slot;
}

static void *api_front_accept_thread(void *arg)
{
	struct api_front *f = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pollfd p[2] = { { .fd = f->lfd, .events = POLLIN },
				       { .fd = f->quit[0], .events = POLLIN } };
		int fd, slot;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if (!p[0].revents)
			continue;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->lock);
		slot = api_front_free_slot(f);
		if (slot >= 0) {
			struct api_front_conn *c = &f->conns[slot];

			c->f = f;
			c->fd = fd;
			atomic_store(&c->done, false);
			c->used = pthread_create(&c->thread, NULL, api_front_conn_thread, c) == 0;
			if (!c->used)
				slot = -1;
		}
		pthread_mutex_unlock(&f->lock);
		if (slot < 0)
			close(fd); /* too many at once */
	}
}

int api_front_create(const char *sock_path, const struct minivm_vm_config *base,
		     struct api_front **out, char *err, size_t errlen)
{
	struct api_front *f;
	int r;

	*out = NULL;
	if (strlen(sock_path) >= sizeof(f->path)) {
		snprintf(err, errlen, "--api-sock %s: the path is too long", sock_path);
		return -ENAMETOOLONG;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	f->lfd = f->quit[0] = f->quit[1] = f->start_pipe[0] = f->start_pipe[1] = -1;
	f->base = *base;
	snprintf(f->path, sizeof(f->path), "%s", sock_path);
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->mon_lock, NULL);
	r = api_create(&api_front_ops, f, &f->api);
	if (r) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = api_listen(sock_path, &f->lfd);
	if (r) {
		snprintf(err, errlen, "--api-sock %s: %s", sock_path, strerror(-r));
		goto fail;
	}
	if (pipe2(f->quit, O_CLOEXEC) || pipe2(f->start_pipe, O_CLOEXEC)) {
		r = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	r = pthread_create(&f->accept_thread, NULL, api_front_accept_thread, f);
	if (r) {
		snprintf(err, errlen, "pthread_create: %s", strerror(r));
		r = -r;
		goto fail;
	}
	f->accept_started = true;
	*out = f;
	return 0;
fail:
	api_front_destroy(f);
	return r;
}

enum api_state api_front_state(struct api_front *f)
{
	return api_state(f->api);
}

void api_front_stop_vm(struct api_front *f)
{
	struct minivm_vm *vm = atomic_load(&f->vm);

	if (vm)
		minivm_vm_stop(vm);
}

void api_front_destroy(struct api_front *f)
{
	struct minivm_vm *vm;

	if (!f)
		return;
	api_front_stop_vm(f);
	api_front_join_monitor(f);
	if (f->api)
		api_shutdown(f->api);
	if (f->accept_started) {
		(void)!write(f->quit[1], "q", 1);
		pthread_join(f->accept_thread, NULL);
	}
	for (int i = 0; i < API_FRONT_MAX_CONNS; i++)
		if (f->conns[i].used)
			pthread_join(f->conns[i].thread, NULL);
	vm = atomic_load(&f->vm);
	atomic_store(&f->vm, NULL);
	minivm_vm_destroy(vm);
	api_destroy(f->api);
	if (f->lfd >= 0) {
		close(f->lfd);
		(void)unlink(f->path);
	}
	for (int i = 0; i < 2; i++) {
		if (f->quit[i] >= 0)
			close(f->quit[i]);
		if (f->start_pipe[i] >= 0)
			close(f->start_pipe[i]);
	}
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->mon_lock);
	free(f);
}
