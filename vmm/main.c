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
#include "vmm/snapshot.h"

#include <sys/random.h>

#define MINIVM_VERSION "0.2.0"

/* How long one agent_connect() attempt may take before minivm looks at
 * signals and the VM again, and how long it keeps trying after ready. */
#define MAIN_CONNECT_SLICE_MS 1000
#define MAIN_CONNECT_TOTAL_MS 120000
/* After a restore the agent listens already, but its answer is guest work
 * that several clones on a busy emulating host may take many seconds to do:
 * an attempt given up after one second leaves a half-open session in the
 * agent, and enough of them fill its session table ("too many sessions",
 * seen with 4 clones at once). A signal still stops the VM at once (its
 * socket then closes). */
#define MAIN_RESTORE_CONNECT_SLICE_MS 30000
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

/* ---- snapshots (vmm/SNAPSHOT.md): the front owns every file ---- */

static int main_agent_connect(struct vmm_proc *vm, const char *sock, int slice_ms, int *fd,
			      char *err, size_t errlen);

static uint64_t main_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* What the front keeps for a snapshot or a restore. */
struct main_snap {
	/* --snapshot-after-ready / template create */
	char dir[4096];
	int mem_fd, state_fd;
	struct snapshot_disk disks[SNAPSHOT_MAX_DISKS];
	unsigned int nr_disks;
	/* --restore / --template */
	struct snapshot_meta meta;
	char paths[SNAPSHOT_MAX_DISKS][4096]; /* the restored VM's disks */
	char copies[SNAPSHOT_MAX_DISKS][512]; /* its own writable copies (in the run dir) */
	unsigned int nr_copies;
	uint64_t t_start, t_validated, t_copied;
};

static void main_snap_init(struct main_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->mem_fd = s->state_fd = -1;
}

static void main_snap_free(struct main_snap *s, struct minivm_config *cfg)
{
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	if (s->state_fd >= 0)
		close(s->state_fd);
	if (cfg->restore_state_fd >= 0)
		close(cfg->restore_state_fd);
	if (cfg->restore_mem_fd >= 0)
		close(cfg->restore_mem_fd);
	cfg->restore_state_fd = cfg->restore_mem_fd = -1;
	for (unsigned int i = 0; i < s->nr_copies; i++)
		(void)unlink(s->copies[i]);
	s->mem_fd = s->state_fd = -1;
	s->nr_copies = 0;
}

/* mkdir -p, mode 0700 for what it makes. */
static int main_mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
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

/* Before the VMM starts: DIR made, new files opened for it to write (new
 * inodes: VMs restored from an older snapshot there keep theirs), the
 * disks described. */
static int main_snapshot_prepare(struct cli *cli, struct main_snap *s, char *err, size_t errlen)
{
	char path[4200];
	int r;

	r = main_mkdirs(s->dir);
	if (r) {
		snprintf(err, errlen, "cannot create the snapshot directory %s: %s", s->dir, strerror(-r));
		return r;
	}
	r = snapshot_disks_describe(&cli->cfg, s->disks, &s->nr_disks, err, errlen);
	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/.%s.tmp", s->dir, SNAPSHOT_MEMORY_NAME);
	(void)unlink(path);
	s->mem_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->mem_fd < 0 || ftruncate(s->mem_fd, (off_t)cli->cfg.mem_bytes) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %.300s: %s", path, strerror(errno));
		return r;
	}
	snprintf(path, sizeof(path), "%s/.%s.tmp", s->dir, SNAPSHOT_STATE_NAME);
	(void)unlink(path);
	s->state_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->state_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %.300s: %s", path, strerror(errno));
		return r;
	}
	cli->cfg.snapshot_mem_fd = s->mem_fd;
	cli->cfg.snapshot_state_fd = s->state_fd;
	cli->cfg.snapshot_disks = s->disks;
	cli->cfg.nr_snapshot_disks = s->nr_disks;
	return 0;
}

/* The path of disk i of cfg as snapshot_disks_describe numbered them. */
static const char *main_disk_path(const struct minivm_config *c, unsigned int i)
{
	if (c->rootfs) {
		if (i == 0)
			return c->rootfs;
		i--;
	}
	return i < c->nr_disks ? c->disks[i].path : NULL;
}

/* With the agent ready: pause and snapshot, copy the writable disks while
 * paused, resume, then put the files in place (state last). */
