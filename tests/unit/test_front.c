/* Unit tests for vmm/front.c without KVM: config checks, the files the front makes and removes, calls out of order, several VMs in one process. */
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
#include "vmm/front.h"
#include "vmm/minivm.h"
#include "tests/unit/test_sock_helpers.h"

static char t_dir[64];
static char t_kernel[128];
static char t_rootfs[128];
static char t_err[512];

/* A private TMPDIR (the run directories go there) with a fake kernel file
 * (create only checks it can be read) and a fake root image. */
static void setup(void)
{
	int fd;

	snprintf(t_dir, sizeof(t_dir), "/tmp/front-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	setenv("TMPDIR", t_dir, 1);
	unsetenv("XDG_RUNTIME_DIR");
	snprintf(t_kernel, sizeof(t_kernel), "%s/vmlinux", t_dir);
	fd = open(t_kernel, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	snprintf(t_rootfs, sizeof(t_rootfs), "%s/rootfs.img", t_dir);
	fd = open(t_rootfs, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
}

/* Nothing left in TMPDIR but the two files made by setup(). */
static void teardown(void)
{
	char cmd[256];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", t_dir);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	ck_assert_msg(n == 2, "%d entries left in %s", n, t_dir);
	unlink(t_kernel);
	unlink(t_rootfs);
	rmdir(t_dir);
}

static void base_config(struct minivm_vm_config *c)
{
	minivm_vm_config_init(c);
	c->vm.kernel = t_kernel;
	c->agent = false;
}

static bool is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

START_TEST(test_defaults)
{
	struct minivm_vm_config c;
	struct minivm_exec x;

	minivm_vm_config_init(&c);
	ck_assert(c.agent);
	ck_assert_int_eq(c.jail, MINIVM_JAIL_AUTO);
	ck_assert_uint_eq(c.jail_uid, MINIVM_JAIL_DEFAULT_ID);
	ck_assert_int_eq(c.vm.restore_state_fd, -1);
	ck_assert_int_eq(c.vm.snapshot_mem_fd, -1);
	minivm_exec_init(&x);
	ck_assert_int_eq(x.stdin_fd, -1);
	ck_assert_int_eq(x.stdout_fd, -1);
	ck_assert_int_eq(x.stderr_fd, -1);
	ck_assert_int_eq(x.ctl_fd, -1);
	ck_assert_int_eq(x.winsize_fd, -1);
	minivm_vm_destroy(NULL);
}
END_TEST

/* Each bad config: its errno, a message naming the problem, no VM, no file. */
START_TEST(test_bad_configs)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm = (struct minivm_vm *)&c;
	char missing[160];

	base_config(&c);
	c.vm.kernel = NULL;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_ptr_null(vm);
	ck_assert_str_eq(t_err, "no kernel given");

	snprintf(missing, sizeof(missing), "%s/nonexistent", t_dir);
	base_config(&c);
	c.vm.kernel = missing;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(t_err, "cannot open kernel"));
	ck_assert_ptr_nonnull(strstr(t_err, "nonexistent"));

	base_config(&c);
	c.restore_dir = t_dir;
	c.snapshot_dir = t_dir;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);

	base_config(&c);
	c.agent = true;
	c.restore_dir = t_dir; /* with a kernel: the snapshot names the machine */
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(t_err, "snapshot names the machine"));

	base_config(&c);
	c.vm.restore_state_fd = 0;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);

	base_config(&c);
	c.scratch = MINIVM_SCRATCH_DISK; /* without the agent */
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);

	base_config(&c);
	c.agent = true;
	c.scratch_size = 4096;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);

	base_config(&c);
	c.jail = (enum minivm_jail)7;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);

	base_config(&c);
	c.vm.nr_disks = MINIVM_MAX_DISKS + 1;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_ptr_null(vm);
}
END_TEST

/* A restore from a directory without a snapshot fails at create, and the
 * run directory it made is gone again. */
