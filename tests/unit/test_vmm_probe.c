/* Unit tests for vmm/probe.c: the pure emulating-host decision and the choice of CPUID bit. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/probe.h"

/* Measured on this project's host (kvm_pvm): host leaf-1 ECX, and what
 * the probe guest saw after bit 0 (SSE3) was cleared from its table. */
#define T_HOST_ECX 0xfffa3203u
#define T_GUEST_ECX 0xf7f81203u

START_TEST(measured_host_is_emulated)
{
	unsigned int bit = probe_pick_bit(T_HOST_ECX);

	ck_assert_uint_eq(bit, 0);
	ck_assert(probe_decide(T_HOST_ECX, bit, T_GUEST_ECX));
}
END_TEST

START_TEST(decide)
{
	/* The mask held: standard KVM. */
	ck_assert(!probe_decide(T_HOST_ECX, 0, T_GUEST_ECX & ~1u));
	ck_assert(!probe_decide(T_HOST_ECX, 0, 0));
	/* The guest saw the bit the table lacked: emulated. */
	ck_assert(probe_decide(1u << 9, 9, 1u << 9));
	ck_assert(probe_decide(1u << 30, 30, 0xffffffffu));
	/* The host lacks the bit: nothing was tested, not emulated. */
	ck_assert(!probe_decide(T_HOST_ECX & ~1u, 0, 0xffffffffu));
	ck_assert(!probe_decide(0, 5, 0xffffffffu));
	/* Other bits do not matter. */
	ck_assert(!probe_decide(0xffffffffu, 4, 0xffffffefu));
	ck_assert(probe_decide(0xffffffffu, 4, 0x10u));
	/* No usable bit (32 and beyond): not emulated, and no shift past 31. */
	ck_assert(!probe_decide(0xffffffffu, 32, 0xffffffffu));
	ck_assert(!probe_decide(0xffffffffu, 33, 0xffffffffu));
	ck_assert(!probe_decide(0xffffffffu, 64, 0xffffffffu));
	ck_assert(!probe_decide(0xffffffffu, 0xffffffffu, 0xffffffffu));
}
END_TEST

START_TEST(pick_bit)
{
	ck_assert_uint_eq(probe_pick_bit(0), 32);
	ck_assert_uint_eq(probe_pick_bit(1), 0);
	ck_assert_uint_eq(probe_pick_bit(0x6), 1);
	ck_assert_uint_eq(probe_pick_bit(1u << 26), 26);
	/* 27 (OSXSAVE) and 31 (hypervisor) are never picked. */
	ck_assert_uint_eq(probe_pick_bit(1u << 27), 32);
	ck_assert_uint_eq(probe_pick_bit(1u << 31), 32);
	ck_assert_uint_eq(probe_pick_bit((1u << 27) | (1u << 31)), 32);
	ck_assert_uint_eq(probe_pick_bit((1u << 27) | (1u << 28)), 28);
	ck_assert_uint_eq(probe_pick_bit((1u << 31) | (1u << 30)), 30);
	ck_assert_uint_eq(probe_pick_bit(0x88000000u), 32);
	ck_assert_uint_eq(probe_pick_bit(0x88000100u), 8);
	/* The picked bit is one the host has, so decide can use it. */
	for (unsigned int b = 0; b < 32; b++) {
		uint32_t host = 0xffffffffu << b;
		unsigned int pick = probe_pick_bit(host);

		if (b == 27 || b == 31)
			ck_assert_uint_eq(pick, b == 27 ? 28 : 32);
		else
			ck_assert_uint_eq(pick, b);
		if (pick < 32) {
			ck_assert(probe_decide(host, pick, host));
			ck_assert(!probe_decide(host, pick, host & ~(1u << pick)));
		}
	}
}
END_TEST

START_TEST(cache_record)
{
	const char *key = "boot=834557fc-461f-477e-ad25-5db6c1fd7998 kvm:8507 kvm_pvm:9102";
	char rec[256], bad[256];
	bool e = false;
	int n;

	n = probe_cache_format(key, true, rec, sizeof(rec));
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(rec, "minivm-probe 1 emulated=1 " "boot=834557fc-461f-477e-ad25-5db6c1fd7998 kvm:8507 kvm_pvm:9102\n");
	ck_assert_int_eq(probe_cache_parse(rec, (size_t)n, key, &e), 0);
	ck_assert(e);
	n = probe_cache_format(key, false, rec, sizeof(rec));
	ck_assert_int_eq(probe_cache_parse(rec, (size_t)n, key, &e), 0);
	ck_assert(!e);
	/* Another boot, another module load, a prefix of the key: a miss. */
	ck_assert_int_eq(probe_cache_parse(rec, (size_t)n, "boot=x kvm:8507 kvm_pvm:9102", &e), -ENOENT);
	ck_assert_int_eq(probe_cache_parse(rec, (size_t)n,
					   "boot=834557fc-461f-477e-ad25-5db6c1fd7998 kvm:8507", &e),
			 -ENOENT);
	/* Truncated, extended, another version, another value: a miss. */
	ck_assert_int_eq(probe_cache_parse(rec, (size_t)n - 1, key, &e), -ENOENT);
	memcpy(bad, rec, (size_t)n);
	bad[n] = 'x';
	ck_assert_int_eq(probe_cache_parse(bad, (size_t)n + 1, key, &e), -ENOENT);
	bad[13] = '2';
	ck_assert_int_eq(probe_cache_parse(bad, (size_t)n, key, &e), -ENOENT);
	memcpy(bad, rec, (size_t)n);
	bad[25] = '7';
	ck_assert_int_eq(probe_cache_parse(bad, (size_t)n, key, &e), -ENOENT);
	ck_assert_int_eq(probe_cache_parse("", 0, key, &e), -ENOENT);
	/* No room, or a key that would forge a second line. */
	ck_assert_int_eq(probe_cache_format(key, true, rec, 20), -ENOSPC);
	ck_assert_int_eq(probe_cache_format("a\nb", true, rec, sizeof(rec)), -ENOSPC);
}
END_TEST

START_TEST(cache_key)
{
	char key[PROBE_CACHE_KEY_MAX], again[PROBE_CACHE_KEY_MAX];

	/* This host's: its boot id first, stable from one call to the next. */
	ck_assert_int_eq(probe_cache_key(key, sizeof(key)), 0);
	ck_assert_int_eq(strncmp(key, "boot=", 5), 0);
	ck_assert_ptr_null(strchr(key, '\n'));
	ck_assert_int_eq(probe_cache_key(again, sizeof(again)), 0);
	ck_assert_str_eq(key, again);
	ck_assert_int_eq(probe_cache_key(key, 8), -ENOSPC);
}
END_TEST

static Suite *vmm_probe_suite(void)
{
	Suite *s = suite_create("vmm_probe");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, measured_host_is_emulated);
	tcase_add_test(tc, decide);
	tcase_add_test(tc, pick_bit);
	tcase_add_test(tc, cache_record);
	tcase_add_test(tc, cache_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_probe_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
