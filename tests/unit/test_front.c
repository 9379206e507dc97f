/* Unit tests for vmm/front.c without KVM: config checks, the files the front makes and removes, calls out of order, several VMs in one process. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/front.h"
#include "vmm/minivm.h"

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
	/* A stop before start: start refuses, nothing was forked. */
	minivm_vm_stop(vm);
	ck_assert_int_eq(minivm_vm_start(vm), -ECANCELED);
	minivm_vm_destroy(vm);
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
	tcase_add_test(tc, test_scratch_disk);
	tcase_add_test(tc, test_snapshot_prepare);
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
