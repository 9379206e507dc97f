/* bzImage: parse the x86 boot protocol header, load the kernel, build boot_params and page tables. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "boot/layout.h"

/* Offsets in the file and in boot_params ("the zero page"): the setup header
 * lives at the same offsets in both (Documentation/x86/boot.rst,
 * Documentation/x86/zero-page.rst). */
#define BP_EXT_CMD_LINE_PTR 0x0c8 /* u32: cmd_line_ptr bits 63:32 */
#define BP_E820_ENTRIES 0x1e8     /* u8 */
#define BP_HDR 0x1f1              /* the setup header starts here */
#define BP_SETUP_SECTS 0x1f1      /* u8, 0 means 4 */
#define BP_SYSSIZE 0x1f4          /* u32, protected-mode size in 16-byte units */
#define BP_VID_MODE 0x1fa         /* u16 */
#define BP_BOOT_FLAG 0x1fe        /* u16, 0xaa55 */
#define BP_JUMP 0x200             /* 0xeb, then the offset of the header's end from 0x202 */
#define BP_HEADER 0x202           /* "HdrS" */
#define BP_VERSION 0x206          /* u16 */
#define BP_TYPE_OF_LOADER 0x210   /* u8 */
#define BP_LOADFLAGS 0x211        /* u8 */
#define BP_CMD_LINE_PTR 0x228     /* u32 */
#define BP_KERNEL_ALIGNMENT 0x230 /* u32 */
#define BP_RELOCATABLE 0x234      /* u8 */
#define BP_XLOADFLAGS 0x236       /* u16 */
#define BP_CMDLINE_SIZE 0x238     /* u32 */
#define BP_PREF_ADDRESS 0x258     /* u64 */
#define BP_INIT_SIZE 0x260        /* u32 */
#define BP_HDR_END_2_12 0x268     /* a 2.12 header reaches at least this far */
#define BP_HDR_LIMIT 0x290        /* boot_params has other fields from here on */
#define BP_E820_TABLE 0x2d0       /* 128 x {u64 addr, u64 size, u32 type} */
#define BP_E820_ENTRY_SIZE 20
#define BP_E820_MAX 128

#define BZ_BOOT_FLAG 0xaa55
#define BZ_HDRS_MAGIC 0x53726448U /* "HdrS" little-endian */
#define BZ_DEFAULT_SETUP_SECTS 4
#define BZ_SECTOR 512
#define BZ_NONRELOC_LOAD 0x100000ULL
#define BZ_ENTRY_64 0x200 /* the 64-bit entry: startup_64 = load address + 0x200 */
#define BZ_LOADER_UNDEFINED 0xff
#define BZ_VID_NORMAL 0xffff
#define MIB ((uint64_t)1 << 20)

