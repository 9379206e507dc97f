/* libFuzzer target for vmm/fstree.c over rootfs/agent/tar.c: any bytes as two OCI layers (or, first byte odd, as compact fstree_add records that skip tar's checksums) into one tree, never a crash; the tree stays sorted and whole, and its tar reads back into an equal tree. */
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

/* Child lists in strict name order with matching links, and as many nodes as the tree counts. */
static void check_tree(struct fstree *t)
{
	struct fstree_node *n = fstree_root(t);
	uint64_t count = 0;

	while (n) {
		count++;
		assert(!n->unsorted);
		for (struct fstree_node *c = n->child, *p = NULL; c; p = c, c = c->next) {
			assert(n->type == TAR_DIR && c->parent == n && c->prev_sib == p);
			assert(!c->next || strcmp(c->name, c->next->name) < 0);
		}
		if (n->child) {
			n = n->child;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
	assert(count == fstree_nodes(t));
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

/* A path from tokens (one byte each) that reach whiteouts, dots and nesting. */
static size_t tokens(const uint8_t *p, size_t n, char *out, size_t outsz)
{
	static const char *const tok[8] = { "a", "b", "c/", "/", ".", ".wh.", TAR_WH_OPAQUE, ".." };
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *t = tok[p[i] % 8];
		size_t l = strlen(t);

		if (o + l >= outsz)
			break;
		memcpy(out + o, t, l + 1);
		o += l;
	}
	return o;
}

/* Records: [op][path tokens count][tokens][link tokens count][tokens][data len] with op % 8 a
 * tar_type (TAR_FIFO+1: a layer boundary, bit 3: OCI for the next layer). */
static void records(struct fstree *t, const uint8_t *p, size_t n)
{
	size_t i = 1;
	char err[256];

	fstree_layer_begin(t, true);
	/* Each record consumes at least one byte. */
	while (i < n) {
		struct tar_entry e;
		uint8_t op = p[i++];
		size_t pl, ll, dl;

		if (op % 8 == 7) {
			(void)fstree_layer_end(t);
			fstree_layer_begin(t, op & 8);
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.type = (enum tar_type)(op % 8);
		e.mode = op;
		pl = i < n ? p[i++] % 8 : 0;
		pl = pl < n - i ? pl : n - i;
		tokens(p + i, pl, e.path, 64);
		i += pl;
		ll = i < n ? p[i++] % 8 : 0;
		ll = ll < n - i ? ll : n - i;
		tokens(p + i, ll, e.link, 64);
		i += ll;
		dl = i < n ? p[i++] % 4 : 0;
		if (e.type == TAR_REG)
			e.size = dl;
		if (fstree_add(t, &e, err, sizeof(err)) != 0) {
			assert(err[0]);
			continue;
		}
		if (e.type == TAR_REG && dl) {
			dl = dl < n - i ? dl : n - i;
			if (dl && fstree_add_data(t, p + i, dl, err, sizeof(err)) != 0)
				assert(err[0]);
			i += dl;
		}
	}
	(void)fstree_layer_end(t);
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
	if (size && (data[0] & 1)) {
		records(t, data, size);
	} else {
		layer(t, data, split, true);
		layer(t, data + split, size - split, true);
	}
	assert(fstree_nodes(t) >= 1 && fstree_nodes(t) <= lim.max_nodes);
	check_tree(t);
	s.keep = malloc(KEEP_MAX);
	if (fstree_write_tar(t, NULL, sink_write, &s) == 0 && s.keep && s.kept <= KEEP_MAX &&
	    fstree_new("/tmp", &lim, &t2, err, sizeof(err)) == 0) {
		/* Read back (not OCI: a ".wh." name kept by oci=false is no whiteout now either,
		 * but none survive an OCI layer) and written again: the same bytes. */
		layer(t2, s.keep, s.kept, false);
		assert(fstree_error(t2)[0] == '\0');
		assert(fstree_nodes(t2) == fstree_nodes(t));
		check_tree(t2);
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
