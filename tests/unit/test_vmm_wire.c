/* Tests for vmm/vmm_wire.c (the VMM process's configuration message: round trip, every malformed input refused with a message) and for starting minivm-vmm from vmm/vmm_proc.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vmm_proc.h"
#include "vmm/vmm_wire.h"

#ifndef MINIVM_TEST_BUILD
#error "MINIVM_TEST_BUILD must name the build directory"
#endif

#define T_RULES 3

static char t_err[600];
static const char *const t_rules[T_RULES] = { "10.0.0.0/8:443/tcp", "1.2.3.4", "allow-dns" };
static struct snapshot_disk t_snap_disks[SNAPSHOT_MAX_DISKS];

static struct minivm_rate_limit limit_of(uint64_t k)
{
	struct minivm_rate_limit l = { k + 1, k + 2, (uint32_t)k + 3, k + 4, k + 5, (uint32_t)k + 6 };

	return l;
}

/* Every field of cfg set to something other than its default. */
static void full_config(struct minivm_config *c, struct jail_config *j)
{
	static const char *const paths[MINIVM_MAX_DISKS] = { "/d0", "/d1", "/d2", "/d3",
							     "/d4", "/d5", "/d6", "/d7" };

	minivm_config_init(c);
	c->kernel = "/k/vmlinux";
	c->rootfs = "/r/rootfs.img";
	c->rootfs_rw = true;
	c->rootfs_limit = limit_of(10);
	c->nr_disks = MINIVM_MAX_DISKS;
	for (unsigned int i = 0; i < MINIVM_MAX_DISKS; i++) {
		c->disks[i].path = paths[i];
		c->disks[i].read_only = i & 1;
		c->disks[i].read_write = !(i & 1);
		c->disks[i].limit = limit_of(100 + i);
	}
	c->run = "echo hi";
	c->cmdline = "quiet x=y";
	c->console = NULL;
	c->console_fd = 7;
	c->mem_bytes = 3ULL << 30;
	c->cpus = 5;
	c->emul = MINIVM_EMUL_NO;
	c->timings = true;
	c->verbose = 2;
	c->vsock_uds = "/run/v.sock";
	c->guest_cid = 42;
	c->vm_timeout_ms = 123456789012ULL;
	c->net.tap = "tap9";
	for (unsigned int i = 0; i < 6; i++)
		c->net.mac[i] = (uint8_t)(0x10 + i);
	c->net.ip = 0x0a000002;
	c->net.prefix = 24;
	c->net.gw = 0x0a000001;
	c->net.dns = 0x08080808;
	c->net.allow = t_rules;
	c->net.nr_allow = T_RULES;
	c->net.policy_file = "/etc/policy";
	c->net.allow_dns = true;
	c->net.rx_limit = limit_of(200);
	c->net.tx_limit = limit_of(300);
	c->snapshot_mem_fd = 11;
	c->snapshot_state_fd = 12;
	for (unsigned int i = 0; i < SNAPSHOT_MAX_DISKS; i++) {
		struct snapshot_disk *d = &t_snap_disks[i];

		memset(d, 0, sizeof(*d));
		d->flags = i & 1 ? SNAPSHOT_DISK_RO : SNAPSHOT_DISK_COPIED;
		d->id = (struct snapshot_ident){ 1000 + i, 2000 + i, 3000 + i, 4000 + i, 5000 + i };
		memset(d->sha256, 0xa0 + (int)i, sizeof(d->sha256));
		snprintf(d->path, sizeof(d->path), "disk%u.img", i);
	}
	c->snapshot_disks = t_snap_disks;
	c->nr_snapshot_disks = SNAPSHOT_MAX_DISKS;
	c->restore_state_fd = 13;
	c->restore_mem_fd = 14;
	jail_config_init(j);
	j->mode = JAIL_REQUIRED;
	j->uid = 1234;
	j->gid = 5678;
	j->cpu_quota_pct = 250;
}

static void assert_limit_eq(const struct minivm_rate_limit *a, const struct minivm_rate_limit *b)
{
	ck_assert_uint_eq(a->bytes_per_s, b->bytes_per_s);
	ck_assert_uint_eq(a->bytes_burst, b->bytes_burst);
	ck_assert_uint_eq(a->bytes_refill_ms, b->bytes_refill_ms);
	ck_assert_uint_eq(a->ops_per_s, b->ops_per_s);
	ck_assert_uint_eq(a->ops_burst, b->ops_burst);
	ck_assert_uint_eq(a->ops_refill_ms, b->ops_refill_ms);
}

