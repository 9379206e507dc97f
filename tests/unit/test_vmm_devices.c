/* Unit tests for devices/uart8250.c and devices/i8042.c through their bus handlers. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/i8042.h"
#include "devices/uart8250.h"
#include "vmm/bus.h"

/* UART register offsets (PC16550D). */
enum { R_THR = 0, R_IER = 1, R_IIR = 2, R_FCR = 2, R_LCR = 3, R_MCR = 4, R_LSR = 5, R_MSR = 6,
       R_SCR = 7 };

static struct uart8250 t_uart;
static int t_pipe[2] = { -1, -1 };
static int t_efd = -1;

static void uart_setup(void)
{
	ck_assert_int_eq(pipe2(t_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	t_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(t_efd, 0);
	uart_init(&t_uart, t_pipe[1], t_efd);
}

static void uart_teardown(void)
{
	uart_destroy(&t_uart);
	close(t_pipe[0]);
	close(t_pipe[1]);
	close(t_efd);
}

static uint8_t rd(uint64_t off)
{
	uint8_t v = 0x5a;

	uart_read(&t_uart, off, &v, 1);
	return v;
}

static void wr(uint64_t off, uint8_t v)
{
	uart_write(&t_uart, off, &v, 1);
}

/* Everything in the pipe so far (NUL-terminated), or "" when empty. */
static const char *drain(void)
{
	static char out[1024];
	ssize_t n = read(t_pipe[0], out, sizeof(out) - 1);

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		n = 0;
	}
	out[n] = '\0';
	return out;
}

/* The eventfd's counter since the last call (0 when not signalled). */
static uint64_t irqs(void)
{
	uint64_t v = 0;

	if (read(t_efd, &v, sizeof(v)) < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	return v;
}

START_TEST(uart_thr_to_pipe)
{
	wr(R_THR, 'h');
	wr(R_THR, 'i');
	/* Buffered until a newline. */
	ck_assert_str_eq(drain(), "");
	wr(R_THR, '\n');
	ck_assert_str_eq(drain(), "hi\n");
	/* uart_flush() writes out a partial line. */
	wr(R_THR, 'o');
	wr(R_THR, 'k');
	ck_assert_str_eq(drain(), "");
	uart_flush(&t_uart);
	ck_assert_str_eq(drain(), "ok");
	/* Nothing raised an interrupt: IER is 0. */
	ck_assert_uint_eq(irqs(), 0);
}
END_TEST

START_TEST(uart_full_buffer_flushes)
{
	const char *out;

	for (unsigned int i = 0; i < sizeof(t_uart.obuf); i++)
		wr(R_THR, (uint8_t)('a' + i % 26));
	out = drain();
	ck_assert_uint_eq(strlen(out), sizeof(t_uart.obuf));
	ck_assert_int_eq(out[0], 'a');
	ck_assert_int_eq(out[26], 'a');
	wr(R_THR, 'Z');
	uart_flush(&t_uart);
	ck_assert_str_eq(drain(), "Z");
}
END_TEST

START_TEST(uart_lsr_and_msr)
{
	ck_assert_uint_eq(rd(R_LSR), 0x60); /* THRE | TEMT, no data */
	wr(R_THR, 'x');
	ck_assert_uint_eq(rd(R_LSR), 0x60);
	/* LSR and MSR are read-only */
	wr(R_LSR, 0x00);
	ck_assert_uint_eq(rd(R_LSR), 0x60);
	ck_assert_uint_eq(rd(R_MSR), 0xb0); /* DCD | DSR | CTS */
	wr(R_MSR, 0x00);
	ck_assert_uint_eq(rd(R_MSR), 0xb0);
}
END_TEST

START_TEST(uart_scratch)
{
	ck_assert_uint_eq(rd(R_SCR), 0);
	wr(R_SCR, 0xa5);
	ck_assert_uint_eq(rd(R_SCR), 0xa5);
	wr(R_SCR, 0x5a);
	ck_assert_uint_eq(rd(R_SCR), 0x5a);
}
END_TEST

START_TEST(uart_dlab_latches)
{
	wr(R_IER, 0x01);
	wr(R_LCR, 0x83); /* DLAB, 8N1 */
	ck_assert_uint_eq(rd(R_LCR), 0x83);
	wr(R_THR, 0x0c); /* DLL: 9600 baud */
	wr(R_IER, 0x34); /* DLM */
	ck_assert_uint_eq(rd(R_THR), 0x0c);
	ck_assert_uint_eq(rd(R_IER), 0x34);
	wr(R_LCR, 0x03);
	/* The latch writes went neither to the console nor to IER. */
	uart_flush(&t_uart);
	ck_assert_str_eq(drain(), "");
	ck_assert_uint_eq(rd(R_IER), 0x01);
	ck_assert_uint_eq(rd(R_THR), 0); /* RBR, empty */
	/* The latches keep their values. */
	wr(R_LCR, 0x80);
	ck_assert_uint_eq(rd(R_THR), 0x0c);
	ck_assert_uint_eq(rd(R_IER), 0x34);
}
END_TEST

START_TEST(uart_loopback_msr)
{
	/* Linux's 8250 probe: MCR = LOOP | OUT2 | RTS, expects MSR & 0xf0 == 0x90. */
	wr(R_MCR, 0x1a);
	ck_assert_uint_eq(rd(R_MCR), 0x1a);
	ck_assert_uint_eq(rd(R_MSR) & 0xf0, 0x90);
	wr(R_MCR, 0x1f);
	ck_assert_uint_eq(rd(R_MSR) & 0xf0, 0xf0);
	wr(R_MCR, 0x10);
	ck_assert_uint_eq(rd(R_MSR) & 0xf0, 0x00);
	wr(R_MCR, 0x11); /* DTR -> DSR */
	ck_assert_uint_eq(rd(R_MSR) & 0xf0, 0x20);
	wr(R_MCR, 0x14); /* OUT1 -> RI */
	ck_assert_uint_eq(rd(R_MSR) & 0xf0, 0x40);
	/* Leaving loopback restores the static lines. */
	wr(R_MCR, 0x0b);
	ck_assert_uint_eq(rd(R_MSR), 0xb0);
}
END_TEST

START_TEST(uart_loopback_data)
{
	wr(R_MCR, 0x10);
	wr(R_THR, 'q');
	ck_assert_uint_eq(rd(R_LSR) & 0x01, 0x01); /* DR */
	ck_assert_uint_eq(rd(R_THR), 'q');
	ck_assert_uint_eq(rd(R_LSR) & 0x01, 0x00);
	uart_flush(&t_uart);
	ck_assert_str_eq(drain(), "");
}
END_TEST

START_TEST(uart_thri_interrupt)
{
	ck_assert_uint_eq(rd(R_IIR), 0x01);
	ck_assert_uint_eq(irqs(), 0);
	/* Enabling THRI with THR empty raises the interrupt at once. */
	wr(R_IER, 0x02);
	ck_assert_uint_eq(irqs(), 1);
	ck_assert_uint_eq(rd(R_IIR), 0x02);
	/* Reading IIR cleared it. */
	ck_assert_uint_eq(rd(R_IIR), 0x01);
	ck_assert_uint_eq(irqs(), 0);
	/* A transmitted byte empties THR again: a fresh interrupt. */
	wr(R_THR, 'x');
	ck_assert_uint_eq(irqs(), 1);
	ck_assert_uint_eq(rd(R_IIR), 0x02);
	ck_assert_uint_eq(rd(R_IIR), 0x01);
	/* Disabling it: nothing more. */
	wr(R_IER, 0x00);
	wr(R_THR, 'y');
	ck_assert_uint_eq(irqs(), 0);
	ck_assert_uint_eq(rd(R_IIR), 0x01);
	/* IER keeps only its 4 defined bits. */
	wr(R_IER, 0xf0);
	ck_assert_uint_eq(rd(R_IER), 0x00);
	ck_assert_uint_eq(irqs(), 0);
}
END_TEST

START_TEST(uart_fifo_bits)
{
	wr(R_FCR, 0x01);
	ck_assert_uint_eq(rd(R_IIR), 0xc1);
	wr(R_IER, 0x02);
	ck_assert_uint_eq(rd(R_IIR), 0xc2);
	ck_assert_uint_eq(rd(R_IIR), 0xc1);
	wr(R_FCR, 0x00);
	ck_assert_uint_eq(rd(R_IIR), 0x01);
}
END_TEST

START_TEST(uart_bad_lengths)
{
	uint8_t d[8];
	uint8_t scr = 0x11;

	wr(R_SCR, scr);
	for (unsigned int len = 2; len <= 8; len *= 2) {
		memset(d, 0, sizeof(d));
		uart_read(&t_uart, R_SCR, d, len);
		for (unsigned int i = 0; i < len; i++)
			ck_assert_uint_eq(d[i], 0xff);
		for (unsigned int i = len; i < sizeof(d); i++)
			ck_assert_uint_eq(d[i], 0);
		/* writes of bad length are ignored */
		memset(d, 0x77, sizeof(d));
		uart_write(&t_uart, R_SCR, d, len);
		ck_assert_uint_eq(rd(R_SCR), scr);
	}
	/* offsets past the 8 registers */
	ck_assert_uint_eq(rd(8), 0xff);
	ck_assert_uint_eq(rd(UINT64_MAX), 0xff);
	wr(8, 'x');
	uart_flush(&t_uart);
	ck_assert_str_eq(drain(), "");
}
END_TEST

START_TEST(uart_through_bus)
{
	struct bus b;
	uint8_t v = 0;

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(bus_add(&b, UART_COM1_BASE, UART_NR_REGS, uart_read, uart_write, &t_uart),
			 0);
	ck_assert_int_eq(bus_write(&b, UART_COM1_BASE + R_SCR, "\x42", 1), 1);
	ck_assert_int_eq(bus_read(&b, UART_COM1_BASE + R_SCR, &v, 1), 1);
	ck_assert_uint_eq(v, 0x42);
	ck_assert_int_eq(bus_write(&b, UART_COM1_BASE, "!", 1), 1);
	ck_assert_int_eq(bus_write(&b, UART_COM1_BASE, "\n", 1), 1);
	ck_assert_str_eq(drain(), "!\n");
	ck_assert_int_eq(bus_read(&b, UART_COM1_BASE + UART_NR_REGS, &v, 1), 0);
	ck_assert_uint_eq(v, 0xff);
}
END_TEST

START_TEST(uart_without_fds)
{
	struct uart8250 u;
	uint8_t v = '\n';

	uart_init(&u, -1, -1);
	uart_write(&u, R_IER, "\x02", 1);
	for (int i = 0; i < 600; i++)
		uart_write(&u, R_THR, &v, 1);
	uart_read(&u, R_IIR, &v, 1);
	ck_assert_uint_eq(v, 0x02);
	uart_destroy(&u);
}
END_TEST

/* ---- i8042 ---- */

static int t_resets;

static void count_reset(void *opaque)
{
	ck_assert_ptr_eq(opaque, &t_resets);
	t_resets++;
}

START_TEST(i8042_reset_once)
{
	struct i8042 k;
	uint8_t v;

	t_resets = 0;
	i8042_init(&k, count_reset, &t_resets);
	v = I8042_CMD_RESET;
	i8042_write(&k, I8042_CMD_PORT - I8042_DATA_PORT, &v, 1);
	ck_assert_int_eq(t_resets, 1);
}
END_TEST

START_TEST(i8042_other_writes_ignored)
{
	struct i8042 k;
	uint8_t v;

	t_resets = 0;
	i8042_init(&k, count_reset, &t_resets);
	for (unsigned int x = 0; x < 256; x++) {
		v = (uint8_t)x;
		if (x != I8042_CMD_RESET)
			i8042_write(&k, 4, &v, 1);
		/* the reset command on the data port or other offsets */
		v = I8042_CMD_RESET;
		if (x < 4)
			i8042_write(&k, x, &v, 1);
	}
	/* a wider write holding 0xfe is not the 1-byte command */
	i8042_write(&k, 4, "\xfe\x00", 2);
	i8042_write(&k, 4, "\xfe\x00\x00\x00", 4);
	ck_assert_int_eq(t_resets, 0);
	/* no callback: nothing happens */
	i8042_init(&k, NULL, NULL);
	v = I8042_CMD_RESET;
	i8042_write(&k, 4, &v, 1);
}
END_TEST

START_TEST(i8042_reads_zero)
{
	struct i8042 k;
	uint8_t d[4];

	i8042_init(&k, count_reset, &t_resets);
	for (uint64_t off = 0; off < 5; off++) {
		memset(d, 0xaa, sizeof(d));
		i8042_read(&k, off, d, 1);
		ck_assert_uint_eq(d[0], 0);
		ck_assert_uint_eq(d[1], 0xaa);
	}
	memset(d, 0xaa, sizeof(d));
	i8042_read(&k, 4, d, 4);
	ck_assert_mem_eq(d, "\0\0\0\0", 4);
}
END_TEST

START_TEST(i8042_through_bus)
{
	struct i8042 k;
	struct bus b;
	uint8_t v = 0x55;

	t_resets = 0;
	memset(&b, 0, sizeof(b));
	i8042_init(&k, count_reset, &t_resets);
	ck_assert_int_eq(bus_add(&b, I8042_DATA_PORT, 5, i8042_read, i8042_write, &k), 0);
	ck_assert_int_eq(bus_read(&b, I8042_CMD_PORT, &v, 1), 1);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bus_write(&b, I8042_DATA_PORT, "\xfe", 1), 1);
	ck_assert_int_eq(t_resets, 0);
	ck_assert_int_eq(bus_write(&b, I8042_CMD_PORT, "\xfe", 1), 1);
	ck_assert_int_eq(t_resets, 1);
}
END_TEST

static Suite *vmm_devices_suite(void)
{
	Suite *s = suite_create("vmm_devices");
	TCase *uart = tcase_create("uart8250");
	TCase *kbd = tcase_create("i8042");

	tcase_add_checked_fixture(uart, uart_setup, uart_teardown);
	tcase_add_test(uart, uart_thr_to_pipe);
	tcase_add_test(uart, uart_full_buffer_flushes);
	tcase_add_test(uart, uart_lsr_and_msr);
	tcase_add_test(uart, uart_scratch);
	tcase_add_test(uart, uart_dlab_latches);
	tcase_add_test(uart, uart_loopback_msr);
	tcase_add_test(uart, uart_loopback_data);
	tcase_add_test(uart, uart_thri_interrupt);
	tcase_add_test(uart, uart_fifo_bits);
	tcase_add_test(uart, uart_bad_lengths);
	tcase_add_test(uart, uart_through_bus);
	tcase_add_test(uart, uart_without_fds);
	tcase_add_test(kbd, i8042_reset_once);
	tcase_add_test(kbd, i8042_other_writes_ignored);
	tcase_add_test(kbd, i8042_reads_zero);
	tcase_add_test(kbd, i8042_through_bus);
	suite_add_tcase(s, uart);
	suite_add_tcase(s, kbd);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vmm_devices_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
