/* Guest physical memory: bounds-checked translation of guest addresses. */
#include "vmm/guest_mem.h"

#include <errno.h>
#include <string.h>

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (unsigned int i = 0; i < gm->nr && i < GM_MAX_REGIONS; i++) {
		const struct gm_region *r = &gm->r[i];
		uint64_t rend = r->gpa + r->size; /* cannot wrap: built by gm_layout */

		if (gpa >= r->gpa && end <= rend)
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	const void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t gm_size(const struct guest_mem *gm)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < gm->nr && i < GM_MAX_REGIONS; i++)
		total += gm->r[i].size;
	return total;
}

void gm_layout(struct guest_mem *gm, uint8_t *host, uint64_t ram_size)
{
	memset(gm, 0, sizeof(*gm));
	if (ram_size <= GM_MMIO_HOLE_START) {
		gm->r[0] = (struct gm_region){ .gpa = 0, .size = ram_size, .host = host };
		gm->nr = 1;
		return;
	}
	gm->r[0] = (struct gm_region){ .gpa = 0, .size = GM_MMIO_HOLE_START, .host = host };
	gm->r[1] = (struct gm_region){ .gpa = GM_HIGH_RAM_START,
				       .size = ram_size - GM_MMIO_HOLE_START,
				       .host = host + GM_MMIO_HOLE_START };
	gm->nr = 2;
}
