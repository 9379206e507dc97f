/* Unit tests for rate limiting: the token buckets on an injected clock, the spec parser, the CLI's limit and --vm-timeout options, and a throttled virtio-blk device on a real event loop. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/ratelimit.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_spec.h"
#include "tests/unit/test_virtio_helpers.h"
#include "vmm/cli.h"
#include "vmm/evl.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (1000 * SEC) /* an arbitrary start on the injected clock */

static struct rl_config cfg_of(uint64_t bsize, uint64_t bburst, uint64_t brefill, uint64_t osize,
			       uint64_t oburst, uint64_t orefill)
{
	struct rl_config c = {
		.bytes = { .size = bsize, .burst = bburst, .refill_ns = brefill },
		.ops = { .size = osize, .burst = oburst, .refill_ns = orefill },
	};

	return c;
}

/* ---- the buckets ---- */

START_TEST(zero_is_unlimited)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(0, 0, 0, 0, 0, 0);
	uint64_t at = 7;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(!rl_enabled(&rl));
	for (int i = 0; i < 1000; i++)
		ck_assert(rl_admit(&rl, T0, UINT64_MAX, UINT64_MAX, &at));
	ck_assert_uint_eq(at, 7); /* untouched */

	/* A size without a period, or a period without a size: no limit, as
	 * Firecracker's. */
	c = cfg_of(100, 0, 0, 0, 5, SEC);
	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(!rl_enabled(&rl));
	ck_assert(rl_admit(&rl, T0, 1ULL << 40, 1ULL << 40, NULL));
}
END_TEST

START_TEST(starts_full_then_refills_at_the_rate)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(1000, 0, SEC, 0, 0, 0); /* 1000 bytes/s */
	uint64_t at = 0;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_enabled(&rl));
	ck_assert(rl_admit(&rl, T0, 600, 1, &at));
	ck_assert(rl_admit(&rl, T0, 400, 1, &at));
	ck_assert(!rl_admit(&rl, T0, 1, 1, &at));
	ck_assert_uint_eq(at, T0 + 1 * MS); /* one byte per ms */

	/* Half a second later: 500 bytes, not 501. */
	ck_assert(!rl_admit(&rl, T0 + 500 * MS, 501, 1, &at));
	ck_assert_uint_eq(at, T0 + 501 * MS);
	ck_assert(rl_admit(&rl, T0 + 500 * MS, 500, 1, &at));
	ck_assert(!rl_admit(&rl, T0 + 500 * MS, 1, 1, &at));

	/* Idle for an hour: the bucket holds its size, no more. */
	ck_assert(rl_admit(&rl, T0 + 3600 * SEC, 1000, 1, &at));
	ck_assert(!rl_admit(&rl, T0 + 3600 * SEC, 1, 1, &at));
}
END_TEST

START_TEST(retry_time_is_exact)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(3, 0, SEC, 0, 0, 0); /* 3 tokens/s: a third of a second each */
	uint64_t at = 0, now = T0;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_admit(&rl, now, 3, 1, NULL));
	ck_assert(!rl_admit(&rl, now, 2, 1, &at));
	ck_assert_uint_eq(at, T0 + (2 * SEC + 2) / 3); /* ceil(2/3 s) */
	ck_assert(!rl_admit(&rl, at - 1, 2, 1, NULL));
	ck_assert(rl_admit(&rl, at, 2, 1, NULL));

	/* Polled every millisecond, the fractions are kept: 3 per second
	 * over 10 s, none lost to rounding. */
	{
		unsigned int got = 0;

		now = T0 + 100 * SEC; /* full again */
		ck_assert(rl_admit(&rl, now, 3, 1, NULL));
		for (uint64_t t = now + MS; t <= now + 10 * SEC; t += MS)
			if (rl_admit(&rl, t, 1, 1, NULL))
				got++;
		ck_assert_uint_eq(got, 30);
	}
}
END_TEST

