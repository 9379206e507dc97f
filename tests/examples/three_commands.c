/* libminivm's example: boots (or restores) N VMs at once from one process, each on a thread of its own, and runs three commands in each (fds, callbacks, a file put and read back); CYCLES times over (a leak check under ASan). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/minivm.h"

#define MAX_VMS 8

static const char usage[] =
	"usage: three_commands KERNEL ROOTFS [NR_VMS 1..8 [CYCLES]]\n"
	"       three_commands --snapshot DIR KERNEL ROOTFS [NR_VMS [CYCLES]]\n"
	"       three_commands --restore DIR [NR_VMS [CYCLES]]\n"
	"--snapshot: the first VM writes a snapshot into DIR once its agent is ready;\n"
	"--restore: every VM starts from the snapshot in DIR instead of booting.\n";

struct job {
	const char *kernel, *rootfs;
	const char *snapshot_dir; /* first VM, first cycle only */
	const char *restore_dir;
	int n, cycles;
	int failed;
};

/* The front's diagnostics (the library never prints itself). */
static void log_line(void *ctx, enum minivm_log_level level, const char *msg)
{
	const struct job *j = ctx;

	fprintf(stderr, "[vm%d] minivm (%d): %s\n", j->n, (int)level, msg);
}

/* stdout callback: prefixes each piece with the VM's number. */
static int print_out(void *opaque, const void *buf, size_t len)
{
	struct job *j = opaque;

	printf("[vm%d] %.*s", j->n, (int)len, (const char *)buf);
	return 0;
}

/* Runs argv with output through print_out and stdin from in_fd (-1: none): 0 on status 0. */
static int run(struct minivm_vm *vm, struct job *j, const char *const *argv, int in_fd)
{
	struct minivm_exec_result xr;
	struct minivm_exec x;

	minivm_exec_init(&x);
	x.argv = argv;
	x.stdin_fd = in_fd;
	x.stdout_fn = print_out;
	x.opaque = j;
	if (minivm_vm_exec(vm, &x, &xr))
		return -1;
	if (xr.status != 0)
		fprintf(stderr, "[vm%d] %s exited %d\n", j->n, argv[0], xr.status);
	return xr.status == 0 ? 0 : -1;
}

/* A memfd holding s, at offset 0; -1 on failure. */
static int memfd_with(const char *s)
{
	size_t n = strlen(s);
	int fd = memfd_create("example", MFD_CLOEXEC);

	if (fd >= 0 && (write(fd, s, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The three commands: uname -r; wc -c of 5 bytes of stdin; a file put, then cat. */
static int three_commands(struct minivm_vm *vm, struct job *j)
{
	const char *uname[] = { "uname", "-r", NULL };
	const char *count[] = { "sh", "-c", "wc -c", NULL };
	const char *cat[] = { "cat", "/tmp/hello.txt", NULL };
	int fd, r;

	if (run(vm, j, uname, -1))
		return -1;
	fd = memfd_with("12345");
	if (fd < 0)
		return -1;
	r = run(vm, j, count, fd);
	close(fd);
	if (r)
		return -1;
	fd = memfd_with("hello from the host\n");
	if (fd < 0)
		return -1;
	r = minivm_vm_put_file(vm, "/tmp/hello.txt", 0644, fd);
	close(fd);
	return r ? -1 : run(vm, j, cat, -1);
}

static void run_vm_once(struct job *j, bool snapshot)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm = NULL;
	char err[512];

	minivm_vm_config_init(&c);
	if (j->restore_dir) {
		c.restore_dir = j->restore_dir; /* the snapshot names kernel and disks */
	} else {
		c.vm.kernel = j->kernel;
		c.vm.rootfs = j->rootfs;
	}
	c.snapshot_dir = snapshot ? j->snapshot_dir : NULL;
	c.log_fn = log_line;
	c.log_ctx = j;
	if (minivm_vm_create(&c, &vm, err, sizeof(err))) {
		fprintf(stderr, "[vm%d] %s\n", j->n, err);
		j->failed = 1;
		return;
	}
	/* start() from this thread: the VMM dies with the thread that started it. */
	if (minivm_vm_start(vm) || minivm_vm_wait_ready(vm, 600000) ||
	    (snapshot && minivm_vm_snapshot(vm, NULL)) || three_commands(vm, j)) {
		fprintf(stderr, "[vm%d] %s\n", j->n, minivm_vm_error(vm));
		j->failed = 1;
	}
	minivm_vm_destroy(vm); /* stops it, removes its files */
}

static void *run_vm(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < j->cycles && !j->failed; i++)
		run_vm_once(j, j->snapshot_dir && j->n == 0 && i == 0);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job proto = { 0 }, jobs[MAX_VMS];
	pthread_t th[MAX_VMS];
	int a = 1, n, cycles, failed = 0;

	if (argc > 2 && !strcmp(argv[1], "--snapshot"))
		proto.snapshot_dir = argv[2];
	else if (argc > 2 && !strcmp(argv[1], "--restore"))
		proto.restore_dir = argv[2];
	a = proto.snapshot_dir || proto.restore_dir ? 3 : 1;
	if (!proto.restore_dir) {
		proto.kernel = a < argc ? argv[a++] : NULL;
		proto.rootfs = a < argc ? argv[a++] : NULL;
	}
	n = a < argc ? atoi(argv[a]) : 1;
	cycles = a + 1 < argc ? atoi(argv[a + 1]) : 1;
	if ((!proto.restore_dir && !proto.rootfs) || n < 1 || n > MAX_VMS || cycles < 1 ||
	    a + 2 < argc) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		jobs[i] = proto;
		jobs[i].n = i;
		jobs[i].cycles = cycles;
		if (pthread_create(&th[i], NULL, run_vm, &jobs[i])) {
			fprintf(stderr, "pthread_create failed\n");
			n = i;
			failed = 1;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		failed |= jobs[i].failed;
	}
	return failed;
}
