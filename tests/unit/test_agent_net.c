/* Unit tests for minivm.net=: agent_net_parse/format (rootfs/agent/cmdline.c) and the guest's setup (rootfs/agent/netcfg.c: resolver files; lo in a private network namespace). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"
#include "rootfs/agent/netcfg.h"

#define Q(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Parse s from a heap copy of exactly strlen(s) bytes: ASan sees any read past len. */
static int np(const char *s, struct agent_net *o)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	int r;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, len);
	r = agent_net_parse(copy, len, o);
	free(copy);
	return r;
}

START_TEST(test_mask)
{
	ck_assert_uint_eq(agent_net_mask(0), 0);
	ck_assert_uint_eq(agent_net_mask(1), 0x80000000u);
	ck_assert_uint_eq(agent_net_mask(8), 0xff000000u);
	ck_assert_uint_eq(agent_net_mask(24), 0xffffff00u);
	ck_assert_uint_eq(agent_net_mask(31), 0xfffffffeu);
	ck_assert_uint_eq(agent_net_mask(32), 0xffffffffu);
}
END_TEST

START_TEST(test_parse_accepts)
{
	struct agent_net o;

	ck_assert_int_eq(np("10.0.2.15/24,10.0.2.1,10.0.2.1", &o), 0);
	ck_assert_uint_eq(o.ip, Q(10, 0, 2, 15));
	ck_assert_uint_eq(o.prefix, 24);
	ck_assert_uint_eq(o.gw, Q(10, 0, 2, 1));
	ck_assert_uint_eq(o.dns, Q(10, 0, 2, 1));
	/* No DNS. */
	ck_assert_int_eq(np("10.0.2.15/24,10.0.2.1", &o), 0);
	ck_assert_uint_eq(o.dns, 0);
	/* DNS anywhere (not bound to the subnet). */
	ck_assert_int_eq(np("192.168.1.2/24,192.168.1.254,8.8.8.8", &o), 0);
	ck_assert_uint_eq(o.dns, Q(8, 8, 8, 8));
	/* Octet bounds: 0 and 255 ("0" alone is no leading zero). */
	ck_assert_int_eq(np("10.0.0.1/8,10.255.255.254,255.255.255.255", &o), 0);
	ck_assert_uint_eq(o.gw, Q(10, 255, 255, 254));
	ck_assert_uint_eq(o.dns, 0xffffffffu);
	/* Prefix bounds: 1 (both in 0.0.0.0/1), 30 (two hosts), 31 (RFC 3021: no network/broadcast). */
	ck_assert_int_eq(np("10.0.2.15/1,127.0.0.1", &o), 0);
	ck_assert_uint_eq(o.prefix, 1);
	ck_assert_int_eq(np("10.0.0.1/30,10.0.0.2", &o), 0);
	ck_assert_int_eq(np("10.0.0.2/30,10.0.0.1", &o), 0);
	ck_assert_int_eq(np("10.0.0.0/31,10.0.0.1", &o), 0);
	ck_assert_int_eq(np("10.0.0.1/31,10.0.0.0", &o), 0);
	ck_assert_uint_eq(o.prefix, 31);
	/* A /23 whose gateway is in the other half. */
	ck_assert_int_eq(np("10.0.2.15/23,10.0.3.1", &o), 0);
	/* The host part's extremes inside a /24 (.1 and .254). */
	ck_assert_int_eq(np("10.0.2.1/24,10.0.2.254", &o), 0);
	/* Only len bytes count. */
	ck_assert_int_eq(agent_net_parse("10.0.2.15/24,10.0.2.1,garbage", 21, &o), 0);
	ck_assert_uint_eq(o.dns, 0);
	ck_assert_int_eq(agent_net_parse("10.0.2.15/24,10.0.2.19", 21, &o), 0);
	ck_assert_uint_eq(o.gw, Q(10, 0, 2, 1));
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const char *const bad[] = {
		/* form */
		"", "10.0.2.15", "10.0.2.15/24", "10.0.2.15/24,", "10.0.2.15/24,10.0.2.1,",
		"10.0.2.15/24,10.0.2.1,10.0.2.1,", "10.0.2.15/24,10.0.2.1,10.0.2.1,10.0.2.2",
		"10.0.2.15/24,10.0.2.1,,", "10.0.2.15/24;10.0.2.1", "10.0.2.15 /24,10.0.2.1",
		" 10.0.2.15/24,10.0.2.1", "10.0.2.15/24,10.0.2.1 ", "10.0.2.15/24,10.0.2.1,10.0.2.1 ",
		"10.0.2.15/24, 10.0.2.1", "10.0.2.15:24,10.0.2.1", "10.0.2/24,10.0.2.1",
		"10.0.2.15.1/24,10.0.2.1", "10.0.2.15/24,10.0.2", "10.0.2.15/24,10.0.2.1.1",
		"10..2.15/24,10.0.2.1", ".10.0.2.15/24,10.0.2.1", "10.0.2.15./24,10.0.2.1",
		"10.0.2.15/,10.0.2.1", "/24,10.0.2.1", "10.0.2.15/24,,10.0.2.1",
		"10.0.2.15/24,10.0.2.1,10.0.2", "0x0a.0.2.15/24,10.0.2.1", "+10.0.2.15/24,10.0.2.1",
		"10.0.2.15/+24,10.0.2.1", "10.0.2.15/-24,10.0.2.1", "10.0.2.15/24,10.0.2.1\n",
		"10.0.2.15/24,10.0.2.1,a.b.c.d", "\"10.0.2.15/24,10.0.2.1\"", "10.0.2.15/24/24,10.0.2.1",
		/* octets: 256, leading zeros, four digits */
		"10.0.2.256/24,10.0.2.1", "256.0.2.15/8,1.0.0.1", "10.0.2.15/24,10.0.2.256",
		"10.0.2.15/24,10.0.2.1,10.0.2.256", "10.0.02.15/24,10.0.2.1", "010.0.2.15/24,10.0.2.1",
		"10.0.2.15/24,10.0.2.01", "10.0.2.15/24,10.0.2.1,10.0.2.00", "10.0.0002.15/24,10.0.2.1",
		"10.0.2.1000/24,10.0.2.1",
		/* prefix: 0, 33, leading zero, 3 digits, 32 (no gateway can fit) */
		"10.0.2.15/0,10.0.2.1", "10.0.2.15/33,10.0.2.1", "10.0.2.15/024,10.0.2.1",
		"10.0.2.15/00,10.0.2.1", "10.0.2.15/100,10.0.2.1", "10.0.2.15/32,10.0.2.1",
		"10.0.2.15/32,10.0.2.15",
		/* zero addresses */
		"0.0.0.0/31,0.0.0.1", "0.0.0.1/31,0.0.0.0", "10.0.2.15/24,10.0.2.1,0.0.0.0",
		"0.0.0.0/24,0.0.0.1",
		/* gateway outside the subnet, or the guest's own address */
		"10.0.2.15/24,10.0.3.1", "10.0.2.15/24,10.0.1.254", "10.0.2.15/25,10.0.2.129",
		"10.0.2.15/1,128.0.0.1", "10.0.0.0/31,10.0.0.2", "10.0.2.15/24,10.0.2.15",
		/* network / broadcast for prefix <= 30: ip, then gw */
		"10.0.2.0/24,10.0.2.1", "10.0.2.255/24,10.0.2.1", "10.0.0.0/30,10.0.0.1",
		"10.0.0.3/30,10.0.0.1", "10.0.2.15/24,10.0.2.0", "10.0.2.15/24,10.0.2.255",
		"10.0.0.1/30,10.0.0.0", "10.0.0.1/30,10.0.0.3", "0.0.0.1/1,127.255.255.255",
	};
	struct agent_net o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&o, 0xa5, sizeof(o));
		ck_assert_msg(np(bad[i], &o) == -EINVAL, "'%s' accepted", bad[i]);
		/* A refusal leaves nothing half-filled. */
		ck_assert_uint_eq(o.ip | o.prefix | o.gw | o.dns, 0);
	}
	ck_assert_int_eq(agent_net_parse(NULL, 0, &o), -EINVAL);
	ck_assert_int_eq(agent_net_parse("10.0.2.15/24,10.0.2.1", 21, NULL), -EINVAL);
	/* A NUL inside len is a byte like any other: refused. */
	ck_assert_int_eq(agent_net_parse("10.0.2.15/24,10.0.2.1\0", 22, &o), -EINVAL);
}
END_TEST

