/* The bootable root of an OCI image: unpacked layers plus the agent as /sbin/minivm-init, written once as an ext4 image cached by manifest digest. */
#include "vmm/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "vmm/ext4img.h"
#include "vmm/oci_priv.h"

#define OCI_AGENT_MAX (256u << 20)
#define OCI_SYMLINK_HOPS 40

/*
 * Resolves the directory path dir (clean, relative) in t the way the guest
 * kernel would, following symlinks (absolute targets from the tree's
 * root); components that do not exist are kept as they are (fstree_add
 * makes them). Bounded by OCI_SYMLINK_HOPS links and the path length.
 */
static int oci_resolve_dir(struct fstree *t, const char *dir, char *out, size_t outsz)
{
	char rest[TAR_PATH_MAX + 1], cur[TAR_PATH_MAX + 1] = "", cand[TAR_PATH_MAX + 1];
	unsigned int hops = 0;

	if (snprintf(rest, sizeof(rest), "%s", dir) >= (int)sizeof(rest))
		return -ENAMETOOLONG;
	while (rest[0]) {
		char comp[256], *slash = strchr(rest, '/');
		size_t cl = slash ? (size_t)(slash - rest) : strlen(rest);
		struct fstree_node *n;

		if (cl >= sizeof(comp))
			return -ENAMETOOLONG;
		memcpy(comp, rest, cl);
		comp[cl] = '\0';
		memmove(rest, slash ? slash + 1 : rest + cl, strlen(slash ? slash + 1 : rest + cl) + 1);
		if (!comp[0] || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *s = strrchr(cur, '/');

			if (s)
				*s = '\0';
			else
				cur[0] = '\0';
			continue;
		}
		if (snprintf(cand, sizeof(cand), "%s%s%s", cur, cur[0] ? "/" : "", comp) >=
		    (int)sizeof(cand))
			return -ENAMETOOLONG;
		n = fstree_lookup(t, cand);
		if (n && n->type == TAR_SYMLINK && n->link) {
			char nrest[TAR_PATH_MAX + 1];

			if (++hops > OCI_SYMLINK_HOPS)
				return -ELOOP;
			if (snprintf(nrest, sizeof(nrest), "%s%s%s", n->link, rest[0] ? "/" : "", rest) >=
			    (int)sizeof(nrest))
				return -ENAMETOOLONG;
			if (n->link[0] == '/')
				cur[0] = '\0';
			memcpy(rest, nrest, sizeof(rest));
			continue;
		}
		memcpy(cur, cand, sizeof(cur));
	}
	if (snprintf(out, outsz, "%s", cur) >= (int)outsz)
		return -ENAMETOOLONG;
	return 0;
}

/* Adds the agent binary (already read) at /sbin/minivm-init. */
static int oci_add_agent(struct fstree *t, const uint8_t *bin, size_t len, char *err,
			 size_t errlen)
{
	struct tar_entry *e = calloc(1, sizeof(*e));
	char dir[TAR_PATH_MAX + 1];
	int rc;

	if (!e)
		return oci_errf(err, errlen, -ENOMEM, "out of memory");
	rc = oci_resolve_dir(t, "sbin", dir, sizeof(dir));
	if (rc) {
		rc = oci_errf(err, errlen, rc, "the image's /sbin: %s", strerror(-rc));
		goto out;
	}
	if (snprintf(e->path, sizeof(e->path), "%s%sminivm-init", dir, dir[0] ? "/" : "") >=
	    (int)sizeof(e->path)) {
		rc = oci_errf(err, errlen, -ENAMETOOLONG, "the image's /sbin: path too long");
		goto out;
	}
	e->type = TAR_REG;
	e->mode = 0755;
	e->size = len;
	rc = fstree_add(t, e, err, errlen);
	if (!rc && len)
		rc = fstree_add_data(t, bin, len, err, errlen);
out:
	free(e);
	return rc;
}

