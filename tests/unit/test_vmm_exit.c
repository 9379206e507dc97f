/* Unit tests for vmm/exit.c: every KVM exit reason to its action, on a fake kvm_run page. */
#include <check.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/exit.h"

#define T_PAGE 4096
#define T_DATA_OFF 2560 /* inside the page, past struct kvm_run */
#define T_PIO_BASE 0x3f8
#define T_MMIO_BASE 0xd0000000ULL
#define T_MAX_CALLS 64

/* Every call a handler got, in order. */
struct t_call {
	int write;
	uint64_t off;
	unsigned int len;
	uint8_t data[8];
};

struct t_rec {
	struct t_call calls[T_MAX_CALLS];
	unsigned int n;
	uint8_t next; /* read handlers fill with next, next+1, ... */
};

static struct t_rec t_pio_rec, t_mmio_rec;
static struct bus t_pio, t_mmio;
static struct exit_env t_env;
static struct kvm_run *t_run;
static char t_msg[256];

static void t_record(struct t_rec *rec, int write, uint64_t off, const void *data,
		     unsigned int len)
{
	struct t_call *c;

	ck_assert_uint_lt(rec->n, T_MAX_CALLS);
	ck_assert_uint_le(len, 8);
	c = &rec->calls[rec->n++];
	c->write = write;
	c->off = off;
	c->len = len;
	memcpy(c->data, data, len);
}

static void t_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct t_rec *rec = opaque;
	uint8_t *d = data;

	for (unsigned int i = 0; i < len; i++)
		d[i] = rec->next++;
	t_record(rec, 0, off, data, len);
}

static void t_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	t_record(opaque, 1, off, data, len);
}

static void setup(void)
{
	memset(&t_pio_rec, 0, sizeof(t_pio_rec));
	memset(&t_mmio_rec, 0, sizeof(t_mmio_rec));
	t_pio_rec.next = 0x10;
	t_mmio_rec.next = 0x80;
	memset(&t_pio, 0, sizeof(t_pio));
	memset(&t_mmio, 0, sizeof(t_mmio));
	ck_assert_int_eq(bus_add(&t_pio, T_PIO_BASE, 8, t_read, t_write, &t_pio_rec), 0);
	ck_assert_int_eq(bus_add(&t_mmio, T_MMIO_BASE, 0x1000, t_read, t_write, &t_mmio_rec), 0);
	t_env = (struct exit_env){ .pio = &t_pio, .mmio = &t_mmio };
	/* A heap page exactly the size we claim, so ASan sees any read past it. */
	t_run = calloc(1, T_PAGE);
	ck_assert_ptr_nonnull(t_run);
	memset(t_msg, 'X', sizeof(t_msg));
	t_msg[sizeof(t_msg) - 1] = '\0';
}

static void teardown(void)
{
	free(t_run);
	t_run = NULL;
}

static enum exit_action handle(void)
{
	return exit_handle(t_run, T_PAGE, &t_env, t_msg, sizeof(t_msg));
}

static void set_io(uint8_t dir, uint16_t port, uint8_t size, uint32_t count, uint64_t off)
{
	t_run->exit_reason = KVM_EXIT_IO;
	t_run->io.direction = dir;
	t_run->io.port = port;
	t_run->io.size = size;
	t_run->io.count = count;
	t_run->io.data_offset = off;
}

#define ck_assert_msg_has(needle)                                                     \
	ck_assert_msg(strstr(t_msg, (needle)) != NULL, "message '%s' should mention '%s'", \
		      t_msg, (needle))

/* ---- port I/O ---- */

