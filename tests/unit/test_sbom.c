/* Unit tests for vmm/json.c (strict, bounded JSON) and vmm/sbom.c (the rootfs SBOM format). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/json.h"
#include "vmm/sbom.h"

static char t_err[256];

static int parse(const char *s)
{
	struct json_doc *d = NULL;
	int r = json_parse(s, strlen(s), NULL, &d, t_err, sizeof(t_err));

	if (r == 0)
		ck_assert_ptr_nonnull(d);
	else
		ck_assert_ptr_null(d);
	json_free(d);
	return r;
}

START_TEST(test_json_accepts)
{
	static const char *const ok[] = {
		"{}", "[]", "0", "-0", "1.5e10", "-1E-2", "\"\"", "true", "false", "null",
		" \t\r\n{ \"a\" : [1, 2, {\"b\": null}] } \n", "\"\\u00e9\\ud83d\\ude00\\n\\/\"",
		"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(parse(ok[i]) == 0, "%s: %s", ok[i], t_err);
}
END_TEST

START_TEST(test_json_rejects)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "1e",
		"-", "+1", "tru", "nul", "[1 2]", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"", "\"a\nb\"", "\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"", "\xef\xbb\xbf{}",
		"{} {}", "[1] x", "// c\n{}", "NaN", "Infinity", "'a'",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i]);

		ck_assert_msg(r == -EINVAL, "'%s' gave %d", bad[i], r);
		ck_assert_msg(strstr(t_err, "JSON at byte") != NULL, "no offset: %s", t_err);
	}
}
END_TEST

START_TEST(test_json_limits)
{
	static char deep[300];
	struct json_limits lim = { .max_bytes = 100, .max_depth = 8, .max_nodes = 5 };
	struct json_doc *d = NULL;

	memset(deep, '[', 200);
	memset(deep + 200, ']', 99);
	ck_assert_int_eq(json_parse(deep, 299, NULL, &d, t_err, sizeof(t_err)), -E2BIG);
	ck_assert_int_eq(json_parse("[[[[[[[[[1]]]]]]]]]", 19, &lim, &d, t_err, sizeof(t_err)),
			 -E2BIG);
	ck_assert_int_eq(json_parse("[1,2,3,4,5]", 11, &lim, &d, t_err, sizeof(t_err)), -E2BIG);
	ck_assert_int_eq(json_parse("[1,2,3,4]", 9, &lim, &d, t_err, sizeof(t_err)), 0);
	json_free(d);
	ck_assert_int_eq(json_parse(deep, 101, &lim, &d, t_err, sizeof(t_err)), -E2BIG);
	ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_json_tree)
{
	const char *s = "{\"a\": \"x\\u0041\", \"n\": -12.5e1, \"arr\": [true, {\"k\": null}], \"d\": 1, \"d\": 2}";
	const struct json_node *root, *v, *c;
	struct json_doc *d;

	ck_assert_int_eq(json_parse(s, strlen(s), NULL, &d, t_err, sizeof(t_err)), 0);
	root = json_root(d);
	ck_assert_int_eq(root->type, JSON_OBJECT);
	ck_assert_uint_eq(root->count, 5);
	ck_assert_str_eq(json_get_str(d, root, "a"), "xA");
	ck_assert_int_eq(json_get(d, root, "n", &v), 0);
	ck_assert_int_eq(v->type, JSON_NUMBER);
	ck_assert_str_eq(v->str, "-12.5e1");
	ck_assert_int_eq(json_get(d, root, "arr", &v), 0);
	ck_assert_uint_eq(v->count, 2);
	c = json_first(d, v);
	ck_assert_int_eq(c->type, JSON_TRUE);
	c = json_next(d, c);
	ck_assert_int_eq(c->type, JSON_OBJECT);
	ck_assert_ptr_null(json_next(d, c));
	ck_assert_int_eq(json_get(d, root, "missing", &v), -ENOENT);
	ck_assert_int_eq(json_get(d, root, "d", &v), -EEXIST);
	ck_assert_ptr_null(json_get_str(d, root, "d"));
	ck_assert_int_eq(json_get(d, c, "k", &v), 0);
	ck_assert_int_eq(json_get(d, v, "x", &c), -EINVAL);
	json_free(d);
}
END_TEST

#define HASH_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define PROPS(t, m) "\"properties\": [{\"name\": \"minivm:file-type\", \"value\": \"" t "\"}, " \
	"{\"name\": \"minivm:mode\", \"value\": \"" m "\"}, {\"name\": \"minivm:uid\", \"value\": \"0\"}, " \
	"{\"name\": \"minivm:gid\", \"value\": \"1000\"}"

/* A BOM with files (a JSON fragment) under package "pkg" 1.0 and "/" under minivm. */
static char *bom(const char *files)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
		 "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.5\", \"version\": 1, \"components\": ["
		 "{\"type\": \"application\", \"name\": \"minivm\", \"version\": \"abc\", \"components\": ["
		 "{\"type\": \"file\", \"name\": \"/\", " PROPS("directory", "0755") "]}]},"
		 "{\"type\": \"library\", \"name\": \"pkg\", \"version\": \"1.0\", \"components\": [%s]}]}",
		 files);
	return buf;
}