START_TEST(one_time_burst)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(100, 1000, SEC, 0, 0, 0);
	uint64_t at;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	/* Burst first, then the bucket: 1100 at once. */
	ck_assert(rl_admit(&rl, T0, 700, 1, NULL));
	ck_assert(rl_admit(&rl, T0, 400, 1, NULL)); /* 300 of burst + 100 of bucket */
	ck_assert(!rl_admit(&rl, T0, 1, 1, &at));
	ck_assert_uint_eq(at, T0 + 10 * MS);
	/* The burst never comes back. */
	ck_assert(rl_admit(&rl, T0 + 100 * SEC, 100, 1, NULL));
	ck_assert(!rl_admit(&rl, T0 + 100 * SEC, 1, 1, NULL));
}
END_TEST

START_TEST(both_buckets_or_neither)
{
	struct ratelimit rl;
	/* 1000 bytes/s and 2 operations/s. */
	struct rl_config c = cfg_of(1000, 0, SEC, 2, 0, SEC);
	uint64_t at;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_admit(&rl, T0, 100, 1, NULL));
	ck_assert(rl_admit(&rl, T0, 100, 1, NULL));
	/* Bytes are there, operations are not: refused, the bytes kept. */
	ck_assert(!rl_admit(&rl, T0, 100, 1, &at));
	ck_assert_uint_eq(at, T0 + 500 * MS);
	ck_assert(rl_admit(&rl, T0 + 500 * MS, 800, 1, NULL)); /* 200 bytes left */
	/* Both short: the later of the two times. An operation is back at
	 * +1000 ms; the 700 missing bytes at +1200 ms. */
	ck_assert(!rl_admit(&rl, T0 + 500 * MS, 900, 1, &at));
	ck_assert_uint_eq(at, T0 + 1200 * MS);
	ck_assert(!rl_admit(&rl, at - 1, 900, 1, NULL));
	ck_assert(rl_admit(&rl, at, 900, 1, NULL));
	/* Zero bytes (a flush) needs only an operation: 0.4 of one was
	 * left over, the rest takes 300 ms. */
	ck_assert(!rl_admit(&rl, T0 + 1200 * MS, 0, 1, &at));
	ck_assert_uint_eq(at, T0 + 1500 * MS);
	ck_assert(rl_admit(&rl, at, 0, 1, NULL));
}
END_TEST

START_TEST(oversized_goes_when_full_then_debt)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(100, 0, SEC, 0, 0, 0); /* 100 bytes/s */
	uint64_t at, now = T0, total = 0;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_admit(&rl, now, 50, 1, NULL));
	/* 1000 > size: it waits for a full bucket (50 more bytes: 500 ms)... */
	ck_assert(!rl_admit(&rl, now, 1000, 1, &at));
	ck_assert_uint_eq(at, T0 + 500 * MS);
	/* ...then goes, and the next request waits out the 900-byte debt. */
	ck_assert(rl_admit(&rl, at, 1000, 1, NULL));
	ck_assert(!rl_admit(&rl, at, 1, 1, &at));
	ck_assert_uint_eq(at, T0 + 500 * MS + 9010 * MS);

	/* The long-run rate holds for oversized requests: 50 x 1000 bytes at
	 * 100 bytes/s take at least 490 s (the first 100 bytes were free). */
	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	now = T0;
	for (int i = 0; i < 50; i++) {
		while (!rl_admit(&rl, now, 1000, 1, &at)) {
			ck_assert_uint_gt(at, now);
			now = at;
		}
		total += 1000;
	}
	ck_assert_uint_eq(total, 50000);
	ck_assert_uint_ge(now - T0, 490 * SEC);
	ck_assert_uint_le(now - T0, 491 * SEC);
}
END_TEST

START_TEST(clock_backwards)
{
	struct ratelimit rl;
	struct rl_config c = cfg_of(10, 0, SEC, 0, 0, 0);
	uint64_t at;

	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_admit(&rl, T0, 10, 1, NULL));
	/* Earlier than the last refill: no tokens, and a retry time after now. */
	ck_assert(!rl_admit(&rl, T0 - SEC, 1, 1, &at));
	ck_assert_uint_gt(at, T0 - SEC);
	ck_assert_uint_eq(at, T0 + 100 * MS);
	ck_assert(rl_admit(&rl, T0 + 100 * MS, 1, 1, NULL));
}
END_TEST