START_TEST(io_out_dispatched)
{
	uint8_t *data = (uint8_t *)t_run + T_DATA_OFF;

	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE + 5, 1, 1, T_DATA_OFF);
	data[0] = 'A';
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_str_eq(t_msg, "");
	ck_assert_uint_eq(t_pio_rec.n, 1);
	ck_assert_int_eq(t_pio_rec.calls[0].write, 1);
	ck_assert_uint_eq(t_pio_rec.calls[0].off, 5);
	ck_assert_uint_eq(t_pio_rec.calls[0].len, 1);
	ck_assert_uint_eq(t_pio_rec.calls[0].data[0], 'A');
	ck_assert_uint_eq(t_mmio_rec.n, 0);

	/* size 4 at the start of the range */
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 4, 1, T_DATA_OFF);
	memcpy(data, "\x11\x22\x33\x44", 4);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 2);
	ck_assert_uint_eq(t_pio_rec.calls[1].off, 0);
	ck_assert_uint_eq(t_pio_rec.calls[1].len, 4);
	ck_assert_mem_eq(t_pio_rec.calls[1].data, "\x11\x22\x33\x44", 4);
}
END_TEST

START_TEST(io_in_fills_run_page)
{
	uint8_t *data = (uint8_t *)t_run + T_DATA_OFF;

	set_io(KVM_EXIT_IO_IN, T_PIO_BASE + 2, 2, 1, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 1);
	ck_assert_int_eq(t_pio_rec.calls[0].write, 0);
	ck_assert_uint_eq(t_pio_rec.calls[0].off, 2);
	ck_assert_uint_eq(t_pio_rec.calls[0].len, 2);
	ck_assert_uint_eq(data[0], 0x10);
	ck_assert_uint_eq(data[1], 0x11);
	ck_assert_uint_eq(data[2], 0);
}
END_TEST

START_TEST(io_string_out_count_times)
{
	uint8_t *data = (uint8_t *)t_run + T_DATA_OFF;

	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 2, 3, T_DATA_OFF);
	memcpy(data, "abcdef", 6);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 3);
	for (unsigned int i = 0; i < 3; i++) {
		ck_assert_int_eq(t_pio_rec.calls[i].write, 1);
		ck_assert_uint_eq(t_pio_rec.calls[i].off, 0);
		ck_assert_uint_eq(t_pio_rec.calls[i].len, 2);
		ck_assert_mem_eq(t_pio_rec.calls[i].data, &"abcdef"[2 * i], 2);
	}
}
END_TEST

START_TEST(io_string_in_count_times)
{
	uint8_t *data = (uint8_t *)t_run + T_DATA_OFF;

	set_io(KVM_EXIT_IO_IN, T_PIO_BASE + 4, 4, 4, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 4);
	for (unsigned int i = 0; i < 16; i++)
		ck_assert_uint_eq(data[i], 0x10 + i);
	ck_assert_uint_eq(data[16], 0);
}
END_TEST

START_TEST(io_count_zero)
{
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 0, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 0);
}
END_TEST

START_TEST(io_unmapped_port)
{
	uint8_t *data = (uint8_t *)t_run + T_DATA_OFF;

	set_io(KVM_EXIT_IO_IN, 0x80, 2, 1, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(data[0], 0xff);
	ck_assert_uint_eq(data[1], 0xff);
	ck_assert_uint_eq(data[2], 0);
	set_io(KVM_EXIT_IO_OUT, 0x80, 1, 1, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	/* Straddling the end of the UART's range: unhandled as well. */
	set_io(KVM_EXIT_IO_IN, T_PIO_BASE + 6, 4, 1, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_mem_eq(data, "\xff\xff\xff\xff", 4);
	ck_assert_uint_eq(t_pio_rec.n, 0);
}
END_TEST

START_TEST(io_bad_size)
{
	static const uint8_t sizes[] = { 0, 3, 5, 8, 255 };

	for (size_t i = 0; i < sizeof(sizes); i++) {
		set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, sizes[i], 1, T_DATA_OFF);
		ck_assert_int_eq(handle(), EXIT_FATAL);
		ck_assert_msg_has("IO");
		set_io(KVM_EXIT_IO_IN, T_PIO_BASE, sizes[i], 1, T_DATA_OFF);
		ck_assert_int_eq(handle(), EXIT_FATAL);
	}
	ck_assert_uint_eq(t_pio_rec.n, 0);
}
END_TEST

START_TEST(io_data_outside_page)
{
	/* Exactly to the end of the page is fine... */
	set_io(KVM_EXIT_IO_IN, T_PIO_BASE, 2, 1, T_PAGE - 2);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 8, T_PAGE - 8);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 9);

	/* ...one byte past is not, and nothing is dispatched. */
	set_io(KVM_EXIT_IO_IN, T_PIO_BASE, 2, 1, T_PAGE - 1);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("IO");
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 1, T_PAGE);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 9, T_PAGE - 8);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 4, 0xffffffffu, T_DATA_OFF);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 4, 0x40000001u, 0);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	/* data_offset + size wrapping 2^64 */
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 4, 1, UINT64_MAX - 1);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 1, UINT64_MAX);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	set_io(KVM_EXIT_IO_OUT, T_PIO_BASE, 1, 0, UINT64_MAX);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_uint_eq(t_pio_rec.n, 9);
}
END_TEST

