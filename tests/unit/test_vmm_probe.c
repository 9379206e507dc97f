/* Unit tests for vmm/probe.c: the pure emulating-host decision and the choice of CPUID bit. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

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

static Suite *vmm_probe_suite(void)
{
	Suite *s = suite_create("vmm_probe");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, measured_host_is_emulated);
	tcase_add_test(tc, decide);
	tcase_add_test(tc, pick_bit);
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