static int oci_add_dirs(struct fstree *t, char *err, size_t errlen)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "run", "tmp", "mnt" };
	struct tar_entry *e = calloc(1, sizeof(*e));
	int rc = 0;

	if (!e)
		return oci_errf(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !rc; i++) {
		if (fstree_lookup(t, dirs[i]))
			continue; /* whatever the image has there (a dir, a symlink) is kept */
		memset(e, 0, sizeof(*e));
		e->type = TAR_DIR;
		snprintf(e->path, sizeof(e->path), "%s", dirs[i]);
		e->mode = strcmp(dirs[i], "tmp") == 0 ? 01777 : 0755;
		rc = fstree_add(t, e, err, errlen);
	}
	free(e);
	return rc;
}

static int oci_read_agent(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	char *buf;
	int rc;

	rc = oci_read_small(AT_FDCWD, path, OCI_AGENT_MAX, &buf, len, err, errlen);
	if (rc)
		return rc;
	*out = (uint8_t *)buf;
	return 0;
}

static int oci_mkdir_p2(const char *a, const char *b)
{
	if (mkdir(a, 0755) != 0 && errno != EEXIST)
		return -errno;
	if (mkdir(b, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int oci_rootfs_image(struct oci_image *img, const char *cache_dir, const char *agent_bin,
		     char *out_path, size_t out_size, char *err, size_t errlen)
{
	uint8_t *agent = NULL, adig[SHA256_DIGEST_SIZE], mdig[SHA256_DIGEST_SIZE];
	char ahex[SHA256_HEX_SIZE], dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	const char *mhex = oci_image_digest(img) + 7;
	struct ext4img_opts o;
	struct fstree *t = NULL;
	struct stat st;
	size_t alen;
	int fd, rc;

	rc = oci_read_agent(agent_bin, &agent, &alen, err, errlen);
	if (rc)
		return rc;
	sha256_digest(agent, alen, adig);
	sha256_to_hex(adig, ahex);
	if (snprintf(dir, sizeof(dir), "%s/oci", cache_dir) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s-%.16s.img", dir, mhex, ahex) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%.16s-XXXXXX", dir, mhex) >= (int)sizeof(tmp)) {
		rc = oci_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", cache_dir);
		goto out;
	}
	if (snprintf(out_path, out_size, "%s", path) >= (int)out_size) {
		rc = oci_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
		goto out;
	}
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = 0; /* built before: written once by rename, never modified */
		goto out;
	}
	rc = oci_mkdir_p2(cache_dir, dir);
	if (rc) {
		rc = oci_errf(err, errlen, rc, "%s: %s", dir, strerror(-rc));
		goto out;
	}
	rc = fstree_new(dir, NULL, &t, err, errlen);
	if (rc)
		goto out;
	rc = oci_unpack(img, t, err, errlen);
	if (!rc)
		rc = oci_add_agent(t, agent, alen, err, errlen);
	if (!rc)
		rc = oci_add_dirs(t, err, errlen);
	if (rc)
		goto out;
	/* Deterministic: uuid and hash seed from the manifest digest, times 0. */
	memset(&o, 0, sizeof(o));
	sha256_digest(mhex, 64, mdig);
	memcpy(o.uuid, mdig, sizeof(o.uuid));
	o.uuid[6] = (uint8_t)((o.uuid[6] & 0x0f) | 0x40); /* a version 4 layout */
	o.uuid[8] = (uint8_t)((o.uuid[8] & 0x3f) | 0x80);
	memcpy(o.hash_seed, mdig + 16, sizeof(o.hash_seed));
	o.label = "minivm-oci";
	/* ext4img_write wants a new file: take a unique name, then let it create it. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	close(fd);
	unlink(tmp);
	rc = ext4img_write(t, tmp, &o, err, errlen);
	if (rc)
		goto out;
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0 || rename(tmp, path) != 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (oci_fsync_dir(dir) != 0)
		fprintf(stderr, "minivm: warning: fsync of %s failed\n", dir);
out:
	fstree_free(t);
	free(agent);
	return rc;
}