int bzimage_parse(const uint8_t *data, size_t len, struct bzimage_info *out, struct boot_err *err)
{
	struct bzimage_info bi = { 0 };
	uint64_t end;

	memset(out, 0, sizeof(*out));
	/* Magic, boot flag and version first; the rest once setup_size is known. */
	if (!data || len < BP_VERSION + 2) {
		boot_errf(err, "bzImage truncated: %zu bytes, the setup header needs at least 0x%x",
			  data ? len : 0, BP_VERSION + 2);
		return -ENOEXEC;
	}
	if (boot_le32(data + BP_HEADER) != BZ_HDRS_MAGIC) {
		boot_errf(err, "no \"HdrS\" magic at 0x%x: not a bzImage", BP_HEADER);
		return -ENOEXEC;
	}
	if (boot_le16(data + BP_BOOT_FLAG) != BZ_BOOT_FLAG) {
		boot_errf(err, "bzImage boot flag at 0x%x is 0x%04x, expected 0xaa55", BP_BOOT_FLAG,
			  boot_le16(data + BP_BOOT_FLAG));
		return -ENOEXEC;
	}
	bi.protocol = boot_le16(data + BP_VERSION);
	if (bi.protocol < BZIMAGE_MIN_PROTOCOL) {
		boot_errf(err, "bzImage boot protocol %u.%02u is too old (need 2.12 with 64-bit entry)",
			  bi.protocol >> 8, bi.protocol & 0xff);
		return -ENOEXEC;
	}

	bi.setup_sects = data[BP_SETUP_SECTS] ? data[BP_SETUP_SECTS] : BZ_DEFAULT_SETUP_SECTS;
	bi.setup_size = (bi.setup_sects + 1U) * BZ_SECTOR; /* <= 256 * 512: no overflow */
	/* setup_size >= 5 * 512 > BP_HDR_LIMIT: every header field read below is
	 * inside the file once this holds. */
	if (len < bi.setup_size) {
		boot_errf(err, "bzImage truncated: the setup code takes %" PRIu32
			  " bytes (setup_sects %u) but the file has %zu",
			  bi.setup_size, bi.setup_sects, len);
		return -ENOEXEC;
	}

	bi.xloadflags = boot_le16(data + BP_XLOADFLAGS);
	if (!(bi.xloadflags & BZIMAGE_XLF_KERNEL_64)) {
		boot_errf(err, "bzImage boot protocol %u.%02u without XLF_KERNEL_64 in xloadflags "
			  "has no 64-bit entry (too old)", bi.protocol >> 8, bi.protocol & 0xff);
		return -ENOEXEC;
	}

	/* The header's extent: 0x202 plus the short jump's displacement at 0x201
	 * (boot.rst: "the end of the setup header can be calculated as follows:
	 * 0x0202 + byte value at offset 0x0201"). */
	if (data[BP_JUMP] != 0xeb) {
		boot_errf(err, "bzImage has 0x%02x at 0x200, expected a short jump (0xeb)",
			  data[BP_JUMP]);
		return -ENOEXEC;
	}
	bi.hdr_end = BP_HEADER + (uint32_t)data[BP_JUMP + 1];
	if (bi.hdr_end < BP_HDR_END_2_12 || bi.hdr_end > BP_HDR_LIMIT) {
		boot_errf(err, "bzImage setup header ends at 0x%" PRIx32
			  ", outside [0x%x, 0x%x] for protocol %u.%02u",
			  bi.hdr_end, BP_HDR_END_2_12, BP_HDR_LIMIT, bi.protocol >> 8,
			  bi.protocol & 0xff);
		return -ENOEXEC;
	}

	bi.loadflags = data[BP_LOADFLAGS];
	bi.kernel_offset = bi.setup_size;
	bi.kernel_size = (uint64_t)boot_le32(data + BP_SYSSIZE) * 16; /* < 2^36 */
	if (bi.kernel_size == 0) {
		boot_errf(err, "bzImage has an empty protected-mode kernel (syssize 0)");
		return -ENOEXEC;
	}
	if (__builtin_add_overflow(bi.kernel_offset, bi.kernel_size, &end) || end > len) {
		boot_errf(err, "bzImage truncated: the protected-mode kernel needs %" PRIu64
			  " bytes at offset 0x%" PRIx64 " but the file has %zu",
			  bi.kernel_size, bi.kernel_offset, len);
		return -ENOEXEC;
	}

	bi.pref_address = boot_le64(data + BP_PREF_ADDRESS);
	bi.init_size = boot_le32(data + BP_INIT_SIZE);
	bi.kernel_alignment = boot_le32(data + BP_KERNEL_ALIGNMENT);
	bi.relocatable = data[BP_RELOCATABLE] != 0;
	bi.cmdline_size = boot_le32(data + BP_CMDLINE_SIZE);
	if (bi.relocatable && bi.kernel_alignment & (bi.kernel_alignment - 1)) {
		boot_errf(err, "bzImage kernel_alignment 0x%" PRIx32 " is not a power of two",
			  bi.kernel_alignment);
		return -ENOEXEC;
	}
	*out = bi;
	return 0;
}

/* Identity-map [0, BOOT_IDMAP_SIZE) with 2 MiB pages: one PML4 entry, one
 * PDPT entry, one full PD. */
static int bz_write_page_tables(const struct guest_mem *gm)
{
	uint8_t page[BOOT_PAGE_SIZE];
	const uint64_t present_rw = 0x3, large = 0x80;
	int ret;

	_Static_assert(BOOT_IDMAP_SIZE == 512 * 2 * MIB, "one PD maps 1 GiB");
	memset(page, 0, sizeof(page));
	boot_put64(page, BOOT_PDPT_ADDR | present_rw);
	ret = gm_write(gm, BOOT_PML4_ADDR, page, sizeof(page));
	if (ret)
		return ret;
	memset(page, 0, sizeof(page));
	boot_put64(page, BOOT_PD_ADDR | present_rw);
	ret = gm_write(gm, BOOT_PDPT_ADDR, page, sizeof(page));
	if (ret)
		return ret;
	for (uint64_t i = 0; i < 512; i++)
		boot_put64(page + 8 * i, (i * 2 * MIB) | present_rw | large);
	return gm_write(gm, BOOT_PD_ADDR, page, sizeof(page));
}

static int bz_write_boot_params(const struct guest_mem *gm, const uint8_t *data,
				const struct bzimage_info *info,
				const struct boot_e820_entry *e820, unsigned int nr_e820)
{
	uint8_t bp[BOOT_PARAMS_SIZE];

	_Static_assert(BP_E820_TABLE + BP_E820_MAX * BP_E820_ENTRY_SIZE <= BOOT_PARAMS_SIZE,
		       "e820 table inside boot_params");
	_Static_assert(BOOT_E820_MAX <= BP_E820_MAX, "boot_params holds our e820");
	if (nr_e820 > BOOT_E820_MAX)
		return -EINVAL;
	memset(bp, 0, sizeof(bp));
	/* The setup header as the kernel built it (parse bounded hdr_end to
	 * BP_HDR_LIMIT and the file to hold it), then what a loader must set. */
	memcpy(bp + BP_HDR, data + BP_HDR, info->hdr_end - BP_HDR);
	bp[BP_TYPE_OF_LOADER] = BZ_LOADER_UNDEFINED;
	boot_put16(bp + BP_VID_MODE, BZ_VID_NORMAL);
	boot_put32(bp + BP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	boot_put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(BOOT_CMDLINE_ADDR >> 32));
	bp[BP_E820_ENTRIES] = (uint8_t)nr_e820;
	for (unsigned int i = 0; i < nr_e820; i++) {
		uint8_t *ent = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

		boot_put64(ent, e820[i].addr);
		boot_put64(ent + 8, e820[i].size);
		boot_put32(ent + 16, e820[i].type);
	}
	return gm_write(gm, BOOT_PARAMS_ADDR, bp, sizeof(bp));
}

