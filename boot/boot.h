/* Kernel loaders for x86_64 (bzImage, vmlinux via PVH): load into guest memory, never run. */
#ifndef MINIVM_BOOT_H
#define MINIVM_BOOT_H

/*
 * What boot/ does, and what it leaves to the caller:
 *
 *   - The caller (vmm/) maps guest RAM, describes it with gm_layout() and reads
 *     the kernel file into host memory. boot/ never opens files, never touches
 *     KVM, keeps no state between calls and allocates nothing.
 *   - boot_load() recognises the image, checks it against the RAM it is given,
 *     and writes everything the kernel needs into guest memory: the kernel
 *     itself, the e820 map, the MP table, the command line, the GDT, and per
 *     kind the boot_params + page tables (bzImage) or hvm_start_info + memmap
 *     (PVH). Where each goes: boot/layout.h. It fills a struct boot_entry.
 *   - The caller then, for the boot vCPU only:
 *         KVM_GET_SREGS; boot_apply_sregs(&entry, &sregs); KVM_SET_SREGS;
 *         KVM_GET_REGS;  boot_apply_regs(&entry, &regs);   KVM_SET_REGS;
 *     Application processors are left at reset: the guest starts them with
 *     INIT/SIPI through the in-kernel LAPIC, as on hardware.
 *
 * Every function that can fail returns 0 or a negative errno and, when `err`
 * is not NULL, leaves a one-line human message in err->msg naming what is
 * wrong (it is left untouched on success). Error codes:
 *   -ENOEXEC  not a Linux kernel, or a malformed / truncated / unsupported one
 *   -ENOMEM   the kernel or the boot structures do not fit in guest RAM
 *   -E2BIG    the command line is too long for the kernel or for boot/
 *   -EINVAL   bad arguments from the caller (NULL pointers, 0 or too many vCPUs)
 *
 * The parsers (bzimage_parse, elf_pvh_parse) are pure: bytes in, struct out,
 * no guest memory. They accept any bytes whatsoever (the kernel file is not
 * trusted more than any other input) and are fuzzed.
 */

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define BOOT_WUR __attribute__((warn_unused_result))

/* A failure's message, filled by every failing call given a non-NULL one. */
struct boot_err {
	char msg[200];
};

/* ---------------------------------------------------------------------------
 * Loading
 */

enum boot_kind {
	BOOT_KIND_NONE = 0,
	BOOT_KIND_BZIMAGE, /* Linux x86 boot protocol, 64-bit entry */
	BOOT_KIND_PVH,     /* ELF vmlinux, 32-bit PVH entry (Xen note 18) */
};

struct boot_load_args {
	const struct guest_mem *gm; /* RAM from 0 (> 1 MiB of it), as gm_layout() makes */
	const uint8_t *kernel;      /* the whole kernel file; read only, not kept */
	size_t kernel_len;
	const char *cmdline;        /* final command line, NUL-terminated; NULL = "" */
	unsigned int nr_vcpus;      /* 1 .. BOOT_MAX_VCPUS */
	/*
	 * Optional (NULL: copy everything). For a PVH segment whose guest
	 * address and file offset are both page-aligned, boot/ asks the caller
	 * to map the segment's whole pages of the kernel file at `gpa` instead
	 * of copying them: len bytes (a multiple of 4096) from file offset
	 * `off`, inside RAM already checked with gm_ptr(). 0 = mapped; > 0 =
	 * declined, RAM intact: boot/ copies those bytes itself; < 0 = RAM
	 * there is lost: the load fails with that error. The partial last
	 * page and the bss are always written by boot/.
	 */
	int (*map_file)(void *ctx, uint64_t gpa, uint64_t off, uint64_t len);
	void *map_ctx;
	/*
	 * Guest RAM is fresh anonymous memory, all zeros: boot/ then leaves a
	 * PVH segment's bss as it is (unless another segment overlaps it)
	 * instead of writing zeros over it, which faulted in its pages (0.7
	 * MiB for the project's vmlinux) on the path to the first KVM_RUN.
	 */
	bool ram_zeroed;
};

/* The result of a load: what boot_apply_{regs,sregs} need, and what to log. */
struct boot_entry {
	enum boot_kind kind;
	uint64_t entry;        /* guest physical address of the first instruction */
	uint64_t load_addr;    /* lowest guest address of the kernel image */
	uint64_t load_size;    /* bytes from load_addr the kernel owns before it
				* reads the memory map (bzImage: up to the end of
				* the image or of runtime start + init_size, the
				* higher; PVH: up to the end of the highest
				* PT_LOAD segment) */
	uint64_t boot_info;    /* gpa of boot_params (bzImage) / hvm_start_info (PVH) */
	uint64_t cmdline_addr; /* gpa of the NUL-terminated command line */
	size_t cmdline_len;    /* without the NUL */
	uint16_t protocol;     /* bzImage boot protocol version (0x020f = 2.15); 0 for PVH */
};

