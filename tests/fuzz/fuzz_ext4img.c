/* libFuzzer target for vmm/ext4img.c's reader: any bytes as an ext2/3/4 image (through a memfd) read into a file tree, or refused with a message; never a crash. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/ext4img.h"
#include "vmm/fstree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every node of a tree read back: names are single components, links only on symlinks. */
static void check_tree(struct fstree *t)
{
	struct fstree_node *root = fstree_root(t), *n = root->child;
	uint64_t seen = 1;

	while (n) {
		assert(n->name[0] && !strchr(n->name, '/'));
		assert((n->type == TAR_SYMLINK) == (n->link != NULL));
		assert(n->type != TAR_HARDLINK);
		seen++;
		if (n->type == TAR_DIR && n->child) {
			n = n->child;
			continue;
		}
		while (n && !n->next)
			n = n->parent == root ? NULL : n->parent;
		if (n)
			n = n->next;
	}
	assert(seen == fstree_nodes(t));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small limits: a hostile image cannot make the tree spool gigabytes. */
	const struct fstree_limits lim = { .max_nodes = 20000, .max_bytes = 16 << 20 };
	struct fstree *t;
	char path[64], err[512];
	int fd, r;

	fd = memfd_create("fuzz_ext4img", MFD_CLOEXEC);
	assert(fd >= 0);
	if (size && write(fd, data, size) != (ssize_t)size)
		assert(0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = fstree_new("/tmp", &lim, &t, err, sizeof(err));
	assert(r == 0);
	err[0] = '\0';
	r = ext4img_read(path, t, err, sizeof(err));
	if (r == 0)
		check_tree(t);
	else
		assert(r < 0 && err[0] != '\0' && strstr(err, path) != NULL);
	fstree_free(t);
	close(fd);
	return 0;
}
