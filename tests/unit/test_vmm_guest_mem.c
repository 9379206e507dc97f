/* Unit tests for vmm/guest_mem.c: the layout around the MMIO hole and the one checked door gm_ptr(). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/guest_mem.h"

/* ---- layout ---- */

START_TEST(layout_below_hole)
{
	struct guest_mem gm;
	uint8_t *host = (uint8_t *)(uintptr_t)0x7f0000000000ULL;

	memset(&gm, 0x5a, sizeof(gm));
	gm_layout(&gm, host, 256ULL << 20);
	ck_assert_uint_eq(gm.nr, 1);
	ck_assert_uint_eq(gm.r[0].gpa, 0);
	ck_assert_uint_eq(gm.r[0].size, 256ULL << 20);
	ck_assert_ptr_eq(gm.r[0].host, host);
	ck_assert_uint_eq(gm_size(&gm), 256ULL << 20);

	/* Exactly up to the hole: still one region. */
	gm_layout(&gm, host, GM_MMIO_HOLE_START);
	ck_assert_uint_eq(gm.nr, 1);
	ck_assert_uint_eq(gm.r[0].size, GM_MMIO_HOLE_START);
	ck_assert_uint_eq(gm_size(&gm), GM_MMIO_HOLE_START);
}
END_TEST

START_TEST(layout_above_hole)
{
	struct guest_mem gm;
	uint8_t *host = (uint8_t *)(uintptr_t)0x7f0000000000ULL;
	uint64_t ram = 4ULL << 30;

	gm_layout(&gm, host, ram);
	ck_assert_uint_eq(gm.nr, 2);
	ck_assert_uint_eq(gm.r[0].gpa, 0);
	ck_assert_uint_eq(gm.r[0].size, GM_MMIO_HOLE_START);
	ck_assert_ptr_eq(gm.r[0].host, host);
	ck_assert_uint_eq(gm.r[1].gpa, GM_HIGH_RAM_START);
	ck_assert_uint_eq(gm.r[1].size, ram - GM_MMIO_HOLE_START);
	ck_assert_ptr_eq(gm.r[1].host, host + GM_MMIO_HOLE_START);
	ck_assert_uint_eq(gm_size(&gm), ram);

	/* One byte over the hole start. */
	gm_layout(&gm, host, GM_MMIO_HOLE_START + 1);
	ck_assert_uint_eq(gm.nr, 2);
	ck_assert_uint_eq(gm.r[1].size, 1);
	ck_assert_uint_eq(gm_size(&gm), GM_MMIO_HOLE_START + 1);
}
END_TEST

/* ---- gm_ptr on a small real buffer below the hole ---- */

#define T_SMALL (64 * 1024)

START_TEST(ptr_small_ram_bounds)
{
	uint8_t *host = malloc(T_SMALL);
	struct guest_mem gm;

	ck_assert_ptr_nonnull(host);
	gm_layout(&gm, host, T_SMALL);
	ck_assert_ptr_eq(gm_ptr(&gm, 0, 1), host);
	ck_assert_ptr_eq(gm_ptr(&gm, 0, T_SMALL), host);
	ck_assert_ptr_null(gm_ptr(&gm, 0, T_SMALL + 1));
	/* ending exactly at the end of RAM */
	ck_assert_ptr_eq(gm_ptr(&gm, T_SMALL - 8, 8), host + T_SMALL - 8);
	ck_assert_ptr_eq(gm_ptr(&gm, T_SMALL - 1, 1), host + T_SMALL - 1);
	/* one byte past */
	ck_assert_ptr_null(gm_ptr(&gm, T_SMALL - 8, 9));
	ck_assert_ptr_null(gm_ptr(&gm, T_SMALL, 1));
	/* len 0 at the end is valid, past it is not */
	ck_assert_ptr_eq(gm_ptr(&gm, T_SMALL, 0), host + T_SMALL);
	ck_assert_ptr_null(gm_ptr(&gm, T_SMALL + 1, 0));
	ck_assert_ptr_eq(gm_ptr(&gm, 0, 0), host);
	/* wrapping 2^64 */
	ck_assert_ptr_null(gm_ptr(&gm, 8, UINT64_MAX));
	ck_assert_ptr_null(gm_ptr(&gm, UINT64_MAX, 2));
	ck_assert_ptr_null(gm_ptr(&gm, UINT64_MAX - 7, 16));
	ck_assert_ptr_null(gm_ptr(&gm, 1, UINT64_MAX));
	ck_assert_ptr_null(gm_ptr(&gm, UINT64_MAX, 0));
	free(host);
}
END_TEST

