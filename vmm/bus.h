/* An address bus: dispatches PIO or MMIO accesses to the device owning the range. */
#ifndef MINIVM_BUS_H
#define MINIVM_BUS_H

#include <stdint.h>

#define BUS_MAX_RANGES 32

/* Handlers get the offset inside their range; len is 1, 2, 4 or 8. A read
 * handler fills data[0..len). Handlers run on vCPU threads. */
typedef void (*bus_read_fn)(void *opaque, uint64_t off, void *data, unsigned int len);
typedef void (*bus_write_fn)(void *opaque, uint64_t off, const void *data, unsigned int len);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_read_fn read;
	bus_write_fn write;
	void *opaque;
};

/* A fixed table, filled at setup and read-only while vCPUs run. */
struct bus {
	struct bus_range r[BUS_MAX_RANGES];
	unsigned int nr;
};

/* Adds [base, base+len); -EINVAL for an empty or wrapping range, -EEXIST for
 * an overlap, -ENOSPC when full. Setup only. */
int bus_add(struct bus *bus, uint64_t base, uint64_t len, bus_read_fn rd, bus_write_fn wr,
	    void *opaque) __attribute__((warn_unused_result));

/* Dispatches an access wholly inside one range. Returns 1 when handled, 0
 * when no range holds all of [addr, addr+len) or len is not 1, 2, 4 or 8:
 * reads then fill data[0..len) with all-ones and writes are dropped, as on
 * real hardware. */
int bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned int len);
int bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned int len);

#endif
