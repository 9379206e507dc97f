/* Kernel command-line parameters: minivm.run= (percent-coding, shell-like splitting into argv), minivm.scratch=, minivm.net=. */
#ifndef AGENT_CMDLINE_H
#define AGENT_CMDLINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Bounds. A command string (decoded) holds at most AGENT_CMD_MAX_LEN bytes
 * and splits into at most AGENT_CMD_MAX_WORDS words. The x86 kernel command
 * line itself is at most 2048 bytes, so these are never the binding limit
 * in practice; they bound the work any input can cause.
 */
#define AGENT_CMD_MAX_LEN 4096
#define AGENT_CMD_MAX_WORDS 256

/*
 * Buffer sizes that always suffice for a command of at most
 * AGENT_CMD_MAX_LEN bytes: encoded form (3 bytes per input byte + NUL),
 * decoded form (+ NUL), split words (every word ends in a NUL; a word
 * consumes at least one input byte, so the input length + 1 is enough),
 * argv (+ the terminating NULL).
 */
#define AGENT_CMD_ENCODED_SIZE (3 * AGENT_CMD_MAX_LEN + 1)
#define AGENT_CMD_DECODED_SIZE (AGENT_CMD_MAX_LEN + 1)
#define AGENT_CMD_WORDS_SIZE (AGENT_CMD_MAX_LEN + 1)
#define AGENT_CMD_ARGV_SIZE (AGENT_CMD_MAX_WORDS + 1)

/*
 * Errors (negative errno values), shared by every function here:
 *   -EINVAL    a malformed %-escape ('%' not followed by two hex digits)
 *   -EILSEQ    a NUL byte in the command (raw or %00): it cannot be in argv
 *   -EMSGSIZE  the command is longer than AGENT_CMD_MAX_LEN
 *   -E2BIG     more than AGENT_CMD_MAX_WORDS words (or than argv holds)
 *   -EBADMSG   an unterminated quote, or a backslash at the very end
 *   -ENOBUFS   the caller's output buffer is too small
 *   -EFAULT    a NULL buffer where one is required
 * agent_cmd_strerror() turns each into a message for the console.
 */

/*
 * Host side. Encode in[0..in_len) for the kernel command line: every byte
 * outside [A-Za-z0-9._/,:=+@-] becomes %XX (uppercase hex). Writes a
 * NUL-terminated string to out and returns its length (without the NUL).
 * With out == NULL and out_size == 0, writes nothing and returns the length
 * the encoding needs (without the NUL). A NUL byte in the input is -EILSEQ,
 * an input over AGENT_CMD_MAX_LEN is -EMSGSIZE (the guest would refuse it).
 */
__attribute__((warn_unused_result)) ssize_t
agent_pct_encode(const char *in, size_t in_len, char *out, size_t out_size);

/*
 * Guest side. Decode in[0..in_len) (a parameter value, not NUL-terminated)
 * into out as a NUL-terminated string; returns its length. %XX takes upper-
 * or lowercase hex; every other byte stands for itself (so an unencoded,
 * kernel-quoted value like minivm.run="ls -l" also works). Rejects %00 and
 * raw NUL bytes (-EILSEQ), bad escapes (-EINVAL), and results over
 * AGENT_CMD_MAX_LEN (-EMSGSIZE). AGENT_CMD_DECODED_SIZE is always enough.
 */
__attribute__((warn_unused_result)) ssize_t
agent_pct_decode(const char *in, size_t in_len, char *out, size_t out_size);

/*
 * Split the command in[0..in_len) into words, as a POSIX shell would with
 * no expansion at all: words are separated by blanks (space, tab, newline);
 * '...' quotes everything literally; "..." quotes everything except that a
 * backslash escapes \ " $ ` and newline (other backslashes stay); outside
 * quotes a backslash escapes the next byte; backslash-newline is removed;
 * '' and "" make an empty word. $, *, |, ;, >, ~ and the like are ordinary
 * bytes. The words are written NUL-terminated into buf (AGENT_CMD_WORDS_SIZE
 * bytes always suffice), argv[i] points into buf, argv[n] = NULL.
 * argv_cap counts argv's entries, including the NULL.
 * Returns n >= 0 (0 for an empty or all-blank command), or a negative errno.
 */