/*
 * Recognise in->kernel (ELF magic: vmlinux via PVH; "HdrS" at 0x202: bzImage),
 * validate it and load it with everything the kernel needs, as described at
 * the top of this file.
 *
 * Preconditions: in->gm describes RAM starting at gpa 0 and larger than 1 MiB;
 * nobody else writes guest memory during the call. The parts of guest memory
 * boot/layout.h names and the kernel's own range are overwritten; the rest is
 * not touched. On success *out is filled; on failure *out is zeroed, err says
 * why, and guest memory may be partly written (the VM is not startable and the
 * caller discards it or loads again).
 */
int boot_load(const struct boot_load_args *in, struct boot_entry *out, struct boot_err *err)
	BOOT_WUR;

/* "bzImage", "PVH" or "none", for logs. */
const char *boot_kind_name(enum boot_kind kind);

/*
 * Initial register state of the boot vCPU. `e` comes from a successful
 * boot_load(); `regs`/`sregs` are what KVM_GET_REGS/KVM_GET_SREGS returned for
 * that vCPU. Every general-purpose register is set (zero unless named below);
 * in sregs the segment registers, TR, GDT, IDT, CR0, CR2, CR3, CR4 and EFER are
 * set, the rest (LDT, CR8, APIC base, interrupt bitmap) is left as KVM gave it.
 *
 *   bzImage: rip = load + 0x200, rsi = boot_params, rflags = 0x2; long mode:
 *            CR0 PE|PG|ET, CR3 = PML4, CR4 PAE, EFER LME|LMA; CS = 0x10
 *            (64-bit), DS/ES/FS/GS/SS = 0x18 flat.
 *   PVH:     rip = PVH entry, rbx = hvm_start_info, rflags = 0x2; 32-bit
 *            protected mode without paging: CR0 PE|ET, CR3 0, CR4 0, EFER 0;
 *            CS = 0x08 flat 32-bit code, data segments 0x18 flat; TR a 32-bit
 *            busy TSS, base 0, limit 0x67 (the PVH ABI).
 * Both: rsp = BOOT_STACK_TOP; IDT empty (limit 0): an exception before the
 * kernel loads its own IDT shuts the VM down (KVM_EXIT_SHUTDOWN).
 * A kind other than bzImage/PVH leaves the structs untouched.
 */
void boot_apply_regs(const struct boot_entry *e, struct kvm_regs *regs);
void boot_apply_sregs(const struct boot_entry *e, struct kvm_sregs *sregs);

/* ---------------------------------------------------------------------------
 * Kernel command line
 */

/* What the kernels boot/ loads accept at most, without the NUL: x86's
 * COMMAND_LINE_SIZE is 2048. A bzImage states its own limit (cmdline_size);
 * a PVH vmlinux cannot, so PVH loads are held to this. */
#define BOOT_PVH_CMDLINE_MAX 2047

/*
 * Append `part` to the NUL-terminated string in buf[cap], separated by one
 * space when buf is not empty. 0 on success; -E2BIG when the result and its
 * NUL would not fit in cap bytes; -EINVAL when `part` holds a control
 * character (< 0x20 or 0x7f), or buf holds no NUL within cap. On error buf is
 * unchanged. An empty `part` is a no-op.
 */
int boot_cmdline_append(char *buf, size_t cap, const char *part) BOOT_WUR;

/* ---------------------------------------------------------------------------
 * e820 memory map (also the PVH memmap: same entries)
 */

#define BOOT_E820_RAM 1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX 8 /* more than boot_e820_build ever makes (4) */

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* BOOT_E820_* */
};

/*
 * The map of gm's RAM, in ascending order:
 *   RAM      [0, 0x9fc00)                 conventional memory below the EBDA
 *   reserved [0x9fc00, 0x100000)          EBDA (MP table) + legacy hole
 *   RAM      [0x100000, end of region 0)  (region 0 ends at or below the MMIO hole)
 *   RAM      region 1, if gm has one      (from 4 GiB)
 * Writes *nr entries into tab[cap]. -ENOMEM when region 0 does not start at 0
 * or is not larger than 1 MiB; -EINVAL when cap is too small or gm is not laid
 * out in ascending, non-overlapping regions. Pure: reads only gm's layout.
 */
int boot_e820_build(const struct guest_mem *gm, struct boot_e820_entry *tab, unsigned int cap,
		    unsigned int *nr, struct boot_err *err) BOOT_WUR;

