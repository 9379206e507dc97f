/* libFuzzer target for vmm/json.c and vmm/sbom.c: any bytes parse or fail cleanly; a parsed SBOM is sorted, unique and normalised. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/json.h"
#include "vmm/sbom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks every node: children counts match the links, strings are C strings. */
static void walk(const struct json_doc *d, const struct json_node *n, unsigned int depth)
{
	uint32_t count = 0;

	assert(depth <= 64);
	if (n->type == JSON_STRING || n->type == JSON_NUMBER)
		assert(n->str && strlen(n->str) == n->len);
	for (const struct json_node *c = json_first(d, n); c; c = json_next(d, c)) {
		assert(n->type == JSON_ARRAY || n->type == JSON_OBJECT);
		assert((c->key != NULL) == (n->type == JSON_OBJECT));
		if (c->key)
			assert(strlen(c->key) == c->key_len);
		walk(d, c, depth + 1);
		count++;
	}
	assert(count == n->count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct json_doc *d;
	struct sbom *s;

	if (json_parse((const char *)data, size, NULL, &d, err, sizeof(err)) == 0) {
		walk(d, json_root(d), 0);
		json_free(d);
	} else {
		assert(d == NULL && err[0]);
	}
	if (sbom_parse((const char *)data, size, &s, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < s->nr_files; i++) {
			const struct sbom_file *f = &s->files[i];

			assert(f->path[0] == '/' && f->package && f->version && f->mode <= 07777);
			assert(i == 0 || strcmp(s->files[i - 1].path, f->path) < 0);
			assert(sbom_find(s, f->path) == f);
			assert((f->type == SBOM_SYMLINK) == (f->target != NULL));
		}
		sbom_free(s);
	} else {
		assert(s == NULL && err[0]);
	}
	return 0;
}
