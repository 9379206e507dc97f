/* minivm-randread: 4 KiB random O_DIRECT reads from a block device with several in flight, for disk benchmarks. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
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

/* One in-flight request per thread: QD threads give a queue depth of QD. */
static void *worker(void *arg)
{
	struct job *j = arg;
	void *buf;

	if (posix_memalign(&buf, BS, BS)) {
		j->failed = 1;
		return NULL;
	}
	while (now() < j->until) {
		uint64_t b = (uint64_t)rand_r(&j->seed) % j->blocks;

		if (pread(j->fd, buf, BS, (off_t)(b * BS)) != BS) {
			j->failed = 1;
			break;
		}
		j->done++;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job jobs[MAX_QD];
	pthread_t th[MAX_QD];
	unsigned long total = 0;
	off_t bytes = 0;
	double secs, t0;
	int fd, qd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DEVICE SECONDS QUEUE_DEPTH\n", argv[0]);
		return 2;
	}
	secs = atof(argv[2]);
	qd = atoi(argv[3]);
	if (secs <= 0 || qd < 1 || qd > MAX_QD) {
		fprintf(stderr, "%s: bad seconds or queue depth (1-%d)\n", argv[0], MAX_QD);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0 || (bytes = lseek(fd, 0, SEEK_END)) < BS) {
		perror(argv[1]);
		return 1;
	}
	t0 = now();
	for (int i = 0; i < qd; i++) {
		jobs[i] = (struct job){ .fd = fd, .blocks = (uint64_t)bytes / BS, .until = t0 + secs,
					.seed = (unsigned int)(i * 7919 + 1) };
		if (pthread_create(&th[i], NULL, worker, &jobs[i]))
			return 1;
	}
	for (int i = 0; i < qd; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].failed) {
			fprintf(stderr, "%s: a read failed\n", argv[0]);
			return 1;
		}
		total += jobs[i].done;
	}
	printf("randread-4k qd=%d iops=%.0f\n", qd, (double)total / (now() - t0));
	return 0;
}