/* ---------------------------------------------------------------------------
 * MP table (Intel MultiProcessor Specification 1.4)
 */

/* The whole table sits in the 1 KiB EBDA; that, not the 254 xAPIC ids (255
 * minus the IOAPIC's), is what limits the vCPUs: 284 + 20 bytes per vCPU. */
#define BOOT_MP_FIXED_SIZE 284
#define BOOT_MP_CPU_SIZE 20
#define BOOT_MAX_VCPUS 37
#define BOOT_MP_IOAPIC_ADDR 0xfec00000U
#define BOOT_MP_LAPIC_ADDR 0xfee00000U
#define BOOT_MP_IRQS 24 /* ISA IRQ i -> IOAPIC pin i, for i < 24 */

/* Bytes of MP table for nr_vcpus (floating pointer included). */
size_t boot_mptable_size(unsigned int nr_vcpus);

/*
 * Write the MP floating pointer and configuration table at BOOT_EBDA_ADDR and
 * point the BIOS data area at the EBDA. The table: one processor per vCPU
 * (APIC id i, i = 0 the BSP), an ISA bus, one IOAPIC (id nr_vcpus, version
 * 0x11, at 0xfec00000), ISA IRQ i -> IOAPIC pin i for i < 24 (edge, active
 * high), ExtINT on LINT0 of the BSP and NMI on LINT1 of every CPU. -EINVAL
 * for 0 or more than BOOT_MAX_VCPUS vCPUs, -ENOMEM when the EBDA is not RAM.
 */
int boot_mptable_write(const struct guest_mem *gm, unsigned int nr_vcpus, struct boot_err *err)
	BOOT_WUR;

/* ---------------------------------------------------------------------------
 * bzImage (Documentation/x86/boot.rst)
 */

#define BZIMAGE_MIN_PROTOCOL 0x020c /* 2.12: xloadflags, XLF_KERNEL_64 */
#define BZIMAGE_XLF_KERNEL_64 0x0001
#define BZIMAGE_HDR_MAGIC_OFF 0x202 /* "HdrS" */

struct bzimage_info {
	uint16_t protocol;         /* 0x020c or later */
	uint8_t setup_sects;       /* effective: 0 in the file means 4 */
	uint8_t loadflags;
	uint16_t xloadflags;
	uint32_t setup_size;       /* (setup_sects + 1) * 512: the real-mode part */
	uint32_t hdr_end;          /* the setup header is file[0x1f1 .. hdr_end) */
	uint64_t kernel_offset;    /* the protected-mode kernel: file[kernel_offset..] */
	uint64_t kernel_size;      /* syssize * 16, wholly inside the file */
	uint64_t pref_address;     /* where a relocatable kernel prefers to be, and
				    * where a non-relocatable one moves itself */
	uint32_t init_size;        /* bytes the kernel needs from where it runs */
	uint32_t kernel_alignment; /* a power of two, or 0 */
	bool relocatable;
	uint32_t cmdline_size;     /* longest command line, without the NUL */
};

/* Parse and validate the bzImage in data[len]. 0, or -ENOEXEC with err set. */
int bzimage_parse(const uint8_t *data, size_t len, struct bzimage_info *out,
		  struct boot_err *err) BOOT_WUR;

/* ---------------------------------------------------------------------------
 * ELF vmlinux with a PVH entry note
 */

#define ELF_PVH_MAX_LOADS 16 /* a vmlinux has about 5 PT_LOAD segments */
#define ELF_PVH_NOTE_TYPE 18 /* XEN_ELFNOTE_PHYS32_ENTRY, owner "Xen" */

struct elf_pvh_load {
	uint64_t offset; /* in the file; offset + filesz inside the file */
	uint64_t paddr;  /* guest physical load address */
	uint64_t filesz; /* <= memsz; the rest up to memsz is zeroed (bss) */
	uint64_t memsz;  /* paddr + memsz does not wrap */
};

struct elf_pvh_info {
	uint32_t entry;     /* 32-bit PVH entry, inside some segment's file bytes */
	unsigned int nr_loads;
	struct elf_pvh_load loads[ELF_PVH_MAX_LOADS];
	uint64_t lowest;    /* min paddr over loads[] */
	uint64_t highest;   /* max paddr + memsz over loads[] */
};

/* Parse and validate the ELF in data[len]: ELF64, little-endian, x86_64,
 * ET_EXEC, with PT_LOAD segments and a PVH note. 0, or -ENOEXEC with err set.
 * Where the segments land against guest RAM is checked when loading. */
int elf_pvh_parse(const uint8_t *data, size_t len, struct elf_pvh_info *out,
		  struct boot_err *err) BOOT_WUR;

#endif
