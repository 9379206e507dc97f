/* Guest physical memory: the one checked door from a guest address to host bytes. */
#ifndef MINIVM_GUEST_MEM_H
#define MINIVM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 2

/* One contiguous range of guest RAM backed by host memory at `host`. */
struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

/* Guest RAM: up to two regions (below and above the MMIO hole), sorted by gpa,
 * never overlapping. Owned by the VM; devices hold a const pointer. */
struct guest_mem {
	struct gm_region r[GM_MAX_REGIONS];
	unsigned int nr;
};

/*
 * Host pointer for the guest range [gpa, gpa + len), or NULL when the range
 * wraps, is empty-and-outside, or is not wholly inside one RAM region. A range
 * ending exactly at the end of a region is valid. len == 0 is valid iff gpa
 * lies inside a region or at its end. Every guest address a device or loader
 * uses goes through here (or gm_read/gm_write), once, before it is used.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy between guest and host; 0, or -EFAULT when gm_ptr() would fail. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
	__attribute__((warn_unused_result));
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
	__attribute__((warn_unused_result));

/* Total bytes of RAM. */
uint64_t gm_size(const struct guest_mem *gm);

/* The guest RAM layout minivm uses on x86_64 (DESIGN.md): RAM from 0 up to
 * GM_MMIO_HOLE_START, the rest from 4 GiB. */
#define GM_MMIO_HOLE_START 0xd0000000ULL
#define GM_HIGH_RAM_START 0x100000000ULL

/* Fill gm's regions for `ram_size` bytes at host address `host` (one mapping;
 * the part above the hole follows the low part in host memory). */
void gm_layout(struct guest_mem *gm, uint8_t *host, uint64_t ram_size);

#endif
