/* OCI helpers: the deterministic JSON writer, the gzip layer writer with its digests, and small file utilities. */
#include "vmm/oci_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int oci_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

void oci_jw_init(struct oci_jw *w)
{
	memset(w, 0, sizeof(*w));
}

static void oci_jw_put(struct oci_jw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 1024;
		char *nb;

		while (cap < w->len + n + 1) {
			if (cap > (size_t)OCI_JSON_MAX * 4) {
				w->err = -E2BIG;
				return;
			}
			cap *= 2;
		}
		nb = realloc(w->buf, cap);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* The comma before a value or key, unless it follows a key or opens a container. */
static void oci_jw_sep(struct oci_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth])
			oci_jw_put(w, ",", 1);
		w->first[w->depth] = false;
	}
}

void oci_jw_begin(struct oci_jw *w, char open)
{
	oci_jw_sep(w);
	if (w->depth >= OCI_JW_DEPTH) {
		if (!w->err)
			w->err = -E2BIG;
		return;
	}
	oci_jw_put(w, &open, 1);
	w->depth++;
	w->first[w->depth] = true;
}

void oci_jw_end(struct oci_jw *w, char close)
{
	if (w->depth == 0) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	w->depth--;
	oci_jw_put(w, &close, 1);
}

static void oci_jw_quoted(struct oci_jw *w, const char *s)
{
	oci_jw_put(w, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];

		switch (*p) {
		case '"': oci_jw_put(w, "\\\"", 2); break;
		case '\\': oci_jw_put(w, "\\\\", 2); break;
		case '\n': oci_jw_put(w, "\\n", 2); break;
		case '\r': oci_jw_put(w, "\\r", 2); break;
		case '\t': oci_jw_put(w, "\\t", 2); break;
		case '\b': oci_jw_put(w, "\\b", 2); break;
		case '\f': oci_jw_put(w, "\\f", 2); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				oci_jw_put(w, esc, 6);
			} else {
				oci_jw_put(w, (const char *)p, 1);
			}
		}
	}
	oci_jw_put(w, "\"", 1);
}

void oci_jw_key(struct oci_jw *w, const char *key)
{
	oci_jw_sep(w);
	oci_jw_quoted(w, key);
	oci_jw_put(w, ":", 1);
	w->after_key = true;
}

void oci_jw_str(struct oci_jw *w, const char *s)
{
	oci_jw_sep(w);
	oci_jw_quoted(w, s);
}

void oci_jw_u64(struct oci_jw *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	oci_jw_sep(w);
	oci_jw_put(w, num, (size_t)n);
}

void oci_jw_node(struct oci_jw *w, const struct json_doc *d, const struct json_node *n)
{
	switch (n->type) {
	case JSON_NULL: oci_jw_sep(w); oci_jw_put(w, "null", 4); break;
	case JSON_FALSE: oci_jw_sep(w); oci_jw_put(w, "false", 5); break;
	case JSON_TRUE: oci_jw_sep(w); oci_jw_put(w, "true", 4); break;
	case JSON_NUMBER: oci_jw_sep(w); oci_jw_put(w, n->str, n->len); break;
	case JSON_STRING: oci_jw_str(w, n->str); break;
	case JSON_ARRAY:
	case JSON_OBJECT:
		oci_jw_begin(w, n->type == JSON_ARRAY ? '[' : '{');
		/* Depth is bounded by the reader's limit and by OCI_JW_DEPTH. */
		for (const struct json_node *c = json_first(d, n); c && !w->err; c = json_next(d, c)) {
			if (c->key)
				oci_jw_key(w, c->key);
			oci_jw_node(w, d, c);
		}
		oci_jw_end(w, n->type == JSON_ARRAY ? ']' : '}');
		break;
	}
}

void oci_jw_desc(struct oci_jw *w, const char *media_type, const char *hex, uint64_t size)
{
	char dg[7 + SHA256_HEX_SIZE];

	snprintf(dg, sizeof(dg), "sha256:%s", hex);
	oci_jw_begin(w, '{');
	oci_jw_key(w, "mediaType");
	oci_jw_str(w, media_type);
	oci_jw_key(w, "digest");
	oci_jw_str(w, dg);
	oci_jw_key(w, "size");
	oci_jw_u64(w, size);
	oci_jw_end(w, '}');
}

