/* The VMM process's jail: namespaces, pivot_root, capabilities, uid/gid, no_new_privs, rlimits, cgroup v2, seccomp per thread. */
#include "vmm/jail.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define JAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define JAIL_SANITIZED 1
#endif
#endif
#ifndef JAIL_SANITIZED
#define JAIL_SANITIZED 0
#endif

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS (linux/signal.h) */
#endif

#define JAIL_VSOCK_MOUNT "vsock" /* where an outside vsock directory appears */

void jail_config_init(struct jail_config *j)
{
	memset(j, 0, sizeof(*j));
	j->mode = JAIL_AUTO;
	j->uid = JAIL_DEFAULT_ID;
	j->gid = JAIL_DEFAULT_ID;
}

bool jail_seccomp_supported(void)
{
	return !JAIL_SANITIZED;
}

/* ---- pure helpers ---- */

int jail_vsock_path(const char *jail_dir, const char *uds, char *out, size_t outlen)
{
	const char *slash;
	size_t dlen, jlen;
	int n;

	if (!jail_dir || !uds || uds[0] != '/' || jail_dir[0] != '/')
		return -EINVAL;
	slash = strrchr(uds, '/');
	if (!slash[1])
		return -EINVAL;
	dlen = (size_t)(slash - uds);
	jlen = strlen(jail_dir);
	while (jlen > 1 && jail_dir[jlen - 1] == '/')
		jlen--;
	if (dlen == jlen && !strncmp(uds, jail_dir, jlen))
		n = snprintf(out, outlen, "/%s", slash + 1);
	else
		n = snprintf(out, outlen, "/" JAIL_VSOCK_MOUNT "/%s", slash + 1);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

uint64_t jail_nofile_limit(int max_fd, unsigned int vsock_conns)
{
	uint64_t base = max_fd < 0 ? 0 : (uint64_t)max_fd + 1;

	return base + vsock_conns + JAIL_NOFILE_MARGIN;
}

uint64_t jail_fsize_limit(uint64_t max_writable_file)
{
	return max_writable_file > JAIL_FSIZE_MIN ? max_writable_file : JAIL_FSIZE_MIN;
}

uint64_t jail_memory_max(uint64_t mem_bytes)
{
	uint64_t v;

	if (__builtin_add_overflow(mem_bytes, mem_bytes / 8, &v) ||
	    __builtin_add_overflow(v, JAIL_MEM_MARGIN, &v))
		return UINT64_MAX;
	return v;
}

unsigned int jail_pids_max(unsigned int cpus)
{
	return cpus + JAIL_PIDS_MARGIN;
}

int jail_cpu_max(unsigned int pct, char *out, size_t outlen)
{
	int n;

	if (pct > JAIL_MAX_CPU_QUOTA)
		return -EINVAL;
	if (pct == 0)
		n = snprintf(out, outlen, "max %u", JAIL_CPU_PERIOD_US);
	else
		n = snprintf(out, outlen, "%llu %u",
			     (unsigned long long)pct * JAIL_CPU_PERIOD_US / 100, JAIL_CPU_PERIOD_US);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

bool jail_controllers_have(const char *controllers, const char *need)
{
	const char *w = need;

	while (*w) {
		size_t wl;
		const char *c = controllers;
		bool found = false;

		while (*w == ' ')
			w++;
		wl = strcspn(w, " ");
		if (!wl)
			break;
		while (*c) {
			size_t cl;

			while (*c == ' ' || *c == '\n')
				c++;
			cl = strcspn(c, " \n");
			if (cl == wl && !strncmp(c, w, wl))
				found = true;
			c += cl;
		}
		if (!found)
			return false;
		w += wl;
	}
	return true;
}

int jail_parse_id(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v >= UINT32_MAX)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* ---- cgroup v2 ---- */

static void jail_info(const struct jail_setup *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void jail_info(const struct jail_setup *s, const char *fmt, ...)
{
	va_list ap;

	if (s->verbose < 1)
		return;
	va_start(ap, fmt);
	fputs("minivm: info: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int jail_write_file(const char *dir, const char *name, const char *val)
{
	char path[512];
	ssize_t n;
	int fd, r = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		r = -errno;
	else if ((size_t)n != strlen(val))
		r = -EIO;
	close(fd);
	return r;
}

static int jail_read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static bool jail_is_cgroup2(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

int jail_cgroup_enter(const struct jail_config *j, const struct jail_setup *s, char *cg,
		      size_t cglen, char *err, size_t errlen)
{
	static const char *const mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	const char *mnt = NULL;
	char need[32], enable[40], ctl[256], parent[300], val[64];
	int r;

	cg[0] = '\0';
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]) && !mnt; i++)
		if (jail_is_cgroup2(mounts[i]))
			mnt = mounts[i];
	if (!mnt) {
		jail_info(s, "no cgroup v2 hierarchy (cgroup v1 host): no cgroup limits");
		return 0;
	}
	snprintf(need, sizeof(need), "memory pids%s", j->cpu_quota_pct ? " cpu" : "");
	snprintf(enable, sizeof(enable), "+memory +pids%s", j->cpu_quota_pct ? " +cpu" : "");
	if (jail_read_file(mnt, "cgroup.controllers", ctl, sizeof(ctl)) ||
	    !jail_controllers_have(ctl, need)) {
		jail_info(s, "the cgroup v2 hierarchy at %s lacks controllers (has '%.*s', needs '%s', "
			  "bound to cgroup v1?): no cgroup limits",
			  mnt, (int)strcspn(ctl, "\n"), ctl, need);
		return 0;
	}
	snprintf(parent, sizeof(parent), "%s/minivm", mnt);
	if ((mkdir(parent, 0755) && errno != EEXIST) ||
	    jail_write_file(mnt, "cgroup.subtree_control", enable) ||
	    jail_write_file(parent, "cgroup.subtree_control", enable)) {
		jail_info(s, "cannot enable '%s' for %s (%s): no cgroup limits", enable, parent,
			  strerror(errno));
		return 0;
	}
	if (snprintf(cg, cglen, "%s/vm-%d", parent, (int)getpid()) >= (int)cglen) {
		cg[0] = '\0';
		snprintf(err, errlen, "cgroup path too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(cg, 0755) && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create cgroup %s: %s", cg, strerror(errno));
		cg[0] = '\0';
		return r;
	}
	snprintf(val, sizeof(val), "%llu", (unsigned long long)jail_memory_max(s->mem_bytes));
	r = jail_write_file(cg, "memory.max", val);
	if (!r) {
		snprintf(val, sizeof(val), "%u", jail_pids_max(s->cpus));
		r = jail_write_file(cg, "pids.max", val);
	}
	if (!r && j->cpu_quota_pct) {
		r = jail_cpu_max(j->cpu_quota_pct, val, sizeof(val));
		if (!r)
			r = jail_write_file(cg, "cpu.max", val);
	}
	if (!r)
		r = jail_write_file(cg, "cgroup.procs", "0");
	if (r) {
		snprintf(err, errlen, "cgroup %s: %s", cg, strerror(-r));
		jail_cgroup_remove(cg);
		cg[0] = '\0';
		return r;
	}
	jail_info(s, "cgroup %s: memory.max %llu, pids.max %u%s", cg,
		  (unsigned long long)jail_memory_max(s->mem_bytes), jail_pids_max(s->cpus),
		  j->cpu_quota_pct ? ", cpu.max set" : "");
	return 0;
}

void jail_cgroup_remove(const char *cg)
{
	if (cg && cg[0])
		(void)rmdir(cg);
}

int jail_unshare_flags(void)
{
	/* Not CLONE_NEWNET: jail_enter() does that in the VMM, once a TAP
	 * device of the host's namespace is open. */
	return CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
}

/* ---- entering the jail ---- */

/* A step failed: an error under JAIL_REQUIRED, else one warning line. */
static int jail_step_failed(const struct jail_config *j, int r, char *err, size_t errlen,
			    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int jail_step_failed(const struct jail_config *j, int r, char *err, size_t errlen,
			    const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (j->mode == JAIL_REQUIRED) {
		snprintf(err, errlen, "jail: %s", msg);
		return r ? r : -EPERM;
	}
	fprintf(stderr, "minivm: warning: jail: %s; continuing without it\n", msg);
	return 0;
}

static int jail_pivot(const struct jail_setup *s, char *err, size_t errlen)
{
	char dir_copy[512], mp[600];
	const char *slash;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(err, errlen, "making mounts private: %s", strerror(errno));
		return -errno;
	}
	if (mount(s->dir, s->dir, NULL, MS_BIND | MS_REC, NULL) < 0) {
		snprintf(err, errlen, "bind-mounting %s: %s", s->dir, strerror(errno));
		return -errno;
	}
	if (s->vsock_uds) {
		char jp[256];

		if (jail_vsock_path(s->dir, s->vsock_uds, jp, sizeof(jp)))
			return snprintf(err, errlen, "bad vsock path %s", s->vsock_uds), -EINVAL;
		if (!strncmp(jp, "/" JAIL_VSOCK_MOUNT "/", sizeof(JAIL_VSOCK_MOUNT) + 1)) {
			slash = strrchr(s->vsock_uds, '/');
			snprintf(dir_copy, sizeof(dir_copy), "%.*s", (int)(slash - s->vsock_uds),
				 s->vsock_uds);
			if (!dir_copy[0])
				snprintf(dir_copy, sizeof(dir_copy), "/");
			snprintf(mp, sizeof(mp), "%s/" JAIL_VSOCK_MOUNT, s->dir);
			if ((mkdir(mp, 0700) < 0 && errno != EEXIST) ||
			    mount(dir_copy, mp, NULL, MS_BIND, NULL) < 0) {
				snprintf(err, errlen, "bind-mounting the vsock directory %.200s: %s",
					 dir_copy, strerror(errno));
				return -errno;
			}
		}
	}
	if (chdir(s->dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
		snprintf(err, errlen, "pivot_root into %s: %s", s->dir, strerror(errno));
		return -errno;
	}
	/* The old root is stacked on the new one: detach it. */
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
		snprintf(err, errlen, "detaching the old root: %s", strerror(errno));
		return -errno;
	}
	/* Nothing in the jail is to be executed, nor a device, nor setuid. */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		fprintf(stderr, "minivm: warning: jail: cannot remount the jail root noexec: %s\n",
			strerror(errno));
	return 0;
}

static int jail_rlimit(int res, uint64_t v)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && v > rl.rlim_max)
		v = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = (rlim_t)v;
	return setrlimit(res, &rl) < 0 ? -errno : 0;
}

int jail_enter(const struct jail_config *j, const struct jail_setup *s, bool have_namespaces,
	       char *err, size_t errlen)
{
	bool root = geteuid() == 0;
	char why[300];
	int r;

	/* glibc reads /etc/localtime once, at the first time conversion
	 * (gmtime_r in the RTC included): now, while it is reachable. */
	tzset();
	if (j->mode == JAIL_OFF)
		return 0;
	if (!root) {
		r = jail_step_failed(j, -EPERM, err, errlen,
				     "not running as root: no namespaces, pivot_root, uid switch or "
				     "cgroup (seccomp, no_new_privs and rlimits still apply)");
		if (r)
			return r;
	}
	if (root && have_namespaces) {
		/* An empty network namespace: the fds open already (a TAP
		 * device) keep working, nothing new can reach the host's. */
		int nr = s->netns_fd >= 0 ? setns(s->netns_fd, CLONE_NEWNET) : unshare(CLONE_NEWNET);
		int e = errno;

		if (s->netns_fd >= 0)
			close(s->netns_fd);
		if (nr < 0) {
			r = jail_step_failed(j, -e, err, errlen, "no network namespace: %s",
					     strerror(e));
			if (r)
				return r;
		}
		r = jail_pivot(s, why, sizeof(why));
		if (r) {
			/* A half-made mount tree is no jail: always an error. */
			snprintf(err, errlen, "jail: %s", why);
			return r;
		}
		/* The jail's root is the run directory: the VMM's uid owns it
		 * (it removes its socket there at the end). */
		if (chown("/", j->uid, j->gid) < 0) {
			r = jail_step_failed(j, -errno, err, errlen, "chown of the jail directory: %s",
					     strerror(errno));
			if (r)
				return r;
		}
	}
	/* SIGXFSZ would kill the VMM at the console log's limit: EFBIG instead. */
	signal(SIGXFSZ, SIG_IGN);
	if (jail_rlimit(RLIMIT_NOFILE, jail_nofile_limit(s->max_fd, 1024)) ||
	    jail_rlimit(RLIMIT_FSIZE, jail_fsize_limit(s->max_writable_file)) ||
	    jail_rlimit(RLIMIT_CORE, 0) || (root && jail_rlimit(RLIMIT_NPROC, JAIL_NPROC))) {
		r = jail_step_failed(j, -errno, err, errlen, "rlimits: %s", strerror(errno));
		if (r)
			return r;
	}
	if (root) {
		capng_clear(CAPNG_SELECT_ALL);
		r = capng_change_id((int)j->uid, (int)j->gid,
				    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
		if (r) {
			/* The uid may have changed and not the capabilities: stop. */
			snprintf(err, errlen, "jail: switching to uid %u gid %u and dropping "
					      "capabilities failed (libcap-ng error %d)",
				 j->uid, j->gid, r);
			return -EPERM;
		}
		capng_get_caps_process();
		if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE || getuid() != j->uid ||
		    geteuid() != j->uid || getgid() != j->gid) {
			snprintf(err, errlen, "jail: capabilities or ids still held after the switch");
			return -EPERM;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "jail: no_new_privs: %s", strerror(errno));
		return -errno;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Changing credentials cleared the parent-death signal: set it again. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	return 0;
}

/* ---- seccomp ---- */

bool jail_sigsys_is_seccomp(const siginfo_t *si)
{
	return si->si_code == SYS_SECCOMP;
}

void jail_sigsys_kill(const siginfo_t *si)
{
	if (jail_sigsys_is_seccomp(si)) {
		/* SIGSYS is blocked while the handler runs, so another
		 * filtered syscall makes the kernel kill the whole process with
		 * SIGSYS (no handler, no core: RLIMIT_CORE is 0). getppid is in
		 * no allowlist. */
		syscall(SYS_getppid);
	}
	/* Not reached under a filter (a SIGSYS from kill(2)): die of it too,
	 * once the handler returns. */
	signal(SIGSYS, SIG_DFL);
	raise(SIGSYS);
}

int jail_sigsys_install(void (*handler)(int sig, siginfo_t *si, void *uc))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

/* Every thread: memory, locks, time, signals, its own exit, stderr logs. */
static const int jail_sys_common[] = {
	SCMP_SYS(read),          SCMP_SYS(write),         SCMP_SYS(writev),
	SCMP_SYS(close),         SCMP_SYS(futex),         SCMP_SYS(brk),
	SCMP_SYS(munmap),        SCMP_SYS(madvise),       SCMP_SYS(mremap),
	SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),  SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep),     SCMP_SYS(sched_yield),   SCMP_SYS(getpid),
	SCMP_SYS(gettid),        SCMP_SYS(fstat),         SCMP_SYS(newfstatat),
	SCMP_SYS(exit),          SCMP_SYS(exit_group),
};

