/* libFuzzer target for vmm/gitignore.c: any .gitignore bytes parse or fail cleanly, matching any path terminates, and nothing below an ignored directory is kept. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/gitignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: "RULES\0DIR\0SUBRULES\0PATH\0PATH..." The rules go to the top
 * .gitignore, SUBRULES to DIR's; each PATH (a trailing '/' meaning a
 * directory) is matched, and so is each of its parents.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *part[3] = { "", "", "" };
	size_t plen[3] = { 0, 0, 0 };
	struct gitignore *g;
	char err[256];
	char *buf;

	for (int i = 0; i < 3 && p < end; i++) {
		const char *z = memchr(p, '\0', (size_t)(end - p));

		part[i] = p;
		plen[i] = z ? (size_t)(z - p) : (size_t)(end - p);
		p += plen[i] + (z ? 1 : 0);
	}
	if (gi_new(&g))
		return 0;
	if (gi_add(g, "", part[0], plen[0], err, sizeof(err)) == 0)
		assert(gi_rules(g) <= GI_RULES_MAX);
	else
		assert(err[0]);
	buf = strndup(part[1], plen[1]);
	if (buf && gi_add(g, buf, part[2], plen[2], err, sizeof(err)) != 0)
		assert(err[0]);
	free(buf);

	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
		char *path = strndup(p, len);
		bool dir = false, parent_ign = false;

		p += len + (z ? 1 : 0);
		if (!path)
			break;
		if (len && path[len - 1] == '/') {
			path[--len] = '\0';
			dir = true;
		}
		if (len && !strstr(path, "//") && path[0] != '/' && path[len - 1] != '/') {
			for (size_t i = 0; i < len; i++) {
				if (path[i] != '/')
					continue;
				path[i] = '\0';
				parent_ign = parent_ign || gi_ignored(g, path, true);
				path[i] = '/';
			}
			if (parent_ign)
				assert(gi_ignored(g, path, dir));
		}
		free(path);
	}
	gi_free(g);
	return 0;
}
