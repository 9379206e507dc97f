/* Unit tests for the e820 map, the MP table and the command-line builder. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/guest_mem.h"

#define MIB (1024ULL * 1024)
#define GIB (1024ULL * MIB)

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

struct fake_vm {
	struct guest_mem gm;
	uint8_t *host;
	uint64_t size;
};

static void fake_vm_init(struct fake_vm *vm, uint64_t size)
{
	vm->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(vm->host, MAP_FAILED);
	vm->size = size;
	gm_layout(&vm->gm, vm->host, size);
}

static void fake_vm_fini(struct fake_vm *vm)
{
	munmap(vm->host, vm->size);
}

static uint8_t *gpa(struct fake_vm *vm, uint64_t addr, uint64_t len)
{
	uint8_t *p = gm_ptr(&vm->gm, addr, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

/* ---- e820 ---- */

static void expect_entry(const struct boot_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	ck_assert_uint_eq(e->addr, addr);
	ck_assert_uint_eq(e->size, size);
	ck_assert_uint_eq(e->type, type);
}

static void expect_low(const struct boot_e820_entry *t, uint64_t low_end)
{
	expect_entry(&t[0], 0, 0x9fc00, BOOT_E820_RAM);
	expect_entry(&t[1], 0x9fc00, 0x100000 - 0x9fc00, BOOT_E820_RESERVED);
	expect_entry(&t[2], 0x100000, low_end - 0x100000, BOOT_E820_RAM);
}

START_TEST(e820_small_ram)
{
	const uint64_t sizes[] = { 64 * MIB, 256 * MIB, 1 * MIB + 4096, 0xd0000000ULL };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct fake_vm vm;
		struct boot_e820_entry t[BOOT_E820_MAX];
		struct boot_err err = { { 0 } };
		unsigned int nr = 99;

		fake_vm_init(&vm, sizes[i]);
		ck_assert_int_eq(boot_e820_build(&vm.gm, t, BOOT_E820_MAX, &nr, &err), 0);
		ck_assert_uint_eq(nr, 3);
		expect_low(t, sizes[i]);
		fake_vm_fini(&vm);
	}
}
END_TEST

START_TEST(e820_above_the_hole)
{
	struct fake_vm vm;
	struct boot_e820_entry t[BOOT_E820_MAX];
	struct boot_err err = { { 0 } };
	unsigned int nr = 0;

	fake_vm_init(&vm, 4 * GIB);
	ck_assert_int_eq(boot_e820_build(&vm.gm, t, BOOT_E820_MAX, &nr, &err), 0);
	ck_assert_uint_eq(nr, 4);
	expect_low(t, 0xd0000000ULL);
	expect_entry(&t[3], 4 * GIB, 4 * GIB - 0xd0000000ULL, BOOT_E820_RAM);
	/* Every RAM byte counted once: the map's RAM equals gm_size(). */
	ck_assert_uint_eq(t[0].size + t[2].size + t[3].size + 0x100000 - 0x9fc00, gm_size(&vm.gm));
	/* Room for 3 but 4 needed. */
	nr = 77;
	ck_assert_int_eq(boot_e820_build(&vm.gm, t, 3, &nr, &err), -EINVAL);
	ck_assert_uint_eq(nr, 0);
	fake_vm_fini(&vm);
}
END_TEST

START_TEST(e820_too_little_ram)
{
	const uint64_t sizes[] = { 0, 4096, 0x9fc00, 640 * 1024, 1 * MIB };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_mem gm;
		uint8_t dummy[1];
		struct boot_e820_entry t[BOOT_E820_MAX];
		struct boot_err err = { { 0 } };
		unsigned int nr = 5;

		gm_layout(&gm, dummy, sizes[i]);
		ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), -ENOMEM);
		ck_assert_uint_eq(nr, 0);
		ck_assert_ptr_nonnull(strstr(err.msg, "larger than 1 MiB"));
	}
}
END_TEST

START_TEST(e820_odd_layouts)
{
	uint8_t dummy[1];
	struct guest_mem gm = { .nr = 1 };
	struct boot_e820_entry t[BOOT_E820_MAX];
	struct boot_err err = { { 0 } };
	unsigned int nr;

	gm.r[0] = (struct gm_region){ .gpa = 0x1000, .size = 64 * MIB, .host = dummy };
	ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(err.msg, "start at address 0"));
	gm.nr = 0;
	ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), -ENOMEM);
	/* A second region overlapping the first. */
	gm.nr = 2;
	gm.r[0] = (struct gm_region){ .gpa = 0, .size = 64 * MIB, .host = dummy };
	gm.r[1] = (struct gm_region){ .gpa = 32 * MIB, .size = 64 * MIB, .host = dummy };
	ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "overlaps"));
	/* A second region that wraps. */
	gm.r[1] = (struct gm_region){ .gpa = UINT64_MAX - 10, .size = 64 * MIB, .host = dummy };
	ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), -EINVAL);
	/* An empty second region is no entry. */
	gm.r[1] = (struct gm_region){ .gpa = 4 * GIB, .size = 0, .host = dummy };
	ck_assert_int_eq(boot_e820_build(&gm, t, BOOT_E820_MAX, &nr, &err), 0);
	ck_assert_uint_eq(nr, 3);
}
END_TEST

