/* The minivm command: a thin CLI over libminivm and the agent client (boot, run one command, clean up). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmm/agent_client.h"
#include "vmm/cli.h"
#include "vmm/minivm.h"
#include "vmm/oci.h"
#include "vmm/vmm_proc.h"
#include "vmm/rootfs_verify.h"
#include "vmm/runc.h"
#include "vmm/front_files.h"
#include "vmm/scratch.h"

#define MINIVM_VERSION "0.2.0"

/* How long one agent_connect() attempt may take before minivm looks at
 * signals and the VM again, and how long it keeps trying after ready. */
#define MAIN_CONNECT_SLICE_MS 1000
#define MAIN_CONNECT_TOTAL_MS 120000
/* A clean power-off (sync, reset) after the command, with writable disks. */
#define MAIN_SHUTDOWN_MS 60000
/* Lines of the console log shown when the guest fails. */
#define MAIN_CONSOLE_TAIL_LINES 25

/* Signal handlers need these; main() sets them before installing them. */
static struct vmm_proc *main_vm;         /* the VMM process */
static int main_ctl_wr = -1;             /* the ctl pipe of agent_exec */
static volatile sig_atomic_t main_signal; /* the first terminating signal */

static void main_on_signal(int sig)
{
	unsigned char abort_byte = 0;

	if (!main_signal)
		main_signal = sig;
	if (main_vm)
		vmm_proc_stop(main_vm);
	if (main_ctl_wr >= 0 && write(main_ctl_wr, &abort_byte, 1) < 0) {
		/* A full pipe already holds an abort byte. */
	}
}

static void main_on_winch(int sig)
{
	unsigned char b = (unsigned char)sig;

	if (main_ctl_wr >= 0 && write(main_ctl_wr, &b, 1) < 0) {
		/* Dropped: a size change is re-sent on the next one. */
	}
}

static void main_print_timings(const struct minivm_timings *t)
{
	const double ms = 1e6;

	fprintf(stderr, "minivm: timing vmm_setup %.3f ms\n", t->first_run_ns / ms);
	fprintf(stderr, "minivm: timing kernel %.3f ms\n",
		t->init_started_ns ? (t->init_started_ns - t->first_run_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing init %.3f ms\n",
		t->ready_ns && t->init_started_ns ? (t->ready_ns - t->init_started_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing workload %.3f ms\n",
		t->ready_ns ? (t->exit_ns - t->ready_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing total %.3f ms\n", t->exit_ns / ms);
}

static void main_install_signals(bool tty)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL); /* a closed stdout is EPIPE, not death */
	if (tty) {
		sa.sa_handler = main_on_winch;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGWINCH, &sa, NULL);
	}
}

/* The --vm-timeout message. */
static void main_vm_timed_out(const struct minivm_config *c, bool during_shutdown)
{
	uint64_t ms = c->vm_timeout_ms;

	if (ms % 1000)
		fprintf(stderr, "minivm: VM killed after --vm-timeout %llu ms%s\n",
			(unsigned long long)ms, during_shutdown ? " (during its shutdown)" : "");
	else
		fprintf(stderr, "minivm: VM killed after --vm-timeout %llu s%s\n",
			(unsigned long long)(ms / 1000), during_shutdown ? " (during its shutdown)" : "");
}

/* The exit status after a terminating signal, as a shell reports it. */
static int main_signal_status(void)
{
	return 128 + (int)main_signal;
}

/* minivm's private run directory: the vsock socket and the console log
 * unless the user named them. Removed at exit. */
struct main_rundir {
	char dir[256];
	char sock[300];
	char console[300];
	char scratch[300];       /* the --scratch disk's image, or "" */
	bool own_sock, own_console;
};

static int main_rundir_create(struct main_rundir *rd)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	memset(rd, 0, sizeof(*rd));
	if (!base || base[0] != '/' || stat(base, &st) || !S_ISDIR(st.st_mode) ||
	    access(base, W_OK | X_OK))
		base = getenv("TMPDIR");
	if (!base || base[0] != '/' || stat(base, &st) || !S_ISDIR(st.st_mode) ||
	    access(base, W_OK | X_OK))
		base = "/tmp";
	/* Unix socket paths hold 107 bytes: keep the directory short. */
	if (snprintf(rd->dir, sizeof(rd->dir), "%s/minivm.XXXXXX", base) >= 80)
		snprintf(rd->dir, sizeof(rd->dir), "/tmp/minivm.XXXXXX");
	if (!mkdtemp(rd->dir)) {
		fprintf(stderr, "minivm: cannot create a run directory %s: %s\n", rd->dir,
			strerror(errno));
		rd->dir[0] = '\0';
		return -1;
	}
	snprintf(rd->sock, sizeof(rd->sock), "%s/vsock.sock", rd->dir);
	snprintf(rd->console, sizeof(rd->console), "%s/console.log", rd->dir);
	return 0;
}