static int main_snapshot_take(struct cli *cli, struct vmm_proc *vm, struct main_snap *s, char *err,
			      size_t errlen)
{
	char from[4200], to[4200];
	uint64_t t0 = main_now_ns(CLOCK_MONOTONIC);
	int r = vmm_proc_snapshot(vm);

	if (r) {
		snprintf(err, errlen, "%s", vmm_proc_error(vm));
		vmm_proc_resume(vm);
		return r;
	}
	for (unsigned int i = 0; i < s->nr_disks && !r; i++) {
		const char *src = main_disk_path(&cli->cfg, i);
		bool reflinked;
		int in, outfd;

		if (!(s->disks[i].flags & SNAPSHOT_DISK_COPIED) || !src)
			continue;
		snprintf(to, sizeof(to), "%s/.%s.tmp", s->dir, s->disks[i].path);
		(void)unlink(to);
		in = open(src, O_RDONLY | O_CLOEXEC);
		outfd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		r = in < 0 || outfd < 0 ? -errno : snapshot_copy_file(in, outfd, &reflinked);
		if (r)
			snprintf(err, errlen, "copying disk %s into the snapshot: %s", src, strerror(-r));
		if (in >= 0)
			close(in);
		if (outfd >= 0)
			close(outfd);
	}
	vmm_proc_resume(vm);
	for (unsigned int i = 0; i < s->nr_disks && !r; i++) {
		if (!(s->disks[i].flags & SNAPSHOT_DISK_COPIED))
			continue;
		snprintf(from, sizeof(from), "%s/.%s.tmp", s->dir, s->disks[i].path);
		snprintf(to, sizeof(to), "%s/%s", s->dir, s->disks[i].path);
		if (rename(from, to) < 0)
			r = -errno;
	}
	snprintf(from, sizeof(from), "%s/.%s.tmp", s->dir, SNAPSHOT_MEMORY_NAME);
	snprintf(to, sizeof(to), "%s/%s", s->dir, SNAPSHOT_MEMORY_NAME);
	if (!r && rename(from, to) < 0)
		r = -errno;
	snprintf(from, sizeof(from), "%s/.%s.tmp", s->dir, SNAPSHOT_STATE_NAME);
	snprintf(to, sizeof(to), "%s/%s", s->dir, SNAPSHOT_STATE_NAME);
	if (!r && rename(from, to) < 0)
		r = -errno;
	if (r && !err[0])
		snprintf(err, errlen, "putting the snapshot in place in %s: %s", s->dir, strerror(-r));
	if (!r && (cli->cfg.verbose || cli->print_timings))
		fprintf(stderr, "minivm: snapshot written to %s in %.3f ms (VM paused meanwhile)\n",
			s->dir, (double)(main_now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	return r;
}

/*
 * --restore DIR: the state file read and validated, the memory file
 * checked against it, read-only disks checked, writable disks copied into
 * the run directory (each VM its own), and cfg made the snapshot's.
 */
static int main_restore_prepare(struct cli *cli, const char *rundir, struct main_snap *s,
				char *err, size_t errlen)
{
	struct minivm_config *c = &cli->cfg;
	char path[4200], why[400];
	struct snap_reader rd;
	uint8_t *buf = NULL;
	size_t len;
	int r;

	s->t_start = main_now_ns(CLOCK_MONOTONIC);
	snprintf(path, sizeof(path), "%s/%s", cli->restore_dir, SNAPSHOT_STATE_NAME);
	c->restore_state_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->restore_state_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "restore: cannot open %.300s: %s", path, strerror(errno));
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", cli->restore_dir, SNAPSHOT_MEMORY_NAME);
	c->restore_mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->restore_mem_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "restore: cannot open %.300s: %s", path, strerror(errno));
		return r;
	}
	r = snapshot_state_read(c->restore_state_fd, &buf, &len, &rd, why, sizeof(why));
	if (!r)
		r = snapshot_meta_parse(&rd, &s->meta, why, sizeof(why));
	free(buf);
	if (!r)
		r = snapshot_check_memory(c->restore_mem_fd, &s->meta, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "restore %s: %s", cli->restore_dir, why);
		return r;
	}
	s->t_validated = main_now_ns(CLOCK_MONOTONIC);
	for (unsigned int i = 0; i < s->meta.nr_disks; i++) {
		const struct snapshot_disk *d = &s->meta.disks[i];
		bool ro = d->flags & SNAPSHOT_DISK_RO;

		if (ro) {
			r = snapshot_check_disk(d, why, sizeof(why));
			if (r) {
				snprintf(err, errlen, "restore %s: %s", cli->restore_dir, why);
				return r;
			}
			snprintf(s->paths[i], sizeof(s->paths[i]), "%s", d->path);
		} else {
			bool reflinked;
			int in, out;

			snprintf(path, sizeof(path), "%s/%s", cli->restore_dir, d->path);
			snprintf(s->paths[i], sizeof(s->paths[i]), "%s/%s", rundir, d->path);
			in = open(path, O_RDONLY | O_CLOEXEC);
			out = open(s->paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (out >= 0)
				snprintf(s->copies[s->nr_copies++], sizeof(s->copies[0]), "%s", s->paths[i]);
			r = in < 0 || out < 0 ? -errno : snapshot_copy_file(in, out, &reflinked);
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
			if (r) {
				snprintf(err, errlen, "restore: copying %.300s: %s", path,
					 strerror(-r));
				return r;
			}
			if (c->verbose)
				fprintf(stderr, "minivm: restore: disk %u: own copy %s (%s)\n", i,
					s->paths[i], reflinked ? "reflink" : "sparse copy");
		}
		if (s->meta.has_rootfs && i == 0) {
			c->rootfs = s->paths[i];
			c->rootfs_rw = !ro;
		} else {
			unsigned int k = c->nr_disks++;

			memset(&c->disks[k], 0, sizeof(c->disks[k]));
			c->disks[k].path = s->paths[i];
			c->disks[k].read_only = ro;
		}
	}
	s->t_copied = main_now_ns(CLOCK_MONOTONIC);
	c->kernel = NULL;
	c->mem_bytes = s->meta.ram_size;
	c->cpus = s->meta.nr_vcpus;
	c->guest_cid = s->meta.guest_cid;
	return 0;
}