START_TEST(read_write_bounds)
{
	uint8_t *host = malloc(T_SMALL);
	uint8_t buf[16], pattern[16];
	struct guest_mem gm;

	ck_assert_ptr_nonnull(host);
	memset(host, 0, T_SMALL);
	gm_layout(&gm, host, T_SMALL);
	for (unsigned int i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(0xa0 + i);

	/* the last 16 bytes: fine both ways */
	ck_assert_int_eq(gm_write(&gm, T_SMALL - 16, pattern, 16), 0);
	ck_assert_mem_eq(host + T_SMALL - 16, pattern, 16);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(gm_read(&gm, T_SMALL - 16, buf, 16), 0);
	ck_assert_mem_eq(buf, pattern, 16);

	/* one byte too far: -EFAULT, and nothing copied either way */
	memset(buf, 0x33, sizeof(buf));
	ck_assert_int_eq(gm_read(&gm, T_SMALL - 15, buf, 16), -EFAULT);
	for (unsigned int i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0x33);
	memset(host + T_SMALL - 16, 0, 16);
	ck_assert_int_eq(gm_write(&gm, T_SMALL - 15, pattern, 16), -EFAULT);
	for (unsigned int i = 0; i < 16; i++)
		ck_assert_uint_eq(host[T_SMALL - 16 + i], 0);
	ck_assert_int_eq(gm_read(&gm, UINT64_MAX - 3, buf, 8), -EFAULT);
	ck_assert_int_eq(gm_write(&gm, UINT64_MAX - 3, pattern, 8), -EFAULT);
	ck_assert_int_eq(gm_read(&gm, T_SMALL + 4096, buf, 1), -EFAULT);
	/* len 0 at the end: nothing to copy, valid */
	ck_assert_int_eq(gm_read(&gm, T_SMALL, buf, 0), 0);
	ck_assert_int_eq(gm_write(&gm, T_SMALL, pattern, 0), 0);
	free(host);
}
END_TEST

/* ---- gm_ptr with RAM above the hole ---- */

#define T_HIGH (64ULL << 20)
#define T_RAM (GM_MMIO_HOLE_START + T_HIGH)
#define T_HIGH_END (GM_HIGH_RAM_START + T_HIGH)

static uint8_t *t_host;
static struct guest_mem t_gm;

/* Reserve the whole range without committing it; open only the pages the
 * tests copy through (the end of each region, the start of the high one). */
static void big_setup(void)
{
	long pg = sysconf(_SC_PAGESIZE);

	t_host = mmap(NULL, T_RAM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(t_host, MAP_FAILED);
	ck_assert_int_eq(mprotect(t_host + GM_MMIO_HOLE_START - pg, 2 * (size_t)pg,
				  PROT_READ | PROT_WRITE),
			 0);
	ck_assert_int_eq(mprotect(t_host + T_RAM - pg, (size_t)pg, PROT_READ | PROT_WRITE), 0);
	gm_layout(&t_gm, t_host, T_RAM);
}

static void big_teardown(void)
{
	if (t_host && t_host != MAP_FAILED)
		munmap(t_host, T_RAM);
	t_host = NULL;
}

START_TEST(ptr_high_ram_end)
{
	ck_assert_uint_eq(t_gm.nr, 2);
	/* the access ending exactly at the end of RAM */
	ck_assert_ptr_eq(gm_ptr(&t_gm, T_HIGH_END - 8, 8), t_host + T_RAM - 8);
	ck_assert_ptr_eq(gm_ptr(&t_gm, GM_HIGH_RAM_START, T_HIGH), t_host + GM_MMIO_HOLE_START);
	/* one byte past */
	ck_assert_ptr_null(gm_ptr(&t_gm, T_HIGH_END - 8, 9));
	ck_assert_ptr_null(gm_ptr(&t_gm, T_HIGH_END, 1));
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_HIGH_RAM_START, T_HIGH + 1));
	/* len 0 */
	ck_assert_ptr_eq(gm_ptr(&t_gm, T_HIGH_END, 0), t_host + T_RAM);
	ck_assert_ptr_null(gm_ptr(&t_gm, T_HIGH_END + 1, 0));
	/* wrapping */
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_HIGH_RAM_START, UINT64_MAX));
	ck_assert_ptr_null(gm_ptr(&t_gm, UINT64_MAX - 1, 4));
	ck_assert_ptr_null(gm_ptr(&t_gm, T_HIGH_END - 8, UINT64_MAX - T_HIGH_END + 9));
}
END_TEST

