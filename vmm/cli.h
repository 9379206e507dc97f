/* Command-line parsing for the minivm binary: argv in, a minivm_config or an error out. */
#ifndef MINIVM_CLI_H
#define MINIVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/minivm.h"

enum cli_action {
	CLI_RUN = 0,
	CLI_HELP,
	CLI_VERSION,
};

struct cli {
	enum cli_action action;
	struct minivm_config cfg; /* strings point into argv */
	bool print_timings;
	char disk_paths[MINIVM_MAX_DISKS][4096]; /* --disk paths without ",ro" */
	char rootfs_path[4096];                  /* --rootfs path without ",rw" */
};

#define CLI_MIN_MEM (32ULL << 20)
#define CLI_MAX_MEM (64ULL << 30)

/*
 * Parses argv. Returns 0, or -EINVAL with a message in err naming the bad
 * argument. Pure: no files are opened and nothing is printed. getopt is not
 * used, so the parser is reentrant and testable.
 */
int cli_parse(int argc, char *const argv[], struct cli *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parses a size: digits with an optional K, M, G or T suffix (binary,
 * optionally followed by "iB" or "B"); 0 or -EINVAL (garbage, overflow). */
int cli_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* The --help text. */
extern const char cli_usage[];

#endif
