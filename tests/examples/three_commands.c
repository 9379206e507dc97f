/* libminivm's example: boots N VMs (default 1) at once from one process, each on a thread of its own, and runs three commands in each (fds, callbacks, a file put and read back); CYCLES times over (a leak check under ASan). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/minivm.h"

struct job {
	const char *kernel, *rootfs;
	int n, cycles;
	int failed;
};

/* stdout callback: prefixes each piece with the VM's number. */
static int print_out(void *opaque, const void *buf, size_t len)
{
	struct job *j = opaque;

	printf("[vm%d] %.*s", j->n, (int)len, (const char *)buf);
	return 0;
}

static void *run_vm_once(void *arg)
{
	struct job *j = arg;
	struct minivm_vm_config c;
	struct minivm_exec_result xr;
	struct minivm_exec x;
	struct minivm_vm *vm = NULL;
	const char *uname[] = { "uname", "-r", NULL };
	const char *count[] = { "sh", "-c", "wc -c", NULL };
	const char *cat[] = { "cat", "/tmp/hello.txt", NULL };
	char err[512];
	int fd;

	minivm_vm_config_init(&c);
	c.vm.kernel = j->kernel;
	c.vm.rootfs = j->rootfs;
	if (minivm_vm_create(&c, &vm, err, sizeof(err))) {
		fprintf(stderr, "vm%d: %s\n", j->n, err);
		goto fail;
	}
	/* start() from this thread: the VMM dies with the thread that started it. */
	if (minivm_vm_start(vm) || minivm_vm_wait_ready(vm, 600000))
		goto fail_vm;

	/* 1: output to our stdout through a callback. */
	minivm_exec_init(&x);
	x.argv = uname;
	x.stdout_fn = print_out;
	x.opaque = j;
	if (minivm_vm_exec(vm, &x, &xr) || xr.status != 0)
		goto fail_vm;

	/* 2: stdin from a fd (a memfd with 5 bytes), output through the callback. */
	fd = memfd_create("in", MFD_CLOEXEC);
	if (fd < 0 || write(fd, "12345", 5) != 5 || lseek(fd, 0, SEEK_SET) != 0)
		goto fail_vm;
	minivm_exec_init(&x);
	x.argv = count;
	x.stdin_fd = fd;
	x.stdout_fn = print_out;
	x.opaque = j;
	if (minivm_vm_exec(vm, &x, &xr) || xr.status != 0) {
		close(fd);
		goto fail_vm;
	}
	close(fd);

	/* 3: a file put into the guest, then read there. */
	fd = memfd_create("file", MFD_CLOEXEC);
	if (fd < 0 || write(fd, "hello from the host\n", 20) != 20 || lseek(fd, 0, SEEK_SET) != 0)
		goto fail_vm;
	if (minivm_vm_put_file(vm, "/tmp/hello.txt", 0644, fd)) {
		close(fd);
		goto fail_vm;
	}
	close(fd);
	minivm_exec_init(&x);
	x.argv = cat;
	x.stdout_fn = print_out;
	x.opaque = j;
	if (minivm_vm_exec(vm, &x, &xr) || xr.status != 0)
		goto fail_vm;
	minivm_vm_destroy(vm);
	return NULL;
fail_vm:
	fprintf(stderr, "vm%d: %s\n", j->n, minivm_vm_error(vm));
	minivm_vm_destroy(vm);
fail:
	j->failed = 1;
	return NULL;
}

static void *run_vm(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < j->cycles && !j->failed; i++)
		run_vm_once(j);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job jobs[8];
	pthread_t th[8];
	int n = argc > 3 ? atoi(argv[3]) : 1, cycles = argc > 4 ? atoi(argv[4]) : 1, failed = 0;

	if (argc < 3 || n < 1 || n > 8 || cycles < 1) {
		fprintf(stderr, "usage: %s KERNEL ROOTFS [NR_VMS 1..8 [CYCLES]]\n", argv[0]);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){ .kernel = argv[1], .rootfs = argv[2], .n = i, .cycles = cycles };
		if (pthread_create(&th[i], NULL, run_vm, &jobs[i]))
			return 1;
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		failed |= jobs[i].failed;
	}
	return failed;
}
