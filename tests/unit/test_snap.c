/* Unit tests for vmm/snap.c (round trip, every refusal: magic, version, checksum, truncation, section bounds, duplicates) and vmm/snapshot.c's metadata and file helpers. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/sha256.h"
#include "vmm/snap.h"
#include "vmm/snapshot.h"

/* A small valid file: three sections; *out is malloc'd, the caller frees it. */
static size_t make_file(uint8_t **out)
{
	struct snap_writer w;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_MACHINE, 0), 0);
	ck_assert_int_eq(snap_put_u64(&w, 256ull << 20), 0);
	ck_assert_int_eq(snap_put_u32(&w, 2), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_put(&w, "regs", 4), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_CLOCK, 0), 0); /* empty section */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	*out = malloc(len);
	ck_assert_ptr_nonnull(*out);
	memcpy(*out, data, len);
	snap_writer_free(&w);
	return len;
}

/* Recomputes the body checksum after a test edited the body. */
static void reseal(uint8_t *f, size_t len)
{
	sha256_digest(f + SNAP_HDR_SIZE, len - SNAP_HDR_SIZE, f + 24);
}

START_TEST(test_round_trip)
{
	struct snap_reader r;
	struct snap_cursor c;
	uint8_t *f, buf[4];
	uint64_t v64;
	uint32_t v32;
	char err[256] = "";
	size_t len = make_file(&f);

	ck_assert_uint_eq(len, SNAP_HDR_SIZE + 16 + 12 + 16 + 4 + 16);
	ck_assert_int_eq(memcmp(f, SNAP_MAGIC, 8), 0);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.version, SNAP_VERSION);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_MACHINE, 0, &c), 0);
	ck_assert_int_eq(snap_get_u64(&c, &v64), 0);
	ck_assert_uint_eq(v64, 256ull << 20);
	ck_assert_int_eq(snap_get_u32(&c, &v32), 0);
	ck_assert_uint_eq(v32, 2);
	ck_assert_uint_eq(c.left, 0);
	ck_assert_int_eq(snap_get_u32(&c, &v32), -EBADMSG); /* reading past a section */
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_VCPU, 1, &c), 0);
	ck_assert_int_eq(snap_get(&c, buf, 4), 0);
	ck_assert_int_eq(memcmp(buf, "regs", 4), 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_CLOCK, 0, &c), 0);
	ck_assert_uint_eq(c.left, 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_VCPU, 0, &c), -ENOENT);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_PIT, 0, &c), -ENOENT);
	free(f);
}
END_TEST

START_TEST(test_empty_file_body)
{
	struct snap_writer w;
	struct snap_reader r;
	struct snap_cursor c;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_uint_eq(len, SNAP_HDR_SIZE);
	ck_assert_int_eq(snap_reader_open(&r, data, len, NULL, 0), 0);
	ck_assert_int_eq(snap_find(&r, SNAP_TAG_MACHINE, 0, &c), -ENOENT);
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_writer_misuse)
{
	struct snap_writer w;
	const uint8_t *data;
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_put_u32(&w, 1), -EINVAL); /* outside a section */
	ck_assert_int_eq(snap_begin(&w, 1, 0), -EINVAL);  /* sticky */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	ck_assert_int_eq(snap_begin(&w, 2, 0), -EINVAL); /* nested */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_end(&w), -EINVAL); /* nothing open */
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), -EINVAL); /* left open */
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_writer_limit)
{
	struct snap_writer w;
	static uint8_t chunk[1 << 20];

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, 1, 0), 0);
	for (int i = 0; i < 63; i++)
		ck_assert_int_eq(snap_put(&w, chunk, sizeof(chunk)), 0);
	ck_assert_int_eq(snap_put(&w, chunk, sizeof(chunk)), -EFBIG);
	ck_assert_int_eq(snap_end(&w), -EFBIG); /* sticky */
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_bad_magic)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[0] ^= 1;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "magic"));
	free(f);
}
END_TEST

START_TEST(test_bad_version)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[8] = 2;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(strstr(err, "version 2"));
	f[8] = 0;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EPROTONOSUPPORT);
	free(f);
}
END_TEST

