/* The Intel MultiProcessor Specification 1.4 table in the EBDA: how Linux finds vCPUs and the IOAPIC without ACPI. */
#include <errno.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "boot/layout.h"

/* MP spec 1.4, chapter 4. Sizes are the spec's; all fields little-endian. */
#define MPF_SIZE 16  /* floating pointer structure */
#define MPC_SIZE 44  /* configuration table header */
#define MPC_CPU_SIZE 20
#define MPC_BUS_SIZE 8
#define MPC_IOAPIC_SIZE 8
#define MPC_INTSRC_SIZE 8
#define MPC_LINTSRC_SIZE 8
#define MPC_NR_LINT 2

#define MP_PROCESSOR 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_INTSRC 3
#define MP_LINTSRC 4

#define MP_SPEC_REV 4 /* 1.4 */
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_LAPIC_VERSION 0x14  /* what KVM's in-kernel LAPIC reports */
#define MP_IOAPIC_VERSION 0x11 /* what KVM's in-kernel IOAPIC reports */
#define MP_IOAPIC_USABLE 0x01
#define MP_CPU_SIGNATURE 0x600     /* family 6, model 0, stepping 0 */
#define MP_CPU_FEATURES 0x201      /* CPUID.1:EDX FPU | APIC */
#define MP_INT_VECTORED 0          /* irqtype: vectored interrupt from the IOAPIC */
#define MP_INT_NMI 1
#define MP_INT_EXTINT 3
#define MP_IRQ_EDGE_HIGH 0x0005    /* polarity 01 active high, trigger 01 edge */
#define MP_IRQ_CONFORMS 0x0000     /* polarity/trigger as the bus says */
#define MP_ISA_BUS_ID 0
#define MP_ALL_LAPICS 0xff

_Static_assert(BOOT_MP_FIXED_SIZE == MPF_SIZE + MPC_SIZE + MPC_BUS_SIZE + MPC_IOAPIC_SIZE +
					     BOOT_MP_IRQS * MPC_INTSRC_SIZE +
					     MPC_NR_LINT * MPC_LINTSRC_SIZE,
	       "BOOT_MP_FIXED_SIZE matches the entries written");
_Static_assert(BOOT_MP_CPU_SIZE == MPC_CPU_SIZE, "processor entry size");
_Static_assert(BOOT_MP_FIXED_SIZE + BOOT_MAX_VCPUS * MPC_CPU_SIZE <=
		       BOOT_EBDA_END - BOOT_EBDA_ADDR,
	       "BOOT_MAX_VCPUS fit in the EBDA");
_Static_assert(BOOT_MP_FIXED_SIZE + (BOOT_MAX_VCPUS + 1) * MPC_CPU_SIZE >
		       BOOT_EBDA_END - BOOT_EBDA_ADDR,
	       "BOOT_MAX_VCPUS is the most that fit");
_Static_assert(BOOT_MAX_VCPUS <= 254, "xAPIC ids: vCPUs 0..n-1 and the IOAPIC's n < 255");

size_t boot_mptable_size(unsigned int nr_vcpus)
{
	return BOOT_MP_FIXED_SIZE + (size_t)nr_vcpus * MPC_CPU_SIZE;
}

/* The two's complement of the byte sum: what makes the sum of all bytes 0. */
static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0x100 - sum);
}

