/* An address bus: range lookup and dispatch for PIO and MMIO exits. */
#include "vmm/bus.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

int bus_add(struct bus *bus, uint64_t base, uint64_t len, bus_read_fn rd, bus_write_fn wr,
	    void *opaque)
{
	uint64_t end;

	if (len == 0 || __builtin_add_overflow(base, len, &end))
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->r[i];

		if (base < r->base + r->len && r->base < end)
			return -EEXIST;
	}
	if (bus->nr >= BUS_MAX_RANGES)
		return -ENOSPC;
	bus->r[bus->nr++] = (struct bus_range){ base, len, rd, wr, opaque };
	return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned int len)
{
	uint64_t end;

	if (__builtin_add_overflow(addr, (uint64_t)len, &end))
		return NULL;
	for (unsigned int i = 0; i < bus->nr && i < BUS_MAX_RANGES; i++) {
		const struct bus_range *r = &bus->r[i];

		if (addr >= r->base && end <= r->base + r->len)
			return r;
	}
	return NULL;
}

/* Handlers are promised 1, 2, 4 or 8 bytes; anything else (an odd-sized
 * MMIO access KVM could report) is treated as hitting no device. */
static bool bus_len_ok(unsigned int len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

int bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned int len)
{
	const struct bus_range *r = bus_len_ok(len) ? bus_find(bus, addr, len) : NULL;

	if (!r || !r->read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->read(r->opaque, addr - r->base, data, len);
	return 1;
}

int bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned int len)
{
	const struct bus_range *r = bus_len_ok(len) ? bus_find(bus, addr, len) : NULL;

	if (!r)
		return 0;
	if (r->write)
		r->write(r->opaque, addr - r->base, data, len);
	return 1;
}
