/* libFuzzer target for vmm/fstree.c over rootfs/agent/tar.c: any bytes as two OCI layers into one tree, never a crash; the tree's tar reads back into an equal tree. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/fstree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint64_t bytes;
	uint8_t *keep; /* the first KEEP_MAX bytes, to read back */
	size_t kept;
};

#define KEEP_MAX (1 << 20)

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;

	assert(len > 0);
	s->bytes += len;
	if (s->keep && s->kept + len <= KEEP_MAX) {
		memcpy(s->keep + s->kept, buf, len);
		s->kept += len;
	} else {
		s->kept = KEEP_MAX + 1; /* too big: no read back */
	}
	return 0;
}

/* One layer; the tree may refuse it (its message set) but must stay whole. */
static void layer(struct fstree *t, const uint8_t *p, size_t len, bool oci)
{
	struct tar_reader *r;
	int rc;

	if (tar_reader_new(&fstree_tar_ops, t, &r))
		return;
	fstree_layer_begin(t, oci);
	rc = tar_reader_feed(r, p, len);
	if (rc == 0)
		rc = tar_reader_finish(r);
	if (rc)
		assert(tar_reader_error(r)[0]);
	(void)fstree_layer_end(t);
	tar_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fstree_limits lim = { .max_nodes = 2000, .max_bytes = 1 << 20 };
	struct sink s = { 0 }, s2 = { 0 };
	struct fstree *t, *t2;
	char err[256];
	size_t split = size ? (size_t)data[0] * 257 % (size + 1) : 0;

	if (fstree_new("/tmp", &lim, &t, err, sizeof(err)))
		return 0;
	layer(t, data, split, true);
	layer(t, data + split, size - split, true);
	assert(fstree_nodes(t) >= 1 && fstree_nodes(t) <= lim.max_nodes);
	s.keep = malloc(KEEP_MAX);
	if (fstree_write_tar(t, NULL, sink_write, &s) == 0 && s.keep && s.kept <= KEEP_MAX &&
	    fstree_new("/tmp", &lim, &t2, err, sizeof(err)) == 0) {
		/* Read back (not OCI: a ".wh." name kept by oci=false is no whiteout now either,
		 * but none survive an OCI layer) and written again: the same bytes. */
		layer(t2, s.keep, s.kept, false);
		assert(fstree_error(t2)[0] == '\0');
		assert(fstree_nodes(t2) == fstree_nodes(t));
		s2.keep = malloc(KEEP_MAX);
		if (s2.keep && fstree_write_tar(t2, NULL, sink_write, &s2) == 0 && s2.kept <= KEEP_MAX)
			assert(s2.kept == s.kept && memcmp(s.keep, s2.keep, s.kept) == 0);
		free(s2.keep);
		fstree_free(t2);
	}
	free(s.keep);
	fstree_free(t);
	return 0;
}
