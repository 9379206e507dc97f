/* libFuzzer target: the egress rule parser and the policy-file parser; every accepted rule formats back to text that parses to the same rule. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_policy policy;

static void check_rule(const struct net_rule *r)
{
	struct net_rule r2;
	char text[NET_RULE_MAX_LEN + 1], err[256];

	if (r->prefix > 32 || (r->addr & ~r->mask) || (!r->port && r->proto) ||
	    (r->proto && r->proto != NET_IPPROTO_TCP && r->proto != NET_IPPROTO_UDP))
		abort();
	net_rule_format(r, text, sizeof(text));
	if (net_rule_parse(text, &r2, err, sizeof(err)) || memcmp(r, &r2, sizeof(r2)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, err[512];
	struct net_rule r;
	int ret;

	/* The whole input as one rule (a C string: cut at the first NUL). */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	ret = net_rule_parse(s, &r, err, sizeof(err));
	if (ret == 0)
		check_rule(&r);
	else if (ret != -EINVAL || !err[0] || strlen(err) >= sizeof(err))
		abort();
	free(s);

	/* ... and as a policy file, from an exact-size copy. */
	s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	memset(&policy, 0, sizeof(policy));
	err[0] = '\0';
	ret = net_policy_parse_text(&policy, s, size, err, sizeof(err));
	if (ret != 0 && ret != -EINVAL && ret != -ENOSPC)
		abort();
	if (ret && !err[0])
		abort();
	if (policy.n_rules > NET_POLICY_MAX_RULES)
		abort();
	for (size_t i = 0; i < policy.n_rules; i++)
		check_rule(&policy.rules[i]);
	free(s);
	return 0;
}
