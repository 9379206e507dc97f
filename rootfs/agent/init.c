/* /sbin/init (PID 1) for minivm guests: mount, bring up the network, signal the host, run minivm.run= or serve the vsock agent, report a status, reset. */
/*
 * Guest kernel code is emulated on the test hosts (~1000x slower than
 * hardware), so init does the least kernel work it can: no stdio buffers,
 * no directory scans, one read of /proc/cmdline, posix_spawnp (vfork-like,
 * no page-table copy) for the child. See rootfs/README.md for the contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#define INIT_HAVE_PORTS 1
#endif
#include <sys/ioctl.h>

#include "agent.h"
#include "agent_proto.h"
#include "cmdline.h"
#include "fixup.h"
#include "minivm_guest.h"
#include "netcfg.h"
#include "status.h"
#include "tartool.h"

#define INIT_TAG "minivm-init: "

/* The largest /proc/cmdline we look at (x86 COMMAND_LINE_SIZE is 2048). */
#define INIT_CMDLINE_MAX 8192

struct init_mount {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
};

/* After /dev: the console comes up between /dev and these. */
static const struct init_mount init_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666" },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" },
};

static char *const init_child_env[] = {
	"PATH=/bin:/sbin:/usr/bin:/usr/sbin",
	"HOME=/root",
	"TERM=linux",
	NULL,
};

static void init_port_outb(bool ports, unsigned char value, unsigned short port)
{
#ifdef INIT_HAVE_PORTS
	if (ports)
		outb(value, port);
#else
	(void)ports, (void)value, (void)port;
#endif
}

static void init_port_outl(bool ports, unsigned int value, unsigned short port)
{
#ifdef INIT_HAVE_PORTS
	if (ports)
		outl(value, port);
#else
	(void)ports, (void)value, (void)port;
#endif
}

/* ioperm() for the marker and status ports; returns 0 or an errno. */
static int init_ports_open(void)
{
#ifdef INIT_HAVE_PORTS
	unsigned long first = MINIVM_PORT_MARKER, end = MINIVM_PORT_STATUS + 4;

	return ioperm(first, end - first, 1) == 0 ? 0 : errno;
#else
	return ENOSYS;
#endif
}

static void init_mount_one(const struct init_mount *m)
{
	if (mount(m->source, m->target, m->type, m->flags, m->data) != 0)
		dprintf(STDERR_FILENO, INIT_TAG "mount %s on %s: %s\n", m->type, m->target,
		        strerror(errno));
}

/*
 * /dev: the kernel mounts devtmpfs there itself with CONFIG_DEVTMPFS_MOUNT
 * (then /dev sits on another device than /); mount it only if it didn't,
 * so as not to stack a second mount.
 */
static void init_mount_dev(void)
{
	static const struct init_mount dev = {
		"devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"
	};
	struct stat root, d;

	if (stat("/", &root) == 0 && stat("/dev", &d) == 0 && root.st_dev != d.st_dev)
		return;
	init_mount_one(&dev);
}

/*
 * stdin/stdout/stderr on /dev/console. The kernel usually opened them
 * already (from its initramfs rootfs), but not if that failed.
 */
static void init_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	for (int i = 0; i <= STDERR_FILENO; i++)
		if (fd != i)
			(void)dup2(fd, i);
	if (fd > STDERR_FILENO)
		(void)close(fd);
}

