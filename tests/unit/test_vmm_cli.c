/* Unit tests for vmm/cli.c: cli_parse_size() and cli_parse() on good and bad argv. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ratelimit.h"
#include "vmm/cli.h"

#define T_MAX_ARGS 32

static struct cli t_cli;
static char t_err[256];
static const char *t_argv[T_MAX_ARGS + 2];

/* Parses "minivm" followed by the NULL-terminated argument list. */
static int parse(const char *first, ...)
{
	va_list ap;
	int argc = 0;

	t_argv[argc++] = "minivm";
	va_start(ap, first);
	for (const char *a = first; a && argc <= T_MAX_ARGS; a = va_arg(ap, const char *))
		t_argv[argc++] = a;
	va_end(ap);
	t_argv[argc] = NULL;
	memset(t_err, 0, sizeof(t_err));
	memset(&t_cli, 0x5a, sizeof(t_cli));
	return cli_parse(argc, (char *const *)t_argv, &t_cli, t_err, sizeof(t_err));
}

/* Asserts a rejection whose message contains `needle`. */
#define ck_assert_rejected(r, needle)                                                   \
	do {                                                                            \
		ck_assert_int_eq((r), -EINVAL);                                         \
		ck_assert_msg(strstr(t_err, (needle)) != NULL,                          \
			      "message '%s' should mention '%s'", t_err, (needle));     \
	} while (0)

/* ---- cli_parse_size ---- */

START_TEST(size_good)
{
	static const struct {
		const char *s;
		uint64_t v;
	} cases[] = {
		{ "256M", 256ULL << 20 },
		{ "1G", 1ULL << 30 },
		{ "1GiB", 1ULL << 30 },
		{ "512MB", 512ULL << 20 },
		{ "4096K", 4ULL << 20 },
		{ "4096KiB", 4ULL << 20 },
		{ "2T", 2ULL << 40 },
		{ "1g", 1ULL << 30 },
		{ "3m", 3ULL << 20 },
		{ "12345", 12345 },
		{ "0", 0 },
		{ "0M", 0 },
		{ "007", 7 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
		{ "17179869183G", 17179869183ULL << 30 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 1;

		ck_assert_msg(cli_parse_size(cases[i].s, &v) == 0, "'%s' should parse", cases[i].s);
		ck_assert_msg(v == cases[i].v, "'%s' gave %llu", cases[i].s, (unsigned long long)v);
	}
}
END_TEST

START_TEST(size_bad)
{
	static const char *const cases[] = {
		"", "M", "G", "12X", "1.5G", "-1", "+1", " 1G", "1G ", "1 G", "1GB2", "1iB", "1B",
		"1Gi", "1GiBB", "1MiBx", "1KK", "0x10", "1e9",
		"99999999999999999999",          /* > 2^64 */
		"18446744073709551616",          /* 2^64 */
		"18446744073709551615G",         /* overflows on the multiply */
		"16777216T",                     /* exactly 2^64 */
		"17179869184G",                  /* exactly 2^64 */
		"100000000000000000000000000000000000000000M",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0x1234;

		ck_assert_msg(cli_parse_size(cases[i], &v) == -EINVAL, "'%s' should be refused",
			      cases[i]);
		ck_assert_msg(v == 0x1234, "'%s': output written on failure", cases[i]);
	}
	ck_assert_int_eq(cli_parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}
END_TEST

/* ---- cli_parse: defaults and values ---- */

START_TEST(parse_minimal_defaults)
{
	ck_assert_int_eq(parse("--kernel", "/boot/vmlinux", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_RUN);
	ck_assert_ptr_eq(t_cli.cfg.kernel, t_argv[2]);
	ck_assert_ptr_null(t_cli.cfg.rootfs);
	ck_assert_ptr_null(t_cli.cfg.run);
	ck_assert_ptr_null(t_cli.cfg.cmdline);
	ck_assert_ptr_null(t_cli.cfg.console);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 0);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 256ULL << 20);
	ck_assert_uint_eq(t_cli.cfg.cpus, 1);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_AUTO);
	ck_assert_int_eq(t_cli.cfg.verbose, 0);
	ck_assert(!t_cli.cfg.timings);
	ck_assert(!t_cli.print_timings);
}
END_TEST

START_TEST(parse_all_options)
{
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r.img", "--run", "echo hi", "--mem",
			       "1G", "--cpus", "32", "--cmdline", "quiet", "--console", "c.log",
			       "--emulated", "yes", "--disk", "/d1,ro", "--disk", "/d2", "--timings",
			       "-v", "--verbose", "-vv", NULL),
			 0);
	ck_assert_int_eq(t_cli.action, CLI_RUN);
	ck_assert_str_eq(t_cli.cfg.kernel, "k");
	ck_assert_str_eq(t_cli.cfg.rootfs, "r.img");
	ck_assert_str_eq(t_cli.cfg.run, "echo hi");
	ck_assert_str_eq(t_cli.cfg.cmdline, "quiet");
	ck_assert_str_eq(t_cli.cfg.console, "c.log");
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 1ULL << 30);
	ck_assert_uint_eq(t_cli.cfg.cpus, 32);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_YES);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 2);
	ck_assert_str_eq(t_cli.cfg.disks[0].path, "/d1");
	ck_assert(t_cli.cfg.disks[0].read_only);
	ck_assert_str_eq(t_cli.cfg.disks[1].path, "/d2");
	ck_assert(!t_cli.cfg.disks[1].read_only);
	ck_assert(t_cli.cfg.timings);
	ck_assert(t_cli.print_timings);
	ck_assert_int_eq(t_cli.cfg.verbose, 4);
}
END_TEST