START_TEST(huge_values)
{
	struct ratelimit rl;
	struct rl_config c;
	uint64_t at;

	/* The largest bucket refilling in 1 ns, an elapsed time near 2^64. */
	c = cfg_of(RL_MAX_TOKENS, RL_MAX_TOKENS, 1, RL_MAX_TOKENS, 0, RL_MAX_REFILL_NS);
	ck_assert_int_eq(rl_init(&rl, &c, 0), 0);
	ck_assert(rl_admit(&rl, 0, UINT64_MAX, UINT64_MAX, NULL)); /* counts as RL_MAX_TOKENS */
	ck_assert(rl_admit(&rl, 0, RL_MAX_TOKENS, 0, NULL));       /* the burst was spent first */
	ck_assert(!rl_admit(&rl, 0, 1, 0, &at));
	ck_assert_uint_eq(at, 1);
	ck_assert(rl_admit(&rl, UINT64_MAX - 1, RL_MAX_TOKENS, 0, NULL));
	ck_assert(rl_admit(&rl, UINT64_MAX, 1, 0, NULL));

	/* A tiny bucket deep in debt: the retry time saturates. */
	c = cfg_of(1, 0, RL_MAX_REFILL_NS, 0, 0, 0);
	ck_assert_int_eq(rl_init(&rl, &c, T0), 0);
	ck_assert(rl_admit(&rl, T0, RL_MAX_TOKENS, 0, NULL));
	ck_assert(!rl_admit(&rl, T0, 1, 0, &at));
	ck_assert_uint_eq(at, UINT64_MAX);
	ck_assert(!rl_admit(&rl, UINT64_MAX, 1, 0, &at));
	ck_assert_uint_eq(at, UINT64_MAX);

	/* Out of bounds: refused, and the limiter limits nothing. */
	c = cfg_of(RL_MAX_TOKENS + 1, 0, SEC, 0, 0, 0);
	ck_assert_int_eq(rl_init(&rl, &c, T0), -EINVAL);
	ck_assert(!rl_enabled(&rl));
	c = cfg_of(0, 0, 0, 10, RL_MAX_TOKENS + 1, SEC);
	ck_assert_int_eq(rl_init(&rl, &c, T0), -EINVAL);
	c = cfg_of(10, 0, RL_MAX_REFILL_NS + 1, 0, 0, 0);
	ck_assert_int_eq(rl_init(&rl, &c, T0), -EINVAL);
}
END_TEST

/* ---- rates per second into buckets ---- */

START_TEST(rates_into_buckets)
{
	struct minivm_rate_limit lim;
	struct rl_config c;
	char err[200];

	memset(&lim, 0, sizeof(lim));
	ck_assert(!rl_limit_set(&lim));
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.bytes.size, 0);
	ck_assert_uint_eq(c.ops.size, 0);

	lim.bytes_per_s = 64 << 10;
	lim.ops_per_s = 100;
	lim.ops_burst = 50;
	ck_assert(rl_limit_set(&lim));
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.bytes.size, 65536);
	ck_assert_uint_eq(c.bytes.refill_ns, SEC);
	ck_assert_uint_eq(c.ops.size, 100);
	ck_assert_uint_eq(c.ops.burst, 50);

	/* A shorter period: a smaller bucket, the same rate. */
	lim.bytes_refill_ms = 100;
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.bytes.size, 6553);
	ck_assert_uint_eq(c.bytes.refill_ns, 6553ULL * SEC / 65536);

	lim.bytes_per_s = 5; /* half a byte per 100 ms */
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "less than one") != NULL, "%s", err);

	memset(&lim, 0, sizeof(lim));
	lim.bytes_burst = 10;
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "bw-burst needs bw") != NULL, "%s", err);
	memset(&lim, 0, sizeof(lim));
	lim.ops_refill_ms = 10;
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "iops-refill needs iops") != NULL, "%s", err);
	memset(&lim, 0, sizeof(lim));
	lim.bytes_per_s = RL_MAX_TOKENS + 1;
	ck_assert_int_eq(rl_config_from_limit(&lim, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "too large") != NULL, "%s", err);
}
END_TEST

/* ---- the spec parser ---- */