START_TEST(test_restore_missing)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm;

	minivm_vm_config_init(&c);
	c.restore_dir = t_dir;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), -ENOENT);
	ck_assert_ptr_null(vm);
	ck_assert_ptr_nonnull(strstr(t_err, "restore: cannot open"));
}
END_TEST

/* Every call in the wrong state answers with an error, never a crash. */
/* minivm_vm_metrics() of a VM without a VMM process: only command counts. */
static void check_metrics(struct minivm_vm *vm, uint64_t started, uint64_t exited, uint64_t failed)
{
	struct minivm_metrics m;

	ck_assert_int_eq(minivm_vm_metrics(vm, &m), 0);
	ck_assert_uint_eq(m.commands_started, started);
	ck_assert_uint_eq(m.commands_exited, exited);
	ck_assert_uint_eq(m.commands_failed, failed);
	ck_assert_uint_eq(m.nr_exits, 0);
	ck_assert_uint_eq(m.exits_total, 0);
	ck_assert_uint_eq(m.nr_devices, 0);
}

START_TEST(test_out_of_order)
{
	struct minivm_vm_config c;
	struct minivm_exec_result xr;
	struct minivm_result res;
	struct minivm_exec x;
	struct minivm_vm *vm;
	const char *argv[] = { "true", NULL };

	base_config(&c);
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), 0);
	ck_assert(is_dir(minivm_vm_run_dir(vm)));
	ck_assert_str_eq(minivm_vm_error(vm), "");
	ck_assert(minivm_vm_ended(vm));

	minivm_exec_init(&x);
	x.argv = argv;
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), -EINVAL);
	ck_assert_str_eq(xr.message, "the VM is not started");
	ck_assert_str_eq(minivm_vm_error(vm), "the VM is not started");
	x.argv = NULL;
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), -EINVAL);
	ck_assert_int_eq(minivm_vm_put_file(vm, "relative", 0644, 0), -EINVAL);
	ck_assert_int_eq(minivm_vm_get_file(vm, "/etc/hostname", 1, NULL), -EINVAL);
	ck_assert_int_eq(minivm_vm_wait_ready(vm, 0), -EINVAL);
	ck_assert_int_eq(minivm_vm_wait(vm, &res), -EINVAL);
	ck_assert_int_eq(res.outcome, MINIVM_VMM_ERROR);
	ck_assert_int_eq(minivm_vm_pause(vm), -EINVAL);
	ck_assert_int_eq(minivm_vm_resume(vm), 0); /* not paused: nothing to do */
	ck_assert_int_eq(minivm_vm_snapshot(vm, NULL), -EINVAL);
	ck_assert_int_eq(minivm_vm_shutdown(vm, 0, 0), -EINVAL);
	/* Metrics before start: zeros, but the refused commands (counted as
	 * started and failed). */
	check_metrics(vm, 2, 0, 2);
	/* A stop before start: start refuses, nothing was forked. */
	minivm_vm_stop(vm);
	ck_assert_int_eq(minivm_vm_start(vm), -ECANCELED);
	minivm_vm_destroy(vm);
}
END_TEST

/* The log callback's record for test_relay: the lines and their levels. */
struct t_log {
	pthread_mutex_t lock;
	char text[1024];
	int warn, info, error;
};

static void t_log_fn(void *ctx, enum minivm_log_level level, const char *msg)
{
	struct t_log *l = ctx;
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = strlen(l->text);
	snprintf(l->text + n, sizeof(l->text) - n, "%d:%s|", (int)level, msg);
	l->warn += level == MINIVM_LOG_WARN;
	l->info += level == MINIVM_LOG_INFO;
	l->error += level == MINIVM_LOG_ERROR;
	pthread_mutex_unlock(&l->lock);
}

/*
 * With a log callback, what the VMM process writes to its stderr reaches
 * the callback line by line (the level from the line's form, "minivm: "
 * taken off), including the lines of a process that fails at once; nothing
 * of it reaches our stderr. The "VMM" here is a script that writes three
 * lines, one of them without a newline at its end, and exits.
 */
