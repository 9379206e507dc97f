/* libFuzzer target for rootfs/agent/tar.c: any bytes, split at a point the input picks, read or fail cleanly with a message; entries obey the header's promises; the writer takes every entry read back and round-trips it. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rootfs/agent/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
	uint64_t left; /* data bytes the current entry still owes */
	struct tar_entry last;
};

static int on_entry(void *ctx, const struct tar_entry *e)
{
	struct state *s = ctx;
	char clean[TAR_PATH_MAX + 1];
	static uint8_t hdr[TAR_HDR_MAX];
	ssize_t h;

	assert(s->left == 0);
	assert(e->type >= TAR_REG && e->type <= TAR_FIFO);
	assert(strlen(e->path) <= TAR_PATH_MAX && strlen(e->link) <= TAR_PATH_MAX);
	assert(tar_path_clean(e->path, clean, sizeof(clean)) == 0 && strcmp(clean, e->path) == 0);
	assert(e->path[0] != '\0' || e->type == TAR_DIR);
	assert(e->mode <= 07777);
	assert(e->type == TAR_REG || e->size == 0);
	if (e->type == TAR_HARDLINK)
		assert(e->link[0] && tar_path_clean(e->link, clean, sizeof(clean)) == 0 &&
		       strcmp(clean, e->link) == 0);
	else if (e->type == TAR_SYMLINK)
		assert(e->link[0]);
	else
		assert(e->link[0] == '\0');
	/* Everything read can be written again, and reads back the same. */
	h = tar_write_header(e, hdr, sizeof(hdr));
	assert(h >= TAR_BLOCK && h % TAR_BLOCK == 0);
	s->left = e->size;
	s->last = *e;
	return 0;
}

static int on_data(void *ctx, const void *buf, size_t len)
{
	struct state *s = ctx;

	assert(len > 0 && len <= s->left && buf);
	s->left -= len;
	return 0;
}

static const struct tar_reader_ops ops = { on_entry, on_data };

/* The writer's output for e reads back as e. */
static int back_entry(void *ctx, const struct tar_entry *e)
{
	const struct tar_entry *w = ctx;

	assert(e->type == w->type && strcmp(e->path, w->path) == 0 && strcmp(e->link, w->link) == 0);
	assert(e->mode == w->mode && e->uid == w->uid && e->gid == w->gid && e->mtime == w->mtime);
	assert(e->size == w->size && e->devmajor == w->devmajor && e->devminor == w->devminor);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state s = { 0 };
	struct tar_reader *r;
	size_t split = size ? (size_t)data[0] * 131 % (size + 1) : 0;
	int rc;

	if (tar_reader_new(&ops, &s, &r))
		return 0;
	rc = tar_reader_feed(r, data, split);
	if (rc == 0)
		rc = tar_reader_feed(r, data + split, size - split);
	if (rc == 0)
		rc = tar_reader_finish(r);
	if (rc)
		assert(rc < 0 && tar_reader_error(r)[0] && tar_reader_feed(r, "", 1) == rc);
	else
		assert(s.left == 0);
	if (tar_reader_entries(r) > 0) {
		static const struct tar_reader_ops back = { back_entry, NULL };
		static uint8_t hdr[TAR_HDR_MAX];
		struct tar_reader *r2;
		ssize_t h = tar_write_header(&s.last, hdr, sizeof(hdr));

		assert(h > 0);
		if (tar_reader_new(&back, &s.last, &r2) == 0) {
			assert(tar_reader_feed(r2, hdr, (size_t)h) == 0);
			assert(tar_reader_entries(r2) == 1);
			tar_reader_free(r2);
		}
	}
	tar_reader_free(r);
	return 0;
}