/* After a restore: the guest's wall clock set to the host's and its CRNG
 * reseeded with fresh host bytes, by the agent's fix-up tool, so that
 * clones never share randomness or a stale clock. */
static int main_restore_fixup(struct vmm_proc *vm, const char *sock, int ctl_fd, char *err,
			      size_t errlen)
{
	struct agent_exec_result xres;
	struct agent_exec_req req;
	struct agent_exec_io io;
	uint8_t seed[32];
	char ns[32], hex[2 * sizeof(seed) + 1];
	const char *argv[] = { "/proc/self/exe", "fixup", "--time", ns, "--seed", hex, NULL };
	int fd = -1, r;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(seed); i++)
		snprintf(hex + 2 * i, 3, "%02x", seed[i]);
	r = main_agent_connect(vm, sock, MAIN_RESTORE_CONNECT_SLICE_MS, &fd, err, errlen);
	if (r)
		return r;
	{
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(ns, sizeof(ns), "%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
	}
	memset(&req, 0, sizeof(req));
	req.argv = argv;
	req.timeout_s = 60;
	io.in_fd = -1;
	io.out_fd = -1;
	io.err_fd = STDERR_FILENO;
	io.ctl_fd = ctl_fd;
	io.winsize_fd = -1;
	r = agent_exec(fd, &req, &io, &xres, err, errlen);
	close(fd);
	explicit_bzero(seed, sizeof(seed));
	explicit_bzero(hex, sizeof(hex));
	if (r)
		return r;
	if (agent_exec_exit_status(&xres) != 0) {
		snprintf(err, errlen, "the guest's fix-up (clock, random reseed) failed with status %d",
			 agent_exec_exit_status(&xres));
		return -EIO;
	}
	return 0;
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
static int main_agent_connect(struct vmm_proc *vm, const char *sock, int slice_ms, int *fd,
			      char *err, size_t errlen)
{
	struct timespec t0, now;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long elapsed_ms;

		r = agent_connect(sock, AGENT_VSOCK_PORT, slice_ms, fd, err, errlen);
		/* A reset during the handshake is retried too: right after a
		 * restore the guest's vsock transport reset may close the
		 * first connection. */
		if (r != -ETIMEDOUT && r != -ECONNRESET)
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
	static struct main_snap snap; /* --snapshot-after-ready, --restore (large) */
	uint64_t t_started = 0, t_ready = 0, t_fixed = 0;
	char err[512];

	main_snap_init(&snap);
	if (main_rundir_create(&rd))
		return MINIVM_EXIT_ERROR;
	if (cli->template_name && (cli->template_create || !cli->restore_dir)) {
		r = main_template_dir(cli->template_name, snap.dir, sizeof(snap.dir));
		if (r) {
			fprintf(stderr, "minivm: no template directory: set MINIVM_CACHE or HOME\n");
			goto out;
		}
		if (cli->template_create)
			cli->snapshot_dir = snap.dir;
		else
			cli->restore_dir = snap.dir;
	} else if (cli->snapshot_dir) {
		snprintf(snap.dir, sizeof(snap.dir), "%s", cli->snapshot_dir);
	}
	if (cli->restore_dir) {
		r = main_restore_prepare(cli, rd.dir, &snap, err, sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			goto out;
		}
	}
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
	if (cli->snapshot_dir) {
		r = main_snapshot_prepare(cli, &snap, err, sizeof(err));
		if (r) {
			fprintf(stderr, "minivm: %s\n", err);
			goto out;
		}
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
	t_started = main_now_ns(CLOCK_MONOTONIC);
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
	r = main_agent_connect(vm, cli->cfg.vsock_uds,
			       cli->restore_dir ? MAIN_RESTORE_CONNECT_SLICE_MS : MAIN_CONNECT_SLICE_MS, &fd,
			       err, sizeof(err));
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
	/* The agent answered HELLO: it is ready, for real. */
	t_ready = main_now_ns(CLOCK_MONOTONIC);
	if (cli->snapshot_dir) {
		/* No connection open across the snapshot. */
		close(fd);
		fd = -1;
		r = main_snapshot_take(cli, vm, &snap, err, sizeof(err));
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: snapshot: %s\n", err);
			goto stop;
		}
		if (cli->template_create) {
			fprintf(stderr, "minivm: template '%s' created in %s\n", cli->template_name,
				snap.dir);
			status = 0;
			got_result = true;
			goto stop;
		}
		r = main_agent_connect(vm, cli->cfg.vsock_uds, MAIN_CONNECT_SLICE_MS, &fd, err,
				       sizeof(err));
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: no answer from the guest agent after the "
						"snapshot: %s\n", err);
			goto stop;
		}
	}
	if (cli->restore_dir) {
		r = main_restore_fixup(vm, cli->cfg.vsock_uds, ctl[0], err, sizeof(err));
		if (r) {
			if (!main_signal)
				fprintf(stderr, "minivm: restore: %s\n", err);
			goto stop;
		}
		t_fixed = main_now_ns(CLOCK_MONOTONIC);
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
	if (!cli->restore_dir && main_has_writable_disk(&cli->cfg, rd.scratch) && !main_signal) {
		r = main_agent_connect(vm, cli->cfg.vsock_uds, MAIN_CONNECT_SLICE_MS, &fd, err,
				       sizeof(err));
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
		if (cli->print_timings && cli->restore_dir) {
			const struct minivm_timings *t = &res.timings;
			const double ms = 1e6;

			/* Front clock (CLOCK_MONOTONIC) for the front's phases; the
			 * VMM's are from its minivm_create() start. */
			fprintf(stderr, "minivm: timing restore_open_validate %.3f ms (front)\n",
				(snap.t_validated - snap.t_start) / ms);
			fprintf(stderr, "minivm: timing restore_disks %.3f ms (front: checks, copies)\n",
				(snap.t_copied - snap.t_validated) / ms);
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
				t_started ? (t_started - snap.t_start) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_agent_ready %.3f ms (guest: VM running to "
					"HELLO answered)\n",
				t_ready && t_started ? (t_ready - t_started) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_fixup %.3f ms (guest: clock, reseed)\n",
				t_fixed && t_ready ? (t_fixed - t_ready) / ms : -1.0);
			fprintf(stderr, "minivm: timing restore_to_ready %.3f ms (total)\n",
				t_ready ? (t_ready - snap.t_start) / ms : -1.0);
		} else if (cli->print_timings) {
			main_print_timings(&res.timings);
		}
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
	main_snap_free(&snap, &cli->cfg);
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
