/* minivm-runc's container init after `start`: the minivm front's boot-and-run (same options, parsed by cli_parse) but every signal it gets goes to the workload in the guest, as a runc container's pid 1 would receive it; exits with the workload's status. */
#include "vmm/runc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/minivm.h"

/*
 * The signal handler's state (a process-wide handler needs statics; this
 * file is the body of one process, never a library call): the ctl pipe of
 * agent_exec, and a terminating signal that came before the workload
 * started (then the VM is stopped instead: there is nothing to forward to).
 */
static int runc_front_ctl_wr = -1;
static struct minivm_vm *runc_front_vm; /* stopped by an early terminating signal */
static volatile sig_atomic_t runc_front_early_sig;
static volatile sig_atomic_t runc_front_running;

static void runc_front_on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;

	if (!runc_front_running) {
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
			runc_front_early_sig = sig;
			if (runc_front_vm)
				minivm_vm_stop(runc_front_vm);
		}
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

/* The front's diagnostics: errors and warnings to stderr, as minivm-runc's. */
static void runc_front_log(void *ctx, enum minivm_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= MINIVM_LOG_WARN)
		fprintf(stderr, "minivm-runc: %s\n", msg);
}

/* Runs cli's command in the ready VM; the workload's status or a MINIVM_EXIT_*. */
static int runc_front_exec(const struct cli *cli, struct minivm_vm *vm, int ctl_rd)
{
	struct minivm_exec_result res;
	struct minivm_exec x;
	int r;

	minivm_exec_init(&x);
	x.argv = (const char *const *)cli->agent_argv;
	x.env = cli->nr_env ? (const char *const *)cli->env : NULL;
	x.cwd = cli->workdir;
	x.user = cli->user;
	x.stdin_fd = STDIN_FILENO;
	x.stdout_fd = STDOUT_FILENO;
	x.stderr_fd = STDERR_FILENO;
	x.ctl_fd = ctl_rd;
	if (cli->tty) {
		struct winsize ws;

		x.tty = true;
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			x.rows = ws.ws_row;
			x.cols = ws.ws_col;
		}
		x.winsize_fd = STDIN_FILENO;
	}
	/* From here on a signal is the workload's (a stop request came first: honour it). */
	runc_front_running = 1;
	if (runc_front_early_sig)
		return 128 + runc_front_early_sig;
	r = minivm_vm_exec(vm, &x, &res);
	if (r) {
		fprintf(stderr, "minivm-runc: running the command: %s\n", res.message);
		return r == -ECHILD ? MINIVM_EXIT_GUEST_CRASH : MINIVM_EXIT_ERROR;
	}
	if (res.kind == MINIVM_EXEC_START_FAILED)
		fprintf(stderr, "minivm-runc: %s: %s in the guest\n", cli->agent_argv[0],
			res.err == ENOENT ? "command not found" : strerror(res.err));
	return res.status;
}

/* Boots the VM and waits for its agent; 0, or the status to exit with. */
static int runc_front_boot(const struct cli *cli, struct minivm_vm *vm)
{
	int64_t ms = (int64_t)cli->boot_timeout_s * 1000;
	int r;

	r = minivm_vm_start(vm);
	if (r == 0)
		r = minivm_vm_wait_ready(vm, ms > INT32_MAX ? INT32_MAX : (int)ms);
	if (runc_front_early_sig)
		return 128 + runc_front_early_sig;
	if (r == 0)
		return 0;
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "minivm-runc: the guest agent was not ready after %u s "
				"(console: %s)\n", cli->boot_timeout_s, minivm_vm_console_path(vm));
		return MINIVM_EXIT_ERROR;
	}
	if (r == -ECHILD) {
		fprintf(stderr, "minivm-runc: the guest died while booting (console: %s)\n",
			minivm_vm_console_path(vm));
		return MINIVM_EXIT_GUEST_CRASH;
	}
	fprintf(stderr, "minivm-runc: %s\n", minivm_vm_error(vm));
	return MINIVM_EXIT_ERROR;
}

int runc_front_main(int argc, char **argv)
{
	static struct cli cli; /* large */
	struct minivm_vm_config vc;
	struct minivm_result res;
	struct minivm_vm *vm = NULL;
	char err[512];
	int ctl[2] = { -1, -1 }, status = MINIVM_EXIT_ERROR;

	if (cli_parse(argc, argv, &cli, err, sizeof(err))) {
		fprintf(stderr, "minivm-runc: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (!cli.agent || !cli.cfg.vsock_uds) {
		fprintf(stderr, "minivm-runc: init: a command and --vsock are needed\n");
		return MINIVM_EXIT_ERROR;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "minivm-runc: pipe: %s\n", strerror(errno));
		return MINIVM_EXIT_ERROR;
	}
	cli_vm_config(&cli, &vc);
	vc.log_fn = runc_front_log;
	if (minivm_vm_create(&vc, &vm, err, sizeof(err))) {
		fprintf(stderr, "minivm-runc: %s\n", err);
		goto out;
	}
	runc_front_vm = vm;
	runc_front_ctl_wr = ctl[1];
	runc_front_signals();
	status = runc_front_boot(&cli, vm);
	if (status == 0)
		status = runc_front_exec(&cli, vm, ctl[0]);
	/* Nothing to keep: the root is read-only, the scratch layer is thrown away. */
	minivm_vm_stop(vm);
	if (minivm_vm_wait(vm, &res) && status == MINIVM_EXIT_ERROR)
		fprintf(stderr, "minivm-runc: %s\n", minivm_vm_error(vm));
out:
	runc_front_ctl_wr = -1;
	runc_front_vm = NULL;
	minivm_vm_destroy(vm);
	for (int i = 0; i < 2; i++)
		close(ctl[i]);
	return status;
}
