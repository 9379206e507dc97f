/* Writing an OCI image atomically: base layers reused or made from an ext4 root, one normalised gzip layer from a tar stream, config/manifest/index, then a rename or an exchange into place (layout directory or archive). */
#include "vmm/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "vmm/ext4img.h"
#include "vmm/oci_priv.h"

#define OCI_SAVE_MAX_BLOBS (OCI_MAX_LAYERS + 4)
#define OCI_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct oci_save_layer {
	const char *media_type;
	char hex[SHA256_HEX_SIZE];
	char diff[SHA256_HEX_SIZE];
	uint64_t size;
	bool new_layer;      /* history gets an entry for it */
	const char *created_by, *comment;
};

struct oci_save_state {
	const struct oci_save_req *req;
	struct oci_ref ref;
	char parent[PATH_MAX], name[NAME_MAX + 1];
	char tmp[PATH_MAX];      /* the layout being built */
	int tmpfd, bfd;          /* it, and its blobs/sha256 */
	char created[64];
	char export_by[PATH_MAX + 32];
	uint32_t nr_layers;
	struct oci_save_layer layers[OCI_MAX_LAYERS];
	uint32_t nr_blobs;
	char blobs[OCI_SAVE_MAX_BLOBS][SHA256_HEX_SIZE];
	char *err;
	size_t errlen;
};

static void oci_save_note_blob(struct oci_save_state *s, const char *hex)
{
	for (uint32_t i = 0; i < s->nr_blobs; i++)
		if (strcmp(s->blobs[i], hex) == 0)
			return;
	if (s->nr_blobs < OCI_SAVE_MAX_BLOBS)
		memcpy(s->blobs[s->nr_blobs++], hex, SHA256_HEX_SIZE);
}

/* Writes buf as blobs/sha256/<its sha256> (fsynced); hex gets the digest. */
static int oci_save_put_blob(struct oci_save_state *s, const char *what, const void *buf,
			     size_t len, char hex[SHA256_HEX_SIZE])
{
	uint8_t d[SHA256_DIGEST_SIZE];
	int fd, rc;

	sha256_digest(buf, len, d);
	sha256_to_hex(d, hex);
	fd = openat(s->bfd, hex, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return oci_errf(s->err, s->errlen, -errno, "%s: writing %s: %s", s->ref.path, what,
				strerror(errno));
	rc = oci_write_all(fd, buf, len);
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc)
		return oci_errf(s->err, s->errlen, rc, "%s: writing %s: %s", s->ref.path, what,
				strerror(-rc));
	oci_save_note_blob(s, hex);
	return 0;
}

