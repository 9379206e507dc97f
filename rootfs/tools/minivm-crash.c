/* minivm-crash: panic the guest kernel on purpose by making PID 1 die, for tests of crash reporting. */
/*
 * Usage (as the program init runs): minivm.run=minivm-crash
 *
 * Signals from user space cannot kill PID 1, and the kernel may lack
 * CONFIG_MAGIC_SYSRQ, but root may write into PID 1's memory through
 * /proc/1/mem (the ptrace access check). This program reads the address
 * PID 1 will return to from the system call it is blocked in
 * (/proc/1/syscall: init waits in wait4() for this very program), writes a
 * ud2 instruction there and exits. init's wait returns onto the ud2, init
 * dies of SIGILL, and the kernel panics ("Attempted to kill init!"). With
 * panic=-1 reboot=k on the command line the kernel then resets the machine
 * at once, with no status written: exactly what the VMM sees for any
 * guest crash. Exit status 1 if it could not arm the trap.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int crash_read_pc(uint64_t *pc)
{
	char buf[512];
	ssize_t n;
	int fd = open("/proc/1/syscall", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	/*
	 * "nr arg1 .. arg6 sp pc" in a call, "-1 sp pc" when preempted in user
	 * mode (pc is then the next instruction: as good), "running" on a CPU.
	 */
	if (strncmp(buf, "running", 7) == 0)
		return -EAGAIN;
	char *last = strrchr(buf, ' ');

	if (!last)
		return -EIO;
	errno = 0;
	*pc = strtoull(last + 1, NULL, 16);
	return errno ? -errno : 0;
}

int main(void)
{
	static const unsigned char ud2[] = { 0x0f, 0x0b };
	uint64_t pc = 0;
	int err = -EAGAIN;

#if !defined(__x86_64__) && !defined(__i386__)
	fprintf(stderr, "minivm-crash: only x86 has ud2\n");
	return 1;
#endif
	/* PID 1 may be between two calls for a moment: retry for up to a second. */
	for (int tries = 0; tries < 100 && err == -EAGAIN; tries++) {
		err = crash_read_pc(&pc);
		if (err == -EAGAIN) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	if (err) {
		fprintf(stderr, "minivm-crash: /proc/1/syscall: %s\n", strerror(-err));
		return 1;
	}
	int fd = open("/proc/1/mem", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || pwrite(fd, ud2, sizeof(ud2), (off_t)pc) != (ssize_t)sizeof(ud2)) {
		fprintf(stderr, "minivm-crash: write /proc/1/mem at 0x%" PRIx64 ": %s\n", pc,
		        strerror(errno));
		return 1;
	}
	(void)close(fd);
	fprintf(stderr, "minivm-crash: ud2 armed in PID 1 at 0x%" PRIx64 "; the kernel panics when it runs\n",
	        pc);
	return 0;
}
