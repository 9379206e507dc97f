/* `minivm rootfs verify`: compares an ext4 image (read with libext2fs) with its SBOM and names every difference. */
#ifndef MINIVM_ROOTFS_VERIFY_H
#define MINIVM_ROOTFS_VERIFY_H

#include <stddef.h>

#include "vmm/sbom.h"

enum rootfs_diff_kind {
	ROOTFS_DIFF_MISSING = 0, /* in the SBOM, not in the image */
	ROOTFS_DIFF_EXTRA,       /* in the image, not in the SBOM */
	ROOTFS_DIFF_TYPE,        /* regular / directory / symlink / other differ */
	ROOTFS_DIFF_MODE,        /* permission bits (with setuid, setgid, sticky) */
	ROOTFS_DIFF_OWNER,       /* uid or gid */
	ROOTFS_DIFF_HASH,        /* a regular file's SHA-256 */
	ROOTFS_DIFF_TARGET,      /* a symlink's target */
	ROOTFS_DIFF_UNREADABLE,  /* the image's file could not be read */
};

struct rootfs_diff {
	enum rootfs_diff_kind kind;
	const char *path;
	const char *detail; /* "sbom 0755, image 4755", "sha256 sbom ab.., image cd.."; never NULL */
};

/* Called once per difference, in path order; strings live for the call only. */
typedef void (*rootfs_diff_fn)(void *ctx, const struct rootfs_diff *d);

/* The largest tree walked: entries, depth. Beyond them the image is refused. */
#define ROOTFS_VERIFY_MAX_ENTRIES (2u * SBOM_MAX_FILES)
#define ROOTFS_VERIFY_MAX_DEPTH 128

/*
 * Opens the ext2/3/4 image read-only, walks every path from its root and
 * compares each with the SBOM: type, mode (07777), uid, gid, SHA-256 of
 * regular files' contents, symlink targets; a path on one side only is
 * MISSING or EXTRA. Calls fn for each difference (fn may be NULL) and
 * stores their number in *ndiffs. Returns 0 when the comparison ran
 * (whatever *ndiffs is), or a negative errno with err set when the image
 * cannot be read as a file system (the message names libext2fs' error).
 */
int rootfs_verify(const char *image, const struct sbom *sbom, rootfs_diff_fn fn, void *ctx,
		  size_t *ndiffs, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The subcommand: argv = { "verify", IMAGE, SBOM } (after "minivm rootfs").
 * Prints each difference to stdout as "KIND PATH: DETAIL" and a summary to
 * stderr. Returns 0 (image matches), 1 (differences), 125 (usage or error).
 */
int rootfs_verify_main(int argc, char **argv);

#endif