START_TEST(test_bad_flags)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	f[12] = 1;
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "flags"));
	free(f);
}
END_TEST

/* Every single-bit flip in the body or checksum is caught. */
START_TEST(test_checksum_flip)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	for (size_t i = 24; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			f[i] ^= (uint8_t)(1u << b);
			ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
			ck_assert_ptr_nonnull(strstr(err, "checksum"));
			f[i] ^= (uint8_t)(1u << b);
		}
	}
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), 0);
	free(f);
}
END_TEST

START_TEST(test_truncation_every_length)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	for (size_t l = 0; l < len; l++) {
		uint8_t *copy = malloc(l ? l : 1); /* exact size: ASan sees any overread */

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, f, l);
		ck_assert_int_eq(snap_reader_open(&r, copy, l, err, sizeof(err)),
				 l < 8 ? -EINVAL : -EBADMSG);
		if (l >= SNAP_HDR_SIZE)
			ck_assert_ptr_nonnull(strstr(err, "truncated"));
		free(copy);
	}
	free(f);
}
END_TEST

START_TEST(test_padded)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);
	uint8_t *g = calloc(1, len + 1);

	memcpy(g, f, len);
	ck_assert_int_eq(snap_reader_open(&r, g, len + 1, err, sizeof(err)), -EBADMSG);
	free(g);
	free(f);
}
END_TEST

/* A section length past the body (checksum recomputed so only the bound catches it). */
START_TEST(test_section_past_end)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);
	uint8_t *last = f + len - 16; /* the empty CLOCK section's header */

	last[8] = 1; /* length 1, but no byte follows */
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	last[8] = 0;
	last[15] = 0x80; /* a huge length: no overflow in the bound check */
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	free(f);
}
END_TEST

/* A partial section header at the end of the body. */
START_TEST(test_partial_section_header)
{
	struct snap_reader r;
	char err[256] = "";
	uint8_t *f;
	size_t len = make_file(&f);

	/* Drop the last 4 bytes and fix the header's body length + checksum. */
	len -= 4;
	f[16] = (uint8_t)(len - SNAP_HDR_SIZE);
	reseal(f, len);
	ck_assert_int_eq(snap_reader_open(&r, f, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	free(f);
}
END_TEST

START_TEST(test_duplicate)
{
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *data;
	char err[256] = "";
	size_t len;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 0), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0); /* another instance: fine */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_PIT, 0), 0); /* another tag: fine */
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), 0);
	snap_writer_free(&w);

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_put_u32(&w, 1), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_PIT, 0), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VCPU, 1), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	snap_writer_free(&w);
}
END_TEST

START_TEST(test_too_many_sections)
{
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *data;
	char err[256] = "";
	size_t len;

	snap_writer_init(&w);
	for (uint32_t i = 0; i <= SNAP_MAX_SECTIONS; i++) {
		ck_assert_int_eq(snap_begin(&w, SNAP_TAG_VIRTIO, i), 0);
		ck_assert_int_eq(snap_end(&w), 0);
	}
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_int_eq(snap_reader_open(&r, data, len, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "sections"));
	snap_writer_free(&w);
}
END_TEST

/* ---- vmm/snapshot.c: MACHINE and DISK sections as SNAPSHOT.md lays them out ---- */

struct meta_spec {
	uint32_t version, vcpus, cid, emulated, has_root, nr_disks;
	uint64_t ram, mem_size, mtime_nsec;
	uint32_t disk_flags[2];
	const char *disk_path[2];
	bool extra_disk_section;
	bool trailing_byte;
};

static void good_spec(struct meta_spec *m)
{
	memset(m, 0, sizeof(*m));
	m->version = 1;
	m->vcpus = 2;
	m->cid = 3;
	m->has_root = 1;
	m->nr_disks = 2;
	m->ram = m->mem_size = 256ULL << 20;
	m->mtime_nsec = 5;
	m->disk_flags[0] = SNAPSHOT_DISK_RO;
	m->disk_path[0] = "/images/root.img";
	m->disk_flags[1] = SNAPSHOT_DISK_COPIED;
	m->disk_path[1] = "disk1.img";
}

