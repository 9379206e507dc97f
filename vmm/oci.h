/* OCI image layouts in and out: parse references, open and verify an image, unpack its layers into an fstree, build a cached bootable ext4 root, and save a new image atomically. */
#ifndef MINIVM_OCI_H
#define MINIVM_OCI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/fstree.h"
#include "vmm/json.h"
#include "vmm/sha256.h"

/* Limits on what an image may hold (hostile input is bounded by these). */
#define OCI_JSON_MAX (4u << 20)  /* bytes of index.json, a manifest or a config */
#define OCI_MAX_LAYERS 256
#define OCI_MAX_MANIFESTS 1024   /* entries of one image index */
#define OCI_TAG_MAX 128
#define OCI_MEDIA_TYPE_MAX 255

/* Media types this code reads (and, the OCI ones, writes). */
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define OCI_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_ANNOT_REF_NAME "org.opencontainers.image.ref.name"

enum oci_ref_kind {
	OCI_REF_DIR = 1,     /* oci:DIR[:TAG] */
	OCI_REF_ARCHIVE = 2, /* oci-archive:FILE[:TAG] */
};

struct oci_ref {
	enum oci_ref_kind kind;
	char path[PATH_MAX];
	char tag[OCI_TAG_MAX + 1]; /* "" when none was given */
};

/*
 * Parses "oci:DIR[:TAG]" or "oci-archive:FILE[:TAG]". The rule for paths
 * that contain ':': TAG is what follows the LAST ':' when that text is a
 * valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}, hence no '/');
 * otherwise the whole rest is the path and there is no tag. So
 * "oci:a:b/c" is the path "a:b/c", and a path ending in ":word" must be
 * written with a tag ("oci:dir:x:latest") or as "./dir:x/". The path may
 * not be empty. Pure. 0, or -EINVAL with a message (anything else).
 */