/* Reuses a verified base layer: a hard link to the very inode verified, else a copy from its fd. */
static int oci_save_reuse(struct oci_save_state *s, int srcfd, const struct oci_desc *d)
{
	char proc[64], tmpname[32];
	uint8_t *buf = NULL;
	uint64_t off = 0;
	int fd = -1, rc = 0;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", srcfd);
	if (linkat(AT_FDCWD, proc, s->bfd, d->hex, AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST)
		goto done;
	snprintf(tmpname, sizeof(tmpname), ".copy-tmp");
	(void)unlinkat(s->bfd, tmpname, 0);
	fd = openat(s->bfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	buf = malloc(64 * 1024);
	if (fd < 0 || !buf) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	while (off < d->size) {
		ssize_t n = pread(srcfd, buf, 64 * 1024, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		rc = oci_write_all(fd, buf, (size_t)n);
		if (rc)
			goto out;
		off += (uint64_t)n;
	}
	if (fsync(fd) != 0 || renameat(s->bfd, tmpname, s->bfd, d->hex) != 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (rc)
		return oci_errf(s->err, s->errlen, rc, "blob sha256:%s: copying into %s: %s", d->hex,
				s->ref.path, strerror(-rc));
done:
	oci_save_note_blob(s, d->hex);
	return 0;
}

/* Writes the tree as a gzip tar layer blob and appends it to the layer list. */
static int oci_save_tree_layer(struct oci_save_state *s, struct fstree *t, const char *created_by,
			       const char *comment)
{
	struct oci_save_layer *l;
	struct oci_gz *g;
	int fd, rc;

	if (s->nr_layers >= OCI_MAX_LAYERS)
		return oci_errf(s->err, s->errlen, -E2BIG, "%s: more than %u layers", s->ref.path,
				OCI_MAX_LAYERS);
	l = &s->layers[s->nr_layers];
	g = malloc(sizeof(*g));
	if (!g)
		return oci_errf(s->err, s->errlen, -ENOMEM, "out of memory");
	(void)unlinkat(s->bfd, ".layer-tmp", 0);
	fd = openat(s->bfd, ".layer-tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = oci_errf(s->err, s->errlen, -errno, "%s: new layer: %s", s->ref.path,
			      strerror(errno));
		free(g);
		return rc;
	}
	rc = oci_gz_begin(g, fd);
	if (rc) {
		rc = oci_errf(s->err, s->errlen, rc, "new layer: zlib init failed");
		goto out;
	}
	rc = fstree_write_tar(t, NULL, oci_gz_write, g);
	if (rc) {
		oci_gz_abort(g);
		rc = oci_errf(s->err, s->errlen, rc, "%s: writing the new layer: %s%s%s", s->ref.path,
			      strerror(-rc), fstree_error(t)[0] ? ": " : "", fstree_error(t));
		goto out;
	}
	rc = oci_gz_end(g, l->hex, l->diff);
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	if (!rc && renameat(s->bfd, ".layer-tmp", s->bfd, l->hex) != 0)
		rc = -errno;
	if (rc) {
		rc = oci_errf(s->err, s->errlen, rc, "%s: writing the new layer: %s", s->ref.path,
			      strerror(-rc));
		goto out;
	}
	l->size = g->gz_bytes;
	l->media_type = OCI_MT_LAYER_GZIP;
	l->new_layer = true;
	l->created_by = created_by;
	l->comment = comment;
	oci_save_note_blob(s, l->hex);
	s->nr_layers++;
out:
	close(fd);
	free(g);
	return rc;
}

static const char *oci_save_spool(const struct oci_save_state *s)
{
	return s->req->tmpdir ? s->req->tmpdir : s->parent;
}

static int oci_save_ext4_layer(struct oci_save_state *s)
{
	struct fstree *t = NULL;
	char m[512];
	int rc;

	rc = fstree_new(oci_save_spool(s), NULL, &t, s->err, s->errlen);
	if (rc)
		return rc;
	rc = ext4img_read(s->req->base_ext4, t, m, sizeof(m));
	if (rc) {
		rc = oci_errf(s->err, s->errlen, rc, "%s", m);
		goto out;
	}
	snprintf(s->export_by, sizeof(s->export_by), "minivm image export %s", s->req->base_ext4);
	rc = oci_save_tree_layer(s, t, s->export_by, "minivm: ext4 root filesystem");
out:
	fstree_free(t);
	return rc;
}

/* The guest's tar stream, parsed (whiteouts as plain names) and re-emitted normalised. */
static int oci_save_stream_layer(struct oci_save_state *s)
{
	struct tar_reader *r = NULL;
	struct fstree *t = NULL;
	uint8_t *buf = NULL;
	int rc, lrc;

	rc = fstree_new(oci_save_spool(s), NULL, &t, s->err, s->errlen);
	if (rc)
		return rc;
	buf = malloc(64 * 1024);
	if (!buf || tar_reader_new(&fstree_tar_ops, t, &r) != 0) {
		rc = oci_errf(s->err, s->errlen, -ENOMEM, "out of memory");
		goto out;
	}
	fstree_layer_begin(t, false);
	for (;;) {
		ssize_t n = read(s->req->layer_fd, buf, 64 * 1024);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oci_errf(s->err, s->errlen, -errno, "reading the new layer's tar stream: %s",
				      strerror(errno));
			break;
		}
		if (n == 0) {
			rc = tar_reader_finish(r);
			break;
		}
		rc = tar_reader_feed(r, buf, (size_t)n);
		if (rc)
			break;
	}
	if (rc && tar_reader_error(r)[0])
		rc = oci_errf(s->err, s->errlen, rc, "the new layer's tar stream: %s%s%s",
			      tar_reader_error(r), fstree_error(t)[0] ? ": " : "", fstree_error(t));
	else if (rc == -EPIPE)
		rc = oci_errf(s->err, s->errlen, rc, "the new layer's tar stream: truncated");
	lrc = fstree_layer_end(t);
	if (!rc && lrc)
		rc = oci_errf(s->err, s->errlen, lrc, "the new layer's tar stream: %s",
			      fstree_error(t)[0] ? fstree_error(t) : strerror(-lrc));
	if (rc)
		goto out;
	rc = oci_save_tree_layer(s, t, s->req->created_by ? s->req->created_by : "",
				 "minivm --save");
out:
	tar_reader_free(r);
	free(buf);
	fstree_free(t);
	return rc;
}

static void oci_save_history_entry(struct oci_jw *w, const struct oci_save_state *s,
				   const struct oci_save_layer *l)
{
	oci_jw_begin(w, '{');
	oci_jw_key(w, "created");
	oci_jw_str(w, s->created);
	oci_jw_key(w, "created_by");
	oci_jw_str(w, l->created_by);
	oci_jw_key(w, "comment");
	oci_jw_str(w, l->comment);
	oci_jw_end(w, '}');
}

static void oci_save_rootfs(struct oci_jw *w, const struct oci_save_state *s)
{
	char dg[7 + SHA256_HEX_SIZE];

	oci_jw_begin(w, '{');
	oci_jw_key(w, "type");
	oci_jw_str(w, "layers");
	oci_jw_key(w, "diff_ids");
	oci_jw_begin(w, '[');
	for (uint32_t i = 0; i < s->nr_layers; i++) {
		snprintf(dg, sizeof(dg), "sha256:%s", s->layers[i].diff);
		oci_jw_str(w, dg);
	}
	oci_jw_end(w, ']');
	oci_jw_end(w, '}');
}

static void oci_save_new_history(struct oci_jw *w, const struct oci_save_state *s)
{
	for (uint32_t i = 0; i < s->nr_layers; i++)
		if (s->layers[i].new_layer)
			oci_save_history_entry(w, s, &s->layers[i]);
}

/* The config: the base's with created, rootfs and history updated (all else kept), or a minimal one. */
static int oci_save_config(struct oci_save_state *s, char **out, size_t *len)
{
	const struct oci_config *bc = s->req->base ? oci_image_config(s->req->base) : NULL;
	struct oci_jw w;
	bool had_created = false, had_rootfs = false, had_history = false;

	oci_jw_init(&w);
	oci_jw_begin(&w, '{');
	if (bc) {
		const struct json_node *root = json_root(bc->doc);

		for (const struct json_node *c = json_first(bc->doc, root); c;
		     c = json_next(bc->doc, c)) {
			oci_jw_key(&w, c->key);
			if (strcmp(c->key, "created") == 0 && !had_created) {
				had_created = true;
				oci_jw_str(&w, s->created);
			} else if (strcmp(c->key, "rootfs") == 0 && !had_rootfs) {
				had_rootfs = true;
				oci_save_rootfs(&w, s);
			} else if (strcmp(c->key, "history") == 0 && !had_history) {
				had_history = true;
				oci_jw_begin(&w, '[');
				if (c->type == JSON_ARRAY)
					for (const struct json_node *h = json_first(bc->doc, c); h;
					     h = json_next(bc->doc, h))
						oci_jw_node(&w, bc->doc, h);
				oci_save_new_history(&w, s);
				oci_jw_end(&w, ']');
			} else {
				oci_jw_node(&w, bc->doc, c);
			}
		}
	} else {
		oci_jw_key(&w, "architecture");
		oci_jw_str(&w, "amd64");
		oci_jw_key(&w, "os");
		oci_jw_str(&w, "linux");
		oci_jw_key(&w, "config");
		oci_jw_begin(&w, '{');
		oci_jw_key(&w, "Env");
		oci_jw_begin(&w, '[');
		oci_jw_str(&w, OCI_DEFAULT_PATH);
		oci_jw_end(&w, ']');
		oci_jw_end(&w, '}');
	}
	if (!had_created) {
		oci_jw_key(&w, "created");
		oci_jw_str(&w, s->created);
	}
	if (!had_rootfs) {
		oci_jw_key(&w, "rootfs");
		oci_save_rootfs(&w, s);
	}
	if (!had_history) {
		oci_jw_key(&w, "history");
		oci_jw_begin(&w, '[');
		oci_save_new_history(&w, s);
		oci_jw_end(&w, ']');
	}
	oci_jw_end(&w, '}');
	if (oci_jw_finish(&w, out, len) != 0)
		return oci_errf(s->err, s->errlen, -ENOMEM, "config: out of memory");
	return 0;
}

static int oci_save_small_file(struct oci_save_state *s, const char *name, const char *buf,
			       size_t len)
{
	int fd, rc;

	fd = openat(s->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return oci_errf(s->err, s->errlen, -errno, "%s/%s: %s", s->tmp, name, strerror(errno));
	rc = oci_write_all(fd, buf, len);
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc)
		return oci_errf(s->err, s->errlen, rc, "%s/%s: %s", s->tmp, name, strerror(-rc));
	return 0;
}

/* Builds the whole layout in s->tmp. */
static int oci_save_build(struct oci_save_state *s)
{
	char cfg_hex[SHA256_HEX_SIZE], man_hex[SHA256_HEX_SIZE], dg[7 + SHA256_HEX_SIZE];
	char *cfg = NULL, *man = NULL, *idx = NULL;
	size_t cfg_len, man_len, idx_len;
	struct oci_jw w;
	int rc;

	if (mkdirat(s->tmpfd, "blobs", 0755) != 0 || mkdirat(s->tmpfd, "blobs/sha256", 0755) != 0 ||
	    (s->bfd = openat(s->tmpfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return oci_errf(s->err, s->errlen, -errno, "%s: %s", s->tmp, strerror(errno));
	if (s->req->base) {
		const struct oci_manifest *bm = oci_image_manifest(s->req->base);
		const struct oci_config *bc = oci_image_config(s->req->base);

		if (bm->nr_layers + 1 > OCI_MAX_LAYERS)
			return oci_errf(s->err, s->errlen, -E2BIG, "%s: more than %u layers",
					s->ref.path, OCI_MAX_LAYERS);
		for (uint32_t i = 0; i < bm->nr_layers; i++) {
			struct oci_save_layer *l = &s->layers[s->nr_layers];
			int fd = -1;

			rc = openat(oci_image_blobs_fd(s->req->base), bm->layers[i].hex,
				    O_RDONLY | O_CLOEXEC);
			if (rc < 0)
				return oci_errf(s->err, s->errlen, -errno, "blob sha256:%s: %s",
						bm->layers[i].hex, strerror(errno));
			fd = rc;
			rc = oci_save_reuse(s, fd, &bm->layers[i]);
			close(fd);
			if (rc)
				return rc;
			memcpy(l->hex, bm->layers[i].hex, SHA256_HEX_SIZE);
			memcpy(l->diff, bc->diff_ids[i], SHA256_HEX_SIZE);
			l->size = bm->layers[i].size;
			l->media_type = strcmp(bm->layers[i].media_type, OCI_MT_LAYER_TAR) == 0
						? OCI_MT_LAYER_TAR
						: OCI_MT_LAYER_GZIP;
			s->nr_layers++;
		}
	} else if (s->req->base_ext4) {
		rc = oci_save_ext4_layer(s);
		if (rc)
			return rc;
	}
	if (s->req->layer_fd >= 0) {
		rc = oci_save_stream_layer(s);
		if (rc)
			return rc;
	}
	if (s->nr_layers == 0)
		return oci_errf(s->err, s->errlen, -EINVAL, "%s: nothing to save (no layers)",
				s->ref.path);
	rc = oci_save_config(s, &cfg, &cfg_len);
	if (rc)
		goto out;
	rc = oci_save_put_blob(s, "the config", cfg, cfg_len, cfg_hex);
	if (rc)
		goto out;

	oci_jw_init(&w);
	oci_jw_begin(&w, '{');
	oci_jw_key(&w, "schemaVersion");
	oci_jw_u64(&w, 2);
	oci_jw_key(&w, "mediaType");
	oci_jw_str(&w, OCI_MT_MANIFEST);
	oci_jw_key(&w, "config");
	oci_jw_desc(&w, OCI_MT_CONFIG, cfg_hex, cfg_len);
	oci_jw_key(&w, "layers");
	oci_jw_begin(&w, '[');
	for (uint32_t i = 0; i < s->nr_layers; i++)
		oci_jw_desc(&w, s->layers[i].media_type, s->layers[i].hex, s->layers[i].size);
	oci_jw_end(&w, ']');
	oci_jw_end(&w, '}');
	rc = oci_jw_finish(&w, &man, &man_len);
	if (rc) {
		rc = oci_errf(s->err, s->errlen, rc, "manifest: out of memory");
		goto out;
	}
	rc = oci_save_put_blob(s, "the manifest", man, man_len, man_hex);
	if (rc)
		goto out;

	oci_jw_init(&w);
	oci_jw_begin(&w, '{');
	oci_jw_key(&w, "schemaVersion");
	oci_jw_u64(&w, 2);
	oci_jw_key(&w, "mediaType");
	oci_jw_str(&w, OCI_MT_INDEX);
	oci_jw_key(&w, "manifests");
	oci_jw_begin(&w, '[');
	oci_jw_begin(&w, '{');
	oci_jw_key(&w, "mediaType");
	oci_jw_str(&w, OCI_MT_MANIFEST);
	oci_jw_key(&w, "digest");
	snprintf(dg, sizeof(dg), "sha256:%s", man_hex);
	oci_jw_str(&w, dg);
	oci_jw_key(&w, "size");
	oci_jw_u64(&w, man_len);
	oci_jw_key(&w, "annotations");
	oci_jw_begin(&w, '{');
	oci_jw_key(&w, OCI_ANNOT_REF_NAME);
	oci_jw_str(&w, s->ref.tag[0] ? s->ref.tag : "latest");
	oci_jw_end(&w, '}');
	oci_jw_end(&w, '}');
	oci_jw_end(&w, ']');
	oci_jw_end(&w, '}');
	rc = oci_jw_finish(&w, &idx, &idx_len);
	if (rc) {
		rc = oci_errf(s->err, s->errlen, rc, "index.json: out of memory");
		goto out;
	}
	rc = oci_save_small_file(s, "index.json", idx, idx_len);
	if (rc)
		goto out;
	rc = oci_save_small_file(s, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}",
				 strlen("{\"imageLayoutVersion\":\"1.0.0\"}"));
	if (rc)
		goto out;
	if (fsync(s->bfd) != 0 || oci_fsync_dir(s->tmp) != 0) {
		rc = oci_errf(s->err, s->errlen, -errno, "%s: fsync: %s", s->tmp, strerror(errno));
		goto out;
	}
	{
		int bdir = openat(s->tmpfd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (bdir < 0 || fsync(bdir) != 0)
			rc = oci_errf(s->err, s->errlen, -errno, "%s/blobs: fsync: %s", s->tmp,
				      strerror(errno));
		if (bdir >= 0)
			close(bdir);
	}
out:
	free(cfg);
	free(man);
	free(idx);
	return rc;
}

static int oci_blob_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* One entry of the archive, with data from fd (size bytes) when it is a file. */
static int oci_save_tar_entry(int out, uint8_t *hdr, const char *path, enum tar_type type,
			      int fd, uint64_t size)
{
	struct tar_entry e;
	static const uint8_t zero[TAR_BLOCK];
	uint8_t buf[16384];
	uint64_t off = 0;
	ssize_t n;
	int rc;

	memset(&e, 0, sizeof(e));
	e.type = type;
	snprintf(e.path, sizeof(e.path), "%s", path);
	e.mode = type == TAR_DIR ? 0755 : 0644;
	e.size = type == TAR_REG ? size : 0;
	n = tar_write_header(&e, hdr, TAR_HDR_MAX);
	if (n < 0)
		return (int)n;
	rc = oci_write_all(out, hdr, (size_t)n);
	while (!rc && off < e.size) {
		ssize_t r = pread(fd, buf, sizeof(buf), (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		if ((uint64_t)r > e.size - off)
			r = (ssize_t)(e.size - off);
		rc = oci_write_all(out, buf, (size_t)r);
		off += (uint64_t)r;
	}
	if (!rc && tar_pad(e.size))
		rc = oci_write_all(out, zero, tar_pad(e.size));
	return rc;
}

static int oci_save_tar_file(struct oci_save_state *s, int out, uint8_t *hdr, int dirfd,
			     const char *name, const char *path)
{
	struct stat st;
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = oci_save_tar_entry(out, hdr, path, TAR_REG, fd, (uint64_t)st.st_size);
	close(fd);
	return rc;
}

/* Writes the layout in s->tmp as an archive to a temp file beside DEST, then renames it over DEST. */
static int oci_save_archive(struct oci_save_state *s)
{
	static const uint8_t zero[TAR_END_SIZE];
	char tmpf[PATH_MAX], path[64 + SHA256_HEX_SIZE];
	uint8_t *hdr;
	int out, rc;

	if (snprintf(tmpf, sizeof(tmpf), "%s/.%s.minivm-tmp-XXXXXX", s->parent, s->name) >=
	    (int)sizeof(tmpf))
		return oci_errf(s->err, s->errlen, -ENAMETOOLONG, "%s: path too long", s->ref.path);
	hdr = malloc(TAR_HDR_MAX);
	if (!hdr)
		return oci_errf(s->err, s->errlen, -ENOMEM, "out of memory");
	out = mkostemp(tmpf, O_CLOEXEC);
	if (out < 0) {
		free(hdr);
		return oci_errf(s->err, s->errlen, -errno, "%s: %s", tmpf, strerror(errno));
	}
	qsort(s->blobs, s->nr_blobs, sizeof(s->blobs[0]), oci_blob_cmp);
	rc = oci_save_tar_entry(out, hdr, "blobs", TAR_DIR, -1, 0);
	if (!rc)
		rc = oci_save_tar_entry(out, hdr, "blobs/sha256", TAR_DIR, -1, 0);
	for (uint32_t i = 0; i < s->nr_blobs && !rc; i++) {
		snprintf(path, sizeof(path), "blobs/sha256/%s", s->blobs[i]);
		rc = oci_save_tar_file(s, out, hdr, s->bfd, s->blobs[i], path);
	}
	if (!rc)
		rc = oci_save_tar_file(s, out, hdr, s->tmpfd, "index.json", "index.json");
	if (!rc)
		rc = oci_save_tar_file(s, out, hdr, s->tmpfd, "oci-layout", "oci-layout");
	if (!rc)
		rc = oci_write_all(out, zero, sizeof(zero));
	if (!rc && fchmod(out, 0644) != 0)
		rc = -errno;
	if (!rc && fsync(out) != 0)
		rc = -errno;
	if (!rc && rename(tmpf, s->ref.path) != 0)
		rc = -errno;
	close(out);
	free(hdr);
	if (rc) {
		unlink(tmpf);
		return oci_errf(s->err, s->errlen, rc, "%s: writing the archive: %s", s->ref.path,
				strerror(-rc));
	}
	return 0;
}

static int oci_save_check_dest(struct oci_save_state *s, bool *exists)
{
	struct stat st;

	*exists = false;
	if (lstat(s->ref.path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return oci_errf(s->err, s->errlen, -errno, "%s: %s", s->ref.path, strerror(errno));
	}
	*exists = true;
	if (s->ref.kind == OCI_REF_ARCHIVE) {
		if (!S_ISREG(st.st_mode))
			return oci_errf(s->err, s->errlen, -EEXIST,
					"%s: exists and is not a regular file; refusing to replace it",
					s->ref.path);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return oci_errf(s->err, s->errlen, -EEXIST,
				"%s: exists and is not a directory; refusing to replace it", s->ref.path);
	{
		char lp[PATH_MAX];
		struct stat ls;

		snprintf(lp, sizeof(lp), "%.4000s/oci-layout", s->ref.path);
		if (lstat(lp, &ls) != 0 || !S_ISREG(ls.st_mode))
			return oci_errf(s->err, s->errlen, -EEXIST,
					"%s: exists and is not an OCI image layout (no oci-layout file); refusing to replace it",
					s->ref.path);
	}
	return 0;
}

int oci_save(const struct oci_save_req *req, char *err, size_t errlen)
{
	struct oci_save_state *s;
	char pathcopy[PATH_MAX], namecopy[PATH_MAX];
	bool exists;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return oci_errf(err, errlen, -ENOMEM, "out of memory");
	s->req = req;
	s->err = err;
	s->errlen = errlen;
	s->tmpfd = s->bfd = -1;
	rc = oci_ref_parse(req->dest, &s->ref, err, errlen);
	if (rc)
		goto out_free;
	if (req->base && req->base_ext4) {
		rc = oci_errf(err, errlen, -EINVAL, "save: both a base image and a base ext4 root");
		goto out_free;
	}
	/* The parent directory and the last component, for the sibling temp names. */
	snprintf(pathcopy, sizeof(pathcopy), "%s", s->ref.path);
	while (strlen(pathcopy) > 1 && pathcopy[strlen(pathcopy) - 1] == '/')
		pathcopy[strlen(pathcopy) - 1] = '\0';
	snprintf(namecopy, sizeof(namecopy), "%s", pathcopy);
	snprintf(s->parent, sizeof(s->parent), "%s", dirname(pathcopy));
	snprintf(s->name, sizeof(s->name), "%.255s", basename(namecopy));
	if (!s->name[0] || strcmp(s->name, "/") == 0 || strcmp(s->name, ".") == 0 ||
	    strcmp(s->name, "..") == 0) {
		rc = oci_errf(err, errlen, -EINVAL, "%s: not a usable destination", s->ref.path);
		goto out_free;
	}
	if (req->created) {
		snprintf(s->created, sizeof(s->created), "%.63s", req->created);
	} else {
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(s->created, sizeof(s->created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	rc = oci_save_check_dest(s, &exists);
	if (rc)
		goto out_free;
	if (snprintf(s->tmp, sizeof(s->tmp), "%s/.%s.minivm-tmp-XXXXXX", s->parent, s->name) >=
	    (int)sizeof(s->tmp)) {
		rc = oci_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", s->ref.path);
		goto out_free;
	}
	if (!mkdtemp(s->tmp)) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", s->tmp, strerror(errno));
		goto out_free;
	}
	if (chmod(s->tmp, 0755) != 0 ||
	    (s->tmpfd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", s->tmp, strerror(errno));
		goto out_rm;
	}
	rc = oci_save_build(s);
	if (rc)
		goto out_rm;
	if (s->ref.kind == OCI_REF_ARCHIVE) {
		rc = oci_save_archive(s);
		goto out_rm; /* the layout directory was only a staging area */
	}
	if (!exists) {
		if (renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->ref.path, RENAME_NOREPLACE) != 0) {
			rc = oci_errf(err, errlen, -errno, "%s: %s", s->ref.path,
				      errno == EEXIST ? "appeared while saving; not replaced"
						      : strerror(errno));
			goto out_rm;
		}
	} else {
		/* Both names stay valid at every instant: the old layout or the new one. */
		if (renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->ref.path, RENAME_EXCHANGE) != 0) {
			rc = oci_errf(err, errlen, -errno, "%s: exchanging with the new image: %s",
				      s->ref.path, strerror(errno));
			goto out_rm;
		}
		/* s->tmp now holds the old layout: removed below. */
	}
	if (oci_fsync_dir(s->parent) != 0)
		fprintf(stderr, "minivm: warning: fsync of %s failed\n", s->parent);
	if (!exists) {
		s->tmp[0] = '\0';
		goto out_close;
	}
out_rm:
	if (s->ref.kind == OCI_REF_ARCHIVE && !rc && oci_fsync_dir(s->parent) != 0)
		fprintf(stderr, "minivm: warning: fsync of %s failed\n", s->parent);
	if (s->tmp[0] && oci_rm_rf(s->tmp) != 0)
		fprintf(stderr, "minivm: warning: could not remove %s\n", s->tmp);
out_close:
	if (s->bfd >= 0)
		close(s->bfd);
	if (s->tmpfd >= 0)
		close(s->tmpfd);
out_free:
	free(s);
	return rc;
}