static void put_ident_t(struct snap_writer *w, uint64_t size, uint64_t nsec)
{
	ck_assert_int_eq(snap_put_u64(w, size), 0);
	ck_assert_int_eq(snap_put_u64(w, 7), 0);  /* dev */
	ck_assert_int_eq(snap_put_u64(w, 99), 0); /* ino */
	ck_assert_int_eq(snap_put_u64(w, 1700000000), 0);
	ck_assert_int_eq(snap_put_u64(w, nsec), 0);
}

/* Encodes m, opens it and parses it: snapshot_meta_parse's return. */
static int meta_try(const struct meta_spec *m, struct snapshot_meta *out, char *err, size_t errlen)
{
	static uint8_t file[1 << 16];
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *data;
	size_t len;
	uint8_t sum[32] = { 1 };
	int ret;

	snap_writer_init(&w);
	ck_assert_int_eq(snap_begin(&w, SNAP_TAG_MACHINE, 0), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->version), 0);
	ck_assert_int_eq(snap_put_u64(&w, m->ram), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->vcpus), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->cid), 0);
	put_ident_t(&w, m->mem_size, m->mtime_nsec);
	ck_assert_int_eq(snap_put_u64(&w, 123456789), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->emulated), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->has_root), 0);
	ck_assert_int_eq(snap_put_u32(&w, m->nr_disks), 0);
	if (m->trailing_byte)
		ck_assert_int_eq(snap_put(&w, "x", 1), 0);
	ck_assert_int_eq(snap_end(&w), 0);
	for (uint32_t i = 0; i < 2 && i < m->nr_disks + (m->extra_disk_section ? 1 : 0); i++) {
		const char *p = m->disk_path[i] ? m->disk_path[i] : "disk9.img";

		ck_assert_int_eq(snap_begin(&w, SNAP_TAG_DISK, i), 0);
		ck_assert_int_eq(snap_put_u32(&w, m->disk_flags[i]), 0);
		put_ident_t(&w, 1 << 20, 0);
		ck_assert_int_eq(snap_put(&w, sum, sizeof(sum)), 0);
		ck_assert_int_eq(snap_put_u32(&w, (uint32_t)strlen(p)), 0);
		ck_assert_int_eq(snap_put(&w, p, strlen(p)), 0);
		ck_assert_int_eq(snap_end(&w), 0);
	}
	ck_assert_int_eq(snap_writer_finish(&w, &data, &len), 0);
	ck_assert_uint_le(len, sizeof(file));
	memcpy(file, data, len);
	snap_writer_free(&w);
	ck_assert_int_eq(snap_reader_open(&r, file, len, err, errlen), 0);
	ret = snapshot_meta_parse(&r, out, err, errlen);
	return ret;
}

