/* The snapshot state file's container: a versioned, checksummed list of tagged sections, written and read as pure byte encoding (no KVM); the format is described in vmm/SNAPSHOT.md. */
#ifndef MINIVM_SNAP_H
#define MINIVM_SNAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * The file (all integers little-endian):
 *   header   8 bytes magic SNAP_MAGIC, u32 version (SNAP_VERSION), u32 flags (0),
 *            u64 body length, 32 bytes SHA-256 of the body
 *   body     sections, each: u32 tag, u32 instance, u64 length, length bytes
 * A reader refuses another magic, another version, a body length that is not
 * the file's, a checksum that does not match, a section running past the
 * body, and a (tag, instance) pair that appears twice.
 */
#define SNAP_MAGIC "MVMSNAP\0"
#define SNAP_VERSION 1u
#define SNAP_HDR_SIZE 56
#define SNAP_MAX_FILE (64u << 20)   /* a state file is small: registers and device state */
#define SNAP_MAX_SECTIONS 4096

/* Section tags: one per kind of state; instance tells vCPUs/devices apart. */
enum snap_tag {
	SNAP_TAG_MACHINE = 1,   /* RAM size, vCPU count, memory file size, config echo */
	SNAP_TAG_VCPU = 2,      /* instance: vCPU id (regs, sregs, MSRs, FPU, LAPIC, events, ...) */
	SNAP_TAG_IRQCHIP = 3,   /* instance: KVM_IRQCHIP_PIC_MASTER/SLAVE/IOAPIC */
	SNAP_TAG_PIT = 4,
	SNAP_TAG_CLOCK = 5,     /* KVM_GET_CLOCK, host realtime at snapshot */
	SNAP_TAG_UART = 6,
	SNAP_TAG_RTC = 7,
	SNAP_TAG_I8042 = 8,
	SNAP_TAG_VIRTIO = 9,    /* instance: device slot; transport + queues + device state */
	SNAP_TAG_DISK = 10,     /* instance: disk index; path, size, identity, content hash */
};

/* Writer: sections appended to a growing buffer, then the header. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t section_start; /* offset of the open section's header, or SIZE_MAX */
	int err;              /* first error (sticky): every later call returns it */
};

void snap_writer_init(struct snap_writer *w);
/* Opens a section; the previous one must be closed. 0 or -errno (sticky). */
int snap_begin(struct snap_writer *w, uint32_t tag, uint32_t instance) __attribute__((warn_unused_result));
int snap_put(struct snap_writer *w, const void *data, size_t len) __attribute__((warn_unused_result));
int snap_put_u32(struct snap_writer *w, uint32_t v) __attribute__((warn_unused_result));
int snap_put_u64(struct snap_writer *w, uint64_t v) __attribute__((warn_unused_result));
/* Closes the open section (fills in its length). */
int snap_end(struct snap_writer *w) __attribute__((warn_unused_result));
/* Fills the header (checksum over the body); *data and *len: the whole file, owned by w. */
int snap_writer_finish(struct snap_writer *w, const uint8_t **data, size_t *len)
	__attribute__((warn_unused_result));
void snap_writer_free(struct snap_writer *w);

/* Reader: over a whole file in memory (the caller keeps it alive). */
struct snap_reader {
	const uint8_t *body;
	size_t body_len;
	uint32_t version;
};

/* A section's bytes, consumed front to back. */
struct snap_cursor {
	const uint8_t *p;
	size_t left;
	uint32_t tag, instance;
};

/*
 * Checks the whole file (magic, version, length, checksum, section
 * bounds, duplicates) before anything else may read it. 0, or -EINVAL
 * (not a snapshot: magic), -EPROTONOSUPPORT (another version),
 * -EBADMSG (checksum, truncated, bad section), each with a message in err.
 */
int snap_reader_open(struct snap_reader *r, const uint8_t *data, size_t len, char *err,
		     size_t errlen) __attribute__((warn_unused_result));
/* The section (tag, instance): 0 with *c set, or -ENOENT. */
int snap_find(const struct snap_reader *r, uint32_t tag, uint32_t instance, struct snap_cursor *c)
	__attribute__((warn_unused_result));
/* Takes len bytes (or a u32/u64) from c: 0, or -EBADMSG when fewer are left. */
int snap_get(struct snap_cursor *c, void *out, size_t len) __attribute__((warn_unused_result));
int snap_get_u32(struct snap_cursor *c, uint32_t *v) __attribute__((warn_unused_result));
int snap_get_u64(struct snap_cursor *c, uint64_t *v) __attribute__((warn_unused_result));

#endif
