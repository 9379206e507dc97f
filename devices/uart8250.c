/* A 16550A UART model: enough for Linux's 8250 driver and console. */
#include "devices/uart8250.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/snap.h"

/* Register offsets and bits (PC16550D datasheet). */
enum { UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
       UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7 };
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_BITS 0xc0
#define FCR_ENABLE_FIFO 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_RTS 0x02
#define MCR_DTR 0x01
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void uart_init(struct uart8250 *u, int out_fd, int irq_fd)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->out_fd = out_fd;
	u->irq_fd = irq_fd;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->mcr = MCR_OUT2;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
}

static void uart_flush_locked(struct uart8250 *u)
{
	unsigned int done = 0;

	while (u->out_fd >= 0 && done < u->olen) {
		ssize_t n = write(u->out_fd, u->obuf + done, u->olen - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* console output is best effort: never stall the guest */
		done += (unsigned int)n;
	}
	u->olen = 0;
}

void uart_flush(struct uart8250 *u)
{
	pthread_mutex_lock(&u->lock);
	uart_flush_locked(u);
	pthread_mutex_unlock(&u->lock);
}

/* Recomputes the pending interrupt and pulses the IRQ when one becomes
 * pending (the line is edge-triggered through an irqfd). */
static void uart_update_irq(struct uart8250 *u)
{
	uint8_t pending = 0;

	if ((u->ier & IER_RDI) && u->rx_len)
		pending = IIR_RDI;
	else if ((u->ier & IER_THRI) && (u->lsr & LSR_THRE))
		pending = IIR_THRI;
	if (pending && pending != u->iir_pending && u->irq_fd >= 0) {
		uint64_t one = 1;

		if (write(u->irq_fd, &one, sizeof(one)) < 0) {
			/* eventfd overflow cannot happen with 1s; nothing to do */
		}
	}
	u->iir_pending = pending;
}

static void uart_tx(struct uart8250 *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP) {
		if (u->rx_len < UART_RX_FIFO)
			u->rx[u->rx_len++] = c;
		u->lsr |= LSR_DR;
		return;
	}
	u->obuf[u->olen++] = (char)c;
	if (c == '\n' || u->olen == sizeof(u->obuf))
		uart_flush_locked(u);
}

static uint8_t uart_msr(const struct uart8250 *u)
{
	if (!(u->mcr & MCR_LOOP))
		return u->msr;
	/* Loopback: modem inputs follow the modem outputs (Linux tests this). */
	return (uint8_t)(((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
			 ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
}

void uart_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct uart8250 *u = opaque;
	uint8_t v = 0xff;

	memset(data, 0xff, len);
	if (len != 1 || off >= UART_NR_REGS)
		return;
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
			break;
		}
		v = 0;
		if (u->rx_len) {
			v = u->rx[0];
			memmove(u->rx, u->rx + 1, --u->rx_len);
		}
		if (!u->rx_len)
			u->lsr &= (uint8_t)~LSR_DR;
		uart_update_irq(u);
		break;
	case UART_IER:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case UART_IIR_FCR:
		v = (uint8_t)((u->iir_pending ? u->iir_pending : IIR_NO_INT) |
			      ((u->fcr & FCR_ENABLE_FIFO) ? IIR_FIFO_BITS : 0));
		/* Reading IIR while it reports THRE clears that interrupt. */
		if (u->iir_pending == IIR_THRI)
			u->iir_pending = 0;
		break;
	case UART_LCR:
		v = u->lcr;
		break;
	case UART_MCR:
		v = u->mcr;
		break;
	case UART_LSR:
		v = u->lsr;
		break;
	case UART_MSR:
		v = uart_msr(u);
		break;
	case UART_SCR:
		v = u->scr;
		break;
	}
	pthread_mutex_unlock(&u->lock);
	*(uint8_t *)data = v;
}

