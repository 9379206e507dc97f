/* What crosses from libminivm to its exec'd VMM process (minivm-vmm): argv, the fds at fixed numbers, and the configuration as a versioned little-endian message. */
#ifndef MINIVM_VMM_WIRE_H
#define MINIVM_VMM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/jail.h"
#include "vmm/minivm.h"
#include "vmm/snapshot.h"

/*
 * argv: { "minivm-vmm", VMM_WIRE_ARG, "<the front's pid>", NULL }; the
 * environment is the front's (VMM_PROC_TEST_ENV among it).
 *
 * Fds: posix_spawn's file actions put every fd the VMM process needs at a
 * fixed number and close the rest: 0 and 1 are /dev/null, 2 is the front's
 * stderr, then the numbers below (an fd the config does not have is not
 * open). Positions rather than SCM_RIGHTS: the fds are there before the
 * helper runs a line of code, nothing in the message can name an fd of the
 * front's it was not meant to have, and the message stays pure bytes that
 * a unit test or a fuzzer decodes without a process.
 */
#define VMM_WIRE_ARG "--libminivm-front"

enum vmm_wire_fd {
	VMM_FD_EVENTS = 3,         /* SOCK_SEQPACKET with the front: the VMM's events, requests */
	VMM_FD_KEEPER = 4,         /* SOCK_SEQPACKET with the front: the config in, the keeper's events */
	VMM_FD_CONSOLE = 5,        /* cfg.console_fd when cfg.console is NULL */
	VMM_FD_SNAPSHOT_MEM = 6,
	VMM_FD_SNAPSHOT_STATE = 7,
	VMM_FD_RESTORE_STATE = 8,
	VMM_FD_RESTORE_MEM = 9,
	VMM_FD_FIRST_FREE = 10,    /* every fd from here up is closed */
};

/*
 * The message (all integers little-endian):
 *   header  u32 VMM_WIRE_MAGIC, u32 VMM_WIRE_VERSION, u32 body length
 *   body    the fields of struct jail_config, the jail directory, struct
 *           minivm_config and its snapshot disks, in vmm_wire.c's order.
 * A string is u32 n then n bytes: n == 0 is NULL, else the last byte is
 * the only NUL (n <= VMM_WIRE_MAX_STR). A bool is one byte, 0 or 1. An fd
 * is one byte: 1 when it is open at its VMM_FD_* number. Counts are bounded
 * by MINIVM_MAX_DISKS, MINIVM_MAX_NET_RULES and SNAPSHOT_MAX_DISKS.
 * It is sent in SOCK_SEQPACKET records of at most VMM_WIRE_CHUNK bytes.
 */
#define VMM_WIRE_MAGIC 0x574d564du /* "MVMW" */
#define VMM_WIRE_VERSION 1u
#define VMM_WIRE_HDR_SIZE 12u
#define VMM_WIRE_MAX_STR 4096u
#define VMM_WIRE_MAX_SIZE (8u << 20)
#define VMM_WIRE_CHUNK (32u << 10)

/* A decoded message; its strings and arrays are owned (vmm_wire_free()). */
struct vmm_wire_config {
	struct minivm_config cfg; /* fds: VMM_FD_* or -1; vsock_uds_jailed NULL, seccomp false */
	struct jail_config jail;
	const char *jail_dir;     /* never NULL */
	struct snapshot_disk snapshot_disks[SNAPSHOT_MAX_DISKS]; /* cfg.snapshot_disks */
	const char **allow;       /* cfg.net.allow */
	char *strs;               /* every string */
};

/*
 * Encodes cfg, jail and jail_dir into *buf (malloc'd, the caller frees) of
 * *len bytes. Fds are only said to be there (cfg.console_fd only when
 * cfg.console is NULL). 0, or -ENAMETOOLONG / -EINVAL / -E2BIG / -ENOMEM
 * with a message in err (a string or a count over its limit).
 */
int vmm_wire_encode(const struct minivm_config *cfg, const struct jail_config *jail,
		    const char *jail_dir, uint8_t **buf, size_t *len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * From the first VMM_WIRE_HDR_SIZE bytes or more of a message: its whole
 * length into *total. Pure. 0, or -EINVAL with a message in err (too short,
 * bad magic or version, a length over VMM_WIRE_MAX_SIZE).
 */
int vmm_wire_size(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Decodes a whole message (hostile bytes: every length, count, bool and
 * enum is checked, trailing bytes refused). Pure. 0 with *out filled
 * (vmm_wire_free() it), or -EINVAL / -ENOMEM with a message in err and
 * nothing to free.
 */
int vmm_wire_decode(const uint8_t *buf, size_t len, struct vmm_wire_config *out, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

void vmm_wire_free(struct vmm_wire_config *w);

#endif
