/* libFuzzer target for vmm/oci_parse.c: image index, manifest and config parsers and references; any bytes parse or fail cleanly with a message. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool hex_ok(const char *h)
{
	if (strlen(h) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct oci_manifest m;
	const char *buf = (const char *)data;
	struct oci_config *c;
	struct oci_desc d;
	struct oci_ref r;
	char err[256], *s;

	err[0] = '\0';
	if (oci_index_select(buf, size, NULL, false, &d, err, sizeof(err)) == 0)
		assert(hex_ok(d.hex));
	else
		assert(err[0]);
	err[0] = '\0';
	if (oci_index_select(buf, size, "latest", false, &d, err, sizeof(err)) == 0)
		assert(hex_ok(d.hex));
	else
		assert(err[0]);
	if (oci_index_select(buf, size, NULL, true, &d, err, sizeof(err)) == 0)
		assert(hex_ok(d.hex));
	err[0] = '\0';
	if (oci_manifest_parse(buf, size, &m, err, sizeof(err)) == 0) {
		assert(hex_ok(m.config.hex) && m.nr_layers <= OCI_MAX_LAYERS);
		for (uint32_t i = 0; i < m.nr_layers; i++)
			assert(hex_ok(m.layers[i].hex) && m.layers[i].size < (1ull << 53));
	} else {
		assert(err[0]);
	}
	err[0] = '\0';
	if (oci_config_parse(buf, size, &c, err, sizeof(err)) == 0) {
		for (uint32_t i = 0; i < c->nr_diff_ids; i++)
			assert(hex_ok(c->diff_ids[i]));
		for (uint32_t i = 0; i < c->nr_env; i++)
			assert(strchr(c->env[i], '='));
		oci_config_free(c);
	} else {
		assert(c == NULL && err[0]);
	}
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (oci_ref_parse(s, &r, err, sizeof(err)) == 0) {
		assert(r.path[0] && (r.kind == OCI_REF_DIR || r.kind == OCI_REF_ARCHIVE));
		assert(!r.tag[0] || oci_tag_valid(r.tag));
	}
	free(s);
	return 0;
}