/* Read /proc/cmdline into buf (NUL-terminated); returns its length or -errno. */
static ssize_t init_read_cmdline(char *buf, size_t size)
{
	size_t len = 0;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			(void)close(fd);
			return -err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/*
 * Whether the kernel has a guest-to-host vsock transport (a virtio-vsock
 * device): /dev/vsock's IOCTL_VM_SOCKETS_GET_LOCAL_CID gives our CID, or
 * VMADDR_CID_ANY without one. A listen() would succeed either way.
 */
static bool init_vsock_usable(void)
{
	unsigned int cid = 0xffffffffu;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = ioctl(fd, _IO(7, 0xb9), &cid) == 0 && cid != 0xffffffffu && cid > 2;
	(void)close(fd);
	return ok;
}

/* The end of every path: sync, report status to the host, reset. Never returns. */
static __attribute__((noreturn)) void init_finish(bool ports, int status)
{
	sync();
	init_port_outl(ports, (unsigned int)status, MINIVM_PORT_STATUS);
	reboot(RB_AUTOBOOT);
	/* PID 1 must never exit: that panics the kernel. */
	dprintf(STDERR_FILENO, INIT_TAG "reboot: %s\n", strerror(errno));
	for (;;)
		pause();
}

/* The agent's SHUTDOWN: it synced already; ctx holds whether the ports work. */
static void init_agent_shutdown(void *ctx, int status)
{
	init_finish(*(const bool *)ctx, status);
}

/*
 * No minivm.run=: serve the agent on vsock (see rootfs/agent/agent.h) with
 * a writable /scratch, writing MINIVM_PHASE_READY only once it listens (the
 * host connects after that marker). Without vsock, as before: ready, 0.
 */
static int init_agent(bool ports)
{
	static const struct init_mount scratch = {
		"tmpfs", "/scratch", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"
	};
	static bool ports_ok;
	struct agent_server_ops ops = { .shutdown = init_agent_shutdown, .ctx = &ports_ok,
	                                .log_prefix = "minivm-agent: " };
	struct agent_server *srv;
	int fd = -1, err;

	ports_ok = ports;
	err = init_vsock_usable() ? agent_vsock_listen(AGENT_VSOCK_PORT, &fd) : -ENODEV;
	if (err == 0) {
		if (mkdir("/scratch", 01777) != 0 && errno != EEXIST)
			dprintf(STDERR_FILENO, INIT_TAG "mkdir /scratch: %s\n", strerror(errno));
		init_mount_one(&scratch);
		err = agent_server_create(fd, &ops, &srv);
		if (err)
			(void)close(fd);
	}
	init_port_outb(ports, MINIVM_PHASE_READY, MINIVM_PORT_MARKER);
	if (err) {
		if (err != -ENODEV)
			dprintf(STDERR_FILENO, INIT_TAG "agent on vsock port %u: %s\n", AGENT_VSOCK_PORT,
			        strerror(-err));
		dprintf(STDOUT_FILENO, "minivm-init: ready\n");
		return 0;
	}
	err = agent_server_run(srv);
	dprintf(STDERR_FILENO, INIT_TAG "agent stopped: %s\n", strerror(err < 0 ? -err : EIO));
	agent_server_free(srv);
	return MINIVM_STATUS_INIT_ERROR;
}

/* The overlay's writable layer is mounted here (inside /run, so it moves
 * with /run into the new root and stays visible at the same path), the
 * overlay itself at INIT_NEWROOT (a directory of the image). */
#define INIT_SCRATCH_DIR "/run/minivm-scratch"
#define INIT_NEWROOT "/mnt"

/* The mounts made so far, moved into the new root (submounts go along). */
static const char *const init_moved[] = { "/dev", "/proc", "/sys", "/tmp", "/run" };

/*
 * With minivm.scratch= (see minivm_guest.h): mount the writable layer (the
 * host's ext4 scratch disk, or a tmpfs), an overlay of the read-only root
 * and that layer's upper/ at INIT_NEWROOT, move /dev, /proc, /sys, /tmp,
 * /run into it and pivot_root there, detaching the old root. From then on
 * everything PID 1 starts has the overlay as its /, and what it changed is
 * INIT_SCRATCH_DIR/upper. A failure before the pivot leaves the read-only
 * root as it was (and says why on the console); 0 or -errno.
 */
static int init_overlay(const char *cmdline, size_t len)
{
	char dev[32], opts[96];
	struct agent_scratch sc;
	const char *val;
	size_t vlen;
	int r;

	if (!agent_cmdline_find(cmdline, len, MINIVM_SCRATCH_PARAM, &val, &vlen))
		return 0;
	if (agent_scratch_parse(val, vlen, &sc)) {
		dprintf(STDERR_FILENO, INIT_TAG "bad " MINIVM_SCRATCH_PARAM "%.*s; no overlay\n",
			(int)(vlen > 64 ? 64 : vlen), val);
		return -EINVAL;
	}
	if (mkdir(INIT_SCRATCH_DIR, 0755) != 0 && errno != EEXIST)
		goto fail_errno;
	if (sc.kind == AGENT_SCRATCH_DISK) {
		snprintf(dev, sizeof(dev), "/dev/%s", sc.dev);
		/* noinit_itable: the host's mkfs left the inode tables to be
		 * zeroed lazily; that kernel thread would run emulated here. */
		r = mount(dev, INIT_SCRATCH_DIR, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME,
			  "noinit_itable");
	} else {
		if (sc.size)
			snprintf(opts, sizeof(opts), "mode=0755,size=%llu", sc.size);
		else
			snprintf(opts, sizeof(opts), "mode=0755");
		r = mount("tmpfs", INIT_SCRATCH_DIR, "tmpfs", MS_NOSUID | MS_NODEV, opts);
	}
	if (r != 0)
		goto fail_errno;
	if ((mkdir(INIT_SCRATCH_DIR "/upper", 0755) != 0 && errno != EEXIST) ||
	    (mkdir(INIT_SCRATCH_DIR "/work", 0755) != 0 && errno != EEXIST) ||
	    mount("overlay", INIT_NEWROOT, "overlay", 0,
		  "lowerdir=/,upperdir=" INIT_SCRATCH_DIR "/upper,workdir=" INIT_SCRATCH_DIR "/work")) {
		int err = errno;

		(void)umount2(INIT_SCRATCH_DIR, MNT_DETACH);
		errno = err;
		goto fail_errno;
	}
	for (size_t i = 0; i < sizeof(init_moved) / sizeof(init_moved[0]); i++) {
		char to[64];

		snprintf(to, sizeof(to), INIT_NEWROOT "%s", init_moved[i]);
		if (mount(init_moved[i], to, NULL, MS_MOVE, NULL) != 0)
			dprintf(STDERR_FILENO, INIT_TAG "overlay: move %s: %s\n", init_moved[i],
				strerror(errno));
	}
	/* The old root goes to INIT_NEWROOT's own INIT_NEWROOT, then away. */
	if (chdir(INIT_NEWROOT) != 0 || syscall(SYS_pivot_root, ".", "." INIT_NEWROOT) != 0) {
		r = -errno;
		dprintf(STDERR_FILENO, INIT_TAG "overlay: pivot_root: %s\n", strerror(-r));
		return r;
	}
	if (chdir("/") != 0 || umount2(INIT_NEWROOT, MNT_DETACH) != 0)
		dprintf(STDERR_FILENO, INIT_TAG "overlay: detach the old root: %s\n", strerror(errno));
	return 0;
fail_errno:
	r = -errno;
	dprintf(STDERR_FILENO, INIT_TAG "overlay on %s: %s; the root stays read-only\n",
		sc.kind == AGENT_SCRATCH_DISK ? sc.dev : "tmpfs", strerror(-r));
	return r;
}

/* Start argv with the console as stdio; wait for it, reaping every other child. */
static int init_spawn_wait(char **argv)
{
	pid_t pid;
	int err;

	/* posix_spawnp searches the PATH of its caller's environment. */
	environ = (char **)init_child_env;
	err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, (char **)init_child_env);
	if (err != 0) {
		dprintf(STDERR_FILENO, INIT_TAG "%s: %s\n", argv[0],
		        err == ENOENT ? "not found" : strerror(err));
		return agent_status_from_spawn_errno(err);
	}
	for (;;) {
		int ws;
		pid_t w = waitpid(-1, &ws, 0);

		if (w == pid)
			return agent_status_from_wait(ws);
		if (w < 0 && errno != EINTR) {
			dprintf(STDERR_FILENO, INIT_TAG "waitpid: %s\n", strerror(errno));
			return MINIVM_STATUS_INIT_ERROR;
		}
	}
}

