/* A root filesystem image's SBOM (CycloneDX 1.5 JSON as rootfs/build.sh writes it): parsed strictly into a sorted file list. */
#include "vmm/sbom.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/json.h"

static int sbom_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int sbom_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const char *sbom_ftype_name(enum sbom_ftype t)
{
	switch (t) {
	case SBOM_REGULAR:
		return "regular";
	case SBOM_DIRECTORY:
		return "directory";
	case SBOM_SYMLINK:
		return "symlink";
	}
	return "?";
}

/* "/" or "/a/b": no empty, "." or ".." component, no trailing slash. */
static bool sbom_path_ok(const char *p, size_t len)
{
	if (len == 0 || len > SBOM_PATH_MAX || p[0] != '/')
		return false;
	if (len == 1)
		return true;
	if (p[len - 1] == '/')
		return false;
	for (size_t i = 1; i <= len; i++) {
		size_t start = i, n;

		while (i < len && p[i] != '/')
			i++;
		n = i - start;
		if (n == 0 || (n == 1 && p[start] == '.') ||
		    (n == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
	}
	return true;
}

/* Digits only, in [0, max]. */
static int sbom_number(const char *s, unsigned int base, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (*s < '0' || d >= base)
			return -EINVAL;
		v = v * base + d;
	}
	if (v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

struct sbom_props {
	const char *ftype, *mode, *uid, *gid, *target;
};

static int sbom_read_props(const struct json_doc *doc, const struct json_node *file,
			   struct sbom_props *pr, const char *path, char *err, size_t errlen)
{
	const struct json_node *props;

	memset(pr, 0, sizeof(*pr));
	if (json_get(doc, file, "properties", &props) || props->type != JSON_ARRAY)
		return sbom_fail(err, errlen, "%s: no \"properties\" array", path);
	for (const struct json_node *p = json_first(doc, props); p; p = json_next(doc, p)) {
		const char *name = json_get_str(doc, p, "name");
		const char *value = json_get_str(doc, p, "value");
		const char **slot = NULL;

		if (!name || !value)
			return sbom_fail(err, errlen, "%s: a property without a string name and value",
					 path);
		if (strcmp(name, "minivm:file-type") == 0)
			slot = &pr->ftype;
		else if (strcmp(name, "minivm:mode") == 0)
			slot = &pr->mode;
		else if (strcmp(name, "minivm:uid") == 0)
			slot = &pr->uid;
		else if (strcmp(name, "minivm:gid") == 0)
			slot = &pr->gid;
		else if (strcmp(name, "minivm:symlink-target") == 0)
			slot = &pr->target;
		else
			continue; /* other tools' properties are theirs */
		if (*slot)
			return sbom_fail(err, errlen, "%s: property %s given twice", path, name);
		*slot = value;
	}
	return 0;
}

static int sbom_read_hash(const struct json_doc *doc, const struct json_node *file,
			  struct sbom_file *f, char *err, size_t errlen)
{
	const struct json_node *hashes;
	int found = 0;

	if (json_get(doc, file, "hashes", &hashes) || hashes->type != JSON_ARRAY)
		return sbom_fail(err, errlen, "%s: a regular file without a \"hashes\" array",
				 f->path);
	for (const struct json_node *h = json_first(doc, hashes); h; h = json_next(doc, h)) {
		const char *alg = json_get_str(doc, h, "alg");
		const char *content = json_get_str(doc, h, "content");

		if (!alg || !content)
			return sbom_fail(err, errlen, "%s: a hash without alg and content", f->path);
		if (strcmp(alg, "SHA-256") != 0)
			continue;
		if (found++)
			return sbom_fail(err, errlen, "%s: more than one SHA-256", f->path);
		if (sha256_from_hex(content, strlen(content), f->sha256))
			return sbom_fail(err, errlen, "%s: SHA-256 is not 64 hex digits", f->path);
	}
	if (!found)
		return sbom_fail(err, errlen, "%s: a regular file without a SHA-256", f->path);
	return 0;
}

static int sbom_read_file(const struct json_doc *doc, const struct json_node *file,
			  const char *pkg, const char *ver, struct sbom_file *f, char *err,
			  size_t errlen)
{
	const struct json_node *name;
	struct sbom_props pr;
	const char *type = json_get_str(doc, file, "type");
	int r;

	memset(f, 0, sizeof(*f));
	if (!type || strcmp(type, "file") != 0)
		return sbom_fail(err, errlen, "package %s: a nested component that is not a file",
				 pkg);
	if (json_get(doc, file, "name", &name) || name->type != JSON_STRING)
		return sbom_fail(err, errlen, "package %s: a file without a name", pkg);
	if (!sbom_path_ok(name->str, name->len))
		return sbom_fail(err, errlen, "package %s: \"%.200s\" is not a normalised absolute path",
				 pkg, name->str);
	f->path = name->str;
	f->package = pkg;
	f->version = ver;
	r = sbom_read_props(doc, file, &pr, f->path, err, errlen);
	if (r)
		return r;
	if (!pr.ftype || !pr.mode || !pr.uid || !pr.gid)
		return sbom_fail(err, errlen, "%s: needs minivm:file-type, mode, uid and gid", f->path);
	if (strcmp(pr.ftype, "regular") == 0)
		f->type = SBOM_REGULAR;
	else if (strcmp(pr.ftype, "directory") == 0)
		f->type = SBOM_DIRECTORY;
	else if (strcmp(pr.ftype, "symlink") == 0)
		f->type = SBOM_SYMLINK;
	else
		return sbom_fail(err, errlen, "%s: unknown file type \"%.40s\"", f->path, pr.ftype);
	if (sbom_number(pr.mode, 8, 07777, &f->mode))
		return sbom_fail(err, errlen, "%s: mode \"%.40s\" is not octal <= 07777", f->path,
				 pr.mode);
	if (sbom_number(pr.uid, 10, UINT32_MAX, &f->uid) ||
	    sbom_number(pr.gid, 10, UINT32_MAX, &f->gid))
		return sbom_fail(err, errlen, "%s: uid or gid is not a decimal number", f->path);
	if (f->type == SBOM_SYMLINK) {
		if (!pr.target || !*pr.target || strlen(pr.target) > SBOM_PATH_MAX)
			return sbom_fail(err, errlen, "%s: a symlink without a target", f->path);
		f->target = pr.target;
	} else if (pr.target) {
		return sbom_fail(err, errlen, "%s: a symlink target on a %s", f->path, pr.ftype);
	}
	if (f->type == SBOM_REGULAR)
		return sbom_read_hash(doc, file, f, err, errlen);
	return 0;
}

static int sbom_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sbom_file *)a)->path, ((const struct sbom_file *)b)->path);
}

