/* The e820 memory map of guest RAM, as handed to the kernel in boot_params or the PVH memmap. */
#include <errno.h>
#include <inttypes.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "boot/layout.h"

int boot_e820_build(const struct guest_mem *gm, struct boot_e820_entry *tab, unsigned int cap,
		    unsigned int *nr, struct boot_err *err)
{
	struct boot_e820_entry t[BOOT_E820_MAX];
	unsigned int n = 0;
	uint64_t low_end, prev_end;

	_Static_assert(3 + GM_MAX_REGIONS - 1 <= BOOT_E820_MAX, "room for every region");
	*nr = 0;
	if (gm->nr == 0 || gm->nr > GM_MAX_REGIONS || gm->r[0].gpa != 0) {
		boot_errf(err, "guest RAM must start at address 0");
		return -ENOMEM;
	}
	low_end = gm->r[0].size;
	if (low_end <= BOOT_LEGACY_HOLE_END) {
		boot_errf(err, "guest RAM of %" PRIu64 " KiB is too small: it must be larger than 1 MiB",
			  low_end / 1024);
		return -ENOMEM;
	}

	/* Conventional memory, then the EBDA (our MP table) and the legacy hole
	 * reserved as one range, as a PC BIOS reports them. */
	t[n++] = (struct boot_e820_entry){ 0, BOOT_EBDA_ADDR, BOOT_E820_RAM };
	t[n++] = (struct boot_e820_entry){ BOOT_EBDA_ADDR, BOOT_LEGACY_HOLE_END - BOOT_EBDA_ADDR,
					   BOOT_E820_RESERVED };
	t[n++] = (struct boot_e820_entry){ BOOT_LEGACY_HOLE_END, low_end - BOOT_LEGACY_HOLE_END,
					   BOOT_E820_RAM };
	prev_end = low_end;
	for (unsigned int i = 1; i < gm->nr; i++) {
		const struct gm_region *r = &gm->r[i];
		uint64_t end;

		if (r->size == 0)
			continue;
		if (r->gpa < prev_end || __builtin_add_overflow(r->gpa, r->size, &end)) {
			boot_errf(err, "guest RAM region %u (0x%" PRIx64 "+0x%" PRIx64
				  ") overlaps or is out of order", i, r->gpa, r->size);
			return -EINVAL;
		}
		t[n++] = (struct boot_e820_entry){ r->gpa, r->size, BOOT_E820_RAM };
		prev_end = end;
	}
	if (n > cap) {
		boot_errf(err, "e820 map has %u entries, room for %u", n, cap);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++)
		tab[i] = t[i];
	*nr = n;
	return 0;
}