START_TEST(parse_equals_form)
{
	ck_assert_int_eq(parse("--kernel=/k", "--mem=512M", "--cpus=4", "--emulated=no",
			       "--disk=/d,ro", "--run=ls -l", "--cmdline=a=b c=d", NULL),
			 0);
	ck_assert_str_eq(t_cli.cfg.kernel, "/k");
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 512ULL << 20);
	ck_assert_uint_eq(t_cli.cfg.cpus, 4);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_NO);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 1);
	ck_assert_str_eq(t_cli.cfg.disks[0].path, "/d");
	ck_assert(t_cli.cfg.disks[0].read_only);
	ck_assert_str_eq(t_cli.cfg.run, "ls -l");
	/* Only the first '=' separates the name from the value. */
	ck_assert_str_eq(t_cli.cfg.cmdline, "a=b c=d");

	ck_assert_rejected(parse("--kernel=", NULL), "--kernel");
	ck_assert_rejected(parse("--kernel", "k", "--mem=", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--cpus=", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--disk=", NULL), "--disk");
	ck_assert_rejected(parse("--kernel", "k", "--emulated=", NULL), "--emulated");
}
END_TEST

START_TEST(parse_mem_range)
{
	ck_assert_int_eq(parse("--kernel", "k", "--mem", "32M", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, CLI_MIN_MEM);
	ck_assert_int_eq(parse("--kernel", "k", "--mem", "64G", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, CLI_MAX_MEM);
	ck_assert_int_eq(parse("--kernel", "k", "--mem", "33554432", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 32ULL << 20);
	ck_assert_int_eq(parse("--kernel", "k", "--mem", "65536K", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 64ULL << 20);

	ck_assert_rejected(parse("--kernel", "k", "--mem", "31M", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "0", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "65G", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "65537M", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "1T", NULL), "--mem");
	/* Not whole MiB. */
	ck_assert_rejected(parse("--kernel", "k", "--mem", "33554433", NULL), "--mem");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "33281K", NULL), "--mem");
	/* Bad sizes name the value. */
	ck_assert_rejected(parse("--kernel", "k", "--mem", "1.5G", NULL), "1.5G");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "lots", NULL), "lots");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "99999999999999999999", NULL), "--mem");
}
END_TEST

START_TEST(parse_cpus)
{
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "1", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.cpus, 1);
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "32", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.cpus, 32);
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "08", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.cpus, 8);

	ck_assert_rejected(parse("--kernel", "k", "--cpus", "0", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "33", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "2x", NULL), "2x");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "-1", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", " 2", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "4294967297", NULL), "--cpus");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "99999999999999999999999", NULL),
			   "--cpus");
}
END_TEST

START_TEST(parse_duplicates)
{
	static const char *const once[] = { "--kernel", "--rootfs", "--run", "--cmdline",
					    "--console", "--mem", "--cpus", "--emulated" };
	static const char *const vals[] = { "k", "r", "ls", "quiet", "c", "64M", "2", "no" };

	char eq[64];

	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		const char *kernel = i == 0 ? "--rootfs" : "--kernel";

		ck_assert_msg(parse(kernel, "x", once[i], vals[i], once[i], vals[i], NULL) == -EINVAL,
			      "%s twice accepted", once[i]);
		ck_assert_msg(strstr(t_err, once[i]) && strstr(t_err, "twice"),
			      "message '%s' for %s twice", t_err, once[i]);
		/* The same through the --name=value form. */
		snprintf(eq, sizeof(eq), "%s=%s", once[i], vals[i]);
		ck_assert_msg(parse(kernel, "x", eq, once[i], vals[i], NULL) == -EINVAL,
			      "%s twice accepted", eq);
		ck_assert_msg(strstr(t_err, "twice"), "message '%s' for %s twice", t_err, eq);
	}
	/* --disk, -v and --timings repeat. */
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "a", "--disk", "a", "--timings",
			       "--timings", NULL),
			 0);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 2);
}
END_TEST

START_TEST(parse_unknown_and_positional)
{
	ck_assert_rejected(parse("--kernel", "k", "--foo", NULL), "--foo");
	ck_assert_rejected(parse("--kernel", "k", "--foo=bar", NULL), "--foo");
	ck_assert_rejected(parse("--kernelx", "k", NULL), "--kernelx");
	ck_assert_rejected(parse("--kernel", "k", "-x", NULL), "-x");
	ck_assert_rejected(parse("--kernel", "k", "-", NULL), "'-'");
	ck_assert_rejected(parse("--kernel", "k", "--", NULL), "'--'");
	ck_assert_rejected(parse("--kernel", "k", "", NULL), "''");
	ck_assert_rejected(parse("--kernel", "k", "vmlinux", NULL), "vmlinux");
	ck_assert_rejected(parse("vmlinux", NULL), "vmlinux");
	ck_assert_rejected(parse("--KERNEL", "k", NULL), "--KERNEL");
	ck_assert_rejected(parse("--timings=1", "--kernel", "k", NULL), "--timings");
	ck_assert_rejected(
		parse("--kernel", "k", "--a-very-long-option-name-that-is-unknown-to-minivm", NULL),
		"--a-very-long-option");
}
END_TEST

START_TEST(parse_missing_value)
{
	static const char *const opts[] = { "--kernel", "--rootfs", "--disk", "--run", "--mem",
					    "--cpus", "--cmdline", "--console", "--emulated" };

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		ck_assert_msg(parse("--kernel", "k", opts[i], NULL) == -EINVAL, "%s at the end",
			      opts[i]);
		ck_assert_msg(strstr(t_err, opts[i]) && strstr(t_err, "value"),
			      "message '%s' for %s", t_err, opts[i]);
		/* An empty value is not a value either. */
		ck_assert_msg(parse("--kernel", "k", opts[i], "", NULL) == -EINVAL, "%s ''",
			      opts[i]);
	}
}
END_TEST

