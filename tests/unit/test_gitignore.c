/* Unit tests for vmm/gitignore.c: parsing, each gitignore(5) rule, precedence, and agreement with `git check-ignore` on a generated tree. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/gitignore.h"

static struct gitignore *load1(const char *dir, const char *text)
{
	struct gitignore *g;
	char err[256] = "";

	ck_assert_int_eq(gi_new(&g), 0);
	ck_assert_msg(gi_add(g, dir, text, strlen(text), err, sizeof(err)) == 0, "%s", err);
	return g;
}

#define IGN(g, p) ck_assert_msg(gi_ignored(g, p, false), "%s should be ignored", p)
#define KEEP(g, p) ck_assert_msg(!gi_ignored(g, p, false), "%s should be kept", p)
#define IGND(g, p) ck_assert_msg(gi_ignored(g, p, true), "%s/ should be ignored", p)
#define KEEPD(g, p) ck_assert_msg(!gi_ignored(g, p, true), "%s/ should be kept", p)

START_TEST(test_comments_blank_spaces)
{
	struct gitignore *g = load1("", "\xef\xbb\xbf# comment\n\n   \n\\#hash\nsp  \nesc\\ \r\nlast");

	ck_assert_uint_eq(gi_rules(g), 4);
	KEEP(g, "# comment");
	IGN(g, "#hash");
	IGN(g, "sp");
	KEEP(g, "sp  ");
	IGN(g, "esc ");
	KEEP(g, "esc");
	IGN(g, "last");
	gi_free(g);
}
END_TEST

START_TEST(test_negation_and_order)
{
	struct gitignore *g = load1("", "*.log\n!keep.log\n\\!bang\n");

	IGN(g, "a.log");
	IGN(g, "d/b.log");
	KEEP(g, "keep.log");
	KEEP(g, "d/keep.log");
	IGN(g, "!bang");
	KEEP(g, "bang");
	gi_free(g);
	/* The last matching line wins. */
	g = load1("", "!x\nx\n");
	IGN(g, "x");
	gi_free(g);
}
END_TEST

START_TEST(test_anchoring)
{
	struct gitignore *g = load1("", "/top\nmid/dle\nany\n");

	IGN(g, "top");
	KEEP(g, "d/top");
	IGN(g, "mid/dle");
	KEEP(g, "x/mid/dle");
	IGN(g, "any");
	IGN(g, "a/b/any");
	gi_free(g);
}
END_TEST

START_TEST(test_dir_only_and_excluded_dirs)
{
	struct gitignore *g = load1("", "build/\n!build/keep\n");

	IGND(g, "build");
	KEEP(g, "build"); /* a file named build is not a directory */
	IGN(g, "build/x");
	IGN(g, "build/keep"); /* never re-included below an excluded directory */
	IGN(g, "sub/build/y");
	gi_free(g);
}
END_TEST

START_TEST(test_wildcards)
{
	struct gitignore *g = load1("", "*.o\nf?o\n[abc]x\n[!0-9]y\n[[:digit:]]z\nq\\*\n");

	IGN(g, "a.o");
	IGN(g, "d/.o");
	IGN(g, "foo");
	KEEP(g, "fo");
	IGN(g, "bx");
	KEEP(g, "dx");
	IGN(g, "ay");
	KEEP(g, "5y");
	IGN(g, "5z");
	KEEP(g, "az");
	IGN(g, "q*");
	KEEP(g, "qq");
	gi_free(g);
}
END_TEST

START_TEST(test_double_star)
{
	struct gitignore *g = load1("", "**/logs\na/**/b\nout/**\nx**y\n");

	IGND(g, "logs");
	IGN(g, "deep/er/logs");
	IGN(g, "a/b");
	IGN(g, "a/x/y/b");
	KEEP(g, "a/xb");
	KEEPD(g, "out");
	IGN(g, "out/f");
	IGN(g, "out/d/f");
	IGN(g, "xzzy");
	gi_free(g);
}
END_TEST

START_TEST(test_nested_files_precedence)
{
	struct gitignore *g;
	char err[256];

	ck_assert_int_eq(gi_new(&g), 0);
	/* The deeper file first: order of adding does not matter. */
	ck_assert_int_eq(gi_add(g, "sub", "!*.tmp\n/only\n", 14, err, sizeof(err)), 0);
	ck_assert_int_eq(gi_add(g, "", "*.tmp\nonly\n", 11, err, sizeof(err)), 0);
	IGN(g, "a.tmp");
	KEEP(g, "sub/a.tmp");
	KEEP(g, "sub/.gitignore");
	IGN(g, "sub/only");
	IGN(g, "sub/deeper/only"); /* from the top file's unanchored "only" */
	IGN(g, "subx/a.tmp");
	gi_free(g);
}
END_TEST

