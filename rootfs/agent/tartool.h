/* The guest's tar tool: `/proc/self/exe tar create|extract ...`, run by the agent to move files in and out of the guest as tar streams. */
#ifndef MINIVM_TARTOOL_H
#define MINIVM_TARTOOL_H

/*
 * The tool's entry point; argv[0] is "tar" (init's main passes its own
 * argv + 1 when argv[1] is "tar", before any PID 1 work: the tool never
 * mounts, reboots or touches the ports). Runs in a child of the agent,
 * so it may change process-wide state: it ignores SIGPIPE.
 *
 *   tar create [--overlay] [--exclude PATH]... DIR
 *     Writes to stdout a tar stream (tar.h's writer) of DIR's contents:
 *     paths relative to DIR, each directory's entries sorted by name
 *     (bytewise), depth first, DIR itself not emitted; regular files,
 *     directories, symlinks, hard links (a later name of an inode with
 *     st_nlink > 1 is a TAR_HARDLINK to its first), char and block
 *     devices, fifos (sockets are skipped); mode, uid, gid, mtime. Never
 *     follows a symlink below DIR; at most TARTOOL_DEPTH_MAX levels deep.
 *     --exclude PATH (relative to DIR, cleaned like an archive path)
 *     skips that entry and everything below it.
 *     --overlay: DIR is an overlayfs upper directory and the stream is an
 *     OCI layer (image-spec layer.md): a whiteout (char device 0:0) NAME
 *     becomes an empty regular file .wh.NAME (0644, 0:0), emitted before
 *     its directory's other entries; an opaque directory (xattr
 *     trusted.overlay.opaque or user.overlay.opaque = "y") is followed by
 *     an empty DIR/.wh..wh..opq. Refused: a name starting with ".wh." in
 *     DIR (it would read as a whiteout), and overlay xattrs that mean the
 *     layer is not self-contained (redirect, metacopy, any this tool does
 *     not know); origin, impure, nlink, upper, uuid and protattr are
 *     bookkeeping and ignored.
 *
 *   tar extract [--owner UID:GID] DIR
 *     Reads a tar stream from stdin (tar.h's reader) and creates its
 *     entries under DIR (made like mkdir -p, 0755, if missing):
 *     directories, regular files (written to a temporary name in their
 *     directory, then renamed over the final one), symlinks (created, never
 *     followed), hard links to entries inside DIR; mode, mtime, and the
 *     owner from the archive (when running as root) or from --owner
 *     (always). Every path component is opened with O_NOFOLLOW |
 *     O_DIRECTORY from DIR's fd: a symlink or other non-directory where a
 *     directory is needed is an error, as is a directory where a
 *     non-directory goes; absolute paths and ".." are refused, and so are
 *     devices and fifos. Missing parents are made 0755 (owned by --owner
 *     if given). Directory modes and mtimes are applied once the stream
 *     has ended (deepest first), so that a 0555 directory can be filled.
 *
 * Returns the process exit status: 0 done, 1 error (one line on stderr,
 * prefixed "minivm-init tar: ", naming the entry at fault; a create cut
 * short by a write error such as EPIPE is one), 2 usage. After an extract
 * error, what was extracted before it stays; no temporary file does.
 */
int tartool_main(int argc, char **argv);

/* Deepest directory nesting below DIR that create walks (one fd per level). */
#define TARTOOL_DEPTH_MAX 256

#endif