START_TEST(test_relay)
{
	struct t_log l = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct minivm_vm_config c;
	struct minivm_vm *vm;
	char script[160];
	FILE *f;

	snprintf(script, sizeof(script), "%s/fake-vmm", t_dir);
	f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\necho 'minivm: warning: jail: a test' >&2\n"
		   "echo 'minivm: [    0.001] a step' >&2\nprintf 'error: no newline' >&2\n");
	fclose(f);
	ck_assert_int_eq(chmod(script, 0700), 0);
	base_config(&c);
	c.vmm_path = script;
	c.log_fn = t_log_fn;
	c.log_ctx = &l;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), 0);
	ck_assert_int_lt(minivm_vm_start(vm), 0);
	minivm_vm_destroy(vm);
	ck_assert_str_eq(l.text, "1:warning: jail: a test|2:[    0.001] a step|0:error: no newline|");
	ck_assert_int_eq(l.warn, 1);
	ck_assert_int_eq(l.info, 1);
	ck_assert_int_eq(l.error, 1);
	unlink(script);
}
END_TEST

/* Two VMs at once: separate run directories and messages. The strings of
 * the caller's config are copied. */
START_TEST(test_two_vms)
{
	struct minivm_vm_config c;
	struct minivm_vm *a, *b;
	char kernel[128];
	struct minivm_exec_result xr;
	struct minivm_exec x;

	base_config(&c);
	snprintf(kernel, sizeof(kernel), "%s", t_kernel);
	c.vm.kernel = kernel;
	ck_assert_int_eq(minivm_vm_create(&c, &a, t_err, sizeof(t_err)), 0);
	ck_assert_int_eq(minivm_vm_create(&c, &b, t_err, sizeof(t_err)), 0);
	memset(kernel, 'x', sizeof(kernel) - 1);
	ck_assert_str_eq(front_vm_config(a)->kernel, t_kernel);
	ck_assert_str_ne(minivm_vm_run_dir(a), minivm_vm_run_dir(b));
	ck_assert_str_ne(minivm_vm_vsock_path(a), minivm_vm_vsock_path(b));
	minivm_exec_init(&x);
	ck_assert_int_eq(minivm_vm_exec(a, &x, &xr), -EINVAL);
	ck_assert_str_eq(minivm_vm_error(a), "no command");
	ck_assert_str_eq(minivm_vm_error(b), "");
	minivm_vm_destroy(a);
	ck_assert(is_dir(minivm_vm_run_dir(b)));
	minivm_vm_destroy(b);
}
END_TEST

/* With the agent and a read-only root, the default scratch layer is a disk
 * image in the run directory, the last disk, and gone after destroy; the
 * console log goes to the run directory. */
START_TEST(test_scratch_disk)
{
	struct minivm_vm_config c;
	const struct minivm_config *m;
	struct minivm_vm *vm;
	struct stat st;

	base_config(&c);
	c.agent = true;
	c.vm.rootfs = t_rootfs;
	c.scratch_size = 16 << 20;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), 0);
	m = front_vm_config(vm);
	ck_assert_uint_eq(m->nr_disks, 1);
	ck_assert_str_eq(m->disks[0].path, front_vm_scratch_image(vm));
	ck_assert_int_eq(stat(front_vm_scratch_image(vm), &st), 0);
	ck_assert_int_eq(st.st_size, 16 << 20);
	ck_assert_ptr_nonnull(strstr(m->cmdline, "minivm.scratch="));
	ck_assert_ptr_nonnull(strstr(minivm_vm_console_path(vm), minivm_vm_run_dir(vm)));
	minivm_vm_destroy(vm);
}
END_TEST

/* snapshot_dir: made at create with the VMM's files (temporary names); a
 * snapshot elsewhere is refused. */
