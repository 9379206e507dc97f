/* The guest's writable layer (--scratch): a sparse ext4 disk the front makes in the run directory, or a tmpfs, announced with minivm.scratch=. */
#include "vmm/scratch.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"

extern char **environ;

int scratch_parse_mode(const char *s, enum scratch_mode *out)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "disk"))
		*out = SCRATCH_DISK;
	else if (!strcmp(s, "tmpfs"))
		*out = SCRATCH_TMPFS;
	else if (!strcmp(s, "none"))
		*out = SCRATCH_NONE;
	else
		return -EINVAL;
	return 0;
}

/* mkfs.ext4 from e2fsprogs: /sbin is not on every user's PATH. */
static const char *scratch_find_mkfs(void)
{
	static const char *const cand[] = { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4" };

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (access(cand[i], X_OK) == 0)
			return cand[i];
	return "mkfs.ext4";
}

/* Runs mkfs.ext4 on path, quietly; 0 or -errno with err set. */
static int scratch_mkfs(const char *path, char *err, size_t errlen)
{
	/* No journal (nothing to recover: the disk dies with the VM), lazy
	 * inode tables (the guest mounts with noinit_itable, so nobody zeroes
	 * them: a fresh sparse file reads as zeros anyway), no reserved blocks. */
	const char *mkfs = scratch_find_mkfs();
	char *const argv[] = {
		(char *)mkfs, "-q", "-F", "-t", "ext4", "-m", "0", "-L", "minivm-scratch",
		"-O", "^has_journal", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
		(char *)path, NULL,
	};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r, st;

	if (posix_spawn_file_actions_init(&fa))
		return -ENOMEM;
	/* Quiet on success; its own messages go to stderr on failure. */
	(void)posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	(void)posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, mkfs, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		snprintf(err, errlen, "--scratch disk: cannot run %s: %s (install e2fsprogs, or use "
			 "--scratch tmpfs)", mkfs, strerror(r));
		return -r;
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "--scratch disk: waitpid: %s", strerror(errno));
			return -errno;
		}
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "--scratch disk: %s %s failed (status %d)", mkfs, path,
			 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return -EIO;
	}
	return 0;
}

int scratch_setup(struct minivm_config *cfg, enum scratch_mode mode, uint64_t size,
		  const char *dir, char *img_path, size_t img_size, char *cmdline_buf,
		  size_t cmdline_size, char *err, size_t errlen)
{
	struct agent_scratch sc = { 0 };
	char hint[AGENT_SCRATCH_VALUE_MAX];
	int n, fd, r;

	if (img_size)
		img_path[0] = '\0';
	if (mode == SCRATCH_NONE || mode == SCRATCH_DEFAULT)
		return 0;
	if (mode == SCRATCH_DISK) {
		unsigned int idx = cfg->nr_disks;

		/* The root is vda, extra disks vdb...; this one comes last. */
		if (idx >= MINIVM_MAX_DISKS - 1) {
			snprintf(err, errlen, "--scratch disk: no disk slot left (%u --disk given)", idx);
			return -ENOSPC;
		}
		if (size < SCRATCH_MIN_SIZE || size > SCRATCH_MAX_SIZE) {
			snprintf(err, errlen, "--scratch-size must be 16M to 1T");
			return -EINVAL;
		}
		n = snprintf(img_path, img_size, "%s/" SCRATCH_IMAGE_NAME, dir);
		if (n < 0 || (size_t)n >= img_size) {
			snprintf(err, errlen, "--scratch disk: run directory path too long");
			return -ENAMETOOLONG;
		}
		fd = open(img_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			snprintf(err, errlen, "--scratch disk: %s: %s", img_path, strerror(errno));
			img_path[0] = '\0';
			return r;
		}
		r = ftruncate(fd, (off_t)size) ? -errno : 0;
		close(fd);
		if (r) {
			snprintf(err, errlen, "--scratch disk: %s: %s", img_path, strerror(-r));
			return r;
		}
		r = scratch_mkfs(img_path, err, errlen);
		if (r)
			return r;
		sc.kind = AGENT_SCRATCH_DISK;
		snprintf(sc.dev, sizeof(sc.dev), "vd%c", 'b' + idx);
		memset(&cfg->disks[idx], 0, sizeof(cfg->disks[idx]));
		cfg->disks[idx].path = img_path;
		cfg->disks[idx].read_only = false;
		cfg->nr_disks = idx + 1;
	} else {
		sc.kind = AGENT_SCRATCH_TMPFS;
		sc.size = size;
	}
	n = agent_scratch_format(&sc, hint, sizeof(hint));
	if (n < 0) {
		snprintf(err, errlen, "--scratch: cannot encode the guest's hint");
		return -EINVAL;
	}
	n = snprintf(cmdline_buf, cmdline_size, MINIVM_SCRATCH_PARAM "%s%s%s", hint,
		     cfg->cmdline ? " " : "", cfg->cmdline ? cfg->cmdline : "");
	if (n < 0 || (size_t)n >= cmdline_size) {
		snprintf(err, errlen, "--cmdline too long");
		return -E2BIG;
	}
	cfg->cmdline = cmdline_buf;
	return 0;
}
