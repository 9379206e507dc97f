/* The in-memory file tree: sorted child lists, file data spooled to an unlinked temporary file, OCI layer semantics (whiteouts, opaque directories), hard-link groups, and a deterministic tar writer. */
#include "vmm/fstree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define FSTREE_DEF_NODES (4ULL << 20)
#define FSTREE_DEF_BYTES (64ULL << 30)
/* Longest path component Linux file systems take. */
#define FSTREE_NAME_MAX 255

struct fstree {
	int spool_fd;
	uint64_t spool_end; /* bytes reserved in the spool so far */
	struct fstree_limits lim;
	uint64_t nodes, bytes;
	struct fstree_node *root;
	uint32_t layer; /* fstree_layer_begin count */
	bool oci;
	/* Hard-link groups: ids are 1..nr_links-1; refs[id] names alive. */
	uint32_t *refs;
	uint64_t nr_links, cap_links;
	/* The TAR_REG node whose data is arriving. */
	struct fstree_node *cur;
	uint64_t cur_left, cur_pos;
	/* Where the last entry went: speeds up sorted input (NULL after any removal). */
	struct fstree_node *hint;
	/* The index of children by (parent, name): chained buckets, a power of two. */
	struct fstree_node **buckets;
	uint64_t nbuckets, hashed, seed;
	bool in_layer;
	char err[512];
};