/* The real layout: KVM puts PIO data on the page after struct kvm_run
 * (KVM_PIO_PAGE_OFFSET), inside a 3-page mapping. */
START_TEST(io_realistic_layout)
{
	struct kvm_run *run = calloc(1, 3 * T_PAGE);
	uint8_t *data = (uint8_t *)run + T_PAGE;

	ck_assert_ptr_nonnull(run);
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.port = T_PIO_BASE;
	run->io.size = 1;
	run->io.count = 1;
	run->io.data_offset = T_PAGE;
	data[0] = 'z';
	ck_assert_int_eq(exit_handle(run, 3 * T_PAGE, &t_env, t_msg, sizeof(t_msg)),
			 EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 1);
	ck_assert_uint_eq(t_pio_rec.calls[0].data[0], 'z');
	/* The same offset with a one-page run_size is outside. */
	ck_assert_int_eq(exit_handle(run, T_PAGE, &t_env, t_msg, sizeof(t_msg)), EXIT_FATAL);
	ck_assert_uint_eq(t_pio_rec.n, 1);
	free(run);
}
END_TEST

/*
 * The I/O header lives in the same page the data does. When data_offset
 * points into struct kvm_run itself (at io.count, say), an IN would write
 * the device's answer over the header it was checked against (STYLE.md
 * rule 2). KVM never does that (its data page follows the header), so such
 * an exit is refused as fatal, and nothing is dispatched or written.
 */
START_TEST(io_data_aliasing_header_refused)
{
	uint64_t off = offsetof(struct kvm_run, io.count);

	set_io(KVM_EXIT_IO_IN, 0x80, 4, 1, off);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_uint_eq(t_pio_rec.n, 0);
	ck_assert_uint_eq(t_run->io.count, 1);

	t_pio_rec.next = 0x20;
	set_io(KVM_EXIT_IO_IN, T_PIO_BASE, 4, 1, off);
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_uint_eq(t_pio_rec.n, 0);

	/* The first byte after the header is the lowest offset accepted. */
	set_io(KVM_EXIT_IO_IN, T_PIO_BASE, 4, 1, sizeof(struct kvm_run));
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_pio_rec.n, 1);
}
END_TEST

/* A direction that is neither IN nor OUT is not an I/O exit KVM makes. */
START_TEST(io_bad_direction_fatal)
{
	set_io(4, T_PIO_BASE, 4, 1, sizeof(struct kvm_run));
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_uint_eq(t_pio_rec.n, 0);
}
END_TEST

/* ---- MMIO ---- */

