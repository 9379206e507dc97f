/* Works out whether the host runs guest kernel code under emulation (HOSTS.md). */
#ifndef MINIVM_PROBE_H
#define MINIVM_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/kvm.h"

/*
 * The decision, as a pure function. The probe guest ran CPUID leaf 1 after
 * KVM_SET_CPUID2 cleared bit `bit` of ECX, a bit the host CPU has. On
 * standard KVM, CPUID is intercepted and the mask holds; on an emulating
 * host (kvm_pvm) the guest saw the host's CPUID, so the bit is still set.
 * Returns true for "emulated". bit >= 32 means no usable bit: not emulated.
 */
bool probe_decide(uint32_t host_ecx, unsigned int bit, uint32_t guest_ecx);

/* Picks the lowest ECX bit of leaf 1 the host CPU has, leaving out the bits
 * KVM sets dynamically (27 OSXSAVE, 31 hypervisor); 32 if none. The probe
 * clears it in the table it gives the guest (measured on kvm_pvm: the guest
 * still sees host bits the table lacks, e.g. SSE3 and POPCNT). */
unsigned int probe_pick_bit(uint32_t host_ecx);

/* Runs the probe guest (a throwaway VM with one page of code). On success
 * *emulated is set; on failure -errno and a message. */
int probe_emulation(const struct kvm_sys *k, bool *emulated, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * The probe's answer, cached per host boot and KVM module load: running the
 * probe VM (create, a memory slot, a vCPU, KVM_RUN, teardown) cost 2 to 30
 * ms of minivm's start-up on the test hosts, for an answer that cannot
 * change until the kvm modules are reloaded. The key (probe_cache_key) is
 * the kernel's boot id and the sysfs inode of every loaded kvm* module
 * (/sys/module/kvm*: a reload makes new ones, and with it possibly new
 * parameters); the record lives in PROBE_CACHE_FILE under
 * /run/minivm (root) or $XDG_RUNTIME_DIR/minivm (others), a directory and
 * file that must belong to the caller and be writable by nobody else.
 */
#define PROBE_CACHE_VERSION 1
#define PROBE_CACHE_FILE "kvm-probe"
#define PROBE_CACHE_KEY_MAX 512

/* The record for key: "minivm-probe VERSION emulated=0|1 KEY\n". Returns its
 * length, or -ENOSPC when out (len bytes) is too small or key holds a newline. */
int probe_cache_format(const char *key, bool emulated, char *out, size_t len)
	__attribute__((warn_unused_result));

/* 0 with *emulated set when text (len bytes, not NUL-terminated) is exactly
 * the record probe_cache_format() makes for key; -ENOENT for anything else
 * (another key or version, a truncated or malformed record). */
int probe_cache_parse(const char *text, size_t len, const char *key, bool *emulated)
	__attribute__((warn_unused_result));

/* This host's key, as above, into key (len bytes); -errno when the boot id
 * cannot be read (then nothing is cached). */
int probe_cache_key(char *key, size_t len) __attribute__((warn_unused_result));

/* The cached answer alone: 0 with *emulated set on a hit (a file read,
 * cheap enough for the main thread), -ENOENT or -errno on a miss. */
int probe_cache_lookup(bool *emulated) __attribute__((warn_unused_result));

/* probe_emulation() through the cache: the cached answer when the record
 * matches this host's key, else the probe guest's, then recorded (a cache
 * that cannot be read or written is skipped, never an error). *cached says
 * which. Call before dropping privileges (the cache directory is the
 * caller's). */
int probe_emulation_cached(const struct kvm_sys *k, bool *emulated, bool *cached, char *err,
			   size_t errlen) __attribute__((warn_unused_result));

#endif
