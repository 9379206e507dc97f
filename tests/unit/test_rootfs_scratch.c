/* Unit tests for the overlay's scratch layer: minivm.scratch= (rootfs/agent/cmdline.c) and the host's setup (vmm/scratch.c: formatted in-process with libext2fs, checked by e2fsck). */
#include <check.h>
#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/agent/cmdline.h"
#include "vmm/scratch.h"

static int sp(const char *s, struct agent_scratch *o)
{
	return agent_scratch_parse(s, strlen(s), o);
}

START_TEST(test_hint_parse)
{
	struct agent_scratch o;
	static const char *const bad[] = {
		"", "vd", "vda1", "vdB", "sda", "vdabcd", "tmpfs:", "tmpfs:12", "tmpfs:1048575",
		"tmpfs:x", "tmpfs:99999999999999999999", "tmpfs ", "TMPFS", "/dev/vdb",
	};

	ck_assert_int_eq(sp("vdb", &o), 0);
	ck_assert_int_eq(o.kind, AGENT_SCRATCH_DISK);
	ck_assert_str_eq(o.dev, "vdb");
	ck_assert_int_eq(sp("vdaa", &o), 0);
	ck_assert_int_eq(sp("tmpfs", &o), 0);
	ck_assert_int_eq(o.kind, AGENT_SCRATCH_TMPFS);
	ck_assert_uint_eq(o.size, 0);
	ck_assert_int_eq(sp("tmpfs:1048576", &o), 0);
	ck_assert_uint_eq(o.size, 1048576);
	ck_assert_int_eq(sp("tmpfs:9999999999999999999", &o), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sp(bad[i], &o) == -EINVAL, "'%s' accepted", bad[i]);
	/* Not NUL-terminated: only len bytes count. */
	ck_assert_int_eq(agent_scratch_parse("vdbXYZ", 3, &o), 0);
	ck_assert_str_eq(o.dev, "vdb");
}
END_TEST

START_TEST(test_hint_format)
{
	struct agent_scratch in = { .kind = AGENT_SCRATCH_DISK, .dev = "vdc" }, out;
	char buf[AGENT_SCRATCH_VALUE_MAX];

	ck_assert_int_eq(agent_scratch_format(&in, buf, sizeof(buf)), 3);
	ck_assert_int_eq(sp(buf, &out), 0);
	ck_assert_str_eq(out.dev, "vdc");
	in.kind = AGENT_SCRATCH_TMPFS;
	in.size = 64ULL << 20;
	ck_assert_int_eq(agent_scratch_format(&in, buf, sizeof(buf)), 14);
	ck_assert_str_eq(buf, "tmpfs:67108864");
	ck_assert_int_eq(sp(buf, &out), 0);
	ck_assert_uint_eq(out.size, in.size);
	ck_assert_int_eq(agent_scratch_format(&in, buf, 5), -ENOBUFS);
	in.size = 5;
	ck_assert_int_eq(agent_scratch_format(&in, buf, sizeof(buf)), -EINVAL);
	in.kind = AGENT_SCRATCH_DISK;
	strcpy(in.dev, "sda");
	ck_assert_int_eq(agent_scratch_format(&in, buf, sizeof(buf)), -EINVAL);
	in.kind = 0;
	ck_assert_int_eq(agent_scratch_format(&in, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(test_mode)
{
	enum scratch_mode m;

	ck_assert_int_eq(scratch_parse_mode("disk", &m), 0);
	ck_assert_int_eq(m, SCRATCH_DISK);
	ck_assert_int_eq(scratch_parse_mode("tmpfs", &m), 0);
	ck_assert_int_eq(m, SCRATCH_TMPFS);
	ck_assert_int_eq(scratch_parse_mode("none", &m), 0);
	ck_assert_int_eq(m, SCRATCH_NONE);
	ck_assert_int_eq(scratch_parse_mode("Disk", &m), -EINVAL);
	ck_assert_int_eq(scratch_parse_mode(NULL, &m), -EINVAL);
}
END_TEST

START_TEST(test_setup_tmpfs_and_none)
{
	struct minivm_config cfg;
	char img[256], cmd[512], err[256];

	minivm_config_init(&cfg);
	cfg.cmdline = "quiet";
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_TMPFS, 32ULL << 20, "/nonexistent", img,
				       sizeof(img), cmd, sizeof(cmd), err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.cmdline, "minivm.scratch=tmpfs:33554432 quiet");
	ck_assert_str_eq(img, "");
	ck_assert_uint_eq(cfg.nr_disks, 0);
	minivm_config_init(&cfg);
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_NONE, 0, "/nonexistent", img, sizeof(img), cmd,
				       sizeof(cmd), err, sizeof(err)), 0);
	ck_assert_ptr_null(cfg.cmdline);
	/* The hint plus a long --cmdline that does not fit. */
	minivm_config_init(&cfg);
	cfg.cmdline = "0123456789012345678901234567890123456789";
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_TMPFS, 0, "/x", img, sizeof(img), cmd, 32,
				       err, sizeof(err)), -E2BIG);
}
END_TEST

