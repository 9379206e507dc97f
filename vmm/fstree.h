/* An in-memory file tree (a root filesystem or a workspace being assembled from tar streams): nodes by path, file data spooled to one unlinked temporary file, OCI layer semantics (whiteouts, opaque directories) when applying a layer. */
#ifndef MINIVM_FSTREE_H
#define MINIVM_FSTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rootfs/agent/tar.h"

/*
 * One file, directory, link or special file. Children of a directory are
 * a singly linked list sorted by name (strcmp), so walks are deterministic.
 * Hard links: every name of one file is its own node with the same
 * link_id (non-zero) and the same data; link_id 0 means one name.
 */
struct fstree_node {
	enum tar_type type; /* never TAR_HARDLINK in a tree (see link_id) */
	char *name;         /* one path component; "" for the root */
	char *link;         /* TAR_SYMLINK: its target as written; else NULL */
	uint32_t mode;      /* permission bits (& 07777) */
	uint32_t uid, gid;
	int64_t mtime;
	uint64_t size;      /* TAR_REG: data bytes */
	uint64_t data_off;  /* TAR_REG: where its bytes start in the spool */
	uint32_t devmajor, devminor;
	uint64_t link_id;
	bool opaque;        /* TAR_DIR: this layer made it opaque (fstree_layer_end clears) */
	/* The last layer (fstree_layer_begin count) that added, replaced or
	 * added something under this node; whiteouts and opaque directories
	 * remove only what has a smaller value. */
	uint32_t layer;
	struct fstree_node *parent; /* NULL for the root */
	struct fstree_node *child;  /* first child (TAR_DIR) */
	struct fstree_node *next;   /* next sibling */
	/* Internal to fstree.c: the previous sibling, the name index's chain,
	 * children waiting for fstree_layer_end's sort. */
	struct fstree_node *prev_sib, *hash_next;
	bool unsorted;
};

struct fstree_limits {
	uint64_t max_nodes; /* 0: 4 M */
	uint64_t max_bytes; /* spooled data, 0: 64 GiB */
};

struct fstree;

/*
 * An empty tree (a root directory, mode 0755, owned by 0:0) spooling file
 * data into an unlinked file in spool_dir (O_TMPFILE, or mkstemp+unlink).
 * lim may be NULL. 0 or -errno with a message in err.
 */
int fstree_new(const char *spool_dir, const struct fstree_limits *lim, struct fstree **out,
	       char *err, size_t errlen) __attribute__((warn_unused_result));
void fstree_free(struct fstree *t);

struct fstree_node *fstree_root(struct fstree *t);
/*
 * The message of the last refused entry or failed call ("" if none), e.g.
 * "entry 'a/b': goes through 'a', which is a symlink". fstree_tar_ops'
 * callbacks only see the tree, so a caller feeding a tar_reader prints
 * this one (what the tree refused) next to tar_reader_error (which names
 * the archive offset). Valid until the next call on t.
 */
const char *fstree_error(const struct fstree *t);
/* The node at a clean relative path ("" is the root), never following symlinks; NULL if none. */
struct fstree_node *fstree_lookup(struct fstree *t, const char *path);
/* The node's path from the root ("" for the root) into buf; -ENAMETOOLONG if it does not fit. */
int fstree_path(const struct fstree_node *n, char *buf, size_t size);
/* Nodes in the tree, and bytes of file data it refers to. */
uint64_t fstree_nodes(const struct fstree *t);
uint64_t fstree_bytes(const struct fstree *t);

/*
 * Applying tar streams. Call order per stream: fstree_layer_begin, then
 * feed a tar_reader made with fstree_tar_ops and ctx = the tree, then
 * fstree_layer_end. With oci true, ".wh.NAME" deletes NAME (and what is
 * under it) from the layers below, ".wh..wh..opq" empties its directory of
 * what lower layers put there (what this layer adds stays), and neither is
 * kept; with oci false such names are ordinary files. An entry replaces
 * what was at its path (a directory over a directory keeps the children
 * and takes the new metadata); missing parent directories are made (0755,
 * 0:0). Refused, with a message naming the entry (tar_reader_error):
 * a path that goes through a symlink or a non-directory (-ENOTDIR), a
 * hardlink to a path that is not a regular file in the tree (-ENOENT,
 * -EINVAL), a relative symlink whose target climbs above the root
 * (-EINVAL: "escapes the root"; absolute targets are resolved in the
 * guest's root and are kept), a whiteout of the root or with other bits
 * (-EINVAL: ".wh." alone, ".wh..wh.X" other than the opaque marker, a
 * whiteout that is not an empty regular file or hardlink), a component
 * over 255 bytes (-ENAMETOOLONG), the limits (-E2BIG, -EFBIG). The
 * escape check is lexical (from the link's directory, ".." counted).
 * A hard link takes its target's metadata and data (one inode); a
 * hardlink entry naming its own path is a no-op.
 * A whiteout's directory is made if missing, as it would be in an
 * overlayfs upper layer. fstree_layer_end fails with -EPIPE if a file's
 * data is incomplete.
 *
 * Cost: names are found through a hash index (seeded per tree); inside
 * a layer new children are linked unsorted and each directory touched is
 * sorted once by fstree_layer_end, so child lists are in name order
 * whenever no layer is open (fstree_write_tar sorts first if one is).
 * Outside a layer (fstree_add alone) each insertion finds its place by a
 * scan starting at the previous insertion: linear for sorted input.
 */
void fstree_layer_begin(struct fstree *t, bool oci);
int fstree_layer_end(struct fstree *t) __attribute__((warn_unused_result));
extern const struct tar_reader_ops fstree_tar_ops;

/*
 * Adds one node as a tar entry would (type may be TAR_HARDLINK), for code
 * that builds a tree without an archive; data for a TAR_REG follows with
 * fstree_add_data (exactly e->size bytes) before the next call.
 */
int fstree_add(struct fstree *t, const struct tar_entry *e, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int fstree_add_data(struct fstree *t, const void *buf, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Reads up to len bytes of a TAR_REG node's data from off; the bytes read or -errno. */
ssize_t fstree_read(struct fstree *t, const struct fstree_node *n, uint64_t off, void *buf,
		    size_t len) __attribute__((warn_unused_result));

/*
 * Writes the tree (or the subtree at n, its entries named by their full
 * path from the root, n's own entry first; NULL: the whole tree, without
 * an entry for the root) as a tar stream to write(ctx, buf, len) (which
 * returns 0 or -errno), depth first, children in name order, hard links as
 * TAR_HARDLINK entries after their first name, then the end-of-archive
 * marker. Deterministic. 0 or the first error.
 */
int fstree_write_tar(struct fstree *t, const struct fstree_node *n,
		     int (*write)(void *ctx, const void *buf, size_t len), void *ctx)
	__attribute__((warn_unused_result));

#endif
