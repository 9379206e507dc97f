/* Token-bucket rate limiting (bytes/s and operations/s, with a one-time burst), pure and clock-injected, for devices. */
#ifndef MINIVM_RATELIMIT_H
#define MINIVM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/minivm.h"

/*
 * The model is Firecracker's TokenBucket: a bucket of `size` tokens that
 * refills from empty to full in `refill_ns`, at a steady rate, and never
 * holds more than `size`; on top of it a one-time `burst` that is spent
 * first and never refills. Differences, on purpose:
 * - an operation is admitted by both buckets (bytes and ops) or by neither:
 *   nothing is taken from one when the other refuses, so nothing needs to be
 *   given back;
 * - a refusal says exactly when the same operation will be admitted (no
 *   fixed 100 ms polling), so the device arms one timer for that time;
 * - an operation larger than the bucket (a 1 MiB write under a 64 KiB/s
 *   limit) waits until the bucket is full, then goes and leaves the bucket
 *   in debt (a negative budget) that later operations wait out: the long-run
 *   rate holds for every size, and no operation waits forever.
 * Time is the caller's: every call takes `now` in nanoseconds of a
 * monotonic clock (CLOCK_MONOTONIC in devices, anything in tests). A clock
 * that goes backwards counts as no time passing.
 *
 * A device that has several independent directions (a NIC: transmit and
 * receive) keeps one struct ratelimit per direction.
 *
 * Not thread-safe: the device's lock covers it.
 */

#define RL_MAX_TOKENS (1ULL << 62) /* size and burst bound: budget arithmetic stays in int64 */
#define RL_MAX_REFILL_NS (3600ULL * 1000000000ULL) /* an hour */

struct rl_bucket_cfg {
	uint64_t size;      /* capacity and tokens per refill period; 0: no limit */
	uint64_t burst;     /* one-time extra tokens, spent first, never refilled */
	uint64_t refill_ns; /* time from empty to full; 0: no limit */
};

struct rl_config {
	struct rl_bucket_cfg bytes;
	struct rl_bucket_cfg ops;
};

struct rl_bucket {
	struct rl_bucket_cfg cfg;
	bool on;          /* size and refill_ns both non-zero */
	int64_t budget;   /* tokens now; negative: debt of an oversized operation */
	uint64_t burst;   /* one-time tokens left */
	uint64_t last_ns; /* time of the last refill */
	uint64_t rem;     /* refill remainder in token-nanoseconds, < refill_ns */
};

struct ratelimit {
	struct rl_bucket bytes;
	struct rl_bucket ops;
};

/*
 * Sets rl up from cfg at time now: both buckets start full, with their
 * whole burst. A bucket whose size or refill_ns is 0 does not limit.
 * Returns 0, or -EINVAL (rl then limits nothing) when a size or burst is
 * above RL_MAX_TOKENS or a refill period above RL_MAX_REFILL_NS.
 */
int rl_init(struct ratelimit *rl, const struct rl_config *cfg, uint64_t now)
	__attribute__((warn_unused_result));

/* Whether either bucket limits anything. */
bool rl_enabled(const struct ratelimit *rl);

/*
 * Asks to do `ops` operations moving `bytes` bytes at time now (a disk
 * request: ops = 1, bytes = its data length). Amounts above RL_MAX_TOKENS
 * count as RL_MAX_TOKENS.
 * true:  go; the tokens are taken from both buckets.
 * false: not yet; nothing is taken, and *retry_at (when not NULL) is the
 *        earliest time at which this same request will be admitted if
 *        nothing else takes tokens meanwhile (> now; saturates at
 *        UINT64_MAX).
 */
bool rl_admit(struct ratelimit *rl, uint64_t now, uint64_t bytes, uint64_t ops, uint64_t *retry_at)
	__attribute__((warn_unused_result));