START_TEST(test_setup_disk)
{
	char dir[] = "/tmp/minivm-test-scratch-XXXXXX", img[256], cmd[512], err[256], sh[600];
	struct minivm_config cfg;
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	minivm_config_init(&cfg);
	cfg.nr_disks = 2; /* two --disk: the scratch disk is vdd */
	ck_assert_msg(scratch_setup(&cfg, SCRATCH_DISK, 64ULL << 20, dir, img, sizeof(img), cmd,
				    sizeof(cmd), err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.cmdline, "minivm.scratch=vdd");
	ck_assert_uint_eq(cfg.nr_disks, 3);
	ck_assert_ptr_eq(cfg.disks[2].path, img);
	ck_assert(!cfg.disks[2].read_only);
	ck_assert_int_eq(stat(img, &st), 0);
	ck_assert_int_eq(st.st_size, 64LL << 20);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_msg(st.st_blocks * 512 < (4LL << 20), "not sparse: %lld blocks", (long long)st.st_blocks);
	snprintf(sh, sizeof(sh), "PATH=\"$PATH:/sbin:/usr/sbin\" e2fsck -fn '%s' >/dev/null 2>&1", img);
	ck_assert_int_eq(system(sh), 0);
	/* What mkfs.ext4 would make: labelled, checksummed, no journal,
	 * an empty root with lost+found. */
	{
		ext2_filsys fs;
		ext2_ino_t ino;

		ck_assert_int_eq(ext2fs_open(img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
		ck_assert_str_eq((const char *)fs->super->s_volume_name, "minivm-scratch");
		ck_assert(ext2fs_has_feature_metadata_csum(fs->super));
		ck_assert(ext2fs_has_feature_extents(fs->super));
		ck_assert(!ext2fs_has_feature_journal(fs->super));
		ck_assert_uint_eq(fs->blocksize, 4096);
		ck_assert_uint_eq(fs->super->s_inodes_count, (64U << 20) / 16384);
		ck_assert_int_eq(ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, 0, &ino), 0);
		ck_assert_int_eq(ext2fs_close_free(&fs), 0);
	}
	/* A second one in the same directory: the file exists, refused. */
	minivm_config_init(&cfg);
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_DISK, 64ULL << 20, dir, img, sizeof(img), cmd,
				       sizeof(cmd), err, sizeof(err)), -EEXIST);
	ck_assert_str_eq(img, "");
	snprintf(sh, sizeof(sh), "%s/" SCRATCH_IMAGE_NAME, dir);
	unlink(sh);
	/* Too small, no slot left. */
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_DISK, 1ULL << 20, dir, img, sizeof(img), cmd,
				       sizeof(cmd), err, sizeof(err)), -EINVAL);
	cfg.nr_disks = MINIVM_MAX_DISKS - 1;
	ck_assert_int_eq(scratch_setup(&cfg, SCRATCH_DISK, 64ULL << 20, dir, img, sizeof(img), cmd,
				       sizeof(cmd), err, sizeof(err)), -ENOSPC);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *scratch_suite(void)
{
	Suite *s = suite_create("rootfs_scratch");
	TCase *tc = tcase_create("scratch");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hint_parse);
	tcase_add_test(tc, test_hint_format);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_setup_tmpfs_and_none);
	tcase_add_test(tc, test_setup_disk);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(scratch_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
