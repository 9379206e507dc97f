/* Unit tests for vmm/oci*.c: references, layouts built here and opened/unpacked, every bad input with its message, save round trips and atomic replacement, the cached ext4 root. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rootfs/agent/tar.h"
#include "vmm/ext4img.h"
#include "vmm/fstree.h"
#include "vmm/oci.h"

/* ---- building archives and layouts ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 1024;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void tar_add(struct buf *b, enum tar_type type, const char *path, const char *link,
		    const char *data, uint32_t mode)
{
	struct tar_entry e;
	uint8_t hdr[TAR_HDR_MAX];
	static const uint8_t zero[TAR_BLOCK];
	ssize_t n;

	memset(&e, 0, sizeof(e));
	e.type = type;
	snprintf(e.path, sizeof(e.path), "%s", path);
	if (link)
		snprintf(e.link, sizeof(e.link), "%s", link);
	e.mode = mode;
	e.size = type == TAR_REG && data ? strlen(data) : 0;
	n = tar_write_header(&e, hdr, sizeof(hdr));
	ck_assert_int_gt(n, 0);
	buf_put(b, hdr, (size_t)n);
	if (e.size) {
		buf_put(b, data, e.size);
		buf_put(b, zero, tar_pad(e.size));
	}
}

/* A raw ustar header with any name (e.g. "../x", "/abs"), checksum fixed. */
static void tar_add_raw(struct buf *b, char typeflag, const char *name, const char *link)
{
	uint8_t h[TAR_BLOCK];
	unsigned int sum = 0;

	memset(h, 0, sizeof(h));
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	memcpy(h + 124, "00000000000", 12);
	memcpy(h + 136, "00000000000", 12);
	h[156] = (uint8_t)typeflag;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	buf_put(b, h, sizeof(h));
}

static void tar_end(struct buf *b)
{
	static const uint8_t zero[TAR_END_SIZE];

	buf_put(b, zero, sizeof(zero));
}

static void gzip_buf(const struct buf *in, struct buf *out)
{
	z_stream z;
	uint8_t chunk[4096];
	int rc;

	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = in->p;
	z.avail_in = (uInt)in->len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		ck_assert(rc == Z_OK || rc == Z_STREAM_END);
		buf_put(out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
}

static void hex_of(const void *d, size_t n, char hex[SHA256_HEX_SIZE])
{
	uint8_t dig[SHA256_DIGEST_SIZE];

	sha256_digest(d, n, dig);
	sha256_to_hex(dig, hex);
}

static void write_file(const char *path, const void *d, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, d, n), (ssize_t)n);
	close(fd);
}

static void write_blob(const char *dir, const void *d, size_t n, char hex[SHA256_HEX_SIZE])
{
	char p[PATH_MAX];

	hex_of(d, n, hex);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", dir, hex);
	write_file(p, d, n);
}

struct layer {
	struct buf tar;  /* uncompressed */
	struct buf blob; /* as stored (gzip or tar, or anything a test puts there) */
	const char *mt;
	const char *diff_override; /* a diff_id to write instead of the real one */
};

static char g_tmp[64];

