/* Unit tests for vmm/rootfs_check.c: real mkfs.ext4 images pass, damaged superblocks fail with a reason. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/rootfs_check.h"

#define T_SB 1024 /* the superblock's offset in the image */

static char t_why[256];

/* Makes an ext4 image with mkfs.ext4 (block size `bs`) and returns its first
 * ROOTFS_PROBE_BYTES in a heap buffer of exactly that size. */
static uint8_t *make_image(unsigned int bs)
{
	char path[] = "/tmp/minivm-test-rootfs-XXXXXX";
	char cmd[512];
	uint8_t *buf;
	int fd, st;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	snprintf(cmd, sizeof(cmd),
		 "PATH=\"$PATH:/sbin:/usr/sbin\" mkfs.ext4 -q -F -b %u '%s' 8M >/dev/null 2>&1",
		 bs, path);
	st = system(cmd);
	if (st != 0)
		unlink(path);
	ck_assert_msg(st == 0, "mkfs.ext4 failed (status %d): is e2fsprogs installed?", st);
	buf = malloc(ROOTFS_PROBE_BYTES);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, ROOTFS_PROBE_BYTES, 0), ROOTFS_PROBE_BYTES);
	close(fd);
	unlink(path);
	/* Sanity: it is what we think it is. */
	ck_assert_uint_eq(buf[T_SB + 56], 0x53);
	ck_assert_uint_eq(buf[T_SB + 57], 0xef);
	return buf;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* rootfs_check on an exact-size heap copy, so ASan sees any read past len. */
static int check_len(const uint8_t *img, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, img, len);
	memset(t_why, 0, sizeof(t_why));
	r = rootfs_check(copy, len, t_why, sizeof(t_why));
	free(copy);
	return r;
}

#define ck_assert_refused(r, needle)                                                  \
	do {                                                                          \
		ck_assert_int_eq((r), -EINVAL);                                       \
		ck_assert_msg(strstr(t_why, (needle)) != NULL,                        \
			      "reason '%s' should mention '%s'", t_why, (needle));    \
	} while (0)

START_TEST(real_ext4_passes)
{
	uint8_t *img = make_image(4096);

	ck_assert_int_eq(check_len(img, ROOTFS_PROBE_BYTES), 0);
	free(img);
	img = make_image(1024);
	ck_assert_int_eq(check_len(img, ROOTFS_PROBE_BYTES), 0);
	free(img);
}
END_TEST

START_TEST(zeros_fail)
{
	static const uint8_t zeros[ROOTFS_PROBE_BYTES];

	ck_assert_refused(check_len(zeros, sizeof(zeros)), "superblock");
}
END_TEST

START_TEST(short_buffer_fails)
{
	uint8_t *img = make_image(4096);

	ck_assert_refused(check_len(img, 0), "too small");
	ck_assert_refused(check_len(img, 512), "too small");
	ck_assert_refused(check_len(img, T_SB), "too small");
	/* one byte short of the magic's end */
	ck_assert_refused(check_len(img, T_SB + 57), "too small");
	ck_assert_refused(check_len(img, T_SB + 57), "1081 bytes");
	free(img);
}
END_TEST

START_TEST(wrong_magic_fails)
{
	uint8_t *img = make_image(4096);

	img[T_SB + 56] = 0x54;
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "superblock");
	img[T_SB + 56] = 0x53;
	img[T_SB + 57] = 0x00;
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "superblock");
	/* byte-swapped */
	img[T_SB + 56] = 0xef;
	img[T_SB + 57] = 0x53;
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "superblock");
	/* the magic at offset 0 (no boot block) is not an ext superblock */
	memset(img, 0, ROOTFS_PROBE_BYTES);
	img[56] = 0x53;
	img[57] = 0xef;
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "superblock");
	free(img);
}
END_TEST

START_TEST(bad_log_block_size_fails)
{
	uint8_t *img = make_image(4096);

	ck_assert_uint_eq(img[T_SB + 24], 2); /* 1 KiB << 2 */
	put_le32(img + T_SB + 24, 7);
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "block size");
	put_le32(img + T_SB + 24, 0xffffffffu);
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "block size");
	put_le32(img + T_SB + 24, 0x100);
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "block size");
	/* 64 KiB is the largest valid */
	put_le32(img + T_SB + 24, 6);
	ck_assert_int_eq(check_len(img, ROOTFS_PROBE_BYTES), 0);
	free(img);
}
END_TEST

START_TEST(no_blocks_fails)
{
	uint8_t *img = make_image(4096);

	put_le32(img + T_SB + 4, 0);
	ck_assert_refused(check_len(img, ROOTFS_PROBE_BYTES), "no blocks");
	free(img);
}
END_TEST

START_TEST(small_reason_buffer)
{
	static const uint8_t zeros[ROOTFS_PROBE_BYTES];
	char why[5];

	memset(why, 'X', sizeof(why));
	ck_assert_int_eq(rootfs_check(zeros, sizeof(zeros), why, sizeof(why)), -EINVAL);
	ck_assert_uint_eq(strlen(why), sizeof(why) - 1);
}
END_TEST

static Suite *vmm_rootfs_suite(void)
{
	Suite *s = suite_create("vmm_rootfs");
	TCase *tc = tcase_create("superblock");

	/* mkfs.ext4 runs several times: allow for a slow, sanitized host. */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, real_ext4_passes);
	tcase_add_test(tc, zeros_fail);
	tcase_add_test(tc, short_buffer_fails);
	tcase_add_test(tc, wrong_magic_fails);
	tcase_add_test(tc, bad_log_block_size_fails);
	tcase_add_test(tc, no_blocks_fails);
	tcase_add_test(tc, small_reason_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_rootfs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
