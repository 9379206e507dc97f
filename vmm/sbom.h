/* A root filesystem image's SBOM (CycloneDX 1.5 JSON as rootfs/build.sh writes it): parsed strictly into a sorted file list. */
#ifndef MINIVM_SBOM_H
#define MINIVM_SBOM_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/sha256.h"

/*
 * The format (see rootfs/README.md): a CycloneDX 1.4-1.6 BOM whose
 * top-level "components" are the packages an image is made of (a Debian
 * package: its name and version; the project's own files: "minivm"), each
 * with nested "components" of type "file", one per path in the image:
 *   {"type": "file", "name": "/usr/bin/python3.11",
 *    "hashes": [{"alg": "SHA-256", "content": "<64 hex>"}],   (regular files)
 *    "properties": [{"name": "minivm:file-type", "value": "regular"},
 *                   {"name": "minivm:mode", "value": "0755"},
 *                   {"name": "minivm:uid", "value": "0"},
 *                   {"name": "minivm:gid", "value": "0"},
 *                   {"name": "minivm:symlink-target", "value": "..."}]}  (symlinks)
 * file-type is regular, directory or symlink.
 */

enum sbom_ftype {
	SBOM_REGULAR = 0,
	SBOM_DIRECTORY,
	SBOM_SYMLINK,
};

#define SBOM_MAX_BYTES (64u << 20) /* the largest SBOM read */
#define SBOM_MAX_FILES 1000000u
#define SBOM_PATH_MAX 4096

struct sbom_file {
	const char *path;        /* absolute, normalised ("/", "/a/b"; no ".", "..", "//") */
	enum sbom_ftype type;
	uint32_t mode;           /* permission bits with setuid/setgid/sticky (07777) */
	uint32_t uid, gid;
	uint8_t sha256[SHA256_DIGEST_SIZE]; /* SBOM_REGULAR only */
	const char *target;      /* SBOM_SYMLINK only */
	const char *package;     /* the package it came from ("minivm" for ours) */
	const char *version;     /* its version ("" when none) */
};

struct sbom {
	struct sbom_file *files; /* sorted by path (strcmp), unique */
	size_t nr_files;
	struct json_doc *doc;    /* owns every string above */
};

/*
 * Pure: parses buf[0..len) (at most SBOM_MAX_BYTES) into *out (free with
 * sbom_free). Refuses anything outside the format above with a message in
 * err: not CycloneDX, a file without a known type, a bad mode/uid/gid, a
 * regular file without exactly one SHA-256, a path that is relative,
 * unnormalised or listed twice. Returns 0, -EINVAL, -E2BIG or -ENOMEM.
 */
int sbom_parse(const char *buf, size_t len, struct sbom **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

void sbom_free(struct sbom *s);

/* The entry for path, or NULL. */
const struct sbom_file *sbom_find(const struct sbom *s, const char *path);

/* "regular", "directory", "symlink". */
const char *sbom_ftype_name(enum sbom_ftype t);

#endif