int bzimage_load(const struct guest_mem *gm, const uint8_t *data, size_t len,
		 const struct bzimage_info *info, size_t cmdline_len,
		 const struct boot_e820_entry *e820, unsigned int nr_e820, struct boot_entry *out,
		 struct boot_err *err)
{
	uint64_t load, run, image_end, run_end, end, ram_end = boot_low_ram_end(gm);
	uint8_t *dst;
	int ret;

	if (cmdline_len > info->cmdline_size) {
		boot_errf(err, "kernel command line is %zu bytes but this bzImage takes at most %"
			  PRIu32 " (cmdline_size)", cmdline_len, info->cmdline_size);
		return -E2BIG;
	}

	/*
	 * Where the image goes (load) and where the kernel decompresses itself
	 * and runs (run). boot.rst: "if (relocatable_kernel) runtime_start =
	 * align_up(load_address, kernel_alignment) else runtime_start =
	 * pref_address", and init_size counts from runtime_start. A relocatable
	 * kernel goes to its aligned pref_address, so both are the same; a
	 * non-relocatable one is loaded at 1 MiB and moves itself to
	 * pref_address (LOAD_PHYSICAL_ADDR, 16 MiB by default).
	 */
	if (info->relocatable) {
		uint64_t a = info->kernel_alignment ? info->kernel_alignment : 1;

		/* Round pref_address up to the alignment (normally a no-op). */
		if (__builtin_add_overflow(info->pref_address, a - 1, &load)) {
			boot_errf(err, "bzImage pref_address 0x%" PRIx64 " overflows when aligned",
				  info->pref_address);
			return -ENOEXEC;
		}
		load &= ~(a - 1);
		run = load;
	} else {
		load = BZ_NONRELOC_LOAD;
		run = info->pref_address ? info->pref_address : load;
	}
	if (load < BOOT_KERNEL_MIN || run < BOOT_KERNEL_MIN) {
		boot_errf(err, "bzImage wants to run at 0x%" PRIx64
			  ", below 1 MiB where the boot structures live", run);
		return -ENOEXEC;
	}
	/* From here on run >= load: relocatable, equal; otherwise load is 1 MiB. */
	if (__builtin_add_overflow(load, info->kernel_size, &image_end) ||
	    __builtin_add_overflow(run, (uint64_t)info->init_size, &run_end)) {
		boot_errf(err, "bzImage at 0x%" PRIx64 " wraps the address space", run);
		return -ENOMEM;
	}
	end = image_end > run_end ? image_end : run_end;
	if (end > ram_end) {
		boot_errf(err, "kernel needs %" PRIu64 " MiB at 0x%" PRIx64
			  " but guest RAM ends at 0x%" PRIx64,
			  (end - load + MIB - 1) / MIB, load, ram_end);
		return -ENOMEM;
	}
	if (end > BOOT_IDMAP_SIZE) {
		boot_errf(err, "kernel at 0x%" PRIx64 " needs memory up to 0x%" PRIx64
			  ", past the first 1 GiB the boot page tables map", load, end);
		return -ENOMEM;
	}

	/* kernel_offset + kernel_size <= len: bzimage_parse checked it. */
	if (info->kernel_offset > len || info->kernel_size > len - info->kernel_offset)
		return -EINVAL;
	dst = gm_ptr(gm, load, info->kernel_size);
	if (!dst) {
		boot_errf(err, "kernel range 0x%" PRIx64 "+0x%" PRIx64 " is not in guest RAM",
			  load, info->kernel_size);
		return -ENOMEM;
	}
	memcpy(dst, data + info->kernel_offset, info->kernel_size);

	ret = bz_write_boot_params(gm, data, info, e820, nr_e820);
	if (!ret)
		ret = bz_write_page_tables(gm);
	if (ret) {
		boot_errf(err, "cannot write boot_params or page tables into guest RAM (%d)", ret);
		return -ENOMEM;
	}

	out->kind = BOOT_KIND_BZIMAGE;
	out->entry = load + BZ_ENTRY_64;
	out->load_addr = load;
	out->load_size = end - load;
	out->boot_info = BOOT_PARAMS_ADDR;
	out->protocol = info->protocol;
	return 0;
}