/* ---- MP table ---- */

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Walk the table the way Linux's smp_read_mpc() does and check every entry. */
static void check_mptable(struct fake_vm *vm, unsigned int n)
{
	uint8_t *mpf = gpa(vm, 0x9fc00, 16), *mpc, *p, *end;
	unsigned int cpus = 0, buses = 0, ioapics = 0, ints = 0, lints = 0, entries = 0;
	uint32_t mpc_addr;
	uint16_t len;

	/* BIOS data area points at the EBDA. */
	ck_assert_uint_eq(get16(gpa(vm, 0x40e, 2)), 0x9fc0);
	ck_assert_uint_eq(get16(gpa(vm, 0x413, 2)), 639);

	ck_assert_int_eq(memcmp(mpf, "_MP_", 4), 0);
	ck_assert_uint_eq(sum8(mpf, 16), 0);
	ck_assert_uint_eq(mpf[8], 1); /* length in paragraphs */
	ck_assert_uint_eq(mpf[9], 4); /* spec 1.4 */
	ck_assert_uint_eq(mpf[11], 0); /* config table present */
	mpc_addr = get32(mpf + 4);
	ck_assert_uint_eq(mpc_addr, 0x9fc10);

	mpc = gpa(vm, mpc_addr, 44);
	ck_assert_int_eq(memcmp(mpc, "PCMP", 4), 0);
	len = get16(mpc + 4);
	ck_assert_uint_eq(len + 16U, boot_mptable_size(n));
	ck_assert_uint_le(mpc_addr + len, 0xa0000);
	mpc = gpa(vm, mpc_addr, len);
	ck_assert_uint_eq(sum8(mpc, len), 0);
	ck_assert_uint_eq(mpc[6], 4);
	ck_assert_uint_eq(get32(mpc + 36), 0xfee00000);
	ck_assert_uint_eq(get16(mpc + 40), 0); /* no extended table */

	p = mpc + 44;
	end = mpc + len;
	while (p < end) {
		entries++;
		switch (p[0]) {
		case 0: /* processor */
			ck_assert_uint_eq(p[1], cpus);              /* APIC id */
			ck_assert_uint_eq(p[2], 0x14);              /* LAPIC version */
			ck_assert_uint_eq(p[3], cpus == 0 ? 3 : 1); /* enabled, BSP on 0 only */
			ck_assert_uint_eq(get32(p + 4) & 0xf00, 0x600);
			ck_assert_uint_eq(get32(p + 8) & 0x201, 0x201);
			cpus++;
			p += 20;
			break;
		case 1:
			ck_assert_uint_eq(p[1], 0);
			ck_assert_int_eq(memcmp(p + 2, "ISA   ", 6), 0);
			buses++;
			p += 8;
			break;
		case 2:
			ck_assert_uint_eq(p[1], n); /* IOAPIC id after the vCPUs' */
			ck_assert_uint_eq(p[2], 0x11);
			ck_assert_uint_eq(p[3] & 1, 1);
			ck_assert_uint_eq(get32(p + 4), 0xfec00000);
			ioapics++;
			p += 8;
			break;
		case 3:
			ck_assert_uint_eq(p[1], 0);          /* vectored INT */
			ck_assert_uint_eq(get16(p + 2), 5);  /* edge, active high */
			ck_assert_uint_eq(p[4], 0);          /* ISA bus */
			ck_assert_uint_eq(p[5], ints);       /* IRQ i ... */
			ck_assert_uint_eq(p[6], n);          /* ... on the IOAPIC ... */
			ck_assert_uint_eq(p[7], ints);       /* ... pin i */
			ints++;
			p += 8;
			break;
		case 4:
			if (lints == 0) {
				ck_assert_uint_eq(p[1], 3); /* ExtINT */
				ck_assert_uint_eq(p[6], 0); /* BSP */
				ck_assert_uint_eq(p[7], 0); /* LINT0 */
			} else {
				ck_assert_uint_eq(p[1], 1);    /* NMI */
				ck_assert_uint_eq(p[6], 0xff); /* all */
				ck_assert_uint_eq(p[7], 1);    /* LINT1 */
			}
			lints++;
			p += 8;
			break;
		default:
			ck_abort_msg("unknown MP entry type %u", p[0]);
		}
	}
	ck_assert_ptr_eq(p, end);
	ck_assert_uint_eq(cpus, n);
	ck_assert_uint_eq(buses, 1);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(ints, 24);
	ck_assert_uint_eq(lints, 2);
	ck_assert_uint_eq(get16(mpc + 34), entries);
	ck_assert_uint_eq(entries, n + 28);

	/* The rest of the EBDA is clean, whatever was there before. */
	for (uint64_t a = mpc_addr + len; a < 0xa0000; a++)
		ck_assert_uint_eq(gpa(vm, a, 1)[0], 0);
	/* Recomputing is meaningful: one changed byte breaks the sum. */
	mpc[50] ^= 1;
	ck_assert_uint_ne(sum8(mpc, len), 0);
	mpc[50] ^= 1;
}

