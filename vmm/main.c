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
#include "vmm/log.h"
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
/* ...and at most so many bytes of them (a JSON line escapes some bytes to 6). */
#define MAIN_CONSOLE_TAIL_MAX 3000

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

/* One --timings line: "timing PHASE MS ms[ (NOTE)]", or the JSON event
 * "timing" with phase and ms (null when the phase did not happen: -1). */
static void main_timing(const struct log *log, const char *phase, double ms, const char *note)
{
	struct log_field f[] = { LOG_STR("phase", phase), LOG_MS("ms", ms) };

	log_event(log, MINIVM_LOG_INFO, "timing", f, 2, "timing %s %.3f ms%s%s%s", phase, ms,
		  note ? " (" : "", note ? note : "", note ? ")" : "");
}

/* b - a in ms when both happened (non-zero), else -1. */
static double main_ms(uint64_t a, uint64_t b)
{
	return a && b ? (double)(b - a) / 1e6 : -1.0;
}

static void main_print_timings(const struct log *log, const struct minivm_timings *t)
{
	main_timing(log, "vmm_setup", t->first_run_ns / 1e6, NULL);
	main_timing(log, "kernel", t->init_started_ns ? (t->init_started_ns - t->first_run_ns) / 1e6
						       : -1.0, NULL);
	main_timing(log, "init", main_ms(t->init_started_ns, t->ready_ns), NULL);
	main_timing(log, "workload", t->ready_ns ? (t->exit_ns - t->ready_ns) / 1e6 : -1.0, NULL);
	main_timing(log, "total", t->exit_ns / 1e6, NULL);
}

/* --timings after --restore: front clock (CLOCK_MONOTONIC) for the front's
 * phases; the VMM's are from its minivm_create() start. */