/* Every strict prefix of a valid value is refused, or is itself a valid value. */
START_TEST(test_parse_truncated)
{
	static const char full[] = "10.0.2.15/24,10.0.2.1,10.0.2.1";
	struct agent_net o;

	for (size_t len = 0; len < sizeof(full) - 1; len++) {
		char *copy = malloc(len ? len : 1);
		int r;

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, full, len);
		r = agent_net_parse(copy, len, &o);
		free(copy);
		/* Only "10.0.2.15/24,10.0.2.1" (21 bytes, no DNS) is a value itself. */
		ck_assert_msg(r == (len == 21 ? 0 : -EINVAL), "prefix of %zu bytes: %d", len, r);
	}
}
END_TEST

START_TEST(test_format)
{
	static const char *const good[] = {
		"10.0.2.15/24,10.0.2.1,10.0.2.1", "10.0.2.15/24,10.0.2.1", "10.0.0.0/31,10.0.0.1",
		"10.0.2.15/1,127.0.0.1,1.1.1.1", "192.168.100.200/16,192.168.0.1,9.9.9.9",
		"255.255.255.254/31,255.255.255.255,255.255.255.255",
	};
	char buf[AGENT_NET_VALUE_MAX];
	struct agent_net in, out;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int len;

		ck_assert_msg(np(good[i], &in) == 0, "'%s' refused", good[i]);
		len = agent_net_format(&in, buf, sizeof(buf));
		ck_assert_int_eq(len, (int)strlen(good[i]));
		/* Canonical forms come back byte for byte, and parse to the same struct. */
		ck_assert_str_eq(buf, good[i]);
		ck_assert_int_eq(np(buf, &out), 0);
		ck_assert_uint_eq(in.ip, out.ip);
		ck_assert_uint_eq(in.prefix, out.prefix);
		ck_assert_uint_eq(in.gw, out.gw);
		ck_assert_uint_eq(in.dns, out.dns);
		/* Exactly enough room (len + NUL), and one byte less. */
		ck_assert_int_eq(agent_net_format(&in, buf, (size_t)len + 1), len);
		ck_assert_int_eq(agent_net_format(&in, buf, (size_t)len), -ENOBUFS);
	}
	/* The longest value fits AGENT_NET_VALUE_MAX. */
	ck_assert_int_eq(np(good[5], &in), 0);
	ck_assert_int_eq(agent_net_format(&in, buf, sizeof(buf)), 50);

	/* What parse would refuse, format refuses too. */
	struct agent_net bad[] = {
		{ Q(10, 0, 2, 15), 0, Q(10, 0, 2, 1), 0 },
		{ Q(10, 0, 2, 15), 33, Q(10, 0, 2, 1), 0 },
		{ Q(10, 0, 2, 15), 32, Q(10, 0, 2, 15), 0 },
		{ Q(10, 0, 2, 15), 24, Q(10, 0, 3, 1), 0 },
		{ Q(10, 0, 2, 15), 24, Q(10, 0, 2, 15), 0 },
		{ Q(10, 0, 2, 15), 24, 0, 0 },
		{ 0, 31, 1, 0 },
		{ Q(10, 0, 2, 0), 24, Q(10, 0, 2, 1), 0 },
		{ Q(10, 0, 2, 255), 24, Q(10, 0, 2, 1), 0 },
		{ Q(10, 0, 2, 15), 24, Q(10, 0, 2, 255), 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(agent_net_format(&bad[i], buf, sizeof(buf)) == -EINVAL, "bad[%zu] formatted", i);
	ck_assert_int_eq(agent_net_format(NULL, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(agent_net_format(&in, NULL, 0), -EINVAL);
}
END_TEST

/* The value found in a kernel command line, as init finds it. */
START_TEST(test_cmdline)
{
	static const char cl[] = "console=ttyS0 minivm.net=10.0.2.15/24,10.0.2.1,10.0.2.1 minivm.scratch=vdb";
	struct agent_net o;
	const char *val;
	size_t vlen;

	ck_assert_int_eq(agent_cmdline_find(cl, sizeof(cl) - 1, MINIVM_NET_PARAM, &val, &vlen), 1);
	ck_assert_int_eq(agent_net_parse(val, vlen, &o), 0);
	ck_assert_uint_eq(o.ip, Q(10, 0, 2, 15));
	ck_assert_uint_eq(o.dns, Q(10, 0, 2, 1));
}
END_TEST

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/minivm-net-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, size - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

START_TEST(test_resolv)
{
	char etc[128], fb[128], dir[128], buf[128];
	const char *what;
	int etc_err;

	mk_tmpdir();
	snprintf(etc, sizeof(etc), "%s/resolv.conf", tmpdir);
	snprintf(fb, sizeof(fb), "%s/fallback.conf", tmpdir);
	snprintf(dir, sizeof(dir), "%s/dir", tmpdir);

	/* Writable: written in place (created, then truncated on a rewrite). */
	ck_assert_int_eq(netcfg_resolv_write(etc, Q(10, 0, 2, 1)), 0);
	ck_assert_int_eq(netcfg_resolv_install(etc, fb, Q(1, 2, 3, 4), &etc_err, &what), 0);
	read_file(etc, buf, sizeof(buf));
	ck_assert_str_eq(buf, "nameserver 1.2.3.4\n");
	ck_assert_int_eq(access(fb, F_OK), -1);
	ck_assert_int_eq(netcfg_resolv_write(etc, 0), -EINVAL);

	/* etc unwritable and absent (its directory is missing): the fallback holds it, "stat". */
	snprintf(buf, sizeof(buf), "%s/no/such/resolv.conf", tmpdir);
	ck_assert_int_eq(netcfg_resolv_install(buf, fb, Q(10, 0, 2, 3), &etc_err, &what), -ENOENT);
	ck_assert_int_eq(etc_err, -ENOENT);
	ck_assert_str_eq(what, "stat");
	read_file(fb, buf, sizeof(buf));
	ck_assert_str_eq(buf, "nameserver 10.0.2.3\n");

	/* etc exists but cannot be written (a directory): bind a file over a
	 * directory fails (ENOTDIR as root, EPERM otherwise), "bind". */
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_lt(netcfg_resolv_install(dir, fb, Q(10, 0, 2, 3), &etc_err, &what), 0);
	ck_assert_int_eq(etc_err, -EISDIR);
	ck_assert_str_eq(what, "bind");

	/* Neither writable: "fallback". */
	snprintf(buf, sizeof(buf), "%s/no/fallback.conf", tmpdir);
	ck_assert_int_eq(netcfg_resolv_install(dir, buf, Q(10, 0, 2, 3), &etc_err, &what), -ENOENT);
	ck_assert_str_eq(what, "fallback");

	ck_assert_int_eq(unlink(etc), 0);
	ck_assert_int_eq(unlink(fb), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_eq(rmdir(tmpdir), 0);
}
END_TEST

/*
 * netcfg_setup() in a child in a new network namespace (only lo, down): lo
 * ends up with 127.0.0.1 and IFF_UP, and with minivm.net= but no other
 * interface the console gets exactly one line. Skipped without the
 * privilege to unshare (not root).
 */
static int netns_child(const char *cl, const char *logpath)
{
	struct sockaddr_in sin;
	struct ifreq ifr;
	int fd, log;

	if (unshare(CLONE_NEWNET) != 0)
		return 77;
	log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (log < 0 || dup2(log, STDERR_FILENO) < 0)
		return 10;
	netcfg_setup(cl, strlen(cl));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 || !(ifr.ifr_flags & IFF_UP))
		return 11;
	if (ioctl(fd, SIOCGIFADDR, &ifr) != 0)
		return 12;
	memcpy(&sin, &ifr.ifr_addr, sizeof(sin));
	if (ntohl(sin.sin_addr.s_addr) != 0x7f000001u)
		return 13;
	return 0;
}

static int run_netns(const char *cl, char *log, size_t log_size)
{
	char path[128];
	pid_t pid;
	int ws;

	snprintf(path, sizeof(path), "%s/console.log", tmpdir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(netns_child(cl, path));
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert(WIFEXITED(ws));
	if (WEXITSTATUS(ws) == 0)
		read_file(path, log, log_size);
	unlink(path);
	return WEXITSTATUS(ws);
}

START_TEST(test_setup_netns)
{
	char log[512];
	int r;

	mk_tmpdir();
	r = run_netns("console=ttyS0", log, sizeof(log));
	if (r == 77) {
		fprintf(stderr, "test_setup_netns: cannot unshare a network namespace; skipped\n");
		rmdir(tmpdir);
		return;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(log, ""); /* nothing printed on success */

	ck_assert_int_eq(run_netns("minivm.net=10.0.2.15/24,10.0.2.1,10.0.2.1", log, sizeof(log)), 0);
	ck_assert_str_eq(log, "minivm-init: net: minivm.net= given but no network interface; "
			      "network not configured\n");

	ck_assert_int_eq(run_netns("minivm.net=10.0.2.15/33,10.0.2.1", log, sizeof(log)), 0);
	ck_assert_str_eq(log, "minivm-init: net: bad minivm.net=10.0.2.15/33,10.0.2.1 (want "
			      "ADDR/LEN,GW[,DNS]); network not configured\n");
	ck_assert_int_eq(rmdir(tmpdir), 0);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("agent_net");
	TCase *tc = tcase_create("net");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mask);
	tcase_add_test(tc, test_parse_accepts);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_truncated);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_cmdline);
	tcase_add_test(tc, test_resolv);
	tcase_add_test(tc, test_setup_netns);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