START_TEST(parse_disks)
{
	char long_path[4200];

	ck_assert_int_eq(parse("--kernel", "k", "--disk", "/a,ro", "--disk", "/b,rw", "--disk",
			       "/c", "--disk", "/d,e", "--disk", "/f,ro,ro", NULL),
			 0);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 5);
	ck_assert_str_eq(t_cli.cfg.disks[0].path, "/a");
	ck_assert(t_cli.cfg.disks[0].read_only);
	ck_assert_str_eq(t_cli.cfg.disks[1].path, "/b");
	ck_assert(!t_cli.cfg.disks[1].read_only);
	ck_assert_str_eq(t_cli.cfg.disks[2].path, "/c");
	ck_assert(!t_cli.cfg.disks[2].read_only);
	ck_assert_str_eq(t_cli.cfg.disks[3].path, "/d,e");
	ck_assert(!t_cli.cfg.disks[3].read_only);
	ck_assert_str_eq(t_cli.cfg.disks[4].path, "/f,ro");
	ck_assert(t_cli.cfg.disks[4].read_only);
	/* The paths are copies in the cli, not argv. */
	ck_assert_ptr_eq(t_cli.cfg.disks[0].path, t_cli.disk_paths[0]);

	ck_assert_rejected(parse("--kernel", "k", "--disk", ",ro", NULL), ",ro");
	ck_assert_rejected(parse("--kernel", "k", "--disk", ",rw", NULL), ",rw");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "", NULL), "--disk");

	/* A path of 4095 bytes fits the 4096-byte buffer, 4096 does not. */
	memset(long_path, 'p', sizeof(long_path));
	strcpy(long_path + 4095, ",ro");
	ck_assert_int_eq(parse("--kernel", "k", "--disk", long_path, NULL), 0);
	ck_assert_uint_eq(strlen(t_cli.cfg.disks[0].path), 4095);
	ck_assert(t_cli.cfg.disks[0].read_only);
	memset(long_path, 'p', sizeof(long_path));
	long_path[4096] = '\0';
	ck_assert_int_eq(parse("--kernel", "k", "--disk", long_path, NULL), -EINVAL);
}
END_TEST

START_TEST(parse_too_many_disks)
{
	/* /dev/vda is the rootfs: at most MINIVM_MAX_DISKS - 1 extra disks. */
	ck_assert_int_eq(MINIVM_MAX_DISKS, 8);
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "1", "--disk", "2", "--disk", "3",
			       "--disk", "4", "--disk", "5", "--disk", "6", "--disk", "7", NULL),
			 0);
	ck_assert_uint_eq(t_cli.cfg.nr_disks, 7);
	ck_assert_str_eq(t_cli.cfg.disks[6].path, "7");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "1", "--disk", "2", "--disk", "3",
				 "--disk", "4", "--disk", "5", "--disk", "6", "--disk", "7",
				 "--disk", "8", NULL),
			   "too many");
}
END_TEST

START_TEST(parse_emulated)
{
	ck_assert_int_eq(parse("--kernel", "k", "--emulated", "auto", NULL), 0);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_AUTO);
	ck_assert_int_eq(parse("--kernel", "k", "--emulated", "yes", NULL), 0);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_YES);
	ck_assert_int_eq(parse("--kernel", "k", "--emulated", "no", NULL), 0);
	ck_assert_int_eq(t_cli.cfg.emul, MINIVM_EMUL_NO);
	ck_assert_rejected(parse("--kernel", "k", "--emulated", "YES", NULL), "YES");
	ck_assert_rejected(parse("--kernel", "k", "--emulated", "maybe", NULL), "maybe");
	ck_assert_rejected(parse("--kernel", "k", "--emulated", "yes ", NULL), "--emulated");
	ck_assert_rejected(parse("--kernel", "k", "--emulated", "1", NULL), "--emulated");
}
END_TEST

START_TEST(parse_help_version)
{
	ck_assert_int_eq(parse("--help", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_HELP);
	ck_assert_int_eq(parse("-h", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_HELP);
	ck_assert_int_eq(parse("--kernel", "k", "--mem", "64M", "--help", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_HELP);
	ck_assert_int_eq(parse("--version", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_VERSION);
	ck_assert_int_eq(parse("-v", "--version", "--bogus", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_VERSION);
	/* The value of an option is not an option. */
	ck_assert_int_eq(parse("--kernel", "k", "--run", "--help", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_RUN);
	ck_assert_str_eq(t_cli.cfg.run, "--help");
	ck_assert(strstr(cli_usage, "--kernel") != NULL);
	ck_assert(strstr(cli_usage, "--emulated") != NULL);
}
END_TEST

START_TEST(parse_kernel_required)
{
	ck_assert_rejected(parse(NULL), "--kernel");
	ck_assert_rejected(parse("--rootfs", "r", "--mem", "64M", NULL), "--kernel");
}
END_TEST

START_TEST(parse_small_error_buffer)
{
	const char *argv[] = { "minivm", "--no-such-option-at-all", NULL };
	char small[8];

	memset(small, 'X', sizeof(small));
	ck_assert_int_eq(cli_parse(2, (char *const *)argv, &t_cli, small, sizeof(small)), -EINVAL);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	/* No buffer at all is allowed too. */
	ck_assert_int_eq(cli_parse(2, (char *const *)argv, &t_cli, NULL, 0), -EINVAL);
}
END_TEST

/* ---- the agent's command ---- */

START_TEST(parse_agent_split)
{
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r", "--agent",
			       "sh -c 'echo \"a b\"; exit 3'", NULL), 0);
	ck_assert(t_cli.agent);
	ck_assert_uint_eq(t_cli.agent_argc, 3);
	ck_assert_str_eq(t_cli.agent_argv[0], "sh");
	ck_assert_str_eq(t_cli.agent_argv[1], "-c");
	ck_assert_str_eq(t_cli.agent_argv[2], "echo \"a b\"; exit 3");
	ck_assert_ptr_null(t_cli.agent_argv[3]);
	ck_assert_uint_eq(t_cli.boot_timeout_s, CLI_DEFAULT_BOOT_TIMEOUT);
	ck_assert_uint_eq(t_cli.timeout_s, 0);
	ck_assert(!t_cli.tty);
	ck_assert_ptr_null(t_cli.env[0]);
}
END_TEST

START_TEST(parse_agent_dashdash)
{
	/* After "--" nothing is minivm's: "-v" and "--timeout" go to the command. */
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r", "--timeout", "5", "--",
			       "ls", "-v", "--timeout", "a b", NULL), 0);
	ck_assert(t_cli.agent);
	ck_assert_uint_eq(t_cli.agent_argc, 4);
	ck_assert_str_eq(t_cli.agent_argv[0], "ls");
	ck_assert_str_eq(t_cli.agent_argv[1], "-v");
	ck_assert_str_eq(t_cli.agent_argv[2], "--timeout");
	ck_assert_str_eq(t_cli.agent_argv[3], "a b");
	ck_assert_ptr_null(t_cli.agent_argv[4]);
	ck_assert_uint_eq(t_cli.timeout_s, 5);
	ck_assert_int_eq(t_cli.cfg.verbose, 0);
}
END_TEST

START_TEST(parse_agent_options)
{
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r", "--agent", "env", "--env", "A=1",
			       "--env=B=x=y", "--workdir", "/tmp", "--user", "agent:agent", "--tty",
			       "--boot-timeout", "30", "--vsock", "/tmp/v.sock", NULL), 0);
	ck_assert_uint_eq(t_cli.nr_env, 2);
	ck_assert_str_eq(t_cli.env[0], "A=1");
	ck_assert_str_eq(t_cli.env[1], "B=x=y");
	ck_assert_ptr_null(t_cli.env[2]);
	ck_assert_str_eq(t_cli.workdir, "/tmp");
	ck_assert_str_eq(t_cli.user, "agent:agent");
	ck_assert(t_cli.tty);
	ck_assert_uint_eq(t_cli.boot_timeout_s, 30);
	ck_assert_str_eq(t_cli.cfg.vsock_uds, "/tmp/v.sock");
}
END_TEST

