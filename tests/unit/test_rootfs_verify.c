/* Unit tests for vmm/rootfs_verify.c: real ext4 images (mkfs.ext4 -d) against SBOMs, with one byte, one mode, one file changed. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/rootfs_verify.h"
#include "vmm/sbom.h"
#include "vmm/sha256.h"

static char t_dir[64], t_img[128], t_err[512];

struct t_diffs {
	size_t n;
	char lines[16][512];
};

static void t_collect(void *ctx, const struct rootfs_diff *d)
{
	struct t_diffs *c = ctx;

	if (c->n < 16)
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%d %s %s", (int)d->kind, d->path,
			 d->detail);
	c->n++;
}

static void t_sh(const char *cmd)
{
	char full[2048];

	snprintf(full, sizeof(full), "set -e; PATH=\"$PATH:/sbin:/usr/sbin\"; cd '%s'; %s", t_dir, cmd);
	ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

/* tree/: /bin (0755), /bin/tool (0755, "hello tool\n"), /etc/conf (0644,
 * 5000 bytes: a data block of its own), /link -> bin/tool; image of it. */
static void t_setup(void)
{
	strcpy(t_dir, "/tmp/minivm-test-verify-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	snprintf(t_img, sizeof(t_img), "%s/img", t_dir);
	t_sh("umask 022; mkdir -p tree/bin tree/etc; printf 'hello tool\\n' > tree/bin/tool;"
	     "chmod 0755 tree/bin/tool; head -c 5000 /dev/zero | tr '\\0' 'c' > tree/etc/conf;"
	     "ln -s bin/tool tree/link;"
	     "mkfs.ext4 -q -F -d tree -E root_owner=0:0 -b 4096 -O ^has_journal img 8M >/dev/null;"
	     "debugfs -w -R 'sif /bin/tool uid 0' img >/dev/null 2>&1");
}

static void t_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", t_dir);
}

static void t_hex(const char *s, char hex[SHA256_HEX_SIZE])
{
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_digest(s, strlen(s), d);
	sha256_to_hex(d, hex);
}

/* The SBOM of the image above (mkfs -d keeps the tree's owners: the test's
 * uid, so owners are whatever stat says; root's is 0:0). */
static struct sbom *t_sbom(const char *tool_mode)
{
	static char json[8192];
	char conf[5001], h_tool[SHA256_HEX_SIZE], h_conf[SHA256_HEX_SIZE];
	struct sbom *s = NULL;
	unsigned int uid = (unsigned int)getuid(), gid = (unsigned int)getgid();

	memset(conf, 'c', 5000);
	conf[5000] = '\0';
	t_hex("hello tool\n", h_tool);
	t_hex(conf, h_conf);
#define F(path, type, mode, u, g, extra) \
	"{\"type\": \"file\", \"name\": \"" path "\"" extra ", \"properties\": [" \
	"{\"name\": \"minivm:file-type\", \"value\": \"" type "\"}, {\"name\": \"minivm:mode\", \"value\": \"" mode "\"}," \
	"{\"name\": \"minivm:uid\", \"value\": \"" u "\"}, {\"name\": \"minivm:gid\", \"value\": \"" g "\"}"
	snprintf(json, sizeof(json),
		 "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.5\", \"components\": [{\"name\": \"t\", \"components\": ["
		 F("/", "directory", "0755", "0", "0", "") "]},"
		 F("/lost+found", "directory", "0700", "0", "0", "") "]},"
		 F("/bin", "directory", "0755", "%u", "%u", "") "]},"
		 F("/bin/tool", "regular", "%s", "0", "%u", ", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"%s\"}]") "]},"
		 F("/etc", "directory", "0755", "%u", "%u", "") "]},"
		 F("/etc/conf", "regular", "0644", "%u", "%u", ", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"%s\"}]") "]},"
		 F("/link", "symlink", "0777", "%u", "%u", "") ", {\"name\": \"minivm:symlink-target\", \"value\": \"bin/tool\"}]}"
		 "]}]}",
		 uid, gid, h_tool, tool_mode, gid, uid, gid, h_conf, uid, gid, uid, gid);
#undef F
	ck_assert_msg(sbom_parse(json, strlen(json), &s, t_err, sizeof(t_err)) == 0, "%s", t_err);
	return s;
}

