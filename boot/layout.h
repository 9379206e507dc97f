/* Where boot/ puts things in guest physical memory below 1 MiB (x86_64). */
#ifndef MINIVM_BOOT_LAYOUT_H
#define MINIVM_BOOT_LAYOUT_H

/*
 * The first MiB of guest RAM, as the loaders fill it:
 *
 *   0x00000 - 0x003ff  real-mode IVT: left as is (zero)
 *   0x00400 - 0x004ff  BIOS data area: only the EBDA segment word (0x40e) and
 *                      the base-memory size in KiB (0x413) are written; Linux
 *                      reads both to find the EBDA and to pick a spot for its
 *                      decompressor's 32-bit trampoline below it
 *   0x00500 - 0x0052f  GDT (null, 0x08 flat 32-bit code for PVH, 0x10 __BOOT_CS
 *                      64-bit code, 0x18 __BOOT_DS flat data, 0x20 TSS taking
 *                      two slots as long mode wants)
 *   0x01000 - 0x01fff  PML4   } bzImage only: identity map of the first
 *   0x02000 - 0x02fff  PDPT   } BOOT_IDMAP_SIZE bytes with 2 MiB pages
 *   0x03000 - 0x03fff  PD     }
 *   0x06000 - 0x06037  hvm_start_info (PVH only)
 *   0x06040 - 0x060ff  hvm memmap table (PVH only, BOOT_E820_MAX entries)
 *   0x07000 - 0x07fff  boot_params, the "zero page" (bzImage only)
 *   0x08000 - 0x08fff  initial stack, rsp = BOOT_STACK_TOP (the kernel sets
 *                      its own almost at once; this one is only a safety net)
 *   0x20000 - 0x2ffff  kernel command line, NUL-terminated
 *   0x9fc00 - 0x9ffff  EBDA: MP floating pointer and MP configuration table
 *   0xa0000 - 0xfffff  legacy hole (VGA, option ROMs, BIOS): untouched,
 *                      reserved in the e820 map together with the EBDA
 *   0x100000 -         the kernel (never below BOOT_KERNEL_MIN)
 *
 * Everything below the EBDA is RAM in the e820 map: Linux copies boot_params,
 * start_info and the command line before it reuses that memory, and reserves
 * the whole first MiB anyway (x86/setup, since 5.13). Static asserts in
 * boot/boot.c check that no two areas overlap.
 */

#define BOOT_BDA_EBDA_SEG_ADDR 0x40eULL /* u16: EBDA segment (address >> 4) */
#define BOOT_BDA_BASE_KB_ADDR 0x413ULL  /* u16: base memory below the EBDA, KiB */

#define BOOT_GDT_ADDR 0x500ULL
#define BOOT_GDT_ENTRIES 6 /* 8 bytes each; the TSS descriptor takes two */
#define BOOT_GDT_SIZE (BOOT_GDT_ENTRIES * 8ULL)

#define BOOT_PML4_ADDR 0x1000ULL
#define BOOT_PDPT_ADDR 0x2000ULL
#define BOOT_PD_ADDR 0x3000ULL
#define BOOT_PAGE_SIZE 0x1000ULL
#define BOOT_IDMAP_SIZE 0x40000000ULL /* 1 GiB: one PD of 512 2-MiB pages */

#define BOOT_START_INFO_ADDR 0x6000ULL
#define BOOT_START_INFO_SIZE 0x40ULL /* struct hvm_start_info is 56 bytes */
#define BOOT_MEMMAP_ADDR 0x6040ULL
#define BOOT_MEMMAP_ENTRY_SIZE 24ULL /* struct hvm_memmap_table_entry */

#define BOOT_PARAMS_ADDR 0x7000ULL
#define BOOT_PARAMS_SIZE 0x1000ULL

#define BOOT_STACK_ADDR 0x8000ULL
#define BOOT_STACK_TOP 0x8ff0ULL

#define BOOT_CMDLINE_ADDR 0x20000ULL
#define BOOT_CMDLINE_AREA 0x10000ULL /* bytes, including the NUL */

/* Extended BIOS Data Area: the last KiB of conventional memory. Linux looks for
 * the MP floating pointer in its first KiB (and there the whole table lives). */
#define BOOT_EBDA_ADDR 0x9fc00ULL
#define BOOT_EBDA_END 0xa0000ULL
#define BOOT_LEGACY_HOLE_END 0x100000ULL

/* The lowest address a kernel image may occupy. */
#define BOOT_KERNEL_MIN 0x100000ULL

#endif