START_TEST(mmio_write_dispatched)
{
	t_run->exit_reason = KVM_EXIT_MMIO;
	t_run->mmio.phys_addr = T_MMIO_BASE + 0x70;
	t_run->mmio.is_write = 1;
	t_run->mmio.len = 4;
	memcpy(t_run->mmio.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_str_eq(t_msg, "");
	ck_assert_uint_eq(t_mmio_rec.n, 1);
	ck_assert_int_eq(t_mmio_rec.calls[0].write, 1);
	ck_assert_uint_eq(t_mmio_rec.calls[0].off, 0x70);
	ck_assert_uint_eq(t_mmio_rec.calls[0].len, 4);
	ck_assert_mem_eq(t_mmio_rec.calls[0].data, "\x01\x02\x03\x04", 4);
	ck_assert_uint_eq(t_pio_rec.n, 0);

	/* len 8, ending exactly at the end of the range */
	t_run->mmio.phys_addr = T_MMIO_BASE + 0x1000 - 8;
	t_run->mmio.len = 8;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_mmio_rec.n, 2);
	ck_assert_uint_eq(t_mmio_rec.calls[1].off, 0xff8);
	ck_assert_uint_eq(t_mmio_rec.calls[1].len, 8);
}
END_TEST

START_TEST(mmio_read_dispatched)
{
	t_run->exit_reason = KVM_EXIT_MMIO;
	t_run->mmio.phys_addr = T_MMIO_BASE;
	t_run->mmio.is_write = 0;
	t_run->mmio.len = 2;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_mmio_rec.n, 1);
	ck_assert_int_eq(t_mmio_rec.calls[0].write, 0);
	ck_assert_uint_eq(t_mmio_rec.calls[0].off, 0);
	ck_assert_uint_eq(t_mmio_rec.calls[0].len, 2);
	ck_assert_uint_eq(t_run->mmio.data[0], 0x80);
	ck_assert_uint_eq(t_run->mmio.data[1], 0x81);
	ck_assert_uint_eq(t_run->mmio.data[2], 0);
}
END_TEST

START_TEST(mmio_unmapped)
{
	t_run->exit_reason = KVM_EXIT_MMIO;
	t_run->mmio.phys_addr = 0xfee00000ULL;
	t_run->mmio.is_write = 0;
	t_run->mmio.len = 4;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_mem_eq(t_run->mmio.data, "\xff\xff\xff\xff\0\0\0\0", 8);
	/* straddling the end of the range */
	memset(t_run->mmio.data, 0, 8);
	t_run->mmio.phys_addr = T_MMIO_BASE + 0x1000 - 4;
	t_run->mmio.len = 8;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_mem_eq(t_run->mmio.data, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	/* addr + len wrapping */
	t_run->mmio.phys_addr = UINT64_MAX - 1;
	t_run->mmio.len = 4;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	/* writes are dropped */
	t_run->mmio.phys_addr = 0x1000;
	t_run->mmio.is_write = 1;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_uint_eq(t_mmio_rec.n, 0);
}
END_TEST

START_TEST(mmio_bad_len)
{
	static const uint32_t lens[] = { 0, 9, 16, 0xffffffffu };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		t_run->exit_reason = KVM_EXIT_MMIO;
		t_run->mmio.phys_addr = T_MMIO_BASE + 0x10;
		t_run->mmio.len = lens[i];
		t_run->mmio.is_write = (uint8_t)(i & 1);
		ck_assert_int_eq(handle(), EXIT_FATAL);
		ck_assert_msg_has("MMIO");
		ck_assert_msg_has("0xd0000010");
	}
	ck_assert_uint_eq(t_mmio_rec.n, 0);
}
END_TEST