START_TEST(test_snapshot_prepare)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm;
	char dir[160], path[300], other[160];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/snaps/one", t_dir);
	snprintf(other, sizeof(other), "%s/snaps/two", t_dir);
	base_config(&c);
	c.snapshot_dir = dir;
	c.vm.mem_bytes = 64 << 20;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), 0);
	ck_assert(is_dir(dir));
	snprintf(path, sizeof(path), "%s/.memory.tmp", dir);
	if (stat(path, &st) == 0)
		ck_assert_int_eq(st.st_size, 64 << 20);
	ck_assert_int_eq(minivm_vm_snapshot(vm, other), -EINVAL);
	ck_assert_ptr_nonnull(strstr(minivm_vm_error(vm), "snapshot_dir"));
	ck_assert_int_eq(minivm_vm_snapshot(vm, dir), -EINVAL); /* not started */
	minivm_vm_destroy(vm);
	ck_assert_int_eq(system("rm -rf \"$TMPDIR/snaps\""), 0);
}
END_TEST


/* ---- exec and files against the real agent server on the host ---- */

static char t_asock[100];
static pid_t t_agent = -1, t_vmm = -1;


/* One relayed connection: "CONNECT 1024" answered, then bytes both ways. */
static void relay(int c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[64];
	size_t len = 0;
	int a;

	while (len < sizeof(line) - 1 && read(c, line + len, 1) == 1 && line[len] != '\n')
		len++;
	line[len] = '\0';
	if (strcmp(line, "CONNECT 1024") != 0)
		_exit(1);
	(void)!write(c, "OK 1073741824\n", 14);
	a = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t_asock);
	if (connect(a, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(1);
	for (;;) {
		struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = a, .events = POLLIN } };
		char buf[65536];
		ssize_t n;

		if (poll(p, 2, -1) <= 0)
			_exit(1);
		if (p[0].revents) {
			n = read(c, buf, sizeof(buf));
			if (n <= 0 || write(a, buf, (size_t)n) != n)
				_exit(0);
		}
		if (p[1].revents) {
			n = read(a, buf, sizeof(buf));
			if (n <= 0 || write(c, buf, (size_t)n) != n)
				_exit(0);
		}
	}
}

/* A stand-in for the VMM's hybrid vsock socket at path: a process per connection. */
static pid_t start_fake_vmm(const char *path)
{
	int lfd = listen_unix(path);
	pid_t pid;

	ck_assert_int_ge(lfd, 0);
	pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int c = accept(lfd, NULL, NULL);

			if (c < 0)
				_exit(1);
			if (fork() == 0) {
				close(lfd);
				relay(c);
			}
			close(c);
		}
	}
	close(lfd);
	return pid;
}

static pid_t start_agent(const char *path)
{
	int lfd = listen_unix(path);
	pid_t pid;

	ck_assert_int_ge(lfd, 0);
	pid = fork();
	if (pid == 0) {
		struct agent_server_ops ops = { .log_prefix = "test-agent: " };
		struct agent_server *srv;

		if (agent_server_create(lfd, &ops, &srv) != 0)
			_exit(100);
		_exit(agent_server_run(srv) == 0 ? 0 : 101);
	}
	close(lfd);
	return pid;
}

/* A created VM "running" against the host's agent through a fake VMM. */
static struct minivm_vm *fake_vm(void)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm;

	base_config(&c);
	c.agent = true;
	c.scratch = MINIVM_SCRATCH_NONE;
	ck_assert_int_eq(minivm_vm_create(&c, &vm, t_err, sizeof(t_err)), 0);
	snprintf(t_asock, sizeof(t_asock), "%s/agent.sock", minivm_vm_run_dir(vm));
	t_agent = start_agent(t_asock);
	t_vmm = start_fake_vmm(minivm_vm_vsock_path(vm));
	front_vm_test_running(vm);
	return vm;
}

static void fake_vm_end(struct minivm_vm *vm)
{
	kill(t_vmm, SIGKILL);
	kill(t_agent, SIGKILL);
	waitpid(t_vmm, NULL, 0);
	waitpid(t_agent, NULL, 0);
	unlink(t_asock);
	minivm_vm_destroy(vm);
}

static char *fd_text(int fd)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *s = calloc(1, (size_t)n + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pread(fd, s, (size_t)n, 0), n);
	return s;
}

