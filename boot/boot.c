/* boot_load(): format detection and the parts every kind shares (command line, GDT, MP table, registers). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "boot/layout.h"

/* Low-memory areas must not overlap one another, and all sit below the EBDA
 * (RAM in the e820 map) or exactly in it. */
#define BOOT_BEFORE(a_addr, a_size, b_addr) _Static_assert((a_addr) + (a_size) <= (b_addr), \
							   #a_addr " ends before " #b_addr)
BOOT_BEFORE(BOOT_BDA_BASE_KB_ADDR, 2, BOOT_GDT_ADDR);
BOOT_BEFORE(BOOT_GDT_ADDR, BOOT_GDT_SIZE, BOOT_PML4_ADDR);
BOOT_BEFORE(BOOT_PML4_ADDR, BOOT_PAGE_SIZE, BOOT_PDPT_ADDR);
BOOT_BEFORE(BOOT_PDPT_ADDR, BOOT_PAGE_SIZE, BOOT_PD_ADDR);
BOOT_BEFORE(BOOT_PD_ADDR, BOOT_PAGE_SIZE, BOOT_START_INFO_ADDR);
BOOT_BEFORE(BOOT_START_INFO_ADDR, BOOT_START_INFO_SIZE, BOOT_MEMMAP_ADDR);
BOOT_BEFORE(BOOT_MEMMAP_ADDR, BOOT_E820_MAX * BOOT_MEMMAP_ENTRY_SIZE, BOOT_PARAMS_ADDR);
BOOT_BEFORE(BOOT_PARAMS_ADDR, BOOT_PARAMS_SIZE, BOOT_STACK_ADDR);
BOOT_BEFORE(BOOT_STACK_ADDR, BOOT_PAGE_SIZE, BOOT_CMDLINE_ADDR);
BOOT_BEFORE(BOOT_CMDLINE_ADDR, BOOT_CMDLINE_AREA, BOOT_EBDA_ADDR);
BOOT_BEFORE(BOOT_EBDA_ADDR, 0x400, BOOT_EBDA_END);
BOOT_BEFORE(BOOT_EBDA_END, 0, BOOT_KERNEL_MIN);
_Static_assert(BOOT_STACK_TOP > BOOT_STACK_ADDR && BOOT_STACK_TOP < BOOT_STACK_ADDR + BOOT_PAGE_SIZE,
	       "stack top inside the stack page");
_Static_assert(BOOT_CMDLINE_AREA > BOOT_PVH_CMDLINE_MAX, "a PVH command line fits");
_Static_assert(BOOT_CMDLINE_ADDR + BOOT_CMDLINE_AREA <= 0xffffffffULL,
	       "cmd_line_ptr and cmdline_paddr fit 32 bits");

/* Selectors in our GDT (boot.rst: __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20

#define SEG_TYPE_CODE_RX_ACCESSED 0xb
#define SEG_TYPE_DATA_RW_ACCESSED 0x3
#define SEG_TYPE_TSS_BUSY 0xb
#define TSS_LIMIT 0x67 /* a 32-bit TSS is 104 bytes */

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL
#define RFLAGS_FIXED 0x2ULL

void boot_errf(struct boot_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

int boot_gm_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memset(p, 0, len);
	return 0;
}

uint64_t boot_low_ram_end(const struct guest_mem *gm)
{
	if (gm->nr == 0 || gm->r[0].gpa != 0)
		return 0;
	return gm->r[0].size;
}

const char *boot_kind_name(enum boot_kind kind)
{
	switch (kind) {
	case BOOT_KIND_BZIMAGE:
		return "bzImage";
	case BOOT_KIND_PVH:
		return "PVH";
	case BOOT_KIND_NONE:
		break;
	}
	return "none";
}

