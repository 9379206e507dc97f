/* Machine-level snapshot and restore: vCPU, irqchip, PIT and clock state, guest memory as a file, the snapshot's metadata, and the front's file checks. */
#ifndef MINIVM_SNAPSHOT_H
#define MINIVM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/minivm.h"
#include "vmm/sha256.h"
#include "vmm/snap.h"

/*
 * A snapshot directory (vmm/SNAPSHOT.md):
 *   DIR/state    the state file (vmm/snap.h container)
 *   DIR/memory   guest RAM, byte for byte, all-zero pages left as holes
 *   DIR/diskN.img  a copy of writable disk N (N: the disk's index, 0 = root)
 * The front (never jailed) creates, opens, copies and renames every file;
 * the VMM only reads and writes the fds it is given.
 */
#define SNAPSHOT_STATE_NAME "state"
#define SNAPSHOT_MEMORY_NAME "memory"
#define SNAPSHOT_PAGE 4096u
#define SNAPSHOT_MAX_PATH 4096
#define SNAPSHOT_MAX_DISKS MINIVM_MAX_DISKS /* the root plus extra disks */

/* Disk flags in a SNAP_TAG_DISK section. */
#define SNAPSHOT_DISK_RO 1u     /* read-only: reattached by path, identity + hash checked */
#define SNAPSHOT_DISK_COPIED 2u /* writable: copied into DIR as name; each restore gets its own copy */
#define SNAPSHOT_DISK_ALL (SNAPSHOT_DISK_RO | SNAPSHOT_DISK_COPIED)

/* A file's identity: what says "the same file, unchanged" without reading it. */
struct snapshot_ident {
	uint64_t size, dev, ino, mtime_sec, mtime_nsec;
};

/* One disk as the snapshot recorded it (instance 0: the root). */
struct snapshot_disk {
	uint32_t flags;
	struct snapshot_ident id;
	uint8_t sha256[SHA256_DIGEST_SIZE]; /* of the content (read-only disks), else zero */
	char path[SNAPSHOT_MAX_PATH];       /* absolute path (RO), or a file name in DIR (COPIED) */
};

/* The SNAP_TAG_MACHINE section and the disks: what the front needs to
 * configure the restored VM, and the VMM to check it. */
struct snapshot_meta {
	uint64_t ram_size;
	uint32_t nr_vcpus;
	uint32_t guest_cid;
	struct snapshot_ident mem; /* DIR/memory as written */
	uint64_t realtime_ns;      /* the host's CLOCK_REALTIME at the snapshot */
	bool emulated;
	bool has_rootfs;           /* disk 0 is the root; extra disks follow */
	uint32_t nr_disks;         /* disks[] entries used (root included) */
	struct snapshot_disk disks[SNAPSHOT_MAX_DISKS];
};

/*
 * Parses and validates the MACHINE and DISK sections of an opened state
 * file (pure: no I/O, fuzzed). 0, or -EBADMSG / -EINVAL with a message in
 * err (a missing section, a count or size out of range, a path that is not
 * what its flags require).
 */
int snapshot_meta_parse(const struct snap_reader *r, struct snapshot_meta *m, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/*
 * Describes cfg's disks for a VM about to run and be snapshotted (the
 * front calls it; out[] has SNAPSHOT_MAX_DISKS entries, *n receives the
 * count, root first when there is one). Read-only disks: realpath,
 * identity, and the sha256 of their content (reads the whole file: about
 * 0.2 s for the project's 64 MiB root on the test hosts); writable disks:
 * flag COPIED and the name "diskN.img". 0 or -errno with err.
 */
int snapshot_disks_describe(const struct minivm_config *cfg, struct snapshot_disk *out,
			    unsigned int *n, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reads the whole state file from fd (at most SNAP_MAX_FILE bytes) into
 * *buf (malloc'd) and opens it with snap_reader_open. 0 or -errno with err. */
int snapshot_state_read(int fd, uint8_t **buf, size_t *len, struct snap_reader *r, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/* fd's identity, from fstat. */
int snapshot_ident_fd(int fd, struct snapshot_ident *id) __attribute__((warn_unused_result));

/* Checks the memory file fd against m (size first: a truncated file has
 * its own message; then identity). 0 or -EINVAL/-ESTALE with err. */
int snapshot_check_memory(int fd, const struct snapshot_meta *m, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Checks that the read-only disk d is still what the snapshot recorded:
 * same identity (no read), or else same size and sha256 of content (a
 * copy, a rebuild with the same bytes). 0, or -ESTALE / -errno with err.
 */
int snapshot_check_disk(const struct snapshot_disk *d, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Copies the regular file src_fd to dst_fd (a new empty file): a reflink
 * (FICLONE) where the file system offers one, else a sparse copy of the
 * data extents (SEEK_DATA/SEEK_HOLE). *reflinked tells which. 0 or -errno.
 */
int snapshot_copy_file(int src_fd, int dst_fd, bool *reflinked) __attribute__((warn_unused_result));

/* ---- the VMM side (vm.c; struct minivm is vm.h's) ---- */
struct minivm;
struct vcpu;

/*
 * Writes the snapshot of a VM whose vCPUs are all parked (vm.c's
 * minivm_snapshot): guest RAM into mem_fd (already sized to the RAM by the
 * front; only non-zero pages are written, the rest stays holes), then the
 * state file into state_fd: MACHINE, a VCPU section per vCPU, IRQCHIP x3,
 * PIT, CLOCK, the devices' sections (dev_save), the DISK sections from
 * cfg.snapshot_disks. 0 or -errno with err.
 */
int snapshot_save(struct minivm *vm, int mem_fd, int state_fd,
		  int (*dev_save)(struct minivm *vm, struct snap_writer *w), char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Restore, in minivm_create's order (after the devices'): the irqchip
 * (PIC master, slave, IOAPIC), each vCPU after it is created as for a boot
 * (sregs, regs, FPU, XCRs, LAPIC, MSRs, MP state, debug registers, events
 * last), the PIT (once KVM_CREATE_PIT2 is done), the clock last of all.
 * Each validates its section's sizes; 0 or -errno with err. */
int snapshot_restore_irqchip(struct minivm *vm, const struct snap_reader *r, char *err,
			     size_t errlen) __attribute__((warn_unused_result));
int snapshot_restore_pit(struct minivm *vm, const struct snap_reader *r, char *err, size_t errlen)
	__attribute__((warn_unused_result));
int snapshot_restore_vcpu(struct minivm *vm, struct vcpu *v, const struct snap_reader *r,
			  char *err, size_t errlen) __attribute__((warn_unused_result));
int snapshot_restore_clock(struct minivm *vm, const struct snap_reader *r, char *err,
			   size_t errlen) __attribute__((warn_unused_result));

#endif
