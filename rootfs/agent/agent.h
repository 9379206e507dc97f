/* The guest agent's server: sessions over any stream listening socket (vsock in the guest, Unix in host tests). */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdint.h>

/*
 * One poll loop in one process serves every connection (no fork per
 * connection: in the guest a fork costs 0.5-1 s of emulated kernel time and
 * would serialize in PID 1; the only process creation per command is the
 * command's own fork+exec, and the loop does not wait for the exec).
 * Sessions run concurrently; each has bounded buffers (a 64 KiB frame reader, a 16 KiB input staging buffer, a 64 KiB
 * output queue), and at most AGENT_MAX_SESSIONS exist at once (one more
 * connection gets ERROR EBUSY and is closed).
 *
 * Children: the server installs a SIGCHLD handler (a self-pipe: the only
 * process-wide state here, so there is one server per process) and reaps
 * with waitpid(-1): any child that is not a session's command (an orphan
 * re-parented to PID 1 in the guest) is reaped and forgotten. SIGPIPE gets a
 * no-op handler (writes see EPIPE; exec resets it to default for commands).
 */
#define AGENT_MAX_SESSIONS 32

/* Seconds a connection may take to send HELLO and its request. */
#define AGENT_REQUEST_TIMEOUT_S 60

struct agent_server;

struct agent_server_ops {
	/*
	 * SHUTDOWN: called with the requested status once the ACK has been
	 * sent (file systems are synced before the ACK). The guest's hook
	 * reports the status and reboots, never returning; a hook that
	 * returns makes agent_server_run() return 0.
	 */
	void (*shutdown)(void *ctx, int status);
	void *ctx;
	/* Prefix for log lines on stderr, e.g. "minivm-agent: ". */
	const char *log_prefix;
};

/*
 * Create a server on listen_fd (a listening SOCK_STREAM socket, any family;
 * the server makes it non-blocking and owns it from here: freed by
 * agent_server_free). Installs the SIGCHLD and SIGPIPE handlers.
 */
__attribute__((warn_unused_result)) int
agent_server_create(int listen_fd, const struct agent_server_ops *ops, struct agent_server **out);

/*
 * Serve until a SHUTDOWN hook returns (0) or a fatal error (-errno: poll
 * failing). Never returns in the guest unless something is badly wrong.
 */
__attribute__((warn_unused_result)) int agent_server_run(struct agent_server *srv);

/* Close every session (SIGKILL to running commands' groups) and the listening socket. */
void agent_server_free(struct agent_server *srv);

/*
 * Guest: a listening AF_VSOCK stream socket on `port` for any CID
 * (CLOEXEC). -errno when the kernel has no vsock (EAFNOSUPPORT) or no
 * transport yet (ENODEV), ...
 */
__attribute__((warn_unused_result)) int agent_vsock_listen(uint32_t port, int *fd_out);

#endif
