/* libFuzzer target for rootfs/agent/cmdline.c: find, decode and split any bytes, and check round trips. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dec[AGENT_CMD_DECODED_SIZE];
static char enc[AGENT_CMD_ENCODED_SIZE];
static char dec2[AGENT_CMD_DECODED_SIZE];
static char words[AGENT_CMD_WORDS_SIZE];
static char *argv[AGENT_CMD_ARGV_SIZE];
/* Each word single-quoted ('\'' for a quote: 4x) plus quotes and a blank. */
static char requoted[4 * AGENT_CMD_MAX_LEN + 3 * AGENT_CMD_MAX_WORDS + 1];
static char words2[sizeof(requoted)];
static char *argv2[AGENT_CMD_ARGV_SIZE];

/* Quote the words so that the splitter must give them back unchanged. */
static size_t requote(char **av, int n)
{
	size_t o = 0;

	for (int w = 0; w < n; w++) {
		if (w > 0)
			requoted[o++] = ' ';
		requoted[o++] = '\'';
		for (const char *p = av[w]; *p; p++) {
			if (*p == '\'') {
				memcpy(requoted + o, "'\\''", 4);
				o += 4;
			} else {
				requoted[o++] = *p;
			}
		}
		requoted[o++] = '\'';
	}
	return o;
}

static void check_split(const char *in, size_t len)
{
	int n = agent_split_words(in, len, words, sizeof(words), argv, AGENT_CMD_ARGV_SIZE);

	if (n < 0)
		return;
	if (n > AGENT_CMD_MAX_WORDS || argv[n] != NULL)
		abort();
	for (int w = 0; w < n; w++)
		if (argv[w] < words || argv[w] >= words + sizeof(words))
			abort();

	/* Re-splitting the requoted words (no length limit applies here: split in parts). */
	size_t rlen = requote(argv, n);
	int n2 = agent_split_words(requoted, rlen, words2, sizeof(words2), argv2, AGENT_CMD_ARGV_SIZE);

	if (rlen > AGENT_CMD_MAX_LEN) {
		if (n2 != -EMSGSIZE)
			abort();
		return;
	}
	if (n2 != n)
		abort();
	for (int w = 0; w < n; w++)
		if (strcmp(argv[w], argv2[w]) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *val;
	size_t val_len;
	ssize_t len;

	/* As init does: the parameter in a command line, decoded, split. */
	if (agent_cmdline_find(in, size, MINIVM_RUN_PARAM, &val, &val_len) == 1) {
		if (val < in || val_len > size || val + val_len > in + size)
			abort();
		len = agent_pct_decode(val, val_len, dec, sizeof(dec));
		if (len >= 0)
			check_split(dec, (size_t)len);
	}

	/* The whole input as a value, and as a command. */
	len = agent_pct_decode(in, size, dec, sizeof(dec));
	if (len >= 0) {
		if ((size_t)len > AGENT_CMD_MAX_LEN || strlen(dec) != (size_t)len)
			abort();
		/* encode(decode(x)) decodes to the same bytes. */
		ssize_t elen = agent_pct_encode(dec, (size_t)len, enc, sizeof(enc));

		if (elen < 0 || elen != agent_pct_encode(dec, (size_t)len, NULL, 0))
			abort();
		if (agent_pct_decode(enc, (size_t)elen, dec2, sizeof(dec2)) != len ||
		    memcmp(dec, dec2, (size_t)len) != 0)
			abort();
	}
	check_split(in, size);

	/* Encoding raw bytes never overflows and round-trips. */
	len = agent_pct_encode(in, size, enc, sizeof(enc));
	if (len >= 0 && (agent_pct_decode(enc, (size_t)len, dec2, sizeof(dec2)) != (ssize_t)size ||
	                 memcmp(in, dec2, size) != 0))
		abort();
	return 0;
}
