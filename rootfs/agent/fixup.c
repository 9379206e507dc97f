/* `/proc/self/exe fixup`: after a snapshot restore, the guest takes the host's clock and fresh random bytes (libc only, musl-static friendly). */
#include "fixup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The random driver's ioctls (include/uapi/linux/random.h); musl's
 * headers lack the kernel's, and the numbers are ABI. */
#if defined(__has_include)
#if __has_include(<linux/random.h>)
#include <linux/random.h>
#endif
#endif
#ifndef RNDADDENTROPY
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#endif
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

__attribute__((format(printf, 3, 4))) static int fx_err(char *err, size_t errlen, const char *fmt, ...);

static int fx_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool fx_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

static int fx_parse_time(const char *s, struct timespec *ts)
{
	const char *dot = strchr(s, '.');
	size_t nsec_len, sec_len;
	uint64_t sec = 0;
	long nsec = 0;

	if (!dot)
		return -EINVAL;
	sec_len = (size_t)(dot - s);
	nsec_len = strlen(dot + 1);
	if (sec_len > 19 || !fx_digits(s, sec_len) || nsec_len != 9 || !fx_digits(dot + 1, nsec_len))
		return -EINVAL;
	for (size_t i = 0; i < sec_len; i++) {
		if (__builtin_mul_overflow(sec, 10u, &sec) || __builtin_add_overflow(sec, (uint64_t)(s[i] - '0'), &sec))
			return -EINVAL;
	}
	if (sec > (uint64_t)INT64_MAX || (sizeof(time_t) < 8 && sec > (uint64_t)INT32_MAX))
		return -EINVAL;
	for (size_t i = 0; i < nsec_len; i++)
		nsec = nsec * 10 + (dot[1 + i] - '0');
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec; /* nine digits: < 1e9 */
	return 0;
}

static int fx_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int fx_parse_seed(const char *s, uint8_t *out, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 < FIXUP_SEED_MIN || n / 2 > FIXUP_SEED_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = fx_hex(s[2 * i]), lo = fx_hex(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

int fixup_parse(int argc, char **argv, struct fixup_args *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			return fx_err(err, errlen, "%s needs a value", opt);
		if (strcmp(opt, "--time") == 0) {
			if (a->has_time)
				return fx_err(err, errlen, "--time given twice");
			if (fx_parse_time(val, &a->time))
				return fx_err(err, errlen, "--time %.40s: want SECONDS.NNNNNNNNN (nine digits)", val);
			a->has_time = true;
		} else if (strcmp(opt, "--seed") == 0) {
			if (a->seed_len)
				return fx_err(err, errlen, "--seed given twice");
			if (fx_parse_seed(val, a->seed, &a->seed_len))
				return fx_err(err, errlen, "--seed: want %d to %d bytes as an even number of hex digits",
					      FIXUP_SEED_MIN, FIXUP_SEED_MAX);
		} else {
			return fx_err(err, errlen, "unknown option %.40s", opt);
		}
	}
	if (!a->has_time && !a->seed_len)
		return fx_err(err, errlen, "nothing to do: give --time SEC.NSEC and/or --seed HEX");
	return 0;
}

int fixup_set_time(const struct timespec *ts)
{
	return clock_settime(CLOCK_REALTIME, ts) ? -errno : 0;
}

int fixup_add_seed(const uint8_t *seed, size_t len, const char **step)
{
	/* struct rand_pool_info with room for the bytes (buf is __u32[]). */
	struct {
		int entropy_count;
		int buf_size;
		uint32_t buf[FIXUP_SEED_MAX / 4 + 1];
	} pool;
	int fd, r = 0;

	*step = "seed";
	if (len == 0 || len > FIXUP_SEED_MAX)
		return -EINVAL;
	memset(&pool, 0, sizeof(pool));
	pool.entropy_count = (int)(len * 8);
	pool.buf_size = (int)len;
	memcpy(pool.buf, seed, len);
	*step = "open /dev/urandom";
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*step = "RNDADDENTROPY";
	if (ioctl(fd, RNDADDENTROPY, &pool) < 0) {
		r = -errno;
		goto out;
	}
	*step = "RNDRESEEDCRNG";
	if (ioctl(fd, RNDRESEEDCRNG) < 0)
		r = -errno;
out:
	close(fd);
	/* The seed is secret: do not leave it on the stack. */
	memset(&pool, 0, sizeof(pool));
	__asm__ __volatile__("" : : "r"(&pool) : "memory");
	return r;
}

int fixup_main(int argc, char **argv)
{
	struct fixup_args a;
	const char *step = "";
	char err[160];
	int r;

	if (fixup_parse(argc, argv, &a, err, sizeof(err))) {
		dprintf(STDERR_FILENO, "fixup: %s\n", err);
		return 2;
	}
	if (a.has_time && (r = fixup_set_time(&a.time))) {
		dprintf(STDERR_FILENO, "fixup: clock_settime: %s\n", strerror(-r));
		return 1;
	}
	if (a.seed_len && (r = fixup_add_seed(a.seed, a.seed_len, &step))) {
		dprintf(STDERR_FILENO, "fixup: %s: %s\n", step, strerror(-r));
		return 1;
	}
	memset(a.seed, 0, sizeof(a.seed));
	dprintf(STDOUT_FILENO, "fixup: %s%s%s\n", a.has_time ? "clock set" : "",
		a.has_time && a.seed_len ? ", " : "", a.seed_len ? "random generator reseeded" : "");
	return 0;
}
