/* The library front (minivm.h, "The front"): prepares a VM's host files, starts its jailed VMM process and drives the guest agent, with no global state. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/agent_client.h"
#include "vmm/cli.h"
#include "vmm/front.h"
#include "vmm/front_files.h"
#include "vmm/minivm.h"
#include "vmm/oci.h"
#include "vmm/scratch.h"
#include "vmm/snapshot.h"
#include "vmm/vmm_proc.h"

/* How long one agent_connect() attempt may take before the front looks at
 * a stop and the VM's end again, and how long it keeps trying. After a
 * restore the attempts are long: an attempt abandoned early leaves a
 * half-open session in the agent (vmm/main.c's history: "too many
 * sessions" with 4 clones on a busy host). */
#define FRONT_CONNECT_SLICE_MS 1000
#define FRONT_RESTORE_CONNECT_SLICE_MS 30000
#define FRONT_CONNECT_TOTAL_MS 120000
/* How often a running exec looks at whether the VM ended. */
#define FRONT_EXEC_CHECK_MS 1000
#define FRONT_IO_CHUNK 16384
/* How long minivm_vm_metrics() waits for the VMM's answer. */
#define FRONT_METRICS_WAIT_MS 2000

_Static_assert(MINIVM_JAIL_DEFAULT_ID == JAIL_DEFAULT_ID, "minivm.h and jail.h agree");

enum front_state {
	FRONT_CREATED = 0, /* files prepared, no process */
	FRONT_RUNNING,     /* the VMM process runs the VM */
	FRONT_WAITED,      /* minivm_vm_wait() took the result */
};

struct minivm_vm {
	pthread_mutex_t lock; /* the vmm_proc (one reader of its events), state, err */
	enum front_state state;
	struct minivm_config cfg; /* the machine, strings owned (strs) or into this struct */
	struct jail_config jail;
	bool agent;
	char **strs;              /* every string copied from the caller's config */
	size_t nr_strs;
	const char **allow;       /* cfg.net.allow's copy */
	struct vmm_proc *proc;
	int stop_efd;             /* written by minivm_vm_stop(): running execs abort */
	volatile sig_atomic_t stop_requested;
	volatile sig_atomic_t paused;
	pid_t vmm_pid;            /* for pause (SIGSTOP) and a stop while paused (SIGCONT) */
	const char *vmm_path;     /* cfg.vmm_path, copied (NULL: the default) */
	/* With a log callback, the VMM process's stderr is a pipe whose lines
	 * a thread of ours passes to it (front_relay_*). */
	int relay_rd;
	pthread_t relay;
	bool relay_on;
	minivm_event_fn event_fn; /* the config's, given to vmm_proc at start */
	void *event_opaque;
	_Atomic uint64_t commands_started, commands_exited, commands_failed;
	bool ready;
	bool restored;
	bool have_result;
	int result_r;
	struct minivm_result res;
	struct minivm_vm_times times;

	/* The run directory and what lives there. */
	char dir[256];
	char sock[300];
	char console[300];
	char scratch[300]; /* the scratch disk's image, or "" */
	bool own_sock, own_console;
	char scratch_cmdline[8192];
	struct front_files ff;

	/* Snapshot (cfg.snapshot_dir) and restore (cfg.restore_dir). */
	char snap_dir[4096];
	int snap_mem_fd, snap_state_fd;
	struct snapshot_disk snap_disks[SNAPSHOT_MAX_DISKS];
	unsigned int nr_snap_disks;
	bool snap_taken;
	int restore_state_fd, restore_mem_fd;
	struct snapshot_meta meta;
	char paths[SNAPSHOT_MAX_DISKS][4096]; /* the restored VM's disks */
	char copies[SNAPSHOT_MAX_DISKS][512]; /* its own writable copies (in the run dir) */
	unsigned int nr_copies;

	char err[600];
};

static uint64_t front_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long front_now_ms(void)
{
	return (long)(front_now_ns() / 1000000ULL);
}

__attribute__((format(printf, 2, 3))) static void front_fail(struct minivm_vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
}

/* ---- config copy ---- */

