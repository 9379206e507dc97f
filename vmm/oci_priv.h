/* Internals shared by the vmm/oci_*.c files: a deterministic JSON writer, gzip layer writing, file helpers. Not for other modules. */
#ifndef MINIVM_OCI_PRIV_H
#define MINIVM_OCI_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "vmm/oci.h"

int oci_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A compact, deterministic JSON writer into a growing buffer. Calls never
 * fail individually: the first error (-ENOMEM, -E2BIG for nesting) sticks
 * in w->err and oci_jw_finish returns it. Strings must be valid UTF-8
 * (what json.c produced, or our own ASCII); they are escaped per RFC 8259.
 */
#define OCI_JW_DEPTH 80
struct oci_jw {
	char *buf;
	size_t len, cap;
	int err;
	uint32_t depth;
	bool after_key;
	bool first[OCI_JW_DEPTH + 1];
};

void oci_jw_init(struct oci_jw *w);
void oci_jw_begin(struct oci_jw *w, char open);  /* '{' or '[' */
void oci_jw_end(struct oci_jw *w, char close);   /* '}' or ']' */
void oci_jw_key(struct oci_jw *w, const char *key);
void oci_jw_str(struct oci_jw *w, const char *s);
void oci_jw_u64(struct oci_jw *w, uint64_t v);
/* Re-emits a parsed value (numbers exactly as written, keys in order). */
void oci_jw_node(struct oci_jw *w, const struct json_doc *d, const struct json_node *n);
/* A descriptor object {mediaType, digest, size}. */
void oci_jw_desc(struct oci_jw *w, const char *media_type, const char *hex, uint64_t size);
/* 0 and the buffer (caller frees, *len bytes, NUL-terminated), or the sticky error (buffer freed). */
int oci_jw_finish(struct oci_jw *w, char **out, size_t *len) __attribute__((warn_unused_result));

/* write(2) all of buf; 0 or -errno. */
int oci_write_all(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));
/* Removes path and everything under it, never following symlinks. 0 or -errno. */
int oci_rm_rf(const char *path) __attribute__((warn_unused_result));
/* fsync of a directory by path. 0 or -errno. */
int oci_fsync_dir(const char *path) __attribute__((warn_unused_result));
/* Reads a whole regular file of at most max bytes at dirfd/name (NUL-terminated copy). */
int oci_read_small(int dirfd, const char *name, size_t max, char **out, size_t *len,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * A gzip layer being written: bytes of a tar stream in, gzip (mtime 0,
 * deterministic) out to fd, sha256 of both sides kept. oci_gz_write has
 * the shape fstree_write_tar wants.
 */
struct oci_gz {
	z_stream z;
	gz_header hdr;
	bool ready;
	int fd;
	struct sha256 tar_sha, gz_sha;
	uint64_t tar_bytes, gz_bytes;
	uint8_t out[64 * 1024];
};
int oci_gz_begin(struct oci_gz *g, int fd) __attribute__((warn_unused_result));
int oci_gz_write(void *ctx, const void *buf, size_t len);
/* Flushes the stream; fills the digests (hex) and the gzip size. Frees zlib state. */
int oci_gz_end(struct oci_gz *g, char gz_hex[SHA256_HEX_SIZE], char tar_hex[SHA256_HEX_SIZE])
	__attribute__((warn_unused_result));
void oci_gz_abort(struct oci_gz *g);

/* The blob directory fd of an opened image, and its layout path (for linking). */
int oci_image_blobs_fd(const struct oci_image *img);
const char *oci_image_blobs_path(const struct oci_image *img);

#endif
