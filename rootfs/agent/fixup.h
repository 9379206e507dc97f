/* The guest's post-restore fix-up: `/proc/self/exe fixup --time SEC.NSEC --seed HEX` sets the clock to the host's and reseeds the kernel's random generator, so clones of one snapshot neither keep its time nor share randomness. */
#ifndef MINIVM_FIXUP_H
#define MINIVM_FIXUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FIXUP_SEED_MIN 16  /* bytes: 128 bits at least */
#define FIXUP_SEED_MAX 256 /* bytes */

struct fixup_args {
	bool has_time;
	struct timespec time; /* CLOCK_REALTIME to set */
	size_t seed_len;      /* 0: no seed given */
	uint8_t seed[FIXUP_SEED_MAX];
};

/*
 * Parses the tool's argv (argv[0] is "fixup"): `--time SEC.NNNNNNNNN`
 * (seconds since the epoch, 1..19 digits and at most INT64_MAX, a dot,
 * exactly nine digits of nanoseconds, as printf "%lld.%09ld" writes them)
 * and `--seed HEX` (an even number of hex digits, FIXUP_SEED_MIN to
 * FIXUP_SEED_MAX bytes), each at most once, at least one of them. Pure.
 * 0, or -EINVAL with a one-line message in err.
 */
int fixup_parse(int argc, char **argv, struct fixup_args *a, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* clock_settime(CLOCK_REALTIME, ts). 0 or -errno (EPERM without CAP_SYS_TIME). */
int fixup_set_time(const struct timespec *ts) __attribute__((warn_unused_result));

/*
 * Mixes seed[0..len) into the kernel's pool (ioctl RNDADDENTROPY on
 * /dev/urandom, credited as len * 8 bits) and forces the generator to
 * reseed from it now (RNDRESEEDCRNG), so every later getrandom() and
 * /dev/urandom read of this guest differs from its siblings'. Needs
 * CAP_SYS_ADMIN. 0 or -errno; *step names the call that failed.
 */
int fixup_add_seed(const uint8_t *seed, size_t len, const char **step) __attribute__((warn_unused_result));

/*
 * The tool: parse, set the clock, add the seed. Prints one line (stdout on
 * success, stderr on failure) and returns 0, 1 (a call failed) or 2 (usage).
 * Runs as a child of the agent (PID 1 dispatches before any init work).
 */
int fixup_main(int argc, char **argv);

#endif