__attribute__((format(printf, 2, 3))) static void set_err(struct fstree *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

/* Copies the tree's message to a caller's buffer. */
static int report(struct fstree *t, int rc, char *err, size_t errlen)
{
	if (err && errlen && err != t->err)
		snprintf(err, errlen, "%s", t->err);
	return rc;
}

const char *fstree_error(const struct fstree *t)
{
	return t->err;
}

static struct fstree_node *node_new(struct fstree *t, const char *name, size_t len)
{
	struct fstree_node *n;

	if (t->nodes >= t->lim.max_nodes)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->name = strndup(name, len);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->layer = t->layer;
	t->nodes++;
	return n;
}

/* The bucket of the child called name[0..len) of parent (FNV-1a seeded per tree, then mixed). */
static uint64_t hash_of(const struct fstree *t, const struct fstree_node *parent, const char *name, size_t len)
{
	uint64_t h = t->seed ^ ((uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ULL);

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h & (t->nbuckets - 1);
}

/* Doubles the bucket array when it holds more names than buckets; failing to grow only slows lookups. */
static void hash_grow(struct fstree *t)
{
	uint64_t nb = t->nbuckets * 2, old = t->nbuckets;
	struct fstree_node **b, **ob = t->buckets;

	if (t->hashed <= t->nbuckets || nb > (SIZE_MAX / sizeof(*b)))
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	t->buckets = b;
	t->nbuckets = nb;
	for (uint64_t i = 0; i < old; i++) {
		struct fstree_node *n = ob[i], *nx;

		for (; n; n = nx) {
			uint64_t k = hash_of(t, n->parent, n->name, strlen(n->name));

			nx = n->hash_next;
			n->hash_next = b[k];
			b[k] = n;
		}
	}
	free(ob);
}

static void hash_remove(struct fstree *t, struct fstree_node *n)
{
	struct fstree_node **pp = &t->buckets[hash_of(t, n->parent, n->name, strlen(n->name))];

	/* n is in this chain: it was added under the same parent and name. */
	while (*pp && *pp != n)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = n->hash_next;
	n->hash_next = NULL;
	t->hashed--;
}

/* Forgets one childless node (already out of its parent's list): counters, index, hard-link refs, memory. */
static void node_drop(struct fstree *t, struct fstree_node *n)
{
	if (n->parent)
		hash_remove(t, n);
	if (n->type == TAR_REG) {
		if (n->link_id == 0)
			t->bytes -= n->size;
		else if (--t->refs[n->link_id] == 0)
			t->bytes -= n->size;
	}
	if (t->cur == n)
		t->cur = NULL;
	t->nodes--;
	free(n->name);
	free(n->link);
	free(n);
}

/* Frees n and everything under it, iteratively (n already out of its parent's list). */
static void free_subtree(struct fstree *t, struct fstree_node *n)
{
	struct fstree_node *cur = n;

	t->hint = NULL;
	for (;;) {
		struct fstree_node *next, *parent;

		while (cur->child)
			cur = cur->child;
		next = cur->next;
		parent = cur->parent;
		if (cur == n) {
			node_drop(t, cur);
			return;
		}
		node_drop(t, cur);
		parent->child = next;
		if (next)
			next->prev_sib = NULL;
		cur = next ? next : parent;
	}
}

/* Takes c out of its parent's child list (it stays in the index until node_drop). */
static void unlink_child(struct fstree_node *c)
{
	if (c->prev_sib)
		c->prev_sib->next = c->next;
	else
		c->parent->child = c->next;
	if (c->next)
		c->next->prev_sib = c->prev_sib;
	c->next = c->prev_sib = NULL;
}

/* The child of dir called name[0..len), or NULL: one index lookup. */
static struct fstree_node *find_child(struct fstree *t, struct fstree_node *dir, const char *name, size_t len)
{
	struct fstree_node *c = t->buckets[hash_of(t, dir, name, len)];

	for (; c; c = c->hash_next)
		if (c->parent == dir && strncmp(c->name, name, len) == 0 && c->name[len] == '\0')
			return c;
	return NULL;
}

/*
 * Links n into dir's children and the index. Inside a layer it goes at the
 * head and dir is marked for sorting at fstree_layer_end (so input in any
 * order costs O(n log n)); outside one it goes in its sorted place, found
 * from the last insertion when that is before it (sorted input: O(1)).
 */
static void insert_child(struct fstree *t, struct fstree_node *dir, struct fstree_node *n)
{
	struct fstree_node *p = NULL, *c = dir->child;
	uint64_t k;

	n->parent = dir;
	k = hash_of(t, dir, n->name, strlen(n->name));
	n->hash_next = t->buckets[k];
	t->buckets[k] = n;
	t->hashed++;
	if (t->in_layer || dir->unsorted) {
		dir->unsorted = true;
	} else {
		if (t->hint && t->hint->parent == dir && strcmp(t->hint->name, n->name) < 0) {
			p = t->hint;
			c = p->next;
		}
		while (c && strcmp(c->name, n->name) < 0) {
			p = c;
			c = c->next;
		}
	}
	n->prev_sib = p;
	n->next = c;
	if (p)
		p->next = n;
	else
		dir->child = n;
	if (c)
		c->prev_sib = n;
	t->hint = n;
	hash_grow(t);
}

/* Sorts one child list by name: bottom-up merge sort (O(n log n), no recursion), then the back links. */
static void sort_children(struct fstree_node *dir)
{
	struct fstree_node *list = dir->child, *p;
	size_t run = 1;

	for (;;) {
		struct fstree_node *head = NULL, **tail = &head, *a = list;
		size_t merges = 0;

		while (a) {
			struct fstree_node *b = a;
			size_t na = 0, nb = run;

			merges++;
			while (b && na < run) {
				b = b->next;
				na++;
			}
			while (na > 0 || (nb > 0 && b)) {
				struct fstree_node *e;

				if (na == 0) {
					e = b;
					b = b->next;
					nb--;
				} else if (nb == 0 || !b || strcmp(a->name, b->name) <= 0) {
					e = a;
					a = a->next;
					na--;
				} else {
					e = b;
					b = b->next;
					nb--;
				}
				*tail = e;
				tail = &e->next;
			}
			a = b;
		}
		*tail = NULL;
		list = head;
		if (merges <= 1)
			break;
		run *= 2;
	}
	dir->child = list;
	p = NULL;
	for (struct fstree_node *c = list; c; p = c, c = c->next)
		c->prev_sib = p;
	dir->unsorted = false;
}

/* Sorts every directory a layer left unsorted (a pre-order walk by the links). */
static void sort_dirty(struct fstree *t)
{
	struct fstree_node *n = t->root;

	while (n) {
		if (n->unsorted)
			sort_children(n);
		if (n->child) {
			n = n->child;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
}

int fstree_new(const char *spool_dir, const struct fstree_limits *lim, struct fstree **out,
	       char *err, size_t errlen)
{
	struct fstree *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "fstree: out of memory");
		return -ENOMEM;
	}
	t->lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : FSTREE_DEF_NODES;
	t->lim.max_bytes = lim && lim->max_bytes ? lim->max_bytes : FSTREE_DEF_BYTES;
	t->nr_links = 1; /* id 0 means "no group" */
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		rc = -ENOMEM;
		snprintf(err, errlen, "fstree: out of memory");
		goto fail;
	}
	/* A per-tree seed, so names cannot be chosen to share a bucket. */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x243f6a8885a308d3ULL;
	t->spool_fd = open(spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (t->spool_fd < 0) {
		char tmpl[4096];

		if (snprintf(tmpl, sizeof(tmpl), "%s/.fstree-spool-XXXXXX", spool_dir) >= (int)sizeof(tmpl)) {
			rc = -ENAMETOOLONG;
			snprintf(err, errlen, "fstree: spool directory name too long");
			goto fail;
		}
		t->spool_fd = mkostemp(tmpl, O_CLOEXEC);
		if (t->spool_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "fstree: cannot make a spool file in %s: %s", spool_dir, strerror(-rc));
			goto fail;
		}
		unlink(tmpl);
	}
	t->root = node_new(t, "", 0);
	if (!t->root) {
		rc = -ENOMEM;
		snprintf(err, errlen, "fstree: out of memory");
		goto fail_fd;
	}
	t->root->type = TAR_DIR;
	t->root->mode = 0755;
	*out = t;
	return 0;

fail_fd:
	close(t->spool_fd);
fail:
	free(t->buckets);
	free(t);
	return rc;
}

void fstree_free(struct fstree *t)
{
	if (!t)
		return;
	free_subtree(t, t->root);
	close(t->spool_fd);
	free(t->refs);
	free(t->buckets);
	free(t);
}

struct fstree_node *fstree_root(struct fstree *t)
{
	return t->root;
}

uint64_t fstree_nodes(const struct fstree *t)
{
	return t->nodes;
}

uint64_t fstree_bytes(const struct fstree *t)
{
	return t->bytes;
}

struct fstree_node *fstree_lookup(struct fstree *t, const char *path)
{
	struct fstree_node *n = t->root;
	const char *p = path;

	/* Each step consumes one component. */
	while (*p) {
		const char *c = p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - c);
		if (*p == '/')
			p++;
		if (len == 0)
			continue;
		if (n->type != TAR_DIR)
			return NULL;
		n = find_child(t, n, c, len);
		if (!n)
			return NULL;
	}
	return n;
}

