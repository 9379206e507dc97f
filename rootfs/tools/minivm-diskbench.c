/* minivm-diskbench: O_DIRECT read and write benchmarks on a block device, timed by the host through marker ports. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <unistd.h>

#include "../agent/minivm_guest.h"

#define SEQ_BS (1 << 20)
#define RAND_BS 4096
#define MAX_QD 64

struct job {
	int fd;
	uint64_t blocks;
	double until;
	unsigned int seed;
	unsigned long done;
	int failed;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mark(int n)
{
	if (n > 0)
		outb((unsigned char)n, MINIVM_PORT_MARKER);
}

/* One request in flight per thread: QD threads give a queue depth of QD. */
static void *rand_worker(void *arg)
{
	struct job *j = arg;
	void *buf;

	if (posix_memalign(&buf, RAND_BS, RAND_BS)) {
		j->failed = 1;
		return NULL;
	}
	while (now() < j->until) {
		uint64_t b = (uint64_t)rand_r(&j->seed) % j->blocks;

		if (pread(j->fd, buf, RAND_BS, (off_t)(b * RAND_BS)) != RAND_BS) {
			j->failed = 1;
			break;
		}
		j->done++;
	}
	free(buf);
	return NULL;
}

static int seq_read(int fd, off_t size, int m)
{
	void *buf;
	off_t off;

	if (posix_memalign(&buf, 4096, SEQ_BS))
		return 1;
	mark(m);
	for (off = 0; off + SEQ_BS <= size; off += SEQ_BS) {
		if (pread(fd, buf, SEQ_BS, off) != SEQ_BS) {
			perror("pread");
			free(buf);
			return 1;
		}
	}
	mark(m + 1);
	free(buf);
	printf("seqread-1m bytes=%lld\n", (long long)off);
	return 0;
}

/* Sequential 1 MiB O_DIRECT writes over the whole device, then fdatasync
 * (a flush to the VMM), all inside the markers. */
static int seq_write(int fd, off_t size, int m)
{
	void *buf;
	off_t off;

	if (posix_memalign(&buf, 4096, SEQ_BS))
		return 1;
	memset(buf, 0xa5, SEQ_BS);
	mark(m);
	for (off = 0; off + SEQ_BS <= size; off += SEQ_BS) {
		if (pwrite(fd, buf, SEQ_BS, off) != SEQ_BS) {
			perror("pwrite");
			free(buf);
			return 1;
		}
	}
	if (fdatasync(fd) < 0) {
		perror("fdatasync");
		free(buf);
		return 1;
	}
	mark(m + 1);
	free(buf);
	printf("seqwrite-1m bytes=%lld\n", (long long)off);
	return 0;
}

static int rand_read(int fd, off_t size, double secs, int qd, int m)
{
	struct job jobs[MAX_QD];
	pthread_t th[MAX_QD];
	unsigned long total = 0;
	double t0;
	int bad = 0;

	mark(m);
	t0 = now();
	for (int i = 0; i < qd; i++) {
		jobs[i] = (struct job){ .fd = fd, .blocks = (uint64_t)size / RAND_BS,
					.until = t0 + secs, .seed = (unsigned int)(i * 7919 + 1) };
		if (pthread_create(&th[i], NULL, rand_worker, &jobs[i]))
			return 1;
	}
	for (int i = 0; i < qd; i++) {
		pthread_join(th[i], NULL);
		bad |= jobs[i].failed;
		total += jobs[i].done;
	}
	mark(m + 1);
	if (bad) {
		fprintf(stderr, "minivm-diskbench: a read failed\n");
		return 1;
	}
	printf("randread-4k qd=%d ios=%lu\n", qd, total);
	return 0;
}

int main(int argc, char **argv)
{
	double secs = 0;
	off_t size;
	int fd, qd = 1, m;

	if (argc != 6 || (strcmp(argv[2], "seq") && strcmp(argv[2], "seqw") && strcmp(argv[2], "rand"))) {
		fprintf(stderr, "usage: %s DEVICE seq|seqw|rand SECONDS QUEUE_DEPTH MARKER\n"
				"  writes MARKER before and MARKER+1 after the timed part\n",
			argv[0]);
		return 2;
	}
	secs = atof(argv[3]);
	qd = atoi(argv[4]);
	m = atoi(argv[5]);
	if (qd < 1 || qd > MAX_QD || m < MINIVM_PHASE_USER || m > 254) {
		fprintf(stderr, "%s: queue depth 1-%d, marker %d-254\n", argv[0], MAX_QD,
			MINIVM_PHASE_USER);
		return 2;
	}
	if (ioperm(MINIVM_PORT_MARKER, 1, 1) < 0) {
		perror("ioperm");
		return 1;
	}
	fd = open(argv[1], (strcmp(argv[2], "seqw") ? O_RDONLY : O_RDWR) | O_DIRECT);
	if (fd < 0 || (size = lseek(fd, 0, SEEK_END)) < SEQ_BS) {
		perror(argv[1]);
		return 1;
	}
	if (!strcmp(argv[2], "seq"))
		return seq_read(fd, size, m);
	if (!strcmp(argv[2], "seqw"))
		return seq_write(fd, size, m);
	if (secs <= 0) {
		fprintf(stderr, "%s: rand needs SECONDS > 0\n", argv[0]);
		return 2;
	}
	return rand_read(fd, size, secs, qd, m);
}
