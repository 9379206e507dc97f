/* libFuzzer target for minivm.net= (rootfs/agent/cmdline.c): parse any bytes from an exact-size copy, and check format/re-parse round trips. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field by field: the struct has padding after prefix. */
static int net_same(const struct agent_net *a, const struct agent_net *b)
{
	return a->ip == b->ip && a->prefix == b->prefix && a->gw == b->gw && a->dns == b->dns;
}

/* Whatever parses formats within AGENT_NET_VALUE_MAX and parses back to the same struct. */
static void check_round_trip(const struct agent_net *n)
{
	char buf[AGENT_NET_VALUE_MAX];
	struct agent_net again;
	int len = agent_net_format(n, buf, sizeof(buf));

	if (len <= 0 || (size_t)len >= sizeof(buf) || strlen(buf) != (size_t)len)
		abort();
	if (agent_net_parse(buf, (size_t)len, &again) != 0 || !net_same(n, &again))
		abort();
	/* One byte short of room is -ENOBUFS, never a truncated value. */
	if (agent_net_format(n, buf, (size_t)len) != -ENOBUFS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_net n;
	const char *val;
	size_t vlen;
	/* libFuzzer's data is exactly size bytes on the heap: ASan sees a read past len. */
	int r = agent_net_parse((const char *)data, size, &n);

	if (r == 0) {
		check_round_trip(&n);
	} else if (r != -EINVAL) {
		abort();
	} else {
		const struct agent_net zero = { 0 };

		if (!net_same(&n, &zero))
			abort();
	}

	/* As init finds it: the token in a command line. */
	if (agent_cmdline_find((const char *)data, size, MINIVM_NET_PARAM, &val, &vlen) == 1 &&
	    agent_net_parse(val, vlen, &n) == 0)
		check_round_trip(&n);

	/* Any struct the fuzzer makes: format refuses it, or it round-trips. */
	if (size >= 13) {
		struct agent_net raw;
		char buf[AGENT_NET_VALUE_MAX];

		memcpy(&raw.ip, data, 4);
		raw.prefix = data[4];
		memcpy(&raw.gw, data + 5, 4);
		memcpy(&raw.dns, data + 9, 4);
		r = agent_net_format(&raw, buf, sizeof(buf));
		if (r >= 0)
			check_round_trip(&raw);
		else if (r != -EINVAL)
			abort();
	}
	return 0;
}
