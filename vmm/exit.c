/* vCPU exit handling: dispatch of PIO/MMIO, and what every other exit means. */
#include "vmm/exit.h"

#include <stdio.h>
#include <string.h>

const char *exit_reason_name(unsigned int reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_OSI] = "OSI",
		[KVM_EXIT_WATCHDOG] = "WATCHDOG",
		[KVM_EXIT_EPR] = "EPR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
		[KVM_EXIT_HYPERV] = "HYPERV",
	};

	if (reason < sizeof(names) / sizeof(names[0]))
		return names[reason];
	return NULL;
}

enum exit_kind exit_kind_of(unsigned int reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return EXIT_K_IO;
	case KVM_EXIT_MMIO: return EXIT_K_MMIO;
	case KVM_EXIT_INTR: return EXIT_K_INTR;
	case KVM_EXIT_HLT: return EXIT_K_HLT;
	case KVM_EXIT_SHUTDOWN: return EXIT_K_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT: return EXIT_K_SYSTEM_EVENT;
	case KVM_EXIT_INTERNAL_ERROR: return EXIT_K_INTERNAL_ERROR;
	case KVM_EXIT_FAIL_ENTRY: return EXIT_K_FAIL_ENTRY;
	default: return EXIT_K_OTHER;
	}
}

const char *exit_kind_name(enum exit_kind k)
{
	static const char *const names[EXIT_K_COUNT] = {
		[EXIT_K_IO] = "io",
		[EXIT_K_MMIO] = "mmio",
		[EXIT_K_INTR] = "intr",
		[EXIT_K_HLT] = "hlt",
		[EXIT_K_SHUTDOWN] = "shutdown",
		[EXIT_K_SYSTEM_EVENT] = "system_event",
		[EXIT_K_INTERNAL_ERROR] = "internal_error",
		[EXIT_K_FAIL_ENTRY] = "fail_entry",
		[EXIT_K_OTHER] = "other",
	};

	return (unsigned int)k < EXIT_K_COUNT ? names[k] : "other";
}

static enum exit_action exit_io(struct kvm_run *run, size_t run_size, const struct exit_env *env,
				char *msg, size_t msglen)
{
	/* The run page is shared and the device's answer is written into it:
	 * copy the header once, check it, then use only the copies. */
	const uint8_t dir = run->io.direction;
	const uint8_t size = run->io.size;
	const uint16_t port = run->io.port;
	const uint32_t count = run->io.count;
	const uint64_t off = run->io.data_offset;
	uint64_t bytes, end;
	uint8_t *data;

	if ((size != 1 && size != 2 && size != 4) ||
	    (dir != KVM_EXIT_IO_IN && dir != KVM_EXIT_IO_OUT) ||
	    __builtin_mul_overflow((uint64_t)size, (uint64_t)count, &bytes) ||
	    __builtin_add_overflow(off, bytes, &end) || end > run_size ||
	    off < sizeof(struct kvm_run)) {
		snprintf(msg, msglen,
			 "bad IO exit: port 0x%x direction %u size %u count %u offset %llu", port,
			 dir, size, count, (unsigned long long)off);
		return EXIT_FATAL;
	}
	data = (uint8_t *)run + off;
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (dir == KVM_EXIT_IO_OUT)
			bus_write(env->pio, port, data, size);
		else
			bus_read(env->pio, port, data, size);
	}
	return EXIT_CONTINUE;
}

static enum exit_action exit_mmio(struct kvm_run *run, char *msg, size_t msglen)
{
	unsigned int len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data)) {
		snprintf(msg, msglen, "bad MMIO exit: address 0x%llx length %u",
			 (unsigned long long)run->mmio.phys_addr, len);
		return EXIT_FATAL;
	}
	return EXIT_CONTINUE;
}

enum exit_action exit_handle(struct kvm_run *run, size_t run_size, const struct exit_env *env,
			     char *msg, size_t msglen)
{
	const char *name = exit_reason_name(run->exit_reason);

	if (msglen)
		msg[0] = '\0';
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return exit_io(run, run_size, env, msg, msglen);
	case KVM_EXIT_MMIO:
		if (exit_mmio(run, msg, msglen) != EXIT_CONTINUE)
			return EXIT_FATAL;
		if (run->mmio.is_write)
			bus_write(env->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
		else
			bus_read(env->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
		return EXIT_CONTINUE;
	case KVM_EXIT_INTR:
		/* A signal kicked the vCPU; the loop checks whether to stop. */
		return EXIT_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		/* Triple fault (or a shutdown the guest asked for): a reset with
		 * no chance to write a status; the caller decides by whether one
		 * was written. */
		return EXIT_CRASH;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_RESET:
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			return EXIT_RESET;
		case KVM_SYSTEM_EVENT_CRASH:
			return EXIT_CRASH;
		default:
			snprintf(msg, msglen, "unexpected KVM exit SYSTEM_EVENT type %u",
				 run->system_event.type);
			return EXIT_FATAL;
		}
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; minivm always has one, so a
		 * halt here means the guest stopped for good. */
		return EXIT_CRASH;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(msg, msglen, "KVM exit INTERNAL_ERROR suberror %u%s", run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				 ? " (instruction emulation failed)"
				 : "");
		return EXIT_FATAL;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(msg, msglen, "KVM exit FAIL_ENTRY hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return EXIT_FATAL;
	default:
		if (name)
			snprintf(msg, msglen, "unexpected KVM exit %s (%u)", name, run->exit_reason);
		else
			snprintf(msg, msglen, "unexpected KVM exit reason %u", run->exit_reason);
		return EXIT_FATAL;
	}
}
