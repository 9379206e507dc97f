/* Internals shared by the boot/ sources: little-endian field access, messages, per-kind loaders. */
#ifndef MINIVM_BOOT_PRIV_H
#define MINIVM_BOOT_PRIV_H

#include <stdint.h>
#include <string.h>

#include "boot/boot.h"

/* Fields of on-disk and in-guest structures are little-endian and unaligned:
 * read and write them bytewise, never by casting a pointer. */
static inline uint16_t boot_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t boot_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t boot_le64(const uint8_t *p)
{
	return (uint64_t)boot_le32(p) | ((uint64_t)boot_le32(p + 4) << 32);
}

static inline void boot_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void boot_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void boot_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Format a message into err (if not NULL). */
void boot_errf(struct boot_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Zero the guest range [gpa, gpa + len); -EFAULT when it is not all RAM. */
int boot_gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len) BOOT_WUR;

/* The end of RAM region 0 (which starts at 0): every kernel byte must lie below. */
uint64_t boot_low_ram_end(const struct guest_mem *gm);

/*
 * Per-kind loaders, called by boot_load() with the image already parsed into
 * `info` (data[len] is the same file) and the e820 map built. Each first
 * checks everything it can (command line length `cmdline_len` against its own
 * limit, the kernel against RAM), then loads the kernel and writes its boot
 * information structure, and fills out->entry, load_addr, load_size,
 * boot_info, protocol. The command line itself, the MP table and the GDT are
 * written by boot_load() afterwards.
 */
int bzimage_load(const struct guest_mem *gm, const uint8_t *data, size_t len,
		 const struct bzimage_info *info, size_t cmdline_len,
		 const struct boot_e820_entry *e820, unsigned int nr_e820, struct boot_entry *out,
		 struct boot_err *err) BOOT_WUR;
int elf_pvh_load(const struct guest_mem *gm, const uint8_t *data, size_t len,
		 const struct elf_pvh_info *info, const struct boot_load_args *in, size_t cmdline_len,
		 const struct boot_e820_entry *e820, unsigned int nr_e820, struct boot_entry *out,
		 struct boot_err *err) BOOT_WUR;

#endif