int fstree_path(const struct fstree_node *n, char *buf, size_t size)
{
	size_t len = 0, pos;
	const struct fstree_node *m;

	for (m = n; m->parent; m = m->parent)
		len += strlen(m->name) + (m->parent->parent ? 1 : 0);
	if (len >= size)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	pos = len;
	for (m = n; m->parent; m = m->parent) {
		size_t l = strlen(m->name);

		pos -= l;
		memcpy(buf + pos, m->name, l);
		if (m->parent->parent)
			buf[--pos] = '/';
	}
	return 0;
}

/* Removes everything under dir that lower layers (layer < t->layer) put there. */
static void prune_lower(struct fstree *t, struct fstree_node *dir)
{
	struct fstree_node *d = dir, *c = dir->child;

	for (;;) {
		if (c) {
			struct fstree_node *nx = c->next;

			if (c->layer < t->layer) {
				unlink_child(c);
				free_subtree(t, c);
			} else if (c->type == TAR_DIR && c->child) {
				d = c;
				nx = c->child;
			}
			c = nx;
			continue;
		}
		if (d == dir)
			return;
		c = d->next;
		d = d->parent;
	}
}

/* A relative symlink target climbs above the root from a link at depth `depth` (its directory's components). */
static bool link_escapes(const char *target, uint64_t depth)
{
	const char *p = target;

	if (target[0] == '/')
		return false;
	while (*p) {
		const char *c = p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - c);
		if (*p == '/')
			p++;
		if (len == 0 || (len == 1 && c[0] == '.'))
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			if (depth == 0)
				return true;
			depth--;
		} else {
			depth++;
		}
	}
	return false;
}

/*
 * Walks to the parent directory of path, making missing directories when
 * make is true and marking each as touched by this layer. Sets *leaf and
 * *leaf_len to the last component. NULL (with t->err) on -ENOTDIR or a
 * limit; *rc says which. With make false a missing directory gives NULL and *rc 0.
 */