/* A copy of s owned by vm (NULL stays NULL); -ENOMEM. */
static int front_strdup(struct minivm_vm *vm, const char *s, const char **out)
{
	char **n;

	*out = NULL;
	if (!s)
		return 0;
	n = realloc(vm->strs, (vm->nr_strs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	vm->strs = n;
	n[vm->nr_strs] = strdup(s);
	if (!n[vm->nr_strs])
		return -ENOMEM;
	*out = n[vm->nr_strs++];
	return 0;
}

static int front_copy_config(struct minivm_vm *vm, const struct minivm_config *in)
{
	struct minivm_config *c = &vm->cfg;
	int r = 0;

	*c = *in;
	r |= front_strdup(vm, in->kernel, &c->kernel);
	r |= front_strdup(vm, in->rootfs, &c->rootfs);
	for (unsigned int i = 0; i < in->nr_disks && i < MINIVM_MAX_DISKS; i++)
		r |= front_strdup(vm, in->disks[i].path, &c->disks[i].path);
	r |= front_strdup(vm, in->run, &c->run);
	r |= front_strdup(vm, in->cmdline, &c->cmdline);
	r |= front_strdup(vm, in->console, &c->console);
	r |= front_strdup(vm, in->vsock_uds, &c->vsock_uds);
	r |= front_strdup(vm, in->net.tap, &c->net.tap);
	r |= front_strdup(vm, in->net.policy_file, &c->net.policy_file);
	c->net.allow = NULL;
	if (in->net.nr_allow) {
		vm->allow = calloc(in->net.nr_allow, sizeof(*vm->allow));
		if (!vm->allow)
			return -ENOMEM;
		for (unsigned int i = 0; i < in->net.nr_allow; i++)
			r |= front_strdup(vm, in->net.allow[i], &vm->allow[i]);
		c->net.allow = vm->allow;
	}
	/* The front owns these. */
	c->vsock_uds_jailed = NULL;
	c->seccomp = false;
	c->snapshot_mem_fd = c->snapshot_state_fd = -1;
	c->snapshot_disks = NULL;
	c->nr_snapshot_disks = 0;
	c->restore_state_fd = c->restore_mem_fd = -1;
	return r ? -ENOMEM : 0;
}

/* ---- the run directory ---- */

static int front_rundir_create(struct minivm_vm *vm)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int r;

	if (!base || base[0] != '/' || stat(base, &st) || !S_ISDIR(st.st_mode) ||
	    access(base, W_OK | X_OK))
		base = getenv("TMPDIR");
	if (!base || base[0] != '/' || stat(base, &st) || !S_ISDIR(st.st_mode) ||
	    access(base, W_OK | X_OK))
		base = "/tmp";
	/* Unix socket paths hold 107 bytes: keep the directory short. */
	if (snprintf(vm->dir, sizeof(vm->dir), "%s/minivm.XXXXXX", base) >= 80)
		snprintf(vm->dir, sizeof(vm->dir), "/tmp/minivm.XXXXXX");
	if (!mkdtemp(vm->dir)) {
		r = -errno;
		front_fail(vm, "cannot create a run directory %s: %s", vm->dir, strerror(errno));
		vm->dir[0] = '\0';
		return r;
	}
	snprintf(vm->sock, sizeof(vm->sock), "%s/vsock.sock", vm->dir);
	snprintf(vm->console, sizeof(vm->console), "%s/console.log", vm->dir);
	return 0;
}

/* ---- snapshots and restores (vmm/SNAPSHOT.md): the front owns every file ---- */

/* mkdir -p, mode 0700 for what it makes. */
static int front_mkdirs(const char *path)
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

/* Before the VMM starts: the directory made, new files opened for the VMM
 * to write (new inodes: VMs restored from an older snapshot there keep
 * theirs), the disks described. */
static int front_snapshot_prepare(struct minivm_vm *vm)
{
	char path[4200], why[400];
	int r;

	r = front_mkdirs(vm->snap_dir);
	if (r) {
		front_fail(vm, "cannot create the snapshot directory %s: %s", vm->snap_dir,
			   strerror(-r));
		return r;
	}
	r = snapshot_disks_describe(&vm->cfg, vm->snap_disks, &vm->nr_snap_disks, why, sizeof(why));
	if (r) {
		front_fail(vm, "%s", why);
		return r;
	}
	snprintf(path, sizeof(path), "%s/.%s.tmp", vm->snap_dir, SNAPSHOT_MEMORY_NAME);
	(void)unlink(path);
	vm->snap_mem_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (vm->snap_mem_fd < 0 || ftruncate(vm->snap_mem_fd, (off_t)vm->cfg.mem_bytes) < 0) {
		r = -errno;
		front_fail(vm, "cannot create %.300s: %s", path, strerror(errno));
		return r;
	}
	snprintf(path, sizeof(path), "%s/.%s.tmp", vm->snap_dir, SNAPSHOT_STATE_NAME);
	(void)unlink(path);
	vm->snap_state_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (vm->snap_state_fd < 0) {
		r = -errno;
		front_fail(vm, "cannot create %.300s: %s", path, strerror(errno));
		return r;
	}
	vm->cfg.snapshot_mem_fd = vm->snap_mem_fd;
	vm->cfg.snapshot_state_fd = vm->snap_state_fd;
	vm->cfg.snapshot_disks = vm->snap_disks;
	vm->cfg.nr_snapshot_disks = vm->nr_snap_disks;
	return 0;
}

/* The path of disk i of cfg as snapshot_disks_describe() numbered them. */
static const char *front_disk_path(const struct minivm_config *c, unsigned int i)
{
	if (c->rootfs) {
		if (i == 0)
			return c->rootfs;
		i--;
	}
	return i < c->nr_disks ? c->disks[i].path : NULL;
}

/* dst = a or "a/b", truncated (through a local buffer: both may be in
 * the same struct as dst, which GCC's -Wrestrict cannot tell apart). */
static void front_set_path(char *dst, size_t len, const char *a, const char *b)
{
	char tmp[4200];
	int n = b ? snprintf(tmp, sizeof(tmp), "%s/%s", a, b) : snprintf(tmp, sizeof(tmp), "%s", a);

	if (n < 0)
		n = 0;
	if ((size_t)n >= len)
		n = (int)len - 1;
	memcpy(dst, tmp, (size_t)n);
	dst[n] = '\0';
}

/*
 * The restore's preparation: the state file read and validated, the
 * memory file checked against it, read-only disks checked, writable disks
 * copied into the run directory (each VM its own), cfg made the snapshot's.
 */
static int front_restore_prepare(struct minivm_vm *vm, const char *rdir)
{
	struct minivm_config *c = &vm->cfg;
	char path[4200], why[400];
	struct snap_reader rd;
	uint8_t *buf = NULL;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/%s", rdir, SNAPSHOT_STATE_NAME);
	vm->restore_state_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (vm->restore_state_fd < 0) {
		r = -errno;
		front_fail(vm, "restore: cannot open %.300s: %s", path, strerror(errno));
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", rdir, SNAPSHOT_MEMORY_NAME);
	vm->restore_mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (vm->restore_mem_fd < 0) {
		r = -errno;
		front_fail(vm, "restore: cannot open %.300s: %s", path, strerror(errno));
		return r;
	}
	r = snapshot_state_read(vm->restore_state_fd, &buf, &len, &rd, why, sizeof(why));
	if (!r)
		r = snapshot_meta_parse(&rd, &vm->meta, why, sizeof(why));
	free(buf);
	if (!r)
		r = snapshot_check_memory(vm->restore_mem_fd, &vm->meta, why, sizeof(why));
	if (r) {
		front_fail(vm, "restore %s: %s", rdir, why);
		return r;
	}
	vm->times.restore_validated_ns = front_now_ns();
	c->nr_disks = 0;
	c->rootfs = NULL;
	for (unsigned int i = 0; i < vm->meta.nr_disks; i++) {
		const struct snapshot_disk *d = &vm->meta.disks[i];
		bool ro = d->flags & SNAPSHOT_DISK_RO;

		if (ro) {
			r = snapshot_check_disk(d, why, sizeof(why));
			if (r) {
				front_fail(vm, "restore %s: %s", rdir, why);
				return r;
			}
			front_set_path(vm->paths[i], sizeof(vm->paths[i]), d->path, NULL);
		} else {
			bool reflinked;
			int in, out;

			snprintf(path, sizeof(path), "%s/%s", rdir, d->path);
			front_set_path(vm->paths[i], sizeof(vm->paths[i]), vm->dir, d->path);
			in = open(path, O_RDONLY | O_CLOEXEC);
			out = open(vm->paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (out >= 0)
				front_set_path(vm->copies[vm->nr_copies++], sizeof(vm->copies[0]),
					       vm->paths[i], NULL);
			r = in < 0 || out < 0 ? -errno : snapshot_copy_file(in, out, &reflinked);
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
			if (r) {
				front_fail(vm, "restore: copying %.300s: %s", path, strerror(-r));
				return r;
			}
			if (c->verbose)
				front_log(&vm->ff.log, MINIVM_LOG_DEBUG,
					  "restore: disk %u: own copy %s (%s)", i, vm->paths[i],
					  reflinked ? "reflink" : "sparse copy");
		}
		if (vm->meta.has_rootfs && i == 0) {
			c->rootfs = vm->paths[i];
			c->rootfs_rw = !ro;
		} else {
			unsigned int k = c->nr_disks++;

			memset(&c->disks[k], 0, sizeof(c->disks[k]));
			c->disks[k].path = vm->paths[i];
			c->disks[k].read_only = ro;
		}
	}
	vm->times.restore_copied_ns = front_now_ns();
	c->kernel = NULL;
	c->mem_bytes = vm->meta.ram_size;
	c->cpus = vm->meta.nr_vcpus;
	c->guest_cid = vm->meta.guest_cid;
	c->restore_state_fd = vm->restore_state_fd;
	c->restore_mem_fd = vm->restore_mem_fd;
	vm->restored = true;
	return 0;
}

/* An OCI root becomes an ext4 image (cached) with the agent as init
 * (vmm/front_files.c, which speaks struct cli: a scratch one here). */
static int front_oci_prepare(struct minivm_vm *vm)
{
	const char *root = vm->cfg.rootfs;
	struct cli *cli;
	char why[512];
	int r;

	if (!root || (strncmp(root, "oci:", 4) && strncmp(root, "oci-archive:", 12))) {
		vm->ff.ext4_base = root; /* for a save of the overlay (front_save) */
		return 0;
	}
	if (!vm->agent) {
		front_fail(vm, "an OCI root boots the agent as init: set agent");
		return -EINVAL;
	}
	if (vm->cfg.cmdline && strstr(vm->cfg.cmdline, "init=")) {
		front_fail(vm, "an OCI root boots the agent as init: not with init= in the cmdline");
		return -EINVAL;
	}
	cli = calloc(1, sizeof(*cli));
	if (!cli) {
		front_fail(vm, "out of memory");
		return -ENOMEM;
	}
	cli->cfg = vm->cfg;
	cli->rootfs_oci = true;
	cli->agent = true;
	r = front_rootfs_prepare(cli, &vm->ff, vm->dir, why, sizeof(why));
	if (r)
		front_fail(vm, "%s", why);
	else {
		vm->cfg.rootfs = cli->cfg.rootfs;
		vm->cfg.cmdline = cli->cfg.cmdline;
	}
	free(cli);
	return r;
}

/* ---- create, start ---- */

void minivm_vm_config_init(struct minivm_vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	minivm_config_init(&cfg->vm);
	cfg->agent = true;
	cfg->jail_uid = cfg->jail_gid = MINIVM_JAIL_DEFAULT_ID;
}

void minivm_exec_init(struct minivm_exec *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->stdin_fd = cmd->stdout_fd = cmd->stderr_fd = -1;
	cmd->ctl_fd = cmd->winsize_fd = -1;
}

/* What minivm_vm_create() can tell without any file. */
static int front_check_config(const struct minivm_vm_config *cfg, char *err, size_t errlen)
{
	const struct minivm_config *c = &cfg->vm;

	if (cfg->restore_dir && cfg->snapshot_dir) {
		snprintf(err, errlen, "snapshot_dir boots a VM: not with restore_dir");
		return -EINVAL;
	}
	if (cfg->restore_dir && !cfg->agent) {
		snprintf(err, errlen, "a restore runs commands through the agent: set agent");
		return -EINVAL;
	}
	if (cfg->restore_dir && (c->kernel || c->rootfs || c->nr_disks)) {
		snprintf(err, errlen, "restore_dir: the snapshot names the machine: no kernel, "
				      "rootfs or disks");
		return -EINVAL;
	}
	if (!cfg->restore_dir && !c->kernel) {
		snprintf(err, errlen, "no kernel given");
		return -EINVAL;
	}
	if (c->nr_disks > MINIVM_MAX_DISKS || c->cpus > MINIVM_MAX_CPUS) {
		snprintf(err, errlen, "too many disks or vCPUs");
		return -EINVAL;
	}
	if (c->restore_state_fd >= 0 || c->restore_mem_fd >= 0 || c->snapshot_mem_fd >= 0 ||
	    c->snapshot_state_fd >= 0 || c->nr_snapshot_disks) {
		snprintf(err, errlen, "the snapshot and restore fds are the front's: use "
				      "snapshot_dir and restore_dir");
		return -EINVAL;
	}
	if ((c->net.nr_allow && !c->net.allow) || c->net.nr_allow > MINIVM_MAX_NET_RULES) {
		snprintf(err, errlen, "net.nr_allow rules without net.allow, or too many");
		return -EINVAL;
	}
	if (cfg->jail > MINIVM_JAIL_REQUIRED || cfg->scratch > MINIVM_SCRATCH_NONE) {
		snprintf(err, errlen, "bad jail or scratch mode");
		return -EINVAL;
	}
	if ((cfg->scratch == MINIVM_SCRATCH_DISK || cfg->scratch == MINIVM_SCRATCH_TMPFS) &&
	    !cfg->agent) {
		snprintf(err, errlen, "a scratch layer is set up by the agent: set agent");
		return -EINVAL;
	}
	if (cfg->scratch_size && (cfg->scratch_size < SCRATCH_MIN_SIZE ||
				  cfg->scratch_size > SCRATCH_MAX_SIZE)) {
		snprintf(err, errlen, "scratch_size out of range");
		return -EINVAL;
	}
	if (cfg->snapshot_dir && c->net.tap) {
		snprintf(err, errlen, "snapshots are of VMs without a NIC");
		return -EINVAL;
	}
	if (c->kernel && access(c->kernel, R_OK) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot open kernel '%s': %s", c->kernel, strerror(errno));
		return r;
	}
	return 0;
}

int minivm_vm_create(const struct minivm_vm_config *cfg, struct minivm_vm **out, char *err,
		     size_t errlen)
{
	struct minivm_vm *vm;
	enum scratch_mode mode;
	int r;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	r = front_check_config(cfg, err, errlen);
	if (r)
		return r;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->times.create_ns = front_now_ns();
	vm->snap_mem_fd = vm->snap_state_fd = -1;
	vm->restore_state_fd = vm->restore_mem_fd = -1;
	vm->stop_efd = -1;
	vm->relay_rd = -1;
	vm->agent = cfg->agent;
	vm->ff.log.fn = cfg->log_fn;
	vm->ff.log.ctx = cfg->log_ctx;
	vm->event_fn = cfg->event_fn;
	vm->event_opaque = cfg->event_opaque;
	r = pthread_mutex_init(&vm->lock, NULL);
	if (r) {
		free(vm);
		snprintf(err, errlen, "pthread_mutex_init: %s", strerror(r));
		return -r;
	}
	jail_config_init(&vm->jail);
	vm->jail.mode = cfg->jail == MINIVM_JAIL_OFF	     ? JAIL_OFF
			: cfg->jail == MINIVM_JAIL_REQUIRED ? JAIL_REQUIRED
							    : JAIL_AUTO;
	vm->jail.uid = cfg->jail_uid;
	vm->jail.gid = cfg->jail_gid;
	vm->jail.cpu_quota_pct = cfg->cpu_quota_pct;
	r = front_copy_config(vm, &cfg->vm);
	if (!r)
		r = front_strdup(vm, cfg->vmm_path, &vm->vmm_path);
	if (r) {
		front_fail(vm, "out of memory");
		goto fail;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		r = -errno;
		front_fail(vm, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r = front_rundir_create(vm);
	if (r)
		goto fail;
	if (cfg->restore_dir) {
		r = front_restore_prepare(vm, cfg->restore_dir);
		if (r)
			goto fail;
	}
	if (!vm->cfg.vsock_uds) {
		vm->cfg.vsock_uds = vm->sock;
		vm->own_sock = true;
	} else {
		snprintf(vm->sock, sizeof(vm->sock), "%s", vm->cfg.vsock_uds);
	}
	if (!vm->cfg.console && vm->agent) {
		vm->cfg.console = vm->console;
		vm->own_console = true;
	} else if (vm->cfg.console) {
		snprintf(vm->console, sizeof(vm->console), "%s", vm->cfg.console);
	} else {
		vm->console[0] = '\0';
	}
	r = front_oci_prepare(vm);
	if (r)
		goto fail;
	switch (cfg->restore_dir ? MINIVM_SCRATCH_NONE : cfg->scratch) {
	case MINIVM_SCRATCH_DISK:
		mode = SCRATCH_DISK;
		break;
	case MINIVM_SCRATCH_TMPFS:
		mode = SCRATCH_TMPFS;
		break;
	case MINIVM_SCRATCH_NONE:
		mode = SCRATCH_NONE;
		break;
	default:
		mode = cfg->agent && !vm->cfg.rootfs_rw ? SCRATCH_DISK : SCRATCH_NONE;
		break;
	}
	if (mode != SCRATCH_NONE && vm->cfg.rootfs_rw) {
		front_fail(vm, "a scratch layer over a read-write root makes no sense");
		r = -EINVAL;
		goto fail;
	}
	{
		char why[512];

		uint64_t size = cfg->scratch_size;

		if (!size && mode == SCRATCH_DISK) /* as cli.c: a tmpfs keeps 0 (its default) */
			size = SCRATCH_DEFAULT_SIZE;
		r = scratch_setup(&vm->cfg, mode, size, vm->dir, vm->scratch,
				  sizeof(vm->scratch), vm->scratch_cmdline, sizeof(vm->scratch_cmdline),
				  why, sizeof(why));
		if (r) {
			front_fail(vm, "%s", why);
			goto fail;
		}
	}
	if (cfg->snapshot_dir) {
		snprintf(vm->snap_dir, sizeof(vm->snap_dir), "%s", cfg->snapshot_dir);
		r = front_snapshot_prepare(vm);
		if (r)
			goto fail;
	}
	*out = vm;
	return 0;
fail:
	snprintf(err, errlen, "%s", vm->err);
	minivm_vm_destroy(vm);
	return r;
}

/* ---- the VMM process's stderr, relayed to the log callback ---- */

/* One line of the VMM process (its messages start "minivm: "): the level
 * from its form, the text as it was. */
static void front_relay_line(const struct minivm_vm *vm, char *line)
{
	enum minivm_log_level level = MINIVM_LOG_WARN;
	const char *msg = line;

	if (strncmp(msg, "minivm: ", 8) == 0)
		msg += 8;
	if (msg[0] == '[' || strncmp(msg, "info:", 5) == 0)
		level = MINIVM_LOG_INFO; /* -v's timestamped steps, notes */
	else if (strncmp(msg, "error", 5) == 0)
		level = MINIVM_LOG_ERROR;
	vm->ff.log.fn(vm->ff.log.ctx, level, msg);
}

/* The relay thread: lines (a longer one in pieces) until every writer is gone. */
static void *front_relay_thread(void *arg)
{
	struct minivm_vm *vm = arg;
	char buf[1024];
	size_t len = 0;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		ssize_t n = read(vm->relay_rd, buf + len, sizeof(buf) - 1 - len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			front_relay_line(vm, buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		if (len == sizeof(buf) - 1) {
			buf[len] = '\0';
			front_relay_line(vm, buf);
			len = 0;
		}
	}
	if (len) {
		buf[len] = '\0';
		front_relay_line(vm, buf);
	}
	return NULL;
}

/* Before the VMM process starts: its stderr's pipe and the thread reading
 * it; *wr (the write end, the caller closes it once the process has its
 * copy) is -1 without a log callback or on failure (stderr is then ours). */
static void front_relay_start(struct minivm_vm *vm, int *wr)
{
	int p[2];

	*wr = -1;
	if (!vm->ff.log.fn || pipe2(p, O_CLOEXEC) < 0)
		return;
	vm->relay_rd = p[0];
	if (pthread_create(&vm->relay, NULL, front_relay_thread, vm) != 0) {
		close(p[0]);
		close(p[1]);
		vm->relay_rd = -1;
		return;
	}
	vm->relay_on = true;
	*wr = p[1];
}

/* After the VMM's processes are gone: the last lines, then the thread. */
static void front_relay_end(struct minivm_vm *vm)
{
	if (vm->relay_on)
		pthread_join(vm->relay, NULL);
	vm->relay_on = false;
	if (vm->relay_rd >= 0)
		close(vm->relay_rd);
	vm->relay_rd = -1;
}

int minivm_vm_start(struct minivm_vm *vm)
{
	struct vmm_proc_opts opts = { .stderr_fd = -1 };
	char why[512];
	int r;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != FRONT_CREATED || vm->proc) {
		front_fail(vm, "the VM was started already");
		r = -EINVAL;
		goto out;
	}
	if (vm->stop_requested) {
		front_fail(vm, "stopped before it started");
		r = -ECANCELED;
		goto out;
	}
	front_relay_start(vm, &opts.stderr_fd);
	opts.vmm_path = vm->vmm_path;
	opts.log_fn = vm->ff.log.fn;
	opts.log_ctx = vm->ff.log.ctx;
	r = vmm_proc_start(&vm->cfg, &vm->jail, vm->dir, &opts, &vm->proc, why, sizeof(why));
	if (opts.stderr_fd >= 0)
		close(opts.stderr_fd);
	if (r) {
		front_relay_end(vm); /* its processes are gone: the last lines come */
		front_fail(vm, "%s", why);
		goto out;
	}
	vm->vmm_pid = vmm_proc_pid(vm->proc);
	vmm_proc_set_event_fn(vm->proc, vm->event_fn, vm->event_opaque);
	vm->state = FRONT_RUNNING;
	vm->times.started_ns = front_now_ns();
	/* A stop that came meanwhile (it could not reach the process yet). */
	if (vm->stop_requested)
		vmm_proc_stop(vm->proc);
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* ---- the VM's state ---- */

/* Under vm->lock: takes in the VMM's events; whether the VM ended. */
static bool front_ended_locked(struct minivm_vm *vm)
{
	if (vm->state != FRONT_RUNNING)
		return true;
	if (!vm->proc) /* front_vm_test_running(): an agent without a VMM */
		return false;
	return vmm_proc_ended(vm->proc);
}

bool minivm_vm_ended(struct minivm_vm *vm)
{
	bool e;

	pthread_mutex_lock(&vm->lock);
	e = front_ended_locked(vm);
	pthread_mutex_unlock(&vm->lock);
	return e;
}

static bool front_stopping(const struct minivm_vm *vm)
{
	return vm->stop_requested != 0;
}

/* Checks the VM may take a command: 0, or -EINVAL / -ECHILD / -ECANCELED with vm->err set. */
static int front_check_running(struct minivm_vm *vm, char *msg, size_t msglen)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == FRONT_CREATED) {
		snprintf(msg, msglen, "the VM is not started");
		r = -EINVAL;
	} else if (!vm->agent) {
		snprintf(msg, msglen, "the VM has no agent (config.agent is false)");
		r = -EINVAL;
	} else if (front_stopping(vm)) {
		snprintf(msg, msglen, "the VM is being stopped");
		r = -ECANCELED;
	} else if (front_ended_locked(vm)) {
		snprintf(msg, msglen, "the VM has ended");
		r = -ECHILD;
	}
	if (r)
		snprintf(vm->err, sizeof(vm->err), "%s", msg);
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* Connects to the agent in slices, so that a stop or the VM's end is
 * noticed within a slice. */
static int front_connect(struct minivm_vm *vm, int slice_ms, int *fd, char *msg, size_t msglen)
{
	long t0 = front_now_ms();

	for (;;) {
		int r = agent_connect(vm->sock, AGENT_VSOCK_PORT, slice_ms, fd, msg, msglen);

		/* A reset during the handshake is retried too: right after a
		 * restore the guest's vsock transport reset may close the
		 * first connection. */
		if (r != -ETIMEDOUT && r != -ECONNRESET)
			return r;
		if (front_stopping(vm))
			return -ECANCELED;
		if (minivm_vm_ended(vm))
			return -ECHILD;
		if (front_now_ms() - t0 >= FRONT_CONNECT_TOTAL_MS)
			return r;
	}
}

static int front_slice(const struct minivm_vm *vm)
{
	return vm->restored ? FRONT_RESTORE_CONNECT_SLICE_MS : FRONT_CONNECT_SLICE_MS;
}

/* ---- exec ---- */

/* The worker thread runs agent_exec(); the caller's thread pumps. */
struct front_exec {
	int fd;
	struct agent_exec_req req;
	struct agent_exec_io io;
	struct agent_exec_result xres;
	int r;
	char msg[256];
	int done_wr; /* written when agent_exec returned */
	int out_wr, err_wr; /* closed by the worker when it is done (EOF for the pump) */
};

static void *front_exec_thread(void *arg)
{
	struct front_exec *x = arg;
	sigset_t all;

	/* The caller's handlers run on the caller's threads; a SIGPIPE from
	 * a closed output fd stays here, pending, and dies with the thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	x->r = agent_exec(x->fd, &x->req, &x->io, &x->xres, x->msg, sizeof(x->msg));
	if (x->out_wr >= 0)
		close(x->out_wr);
	if (x->err_wr >= 0)
		close(x->err_wr);
	x->out_wr = x->err_wr = -1;
	if (write(x->done_wr, "d", 1) < 0) {
		/* Cannot fail: an empty pipe, one byte. */
	}
	return NULL;
}

/* A stream from the worker to a callback. */
struct front_out {
	int rd;
	minivm_write_fn fn;
	bool failed;
};

/* Reads what is there; false at EOF. */
static bool front_out_pump(struct front_out *o, void *opaque, char *buf)
{
	ssize_t n = read(o->rd, buf, FRONT_IO_CHUNK);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	if (!o->failed && o->fn(opaque, buf, (size_t)n) < 0)
		o->failed = true; /* the rest is read and dropped */
	return true;
}

/* The environment: cmd's entries, then the OCI image's that cmd does not set. */
static const char **front_exec_env(const struct minivm_vm *vm, const struct minivm_exec *cmd)
{
	const struct oci_config *c = vm->ff.img ? oci_image_config(vm->ff.img) : NULL;
	const char **env;
	size_t n = 0, nc = 0;

	if (!c || !c->nr_env)
		return NULL;
	for (; cmd->env && cmd->env[nc]; nc++) {
	}
	env = calloc(AGENT_EXEC_MAX_ENV + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < nc && n < AGENT_EXEC_MAX_ENV; i++)
		env[n++] = cmd->env[i];
	for (uint32_t i = 0; i < c->nr_env && n < AGENT_EXEC_MAX_ENV; i++) {
		size_t klen = strcspn(c->env[i], "=");
		bool set = false;

		for (size_t j = 0; j < nc && !set; j++)
			set = !strncmp(cmd->env[j], c->env[i], klen) && cmd->env[j][klen] == '=';
		if (!set)
			env[n++] = c->env[i];
	}
	env[n] = NULL;
	return env;
}

static void front_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* The agent's numbering is the wire's (from 1); the API's starts at 0. */
static enum minivm_exec_kind front_exec_kind(enum agent_exit_kind k)
{
	switch (k) {
	case AGENT_EXIT_SIGNALED:
		return MINIVM_EXEC_SIGNALED;
	case AGENT_EXIT_TIMED_OUT:
		return MINIVM_EXEC_TIMED_OUT;
	case AGENT_EXIT_START_FAILED:
		return MINIVM_EXEC_START_FAILED;
	case AGENT_EXIT_EXITED:
	default:
		return MINIVM_EXEC_EXITED;
	}
}

static int front_exec_run(struct minivm_vm *vm, const struct minivm_exec *cmd,
			  struct minivm_exec_result *res)
{
	const struct oci_config *oc = vm->ff.img ? oci_image_config(vm->ff.img) : NULL;
	struct front_exec x;
	struct front_out outs[2] = { { .rd = -1 }, { .rd = -1 } };
	int ctl[2] = { -1, -1 }, done[2] = { -1, -1 }, in[2] = { -1, -1 };
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
	const char **env = NULL;
	pthread_t thread;
	bool started = false, worker_done = false, in_eof = false, aborted = false;
	bool vm_ended = false, ctl_open = cmd->ctl_fd >= 0;
	char *buf = NULL, *inbuf = NULL;
	size_t in_len = 0, in_off = 0;
	long last_check = front_now_ms();
	int r;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	x.fd = -1;
	x.out_wr = x.err_wr = -1;
	if (!cmd->argv || !cmd->argv[0]) {
		snprintf(res->message, sizeof(res->message), "no command");
		r = -EINVAL;
		goto out_msg;
	}
	r = front_check_running(vm, res->message, sizeof(res->message));
	if (r)
		return r;
	buf = malloc(2 * FRONT_IO_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		snprintf(res->message, sizeof(res->message), "out of memory");
		goto out_msg;
	}
	inbuf = buf + FRONT_IO_CHUNK;
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK) || pipe2(done, O_CLOEXEC | O_NONBLOCK) ||
	    (cmd->stdin_fn && pipe2(in, O_CLOEXEC)) || (cmd->stdout_fn && pipe2(opipe, O_CLOEXEC)) ||
	    (cmd->stderr_fn && pipe2(epipe, O_CLOEXEC))) {
		r = -errno;
		snprintf(res->message, sizeof(res->message), "pipe: %s", strerror(errno));
		goto out;
	}
	/* The pump's ends never block it; the worker's ends block (agent_exec
	 * waits with poll on EAGAIN either way). */
	if ((in[1] >= 0 && fcntl(in[1], F_SETFL, O_NONBLOCK) < 0) ||
	    (opipe[0] >= 0 && fcntl(opipe[0], F_SETFL, O_NONBLOCK) < 0) ||
	    (epipe[0] >= 0 && fcntl(epipe[0], F_SETFL, O_NONBLOCK) < 0)) {
		r = -errno;
		snprintf(res->message, sizeof(res->message), "fcntl: %s", strerror(errno));
		goto out;
	}
	r = front_connect(vm, front_slice(vm), &x.fd, res->message, sizeof(res->message));
	if (r) {
		if (r == -ECANCELED)
			snprintf(res->message, sizeof(res->message), "the VM is being stopped");
		else if (r == -ECHILD)
			snprintf(res->message, sizeof(res->message), "the VM has ended");
		goto out;
	}
	x.req.argv = cmd->argv;
	x.req.env = cmd->env;
	x.req.cwd = cmd->cwd;
	x.req.user = cmd->user;
	if (oc) { /* an OCI root: the image's config under the caller's */
		env = front_exec_env(vm, cmd);
		if (env)
			x.req.env = env;
		if (!x.req.cwd && oc->working_dir && *oc->working_dir)
			x.req.cwd = oc->working_dir;
		if (!x.req.user && oc->user && *oc->user)
			x.req.user = oc->user;
	}
	x.req.timeout_s = cmd->timeout_s;
	if (cmd->tty) {
		x.req.flags |= AGENT_EXEC_TTY;
		x.req.rows = cmd->rows;
		x.req.cols = cmd->cols;
	}
	x.io.in_fd = cmd->stdin_fn ? in[0] : cmd->stdin_fd;
	x.io.out_fd = cmd->stdout_fn ? opipe[1] : cmd->stdout_fd;
	x.io.err_fd = cmd->stderr_fn ? epipe[1] : cmd->stderr_fd;
	x.io.ctl_fd = ctl[0];
	x.io.winsize_fd = cmd->winsize_fd;
	x.done_wr = done[1];
	x.out_wr = opipe[1];
	x.err_wr = epipe[1];
	opipe[1] = epipe[1] = -1; /* the worker's to close */
	outs[0].rd = opipe[0];
	outs[0].fn = cmd->stdout_fn;
	outs[1].rd = epipe[0];
	outs[1].fn = cmd->stderr_fn;
	r = pthread_create(&thread, NULL, front_exec_thread, &x);
	if (r) {
		r = -r;
		snprintf(res->message, sizeof(res->message), "pthread_create: %s", strerror(-r));
		goto out;
	}
	started = true;

	/* The pump: callbacks, the caller's ctl bytes, a stop, the VM's end. */
	while (!worker_done || outs[0].rd >= 0 || outs[1].rd >= 0) {
		struct pollfd p[7];
		int np = 0, i_done = -1, i_stop = -1, i_ctl = -1, i_in = -1, i_out[2] = { -1, -1 };
		unsigned char abort_byte = 0;

		if (!worker_done) {
			i_done = np;
			p[np++] = (struct pollfd){ .fd = done[0], .events = POLLIN };
			if (!aborted) {
				i_stop = np;
				p[np++] = (struct pollfd){ .fd = vm->stop_efd, .events = POLLIN };
			}
			if (ctl_open) {
				i_ctl = np;
				p[np++] = (struct pollfd){ .fd = cmd->ctl_fd, .events = POLLIN };
			}
			if (in[1] >= 0 && !in_eof) {
				i_in = np;
				p[np++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
			}
		}
		for (int k = 0; k < 2; k++)
			if (outs[k].rd >= 0) {
				i_out[k] = np;
				p[np++] = (struct pollfd){ .fd = outs[k].rd, .events = POLLIN };
			}
		if (poll(p, (nfds_t)np, worker_done ? -1 : FRONT_EXEC_CHECK_MS) < 0 && errno != EINTR) {
			/* Cannot happen with valid fds; the worker still ends on its own. */
		}
		if (i_done >= 0 && p[i_done].revents)
			worker_done = true;
		if (i_stop >= 0 && p[i_stop].revents && !aborted) {
			aborted = true;
			(void)!write(ctl[1], &abort_byte, 1);
		}
		if (i_ctl >= 0 && p[i_ctl].revents) {
			unsigned char b[64];
			ssize_t n = read(cmd->ctl_fd, b, sizeof(b));

			if (n > 0 && write(ctl[1], b, (size_t)n) < 0) {
				/* A full pipe: the command is not reading it (dropped). */
			}
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				ctl_open = false; /* the caller closed its end */
		}
		if (i_in >= 0 && p[i_in].revents) {
			if (in_off == in_len) {
				long n = cmd->stdin_fn(cmd->opaque, inbuf, FRONT_IO_CHUNK);

				if (n <= 0) {
					in_eof = true;
					close(in[1]);
					in[1] = -1;
				} else {
					in_len = (size_t)n > FRONT_IO_CHUNK ? FRONT_IO_CHUNK : (size_t)n;
					in_off = 0;
				}
			}
			if (!in_eof && in_off < in_len) {
				ssize_t w = write(in[1], inbuf + in_off, in_len - in_off);

				if (w > 0)
					in_off += (size_t)w;
				else if (w < 0 && errno != EAGAIN && errno != EINTR)
					in_eof = true;
			}
		}
		for (int k = 0; k < 2; k++)
			if (i_out[k] >= 0 && p[i_out[k]].revents && !front_out_pump(&outs[k], cmd->opaque, buf)) {
				close(outs[k].rd);
				outs[k].rd = -1;
			}
		if (!worker_done && !aborted && front_now_ms() - last_check >= FRONT_EXEC_CHECK_MS) {
			last_check = front_now_ms();
			if (minivm_vm_ended(vm)) {
				vm_ended = true;
				aborted = true;
				(void)!write(ctl[1], &abort_byte, 1);
			}
		}
	}
	pthread_join(thread, NULL);
	started = false;
	r = x.r;
	if (r == 0) {
		res->kind = front_exec_kind(x.xres.kind);
		res->code = x.xres.code;
		res->signo = x.xres.signo;
		res->err = x.xres.err;
		res->pid = x.xres.pid;
		res->status = agent_exec_exit_status(&x.xres);
	} else if (vm_ended || (r != -ECANCELED && minivm_vm_ended(vm))) {
		r = -ECHILD;
		snprintf(res->message, sizeof(res->message), "the VM ended before the command finished");
	} else if (r == -ECANCELED) {
		snprintf(res->message, sizeof(res->message),
			 aborted ? "the VM is being stopped" : "the command was aborted");
	} else {
		snprintf(res->message, sizeof(res->message), "%s", x.msg);
	}
out:
	if (started)
		pthread_join(thread, NULL);
	if (x.fd >= 0)
		close(x.fd); /* kills the command in the guest if it still runs */
	if (x.out_wr >= 0)
		close(x.out_wr);
	if (x.err_wr >= 0)
		close(x.err_wr);
	for (int k = 0; k < 2; k++)
		if (outs[k].rd >= 0)
			close(outs[k].rd);
	opipe[0] = epipe[0] = -1;
	front_close_pair(opipe);
	front_close_pair(epipe);
	front_close_pair(in);
	front_close_pair(ctl);
	front_close_pair(done);
	free(env);
	free(buf);
out_msg:
	if (r) {
		pthread_mutex_lock(&vm->lock);
		snprintf(vm->err, sizeof(vm->err), "%s", res->message);
		pthread_mutex_unlock(&vm->lock);
	}
	return r;
}

int minivm_vm_exec(struct minivm_vm *vm, const struct minivm_exec *cmd, struct minivm_exec_result *res)
{
	int r;

	atomic_fetch_add_explicit(&vm->commands_started, 1, memory_order_relaxed);
	r = front_exec_run(vm, cmd, res);
	if (r == 0 && res->kind != MINIVM_EXEC_START_FAILED)
		atomic_fetch_add_explicit(&vm->commands_exited, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&vm->commands_failed, 1, memory_order_relaxed);
	return r;
}

/* ---- files ---- */

static int front_file_op(struct minivm_vm *vm, bool put, const char *path, uint32_t mode, int fd,
			 uint32_t *mode_out)
{
	char msg[300];
	int afd = -1, r;

	if (!path || path[0] != '/') {
		snprintf(msg, sizeof(msg), "the guest path must be absolute");
		r = -EINVAL;
		goto out;
	}
	r = front_check_running(vm, msg, sizeof(msg));
	if (r)
		return r;
	r = front_connect(vm, front_slice(vm), &afd, msg, sizeof(msg));
	if (!r)
		r = put ? agent_put_file(afd, path, mode, fd, NULL, msg, sizeof(msg))
			: agent_get_file(afd, path, fd, mode_out, NULL, msg, sizeof(msg));
	if (afd >= 0)
		close(afd);
out:
	if (r) {
		pthread_mutex_lock(&vm->lock);
		snprintf(vm->err, sizeof(vm->err), "%s %s: %s", put ? "put" : "get", path, msg);
		pthread_mutex_unlock(&vm->lock);
	}
	return r;
}

int minivm_vm_put_file(struct minivm_vm *vm, const char *guest_path, uint32_t mode, int src_fd)
{
	return front_file_op(vm, true, guest_path, mode, src_fd, NULL);
}

int minivm_vm_get_file(struct minivm_vm *vm, const char *guest_path, int dst_fd, uint32_t *mode)
{
	return front_file_op(vm, false, guest_path, 0, dst_fd, mode);
}

/* ---- ready ---- */

/* The fix-up tool's stderr (with vm.verbose): to the log, each chunk as it comes. */
static int front_fixup_stderr(void *opaque, const void *buf, size_t len)
{
	const struct minivm_vm *vm = opaque;
	const char *s = buf;

	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len)
		front_log(&vm->ff.log, MINIVM_LOG_DEBUG, "restore fix-up: %.*s",
			  (int)(len > 900 ? 900 : len), s);
	return 0;
}

/* After a restore: the guest's wall clock set to the host's and its CRNG
 * reseeded with fresh host bytes by the agent's fix-up tool, so that
 * clones never share randomness or a stale clock. */
static int front_restore_fixup(struct minivm_vm *vm)
{
	struct minivm_exec_result xres;
	struct minivm_exec cmd;
	uint8_t seed[32];
	char ns[32], hex[2 * sizeof(seed) + 1];
	const char *argv[] = { "/proc/self/exe", "fixup", "--time", ns, "--seed", hex, NULL };
	struct timespec now;
	int r;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		front_fail(vm, "restore: getrandom: %s", strerror(errno));
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(seed); i++)
		snprintf(hex + 2 * i, 3, "%02x", seed[i]);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(ns, sizeof(ns), "%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
	minivm_exec_init(&cmd);
	cmd.argv = argv;
	cmd.timeout_s = 60;
	if (vm->cfg.verbose) {
		cmd.stderr_fn = front_fixup_stderr;
		cmd.opaque = vm;
	}
	r = minivm_vm_exec(vm, &cmd, &xres);
	explicit_bzero(seed, sizeof(seed));
	explicit_bzero(hex, sizeof(hex));
	if (r) {
		front_fail(vm, "restore: %s", xres.message);
		return r;
	}
	if (xres.status != 0) {
		front_fail(vm, "restore: the guest's fix-up (clock, random reseed) failed with "
			       "status %d", xres.status);
		return -EIO;
	}
	return 0;
}

int minivm_vm_wait_ready(struct minivm_vm *vm, int timeout_ms)
{
	long deadline = timeout_ms >= 0 ? front_now_ms() + timeout_ms : 0;
	char msg[300];
	int r, fd = -1;

	pthread_mutex_lock(&vm->lock);
	if (vm->ready && vm->state == FRONT_RUNNING) {
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	if (vm->state != FRONT_RUNNING || !vm->proc) {
		front_fail(vm, vm->state == FRONT_CREATED ? "the VM is not started" : "the VM has ended");
		pthread_mutex_unlock(&vm->lock);
		return vm->state == FRONT_CREATED ? -EINVAL : -ECHILD;
	}
	/* The VMM's ready marker: waited for in slices, the lock released
	 * between them so that exec's checks and stop go on. */
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = vmm_proc_event_fd(vm->proc), .events = POLLIN },
			{ .fd = vm->stop_efd, .events = POLLIN },
		};
		int wait_ms = 1000;

		r = vmm_proc_wait_ready(vm->proc, 0);
		if (r != -ETIMEDOUT && r != -EINTR)
			break;
		if (front_stopping(vm)) {
			r = -ECANCELED;
			break;
		}
		if (timeout_ms >= 0) {
			long left = deadline - front_now_ms();

			if (left <= 0) {
				r = -ETIMEDOUT;
				break;
			}
			if (left < wait_ms)
				wait_ms = (int)left;
		}
		pthread_mutex_unlock(&vm->lock);
		(void)poll(p, 2, wait_ms);
		pthread_mutex_lock(&vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
	if (r == -ETIMEDOUT) {
		front_fail(vm, "the guest was not ready after %d ms", timeout_ms);
		return r;
	}
	if (r == -ECANCELED) {
		front_fail(vm, "the VM is being stopped");
		return r;
	}
	if (r) {
		front_fail(vm, "the VM ended before it was ready");
		return -ECHILD;
	}
	if (vm->agent) {
		/* The agent answered HELLO: ready, for real. */
		r = front_connect(vm, front_slice(vm), &fd, msg, sizeof(msg));
		if (fd >= 0)
			close(fd);
		if (r) {
			if (r == -ECHILD)
				front_fail(vm, "the VM ended before it was ready");
			else if (r == -ECANCELED)
				front_fail(vm, "the VM is being stopped");
			else
				front_fail(vm, "no answer from the guest agent: %s", msg);
			/* -ETIMEDOUT is the caller's timeout only. */
			return r == -ETIMEDOUT ? -ENOTCONN : r;
		}
		vm->times.ready_ns = front_now_ns();
		if (vm->restored) {
			r = front_restore_fixup(vm);
			if (r)
				return r;
			vm->times.fixed_ns = front_now_ns();
		}
	} else {
		vm->times.ready_ns = front_now_ns();
	}
	pthread_mutex_lock(&vm->lock);
	vm->ready = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/* ---- pause, resume, snapshot ---- */

int minivm_vm_pause(struct minivm_vm *vm)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != FRONT_RUNNING || front_ended_locked(vm) || vm->vmm_pid <= 0) {
		front_fail(vm, "pause: the VM is not running");
		r = vm->state == FRONT_CREATED ? -EINVAL : -ECHILD;
	} else if (!vm->paused) {
		/* The VMM is PID 1 of its namespace: from here, its ancestor's,
		 * SIGSTOP reaches it as any process. */
		if (kill(vm->vmm_pid, SIGSTOP) < 0) {
			r = -errno;
			front_fail(vm, "pause: %s", strerror(errno));
		} else {
			vm->paused = 1;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int minivm_vm_resume(struct minivm_vm *vm)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->paused && vm->vmm_pid > 0) {
		if (kill(vm->vmm_pid, SIGCONT) < 0 && errno != ESRCH) {
			r = -errno;
			front_fail(vm, "resume: %s", strerror(errno));
		} else {
			vm->paused = 0;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/*
 * A VM frozen by minivm_vm_pause() cannot answer: let its process run for
 * the snapshot (SIGCONT), which pauses the vCPUs itself. vm->paused stays
 * set, so that a concurrent minivm_vm_stop() and minivm_vm_wait() still
 * send their SIGCONT. Under the lock.
 */
static int front_snapshot_thaw(struct minivm_vm *vm)
{
	if (!vm->paused)
		return 0;
	if (kill(vm->vmm_pid, SIGCONT) < 0) {
		int r = -errno;

		front_fail(vm, "snapshot: cannot let the paused VMM run: %s", strerror(errno));
		return r == -ESRCH ? -ECHILD : r;
	}
	return 0;
}

/*
 * Lets the vCPUs the snapshot paused run again. A VM paused by
 * minivm_vm_pause() is frozen again first (SIGSTOP), then gets the resume
 * byte: its VMM reads it only after minivm_vm_resume(), so the guest does
 * not run between the snapshot and that resume. No refreeze after a stop
 * request: the VMM must be able to stop. Under the lock.
 */
static void front_snapshot_resume(struct minivm_vm *vm)
{
	if (vm->paused && !vm->stop_requested && kill(vm->vmm_pid, SIGSTOP) < 0) {
		/* ESRCH: the VMM is gone, nothing to freeze; nothing else can fail. */
	}
	vmm_proc_resume(vm->proc);
}

/* With the agent ready: pause and snapshot, copy the writable disks while
 * paused, resume, then put the files in place (state last). Under the lock. */
static int front_snapshot_take(struct minivm_vm *vm)
{
	char from[4200], to[4200];
	int r = front_snapshot_thaw(vm);

	if (r)
		return r;
	r = vmm_proc_snapshot(vm->proc);
	if (r) {
		front_fail(vm, "%s", vmm_proc_error(vm->proc));
		front_snapshot_resume(vm);
		return r;
	}
	vm->err[0] = '\0';
	for (unsigned int i = 0; i < vm->nr_snap_disks && !r; i++) {
		const char *src = front_disk_path(&vm->cfg, i);
		bool reflinked;
		int in, outfd;

		if (!(vm->snap_disks[i].flags & SNAPSHOT_DISK_COPIED) || !src)
			continue;
		snprintf(to, sizeof(to), "%s/.%s.tmp", vm->snap_dir, vm->snap_disks[i].path);
		(void)unlink(to);
		in = open(src, O_RDONLY | O_CLOEXEC);
		outfd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		r = in < 0 || outfd < 0 ? -errno : snapshot_copy_file(in, outfd, &reflinked);
		if (r)
			front_fail(vm, "copying disk %s into the snapshot: %s", src, strerror(-r));
		if (in >= 0)
			close(in);
		if (outfd >= 0)
			close(outfd);
	}
	front_snapshot_resume(vm);
	for (unsigned int i = 0; i < vm->nr_snap_disks && !r; i++) {
		if (!(vm->snap_disks[i].flags & SNAPSHOT_DISK_COPIED))
			continue;
		snprintf(from, sizeof(from), "%s/.%s.tmp", vm->snap_dir, vm->snap_disks[i].path);
		snprintf(to, sizeof(to), "%s/%s", vm->snap_dir, vm->snap_disks[i].path);
		if (rename(from, to) < 0)
			r = -errno;
	}
	snprintf(from, sizeof(from), "%s/.%s.tmp", vm->snap_dir, SNAPSHOT_MEMORY_NAME);
	snprintf(to, sizeof(to), "%s/%s", vm->snap_dir, SNAPSHOT_MEMORY_NAME);
	if (!r && rename(from, to) < 0)
		r = -errno;
	snprintf(from, sizeof(from), "%s/.%s.tmp", vm->snap_dir, SNAPSHOT_STATE_NAME);
	snprintf(to, sizeof(to), "%s/%s", vm->snap_dir, SNAPSHOT_STATE_NAME);
	if (!r && rename(from, to) < 0)
		r = -errno;
	if (r && !vm->err[0])
		front_fail(vm, "putting the snapshot in place in %s: %s", vm->snap_dir, strerror(-r));
	return r;
}

int minivm_vm_snapshot(struct minivm_vm *vm, const char *dir)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	if (!vm->snap_dir[0] || (dir && strcmp(dir, vm->snap_dir))) {
		front_fail(vm, "snapshot: only to the snapshot_dir given at create (its files are "
			       "opened before the jailed VMM starts)");
		r = -EINVAL;
	} else if (vm->snap_taken) {
		front_fail(vm, "snapshot: taken already (VMs restored from it map its memory file)");
		r = -EALREADY;
	} else if (vm->state != FRONT_RUNNING || !vm->proc || front_ended_locked(vm)) {
		front_fail(vm, "snapshot: the VM is not running");
		r = vm->state == FRONT_CREATED ? -EINVAL : -ECHILD;
	} else {
		vm->snap_taken = true;
		r = front_snapshot_take(vm);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* ---- the end ---- */

int minivm_vm_shutdown(struct minivm_vm *vm, int status, int timeout_ms)
{
	char msg[300];
	long t0;
	int fd = -1, r;

	r = front_check_running(vm, msg, sizeof(msg));
	if (r)
		return r;
	r = front_connect(vm, FRONT_CONNECT_SLICE_MS, &fd, msg, sizeof(msg));
	if (r == 0)
		r = agent_shutdown(fd, status & 0xff, msg, sizeof(msg));
	if (fd >= 0)
		close(fd);
	if (r) {
		pthread_mutex_lock(&vm->lock);
		snprintf(vm->err, sizeof(vm->err), "clean shutdown failed (%s)", msg);
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	/* The guest syncs and resets; wait for it, then stop it anyway. */
	t0 = front_now_ms();
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = vm->proc ? vmm_proc_event_fd(vm->proc) : -1, .events = POLLIN },
			{ .fd = vm->stop_efd, .events = POLLIN },
		};
		long left = timeout_ms - (front_now_ms() - t0);

		if (minivm_vm_ended(vm) || front_stopping(vm))
			break;
		if (timeout_ms >= 0 && left <= 0)
			break;
		(void)poll(p, 2, timeout_ms < 0 || left > 1000 ? 1000 : (int)left);
	}
	minivm_vm_stop(vm);
	return 0;
}

void minivm_vm_stop(struct minivm_vm *vm)
{
	uint64_t one = 1;

	/* Async-signal-safe: flag, eventfd write, send(), kill(). */
	if (!vm)
		return;
	vm->stop_requested = 1;
	if (vm->stop_efd >= 0 && write(vm->stop_efd, &one, sizeof(one)) < 0) {
		/* A counter at its max is still readable. */
	}
	if (vm->proc)
		vmm_proc_stop(vm->proc);
	if (vm->paused && vm->vmm_pid > 0)
		(void)kill(vm->vmm_pid, SIGCONT); /* a frozen VMM cannot stop */
}

int minivm_vm_wait(struct minivm_vm *vm, struct minivm_result *res)
{
	int r;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&vm->lock);
	if (vm->state == FRONT_CREATED || !vm->proc) {
		front_fail(vm, "the VM is not started");
		res->outcome = MINIVM_VMM_ERROR;
		pthread_mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	/* Until the end, the lock is only held for a look at the events: other
	 * threads' exec, ended() and stop() go on meanwhile. After a stop
	 * request vmm_proc_wait() itself waits (and kills after its grace). */
	while (!vm->have_result && !vm->stop_requested && !front_ended_locked(vm)) {
		struct pollfd p[2] = {
			{ .fd = vmm_proc_event_fd(vm->proc), .events = POLLIN },
			{ .fd = vm->stop_efd, .events = POLLIN },
		};

		pthread_mutex_unlock(&vm->lock);
		(void)poll(p, 2, 1000); /* another thread may take the event in: a slice */
		pthread_mutex_lock(&vm->lock);
	}
	if (!vm->have_result) {
		if (vm->paused) {
			(void)kill(vm->vmm_pid, SIGCONT);
			vm->paused = 0;
		}
		vm->result_r = vmm_proc_wait(vm->proc, &vm->res);
		vm->have_result = true;
		vm->state = FRONT_WAITED;
		if (vm->result_r)
			front_fail(vm, "%s", vmm_proc_error(vm->proc));
	}
	*res = vm->res;
	r = vm->result_r;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* ---- metrics ---- */

int minivm_vm_metrics(struct minivm_vm *vm, struct minivm_metrics *out)
{
	int r = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&vm->lock);
	if (vm->proc) {
		/* A paused VMM cannot answer: its last counts stand. */
		r = vmm_proc_metrics(vm->proc, out, vm->paused ? 0 : FRONT_METRICS_WAIT_MS);
		if (r == -ECHILD || (r == -ETIMEDOUT && vm->paused))
			r = 0;
		if (r)
			front_fail(vm, "metrics: the VMM did not answer within %d ms",
				   FRONT_METRICS_WAIT_MS);
	}
	pthread_mutex_unlock(&vm->lock);
	out->commands_started = atomic_load_explicit(&vm->commands_started, memory_order_relaxed);
	out->commands_exited = atomic_load_explicit(&vm->commands_exited, memory_order_relaxed);
	out->commands_failed = atomic_load_explicit(&vm->commands_failed, memory_order_relaxed);
	return r;
}

/* ---- accessors, destroy ---- */

void minivm_vm_times(const struct minivm_vm *vm, struct minivm_vm_times *out)
{
	*out = vm->times;
}

const char *minivm_vm_vsock_path(const struct minivm_vm *vm)
{
	return vm->sock;
}

const char *minivm_vm_console_path(const struct minivm_vm *vm)
{
	return vm->console;
}

const char *minivm_vm_run_dir(const struct minivm_vm *vm)
{
	return vm->dir;
}

const char *minivm_vm_error(const struct minivm_vm *vm)
{
	return vm ? vm->err : "no VM";
}

void front_vm_test_running(struct minivm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->state = FRONT_RUNNING;
	vm->ready = true;
	pthread_mutex_unlock(&vm->lock);
}

struct front_files *front_vm_files(struct minivm_vm *vm)
{
	return &vm->ff;
}

const struct minivm_config *front_vm_config(const struct minivm_vm *vm)
{
	return &vm->cfg;
}

const char *front_vm_scratch_image(const struct minivm_vm *vm)
{
	return vm->scratch;
}

void minivm_vm_destroy(struct minivm_vm *vm)
{
	if (!vm)
		return;
	if (vm->proc) {
		struct minivm_result res;

		if (!vm->have_result) {
			minivm_vm_stop(vm);
			if (minivm_vm_wait(vm, &res)) {
				/* The result is the caller's to ask for; gone now. */
			}
		}
		vmm_proc_destroy(vm->proc);
		vm->proc = NULL;
	}
	front_relay_end(vm);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->snap_mem_fd >= 0)
		close(vm->snap_mem_fd);
	if (vm->snap_state_fd >= 0)
		close(vm->snap_state_fd);
	if (vm->restore_state_fd >= 0)
		close(vm->restore_state_fd);
	if (vm->restore_mem_fd >= 0)
		close(vm->restore_mem_fd);
	for (unsigned int i = 0; i < vm->nr_copies; i++)
		(void)unlink(vm->copies[i]);
	front_files_free(&vm->ff);
	if (vm->dir[0]) {
		/* The VMM removes its own socket; these are leftovers of a failure. */
		if (vm->own_sock)
			(void)unlink(vm->sock);
		if (vm->own_console)
			(void)unlink(vm->console);
		if (vm->scratch[0])
			(void)unlink(vm->scratch);
		if (rmdir(vm->dir) != 0 && errno != ENOENT && vm->cfg.verbose)
			front_log(&vm->ff.log, MINIVM_LOG_WARN, "cannot remove %s: %s", vm->dir,
				  strerror(errno));
	}
	for (size_t i = 0; i < vm->nr_strs; i++)
		free(vm->strs[i]);
	free(vm->strs);
	free(vm->allow);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