START_TEST(spec_good)
{
	struct minivm_rate_limit lim;
	char err[200];

	ck_assert_int_eq(rl_parse_spec("bw=10M,iops=100,bw-burst=1G,iops-burst=5,bw-refill=100ms,"
				       "iops-refill=2s", &lim, err, sizeof(err)), 0);
	ck_assert_uint_eq(lim.bytes_per_s, 10ULL << 20);
	ck_assert_uint_eq(lim.bytes_burst, 1ULL << 30);
	ck_assert_uint_eq(lim.bytes_refill_ms, 100);
	ck_assert_uint_eq(lim.ops_per_s, 100);
	ck_assert_uint_eq(lim.ops_burst, 5);
	ck_assert_uint_eq(lim.ops_refill_ms, 2000);

	ck_assert_int_eq(rl_parse_spec("bw=64K", &lim, err, sizeof(err)), 0);
	ck_assert_uint_eq(lim.bytes_per_s, 65536);
	ck_assert_uint_eq(lim.ops_per_s, 0);
	ck_assert_int_eq(rl_parse_spec("bw=64KiB", &lim, err, sizeof(err)), 0);
	ck_assert_uint_eq(lim.bytes_per_s, 65536);
	ck_assert_int_eq(rl_parse_spec("bw=3t", &lim, err, sizeof(err)), 0);
	ck_assert_uint_eq(lim.bytes_per_s, 3ULL << 40);
	ck_assert_int_eq(rl_parse_spec("iops=1", &lim, err, sizeof(err)), 0);
	ck_assert_uint_eq(lim.ops_per_s, 1);
}
END_TEST

START_TEST(spec_bad)
{
	static const struct {
		const char *spec, *needle;
	} cases[] = {
		{ "", "empty" },
		{ "bw", "unknown" },
		{ "bw=", "bad bw" },
		{ "bw=0", "bad bw" },
		{ "bw=10X", "bad bw '10X'" },
		{ "bw=-1", "bad bw" },
		{ "bw=1.5M", "bad bw" },
		{ "bw=1MB/s", "bad bw" },
		{ "bw=99999999999999999999", "bad bw" },
		{ "bw=16777216T", "bad bw" }, /* 2^64 */
		{ "bw=4194305T", "bad bw" },  /* above RL_MAX_TOKENS (4194304T) */
		{ "iops=0", "bad iops" },
		{ "iops=1K", "bad iops" },
		{ "iops=", "bad iops" },
		{ "iops-burst=x", "bad iops-burst" },
		{ "bw=1M,bw=2M", "bw given twice" },
		{ "bw=1M,bw-refill=0ms", "bad bw-refill" },
		{ "bw=1M,bw-refill=100", "bad bw-refill" },
		{ "bw=1M,bw-refill=1m", "bad bw-refill" },
		{ "bw=1M,bw-refill=3601s", "bad bw-refill" },
		{ "iops-burst=10", "iops-burst needs iops" },
		{ "bw-refill=10ms", "bw-refill needs bw" },
		{ "bw=1M,,iops=1", "unknown" },
		{ "bw=1M,foo=1", "unknown rate limit option 'foo=1'" },
		{ "BW=1M", "unknown" },
		{ "bw=1,bw-refill=100ms", "less than one" },
	};
	struct minivm_rate_limit lim;
	char err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(err, 0, sizeof(err));
		ck_assert_msg(rl_parse_spec(cases[i].spec, &lim, err, sizeof(err)) == -EINVAL,
			      "'%s' accepted", cases[i].spec);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "'%s': message '%s' lacks '%s'",
			      cases[i].spec, err, cases[i].needle);
	}
}
END_TEST

START_TEST(durations)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{ "0", 0 }, { "90", 90000 }, { "90s", 90000 }, { "500ms", 500 },
		{ "10m", 600000 }, { "2h", 7200000 }, { "007", 7000 },
		{ "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = { "", "s", "ms", "1.5s", "10 s", "10sec", "-1", "1d",
					   "18446744073709551615s", "99999999999999999999", "1hh" };
	uint64_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(rl_parse_duration_ms(good[i].s, strlen(good[i].s), &ms) == 0, "%s",
			      good[i].s);
		ck_assert_uint_eq(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(rl_parse_duration_ms(bad[i], strlen(bad[i]), &ms) == -EINVAL, "'%s' accepted",
			      bad[i]);
	/* The length bounds the parse: "10" of "10x". */
	ck_assert_int_eq(rl_parse_duration_ms("10x", 2, &ms), 0);
	ck_assert_uint_eq(ms, 10000);
}
END_TEST