/* The event loop: io_uring, the vsock and blk backends, the rng. */
static const int jail_sys_evl[] = {
	SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),    SCMP_SYS(epoll_ctl),         SCMP_SYS(readv),
	SCMP_SYS(preadv),         SCMP_SYS(pwritev),           SCMP_SYS(pread64),
	SCMP_SYS(pwrite64),       SCMP_SYS(recvfrom),          SCMP_SYS(recvmsg),
	SCMP_SYS(sendto),         SCMP_SYS(sendmsg),           SCMP_SYS(accept4),
	SCMP_SYS(connect),        SCMP_SYS(shutdown),          SCMP_SYS(getsockopt),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),  SCMP_SYS(getrandom),
	SCMP_SYS(fsync),          SCMP_SYS(fdatasync),         SCMP_SYS(fallocate),
	SCMP_SYS(tgkill),
};

/* The control thread: the front's socket, joining and tearing down. */
static const int jail_sys_control[] = {
	SCMP_SYS(poll),           SCMP_SYS(ppoll),           SCMP_SYS(recvfrom),
	SCMP_SYS(recvmsg),        SCMP_SYS(sendto),          SCMP_SYS(sendmsg),
	SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register), SCMP_SYS(epoll_ctl),
	SCMP_SYS(unlink),         SCMP_SYS(unlinkat),        SCMP_SYS(tgkill),
	SCMP_SYS(shutdown),       SCMP_SYS(fsync),
};

