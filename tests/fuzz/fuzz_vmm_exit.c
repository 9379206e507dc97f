/* libFuzzer target for vmm/exit.c: any 4096-byte kvm_run page must not make exit_handle() touch memory outside it. */
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/exit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_PAGE 4096

/* The exit reasons worth steering to (byte 0 of the input picks one; the
 * last slot keeps whatever the page says). */
static const uint32_t fz_reasons[] = {
	KVM_EXIT_IO,       KVM_EXIT_IO,     KVM_EXIT_IO,            KVM_EXIT_MMIO,
	KVM_EXIT_MMIO,     KVM_EXIT_INTR,   KVM_EXIT_SHUTDOWN,      KVM_EXIT_SYSTEM_EVENT,
	KVM_EXIT_HLT,      KVM_EXIT_DEBUG,  KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_FAIL_ENTRY,
};

struct fz_dev {
	uint64_t len;
	unsigned int calls;
};

static void fz_check(const struct fz_dev *d, uint64_t off, unsigned int len)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		abort();
	if (off >= d->len || len > d->len - off)
		abort();
}

static void fz_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct fz_dev *d = opaque;

	fz_check(d, off, len);
	d->calls++;
	/* Answers that look like counts and offsets, to tempt re-reads. */
	memset(data, (int)(0x80 | (off & 0x7f)), len);
}

static void fz_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct fz_dev *d = opaque;
	volatile uint8_t sink = 0;

	fz_check(d, off, len);
	d->calls++;
	for (unsigned int i = 0; i < len; i++)
		sink ^= ((const uint8_t *)data)[i]; /* ASan checks the bytes handed over */
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_dev uart = { 8, 0 }, kbd = { 5, 0 }, virtio = { 0x200, 0 };
	static struct bus pio, mmio;
	static int ready;
	struct exit_env env = { &pio, &mmio };
	struct kvm_run *run;
	enum exit_action a;
	char msg[160];

	if (!ready) {
		if (bus_add(&pio, 0x3f8, 8, fz_read, fz_write, &uart) ||
		    bus_add(&pio, 0x60, 5, fz_read, fz_write, &kbd) ||
		    bus_add(&mmio, 0xd0000000ULL, 0x200, fz_read, fz_write, &virtio))
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	/* Exactly one page on the heap, so ASan sees any access past it. */
	run = calloc(1, FZ_PAGE);
	if (!run)
		return 0;
	memcpy(run, data + 1, size - 1 < FZ_PAGE ? size - 1 : FZ_PAGE);
	if (data[0] < sizeof(fz_reasons) / sizeof(fz_reasons[0]))
		run->exit_reason = fz_reasons[data[0]];

	memset(msg, 'X', sizeof(msg));
	a = exit_handle(run, FZ_PAGE, &env, msg, sizeof(msg));
	if (a != EXIT_CONTINUE && a != EXIT_RESET && a != EXIT_CRASH && a != EXIT_FATAL)
		abort();
	if (memchr(msg, '\0', sizeof(msg)) == NULL)
		abort();
	if (a == EXIT_FATAL && msg[0] == '\0')
		abort(); /* a fatal exit always says why */
	free(run);
	return 0;
}
