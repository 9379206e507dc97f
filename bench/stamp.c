/* stamp: prefix what arrives on stdin with the host's wall-clock time on arrival (bench/run's observer of guest markers). */
/*
 * usage: stamp lines    each line:  "SECONDS.NANOSECONDS LINE"
 *        stamp bytes    each byte:  "SECONDS.NANOSECONDS BYTE" (decimal)
 *
 * CLOCK_REALTIME, so the figures compare with bash's $EPOCHREALTIME taken
 * just before a VMM is exec'd. Output is flushed per record; reads are
 * unbuffered, so a record's time is when the bytes reached the pipe (plus
 * the scheduling delay of this process, microseconds). Used the same way
 * for both VMMs: minivm's -v log lines and QEMU's isa-debugcon bytes.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stamp_now(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
}

int main(int argc, char **argv)
{
	int bytes = argc == 2 && !strcmp(argv[1], "bytes");
	char in[4096], t[40];
	int at_line_start = 1;
	ssize_t n;

	if (argc != 2 || (!bytes && strcmp(argv[1], "lines"))) {
		fprintf(stderr, "usage: stamp lines|bytes\n");
		return 2;
	}
	while ((n = read(0, in, sizeof(in))) > 0) {
		stamp_now(t, sizeof(t));
		for (ssize_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)in[i];

			if (bytes) {
				printf("%s %u\n", t, c);
				continue;
			}
			if (at_line_start)
				printf("%s ", t);
			putchar(c);
			at_line_start = c == '\n';
		}
		fflush(stdout);
	}
	return 0;
}