/* ---- the CLI ---- */

#define T_MAX_ARGS 32
static struct cli t_cli;
static char t_err[512];

static int parse(const char *first, ...)
{
	const char *argv[T_MAX_ARGS + 2];
	va_list ap;
	int argc = 0;

	argv[argc++] = "minivm";
	va_start(ap, first);
	for (const char *a = first; a && argc <= T_MAX_ARGS; a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	memset(t_err, 0, sizeof(t_err));
	return cli_parse(argc, (char *const *)argv, &t_cli, t_err, sizeof(t_err));
}

#define ck_assert_rejected(r, needle)                                                   \
	do {                                                                            \
		ck_assert_int_eq((r), -EINVAL);                                         \
		ck_assert_msg(strstr(t_err, (needle)) != NULL,                          \
			      "message '%s' should mention '%s'", t_err, (needle));     \
	} while (0)

START_TEST(cli_disk_limits)
{
	const struct minivm_config *c = &t_cli.cfg;

	ck_assert_int_eq(parse("--kernel", "k", "--rootfs", "/r.img,rw,bw=1M,iops=50",
			       "--disk", "/a,b.img,ro,bw=64K,bw-burst=1M,bw-refill=100ms",
			       "--disk", "/c.img,iops=10,iops-burst=20,iops-refill=500ms,ro",
			       "--disk", "/d.img", NULL), 0);
	ck_assert_str_eq(c->rootfs, "/r.img");
	ck_assert(c->rootfs_rw);
	ck_assert_uint_eq(c->rootfs_limit.bytes_per_s, 1 << 20);
	ck_assert_uint_eq(c->rootfs_limit.ops_per_s, 50);
	ck_assert_uint_eq(c->nr_disks, 3);
	ck_assert_str_eq(c->disks[0].path, "/a,b.img"); /* a comma in the path stays */
	ck_assert(c->disks[0].read_only);
	ck_assert_uint_eq(c->disks[0].limit.bytes_per_s, 65536);
	ck_assert_uint_eq(c->disks[0].limit.bytes_burst, 1 << 20);
	ck_assert_uint_eq(c->disks[0].limit.bytes_refill_ms, 100);
	ck_assert_uint_eq(c->disks[0].limit.ops_per_s, 0);
	ck_assert_str_eq(c->disks[1].path, "/c.img");
	ck_assert(c->disks[1].read_only);
	ck_assert_uint_eq(c->disks[1].limit.ops_per_s, 10);
	ck_assert_uint_eq(c->disks[1].limit.ops_burst, 20);
	ck_assert_uint_eq(c->disks[1].limit.ops_refill_ms, 500);
	ck_assert_str_eq(c->disks[2].path, "/d.img");
	ck_assert(!rl_limit_set(&c->disks[2].limit));
	ck_assert(!c->disks[2].read_only);
	ck_assert_uint_eq(c->vm_timeout_ms, 0);

	/* Bad limits name the option and say what is expected. */
	ck_assert_rejected(parse("--kernel", "k", "--disk", "/a.img,bw=10X", NULL), "bad bw '10X'");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "/a.img,bw=10X", NULL), "--disk");
	ck_assert_rejected(parse("--kernel", "k", "--rootfs", "/a.img,iops=0", NULL), "--rootfs");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "/a.img,bw=1M,bw=2M", NULL),
			   "given twice");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "/a.img,bwx=1M", NULL),
			   "unknown option 'bwx=1M'");
	ck_assert_rejected(parse("--kernel", "k", "--disk", "/a.img,bw-burst=1M", NULL),
			   "bw-burst needs bw");
	ck_assert_rejected(parse("--kernel", "k", "--disk", ",bw=1M", NULL), "expected PATH");
	/* No comma: all of it is the path. */
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "bw=1M", NULL), 0);
	ck_assert_str_eq(c->disks[0].path, "bw=1M");
	ck_assert(!rl_limit_set(&c->disks[0].limit));
}
END_TEST