int boot_cmdline_append(char *buf, size_t cap, const char *part)
{
	size_t cur, add, sep, total;

	if (!buf || !part || cap == 0)
		return -EINVAL;
	cur = strnlen(buf, cap);
	if (cur == cap)
		return -EINVAL; /* no NUL: not a string we may extend */
	add = strlen(part);
	for (size_t i = 0; i < add; i++) {
		unsigned char c = (unsigned char)part[i];

		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
	}
	if (add == 0)
		return 0;
	sep = cur ? 1 : 0;
	/* cur < cap and add <= SIZE_MAX - 1 (it came from strlen): checked sums. */
	if (__builtin_add_overflow(cur, sep, &total) || __builtin_add_overflow(total, add, &total) ||
	    total >= cap)
		return -E2BIG;
	if (sep)
		buf[cur] = ' ';
	memcpy(buf + cur + sep, part, add + 1);
	return 0;
}

/* The segments our GDT holds, as KVM wants them in sregs (byte-granular
 * limits); the in-memory descriptors are encoded from the same values. */
static const struct kvm_segment seg_code32 = {
	.base = 0, .limit = 0xffffffff, .selector = SEL_CODE32, .type = SEG_TYPE_CODE_RX_ACCESSED,
	.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
};
static const struct kvm_segment seg_code64 = {
	.base = 0, .limit = 0xffffffff, .selector = SEL_CODE64, .type = SEG_TYPE_CODE_RX_ACCESSED,
	.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
};
static const struct kvm_segment seg_data = {
	.base = 0, .limit = 0xffffffff, .selector = SEL_DATA, .type = SEG_TYPE_DATA_RW_ACCESSED,
	.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
};
static const struct kvm_segment seg_tss = {
	.base = 0, .limit = TSS_LIMIT, .selector = SEL_TSS, .type = SEG_TYPE_TSS_BUSY,
	.present = 1, .dpl = 0, .db = 0, .s = 0, .l = 0, .g = 0,
};

static uint64_t gdt_encode(const struct kvm_segment *s)
{
	uint64_t limit = s->g ? s->limit >> 12 : s->limit, base = s->base, d;

	d = (limit & 0xffff) | ((base & 0xffffff) << 16) | ((uint64_t)(s->type & 0xf) << 40) |
	    ((uint64_t)(s->s & 1) << 44) | ((uint64_t)(s->dpl & 3) << 45) |
	    ((uint64_t)(s->present & 1) << 47) | (((limit >> 16) & 0xf) << 48) |
	    ((uint64_t)(s->avl & 1) << 52) | ((uint64_t)(s->l & 1) << 53) |
	    ((uint64_t)(s->db & 1) << 54) | ((uint64_t)(s->g & 1) << 55) |
	    (((base >> 24) & 0xff) << 56);
	return d;
}

