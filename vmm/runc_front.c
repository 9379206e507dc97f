/* minivm-runc's container init after `start`: the minivm front's boot-and-run (same options, parsed by cli_parse) but every signal it gets goes to the workload in the guest, as a runc container's pid 1 would receive it; exits with the workload's status. */
#include "vmm/runc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/agent_client.h"
#include "vmm/cli.h"
#include "vmm/vmm_proc.h"

#define RUNC_FRONT_SLICE_MS 500
#define RUNC_FRONT_CONNECT_MS 120000

/*
 * The signal handler's state (a process-wide handler needs statics; this
 * file is the body of one process, never a library call): the ctl pipe of
 * agent_exec, and a terminating signal that came before the workload
 * started (then the VM is stopped instead: there is nothing to forward to).
 */
static int runc_front_ctl_wr = -1;
static volatile sig_atomic_t runc_front_early_sig;
static volatile sig_atomic_t runc_front_running;

static void runc_front_on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;

	if (!runc_front_running) {
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT)
			runc_front_early_sig = sig;
		return;
	}
	if (runc_front_ctl_wr >= 0 && write(runc_front_ctl_wr, &b, 1) < 0) {
		/* a full pipe: dropped */
	}
}

/* Every catchable signal goes to the handler, as to a container's pid 1; SIGPIPE is ignored. */
static void runc_front_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = runc_front_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < 32; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || s == SIGSEGV || s == SIGBUS ||
		    s == SIGFPE || s == SIGILL || s == SIGPIPE || s == SIGTSTP || s == SIGTTIN ||
		    s == SIGTTOU || s == SIGCONT)
			continue;
		sigaction(s, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

static long runc_front_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs cli's command in the booted VM; the workload's status or a MINIVM_EXIT_*. */
static int runc_front_exec(struct cli *cli, struct vmm_proc *vm, int ctl_rd)
{
	struct agent_exec_result res;
	struct agent_exec_req req;
	struct agent_exec_io io;
	struct timespec t0;
	char err[512];
	int fd = -1, r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = agent_connect(cli->cfg.vsock_uds, AGENT_VSOCK_PORT, 1000, &fd, err, sizeof(err));
		if (r != -ETIMEDOUT)
			break;
		if (runc_front_early_sig || vmm_proc_ended(vm) ||
		    runc_front_ms_since(&t0) > RUNC_FRONT_CONNECT_MS)
			break;
	}
	if (runc_front_early_sig)
		return 128 + runc_front_early_sig;
	if (r) {
		fprintf(stderr, "minivm-runc: no answer from the guest agent: %s\n", err);
		return vmm_proc_ended(vm) ? MINIVM_EXIT_GUEST_CRASH : MINIVM_EXIT_ERROR;
	}
	memset(&req, 0, sizeof(req));
	req.argv = (const char *const *)cli->agent_argv;
	req.env = cli->nr_env ? cli->env : NULL;
	req.cwd = cli->workdir;
	req.user = cli->user;
	io.in_fd = STDIN_FILENO;
	io.out_fd = STDOUT_FILENO;
	io.err_fd = STDERR_FILENO;
	io.ctl_fd = ctl_rd;
	io.winsize_fd = -1;
	if (cli->tty) {
		struct winsize ws;

		req.flags |= AGENT_EXEC_TTY;
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			req.rows = ws.ws_row;
			req.cols = ws.ws_col;
		}
		io.winsize_fd = STDIN_FILENO;
	}
	/* From here on a signal is the workload's (a stop request came first: honour it). */
	runc_front_running = 1;
	if (runc_front_early_sig) {
		close(fd);
		return 128 + runc_front_early_sig;
	}
	r = agent_exec(fd, &req, &io, &res, err, sizeof(err));
	close(fd);
	if (r) {
		fprintf(stderr, "minivm-runc: running the command: %s\n", err);
		return vmm_proc_ended(vm) ? MINIVM_EXIT_GUEST_CRASH : MINIVM_EXIT_ERROR;
	}
	if (res.kind == AGENT_EXIT_START_FAILED)
		fprintf(stderr, "minivm-runc: %s: %s in the guest\n", cli->agent_argv[0],
			res.err == ENOENT ? "command not found" : strerror(res.err));
	return agent_exec_exit_status(&res);
}

int runc_front_main(int argc, char **argv)
{
	static struct cli cli; /* large */
	static char scratch_cmdline[8192];
	char err[512], jail_dir[300], scratch[400] = "";
	const char *base = getenv("TMPDIR");
	struct minivm_result res;
	struct vmm_proc *vm = NULL;
	struct timespec t0;
	int ctl[2] = { -1, -1 }, status = MINIVM_EXIT_ERROR, r;

	if (cli_parse(argc, argv, &cli, err, sizeof(err))) {
		fprintf(stderr, "minivm-runc: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (!cli.agent || !cli.cfg.vsock_uds) {
		fprintf(stderr, "minivm-runc: init: a command and --vsock are needed\n");
		return MINIVM_EXIT_ERROR;
	}
	runc_front_signals();
	/* The jail's root: a fresh directory in the container's run directory. */
	if (snprintf(jail_dir, sizeof(jail_dir), "%s/vm.XXXXXX", base && *base ? base : "/tmp") >=
	    (int)sizeof(jail_dir) || !mkdtemp(jail_dir)) {
		fprintf(stderr, "minivm-runc: %s: %s\n", jail_dir, strerror(errno));
		return MINIVM_EXIT_ERROR;
	}
	r = scratch_setup(&cli.cfg, cli.scratch, cli.scratch_size, jail_dir, scratch, sizeof(scratch),
			  scratch_cmdline, sizeof(scratch_cmdline), err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm-runc: %s\n", err);
		goto out;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "minivm-runc: pipe: %s\n", strerror(errno));
		goto out;
	}
	runc_front_ctl_wr = ctl[1];
	r = vmm_proc_start(&cli.cfg, &cli.jail, jail_dir, NULL, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm-runc: %s\n", err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = vmm_proc_wait_ready(vm, RUNC_FRONT_SLICE_MS);
		if (runc_front_early_sig || (r != -ETIMEDOUT && r != -EINTR))
			break;
		if (runc_front_ms_since(&t0) > (long)cli.boot_timeout_s * 1000) {
			fprintf(stderr, "minivm-runc: the guest agent was not ready after %u s "
					"(console: %s)\n", cli.boot_timeout_s, cli.cfg.console);
			r = -ETIMEDOUT;
			break;
		}
	}
	if (runc_front_early_sig)
		status = 128 + runc_front_early_sig;
	else if (r == 0)
		status = runc_front_exec(&cli, vm, ctl[0]);
	else if (r != -ETIMEDOUT) {
		fprintf(stderr, "minivm-runc: the guest died while booting (console: %s)\n",
			cli.cfg.console);
		status = MINIVM_EXIT_GUEST_CRASH;
	}
	/* Nothing to keep: the root is read-only, the scratch layer is thrown away. */
	vmm_proc_stop(vm);
	if (vmm_proc_wait(vm, &res) && status == MINIVM_EXIT_ERROR)
		fprintf(stderr, "minivm-runc: %s\n", vmm_proc_error(vm));
out:
	runc_front_ctl_wr = -1;
	vmm_proc_destroy(vm);
	for (int i = 0; i < 2; i++)
		if (ctl[i] >= 0)
			close(ctl[i]);
	if (scratch[0])
		(void)unlink(scratch);
	(void)rmdir(jail_dir);
	return status;
}
