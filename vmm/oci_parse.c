/* Pure parsers of OCI references, image indexes, manifests and configs (bytes in, struct or error out; fuzzed by tests/fuzz/fuzz_oci.c). */
#include "vmm/oci.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int oci_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int oci_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

bool oci_tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > OCI_TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tag[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '_';

		if (!alnum && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

int oci_ref_parse(const char *s, struct oci_ref *out, char *err, size_t errlen)
{
	const char *rest, *colon;
	size_t plen;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "oci:", 4) == 0) {
		out->kind = OCI_REF_DIR;
		rest = s + 4;
	} else if (strncmp(s, "oci-archive:", 12) == 0) {
		out->kind = OCI_REF_ARCHIVE;
		rest = s + 12;
	} else {
		return oci_fail(err, errlen, -EINVAL,
				"image reference '%.200s': expected oci:DIR[:TAG] or oci-archive:FILE[:TAG]", s);
	}
	plen = strlen(rest);
	colon = strrchr(rest, ':');
	if (colon && oci_tag_valid(colon + 1)) {
		plen = (size_t)(colon - rest);
		memcpy(out->tag, colon + 1, strlen(colon + 1) + 1);
	}
	if (plen == 0)
		return oci_fail(err, errlen, -EINVAL, "image reference '%.200s': empty path", s);
	if (plen >= sizeof(out->path))
		return oci_fail(err, errlen, -EINVAL, "image reference '%.64s...': path too long", s);
	memcpy(out->path, rest, plen);
	out->path[plen] = '\0';
	return 0;
}

/* A JSON number that is a non-negative integer below 2^53: 0, or -EINVAL. */
static int oci_json_u64(const struct json_node *n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n->type != JSON_NUMBER || n->len == 0 || n->len > 16)
		return -EINVAL;
	for (size_t i = 0; i < n->len; i++) {
		if (n->str[i] < '0' || n->str[i] > '9')
			return -EINVAL; /* a sign, fraction or exponent */
		v = v * 10 + (uint64_t)(n->str[i] - '0');
	}
	if (v >= (1ull << 53))
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct json_node *oci_member(const struct json_doc *d, const struct json_node *obj,
					  const char *key)
{
	const struct json_node *n;

	if (json_get(d, obj, key, &n) != 0)
		return NULL;
	return n;
}

/* "sha256:<64 lowercase hex>" into hex; -EINVAL otherwise (other algorithms too). */
static int oci_digest_hex(const char *s, char hex[SHA256_HEX_SIZE])
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return -EINVAL;
	for (size_t i = 0; i < 64; i++) {
		char c = s[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
	}
	memcpy(hex, s + 7, 64);
	hex[64] = '\0';
	return 0;
}

/* Reads one descriptor object; what names it (e.g. "layer 3") goes in messages. */
static int oci_desc_parse(const struct json_doc *d, const struct json_node *n, const char *what,
			  struct oci_desc *out, char *err, size_t errlen)
{
	const char *mt, *dg;

	memset(out, 0, sizeof(*out));
	if (!n || n->type != JSON_OBJECT)
		return oci_fail(err, errlen, -EINVAL, "%s: descriptor is not an object", what);
	mt = json_get_str(d, n, "mediaType");
	dg = json_get_str(d, n, "digest");
	if (!dg)
		return oci_fail(err, errlen, -EINVAL, "%s: descriptor has no digest", what);
	if (oci_digest_hex(dg, out->hex) != 0)
		return oci_fail(err, errlen, -EINVAL,
				"%s: digest '%.80s' is not sha256:<64 lowercase hex>", what, dg);
	if (oci_json_u64(oci_member(d, n, "size"), &out->size) != 0)
		return oci_fail(err, errlen, -EINVAL, "%s: blob sha256:%s: bad or missing size", what,
				out->hex);
	if (mt) {
		if (strlen(mt) > OCI_MEDIA_TYPE_MAX)
			return oci_fail(err, errlen, -EINVAL, "%s: blob sha256:%s: media type too long",
					what, out->hex);
		memcpy(out->media_type, mt, strlen(mt) + 1);
	}
	return 0;
}

