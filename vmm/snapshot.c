/* Machine-level snapshot and restore: vCPU, irqchip, PIT and clock state through KVM, guest RAM as a sparse file, the metadata sections, and the front's file checks and copies. */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm.h"

/* Records inside a VCPU section: u32 kind, u32 length, the kernel's UAPI
 * struct (x86_64) byte for byte. A kind the host could not read at
 * snapshot time is absent; the reader checks each length. */
enum snapshot_vcpu_rec {
	SNAPSHOT_REC_REGS = 1,
	SNAPSHOT_REC_SREGS = 2,
	SNAPSHOT_REC_MSRS = 3,      /* u32 count, then count x (u32 index, u32 0, u64 data) */
	SNAPSHOT_REC_XSAVE = 4,     /* struct kvm_xsave, or KVM_CAP_XSAVE2's larger size */
	SNAPSHOT_REC_FPU = 5,       /* when the host has no XSAVE */
	SNAPSHOT_REC_XCRS = 6,
	SNAPSHOT_REC_LAPIC = 7,
	SNAPSHOT_REC_EVENTS = 8,
	SNAPSHOT_REC_MP_STATE = 9,
	SNAPSHOT_REC_DEBUGREGS = 10,
	SNAPSHOT_REC_MAX = 10,
};

#define SNAPSHOT_MAX_MSRS 1024
#define SNAPSHOT_MAX_XSAVE (1u << 20)
#define SNAPSHOT_MACHINE_VERSION 1u

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- metadata: MACHINE and DISK sections ---- */

static int put_ident(struct snap_writer *w, const struct snapshot_ident *id)
{
	int r = snap_put_u64(w, id->size);

	if (!r)
		r = snap_put_u64(w, id->dev);
	if (!r)
		r = snap_put_u64(w, id->ino);
	if (!r)
		r = snap_put_u64(w, id->mtime_sec);
	if (!r)
		r = snap_put_u64(w, id->mtime_nsec);
	return r;
}

static int get_ident(struct snap_cursor *c, struct snapshot_ident *id)
{
	if (snap_get_u64(c, &id->size) || snap_get_u64(c, &id->dev) || snap_get_u64(c, &id->ino) ||
	    snap_get_u64(c, &id->mtime_sec) || snap_get_u64(c, &id->mtime_nsec))
		return -EBADMSG;
	if (id->mtime_nsec >= 1000000000ULL)
		return -EBADMSG;
	return 0;
}

static bool ident_eq(const struct snapshot_ident *a, const struct snapshot_ident *b)
{
	return a->size == b->size && a->dev == b->dev && a->ino == b->ino &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

int snapshot_ident_fd(int fd, struct snapshot_ident *id)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	id->size = (uint64_t)st.st_size;
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	id->mtime_sec = (uint64_t)st.st_mtim.tv_sec;
	id->mtime_nsec = (uint64_t)st.st_mtim.tv_nsec;
	return 0;
}

static int disk_encode(struct snap_writer *w, uint32_t instance, const struct snapshot_disk *d)
{
	size_t plen = strnlen(d->path, sizeof(d->path));
	int r = snap_begin(w, SNAP_TAG_DISK, instance);

	if (!r)
		r = snap_put_u32(w, d->flags);
	if (!r)
		r = put_ident(w, &d->id);
	if (!r)
		r = snap_put(w, d->sha256, sizeof(d->sha256));
	if (!r)
		r = snap_put_u32(w, (uint32_t)plen);
	if (!r)
		r = snap_put(w, d->path, plen);
	if (!r)
		r = snap_end(w);
	return r;
}

/* A COPIED disk's name: "diskN.img", nothing that could leave DIR. */
static bool disk_name_ok(const char *s, uint32_t instance)
{
	char want[32];

	snprintf(want, sizeof(want), "disk%u.img", instance);
	return !strcmp(s, want);
}

static int disk_decode(struct snap_cursor *c, uint32_t instance, struct snapshot_disk *d,
		       char *err, size_t errlen)
{
	uint32_t plen;

	memset(d, 0, sizeof(*d));
	if (snap_get_u32(c, &d->flags) || get_ident(c, &d->id) ||
	    snap_get(c, d->sha256, sizeof(d->sha256)) || snap_get_u32(c, &plen)) {
		say(err, errlen, "snapshot disk %u: record truncated", instance);
		return -EBADMSG;
	}
	if (d->flags & ~SNAPSHOT_DISK_ALL || !(d->flags & SNAPSHOT_DISK_ALL) ||
	    (d->flags & SNAPSHOT_DISK_ALL) == SNAPSHOT_DISK_ALL) {
		say(err, errlen, "snapshot disk %u: bad flags 0x%x", instance, d->flags);
		return -EBADMSG;
	}
	if (plen == 0 || plen >= sizeof(d->path) || plen != c->left) {
		say(err, errlen, "snapshot disk %u: bad path length %u", instance, plen);
		return -EBADMSG;
	}
	if (snap_get(c, d->path, plen))
		return -EBADMSG;
	d->path[plen] = '\0';
	if (strlen(d->path) != plen) {
		say(err, errlen, "snapshot disk %u: a NUL inside its path", instance);
		return -EBADMSG;
	}
	if ((d->flags & SNAPSHOT_DISK_RO) && d->path[0] != '/') {
		say(err, errlen, "snapshot disk %u: a read-only disk's path must be absolute", instance);
		return -EBADMSG;
	}
	if ((d->flags & SNAPSHOT_DISK_COPIED) && !disk_name_ok(d->path, instance)) {
		say(err, errlen, "snapshot disk %u: bad copied-disk name '%s'", instance, d->path);
		return -EBADMSG;
	}
	return 0;
}

