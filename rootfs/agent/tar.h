/* ustar/PAX tar: a push reader (bytes in, entries out; hostile input bounded) and a header writer. Shared by the host (OCI layers, --save, workspaces) and the guest's tar tool. Pure. */
#ifndef MINIVM_TAR_H
#define MINIVM_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TAR_BLOCK 512
/* Longest path or link target accepted or written (bytes, without NUL). */
#define TAR_PATH_MAX 4095
/* Most bytes tar_write_header writes for one entry (PAX header + ustar). */
#define TAR_HDR_MAX (12 * 1024)
/* The end-of-archive marker: two zero blocks. */
#define TAR_END_SIZE (2 * TAR_BLOCK)
/* Most bytes of one PAX extended header the reader accepts. */
#define TAR_PAX_MAX (64 * 1024)

/* OCI whiteouts (image-spec layer.md). */
#define TAR_WH_PREFIX ".wh."
#define TAR_WH_OPAQUE ".wh..wh..opq"

enum tar_type {
	TAR_REG = 0,
	TAR_DIR,
	TAR_SYMLINK,
	TAR_HARDLINK,
	TAR_CHR,
	TAR_BLK,
	TAR_FIFO,
};

struct tar_entry {
	enum tar_type type;
	/* Cleaned (tar_path_clean): relative, no "", "." or ".." components,
	 * no leading "./" or "/", no trailing or doubled '/'. The root
	 * directory itself ("." or "./" in an archive) is "". */
	char path[TAR_PATH_MAX + 1];
	/* TAR_SYMLINK: the target exactly as written (not cleaned, may be
	 * absolute). TAR_HARDLINK: the linked entry's path, cleaned like path.
	 * "" otherwise. */
	char link[TAR_PATH_MAX + 1];
	uint32_t mode; /* permission bits only (& 07777) */
	uint32_t uid, gid;
	int64_t mtime; /* seconds since the epoch */
	uint64_t size; /* data bytes that follow: TAR_REG only, 0 for every other type */
	uint32_t devmajor, devminor; /* TAR_CHR / TAR_BLK */
};

/*
 * What the reader calls, in archive order: entry() once per entry, then
 * data() zero or more times with that entry's bytes (exactly e->size in
 * total, in order). A callback returning non-zero (a negative errno) stops
 * the reader: tar_reader_feed returns that value. The reader's message then
 * names the entry; the callback may put its own in tar_reader_error's buffer
 * through tar_reader_set_error.
 */
struct tar_reader_ops {
	int (*entry)(void *ctx, const struct tar_entry *e);
	int (*data)(void *ctx, const void *buf, size_t len);
};

struct tar_reader;

/* A reader calling ops with ctx. 0 or -ENOMEM. */
int tar_reader_new(const struct tar_reader_ops *ops, void *ctx, struct tar_reader **out)
	__attribute__((warn_unused_result));
void tar_reader_free(struct tar_reader *r);

/*
 * Feeds the next len bytes of the archive (any split: a byte at a time
 * works). Returns 0, or a negative errno once the archive is bad (every
 * later call returns the same): -EBADMSG (bad checksum, bad number field,
 * a PAX record that does not parse, a type it does not know), -EINVAL (a
 * path or hardlink target that is absolute or has a ".." component),
 * -ENAMETOOLONG, -E2BIG (a PAX header over TAR_PAX_MAX), or a callback's
 * value. Bytes after the end-of-archive marker are ignored. Also refused
 * (-EBADMSG): PAX GNU.sparse.* records, device numbers over 07777777
 * (what the writer can write), a header after a lone zero block, the
 * end marker right after an extended header; (-EINVAL) an empty symlink
 * or hardlink target, an empty path on anything but a directory (the
 * root). PAX records for other keys are ignored, 'g' headers skipped;
 * PAX and GNU 'L'/'K' values beat the ustar fields, and when both name
 * the path the metadata header nearer the entry wins.
 */
int tar_reader_feed(struct tar_reader *r, const void *buf, size_t len)
	__attribute__((warn_unused_result));
/*
 * End of input. 0 if it ended at an entry boundary (with or without the
 * end-of-archive marker), -EPIPE if it ended inside a header, a PAX
 * header or an entry's data (a truncated archive), or the earlier error.
 */
int tar_reader_finish(struct tar_reader *r) __attribute__((warn_unused_result));
/* One line saying what went wrong and at which entry ("" if nothing did). */
const char *tar_reader_error(const struct tar_reader *r);
/* For callbacks: set the message tar_reader_error returns (printf-style). */
void tar_reader_set_error(struct tar_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Entries delivered so far. */
uint64_t tar_reader_entries(const struct tar_reader *r);

/*
 * Cleans an archive path into out (outsz bytes, NUL-terminated): drops a
 * leading "./", "." components, doubled and trailing '/'. Refuses with
 * -EINVAL an absolute path or any ".." component, with -ENAMETOOLONG one
 * longer than TAR_PATH_MAX or outsz. "." and "./" clean to "".
 */
int tar_path_clean(const char *in, char *out, size_t outsz) __attribute__((warn_unused_result));

/*
 * Writes e's header into out (outsz >= TAR_HDR_MAX): a PAX 'x' header
 * first when the path, link, size, ids or mtime do not fit ustar, then
 * the ustar block. e->path must be clean; a directory's name gets its
 * trailing '/'. Returns the bytes written (a multiple of TAR_BLOCK) or
 * -EINVAL / -ENAMETOOLONG. Deterministic: same entry, same bytes (no
 * atime/ctime, uname/gname empty).
 */
ssize_t tar_write_header(const struct tar_entry *e, uint8_t *out, size_t outsz)
	__attribute__((warn_unused_result));
/* Zero bytes to write after size bytes of data to end the entry's last block. */
size_t tar_pad(uint64_t size);

#endif