START_TEST(cli_vm_timeout)
{
	ck_assert_int_eq(parse("--kernel", "k", "--vm-timeout", "30", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.vm_timeout_ms, 30000);
	ck_assert_int_eq(parse("--kernel", "k", "--vm-timeout=1500ms", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.vm_timeout_ms, 1500);
	ck_assert_int_eq(parse("--kernel", "k", "--vm-timeout", "2h", "--rootfs", "r",
			       "--agent", "sleep 600", "--timeout", "5", NULL), 0);
	ck_assert_uint_eq(t_cli.cfg.vm_timeout_ms, 7200000);
	ck_assert_uint_eq(t_cli.timeout_s, 5);
	ck_assert_int_eq(parse("--kernel", "k", "--vm-timeout", "31536000s", NULL), 0);

	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "0", NULL), "bad --vm-timeout '0'");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "0ms", NULL), "--vm-timeout");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "31536001s", NULL), "at most a year");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "5x", NULL), "--vm-timeout '5x'");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "-5", NULL), "--vm-timeout");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout=", NULL), "--vm-timeout");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", NULL), "needs a value");
	ck_assert_rejected(parse("--kernel", "k", "--vm-timeout", "5", "--vm-timeout", "6", NULL),
			   "given twice");
	ck_assert(strstr(cli_usage, "--vm-timeout") != NULL);
	ck_assert(strstr(cli_usage, "122") != NULL);
	ck_assert(strstr(cli_usage, "bw=RATE") != NULL);
	ck_assert(strstr(cli_usage, "iops=N") != NULL);
}
END_TEST

/* --mem and --cpus existed before; their bad values get clear errors. */
START_TEST(cli_mem_cpus_errors)
{
	ck_assert_rejected(parse("--kernel", "k", "--mem", "lots", NULL),
			   "bad --mem 'lots' (expected a size like 256M or 1G)");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "16M", NULL),
			   "--mem 16M out of range (a whole number of MiB from 32M to 64G)");
	ck_assert_rejected(parse("--kernel", "k", "--mem", "99999999999999999999G", NULL), "bad --mem");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "0", NULL), "bad --cpus '0' (expected 1 to 32)");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "64", NULL), "expected 1 to 32");
	ck_assert_rejected(parse("--kernel", "k", "--cpus", "two", NULL), "bad --cpus 'two'");
}
END_TEST

/* ---- a throttled virtio-blk device ---- */

#define RAM_SIZE (16u << 20)
#define QSIZE 64
#define RING 0x1000
#define HDRS 0x10000
#define STATUSES 0x20000
#define BUFS 0x100000
#define IMG_BYTES (1u << 20)

static struct fake_ram ram;
static char img[64];
static struct evl *evl;
static pthread_t loop;
static int loop_ret;
static struct vmmio *t;
static struct virtio_dev *dev;
static int irq = -1;
static struct vq_builder vb;

static void *loop_main(void *arg)
{
	(void)arg;
	loop_ret = evl_run(evl);
	return NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	vmmio_read(t, off, &v, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

static void dev_setup(void)
{
	uint8_t *buf = malloc(IMG_BYTES);
	int fd;

	fake_ram_init(&ram, RAM_SIZE);
	strcpy(img, "/tmp/minivm-rl-XXXXXX");
	fd = mkstemp(img);
	ck_assert_int_ge(fd, 0);
	for (uint32_t i = 0; i < IMG_BYTES; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 9));
	ck_assert_int_eq(pwrite(fd, buf, IMG_BYTES, 0), (ssize_t)IMG_BYTES);
	close(fd);
	free(buf);
}

static void dev_teardown(void)
{
	if (t) {
		evl_stop(evl);
		pthread_join(loop, NULL);
		ck_assert_int_eq(loop_ret, 0);
		vmmio_destroy(t);
		evl_destroy(evl);
		close(irq);
		t = NULL;
	}
	unlink(img);
	fake_ram_free(&ram);
}

/* The device with a limit (NULL: none), driven up to DRIVER_OK. */
static void start_dev(const struct rl_config *cfg)
{
	char err[256] = "";
	uint64_t f;

	evl = evl_create(256, err, sizeof(err));
	ck_assert_msg(evl != NULL, "%s", err);
	dev = virtio_blk_create(img, false, NULL, evl, err, sizeof(err));
	ck_assert_msg(dev != NULL, "%s", err);
	if (cfg)
		ck_assert_msg(virtio_blk_set_rate_limit(dev, cfg, err, sizeof(err)) == 0, "%s", err);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(pthread_create(&loop, NULL, loop_main, NULL), 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f |= (uint64_t)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	f &= ~VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK);
	vqb_init(&vb, &ram, QSIZE, RING);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vb.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)vb.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)vb.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

