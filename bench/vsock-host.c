/* vsock-host: the host end of bench/run's vsock figures, over minivm's hybrid Unix socket (Firecracker's form). */
/*
 * usage: vsock-host rr SOCK PORT COUNT     COUNT 64-byte request/response round
 *                                          trips with a guest echo listener
 *                                          (minivm-vsock listen PORT); prints
 *                                          "rr us=MICROSECONDS" per trip
 *        vsock-host send SOCK PORT SECONDS  writes for SECONDS to a guest sink
 *                                          (minivm-vsock sink PORT); prints
 *                                          "send bytes=B seconds=S"
 *        vsock-host recv PATH               listens on PATH (SOCK_PORT: where
 *                                          minivm sends guest connections to
 *                                          host port PORT), accepts one, reads
 *                                          to EOF; prints "recv bytes=B
 *                                          seconds=S" timed from the first
 *                                          byte to EOF
 * Host-side clock (CLOCK_MONOTONIC) throughout. Exit status 0, 1 on error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RR_SIZE 64
#define BUF_SIZE (64 * 1024)

static char buf[BUF_SIZE];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "vsock-host: %s: %s\n", what, errno ? strerror(errno) : "failed");
	return 1;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* Connects to the guest's PORT: "CONNECT PORT\n", then "OK ...\n". */
static int hybrid_connect(const char *sock, unsigned long port)
{
	struct sockaddr_un sa;
	char line[64];
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || unix_addr(sock, &sa) || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	snprintf(line, sizeof(line), "CONNECT %lu\n", port);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		return -1;
	while (n < sizeof(line) - 1) { /* byte by byte: nothing after the newline is ours */
		if (read(fd, line + n, 1) != 1)
			return -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	if (strncmp(line, "OK ", 3)) {
		errno = ECONNREFUSED;
		return -1;
	}
	return fd;
}

static int read_full(int fd, char *p, size_t len)
{
	while (len) {
		ssize_t r = read(fd, p, len);

		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int do_rr(const char *sock, unsigned long port, unsigned long count)
{
	char req[RR_SIZE], resp[RR_SIZE];
	int fd = hybrid_connect(sock, port);

	if (fd < 0)
		return fail("connect");
	memset(req, 'r', sizeof(req));
	for (unsigned long i = 0; i < count; i++) {
		double t0 = now_s();

		if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req) ||
		    read_full(fd, resp, sizeof(resp)))
			return fail("round trip");
		printf("rr us=%.1f\n", (now_s() - t0) * 1e6);
	}
	close(fd);
	return 0;
}

static int do_send(const char *sock, unsigned long port, double secs)
{
	unsigned long long bytes = 0;
	double t0, t1;
	int fd = hybrid_connect(sock, port);

	if (fd < 0)
		return fail("connect");
	t0 = now_s();
	do {
		ssize_t w = write(fd, buf, sizeof(buf));

		if (w <= 0)
			return fail("write");
		bytes += (unsigned long long)w;
		t1 = now_s();
	} while (t1 - t0 < secs);
	close(fd);
	printf("send bytes=%llu seconds=%.6f\n", bytes, t1 - t0);
	return 0;
}

static int do_recv(const char *path)
{
	struct sockaddr_un sa;
	unsigned long long bytes = 0;
	double t0 = 0, t1 = 0;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
	ssize_t r;

	unlink(path);
	/* A jailed minivm connects as its unprivileged uid: connect() needs
	 * write permission on the socket file (README, Security model). */
	if (lfd < 0 || unix_addr(path, &sa) || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0666) < 0 || listen(lfd, 1) < 0)
		return fail("listen");
	printf("listening\n");
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return fail("accept");
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		if (!bytes)
			t0 = now_s();
		bytes += (unsigned long long)r;
		t1 = now_s();
	}
	if (r < 0)
		return fail("read");
	close(fd);
	close(lfd);
	unlink(path);
	printf("recv bytes=%llu seconds=%.6f\n", bytes, t1 - t0);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "rr"))
		return do_rr(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "send"))
		return do_send(argv[2], strtoul(argv[3], NULL, 0), atof(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2]);
	fprintf(stderr, "usage: vsock-host rr SOCK PORT COUNT | send SOCK PORT SECONDS | recv PATH\n");
	return 2;
}