/* The control thread's KVM ioctls: what a snapshot reads. */
static const unsigned long jail_snapshot_ioctls[] = {
	KVM_GET_REGS,      KVM_GET_SREGS,     KVM_GET_MSRS,     KVM_GET_MSR_INDEX_LIST,
	KVM_GET_XSAVE,     KVM_GET_XSAVE2,    KVM_GET_FPU,      KVM_GET_XCRS,
	KVM_GET_LAPIC,     KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_GET_DEBUGREGS,
	KVM_GET_IRQCHIP,   KVM_GET_PIT2,      KVM_GET_CLOCK,    KVM_CHECK_EXTENSION,
};

static int jail_add(scmp_filter_ctx c, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = seccomp_rule_add(c, SCMP_ACT_ALLOW, nrs[i], 0);

		if (r)
			return r;
	}
	return 0;
}

/* The allowlist of a thread kind, as a libseccomp context (*out). */
static int jail_build(enum jail_thread kind, scmp_filter_ctx *out)
{
	scmp_filter_ctx c;
	int r;

	*out = NULL;
	c = seccomp_init(SCMP_ACT_TRAP);
	if (!c)
		return -ENOMEM;
	r = jail_add(c, jail_sys_common, sizeof(jail_sys_common) / sizeof(int));
	/* Memory may be mapped, never executable. */
	if (!r)
		r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!r)
		r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	switch (kind) {
	case JAIL_THREAD_VCPU:
		/* KVM_RUN, and KVM_GET_REGS to name the RIP of a fatal exit. */
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     SCMP_A1(SCMP_CMP_EQ, KVM_RUN));
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     SCMP_A1(SCMP_CMP_EQ, KVM_GET_REGS));
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 0);
		break;
	case JAIL_THREAD_EVL:
		if (!r)
			r = jail_add(c, jail_sys_evl, sizeof(jail_sys_evl) / sizeof(int));
		/* vsock's guest connections: Unix sockets only. */
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
		break;
	case JAIL_THREAD_REINJECT:
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     SCMP_A1(SCMP_CMP_EQ, KVM_REINJECT_CONTROL));
		break;
	case JAIL_THREAD_CONTROL:
		if (!r)
			r = jail_add(c, jail_sys_control, sizeof(jail_sys_control) / sizeof(int));
		/* virtio-blk's destroy releases its image's lock. */
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
					     SCMP_A1(SCMP_CMP_EQ, F_OFD_SETLK));
		/* A snapshot (vmm/snapshot.c): the state KVM gives out, read
		 * while the vCPUs are parked, and the files written through
		 * the fds the front opened. Reads only: no KVM_SET_*. */
		for (size_t i = 0; !r && i < sizeof(jail_snapshot_ioctls) / sizeof(jail_snapshot_ioctls[0]); i++)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     SCMP_A1(SCMP_CMP_EQ, jail_snapshot_ioctls[i]));
		if (!r)
			r = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(pwrite64), 0);
		break;
	}
	if (r) {
		seccomp_release(c);
		return r;
	}
	*out = c;
	return 0;
}

