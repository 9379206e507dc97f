/* minivm-runc's data: the bundle's config.json (the members a VM can honour, checked strictly) and the container's state file, both pure parsers and writers. */
#include "vmm/runc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/oci_priv.h"

static int runc_spec_err(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int runc_spec_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* A member that must have type t when present: 0 with *out (NULL when absent), or -EINVAL. */
static int runc_member(const struct json_doc *d, const struct json_node *obj, const char *key,
		       enum json_type t, const char *where, const struct json_node **out, char *err,
		       size_t errlen)
{
	static const char *const names[] = { "null", "false", "true", "a number", "a string",
					     "an array", "an object" };
	const struct json_node *n;
	int r = json_get(d, obj, key, &n);

	*out = NULL;
	if (r == -ENOENT)
		return 0;
	if (r == -EEXIST)
		return runc_spec_err(err, errlen, -EINVAL, "config.json: %s%s: given twice", where, key);
	if (r)
		return runc_spec_err(err, errlen, -EINVAL, "config.json: %s: not an object", where);
	if (t == JSON_TRUE ? (n->type != JSON_TRUE && n->type != JSON_FALSE) : n->type != t)
		return runc_spec_err(err, errlen, -EINVAL, "config.json: %s%s: expected %s", where, key,
				     t == JSON_TRUE ? "a boolean" : names[t]);
	*out = n;
	return 0;
}

/* A JSON integer (no fraction or exponent) within [min, max]. */
static int runc_int(const struct json_node *n, int64_t min, int64_t max, int64_t *out)
{
	char buf[32], *end;
	long long v;

	if (!n || n->type != JSON_NUMBER || n->len == 0 || n->len >= sizeof(buf) ||
	    memchr(n->str, '.', n->len) || memchr(n->str, 'e', n->len) || memchr(n->str, 'E', n->len))
		return -EINVAL;
	memcpy(buf, n->str, n->len);
	buf[n->len] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* process: args, env, cwd, user.uid/gid, terminal. */
static int runc_parse_process(const struct json_doc *d, const struct json_node *p,
			      struct runc_process *out, char *err, size_t errlen)
{
	const struct json_node *args, *env, *cwd, *user, *term, *n;
	int64_t v;
	int r;

	if ((r = runc_member(d, p, "args", JSON_ARRAY, "process.", &args, err, errlen)) ||
	    (r = runc_member(d, p, "env", JSON_ARRAY, "process.", &env, err, errlen)) ||
	    (r = runc_member(d, p, "cwd", JSON_STRING, "process.", &cwd, err, errlen)) ||
	    (r = runc_member(d, p, "user", JSON_OBJECT, "process.", &user, err, errlen)) ||
	    (r = runc_member(d, p, "terminal", JSON_TRUE, "process.", &term, err, errlen)))
		return r;
	if (!args || args->count == 0)
		return runc_spec_err(err, errlen, -EINVAL,
				     "config.json: process.args: missing or empty (the command to run)");
	if (args->count > RUNC_MAX_ARGS)
		return runc_spec_err(err, errlen, -E2BIG, "config.json: process.args: more than %d",
				     RUNC_MAX_ARGS);
	for (n = json_first(d, args); n; n = json_next(d, n)) {
		if (n->type != JSON_STRING)
			return runc_spec_err(err, errlen, -EINVAL,
					     "config.json: process.args[%u]: expected a string", out->nargs);
		out->args[out->nargs++] = n->str;
	}
	if (!out->args[0][0])
		return runc_spec_err(err, errlen, -EINVAL, "config.json: process.args[0]: empty");
	if (env && env->count > RUNC_MAX_ENV)
		return runc_spec_err(err, errlen, -E2BIG, "config.json: process.env: more than %d entries",
				     RUNC_MAX_ENV);
	for (n = env ? json_first(d, env) : NULL; n; n = json_next(d, n)) {
		if (n->type != JSON_STRING || !strchr(n->str, '=') || n->str[0] == '=')
			return runc_spec_err(err, errlen, -EINVAL,
					     "config.json: process.env[%u]: expected \"NAME=value\"", out->nenv);
		out->env[out->nenv++] = n->str;
	}
	out->cwd = cwd ? cwd->str : "/";
	if (out->cwd[0] != '/')
		return runc_spec_err(err, errlen, -EINVAL,
				     "config.json: process.cwd '%s': must be an absolute path", out->cwd);
	if (user) {
		const struct json_node *uid, *gid;

		if ((r = runc_member(d, user, "uid", JSON_NUMBER, "process.user.", &uid, err, errlen)) ||
		    (r = runc_member(d, user, "gid", JSON_NUMBER, "process.user.", &gid, err, errlen)))
			return r;
		if (uid && runc_int(uid, 0, UINT32_MAX - 1, &v) == 0)
			out->uid = (uint32_t)v;
		else if (uid)
			return runc_spec_err(err, errlen, -EINVAL, "config.json: process.user.uid: "
								  "expected an integer 0..4294967294");
		if (gid && runc_int(gid, 0, UINT32_MAX - 1, &v) == 0)
			out->gid = (uint32_t)v;
		else if (gid)
			return runc_spec_err(err, errlen, -EINVAL, "config.json: process.user.gid: "
								  "expected an integer 0..4294967294");
	}
	out->terminal = term && term->type == JSON_TRUE;
	return 0;
}

/* Where each kernel file system the guest mounts itself lives. */
static const struct {
	const char *type, *dest;
} runc_guest_fs[] = {
	{ "proc", "/proc" },         { "sysfs", "/sys" },          { "devpts", "/dev/pts" },
	{ "mqueue", "/dev/mqueue" }, { "cgroup", "/sys/fs/cgroup" }, { "cgroup2", "/sys/fs/cgroup" },
	{ "tmpfs", "/dev" },         { "tmpfs", "/dev/shm" },      { "tmpfs", "/tmp" },
	{ "tmpfs", "/run" },
};

static void runc_note(struct runc_spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void runc_note(struct runc_spec *s, const char *fmt, ...)
{
	size_t len = strlen(s->notes);
	va_list ap;

	if (len + 3 >= sizeof(s->notes))
		return;
	if (len)
		len += (size_t)snprintf(s->notes + len, sizeof(s->notes) - len, "; ");
	va_start(ap, fmt);
	vsnprintf(s->notes + len, sizeof(s->notes) - len, fmt, ap);
	va_end(ap);
}

static int runc_parse_mount(struct runc_spec *s, const struct json_node *m, unsigned int i,
			    char *err, size_t errlen)
{
	const struct json_doc *d = s->doc;
	const struct json_node *dest, *type, *src, *opts, *o;
	struct runc_mount *out = &s->mounts[i];
	char where[32];
	bool known = false, elsewhere = false;
	int r;

	snprintf(where, sizeof(where), "mounts[%u].", i);
	if (m->type != JSON_OBJECT)
		return runc_spec_err(err, errlen, -EINVAL, "config.json: mounts[%u]: expected an object", i);
	if ((r = runc_member(d, m, "destination", JSON_STRING, where, &dest, err, errlen)) ||
	    (r = runc_member(d, m, "type", JSON_STRING, where, &type, err, errlen)) ||
	    (r = runc_member(d, m, "source", JSON_STRING, where, &src, err, errlen)) ||
	    (r = runc_member(d, m, "options", JSON_ARRAY, where, &opts, err, errlen)))
		return r;
	if (!dest || dest->str[0] != '/' || strstr(dest->str, "/../") ||
	    (strlen(dest->str) >= 3 && strcmp(dest->str + strlen(dest->str) - 3, "/..") == 0))
		return runc_spec_err(err, errlen, -EINVAL,
				     "config.json: mounts[%u].destination: missing, relative or with '..'", i);
	out->destination = dest->str;
	out->type = type ? type->str : "";
	out->source = src ? src->str : "";
	for (o = opts ? json_first(d, opts) : NULL; o; o = json_next(d, o)) {
		if (o->type != JSON_STRING)
			return runc_spec_err(err, errlen, -EINVAL,
					     "config.json: mounts[%u].options: expected strings", i);
		if (strcmp(o->str, "bind") == 0 || strcmp(o->str, "rbind") == 0)
			out->bind = true;
		else if (strcmp(o->str, "ro") == 0)
			out->readonly = true;
	}
	if (strcmp(out->type, "bind") == 0)
		out->bind = true;
	if (out->bind) {
		if (out->source[0] != '/')
			return runc_spec_err(err, errlen, -EINVAL, "config.json: mounts[%u]: a bind mount "
								   "of '%s' needs an absolute source", i,
					     out->destination);
		if (!strncmp(out->destination, "/dev/", 5) || !strncmp(out->destination, "/proc/", 6) ||
		    !strncmp(out->destination, "/sys/", 5)) {
			/* e.g. Kubernetes' /dev/termination-log: under the guest's own mounts */
			out->kind = RUNC_MOUNT_GUEST;
			runc_note(s, "bind at %s ignored: the guest mounts its own %.4s", out->destination,
				  out->destination);
			return 0;
		}
		out->kind = RUNC_MOUNT_BIND;
		return 0;
	}
	for (size_t k = 0; k < sizeof(runc_guest_fs) / sizeof(runc_guest_fs[0]); k++) {
		if (strcmp(out->type, runc_guest_fs[k].type) != 0)
			continue;
		known = true;
		if (strcmp(out->destination, runc_guest_fs[k].dest) == 0) {
			out->kind = RUNC_MOUNT_GUEST;
			return 0;
		}
		elsewhere = true;
	}
	if (strcmp(out->type, "tmpfs") == 0) {
		out->kind = RUNC_MOUNT_DIR;
		runc_note(s, "tmpfs at %s is a directory of the VM's writable root, not a tmpfs",
			  out->destination);
		return 0;
	}
	if (known && elsewhere)
		return runc_spec_err(err, errlen, -EINVAL,
				     "config.json: mounts[%u]: %s at %s: the guest mounts its own %s at "
				     "its usual place only", i, out->type, out->destination, out->type);
	return runc_spec_err(err, errlen, -EINVAL,
			     "config.json: mounts[%u]: mount type '%s' at %s cannot be given to a VM "
			     "(minivm honours proc, sysfs, devpts, mqueue, cgroup, tmpfs and binds)",
			     i, out->type[0] ? out->type : "(none)", out->destination);
}

static int runc_parse_linux(struct runc_spec *s, const struct json_node *lx, char *err,
			    size_t errlen)
{
	const struct json_doc *d = s->doc;
	const struct json_node *res, *mem, *cpu, *lim, *quota, *period;
	int64_t v;
	int r;

	if ((r = runc_member(d, lx, "resources", JSON_OBJECT, "linux.", &res, err, errlen)) || !res)
		return r;
	if ((r = runc_member(d, res, "memory", JSON_OBJECT, "linux.resources.", &mem, err, errlen)) ||
	    (r = runc_member(d, res, "cpu", JSON_OBJECT, "linux.resources.", &cpu, err, errlen)))
		return r;
	if (mem) {
		if ((r = runc_member(d, mem, "limit", JSON_NUMBER, "linux.resources.memory.", &lim, err,
				     errlen)))
			return r;
		if (lim && runc_int(lim, -1, INT64_MAX, &v))
			return runc_spec_err(err, errlen, -EINVAL, "config.json: linux.resources.memory."
								   "limit: expected an integer (bytes)");
		if (lim && v > 0)
			s->mem_limit = (uint64_t)v;
	}
	if (cpu) {
		if ((r = runc_member(d, cpu, "quota", JSON_NUMBER, "linux.resources.cpu.", &quota, err,
				     errlen)) ||
		    (r = runc_member(d, cpu, "period", JSON_NUMBER, "linux.resources.cpu.", &period, err,
				     errlen)))
			return r;
		if (quota && runc_int(quota, -1, INT64_MAX, &s->cpu_quota))
			return runc_spec_err(err, errlen, -EINVAL, "config.json: linux.resources.cpu."
								   "quota: expected an integer (us)");
		if (period && (runc_int(period, 0, INT64_MAX, &v)))
			return runc_spec_err(err, errlen, -EINVAL, "config.json: linux.resources.cpu."
								   "period: expected an integer (us)");
		if (period)
			s->cpu_period = (uint64_t)v;
	}
	return 0;
}

static int runc_parse_doc(const char *buf, size_t len, struct runc_spec *out, char *err,
			  size_t errlen)
{
	struct json_limits lim = { .max_bytes = RUNC_SPEC_MAX_BYTES, .max_depth = 32,
				   .max_nodes = 1u << 18 };
	char msg[256];
	int r;

	memset(out, 0, sizeof(*out));
	r = json_parse(buf, len, &lim, &out->doc, msg, sizeof(msg));
	if (r)
		return runc_spec_err(err, errlen, r, "config.json: %s", msg);
	if (json_root(out->doc)->type != JSON_OBJECT) {
		runc_spec_free(out);
		return runc_spec_err(err, errlen, -EINVAL, "config.json: expected an object");
	}
	return 0;
}

int runc_spec_parse(const char *buf, size_t len, struct runc_spec *s, char *err, size_t errlen)
{
	const struct json_node *top, *ver, *proc, *root, *path, *ro, *mounts, *lx, *ann, *host, *m;
	int r = runc_parse_doc(buf, len, s, err, errlen);

	if (r)
		return r;
	top = json_root(s->doc);
	if ((r = runc_member(s->doc, top, "ociVersion", JSON_STRING, "", &ver, err, errlen)) ||
	    (r = runc_member(s->doc, top, "process", JSON_OBJECT, "", &proc, err, errlen)) ||
	    (r = runc_member(s->doc, top, "root", JSON_OBJECT, "", &root, err, errlen)) ||
	    (r = runc_member(s->doc, top, "mounts", JSON_ARRAY, "", &mounts, err, errlen)) ||
	    (r = runc_member(s->doc, top, "linux", JSON_OBJECT, "", &lx, err, errlen)) ||
	    (r = runc_member(s->doc, top, "hostname", JSON_STRING, "", &host, err, errlen)) ||
	    (r = runc_member(s->doc, top, "annotations", JSON_OBJECT, "", &ann, err, errlen)))
		goto fail;
	r = -EINVAL;
	if (!ver) {
		runc_spec_err(err, errlen, r, "config.json: ociVersion: missing");
		goto fail;
	}
	if (strncmp(ver->str, "1.", 2) != 0) {
		runc_spec_err(err, errlen, r, "config.json: ociVersion '%s': minivm-runc reads 1.x specs",
			      ver->str);
		goto fail;
	}
	s->oci_version = ver->str;
	if (!proc) {
		runc_spec_err(err, errlen, r, "config.json: process: missing (the command to run)");
		goto fail;
	}
	if ((r = runc_parse_process(s->doc, proc, &s->process, err, errlen)))
		goto fail;
	if (!root) {
		r = runc_spec_err(err, errlen, -EINVAL, "config.json: root: missing (the bundle's rootfs)");
		goto fail;
	}
	if ((r = runc_member(s->doc, root, "path", JSON_STRING, "root.", &path, err, errlen)) ||
	    (r = runc_member(s->doc, root, "readonly", JSON_TRUE, "root.", &ro, err, errlen)))
		goto fail;
	if (!path || !path->str[0]) {
		r = runc_spec_err(err, errlen, -EINVAL, "config.json: root.path: missing or empty");
		goto fail;
	}
	s->root_path = path->str;
	s->root_readonly = ro && ro->type == JSON_TRUE;
	s->hostname = host ? host->str : NULL;
	if (mounts && mounts->count > RUNC_MAX_MOUNTS) {
		r = runc_spec_err(err, errlen, -E2BIG, "config.json: mounts: more than %d", RUNC_MAX_MOUNTS);
		goto fail;
	}
	for (m = mounts ? json_first(s->doc, mounts) : NULL; m; m = json_next(s->doc, m)) {
		if ((r = runc_parse_mount(s, m, s->nmounts, err, errlen)))
			goto fail;
		s->nmounts++;
	}
	if (lx && (r = runc_parse_linux(s, lx, err, errlen)))
		goto fail;
	if (ann) {
		if (ann->count > RUNC_MAX_ANNOTATIONS) {
			r = runc_spec_err(err, errlen, -E2BIG, "config.json: annotations: more than %d",
					  RUNC_MAX_ANNOTATIONS);
			goto fail;
		}
		for (m = json_first(s->doc, ann); m; m = json_next(s->doc, m)) {
			if (m->type != JSON_STRING) {
				r = runc_spec_err(err, errlen, -EINVAL,
						  "config.json: annotations.%s: expected a string", m->key);
				goto fail;
			}
			s->annotations[s->nannotations].key = m->key;
			s->annotations[s->nannotations++].value = m->str;
		}
		s->annotations_node = ann;
	}
	return 0;
fail:
	runc_spec_free(s);
	return r;
}

int runc_process_parse(const char *buf, size_t len, struct runc_spec *s, char *err, size_t errlen)
{
	int r = runc_parse_doc(buf, len, s, err, errlen);

	if (r)
		return r;
	r = runc_parse_process(s->doc, json_root(s->doc), &s->process, err, errlen);
	if (r)
		runc_spec_free(s);
	return r;
}

void runc_spec_free(struct runc_spec *s)
{
	if (!s)
		return;
	json_free(s->doc);
	s->doc = NULL;
}

const char *runc_spec_annotation(const struct runc_spec *s, const char *key)
{
	for (unsigned int i = 0; i < s->nannotations; i++)
		if (strcmp(s->annotations[i].key, key) == 0)
			return s->annotations[i].value;
	return NULL;
}

int runc_spec_vm_size(const struct runc_spec *s, uint64_t *mem, unsigned int *cpus, char *err,
		      size_t errlen)
{
	const char *a_mem = runc_spec_annotation(s, "minivm.mem");
	const char *a_cpus = runc_spec_annotation(s, "minivm.vcpus");

	*mem = 0;
	*cpus = 0;
	if (a_mem) {
		if (cli_parse_size(a_mem, mem) || *mem < CLI_MIN_MEM || *mem > CLI_MAX_MEM)
			return runc_spec_err(err, errlen, -EINVAL, "annotation minivm.mem '%s': expected a "
								   "size from 32M to 64G", a_mem);
	} else if (s->mem_limit) {
		uint64_t m = s->mem_limit;

		if (m > CLI_MAX_MEM)
			return runc_spec_err(err, errlen, -EINVAL, "linux.resources.memory.limit %" PRIu64
								   ": more than a VM's 64 GiB", m);
		m = (m + (1ULL << 20) - 1) & ~((1ULL << 20) - 1);
		*mem = m < RUNC_MIN_MEM ? RUNC_MIN_MEM : m;
	}
	if (a_cpus) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(a_cpus, &end, 10);
		if (errno || *end || !a_cpus[0] || a_cpus[0] == '-' || v < 1 || v > RUNC_MAX_CPUS)
			return runc_spec_err(err, errlen, -EINVAL, "annotation minivm.vcpus '%s': expected "
								   "1..%d", a_cpus, RUNC_MAX_CPUS);
		*cpus = (unsigned int)v;
	} else if (s->cpu_quota > 0) {
		uint64_t period = s->cpu_period ? s->cpu_period : 100000;
		uint64_t n = ((uint64_t)s->cpu_quota + period - 1) / period;

		*cpus = n < 1 ? 1 : n > RUNC_MAX_CPUS ? RUNC_MAX_CPUS : (unsigned int)n;
	}
	return 0;
}

/* ---- the state file ---- */

const char *runc_status_name(enum runc_status s)
{
	switch (s) {
	case RUNC_CREATING:
		return "creating";
	case RUNC_CREATED:
		return "created";
	case RUNC_RUNNING:
		return "running";
	case RUNC_STOPPED:
		return "stopped";
	}
	return "unknown";
}

int runc_state_json(const struct runc_state *st, const char *status, char **out)
{
	struct oci_jw w;
	size_t len;

	oci_jw_init(&w);
	oci_jw_begin(&w, '{');
	oci_jw_key(&w, "ociVersion");
	oci_jw_str(&w, "1.0.2");
	oci_jw_key(&w, "id");
	oci_jw_str(&w, st->id);
	if (status) {
		oci_jw_key(&w, "status");
		oci_jw_str(&w, status);
	}
	oci_jw_key(&w, "pid");
	oci_jw_u64(&w, status && strcmp(status, "stopped") == 0 ? 0 : (uint64_t)st->pid);
	oci_jw_key(&w, "bundle");
	oci_jw_str(&w, st->bundle);
	oci_jw_key(&w, "rootfs");
	oci_jw_str(&w, st->rootfs);
	oci_jw_key(&w, "created");
	oci_jw_str(&w, st->created);
	oci_jw_key(&w, "annotations");
	if (st->doc && st->annotations)
		oci_jw_node(&w, st->doc, st->annotations);
	else {
		oci_jw_begin(&w, '{');
		oci_jw_end(&w, '}');
	}
	if (!status) {
		oci_jw_key(&w, "minivm");
		oci_jw_begin(&w, '{');
		oci_jw_key(&w, "pidStart");
		oci_jw_u64(&w, st->pid_start);
		oci_jw_key(&w, "rundir");
		oci_jw_str(&w, st->rundir);
		oci_jw_key(&w, "vsock");
		oci_jw_str(&w, st->vsock);
		oci_jw_end(&w, '}');
	}
	oci_jw_end(&w, '}');
	return oci_jw_finish(&w, out, &len);
}

/* A string member copied into dst; -EINVAL if missing, not a string or too long. */
static int runc_state_str(const struct json_doc *d, const struct json_node *obj, const char *key,
			  char *dst, size_t size, char *err, size_t errlen)
{
	const char *s = json_get_str(d, obj, key);

	if (!s || snprintf(dst, size, "%s", s) >= (int)size)
		return runc_spec_err(err, errlen, -EINVAL, "state.json: %s: missing or bad", key);
	return 0;
}

int runc_state_parse(const char *buf, size_t len, struct runc_state *st, char *err, size_t errlen)
{
	struct json_limits lim = { .max_bytes = RUNC_SPEC_MAX_BYTES, .max_depth = 16,
				   .max_nodes = 1u << 16 };
	const struct json_node *top, *pid, *priv, *start, *ann;
	char msg[256];
	int64_t v;
	int r;

	memset(st, 0, sizeof(*st));
	r = json_parse(buf, len, &lim, &st->doc, msg, sizeof(msg));
	if (r)
		return runc_spec_err(err, errlen, r, "state.json: %s", msg);
	top = json_root(st->doc);
	r = -EINVAL;
	if (top->type != JSON_OBJECT || json_get(st->doc, top, "pid", &pid) ||
	    runc_int(pid, 1, INT32_MAX, &v)) {
		runc_spec_err(err, errlen, r, "state.json: pid: missing or bad");
		goto fail;
	}
	st->pid = (pid_t)v;
	if ((r = runc_state_str(st->doc, top, "id", st->id, sizeof(st->id), err, errlen)) ||
	    (r = runc_state_str(st->doc, top, "bundle", st->bundle, sizeof(st->bundle), err, errlen)) ||
	    (r = runc_state_str(st->doc, top, "rootfs", st->rootfs, sizeof(st->rootfs), err, errlen)) ||
	    (r = runc_state_str(st->doc, top, "created", st->created, sizeof(st->created), err,
				errlen)))
		goto fail;
	r = -EINVAL;
	if (json_get(st->doc, top, "minivm", &priv) || priv->type != JSON_OBJECT ||
	    json_get(st->doc, priv, "pidStart", &start) || runc_int(start, 0, INT64_MAX, &v)) {
		runc_spec_err(err, errlen, r, "state.json: minivm.pidStart: missing or bad");
		goto fail;
	}
	st->pid_start = (unsigned long long)v;
	if ((r = runc_state_str(st->doc, priv, "rundir", st->rundir, sizeof(st->rundir), err,
				errlen)) ||
	    (r = runc_state_str(st->doc, priv, "vsock", st->vsock, sizeof(st->vsock), err, errlen)))
		goto fail;
	if (json_get(st->doc, top, "annotations", &ann) == 0 && ann->type == JSON_OBJECT)
		st->annotations = ann;
	return 0;
fail:
	runc_state_free(st);
	return r;
}

void runc_state_free(struct runc_state *st)
{
	json_free(st->doc);
	st->doc = NULL;
	st->annotations = NULL;
}