int snapshot_meta_parse(const struct snap_reader *r, struct snapshot_meta *m, char *err,
			size_t errlen)
{
	struct snap_cursor c;
	uint32_t ver, emulated, has_rootfs, nr_disks;
	int ret;

	memset(m, 0, sizeof(*m));
	if (snap_find(r, SNAP_TAG_MACHINE, 0, &c)) {
		say(err, errlen, "snapshot state file has no machine section");
		return -EBADMSG;
	}
	if (snap_get_u32(&c, &ver) || snap_get_u64(&c, &m->ram_size) ||
	    snap_get_u32(&c, &m->nr_vcpus) || snap_get_u32(&c, &m->guest_cid) ||
	    get_ident(&c, &m->mem) || snap_get_u64(&c, &m->realtime_ns) ||
	    snap_get_u32(&c, &emulated) || snap_get_u32(&c, &has_rootfs) ||
	    snap_get_u32(&c, &nr_disks) || c.left) {
		say(err, errlen, "snapshot machine section truncated or too long");
		return -EBADMSG;
	}
	if (ver != SNAPSHOT_MACHINE_VERSION) {
		say(err, errlen, "snapshot machine section version %u unknown", ver);
		return -EBADMSG;
	}
	if (m->ram_size < (32ULL << 20) || m->ram_size > (64ULL << 30) || (m->ram_size & 0xfffff)) {
		say(err, errlen, "snapshot RAM size %llu out of range", (unsigned long long)m->ram_size);
		return -EBADMSG;
	}
	if (m->nr_vcpus < 1 || m->nr_vcpus > MINIVM_MAX_CPUS) {
		say(err, errlen, "snapshot vCPU count %u out of range", m->nr_vcpus);
		return -EBADMSG;
	}
	if (m->guest_cid < 3 || m->guest_cid == UINT32_MAX) {
		say(err, errlen, "snapshot guest CID %u invalid", m->guest_cid);
		return -EBADMSG;
	}
	if (m->mem.size != m->ram_size) {
		say(err, errlen, "snapshot memory file size %llu is not the RAM size %llu",
		    (unsigned long long)m->mem.size, (unsigned long long)m->ram_size);
		return -EBADMSG;
	}
	if (emulated > 1 || has_rootfs > 1 || nr_disks > SNAPSHOT_MAX_DISKS ||
	    (has_rootfs && nr_disks == 0)) {
		say(err, errlen, "snapshot machine section: bad flags or disk count %u", nr_disks);
		return -EBADMSG;
	}
	m->emulated = emulated;
	m->has_rootfs = has_rootfs;
	m->nr_disks = nr_disks;
	for (uint32_t i = 0; i < nr_disks; i++) {
		if (snap_find(r, SNAP_TAG_DISK, i, &c)) {
			say(err, errlen, "snapshot disk %u: section missing", i);
			return -EBADMSG;
		}
		ret = disk_decode(&c, i, &m->disks[i], err, errlen);
		if (ret)
			return ret;
	}
	if (snap_find(r, SNAP_TAG_DISK, nr_disks, &c) == 0) {
		say(err, errlen, "snapshot has more disk sections than its machine section says");
		return -EBADMSG;
	}
	return 0;
}

/* ---- the front's files ---- */

static int hash_fd(int fd, uint8_t out[SHA256_DIGEST_SIZE])
{
	static const size_t bufsz = 1 << 20;
	struct sha256 s;
	uint8_t *buf = malloc(bufsz);
	off_t off = 0;

	if (!buf)
		return -ENOMEM;
	sha256_init(&s);
	for (;;) {
		ssize_t n = pread(fd, buf, bufsz, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;

			free(buf);
			return r;
		}
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		off += n;
	}
	sha256_final(&s, out);
	free(buf);
	return 0;
}