/* Compiles kind's filter into *out (the BPF seccomp_load()
 * would load, exported through a memfd: libseccomp 2.5 has no in-memory
 * export). 0 or -errno. */
static int jail_compile(enum jail_thread kind, struct sock_fprog *out)
{
	struct sock_filter *prog = NULL;
	scmp_filter_ctx c;
	struct stat st;
	int fd, r;

	r = jail_build(kind, &c);
	if (r)
		return r;
	fd = memfd_create("minivm-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		seccomp_release(c);
		return -errno;
	}
	r = seccomp_export_bpf(c, fd);
	seccomp_release(c);
	if (!r && (fstat(fd, &st) < 0 || st.st_size <= 0 ||
		   st.st_size % (off_t)sizeof(*prog) ||
		   st.st_size / (off_t)sizeof(*prog) > BPF_MAXINSNS))
		r = -EINVAL;
	if (!r && !(prog = malloc((size_t)st.st_size)))
		r = -ENOMEM;
	if (!r && pread(fd, prog, (size_t)st.st_size, 0) != st.st_size)
		r = -EIO;
	close(fd);
	if (r) {
		free(prog);
		return r;
	}
	out->filter = prog;
	out->len = (unsigned short)(st.st_size / (off_t)sizeof(*prog));
	return 0;
}