START_TEST(test_meta_good)
{
	static struct snapshot_meta m;
	struct meta_spec spec;
	char err[256] = "";

	good_spec(&spec);
	ck_assert_int_eq(meta_try(&spec, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m.ram_size, 256ULL << 20);
	ck_assert_uint_eq(m.nr_vcpus, 2);
	ck_assert_uint_eq(m.guest_cid, 3);
	ck_assert_uint_eq(m.mem.ino, 99);
	ck_assert_uint_eq(m.mem.mtime_nsec, 5);
	ck_assert(m.has_rootfs);
	ck_assert_uint_eq(m.nr_disks, 2);
	ck_assert_str_eq(m.disks[0].path, "/images/root.img");
	ck_assert_uint_eq(m.disks[0].flags, SNAPSHOT_DISK_RO);
	ck_assert_uint_eq(m.disks[0].sha256[0], 1);
	ck_assert_str_eq(m.disks[1].path, "disk1.img");
}
END_TEST

START_TEST(test_meta_bad)
{
	static struct snapshot_meta m;
	static const struct {
		int what;
		const char *needle;
	} cases[] = {
		{ 0, "machine section version" }, { 1, "RAM size" },       { 2, "RAM size" },
		{ 3, "vCPU count" },              { 4, "vCPU count" },     { 5, "guest CID" },
		{ 6, "not the RAM size" },        { 7, "disk count" },     { 8, "bad flags" },
		{ 9, "section missing" },         { 10, "more disk sections" },
		{ 11, "must be absolute" },       { 12, "copied-disk name" }, { 13, "copied-disk name" },
		{ 14, "bad flags" },              { 15, "too long" },      { 16, "truncated" },
		{ 17, "disk count" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meta_spec s;

		good_spec(&s);
		switch (cases[i].what) {
		case 0: s.version = 2; break;
		case 1: s.ram = s.mem_size = 16ULL << 20; break;
		case 2: s.ram = s.mem_size = (256ULL << 20) + 4096; break;
		case 3: s.vcpus = 0; break;
		case 4: s.vcpus = MINIVM_MAX_CPUS + 1; break;
		case 5: s.cid = 2; break;
		case 6: s.mem_size = 100ULL << 20; break; /* the memory file's recorded size */
		case 7: s.nr_disks = SNAPSHOT_MAX_DISKS + 1; break;
		case 8: s.emulated = 2; break;
		case 9: s.nr_disks = 3; break;
		case 10: s.extra_disk_section = true; s.nr_disks = 1; break;
		case 11: s.disk_path[0] = "images/root.img"; break;
		case 12: s.disk_path[1] = "../disk1.img"; break;
		case 13: s.disk_path[1] = "disk0.img"; break;
		case 14: s.disk_flags[1] = SNAPSHOT_DISK_RO | SNAPSHOT_DISK_COPIED; break;
		case 15: s.trailing_byte = true; break;
		case 16: s.mtime_nsec = 1000000000ULL; break;
		case 17: s.nr_disks = 0; break; /* a root but no disk */
		}
		err[0] = '\0';
		ck_assert_msg(meta_try(&s, &m, err, sizeof(err)) != 0, "case %zu accepted", i);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, err,
			      cases[i].needle);
	}
}
END_TEST

static int tmpfile_of(const char *tmpl_name, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/test_snap.%s.XXXXXX", tmpl_name);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(test_memory_check)
{
	static struct snapshot_meta m;
	char path[128], err[256];
	int fd = tmpfile_of("mem", path, sizeof(path));

	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(snapshot_ident_fd(fd, &m.mem), 0);
	ck_assert_int_eq(snapshot_check_memory(fd, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 19), 0);
	ck_assert_int_eq(snapshot_check_memory(fd, &m, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	m.mem.mtime_nsec ^= 1; /* another modification time */
	ck_assert_int_eq(snapshot_check_memory(fd, &m, err, sizeof(err)), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "changed since"));
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(test_disk_check)
{
	static struct snapshot_disk d;
	static struct snapshot_disk descr[SNAPSHOT_MAX_DISKS];
	struct minivm_config cfg;
	char path[128], copy[128], err[256];
	unsigned int n;
	int fd = tmpfile_of("disk", path, sizeof(path)), fd2;

	ck_assert_int_eq(write(fd, "hello disk", 10), 10);
	minivm_config_init(&cfg);
	cfg.kernel = "k";
	cfg.rootfs = path;
	cfg.disks[0].path = path; /* a writable extra disk */
	cfg.nr_disks = 1;
	ck_assert_int_eq(snapshot_disks_describe(&cfg, descr, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(descr[0].flags, SNAPSHOT_DISK_RO);
	ck_assert_uint_eq(descr[1].flags, SNAPSHOT_DISK_COPIED);
	ck_assert_str_eq(descr[1].path, "disk1.img");
	d = descr[0];
	ck_assert_int_eq(snapshot_check_disk(&d, err, sizeof(err)), 0);
	/* A copy with the same bytes: another identity, the same hash. */
	fd2 = tmpfile_of("copy", copy, sizeof(copy));
	ck_assert_int_eq(write(fd2, "hello disk", 10), 10);
	snprintf(d.path, sizeof(d.path), "%s", copy);
	ck_assert_int_eq(snapshot_check_disk(&d, err, sizeof(err)), 0);
	/* Same size, other bytes: refused. */
	ck_assert_int_eq(pwrite(fd2, "J", 1, 0), 1);
	ck_assert_int_eq(snapshot_check_disk(&d, err, sizeof(err)), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "content hash differs"));
	/* Another size: refused without reading. */
	ck_assert_int_eq(write(fd2, "more", 4), 4);
	ck_assert_int_eq(snapshot_check_disk(&d, err, sizeof(err)), -ESTALE);
	ck_assert_ptr_nonnull(strstr(err, "bytes, the snapshot recorded"));
	unlink(copy);
	ck_assert_int_eq(snapshot_check_disk(&d, err, sizeof(err)), -ENOENT);
	close(fd);
	close(fd2);
	unlink(path);
}
END_TEST

START_TEST(test_copy_sparse)
{
	char a[128], b[128];
	int src = tmpfile_of("src", a, sizeof(a)), dst = tmpfile_of("dst", b, sizeof(b));
	static char buf[3 << 20];
	struct stat st;
	bool reflinked;

	ck_assert_int_eq(ftruncate(src, 64 << 20), 0);
	ck_assert_int_eq(pwrite(src, "start", 5, 0), 5);
	ck_assert_int_eq(pwrite(src, "middle", 6, 30 << 20), 6);
	ck_assert_int_eq(pwrite(src, "end", 3, (64 << 20) - 3), 3);
	ck_assert_int_eq(snapshot_copy_file(src, dst, &reflinked), 0);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_int_eq(st.st_size, 64 << 20);
	if (!reflinked)
		ck_assert_int_lt(st.st_blocks * 512, 8 << 20); /* holes stayed holes */
	ck_assert_int_eq(pread(dst, buf, 5, 0), 5);
	ck_assert_int_eq(memcmp(buf, "start", 5), 0);
	ck_assert_int_eq(pread(dst, buf, 6, 30 << 20), 6);
	ck_assert_int_eq(memcmp(buf, "middle", 6), 0);
	ck_assert_int_eq(pread(dst, buf, 3, (64 << 20) - 3), 3);
	ck_assert_int_eq(memcmp(buf, "end", 3), 0);
	ck_assert_int_eq(pread(dst, buf, sizeof(buf), 10 << 20), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0);
	close(src);
	close(dst);
	unlink(a);
	unlink(b);
}
END_TEST

START_TEST(test_state_read)
{
	char path[128], err[256];
	uint8_t *buf, *f;
	size_t len, flen = make_file(&f);
	struct snap_reader r;
	int fd = tmpfile_of("state", path, sizeof(path));

	ck_assert_int_eq(write(fd, f, flen), (ssize_t)flen);
	ck_assert_int_eq(snapshot_state_read(fd, &buf, &len, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, flen);
	free(buf);
	ck_assert_int_eq(ftruncate(fd, (off_t)flen - 1), 0);
	ck_assert_int_eq(snapshot_state_read(fd, &buf, &len, &r, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_null(buf);
	close(fd);
	unlink(path);
	free(f);
}
END_TEST

static Suite *snap_suite(void)
{
	Suite *s = suite_create("snap");
	TCase *tc = tcase_create("container");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_empty_file_body);
	tcase_add_test(tc, test_writer_misuse);
	tcase_add_test(tc, test_writer_limit);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_bad_flags);
	tcase_add_test(tc, test_checksum_flip);
	tcase_add_test(tc, test_truncation_every_length);
	tcase_add_test(tc, test_padded);
	tcase_add_test(tc, test_section_past_end);
	tcase_add_test(tc, test_partial_section_header);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_too_many_sections);
	tcase_add_test(tc, test_meta_good);
	tcase_add_test(tc, test_meta_bad);
	tcase_add_test(tc, test_memory_check);
	tcase_add_test(tc, test_disk_check);
	tcase_add_test(tc, test_copy_sparse);
	tcase_add_test(tc, test_state_read);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(snap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