START_TEST(parse_agent_bad)
{
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "", NULL), "needs a command");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "   ", NULL),
			   "needs a command");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "echo 'open", NULL),
			   "bad --agent");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--agent", "b",
				 NULL), "once");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--", "b", NULL),
			   "not both");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--", NULL), "followed by");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--run", "x", "--agent", "y",
				 NULL), "exclude");
	ck_assert_rejected(parse("--kernel", "k", "--agent", "y", NULL), "--rootfs");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--run", "x", "--timeout", "3",
				 NULL), "apply to a command");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--tty", NULL),
			   "apply to a command");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--env", "=1",
				 NULL), "NAME=VALUE");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--env", "A",
				 NULL), "NAME=VALUE");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--workdir",
				 "rel", NULL), "absolute");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--timeout", "0",
				 NULL), "whole seconds");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--timeout",
				 "1.5", NULL), "whole seconds");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--timeout",
				 "99999999999", NULL), "whole seconds");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "r", "--agent", "a", "--timeout", "1",
				 "--timeout", "2", NULL), "twice");
	ck_assert_rejected(parse("--kernel", "k", "--vsock", "a", "--vsock", "b", NULL), "twice");
}
END_TEST

START_TEST(parse_agent_too_many_env)
{
	static const char *argv[4 + 2 * (CLI_MAX_ENV + 1) + 3];
	static char vals[CLI_MAX_ENV + 1][16];
	int argc = 0;

	argv[argc++] = "minivm";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	argv[argc++] = "--rootfs";
	argv[argc++] = "r";
	argv[argc++] = "--agent";
	argv[argc++] = "true";
	for (int i = 0; i <= CLI_MAX_ENV; i++) {
		snprintf(vals[i], sizeof(vals[i]), "V%d=1", i);
		argv[argc++] = "--env";
		argv[argc++] = vals[i];
	}
	ck_assert_int_eq(argc, (int)(sizeof(argv) / sizeof(argv[0])));
	ck_assert_int_eq(cli_parse(argc, (char *const *)argv, &t_cli, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_msg(strstr(t_err, "too many --env") != NULL, "%s", t_err);
	/* One fewer is fine. */
	ck_assert_int_eq(cli_parse(argc - 2, (char *const *)argv, &t_cli, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(t_cli.nr_env, CLI_MAX_ENV);
	ck_assert_ptr_null(t_cli.env[CLI_MAX_ENV]);
}
END_TEST

/* ---- the network: --net, --allow, --allow-dns, --net-policy ---- */

START_TEST(parse_net_good)
{
	const struct minivm_net *n = &t_cli.cfg.net;

	ck_assert_int_eq(parse("--kernel", "k", "--net",
			       "tap=tap0,ip=10.0.2.15/24,gw=10.0.2.1,dns=10.0.2.3,mac=02:aB:00:00:00:01",
			       "--allow", "10.0.2.1:8080/tcp", "--allow", "192.168.0.0/16",
			       "--allow-dns", "--net-policy", "p.txt", NULL), 0);
	ck_assert_str_eq(n->tap, "tap0");
	ck_assert_uint_eq(n->ip, 0x0a00020f);
	ck_assert_uint_eq(n->prefix, 24);
	ck_assert_uint_eq(n->gw, 0x0a000201);
	ck_assert_uint_eq(n->dns, 0x0a000203);
	ck_assert_uint_eq(n->mac[0], 0x02);
	ck_assert_uint_eq(n->mac[1], 0xab);
	ck_assert_uint_eq(n->mac[5], 0x01);
	ck_assert_uint_eq(n->nr_allow, 2);
	ck_assert_str_eq(n->allow[0], "10.0.2.1:8080/tcp");
	ck_assert_str_eq(n->allow[1], "192.168.0.0/16");
	ck_assert(n->allow_dns);
	ck_assert_str_eq(n->policy_file, "p.txt");
	ck_assert(!rl_limit_set(&n->rx_limit) && !rl_limit_set(&n->tx_limit));

	/* No dns, no MAC (all zero: the VMM picks one), options in any order. */
	ck_assert_int_eq(parse("--kernel", "k", "--net=gw=172.16.0.1,ip=172.16.0.2/30,tap=t", NULL), 0);
	ck_assert_uint_eq(n->dns, 0);
	ck_assert_uint_eq(n->prefix, 30);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(n->mac[i], 0);
	ck_assert_uint_eq(n->nr_allow, 0);

	/* Without --net: no NIC at all. */
	ck_assert_int_eq(parse("--kernel", "k", NULL), 0);
	ck_assert_ptr_null(n->tap);
}
END_TEST

START_TEST(parse_net_limits)
{
	const struct minivm_net *n = &t_cli.cfg.net;

	ck_assert_int_eq(parse("--kernel", "k", "--net",
			       "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,rx-bw=1M,tx-pps=100,tx-pps-burst=50,"
			       "rx-bw-refill=100ms,tx-bw=64K",
			       NULL), 0);
	ck_assert_uint_eq(n->rx_limit.bytes_per_s, 1ULL << 20);
	ck_assert_uint_eq(n->rx_limit.bytes_refill_ms, 100);
	ck_assert_uint_eq(n->rx_limit.ops_per_s, 0);
	ck_assert_uint_eq(n->tx_limit.ops_per_s, 100);
	ck_assert_uint_eq(n->tx_limit.ops_burst, 50);
	ck_assert_uint_eq(n->tx_limit.bytes_per_s, 64 << 10);
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,rx-bw=fast", NULL),
			   "bad --net");
	ck_assert_rejected(parse("--kernel", "k", "--net",
				 "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,tx-pps=1,tx-pps=2", NULL), "bad --net");
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,up-bw=1M", NULL),
			   "unknown or repeated option 'up-bw=1M'");
}
END_TEST

START_TEST(parse_net_bad)
{
	static const struct {
		const char *arg, *needle;
	} cases[] = {
		{ "ip=10.0.0.2/24,gw=10.0.0.1", "tap=NAME, ip=ADDR/LEN and gw=ADDR are required" },
		{ "tap=t,gw=10.0.0.1", "are required" },
		{ "tap=t,ip=10.0.0.2/24", "are required" },
		{ "tap=,ip=10.0.0.2/24,gw=10.0.0.1", "unknown or repeated option 'tap='" },
		{ "tap=a/b,ip=10.0.0.2/24,gw=10.0.0.1", "not a device name" },
		{ "tap=0123456789abcdef,ip=10.0.0.2/24,gw=10.0.0.1", "not a device name" },
		{ "tap=t,tap=u,ip=10.0.0.2/24,gw=10.0.0.1", "tap= given twice" },
		{ "tap=t,ip=10.0.0.2,gw=10.0.0.1", "ip=A.B.C.D/LEN" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.1.0.1", "in that subnet" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.2", "ip=A.B.C.D/LEN" },
		{ "tap=t,ip=10.0.0.256/24,gw=10.0.0.1", "ip=A.B.C.D/LEN" },
		{ "tap=t,ip=10.0.0.2/33,gw=10.0.0.1", "ip=A.B.C.D/LEN" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,dns=x", "dns=A.B.C.D" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,ip=10.0.0.3/24", "unknown or repeated option 'ip=" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,mac=01:00:00:00:00:01", "unicast" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,mac=00:00:00:00:00:00", "unicast" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,mac=02:00:00:00:00", "six hex bytes" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,mac=02-00-00-00-00-01", "six hex bytes" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,,", "unknown or repeated option ''" },
		{ "tap=t,ip=10.0.0.2/24,gw=10.0.0.1,bogus", "unknown or repeated option 'bogus'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse("--kernel", "k", "--net", cases[i].arg, NULL);

		ck_assert_msg(r == -EINVAL && strstr(t_err, cases[i].needle),
			      "--net %s: got %d '%s', expected a message with '%s'", cases[i].arg, r,
			      t_err, cases[i].needle);
	}
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1", "--net",
				 "tap=u,ip=10.0.0.2/24,gw=10.0.0.1", NULL), "given twice");
	/* The policy needs a NIC; allow-dns needs a resolver; rules are checked. */
	ck_assert_rejected(parse("--kernel", "k", "--allow", "10.0.0.0/8", NULL), "give --net too");
	ck_assert_rejected(parse("--kernel", "k", "--allow-dns", NULL), "give --net too");
	ck_assert_rejected(parse("--kernel", "k", "--net-policy", "f", NULL), "give --net too");
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1", "--allow-dns",
				 NULL), "dns=ADDR");
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1", "--allow",
				 "10.0.0.1/8", NULL), "bad --allow '10.0.0.1/8'");
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1", "--allow",
				 "10.0.0.1:0", NULL), "bad --allow");
	ck_assert_rejected(parse("--kernel", "k", "--net", "tap=t,ip=10.0.0.2/24,gw=10.0.0.1",
				 "--net-policy", "a", "--net-policy", "b", NULL), "given twice");
}
END_TEST

