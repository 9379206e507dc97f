/* libFuzzer target for vmm/jail.c's text parsers: --uid/--gid ids, cgroup.controllers lists, the jailed vsock path. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/jail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[512], out[64];
	const char *second;
	uint32_t id = 0;
	int r;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* The input up to its first NUL, then what follows it. */
	second = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);

	r = jail_parse_id(buf, &id);
	if (r != 0 && r != -EINVAL)
		abort();
	if (r == 0 && (id == 0 || id == UINT32_MAX))
		abort();

	(void)jail_controllers_have(buf, second);
	(void)jail_controllers_have(second, buf);

	r = jail_vsock_path(buf, second, out, sizeof(out));
	if (r == 0) {
		/* Always one absolute name, directly at / or in /vsock. */
		if (out[0] != '/' || !memchr(out, '\0', sizeof(out)))
			abort();
		if (strchr(out + 1, '/') && strncmp(out, "/vsock/", 7))
			abort();
	} else if (r != -EINVAL && r != -ENAMETOOLONG) {
		abort();
	}
	return 0;
}