static int sbom_of(const char *files, struct sbom **s)
{
	const char *b = bom(files);

	return sbom_parse(b, strlen(b), s, t_err, sizeof(t_err));
}

START_TEST(test_sbom_good)
{
	struct sbom *s;
	const struct sbom_file *f;

	ck_assert_int_eq(sbom_of(
		"{\"type\": \"file\", \"name\": \"/z\", \"hashes\": [{\"alg\": \"SHA-1\", \"content\": \"x\"}, "
		"{\"alg\": \"SHA-256\", \"content\": \"" HASH_A "\"}], " PROPS("regular", "4755") "]},"
		"{\"type\": \"file\", \"name\": \"/a/l\", " PROPS("symlink", "0777")
		", {\"name\": \"minivm:symlink-target\", \"value\": \"../z\"}, {\"name\": \"other\", \"value\": \"x\"}]}",
		&s), 0);
	ck_assert_uint_eq(s->nr_files, 3);
	ck_assert_str_eq(s->files[0].path, "/");
	ck_assert_str_eq(s->files[1].path, "/a/l");
	ck_assert_str_eq(s->files[2].path, "/z");
	f = sbom_find(s, "/z");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(f->type, SBOM_REGULAR);
	ck_assert_uint_eq(f->mode, 04755);
	ck_assert_uint_eq(f->gid, 1000);
	ck_assert_str_eq(f->package, "pkg");
	ck_assert_str_eq(f->version, "1.0");
	ck_assert_uint_eq(f->sha256[0], 0xe3);
	f = sbom_find(s, "/a/l");
	ck_assert_str_eq(f->target, "../z");
	ck_assert_str_eq(sbom_find(s, "/")->package, "minivm");
	ck_assert_ptr_null(sbom_find(s, "/nope"));
	sbom_free(s);
}
END_TEST

START_TEST(test_sbom_bad)
{
	static const char *const bad[] = {
		/* no hash, two SHA-256, bad hex */
		"{\"type\": \"file\", \"name\": \"/f\", " PROPS("regular", "0644") "]}",
		"{\"type\": \"file\", \"name\": \"/f\", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"" HASH_A "\"},"
		"{\"alg\": \"SHA-256\", \"content\": \"" HASH_A "\"}], " PROPS("regular", "0644") "]}",
		"{\"type\": \"file\", \"name\": \"/f\", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"abc\"}], "
		PROPS("regular", "0644") "]}",
		/* paths */
		"{\"type\": \"file\", \"name\": \"rel\", " PROPS("directory", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/a/../b\", " PROPS("directory", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/a//b\", " PROPS("directory", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/a/\", " PROPS("directory", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/\", " PROPS("directory", "0755") "]}", /* twice */
		/* modes, types, owners */
		"{\"type\": \"file\", \"name\": \"/d\", " PROPS("directory", "10755") "]}",
		"{\"type\": \"file\", \"name\": \"/d\", " PROPS("directory", "0758") "]}",
		"{\"type\": \"file\", \"name\": \"/d\", " PROPS("fifo", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/d\", " PROPS("directory", "0755")
		", {\"name\": \"minivm:uid\", \"value\": \"1\"}]}",
		"{\"type\": \"file\", \"name\": \"/l\", " PROPS("symlink", "0777") "]}",
		"{\"type\": \"file\", \"name\": \"/d\", " PROPS("directory", "0755")
		", {\"name\": \"minivm:symlink-target\", \"value\": \"x\"}]}",
		"{\"type\": \"library\", \"name\": \"/d\", " PROPS("directory", "0755") "]}",
		"{\"type\": \"file\", \"name\": \"/d\"}",
		"17",
	};
	struct sbom *s = (struct sbom *)1;
	const char *nobom = "{\"bomFormat\": \"SPDX\", \"specVersion\": \"1.5\", \"components\": []}";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sbom_of(bad[i], &s);

		ck_assert_msg(r == -EINVAL, "case %zu gave %d", i, r);
		ck_assert_ptr_null(s);
		ck_assert(t_err[0] != '\0');
	}
	ck_assert_int_eq(sbom_parse(nobom, strlen(nobom), &s, t_err, sizeof(t_err)), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert(strstr(t_err, "CycloneDX") != NULL);
	ck_assert_int_eq(sbom_parse("{", 1, &s, t_err, sizeof(t_err)), -EINVAL);
}
END_TEST

static Suite *sbom_suite(void)
{
	Suite *s = suite_create("sbom");
	TCase *tj = tcase_create("json");
	TCase *ts = tcase_create("sbom");

	tcase_add_test(tj, test_json_accepts);
	tcase_add_test(tj, test_json_rejects);
	tcase_add_test(tj, test_json_limits);
	tcase_add_test(tj, test_json_tree);
	tcase_add_test(ts, test_sbom_good);
	tcase_add_test(ts, test_sbom_bad);
	suite_add_tcase(s, tj);
	suite_add_tcase(s, ts);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sbom_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