static int oci_parse_doc(const char *buf, size_t len, const char *what, struct json_doc **doc,
			 char *err, size_t errlen)
{
	struct json_limits lim = { .max_bytes = OCI_JSON_MAX, .max_depth = 32, .max_nodes = 1u << 20 };
	char jerr[160];
	int rc;

	*doc = NULL;
	rc = json_parse(buf, len, &lim, doc, jerr, sizeof(jerr));
	if (rc)
		return oci_fail(err, errlen, rc == -ENOMEM ? rc : -EINVAL, "%s: %s", what, jerr);
	if (json_root(*doc)->type != JSON_OBJECT) {
		json_free(*doc);
		*doc = NULL;
		return oci_fail(err, errlen, -EINVAL, "%s: not a JSON object", what);
	}
	return 0;
}

static bool oci_is_manifest_type(const char *mt)
{
	return strcmp(mt, OCI_MT_MANIFEST) == 0 || strcmp(mt, OCI_MT_DOCKER_MANIFEST) == 0;
}

static bool oci_is_index_type(const char *mt)
{
	return strcmp(mt, OCI_MT_INDEX) == 0 || strcmp(mt, OCI_MT_DOCKER_LIST) == 0;
}

int oci_index_select(const char *buf, size_t len, const char *tag, bool by_platform,
		     struct oci_desc *out, char *err, size_t errlen)
{
	const char *what = by_platform ? "nested image index" : "index.json";
	const struct json_node *root, *mans, *m, *sv;
	struct json_doc *d;
	struct oci_desc cur;
	char tags[256] = "";
	uint32_t i = 0, nr_found = 0, nr_latest = 0;
	struct oci_desc latest = { .size = 0 }, only = { .size = 0 };
	uint64_t schema;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = oci_parse_doc(buf, len, what, &d, err, errlen);
	if (rc)
		return rc;
	root = json_root(d);
	sv = oci_member(d, root, "schemaVersion");
	if (oci_json_u64(sv, &schema) != 0 || schema != 2) {
		rc = oci_fail(err, errlen, -EINVAL, "%s: schemaVersion is not 2", what);
		goto out;
	}
	mans = oci_member(d, root, "manifests");
	if (!mans || mans->type != JSON_ARRAY) {
		rc = oci_fail(err, errlen, -EINVAL, "%s: no manifests array", what);
		goto out;
	}
	if (mans->count > OCI_MAX_MANIFESTS) {
		rc = oci_fail(err, errlen, -E2BIG, "%s: more than %u manifests", what,
			      OCI_MAX_MANIFESTS);
		goto out;
	}
	if (mans->count == 0) {
		rc = oci_fail(err, errlen, -ENOENT, "%s: no manifests", what);
		goto out;
	}
	for (m = json_first(d, mans); m; m = json_next(d, m), i++) {
		char name[32];
		const char *ref = NULL;
		const struct json_node *ann, *plat;
		bool match;

		snprintf(name, sizeof(name), "%s manifest %u", what, i);
		rc = oci_desc_parse(d, m, name, &cur, err, errlen);
		if (rc)
			goto out;
		ann = oci_member(d, m, "annotations");
		if (ann && ann->type == JSON_OBJECT)
			ref = json_get_str(d, ann, OCI_ANNOT_REF_NAME);
		if (by_platform) {
			const char *arch = NULL, *os = NULL;

			plat = oci_member(d, m, "platform");
			if (plat && plat->type == JSON_OBJECT) {
				arch = json_get_str(d, plat, "architecture");
				os = json_get_str(d, plat, "os");
			}
			match = arch && os && strcmp(arch, "amd64") == 0 && strcmp(os, "linux") == 0;
		} else if (tag && tag[0]) {
			match = ref && strcmp(ref, tag) == 0;
		} else {
			match = true;
			if (ref && strcmp(ref, "latest") == 0) {
				latest = cur;
				nr_latest++;
			}
			if (strlen(tags) + 40 < sizeof(tags)) {
				size_t tl = strlen(tags);

				snprintf(tags + tl, sizeof(tags) - tl, "%s%.32s", tl ? ", " : "",
					 ref ? ref : "(untagged)");
			}
		}
		if (!match)
			continue;
		if (nr_found++ == 0)
			only = cur;
		else if ((by_platform || (tag && tag[0])) && strcmp(only.hex, cur.hex) != 0) {
			rc = oci_fail(err, errlen, -EINVAL, "%s: more than one manifest for %s", what,
				      by_platform ? "linux/amd64" : tag);
			goto out;
		}
	}
	if (nr_found == 0) {
		if (by_platform)
			rc = oci_fail(err, errlen, -ENOENT, "%s: no linux/amd64 manifest", what);
		else
			rc = oci_fail(err, errlen, -ENOENT, "%s: no manifest tagged '%.128s'", what,
				      tag);
		goto out;
	}
	if (!by_platform && !(tag && tag[0]) && nr_found > 1) {
		if (nr_latest != 1) {
			rc = oci_fail(err, errlen, -EINVAL,
				      "%s: %u manifests and no tag given; name one of: %s", what,
				      nr_found, tags);
			goto out;
		}
		only = latest;
	}
	if (!oci_is_manifest_type(only.media_type) && !oci_is_index_type(only.media_type)) {
		rc = oci_fail(err, errlen, -ENOTSUP, "blob sha256:%s: unsupported media type %.128s",
			      only.hex, only.media_type[0] ? only.media_type : "(none)");
		goto out;
	}
	*out = only;
	rc = 0;
out:
	json_free(d);
	return rc;
}