void uart_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct uart8250 *u = opaque;
	uint8_t v;

	if (len != 1 || off >= UART_NR_REGS)
		return;
	v = *(const uint8_t *)data;
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		/* Transmission is instant: THR is empty again at once, so a
		 * guest waiting for THRE gets a fresh interrupt. */
		uart_tx(u, v);
		u->iir_pending = 0;
		uart_update_irq(u);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		u->ier = v & 0x0f;
		u->iir_pending = 0;
		uart_update_irq(u);
		break;
	case UART_IIR_FCR:
		u->fcr = v;
		if (v & FCR_CLEAR_RX) {
			u->rx_len = 0;
			u->lsr &= (uint8_t)~LSR_DR;
		}
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	pthread_mutex_unlock(&u->lock);
}

void uart_destroy(struct uart8250 *u)
{
	uart_flush(u);
	pthread_mutex_destroy(&u->lock);
}

#define UART_SNAP_VERSION 1u

/* The byte registers in a fixed order: the section's layout. */
#define UART_SNAP_REGS(u) { &(u)->ier, &(u)->iir_pending, &(u)->lcr, &(u)->mcr, &(u)->lsr, \
			    &(u)->msr, &(u)->scr, &(u)->dll, &(u)->dlm, &(u)->fcr }
#define UART_SNAP_NREGS 10

int uart_save(struct uart8250 *u, struct snap_writer *w)
{
	uint8_t regs[UART_SNAP_NREGS];
	int r;

	pthread_mutex_lock(&u->lock);
	uart_flush_locked(u);
	{
		uint8_t *p[UART_SNAP_NREGS] = UART_SNAP_REGS(u);

		for (unsigned int i = 0; i < UART_SNAP_NREGS; i++)
			regs[i] = *p[i];
	}
	r = snap_begin(w, SNAP_TAG_UART, 0);
	r = r ? r : snap_put_u32(w, UART_SNAP_VERSION);
	r = r ? r : snap_put(w, regs, sizeof(regs));
	r = r ? r : snap_put_u32(w, u->rx_len);
	r = r ? r : snap_put(w, u->rx, sizeof(u->rx));
	r = r ? r : snap_end(w);
	pthread_mutex_unlock(&u->lock);
	return r;
}

int uart_restore(struct uart8250 *u, struct snap_cursor *c, char *err, size_t errlen)
{
	uint8_t regs[UART_SNAP_NREGS], rx[UART_RX_FIFO];
	uint32_t version, rx_len;
	int r;

	r = snap_get_u32(c, &version);
	r = r ? r : snap_get(c, regs, sizeof(regs));
	r = r ? r : snap_get_u32(c, &rx_len);
	r = r ? r : snap_get(c, rx, sizeof(rx));
	if (r || c->left) {
		snprintf(err, errlen, "UART: state %s", r ? "truncated" : "has trailing bytes");
		return -EBADMSG;
	}
	if (version != UART_SNAP_VERSION) {
		snprintf(err, errlen, "UART: state version %u, this minivm reads %u", version,
			 UART_SNAP_VERSION);
		return -EINVAL;
	}
	/* regs: ier, iir_pending, lcr, mcr, lsr, msr, scr, dll, dlm, fcr. What
	 * the model can hold: IER 4 bits, one of its interrupts pending, MCR
	 * 5 bits, LSR only DR/THRE/TEMT (DR iff bytes wait), a FIFO of 16. */
	if ((regs[0] & ~0x0fu) || (regs[1] != 0 && regs[1] != IIR_THRI && regs[1] != IIR_RDI) ||
	    (regs[3] & ~0x1fu) || (regs[4] & ~(unsigned)(LSR_DR | LSR_THRE | LSR_TEMT)) ||
	    rx_len > UART_RX_FIFO || (rx_len == 0 && (regs[4] & LSR_DR))) {
		snprintf(err, errlen, "UART: a register out of range (IER 0x%x, IIR 0x%x, MCR 0x%x, LSR 0x%x, "
			 "%u bytes received)", regs[0], regs[1], regs[3], regs[4], rx_len);
		return -EINVAL;
	}
	pthread_mutex_lock(&u->lock);
	{
		uint8_t *p[UART_SNAP_NREGS] = UART_SNAP_REGS(u);

		for (unsigned int i = 0; i < UART_SNAP_NREGS; i++)
			*p[i] = regs[i];
	}
	memcpy(u->rx, rx, sizeof(rx));
	u->rx_len = rx_len;
	u->olen = 0;
	pthread_mutex_unlock(&u->lock);
	return 0;
}