int snapshot_disks_describe(const struct minivm_config *cfg, struct snapshot_disk *out,
			    unsigned int *n, char *err, size_t errlen)
{
	unsigned int count = 0;

	*n = 0;
	for (int i = -1; i < (int)cfg->nr_disks && i < MINIVM_MAX_DISKS; i++) {
		const char *path = i < 0 ? cfg->rootfs : cfg->disks[i].path;
		bool ro = i < 0 ? !cfg->rootfs_rw : cfg->disks[i].read_only;
		struct snapshot_disk *d;
		char *real;
		int fd, r;

		if (i < 0 && !path)
			continue;
		if (count >= SNAPSHOT_MAX_DISKS) {
			say(err, errlen, "too many disks for a snapshot");
			return -E2BIG;
		}
		d = &out[count];
		memset(d, 0, sizeof(*d));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			say(err, errlen, "snapshot: cannot open disk '%s': %s", path, strerror(errno));
			return r;
		}
		r = snapshot_ident_fd(fd, &d->id);
		if (!r && ro)
			r = hash_fd(fd, d->sha256);
		close(fd);
		if (r) {
			say(err, errlen, "snapshot: reading disk '%s': %s", path, strerror(-r));
			return r;
		}
		if (ro) {
			d->flags = SNAPSHOT_DISK_RO;
			real = realpath(path, NULL);
			if (!real || strlen(real) >= sizeof(d->path)) {
				say(err, errlen, "snapshot: no usable absolute path for disk '%s'", path);
				free(real);
				return -ENAMETOOLONG;
			}
			strcpy(d->path, real);
			free(real);
		} else {
			d->flags = SNAPSHOT_DISK_COPIED;
			snprintf(d->path, sizeof(d->path), "disk%u.img", count);
		}
		count++;
	}
	*n = count;
	return 0;
}

int snapshot_state_read(int fd, uint8_t **buf, size_t *len, struct snap_reader *r, char *err,
			size_t errlen)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	int ret;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		say(err, errlen, "snapshot state file: %s", strerror(errno));
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)SNAP_MAX_FILE) {
		say(err, errlen, "snapshot state file is not a regular file of at most %u bytes",
		    SNAP_MAX_FILE);
		return -EINVAL;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		say(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EBADMSG;
			say(err, errlen, "reading the snapshot state file: %s",
			    n < 0 ? strerror(errno) : "it shrank while being read");
			free(b);
			return ret;
		}
		got += (size_t)n;
	}
	ret = snap_reader_open(r, b, got, err, errlen);
	if (ret) {
		free(b);
		return ret;
	}
	*buf = b;
	*len = got;
	return 0;
}

int snapshot_check_memory(int fd, const struct snapshot_meta *m, char *err, size_t errlen)
{
	struct snapshot_ident id = { 0 };
	int r = snapshot_ident_fd(fd, &id);

	if (r) {
		say(err, errlen, "snapshot memory file: %s", strerror(-r));
		return r;
	}
	if (id.size != m->mem.size) {
		say(err, errlen, "snapshot memory file is %llu bytes, the snapshot recorded %llu "
				 "(truncated or replaced)",
		    (unsigned long long)id.size, (unsigned long long)m->mem.size);
		return -EINVAL;
	}
	if (!ident_eq(&id, &m->mem)) {
		say(err, errlen, "snapshot memory file changed since the snapshot (another inode or "
				 "modification time than recorded)");
		return -ESTALE;
	}
	return 0;
}

int snapshot_check_disk(const struct snapshot_disk *d, char *err, size_t errlen)
{
	struct snapshot_ident id = { 0 };
	uint8_t sum[SHA256_DIGEST_SIZE];
	int fd, r;

	fd = open(d->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		say(err, errlen, "the snapshot's disk '%s': %s", d->path, strerror(errno));
		return r;
	}
	r = snapshot_ident_fd(fd, &id);
	if (r)
		goto out;
	if (ident_eq(&id, &d->id))
		goto out; /* the same file, unmodified: no need to read it */
	if (id.size != d->id.size) {
		say(err, errlen, "the snapshot's disk '%s' is %llu bytes, the snapshot recorded %llu",
		    d->path, (unsigned long long)id.size, (unsigned long long)d->id.size);
		r = -ESTALE;
		goto out;
	}
	r = hash_fd(fd, sum);
	if (r) {
		say(err, errlen, "reading the snapshot's disk '%s': %s", d->path, strerror(-r));
		goto out;
	}
	if (memcmp(sum, d->sha256, sizeof(sum)) != 0) {
		say(err, errlen, "the snapshot's disk '%s' changed since the snapshot (content hash "
				 "differs): the guest's memory would not match it",
		    d->path);
		r = -ESTALE;
	}
out:
	close(fd);
	return r;
}

#define COPY_CHUNK ((size_t)1 << 16)

/* Data extents of src into dst (same offsets; holes stay holes). The
 * read/write fallback's buffer is this call's own (no shared state:
 * several VMs may copy at once). */
