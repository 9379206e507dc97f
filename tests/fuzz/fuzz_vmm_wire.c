/* libFuzzer target for vmm/vmm_wire.c's decoder: any bytes decode or are refused with a message; whatever decodes encodes again and decodes to the same configuration. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The same strings (both NULL, or equal). */
static void same_str(const char *a, const char *b)
{
	assert((a == NULL) == (b == NULL));
	assert(!a || strcmp(a, b) == 0);
}

/* What decodes must survive a second round: encode, decode, compare. */
static void round_trip(const struct vmm_wire_config *w)
{
	struct vmm_wire_config w2;
	uint8_t *buf;
	size_t len;
	char err[256];

	assert(vmm_wire_encode(&w->cfg, &w->jail, w->jail_dir, &buf, &len, err, sizeof(err)) == 0);
	assert(vmm_wire_decode(buf, len, &w2, err, sizeof(err)) == 0);
	same_str(w->jail_dir, w2.jail_dir);
	same_str(w->cfg.kernel, w2.cfg.kernel);
	same_str(w->cfg.console, w2.cfg.console);
	same_str(w->cfg.net.policy_file, w2.cfg.net.policy_file);
	assert(w->cfg.nr_disks == w2.cfg.nr_disks && w->cfg.net.nr_allow == w2.cfg.net.nr_allow);
	for (unsigned int i = 0; i < w->cfg.nr_disks; i++)
		same_str(w->cfg.disks[i].path, w2.cfg.disks[i].path);
	for (unsigned int i = 0; i < w->cfg.net.nr_allow; i++)
		same_str(w->cfg.net.allow[i], w2.cfg.net.allow[i]);
	assert(w->cfg.nr_snapshot_disks == w2.cfg.nr_snapshot_disks);
	assert(!w->cfg.nr_snapshot_disks ||
	       memcmp(w->snapshot_disks, w2.snapshot_disks,
		      w->cfg.nr_snapshot_disks * sizeof(w->snapshot_disks[0])) == 0);
	assert(w->cfg.mem_bytes == w2.cfg.mem_bytes && w->jail.mode == w2.jail.mode);
	vmm_wire_free(&w2);
	free(buf);
}

/*
 * The input is the message itself, or, when its first byte is odd, a body
 * to which a valid header is prefixed (so the fuzzer gets past the length
 * check to the fields).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_wire_config w;
	uint8_t *buf;
	size_t len = size;
	char err[256];

	if (size > VMM_WIRE_MAX_SIZE)
		return 0;
	buf = malloc(size + VMM_WIRE_HDR_SIZE + 1);
	if (!buf)
		return 0;
	if (size && (data[0] & 1)) {
		uint32_t hdr[3] = { VMM_WIRE_MAGIC, VMM_WIRE_VERSION, (uint32_t)(size - 1) };

		memcpy(buf, hdr, sizeof(hdr)); /* little-endian hosts only (virtio_spec.h) */
		memcpy(buf + VMM_WIRE_HDR_SIZE, data + 1, size - 1);
		len = size - 1 + VMM_WIRE_HDR_SIZE;
	} else if (size) {
		memcpy(buf, data, size);
	}
	err[0] = '\0';
	if (vmm_wire_decode(buf, len, &w, err, sizeof(err)) == 0) {
		round_trip(&w);
		vmm_wire_free(&w);
	} else {
		assert(err[0] && memchr(err, '\0', sizeof(err)));
	}
	free(buf);
	return 0;
}
