/* Unit tests for vmm/sha256.c: the FIPS 180-4 / NIST example vectors, split updates, hex. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/sha256.h"

static void hex_of(const void *data, size_t len, char hex[SHA256_HEX_SIZE])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_digest(data, len, d);
	sha256_to_hex(d, hex);
}

/* NIST's SHA-256 examples (FIPS 180-4 / the CSRC example values). */
START_TEST(test_nist_vectors)
{
	static const struct {
		const char *msg, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	};
	char hex[SHA256_HEX_SIZE];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hex_of(v[i].msg, strlen(v[i].msg), hex);
		ck_assert_str_eq(hex, v[i].hex);
	}
}
END_TEST

/* One million 'a': fed in uneven pieces, so partial blocks are crossed. */
START_TEST(test_million_a)
{
	static char a[1000000];
	struct sha256 s;
	uint8_t d[SHA256_DIGEST_SIZE];
	char hex[SHA256_HEX_SIZE];
	size_t off = 0, step = 1;

	memset(a, 'a', sizeof(a));
	sha256_init(&s);
	while (off < sizeof(a)) {
		size_t n = step < sizeof(a) - off ? step : sizeof(a) - off;

		sha256_update(&s, a + off, n);
		off += n;
		step = step * 3 % 1021 + 1;
	}
	sha256_final(&s, d);
	sha256_to_hex(d, hex);
	ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* Every length around the padding boundaries (55, 56, 63, 64 bytes) hashes
 * the same in one call and byte by byte. */
START_TEST(test_split_equals_whole)
{
	uint8_t buf[300], d1[SHA256_DIGEST_SIZE], d2[SHA256_DIGEST_SIZE];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		struct sha256 s;

		sha256_digest(buf, len, d1);
		sha256_init(&s);
		for (size_t i = 0; i < len; i++)
			sha256_update(&s, buf + i, 1);
		sha256_final(&s, d2);
		ck_assert_mem_eq(d1, d2, sizeof(d1));
	}
	/* And the lengths differ in their digests (the length is hashed). */
	sha256_digest(buf, 55, d1);
	sha256_digest(buf, 56, d2);
	ck_assert(memcmp(d1, d2, sizeof(d1)) != 0);
}
END_TEST

START_TEST(test_hex)
{
	uint8_t d[SHA256_DIGEST_SIZE], back[SHA256_DIGEST_SIZE];
	char hex[SHA256_HEX_SIZE];
	char upper[] = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";

	sha256_digest("abc", 3, d);
	sha256_to_hex(d, hex);
	ck_assert_int_eq(sha256_from_hex(hex, strlen(hex), back), 0);
	ck_assert_mem_eq(d, back, sizeof(d));
	ck_assert_int_eq(sha256_from_hex(upper, strlen(upper), back), 0);
	ck_assert_mem_eq(d, back, sizeof(d));
	ck_assert_int_eq(sha256_from_hex(hex, 63, back), -EINVAL);
	ck_assert_int_eq(sha256_from_hex(NULL, 64, back), -EINVAL);
	hex[10] = 'g';
	ck_assert_int_eq(sha256_from_hex(hex, 64, back), -EINVAL);
}
END_TEST

static Suite *sha256_suite(void)
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("fips180-4");

	tcase_add_test(tc, test_nist_vectors);
	tcase_add_test(tc, test_million_a);
	tcase_add_test(tc, test_split_equals_whole);
	tcase_add_test(tc, test_hex);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sha256_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