START_TEST(parse_net_too_many_rules)
{
	static const char *argv[5 + 2 * (MINIVM_MAX_NET_RULES + 1)];
	int argc = 0;

	argv[argc++] = "minivm";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	argv[argc++] = "--net";
	argv[argc++] = "tap=t,ip=10.0.0.2/24,gw=10.0.0.1";
	for (int i = 0; i <= MINIVM_MAX_NET_RULES; i++) {
		argv[argc++] = "--allow";
		argv[argc++] = "10.1.2.3:443/tcp";
	}
	ck_assert_int_eq(cli_parse(argc, (char *const *)argv, &t_cli, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_msg(strstr(t_err, "too many --allow") != NULL, "%s", t_err);
	ck_assert_int_eq(cli_parse(argc - 2, (char *const *)argv, &t_cli, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(t_cli.cfg.net.nr_allow, MINIVM_MAX_NET_RULES);
}
END_TEST


/* ---- images and workspaces (issue 9) ---- */

START_TEST(parse_images_good)
{
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "oci:/img/dir:v1", "--save",
			       "oci-archive:/out/x.tar:v2", "--", "true", NULL), 0);
	ck_assert(t_cli.rootfs_oci);
	ck_assert_str_eq(t_cli.cfg.rootfs, "oci:/img/dir:v1");
	ck_assert_str_eq(t_cli.save, "oci-archive:/out/x.tar:v2");
	ck_assert_int_eq(t_cli.scratch, SCRATCH_DISK);
	ck_assert_str_eq(t_cli.ws_host, "");

	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r.img", "--workspace", "/src/proj",
			       "--changes", "c.diff", "--apply", "--workspace-respect-gitignore",
			       "--agent", "make", NULL), 0);
	ck_assert(!t_cli.rootfs_oci);
	ck_assert_str_eq(t_cli.ws_host, "/src/proj");
	ck_assert_str_eq(t_cli.ws_guest, "/workspace");
	ck_assert_str_eq(t_cli.changes, "c.diff");
	ck_assert(t_cli.apply && t_cli.ws_gitignore);

	/* GUESTDIR after the last ':' when absolute; a ':' in HOSTDIR otherwise kept. */
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r.img", "--workspace",
			       "a:b:/home/u/work/", "--agent", "ls", NULL), 0);
	ck_assert_str_eq(t_cli.ws_host, "a:b");
	ck_assert_str_eq(t_cli.ws_guest, "/home/u/work");
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r.img", "--workspace", "a:b",
			       "--agent", "ls", NULL), 0);
	ck_assert_str_eq(t_cli.ws_host, "a:b");
	ck_assert_str_eq(t_cli.ws_guest, "/workspace");
}
END_TEST