START_TEST(test_exec_fds)
{
	struct minivm_vm *vm = fake_vm();
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 7", NULL };
	struct minivm_exec_result xr;
	struct minivm_exec x;
	char *o, *e;

	minivm_exec_init(&x);
	x.argv = argv;
	x.stdout_fd = memfd_create("o", MFD_CLOEXEC);
	x.stderr_fd = memfd_create("e", MFD_CLOEXEC);
	ck_assert_int_eq(minivm_vm_wait_ready(vm, 0), 0);
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), 0);
	ck_assert_int_eq(xr.kind, MINIVM_EXEC_EXITED);
	ck_assert_int_eq(xr.code, 7);
	ck_assert_int_eq(xr.status, 7);
	o = fd_text(x.stdout_fd);
	e = fd_text(x.stderr_fd);
	ck_assert_str_eq(o, "out\n");
	ck_assert_str_eq(e, "err\n");
	free(o);
	free(e);
	close(x.stdout_fd);
	close(x.stderr_fd);
	argv[0] = "/nonexistent/cmd";
	x.stdout_fd = x.stderr_fd = -1;
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), 0);
	ck_assert_int_eq(xr.kind, MINIVM_EXEC_START_FAILED);
	ck_assert_int_eq(xr.status, 127);
	/* The front's command counts (no VMM here: its counters are zeros). */
	check_metrics(vm, 2, 1, 1);
	fake_vm_end(vm);
}
END_TEST

/* Callbacks: 1 MiB of stdin through cat comes back identical on stdout. */
struct t_io {
	size_t in_off, out_len;
	unsigned char *in, *out;
	size_t len;
	int err_calls;
};

static long t_read(void *opaque, void *buf, size_t len)
{
	struct t_io *t = opaque;
	size_t n = t->len - t->in_off;

	if (n > len)
		n = len;
	if (n > 1000)
		n = 1000; /* small pieces: many turns of the pump */
	memcpy(buf, t->in + t->in_off, n);
	t->in_off += n;
	return (long)n;
}

static int t_write(void *opaque, const void *buf, size_t len)
{
	struct t_io *t = opaque;

	ck_assert_uint_le(t->out_len + len, t->len);
	memcpy(t->out + t->out_len, buf, len);
	t->out_len += len;
	return 0;
}

static int t_write_fail(void *opaque, const void *buf, size_t len)
{
	struct t_io *t = opaque;

	t->err_calls++;
	return -EIO;
}

START_TEST(test_exec_callbacks)
{
	struct minivm_vm *vm = fake_vm();
	const char *argv[] = { "sh", "-c", "cat; yes err | head -c 300000 >&2", NULL };
	struct minivm_exec_result xr;
	struct minivm_exec x;
	struct t_io t = { .len = 1 << 20 };

	t.in = malloc(t.len);
	t.out = malloc(t.len);
	for (size_t i = 0; i < t.len; i++)
		t.in[i] = (unsigned char)(i * 7 + i / 4096);
	minivm_exec_init(&x);
	x.argv = argv;
	x.stdin_fn = t_read;
	x.stdout_fn = t_write;
	x.stderr_fn = t_write_fail; /* fails at once: the rest is drained, not fatal */
	x.opaque = &t;
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), 0);
	ck_assert_int_eq(xr.status, 0);
	ck_assert_uint_eq(t.out_len, t.len);
	ck_assert(memcmp(t.in, t.out, t.len) == 0);
	ck_assert_int_eq(t.err_calls, 1);
	free(t.in);
	free(t.out);
	fake_vm_end(vm);
}
END_TEST

struct t_par {
	struct minivm_vm *vm;
	const char *const *argv;
	int r, status;
};

static void *t_par_run(void *arg)
{
	struct t_par *p = arg;
	struct minivm_exec_result xr;
	struct minivm_exec x;

	minivm_exec_init(&x);
	x.argv = p->argv;
	p->r = minivm_vm_exec(p->vm, &x, &xr);
	p->status = xr.status;
	return NULL;
}

