/* Unit tests for the virtio-blk request parser (blk_req_parse) on hand-built chains. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_spec.h"
#include "tests/unit/test_virtio_helpers.h"

#define HDR 0x1000
#define DATA 0x10000
#define STATUS 0x3000
#define CAP 100 /* sectors */

static struct fake_ram ram;
static struct virtq_chain c;
static struct blk_req r;
static struct blk_geom g;

static void setup(void)
{
	fake_ram_init(&ram, 1 << 20);
	memset(&c, 0, sizeof(c));
	g = (struct blk_geom){ .capacity = CAP, .max_discard_sectors = 64, .max_write_zeroes_sectors = 32 };
}

static void teardown(void)
{
	fake_ram_free(&ram);
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = type, .reserved = 0xffffffff, .sector = sector };

	memcpy(fake_ram_at(&ram, gpa, sizeof(h)), &h, sizeof(h));
}

/* Appends a segment; readable ones must come first (virtq_pop guarantees it). */
static void seg(uint64_t gpa, uint32_t len, bool write)
{
	c.seg[c.nseg++] = (struct virtq_seg){ .gpa = gpa, .len = len, .write = write };
	if (write) {
		c.write_len += len;
	} else {
		ck_assert_uint_eq(c.nseg - 1, c.nread);
		c.nread++;
		c.read_len += len;
	}
}

static void simple(uint32_t type, uint64_t sector, uint32_t data_len, bool data_write)
{
	put_hdr(HDR, type, sector);
	seg(HDR, 16, false);
	if (data_len && !data_write)
		seg(DATA, data_len, false);
	if (data_len && data_write)
		seg(DATA, data_len, true);
	seg(STATUS, 1, true);
}

static int parse(void)
{
	return blk_req_parse(&ram.gm, &c, &g, &r);
}

START_TEST(test_read)
{
	simple(VIRTIO_BLK_T_IN, 7, 4096, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.type, VIRTIO_BLK_T_IN);
	ck_assert_uint_eq(r.sector, 7);
	ck_assert_uint_eq(r.data_len, 4096);
	ck_assert_uint_eq(r.ndata, 1);
	ck_assert_uint_eq(r.data[0].gpa, DATA);
	ck_assert(r.data[0].write);
	ck_assert_uint_eq(r.status_gpa, STATUS);
}
END_TEST

START_TEST(test_write_several_buffers)
{
	put_hdr(HDR, VIRTIO_BLK_T_OUT, 3);
	seg(HDR, 16, false);
	seg(DATA, 512, false);
	seg(DATA + 0x1000, 1024, false);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.data_len, 1536);
	ck_assert_uint_eq(r.ndata, 2);
	ck_assert_uint_eq(r.data[1].gpa, DATA + 0x1000);
	ck_assert_uint_eq(r.data[1].len, 1024);
}
END_TEST

/* 2.6.4: no assumptions about framing. Header and data in one buffer,
 * data and status in one buffer, a header split in two. */
START_TEST(test_any_layout)
{
	put_hdr(HDR, VIRTIO_BLK_T_OUT, 1);
	seg(HDR, 16 + 512, false);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.ndata, 1);
	ck_assert_uint_eq(r.data[0].gpa, HDR + 16);
	ck_assert_uint_eq(r.data[0].len, 512);

	memset(&c, 0, sizeof(c));
	put_hdr(HDR, VIRTIO_BLK_T_IN, 2);
	seg(HDR, 16, false);
	seg(DATA, 513, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.data_len, 512);
	ck_assert_uint_eq(r.data[0].len, 512);
	ck_assert_uint_eq(r.status_gpa, DATA + 512);

	memset(&c, 0, sizeof(c));
	put_hdr(HDR, VIRTIO_BLK_T_IN, 0x0102030405060708ULL % CAP);
	memcpy(fake_ram_at(&ram, 0x5000, 8), fake_ram_at(&ram, HDR + 8, 8), 8);
	seg(HDR, 8, false);
	seg(0x5000, 8, false);
	seg(DATA, 512, true);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.sector, 0x0102030405060708ULL % CAP);
}
END_TEST

START_TEST(test_last_sector_and_past_the_end)
{
	simple(VIRTIO_BLK_T_IN, CAP - 1, 512, true);
	ck_assert_int_eq(parse(), 0);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, CAP - 1, 1024, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	ck_assert_ptr_nonnull(strstr(r.error, "end of the disk"));
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_OUT, CAP, 512, false);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_OUT, CAP - 2, 1024, false);
	ck_assert_int_eq(parse(), 0);
	/* sector + length wraps 64 bits */
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, UINT64_MAX, 512, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, UINT64_MAX - 7, 4096, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	/* A zero-length read at the very end is in range. */
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, CAP, 0, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.data_len, 0);
}
END_TEST

START_TEST(test_misaligned_lengths)
{
	simple(VIRTIO_BLK_T_IN, 0, 511, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	ck_assert_ptr_nonnull(strstr(r.error, "multiple of 512"));
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_OUT, 0, 100, false);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	/* 512 split 300 + 212 is fine: only the total counts. */
	memset(&c, 0, sizeof(c));
	put_hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	seg(HDR, 16, false);
	seg(DATA, 300, false);
	seg(DATA + 0x1003, 212, false);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.ndata, 2);
}
END_TEST

