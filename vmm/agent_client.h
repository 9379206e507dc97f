/* Host-side client of the guest agent: connect over the VMM's hybrid vsock socket, run commands, move files, shut down. */
#ifndef MINIVM_AGENT_CLIENT_H
#define MINIVM_AGENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "rootfs/agent/agent_proto.h"

/*
 * Conventions for every function here:
 * - Blocking, poll()-based, no global state, no threads, no signal
 *   handlers installed: any number of connections may be used from
 *   different threads as long as one connection is used by one thread at a
 *   time. EINTR is retried internally.
 * - Returns 0 or a negative errno, and on failure writes a one-line message
 *   (no newline, always NUL-terminated when errlen > 0) into err[0..errlen).
 * - A connection (fd from agent_connect or agent_handshake) carries ONE
 *   request: after agent_exec, agent_put_file, agent_get_file or
 *   agent_shutdown returns (success or not), the caller closes fd and
 *   connects again for the next request. The caller owns fd throughout;
 *   nothing here closes it. Closing it while a command runs makes the guest
 *   SIGKILL the command's process group.
 * - Errors from the guest come back as the guest's errno (e.g. -ENOENT for
 *   agent_get_file of a missing file); protocol violations by the guest are
 *   -EPROTO or -EBADMSG; the guest closing early is -ECONNRESET.
 * - The host process should ignore or handle SIGPIPE; writes to the socket
 *   use MSG_NOSIGNAL, writes to io->out_fd/err_fd may raise it otherwise.
 */

/*
 * Connect to guest port `port` (AGENT_VSOCK_PORT) through the VMM's vsock
 * Unix socket uds_path (Firecracker's hybrid form): connect, write
 * "CONNECT <port>\n", read "OK <hostport>\n". Until the guest listens (and
 * until the VMM has created the socket), the attempt fails; it is retried
 * every 20 ms until timeout_ms (>= 0) has passed since the call. Then does
 * the HELLO exchange (agent_handshake) within what is left of timeout_ms;
 * an agent whose session table is full (ERROR with EBUSY) is tried again
 * every 200 ms within timeout_ms too. On success *fd_out is a blocking, CLOEXEC stream socket owned by the
 * caller. Errors: -ETIMEDOUT (never connected, the last cause in err),
 * -EPROTONOSUPPORT (the agent speaks another version), -EPROTO, ...
 */
__attribute__((warn_unused_result)) int
agent_connect(const char *uds_path, uint32_t port, int timeout_ms, int *fd_out,
              char *err, size_t errlen);

/*
 * The HELLO exchange on an already connected stream fd (agent_connect does
 * it; tests call it on one end of a socketpair). timeout_ms < 0: no limit.
 */
__attribute__((warn_unused_result)) int
agent_handshake(int fd, int timeout_ms, char *err, size_t errlen);

/*
 * The host's side of a running command.
 *   in_fd:  read until EOF and sent as STDIN, then STDIN_EOF; -1: stdin is
 *           /dev/null in the guest (tty mode: nothing is typed).
 *   out_fd, err_fd: STDOUT / STDERR data is written there in full (blocking
 *           or non-blocking fds; EAGAIN waits with poll). -1, or an fd that
 *           failed with EPIPE, discards (the output is still read).
 *   ctl_fd: -1, or the read end of a pipe the caller's signal handler
 *           writes to: each byte N in 1..64 forwards signal N to the
 *           command's process group (SIGNAL frame), except SIGWINCH, which
 *           sends the window size of winsize_fd (WINSIZE frame) when that is
 *           >= 0; byte 0 aborts: agent_exec returns -ECANCELED at once (the
 *           caller then closes fd, which kills the command in the guest).
 *   winsize_fd: -1, or a terminal whose size (TIOCGWINSZ) is sent on SIGWINCH.
 * agent_exec never closes any of them.
 */
struct agent_exec_io {
	int in_fd;
	int out_fd;
	int err_fd;
	int ctl_fd;
	int winsize_fd;
};

struct agent_exec_result {
	enum agent_exit_kind kind; /* EXITED, SIGNALED, TIMED_OUT, START_FAILED */
	int code;                  /* EXITED: the exit code, 0..255 */
	int signo;                 /* SIGNALED: the signal */
	int err;                   /* START_FAILED: the guest's errno (ENOENT, EACCES, ...) */
	uint32_t pid;              /* the guest pid (from STARTED), 0 if it never started */
};

/*
 * Run req in the guest on a fresh connection fd (after the handshake) and
 * pump its I/O (see struct agent_exec_io) until the EXIT frame, which comes
 * after all of the command's output. req->flags' AGENT_EXEC_STDIN is set
 * from io->in_fd >= 0 (the caller's bit is ignored). Returns 0 with *res
 * filled whenever EXIT arrived (whatever the command's fate), -ECANCELED on
 * an abort byte, or a negative errno for a failure of the connection or
 * the protocol. A request the guest refuses (bad user, cwd too long, ...)
 * comes back as START_FAILED or as the guest's ERROR code.
 */
__attribute__((warn_unused_result)) int
agent_exec(int fd, const struct agent_exec_req *req, const struct agent_exec_io *io,
           struct agent_exec_result *res, char *err, size_t errlen);

/*
 * A shell's status for res: the exit code; 128 + N for signal N; 124 for a
 * timeout (as timeout(1)); 127 when the command was not found (ENOENT),
 * 126 when it could not be executed (any other errno).
 */
int agent_exec_exit_status(const struct agent_exec_result *res);

/*
 * Write the guest file `path` (absolute; created or truncated, then given
 * mode & 07777 whatever the guest's umask) with the bytes read from src_fd
 * until EOF, in chunks. *size_out (may be NULL) gets the bytes the guest
 * wrote. A guest-side failure returns its errno (-ENOENT: no such
 * directory, -ENOSPC, ...).
 */
__attribute__((warn_unused_result)) int
agent_put_file(int fd, const char *path, uint32_t mode, int src_fd, uint64_t *size_out,
               char *err, size_t errlen);

/*
 * Read the guest file `path` (absolute, a regular file) and write its bytes
 * to dst_fd in full. *mode_out and *size_out (may be NULL) get its
 * permission bits and the bytes received. On a guest-side failure nothing
 * or part of the file may have been written to dst_fd.
 */
__attribute__((warn_unused_result)) int
agent_get_file(int fd, const char *path, int dst_fd, uint32_t *mode_out, uint64_t *size_out,
               char *err, size_t errlen);

/*
 * Ask the guest to sync its file systems and power off, reporting `status`
 * (0..255) on the VMM's status port as the VM's exit status. Returns once
 * the guest acknowledged (after its sync); the VM then stops on its own.
 */
__attribute__((warn_unused_result)) int
agent_shutdown(int fd, int status, char *err, size_t errlen);

#endif
