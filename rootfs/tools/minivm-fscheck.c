/* minivm-fscheck: walks a tree (default /) and reports shells, package managers, setuid/setgid files and unsticky world-writable directories. */
/*
 * The hardened images' check from the inside: the integration tests run it
 * through the agent in a booted guest (there is no shell to run find).
 * Usage: minivm-fscheck [ROOT]. Prints one line per finding ("PATH: why")
 * and a summary; exits 0 when nothing was found, 1 when something was, 2
 * on error. /dev and kernel file systems (proc, sysfs, devpts, cgroup) are
 * not entered. Not nftw(FTW_MOUNT): on an overlay root, files report their
 * layer's st_dev, so a same-device walk would skip nearly everything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define FSCHECK_MAX_DEPTH 64
#define FSCHECK_PATH_MAX 4096

static const char *const fscheck_names[] = {
	/* shells, and what runs as one */
	"sh", "bash", "dash", "ash", "busybox", "zsh", "ksh", "ksh93", "mksh", "pdksh", "lksh",
	"csh", "tcsh", "fish", "rbash", "posh", "yash", "hush", "msh", "oksh", "rc", "es",
	"sash", "toybox",
	/* package managers */
	"dpkg", "dpkg-deb", "dpkg-query", "apt", "apt-get", "apt-cache", "aptitude", "rpm",
	"yum", "dnf", "apk", "opkg", "pip", "pip3", "easy_install",
};

/* Kernel file systems: their files are not the image's. */
static const unsigned long fscheck_skip_fs[] = {
	0x9fa0,     /* proc */
	0x62656572, /* sysfs */
	0x1cd1,     /* devpts */
	0x27e0eb,   /* cgroup */
	0x63677270, /* cgroup2 */
	0x64626720, /* debugfs */
	0x73636673, /* securityfs */
};

struct fscheck {
	unsigned long entries, findings, errors;
	char devpath[FSCHECK_PATH_MAX];
};

static void fscheck_entry(struct fscheck *c, const char *path, const char *base,
			  const struct stat *st)
{
	c->entries++;
	for (size_t i = 0; i < sizeof(fscheck_names) / sizeof(fscheck_names[0]); i++) {
		if (strcmp(base, fscheck_names[i]) == 0) {
			printf("%s: named like a shell or a package manager\n", path);
			c->findings++;
		}
	}
	if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID))) {
		printf("%s: setuid or setgid (mode %04o)\n", path, (unsigned int)(st->st_mode & 07777));
		c->findings++;
	}
	if (S_ISDIR(st->st_mode) && (st->st_mode & S_IWOTH) && !(st->st_mode & S_ISVTX)) {
		printf("%s: world-writable directory without the sticky bit\n", path);
		c->findings++;
	}
	if (S_ISREG(st->st_mode) && (st->st_mode & S_IWOTH)) {
		printf("%s: world-writable file\n", path);
		c->findings++;
	}
}

static int fscheck_skip_dir(const struct fscheck *c, const char *path, int fd)
{
	struct statfs sfs;

	if (strcmp(path, c->devpath) == 0)
		return 1;
	if (fstatfs(fd, &sfs) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(fscheck_skip_fs) / sizeof(fscheck_skip_fs[0]); i++)
		if ((unsigned long)sfs.f_type == fscheck_skip_fs[i])
			return 1;
	return 0;
}

/* path (len bytes) is a directory already counted; walk its children. */
static void fscheck_dir(struct fscheck *c, char *path, size_t len, int depth)
{
	struct dirent *d;
	size_t base;
	DIR *dir;
	int fd;

	if (depth > FSCHECK_MAX_DEPTH) {
		printf("%s: nested deeper than %d, not entered\n", path, FSCHECK_MAX_DEPTH);
		c->errors++;
		return;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		printf("%s: cannot be opened: %s\n", path, strerror(errno));
		c->errors++;
		return;
	}
	if (fscheck_skip_dir(c, path, fd)) {
		close(fd);
		return;
	}
	dir = fdopendir(fd);
	if (!dir) {
		printf("%s: cannot be read: %s\n", path, strerror(errno));
		c->errors++;
		close(fd);
		return;
	}
	/* Children are path + "/" + name (no second slash after a root "/"). */
	base = len;
	if (path[base - 1] != '/')
		path[base++] = '/';
	while ((d = readdir(dir)) != NULL) {
		size_t n = strlen(d->d_name);
		struct stat st;

		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (base + n >= FSCHECK_PATH_MAX) {
			path[base] = '\0';
			printf("%s%s: path too long\n", path, d->d_name);
			c->errors++;
			continue;
		}
		memcpy(path + base, d->d_name, n + 1);
		if (lstat(path, &st) != 0) {
			printf("%s: cannot be read: %s\n", path, strerror(errno));
			c->errors++;
		} else {
			fscheck_entry(c, path, d->d_name, &st);
			if (S_ISDIR(st.st_mode))
				fscheck_dir(c, path, base + n, depth + 1);
		}
	}
	path[len] = '\0';
	closedir(dir);
}

int main(int argc, char **argv)
{
	static struct fscheck c;
	static char path[FSCHECK_PATH_MAX];
	const char *root = argc > 1 ? argv[1] : "/";
	struct stat st;
	size_t len = strlen(root);

	if (argc > 2 || len == 0 || len >= FSCHECK_PATH_MAX - 8) {
		fprintf(stderr, "usage: minivm-fscheck [ROOT]\n");
		return 2;
	}
	if (lstat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "minivm-fscheck: %s: not a directory\n", root);
		return 2;
	}
	snprintf(c.devpath, sizeof(c.devpath), "%s%sdev", root, root[len - 1] == '/' ? "" : "/");
	memcpy(path, root, len + 1);
	fscheck_entry(&c, root, "", &st);
	fscheck_dir(&c, path, len, 0);
	printf("minivm-fscheck: %lu entries under %s, %lu finding%s, %lu unreadable\n", c.entries,
	       root, c.findings, c.findings == 1 ? "" : "s", c.errors);
	return c.findings || c.errors ? 1 : 0;
}
