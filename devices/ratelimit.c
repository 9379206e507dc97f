/* Token-bucket rate limiting: the buckets (pure, clock-injected), the parser of rate-limit specs, and the timer a throttled device waits on. */
#include "devices/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/evl.h"

typedef unsigned __int128 rl_u128;

#define RL_NS_PER_MS 1000000ULL
#define RL_NS_PER_S 1000000000ULL
#define RL_DEFAULT_REFILL_MS 1000U
#define RL_MAX_REFILL_MS (RL_MAX_REFILL_NS / RL_NS_PER_MS)

/* ---- the buckets ---- */

static int rl_bucket_init(struct rl_bucket *b, const struct rl_bucket_cfg *cfg, uint64_t now)
{
	memset(b, 0, sizeof(*b));
	if (cfg->size > RL_MAX_TOKENS || cfg->burst > RL_MAX_TOKENS || cfg->refill_ns > RL_MAX_REFILL_NS)
		return -EINVAL;
	b->cfg = *cfg;
	b->on = cfg->size && cfg->refill_ns;
	b->budget = (int64_t)cfg->size; /* start full */
	b->burst = cfg->burst;
	b->last_ns = now;
	return 0;
}

int rl_init(struct ratelimit *rl, const struct rl_config *cfg, uint64_t now)
{
	int r = rl_bucket_init(&rl->bytes, &cfg->bytes, now);

	if (r == 0)
		r = rl_bucket_init(&rl->ops, &cfg->ops, now);
	if (r) {
		memset(rl, 0, sizeof(*rl)); /* limits nothing */
		return r;
	}
	return 0;
}

bool rl_enabled(const struct ratelimit *rl)
{
	return rl->bytes.on || rl->ops.on;
}

/* Adds the tokens earned since last_ns, exactly: the fraction of a token
 * that did not fit stays in rem for the next refill. */
static void rl_refill(struct rl_bucket *b, uint64_t now)
{
	uint64_t elapsed;
	rl_u128 acc, tokens, room;

	if (now <= b->last_ns)
		return; /* no time passed, or the clock went backwards */
	elapsed = now - b->last_ns;
	b->last_ns = now;
	if (b->budget >= (int64_t)b->cfg.size) {
		b->rem = 0; /* full: nothing accumulates */
		return;
	}
	/* elapsed < 2^64 and size <= 2^62: the product fits in 128 bits. */
	acc = (rl_u128)elapsed * b->cfg.size + b->rem;
	tokens = acc / b->cfg.refill_ns;
	b->rem = (uint64_t)(acc % b->cfg.refill_ns);
	room = (rl_u128)((int64_t)b->cfg.size - b->budget); /* <= 2^63: budget >= -2^62 */
	if (tokens >= room) {
		b->budget = (int64_t)b->cfg.size;
		b->rem = 0;
	} else {
		b->budget += (int64_t)tokens;
	}
}

/* Tokens an operation of n needs from the budget once the burst is spent. */
static uint64_t rl_after_burst(const struct rl_bucket *b, uint64_t n)
{
	return n > b->burst ? n - b->burst : 0;
}

/* What the budget must reach before n may go: n itself, or a full bucket
 * for an operation larger than the bucket (it then goes into debt). */
static int64_t rl_target(const struct rl_bucket *b, uint64_t n)
{
	uint64_t after = rl_after_burst(b, n);

	return (int64_t)(after < b->cfg.size ? after : b->cfg.size);
}

static bool rl_fits(const struct rl_bucket *b, uint64_t n)
{
	return !b->on || n == 0 || b->budget >= rl_target(b, n);
}