int oci_ref_parse(const char *s, struct oci_ref *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* True when tag is a valid OCI tag (see above). */
bool oci_tag_valid(const char *tag);

/* A content descriptor (only sha256 digests are accepted). */
struct oci_desc {
	char media_type[OCI_MEDIA_TYPE_MAX + 1];
	char hex[SHA256_HEX_SIZE]; /* 64 lowercase hex digits, validated */
	uint64_t size;
};

/*
 * Pure parsers over a buffer (no I/O; fuzzed). Each returns 0 or a
 * negative errno with a one-line message in err naming what is wrong.
 *
 * oci_index_select: buf is an image index (index.json or a nested index).
 * With by_platform false it picks the manifest whose annotation
 * org.opencontainers.image.ref.name equals tag; tag NULL or "": the only
 * manifest, else the one tagged "latest", else -EINVAL listing the tags.
 * With by_platform true (a nested index) it picks the linux/amd64 entry
 * (tag ignored). The picked descriptor's media type is a manifest or an
 * index type (OCI or Docker); -ENOENT when nothing matches.
 */
int oci_index_select(const char *buf, size_t len, const char *tag, bool by_platform,
		     struct oci_desc *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

struct oci_manifest {
	struct oci_desc config;
	uint32_t nr_layers;
	struct oci_desc layers[OCI_MAX_LAYERS];
};

/*
 * Parses an image manifest (OCI or Docker schema2): schemaVersion 2, a
 * config descriptor with a config media type, up to OCI_MAX_LAYERS layer
 * descriptors whose media types are uncompressed or gzip tar (anything
 * else, zstd, encrypted, foreign/nondistributable: -ENOTSUP "blob
 * sha256:...: unsupported media type X"). Fills *out (caller's memory).
 */
int oci_manifest_parse(const char *buf, size_t len, struct oci_manifest *out, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/* A parsed image config. Strings point into doc; free with oci_config_free. */
struct oci_config {
	struct json_doc *doc;
	uint32_t nr_diff_ids;
	char (*diff_ids)[SHA256_HEX_SIZE]; /* rootfs.diff_ids as lowercase hex */
	uint32_t nr_env;
	const char **env;        /* config.Env, "KEY=VALUE" each (may be 0 of them) */
	const char *working_dir; /* config.WorkingDir or NULL */
	const char *user;        /* config.User or NULL */
};

/*
 * Parses an image config: rootfs.type "layers", rootfs.diff_ids all
 * "sha256:<hex>"; config.Env (strings), WorkingDir, User optional.
 * Allocates *out (oci_config_free), NULL on error.
 */
int oci_config_parse(const char *buf, size_t len, struct oci_config **out, char *err,
		     size_t errlen) __attribute__((warn_unused_result));
void oci_config_free(struct oci_config *c);

/* An opened, verified image. */
struct oci_image;

/*
 * Opens the image ref names: reads oci-layout (imageLayoutVersion 1.0.0),
 * index.json, the manifest (following one nested index, linux/amd64), the
 * config (rootfs.diff_ids count must equal the layer count), and verifies
 * every blob (config and layers: regular file, size and sha256 against the
 * descriptor) before returning. Blob paths are only ever
 * blobs/sha256/<hex> built from validated digests. The layer blobs stay
 * open, so what was verified is what oci_unpack reads.
 * For an oci-archive, only oci-layout, index.json and blobs/sha256/<hex>
 * regular files are extracted, into a fresh directory under tmpdir (other
 * regular files are skipped; links, devices and duplicates refused); it
 * is removed by oci_close. 0 with *out, or -errno with a message naming
 * the file/blob at fault.
 */
int oci_open(const struct oci_ref *ref, const char *tmpdir, struct oci_image **out, char *err,
	     size_t errlen) __attribute__((warn_unused_result));
void oci_close(struct oci_image *img);

/* "sha256:<hex>" of the manifest (valid until oci_close). */
const char *oci_image_digest(const struct oci_image *img);
/* The parsed manifest and config (valid until oci_close). */
const struct oci_manifest *oci_image_manifest(const struct oci_image *img);
const struct oci_config *oci_image_config(const struct oci_image *img);

/*
 * Applies the layers in order to t (normally a fresh tree): gzip
 * inflated with zlib, each tar through fstree_tar_ops with OCI whiteouts
 * honoured, each layer's uncompressed sha256 checked against the
 * config's diff_ids and its compressed bytes against the manifest again.
 * A truncated gzip stream, trailing bytes after it, or a tar/tree error
 * is an error naming the blob (and the entry). On error t holds a partial
 * result: free it. 0 or -errno.
 */
int oci_unpack(struct oci_image *img, struct fstree *t, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * The bootable root for img: <cache_dir>/oci/<manifest hex>-<first 16
 * hex of sha256(agent_bin)>.img. If it exists it is returned at once;
 * otherwise the layers are unpacked, agent_bin added as
 * /sbin/minivm-init (0755, 0:0; through a /sbin symlink as the guest
 * would resolve it), /dev /proc /sys /run /tmp /mnt made when missing
 * (0755, /tmp 01777), and the tree written with ext4img_write to a temp
 * file in the same directory, fsynced and renamed into place (concurrent
 * callers are safe: the last rename wins with identical content). The
 * file is never modified afterwards. out_path gets the path.
 */
int oci_rootfs_image(struct oci_image *img, const char *cache_dir, const char *agent_bin,
		     char *out_path, size_t out_size, char *err, size_t errlen)
	__attribute__((warn_unused_result));

struct oci_save_req {
	const char *dest;            /* "oci:DIR[:TAG]" or "oci-archive:FILE[:TAG]" */
	struct oci_image *base;      /* the image the root came from, or NULL */
	const char *base_ext4;       /* or: a plain ext4 root, made the first layer; or NULL */
	int layer_fd;                /* a tar stream (OCI whiteouts) for one new layer; -1: none */
	const char *created;         /* RFC 3339 time for config/history; NULL: now (UTC) */
	const char *created_by;      /* history: the command that made the layer; NULL: "" */
	const char *tmpdir;          /* spool for trees; NULL: the destination's directory */
};

/*
 * Writes a new image to req->dest: the base's layer blobs reused
 * (hard-linked when possible, else copied) or a layer made from
 * base_ext4, plus one layer normalised from layer_fd (parsed into a tree
 * with whiteouts kept as plain names, re-emitted deterministically,
 * gzip with mtime 0). The config is the base config with created,
 * rootfs.diff_ids and history extended, all else kept; without a base
 * config a minimal linux/amd64 one. The index tags the manifest with the
 * dest TAG or "latest". Atomic: built in a sibling ".NAME.minivm-tmp-XXXXXX"
 * and renamed (or exchanged with an existing OCI layout, never with any
 * other directory: -EEXIST), so a kill at any moment leaves the old DEST
 * or the complete new one. 0 or -errno with a message.
 */
int oci_save(const struct oci_save_req *req, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* `minivm image ...` (argv[0] == "image"): export, inspect, --help. 0 / 1 / 2 (usage). */
int oci_image_main(int argc, char **argv);

#endif