/*
 * Find, decode, split and run minivm.run= (or, without it, the agent);
 * returns the status to report. Writes MINIVM_PHASE_READY.
 */
static int init_run(bool ports)
{
	static char cmdline[INIT_CMDLINE_MAX];
	static char decoded[AGENT_CMD_DECODED_SIZE];
	static char words[AGENT_CMD_WORDS_SIZE];
	static char *argv[AGENT_CMD_ARGV_SIZE];
	const char *val;
	size_t val_len;
	ssize_t len;
	int n;

	len = init_read_cmdline(cmdline, sizeof(cmdline));
	if (len < 0) {
		netcfg_setup("", 0); /* lo still */
		init_port_outb(ports, MINIVM_PHASE_READY, MINIVM_PORT_MARKER);
		dprintf(STDERR_FILENO, INIT_TAG "/proc/cmdline: %s\n", strerror((int)-len));
		return MINIVM_STATUS_INIT_ERROR;
	}
	(void)init_overlay(cmdline, (size_t)len);
	/* After the overlay (so /etc/resolv.conf lands in its upper layer). */
	netcfg_setup(cmdline, (size_t)len);
	if (!agent_cmdline_find(cmdline, (size_t)len, MINIVM_RUN_PARAM, &val, &val_len))
		return init_agent(ports);
	init_port_outb(ports, MINIVM_PHASE_READY, MINIVM_PORT_MARKER);
	len = agent_pct_decode(val, val_len, decoded, sizeof(decoded));
	if (len < 0) {
		dprintf(STDERR_FILENO, INIT_TAG "bad " MINIVM_RUN_PARAM ": %s\n",
		        agent_cmd_strerror((int)len));
		return MINIVM_STATUS_BAD_COMMAND;
	}
	n = agent_split_words(decoded, (size_t)len, words, sizeof(words), argv, AGENT_CMD_ARGV_SIZE);
	if (n < 0) {
		dprintf(STDERR_FILENO, INIT_TAG "bad " MINIVM_RUN_PARAM ": %s\n",
		        agent_cmd_strerror(n));
		return MINIVM_STATUS_BAD_COMMAND;
	}
	if (n == 0) {
		dprintf(STDERR_FILENO, INIT_TAG "bad " MINIVM_RUN_PARAM ": empty command\n");
		return MINIVM_STATUS_BAD_COMMAND;
	}
	return init_spawn_wait(argv);
}