/* Nanoseconds from last_ns until the budget reaches the target of n. */
static uint64_t rl_wait_ns(const struct rl_bucket *b, uint64_t n)
{
	rl_u128 deficit = (rl_u128)(rl_target(b, n) - b->budget); /* > 0, <= 2^63 */
	rl_u128 need = deficit * b->cfg.refill_ns;                /* < 2^105 */
	rl_u128 t;

	need = need > b->rem ? need - b->rem : 0;
	t = (need + b->cfg.size - 1) / b->cfg.size;
	return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

static void rl_take(struct rl_bucket *b, uint64_t n)
{
	uint64_t from_burst;

	if (!b->on || n == 0)
		return;
	from_burst = n < b->burst ? n : b->burst;
	b->burst -= from_burst;
	b->budget -= (int64_t)(n - from_burst); /* >= size - 2^62 - ... >= -2^62 */
}

/* The time at which bucket b admits n (it does not now). */
static uint64_t rl_retry_at(const struct rl_bucket *b, uint64_t n)
{
	uint64_t w = rl_wait_ns(b, n), at;

	if (w == 0)
		w = 1;
	return __builtin_add_overflow(b->last_ns, w, &at) ? UINT64_MAX : at;
}

bool rl_admit(struct ratelimit *rl, uint64_t now, uint64_t bytes, uint64_t ops, uint64_t *retry_at)
{
	uint64_t at = 0;
	bool ok = true;

	if (bytes > RL_MAX_TOKENS)
		bytes = RL_MAX_TOKENS;
	if (ops > RL_MAX_TOKENS)
		ops = RL_MAX_TOKENS;
	if (rl->bytes.on)
		rl_refill(&rl->bytes, now);
	if (rl->ops.on)
		rl_refill(&rl->ops, now);
	if (!rl_fits(&rl->bytes, bytes)) {
		uint64_t t = rl_retry_at(&rl->bytes, bytes);

		at = t > at ? t : at;
		ok = false;
	}
	if (!rl_fits(&rl->ops, ops)) {
		uint64_t t = rl_retry_at(&rl->ops, ops);

		at = t > at ? t : at;
		ok = false;
	}
	if (!ok) {
		if (at <= now) /* a clock behind last_ns: retry soon after */
			at = now == UINT64_MAX ? now : now + 1;
		if (retry_at)
			*retry_at = at;
		return false;
	}
	rl_take(&rl->bytes, bytes);
	rl_take(&rl->ops, ops);
	return true;
}

/* ---- rates per second into buckets ---- */

bool rl_limit_set(const struct minivm_rate_limit *lim)
{
	return lim->bytes_per_s || lim->ops_per_s;
}

static int rl_bucket_from_rate(const char *what, uint64_t rate, uint64_t burst, uint32_t refill_ms,
			       struct rl_bucket_cfg *b, char *err, size_t errlen)
{
	rl_u128 size;

	memset(b, 0, sizeof(*b));
	if (!rate) {
		if (burst || refill_ms) {
			snprintf(err, errlen, "%s-%s needs %s", what, burst ? "burst" : "refill", what);
			return -EINVAL;
		}
		return 0;
	}
	if (!refill_ms)
		refill_ms = RL_DEFAULT_REFILL_MS;
	if (refill_ms > RL_MAX_REFILL_MS) {
		snprintf(err, errlen, "%s-refill %u ms is longer than an hour", what, refill_ms);
		return -EINVAL;
	}
	if (rate > RL_MAX_TOKENS || burst > RL_MAX_TOKENS) {
		snprintf(err, errlen, "%s%s too large (at most %llu)", what,
			 rate > RL_MAX_TOKENS ? "" : "-burst", (unsigned long long)RL_MAX_TOKENS);
		return -EINVAL;
	}
	size = (rl_u128)rate * refill_ms / 1000;
	if (size == 0) {
		snprintf(err, errlen, "%s %llu per second is less than one per %s-refill period (%u ms)",
			 what, (unsigned long long)rate, what, refill_ms);
		return -EINVAL;
	}
	if (size > RL_MAX_TOKENS)
		size = RL_MAX_TOKENS;
	b->size = (uint64_t)size;
	b->burst = burst;
	/* The period that refills `size` at exactly `rate` per second (size was
	 * rounded down): <= refill_ms. */
	b->refill_ns = (uint64_t)(size * RL_NS_PER_S / rate);
	if (b->refill_ns == 0)
		b->refill_ns = 1;
	return 0;
}

int rl_config_from_limit(const struct minivm_rate_limit *lim, struct rl_config *cfg, char *err,
			 size_t errlen)
{
	int r = rl_bucket_from_rate("bw", lim->bytes_per_s, lim->bytes_burst, lim->bytes_refill_ms,
				    &cfg->bytes, err, errlen);

	if (r == 0)
		r = rl_bucket_from_rate("iops", lim->ops_per_s, lim->ops_burst, lim->ops_refill_ms,
					&cfg->ops, err, errlen);
	return r;
}

/* ---- the spec parser ---- */

enum rl_key {
	RL_KEY_BW,
	RL_KEY_BW_BURST,
	RL_KEY_BW_REFILL,
	RL_KEY_IOPS,
	RL_KEY_IOPS_BURST,
	RL_KEY_IOPS_REFILL,
	RL_NR_KEYS,
};

static const char *const rl_key_names[RL_NR_KEYS] = {
	[RL_KEY_BW] = "bw",
	[RL_KEY_BW_BURST] = "bw-burst",
	[RL_KEY_BW_REFILL] = "bw-refill",
	[RL_KEY_IOPS] = "iops",
	[RL_KEY_IOPS_BURST] = "iops-burst",
	[RL_KEY_IOPS_REFILL] = "iops-refill",
};

/* Digits into *v; returns the number of digits (0: none) or -1 on overflow. */
static int rl_digits(const char *s, size_t len, uint64_t *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, (uint64_t)(s[i] - '0'), v))
			return -1;
		if (i > 64)
			return -1;
	}
	return (int)i;
}