static void main_print_restore_timings(const struct log *log, const struct minivm_timings *t,
				       const struct minivm_vm_times *v)
{
	main_timing(log, "restore_open_validate", main_ms(v->create_ns, v->restore_validated_ns),
		    "front");
	main_timing(log, "restore_disks", main_ms(v->restore_validated_ns, v->restore_copied_ns),
		    "front: checks, copies");
	main_timing(log, "restore_vmm_validate", t->restore_validated_ns / 1e6, "VMM");
	main_timing(log, "restore_memory_map", main_ms(t->restore_validated_ns, t->restore_mapped_ns),
		    "VMM");
	main_timing(log, "restore_state", main_ms(t->restore_mapped_ns, t->restore_state_ns),
		    "VMM: vCPUs, devices");
	main_timing(log, "restore_resume", main_ms(t->restore_state_ns, t->first_run_ns),
		    "VMM: to the first KVM_RUN");
	main_timing(log, "restore_vmm_total", main_ms(v->create_ns, v->started_ns),
		    "front start to VM running");
	main_timing(log, "restore_agent_ready", main_ms(v->started_ns, v->ready_ns),
		    "guest: VM running to HELLO answered");
	main_timing(log, "restore_fixup", main_ms(v->ready_ns, v->fixed_ns), "guest: clock, reseed");
	main_timing(log, "restore_to_ready", main_ms(v->create_ns, v->ready_ns), "total");
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
static void main_vm_timed_out(const struct log *log, const struct minivm_config *c,
			      bool during_shutdown)
{
	uint64_t ms = c->vm_timeout_ms;

	if (ms % 1000)
		log_error(log, "VM killed after --vm-timeout %llu ms%s", (unsigned long long)ms,
			  during_shutdown ? " (during its shutdown)" : "");
	else
		log_error(log, "VM killed after --vm-timeout %llu s%s", (unsigned long long)(ms / 1000),
			  during_shutdown ? " (during its shutdown)" : "");
}

/* The exit status after a terminating signal, as a shell reports it. */
static int main_signal_status(void)
{
	return 128 + (int)main_signal;
}

/* After a terminating signal: says so, returns the exit status. */
static int main_interrupted(const struct log *log)
{
	log_event(log, MINIVM_LOG_WARN, "interrupted", &LOG_INT("signal", main_signal), 1,
		  "interrupted by signal %d; the VM was stopped", (int)main_signal);
	return main_signal_status();
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

/* Logs the last lines of the console log: why the guest failed. */
static void main_console_tail(const struct log *log, const char *path)
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
	if (buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (buf + n - p > MAIN_CONSOLE_TAIL_MAX) /* the end must fit in one log line */
		p = buf + n - MAIN_CONSOLE_TAIL_MAX;
	log_event(log, MINIVM_LOG_ERROR, "console_tail", &LOG_STR("path", path), 1,
		  "the end of the guest console (%s):\n%s", path, p);
}

/* The library's config from the command line's, logging through log. */
static void main_vm_config(const struct cli *cli, const struct log *log,
			   struct minivm_vm_config *vc)
{
	cli_vm_config(cli, vc);
	vc->log_fn = log_from_front;
	vc->log_ctx = (void *)log;
}

/* --run and plain boots: the guest's init runs the program itself. */
static int main_boot(const struct log *log, struct cli *cli)
{
	struct minivm_vm_config vc;
	struct minivm_result res;
	struct minivm_vm *vm;
	char err[512];
	int r, status;

	main_vm_config(cli, log, &vc);
	r = minivm_vm_create(&vc, &vm, err, sizeof(err));
	if (r) {
		log_error(log, "%s", err);
		return MINIVM_EXIT_ERROR;
	}
	main_vm = vm;
	main_install_signals(false);
	r = minivm_vm_start(vm);
	if (r && !main_signal) {
		log_error(log, "%s", minivm_vm_error(vm));
		main_vm = NULL;
		minivm_vm_destroy(vm);
		return MINIVM_EXIT_ERROR;
	}
	if (r) {
		/* A signal before the VM ran: nothing ran. */
		log_warn(log, "stopped by a signal");
		main_vm = NULL;
		minivm_vm_destroy(vm);
		return main_signal_status();
	}
	r = minivm_vm_wait(vm, &res);
	if (r) {
		log_error(log, "%s", minivm_vm_error(vm));
		status = MINIVM_EXIT_ERROR;
	} else {
		status = minivm_exit_status(&res);
		if (res.outcome == MINIVM_TIMED_OUT)
			main_vm_timed_out(log, &cli->cfg, false);
		else if (res.outcome == MINIVM_GUEST_CRASHED)
			log_error(log, "the guest crashed: it reset without reporting an exit status "
				  "(kernel panic, triple fault or init died)");
		else if (res.outcome == MINIVM_STOPPED) {
			log_warn(log, "stopped by a signal");
			status = main_signal ? main_signal_status() : status;
		}
	}
	if (cli->print_timings)
		main_print_timings(log, &res.timings);
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

/* With --verbose: the agent answered, so long after minivm_vm_create(). */
static void main_log_ready(const struct log *log, struct minivm_vm *vm)
{
	struct minivm_vm_times t;
	double ms;

	minivm_vm_times(vm, &t);
	ms = main_ms(t.create_ns, t.ready_ns);
	log_event(log, MINIVM_LOG_INFO, "vm_ready", &LOG_MS("ms", ms), 1,
		  "the guest agent is ready (%.0f ms)", ms);
}

/* Boots (or restores), waits for the agent, runs the command, powers off, cleans up. */
static int main_agent(const struct log *log, struct cli *cli)
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
			log_error(log, "no template directory: set MINIVM_CACHE or HOME");
			return MINIVM_EXIT_ERROR;
		}
		if (cli->template_create)
			cli->snapshot_dir = tdir;
		else
			cli->restore_dir = tdir;
	}
	/* The run directory, an OCI root, the scratch disk, snapshot files. */
	main_vm_config(cli, log, &vc);
	r = minivm_vm_create(&vc, &vm, err, sizeof(err));
	if (r) {
		log_error(log, "%s", err);
		return MINIVM_EXIT_ERROR;
	}
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK)) {
		log_error(log, "pipe: %s", strerror(errno));
		goto out;
	}
	main_ctl_wr = ctl[1];
	main_vm = vm;
	main_install_signals(cli->tty);

	/* The VMM process: creates the VM, jails itself, runs it. */
	r = minivm_vm_start(vm);
	if (r && !main_signal) {
		log_error(log, "%s", minivm_vm_error(vm));
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
		log_error(log, "the guest agent was not ready after %u s (--boot-timeout)",
			  cli->boot_timeout_s);
		main_console_tail(log, minivm_vm_console_path(vm));
		goto stop;
	}
	if (r == -ECHILD) {
		guest_died = true;
		goto stop;
	}
	if (r) {
		log_error(log, "%s", minivm_vm_error(vm));
		if (r != -EIO) /* the agent did not answer (not a failed fix-up) */
			main_console_tail(log, minivm_vm_console_path(vm));
		goto stop;
	}
	if (cli->cfg.verbose)
		main_log_ready(log, vm);
	if (cli->ws_host[0]) {
		r = front_workspace_in(cli, minivm_vm_vsock_path(vm), minivm_vm_run_dir(vm), err,
				       sizeof(err));
		if (r) {
			if (!main_signal)
				log_error(log, "%s", err);
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
				log_error(log, "snapshot: %s", minivm_vm_error(vm));
			goto stop;
		}
		if (cli->cfg.verbose || cli->print_timings) {
			double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
			struct log_field f[] = { LOG_STR("dir", cli->snapshot_dir), LOG_MS("ms", ms) };

			log_event(log, MINIVM_LOG_INFO, "snapshot_written", f, 2,
				  "snapshot written to %s in %.3f ms (VM paused meanwhile)",
				  cli->snapshot_dir, ms);
		}
		if (cli->template_create) {
			log_info(log, "template '%s' created in %s", cli->template_name,
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
			log_error(log, "%s: %s in the guest", cli->agent_argv[0],
				  xres.err == ENOENT ? "command not found" : strerror(xres.err));
		else if (xres.kind == MINIVM_EXEC_TIMED_OUT)
			log_error(log, "the command ran past --timeout %u s and was killed",
				  cli->timeout_s);
		if (cli->cfg.verbose)
			log_event(log, MINIVM_LOG_INFO, "command_exited", &LOG_INT("status", status), 1,
				  "the command exited with status %d", status);
	} else if (main_signal) {
		goto stop;
	} else if (r == -ECHILD) {
		guest_died = true;
		goto stop;
	} else {
		log_error(log, "running the command: %s", xres.message);
		goto stop;
	}
	/* What the command changed: the workspace's diff, the saved image. A
	 * failure here is minivm's (125), whatever the command's status. */
	if (cli->ws_host[0] && !main_signal) {
		r = front_workspace_out(cli, &front_vm_files(vm)->log, minivm_vm_vsock_path(vm),
					minivm_vm_run_dir(vm), err, sizeof(err));
		if (r) {
			log_error(log, "%s", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	if (cli->save && !main_signal) {
		r = front_save(cli, front_vm_files(vm), minivm_vm_vsock_path(vm),
			       minivm_vm_run_dir(vm), err, sizeof(err));
		if (r) {
			log_error(log, "%s", err);
			status = MINIVM_EXIT_ERROR;
		}
	}
	/* Power off. With a writable disk the guest syncs first (its data must
	 * reach the image); otherwise there is nothing to lose by stopping. */
	if (!cli->restore_dir && !main_signal &&
	    main_has_writable_disk(front_vm_config(vm), front_vm_scratch_image(vm))) {
		r = minivm_vm_shutdown(vm, status & 0xff, MAIN_SHUTDOWN_MS);
		if (r && !main_signal)
			log_warn(log, "%s; stopping the VM", minivm_vm_error(vm));
	}
stop:
	if (started) {
		minivm_vm_stop(vm);
		r = minivm_vm_wait(vm, &res);
		if (r && !got_result && !main_signal)
			log_error(log, "%s", minivm_vm_error(vm));
		if (!main_signal && res.outcome == MINIVM_TIMED_OUT) {
			/* A command that finished keeps its status. */
			main_vm_timed_out(log, &cli->cfg, got_result);
			if (!got_result)
				status = MINIVM_EXIT_VM_TIMEOUT;
		} else if (!got_result && !main_signal && res.outcome == MINIVM_GUEST_EXITED) {
			/* Someone asked the agent to power off (another client of
			 * the vsock socket): not a crash, but no result either. */
			log_error(log, "the guest powered off (status %d) before the command "
				  "finished", res.status);
			status = MINIVM_EXIT_GUEST_CRASH;
		} else if (!got_result && !main_signal && res.outcome == MINIVM_VMM_ERROR) {
			/* The VMM failed (said above: a KVM error, a seccomp
			 * kill): minivm's own failure, not the guest's. */
			status = MINIVM_EXIT_ERROR;
		} else if (!main_signal && (guest_died || (!got_result &&
							  res.outcome == MINIVM_GUEST_CRASHED))) {
			log_error(log, "the guest died before the command finished (kernel panic, "
				  "triple fault, or its init/agent exited)");
			main_console_tail(log, minivm_vm_console_path(vm));
			status = MINIVM_EXIT_GUEST_CRASH;
		}
	}
	if (main_signal)
		status = main_interrupted(log);
	if (started) {
		minivm_vm_times(vm, &times);
		if (cli->print_timings && cli->restore_dir)
			main_print_restore_timings(log, &res.timings, &times);
		else if (cli->print_timings)
			main_print_timings(log, &res.timings);
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
 * minivm --api-sock's exit status, as a plain run's: a VM a client stopped
 * (POST /stop) is a normal end, 0; a guest that powered off with a status,
 * that status; a --vm-timeout (vm_timeout_ms) 122, a crash 123, a VMM
 * failure 125.
 */
static int main_api_status(const struct log *log, struct api_front *f)
{
	struct minivm_result res;

	if (!api_front_result(f, &res))
		return 0;
	if (res.outcome == MINIVM_STOPPED)
		return 0;
	if (res.outcome == MINIVM_TIMED_OUT)
		log_error(log, "the VM ran past its vm_timeout_ms and was stopped");
	else if (res.outcome == MINIVM_GUEST_CRASHED)
		log_error(log, "the guest crashed: it reset without reporting an exit status "
			       "(kernel panic, triple fault or init died)");
	else if (res.outcome == MINIVM_VMM_ERROR)
		log_error(log, "the VMM failed (see the vm_exit event)");
	return minivm_exit_status(&res);
}

/*
 * minivm --api-sock PATH [jail options] [--verbose]: the VM is configured
 * and driven through the control socket (vmm/API.md); minivm exits once
 * the VM ended (after MAIN_API_LINGER_MS) or on SIGINT, SIGTERM or SIGHUP
 * (the VM is stopped first).
 */
static int main_api(const struct log *log, const struct cli *cli)
{
	struct minivm_vm_config base;
	struct api_front *f;
	char err[512];
	long linger = -1;
	int r, status;

	main_vm_config(cli, log, &base);
	base.agent = true;
	main_install_signals(false);
	r = api_front_create(cli->api_sock, &base, &f, err, sizeof(err));
	if (r) {
		log_error(log, "%s", err);
		return MINIVM_EXIT_ERROR;
	}
	if (cli->cfg.verbose)
		log_event(log, MINIVM_LOG_INFO, "api_listening", &LOG_STR("path", cli->api_sock), 1,
			  "serving the control socket %s", cli->api_sock);
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
	status = main_signal ? 0 : main_api_status(log, f);
	api_front_destroy(f);
	return main_signal ? main_interrupted(log) : status;
}

/* The --log-format of a command line cli_parse() refused (so that its error
 * comes out as asked): the last valid one before "--", else text. */
static enum log_format main_argv_log_format(int argc, char **argv)
{
	enum log_format fmt = LOG_TEXT, f;

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		const char *v = NULL;

		if (!strcmp(argv[i], "--log-format") && i + 1 < argc)
			v = argv[i + 1];
		else if (!strncmp(argv[i], "--log-format=", 13))
			v = argv[i] + 13;
		if (v && log_parse_format(v, &f) == 0)
			fmt = f;
	}
	return fmt;
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
	struct log log;
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
	if (cli_parse(argc, argv, &cli, err, sizeof(err))) {
		/* A bad --log-format is not known yet: the rest of the line says. */
		log_init(&log, STDERR_FILENO, main_argv_log_format(argc, argv));
		log_error(&log, "%s", err);
		return MINIVM_EXIT_ERROR;
	}
	log_init(&log, STDERR_FILENO, cli.log_format);
	if (cli.action == CLI_HELP) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (cli.action == CLI_VERSION) {
		printf("minivm %s\n", MINIVM_VERSION);
		return 0;
	}
	if (cli.api_sock)
		return main_api(&log, &cli);
	return cli.agent ? main_agent(&log, &cli) : main_boot(&log, &cli);
}