static void assert_net_eq(const struct minivm_net *a, const struct minivm_net *b)
{
	ck_assert_str_eq(a->tap, b->tap);
	ck_assert_mem_eq(a->mac, b->mac, sizeof(a->mac));
	ck_assert_uint_eq(a->ip, b->ip);
	ck_assert_uint_eq(a->prefix, b->prefix);
	ck_assert_uint_eq(a->gw, b->gw);
	ck_assert_uint_eq(a->dns, b->dns);
	ck_assert_uint_eq(a->nr_allow, b->nr_allow);
	for (unsigned int i = 0; i < a->nr_allow; i++)
		ck_assert_str_eq(a->allow[i], b->allow[i]);
	ck_assert_str_eq(a->policy_file, b->policy_file);
	ck_assert_int_eq(a->allow_dns, b->allow_dns);
	assert_limit_eq(&a->rx_limit, &b->rx_limit);
	assert_limit_eq(&a->tx_limit, &b->tx_limit);
}

static void assert_config_eq(const struct minivm_config *a, const struct minivm_config *b)
{
	ck_assert_str_eq(a->kernel, b->kernel);
	ck_assert_str_eq(a->rootfs, b->rootfs);
	ck_assert_int_eq(a->rootfs_rw, b->rootfs_rw);
	assert_limit_eq(&a->rootfs_limit, &b->rootfs_limit);
	ck_assert_uint_eq(a->nr_disks, b->nr_disks);
	for (unsigned int i = 0; i < a->nr_disks; i++) {
		ck_assert_str_eq(a->disks[i].path, b->disks[i].path);
		ck_assert_int_eq(a->disks[i].read_only, b->disks[i].read_only);
		ck_assert_int_eq(a->disks[i].read_write, b->disks[i].read_write);
		assert_limit_eq(&a->disks[i].limit, &b->disks[i].limit);
	}
	ck_assert_str_eq(a->run, b->run);
	ck_assert_str_eq(a->cmdline, b->cmdline);
	ck_assert_ptr_null(b->console);
	ck_assert_uint_eq(a->mem_bytes, b->mem_bytes);
	ck_assert_uint_eq(a->cpus, b->cpus);
	ck_assert_int_eq(a->emul, b->emul);
	ck_assert_int_eq(a->timings, b->timings);
	ck_assert_int_eq(a->verbose, b->verbose);
	ck_assert_str_eq(a->vsock_uds, b->vsock_uds);
	ck_assert_uint_eq(a->guest_cid, b->guest_cid);
	ck_assert_uint_eq(a->vm_timeout_ms, b->vm_timeout_ms);
	assert_net_eq(&a->net, &b->net);
	ck_assert_uint_eq(a->nr_snapshot_disks, b->nr_snapshot_disks);
	ck_assert_mem_eq(a->snapshot_disks, b->snapshot_disks,
			 a->nr_snapshot_disks * sizeof(struct snapshot_disk));
}