int oci_jw_finish(struct oci_jw *w, char **out, size_t *len)
{
	if (!w->err && w->depth != 0)
		w->err = -EINVAL;
	if (!w->err && !w->buf)
		w->err = -EINVAL;
	if (w->err) {
		free(w->buf);
		w->buf = NULL;
		return w->err;
	}
	*out = w->buf;
	*len = w->len;
	w->buf = NULL;
	return 0;
}

int oci_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int oci_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) ? -errno : 0;
	return unlink(path) ? -errno : 0;
}

int oci_rm_rf(const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) ? -errno : 0;
	/* FTW_PHYS: never follow a symlink; FTW_DEPTH: children before their directory. */
	rc = nftw(path, oci_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (rc == -1)
		return -errno;
	return rc;
}

int oci_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int oci_read_small(int dirfd, const char *name, size_t max, char **out, size_t *len,
		   char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return oci_errf(err, errlen, -errno, "%s: %s", name, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = oci_errf(err, errlen, -errno, "%s: %s", name, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = oci_errf(err, errlen, -EINVAL, "%s: not a regular file", name);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = oci_errf(err, errlen, -E2BIG, "%s: %lld bytes, more than the limit of %zu", name,
			      (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = oci_errf(err, errlen, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oci_errf(err, errlen, -errno, "%s: %s", name, strerror(errno));
			goto out;
		}
		if (n == 0)
			break; /* it shrank: the size check against the descriptor catches it */
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int oci_gz_begin(struct oci_gz *g, int fd)
{
	memset(&g->z, 0, sizeof(g->z));
	memset(&g->hdr, 0, sizeof(g->hdr));
	g->fd = fd;
	g->tar_bytes = g->gz_bytes = 0;
	sha256_init(&g->tar_sha);
	sha256_init(&g->gz_sha);
	/* windowBits 15 + 16: a gzip wrapper; memLevel 8 is zlib's default. */
	if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	/* mtime 0, no name, os 255 ("unknown"): the same tree gives the same bytes. */
	g->hdr.time = 0;
	g->hdr.os = 255;
	if (deflateSetHeader(&g->z, &g->hdr) != Z_OK) {
		deflateEnd(&g->z);
		return -EINVAL;
	}
	g->ready = true;
	return 0;
}

static int oci_gz_drain(struct oci_gz *g, int flush)
{
	int zrc;

	do {
		size_t have;
		int rc;

		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		zrc = deflate(&g->z, flush);
		if (zrc == Z_STREAM_ERROR)
			return -EIO;
		have = sizeof(g->out) - g->z.avail_out;
		if (have) {
			sha256_update(&g->gz_sha, g->out, have);
			g->gz_bytes += have;
			rc = oci_write_all(g->fd, g->out, have);
			if (rc)
				return rc;
		}
	} while (g->z.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
	return 0;
}

int oci_gz_write(void *ctx, const void *buf, size_t len)
{
	struct oci_gz *g = ctx;
	const uint8_t *p = buf;

	sha256_update(&g->tar_sha, buf, len);
	g->tar_bytes += len;
	while (len) {
		/* avail_in is a uInt: feed at most 1 MiB at a time. */
		size_t n = len < (1u << 20) ? len : (1u << 20);
		int rc;

		g->z.next_in = (Bytef *)(uintptr_t)p;
		g->z.avail_in = (uInt)n;
		rc = oci_gz_drain(g, Z_NO_FLUSH);
		if (rc)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

int oci_gz_end(struct oci_gz *g, char gz_hex[SHA256_HEX_SIZE], char tar_hex[SHA256_HEX_SIZE])
{
	uint8_t d[SHA256_DIGEST_SIZE];
	int rc;

	g->z.next_in = NULL;
	g->z.avail_in = 0;
	rc = oci_gz_drain(g, Z_FINISH);
	deflateEnd(&g->z);
	g->ready = false;
	if (rc)
		return rc;
	sha256_final(&g->gz_sha, d);
	sha256_to_hex(d, gz_hex);
	sha256_final(&g->tar_sha, d);
	sha256_to_hex(d, tar_hex);
	return 0;
}

void oci_gz_abort(struct oci_gz *g)
{
	if (g->ready)
		deflateEnd(&g->z);
	g->ready = false;
}