static void main_rundir_remove(struct main_rundir *rd)
{
	if (!rd->dir[0])
		return;
	/* The VMM removes its own socket; these are leftovers of a failure. */
	if (rd->own_sock)
		(void)unlink(rd->sock);
	if (rd->own_console)
		(void)unlink(rd->console);
	if (rd->scratch[0])
		(void)unlink(rd->scratch);
	if (rmdir(rd->dir) != 0 && errno != ENOENT)
		fprintf(stderr, "minivm: cannot remove %s: %s\n", rd->dir, strerror(errno));
}

/* --run and plain boots: the guest's init runs the program itself. */
static int main_boot(struct cli *cli)
{
	struct minivm_result res;
	struct main_rundir rd;
	struct vmm_proc *vm;
	char err[512];
	int r, status;

	/* The jail's root, even when nothing else lives there. */
	if (main_rundir_create(&rd))
		return MINIVM_EXIT_ERROR;
	main_install_signals(false);
	r = vmm_proc_start(&cli->cfg, &cli->jail, rd.dir, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		main_rundir_remove(&rd);
		return MINIVM_EXIT_ERROR;
	}
	main_vm = vm;
	if (main_signal)
		vmm_proc_stop(vm);
	r = vmm_proc_wait(vm, &res);
	if (r) {
		fprintf(stderr, "minivm: %s\n", vmm_proc_error(vm));
		status = MINIVM_EXIT_ERROR;
	} else {
		status = minivm_exit_status(&res);
		if (res.outcome == MINIVM_TIMED_OUT)
			main_vm_timed_out(&cli->cfg, false);
		else if (res.outcome == MINIVM_GUEST_CRASHED)
			fprintf(stderr, "minivm: the guest crashed: it reset without reporting an "
					"exit status (kernel panic, triple fault or init died)\n");
		else if (res.outcome == MINIVM_STOPPED) {
			fprintf(stderr, "minivm: stopped by a signal\n");
			status = main_signal ? main_signal_status() : status;
		}
	}
	if (cli->print_timings)
		main_print_timings(&res.timings);
	main_vm = NULL;
	vmm_proc_destroy(vm);
	main_rundir_remove(&rd);
	return status;
}

/* ---- the agent's command (--agent / --) ---- */

/* Prints the last lines of the console log: why the guest failed. */
static void main_console_tail(const char *path)
{
	static char buf[8192];
	ssize_t n;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int lines = 0;
	char *p;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		(void)lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		(void)lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	p = buf + n;
	while (p > buf && lines <= MAIN_CONSOLE_TAIL_LINES)
		if (*--p == '\n')
			lines++;
	if (*p == '\n')
		p++;
	fprintf(stderr, "minivm: the end of the guest console (%s):\n%s%s", path, p,
		buf[n - 1] == '\n' ? "" : "\n");
}

/* Watches the VM while a command runs: when it ends (crash, stop), aborts
 * agent_exec through the ctl pipe. */
struct main_watch {
	struct vmm_proc *vm;
	int quit_rd;
	pthread_t thread;
	bool started;
};