START_TEST(parse_images_bad)
{
	static const struct {
		const char *a[8], *needle;
	} cases[] = {
		{ { "--rootfs", "r.img", "--save", "/out", "--agent", "x" }, "bad --save '/out'" },
		{ { "--rootfs", "r.img", "--save", "oci:a", "--save", "oci:b", "--agent", "x" },
		  "'--save' given twice" },
		{ { "--rootfs", "r.img", "--save", "oci:a", "--scratch", "none", "--agent", "x" },
		  "not with --scratch none" },
		{ { "--rootfs", "r.img,rw", "--save", "oci:a", "--agent", "x" }, "not with --scratch none" },
		{ { "--rootfs", "oci:a", "--run", "x" }, "work through the guest agent" },
		{ { "--rootfs", "r.img", "--save", "oci:a", "--run", "x" }, "work through the guest agent" },
		{ { "--rootfs", "r.img", "--changes", "c", "--agent", "x" }, "give --workspace" },
		{ { "--rootfs", "r.img", "--apply", "--agent", "x" }, "give --workspace" },
		{ { "--rootfs", "r.img", "--workspace-respect-gitignore", "--agent", "x" },
		  "give --workspace" },
		{ { "--rootfs", "r.img", "--workspace", "d:/", "--agent", "x" }, "other than /" },
		{ { "--rootfs", "r.img", "--workspace", "d:/a/../b", "--agent", "x" }, "components" },
		{ { "--rootfs", "r.img", "--workspace", "d:/a/..", "--agent", "x" }, "components" },
		{ { "--rootfs", "r.img", "--workspace", ":/w", "--agent", "x" }, "HOSTDIR[:GUESTDIR]" },
		{ { "--rootfs", "r.img", "--workspace", "d", "--workspace", "e", "--agent", "x" },
		  "'--workspace' given twice" },
		{ { "--rootfs", "oci:a", "--cmdline", "init=/bin/sh", "--agent", "x" },
		  "not with init=" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].a;
		int r = parse("--kernel", "k", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);

		ck_assert_msg(r == -EINVAL, "case %zu accepted", i);
		ck_assert_msg(strstr(t_err, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
			      t_err, cases[i].needle);
	}
}
END_TEST

/* ---- snapshots: --snapshot-after-ready, --restore, --template, template create ---- */

START_TEST(parse_snapshot_good)
{
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r.img", "--snapshot-after-ready", "/s",
			       "--agent", "x", NULL), 0);
	ck_assert_str_eq(t_cli.snapshot_dir, "/s");
	ck_assert(t_cli.agent);
	ck_assert(!t_cli.restore_dir);

	ck_assert_int_eq(parse("--restore", "/s", "--agent", "echo hi", NULL), 0);
	ck_assert_str_eq(t_cli.restore_dir, "/s");
	ck_assert_ptr_null(t_cli.cfg.kernel);
	ck_assert_int_eq(t_cli.scratch, SCRATCH_NONE);
	ck_assert_uint_eq(t_cli.boot_timeout_s, CLI_DEFAULT_BOOT_TIMEOUT);
	ck_assert_int_eq(t_cli.cfg.restore_state_fd, -1);
	ck_assert_int_eq(t_cli.cfg.snapshot_mem_fd, -1);

	ck_assert_int_eq(parse("--template", "py-3.11_a", "--timings", "--env", "A=1", "--", "ls", NULL), 0);
	ck_assert_str_eq(t_cli.template_name, "py-3.11_a");
	ck_assert(!t_cli.template_create);
	ck_assert(t_cli.print_timings);

	ck_assert_int_eq(parse("template", "create", "base", "--kernel", "k", "--rootfs", "r.img",
			       "--mem", "512M", NULL), 0);
	ck_assert(t_cli.template_create);
	ck_assert_str_eq(t_cli.template_name, "base");
	ck_assert(t_cli.agent);
	ck_assert_uint_eq(t_cli.agent_argc, 0);
	ck_assert_int_eq(t_cli.scratch, SCRATCH_DISK);
	ck_assert_uint_eq(t_cli.cfg.mem_bytes, 512ULL << 20);
}
END_TEST

