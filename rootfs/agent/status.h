/* How init turns a child's fate into the status it reports to the host. */
#ifndef AGENT_STATUS_H
#define AGENT_STATUS_H

/*
 * The status for a wait status from waitpid(): the exit code if the child
 * exited, MINIVM_STATUS_SIGNAL_BASE + signal if a signal killed it,
 * MINIVM_STATUS_INIT_ERROR for anything else (init never asks for stops).
 */
int agent_status_from_wait(int wstatus);

/*
 * The status when the program could not be started, from the errno that
 * posix_spawnp()/execvp() reported: MINIVM_STATUS_NOT_FOUND for ENOENT
 * (no such file, or not on PATH), MINIVM_STATUS_NOT_EXECUTABLE otherwise
 * (EACCES, ENOEXEC, ENOTDIR, ...), as a POSIX shell reports them.
 */
int agent_status_from_spawn_errno(int err);

#endif
