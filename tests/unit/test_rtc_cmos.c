/* Unit tests for the CMOS real-time clock (devices/rtc_cmos.c) through its two ports. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "devices/rtc_cmos.h"

static struct rtc_cmos rtc;
static struct timespec fake_now;
static int fake_ret;

static int fake_clock(void *opaque, struct timespec *ts)
{
	(void)opaque;
	*ts = fake_now;
	return fake_ret;
}

static void setup(void)
{
	rtc_cmos_init(&rtc);
	rtc.now = fake_clock;
	fake_ret = 0;
	/* 2026-11-25 17:04:09 UTC, a Wednesday */
	fake_now.tv_sec = 1795626249;
	fake_now.tv_nsec = 0;
}

static void teardown(void)
{
	rtc_cmos_destroy(&rtc);
}

/* What a guest does: outb(reg, 0x70); inb(0x71). */
static uint8_t cmos(uint8_t reg)
{
	uint8_t v = 0;

	rtc_cmos_write(&rtc, 0, &reg, 1);
	rtc_cmos_read(&rtc, 1, &v, 1);
	return v;
}

static void cmos_set(uint8_t reg, uint8_t val)
{
	rtc_cmos_write(&rtc, 0, &reg, 1);
	rtc_cmos_write(&rtc, 1, &val, 1);
}

START_TEST(test_bcd_time_of_the_host)
{
	ck_assert_uint_eq(cmos(RTC_REG_SECONDS), 0x09);
	ck_assert_uint_eq(cmos(RTC_REG_MINUTES), 0x04);
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 0x17);
	ck_assert_uint_eq(cmos(RTC_REG_WEEKDAY), 0x04); /* Sunday = 1 */
	ck_assert_uint_eq(cmos(RTC_REG_DAY), 0x25);
	ck_assert_uint_eq(cmos(RTC_REG_MONTH), 0x11);
	ck_assert_uint_eq(cmos(RTC_REG_YEAR), 0x26);
	ck_assert_uint_eq(cmos(RTC_REG_CENTURY), 0x20);
}
END_TEST

START_TEST(test_status_registers)
{
	/* Never "update in progress": the guest would poll for a second. */
	ck_assert_uint_eq(cmos(RTC_REG_A) & RTC_A_UIP, 0);
	ck_assert_uint_eq(cmos(RTC_REG_B) & (RTC_B_24H | RTC_B_BINARY), RTC_B_24H);
	ck_assert_uint_eq(cmos(RTC_REG_C), 0);
	ck_assert_uint_eq(cmos(RTC_REG_D), RTC_D_VRT);
	/* UIP cannot be written on, D cannot be cleared. */
	cmos_set(RTC_REG_A, 0xff);
	ck_assert_uint_eq(cmos(RTC_REG_A), 0x7f);
	cmos_set(RTC_REG_D, 0);
	ck_assert_uint_eq(cmos(RTC_REG_D), RTC_D_VRT);
}
END_TEST

START_TEST(test_binary_and_12_hour_modes)
{
	cmos_set(RTC_REG_B, RTC_B_BINARY | RTC_B_24H);
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 17);
	ck_assert_uint_eq(cmos(RTC_REG_DAY), 25);
	ck_assert_uint_eq(cmos(RTC_REG_CENTURY), 20);
	cmos_set(RTC_REG_B, RTC_B_BINARY);
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 0x80 | 5); /* 5 PM */
	fake_now.tv_sec -= 17 * 3600; /* midnight: 12 AM */
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 12);
	fake_now.tv_sec += 12 * 3600; /* noon: 12 PM */
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 0x80 | 12);
}
END_TEST

START_TEST(test_guest_cannot_set_the_time)
{
	cmos_set(RTC_REG_YEAR, 0x99);
	cmos_set(RTC_REG_HOURS, 0x01);
	ck_assert_uint_eq(cmos(RTC_REG_YEAR), 0x26);
	ck_assert_uint_eq(cmos(RTC_REG_HOURS), 0x17);
}
END_TEST

START_TEST(test_ram_bytes_and_index)
{
	for (unsigned int r = 0x0e; r < RTC_CMOS_RAM_SIZE; r++) {
		if (r == RTC_REG_CENTURY)
			continue;
		cmos_set((uint8_t)r, (uint8_t)(r ^ 0x5a));
	}
	for (unsigned int r = 0x0e; r < RTC_CMOS_RAM_SIZE; r++) {
		if (r == RTC_REG_CENTURY)
			continue;
		ck_assert_uint_eq(cmos((uint8_t)r), r ^ 0x5a);
	}
	/* Bit 7 of the index is the NMI mask: same register. */
	ck_assert_uint_eq(cmos(0x80 | 0x20), 0x20 ^ 0x5a);
	/* Reading the index port gives the index back. */
	{
		uint8_t v = 0;

		cmos(0x33);
		rtc_cmos_read(&rtc, 0, &v, 1);
		ck_assert_uint_eq(v, 0x33);
	}
}
END_TEST

START_TEST(test_wide_accesses_read_all_ones)
{
	uint32_t v = 0;
	uint16_t w = 0x1234;

	rtc_cmos_read(&rtc, 0, &v, 4);
	ck_assert_uint_eq(v, 0xffffffffu);
	rtc_cmos_write(&rtc, 0, &w, 2); /* ignored */
	rtc_cmos_read(&rtc, 0, &w, 1);
	ck_assert_uint_eq(w & 0xff, 0);
	rtc_cmos_read(&rtc, 7, &v, 1); /* outside the two ports */
	ck_assert_uint_eq(v & 0xff, 0xff);
}
END_TEST

START_TEST(test_failing_clock_reads_epoch)
{
	fake_ret = -1;
	ck_assert_uint_eq(cmos(RTC_REG_YEAR), 0x70);
	ck_assert_uint_eq(cmos(RTC_REG_CENTURY), 0x19);
	fake_ret = 0;
	fake_now.tv_sec = -1; /* before the epoch: still a valid date */
	ck_assert_uint_eq(cmos(RTC_REG_YEAR), 0x69);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rtc_cmos");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_bcd_time_of_the_host);
	tcase_add_test(tc, test_status_registers);
	tcase_add_test(tc, test_binary_and_12_hour_modes);
	tcase_add_test(tc, test_guest_cannot_set_the_time);
	tcase_add_test(tc, test_ram_bytes_and_index);
	tcase_add_test(tc, test_wide_accesses_read_all_ones);
	tcase_add_test(tc, test_failing_clock_reads_epoch);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
