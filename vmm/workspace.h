/* The workspace: a host directory packed as a tar stream for the guest, and the guest's copy (a struct fstree) returned as a git-style diff or applied back to the host directory. */
#ifndef MINIVM_WORKSPACE_H
#define MINIVM_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/fstree.h"

/* Deepest directory walked in HOSTDIR or the guest tree. */
#define WS_DEPTH_MAX 128
/* Most entries walked in HOSTDIR (each of pack, diff, apply). */
#define WS_ENTRIES_MAX (1u << 20)
/* Largest file whose change the diff spells out (text hunks or a git binary
 * patch); a larger changed file is only noted ("Binary files ... differ"),
 * which git apply refuses. */
#define WS_DIFF_FILE_MAX (64u << 20)
/* Largest .gitignore read. */
#define WS_GITIGNORE_MAX (1u << 20)
/* Most edits (Myers' D) the line diff searches; beyond, one hunk replaces the file. */
#define WS_DIFF_D_MAX 2000

struct ws_stats {
	uint64_t added, modified, deleted; /* files (regular or symlink) */
	uint64_t binary;  /* of those, changes shown as binary */
	uint64_t skipped; /* sockets, fifos, devices left out (either side) */
	uint64_t ignored; /* paths left out by .gitignore (respect_gitignore) */
};

/*
 * Which paths take part, the same for ws_pack, ws_diff and ws_apply:
 * with respect_gitignore, nothing git ignores (the .gitignore files of
 * HOSTDIR, read as the walk enters each directory; not .git/info/exclude
 * nor core.excludesFile) and no ".git" at any depth. ws_pack without
 * respect_gitignore takes everything, ".git" included; ws_diff and
 * ws_apply always leave every ".git" alone. A path ignored as it is on
 * either side (host or guest) is left out on both.
 */

/*
 * Packs HOSTDIR as a tar stream written through write(ctx, buf, len)
 * (returns 0 or -errno): every directory, regular file (with its data)
 * and symlink (as a link, never followed) below HOSTDIR, depth first in
 * name order (strcmp), without an entry for HOSTDIR itself, with modes,
 * mtimes, owner 0:0, then the end-of-archive marker. Other file types are
 * skipped and counted in st->skipped (st may be NULL). A file that
 * changes size while read is an error. 0 or -errno with a message naming
 * the path in err.
 */
int ws_pack(const char *hostdir, bool respect_gitignore,
	    int (*write)(void *ctx, const void *buf, size_t len), void *ctx, struct ws_stats *st,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Compares HOSTDIR with guest (the guest's copy, whose root is GUESTDIR;
 * built with oci=false; names are checked again) and writes to out_fd the
 * changes as `git diff --binary --full-index --no-renames` would:
 * "diff --git" headers (C-quoted paths where git quotes them), new/deleted
 * file and old/new mode lines (100644, 100755, 120000 for symlinks whose
 * target is their content), index lines, unified hunks with 3 lines of
 * context from a Myers line diff, "\ No newline at end of file", binary
 * files (a NUL in the first 8000 bytes) as a GIT binary patch (literal,
 * both directions), a type change as a deletion then an addition. Empty
 * directories do not appear (git has none). Paths in name order per
 * directory. `git apply` in a copy of HOSTDIR turns it into the guest's
 * copy (files over WS_DIFF_FILE_MAX excepted). Reads HOSTDIR, never
 * writes it. Fills *st (may be NULL). 0 or -errno with a message in err.
 */
int ws_diff(const char *hostdir, bool respect_gitignore, struct fstree *guest, int out_fd,
	    struct ws_stats *st, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Makes HOSTDIR equal to guest (paths left alone as above): deletes what
 * the guest lacks, makes directories, writes changed files under a
 * temporary name then renames it over the old one (same directory),
 * recreates symlinks the same way, sets permission bits (& 0777). Every
 * path is reached by openat from a descriptor of HOSTDIR with
 * O_NOFOLLOW (and O_DIRECTORY for directories): a symlink in HOSTDIR is
 * replaced or removed, never followed, and nothing outside HOSTDIR is
 * written. A directory the guest replaced by a file but that still holds
 * ignored paths is an error. Not atomic as a whole: on error, what was
 * applied so far stays. Fills *st (may be NULL). 0 or -errno with a
 * message naming the path in err.
 */
int ws_apply(const char *hostdir, bool respect_gitignore, struct fstree *guest,
	     struct ws_stats *st, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