int boot_mptable_write(const struct guest_mem *gm, unsigned int nr_vcpus, struct boot_err *err)
{
	uint8_t t[BOOT_EBDA_END - BOOT_EBDA_ADDR];
	uint8_t *mpc = t + MPF_SIZE, *p = mpc + MPC_SIZE;
	const uint32_t mpc_addr = (uint32_t)BOOT_EBDA_ADDR + MPF_SIZE;
	uint16_t entries = 0, mpc_len;
	uint8_t bda[2];
	int ret;

	if (nr_vcpus == 0 || nr_vcpus > BOOT_MAX_VCPUS) {
		boot_errf(err, "%u vCPUs: the MP table in the EBDA has room for 1 to %d", nr_vcpus,
			  BOOT_MAX_VCPUS);
		return -EINVAL;
	}
	memset(t, 0, sizeof(t));

	/* Floating pointer: "_MP_", physical address of the table, length in
	 * 16-byte units, spec revision, checksum; feature byte 1 = 0 means the
	 * configuration table is present (no default configuration), feature
	 * byte 2 bit 7 clear means virtual-wire mode (no IMCR). */
	memcpy(t, "_MP_", 4);
	boot_put32(t + 4, mpc_addr);
	t[8] = 1;
	t[9] = MP_SPEC_REV;

	for (unsigned int i = 0; i < nr_vcpus; i++, entries++, p += MPC_CPU_SIZE) {
		p[0] = MP_PROCESSOR;
		p[1] = (uint8_t)i; /* APIC id, as KVM numbers vCPUs */
		p[2] = MP_LAPIC_VERSION;
		p[3] = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
		boot_put32(p + 4, MP_CPU_SIGNATURE);
		boot_put32(p + 8, MP_CPU_FEATURES);
	}

	p[0] = MP_BUS;
	p[1] = MP_ISA_BUS_ID;
	memcpy(p + 2, "ISA   ", 6);
	p += MPC_BUS_SIZE;
	entries++;

	p[0] = MP_IOAPIC;
	p[1] = (uint8_t)nr_vcpus; /* the first APIC id no vCPU has */
	p[2] = MP_IOAPIC_VERSION;
	p[3] = MP_IOAPIC_USABLE;
	boot_put32(p + 4, BOOT_MP_IOAPIC_ADDR);
	p += MPC_IOAPIC_SIZE;
	entries++;

	/* KVM's default routing sends GSI i to IOAPIC pin i (and i < 16 to the
	 * PIC too); say so for every pin, since the virtio-mmio devices use IRQs
	 * from 5 up to 23 and Linux only routes what it finds here. */
	for (unsigned int irq = 0; irq < BOOT_MP_IRQS; irq++, entries++, p += MPC_INTSRC_SIZE) {
		p[0] = MP_INTSRC;
		p[1] = MP_INT_VECTORED;
		boot_put16(p + 2, MP_IRQ_EDGE_HIGH);
		p[4] = MP_ISA_BUS_ID;
		p[5] = (uint8_t)irq;
		p[6] = (uint8_t)nr_vcpus; /* the IOAPIC's id */
		p[7] = (uint8_t)irq;
	}

	/* Virtual wire: the PIC's ExtINT on the BSP's LINT0, NMI on every LINT1. */
	p[0] = MP_LINTSRC;
	p[1] = MP_INT_EXTINT;
	boot_put16(p + 2, MP_IRQ_CONFORMS);
	p[4] = MP_ISA_BUS_ID;
	p[5] = 0;
	p[6] = 0; /* BSP */
	p[7] = 0; /* LINT0 */
	p += MPC_LINTSRC_SIZE;
	entries++;
	p[0] = MP_LINTSRC;
	p[1] = MP_INT_NMI;
	boot_put16(p + 2, MP_IRQ_CONFORMS);
	p[4] = MP_ISA_BUS_ID;
	p[5] = 0;
	p[6] = MP_ALL_LAPICS;
	p[7] = 1; /* LINT1 */
	p += MPC_LINTSRC_SIZE;
	entries++;

	/* Configuration table header, now that its length is known. */
	mpc_len = (uint16_t)(p - mpc);
	memcpy(mpc, "PCMP", 4);
	boot_put16(mpc + 4, mpc_len);
	mpc[6] = MP_SPEC_REV;
	memcpy(mpc + 8, "MINIVM  ", 8);      /* OEM id */
	memcpy(mpc + 16, "MICROVM     ", 12); /* product id */
	boot_put16(mpc + 34, entries);        /* entry count */
	boot_put32(mpc + 36, BOOT_MP_LAPIC_ADDR);
	mpc[7] = mp_checksum(mpc, mpc_len);
	t[10] = mp_checksum(t, MPF_SIZE);

	ret = gm_write(gm, BOOT_EBDA_ADDR, t, sizeof(t));
	if (ret) {
		boot_errf(err, "cannot write the MP table: the EBDA at 0x%llx is not guest RAM",
			  BOOT_EBDA_ADDR);
		return -ENOMEM;
	}
	/* BIOS data area: EBDA segment, and base memory in KiB ending at it. */
	boot_put16(bda, (uint16_t)(BOOT_EBDA_ADDR >> 4));
	ret = gm_write(gm, BOOT_BDA_EBDA_SEG_ADDR, bda, sizeof(bda));
	boot_put16(bda, (uint16_t)(BOOT_EBDA_ADDR >> 10));
	if (!ret)
		ret = gm_write(gm, BOOT_BDA_BASE_KB_ADDR, bda, sizeof(bda));
	if (ret) {
		boot_errf(err, "cannot write the BIOS data area: guest RAM does not cover it");
		return -ENOMEM;
	}
	return 0;
}