static struct fstree_node *walk_parent(struct fstree *t, const char *path, bool make, const char **leaf,
				       size_t *leaf_len, int *rc)
{
	struct fstree_node *n = t->root, *c;
	const char *p = path, *last = strrchr(path, '/');
	uint64_t depth = 0;

	*rc = 0;
	*leaf = last ? last + 1 : path;
	*leaf_len = strlen(*leaf);
	if (make)
		n->layer = t->layer;
	/* One component per step, up to the last '/'. */
	while (last && p < last) {
		const char *comp = p;
		size_t len;

		while (*p != '/')
			p++;
		len = (size_t)(p - comp);
		p++;
		if (++depth > TAR_PATH_MAX)
			break;
		c = find_child(t, n, comp, len);
		if (c && c->type != TAR_DIR) {
			set_err(t, "entry '%s': goes through '%.*s', which is %s", path, (int)(comp + len - path),
				path, c->type == TAR_SYMLINK ? "a symlink" : "not a directory");
			*rc = -ENOTDIR;
			return NULL;
		}
		if (!c) {
			if (!make)
				return NULL;
			if (len > FSTREE_NAME_MAX) {
				set_err(t, "entry '%s': a component is over %d bytes", path, FSTREE_NAME_MAX);
				*rc = -ENAMETOOLONG;
				return NULL;
			}
			c = node_new(t, comp, len);
			if (!c) {
				*rc = t->nodes >= t->lim.max_nodes ? -E2BIG : -ENOMEM;
				set_err(t, "entry '%s': %s", path,
					*rc == -E2BIG ? "too many files in the tree" : "out of memory");
				return NULL;
			}
			c->type = TAR_DIR;
			c->mode = 0755;
			insert_child(t, n, c);
		}
		if (make)
			c->layer = t->layer;
		n = c;
	}
	return n;
}

/* Applies an OCI whiteout entry (the leaf name starts with ".wh."). */
static int whiteout(struct fstree *t, const struct tar_entry *e, const char *leaf, size_t leaf_len)
{
	const char *name = leaf + strlen(TAR_WH_PREFIX);
	size_t nlen = leaf_len - strlen(TAR_WH_PREFIX);
	struct fstree_node *dir, *victim;
	const char *l2;
	size_t l2len;
	int rc;

	if (!(e->type == TAR_REG && e->size == 0) && e->type != TAR_HARDLINK) {
		set_err(t, "entry '%s': a whiteout that is not an empty regular file", e->path);
		return -EINVAL;
	}
	if (strcmp(leaf, TAR_WH_OPAQUE) != 0 &&
	    (nlen == 0 || strncmp(name, TAR_WH_PREFIX, strlen(TAR_WH_PREFIX)) == 0 ||
	     (nlen == 1 && name[0] == '.') || (nlen == 2 && name[0] == '.' && name[1] == '.'))) {
		set_err(t, "entry '%s': not a valid whiteout", e->path);
		return -EINVAL;
	}
	/* The whiteout's directory exists in this layer (as in an overlayfs
	 * upper directory): made if missing, kept by an opaque ancestor. */
	dir = walk_parent(t, e->path, true, &l2, &l2len, &rc);
	if (!dir)
		return rc;
	if (strcmp(leaf, TAR_WH_OPAQUE) == 0) {
		dir->opaque = true;
		prune_lower(t, dir);
		return 0;
	}
	victim = find_child(t, dir, name, nlen);
	if (!victim)
		return 0;
	if (victim->layer < t->layer) {
		unlink_child(victim);
		free_subtree(t, victim);
	} else if (victim->type == TAR_DIR) {
		/* This layer made it again: only what lower layers left in it goes. */
		prune_lower(t, victim);
	}
	return 0;
}