START_TEST(parse_snapshot_bad)
{
	static const struct {
		const char *a[10], *needle;
	} cases[] = {
		{ { "--kernel", "k", "--rootfs", "r", "--snapshot-after-ready", "/s", "--run", "x" },
		  "give the command with --agent" },
		{ { "--kernel", "k", "--rootfs", "r", "--snapshot-after-ready", "/s",
		    "--snapshot-after-ready", "/t", "--agent", "x" }, "given twice or empty" },
		{ { "--kernel", "k", "--rootfs", "r", "--snapshot-after-ready", "", "--agent", "x" },
		  "given twice or empty" },
		{ { "--kernel", "k", "--rootfs", "r", "--snapshot-after-ready", "/s", "--net",
		    "tap=t0,ip=10.0.0.2/24,gw=10.0.0.1", "--agent", "x" }, "(--net) are not supported" },
		{ { "--restore", "/s", "--snapshot-after-ready", "/t", "--agent", "x" },
		  "not with --restore or --template" },
		{ { "--restore", "/s" }, "give --agent or --" },
		{ { "--restore", "/s", "--run", "x", "--", "y" }, "not with --run" },
		{ { "--restore", "/s", "--run", "x" }, "give --agent or --" },
		{ { "--restore", "/s", "--kernel", "k", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--rootfs", "r", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--mem", "1G", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--cpus", "2", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--disk", "d", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--scratch", "tmpfs", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--cmdline", "a", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--emulated", "yes", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--restore", "/s", "--save", "oci:a", "--agent", "x" }, "--save is not supported" },
		{ { "--restore", "/s", "--allow-dns", "--agent", "x" }, "has no NIC" },
		{ { "--restore", "/s", "--restore", "/t", "--agent", "x" }, "given twice or empty" },
		{ { "--restore", "/s", "--template", "t", "--agent", "x" }, "exclude each other" },
		{ { "--restore", "/s", "--apply", "--agent", "x" }, "give --workspace" },
		{ { "--template", "../etc", "--agent", "x" }, "bad --template '../etc'" },
		{ { "--template", ".hidden", "--agent", "x" }, "bad --template" },
		{ { "--template", "a/b", "--agent", "x" }, "bad --template" },
		{ { "--template", "", "--agent", "x" }, "bad --template" },
		{ { "--template", "a", "--template", "b", "--agent", "x" }, "'--template' given twice" },
		{ { "--template", "t", "--kernel", "k", "--agent", "x" }, "the snapshot names the machine" },
		{ { "--template", "t" }, "give --agent or --" },
		{ { "template" }, "usage: minivm template create" },
		{ { "template", "delete", "x" }, "usage: minivm template create" },
		{ { "template", "create" }, "needs a NAME" },
		{ { "template", "create", "a b", "--kernel", "k", "--rootfs", "r" }, "needs a NAME" },
		{ { "template", "create", "t", "--kernel", "k", "--rootfs", "r", "--agent", "x" },
		  "runs no command" },
		{ { "template", "create", "t", "--kernel", "k", "--rootfs", "r", "--", "x" },
		  "runs no command" },
		{ { "template", "create", "t", "--kernel", "k", "--rootfs", "r", "--run", "x" },
		  "runs no command" },
		{ { "template", "create", "t", "--kernel", "k", "--rootfs", "r", "--restore", "/s" },
		  "not --snapshot-after-ready or --restore" },
		{ { "template", "create", "t", "--kernel", "k", "--rootfs", "r", "--template", "u" },
		  "template create names its template first" },
		{ { "template", "create", "t", "--rootfs", "r" }, "--kernel is required" },
		{ { "template", "create", "t", "--kernel", "k" }, "--agent needs --rootfs" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].a;
		int r = parse(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], NULL);

		ck_assert_msg(r == -EINVAL, "case %zu accepted", i);
		ck_assert_msg(strstr(t_err, cases[i].needle) != NULL, "case %zu: message '%s' should "
			      "mention '%s'", i, t_err, cases[i].needle);
	}
}
END_TEST

