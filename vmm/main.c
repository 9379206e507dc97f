/* The minivm command: a thin CLI over libminivm's front (vmm/front.c): options in, signals, the terminal and exit statuses here. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmm/api_front.h"
#include "vmm/cli.h"
#include "vmm/front.h"
#include "vmm/front_files.h"
#include "vmm/minivm.h"
#include "vmm/oci.h"
#include "vmm/rootfs_verify.h"
#include "vmm/runc.h"
#include "vmm/vmm_proc.h"

#define MINIVM_VERSION "0.2.0"

/* A clean power-off (sync, reset) after the command, with writable disks. */
#define MAIN_SHUTDOWN_MS 60000
/* Lines of the console log shown when the guest fails. */
#define MAIN_CONSOLE_TAIL_LINES 25

/* Signal handlers need these (this file is the body of one process, never
 * a library call); main() sets them before installing them. */
static struct minivm_vm *main_vm;        /* the VM (minivm_vm_stop is async-signal-safe) */
static int main_ctl_wr = -1;             /* the ctl pipe of the command */
static volatile sig_atomic_t main_signal; /* the first terminating signal */

static void main_on_signal(int sig)
{
	unsigned char abort_byte = 0;

	if (!main_signal)
		main_signal = sig;
	if (main_vm)
		minivm_vm_stop(main_vm);
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

/* ${MINIVM_CACHE:-~/.cache/minivm}/templates/NAME */
static int main_template_dir(const char *name, char *out, size_t len)
{
	const char *cache = getenv("MINIVM_CACHE"), *home = getenv("HOME");
	int n;

	if (cache && *cache)
		n = snprintf(out, len, "%s/templates/%s", cache, name);
	else if (home && *home)
		n = snprintf(out, len, "%s/.cache/minivm/templates/%s", home, name);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

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

/* The library's config from the command line's. */
static void main_vm_config(const struct cli *cli, struct minivm_vm_config *vc)
{
	minivm_vm_config_init(vc);
	vc->vm = cli->cfg;
	vc->jail = cli->jail.mode == JAIL_OFF	     ? MINIVM_JAIL_OFF
		   : cli->jail.mode == JAIL_REQUIRED ? MINIVM_JAIL_REQUIRED
						     : MINIVM_JAIL_AUTO;
	vc->jail_uid = cli->jail.uid;
	vc->jail_gid = cli->jail.gid;
	vc->cpu_quota_pct = cli->jail.cpu_quota_pct;
	vc->agent = cli->agent;
	vc->scratch = cli->scratch == SCRATCH_DISK    ? MINIVM_SCRATCH_DISK
		      : cli->scratch == SCRATCH_TMPFS ? MINIVM_SCRATCH_TMPFS
		      : cli->scratch == SCRATCH_NONE  ? MINIVM_SCRATCH_NONE
						      : MINIVM_SCRATCH_DEFAULT;
	vc->scratch_size = cli->scratch_size;
	vc->snapshot_dir = cli->snapshot_dir;
	vc->restore_dir = cli->restore_dir;
}

/* --run and plain boots: the guest's init runs the program itself. */
static int main_boot(struct cli *cli)
{
	struct minivm_vm_config vc;
	struct minivm_result res;
	struct minivm_vm *vm;
	char err[512];
	int r, status;

	main_vm_config(cli, &vc);
	r = minivm_vm_create(&vc, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	main_vm = vm;
	main_install_signals(false);
	r = minivm_vm_start(vm);
	if (r && !main_signal) {
		fprintf(stderr, "minivm: %s\n", minivm_vm_error(vm));
		main_vm = NULL;
		minivm_vm_destroy(vm);
		return MINIVM_EXIT_ERROR;
	}
	if (r) {
		/* A signal before the VM ran: nothing ran. */
		fprintf(stderr, "minivm: stopped by a signal\n");
		main_vm = NULL;
		minivm_vm_destroy(vm);
		return main_signal_status();
	}
	r = minivm_vm_wait(vm, &res);
	if (r) {
		fprintf(stderr, "minivm: %s\n", minivm_vm_error(vm));
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
	minivm_vm_destroy(vm);
	return status;
}

static void main_tty_size(int fd, struct minivm_exec *cmd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		cmd->rows = ws.ws_row;
		cmd->cols = ws.ws_col;
	}
}

static bool main_has_writable_disk(const struct minivm_config *c, const char *scratch)
{
	if (c->rootfs && c->rootfs_rw)
		return true;
	for (unsigned int i = 0; i < c->nr_disks; i++)
		if (!c->disks[i].read_only && strcmp(c->disks[i].path, scratch)) /* scratch: thrown away */
			return true;
	return false;
}

/* Boots (or restores), waits for the agent, runs the command, powers off, cleans up. */
static int main_agent(struct cli *cli)
{
	struct minivm_exec_result xres;
	struct minivm_vm_config vc;
	struct minivm_vm_times times;
	struct minivm_result res;
	struct minivm_exec cmd;
	struct termios saved_tio;
	struct minivm_vm *vm = NULL;
	static char tdir[4096]; /* a template's directory */
	int ctl[2] = { -1, -1 };
	int status = MINIVM_EXIT_ERROR, r;
	bool raw = false, got_result = false, guest_died = false, started = false;
	char err[512];

	if (cli->template_name && (cli->template_create || !cli->restore_dir)) {
		r = main_template_dir(cli->template_name, tdir, sizeof(tdir));
		if (r) {
			fprintf(stderr, "minivm: no template directory: set MINIVM_CACHE or HOME\n");
			return MINIVM_EXIT_ERROR;
		}
		if (cli->template_create)
			cli->snapshot_dir = tdir;
		else
			cli->restore_dir = tdir;
	}
	/* The run directory, an OCI root, the scratch disk, snapshot files. */
	main_vm_config(cli, &vc);
	r = minivm_vm_create(&vc, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "minivm: pipe: %s\n", strerror(errno));
		goto out;
	}
	main_ctl_wr = ctl[1];
	main_vm = vm;
	main_install_signals(cli->tty);

	/* The VMM process: creates the VM, jails itself, runs it. */
	r = minivm_vm_start(vm);
	if (r && !main_signal) {
		fprintf(stderr, "minivm: %s\n", minivm_vm_error(vm));
		goto out;
	}
	started = r == 0;
	if (main_signal)
		goto stop;
	r = minivm_vm_wait_ready(vm, (int)(cli->boot_timeout_s > 2000000 ? 2000000000
					   : cli->boot_timeout_s * 1000));
	if (main_signal)
		goto stop;
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "minivm: the guest agent was not ready after %u s (--boot-timeout)\n",
			cli->boot_timeout_s);
		main_console_tail(minivm_vm_console_path(vm));
		goto stop;
	}
	if (r == -ECHILD) {
		guest_died = true;
		goto stop;
	}
	if (r) {
		fprintf(stderr, "minivm: %s\n", minivm_vm_error(vm));
		if (r != -EIO) /* the agent did not answer (not a failed fix-up) */
			main_console_tail(minivm_vm_console_path(vm));
		goto stop;
	}
	if (cli->ws_host[0]) {
		r = front_workspace_in(cli, minivm_vm_vsock_path(vm), minivm_vm_run_dir(vm), err,
				       sizeof(err));
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: %s\n", err);
			goto stop;
		}
	}
	if (cli->snapshot_dir) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = minivm_vm_snapshot(vm, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: snapshot: %s\n", minivm_vm_error(vm));
			goto stop;
		}
		if (cli->cfg.verbose || cli->print_timings)
			fprintf(stderr, "minivm: snapshot written to %s in %.3f ms (VM paused meanwhile)\n",
				cli->snapshot_dir,
				(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
		if (cli->template_create) {
			fprintf(stderr, "minivm: template '%s' created in %s\n", cli->template_name,
				cli->snapshot_dir);
			status = 0;
			got_result = true;
			goto stop;
		}
	}

	minivm_exec_init(&cmd);
	cmd.argv = (const char *const *)cli->agent_argv;
	cmd.env = cli->nr_env ? cli->env : NULL; /* the library adds an OCI image's Env */
	cmd.cwd = cli->workdir;
	cmd.user = cli->user;
	cmd.timeout_s = cli->timeout_s;
	cmd.stdin_fd = STDIN_FILENO;
	cmd.stdout_fd = STDOUT_FILENO;
	cmd.stderr_fd = STDERR_FILENO;
	cmd.ctl_fd = ctl[0];
	if (cli->tty) {
		cmd.tty = true;
		if (isatty(STDIN_FILENO)) {
			struct termios tio;

			main_tty_size(STDIN_FILENO, &cmd);
			cmd.winsize_fd = STDIN_FILENO;
			if (tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
				tio = saved_tio;
				cfmakeraw(&tio);
				raw = tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0;
			}
		}
	}
	r = minivm_vm_exec(vm, &cmd, &xres);
	if (raw)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	if (r == 0) {
		got_result = true;
		status = xres.status;
		if (xres.kind == MINIVM_EXEC_START_FAILED)
			fprintf(stderr, "minivm: %s: %s in the guest\n", cli->agent_argv[0],
				xres.err == ENOENT ? "command not found" : strerror(xres.err));
		else if (xres.kind == MINIVM_EXEC_TIMED_OUT)
			fprintf(stderr, "minivm: the command ran past --timeout %u s and was killed\n",
				cli->timeout_s);
	} else if (main_signal) {
		goto stop;
	} else if (r == -ECHILD) {
		guest_died = true;
		goto stop;
	} else {
		fprintf(stderr, "minivm: running the command: %s\n", xres.message);
		goto stop;
	}
	/* What the command changed: the workspace's diff, the saved image. A
	 * failure here is minivm's (125), whatever the command's status. */
	if (cli->ws_host[0] && !main_signal) {
		r = front_workspace_out(cli, minivm_vm_vsock_path(vm), minivm_vm_run_dir(vm), err,
					sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	if (cli->save && !main_signal) {
		r = front_save(cli, front_vm_files(vm), minivm_vm_vsock_path(vm),
			       minivm_vm_run_dir(vm), err, sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	/* Power off. With a writable disk the guest syncs first (its data must
	 * reach the image); otherwise there is nothing to lose by stopping. */
	if (!cli->restore_dir && !main_signal &&
	    main_has_writable_disk(front_vm_config(vm), front_vm_scratch_image(vm))) {
		r = minivm_vm_shutdown(vm, status & 0xff, MAIN_SHUTDOWN_MS);
		if (r && !main_signal)
			fprintf(stderr, "minivm: %s; stopping the VM\n", minivm_vm_error(vm));
	}
stop:
	if (started) {
		minivm_vm_stop(vm);
		r = minivm_vm_wait(vm, &res);
		if (r && !got_result && !main_signal)
			fprintf(stderr, "minivm: %s\n", minivm_vm_error(vm));
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
			main_console_tail(minivm_vm_console_path(vm));
			status = MINIVM_EXIT_GUEST_CRASH;
		}
	}
	if (main_signal) {
		fprintf(stderr, "minivm: interrupted by signal %d; the VM was stopped\n",
			(int)main_signal);
		status = main_signal_status();
	}
	if (started) {
		minivm_vm_times(vm, &times);
		if (cli->print_timings && cli->restore_dir) {
			const struct minivm_timings *t = &res.timings;
			const double ms = 1e6;

			/* Front clock (CLOCK_MONOTONIC) for the front's phases; the
			 * VMM's are from its minivm_create() start. */
			fprintf(stderr, "minivm: timing restore_open_validate %.3f ms (front)\n",
				(times.restore_validated_ns - times.create_ns) / ms);
			fprintf(stderr, "minivm: timing restore_disks %.3f ms (front: checks, copies)\n",
				(times.restore_copied_ns - times.restore_validated_ns) / ms);
			fprintf(stderr, "minivm: timing restore_vmm_validate %.3f ms (VMM)\n",
				t->restore_validated_ns / ms);
			fprintf(stderr, "minivm: timing restore_memory_map %.3f ms (VMM)\n",
				t->restore_mapped_ns && t->restore_validated_ns
					? (t->restore_mapped_ns - t->restore_validated_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_state %.3f ms (VMM: vCPUs, devices)\n",
				t->restore_state_ns && t->restore_mapped_ns
					? (t->restore_state_ns - t->restore_mapped_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_resume %.3f ms (VMM: to the first KVM_RUN)\n",
				t->first_run_ns && t->restore_state_ns
					? (t->first_run_ns - t->restore_state_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_vmm_total %.3f ms (front start to VM running)\n",
				times.started_ns ? (times.started_ns - times.create_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_agent_ready %.3f ms (guest: VM running to "
					"HELLO answered)\n",
				times.ready_ns && times.started_ns ? (times.ready_ns - times.started_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_fixup %.3f ms (guest: clock, reseed)\n",
				times.fixed_ns && times.ready_ns ? (times.fixed_ns - times.ready_ns) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_to_ready %.3f ms (total)\n",
				times.ready_ns ? (times.ready_ns - times.create_ns) / ms : -1.0);
		} else if (cli->print_timings) {
			main_print_timings(&res.timings);
		}
	}
out:
	main_vm = NULL;
	main_ctl_wr = -1;
	minivm_vm_destroy(vm);
	for (int i = 0; i < 2; i++)
		if (ctl[i] >= 0)
			close(ctl[i]);
	return status;
}

/* How long the server keeps answering after the VM ended (GET /events
 * streams get VM_EXIT, a last GET /status), before it exits. */
#define MAIN_API_LINGER_MS 2000

/*
 * minivm --api-sock PATH [--no-jail | --jail] [--verbose]: the VM is
 * configured and driven through the control socket (vmm/API.md); minivm
 * exits once the VM ended (after MAIN_API_LINGER_MS) or on SIGINT, SIGTERM
 * or SIGHUP (the VM is stopped first). cli.c does not know the option
 * (another branch owns it): parsed here.
 */
static int main_api(int argc, char **argv)
{
	struct minivm_vm_config base;
	struct api_front *f;
	const char *path = NULL;
	char err[512];
	long linger = -1;
	int r;

	minivm_vm_config_init(&base);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--api-sock") && i + 1 < argc && !path)
			path = argv[++i];
		else if (!strcmp(argv[i], "--no-jail"))
			base.jail = MINIVM_JAIL_OFF;
		else if (!strcmp(argv[i], "--jail"))
			base.jail = MINIVM_JAIL_REQUIRED;
		else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
			base.vm.verbose++;
		else {
			fprintf(stderr, "minivm: with --api-sock the VM is configured through the socket: "
					"only --no-jail, --jail and --verbose go with it, not '%s'\n",
				argv[i]);
			return MINIVM_EXIT_ERROR;
		}
	}
	if (!path || !*path) {
		fprintf(stderr, "minivm: --api-sock needs a path\n");
		return MINIVM_EXIT_ERROR;
	}
	main_install_signals(false);
	r = api_front_create(path, &base, &f, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (base.vm.verbose)
		fprintf(stderr, "minivm: serving the control socket %s\n", path);
	while (!main_signal) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (api_front_state(f) == API_STOPPED) {
			if (linger < 0)
				linger = MAIN_API_LINGER_MS;
			else if ((linger -= 100) <= 0)
				break;
		}
		nanosleep(&ts, NULL);
	}
	api_front_destroy(f);
	if (main_signal) {
		fprintf(stderr, "minivm: interrupted by signal %d; the VM was stopped\n", (int)main_signal);
		return main_signal_status();
	}
	return 0;
}

/* The minivm-vmm beside this executable (the build tree, or an install
 * that puts both in one directory) becomes $MINIVM_VMM unless that is set
 * already: every VM this process starts (the CLI, --api-sock, minivm-runc)
 * then uses it. Called before any thread exists. */
static void main_find_vmm(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (getenv(VMM_PROC_PATH_ENV) || n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash || (size_t)(slash + 1 - exe) + sizeof("minivm-vmm") > sizeof(exe))
		return;
	memcpy(slash + 1, "minivm-vmm", sizeof("minivm-vmm"));
	if (access(exe, X_OK) == 0)
		(void)setenv(VMM_PROC_PATH_ENV, exe, 1);
}

int main(int argc, char **argv)
{
	static struct cli cli; /* large (path buffers): not on the stack */
	char err[512];

	main_find_vmm();
	if (runc_selected(argc, argv)) /* minivm-runc / "minivm runc": the OCI runtime (vmm/runc.c) */
		return runc_main(argc, argv);
	/* "minivm rootfs verify IMAGE SBOM": a subcommand, not a VM (rootfs/README.md). */
	if (argc >= 2 && strcmp(argv[1], "rootfs") == 0)
		return rootfs_verify_main(argc - 2, argv + 2);
	/* "minivm image export|inspect|append ...": OCI images (vmm/oci_cli.c). */
	if (argc >= 2 && strcmp(argv[1], "image") == 0)
		return oci_image_main(argc - 1, argv + 1);
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--api-sock"))
			return main_api(argc, argv);
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