/* Grows the hard-link refcount array to hold id. */
static int link_new(struct fstree *t, uint64_t *id)
{
	if (t->nr_links >= t->cap_links) {
		uint64_t cap = t->cap_links ? t->cap_links * 2 : 64;
		uint32_t *r = realloc(t->refs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		memset(r + t->cap_links, 0, (cap - t->cap_links) * sizeof(*r));
		t->refs = r;
		t->cap_links = cap;
	}
	*id = t->nr_links++;
	t->refs[*id] = 0;
	return 0;
}

static int add_entry(struct fstree *t, const struct tar_entry *e)
{
	struct fstree_node *dir, *old, *n, *target = NULL;
	const char *leaf;
	size_t leaf_len;
	uint64_t depth = 0;
	int rc;

	t->err[0] = '\0';
	if (t->cur && t->cur_left) {
		set_err(t, "entry '%s': the previous file's data is incomplete", e->path);
		return -EINVAL;
	}
	t->cur = NULL;
	if (strnlen(e->path, sizeof(e->path)) > TAR_PATH_MAX || strnlen(e->link, sizeof(e->link)) > TAR_PATH_MAX) {
		set_err(t, "entry: path or link too long");
		return -ENAMETOOLONG;
	}
	{
		char clean[TAR_PATH_MAX + 1];

		if (tar_path_clean(e->path, clean, sizeof(clean)) || strcmp(clean, e->path) != 0) {
			set_err(t, "entry '%s': not a clean relative path", e->path);
			return -EINVAL;
		}
	}
	if (e->path[0] == '\0') {
		/* The root: only a directory, which takes the new metadata. */
		if (e->type != TAR_DIR) {
			set_err(t, "entry '': the root can only be a directory");
			return -EINVAL;
		}
		t->root->mode = e->mode & 07777;
		t->root->uid = e->uid;
		t->root->gid = e->gid;
		t->root->mtime = e->mtime;
		t->root->layer = t->layer;
		return 0;
	}
	leaf = strrchr(e->path, '/');
	leaf = leaf ? leaf + 1 : e->path;
	leaf_len = strlen(leaf);
	if (t->oci && strncmp(leaf, TAR_WH_PREFIX, strlen(TAR_WH_PREFIX)) == 0)
		return whiteout(t, e, leaf, leaf_len);
	if (leaf_len > FSTREE_NAME_MAX) {
		set_err(t, "entry '%s': a component is over %d bytes", e->path, FSTREE_NAME_MAX);
		return -ENAMETOOLONG;
	}

	if (e->type == TAR_HARDLINK) {
		target = fstree_lookup(t, e->link);
		if (!target) {
			set_err(t, "entry '%s': hardlink to '%s', which is not in the tree", e->path, e->link);
			return -ENOENT;
		}
		if (target->type != TAR_REG) {
			set_err(t, "entry '%s': hardlink to '%s', which is not a regular file", e->path, e->link);
			return -EINVAL;
		}
	} else if (e->type == TAR_SYMLINK) {
		for (const char *p = e->path; *p; p++)
			depth += *p == '/';
		if (e->link[0] == '\0') {
			set_err(t, "entry '%s': symlink with an empty target", e->path);
			return -EINVAL;
		}
		if (link_escapes(e->link, depth)) {
			set_err(t, "entry '%s': symlink to '%s' escapes the root", e->path, e->link);
			return -EINVAL;
		}
	} else if (e->type == TAR_REG) {
		uint64_t end;

		if (__builtin_add_overflow(t->spool_end, e->size, &end) || end > t->lim.max_bytes) {
			set_err(t, "entry '%s': %llu bytes of data would pass the limit of %llu", e->path,
				(unsigned long long)e->size, (unsigned long long)t->lim.max_bytes);
			return -EFBIG;
		}
	} else if ((e->type == TAR_CHR || e->type == TAR_BLK) &&
		   (e->devmajor > 07777777 || e->devminor > 07777777)) {
		set_err(t, "entry '%s': device number %u:%u too large for tar", e->path, e->devmajor,
			e->devminor);
		return -EINVAL;
	} else if ((unsigned int)e->type > TAR_FIFO) {
		set_err(t, "entry '%s': unknown type %d", e->path, (int)e->type);
		return -EINVAL;
	}

	dir = walk_parent(t, e->path, true, &leaf, &leaf_len, &rc);
	if (!dir)
		return rc;
	old = find_child(t, dir, leaf, leaf_len);
	if (old && old == target)
		return 0; /* a hard link to itself */
	if (old && old->type == TAR_DIR && e->type == TAR_DIR) {
		old->mode = e->mode & 07777;
		old->uid = e->uid;
		old->gid = e->gid;
		old->mtime = e->mtime;
		old->layer = t->layer;
		t->hint = old;
		return 0;
	}

	if (t->nodes >= t->lim.max_nodes + (old ? 1 : 0)) {
		set_err(t, "entry '%s': too many files in the tree (limit %llu)", e->path,
			(unsigned long long)t->lim.max_nodes);
		return -E2BIG;
	}
	/* The target's group is settled before old (which may hold it) goes. */
	if (target && target->link_id == 0) {
		rc = link_new(t, &target->link_id);
		if (rc) {
			set_err(t, "entry '%s': out of memory", e->path);
			return rc;
		}
		t->refs[target->link_id] = 1;
	}
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strndup(leaf, leaf_len)) ||
	    (e->type == TAR_SYMLINK && !(n->link = strdup(e->link)))) {
		if (n)
			free(n->name);
		free(n);
		set_err(t, "entry '%s': out of memory", e->path);
		return -ENOMEM;
	}
	n->layer = t->layer;
	if (target) {
		n->type = TAR_REG;
		n->mode = target->mode;
		n->uid = target->uid;
		n->gid = target->gid;
		n->mtime = target->mtime;
		n->size = target->size;
		n->data_off = target->data_off;
		n->link_id = target->link_id;
		t->refs[n->link_id]++;
	} else {
		n->type = e->type;
		n->mode = e->mode & 07777;
		n->uid = e->uid;
		n->gid = e->gid;
		n->mtime = e->mtime;
		if (e->type == TAR_CHR || e->type == TAR_BLK) {
			n->devmajor = e->devmajor;
			n->devminor = e->devminor;
		}
		if (e->type == TAR_REG) {
			n->size = e->size;
			n->data_off = t->spool_end;
			t->spool_end += e->size;
			t->bytes += e->size;
		}
	}
	if (old) {
		unlink_child(old);
		free_subtree(t, old);
	}
	t->nodes++;
	insert_child(t, dir, n);
	if (n->type == TAR_REG && !target && n->size) {
		t->cur = n;
		t->cur_left = n->size;
		t->cur_pos = n->data_off;
	}
	return 0;
}

