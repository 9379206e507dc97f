/* Unit tests for vmm/vmcmdline.c: what goes on the guest kernel command line, in which order. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"
#include "vmm/minivm.h"
#include "vmm/vmcmdline.h"

#define T_CAP 2048 /* the x86 kernel's COMMAND_LINE_SIZE */

static char t_buf[8192];
static char t_err[512];
static struct minivm_config t_cfg;
static const char t_devs[2][64] = {
	"virtio_mmio.device=512@0xd0000000:5",
	"virtio_mmio.device=512@0xd0001000:6",
};

static void setup(void)
{
	minivm_config_init(&t_cfg);
	t_cfg.kernel = "vmlinux";
	memset(t_buf, 'X', sizeof(t_buf));
	memset(t_err, 0, sizeof(t_err));
}

static int build(size_t cap, bool emulated, unsigned int nr_devs)
{
	ck_assert_uint_le(cap, sizeof(t_buf));
	return vm_cmdline_build(t_buf, cap, &t_cfg, emulated, t_devs, nr_devs, t_err,
				sizeof(t_err));
}

/* Position of a whole blank-separated word (or word sequence) in t_buf, or -1. */
static long pos(const char *words)
{
	size_t n = strlen(words);

	for (const char *p = t_buf; (p = strstr(p, words)) != NULL; p++) {
		if ((p == t_buf || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return p - t_buf;
	}
	return -1;
}

/* Single blanks between words, none at either end. */
static void assert_well_formed(void)
{
	size_t len = strlen(t_buf);

	ck_assert_uint_gt(len, 0);
	ck_assert_int_ne(t_buf[0], ' ');
	ck_assert_int_ne(t_buf[len - 1], ' ');
	ck_assert_ptr_null(strstr(t_buf, "  "));
}

START_TEST(base_only)
{
	ck_assert_int_eq(build(T_CAP, false, 0), 0);
	assert_well_formed();
	ck_assert_int_eq(pos("console=ttyS0"), 0);
	ck_assert_int_ge(pos("reboot=k"), 0);
	ck_assert_int_ge(pos("panic=-1"), 0);
	ck_assert_int_ge(pos("io_delay=none"), 0);
	ck_assert_int_ge(pos("8250.nr_uarts=1"), 0);
	ck_assert_int_ge(pos("quiet"), 0);
	ck_assert_int_lt(pos("noxsave"), 0);
	ck_assert_int_lt(pos("nopv"), 0);
	ck_assert_int_lt(pos("noreplace-smp"), 0);
	ck_assert_int_lt(pos("percpu_alloc=page"), 0);
	ck_assert_ptr_null(strstr(t_buf, "clearcpuid"));
	ck_assert_ptr_null(strstr(t_buf, "root="));
	ck_assert_ptr_null(strstr(t_buf, MINIVM_RUN_PARAM));
	ck_assert_ptr_null(strstr(t_buf, "virtio_mmio"));
}
END_TEST

START_TEST(emulated_switches_only_when_emulated)
{
	ck_assert_int_eq(build(T_CAP, true, 0), 0);
	assert_well_formed();
	ck_assert_int_gt(pos(VM_CMDLINE_EMULATED), pos("8250.nr_uarts=1"));
	ck_assert_int_ge(pos("noxsave"), 0);
	ck_assert_int_ge(pos("nopv"), 0);
	ck_assert_int_gt(pos("noreplace-smp no_timer_check percpu_alloc=page"),
			 pos(VM_CMDLINE_EMULATED));
	ck_assert_int_eq(build(T_CAP, false, 2), 0);
	ck_assert_ptr_null(strstr(t_buf, "noxsave"));
	ck_assert_ptr_null(strstr(t_buf, "clearcpuid"));
	ck_assert_ptr_null(strstr(t_buf, "noreplace-smp"));
	ck_assert_ptr_null(strstr(t_buf, "no_timer_check"));
	ck_assert_ptr_null(strstr(t_buf, "percpu_alloc"));
}
END_TEST

START_TEST(order_of_everything)
{
	char decoded[AGENT_CMD_DECODED_SIZE];
	const char *val;
	size_t val_len;
	long p_emul, p_dev0, p_dev1, p_root, p_run, p_user;

	t_cfg.rootfs = "rootfs.img";
	t_cfg.run = "sh -c 'echo \"100% done\" && exit 3'";
	t_cfg.cmdline = "quiet loglevel=0";
	ck_assert_int_eq(build(T_CAP, true, 2), 0);
	assert_well_formed();
	p_emul = pos(VM_CMDLINE_EMULATED);
	p_dev0 = pos(t_devs[0]);
	p_dev1 = pos(t_devs[1]);
	p_root = pos("root=/dev/vda");
	p_run = strstr(t_buf, " " MINIVM_RUN_PARAM) ? strstr(t_buf, " " MINIVM_RUN_PARAM) - t_buf + 1
						      : -1;
	p_user = pos("quiet loglevel=0");
	ck_assert_int_eq(pos("console=ttyS0"), 0);
	ck_assert_int_gt(p_emul, 0);
	ck_assert_int_gt(p_dev0, p_emul);
	ck_assert_int_gt(p_dev1, p_dev0);
	ck_assert_int_gt(p_root, p_dev1);
	ck_assert_int_ge(pos("rootfstype=ext4"), 0);
	ck_assert_int_gt(p_run, p_root);
	ck_assert_int_gt(p_user, p_run);
	/* The user's words come last, so they can override. */
	ck_assert_uint_eq((size_t)p_user + strlen("quiet loglevel=0"), strlen(t_buf));

	/* The run token is one word the guest decodes back to the command. */
	ck_assert_int_eq(agent_cmdline_find(t_buf, strlen(t_buf), MINIVM_RUN_PARAM, &val, &val_len),
			 1);
	ck_assert_ptr_eq(val, t_buf + p_run + strlen(MINIVM_RUN_PARAM));
	ck_assert_ptr_null(memchr(val, ' ', val_len));
	ck_assert_ptr_null(memchr(val, '"', val_len));
	ck_assert_int_eq(agent_pct_decode(val, val_len, decoded, sizeof(decoded)),
			 (ssize_t)strlen(t_cfg.run));
	ck_assert_str_eq(decoded, t_cfg.run);
}
END_TEST

START_TEST(root_only_with_rootfs)
{
	ck_assert_int_eq(build(T_CAP, false, 2), 0);
	ck_assert_ptr_null(strstr(t_buf, "root="));
	t_cfg.rootfs = "r.img";
	ck_assert_int_eq(build(T_CAP, false, 2), 0);
	ck_assert_int_ge(pos("root=/dev/vda"), 0);
}
END_TEST

START_TEST(run_every_byte_round_trips)
{
	char cmd[256], decoded[AGENT_CMD_DECODED_SIZE];
	const char *val;
	size_t val_len;

	for (int i = 1; i < 256; i++)
		cmd[i - 1] = (char)i;
	cmd[255] = '\0';
	t_cfg.run = cmd;
	t_cfg.cmdline = "minivm.run=not-this-one-wins";
	ck_assert_int_eq(build(T_CAP, false, 0), 0);
	assert_well_formed();
	/* Find the token minivm wrote (the first), not the user's. */
	val = strstr(t_buf, MINIVM_RUN_PARAM);
	ck_assert_ptr_nonnull(val);
	val += strlen(MINIVM_RUN_PARAM);
	val_len = strcspn(val, " ");
	for (size_t i = 0; i < val_len; i++)
		ck_assert_msg(val[i] > ' ' && val[i] < 0x7f, "raw byte 0x%02x in the token",
			      (unsigned char)val[i]);
	ck_assert_int_eq(agent_pct_decode(val, val_len, decoded, sizeof(decoded)), 255);
	ck_assert_mem_eq(decoded, cmd, 256);
}
END_TEST

START_TEST(exact_fit_and_one_short)
{
	size_t len;
	char full[T_CAP];

	t_cfg.rootfs = "r.img";
	t_cfg.run = "echo hello";
	t_cfg.cmdline = "quiet";
	ck_assert_int_eq(build(T_CAP, true, 2), 0);
	len = strlen(t_buf);
	memcpy(full, t_buf, len + 1);
	/* len bytes + NUL fit in len + 1 */
	ck_assert_int_eq(build(len + 1, true, 2), 0);
	ck_assert_str_eq(t_buf, full);
	/* one short: -E2BIG with a message, never writing past cap */
	memset(t_buf, 'X', sizeof(t_buf));
	ck_assert_int_eq(build(len, true, 2), -E2BIG);
	ck_assert_msg(t_err[0] != '\0', "no message for -E2BIG");
	ck_assert_int_eq(t_buf[len], 'X');
	ck_assert_ptr_nonnull(memchr(t_buf, '\0', len));
}
END_TEST

START_TEST(too_long_everywhere)
{
	static char user[3000];

	/* small caps at each stage */
	for (size_t cap = 1; cap < 40; cap++) {
		memset(t_err, 0, sizeof(t_err));
		ck_assert_int_eq(build(cap, false, 0), -E2BIG);
		ck_assert_msg(strstr(t_err, "too long") != NULL, "cap %zu: '%s'", cap, t_err);
		ck_assert_int_eq(t_buf[cap], 'X');
	}
	/* a user cmdline that does not fit */
	memset(user, 'u', sizeof(user) - 1);
	t_cfg.cmdline = user;
	ck_assert_int_eq(build(T_CAP, false, 0), -E2BIG);
	ck_assert_ptr_nonnull(strstr(t_err, "too long"));
	ck_assert_ptr_nonnull(strstr(t_err, "2047"));
	ck_assert_int_eq(t_buf[T_CAP], 'X');
}
END_TEST

START_TEST(zero_cap)
{
	memset(t_err, 0, sizeof(t_err));
	ck_assert_int_eq(build(0, false, 0), -E2BIG);
	ck_assert_int_eq(t_buf[0], 'X');
	/* The header promises a message with every -E2BIG. */
	ck_assert_msg(t_err[0] != '\0', "-E2BIG for cap 0 without a message");
}
END_TEST

START_TEST(run_too_long_for_cmdline)
{
	static char cmd[1001];

	/* 1000 blanks: a valid command (< AGENT_CMD_MAX_LEN) whose encoding
	 * (3000 bytes) cannot fit the kernel's 2048. */
	memset(cmd, ' ', sizeof(cmd) - 1);
	t_cfg.run = cmd;
	ck_assert_int_eq(build(T_CAP, false, 0), -E2BIG);
	ck_assert_ptr_nonnull(strstr(t_err, "--run"));
	ck_assert_int_eq(t_buf[T_CAP], 'X');
}
END_TEST

START_TEST(run_huge_rejected)
{
	size_t n = 4 * AGENT_CMD_MAX_LEN;
	char *cmd = malloc(n + 1);

	ck_assert_ptr_nonnull(cmd);
	memset(cmd, 'a', n);
	cmd[n] = '\0';
	t_cfg.run = cmd;
	ck_assert_int_lt(build(sizeof(t_buf), false, 0), 0);
	ck_assert_ptr_nonnull(strstr(t_err, "--run"));
	ck_assert_int_eq(build(T_CAP, false, 0), -EINVAL);
	/* just over the agent's limit, in a buffer that would hold it */
	cmd[AGENT_CMD_MAX_LEN + 1] = '\0';
	ck_assert_int_eq(build(sizeof(t_buf), false, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(t_err, "--run"));
	free(cmd);
}
END_TEST

static Suite *vmm_cmdline_suite(void)
{
	Suite *s = suite_create("vmm_cmdline");
	TCase *tc = tcase_create("build");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, base_only);
	tcase_add_test(tc, emulated_switches_only_when_emulated);
	tcase_add_test(tc, order_of_everything);
	tcase_add_test(tc, root_only_with_rootfs);
	tcase_add_test(tc, run_every_byte_round_trips);
	tcase_add_test(tc, exact_fit_and_one_short);
	tcase_add_test(tc, too_long_everywhere);
	tcase_add_test(tc, zero_cap);
	tcase_add_test(tc, run_too_long_for_cmdline);
	tcase_add_test(tc, run_huge_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_cmdline_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