static void *main_watch_thread(void *arg)
{
	struct main_watch *w = arg;
	unsigned char abort_byte = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = vmm_proc_event_fd(w->vm), .events = POLLIN },
			{ .fd = w->quit_rd, .events = POLLIN },
		};

		/* Takes in the VMM's events (this thread is their one reader now). */
		if (vmm_proc_ended(w->vm)) {
			if (write(main_ctl_wr, &abort_byte, 1) < 0) {
				/* A full pipe already holds an abort byte. */
			}
			return NULL;
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
	}
}

static void main_tty_size(int fd, struct agent_exec_req *req)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		req->rows = ws.ws_row;
		req->cols = ws.ws_col;
	}
}

/* Connects to the agent, retrying in short slices so that a signal or the
 * VM's end is noticed within a second. */
static int main_agent_connect(struct vmm_proc *vm, const char *sock, int *fd, char *err,
			      size_t errlen)
{
	struct timespec t0, now;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long elapsed_ms;

		r = agent_connect(sock, AGENT_VSOCK_PORT, MAIN_CONNECT_SLICE_MS, fd, err, errlen);
		if (r != -ETIMEDOUT)
			return r;
		if (main_signal || vmm_proc_ended(vm))
			return -ECANCELED;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed_ms >= MAIN_CONNECT_TOTAL_MS)
			return r;
	}
}

/* Waits up to ms for the VM to end by itself; then stops it. */
static void main_wait_end(struct vmm_proc *vm, int ms)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!vmm_proc_ended(vm) && !main_signal) {
		struct pollfd p = { .fd = vmm_proc_event_fd(vm), .events = POLLIN };
		long left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		(void)poll(&p, 1, (int)left); /* vmm_proc_ended() takes the event in */
	}
	vmm_proc_stop(vm);
}

static bool main_has_writable_disk(const struct minivm_config *c, const char *scratch)
{
	if (c->rootfs && c->rootfs_rw)
		return true;
	for (unsigned int i = 0; i < c->nr_disks; i++)
		if (!c->disks[i].read_only && c->disks[i].path != scratch) /* scratch: thrown away */
			return true;
	return false;
}