static int copy_range(int src, int dst, off_t off, off_t end)
{
	char *buf = NULL;
	int r = 0;

	while (off < end) {
		size_t want = (size_t)(end - off) < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
		loff_t in = off, out = off;
		ssize_t n = copy_file_range(src, &in, dst, &out, want, 0);

		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			      errno == EOPNOTSUPP)) {
			if (!buf && !(buf = malloc(COPY_CHUNK))) {
				r = -ENOMEM;
				break;
			}
			n = pread(src, buf, want, off);
			if (n > 0 && pwrite(dst, buf, (size_t)n, off) != n) {
				r = -EIO;
				break;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0) {
			r = -EIO; /* shrank */
			break;
		}
		off += n;
	}
	free(buf);
	return r;
}

int snapshot_copy_file(int src, int dst, bool *reflinked)
{
	struct stat st;
	off_t off = 0;

	*reflinked = false;
	if (fstat(src, &st) < 0)
		return -errno;
	if (ioctl(dst, FICLONE, src) == 0) {
		*reflinked = true;
		return 0;
	}
	if (ftruncate(dst, st.st_size) < 0)
		return -errno;
	while (off < st.st_size) {
		off_t data = lseek(src, off, SEEK_DATA), hole;
		int r;

		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0)
			return copy_range(src, dst, off, st.st_size); /* no SEEK_DATA: copy all */
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		r = copy_range(src, dst, data, hole);
		if (r)
			return r;
		off = hole;
	}
	return 0;
}

/* ---- the VMM side: saving ---- */

static int rec_put(struct snap_writer *w, uint32_t kind, const void *data, size_t len)
{
	int r = snap_put_u32(w, kind);

	if (!r)
		r = snap_put_u32(w, (uint32_t)len);
	if (!r)
		r = snap_put(w, data, len);
	return r;
}

/* The MSRs KVM lists, minus those KVM_GET_MSRS refuses on this vCPU. */
static int save_msrs(struct minivm *vm, struct vcpu *v, struct snap_writer *w)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list = NULL;
	struct kvm_msrs *m = NULL;
	uint32_t n, done = 0;
	int r;

	if (ioctl(vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	n = probe.nmsrs > SNAPSHOT_MAX_MSRS ? SNAPSHOT_MAX_MSRS : probe.nmsrs;
	list = calloc(1, sizeof(*list) + (n + 1) * sizeof(list->indices[0]));
	m = calloc(1, sizeof(*m) + (n + 1) * sizeof(m->entries[0]));
	if (!list || !m) {
		r = -ENOMEM;
		goto out;
	}
	list->nmsrs = n;
	if (ioctl(vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		r = -errno;
		goto out;
	}
	n = list->nmsrs < n ? list->nmsrs : n;
	for (uint32_t i = 0; i < n; i++)
		m->entries[i].index = list->indices[i];
	/* KVM_GET_MSRS reads in order and stops at the first it refuses:
	 * drop that one and go on from there. */
	while (done < n) {
		struct kvm_msrs *part = calloc(1, sizeof(*part) + (n - done) * sizeof(part->entries[0]));
		int got;

		if (!part) {
			r = -ENOMEM;
			goto out;
		}
		part->nmsrs = n - done;
		memcpy(part->entries, &m->entries[done], (n - done) * sizeof(part->entries[0]));
		got = ioctl(v->fd, KVM_GET_MSRS, part);
		if (got < 0) {
			r = -errno;
			free(part);
			goto out;
		}
		memcpy(&m->entries[done], part->entries, (size_t)got * sizeof(part->entries[0]));
		free(part);
		done += (uint32_t)got;
		if (done < n) {
			memmove(&m->entries[done], &m->entries[done + 1],
				(n - done - 1) * sizeof(m->entries[0]));
			n--;
		}
	}
	r = snap_put_u32(w, SNAPSHOT_REC_MSRS);
	if (!r)
		r = snap_put_u32(w, 4 + n * 16);
	if (!r)
		r = snap_put_u32(w, n);
	for (uint32_t i = 0; !r && i < n; i++) {
		r = snap_put_u32(w, m->entries[i].index);
		if (!r)
			r = snap_put_u32(w, 0);
		if (!r)
			r = snap_put_u64(w, m->entries[i].data);
	}
out:
	free(list);
	free(m);
	return r;
}

/* Reads a vCPU struct with ioctl nr; a host that refuses it leaves the
 * record out (logged once per snapshot at verbose 1). */
static int save_one(struct minivm *vm, struct vcpu *v, struct snap_writer *w, uint32_t kind,
		    unsigned long nr, const char *name, void *buf, size_t len)
{
	if (ioctl(v->fd, nr, buf) < 0) {
		if (v->id == 0)
			vm_log(vm, 1, "snapshot: %s: %s (left out)", name, strerror(errno));
		return 0;
	}
	return rec_put(w, kind, buf, len);
}

static int save_vcpu(struct minivm *vm, struct vcpu *v, struct snap_writer *w, char *err,
		     size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
	int xsave_size, r;

	r = snap_begin(w, SNAP_TAG_VCPU, v->id);
	if (r)
		return r;
	/* Registers and special registers are not optional. */
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		r = -errno;
		say(err, errlen, "snapshot: vCPU %u registers: %s", v->id, strerror(errno));
		return r;
	}
	r = rec_put(w, SNAPSHOT_REC_REGS, &regs, sizeof(regs));
	if (!r)
		r = rec_put(w, SNAPSHOT_REC_SREGS, &sregs, sizeof(sregs));
	if (!r) {
		r = save_msrs(vm, v, w);
		if (r)
			say(err, errlen, "snapshot: vCPU %u MSRs: %s", v->id, strerror(-r));
	}
	if (r)
		return r;
	xsave_size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		size_t sz = xsave_size > (int)sizeof(struct kvm_xsave) && xsave_size <= (int)SNAPSHOT_MAX_XSAVE
				    ? (size_t)xsave_size : sizeof(struct kvm_xsave);
		void *xs = calloc(1, sz);

		if (!xs)
			return -ENOMEM;
		r = save_one(vm, v, w, SNAPSHOT_REC_XSAVE,
			     sz > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, "KVM_GET_XSAVE",
			     xs, sz);
		free(xs);
	} else {
		r = save_one(vm, v, w, SNAPSHOT_REC_FPU, KVM_GET_FPU, "KVM_GET_FPU", &fpu, sizeof(fpu));
	}
	if (!r && ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0)
		r = save_one(vm, v, w, SNAPSHOT_REC_XCRS, KVM_GET_XCRS, "KVM_GET_XCRS", &xcrs,
			     sizeof(xcrs));
	if (!r)
		r = save_one(vm, v, w, SNAPSHOT_REC_LAPIC, KVM_GET_LAPIC, "KVM_GET_LAPIC", &lapic,
			     sizeof(lapic));
	if (!r)
		r = save_one(vm, v, w, SNAPSHOT_REC_EVENTS, KVM_GET_VCPU_EVENTS,
			     "KVM_GET_VCPU_EVENTS", &ev, sizeof(ev));
	if (!r)
		r = save_one(vm, v, w, SNAPSHOT_REC_MP_STATE, KVM_GET_MP_STATE, "KVM_GET_MP_STATE",
			     &mp, sizeof(mp));
	if (!r)
		r = save_one(vm, v, w, SNAPSHOT_REC_DEBUGREGS, KVM_GET_DEBUGREGS,
			     "KVM_GET_DEBUGREGS", &dbg, sizeof(dbg));
	if (!r)
		r = snap_end(w);
	return r;
}