START_TEST(mmio_odd_len_hits_no_device)
{
	/* Lengths 3, 5, 6, 7 fit the run page but no handler takes them (the bus
	 * promises 1, 2, 4 or 8): reads see all-ones, writes vanish. Found by
	 * fuzz_vmm_exit. */
	static const uint32_t lens[] = { 3, 5, 6, 7 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		t_run->exit_reason = KVM_EXIT_MMIO;
		t_run->mmio.phys_addr = T_MMIO_BASE + 0x10;
		t_run->mmio.len = lens[i];
		t_run->mmio.is_write = 0;
		memset(t_run->mmio.data, 0, 8);
		ck_assert_int_eq(handle(), EXIT_CONTINUE);
		for (uint32_t b = 0; b < 8; b++)
			ck_assert_uint_eq(t_run->mmio.data[b], b < lens[i] ? 0xff : 0);
		t_run->mmio.is_write = 1;
		ck_assert_int_eq(handle(), EXIT_CONTINUE);
	}
	ck_assert_uint_eq(t_mmio_rec.n, 0);
}
END_TEST

/* ---- everything else ---- */

START_TEST(shutdown_is_crash)
{
	t_run->exit_reason = KVM_EXIT_SHUTDOWN;
	ck_assert_int_eq(handle(), EXIT_CRASH);
}
END_TEST

START_TEST(system_events)
{
	t_run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	t_run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	ck_assert_int_eq(handle(), EXIT_RESET);
	t_run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	ck_assert_int_eq(handle(), EXIT_RESET);
	t_run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
	ck_assert_int_eq(handle(), EXIT_CRASH);
	t_run->system_event.type = 77;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("SYSTEM_EVENT");
	ck_assert_msg_has("77");
}
END_TEST

START_TEST(internal_error_fatal)
{
	t_run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	t_run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("INTERNAL_ERROR");
	ck_assert_msg_has("emulation");
	t_run->internal.suberror = 3;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("INTERNAL_ERROR");
	ck_assert_msg_has("3");
}
END_TEST

START_TEST(fail_entry_fatal)
{
	t_run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	t_run->fail_entry.hardware_entry_failure_reason = 0x80000021ULL;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("FAIL_ENTRY");
	ck_assert_msg_has("0x80000021");
}
END_TEST

START_TEST(hlt_is_crash)
{
	/* minivm always has an in-kernel LAPIC: a HLT exit means the guest
	 * stopped for good (exit.c). */
	t_run->exit_reason = KVM_EXIT_HLT;
	ck_assert_int_eq(handle(), EXIT_CRASH);
}
END_TEST

START_TEST(intr_continues)
{
	t_run->exit_reason = KVM_EXIT_INTR;
	ck_assert_int_eq(handle(), EXIT_CONTINUE);
	ck_assert_str_eq(t_msg, "");
}
END_TEST

START_TEST(unknown_reasons_fatal)
{
	t_run->exit_reason = 200;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("200");
	t_run->exit_reason = 0xffffffffu;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("4294967295");
	/* Known to KVM, not expected by minivm: the name and the number. */
	t_run->exit_reason = KVM_EXIT_DEBUG;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("DEBUG");
	ck_assert_msg_has("(4)");
	t_run->exit_reason = KVM_EXIT_HYPERCALL;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("HYPERCALL");
	t_run->exit_reason = KVM_EXIT_UNKNOWN;
	ck_assert_int_eq(handle(), EXIT_FATAL);
	ck_assert_msg_has("UNKNOWN");
}
END_TEST

START_TEST(reason_names)
{
	ck_assert_str_eq(exit_reason_name(KVM_EXIT_IO), "IO");
	ck_assert_str_eq(exit_reason_name(KVM_EXIT_MMIO), "MMIO");
	ck_assert_str_eq(exit_reason_name(KVM_EXIT_SHUTDOWN), "SHUTDOWN");
	ck_assert_str_eq(exit_reason_name(KVM_EXIT_SYSTEM_EVENT), "SYSTEM_EVENT");
	ck_assert_ptr_null(exit_reason_name(200));
	ck_assert_ptr_null(exit_reason_name(0xffffffffu));
}
END_TEST

START_TEST(small_message_buffer)
{
	char small[6];

	t_run->exit_reason = 200;
	memset(small, 'X', sizeof(small));
	ck_assert_int_eq(exit_handle(t_run, T_PAGE, &t_env, small, sizeof(small)), EXIT_FATAL);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

/* ---- the bus itself ---- */

static void t_noop_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	memset(data, 0x42, len);
}

