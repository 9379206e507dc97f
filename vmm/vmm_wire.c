/* The configuration message from libminivm to minivm-vmm: encode, and a pure decoder that trusts nothing it reads. */
#include "vmm/vmm_wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VMM_WIRE_MAX_STR <= SNAPSHOT_MAX_PATH, "a snapshot disk's path fits");
/* Every field of these crosses (x86_64 sizes): a field added to one of them
 * must be added to the encoder and the decoder below, then here. */
_Static_assert(sizeof(struct minivm_config) == 880, "struct minivm_config changed: see vmm_wire.c");
_Static_assert(sizeof(struct minivm_net) == 160, "struct minivm_net changed: see vmm_wire.c");
_Static_assert(sizeof(struct jail_config) == 16, "struct jail_config changed: see vmm_wire.c");
_Static_assert(sizeof(struct snapshot_disk) == 4176, "struct snapshot_disk changed: see vmm_wire.c");

/* ---- encoding ---- */

struct wire_wr {
	uint8_t *buf;
	size_t len, cap;
	int r; /* first error (sticky) */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static void wr_fail(struct wire_wr *w, int r,
							   const char *fmt, ...)
{
	va_list ap;

	if (w->r)
		return;
	w->r = r;
	va_start(ap, fmt);
	vsnprintf(w->err, w->errlen, fmt, ap);
	va_end(ap);
}

static void wr_bytes(struct wire_wr *w, const void *p, size_t n)
{
	if (w->r)
		return;
	if (n > VMM_WIRE_MAX_SIZE - w->len) {
		wr_fail(w, -E2BIG, "the VMM's configuration is larger than %u bytes",
			VMM_WIRE_MAX_SIZE);
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *b;

		while (cap < w->len + n)
			cap *= 2;
		b = realloc(w->buf, cap);
		if (!b) {
			wr_fail(w, -ENOMEM, "out of memory");
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void wr_le(struct wire_wr *w, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	wr_bytes(w, b, n);
}

static void wr_u8(struct wire_wr *w, uint8_t v)
{
	wr_le(w, v, 1);
}

static void wr_u32(struct wire_wr *w, uint32_t v)
{
	wr_le(w, v, 4);
}

static void wr_u64(struct wire_wr *w, uint64_t v)
{
	wr_le(w, v, 8);
}

static void wr_str(struct wire_wr *w, const char *s, const char *what)
{
	size_t n;

	if (!s) {
		wr_u32(w, 0);
		return;
	}
	n = strlen(s) + 1;
	if (n > VMM_WIRE_MAX_STR) {
		wr_fail(w, -ENAMETOOLONG, "%s is longer than %u bytes", what, VMM_WIRE_MAX_STR - 1);
		return;
	}
	wr_u32(w, (uint32_t)n);
	wr_bytes(w, s, n);
}

static void wr_limit(struct wire_wr *w, const struct minivm_rate_limit *l)
{
	wr_u64(w, l->bytes_per_s);
	wr_u64(w, l->bytes_burst);
	wr_u32(w, l->bytes_refill_ms);
	wr_u64(w, l->ops_per_s);
	wr_u64(w, l->ops_burst);
	wr_u32(w, l->ops_refill_ms);
}

static void wr_disks(struct wire_wr *w, const struct minivm_config *c)
{
	if (c->nr_disks > MINIVM_MAX_DISKS) {
		wr_fail(w, -EINVAL, "%u disks: at most %u", c->nr_disks, MINIVM_MAX_DISKS);
		return;
	}
	wr_u32(w, c->nr_disks);
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		wr_str(w, c->disks[i].path, "a disk's path");
		wr_u8(w, c->disks[i].read_only);
		wr_u8(w, c->disks[i].read_write);
		wr_limit(w, &c->disks[i].limit);
	}
}

static void wr_net(struct wire_wr *w, const struct minivm_net *n)
{
	wr_str(w, n->tap, "the TAP device's name");
	wr_bytes(w, n->mac, sizeof(n->mac));
	wr_u32(w, n->ip);
	wr_u8(w, n->prefix);
	wr_u32(w, n->gw);
	wr_u32(w, n->dns);
	if (n->nr_allow > MINIVM_MAX_NET_RULES || (n->nr_allow && !n->allow)) {
		wr_fail(w, -EINVAL, "%u network rules: at most %u", n->nr_allow,
			MINIVM_MAX_NET_RULES);
		return;
	}
	wr_u32(w, n->nr_allow);
	for (unsigned int i = 0; i < n->nr_allow; i++) {
		if (!n->allow[i])
			wr_fail(w, -EINVAL, "network rule %u is NULL", i);
		wr_str(w, n->allow[i], "a network rule");
	}
	wr_str(w, n->policy_file, "the network policy file's path");
	wr_u8(w, n->allow_dns);
	wr_limit(w, &n->rx_limit);
	wr_limit(w, &n->tx_limit);
}

static void wr_snapshot_disks(struct wire_wr *w, const struct minivm_config *c)
{
	const struct snapshot_disk *d = c->snapshot_disks;

	if (c->nr_snapshot_disks > SNAPSHOT_MAX_DISKS || (c->nr_snapshot_disks && !d)) {
		wr_fail(w, -EINVAL, "%u snapshot disks: at most %u", c->nr_snapshot_disks,
			SNAPSHOT_MAX_DISKS);
		return;
	}
	wr_u32(w, c->nr_snapshot_disks);
	for (unsigned int i = 0; i < c->nr_snapshot_disks; i++) {
		wr_u32(w, d[i].flags);
		wr_u64(w, d[i].id.size);
		wr_u64(w, d[i].id.dev);
		wr_u64(w, d[i].id.ino);
		wr_u64(w, d[i].id.mtime_sec);
		wr_u64(w, d[i].id.mtime_nsec);
		wr_bytes(w, d[i].sha256, sizeof(d[i].sha256));
		if (!memchr(d[i].path, '\0', sizeof(d[i].path)))
			wr_fail(w, -ENAMETOOLONG, "snapshot disk %u's path is not terminated", i);
		else
			wr_str(w, d[i].path, "a snapshot disk's path");
	}
}

static void wr_config(struct wire_wr *w, const struct minivm_config *c)
{
	wr_str(w, c->kernel, "the kernel's path");
	wr_str(w, c->rootfs, "the rootfs's path");
	wr_u8(w, c->rootfs_rw);
	wr_limit(w, &c->rootfs_limit);
	wr_disks(w, c);
	wr_str(w, c->run, "the program to run");
	wr_str(w, c->cmdline, "the kernel command line");
	wr_str(w, c->console, "the console's path");
	wr_u8(w, !c->console && c->console_fd >= 0);
	wr_u64(w, c->mem_bytes);
	wr_u32(w, c->cpus);
	wr_u32(w, (uint32_t)c->emul);
	wr_u8(w, c->timings);
	wr_u32(w, (uint32_t)c->verbose);
	wr_str(w, c->vsock_uds, "the vsock socket's path");
	wr_u32(w, c->guest_cid);
	wr_u64(w, c->vm_timeout_ms);
	wr_net(w, &c->net);
	wr_u8(w, c->snapshot_mem_fd >= 0);
	wr_u8(w, c->snapshot_state_fd >= 0);
	wr_snapshot_disks(w, c);
	wr_u8(w, c->restore_state_fd >= 0);
	wr_u8(w, c->restore_mem_fd >= 0);
}

int vmm_wire_encode(const struct minivm_config *cfg, const struct jail_config *jail,
		    const char *jail_dir, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	struct wire_wr w = { .err = err, .errlen = errlen };
	size_t body;

	*buf = NULL;
	*len = 0;
	wr_u32(&w, VMM_WIRE_MAGIC);
	wr_u32(&w, VMM_WIRE_VERSION);
	wr_u32(&w, 0); /* the body's length, below */
	wr_u32(&w, (uint32_t)jail->mode);
	wr_u32(&w, jail->uid);
	wr_u32(&w, jail->gid);
	wr_u32(&w, jail->cpu_quota_pct);
	if (!jail_dir)
		wr_fail(&w, -EINVAL, "no run directory");
	wr_str(&w, jail_dir, "the run directory's path");
	wr_config(&w, cfg);
	if (w.r) {
		free(w.buf);
		return w.r;
	}
	body = w.len - VMM_WIRE_HDR_SIZE;
	for (unsigned int i = 0; i < 4; i++)
		w.buf[8 + i] = (uint8_t)(body >> (8 * i));
	*buf = w.buf;
	*len = w.len;
	return 0;
}

/* ---- decoding ---- */

struct wire_rd {
	const uint8_t *p;
	size_t left, len;
	int r; /* first error (sticky): later reads give 0 / NULL */
	char *err;
	size_t errlen;
	char *strs; /* where strings are copied (as large as the input) */
	size_t strs_used;
};

__attribute__((format(printf, 2, 3))) static void rd_fail(struct wire_rd *rd, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (rd->r)
		return;
	rd->r = -EINVAL;
	n = snprintf(rd->err, rd->errlen, "the VMM's configuration message: ");
	if (n < 0 || (size_t)n >= rd->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* n bytes at the cursor, or NULL (truncated: the error is set). */
static const uint8_t *rd_take(struct wire_rd *rd, size_t n, const char *what)
{
	const uint8_t *p;

	if (rd->r)
		return NULL;
	if (n > rd->left) {
		rd_fail(rd, "truncated at byte %zu of %zu (reading %s)", rd->len - rd->left,
			rd->len, what);
		return NULL;
	}
	p = rd->p;
	rd->p += n;
	rd->left -= n;
	return p;
}

static uint64_t rd_le(struct wire_rd *rd, unsigned int n, const char *what)
{
	const uint8_t *p = rd_take(rd, n, what);
	uint64_t v = 0;

	for (unsigned int i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t rd_u32(struct wire_rd *rd, const char *what)
{
	return (uint32_t)rd_le(rd, 4, what);
}

static uint64_t rd_u64(struct wire_rd *rd, const char *what)
{
	return rd_le(rd, 8, what);
}

static uint8_t rd_u8(struct wire_rd *rd, const char *what)
{
	return (uint8_t)rd_le(rd, 1, what);
}

static bool rd_bool(struct wire_rd *rd, const char *what)
{
	uint8_t v = rd_u8(rd, what);

	if (v > 1)
		rd_fail(rd, "%s is %u, not a bool", what, v);
	return v == 1;
}

/* A bounded count: max at most. */
static unsigned int rd_count(struct wire_rd *rd, unsigned int max, const char *what)
{
	uint32_t n = rd_u32(rd, what);

	if (n > max) {
		rd_fail(rd, "%u %s: at most %u", n, what, max);
		return 0;
	}
	return n;
}

/* A string (NULL when absent or on error), copied into rd->strs. */
static const char *rd_str(struct wire_rd *rd, const char *what)
{
	uint32_t n = rd_u32(rd, what);
	const uint8_t *p;
	char *s;

	if (rd->r || n == 0)
		return NULL;
	if (n > VMM_WIRE_MAX_STR) {
		rd_fail(rd, "%s is %u bytes: at most %u", what, n, VMM_WIRE_MAX_STR);
		return NULL;
	}
	p = rd_take(rd, n, what);
	if (!p)
		return NULL;
	if (memchr(p, '\0', n) != p + n - 1) {
		rd_fail(rd, "%s is not a terminated string", what);
		return NULL;
	}
	s = rd->strs + rd->strs_used;
	memcpy(s, p, n);
	rd->strs_used += n;
	return s;
}

/* An fd the message says is open: its fixed number, or -1. */
static int rd_fd(struct wire_rd *rd, int num, const char *what)
{
	return rd_bool(rd, what) ? num : -1;
}

static void rd_limit(struct wire_rd *rd, struct minivm_rate_limit *l)
{
	l->bytes_per_s = rd_u64(rd, "a rate limit");
	l->bytes_burst = rd_u64(rd, "a rate limit");
	l->bytes_refill_ms = rd_u32(rd, "a rate limit");
	l->ops_per_s = rd_u64(rd, "a rate limit");
	l->ops_burst = rd_u64(rd, "a rate limit");
	l->ops_refill_ms = rd_u32(rd, "a rate limit");
}

static void rd_jail(struct wire_rd *rd, struct vmm_wire_config *w)
{
	uint32_t mode = rd_u32(rd, "the jail's mode");

	if (mode > JAIL_REQUIRED)
		rd_fail(rd, "jail mode %u is none of 0..%u", mode, (unsigned int)JAIL_REQUIRED);
	w->jail.mode = (enum jail_mode)mode;
	w->jail.uid = rd_u32(rd, "the jail's uid");
	w->jail.gid = rd_u32(rd, "the jail's gid");
	w->jail.cpu_quota_pct = rd_u32(rd, "the jail's CPU quota");
	w->jail_dir = rd_str(rd, "the run directory");
	if (!rd->r && !w->jail_dir)
		rd_fail(rd, "no run directory");
}

static void rd_disks(struct wire_rd *rd, struct minivm_config *c)
{
	c->nr_disks = rd_count(rd, MINIVM_MAX_DISKS, "disks");
	for (unsigned int i = 0; i < c->nr_disks && !rd->r; i++) {
		c->disks[i].path = rd_str(rd, "a disk's path");
		if (!rd->r && !c->disks[i].path)
			rd_fail(rd, "disk %u has no path", i);
		c->disks[i].read_only = rd_bool(rd, "a disk's read_only");
		c->disks[i].read_write = rd_bool(rd, "a disk's read_write");
		rd_limit(rd, &c->disks[i].limit);
	}
}

static void rd_net(struct wire_rd *rd, struct vmm_wire_config *w)
{
	struct minivm_net *n = &w->cfg.net;
	const uint8_t *mac;

	n->tap = rd_str(rd, "the TAP device's name");
	mac = rd_take(rd, sizeof(n->mac), "the guest's MAC");
	if (mac)
		memcpy(n->mac, mac, sizeof(n->mac));
	n->ip = rd_u32(rd, "the guest's address");
	n->prefix = rd_u8(rd, "the prefix length");
	n->gw = rd_u32(rd, "the gateway");
	n->dns = rd_u32(rd, "the resolver");
	n->nr_allow = rd_count(rd, MINIVM_MAX_NET_RULES, "network rules");
	if (n->nr_allow) {
		w->allow = calloc(n->nr_allow, sizeof(*w->allow));
		if (!w->allow) {
			rd_fail(rd, "out of memory");
			rd->r = -ENOMEM;
			n->nr_allow = 0;
		}
		n->allow = w->allow;
	}
	for (unsigned int i = 0; i < n->nr_allow && !rd->r; i++) {
		w->allow[i] = rd_str(rd, "a network rule");
		if (!rd->r && !w->allow[i])
			rd_fail(rd, "network rule %u is NULL", i);
	}
	n->policy_file = rd_str(rd, "the network policy file");
	n->allow_dns = rd_bool(rd, "allow_dns");
	rd_limit(rd, &n->rx_limit);
	rd_limit(rd, &n->tx_limit);
}

static void rd_snapshot_disks(struct wire_rd *rd, struct vmm_wire_config *w)
{
	struct minivm_config *c = &w->cfg;

	c->nr_snapshot_disks = rd_count(rd, SNAPSHOT_MAX_DISKS, "snapshot disks");
	c->snapshot_disks = c->nr_snapshot_disks ? w->snapshot_disks : NULL;
	for (unsigned int i = 0; i < c->nr_snapshot_disks && !rd->r; i++) {
		struct snapshot_disk *d = &w->snapshot_disks[i];
		const uint8_t *sum;
		const char *path;

		d->flags = rd_u32(rd, "a snapshot disk's flags");
		d->id.size = rd_u64(rd, "a snapshot disk's identity");
		d->id.dev = rd_u64(rd, "a snapshot disk's identity");
		d->id.ino = rd_u64(rd, "a snapshot disk's identity");
		d->id.mtime_sec = rd_u64(rd, "a snapshot disk's identity");
		d->id.mtime_nsec = rd_u64(rd, "a snapshot disk's identity");
		sum = rd_take(rd, sizeof(d->sha256), "a snapshot disk's hash");
		if (sum)
			memcpy(d->sha256, sum, sizeof(d->sha256));
		path = rd_str(rd, "a snapshot disk's path");
		if (!rd->r && !path)
			rd_fail(rd, "snapshot disk %u has no path", i);
		if (path)
			memcpy(d->path, path, strlen(path) + 1);
	}
}

static void rd_config(struct wire_rd *rd, struct vmm_wire_config *w)
{
	struct minivm_config *c = &w->cfg;
	uint32_t emul;

	c->kernel = rd_str(rd, "the kernel's path");
	c->rootfs = rd_str(rd, "the rootfs's path");
	c->rootfs_rw = rd_bool(rd, "rootfs_rw");
	rd_limit(rd, &c->rootfs_limit);
	rd_disks(rd, c);
	c->run = rd_str(rd, "the program to run");
	c->cmdline = rd_str(rd, "the kernel command line");
	c->console = rd_str(rd, "the console's path");
	c->console_fd = rd_fd(rd, VMM_FD_CONSOLE, "the console fd");
	c->mem_bytes = rd_u64(rd, "the memory size");
	c->cpus = rd_u32(rd, "the vCPU count");
	emul = rd_u32(rd, "emul");
	if (emul > MINIVM_EMUL_NO)
		rd_fail(rd, "emul %u is none of 0..%u", emul, (unsigned int)MINIVM_EMUL_NO);
	c->emul = (enum minivm_emul)emul;
	c->timings = rd_bool(rd, "timings");
	c->verbose = (int)rd_u32(rd, "verbose");
	c->vsock_uds = rd_str(rd, "the vsock socket's path");
	c->guest_cid = rd_u32(rd, "the guest CID");
	c->vm_timeout_ms = rd_u64(rd, "the VM timeout");
	rd_net(rd, w);
	c->snapshot_mem_fd = rd_fd(rd, VMM_FD_SNAPSHOT_MEM, "the snapshot memory fd");
	c->snapshot_state_fd = rd_fd(rd, VMM_FD_SNAPSHOT_STATE, "the snapshot state fd");
	rd_snapshot_disks(rd, w);
	c->restore_state_fd = rd_fd(rd, VMM_FD_RESTORE_STATE, "the restore state fd");
	c->restore_mem_fd = rd_fd(rd, VMM_FD_RESTORE_MEM, "the restore memory fd");
}

int vmm_wire_size(const uint8_t *buf, size_t len, size_t *total, char *err, size_t errlen)
{
	struct wire_rd rd = { .p = buf, .left = len, .len = len, .err = err, .errlen = errlen };
	uint32_t magic, version, body;

	*total = 0;
	magic = rd_u32(&rd, "the header");
	version = rd_u32(&rd, "the header");
	body = rd_u32(&rd, "the header");
	if (rd.r)
		return rd.r;
	if (magic != VMM_WIRE_MAGIC)
		rd_fail(&rd, "bad magic 0x%08x", magic);
	else if (version != VMM_WIRE_VERSION)
		rd_fail(&rd, "version %u, this minivm-vmm reads %u", version, VMM_WIRE_VERSION);
	else if (body > VMM_WIRE_MAX_SIZE - VMM_WIRE_HDR_SIZE)
		rd_fail(&rd, "%llu bytes: at most %u",
			(unsigned long long)body + VMM_WIRE_HDR_SIZE, VMM_WIRE_MAX_SIZE);
	if (rd.r)
		return rd.r;
	*total = VMM_WIRE_HDR_SIZE + (size_t)body;
	return 0;
}

int vmm_wire_decode(const uint8_t *buf, size_t len, struct vmm_wire_config *out, char *err,
		    size_t errlen)
{
	struct wire_rd rd = { .p = buf, .left = len, .len = len, .err = err, .errlen = errlen };
	size_t total;
	int r;

	memset(out, 0, sizeof(*out));
	r = vmm_wire_size(buf, len, &total, err, errlen);
	if (r)
		return r;
	if (total != len) {
		rd_fail(&rd, "%zu bytes, its header says %zu", len, total);
		return rd.r;
	}
	rd.strs = malloc(len);
	if (!rd.strs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	out->strs = rd.strs;
	(void)rd_take(&rd, VMM_WIRE_HDR_SIZE, "the header");
	rd_jail(&rd, out);
	rd_config(&rd, out);
	if (!rd.r && rd.left)
		rd_fail(&rd, "%zu bytes left over after the configuration", rd.left);
	if (rd.r) {
		vmm_wire_free(out);
		return rd.r;
	}
	return 0;
}

void vmm_wire_free(struct vmm_wire_config *w)
{
	free(w->allow);
	free(w->strs);
	memset(w, 0, sizeof(*w));
}