START_TEST(test_round_trip)
{
	struct minivm_config c;
	struct jail_config j;
	struct vmm_wire_config w;
	uint8_t *buf;
	size_t len, total;

	full_config(&c, &j);
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/run/minivm.x", &buf, &len, t_err, sizeof(t_err)), 0);
	ck_assert_int_eq(vmm_wire_size(buf, VMM_WIRE_HDR_SIZE, &total, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(total, len);
	ck_assert_int_eq(vmm_wire_decode(buf, len, &w, t_err, sizeof(t_err)), 0);
	assert_config_eq(&c, &w.cfg);
	ck_assert_str_eq(w.jail_dir, "/run/minivm.x");
	ck_assert_int_eq(w.jail.mode, JAIL_REQUIRED);
	ck_assert_uint_eq(w.jail.uid, 1234);
	ck_assert_uint_eq(w.jail.gid, 5678);
	ck_assert_uint_eq(w.jail.cpu_quota_pct, 250);
	/* Fds go by position: the decoded config names the fixed numbers. */
	ck_assert_int_eq(w.cfg.console_fd, VMM_FD_CONSOLE);
	ck_assert_int_eq(w.cfg.snapshot_mem_fd, VMM_FD_SNAPSHOT_MEM);
	ck_assert_int_eq(w.cfg.snapshot_state_fd, VMM_FD_SNAPSHOT_STATE);
	ck_assert_int_eq(w.cfg.restore_state_fd, VMM_FD_RESTORE_STATE);
	ck_assert_int_eq(w.cfg.restore_mem_fd, VMM_FD_RESTORE_MEM);
	ck_assert_ptr_null(w.cfg.vsock_uds_jailed);
	ck_assert(!w.cfg.seccomp);
	vmm_wire_free(&w);
	free(buf);
}
END_TEST

/* The defaults: NULL strings stay NULL, absent fds -1, no arrays. */
START_TEST(test_round_trip_defaults)
{
	struct minivm_config c;
	struct jail_config j;
	struct vmm_wire_config w;
	uint8_t *buf;
	size_t len;

	minivm_config_init(&c);
	c.console = "/tmp/console.log"; /* then console_fd is not passed */
	jail_config_init(&j);
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "", &buf, &len, t_err, sizeof(t_err)), 0);
	ck_assert_int_eq(vmm_wire_decode(buf, len, &w, t_err, sizeof(t_err)), 0);
	ck_assert_str_eq(w.jail_dir, "");
	ck_assert_ptr_null(w.cfg.kernel);
	ck_assert_ptr_null(w.cfg.net.tap);
	ck_assert_ptr_null(w.cfg.net.allow);
	ck_assert_ptr_null(w.cfg.snapshot_disks);
	ck_assert_str_eq(w.cfg.console, "/tmp/console.log");
	ck_assert_int_eq(w.cfg.console_fd, -1);
	ck_assert_int_eq(w.cfg.snapshot_mem_fd, -1);
	ck_assert_int_eq(w.cfg.restore_mem_fd, -1);
	ck_assert_uint_eq(w.cfg.mem_bytes, c.mem_bytes);
	vmm_wire_free(&w);
	free(buf);
}
END_TEST