/* Boots, waits for the agent, runs the command, powers off, cleans up. */
static int main_agent(struct cli *cli)
{
	struct agent_exec_result xres;
	struct minivm_result res;
	struct agent_exec_req req;
	struct agent_exec_io io;
	struct main_watch watch = { 0 };
	struct termios saved_tio;
	struct main_rundir rd;
	struct vmm_proc *vm = NULL;
	int ctl[2] = { -1, -1 }, quit[2] = { -1, -1 };
	int status = MINIVM_EXIT_ERROR, fd = -1, r;
	bool raw = false, got_result = false, guest_died = false;
	static char scratch_cmdline[8192]; /* cfg.cmdline points here with --scratch */
	static struct front_files ff;      /* --rootfs oci:, --save (large: not on the stack) */
	static const char *exec_env[AGENT_EXEC_MAX_ENV + 1]; /* --env over the image's Env */
	char err[512];

	if (main_rundir_create(&rd))
		return MINIVM_EXIT_ERROR;
	if (!cli->cfg.vsock_uds) {
		cli->cfg.vsock_uds = rd.sock;
		rd.own_sock = true;
	}
	if (!cli->cfg.console) {
		cli->cfg.console = rd.console;
		rd.own_console = true;
	}
	/* An OCI image becomes an ext4 root (cached) with the agent as init. */
	r = front_rootfs_prepare(cli, &ff, rd.dir, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		goto out;
	}
	/* The overlay's writable layer: a scratch disk in the run directory or a tmpfs. */
	r = scratch_setup(&cli->cfg, cli->scratch, cli->scratch_size, rd.dir, rd.scratch,
			  sizeof(rd.scratch), scratch_cmdline, sizeof(scratch_cmdline), err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		goto out;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK) || pipe2(quit, O_CLOEXEC)) {
		fprintf(stderr, "minivm: pipe: %s\n", strerror(errno));
		goto out;
	}
	main_ctl_wr = ctl[1];
	main_install_signals(cli->tty);

	/* The VMM process: creates the VM, jails itself, runs it. */
	r = vmm_proc_start(&cli->cfg, &cli->jail, rd.dir, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		goto out;
	}
	main_vm = vm;
	if (main_signal)
		goto stop;
	do
		r = vmm_proc_wait_ready(vm, (int)(cli->boot_timeout_s > 2000000 ? 2000000000
						  : cli->boot_timeout_s * 1000));
	while (r == -EINTR && !main_signal);
	if (main_signal)
		goto stop;
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "minivm: the guest agent was not ready after %u s (--boot-timeout)\n",
			cli->boot_timeout_s);
		main_console_tail(cli->cfg.console);
		goto stop;
	}
	if (r) {
		guest_died = true;
		goto stop;
	}
	if (cli->ws_host[0]) {
		r = front_workspace_in(cli, cli->cfg.vsock_uds, rd.dir, err, sizeof(err));
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: %s\n", err);
			goto stop;
		}
	}
	r = main_agent_connect(vm, cli->cfg.vsock_uds, &fd, err, sizeof(err));
	if (r) {
		if (main_signal)
			goto stop;
		if (vmm_proc_ended(vm)) {
			guest_died = true;
			goto stop;
		}
		fprintf(stderr, "minivm: no answer from the guest agent: %s\n", err);
		main_console_tail(cli->cfg.console);
		goto stop;
	}

	memset(&req, 0, sizeof(req));
	req.argv = (const char *const *)cli->agent_argv;
	req.env = front_exec_defaults(cli, &ff, exec_env, AGENT_EXEC_MAX_ENV, &req.cwd, &req.user)
			  ? exec_env : NULL;
	req.timeout_s = cli->timeout_s;
	io.in_fd = STDIN_FILENO;
	io.out_fd = STDOUT_FILENO;
	io.err_fd = STDERR_FILENO;
	io.ctl_fd = ctl[0];
	io.winsize_fd = -1;
	if (cli->tty) {
		req.flags |= AGENT_EXEC_TTY;
		if (isatty(STDIN_FILENO)) {
			struct termios tio;

			main_tty_size(STDIN_FILENO, &req);
			io.winsize_fd = STDIN_FILENO;
			if (tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
				tio = saved_tio;
				cfmakeraw(&tio);
				raw = tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0;
			}
		}
	}
	watch.vm = vm;
	watch.quit_rd = quit[0];
	watch.started = pthread_create(&watch.thread, NULL, main_watch_thread, &watch) == 0;
	r = agent_exec(fd, &req, &io, &xres, err, sizeof(err));
	if (raw)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	if (watch.started) {
		(void)!write(quit[1], "q", 1);
		pthread_join(watch.thread, NULL);
	}
	close(fd);
	fd = -1;
	if (r == 0) {
		got_result = true;
		status = agent_exec_exit_status(&xres);
		if (xres.kind == AGENT_EXIT_START_FAILED)
			fprintf(stderr, "minivm: %s: %s in the guest\n", cli->agent_argv[0],
				xres.err == ENOENT ? "command not found" : strerror(xres.err));
		else if (xres.kind == AGENT_EXIT_TIMED_OUT)
			fprintf(stderr, "minivm: the command ran past --timeout %u s and was killed\n",
				cli->timeout_s);
	} else if (main_signal) {
		goto stop;
	} else if (vmm_proc_ended(vm)) {
		guest_died = true;
		goto stop;
	} else {
		fprintf(stderr, "minivm: running the command: %s\n", err);
		goto stop;
	}
	/* What the command changed: the workspace's diff, the saved image. A
	 * failure here is minivm's (125), whatever the command's status. */
	if (cli->ws_host[0] && !main_signal) {
		r = front_workspace_out(cli, cli->cfg.vsock_uds, rd.dir, err, sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	if (cli->save && !main_signal) {
		r = front_save(cli, &ff, cli->cfg.vsock_uds, rd.dir, err, sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	/* Power off. With a writable disk the guest syncs first (its data must
	 * reach the image); otherwise there is nothing to lose by stopping. */
	if (main_has_writable_disk(&cli->cfg, rd.scratch) && !main_signal) {
		r = main_agent_connect(vm, cli->cfg.vsock_uds, &fd, err, sizeof(err));
		if (r == 0)
			r = agent_shutdown(fd, status & 0xff, err, sizeof(err));
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (r)
			fprintf(stderr, "minivm: clean shutdown failed (%s); stopping the VM\n", err);
		else
			main_wait_end(vm, MAIN_SHUTDOWN_MS);
	}
stop:
	if (vm) {
		vmm_proc_stop(vm);
		r = vmm_proc_wait(vm, &res);
		if (r && !got_result && !main_signal)
			fprintf(stderr, "minivm: %s\n", vmm_proc_error(vm));
		if (!main_signal && res.outcome == MINIVM_TIMED_OUT) {
			/* A command that finished keeps its status. */
			main_vm_timed_out(&cli->cfg, got_result);
			if (!got_result)
				status = MINIVM_EXIT_VM_TIMEOUT;
		} else if (!got_result && !main_signal && res.outcome == MINIVM_GUEST_EXITED) {
			/* Someone asked the agent to power off (another client of
			 * the vsock socket): not a crash, but no result either. */
			fprintf(stderr, "minivm: the guest powered off (status %d) before the "
					"command finished\n", res.status);
			status = MINIVM_EXIT_GUEST_CRASH;
		} else if (!got_result && !main_signal && res.outcome == MINIVM_VMM_ERROR) {
			/* The VMM failed (said above: a KVM error, a seccomp
			 * kill): minivm's own failure, not the guest's. */
			status = MINIVM_EXIT_ERROR;
		} else if (!main_signal && (guest_died || (!got_result &&
							  res.outcome == MINIVM_GUEST_CRASHED))) {
			fprintf(stderr, "minivm: the guest died before the command finished "
					"(kernel panic, triple fault, or its init/agent exited)\n");
			main_console_tail(cli->cfg.console);
			status = MINIVM_EXIT_GUEST_CRASH;
		}
		if (main_signal) {
			fprintf(stderr, "minivm: interrupted by signal %d; the VM was stopped\n",
				(int)main_signal);
			status = main_signal_status();
		}
		if (cli->print_timings)
			main_print_timings(&res.timings);
	}
out:
	main_vm = NULL;
	main_ctl_wr = -1;
	vmm_proc_destroy(vm);
	for (int i = 0; i < 2; i++) {
		if (ctl[i] >= 0)
			close(ctl[i]);
		if (quit[i] >= 0)
			close(quit[i]);
	}
	front_files_free(&ff);
	main_rundir_remove(&rd);
	return status;
}

int main(int argc, char **argv)
{
	static struct cli cli; /* large (path buffers): not on the stack */
	char err[512];

	if (runc_selected(argc, argv)) /* minivm-runc / "minivm runc": the OCI runtime (vmm/runc.c) */
		return runc_main(argc, argv);
	/* "minivm rootfs verify IMAGE SBOM": a subcommand, not a VM (rootfs/README.md). */
	if (argc >= 2 && strcmp(argv[1], "rootfs") == 0)
		return rootfs_verify_main(argc - 2, argv + 2);
	/* "minivm image export|inspect|append ...": OCI images (vmm/oci_cli.c). */
	if (argc >= 2 && strcmp(argv[1], "image") == 0)
		return oci_image_main(argc - 1, argv + 1);
	if (cli_parse(argc, argv, &cli, err, sizeof(err))) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (cli.action == CLI_HELP) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (cli.action == CLI_VERSION) {
		printf("minivm %s\n", MINIVM_VERSION);
		return 0;
	}
	return cli.agent ? main_agent(&cli) : main_boot(&cli);
}
