/* Unit tests for the guest's post-restore fix-up tool (rootfs/agent/fixup.c): argument parsing, and the RNG reseed where the host allows it. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rootfs/agent/fixup.h"

#define SEED16 "00112233445566778899aabbccddeeff"

static int parse(struct fixup_args *a, char *err, const char *a1, const char *a2, const char *a3,
		 const char *a4)
{
	char *argv[6] = { "fixup", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL };
	int argc = 1;

	while (argc < 5 && argv[argc])
		argc++;
	return fixup_parse(argc, argv, a, err, 160);
}

START_TEST(test_parse_ok)
{
	struct fixup_args a;
	char err[160];

	ck_assert_int_eq(parse(&a, err, "--time", "1700000000.123456789", "--seed", SEED16), 0);
	ck_assert(a.has_time);
	ck_assert_int_eq(a.time.tv_sec, 1700000000);
	ck_assert_int_eq(a.time.tv_nsec, 123456789);
	ck_assert_uint_eq(a.seed_len, 16);
	ck_assert_uint_eq(a.seed[0], 0x00);
	ck_assert_uint_eq(a.seed[15], 0xff);

	ck_assert_int_eq(parse(&a, err, "--seed", "AABBCCDDEEFF00112233445566778899", NULL, NULL), 0);
	ck_assert(!a.has_time);
	ck_assert_uint_eq(a.seed[0], 0xaa);
	ck_assert_int_eq(parse(&a, err, "--time", "0.000000000", NULL, NULL), 0);
	ck_assert(a.has_time && a.seed_len == 0);
	ck_assert_int_eq(parse(&a, err, "--time", "9223372036854775807.999999999", NULL, NULL), 0);
}
END_TEST

static const struct {
	const char *a1, *a2, *a3, *a4;
} bad[] = {
	{ NULL, NULL, NULL, NULL },                      /* nothing to do */
	{ "--time", NULL, NULL, NULL },                  /* no value */
	{ "--time", "17", NULL, NULL },                  /* no dot */
	{ "--time", "17.5", NULL, NULL },                /* not nine digits */
	{ "--time", "17.1234567890", NULL, NULL },       /* ten digits */
	{ "--time", ".123456789", NULL, NULL },          /* no seconds */
	{ "--time", "-1.000000000", NULL, NULL },        /* sign */
	{ "--time", "1x.000000000", NULL, NULL },        /* not a digit */
	{ "--time", "9223372036854775808.000000000", NULL, NULL }, /* above INT64_MAX */
	{ "--time", "99999999999999999999.000000000", NULL, NULL }, /* 20 digits */
	{ "--time", "1.000000000", "--time", "2.000000000" }, /* twice */
	{ "--seed", "00112233", NULL, NULL },            /* too short */
	{ "--seed", SEED16 "0", NULL, NULL },            /* odd */
	{ "--seed", "0011223344556677889900aabbccddeg", NULL, NULL }, /* not hex */
	{ "--seed", SEED16, "--seed", SEED16 },          /* twice */
	{ "--bogus", "1", NULL, NULL },
};

START_TEST(test_parse_refused)
{
	struct fixup_args a;
	char err[160];
	unsigned int i = (unsigned int)_i;

	err[0] = 0;
	ck_assert_int_eq(parse(&a, err, bad[i].a1, bad[i].a2, bad[i].a3, bad[i].a4), -EINVAL);
	ck_assert_msg(err[0] != 0 && !strchr(err, '\n'), "case %u: no one-line message", i);
}
END_TEST

START_TEST(test_seed_too_long_refused)
{
	char *hex = malloc(2 * (FIXUP_SEED_MAX + 1) + 1);
	struct fixup_args a;
	char err[160];

	memset(hex, 'a', 2 * (FIXUP_SEED_MAX + 1));
	hex[2 * (FIXUP_SEED_MAX + 1)] = 0;
	ck_assert_int_eq(parse(&a, err, "--seed", hex, NULL, NULL), -EINVAL);
	hex[2 * FIXUP_SEED_MAX] = 0;
	ck_assert_int_eq(parse(&a, err, "--seed", hex, NULL, NULL), 0);
	ck_assert_uint_eq(a.seed_len, FIXUP_SEED_MAX);
	free(hex);
}
END_TEST

/* The ioctls need CAP_SYS_ADMIN (tests run as root here). The clock is
 * the host's: not set by a test. */
START_TEST(test_add_seed)
{
	uint8_t seed[32];
	const char *step = NULL;
	int r;

	memset(seed, 0x5a, sizeof(seed));
	ck_assert_int_eq(fixup_add_seed(seed, 0, &step), -EINVAL);
	ck_assert_int_eq(fixup_add_seed(seed, FIXUP_SEED_MAX + 1, &step), -EINVAL);
	r = fixup_add_seed(seed, sizeof(seed), &step);
	if (geteuid() != 0 || r == -EPERM)
		return; /* no CAP_SYS_ADMIN: nothing more to check */
	ck_assert_msg(r == 0, "%s: %s", step, strerror(-r));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_fixup");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_parse_ok);
	tcase_add_loop_test(tc, test_parse_refused, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_seed_too_long_refused);
	tcase_add_test(tc, test_add_seed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