/* The largest counts pass; one more is refused when encoding. */
START_TEST(test_max_rules)
{
	static const char *rules[MINIVM_MAX_NET_RULES + 1];
	struct minivm_config c;
	struct jail_config j;
	struct vmm_wire_config w;
	uint8_t *buf;
	size_t len;

	for (unsigned int i = 0; i <= MINIVM_MAX_NET_RULES; i++)
		rules[i] = "192.168.0.0/16:53/udp";
	minivm_config_init(&c);
	jail_config_init(&j);
	c.net.allow = rules;
	c.net.nr_allow = MINIVM_MAX_NET_RULES;
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/d", &buf, &len, t_err, sizeof(t_err)), 0);
	ck_assert_int_eq(vmm_wire_decode(buf, len, &w, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(w.cfg.net.nr_allow, MINIVM_MAX_NET_RULES);
	ck_assert_str_eq(w.cfg.net.allow[MINIVM_MAX_NET_RULES - 1], rules[0]);
	vmm_wire_free(&w);
	free(buf);
	c.net.nr_allow = MINIVM_MAX_NET_RULES + 1;
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/d", &buf, &len, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(t_err, "network rules: at most 1024"));
	ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(test_encode_refuses)
{
	static char long_path[VMM_WIRE_MAX_STR + 1];
	struct minivm_config c;
	struct jail_config j;
	uint8_t *buf;
	size_t len;

	memset(long_path, 'a', VMM_WIRE_MAX_STR);
	minivm_config_init(&c);
	jail_config_init(&j);
	c.kernel = long_path;
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/d", &buf, &len, t_err, sizeof(t_err)),
			 -ENAMETOOLONG);
	ck_assert_str_eq(t_err, "the kernel's path is longer than 4095 bytes");
	c.kernel = NULL;
	c.nr_disks = MINIVM_MAX_DISKS + 1;
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/d", &buf, &len, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_str_eq(t_err, "9 disks: at most 8");
	c.nr_disks = 0;
	ck_assert_int_eq(vmm_wire_encode(&c, &j, NULL, &buf, &len, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_str_eq(t_err, "no run directory");
}
END_TEST

/* A small valid message: jail_dir "/r", every string NULL, no disks. Its
 * layout, as vmm_wire.c writes it: header 0..11, jail 12..27, jail_dir
 * (u32 3, "/r\0") 28..34, kernel and rootfs (u32 0 each) 35..42,
 * rootfs_rw 43, the root's rate limit 44..83, the disk count 84..87. */
#define OFF_VERSION 4
#define OFF_LENGTH 8
#define OFF_JAIL_MODE 12
#define OFF_JAIL_DIR_END 34
#define OFF_ROOTFS_RW 43
#define OFF_NR_DISKS 84

static uint8_t *small_message(size_t *len)
{
	struct minivm_config c;
	struct jail_config j;
	uint8_t *buf;

	minivm_config_init(&c);
	jail_config_init(&j);
	ck_assert_int_eq(vmm_wire_encode(&c, &j, "/r", &buf, len, t_err, sizeof(t_err)), 0);
	ck_assert_mem_eq(buf + 28, "\3\0\0\0/r\0", 7);
	return buf;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decodes buf; it must be refused with a message that contains want. */
static void assert_refused(const uint8_t *buf, size_t len, const char *want)
{
	struct vmm_wire_config w;

	t_err[0] = '\0';
	ck_assert_int_eq(vmm_wire_decode(buf, len, &w, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_msg(strstr(t_err, want), "message \"%s\" lacks \"%s\"", t_err, want);
	ck_assert_ptr_null(w.strs);
	ck_assert_ptr_null(w.allow);
}

START_TEST(test_truncated)
{
	size_t len;
	uint8_t *buf = small_message(&len);
	uint8_t *copy = malloc(len);

	/* Every prefix: the header's length no longer matches. */
	for (size_t n = 0; n < len; n++) {
		memcpy(copy, buf, n);
		assert_refused(copy, n, n < VMM_WIRE_HDR_SIZE ? "truncated" : "its header says");
	}
	/* A prefix whose header says its own length: truncated inside. */
	for (size_t n = VMM_WIRE_HDR_SIZE; n < len; n++) {
		memcpy(copy, buf, n);
		put_le32(copy + OFF_LENGTH, (uint32_t)(n - VMM_WIRE_HDR_SIZE));
		assert_refused(copy, n, "truncated at byte");
	}
	free(copy);
	free(buf);
}
END_TEST

START_TEST(test_oversized)
{
	size_t len;
	uint8_t *buf = small_message(&len);
	uint8_t *big = calloc(1, len + 1);
	size_t total;

	/* A length past the limit, whatever follows. */
	put_le32(buf + OFF_LENGTH, VMM_WIRE_MAX_SIZE);
	assert_refused(buf, len, "at most 8388608");
	ck_assert_int_eq(vmm_wire_size(buf, len, &total, t_err, sizeof(t_err)), -EINVAL);
	/* A byte more than the configuration, counted in the header. */
	put_le32(buf + OFF_LENGTH, (uint32_t)(len - VMM_WIRE_HDR_SIZE));
	memcpy(big, buf, len);
	put_le32(big + OFF_LENGTH, (uint32_t)(len + 1 - VMM_WIRE_HDR_SIZE));
	assert_refused(big, len + 1, "1 bytes left over");
	/* A string longer than any. */
	put_le32(buf + 28, VMM_WIRE_MAX_STR + 1);
	assert_refused(buf, len, "the run directory is 4097 bytes: at most 4096");
	free(big);
	free(buf);
}
END_TEST

/* One field of the small message patched: width 1 or 4 bytes at off. */
struct patch {
	size_t off;
	unsigned int width;
	uint32_t val;
	const char *want; /* in the message */
};

static const struct patch t_patches[] = {
	{ OFF_NR_DISKS, 4, MINIVM_MAX_DISKS + 1, "9 disks: at most 8" },
	{ OFF_NR_DISKS, 4, 0xffffffffu, "4294967295 disks: at most 8" },
	{ OFF_ROOTFS_RW, 1, 2, "rootfs_rw is 2, not a bool" },
	{ OFF_JAIL_MODE, 4, 3, "jail mode 3 is none of 0..2" },
	{ OFF_VERSION, 4, VMM_WIRE_VERSION + 1, "version 2, this minivm-vmm reads 1" },
	{ 0, 1, 'X', "bad magic" },
	/* "/rx": no NUL; "/\0\0": a NUL inside. */
	{ OFF_JAIL_DIR_END, 1, 'x', "the run directory is not a terminated string" },
	{ OFF_JAIL_DIR_END - 1, 1, 0, "the run directory is not a terminated string" },
};

START_TEST(test_bad_fields)
{
	const struct patch *t = &t_patches[_i];
	size_t len;
	uint8_t *buf = small_message(&len);

	if (t->width == 4)
		put_le32(buf + t->off, t->val);
	else
		buf[t->off] = (uint8_t)t->val;
	assert_refused(buf, len, t->want);
	free(buf);
}
END_TEST

/* ---- starting minivm-vmm ---- */

static char t_dir[64];

static void make_dir(void)
{
	snprintf(t_dir, sizeof(t_dir), "/tmp/minivm-wire.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
}

static int start(const char *vmm_path, const char *kernel, struct vmm_proc **p)
{
	struct vmm_proc_opts o = { .vmm_path = vmm_path, .stderr_fd = -1 };
	struct minivm_config c;
	struct jail_config j;

	minivm_config_init(&c);
	c.kernel = kernel;
	jail_config_init(&j);
	j.mode = JAIL_OFF;
	return vmm_proc_start(&c, &j, t_dir, &o, p, t_err, sizeof(t_err));
}

START_TEST(test_spawn_missing)
{
	struct vmm_proc *p = (struct vmm_proc *)&p;

	make_dir();
	ck_assert_int_eq(start("/nonexistent/minivm-vmm", "/k", &p), -ENOENT);
	ck_assert_str_eq(t_err,
			 "cannot start the VMM process /nonexistent/minivm-vmm: No such file or directory");
	ck_assert_ptr_null(p);
	/* $MINIVM_VMM when no path is given. */
	ck_assert_int_eq(setenv(VMM_PROC_PATH_ENV, "/nonexistent/from-env", 1), 0);
	ck_assert_int_eq(start(NULL, "/k", &p), -ENOENT);
	ck_assert_ptr_nonnull(strstr(t_err, "/nonexistent/from-env: No such file"));
	ck_assert_int_eq(unsetenv(VMM_PROC_PATH_ENV), 0);
	ck_assert_int_eq(start("/dev/null", "/k", &p), -EACCES);
	ck_assert_ptr_nonnull(strstr(t_err, "/dev/null: Permission denied"));
	ck_assert_int_eq(rmdir(t_dir), 0);
}
END_TEST

/* The whole path without KVM: the executable gets the configuration, its
 * VMM fails in minivm_create() and the front gets that message. */
START_TEST(test_spawn_failing_vm)
{
	struct vmm_proc *p = NULL;
	char kernel[128];
	int fd;

	make_dir();
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", t_dir);
	fd = open(kernel, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "not a kernel", 12), 12);
	close(fd);
	ck_assert_int_eq(start(MINIVM_TEST_BUILD "/minivm-vmm", kernel, &p), -EIO);
	ck_assert_msg(strstr(t_err, "not a Linux kernel") || strstr(t_err, "/dev/kvm"), "%s", t_err);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(unlink(kernel), 0);
	ck_assert_int_eq(rmdir(t_dir), 0);
}
END_TEST

/* Run by hand, it says what it is and fails. */
START_TEST(test_not_a_command)
{
	FILE *f = popen(MINIVM_TEST_BUILD "/minivm-vmm 2>&1", "r");
	char line[256] = "";

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_ptr_nonnull(strstr(line, "minivm-vmm: this is the VMM process of libminivm"));
	ck_assert_int_eq(pclose(f), MINIVM_EXIT_ERROR << 8);
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("vmm_wire");
	TCase *tc = tcase_create("codec");
	TCase *sp = tcase_create("spawn");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_round_trip_defaults);
	tcase_add_test(tc, test_max_rules);
	tcase_add_test(tc, test_encode_refuses);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_oversized);
	tcase_add_loop_test(tc, test_bad_fields, 0, sizeof(t_patches) / sizeof(t_patches[0]));
	suite_add_tcase(s, tc);
	tcase_set_timeout(sp, 60);
	tcase_add_test(sp, test_spawn_missing);
	tcase_add_test(sp, test_spawn_failing_vm);
	tcase_add_test(sp, test_not_a_command);
	suite_add_tcase(s, sp);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