int fstree_add(struct fstree *t, const struct tar_entry *e, char *err, size_t errlen)
{
	return report(t, add_entry(t, e), err, errlen);
}

int fstree_add_data(struct fstree *t, const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf;

	t->err[0] = '\0';
	if (!t->cur || len > t->cur_left) {
		set_err(t, "file data with no file to hold it, or more than its size");
		return report(t, -EINVAL, err, errlen);
	}
	/* pwrite moves at least a byte per round or fails. */
	while (len > 0) {
		ssize_t w = pwrite(t->spool_fd, p, len, (off_t)t->cur_pos);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int rc = w < 0 ? -errno : -EIO;
			char path[TAR_PATH_MAX + 1];

			if (fstree_path(t->cur, path, sizeof(path)))
				path[0] = '\0';
			set_err(t, "entry '%s': writing its data to the spool: %s", path, strerror(-rc));
			return report(t, rc, err, errlen);
		}
		p += w;
		len -= (size_t)w;
		t->cur_pos += (uint64_t)w;
		t->cur_left -= (uint64_t)w;
	}
	return 0;
}

ssize_t fstree_read(struct fstree *t, const struct fstree_node *n, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	if (n->type != TAR_REG)
		return -EINVAL;
	if (off >= n->size)
		return 0;
	if (len > n->size - off)
		len = (size_t)(n->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		ssize_t r = pread(t->spool_fd, (uint8_t *)buf + done, len - done,
				  (off_t)(n->data_off + off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			/* Data never written (a refused archive): reads as zeros. */
			memset((uint8_t *)buf + done, 0, len - done);
			done = len;
			break;
		}
		done += (size_t)r;
	}
	return (ssize_t)done;
}

void fstree_layer_begin(struct fstree *t, bool oci)
{
	t->layer++;
	t->oci = oci;
	t->in_layer = true;
	t->err[0] = '\0';
}

int fstree_layer_end(struct fstree *t)
{
	struct fstree_node *n = t->root;
	int rc = 0;

	if (t->cur && t->cur_left) {
		char path[TAR_PATH_MAX + 1];

		if (fstree_path(t->cur, path, sizeof(path)))
			path[0] = '\0';
		set_err(t, "entry '%s': %llu bytes of its data are missing", path,
			(unsigned long long)t->cur_left);
		rc = -EPIPE;
	}
	t->cur = NULL;
	t->cur_left = 0;
	t->oci = false;
	t->in_layer = false;
	sort_dirty(t);
	/* Pre-order walk by the links: child, else next, else climb. */
	while (n) {
		n->opaque = false;
		if (n->child) {
			n = n->child;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
	return rc;
}

static int tar_entry_cb(void *ctx, const struct tar_entry *e)
{
	return add_entry(ctx, e);
}

static int tar_data_cb(void *ctx, const void *buf, size_t len)
{
	struct fstree *t = ctx;

	return fstree_add_data(t, buf, len, t->err, sizeof(t->err));
}

const struct tar_reader_ops fstree_tar_ops = {
	.entry = tar_entry_cb,
	.data = tar_data_cb,
};

/* State of one fstree_write_tar. */
struct tar_out {
	struct fstree *t;
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
	uint8_t *hdr, *buf;
	char **first; /* per link_id: the path its data went out under */
	struct tar_entry e;
};

#define OUT_BUF (64 * 1024)

static int emit(struct tar_out *o, const struct fstree_node *n)
{
	struct tar_entry *e = &o->e;
	ssize_t h;
	int rc;

	memset(e, 0, sizeof(*e));
	rc = fstree_path(n, e->path, sizeof(e->path));
	if (rc) {
		set_err(o->t, "a path in the tree is over %d bytes", TAR_PATH_MAX);
		return rc;
	}
	e->type = n->type;
	e->mode = n->mode;
	e->uid = n->uid;
	e->gid = n->gid;
	e->mtime = n->mtime;
	e->devmajor = n->devmajor;
	e->devminor = n->devminor;
	if (n->type == TAR_SYMLINK)
		snprintf(e->link, sizeof(e->link), "%s", n->link);
	if (n->type == TAR_REG) {
		e->size = n->size;
		if (n->link_id) {
			if (o->first[n->link_id]) {
				e->type = TAR_HARDLINK;
				e->size = 0;
				snprintf(e->link, sizeof(e->link), "%s", o->first[n->link_id]);
			} else if (!(o->first[n->link_id] = strdup(e->path))) {
				set_err(o->t, "writing tar: out of memory");
				return -ENOMEM;
			}
		}
	}
	h = tar_write_header(e, o->hdr, TAR_HDR_MAX);
	if (h < 0) {
		set_err(o->t, "entry '%s': cannot be written as tar: %s", e->path, strerror((int)-h));
		return (int)h;
	}
	rc = o->write(o->ctx, o->hdr, (size_t)h);
	if (rc)
		return rc;
	if (e->type != TAR_REG)
		return 0;
	for (uint64_t off = 0; off < e->size;) {
		ssize_t r = fstree_read(o->t, n, off, o->buf, OUT_BUF);

		if (r <= 0) {
			set_err(o->t, "entry '%s': reading its data from the spool: %s", e->path,
				strerror(r < 0 ? (int)-r : EIO));
			return r < 0 ? (int)r : -EIO;
		}
		rc = o->write(o->ctx, o->buf, (size_t)r);
		if (rc)
			return rc;
		off += (uint64_t)r;
	}
	if (tar_pad(e->size)) {
		memset(o->buf, 0, TAR_BLOCK);
		rc = o->write(o->ctx, o->buf, tar_pad(e->size));
	}
	return rc;
}

int fstree_write_tar(struct fstree *t, const struct fstree_node *n,
		     int (*write)(void *ctx, const void *buf, size_t len), void *ctx)
{
	struct tar_out o = { .t = t, .write = write, .ctx = ctx };
	const struct fstree_node *top = n ? n : t->root, *c;
	int rc = -ENOMEM;

	t->err[0] = '\0';
	sort_dirty(t); /* when called inside a layer */
	o.hdr = malloc(TAR_HDR_MAX);
	o.buf = malloc(OUT_BUF);
	o.first = calloc(t->nr_links, sizeof(*o.first));
	if (!o.hdr || !o.buf || !o.first) {
		set_err(t, "writing tar: out of memory");
		goto out;
	}
	if (n) {
		rc = emit(&o, n);
		if (rc)
			goto out;
	}
	/* Pre-order under top, by the links (no recursion: trees can be deep). */
	c = top->child;
	while (c) {
		rc = emit(&o, c);
		if (rc)
			goto out;
		if (c->child) {
			c = c->child;
			continue;
		}
		while (c != top && !c->next)
			c = c->parent;
		c = c == top ? NULL : c->next;
	}
	memset(o.buf, 0, TAR_END_SIZE);
	rc = write(ctx, o.buf, TAR_END_SIZE);
out:
	if (o.first)
		for (uint64_t i = 0; i < t->nr_links; i++)
			free(o.first[i]);
	free(o.first);
	free(o.buf);
	free(o.hdr);
	return rc;
}
