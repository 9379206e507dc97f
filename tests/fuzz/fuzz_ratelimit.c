/* libFuzzer target for devices/ratelimit.c: the spec and duration parsers, and the buckets driven by fuzzed configs, times and amounts (a refused request is admitted at its retry time; the long-run rate holds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct fz *f, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes && f->n; i++, f->p++, f->n--)
		v = v << 8 | *f->p;
	return v;
}

static void parsers(const uint8_t *data, size_t size)
{
	struct minivm_rate_limit lim;
	struct rl_config cfg;
	char s[256], err[200];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	uint64_t ms;

	memcpy(s, data, n);
	s[n] = '\0';
	memset(err, 0x5a, sizeof(err));
	if (rl_parse_spec(s, &lim, err, sizeof(err)) == 0) {
		/* A spec that parses converts. */
		if (rl_config_from_limit(&lim, &cfg, err, sizeof(err)))
			abort();
	} else if (!memchr(err, '\0', sizeof(err)) || !err[0]) {
		abort(); /* a refusal says why */
	}
	if (rl_parse_duration_ms(s, n, &ms) == 0 && n == 0)
		abort();
}

/* The bucket's rate and capacity in their own terms. */
static unsigned __int128 earned(const struct rl_bucket_cfg *b, uint64_t elapsed)
{
	return (unsigned __int128)elapsed * b->size / b->refill_ns;
}

static void buckets(struct fz *f)
{
	struct ratelimit rl;
	struct rl_config cfg;
	uint64_t now, start, max_b = 0, max_o = 0;
	unsigned __int128 got_b = 0, got_o = 0;

	/* Small sizes and periods mostly, so refusals and debts happen. */
	cfg.bytes.size = take(f, 3);
	cfg.bytes.burst = take(f, 2);
	cfg.bytes.refill_ns = take(f, 4) % (RL_MAX_REFILL_NS + 2);
	cfg.ops.size = take(f, 1);
	cfg.ops.burst = take(f, 1);
	cfg.ops.refill_ns = take(f, 4) % (RL_MAX_REFILL_NS + 2);
	now = start = take(f, 8) >> 2;
	if (rl_init(&rl, &cfg, now)) {
		if (cfg.bytes.refill_ns <= RL_MAX_REFILL_NS && cfg.ops.refill_ns <= RL_MAX_REFILL_NS)
			abort();
		return;
	}
	while (f->n >= 6) {
		uint64_t dt = take(f, 2) * 1000, bytes = take(f, 3), ops = take(f, 1) & 3, at = 0;

		if (__builtin_add_overflow(now, dt, &now) || now > 1ULL << 63)
			break;
		if (!rl_admit(&rl, now, bytes, ops, &at)) {
			if (at <= now)
				abort();
			if (at > 1ULL << 63)
				continue; /* saturated: nothing to check at that time */
			/* Nothing else took tokens: at the retry time it goes. */
			now = at;
			if (!rl_admit(&rl, now, bytes, ops, NULL))
				abort();
		}
		got_b += bytes;
		got_o += ops;
		max_b = bytes > max_b ? bytes : max_b;
		max_o = ops > max_o ? ops : max_o;
	}
	/* The long run: at most the initial bucket and burst, what the rate
	 * earned meanwhile, and one operation's overshoot (the debt). */
	if (rl.bytes.on && got_b > cfg.bytes.size + cfg.bytes.burst + earned(&cfg.bytes, now - start) + max_b)
		abort();
	if (rl.ops.on && got_o > cfg.ops.size + cfg.ops.burst + earned(&cfg.ops, now - start) + max_o)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };

	parsers(data, size);
	buckets(&f);
	return 0;
}