static int boot_write_gdt(const struct guest_mem *gm)
{
	uint8_t gdt[BOOT_GDT_SIZE];

	memset(gdt, 0, sizeof(gdt));
	boot_put64(gdt + SEL_CODE32, gdt_encode(&seg_code32));
	boot_put64(gdt + SEL_CODE64, gdt_encode(&seg_code64));
	boot_put64(gdt + SEL_DATA, gdt_encode(&seg_data));
	/* In long mode a system descriptor takes 16 bytes; the upper half
	 * (base 63:32) stays zero. */
	boot_put64(gdt + SEL_TSS, gdt_encode(&seg_tss));
	return gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

int boot_load(const struct boot_load_args *in, struct boot_entry *out, struct boot_err *err)
{
	static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };
	struct boot_e820_entry e820[BOOT_E820_MAX];
	unsigned int nr_e820;
	const char *cmdline;
	size_t cmdline_len;
	int ret;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!in || !out || !in->gm || (!in->kernel && in->kernel_len)) {
		boot_errf(err, "boot_load: missing arguments");
		return -EINVAL;
	}
	if (in->nr_vcpus == 0 || in->nr_vcpus > BOOT_MAX_VCPUS) {
		boot_errf(err, "%u vCPUs requested; boot/ supports 1 to %d (the MP table lives in "
			  "the 1 KiB EBDA)", in->nr_vcpus, BOOT_MAX_VCPUS);
		return -EINVAL;
	}
	cmdline = in->cmdline ? in->cmdline : "";
	cmdline_len = strnlen(cmdline, BOOT_CMDLINE_AREA);
	if (cmdline_len >= BOOT_CMDLINE_AREA) {
		boot_errf(err, "kernel command line is longer than %llu bytes",
			  BOOT_CMDLINE_AREA - 1);
		return -E2BIG;
	}

	ret = boot_e820_build(in->gm, e820, BOOT_E820_MAX, &nr_e820, err);
	if (ret)
		return ret;

	if (in->kernel_len >= sizeof(elf_magic) &&
	    memcmp(in->kernel, elf_magic, sizeof(elf_magic)) == 0) {
		struct elf_pvh_info info;

		ret = elf_pvh_parse(in->kernel, in->kernel_len, &info, err);
		if (!ret)
			ret = elf_pvh_load(in->gm, in->kernel, in->kernel_len, &info, in, cmdline_len,
					   e820, nr_e820, out, err);
	} else if (in->kernel_len >= BZIMAGE_HDR_MAGIC_OFF + 4 &&
		   memcmp(in->kernel + BZIMAGE_HDR_MAGIC_OFF, "HdrS", 4) == 0) {
		struct bzimage_info info;

		ret = bzimage_parse(in->kernel, in->kernel_len, &info, err);
		if (!ret)
			ret = bzimage_load(in->gm, in->kernel, in->kernel_len, &info, cmdline_len,
					   e820, nr_e820, out, err);
	} else {
		boot_errf(err, "not a Linux kernel (neither a bzImage nor an ELF vmlinux with a "
			  "PVH note)");
		ret = -ENOEXEC;
	}
	if (ret)
		goto fail;

	/* The kernel is in; the shared low-memory structures. Region 0 is larger
	 * than 1 MiB (boot_e820_build checked), so these cannot miss RAM. */
	ret = boot_gm_zero(in->gm, BOOT_CMDLINE_ADDR, BOOT_CMDLINE_AREA);
	if (!ret)
		ret = gm_write(in->gm, BOOT_CMDLINE_ADDR, cmdline, cmdline_len);
	if (!ret)
		ret = boot_write_gdt(in->gm);
	if (!ret)
		ret = boot_gm_zero(in->gm, BOOT_STACK_ADDR, BOOT_PAGE_SIZE);
	if (ret) {
		boot_errf(err, "cannot write the command line, GDT or stack into guest RAM");
		ret = -ENOMEM;
		goto fail;
	}
	ret = boot_mptable_write(in->gm, in->nr_vcpus, err);
	if (ret)
		goto fail;

	out->cmdline_addr = BOOT_CMDLINE_ADDR;
	out->cmdline_len = cmdline_len;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return ret;
}

void boot_apply_regs(const struct boot_entry *e, struct kvm_regs *regs)
{
	if (e->kind != BOOT_KIND_BZIMAGE && e->kind != BOOT_KIND_PVH)
		return;
	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_FIXED; /* IF clear: both protocols want interrupts off */
	regs->rip = e->entry;
	regs->rsp = BOOT_STACK_TOP;
	if (e->kind == BOOT_KIND_BZIMAGE)
		regs->rsi = e->boot_info; /* boot.rst 64-bit protocol: %rsi = boot_params */
	else
		regs->rbx = e->boot_info; /* PVH ABI: %ebx = hvm_start_info */
}

void boot_apply_sregs(const struct boot_entry *e, struct kvm_sregs *sregs)
{
	if (e->kind != BOOT_KIND_BZIMAGE && e->kind != BOOT_KIND_PVH)
		return;
	sregs->cs = e->kind == BOOT_KIND_BZIMAGE ? seg_code64 : seg_code32;
	sregs->ds = seg_data;
	sregs->es = seg_data;
	sregs->fs = seg_data;
	sregs->gs = seg_data;
	sregs->ss = seg_data;
	sregs->tr = seg_tss;
	sregs->gdt.base = BOOT_GDT_ADDR;
	sregs->gdt.limit = BOOT_GDT_SIZE - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr2 = 0;
	if (e->kind == BOOT_KIND_BZIMAGE) {
		/* Long mode with the identity map: the boot protocol's 64-bit entry.
		 * CD/NW from reset are cleared on purpose (caching on). */
		sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs->cr3 = BOOT_PML4_ADDR;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	} else {
		/* PVH: "cr0: bit 0 (PE) must be set. All the other writeable bits
		 * are cleared. cr4: all bits are cleared." (Xen docs, pvh.pandoc) */
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	}
}
