/* Opening an OCI image (layout directory or archive): index, manifest and config read and every blob verified before use; then its layers unpacked into an fstree. */
#include "vmm/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rootfs/agent/tar.h"
#include "vmm/oci_priv.h"

#define OCI_IO_CHUNK (64 * 1024)

struct oci_image {
	char layout[PATH_MAX];    /* the layout directory */
	char blobs[PATH_MAX];     /* layout/blobs/sha256 */
	char extracted[PATH_MAX]; /* the archive's extraction dir to remove, or "" */
	int dirfd, blobs_fd;
	char digest[7 + SHA256_HEX_SIZE];
	struct oci_manifest man;
	struct oci_config *cfg;
	int layer_fds[OCI_MAX_LAYERS];
};

const char *oci_image_digest(const struct oci_image *img)
{
	return img->digest;
}

const struct oci_manifest *oci_image_manifest(const struct oci_image *img)
{
	return &img->man;
}

const struct oci_config *oci_image_config(const struct oci_image *img)
{
	return img->cfg;
}

int oci_image_blobs_fd(const struct oci_image *img)
{
	return img->blobs_fd;
}

const char *oci_image_blobs_path(const struct oci_image *img)
{
	return img->blobs;
}

void oci_close(struct oci_image *img)
{
	if (!img)
		return;
	for (uint32_t i = 0; i < OCI_MAX_LAYERS; i++)
		if (img->layer_fds[i] >= 0)
			close(img->layer_fds[i]);
	if (img->blobs_fd >= 0)
		close(img->blobs_fd);
	if (img->dirfd >= 0)
		close(img->dirfd);
	if (img->extracted[0] && oci_rm_rf(img->extracted) != 0)
		fprintf(stderr, "minivm: could not remove %s\n", img->extracted);
	oci_config_free(img->cfg);
	free(img);
}