/* Read request `slot`: 4 KiB from sector slot * 8 into its own buffer. */
static void queue_read(uint16_t slot)
{
	uint16_t d = (uint16_t)(slot * 3);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = slot * 8ULL };

	memcpy(fake_ram_at(&ram, HDRS + 16ULL * slot, 16), &h, 16);
	*(uint8_t *)fake_ram_at(&ram, STATUSES + slot, 1) = 0xee;
	vqb_desc(&vb, d, HDRS + 16ULL * slot, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
	vqb_desc(&vb, (uint16_t)(d + 1), BUFS + 4096ULL * slot, 4096,
		 VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(d + 2));
	vqb_desc(&vb, (uint16_t)(d + 2), STATUSES + slot, 1, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&vb, d);
}

static uint16_t used_now(void)
{
	return __atomic_load_n((uint16_t *)fake_ram_at(&ram, vb.used + 2, 2), __ATOMIC_ACQUIRE);
}

/* Waits until n requests are used (at most 10 s); returns the time. */
static uint64_t wait_used(uint16_t n)
{
	for (int i = 0; i < 10000 && used_now() != n; i++)
		usleep(1000);
	ck_assert_uint_eq(used_now(), n);
	return mono_ns();
}

static void check_read(uint16_t slot)
{
	const uint8_t *p = fake_ram_at(&ram, BUFS + 4096ULL * slot, 4096);

	ck_assert_uint_eq(*(uint8_t *)fake_ram_at(&ram, STATUSES + slot, 1), VIRTIO_BLK_S_OK);
	for (uint32_t i = 0; i < 4096; i++) {
		uint32_t off = slot * 4096u + i;

		ck_assert_uint_eq(p[i], (uint8_t)(off * 7 + (off >> 9)));
	}
}

START_TEST(blk_bytes_throttled)
{
	/* 4 KiB per 100 ms (40 KiB/s), bucket of 4 KiB: eight 4 KiB reads
	 * queued at once take at least 700 ms; each completes OK. */
	struct rl_config c = cfg_of(4096, 0, 100 * MS, 0, 0, 0);
	uint64_t t0, first, last;

	start_dev(&c);
	for (uint16_t i = 0; i < 8; i++)
		queue_read(i);
	t0 = mono_ns();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	first = wait_used(1);
	last = wait_used(8);
	/* Wall-clock upper bounds stay loose (a loaded host under ASan); the
	 * bucket starting full is checked exactly on the injected clock. */
	ck_assert_msg(first - t0 < 1000 * MS, "the first read waited %llu ms",
		      (unsigned long long)((first - t0) / MS));
	ck_assert_msg(last - first >= 490 * MS, "7 reads after the first took only %llu ms",
		      (unsigned long long)((last - first) / MS));
	ck_assert_msg(last - t0 >= 690 * MS, "8 reads took only %llu ms",
		      (unsigned long long)((last - t0) / MS));
	ck_assert_msg(last - t0 < 5000 * MS, "8 reads took %llu ms", (unsigned long long)((last - t0) / MS));
	for (uint16_t i = 0; i < 8; i++)
		check_read(i);
	ck_assert_uint_ge(virtio_blk_throttled(dev), 1);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* Metrics see the same throttles, and the 8 reads. */
	{
		struct minivm_device_metrics m;

		virtio_stats_read(&dev->stats, &m);
		ck_assert_uint_eq(m.throttled, virtio_blk_throttled(dev));
		ck_assert_uint_eq(m.reads, 8);
	}
}
END_TEST

START_TEST(blk_ops_throttled_with_burst)
{
	/* 10 requests/s in 100 ms steps (bucket of 1), plus a burst of 3:
	 * 4 go at once, the other 4 at ~100 ms intervals. */
	struct rl_config c = cfg_of(0, 0, 0, 1, 3, 100 * MS);
	uint64_t t0, four, last;

	start_dev(&c);
	for (uint16_t i = 0; i < 8; i++)
		queue_read(i);
	t0 = mono_ns();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	four = wait_used(4);
	last = wait_used(8);
	ck_assert_msg(four - t0 < 1000 * MS, "the burst waited %llu ms",
		      (unsigned long long)((four - t0) / MS));
	ck_assert_msg(last - t0 >= 390 * MS, "8 requests took only %llu ms",
		      (unsigned long long)((last - t0) / MS));
	for (uint16_t i = 0; i < 8; i++)
		check_read(i);
}
END_TEST