int sbom_parse(const char *buf, size_t len, struct sbom **out, char *err, size_t errlen)
{
	const struct json_limits lim = {
		.max_bytes = SBOM_MAX_BYTES, .max_depth = 16, .max_nodes = 32u * SBOM_MAX_FILES,
	};
	const struct json_node *root, *comps;
	struct sbom *s;
	const char *fmt, *spec;
	size_t nfiles = 0, i = 0;
	int r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = json_parse(buf, len, &lim, &s->doc, err, errlen);
	if (r)
		goto fail;
	root = json_root(s->doc);
	r = -EINVAL;
	fmt = json_get_str(s->doc, root, "bomFormat");
	spec = json_get_str(s->doc, root, "specVersion");
	if (!fmt || strcmp(fmt, "CycloneDX") != 0) {
		sbom_fail(err, errlen, "not a CycloneDX BOM (no \"bomFormat\": \"CycloneDX\")");
		goto fail;
	}
	if (!spec || (strcmp(spec, "1.4") && strcmp(spec, "1.5") && strcmp(spec, "1.6"))) {
		sbom_fail(err, errlen, "CycloneDX specVersion must be 1.4, 1.5 or 1.6");
		goto fail;
	}
	if (json_get(s->doc, root, "components", &comps) || comps->type != JSON_ARRAY) {
		sbom_fail(err, errlen, "no top-level \"components\" array");
		goto fail;
	}
	for (const struct json_node *c = json_first(s->doc, comps); c; c = json_next(s->doc, c)) {
		const struct json_node *files;

		if (c->type != JSON_OBJECT) {
			sbom_fail(err, errlen, "a component that is not an object");
			goto fail;
		}
		if (json_get(s->doc, c, "components", &files) == 0) {
			if (files->type != JSON_ARRAY) {
				sbom_fail(err, errlen, "a component's \"components\" is not an array");
				goto fail;
			}
			nfiles += files->count;
		}
	}
	if (nfiles > SBOM_MAX_FILES) {
		sbom_fail(err, errlen, "more than %u files", SBOM_MAX_FILES);
		r = -E2BIG;
		goto fail;
	}
	s->files = calloc(nfiles ? nfiles : 1, sizeof(*s->files));
	if (!s->files) {
		r = -ENOMEM;
		goto fail;
	}
	for (const struct json_node *c = json_first(s->doc, comps); c; c = json_next(s->doc, c)) {
		const char *pkg = json_get_str(s->doc, c, "name");
		const char *ver = json_get_str(s->doc, c, "version");
		const struct json_node *files, *v;

		if (json_get(s->doc, c, "components", &files))
			continue; /* a component with no files of its own */
		if (!pkg || !*pkg) {
			sbom_fail(err, errlen, "a package component without a name");
			goto fail;
		}
		if (!ver && json_get(s->doc, c, "version", &v) != -ENOENT) {
			sbom_fail(err, errlen, "package %s: version is not a string", pkg);
			goto fail;
		}
		for (const struct json_node *f = json_first(s->doc, files); f; f = json_next(s->doc, f)) {
			if (f->type != JSON_OBJECT) {
				sbom_fail(err, errlen, "package %s: a file entry that is not an object", pkg);
				goto fail;
			}
			r = sbom_read_file(s->doc, f, pkg, ver ? ver : "", &s->files[i], err, errlen);
			if (r)
				goto fail;
			i++;
		}
	}
	s->nr_files = i;
	qsort(s->files, s->nr_files, sizeof(*s->files), sbom_cmp);
	for (i = 1; i < s->nr_files; i++) {
		if (strcmp(s->files[i - 1].path, s->files[i].path) == 0) {
			sbom_fail(err, errlen, "%.200s is listed twice", s->files[i].path);
			r = -EINVAL;
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	sbom_free(s);
	return r ? r : -EINVAL;
}

void sbom_free(struct sbom *s)
{
	if (!s)
		return;
	free(s->files);
	json_free(s->doc);
	free(s);
}

const struct sbom_file *sbom_find(const struct sbom *s, const char *path)
{
	struct sbom_file key = { .path = path };

	if (!s || !s->nr_files)
		return NULL;
	return bsearch(&key, s->files, s->nr_files, sizeof(key), sbom_cmp);
}