static void mk_tmp(void)
{
	snprintf(g_tmp, sizeof(g_tmp), "/tmp/test_oci.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_tmp));
}

static void rm_tmp(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes an OCI layout at dir with these layers; config extra JSON members in cfg_extra. */
static void build_image(const char *dir, struct layer *ls, int n, const char *tag,
			const char *cfg_extra, char man_hex_out[SHA256_HEX_SIZE])
{
	char p[PATH_MAX], hex[SHA256_HEX_SIZE], cfg_hex[SHA256_HEX_SIZE], man_hex[SHA256_HEX_SIZE];
	char *cfg = calloc(1, 65536), *man = calloc(1, 65536), *idx = calloc(1, 8192);
	size_t cl = 0, ml = 0;

	ck_assert_ptr_nonnull(cfg);
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/blobs", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/blobs/sha256", dir);
	mkdir(p, 0755);
	cl += (size_t)sprintf(cfg + cl, "{\"architecture\":\"amd64\",\"os\":\"linux\",%s"
				      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
			      cfg_extra ? cfg_extra : "");
	ml += (size_t)sprintf(man + ml, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"layers\":[",
			      OCI_MT_MANIFEST);
	for (int i = 0; i < n; i++) {
		char dh[SHA256_HEX_SIZE];

		if (!ls[i].blob.len && ls[i].tar.len) {
			if (ls[i].mt && strstr(ls[i].mt, "gzip"))
				gzip_buf(&ls[i].tar, &ls[i].blob);
			else
				buf_put(&ls[i].blob, ls[i].tar.p, ls[i].tar.len);
		}
		hex_of(ls[i].tar.p, ls[i].tar.len, dh);
		cl += (size_t)sprintf(cfg + cl, "%s\"sha256:%s\"", i ? "," : "",
				      ls[i].diff_override ? ls[i].diff_override : dh);
		write_blob(dir, ls[i].blob.p, ls[i].blob.len, hex);
		ml += (size_t)sprintf(man + ml,
				      "%s{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%zu}",
				      i ? "," : "", ls[i].mt ? ls[i].mt : OCI_MT_LAYER_GZIP, hex,
				      ls[i].blob.len);
	}
	cl += (size_t)sprintf(cfg + cl, "]},\"history\":[{\"created_by\":\"base\"}]}");
	write_blob(dir, cfg, cl, cfg_hex);
	ml += (size_t)sprintf(man + ml,
			      "],\"config\":{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%zu}}",
			      OCI_MT_CONFIG, cfg_hex, cl);
	write_blob(dir, man, ml, man_hex);
	sprintf(idx,
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\","
		"\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}}]}",
		OCI_MT_MANIFEST, man_hex, ml, tag ? tag : "latest");
	snprintf(p, sizeof(p), "%s/index.json", dir);
	write_file(p, idx, strlen(idx));
	snprintf(p, sizeof(p), "%s/oci-layout", dir);
	write_file(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	if (man_hex_out)
		memcpy(man_hex_out, man_hex, SHA256_HEX_SIZE);
	free(cfg);
	free(man);
	free(idx);
}

static void free_layers(struct layer *ls, int n)
{
	for (int i = 0; i < n; i++) {
		free(ls[i].tar.p);
		free(ls[i].blob.p);
	}
}

/* Opens oci:dir and unpacks into a fresh tree; returns the first error (err filled). */
static int open_unpack(const char *ref_s, struct fstree **tp, struct oci_image **imgp, char *err,
		       size_t errlen)
{
	struct oci_ref ref;
	struct oci_image *img = NULL;
	int rc;

	*tp = NULL;
	rc = oci_ref_parse(ref_s, &ref, err, errlen);
	if (rc)
		return rc;
	rc = oci_open(&ref, g_tmp, &img, err, errlen);
	if (rc)
		return rc;
	ck_assert_int_eq(fstree_new(g_tmp, NULL, tp, err, errlen), 0);
	rc = oci_unpack(img, *tp, err, errlen);
	if (imgp)
		*imgp = img;
	else
		oci_close(img);
	return rc;
}

static void node_data(struct fstree *t, const char *path, char *out, size_t outsz)
{
	struct fstree_node *n = fstree_lookup(t, path);
	ssize_t r;

	ck_assert_msg(n != NULL, "no %s", path);
	ck_assert_int_eq(n->type, TAR_REG);
	ck_assert_uint_lt(n->size, outsz);
	r = fstree_read(t, n, 0, out, outsz - 1);
	ck_assert_int_eq(r, (ssize_t)n->size);
	out[r] = '\0';
}

/* Two layers: base files, then a whiteout, an opaque dir and a change. */
static void two_layers(struct layer ls[2])
{
	memset(ls, 0, 2 * sizeof(ls[0]));
	tar_add(&ls[0].tar, TAR_DIR, "etc", NULL, NULL, 0755);
	tar_add(&ls[0].tar, TAR_REG, "etc/hostname", NULL, "base\n", 0644);
	tar_add(&ls[0].tar, TAR_REG, "etc/gone", NULL, "x", 0600);
	tar_add(&ls[0].tar, TAR_DIR, "opq", NULL, NULL, 0755);
	tar_add(&ls[0].tar, TAR_REG, "opq/old", NULL, "old", 0644);
	tar_add(&ls[0].tar, TAR_SYMLINK, "sbin", "usr/sbin", NULL, 0777);
	tar_add(&ls[0].tar, TAR_DIR, "usr", NULL, NULL, 0755);
	tar_add(&ls[0].tar, TAR_DIR, "usr/sbin", NULL, NULL, 0755);
	tar_end(&ls[0].tar);
	ls[0].mt = OCI_MT_LAYER_GZIP;
	tar_add(&ls[1].tar, TAR_REG, "etc/.wh.gone", NULL, "", 0644);
	tar_add(&ls[1].tar, TAR_REG, "etc/hostname", NULL, "top\n", 0640);
	tar_add(&ls[1].tar, TAR_DIR, "opq", NULL, NULL, 0700);
	tar_add(&ls[1].tar, TAR_REG, "opq/.wh..wh..opq", NULL, "", 0644);
	tar_add(&ls[1].tar, TAR_REG, "opq/new", NULL, "new", 0644);
	tar_end(&ls[1].tar);
	ls[1].mt = OCI_MT_LAYER_TAR;
}

/* ---- tests ---- */

START_TEST(test_ref_parse)
{
	struct oci_ref r;
	char err[256];

	ck_assert_int_eq(oci_ref_parse("oci:/a/b", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(r.kind, OCI_REF_DIR);
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_str_eq(r.tag, "");
	ck_assert_int_eq(oci_ref_parse("oci:/a/b:v1.2-x", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_str_eq(r.tag, "v1.2-x");
	ck_assert_int_eq(oci_ref_parse("oci-archive:x.tar:latest", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(r.kind, OCI_REF_ARCHIVE);
	ck_assert_str_eq(r.path, "x.tar");
	ck_assert_str_eq(r.tag, "latest");
	/* A ':' inside the path: what follows the last one is not a tag (has '/'). */
	ck_assert_int_eq(oci_ref_parse("oci:a:b/c", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.path, "a:b/c");
	ck_assert_str_eq(r.tag, "");
	ck_assert_int_eq(oci_ref_parse("oci:a:b/c:t", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.path, "a:b/c");
	ck_assert_str_eq(r.tag, "t");
	/* ".x" is not a valid tag (cannot start with '.'): all path. */
	ck_assert_int_eq(oci_ref_parse("oci:dir:.x", &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.path, "dir:.x");
	ck_assert_int_eq(oci_ref_parse("docker://x", &r, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "oci:DIR"));
	ck_assert_int_eq(oci_ref_parse("oci:", &r, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(oci_ref_parse("oci::tag", &r, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "empty path"));
	ck_assert(oci_tag_valid("_a"));
	ck_assert(!oci_tag_valid("-a"));
	ck_assert(!oci_tag_valid(""));
}
END_TEST

START_TEST(test_open_unpack)
{
	struct layer ls[2];
	char dir[PATH_MAX], ref[PATH_MAX + 16], err[512], d[64], mh[SHA256_HEX_SIZE];
	struct oci_image *img;
	struct fstree *t;
	const struct oci_config *c;

	mk_tmp();
	two_layers(ls);
	snprintf(dir, sizeof(dir), "%s/img", g_tmp);
	build_image(dir, ls, 2, "v1",
		    "\"config\":{\"Env\":[\"A=1\",\"PATH=/bin\"],\"WorkingDir\":\"/w\",\"User\":\"1000\"},",
		    mh);
	snprintf(ref, sizeof(ref), "oci:%s:v1", dir);
	ck_assert_msg(open_unpack(ref, &t, &img, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(oci_image_digest(img) + 7, mh);
	c = oci_image_config(img);
	ck_assert_uint_eq(c->nr_env, 2);
	ck_assert_str_eq(c->env[0], "A=1");
	ck_assert_str_eq(c->working_dir, "/w");
	ck_assert_str_eq(c->user, "1000");
	node_data(t, "etc/hostname", d, sizeof(d));
	ck_assert_str_eq(d, "top\n");
	ck_assert_uint_eq(fstree_lookup(t, "etc/hostname")->mode, 0640);
	ck_assert_ptr_null(fstree_lookup(t, "etc/gone"));
	ck_assert_ptr_null(fstree_lookup(t, "etc/.wh.gone"));
	ck_assert_ptr_null(fstree_lookup(t, "opq/old"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "opq/new"));
	ck_assert_ptr_null(fstree_lookup(t, "opq/.wh..wh..opq"));
	ck_assert_uint_eq(fstree_lookup(t, "opq")->mode, 0700);
	fstree_free(t);
	oci_close(img);
	/* A tag that is not there. */
	snprintf(ref, sizeof(ref), "oci:%s:nope", dir);
	ck_assert_int_eq(open_unpack(ref, &t, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "no manifest tagged 'nope'"));
	/* No tag: the only manifest. */
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	ck_assert_msg(open_unpack(ref, &t, NULL, err, sizeof(err)) == 0, "%s", err);
	fstree_free(t);
	free_layers(ls, 2);
	rm_tmp();
}
END_TEST

/* Builds a one-layer image whose stored blob is `blob` (and whose tar is `tar`). */
static int bad_layer(struct layer *l, char *err, size_t errlen)
{
	char dir[PATH_MAX], ref[PATH_MAX + 8];
	struct fstree *t = NULL;
	int rc;

	snprintf(dir, sizeof(dir), "%s/bad%d", g_tmp, rand());
	build_image(dir, l, 1, NULL, NULL, NULL);
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	rc = open_unpack(ref, &t, NULL, err, errlen);
	fstree_free(t);
	return rc;
}

START_TEST(test_bad_layers)
{
	struct layer l;
	char err[512], outside[PATH_MAX];
	struct stat st;
	int rc;

	mk_tmp();
	/* Truncated gzip. */
	memset(&l, 0, sizeof(l));
	tar_add(&l.tar, TAR_REG, "f", NULL, "hello world hello world hello world", 0644);
	tar_end(&l.tar);
	gzip_buf(&l.tar, &l.blob);
	l.blob.len -= 12;
	l.mt = OCI_MT_LAYER_GZIP;
	rc = bad_layer(&l, err, sizeof(err));
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(err, "truncated gzip") && strstr(err, "blob sha256:"), "%s", err);
	free_layers(&l, 1);

	/* Trailing garbage after the gzip stream. */
	memset(&l, 0, sizeof(l));
	tar_add(&l.tar, TAR_REG, "f", NULL, "x", 0644);
	tar_end(&l.tar);
	gzip_buf(&l.tar, &l.blob);
	buf_put(&l.blob, "junk", 4);
	l.mt = OCI_MT_DOCKER_LAYER_GZIP;
	rc = bad_layer(&l, err, sizeof(err));
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_msg(strstr(err, "trailing data after the gzip stream"), "%s", err);
	free_layers(&l, 1);

	/* Not gzip at all. */
	memset(&l, 0, sizeof(l));
	tar_add(&l.tar, TAR_REG, "f", NULL, "x", 0644);
	tar_end(&l.tar);
	buf_put(&l.blob, l.tar.p, l.tar.len);
	l.mt = OCI_MT_LAYER_GZIP;
	rc = bad_layer(&l, err, sizeof(err));
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_msg(strstr(err, "corrupt gzip"), "%s", err);
	free_layers(&l, 1);

	/* diff_id mismatch. */
	memset(&l, 0, sizeof(l));
	tar_add(&l.tar, TAR_REG, "f", NULL, "x", 0644);
	tar_end(&l.tar);
	l.mt = OCI_MT_LAYER_GZIP;
	l.diff_override = "0000000000000000000000000000000000000000000000000000000000000000";
	rc = bad_layer(&l, err, sizeof(err));
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_msg(strstr(err, "does not match diff_id"), "%s", err);
	free_layers(&l, 1);

	/* Unknown media type. */
	memset(&l, 0, sizeof(l));
	tar_add(&l.tar, TAR_REG, "f", NULL, "x", 0644);
	tar_end(&l.tar);
	l.mt = "application/vnd.oci.image.layer.v1.tar+zstd";
	rc = bad_layer(&l, err, sizeof(err));
	ck_assert_int_eq(rc, -ENOTSUP);
	ck_assert_msg(strstr(err, "unsupported media type application/vnd.oci.image.layer.v1.tar+zstd") &&
			      strstr(err, "blob sha256:"),
		      "%s", err);
	free_layers(&l, 1);

	/* Entries that climb out: ../x, /abs, symlink and hardlink escapes. */
	{
		static const struct {
			char type;
			const char *name, *link, *msg;
		} bad[] = {
			{ '0', "../outside", NULL, "outside" },
			{ '0', "/abs", NULL, "abs" },
			{ '2', "a/evil", "../../outside", "escapes" },
			{ '1', "hl", "../outside", "hardlink target" },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memset(&l, 0, sizeof(l));
			tar_add(&l.tar, TAR_DIR, "a", NULL, NULL, 0755);
			tar_add_raw(&l.tar, bad[i].type, bad[i].name, bad[i].link);
			tar_end(&l.tar);
			l.mt = OCI_MT_LAYER_TAR;
			rc = bad_layer(&l, err, sizeof(err));
			ck_assert_msg(rc != 0, "entry %s accepted", bad[i].name);
			ck_assert_msg(strstr(err, "blob sha256:") && strstr(err, bad[i].msg),
				      "%s: %s", bad[i].name, err);
			free_layers(&l, 1);
		}
	}
	snprintf(outside, sizeof(outside), "%s/outside", g_tmp);
	ck_assert_int_ne(stat(outside, &st), 0);
	ck_assert_int_ne(stat("/abs", &st), 0);
	rm_tmp();
}
END_TEST

static void corrupt(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x55;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

START_TEST(test_bad_layouts)
{
	struct layer ls[2];
	char dir[PATH_MAX], ref[PATH_MAX + 8], err[512], p[PATH_MAX * 2], hex[SHA256_HEX_SIZE];
	struct fstree *t = NULL;
	struct oci_ref r;
	struct oci_image *img;

	mk_tmp();
	two_layers(ls);
	snprintf(dir, sizeof(dir), "%s/img", g_tmp);
	build_image(dir, ls, 2, NULL, NULL, NULL);
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	ck_assert_int_eq(oci_ref_parse(ref, &r, err, sizeof(err)), 0);

	/* Layer digest mismatch: caught by oci_open, before any unpacking. */
	hex_of(ls[1].blob.p, ls[1].blob.len, hex);
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", dir, hex);
	corrupt(p, 10);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -EBADMSG);
	ck_assert_msg(strstr(err, hex) && strstr(err, "digest mismatch"), "%s", err);
	corrupt(p, 10);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), 0);
	oci_close(img);

	/* A manifest naming a missing blob. */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, hex) && strstr(err, "missing"), "%s", err);

	/* Bad JSON in index.json. */
	snprintf(p, sizeof(p), "%s/index.json", dir);
	write_file(p, "{\"schemaVersion\":2,", 19);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "index.json") && strstr(err, "JSON"), "%s", err);

	/* Two manifests and no tag. */
	write_file(p, "{\"schemaVersion\":2,\"manifests\":["
		      "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":1,"
		      "\"annotations\":{\"org.opencontainers.image.ref.name\":\"one\"}},"
		      "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":1,"
		      "\"annotations\":{\"org.opencontainers.image.ref.name\":\"two\"}}]}",
		   strlen("{\"schemaVersion\":2,\"manifests\":["
			  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":1,"
			  "\"annotations\":{\"org.opencontainers.image.ref.name\":\"one\"}},"
			  "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
			  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":1,"
			  "\"annotations\":{\"org.opencontainers.image.ref.name\":\"two\"}}]}"));
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "2 manifests and no tag") && strstr(err, "one, two"), "%s", err);

	/* A digest that is not sha256 / a path in disguise. */
	write_file(p, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		      "\"digest\":\"sha256:../../../../etc/passwd\",\"size\":1}]}",
		   strlen("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			  "\"digest\":\"sha256:../../../../etc/passwd\",\"size\":1}]}"));
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "is not sha256:<64 lowercase hex>"), "%s", err);

	/* Wrong layout version. */
	snprintf(p, sizeof(p), "%s/oci-layout", dir);
	write_file(p, "{\"imageLayoutVersion\":\"2.0.0\"}", 30);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "imageLayoutVersion is 2.0.0"), "%s", err);

	/* Not a layout at all. */
	ck_assert_int_eq(oci_ref_parse("oci:/nonexistent/x", &r, err, sizeof(err)), 0);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), -ENOENT);
	fstree_free(t);
	free_layers(ls, 2);
	rm_tmp();
}
END_TEST

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* A tar stream file as the guest would send for --save. */
static int stream_fd(const struct buf *b)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/stream.XXXXXX", g_tmp);
	fd = mkstemp(p);
	ck_assert_int_ge(fd, 0);
	unlink(p);
	ck_assert_int_eq(write(fd, b->p, b->len), (ssize_t)b->len);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