START_TEST(blk_unlimited_not_throttled)
{
	struct rl_config c = cfg_of(0, 0, 0, 0, 0, 0);
	uint64_t t0, last;

	start_dev(&c); /* a limit that limits nothing: no timer, no clock */
	for (uint16_t i = 0; i < 16; i++)
		queue_read(i);
	t0 = mono_ns();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	last = wait_used(16);
	ck_assert_uint_lt(last - t0, 5000 * MS);
	for (uint16_t i = 0; i < 16; i++)
		check_read(i);
	ck_assert_uint_eq(virtio_blk_throttled(dev), 0);
}
END_TEST

START_TEST(blk_set_twice_and_bad_limit)
{
	struct rl_config c = cfg_of(4096, 0, 100 * MS, 0, 0, 0);
	struct rl_config huge = cfg_of(RL_MAX_TOKENS + 1, 0, SEC, 0, 0, 0);
	char err[256] = "";

	evl = evl_create(64, err, sizeof(err));
	ck_assert_ptr_nonnull(evl);
	dev = virtio_blk_create(img, false, NULL, evl, err, sizeof(err));
	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(virtio_blk_set_rate_limit(dev, &huge, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "out of bounds") != NULL, "%s", err);
	ck_assert_int_eq(virtio_blk_set_rate_limit(dev, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(virtio_blk_set_rate_limit(dev, &c, err, sizeof(err)), -EALREADY);
	dev->ops->destroy(dev);
	evl_destroy(evl);
	evl = NULL;
}
END_TEST

START_TEST(blk_reset_while_parked)
{
	/* One request per second: the second is parked when the driver
	 * resets; the timer then fires on a reset device, harmlessly, and
	 * the device works again after re-initialisation. */
	struct rl_config c = cfg_of(0, 0, 0, 1, 0, 300 * MS);

	start_dev(&c);
	queue_read(0);
	queue_read(1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
	ck_assert_uint_eq(virtio_blk_throttled(dev), 1);
	wr(VIRTIO_MMIO_STATUS, 0); /* reset */
	usleep(400 * 1000);        /* the timer fires meanwhile */
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	/* Back up: a new ring, a new request, served once the bucket allows. */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK);
	vqb_init(&vb, &ram, QSIZE, RING);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vb.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)vb.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)vb.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	queue_read(2);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
	check_read(2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tb = tcase_create("buckets");
	TCase *tp = tcase_create("parser");
	TCase *td = tcase_create("blk");
	SRunner *sr;
	int failed;

	tcase_add_test(tb, zero_is_unlimited);
	tcase_add_test(tb, starts_full_then_refills_at_the_rate);
	tcase_add_test(tb, retry_time_is_exact);
	tcase_add_test(tb, one_time_burst);
	tcase_add_test(tb, both_buckets_or_neither);
	tcase_add_test(tb, oversized_goes_when_full_then_debt);
	tcase_add_test(tb, clock_backwards);
	tcase_add_test(tb, huge_values);
	tcase_add_test(tb, rates_into_buckets);
	suite_add_tcase(s, tb);
	tcase_add_test(tp, spec_good);
	tcase_add_test(tp, spec_bad);
	tcase_add_test(tp, durations);
	tcase_add_test(tp, cli_disk_limits);
	tcase_add_test(tp, cli_vm_timeout);
	tcase_add_test(tp, cli_mem_cpus_errors);
	suite_add_tcase(s, tp);
	tcase_add_checked_fixture(td, dev_setup, dev_teardown);
	tcase_set_timeout(td, 60);
	tcase_add_test(td, blk_bytes_throttled);
	tcase_add_test(td, blk_ops_throttled_with_burst);
	tcase_add_test(td, blk_unlimited_not_throttled);
	tcase_add_test(td, blk_set_twice_and_bad_limit);
	tcase_add_test(td, blk_reset_while_parked);
	suite_add_tcase(s, td);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
