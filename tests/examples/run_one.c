/* The README's libminivm snippet: boot one VM, run one command with its output on our stdout, exit with its status. */
#include <stdio.h>
#include <unistd.h>

#include <minivm.h>

int main(int argc, char **argv)
{
	const char *cmd[] = { "uname", "-a", NULL };
	struct minivm_vm_config c;
	struct minivm_exec_result xr;
	struct minivm_exec x;
	struct minivm_vm *vm;
	char err[512];
	int status = 125;

	if (argc != 3) {
		fprintf(stderr, "usage: %s KERNEL ROOTFS\n", argv[0]);
		return 2;
	}
	minivm_vm_config_init(&c);
	c.vm.kernel = argv[1];                  /* build/vmlinux */
	c.vm.rootfs = argv[2];                  /* build/rootfs.img, or "oci:DIR:TAG" */
	if (minivm_vm_create(&c, &vm, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 125;
	}
	minivm_exec_init(&x);
	x.argv = cmd;
	x.stdout_fd = STDOUT_FILENO;            /* or x.stdout_fn = a callback */
	if (minivm_vm_start(vm) || minivm_vm_wait_ready(vm, 600000) ||
	    minivm_vm_exec(vm, &x, &xr))
		fprintf(stderr, "%s\n", minivm_vm_error(vm));
	else
		status = xr.status;
	minivm_vm_destroy(vm);                  /* stops the VM, removes its files */
	return status;
}