START_TEST(test_save_round_trip)
{
	struct layer ls[2];
	struct buf up = { 0 };
	char dir[PATH_MAX], ref[PATH_MAX + 16], err[512], d[64], dest[PATH_MAX + 16], p[PATH_MAX + 64];
	struct oci_image *base, *img;
	struct fstree *t;
	struct oci_ref r;
	struct oci_save_req req;
	const struct oci_config *c;
	int fd;

	mk_tmp();
	two_layers(ls);
	snprintf(dir, sizeof(dir), "%s/base", g_tmp);
	build_image(dir, ls, 2, NULL, "\"config\":{\"Env\":[\"K=v\\\"q\"]},\"author\":\"me\",", NULL);
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	ck_assert_int_eq(oci_ref_parse(ref, &r, err, sizeof(err)), 0);
	ck_assert_msg(oci_open(&r, g_tmp, &base, err, sizeof(err)) == 0, "%s", err);

	/* The upper layer: a new file, a change, a deletion (OCI whiteout). */
	tar_add(&up, TAR_DIR, "etc", NULL, NULL, 0755);
	tar_add(&up, TAR_REG, "etc/.wh.hostname", NULL, "", 0644);
	tar_add(&up, TAR_REG, "etc/new", NULL, "made in guest\n", 0600);
	tar_add(&up, TAR_REG, "opq/new", NULL, "changed", 0644);
	tar_end(&up);
	fd = stream_fd(&up);
	memset(&req, 0, sizeof(req));
	snprintf(dest, sizeof(dest), "oci:%s/out:v2", g_tmp);
	req.dest = dest;
	req.base = base;
	req.layer_fd = fd;
	req.created = "2024-01-02T03:04:05Z";
	req.created_by = "python3 \"task\".py\n";
	req.tmpdir = g_tmp;
	ck_assert_msg(oci_save(&req, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	oci_close(base);

	ck_assert_msg(open_unpack(dest, &t, &img, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(oci_image_manifest(img)->nr_layers, 3);
	ck_assert_ptr_null(fstree_lookup(t, "etc/hostname"));
	node_data(t, "etc/new", d, sizeof(d));
	ck_assert_str_eq(d, "made in guest\n");
	ck_assert_uint_eq(fstree_lookup(t, "etc/new")->mode, 0600);
	node_data(t, "opq/new", d, sizeof(d));
	ck_assert_str_eq(d, "changed");
	c = oci_image_config(img);
	ck_assert_uint_eq(c->nr_env, 1);
	ck_assert_str_eq(c->env[0], "K=v\"q");
	{
		const char *author = json_get_str(c->doc, json_root(c->doc), "author");
		const struct json_node *h;
		const struct json_node *last = NULL;

		ck_assert_ptr_nonnull(author);
		ck_assert_str_eq(author, "me");
		ck_assert_str_eq(json_get_str(c->doc, json_root(c->doc), "created"),
				 "2024-01-02T03:04:05Z");
		ck_assert_int_eq(json_get(c->doc, json_root(c->doc), "history", &h), 0);
		ck_assert_uint_eq(h->count, 2);
		for (const struct json_node *x = json_first(c->doc, h); x; x = json_next(c->doc, x))
			last = x;
		ck_assert_str_eq(json_get_str(c->doc, last, "created_by"), "python3 \"task\".py\n");
		ck_assert_str_eq(json_get_str(c->doc, last, "comment"), "minivm --save");
	}
	fstree_free(t);
	/* Base layers are reused (hard-linked: same filesystem). */
	{
		struct stat st;
		const struct oci_manifest *m = oci_image_manifest(img);

		snprintf(p, sizeof(p), "%s/out/blobs/sha256/%s", g_tmp, m->layers[0].hex);
		ck_assert_int_eq(stat(p, &st), 0);
		ck_assert_uint_ge(st.st_nlink, 2);
	}
	oci_close(img);
	/* No temp directory left beside the destination. */
	ck_assert_int_eq(count_entries(g_tmp), 2); /* base, out */

	/* Same input, same bytes: save again to an archive and read it. */
	fd = stream_fd(&up);
	ck_assert_msg(oci_open(&r, g_tmp, &base, err, sizeof(err)) == 0, "%s", err);
	snprintf(dest, sizeof(dest), "oci-archive:%s/out.tar", g_tmp);
	req.dest = dest;
	req.base = base;
	req.layer_fd = fd;
	ck_assert_msg(oci_save(&req, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	oci_close(base);
	snprintf(dest, sizeof(dest), "oci-archive:%s/out.tar:latest", g_tmp);
	ck_assert_msg(open_unpack(dest, &t, &img, err, sizeof(err)) == 0, "%s", err);
	node_data(t, "etc/new", d, sizeof(d));
	ck_assert_str_eq(d, "made in guest\n");
	{
		struct oci_image *img2;
		struct fstree *t2;

		snprintf(ref, sizeof(ref), "oci:%s/out:v2", g_tmp);
		ck_assert_int_eq(open_unpack(ref, &t2, &img2, err, sizeof(err)), 0);
		/* Deterministic: same base, same stream, same time -> same manifest. */
		ck_assert_str_eq(oci_image_digest(img), oci_image_digest(img2));
		fstree_free(t2);
		oci_close(img2);
	}
	fstree_free(t);
	oci_close(img);
	/* The archive's extraction directory is gone after close. */
	ck_assert_int_eq(count_entries(g_tmp), 3); /* base, out, out.tar */
	free(up.p);
	free_layers(ls, 2);
	rm_tmp();
}
END_TEST

START_TEST(test_save_atomic)
{
	struct layer ls[1];
	struct buf up = { 0 }, bad = { 0 };
	char dir[PATH_MAX], ref[PATH_MAX + 16], err[512], dest[PATH_MAX + 16], p[PATH_MAX + 64];
	char old_digest[80];
	struct oci_image *base, *img;
	struct oci_ref r;
	struct oci_save_req req;
	struct fstree *t;
	struct stat st;
	int fd;

	mk_tmp();
	memset(ls, 0, sizeof(ls));
	tar_add(&ls[0].tar, TAR_REG, "f", NULL, "base", 0644);
	tar_end(&ls[0].tar);
	ls[0].mt = OCI_MT_LAYER_GZIP;
	snprintf(dir, sizeof(dir), "%s/base", g_tmp);
	build_image(dir, ls, 1, NULL, NULL, NULL);
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	ck_assert_int_eq(oci_ref_parse(ref, &r, err, sizeof(err)), 0);
	ck_assert_int_eq(oci_open(&r, g_tmp, &base, err, sizeof(err)), 0);
	tar_add(&up, TAR_REG, "g", NULL, "new", 0644);
	tar_end(&up);

	/* An existing directory that is not an OCI layout: refused, untouched. */
	snprintf(p, sizeof(p), "%s/mine", g_tmp);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/mine/precious", g_tmp);
	write_file(p, "keep", 4);
	memset(&req, 0, sizeof(req));
	snprintf(dest, sizeof(dest), "oci:%s/mine", g_tmp);
	req.dest = dest;
	req.base = base;
	req.layer_fd = fd = stream_fd(&up);
	req.created = "2024-01-01T00:00:00Z";
	ck_assert_int_eq(oci_save(&req, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, "not an OCI image layout"), "%s", err);
	close(fd);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(count_entries(g_tmp), 2); /* base, mine: no temp left */
	/* A regular file where a layout should go: refused too. */
	snprintf(dest, sizeof(dest), "oci:%s/mine/precious", g_tmp);
	req.dest = dest;
	req.layer_fd = fd = stream_fd(&up);
	ck_assert_int_eq(oci_save(&req, err, sizeof(err)), -EEXIST);
	close(fd);

	/* An existing OCI layout: replaced by the new image. */
	snprintf(dest, sizeof(dest), "oci:%s/base", g_tmp);
	snprintf(old_digest, sizeof(old_digest), "%s", oci_image_digest(base));
	snprintf(dest, sizeof(dest), "oci:%s/out", g_tmp);
	req.dest = dest;
	req.layer_fd = fd = stream_fd(&up);
	ck_assert_msg(oci_save(&req, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	ck_assert_int_eq(open_unpack(dest, &t, &img, err, sizeof(err)), 0);
	snprintf(old_digest, sizeof(old_digest), "%s", oci_image_digest(img));
	fstree_free(t);
	oci_close(img);
	/* A failure mid-save (a bad tar stream from the guest): DEST stays as it was. */
	tar_add(&bad, TAR_REG, "ok", NULL, "fine", 0644);
	tar_add_raw(&bad, '0', "../escape", NULL);
	tar_end(&bad);
	req.layer_fd = fd = stream_fd(&bad);
	ck_assert_int_ne(oci_save(&req, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "escape"), "%s", err);
	close(fd);
	ck_assert_int_eq(open_unpack(dest, &t, &img, err, sizeof(err)), 0);
	ck_assert_str_eq(oci_image_digest(img), old_digest);
	fstree_free(t);
	oci_close(img);
	ck_assert_int_eq(count_entries(g_tmp), 3); /* base, mine, out */
	/* A good save over it: exchanged, and the old one removed. */
	free(up.p);
	memset(&up, 0, sizeof(up));
	tar_add(&up, TAR_REG, "h", NULL, "newer", 0644);
	tar_end(&up);
	req.layer_fd = fd = stream_fd(&up);
	ck_assert_msg(oci_save(&req, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	ck_assert_int_eq(open_unpack(dest, &t, &img, err, sizeof(err)), 0);
	ck_assert_str_ne(oci_image_digest(img), old_digest);
	ck_assert_ptr_nonnull(fstree_lookup(t, "h"));
	ck_assert_ptr_null(fstree_lookup(t, "g"));
	fstree_free(t);
	oci_close(img);
	ck_assert_int_eq(count_entries(g_tmp), 3);
	oci_close(base);
	free(up.p);
	free(bad.p);
	free_layers(ls, 1);
	rm_tmp();
}
END_TEST

START_TEST(test_rootfs_image_and_export)
{
	struct layer ls[2];
	char dir[PATH_MAX], ref[PATH_MAX + 16], err[512], out[PATH_MAX], out2[PATH_MAX];
	char agent[PATH_MAX], cache[PATH_MAX], dest[PATH_MAX + 16], d[64];
	struct oci_image *img;
	struct oci_ref r;
	struct fstree *t;
	struct fstree_node *n;
	struct stat st, st2;
	struct oci_save_req req;

	mk_tmp();
	two_layers(ls);
	snprintf(dir, sizeof(dir), "%s/img", g_tmp);
	build_image(dir, ls, 2, NULL, NULL, NULL);
	snprintf(ref, sizeof(ref), "oci:%s", dir);
	snprintf(agent, sizeof(agent), "%s/agent", g_tmp);
	write_file(agent, "\x7f" "ELF fake agent", 15);
	snprintf(cache, sizeof(cache), "%s/cache", g_tmp);
	ck_assert_int_eq(oci_ref_parse(ref, &r, err, sizeof(err)), 0);
	ck_assert_int_eq(oci_open(&r, g_tmp, &img, err, sizeof(err)), 0);
	ck_assert_msg(oci_rootfs_image(img, cache, agent, out, sizeof(out), err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_ptr_nonnull(strstr(out, oci_image_digest(img) + 7));
	ck_assert_int_eq(stat(out, &st), 0);
	/* The second time: the same file, not rebuilt. */
	ck_assert_int_eq(oci_rootfs_image(img, cache, agent, out2, sizeof(out2), err, sizeof(err)), 0);
	ck_assert_str_eq(out, out2);
	ck_assert_int_eq(stat(out2, &st2), 0);
	ck_assert_uint_eq(st.st_ino, st2.st_ino);
	ck_assert_int_eq(st.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
	oci_close(img);

	/* Read it back: the agent went through the /sbin -> usr/sbin symlink. */
	ck_assert_int_eq(fstree_new(g_tmp, NULL, &t, err, sizeof(err)), 0);
	ck_assert_msg(ext4img_read(out, t, err, sizeof(err)) == 0, "%s", err);
	n = fstree_lookup(t, "usr/sbin/minivm-init");
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->mode, 0755);
	ck_assert_uint_eq(n->size, 15);
	ck_assert_int_eq(fstree_lookup(t, "sbin")->type, TAR_SYMLINK);
	ck_assert_uint_eq(fstree_lookup(t, "tmp")->mode, 01777);
	ck_assert_int_eq(fstree_lookup(t, "proc")->type, TAR_DIR);
	node_data(t, "etc/hostname", d, sizeof(d));
	ck_assert_str_eq(d, "top\n");
	fstree_free(t);

	/* export: that ext4 image as a one-layer OCI image, then read back. */
	memset(&req, 0, sizeof(req));
	snprintf(dest, sizeof(dest), "oci:%s/exported:t1", g_tmp);
	req.dest = dest;
	req.base_ext4 = out;
	req.layer_fd = -1;
	req.created = "2024-01-01T00:00:00Z";
	ck_assert_msg(oci_save(&req, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(open_unpack(dest, &t, &img, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(oci_image_manifest(img)->nr_layers, 1);
	ck_assert_ptr_nonnull(fstree_lookup(t, "usr/sbin/minivm-init"));
	node_data(t, "etc/hostname", d, sizeof(d));
	ck_assert_str_eq(d, "top\n");
	ck_assert_uint_eq(oci_image_config(img)->nr_env, 1);
	fstree_free(t);
	oci_close(img);
	free_layers(ls, 2);
	rm_tmp();
}
END_TEST

START_TEST(test_parsers_direct)
{
	struct oci_manifest *m = malloc(sizeof(*m));
	struct oci_config *c;
	struct oci_desc d;
	char err[256];
	static const char nested[] =
		"{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":5,"
		"\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
		"2222222222222222222222222222222222222222222222222222222222222222\",\"size\":6,"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";
	static const char man_neg[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		"\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":-1},\"layers\":[]}";
	static const char man_enc[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		"\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":1},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip+encrypted\","
		"\"digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\",\"size\":1}]}";
	static const char cfg_bad_env[] =
		"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"config\":{\"Env\":[1]}}";

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(oci_index_select(nested, strlen(nested), NULL, true, &d, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.size, 6);
	ck_assert_uint_eq(d.hex[0], '2');
	/* Two tagged manifests, no tag asked: the one tagged "latest". */
	{
		static const char two[] =
			"{\"schemaVersion\":2,\"manifests\":["
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
			"1111111111111111111111111111111111111111111111111111111111111111\",\"size\":5,"
			"\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}},"
			"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"sha256:"
			"3333333333333333333333333333333333333333333333333333333333333333\",\"size\":7,"
			"\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}";

		ck_assert_int_eq(oci_index_select(two, strlen(two), NULL, false, &d, err, sizeof(err)), 0);
		ck_assert_uint_eq(d.size, 7);
		ck_assert_int_eq(oci_index_select(two, strlen(two), "v1", false, &d, err, sizeof(err)), 0);
		ck_assert_uint_eq(d.size, 5);
		ck_assert_int_eq(oci_index_select(two, strlen(two), NULL, true, &d, err, sizeof(err)),
				 -ENOENT);
		ck_assert_ptr_nonnull(strstr(err, "no linux/amd64 manifest"));
	}
	ck_assert_int_eq(oci_manifest_parse(man_neg, strlen(man_neg), m, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad or missing size"));
	ck_assert_int_eq(oci_manifest_parse(man_enc, strlen(man_enc), m, err, sizeof(err)), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "unsupported media type application/vnd.oci.image.layer.v1.tar+gzip+encrypted"));
	ck_assert_int_eq(oci_config_parse(cfg_bad_env, strlen(cfg_bad_env), &c, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(err, "Env[0]"));
	ck_assert_int_eq(oci_config_parse("[]", 2, &c, err, sizeof(err)), -EINVAL);
	free(m);
}
END_TEST

static Suite *oci_suite(void)
{
	Suite *s = suite_create("oci");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ref_parse);
	tcase_add_test(tc, test_parsers_direct);
	tcase_add_test(tc, test_open_unpack);
	tcase_add_test(tc, test_bad_layers);
	tcase_add_test(tc, test_bad_layouts);
	tcase_add_test(tc, test_save_round_trip);
	tcase_add_test(tc, test_save_atomic);
	tcase_add_test(tc, test_rootfs_image_and_export);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(oci_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
