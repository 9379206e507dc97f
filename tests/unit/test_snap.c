/* Unit tests for vmm/snap.c: round trip, and every refusal (magic, version, checksum, truncation, section bounds, duplicates). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/sha256.h"
#include "vmm/snap.h"

/* A small valid file: three sections; *out is malloc'd, the caller frees it. */
static size_t make_file(uint8_t **out)
{
	struct snap_writer w;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_MACHINE, 0), 0);
	ck_assert_int_eq(snap_put_u64(&w, 256ull << 20), 0);
	ck_assert_int_eq(snap_put_u32(&w, 2), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_put(&w, "regs", 4), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_CLOCK, 0), 0); /* empty section */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	*out = malloc(len);
	ck_assert_ptr_nonnull(*out);
	memcpy(*out, data, len);
	snap_writer_free(&w);
	return len;
}

/* Recomputes the body checksum after a test edited the body. */
static void reseal(uint8_t *f, size_t len)
{
	sha256_digest(f + SNAP_HDR_SIZE, len - SNAP_HDR_SIZE, f + 24);
}

START_TEST(test_round_trip)
{
	struct snap_reader r;
	struct snap_cursor c;
	uint8_t *f, buf[4];
	uint64_t v64;
	uint32_t v32;
	char err[256] = "";
	size_t len = make_file(&f);

	ck_assert_uint_eq(len, SNAP_HDR_SIZE + 16 + 12 + 16 + 4 + 16);
	ck_assert_int_eq(memcmp(f, SNAP_MAGIC, 8), 0);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.version, SNAP_VERSION);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_MACHINE, 0, &c), 0);
	ck_assert_int_eq(snap_get_u64(&c, &v64), 0);
	ck_assert_uint_eq(v64, 256ull << 20);
	ck_assert_int_eq(snap_get_u32(&c, &v32), 0);
	ck_assert_uint_eq(v32, 2);
	ck_assert_uint_eq(c.left, 0);
	ck_assert_int_eq(snap_get_u32(&c, &v32), -EBADMSG); /* reading past a section */
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_VCPU, 1, &c), 0);
	ck_assert_int_eq(snap_get(&c, buf, 4), 0);
	ck_assert_int_eq(memcmp(buf, "regs", 4), 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_CLOCK, 0, &c), 0);
	ck_assert_uint_eq(c.left, 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_VCPU, 0, &c), -ENOENT);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_PIT, 0, &c), -ENOENT);
	free(f);
}
END_TEST

START_TEST(test_empty_file_body)
{
	struct snap_writer w;
	struct snap_reader r;
	struct snap_cursor c;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_uint_eq(len, SNAP_HDR_SIZE);
	ck_assert_int_eq(snap_reader_open(&r, data, len, NULL, 0), 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_MACHINE, 0, &c), -ENOENT);
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_writer_misuse)
{
	struct snap_writer w;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_put_u32(&w, 1), -EINVAL); /* outside a section */
	ck_assert_int_eq(snap_begin(&w, 1, 0), -EINVAL);  /* sticky */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	ck_assert_int_eq(snap_begin(&w, 2, 0), -EINVAL); /* nested */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_end(&w), -EINVAL); /* nothing open */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), -EINVAL); /* left open */
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_writer_limit)
{
	struct snap_writer w;
	static uint8_t chunk[1 << 20];

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	for (int i = 0; i < 63; i++)
		ck_assert_int_eq(snap_put(&w, chunk, sizeof(chunk)), 0);
	ck_assert_int_eq(snap_put(&w, chunk, sizeof(chunk)), -EFBIG);
	ck_assert_int_eq(snap_end(&w), -EFBIG); /* sticky */
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_bad_magic)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[0] ^= 1;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "magic"));
	free(f);
}
END_TEST

START_TEST(test_bad_version)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[8] = 2;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(strstr(err, "version 2"));
	f[8] = 0;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EPROTONOSUPPORT);
	free(f);
}
END_TEST

START_TEST(test_bad_flags)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[12] = 1;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "flags"));
	free(f);
}
END_TEST

/* Every single-bit flip in the body or checksum is caught. */
START_TEST(test_checksum_flip)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	for (size_t i = 24; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			f[i] ^= (uint8_t)(1u << b);
			ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
			ck_assert_ptr_nonnull(strstr(err, "checksum"));
			f[i] ^= (uint8_t)(1u << b);
		}
	}
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), 0);
	free(f);
}
END_TEST

START_TEST(test_truncation_every_length)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	for (size_t l = 0; l < len; l++) {
		uint8_t *copy = malloc(l ? l : 1); /* exact size: ASan sees any overread */

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, f, l);
		ck_assert_int_eq(snap_reader_open(&r, copy, l, err, sizeof(err)),
				 l < 8 ? -EINVAL : -EBADMSG);
		if (l >= SNAP_HDR_SIZE)
			ck_assert_ptr_nonnull(strstr(err, "truncated"));
		free(copy);
	}
	free(f);
}
END_TEST

START_TEST(test_padded)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);
	uint8_t *g = calloc(1, len + 1);

	memcpy(g, f, len);
	ck_assert_int_eq(snap_reader_open(&r, g, len + 1, err, sizeof(err)), -EBADMSG);
	free(g);
	free(f);
}
END_TEST

/* A section length past the body (checksum recomputed so only the bound catches it). */
START_TEST(test_section_past_end)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);
	uint8_t *last = f + len - 16; /* the empty CLOCK section's header */

	last[8] = 1; /* length 1, but no byte follows */
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	last[8] = 0;
	last[15] = 0x80; /* a huge length: no overflow in the bound check */
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	free(f);
}
END_TEST

/* A partial section header at the end of the body. */
START_TEST(test_partial_section_header)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	/* Drop the last 4 bytes and fix the header's body length + checksum. */
	len -= 4;
	f[16] = (uint8_t)(len - SNAP_HDR_SIZE);
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	free(f);
}
END_TEST

START_TEST(test_duplicate)
{
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *data;
	char err[256] = "";
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 0), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0); /* another instance: fine */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_PIT, 0), 0); /* another tag: fine */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), 0);
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_put_u32(&w, 1), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_PIT, 0), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_too_many_sections)
{
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *data;
	char err[256] = "";
	size_t len;

	snap_writer_init(&w);
	for (uint32_t i = 0; i <= SNAP_MAX_SECTIONS; i++) {
		ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VIRTIO, i), 0);
		ck_assert_int_eq(snap_end(&w), 0);
	}
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "sections"));
	snap_writer_free(&w);
}
END_TEST

static Suite *snap_suite(void)
{
	Suite *s = suite_create("snap");
	TCase *tc = tcase_create("container");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_empty_file_body);
	tcase_add_test(tc, test_writer_misuse);
	tcase_add_test(tc, test_writer_limit);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_bad_flags);
	tcase_add_test(tc, test_checksum_flip);
	tcase_add_test(tc, test_truncation_every_length);
	tcase_add_test(tc, test_padded);
	tcase_add_test(tc, test_section_past_end);
	tcase_add_test(tc, test_partial_section_header);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_too_many_sections);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(snap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
