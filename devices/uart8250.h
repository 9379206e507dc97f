/* A 16550A-compatible UART: the guest console (output to a host fd, no input yet). */
#ifndef MINIVM_UART8250_H
#define MINIVM_UART8250_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct snap_writer;
struct snap_cursor;

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ 4
#define UART_NR_REGS 8
#define UART_RX_FIFO 16

struct uart8250 {
	pthread_mutex_t lock;
	int out_fd;   /* console output, -1 discards; not owned */
	int irq_fd;   /* eventfd bound to the UART's GSI; -1 for none; not owned */
	uint8_t ier, iir_pending, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t rx[UART_RX_FIFO];
	unsigned int rx_len;
	char obuf[256]; /* output, flushed at a newline or when full */
	unsigned int olen;
};

/* Initialises the UART. out_fd and irq_fd stay the caller's. */
void uart_init(struct uart8250 *u, int out_fd, int irq_fd);

/* Bus handlers for the 8 registers at UART_COM1_BASE (off 0..7, len 1). */
void uart_read(void *opaque, uint64_t off, void *data, unsigned int len);
void uart_write(void *opaque, uint64_t off, const void *data, unsigned int len);

/* Writes out buffered console output. */
void uart_flush(struct uart8250 *u);

/*
 * Snapshot: the registers and the receive FIFO (console output is flushed,
 * not saved). uart_save appends section (SNAP_TAG_UART, 0); uart_restore
 * reads that section's bytes from c (untrusted: every register is checked
 * against what the model can hold, the whole section must be consumed)
 * before it changes anything. Restore sends no interrupt: the pending one,
 * if any, is in the restored irqchip. 0, or -errno (-EBADMSG truncated or
 * trailing bytes, -EINVAL a value out of range, with a message in err).
 * Call while no vCPU runs.
 */
int uart_save(struct uart8250 *u, struct snap_writer *w) __attribute__((warn_unused_result));
int uart_restore(struct uart8250 *u, struct snap_cursor *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

void uart_destroy(struct uart8250 *u);

#endif