int main(int argc, char **argv)
{
	int ports_err, status;
	bool ports;

	/* The agent runs `/proc/self/exe tar ...` to move files as tar streams:
	 * a tool, not init (it never mounts, touches the ports or reboots). */
	if (argc >= 2 && strcmp(argv[1], "tar") == 0)
		return tartool_main(argc - 1, argv + 1);
	/* And `/proc/self/exe fixup ...` after a snapshot restore: the host's
	 * clock and fresh random bytes (fixup.h). */
	if (argc >= 2 && strcmp(argv[1], "fixup") == 0)
		return fixup_main(argc - 1, argv + 1);
	if (getpid() != 1) {
		/* It mounts, and reboots the machine: never on a host by mistake. */
		dprintf(STDERR_FILENO, INIT_TAG "not PID 1, refusing to run\n");
		return 1;
	}
	ports_err = init_ports_open();
	ports = ports_err == 0;
	init_port_outb(ports, MINIVM_PHASE_INIT_STARTED, MINIVM_PORT_MARKER);

	init_mount_dev();
	init_console();
	if (!ports)
		dprintf(STDERR_FILENO, INIT_TAG "ioperm: %s; no phase markers or status for the host\n",
		        strerror(ports_err));
	if (mkdir("/dev/pts", 0755) != 0 && errno != EEXIST)
		dprintf(STDERR_FILENO, INIT_TAG "mkdir /dev/pts: %s\n", strerror(errno));
	for (size_t i = 0; i < sizeof(init_mounts) / sizeof(init_mounts[0]); i++)
		init_mount_one(&init_mounts[i]);

	status = init_run(ports);
	init_finish(ports, status);
}