/* Four commands of 1 s from four threads on one VM take about 1 s. */
START_TEST(test_exec_concurrent)
{
	struct minivm_vm *vm = fake_vm();
	const char *argv[] = { "sh", "-c", "sleep 1; exit 5", NULL };
	struct t_par p[4];
	pthread_t th[4];
	double t0 = now_s();

	for (int i = 0; i < 4; i++) {
		p[i] = (struct t_par){ .vm = vm, .argv = argv };
		ck_assert_int_eq(pthread_create(&th[i], NULL, t_par_run, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(p[i].r, 0);
		ck_assert_int_eq(p[i].status, 5);
	}
	ck_assert_msg(now_s() - t0 < 3.0, "took %.2f s", now_s() - t0);
	fake_vm_end(vm);
}
END_TEST

/* minivm_vm_stop() aborts a running command at once; a 0 byte on the
 * caller's ctl_fd aborts too. */
START_TEST(test_exec_abort)
{
	struct minivm_vm *vm = fake_vm();
	const char *argv[] = { "sleep", "30", NULL };
	struct minivm_exec_result xr;
	struct minivm_exec x;
	struct t_par p = { .argv = argv };
	int ctl[2];
	pthread_t th;
	double t0;

	ck_assert_int_eq(pipe(ctl), 0);
	minivm_exec_init(&x);
	x.argv = argv;
	x.ctl_fd = ctl[0];
	ck_assert_int_eq(write(ctl[1], "", 1), 1);
	t0 = now_s();
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), -ECANCELED);
	ck_assert(now_s() - t0 < 5.0);
	close(ctl[0]);
	close(ctl[1]);

	p.vm = vm;
	ck_assert_int_eq(pthread_create(&th, NULL, t_par_run, &p), 0);
	usleep(300000);
	t0 = now_s();
	minivm_vm_stop(vm);
	pthread_join(th, NULL);
	ck_assert_int_eq(p.r, -ECANCELED);
	ck_assert(now_s() - t0 < 5.0);
	/* After a stop: refused at once. */
	ck_assert_int_eq(minivm_vm_exec(vm, &x, &xr), -ECANCELED);
	fake_vm_end(vm);
}
END_TEST

START_TEST(test_files)
{
	struct minivm_vm *vm = fake_vm();
	char path[200];
	int src = memfd_create("src", MFD_CLOEXEC), dst = memfd_create("dst", MFD_CLOEXEC);
	uint32_t mode = 0;
	char *s;

	ck_assert_int_eq(write(src, "hello file\n", 11), 11);
	ck_assert_int_eq(lseek(src, 0, SEEK_SET), 0);
	snprintf(path, sizeof(path), "%s/put.txt", t_dir);
	ck_assert_int_eq(minivm_vm_put_file(vm, path, 0640, src), 0);
	ck_assert_int_eq(minivm_vm_get_file(vm, path, dst, &mode), 0);
	ck_assert_uint_eq(mode & 07777, 0640);
	s = fd_text(dst);
	ck_assert_str_eq(s, "hello file\n");
	free(s);
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing/x", t_dir);
	ck_assert_int_eq(minivm_vm_get_file(vm, path, dst, NULL), -ENOENT);
	ck_assert_ptr_nonnull(strstr(minivm_vm_error(vm), "get "));
	close(src);
	close(dst);
	fake_vm_end(vm);
}
END_TEST

static Suite *front_suite(void)
{
	Suite *s = suite_create("front");
	TCase *tc = tcase_create("front");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_bad_configs);
	tcase_add_test(tc, test_restore_missing);
	tcase_add_test(tc, test_out_of_order);
	tcase_add_test(tc, test_two_vms);
	tcase_add_test(tc, test_relay);
	tcase_add_test(tc, test_scratch_disk);
	tcase_add_test(tc, test_snapshot_prepare);
	tcase_add_test(tc, test_exec_fds);
	tcase_add_test(tc, test_exec_callbacks);
	tcase_add_test(tc, test_exec_concurrent);
	tcase_add_test(tc, test_exec_abort);
	tcase_add_test(tc, test_files);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(front_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
