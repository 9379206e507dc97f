/* virtio-blk: a disk image served through io_uring, and the pure request parser behind it. */
#ifndef MINIVM_VIRTIO_BLK_H
#define MINIVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_dev.h"
#include "devices/virtq.h"
#include "vmm/guest_mem.h"

struct evl;

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2) /* data buffers per request */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22)     /* 2 GiB per discard/write-zeroes */
#define VIRTIO_BLK_DISCARD_ALIGN_SECTORS 8             /* 4 KiB: the host's block size */

/*
 * Opens the disk image at `path` and makes a virtio-blk device for it:
 * - writable (O_RDWR) unless read_only (O_RDONLY; VIRTIO_BLK_F_RO offered
 *   and every write, discard or write-zeroes fails with VIRTIO_BLK_S_IOERR);
 * - an OFD lock on the whole file, exclusive for writable disks and shared
 *   for read-only ones, so a second minivm (or a second open of the same
 *   image) fails with "PATH is in use by another VM";
 * - a regular file or a block device; the capacity is its size in 512-byte
 *   sectors, a size that is not a multiple of 512 is rounded down (the tail
 *   is ignored and a line says so), less than one sector is refused;
 * - reads and writes go to io_uring through evl, several in flight; with
 *   O_DIRECT (a second descriptor) when the file system allows it and the
 *   request's buffers and offset are aligned, else through the page cache;
 * - VIRTIO_BLK_F_DISCARD and _WRITE_ZEROES when the file can punch holes.
 * serial: the GET_ID string (at most 20 bytes used); NULL gives "minivm".
 * evl must outlive the device; the image's descriptors are registered with
 * it, so call this before evl_run() starts (setup time).
 * Returns the device (bind it with vmmio_create, which then owns it), or NULL
 * with a one-line message in err.
 */
struct virtio_dev *virtio_blk_create(const char *path, bool read_only, const char *serial,
				     struct evl *evl, char *err, size_t errlen);

/*
 * Limits the disk's rate with token buckets (devices/ratelimit.h): each
 * request is one operation, and a read or write also its data length in
 * bytes. When the buckets are empty the device stops taking requests from
 * the queue (the one refused is kept and goes first) and resumes from a
 * timerfd on the event loop when the tokens are back: the guest sees a
 * slower disk, never an error; requests already started complete normally.
 * A cfg that limits nothing changes nothing (no clock read, no timer).
 * Call once, at setup time (after virtio_blk_create, before the guest
 * runs). Returns 0, or -errno with a message in err (a bound exceeded, no
 * timerfd).
 */
struct rl_config;
int virtio_blk_set_rate_limit(struct virtio_dev *dev, const struct rl_config *cfg, char *err,
			      size_t errlen) __attribute__((warn_unused_result));

/* How many times a request waited for the rate limiter (bound device only). */
uint64_t virtio_blk_throttled(struct virtio_dev *dev);

/* Capacity in 512-byte sectors, for logs and the kernel command line. */
uint64_t virtio_blk_capacity(const struct virtio_dev *dev);

/* Whether aligned requests bypass the host page cache (O_DIRECT), for logs. */
bool virtio_blk_direct_io(const struct virtio_dev *dev);

/* ---- the request parser (pure: guest bytes in, request or status out) ---- */

/* What a request is checked against. */
struct blk_geom {
	uint64_t capacity; /* sectors */
	bool read_only;
	bool discard;      /* VIRTIO_BLK_F_DISCARD negotiated */
	bool write_zeroes; /* VIRTIO_BLK_F_WRITE_ZEROES negotiated */
	uint32_t max_discard_sectors;
	uint32_t max_write_zeroes_sectors;
};

struct blk_req {
	uint32_t type;       /* VIRTIO_BLK_T_* */
	uint64_t sector;     /* IN/OUT: first sector; DISCARD/WRITE_ZEROES: range start */
	uint32_t nsectors;   /* DISCARD/WRITE_ZEROES: range length */
	bool unmap;          /* WRITE_ZEROES may deallocate */
	uint32_t data_len;   /* IN/OUT/GET_ID: bytes in data[] */
	uint16_t ndata;
	struct virtq_seg data[VIRTQ_MAX_SIZE]; /* the data buffers, in order */
	uint64_t status_gpa; /* the status byte: the chain's last writable byte */
	const char *error;   /* why the request is refused (a static string) */
};

/*
 * Parses the chain c into *r (spec 5.2.6), reading guest memory through gm:
 * the 16-byte header is gathered from the first readable bytes and copied
 * once (any descriptor layout, 2.6.4); the status byte is the last
 * device-writable byte; data lengths are bounded and multiples of 512;
 * sector ranges are checked against the capacity with overflow-safe
 * arithmetic. Returns
 *   0                    the request is valid: execute it;
 *   VIRTIO_BLK_S_IOERR   malformed, out of range, or a write to a read-only
 *                        disk: complete it with that status (r->error says why);
 *   VIRTIO_BLK_S_UNSUPP  unknown type, or a feature not negotiated;
 *   -EINVAL              no device-writable byte for the status: nothing can
 *                        be reported, return the chain with length 0.
 */
int blk_req_parse(const struct guest_mem *gm, const struct virtq_chain *c, const struct blk_geom *g,
		  struct blk_req *r) __attribute__((warn_unused_result));

#endif