/* Opens blobs/sha256/<hex> (hex validated by the parsers) and checks it is a regular file of size bytes. */
static int oci_blob_open(struct oci_image *img, const struct oci_desc *d, int *out, char *err,
			 size_t errlen)
{
	struct stat st;
	int fd;

	*out = -1;
	fd = openat(img->blobs_fd, d->hex, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return oci_errf(err, errlen, -ENOENT, "blob sha256:%s: missing from %s", d->hex,
					img->blobs);
		return oci_errf(err, errlen, -errno, "blob sha256:%s: %s", d->hex, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return oci_errf(err, errlen, -EINVAL, "blob sha256:%s: not a regular file", d->hex);
	}
	if ((uint64_t)st.st_size != d->size) {
		close(fd);
		return oci_errf(err, errlen, -EINVAL,
				"blob sha256:%s: size %lld does not match the descriptor's %llu", d->hex,
				(long long)st.st_size, (unsigned long long)d->size);
	}
	*out = fd;
	return 0;
}

/* sha256 of the whole of fd (from offset 0, with pread) against d. */
static int oci_blob_verify_fd(int fd, const struct oci_desc *d, char *err, size_t errlen)
{
	uint8_t *buf, dig[SHA256_DIGEST_SIZE];
	char hex[SHA256_HEX_SIZE];
	struct sha256 s;
	uint64_t off = 0;
	int rc = 0;

	buf = malloc(OCI_IO_CHUNK);
	if (!buf)
		return oci_errf(err, errlen, -ENOMEM, "blob sha256:%s: out of memory", d->hex);
	sha256_init(&s);
	while (off < d->size) {
		ssize_t n = pread(fd, buf, OCI_IO_CHUNK, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oci_errf(err, errlen, -errno, "blob sha256:%s: %s", d->hex, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (off != d->size) {
		rc = oci_errf(err, errlen, -EINVAL, "blob sha256:%s: shorter than its size %llu",
			      d->hex, (unsigned long long)d->size);
		goto out;
	}
	sha256_final(&s, dig);
	sha256_to_hex(dig, hex);
	if (strcmp(hex, d->hex) != 0)
		rc = oci_errf(err, errlen, -EBADMSG, "blob sha256:%s: digest mismatch (content is sha256:%s)",
			      d->hex, hex);
out:
	free(buf);
	return rc;
}

/* Reads a small JSON blob (manifest, config, nested index), verified. */
static int oci_blob_read(struct oci_image *img, const struct oci_desc *d, char **out, size_t *len,
			 char *err, size_t errlen)
{
	uint8_t dig[SHA256_DIGEST_SIZE];
	char hex[SHA256_HEX_SIZE];
	int fd, rc;

	*out = NULL;
	if (d->size > OCI_JSON_MAX)
		return oci_errf(err, errlen, -E2BIG, "blob sha256:%s: %llu bytes, more than %u",
				d->hex, (unsigned long long)d->size, OCI_JSON_MAX);
	rc = oci_blob_open(img, d, &fd, err, errlen);
	if (rc)
		return rc;
	close(fd);
	rc = oci_read_small(img->blobs_fd, d->hex, OCI_JSON_MAX, out, len, err, errlen);
	if (rc)
		return rc;
	sha256_digest(*out, *len, dig);
	sha256_to_hex(dig, hex);
	if (*len != d->size || strcmp(hex, d->hex) != 0) {
		free(*out);
		*out = NULL;
		return oci_errf(err, errlen, -EBADMSG, "blob sha256:%s: digest mismatch (content is sha256:%s)",
				d->hex, hex);
	}
	return 0;
}

static int oci_check_layout_file(int dirfd, char *err, size_t errlen)
{
	const struct json_node *v;
	struct json_doc *doc;
	char *buf, jerr[160];
	size_t len;
	const char *ver;
	int rc;

	rc = oci_read_small(dirfd, "oci-layout", 4096, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = json_parse(buf, len, NULL, &doc, jerr, sizeof(jerr));
	free(buf);
	if (rc)
		return oci_errf(err, errlen, -EINVAL, "oci-layout: %s", jerr);
	v = json_root(doc);
	ver = json_get_str(doc, v, "imageLayoutVersion");
	if (!ver || strcmp(ver, "1.0.0") != 0)
		rc = oci_errf(err, errlen, -EINVAL, "oci-layout: imageLayoutVersion is %.32s, not 1.0.0",
			      ver ? ver : "(missing)");
	json_free(doc);
	return rc;
}

/* ---- archive extraction ---- */

struct oci_xtract {
	int dirfd, blobs_fd;
	int cur;         /* the file being written, or -1 */
	char name[80];   /* its name in messages */
	struct tar_reader *r;
};

static bool oci_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int oci_x_close(struct oci_xtract *x)
{
	int rc = 0;

	if (x->cur >= 0) {
		if (close(x->cur) != 0)
			rc = -errno;
		x->cur = -1;
	}
	return rc;
}

static int oci_x_entry(void *ctx, const struct tar_entry *e)
{
	struct oci_xtract *x = ctx;
	int dfd = -1;
	const char *name = NULL;
	int rc;

	rc = oci_x_close(x);
	if (rc)
		return rc;
	if (e->type == TAR_DIR)
		return 0;
	if (e->type != TAR_REG) {
		tar_reader_set_error(x->r, "archive entry '%.200s': not a regular file or directory",
				     e->path);
		return -EINVAL;
	}
	if (strcmp(e->path, "oci-layout") == 0 || strcmp(e->path, "index.json") == 0) {
		dfd = x->dirfd;
		name = e->path;
	} else if (strncmp(e->path, "blobs/sha256/", 13) == 0 && oci_hex64(e->path + 13)) {
		dfd = x->blobs_fd;
		name = e->path + 13;
	} else {
		return 0; /* not part of the layout (e.g. a Docker manifest.json): skipped */
	}
	snprintf(x->name, sizeof(x->name), "%.79s", e->path);
	x->cur = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (x->cur < 0) {
		rc = -errno;
		tar_reader_set_error(x->r, "archive entry '%s': %s", x->name,
				     rc == -EEXIST ? "appears twice" : strerror(-rc));
		return rc;
	}
	return 0;
}

static int oci_x_data(void *ctx, const void *buf, size_t len)
{
	struct oci_xtract *x = ctx;
	int rc;

	if (x->cur < 0)
		return 0;
	rc = oci_write_all(x->cur, buf, len);
	if (rc)
		tar_reader_set_error(x->r, "archive entry '%s': %s", x->name, strerror(-rc));
	return rc;
}

static const struct tar_reader_ops oci_x_ops = { .entry = oci_x_entry, .data = oci_x_data };

/* Extracts the layout files of archive into a fresh directory under tmpdir (img->extracted). */
static int oci_extract(struct oci_image *img, const char *archive, const char *tmpdir, char *err,
		       size_t errlen)
{
	struct oci_xtract x = { .dirfd = -1, .blobs_fd = -1, .cur = -1 };
	uint8_t *buf = NULL;
	int fd = -1, rc;
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s/minivm-oci-XXXXXX", tmpdir ? tmpdir : "/tmp") >=
	    (int)sizeof(dir))
		return oci_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", tmpdir);
	fd = open(archive, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return oci_errf(err, errlen, -errno, "%s: %s", archive, strerror(errno));
	if (!mkdtemp(dir)) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	memcpy(img->extracted, dir, sizeof(dir));
	x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.dirfd < 0 || mkdirat(x.dirfd, "blobs", 0755) != 0 ||
	    mkdirat(x.dirfd, "blobs/sha256", 0755) != 0 ||
	    (x.blobs_fd = openat(x.dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	buf = malloc(OCI_IO_CHUNK);
	rc = tar_reader_new(&oci_x_ops, &x, &x.r);
	if (rc || !buf) {
		rc = oci_errf(err, errlen, -ENOMEM, "%s: out of memory", archive);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, OCI_IO_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oci_errf(err, errlen, -errno, "%s: %s", archive, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		rc = tar_reader_feed(x.r, buf, (size_t)n);
		if (rc)
			break;
	}
	if (!rc)
		rc = tar_reader_finish(x.r);
	if (rc) {
		rc = oci_errf(err, errlen, rc, "%s: %s", archive, tar_reader_error(x.r));
		goto out;
	}
	rc = oci_x_close(&x);
	if (rc)
		rc = oci_errf(err, errlen, rc, "%s: %s", archive, strerror(-rc));
out:
	(void)oci_x_close(&x);
	tar_reader_free(x.r);
	free(buf);
	if (x.blobs_fd >= 0)
		close(x.blobs_fd);
	if (x.dirfd >= 0)
		close(x.dirfd);
	close(fd);
	return rc;
}

int oci_open(const struct oci_ref *ref, const char *tmpdir, struct oci_image **out, char *err,
	     size_t errlen)
{
	struct oci_image *img;
	struct oci_desc md;
	char *buf = NULL;
	size_t len;
	int rc;

	*out = NULL;
	img = calloc(1, sizeof(*img));
	if (!img)
		return oci_errf(err, errlen, -ENOMEM, "out of memory");
	img->dirfd = img->blobs_fd = -1;
	for (uint32_t i = 0; i < OCI_MAX_LAYERS; i++)
		img->layer_fds[i] = -1;
	if (ref->kind == OCI_REF_ARCHIVE) {
		rc = oci_extract(img, ref->path, tmpdir, err, errlen);
		if (rc)
			goto fail;
		memcpy(img->layout, img->extracted, sizeof(img->layout));
	} else {
		snprintf(img->layout, sizeof(img->layout), "%s", ref->path);
	}
	if (snprintf(img->blobs, sizeof(img->blobs), "%s/blobs/sha256", img->layout) >=
	    (int)sizeof(img->blobs)) {
		rc = oci_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", img->layout);
		goto fail;
	}
	img->dirfd = open(img->layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", ref->path, strerror(errno));
		goto fail;
	}
	rc = oci_check_layout_file(img->dirfd, err, errlen);
	if (rc)
		goto fail;
	img->blobs_fd = openat(img->dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->blobs_fd < 0) {
		rc = oci_errf(err, errlen, -errno, "%s: blobs/sha256: %s", ref->path, strerror(errno));
		goto fail;
	}
	rc = oci_read_small(img->dirfd, "index.json", OCI_JSON_MAX, &buf, &len, err, errlen);
	if (rc)
		goto fail;
	rc = oci_index_select(buf, len, ref->tag, false, &md, err, errlen);
	free(buf);
	buf = NULL;
	if (rc)
		goto fail;
	rc = oci_blob_read(img, &md, &buf, &len, err, errlen);
	if (rc)
		goto fail;
	if (strcmp(md.media_type, OCI_MT_INDEX) == 0 || strcmp(md.media_type, OCI_MT_DOCKER_LIST) == 0) {
		/* One nested index (a multi-platform image): its linux/amd64 manifest. */
		rc = oci_index_select(buf, len, NULL, true, &md, err, errlen);
		free(buf);
		buf = NULL;
		if (rc)
			goto fail;
		if (strcmp(md.media_type, OCI_MT_INDEX) == 0 ||
		    strcmp(md.media_type, OCI_MT_DOCKER_LIST) == 0) {
			rc = oci_errf(err, errlen, -EINVAL,
				      "blob sha256:%s: an image index nested twice", md.hex);
			goto fail;
		}
		rc = oci_blob_read(img, &md, &buf, &len, err, errlen);
		if (rc)
			goto fail;
	}
	snprintf(img->digest, sizeof(img->digest), "sha256:%s", md.hex);
	rc = oci_manifest_parse(buf, len, &img->man, err, errlen);
	free(buf);
	buf = NULL;
	if (rc) {
		char m[256];

		snprintf(m, sizeof(m), "%s", err);
		rc = oci_errf(err, errlen, rc, "manifest sha256:%s: %s", md.hex, m);
		goto fail;
	}
	rc = oci_blob_read(img, &img->man.config, &buf, &len, err, errlen);
	if (rc)
		goto fail;
	rc = oci_config_parse(buf, len, &img->cfg, err, errlen);
	free(buf);
	buf = NULL;
	if (rc) {
		char m[256];

		snprintf(m, sizeof(m), "%s", err);
		rc = oci_errf(err, errlen, rc, "config sha256:%s: %s", img->man.config.hex, m);
		goto fail;
	}
	if (img->cfg->nr_diff_ids != img->man.nr_layers) {
		rc = oci_errf(err, errlen, -EINVAL,
			      "config sha256:%s: %u diff_ids for %u layers in the manifest",
			      img->man.config.hex, img->cfg->nr_diff_ids, img->man.nr_layers);
		goto fail;
	}
	/* Every layer verified before anything is unpacked; the fds stay open. */
	for (uint32_t i = 0; i < img->man.nr_layers; i++) {
		rc = oci_blob_open(img, &img->man.layers[i], &img->layer_fds[i], err, errlen);
		if (rc)
			goto fail;
		rc = oci_blob_verify_fd(img->layer_fds[i], &img->man.layers[i], err, errlen);
		if (rc)
			goto fail;
	}
	*out = img;
	return 0;
fail:
	free(buf);
	oci_close(img);
	return rc;
}

/* ---- unpacking ---- */

struct oci_unpacker {
	struct fstree *t;
	struct tar_reader *r;
	struct sha256 diff;
	const struct oci_desc *d;
	uint32_t idx;
	char *err;
	size_t errlen;
};

/* Tar bytes (after gunzip) into the diff_id hash and the tree. */
static int oci_unpack_tar(struct oci_unpacker *u, const void *buf, size_t len)
{
	int rc;

	sha256_update(&u->diff, buf, len);
	rc = tar_reader_feed(u->r, buf, len);
	if (rc) {
		const char *fe = fstree_error(u->t);

		return oci_errf(u->err, u->errlen, rc, "blob sha256:%s (layer %u): %s%s%s", u->d->hex,
				u->idx, tar_reader_error(u->r), fe[0] ? ": " : "", fe);
	}
	return 0;
}

static int oci_unpack_layer(struct oci_image *img, uint32_t idx, struct fstree *t, uint8_t *in,
			    uint8_t *outb, char *err, size_t errlen)
{
	const struct oci_desc *d = &img->man.layers[idx];
	bool gz = strcmp(d->media_type, OCI_MT_LAYER_TAR) != 0;
	struct oci_unpacker u = { .t = t, .d = d, .idx = idx, .err = err, .errlen = errlen };
	struct sha256 comp;
	uint8_t dig[SHA256_DIGEST_SIZE];
	char hex[SHA256_HEX_SIZE];
	z_stream z;
	bool zinit = false, zend = false;
	uint64_t off = 0;
	int rc;

	memset(&z, 0, sizeof(z));
	sha256_init(&comp);
	sha256_init(&u.diff);
	rc = tar_reader_new(&fstree_tar_ops, t, &u.r);
	if (rc)
		return oci_errf(err, errlen, rc, "blob sha256:%s: out of memory", d->hex);
	if (gz) {
		/* windowBits 15 + 16: gzip wrapper only. */
		if (inflateInit2(&z, 15 + 16) != Z_OK) {
			rc = oci_errf(err, errlen, -ENOMEM, "blob sha256:%s: zlib init failed", d->hex);
			goto out;
		}
		zinit = true;
	}
	fstree_layer_begin(t, true);
	/* Bounded: at most d->size bytes are read (the blob was verified to be that size). */
	while (off < d->size) {
		size_t want = d->size - off < OCI_IO_CHUNK ? (size_t)(d->size - off) : OCI_IO_CHUNK;
		ssize_t n = pread(img->layer_fds[idx], in, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oci_errf(err, errlen, -errno, "blob sha256:%s: %s", d->hex, strerror(errno));
			goto out;
		}
		if (n == 0) {
			rc = oci_errf(err, errlen, -EIO, "blob sha256:%s: shrank while being read", d->hex);
			goto out;
		}
		off += (uint64_t)n;
		sha256_update(&comp, in, (size_t)n);
		if (!gz) {
			rc = oci_unpack_tar(&u, in, (size_t)n);
			if (rc)
				goto out;
			continue;
		}
		if (zend) {
			rc = oci_errf(err, errlen, -EBADMSG,
				      "blob sha256:%s (layer %u): trailing data after the gzip stream",
				      d->hex, idx);
			goto out;
		}
		z.next_in = in;
		z.avail_in = (uInt)n;
		while (z.avail_in > 0 && !zend) {
			int zrc;

			z.next_out = outb;
			z.avail_out = OCI_IO_CHUNK;
			zrc = inflate(&z, Z_NO_FLUSH);
			if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR) {
				rc = oci_errf(err, errlen, -EBADMSG,
					      "blob sha256:%s (layer %u): corrupt gzip stream: %s",
					      d->hex, idx, z.msg ? z.msg : "inflate failed");
				goto out;
			}
			if (OCI_IO_CHUNK - z.avail_out > 0) {
				rc = oci_unpack_tar(&u, outb, OCI_IO_CHUNK - z.avail_out);
				if (rc)
					goto out;
			}
			if (zrc == Z_STREAM_END)
				zend = true;
			else if (zrc == Z_BUF_ERROR && z.avail_out != 0)
				break; /* needs more input */
		}
		if (zend && z.avail_in > 0) {
			rc = oci_errf(err, errlen, -EBADMSG,
				      "blob sha256:%s (layer %u): trailing data after the gzip stream",
				      d->hex, idx);
			goto out;
		}
	}
	if (gz && !zend) {
		/* Input ended: drain what inflate still holds, then it must have ended. */
		for (int k = 0; k < 1 << 20 && !zend; k++) {
			int zrc;

			z.next_in = NULL;
			z.avail_in = 0;
			z.next_out = outb;
			z.avail_out = OCI_IO_CHUNK;
			zrc = inflate(&z, Z_NO_FLUSH);
			if (OCI_IO_CHUNK - z.avail_out > 0) {
				rc = oci_unpack_tar(&u, outb, OCI_IO_CHUNK - z.avail_out);
				if (rc)
					goto out;
			}
			if (zrc == Z_STREAM_END)
				zend = true;
			else if (zrc != Z_OK || z.avail_out != 0)
				break;
		}
		if (!zend) {
			rc = oci_errf(err, errlen, -EPIPE,
				      "blob sha256:%s (layer %u): truncated gzip stream", d->hex, idx);
			goto out;
		}
	}
	rc = tar_reader_finish(u.r);
	if (rc) {
		const char *fe = fstree_error(t);

		rc = oci_errf(err, errlen, rc, "blob sha256:%s (layer %u): %s%s%s", d->hex, idx,
			      tar_reader_error(u.r)[0] ? tar_reader_error(u.r) : "truncated tar stream",
			      fe[0] ? ": " : "", fe);
		goto out;
	}
	sha256_final(&comp, dig);
	sha256_to_hex(dig, hex);
	if (strcmp(hex, d->hex) != 0) {
		rc = oci_errf(err, errlen, -EBADMSG, "blob sha256:%s: changed since it was verified",
			      d->hex);
		goto out;
	}
	sha256_final(&u.diff, dig);
	sha256_to_hex(dig, hex);
	if (strcmp(hex, img->cfg->diff_ids[idx]) != 0) {
		rc = oci_errf(err, errlen, -EBADMSG,
			      "blob sha256:%s (layer %u): uncompressed sha256:%s does not match diff_id sha256:%s",
			      d->hex, idx, hex, img->cfg->diff_ids[idx]);
		goto out;
	}
	rc = 0;
out:
	{
		int lrc = fstree_layer_end(t);

		if (!rc && lrc)
			rc = oci_errf(err, errlen, lrc, "blob sha256:%s (layer %u): %s", d->hex, idx,
				      fstree_error(t)[0] ? fstree_error(t) : strerror(-lrc));
	}
	if (zinit)
		inflateEnd(&z);
	tar_reader_free(u.r);
	return rc;
}

int oci_unpack(struct oci_image *img, struct fstree *t, char *err, size_t errlen)
{
	uint8_t *in = malloc(OCI_IO_CHUNK), *outb = malloc(OCI_IO_CHUNK);
	int rc = 0;

	if (!in || !outb) {
		rc = oci_errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < img->man.nr_layers && !rc; i++)
		rc = oci_unpack_layer(img, i, t, in, outb, err, errlen);
out:
	free(in);
	free(outb);
	return rc;
}