START_TEST(template_names)
{
	ck_assert(cli_template_name_ok("a"));
	ck_assert(cli_template_name_ok("Py-3.11_x"));
	ck_assert(!cli_template_name_ok(NULL));
	ck_assert(!cli_template_name_ok(""));
	ck_assert(!cli_template_name_ok("."));
	ck_assert(!cli_template_name_ok(".."));
	ck_assert(!cli_template_name_ok("a/b"));
	ck_assert(!cli_template_name_ok("a b"));
	ck_assert(cli_template_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	ck_assert(!cli_template_name_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

START_TEST(usage_mentions_snapshots)
{
	ck_assert_ptr_nonnull(strstr(cli_usage, "--snapshot-after-ready DIR"));
	ck_assert_ptr_nonnull(strstr(cli_usage, "--restore DIR"));
	ck_assert_ptr_nonnull(strstr(cli_usage, "--template NAME"));
	ck_assert_ptr_nonnull(strstr(cli_usage, "minivm template create NAME"));
}
END_TEST

START_TEST(parse_api_sock_good)
{
	ck_assert_int_eq(parse("--api-sock", "/run/m.sock", NULL), 0);
	ck_assert_str_eq(t_cli.api_sock, "/run/m.sock");
	ck_assert_int_eq(t_cli.action, CLI_RUN);
	ck_assert(!t_cli.agent);
	ck_assert_ptr_null(t_cli.cfg.kernel);
	ck_assert_int_eq(t_cli.log_format, LOG_TEXT);
	ck_assert_ptr_null(t_cli.env[0]);
	ck_assert_int_eq(parse("--no-jail", "-v", "--api-sock=/s", "--log-format", "json", NULL), 0);
	ck_assert_str_eq(t_cli.api_sock, "/s");
	ck_assert_int_eq(t_cli.jail.mode, JAIL_OFF);
	ck_assert_uint_eq(t_cli.cfg.verbose, 1);
	ck_assert_int_eq(t_cli.log_format, LOG_JSON);
	ck_assert_int_eq(parse("--api-sock", "s", "--jail", "--uid", "1000", "--gid=1000",
			       "--cpu-quota", "50", "-vv", NULL), 0);
	ck_assert_int_eq(t_cli.jail.mode, JAIL_REQUIRED);
	ck_assert_uint_eq(t_cli.jail.uid, 1000);
	ck_assert_uint_eq(t_cli.jail.cpu_quota_pct, 50);
	ck_assert_int_eq(parse("--api-sock", "s", "--help", NULL), 0);
	ck_assert_int_eq(t_cli.action, CLI_HELP);
}
END_TEST

START_TEST(parse_api_sock_bad)
{
	static const struct {
		const char *a[8], *needle;
	} cases[] = {
		{ { "--api-sock" }, "needs a value" },
		{ { "--api-sock", "" }, "bad --api-sock ''" },
		{ { "--api-sock",
		    "/a/very/long/path/that/does/not/fit/into/sun_path/because/it/is/longer/than/"
		    "one/hundred/and/seven/bytes/x.sock" }, "1 to 107 bytes" },
		{ { "--api-sock", "a", "--api-sock", "b" }, "'--api-sock' given twice" },
		{ { "--api-sock", "s", "--agent", "ls" }, "'--agent' does not go with it" },
		{ { "--api-sock", "s", "--", "ls" }, "'--' does not go with it" },
		{ { "--api-sock", "s", "--run", "x" }, "'--run' does not go with it" },
		{ { "--kernel", "k", "--api-sock", "s" }, "'--kernel' does not go with it" },
		{ { "--api-sock", "s", "--rootfs=r" }, "'--rootfs=r' does not go with it" },
		{ { "--api-sock", "s", "--timings" }, "'--timings' does not go with it" },
		{ { "--api-sock", "s", "--restore", "/d" }, "'--restore' does not go with it" },
		{ { "--api-sock", "s", "--no-jail", "--uid", "5" }, "not with --no-jail" },
		{ { "template", "create", "t", "--api-sock", "s" }, "not with template create" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].a;
		int r = parse(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);

		ck_assert_msg(r == -EINVAL, "case %zu accepted", i);
		ck_assert_msg(strstr(t_err, cases[i].needle) != NULL, "case %zu: message '%s' should "
			      "mention '%s'", i, t_err, cases[i].needle);
	}
}
END_TEST

START_TEST(parse_log_format)
{
	ck_assert_int_eq(parse("--kernel", "k", "--log-format", "json", NULL), 0);
	ck_assert_int_eq(t_cli.log_format, LOG_JSON);
	ck_assert_int_eq(parse("--log-format=text", "--kernel", "k", "--rootfs", "r", "--", "ls",
			       NULL), 0);
	ck_assert_int_eq(t_cli.log_format, LOG_TEXT);
	ck_assert_ptr_null(t_cli.api_sock);
	/* After "--" it is the command's. */
	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "r", "--", "ls", "--log-format", "x",
			       NULL), 0);
	ck_assert_int_eq(t_cli.log_format, LOG_TEXT);
	ck_assert_str_eq(t_cli.agent_argv[2], "x");
	ck_assert_rejected(parse("--kernel", "k", "--log-format", "xml", NULL),
			   "bad --log-format 'xml' (expected text or json)");
	ck_assert_rejected(parse("--kernel", "k", "--log-format", "json", "--log-format", "json",
				 NULL), "'--log-format' given twice");
	ck_assert_rejected(parse("--kernel", "k", "--log-format", NULL), "needs a value");
	ck_assert_ptr_nonnull(strstr(cli_usage, "--log-format FMT"));
	ck_assert_ptr_nonnull(strstr(cli_usage, "--api-sock PATH"));
	ck_assert_ptr_nonnull(strstr(cli_usage, "With --api-sock: 0 when a client stopped"));
}
END_TEST

static Suite *vmm_cli_suite(void)
{
	Suite *s = suite_create("vmm_cli");
	TCase *size = tcase_create("size");
	TCase *args = tcase_create("args");

	tcase_add_test(size, size_good);
	tcase_add_test(size, size_bad);
	tcase_add_test(args, parse_minimal_defaults);
	tcase_add_test(args, parse_all_options);
	tcase_add_test(args, parse_equals_form);
	tcase_add_test(args, parse_mem_range);
	tcase_add_test(args, parse_cpus);
	tcase_add_test(args, parse_duplicates);
	tcase_add_test(args, parse_unknown_and_positional);
	tcase_add_test(args, parse_missing_value);
	tcase_add_test(args, parse_disks);
	tcase_add_test(args, parse_too_many_disks);
	tcase_add_test(args, parse_emulated);
	tcase_add_test(args, parse_help_version);
	tcase_add_test(args, parse_kernel_required);
	tcase_add_test(args, parse_small_error_buffer);
	tcase_add_test(args, parse_agent_split);
	tcase_add_test(args, parse_agent_dashdash);
	tcase_add_test(args, parse_agent_options);
	tcase_add_test(args, parse_agent_bad);
	tcase_add_test(args, parse_agent_too_many_env);
	tcase_add_test(args, parse_net_good);
	tcase_add_test(args, parse_net_limits);
	tcase_add_test(args, parse_net_bad);
	tcase_add_test(args, parse_net_too_many_rules);
	tcase_add_test(args, parse_images_good);
	tcase_add_test(args, parse_images_bad);
	tcase_add_test(args, parse_snapshot_good);
	tcase_add_test(args, parse_snapshot_bad);
	tcase_add_test(args, template_names);
	tcase_add_test(args, usage_mentions_snapshots);
	tcase_add_test(args, parse_api_sock_good);
	tcase_add_test(args, parse_api_sock_bad);
	tcase_add_test(args, parse_log_format);
	suite_add_tcase(s, size);
	suite_add_tcase(s, args);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