__attribute__((warn_unused_result)) int
agent_split_words(const char *in, size_t in_len, char *buf, size_t buf_size,
                  char **argv, size_t argv_cap);

/*
 * Find the value of the last parameter in a kernel command line (e.g. the
 * contents of /proc/cmdline) whose token starts with prefix (e.g.
 * MINIVM_RUN_PARAM, "minivm.run="). Tokens are split the way the kernel
 * does (blanks, with "..." grouping), and double quotes around the value
 * are removed as the kernel removes them. On success *val points into
 * cmdline and *val_len is the value's length; returns 1, or 0 if absent.
 */
int agent_cmdline_find(const char *cmdline, size_t len, const char *prefix,
                       const char **val, size_t *val_len);

/* Where the overlay's writable layer lives (MINIVM_SCRATCH_PARAM's value). */
struct agent_scratch {
	int kind;            /* AGENT_SCRATCH_DISK or AGENT_SCRATCH_TMPFS */
	char dev[16];        /* DISK: the block device's name, "vdb" (no "/dev/") */
	unsigned long long size; /* TMPFS: at most this many bytes; 0: the kernel's default */
};
#define AGENT_SCRATCH_DISK 1
#define AGENT_SCRATCH_TMPFS 2
#define AGENT_SCRATCH_VALUE_MAX 32

/*
 * Pure. Parses val[0..len): "vd" followed by 1-3 lowercase letters (a
 * virtio-blk disk), "tmpfs", or "tmpfs:" followed by 1-19 decimal digits
 * (bytes, at least 1 MiB). Returns 0 with *out filled, or -EINVAL.
 */
__attribute__((warn_unused_result)) int
agent_scratch_parse(const char *val, size_t len, struct agent_scratch *out);

/*
 * Host side: the value for a disk named dev ("vdb") or a tmpfs of size
 * bytes (0: default) into out. Returns its length, or -EINVAL / -ENOBUFS.
 * agent_scratch_parse() accepts what this writes.
 */
__attribute__((warn_unused_result)) int
agent_scratch_format(const struct agent_scratch *s, char *out, size_t out_size);

/* The guest's IPv4 network (MINIVM_NET_PARAM's value); host byte order. */
struct agent_net {
	uint32_t ip;     /* the guest's address */
	uint8_t prefix;  /* its prefix length, 1-32 */
	uint32_t gw;     /* the default gateway, inside ip/prefix */
	uint32_t dns;    /* the name server; 0: none */
};
/* A buffer for agent_net_format() that always suffices (the longest value,
 * "255.255.255.255/32,255.255.255.255,255.255.255.255", is 50 bytes). */
#define AGENT_NET_VALUE_MAX 64

/*
 * Pure. Parses val[0..len) (not NUL-terminated; never reads past len):
 * "A.B.C.D/LEN,G.G.G.G" optionally followed by ",D.D.D.D". Each octet is
 * decimal 0-255 without leading zeros ("0" itself is fine), LEN is 1-32
 * without leading zeros; nothing else, no blanks. Rejected as well: a
 * zero ip, gw or dns; gw outside ip/LEN; gw == ip; for LEN <= 30, an ip or
 * gw that is the network or the broadcast address of ip/LEN. Returns 0
 * with *out filled (dns 0 when absent), or -EINVAL (then *out is zeroed).
 */
__attribute__((warn_unused_result)) int
agent_net_parse(const char *val, size_t len, struct agent_net *out);

/*
 * Host side: n's value for MINIVM_NET_PARAM (without the prefix) into out,
 * NUL-terminated: "A.B.C.D/LEN,GW" plus ",DNS" when dns != 0. Returns its
 * length, -EINVAL when agent_net_parse() would refuse the value (so
 * whatever this writes parses back to *n), -ENOBUFS when out_size is too
 * small (AGENT_NET_VALUE_MAX always suffices).
 */
__attribute__((warn_unused_result)) int
agent_net_format(const struct agent_net *n, char *out, size_t out_size);

/* Pure. The netmask of a prefix length 0-32 in host byte order (0 for 0). */
uint32_t agent_net_mask(unsigned int prefix);

/* A short message for an error code returned above (never NULL). */
const char *agent_cmd_strerror(int err);

#endif