/*
 * Turns user-facing rates (per second, as minivm_config holds them) into
 * bucket sizes: a bucket holds rate x refill period (default 1 s) tokens
 * and refills that in the period. Returns 0, or -EINVAL with a message in
 * err (a non-zero rate too low to give one token per period, values past
 * the bounds above).
 */
int rl_config_from_limit(const struct minivm_rate_limit *lim, struct rl_config *cfg, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

/* Whether lim limits anything (a rate is non-zero). */
bool rl_limit_set(const struct minivm_rate_limit *lim);

/*
 * Parses one option of a rate-limit spec, `len` bytes at s (not
 * NUL-terminated necessarily): KEY=VALUE with KEY one of
 *   bw, bw-burst       bytes: digits with an optional K, M, G or T suffix
 *                      (binary: 64K = 65536), bw per second
 *   iops, iops-burst   operations: digits, iops per second
 *   bw-refill, iops-refill  the refill period: digits with ms or s (default s),
 *                      1 ms to 1 hour
 * into *lim. Returns 0 when parsed, 1 when s is not one of these keys (the
 * caller may have its own options), -EINVAL with a message in err for a
 * known key with a bad value or given twice (`seen` remembers which keys were
 * given: start it at 0).
 */
int rl_parse_option(const char *s, size_t len, struct minivm_rate_limit *lim, unsigned int *seen,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Parses a whole spec, options separated by commas ("bw=10M,iops=100"),
 * into *lim (zeroed first). Returns 0 or -EINVAL with a message in err (an
 * unknown key included). An empty string is an error.
 */
int rl_parse_spec(const char *s, struct minivm_rate_limit *lim, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Parses a duration: digits with an optional unit, ms, s, m or h (none:
 * seconds), into milliseconds. Returns 0, or -EINVAL for garbage, an empty
 * string, or a value past UINT64_MAX ms.
 */
int rl_parse_duration_ms(const char *s, size_t len, uint64_t *ms) __attribute__((warn_unused_result));

/* ---- the device side: waiting on the event loop (not pure) ----
 *
 * A device that throttles a queue keeps, per limited direction, a struct
 * ratelimit and a struct rl_timer: rl_gate() says whether a request may go
 * now and, when not, arms the timer for the time the buckets named; the
 * device then stops taking requests from that queue (keeping the refused one
 * for first) until its callback runs on the event loop, calls
 * rl_timer_fired() and retries. virtio-blk has one direction; a NIC has two
 * (transmit: frames the guest sends, receive: frames it is given), each its
 * own pair. Under the device's lock, like the buckets.
 */
struct evl;

struct rl_timer {
	struct evl *evl;
	int fd;       /* timerfd (CLOCK_MONOTONIC) watched by evl, or -1 */
	bool armed;
	uint64_t at;  /* when armed: the absolute expiry */
};

/* CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). */
uint64_t rl_now_ns(void);

/*
 * Makes t's timerfd and watches it on evl: cb(opaque, fd, revents) runs on
 * the loop thread when it expires; cb calls rl_timer_fired(). Setup time
 * (before the jail: it creates a descriptor). Returns 0 or -errno.
 */
int rl_timer_open(struct rl_timer *t, struct evl *evl, void (*cb)(void *opaque, int fd, uint32_t revents),
		  void *opaque) __attribute__((warn_unused_result));

/* From the callback: consumes the expiry; the timer is no longer armed. */
void rl_timer_fired(struct rl_timer *t);

/* Stops watching and closes; t may be unopened (fd -1). */
void rl_timer_close(struct rl_timer *t);

/*
 * rl_admit() at the current time; when refused, arms t for the retry time
 * (one timerfd_settime, skipped when already armed for that time) and
 * returns false. Returns true when the request may go, and also when the
 * timer cannot be armed (then nothing would wake the device: better
 * unthrottled than stuck; *why says so when not NULL).
 */
bool rl_gate(struct ratelimit *rl, struct rl_timer *t, uint64_t bytes, uint64_t ops, int *why)
	__attribute__((warn_unused_result));

#endif