START_TEST(ptr_hole)
{
	/* up to the hole, exactly */
	ck_assert_ptr_eq(gm_ptr(&t_gm, GM_MMIO_HOLE_START - 4, 4),
			 t_host + GM_MMIO_HOLE_START - 4);
	ck_assert_ptr_eq(gm_ptr(&t_gm, GM_MMIO_HOLE_START, 0), t_host + GM_MMIO_HOLE_START);
	/* into the hole */
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_MMIO_HOLE_START - 4, 5));
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_MMIO_HOLE_START, 1));
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_MMIO_HOLE_START + 1, 0));
	ck_assert_ptr_null(gm_ptr(&t_gm, 0xfee00000ULL, 4));
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_HIGH_RAM_START - 1, 1));
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_HIGH_RAM_START - 1, 2));
	/* spanning the hole: from low RAM to high RAM in one range */
	ck_assert_ptr_null(gm_ptr(&t_gm, GM_MMIO_HOLE_START - 4, GM_HIGH_RAM_START -
						    GM_MMIO_HOLE_START + 8));
	ck_assert_ptr_null(gm_ptr(&t_gm, 0, T_HIGH_END));
	ck_assert_ptr_null(gm_ptr(&t_gm, 0, T_RAM));
	/* high RAM's first byte follows low RAM's last in host memory */
	ck_assert_ptr_eq(gm_ptr(&t_gm, GM_HIGH_RAM_START, 4), t_host + GM_MMIO_HOLE_START);
}
END_TEST

START_TEST(read_write_high)
{
	uint8_t buf[8];

	ck_assert_int_eq(gm_write(&t_gm, T_HIGH_END - 8, "abcdefgh", 8), 0);
	ck_assert_mem_eq(t_host + T_RAM - 8, "abcdefgh", 8);
	ck_assert_int_eq(gm_read(&t_gm, T_HIGH_END - 8, buf, 8), 0);
	ck_assert_mem_eq(buf, "abcdefgh", 8);
	ck_assert_int_eq(gm_read(&t_gm, T_HIGH_END - 7, buf, 8), -EFAULT);
	ck_assert_int_eq(gm_write(&t_gm, T_HIGH_END - 7, "abcdefgh", 8), -EFAULT);
	ck_assert_int_eq(gm_write(&t_gm, GM_MMIO_HOLE_START - 4, "abcdefgh", 8), -EFAULT);
	ck_assert_int_eq(gm_read(&t_gm, GM_MMIO_HOLE_START - 4, buf, 8), -EFAULT);
	ck_assert_int_eq(gm_write(&t_gm, GM_MMIO_HOLE_START - 4, "wxyz", 4), 0);
	ck_assert_int_eq(gm_read(&t_gm, GM_HIGH_RAM_START, buf, 4), 0);
	ck_assert_int_eq(gm_write(&t_gm, GM_HIGH_RAM_START, "1234", 4), 0);
	ck_assert_mem_eq(t_host + GM_MMIO_HOLE_START - 4, "wxyz1234", 8);
}
END_TEST

static Suite *vmm_guest_mem_suite(void)
{
	Suite *s = suite_create("vmm_guest_mem");
	TCase *small = tcase_create("small");
	TCase *big = tcase_create("big");

	tcase_add_test(small, layout_below_hole);
	tcase_add_test(small, layout_above_hole);
	tcase_add_test(small, ptr_small_ram_bounds);
	tcase_add_test(small, read_write_bounds);
	tcase_add_checked_fixture(big, big_setup, big_teardown);
	tcase_add_test(big, ptr_high_ram_end);
	tcase_add_test(big, ptr_hole);
	tcase_add_test(big, read_write_high);
	suite_add_tcase(s, small);
	suite_add_tcase(s, big);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_guest_mem_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