void jail_prepare(const struct jail_config *j, bool have_namespaces, bool seccomp, int *netns_fd,
		  struct jail_filters *filters)
{
	*netns_fd = -1;
	memset(filters, 0, sizeof(*filters));
	if (j->mode != JAIL_OFF && have_namespaces && geteuid() == 0 &&
	    unshare(CLONE_NEWNET) == 0) {
		/* This thread is in it now; the fd keeps it for jail_enter(). */
		*netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	}
	if (!seccomp || !jail_seccomp_supported())
		return;
	for (int k = 0; k < JAIL_THREAD_KINDS; k++)
		if (jail_compile((enum jail_thread)k, &filters->prog[k])) {
			/* jail_seccomp_thread() builds the missing ones itself. */
		}
}

int jail_seccomp_thread(const struct jail_filters *filters, enum jail_thread kind, char *err,
			size_t errlen)
{
	static const char *const names[] = { "vCPU", "event loop", "control", "reinject" };
	const struct sock_fprog *prog = filters ? &filters->prog[kind] : NULL;
	scmp_filter_ctx c = NULL;
	sigset_t sys;
	int r = 0;

	if (!jail_seccomp_supported()) {
		snprintf(err, errlen, "seccomp filters are not built into sanitizer builds");
		return -ENOTSUP;
	}
	if (!prog || !prog->filter)
		r = jail_build(kind, &c);
	/* The handler must be able to run in every thread. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (!r && c) {
		r = seccomp_load(c);
	} else if (!r) {
		/* What seccomp_load() does with libseccomp's defaults: no_new_privs
		 * (set by jail_enter() already), then the filter, this thread only. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
			r = -errno;
	}
	if (c)
		seccomp_release(c);
	if (r) {
		snprintf(err, errlen, "seccomp filter for the %s thread: %s", names[kind],
			 strerror(-r));
		return r < 0 ? r : -EINVAL;
	}
	return 0;
}

void jail_syscall_name(int nr, char *out, size_t outlen)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	snprintf(out, outlen, "%s", name ? name : "?");
	free(name);
}

int jail_test_forbidden(const char *which)
{
	long r;

	if (!strcmp(which, "execve")) {
		char *const argv[] = { (char *)"/bin/true", NULL };

		r = syscall(SYS_execve, "/bin/true", argv, argv + 1);
	} else if (!strcmp(which, "ptrace")) {
		r = syscall(SYS_ptrace, 3 /* PTRACE_PEEKUSER */, 0, 0, 0); /* pid 0: ESRCH */
	} else if (!strcmp(which, "mount")) {
		r = syscall(SYS_mount, "none", "/nonexistent-minivm", "tmpfs", 0UL, NULL);
	} else if (!strcmp(which, "open")) {
		r = syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC);
		if (r >= 0) {
			close((int)r);
			r = 0;
		}
	} else {
		return -EINVAL;
	}
	return r < 0 ? -errno : 0;
}
