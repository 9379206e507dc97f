/* minivm-fscheck: walks a tree (default /) on one file system and reports shells, package managers, setuid/setgid files and unsticky world-writable directories. */
/*
 * The hardened images' check from the inside: the integration tests run it
 * through the agent in a booted guest (there is no shell to run find).
 * Usage: minivm-fscheck [ROOT]. Prints one line per finding ("PATH: why")
 * and a summary; exits 0 when nothing was found, 1 when something was, 2
 * on error. Other file systems (/proc, /sys, /dev, tmpfs mounts) are not
 * entered.
 */
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const fscheck_names[] = {
	/* shells, and what runs as one */
	"sh", "bash", "dash", "ash", "busybox", "zsh", "ksh", "ksh93", "mksh", "pdksh", "lksh",
	"csh", "tcsh", "fish", "rbash", "posh", "yash", "hush", "msh", "oksh", "rc", "es",
	"sash", "toybox",
	/* package managers */
	"dpkg", "dpkg-deb", "dpkg-query", "apt", "apt-get", "apt-cache", "aptitude", "rpm",
	"yum", "dnf", "apk", "opkg", "pip", "pip3", "easy_install",
};

static unsigned long fscheck_entries, fscheck_findings;

static int fscheck_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *base = path + ftw->base;

	fscheck_entries++;
	if (flag == FTW_DNR || flag == FTW_NS) {
		printf("%s: cannot be read\n", path);
		fscheck_findings++;
		return 0;
	}
	for (size_t i = 0; i < sizeof(fscheck_names) / sizeof(fscheck_names[0]); i++) {
		if (strcmp(base, fscheck_names[i]) == 0) {
			printf("%s: named like a shell or a package manager\n", path);
			fscheck_findings++;
		}
	}
	if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID))) {
		printf("%s: setuid or setgid (mode %04o)\n", path, (unsigned int)(st->st_mode & 07777));
		fscheck_findings++;
	}
	if (S_ISDIR(st->st_mode) && (st->st_mode & S_IWOTH) && !(st->st_mode & S_ISVTX)) {
		printf("%s: world-writable directory without the sticky bit\n", path);
		fscheck_findings++;
	}
	if (S_ISREG(st->st_mode) && (st->st_mode & S_IWOTH)) {
		printf("%s: world-writable file\n", path);
		fscheck_findings++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "/";

	if (argc > 2) {
		fprintf(stderr, "usage: minivm-fscheck [ROOT]\n");
		return 2;
	}
	if (nftw(root, fscheck_visit, 32, FTW_PHYS | FTW_MOUNT) != 0) {
		perror("minivm-fscheck: nftw");
		return 2;
	}
	printf("minivm-fscheck: %lu entries under %s, %lu finding%s\n", fscheck_entries, root,
	       fscheck_findings, fscheck_findings == 1 ? "" : "s");
	return fscheck_findings ? 1 : 0;
}