static bool rl_suffix_is(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* Bytes: digits with an optional binary K, M, G, T (then optionally "iB" or "B"). */
static int rl_parse_bytes(const char *s, size_t len, uint64_t *out)
{
	uint64_t v, mul = 1;
	int n = rl_digits(s, len, &v);

	if (n <= 0)
		return -EINVAL;
	s += n;
	len -= (size_t)n;
	if (len) {
		switch (*s) {
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		case 't': case 'T': mul = 1ULL << 40; break;
		default: return -EINVAL;
		}
		s++;
		len--;
		if (len && !rl_suffix_is(s, len, "iB") && !rl_suffix_is(s, len, "B"))
			return -EINVAL;
	}
	if (__builtin_mul_overflow(v, mul, &v) || v > RL_MAX_TOKENS)
		return -EINVAL;
	*out = v;
	return 0;
}

static int rl_parse_count(const char *s, size_t len, uint64_t *out)
{
	uint64_t v;
	int n = rl_digits(s, len, &v);

	if (n <= 0 || (size_t)n != len || v > RL_MAX_TOKENS)
		return -EINVAL;
	*out = v;
	return 0;
}

int rl_parse_duration_ms(const char *s, size_t len, uint64_t *ms)
{
	uint64_t v, mul;
	int n = rl_digits(s, len, &v);

	if (n <= 0)
		return -EINVAL;
	s += n;
	len -= (size_t)n;
	if (len == 0 || rl_suffix_is(s, len, "s"))
		mul = 1000;
	else if (rl_suffix_is(s, len, "ms"))
		mul = 1;
	else if (rl_suffix_is(s, len, "m"))
		mul = 60000;
	else if (rl_suffix_is(s, len, "h"))
		mul = 3600000;
	else
		return -EINVAL;
	if (__builtin_mul_overflow(v, mul, &v))
		return -EINVAL;
	*ms = v;
	return 0;
}

int rl_parse_option(const char *s, size_t len, struct minivm_rate_limit *lim, unsigned int *seen,
		    char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', len);
	const char *val;
	size_t klen, vlen;
	uint64_t v = 0;
	int key = -1, r;

	if (!eq)
		return 1;
	klen = (size_t)(eq - s);
	val = eq + 1;
	vlen = len - klen - 1;
	for (int k = 0; k < RL_NR_KEYS; k++)
		if (rl_suffix_is(s, klen, rl_key_names[k]))
			key = k;
	if (key < 0)
		return 1;
	if (*seen & (1u << key)) {
		snprintf(err, errlen, "%s given twice", rl_key_names[key]);
		return -EINVAL;
	}
	*seen |= 1u << key;
	switch (key) {
	case RL_KEY_BW:
	case RL_KEY_BW_BURST:
		r = rl_parse_bytes(val, vlen, &v);
		if (r || (key == RL_KEY_BW && v == 0)) {
			snprintf(err, errlen, "bad %s '%.*s' (expected bytes%s like 64K, 10M or 1G)",
				 rl_key_names[key], (int)(vlen > 64 ? 64 : vlen), val,
				 key == RL_KEY_BW ? " per second, at least 1," : "");
			return -EINVAL;
		}
		if (key == RL_KEY_BW)
			lim->bytes_per_s = v;
		else
			lim->bytes_burst = v;
		return 0;
	case RL_KEY_IOPS:
	case RL_KEY_IOPS_BURST:
		r = rl_parse_count(val, vlen, &v);
		if (r || (key == RL_KEY_IOPS && v == 0)) {
			snprintf(err, errlen, "bad %s '%.*s' (expected a whole number of operations%s)",
				 rl_key_names[key], (int)(vlen > 64 ? 64 : vlen), val,
				 key == RL_KEY_IOPS ? " per second, at least 1" : "");
			return -EINVAL;
		}
		if (key == RL_KEY_IOPS)
			lim->ops_per_s = v;
		else
			lim->ops_burst = v;
		return 0;
	default: /* the refill periods */
		r = rl_parse_duration_ms(val, vlen, &v);
		if (r || v == 0 || v > RL_MAX_REFILL_MS ||
		    (vlen && val[vlen - 1] != 's')) { /* ms or s only: "1m" reads like a typo */
			snprintf(err, errlen, "bad %s '%.*s' (expected a period like 100ms or 1s, "
				 "from 1ms to 3600s)", rl_key_names[key], (int)(vlen > 64 ? 64 : vlen), val);
			return -EINVAL;
		}
		if (key == RL_KEY_BW_REFILL)
			lim->bytes_refill_ms = (uint32_t)v;
		else
			lim->ops_refill_ms = (uint32_t)v;
		return 0;
	}
}

int rl_parse_spec(const char *s, struct minivm_rate_limit *lim, char *err, size_t errlen)
{
	unsigned int seen = 0;
	const char *p = s;

	memset(lim, 0, sizeof(*lim));
	if (!*s) {
		snprintf(err, errlen, "empty rate limit");
		return -EINVAL;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int r = rl_parse_option(p, len, lim, &seen, err, errlen);

		if (r < 0)
			return r;
		if (r > 0) {
			snprintf(err, errlen, "unknown rate limit option '%.*s' (expected bw=, "
				 "bw-burst=, bw-refill=, iops=, iops-burst=, iops-refill=)",
				 (int)(len > 64 ? 64 : len), p);
			return -EINVAL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	{
		struct rl_config cfg;

		return rl_config_from_limit(lim, &cfg, err, errlen);
	}
}

/* ---- the device side ---- */

uint64_t rl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * RL_NS_PER_S + (uint64_t)ts.tv_nsec;
}

int rl_timer_open(struct rl_timer *t, struct evl *evl, void (*cb)(void *opaque, int fd, uint32_t revents),
		  void *opaque)
{
	int r;

	memset(t, 0, sizeof(*t));
	t->evl = evl;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0)
		return -errno;
	r = evl_add_fd(evl, t->fd, cb, opaque);
	if (r) {
		close(t->fd);
		t->fd = -1;
	}
	return r;
}

void rl_timer_fired(struct rl_timer *t)
{
	uint64_t n;

	/* EAGAIN: re-armed for later since it fired; nothing to consume. */
	if (read(t->fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
		return;
	t->armed = false;
}

void rl_timer_close(struct rl_timer *t)
{
	if (t->fd < 0)
		return;
	evl_del_fd(t->evl, t->fd);
	close(t->fd);
	t->fd = -1;
	t->armed = false;
}

bool rl_gate(struct ratelimit *rl, struct rl_timer *t, uint64_t bytes, uint64_t ops, int *why)
{
	struct itimerspec its;
	uint64_t at;

	if (rl_admit(rl, rl_now_ns(), bytes, ops, &at))
		return true;
	if (t->armed && t->at == at)
		return false;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(at / RL_NS_PER_S);
	its.it_value.tv_nsec = (long)(at % RL_NS_PER_S);
	if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		if (why)
			*why = errno;
		return true;
	}
	t->armed = true;
	t->at = at;
	return false;
}