static int save_vm_state(struct minivm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;
	struct timespec rt;
	int r = 0;

	for (uint32_t chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_IOAPIC; chip++) {
		struct kvm_irqchip ic;

		memset(&ic, 0, sizeof(ic));
		ic.chip_id = chip;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0) {
			r = -errno;
			say(err, errlen, "snapshot: KVM_GET_IRQCHIP %u: %s", chip, strerror(errno));
			return r;
		}
		r = snap_begin(w, SNAP_TAG_IRQCHIP, chip);
		if (!r)
			r = snap_put(w, &ic, sizeof(ic));
		if (!r)
			r = snap_end(w);
		if (r)
			return r;
	}
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0) {
		r = -errno;
		say(err, errlen, "snapshot: KVM_GET_PIT2: %s", strerror(errno));
		return r;
	}
	r = snap_begin(w, SNAP_TAG_PIT, 0);
	if (!r)
		r = snap_put(w, &pit, sizeof(pit));
	if (!r)
		r = snap_end(w);
	if (r)
		return r;
	memset(&clk, 0, sizeof(clk));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0) {
		r = -errno;
		say(err, errlen, "snapshot: KVM_GET_CLOCK: %s", strerror(errno));
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	r = snap_begin(w, SNAP_TAG_CLOCK, 0);
	if (!r)
		r = snap_put(w, &clk, sizeof(clk));
	if (!r)
		r = snap_put_u64(w, (uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec);
	if (!r)
		r = snap_end(w);
	return r;
}

static bool page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < SNAPSHOT_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* Guest RAM into fd (sized by the front): runs of non-zero pages only. */
static int save_memory(struct minivm *vm, int fd, char *err, size_t errlen)
{
	uint64_t off = 0, written = 0;
	struct stat st;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != vm->ram_size) {
		say(err, errlen, "snapshot: the memory file is not sized to the RAM (%llu bytes)",
		    (unsigned long long)vm->ram_size);
		return -EINVAL;
	}
	while (off < vm->ram_size) {
		uint64_t end;

		if (page_zero(vm->ram + off)) {
			off += SNAPSHOT_PAGE;
			continue;
		}
		end = off + SNAPSHOT_PAGE;
		while (end < vm->ram_size && end - off < (8u << 20) && !page_zero(vm->ram + end))
			end += SNAPSHOT_PAGE;
		while (off < end) {
			ssize_t n = pwrite(fd, vm->ram + off, (size_t)(end - off), (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int r = n < 0 ? -errno : -EIO;

				say(err, errlen, "snapshot: writing guest memory: %s", strerror(-r));
				return r;
			}
			off += (uint64_t)n;
			written += (uint64_t)n;
		}
	}
	vm_log(vm, 1, "snapshot: %llu MiB of %llu MiB RAM written (the rest: holes)",
	       (unsigned long long)(written >> 20), (unsigned long long)(vm->ram_size >> 20));
	return 0;
}

int snapshot_save(struct minivm *vm, int mem_fd, int state_fd,
		  int (*dev_save)(struct minivm *vm, struct snap_writer *w), char *err, size_t errlen)
{
	const struct snapshot_disk *disks = vm->cfg.snapshot_disks;
	unsigned int nr_disks = disks ? vm->cfg.nr_snapshot_disks : 0;
	struct snapshot_ident mem = { 0 };
	struct snap_writer w;
	struct timespec rt;
	const uint8_t *data;
	size_t len, done = 0;
	int r;

	err[0] = '\0';
	r = save_memory(vm, mem_fd, err, errlen);
	if (r)
		return r;
	r = snapshot_ident_fd(mem_fd, &mem);
	if (r) {
		say(err, errlen, "snapshot: fstat of the memory file: %s", strerror(-r));
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	snap_writer_init(&w);
	r = snap_begin(&w, SNAP_TAG_MACHINE, 0);
	if (!r)
		r = snap_put_u32(&w, SNAPSHOT_MACHINE_VERSION);
	if (!r)
		r = snap_put_u64(&w, vm->ram_size);
	if (!r)
		r = snap_put_u32(&w, vm->nr_vcpus);
	if (!r)
		r = snap_put_u32(&w, vm->cfg.guest_cid);
	if (!r)
		r = put_ident(&w, &mem);
	if (!r)
		r = snap_put_u64(&w, (uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec);
	if (!r)
		r = snap_put_u32(&w, vm->emulated);
	if (!r)
		r = snap_put_u32(&w, vm->cfg.rootfs != NULL);
	if (!r)
		r = snap_put_u32(&w, nr_disks);
	if (!r)
		r = snap_end(&w);
	for (unsigned int i = 0; !r && i < vm->nr_vcpus; i++)
		r = save_vcpu(vm, &vm->vcpus[i], &w, err, errlen);
	if (!r)
		r = save_vm_state(vm, &w, err, errlen);
	if (!r && dev_save) {
		r = dev_save(vm, &w);
		if (r && !err[0])
			say(err, errlen, "snapshot: saving the devices: %s%s%s", strerror(-r),
			    vm->err[0] ? ": " : "", vm->err);
	}
	for (unsigned int i = 0; !r && i < nr_disks; i++)
		r = disk_encode(&w, i, &disks[i]);
	if (!r)
		r = snap_writer_finish(&w, &data, &len);
	if (r) {
		if (!err[0])
			say(err, errlen, "snapshot: encoding the state: %s", strerror(-r));
		snap_writer_free(&w);
		return r;
	}
	while (done < len) {
		ssize_t n = pwrite(state_fd, data + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			say(err, errlen, "snapshot: writing the state file: %s", strerror(-r));
			break;
		}
		done += (size_t)n;
	}
	vm_log(vm, 1, "snapshot: state file %zu bytes", len);
	snap_writer_free(&w);
	return r;
}

/* ---- the VMM side: restoring ---- */

/* The record kind in c (a VCPU section), its length checked against want
 * (0: variable, bounded by max). c then points at its bytes. */
static int rec_find(const struct snap_reader *r, uint32_t id, uint32_t kind, struct snap_cursor *out)
{
	struct snap_cursor c;

	if (snap_find(r, SNAP_TAG_VCPU, id, &c))
		return -ENOENT;
	while (c.left) {
		uint32_t k, len;

		if (snap_get_u32(&c, &k) || snap_get_u32(&c, &len) || len > c.left)
			return -EBADMSG;
		if (k == kind) {
			out->p = c.p;
			out->left = len;
			out->tag = SNAP_TAG_VCPU;
			out->instance = id;
			return 0;
		}
		c.p += len;
		c.left -= len;
	}
	return -ENOENT;
}

/* Every record of a VCPU section well-formed, each kind at most once. */
static int vcpu_section_check(const struct snap_reader *r, uint32_t id, char *err, size_t errlen)
{
	struct snap_cursor c;
	uint32_t seen = 0;

	if (snap_find(r, SNAP_TAG_VCPU, id, &c)) {
		say(err, errlen, "snapshot: vCPU %u has no section", id);
		return -EBADMSG;
	}
	while (c.left) {
		uint32_t k, len;

		if (snap_get_u32(&c, &k) || snap_get_u32(&c, &len) || len > c.left || k == 0 ||
		    k > SNAPSHOT_REC_MAX || (seen & (1u << k))) {
			say(err, errlen, "snapshot: vCPU %u section malformed", id);
			return -EBADMSG;
		}
		seen |= 1u << k;
		c.p += len;
		c.left -= len;
	}
	if (!(seen & (1u << SNAPSHOT_REC_REGS)) || !(seen & (1u << SNAPSHOT_REC_SREGS))) {
		say(err, errlen, "snapshot: vCPU %u lacks its registers", id);
		return -EBADMSG;
	}
	return 0;
}

/* A fixed-size record into buf; -ENOENT when absent, -EBADMSG on a size mismatch. */
static int rec_fixed(const struct snap_reader *r, uint32_t id, uint32_t kind, void *buf, size_t len)
{
	struct snap_cursor c;
	int ret = rec_find(r, id, kind, &c);

	if (ret)
		return ret;
	if (c.left != len)
		return -EBADMSG;
	return snap_get(&c, buf, len);
}

static int restore_fixed(struct minivm *vm, struct vcpu *v, const struct snap_reader *r,
			 uint32_t kind, unsigned long nr, const char *name, void *buf, size_t len,
			 char *err, size_t errlen)
{
	int ret = rec_fixed(r, v->id, kind, buf, len);

	if (ret == -ENOENT)
		return 0; /* not saved: the host could not read it */
	if (ret) {
		say(err, errlen, "snapshot: vCPU %u: %s record has the wrong size", v->id, name);
		return -EBADMSG;
	}
	if (ioctl(v->fd, nr, buf) < 0) {
		ret = -errno;
		say(err, errlen, "restore: vCPU %u: %s: %s", v->id, name, strerror(errno));
		return ret;
	}
	(void)vm;
	return 0;
}

static int restore_msrs(struct minivm *vm, struct vcpu *v, const struct snap_reader *r, char *err,
			size_t errlen)
{
	struct snap_cursor c;
	struct kvm_msrs *m;
	uint32_t n, done = 0;
	int ret = rec_find(r, v->id, SNAPSHOT_REC_MSRS, &c);

	if (ret == -ENOENT)
		return 0;
	if (ret || snap_get_u32(&c, &n) || n > SNAPSHOT_MAX_MSRS || c.left != (size_t)n * 16) {
		say(err, errlen, "snapshot: vCPU %u: MSR record malformed", v->id);
		return -EBADMSG;
	}
	m = calloc(1, sizeof(*m) + (n + 1) * sizeof(m->entries[0]));
	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pad;
		uint64_t data;

		if (snap_get_u32(&c, &m->entries[i].index) || snap_get_u32(&c, &pad) ||
		    snap_get_u64(&c, &data)) {
			free(m);
			return -EBADMSG;
		}
		m->entries[i].data = data;
	}
	/* KVM_SET_MSRS stops at the first it refuses: skip it, log it, go on. */
	while (done < n) {
		int got;

		{
			struct kvm_msrs *part = calloc(1, sizeof(*part) + (n - done) * sizeof(part->entries[0]));

			if (!part) {
				free(m);
				return -ENOMEM;
			}
			part->nmsrs = n - done;
			memcpy(part->entries, &m->entries[done], (n - done) * sizeof(part->entries[0]));
			got = ioctl(v->fd, KVM_SET_MSRS, part);
			free(part);
		}
		if (got < 0) {
			ret = -errno;
			say(err, errlen, "restore: vCPU %u: KVM_SET_MSRS: %s", v->id, strerror(errno));
			free(m);
			return ret;
		}
		done += (uint32_t)got;
		if (done < n) {
			if (v->id == 0)
				vm_log(vm, 1, "restore: MSR 0x%x refused (skipped)", m->entries[done].index);
			done++;
		}
	}
	free(m);
	return 0;
}

int snapshot_restore_vcpu(struct minivm *vm, struct vcpu *v, const struct snap_reader *r,
			  char *err, size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
	struct snap_cursor c;
	int ret;

	ret = vcpu_section_check(r, v->id, err, errlen);
	if (ret)
		return ret;
	/* Special registers first (modes, control registers), then the rest. */
	ret = restore_fixed(vm, v, r, SNAPSHOT_REC_SREGS, KVM_SET_SREGS, "KVM_SET_SREGS", &sregs,
			    sizeof(sregs), err, errlen);
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_REGS, KVM_SET_REGS, "KVM_SET_REGS", &regs,
				    sizeof(regs), err, errlen);
	if (ret)
		return ret;
	if (rec_find(r, v->id, SNAPSHOT_REC_XSAVE, &c) == 0) {
		int host = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
		size_t sz = host > (int)sizeof(struct kvm_xsave) && host <= (int)SNAPSHOT_MAX_XSAVE
				    ? (size_t)host : sizeof(struct kvm_xsave);
		void *xs;

		if (c.left < sizeof(struct kvm_xsave) || c.left > SNAPSHOT_MAX_XSAVE || c.left > sz) {
			say(err, errlen, "snapshot: vCPU %u: XSAVE record of %zu bytes does not fit this "
					 "host's %zu", v->id, c.left, sz);
			return -EINVAL;
		}
		xs = calloc(1, sz);
		if (!xs)
			return -ENOMEM;
		memcpy(xs, c.p, c.left);
		if (ioctl(v->fd, KVM_SET_XSAVE, xs) < 0) {
			ret = -errno;
			say(err, errlen, "restore: vCPU %u: KVM_SET_XSAVE: %s", v->id, strerror(errno));
		}
		free(xs);
	} else {
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_FPU, KVM_SET_FPU, "KVM_SET_FPU", &fpu,
				    sizeof(fpu), err, errlen);
	}
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_XCRS, KVM_SET_XCRS, "KVM_SET_XCRS", &xcrs,
				    sizeof(xcrs), err, errlen);
	/* The LAPIC after the special registers (APIC base, x2APIC mode) and
	 * before the MSRs: KVM drops an IA32_TSC_DEADLINE write while the
	 * LAPIC timer is not in TSC-deadline mode, and a reset LAPIC is not,
	 * so the other order loses the guest's next timer interrupt (seen: a
	 * restored guest that never answered). Firecracker's order too. */
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_LAPIC, KVM_SET_LAPIC, "KVM_SET_LAPIC",
				    &lapic, sizeof(lapic), err, errlen);
	if (!ret)
		ret = restore_msrs(vm, v, r, err, errlen);
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_MP_STATE, KVM_SET_MP_STATE,
				    "KVM_SET_MP_STATE", &mp, sizeof(mp), err, errlen);
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_DEBUGREGS, KVM_SET_DEBUGREGS,
				    "KVM_SET_DEBUGREGS", &dbg, sizeof(dbg), err, errlen);
	/* Pending events last: nothing after them may clear them. */
	if (!ret)
		ret = restore_fixed(vm, v, r, SNAPSHOT_REC_EVENTS, KVM_SET_VCPU_EVENTS,
				    "KVM_SET_VCPU_EVENTS", &ev, sizeof(ev), err, errlen);
	return ret;
}