START_TEST(bus_add_rules)
{
	struct bus b;

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(bus_add(&b, 0x100, 0x10, NULL, NULL, NULL), 0);
	/* overlaps: tail, head, containing, contained, identical */
	ck_assert_int_eq(bus_add(&b, 0x10f, 0x10, NULL, NULL, NULL), -EEXIST);
	ck_assert_int_eq(bus_add(&b, 0xf0, 0x11, NULL, NULL, NULL), -EEXIST);
	ck_assert_int_eq(bus_add(&b, 0, 0x1000, NULL, NULL, NULL), -EEXIST);
	ck_assert_int_eq(bus_add(&b, 0x104, 1, NULL, NULL, NULL), -EEXIST);
	ck_assert_int_eq(bus_add(&b, 0x100, 0x10, NULL, NULL, NULL), -EEXIST);
	/* adjacent on both sides */
	ck_assert_int_eq(bus_add(&b, 0x110, 0x10, NULL, NULL, NULL), 0);
	ck_assert_int_eq(bus_add(&b, 0xf0, 0x10, NULL, NULL, NULL), 0);
	/* empty, wrapping, reaching 2^64 */
	ck_assert_int_eq(bus_add(&b, 0x1000, 0, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(bus_add(&b, UINT64_MAX, 2, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(bus_add(&b, 0x2000, UINT64_MAX, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(bus_add(&b, UINT64_MAX - 0xfff, 0x1000, NULL, NULL, NULL), -EINVAL);
	/* the last representable range */
	ck_assert_int_eq(bus_add(&b, UINT64_MAX - 0xfff, 0xfff, NULL, NULL, NULL), 0);
	ck_assert_int_eq(bus_add(&b, UINT64_MAX - 1, 1, NULL, NULL, NULL), -EEXIST);
	ck_assert_uint_eq(b.nr, 4);
}
END_TEST

START_TEST(bus_full_table)
{
	struct bus b;

	memset(&b, 0, sizeof(b));
	for (unsigned int i = 0; i < BUS_MAX_RANGES; i++)
		ck_assert_int_eq(bus_add(&b, 0x1000 + 0x10 * i, 0x10, NULL, NULL, NULL), 0);
	ck_assert_int_eq(bus_add(&b, 0x100000, 0x10, NULL, NULL, NULL), -ENOSPC);
	ck_assert_uint_eq(b.nr, BUS_MAX_RANGES);
}
END_TEST

START_TEST(bus_straddle_and_exact_end)
{
	struct t_rec other;
	struct bus b;
	uint8_t d[8];

	memset(&b, 0, sizeof(b));
	memset(&other, 0, sizeof(other));
	ck_assert_int_eq(bus_add(&b, 0x100, 8, t_read, t_write, &t_pio_rec), 0);
	ck_assert_int_eq(bus_add(&b, 0x108, 8, t_read, t_write, &other), 0);

	/* exactly the last bytes of the first range */
	ck_assert_int_eq(bus_read(&b, 0x104, d, 4), 1);
	ck_assert_uint_eq(t_pio_rec.n, 1);
	ck_assert_uint_eq(t_pio_rec.calls[0].off, 4);
	ck_assert_mem_eq(d, "\x10\x11\x12\x13", 4);
	/* straddling the two ranges: neither sees it, reads are all-ones */
	memset(d, 0, sizeof(d));
	ck_assert_int_eq(bus_read(&b, 0x106, d, 4), 0);
	ck_assert_mem_eq(d, "\xff\xff\xff\xff\0\0\0\0", 8);
	ck_assert_int_eq(bus_write(&b, 0x106, d, 4), 0);
	/* straddling the end of the last range */
	ck_assert_int_eq(bus_read(&b, 0x10e, d, 4), 0);
	ck_assert_int_eq(bus_write(&b, 0x10f, d, 2), 0);
	/* just past it */
	ck_assert_int_eq(bus_read(&b, 0x110, d, 1), 0);
	/* wrapping 2^64 */
	ck_assert_int_eq(bus_read(&b, UINT64_MAX, d, 2), 0);
	ck_assert_uint_eq(t_pio_rec.n, 1);
	ck_assert_uint_eq(other.n, 0);
	/* second range, first byte */
	ck_assert_int_eq(bus_write(&b, 0x108, "\x7e", 1), 1);
	ck_assert_uint_eq(other.n, 1);
	ck_assert_uint_eq(other.calls[0].off, 0);
	ck_assert_uint_eq(other.calls[0].data[0], 0x7e);
}
END_TEST

START_TEST(bus_missing_handlers)
{
	struct bus b;
	uint8_t d[4] = { 0 };

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(bus_add(&b, 0x10, 4, NULL, NULL, NULL), 0);
	ck_assert_int_eq(bus_add(&b, 0x20, 4, t_noop_read, NULL, NULL), 0);
	/* A range without a read handler reads all-ones; without a write
	 * handler it drops the write. Either way the range owns the access. */
	ck_assert_int_eq(bus_read(&b, 0x10, d, 4), 1);
	ck_assert_mem_eq(d, "\xff\xff\xff\xff", 4);
	ck_assert_int_eq(bus_write(&b, 0x10, d, 4), 1);
	ck_assert_int_eq(bus_read(&b, 0x21, d, 2), 1);
	ck_assert_mem_eq(d, "\x42\x42\xff\xff", 4);
}
END_TEST

static Suite *vmm_exit_suite(void)
{
	Suite *s = suite_create("vmm_exit");
	TCase *io = tcase_create("io");
	TCase *mmio = tcase_create("mmio");
	TCase *other = tcase_create("other");
	TCase *bus = tcase_create("bus");

	tcase_add_checked_fixture(io, setup, teardown);
	tcase_add_checked_fixture(mmio, setup, teardown);
	tcase_add_checked_fixture(other, setup, teardown);
	tcase_add_checked_fixture(bus, setup, teardown);
	tcase_add_test(io, io_out_dispatched);
	tcase_add_test(io, io_in_fills_run_page);
	tcase_add_test(io, io_string_out_count_times);
	tcase_add_test(io, io_string_in_count_times);
	tcase_add_test(io, io_count_zero);
	tcase_add_test(io, io_unmapped_port);
	tcase_add_test(io, io_bad_size);
	tcase_add_test(io, io_data_outside_page);
	tcase_add_test(io, io_realistic_layout);
	tcase_add_test(io, io_data_aliasing_header_refused);
	tcase_add_test(io, io_bad_direction_fatal);
	tcase_add_test(mmio, mmio_write_dispatched);
	tcase_add_test(mmio, mmio_read_dispatched);
	tcase_add_test(mmio, mmio_unmapped);
	tcase_add_test(mmio, mmio_bad_len);
	tcase_add_test(mmio, mmio_odd_len_hits_no_device);
	tcase_add_test(other, shutdown_is_crash);
	tcase_add_test(other, system_events);
	tcase_add_test(other, internal_error_fatal);
	tcase_add_test(other, fail_entry_fatal);
	tcase_add_test(other, hlt_is_crash);
	tcase_add_test(other, intr_continues);
	tcase_add_test(other, unknown_reasons_fatal);
	tcase_add_test(other, reason_names);
	tcase_add_test(other, small_message_buffer);
	tcase_add_test(bus, bus_add_rules);
	tcase_add_test(bus, bus_full_table);
	tcase_add_test(bus, bus_straddle_and_exact_end);
	tcase_add_test(bus, bus_missing_handlers);
	suite_add_tcase(s, io);
	suite_add_tcase(s, mmio);
	suite_add_tcase(s, other);
	suite_add_tcase(s, bus);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_exit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
