/* libFuzzer target for vmm/runc_spec.c: config.json, process.json and state.json parsers; any bytes parse or fail cleanly with a message, and what parses re-serializes. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/runc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct runc_spec s;
	static struct runc_state st;
	const char *buf = (const char *)data;
	char err[512], *out;
	uint64_t mem;
	unsigned int cpus;

	err[0] = '\0';
	if (runc_spec_parse(buf, size, &s, err, sizeof(err)) == 0) {
		assert(s.process.nargs >= 1 && s.process.args[s.process.nargs] == NULL);
		assert(s.process.cwd[0] == '/');
		assert(s.root_path && s.root_path[0]);
		for (unsigned int i = 0; i < s.nmounts; i++)
			assert(s.mounts[i].destination[0] == '/');
		if (runc_spec_vm_size(&s, &mem, &cpus, err, sizeof(err)) == 0) {
			assert(cpus <= RUNC_MAX_CPUS);
			assert(mem == 0 || mem >= (32ULL << 20));
		}
		runc_spec_free(&s);
	} else {
		assert(err[0]);
	}
	err[0] = '\0';
	if (runc_process_parse(buf, size, &s, err, sizeof(err)) == 0)
		runc_spec_free(&s);
	else
		assert(err[0]);
	err[0] = '\0';
	if (runc_state_parse(buf, size, &st, err, sizeof(err)) == 0) {
		assert(st.pid > 0);
		if (runc_state_json(&st, "running", &out) == 0)
			free(out);
		runc_state_free(&st);
	} else {
		assert(err[0]);
	}
	return 0;
}