START_TEST(test_bad_input)
{
	struct gitignore *g;
	char err[256], *big;

	ck_assert_int_eq(gi_new(&g), 0);
	ck_assert_int_eq(gi_add(g, "../x", "a\n", 2, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(gi_add(g, "/x", "a\n", 2, err, sizeof(err)), -EINVAL);
	big = malloc(GI_LINE_MAX + 10);
	memset(big, 'a', GI_LINE_MAX + 9);
	big[GI_LINE_MAX + 9] = '\n';
	ck_assert_int_eq(gi_add(g, "d", big, GI_LINE_MAX + 10, err, sizeof(err)), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(err, "d/.gitignore:1"));
	ck_assert_uint_eq(gi_rules(g), 0);
	/* Unterminated classes and bad [:class:] match nothing, safely. */
	ck_assert_int_eq(gi_add(g, "", "[abc\n[[:nope:]]\n\\\n[\n**[\n", 24, err, sizeof(err)), 0);
	KEEP(g, "a");
	KEEP(g, "[abc");
	/* A pathological pattern is bounded. */
	gi_free(g);
	ck_assert_int_eq(gi_new(&g), 0);
	for (int i = 0; i < 100; i++) {
		big[2 * i] = '*';
		big[2 * i + 1] = 'a';
	}
	memcpy(big + 200, "b\n", 2);
	ck_assert_int_eq(gi_add(g, "", big, 202, err, sizeof(err)), 0);
	memset(big, 'a', 3000);
	big[3000] = '\0';
	KEEP(g, big);
	free(big);
	gi_free(g);
}
END_TEST

/* ---- agreement with git ---- */

static const char *const top_rules =
	"# tricky\n"
	"*.log\n"
	"!important.log\n"
	"/rootonly\n"
	"build/\n"
	"!build/keep.txt\n"
	"doc/**/*.pdf\n"
	"**/cache\n"
	"tmp/**\n"
	"[Tt]humbs?db\n"
	"\\#hash\n"
	"space\\ \n"
	"trail   \n"
	"a/*/c\n"
	"*.[oa]\n"
	"!lib.a\n";
static const char *const sub_rules = "!*.log\n/anch\nnested/\n*.o\n";

static const char *const files[] = {
	"x.log", "important.log", "sub/x.log", "sub/deep/y.log", "rootonly", "sub/rootonly",
	"build/a", "build/keep.txt", "sub/build/b", "doc/a.pdf", "doc/x/y/b.pdf", "doc/x/c.txt",
	"cache/f", "sub/cache/g", "tmp/f", "tmp/d/g", "Thumbs.db", "thumbsXdb", "#hash", "space ",
	"space", "trail", "a/b/c", "a/b/d/c", "a/c", "x.o", "lib.a", "sub/lib.a", "sub/anch",
	"sub/d/anch", "anch", "sub/nested/f", "nested/f", "sub/z.o", "keep/me.txt", "rootonly2",
};

static void write_file(const char *root, const char *rel, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_against_git)
{
	char tmpl[] = "/tmp/gi-git-XXXXXX", cmd[1024], line[4096];
	struct gitignore *g;
	char err[256];
	const char *root = mkdtemp(tmpl);
	char listpath[256], outpath[256];
	FILE *f;
	size_t nign = 0;
	bool git_ign[sizeof(files) / sizeof(files[0])] = { false };

	ck_assert_ptr_nonnull(root);
	write_file(root, ".gitignore", top_rules);
	write_file(root, "sub/.gitignore", sub_rules);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		write_file(root, files[i], "x\n");
	snprintf(listpath, sizeof(listpath), "%s.list", root);
	snprintf(outpath, sizeof(outpath), "%s.out", root);
	f = fopen(listpath, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fprintf(f, "%s\n", files[i]);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && git init -q . && git check-ignore --stdin < '%s' > '%s'; "
		 "test $? -le 1",
		 root, listpath, outpath);
	ck_assert_msg(system(cmd) == 0, "git check-ignore failed");
	f = fopen(outpath, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			if (!strcmp(line, files[i]))
				git_ign[i] = true;
	}
	fclose(f);

	ck_assert_int_eq(gi_new(&g), 0);
	ck_assert_int_eq(gi_add(g, "", top_rules, strlen(top_rules), err, sizeof(err)), 0);
	ck_assert_int_eq(gi_add(g, "sub", sub_rules, strlen(sub_rules), err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		ck_assert_msg(gi_ignored(g, files[i], false) == git_ign[i], "%s: git says %s",
			      files[i], git_ign[i] ? "ignored" : "not ignored");
		nign += git_ign[i];
	}
	/* The comparison means something: both kinds are present. */
	ck_assert_uint_gt(nign, 8);
	ck_assert_uint_lt(nign, sizeof(files) / sizeof(files[0]) - 5);
	gi_free(g);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", root, listpath, outpath);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *gitignore_suite(void)
{
	Suite *s = suite_create("gitignore");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_comments_blank_spaces);
	tcase_add_test(tc, test_negation_and_order);
	tcase_add_test(tc, test_anchoring);
	tcase_add_test(tc, test_dir_only_and_excluded_dirs);
	tcase_add_test(tc, test_wildcards);
	tcase_add_test(tc, test_double_star);
	tcase_add_test(tc, test_nested_files_precedence);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_against_git);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gitignore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