int snapshot_restore_irqchip(struct minivm *vm, const struct snap_reader *r, char *err,
			     size_t errlen)
{
	struct snap_cursor c;
	int ret;

	for (uint32_t chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_IOAPIC; chip++) {
		struct kvm_irqchip ic;

		if (snap_find(r, SNAP_TAG_IRQCHIP, chip, &c) || c.left != sizeof(ic) ||
		    snap_get(&c, &ic, sizeof(ic)) || ic.chip_id != chip) {
			say(err, errlen, "snapshot: irqchip %u section missing or malformed", chip);
			return -EBADMSG;
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &ic) < 0) {
			ret = -errno;
			say(err, errlen, "restore: KVM_SET_IRQCHIP %u: %s", chip, strerror(errno));
			return ret;
		}
	}
	return 0;
}

int snapshot_restore_pit(struct minivm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	struct kvm_pit_state2 pit;
	struct snap_cursor c;
	int ret;

	if (snap_find(r, SNAP_TAG_PIT, 0, &c) || c.left != sizeof(pit) || snap_get(&c, &pit, sizeof(pit))) {
		say(err, errlen, "snapshot: PIT section missing or malformed");
		return -EBADMSG;
	}
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0) {
		ret = -errno;
		say(err, errlen, "restore: KVM_SET_PIT2: %s", strerror(errno));
		return ret;
	}
	return 0;
}

int snapshot_restore_clock(struct minivm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	struct kvm_clock_data clk;
	struct snap_cursor c;
	uint64_t rt;
	int ret;

	if (snap_find(r, SNAP_TAG_CLOCK, 0, &c) || c.left != sizeof(clk) + 8 ||
	    snap_get(&c, &clk, sizeof(clk)) || snap_get_u64(&c, &rt)) {
		say(err, errlen, "snapshot: clock section missing or malformed");
		return -EBADMSG;
	}
	/* The guest's clock goes on from where it stopped; the agent's fix-up
	 * then sets its wall clock to the host's. */
	clk.flags = 0;
	memset(clk.pad, 0, sizeof(clk.pad));
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0) {
		ret = -errno;
		say(err, errlen, "restore: KVM_SET_CLOCK: %s", strerror(errno));
		return ret;
	}
	return 0;
}
