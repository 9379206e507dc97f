/* How init turns a child's fate into the status it reports to the host. */
#include "status.h"

#include <errno.h>
#include <sys/wait.h>

#include "minivm_guest.h"

int agent_status_from_wait(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return MINIVM_STATUS_SIGNAL_BASE + WTERMSIG(wstatus);
	return MINIVM_STATUS_INIT_ERROR;
}

int agent_status_from_spawn_errno(int err)
{
	return err == ENOENT ? MINIVM_STATUS_NOT_FOUND : MINIVM_STATUS_NOT_EXECUTABLE;
}