static bool oci_layer_type_ok(const char *mt)
{
	return strcmp(mt, OCI_MT_LAYER_TAR) == 0 || strcmp(mt, OCI_MT_LAYER_GZIP) == 0 ||
	       strcmp(mt, OCI_MT_DOCKER_LAYER_GZIP) == 0;
}

int oci_manifest_parse(const char *buf, size_t len, struct oci_manifest *out, char *err,
		       size_t errlen)
{
	const struct json_node *root, *layers, *l;
	const char *mt;
	struct json_doc *d;
	uint64_t schema;
	uint32_t i = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = oci_parse_doc(buf, len, "manifest", &d, err, errlen);
	if (rc)
		return rc;
	root = json_root(d);
	if (oci_json_u64(oci_member(d, root, "schemaVersion"), &schema) != 0 || schema != 2) {
		rc = oci_fail(err, errlen, -EINVAL, "manifest: schemaVersion is not 2");
		goto out;
	}
	mt = json_get_str(d, root, "mediaType");
	if (mt && !oci_is_manifest_type(mt)) {
		rc = oci_fail(err, errlen, -ENOTSUP, "manifest: unsupported media type %.128s", mt);
		goto out;
	}
	rc = oci_desc_parse(d, oci_member(d, root, "config"), "manifest config", &out->config, err,
			    errlen);
	if (rc)
		goto out;
	if (strcmp(out->config.media_type, OCI_MT_CONFIG) != 0 &&
	    strcmp(out->config.media_type, OCI_MT_DOCKER_CONFIG) != 0) {
		rc = oci_fail(err, errlen, -ENOTSUP, "blob sha256:%s: unsupported media type %.128s",
			      out->config.hex,
			      out->config.media_type[0] ? out->config.media_type : "(none)");
		goto out;
	}
	layers = oci_member(d, root, "layers");
	if (!layers || layers->type != JSON_ARRAY) {
		rc = oci_fail(err, errlen, -EINVAL, "manifest: no layers array");
		goto out;
	}
	if (layers->count > OCI_MAX_LAYERS) {
		rc = oci_fail(err, errlen, -E2BIG, "manifest: %u layers, more than %u",
			      layers->count, OCI_MAX_LAYERS);
		goto out;
	}
	for (l = json_first(d, layers); l && i < OCI_MAX_LAYERS; l = json_next(d, l), i++) {
		char name[32];

		snprintf(name, sizeof(name), "manifest layer %u", i);
		rc = oci_desc_parse(d, l, name, &out->layers[i], err, errlen);
		if (rc)
			goto out;
		if (!oci_layer_type_ok(out->layers[i].media_type)) {
			rc = oci_fail(err, errlen, -ENOTSUP,
				      "blob sha256:%s: unsupported media type %.128s",
				      out->layers[i].hex,
				      out->layers[i].media_type[0] ? out->layers[i].media_type
								   : "(none)");
			goto out;
		}
	}
	out->nr_layers = i;
	rc = 0;
out:
	json_free(d);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

void oci_config_free(struct oci_config *c)
{
	if (!c)
		return;
	json_free(c->doc);
	free(c->diff_ids);
	free(c->env);
	free(c);
}

int oci_config_parse(const char *buf, size_t len, struct oci_config **out, char *err,
		     size_t errlen)
{
	const struct json_node *root, *rootfs, *ids, *n, *cfg;
	struct oci_config *c;
	const char *type;
	uint32_t i = 0;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return oci_fail(err, errlen, -ENOMEM, "config: out of memory");
	rc = oci_parse_doc(buf, len, "config", &c->doc, err, errlen);
	if (rc)
		goto fail;
	root = json_root(c->doc);
	rootfs = oci_member(c->doc, root, "rootfs");
	if (!rootfs || rootfs->type != JSON_OBJECT) {
		rc = oci_fail(err, errlen, -EINVAL, "config: no rootfs object");
		goto fail;
	}
	type = json_get_str(c->doc, rootfs, "type");
	if (!type || strcmp(type, "layers") != 0) {
		rc = oci_fail(err, errlen, -EINVAL, "config: rootfs.type is not \"layers\"");
		goto fail;
	}
	ids = oci_member(c->doc, rootfs, "diff_ids");
	if (!ids || ids->type != JSON_ARRAY) {
		rc = oci_fail(err, errlen, -EINVAL, "config: no rootfs.diff_ids array");
		goto fail;
	}
	if (ids->count > OCI_MAX_LAYERS) {
		rc = oci_fail(err, errlen, -E2BIG, "config: more than %u diff_ids", OCI_MAX_LAYERS);
		goto fail;
	}
	c->diff_ids = calloc(ids->count ? ids->count : 1, sizeof(*c->diff_ids));
	if (!c->diff_ids) {
		rc = oci_fail(err, errlen, -ENOMEM, "config: out of memory");
		goto fail;
	}
	for (n = json_first(c->doc, ids); n && i < ids->count; n = json_next(c->doc, n), i++) {
		if (n->type != JSON_STRING || oci_digest_hex(n->str, c->diff_ids[i]) != 0) {
			rc = oci_fail(err, errlen, -EINVAL,
				      "config: rootfs.diff_ids[%u] is not sha256:<64 lowercase hex>", i);
			goto fail;
		}
	}
	c->nr_diff_ids = i;
	cfg = oci_member(c->doc, root, "config");
	if (cfg && cfg->type == JSON_OBJECT) {
		const struct json_node *env = oci_member(c->doc, cfg, "Env");

		c->working_dir = json_get_str(c->doc, cfg, "WorkingDir");
		c->user = json_get_str(c->doc, cfg, "User");
		if (env && env->type == JSON_ARRAY) {
			c->env = calloc(env->count ? env->count : 1, sizeof(*c->env));
			if (!c->env) {
				rc = oci_fail(err, errlen, -ENOMEM, "config: out of memory");
				goto fail;
			}
			for (n = json_first(c->doc, env); n && c->nr_env < env->count;
			     n = json_next(c->doc, n)) {
				if (n->type != JSON_STRING || !strchr(n->str, '=')) {
					rc = oci_fail(err, errlen, -EINVAL,
						      "config: config.Env[%u] is not a KEY=VALUE string",
						      c->nr_env);
					goto fail;
				}
				c->env[c->nr_env++] = n->str;
			}
		} else if (env && env->type != JSON_NULL) {
			rc = oci_fail(err, errlen, -EINVAL, "config: config.Env is not an array");
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	oci_config_free(c);
	return rc;
}
