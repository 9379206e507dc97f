/* Unit tests for vmm/jail.c's pure parts (paths, limits, cgroup texts, ids, syscall names) and the CLI's jail flags. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "vmm/cli.h"
#include "vmm/jail.h"

START_TEST(vsock_path_inside_the_jail)
{
	char out[128];

	ck_assert_int_eq(jail_vsock_path("/tmp/minivm.abc", "/tmp/minivm.abc/vsock.sock", out,
					 sizeof(out)), 0);
	ck_assert_str_eq(out, "/vsock.sock");
	/* A trailing slash on the directory changes nothing. */
	ck_assert_int_eq(jail_vsock_path("/tmp/minivm.abc/", "/tmp/minivm.abc/v.sock", out,
					 sizeof(out)), 0);
	ck_assert_str_eq(out, "/v.sock");
}
END_TEST

START_TEST(vsock_path_outside_the_jail)
{
	char out[128];

	ck_assert_int_eq(jail_vsock_path("/tmp/minivm.abc", "/srv/vm/v.sock", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/vsock/v.sock");
	/* A sibling whose name starts like the jail is outside it. */
	ck_assert_int_eq(jail_vsock_path("/tmp/minivm.abc", "/tmp/minivm.abcd/v.sock", out,
					 sizeof(out)), 0);
	ck_assert_str_eq(out, "/vsock/v.sock");
	/* A subdirectory of the jail is outside too (only its top is seen). */
	ck_assert_int_eq(jail_vsock_path("/tmp/j", "/tmp/j/sub/v.sock", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/vsock/v.sock");
}
END_TEST

START_TEST(vsock_path_errors)
{
	char out[16];

	ck_assert_int_eq(jail_vsock_path("/tmp/j", "relative.sock", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(jail_vsock_path("tmp/j", "/tmp/j/v.sock", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(jail_vsock_path("/tmp/j", "/tmp/j/", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(jail_vsock_path(NULL, "/tmp/j/v.sock", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(jail_vsock_path("/x", "/y/a-very-long-socket-name.sock", out, sizeof(out)),
			 -ENAMETOOLONG);
	/* Exactly fitting: "/vsock/" + 8 characters + NUL = 16. */
	ck_assert_int_eq(jail_vsock_path("/x", "/y/12345678", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/vsock/12345678");
	ck_assert_int_eq(jail_vsock_path("/x", "/y/123456789", out, sizeof(out)), -ENAMETOOLONG);
}
END_TEST

START_TEST(limits)
{
	ck_assert_uint_eq(jail_nofile_limit(9, 1024), 10 + 1024 + JAIL_NOFILE_MARGIN);
	ck_assert_uint_eq(jail_nofile_limit(-1, 0), JAIL_NOFILE_MARGIN);
	ck_assert_uint_eq(jail_fsize_limit(0), JAIL_FSIZE_MIN);
	ck_assert_uint_eq(jail_fsize_limit(1ULL << 30), 1ULL << 30);
	ck_assert_uint_eq(jail_memory_max(256ULL << 20), (256ULL << 20) + (32ULL << 20) +
							 JAIL_MEM_MARGIN);
	ck_assert_uint_eq(jail_memory_max(UINT64_MAX - 10), UINT64_MAX); /* saturates */
	ck_assert_uint_eq(jail_pids_max(2), 2 + JAIL_PIDS_MARGIN);
}
END_TEST

START_TEST(cpu_max_text)
{
	char out[32];

	ck_assert_int_eq(jail_cpu_max(0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "max 100000");
	ck_assert_int_eq(jail_cpu_max(50, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "50000 100000");
	ck_assert_int_eq(jail_cpu_max(150, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "150000 100000");
	ck_assert_int_eq(jail_cpu_max(JAIL_MAX_CPU_QUOTA, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "100000000 100000");
	ck_assert_int_eq(jail_cpu_max(JAIL_MAX_CPU_QUOTA + 1, out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(jail_cpu_max(50, out, 8), -ENOSPC);
}
END_TEST

START_TEST(controllers)
{
	ck_assert(jail_controllers_have("cpuset cpu io memory hugetlb pids rdma misc\n",
					"memory pids cpu"));
	ck_assert(!jail_controllers_have("hugetlb\n", "memory pids"));
	/* Whole words: "cpuset" is not "cpu". */
	ck_assert(!jail_controllers_have("cpuset memory pids\n", "memory pids cpu"));
	ck_assert(!jail_controllers_have("", "memory"));
	ck_assert(jail_controllers_have("", ""));
}
END_TEST

START_TEST(ids)
{
	uint32_t v = 7;

	ck_assert_int_eq(jail_parse_id("99900", &v), 0);
	ck_assert_uint_eq(v, 99900);
	ck_assert_int_eq(jail_parse_id("4294967294", &v), 0);
	ck_assert_uint_eq(v, 4294967294u);
	ck_assert_int_eq(jail_parse_id("4294967295", &v), -EINVAL); /* (uid_t)-1 */
	ck_assert_int_eq(jail_parse_id("99999999999999999999", &v), -EINVAL);
	ck_assert_int_eq(jail_parse_id("0", &v), -EINVAL); /* root */
	ck_assert_int_eq(jail_parse_id("", &v), -EINVAL);
	ck_assert_int_eq(jail_parse_id("-5", &v), -EINVAL);
	ck_assert_int_eq(jail_parse_id("12a", &v), -EINVAL);
	ck_assert_uint_eq(v, 4294967294u); /* untouched by failures */
}
END_TEST

START_TEST(syscall_names)
{
	char name[32];

	jail_syscall_name(SYS_execve, name, sizeof(name));
	ck_assert_str_eq(name, "execve");
	jail_syscall_name(SYS_openat, name, sizeof(name));
	ck_assert_str_eq(name, "openat");
	jail_syscall_name(SYS_ptrace, name, sizeof(name));
	ck_assert_str_eq(name, "ptrace");
	jail_syscall_name(-5, name, sizeof(name));
	ck_assert_str_eq(name, "?");
	jail_syscall_name(SYS_execve, name, 4); /* truncated, terminated */
	ck_assert_str_eq(name, "exe");
}
END_TEST

START_TEST(test_switch_names)
{
	/* Unknown names are refused without any syscall. */
	ck_assert_int_eq(jail_test_forbidden("reboot"), -EINVAL);
	ck_assert_int_eq(jail_test_forbidden(""), -EINVAL);
}
END_TEST

START_TEST(sanitizer_build_has_no_seccomp)
{
	char err[128];

	/* The unit tests run under ASan+UBSan: no filters there, said so. */
	ck_assert(!jail_seccomp_supported());
	ck_assert_int_eq(jail_seccomp_thread(NULL, JAIL_THREAD_VCPU, err, sizeof(err)), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "sanitizer"));
}
END_TEST

static int parse(struct cli *c, char *err, size_t errlen, ...)
{
	const char *argv[32] = { "minivm", "--kernel", "k" };
	int argc = 3;
	va_list ap;
	const char *a;

	va_start(ap, errlen);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	return cli_parse(argc, (char *const *)argv, c, err, errlen);
}

START_TEST(cli_defaults)
{
	static struct cli c;
	char err[256];

	ck_assert_int_eq(parse(&c, err, sizeof(err), NULL), 0);
	ck_assert_int_eq(c.jail.mode, JAIL_AUTO);
	ck_assert_uint_eq(c.jail.uid, JAIL_DEFAULT_ID);
	ck_assert_uint_eq(c.jail.gid, JAIL_DEFAULT_ID);
	ck_assert_uint_eq(c.jail.cpu_quota_pct, 0);
}
END_TEST

START_TEST(cli_flags)
{
	static struct cli c;
	char err[256];

	ck_assert_int_eq(parse(&c, err, sizeof(err), "--no-jail", NULL), 0);
	ck_assert_int_eq(c.jail.mode, JAIL_OFF);
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--jail", "--uid", "1234", "--gid=555",
			       "--cpu-quota", "150", NULL), 0);
	ck_assert_int_eq(c.jail.mode, JAIL_REQUIRED);
	ck_assert_uint_eq(c.jail.uid, 1234);
	ck_assert_uint_eq(c.jail.gid, 555);
	ck_assert_uint_eq(c.jail.cpu_quota_pct, 150);
	/* Repeating the same mode is harmless. */
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--jail", "--jail", NULL), 0);
}
END_TEST

START_TEST(cli_errors)
{
	static struct cli c;
	char err[256];

	ck_assert_int_eq(parse(&c, err, sizeof(err), "--jail", "--no-jail", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "exclude"));
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--uid", "0", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "--uid"));
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--gid", "x", NULL), -EINVAL);
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--uid", "5", "--uid", "6", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--cpu-quota", "0", NULL), -EINVAL);
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--cpu-quota", "100001", NULL), -EINVAL);
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--no-jail", "--uid", "5", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "--no-jail"));
	ck_assert_int_eq(parse(&c, err, sizeof(err), "--uid", NULL), -EINVAL);
}
END_TEST

static Suite *jail_suite(void)
{
	Suite *s = suite_create("jail");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, vsock_path_inside_the_jail);
	tcase_add_test(tc, vsock_path_outside_the_jail);
	tcase_add_test(tc, vsock_path_errors);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, cpu_max_text);
	tcase_add_test(tc, controllers);
	tcase_add_test(tc, ids);
	tcase_add_test(tc, syscall_names);
	tcase_add_test(tc, test_switch_names);
	tcase_add_test(tc, sanitizer_build_has_no_seccomp);
	suite_add_tcase(s, tc);
	tc = tcase_create("cli");
	tcase_add_test(tc, cli_defaults);
	tcase_add_test(tc, cli_flags);
	tcase_add_test(tc, cli_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jail_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