START_TEST(mptable_counts_and_checksums)
{
	const unsigned int ns[] = { 1, 2, 8, BOOT_MAX_VCPUS };

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct fake_vm vm;
		struct boot_err err = { { 0 } };

		fake_vm_init(&vm, 2 * MIB);
		memset(gpa(&vm, 0x9fc00, 0x400), 0xff, 0x400);
		ck_assert_int_eq(boot_mptable_write(&vm.gm, ns[i], &err), 0);
		check_mptable(&vm, ns[i]);
		fake_vm_fini(&vm);
	}
}
END_TEST

START_TEST(mptable_limits)
{
	struct fake_vm vm;
	struct boot_err err = { { 0 } };
	struct guest_mem small;

	ck_assert_uint_le(boot_mptable_size(BOOT_MAX_VCPUS), 0x400);
	ck_assert_uint_gt(boot_mptable_size(BOOT_MAX_VCPUS + 1), 0x400);
	fake_vm_init(&vm, 2 * MIB);
	ck_assert_int_eq(boot_mptable_write(&vm.gm, 0, &err), -EINVAL);
	ck_assert_int_eq(boot_mptable_write(&vm.gm, BOOT_MAX_VCPUS + 1, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "vCPUs"));
	ck_assert_int_eq(boot_mptable_write(&vm.gm, 255, &err), -EINVAL);
	/* Nothing written on failure. */
	ck_assert_uint_eq(gpa(&vm, 0x9fc00, 1)[0], 0);
	/* RAM that ends inside the EBDA. */
	gm_layout(&small, vm.host, 0x9fc00 + 0x3ff);
	ck_assert_int_eq(boot_mptable_write(&small, 1, &err), -ENOMEM);
	gm_layout(&small, vm.host, 0xa0000);
	ck_assert_int_eq(boot_mptable_write(&small, 1, &err), 0);
	fake_vm_fini(&vm);
}
END_TEST

/* ---- command line ---- */

START_TEST(cmdline_append)
{
	char buf[16] = "";

	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), "a=1"), 0);
	ck_assert_str_eq(buf, "a=1");
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), "b c"), 0);
	ck_assert_str_eq(buf, "a=1 b c");
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), ""), 0);
	ck_assert_str_eq(buf, "a=1 b c");
	/* 7 + 1 + 7 = 15 chars + NUL = 16: fits exactly. */
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), "1234567"), 0);
	ck_assert_str_eq(buf, "a=1 b c 1234567");
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), "x"), -E2BIG);
	ck_assert_str_eq(buf, "a=1 b c 1234567");
}
END_TEST

START_TEST(cmdline_rejects)
{
	char buf[32] = "console=ttyS0";
	char full[4] = { 'a', 'b', 'c', 'd' }; /* no NUL */
	const char *bad[] = { "a\nb", "\t", "x\x7f", "\x1b[0m", "\r" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), bad[i]), -EINVAL);
		ck_assert_str_eq(buf, "console=ttyS0");
	}
	ck_assert_int_eq(boot_cmdline_append(buf, 14, "x"), -E2BIG); /* 13 + 1 + 1 + NUL > 14 */
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), "caf\xc3\xa9"), 0); /* UTF-8 is fine */
	ck_assert_str_eq(buf, "console=ttyS0 caf\xc3\xa9");
	ck_assert_int_eq(boot_cmdline_append(full, sizeof(full), "x"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_append(buf, 0, "x"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_append(NULL, 8, "x"), -EINVAL);
	ck_assert_int_eq(boot_cmdline_append(buf, sizeof(buf), NULL), -EINVAL);
	/* An empty buffer of capacity 1 holds only "". */
	{
		char one[1] = "";

		ck_assert_int_eq(boot_cmdline_append(one, 1, "x"), -E2BIG);
		ck_assert_int_eq(boot_cmdline_append(one, 1, ""), 0);
	}
}
END_TEST

START_TEST(kind_names)
{
	ck_assert_str_eq(boot_kind_name(BOOT_KIND_BZIMAGE), "bzImage");
	ck_assert_str_eq(boot_kind_name(BOOT_KIND_PVH), "PVH");
	ck_assert_str_eq(boot_kind_name(BOOT_KIND_NONE), "none");
	ck_assert_str_eq(boot_kind_name((enum boot_kind)42), "none");
}
END_TEST

static Suite *tables_suite(void)
{
	Suite *s = suite_create("boot_tables");
	TCase *te = tcase_create("e820"), *tm = tcase_create("mptable"), *tc = tcase_create("cmdline");

	tcase_add_test(te, e820_small_ram);
	tcase_add_test(te, e820_above_the_hole);
	tcase_add_test(te, e820_too_little_ram);
	tcase_add_test(te, e820_odd_layouts);
	suite_add_tcase(s, te);
	tcase_add_test(tm, mptable_counts_and_checksums);
	tcase_add_test(tm, mptable_limits);
	suite_add_tcase(s, tm);
	tcase_add_test(tc, cmdline_append);
	tcase_add_test(tc, cmdline_rejects);
	tcase_add_test(tc, kind_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tables_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
