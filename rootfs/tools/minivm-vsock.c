/* minivm-vsock: guest-side vsock test tool (echo listener, throughput sink/source, stdin/stdout connector). */
/*
 * Usage (in the guest):
 *   minivm-vsock listen PORT          accept connections one at a time, echo each
 *   minivm-vsock sink PORT            accept one connection, read to EOF, print bytes and MB/s
 *   minivm-vsock source PORT SECONDS  connect to host port PORT, write for SECONDS, print bytes and MB/s
 *   minivm-vsock connect PORT         connect to host port PORT; stdin to it, it to stdout
 * The host is CID 2; on minivm the host side of PORT is the Unix socket
 * <vsock path>_PORT. Figures use the guest's monotonic clock (it may drift
 * on emulating hosts; time from the host for benchmarks). Exit status 0, or
 * 1 on an error (with a message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* <linux/vm_sockets.h> is not in musl's headers: the stable ABI, restated. */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define VMADDR_CID_ANY 0xffffffffu
#define VMADDR_CID_HOST 2u

struct sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short) -
			       2 * sizeof(unsigned int)];
};
_Static_assert(sizeof(struct sockaddr_vm) == 16, "sockaddr_vm is 16 bytes");

#define VS_BUF (64 * 1024)

static char vs_buf[VS_BUF];

static int vs_usage(void)
{
	fprintf(stderr, "usage: minivm-vsock listen PORT | sink PORT | source PORT SECONDS | connect PORT\n");
	return 2;
}

static int vs_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static double vs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int vs_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int vs_listen(unsigned int port)
{
	struct sockaddr_vm sa;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("minivm-vsock: socket(AF_VSOCK)");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_ANY;
	sa.svm_port = port;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		perror("minivm-vsock: bind/listen");
		close(fd);
		return -1;
	}
	return fd;
}

static int vs_connect(unsigned int port)
{
	struct sockaddr_vm sa;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("minivm-vsock: socket(AF_VSOCK)");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_HOST;
	sa.svm_port = port;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("minivm-vsock: connect to the host");
		close(fd);
		return -1;
	}
	return fd;
}

static void vs_report(const char *what, unsigned long long bytes, double secs)
{
	printf("minivm-vsock: %s %llu bytes in %.3f s: %.2f MB/s\n", what, bytes, secs,
	       secs > 0 ? (double)bytes / secs / 1e6 : 0.0);
	fflush(stdout);
}

static int vs_echo(unsigned int port)
{
	int lfd = vs_listen(port);

	if (lfd < 0)
		return 1;
	printf("minivm-vsock: listening on port %u\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ssize_t n;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("minivm-vsock: accept");
			return 1;
		}
		while ((n = read(fd, vs_buf, sizeof(vs_buf))) > 0)
			if (vs_write_all(fd, vs_buf, (size_t)n))
				break;
		close(fd);
	}
}

static int vs_sink(unsigned int port)
{
	unsigned long long total = 0;
	int lfd = vs_listen(port), fd;
	double t0;
	ssize_t n;

	if (lfd < 0)
		return 1;
	printf("minivm-vsock: sink listening on port %u\n", port);
	fflush(stdout);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		perror("minivm-vsock: accept");
		return 1;
	}
	t0 = vs_now();
	while ((n = read(fd, vs_buf, sizeof(vs_buf))) > 0)
		total += (unsigned long long)n;
	vs_report("received", total, vs_now() - t0);
	close(fd);
	close(lfd);
	return n < 0;
}

static int vs_source(unsigned int port, unsigned long secs)
{
	unsigned long long total = 0;
	int fd = vs_connect(port);
	double t0, end;

	if (fd < 0)
		return 1;
	memset(vs_buf, 'x', sizeof(vs_buf));
	t0 = vs_now();
	end = t0 + (double)secs;
	while (vs_now() < end) {
		ssize_t w = write(fd, vs_buf, sizeof(vs_buf));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("minivm-vsock: write");
			close(fd);
			return 1;
		}
		total += (unsigned long long)w;
	}
	vs_report("sent", total, vs_now() - t0);
	close(fd);
	return 0;
}

static int vs_cat(unsigned int port)
{
	struct pollfd p[2];
	int fd = vs_connect(port);
	bool in_open = true;

	if (fd < 0)
		return 1;
	p[0].fd = 0;
	p[1].fd = fd;
	for (;;) {
		ssize_t n;

		p[0].events = in_open ? POLLIN : 0;
		p[1].events = POLLIN;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents) {
			n = read(0, vs_buf, sizeof(vs_buf));
			if (n <= 0) {
				in_open = false;
				p[0].fd = -1;
				shutdown(fd, SHUT_WR);
			} else if (vs_write_all(fd, vs_buf, (size_t)n)) {
				return 1;
			}
		}
		if (p[1].revents) {
			n = read(fd, vs_buf, sizeof(vs_buf));
			if (n <= 0)
				break;
			if (vs_write_all(1, vs_buf, (size_t)n))
				return 1;
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long port, secs;

	if (argc < 3 || vs_num(argv[2], 0xffffffffUL, &port))
		return vs_usage();
	if (!strcmp(argv[1], "listen") && argc == 3)
		return vs_echo((unsigned int)port);
	if (!strcmp(argv[1], "sink") && argc == 3)
		return vs_sink((unsigned int)port);
	if (!strcmp(argv[1], "source") && argc == 4 && !vs_num(argv[3], 3600, &secs))
		return vs_source((unsigned int)port, secs);
	if (!strcmp(argv[1], "connect") && argc == 3)
		return vs_cat((unsigned int)port);
	return vs_usage();
}