START_TEST(test_wrong_header_length)
{
	put_hdr(HDR, VIRTIO_BLK_T_IN, 0);
	seg(HDR, 15, false);
	seg(DATA, 512, true);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	ck_assert_ptr_nonnull(strstr(r.error, "header"));
	ck_assert_uint_eq(r.status_gpa, STATUS);
	/* No readable part at all. */
	memset(&c, 0, sizeof(c));
	seg(DATA, 512, true);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	/* A header of 17 bytes for a read: a readable data byte. */
	memset(&c, 0, sizeof(c));
	seg(HDR, 17, false);
	seg(DATA, 512, true);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_status_not_writable)
{
	put_hdr(HDR, VIRTIO_BLK_T_FLUSH, 0);
	seg(HDR, 16, false);
	seg(STATUS, 1, false);
	ck_assert_int_eq(parse(), -EINVAL);
	ck_assert_ptr_nonnull(strstr(r.error, "status"));
	/* Only empty writable buffers. */
	memset(&c, 0, sizeof(c));
	seg(HDR, 16, false);
	seg(STATUS, 0, true);
	ck_assert_int_eq(parse(), -EINVAL);
}
END_TEST

START_TEST(test_read_only_disk_refuses_writes)
{
	g.read_only = true;
	g.discard = g.write_zeroes = true;
	simple(VIRTIO_BLK_T_OUT, 0, 512, false);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	ck_assert_ptr_nonnull(strstr(r.error, "read-only"));
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, 0, 512, true);
	ck_assert_int_eq(parse(), 0);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_FLUSH, 0, 0, false);
	ck_assert_int_eq(parse(), 0);
	memset(&c, 0, sizeof(c));
	put_hdr(HDR, VIRTIO_BLK_T_DISCARD, 0);
	seg(HDR, 32, false);
	seg(STATUS, 1, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_direction_mismatch)
{
	simple(VIRTIO_BLK_T_OUT, 0, 512, true); /* data the device would write */
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_IN, 0, 512, false);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_get_id_and_flush)
{
	simple(VIRTIO_BLK_T_GET_ID, 0, 20, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.data_len, 20);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_GET_ID, 0, 64, true);
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.data_len, 20); /* never more than the ID */
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_GET_ID, 0, 0, true);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	memset(&c, 0, sizeof(c));
	simple(VIRTIO_BLK_T_FLUSH, 12345678, 0, false);
	ck_assert_int_eq(parse(), 0);
}
END_TEST

START_TEST(test_unknown_types)
{
	static const uint32_t types[] = { 2, 3, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE,
					  0x7fffffff, 0xffffffff };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(&c, 0, sizeof(c));
		simple(types[i], 0, 512, true);
		ck_assert_int_eq(parse(), VIRTIO_BLK_S_UNSUPP);
	}
}
END_TEST

static void discard_req(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags, uint32_t nsegs)
{
	memset(&c, 0, sizeof(c));
	put_hdr(HDR, type, 0);
	for (uint32_t i = 0; i < nsegs; i++) {
		struct virtio_blk_discard_write_zeroes d = { .sector = sector, .num_sectors = n, .flags = flags };

		memcpy(fake_ram_at(&ram, HDR + 16 + 16 * i, 16), &d, 16);
	}
	seg(HDR, 16 + 16 * nsegs, false);
	seg(STATUS, 1, true);
}

START_TEST(test_discard_and_write_zeroes)
{
	discard_req(VIRTIO_BLK_T_DISCARD, 8, 16, 0, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_UNSUPP); /* not negotiated */
	g.discard = g.write_zeroes = true;
	ck_assert_int_eq(parse(), 0);
	ck_assert_uint_eq(r.sector, 8);
	ck_assert_uint_eq(r.nsectors, 16);
	discard_req(VIRTIO_BLK_T_DISCARD, 8, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_UNSUPP);
	discard_req(VIRTIO_BLK_T_WRITE_ZEROES, 8, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 1);
	ck_assert_int_eq(parse(), 0);
	ck_assert(r.unmap);
	discard_req(VIRTIO_BLK_T_WRITE_ZEROES, 8, 16, 2, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_UNSUPP);
	discard_req(VIRTIO_BLK_T_WRITE_ZEROES, 8, 0, 0, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	discard_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 33, 0, 1); /* > max_write_zeroes_sectors */
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	discard_req(VIRTIO_BLK_T_DISCARD, 0, 64, 0, 1);
	ck_assert_int_eq(parse(), 0);
	discard_req(VIRTIO_BLK_T_DISCARD, CAP - 10, 11, 0, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	discard_req(VIRTIO_BLK_T_DISCARD, UINT64_MAX - 1, 4, 0, 1);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	discard_req(VIRTIO_BLK_T_DISCARD, 0, 4, 0, 2); /* max_discard_seg is 1 */
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
	discard_req(VIRTIO_BLK_T_DISCARD, 0, 4, 0, 0);
	ck_assert_int_eq(parse(), VIRTIO_BLK_S_IOERR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk_req");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_read);
	tcase_add_test(tc, test_write_several_buffers);
	tcase_add_test(tc, test_any_layout);
	tcase_add_test(tc, test_last_sector_and_past_the_end);
	tcase_add_test(tc, test_misaligned_lengths);
	tcase_add_test(tc, test_wrong_header_length);
	tcase_add_test(tc, test_status_not_writable);
	tcase_add_test(tc, test_read_only_disk_refuses_writes);
	tcase_add_test(tc, test_direction_mismatch);
	tcase_add_test(tc, test_get_id_and_flush);
	tcase_add_test(tc, test_unknown_types);
	tcase_add_test(tc, test_discard_and_write_zeroes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