START_TEST(test_verify_matches)
{
	struct t_diffs c = { 0 };
	struct sbom *s = t_sbom("0755");
	size_t nd = 99;

	ck_assert_msg(rootfs_verify(t_img, s, t_collect, &c, &nd, t_err, sizeof(t_err)) == 0, "%s", t_err);
	for (size_t i = 0; i < c.n && i < 16; i++)
		fprintf(stderr, "unexpected: %s\n", c.lines[i]);
	ck_assert_uint_eq(nd, 0);
	sbom_free(s);
}
END_TEST

/* One byte of /etc/conf's data block changed: exactly that file's hash differs. */
START_TEST(test_verify_one_byte)
{
	struct t_diffs c = { 0 };
	struct sbom *s = t_sbom("0755");
	size_t nd = 0;

	t_sh("blk=$(debugfs -R 'bmap /etc/conf 0' img 2>/dev/null); test -n \"$blk\";"
	     "printf 'X' | dd of=img bs=1 seek=$((blk * 4096 + 100)) conv=notrunc status=none");
	ck_assert_int_eq(rootfs_verify(t_img, s, t_collect, &c, &nd, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(nd, 1);
	ck_assert_msg(strncmp(c.lines[0], "5 /etc/conf sha256 sbom ", 24) == 0, "%s", c.lines[0]);
	sbom_free(s);
}
END_TEST

START_TEST(test_verify_mode_extra_missing)
{
	struct t_diffs c = { 0 };
	struct sbom *s = t_sbom("4755"); /* the SBOM says setuid: the image's 0755 differs */
	size_t nd = 0;

	t_sh("debugfs -w -R 'rm /link' img >/dev/null 2>&1; printf x > extra;"
	     "debugfs -w -R 'write extra /etc/extra' img >/dev/null 2>&1");
	ck_assert_int_eq(rootfs_verify(t_img, s, t_collect, &c, &nd, t_err, sizeof(t_err)), 0);
	ck_assert_uint_eq(nd, 3);
	ck_assert_msg(strcmp(c.lines[0], "3 /bin/tool sbom 4755, image 0755") == 0, "%s", c.lines[0]);
	ck_assert_msg(strncmp(c.lines[1], "1 /etc/extra in the image", 25) == 0, "%s", c.lines[1]);
	ck_assert_msg(strncmp(c.lines[2], "0 /link listed in the sbom (symlink", 35) == 0, "%s", c.lines[2]);
	sbom_free(s);
}
END_TEST

START_TEST(test_verify_not_an_image)
{
	struct sbom *s = t_sbom("0755");
	size_t nd = 7;

	t_sh("head -c 65536 /dev/zero > zero");
	snprintf(t_img, sizeof(t_img), "%s/zero", t_dir);
	ck_assert_int_eq(rootfs_verify(t_img, s, NULL, NULL, &nd, t_err, sizeof(t_err)), -EINVAL);
	ck_assert(strstr(t_err, "not a readable ext2/3/4 image") != NULL);
	ck_assert_uint_eq(nd, 0);
	snprintf(t_img, sizeof(t_img), "%s/missing", t_dir);
	ck_assert_int_eq(rootfs_verify(t_img, s, NULL, NULL, &nd, t_err, sizeof(t_err)), -ENOENT);
	sbom_free(s);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("rootfs_verify");
	TCase *tc = tcase_create("images");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_verify_matches);
	tcase_add_test(tc, test_verify_one_byte);
	tcase_add_test(tc, test_verify_mode_extra_missing);
	tcase_add_test(tc, test_verify_not_an_image);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
