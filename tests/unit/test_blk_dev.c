/* Unit tests for the virtio-blk device end to end: a fake guest driver, the MMIO transport, a real event loop and a temp image. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_spec.h"
#include "tests/unit/test_virtio_helpers.h"
#include "vmm/evl.h"

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK

#define RAM_SIZE (16u << 20)
#define QSIZE 128
#define RING 0x1000
#define HDRS 0x10000   /* 16-byte headers, one per descriptor slot */
#define STATUSES 0x20000
#define BUFS 0x100000  /* data buffers: 64 KiB per slot */
#define IMG_SECTORS 16384 /* 8 MiB */

static struct fake_ram ram;
static char img[64];
static struct evl *evl;
static pthread_t loop;
static int loop_ret;
static struct vmmio *t;
static struct virtio_dev *dev;
static int irq;
static struct vq_builder b;
static uint64_t offered;

static void *loop_main(void *arg)
{
	(void)arg;
	loop_ret = evl_run(evl);
	return NULL;
}

static uint8_t pattern_byte(uint64_t off)
{
	return (uint8_t)(off * 31 + (off >> 9) * 7 + 1);
}

static void make_image(uint64_t size)
{
	int fd;
	uint8_t *buf = malloc(size);

	strcpy(img, "/tmp/minivm-blk-XXXXXX");
	fd = mkstemp(img);
	ck_assert_int_ge(fd, 0);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern_byte(i);
	ck_assert_int_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	free(buf);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	vmmio_read(t, off, &v, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	vmmio_write(t, off, &v, 4);
}

/* Creates the device on img and brings it up as Linux would, accepting
 * every offered feature except those in `refuse`. */
static void start_dev(bool read_only, uint64_t refuse)
{
	char err[256] = "";

	evl = evl_create(256, err, sizeof(err));
	ck_assert_msg(evl != NULL, "%s", err);
	dev = virtio_blk_create(img, read_only, "serial-xyz", evl, err, sizeof(err));
	ck_assert_msg(dev != NULL, "%s", err);
	irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t = vmmio_create(dev, &ram.gm, irq);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(pthread_create(&loop, NULL, loop_main, NULL), 0);

	ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(offered & ~refuse));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)((offered & ~refuse) >> 32));
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK);

	vqb_init(&b, &ram, QSIZE, RING);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), ACK | DRV | FOK | DOK);
}

static void stop_dev(void)
{
	evl_stop(evl);
	pthread_join(loop, NULL);
	ck_assert_int_eq(loop_ret, 0);
	vmmio_destroy(t);
	evl_destroy(evl);
	close(irq);
	t = NULL;
}

static void setup(void)
{
	fake_ram_init(&ram, RAM_SIZE);
	make_image(IMG_SECTORS * 512ULL);
}

static void teardown(void)
{
	if (t)
		stop_dev();
	unlink(img);
	fake_ram_free(&ram);
}

/* ---- a tiny driver ---- */

static uint64_t buf_gpa(uint16_t slot)
{
	return BUFS + 0x10000ULL * slot;
}

static uint64_t status_gpa(uint16_t slot)
{
	return STATUSES + slot;
}

/* Builds request `slot` (header, data, status) in descriptors slot*3.. and
 * makes it available. Data: `len` bytes at buf_gpa(slot) + misalign. */
static uint16_t queue_req(uint16_t slot, uint32_t type, uint64_t sector, uint32_t len, uint32_t misalign)
{
	uint16_t d = (uint16_t)(slot * 3);
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

	ck_assert_uint_lt(d + 2, QSIZE);
	memcpy(fake_ram_at(&ram, HDRS + 16ULL * slot, 16), &h, 16);
	*(uint8_t *)fake_ram_at(&ram, status_gpa(slot), 1) = 0xee;
	vqb_desc(&b, d, HDRS + 16ULL * slot, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
	if (len) {
		vqb_desc(&b, (uint16_t)(d + 1), buf_gpa(slot) + misalign, len,
			 VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(d + 2));
		vqb_desc(&b, (uint16_t)(d + 2), status_gpa(slot), 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		vqb_desc(&b, (uint16_t)(d + 1), status_gpa(slot), 1, VIRTQ_DESC_F_WRITE, 0);
	}
	vqb_publish(&b, d);
	return d;
}

static uint16_t used_idx_now(void)
{
	return __atomic_load_n((uint16_t *)fake_ram_at(&ram, b.used + 2, 2), __ATOMIC_ACQUIRE);
}

static bool wait_used(uint16_t n)
{
	for (int i = 0; i < 5000; i++) {
		if (used_idx_now() == n)
			return true;
		usleep(1000);
	}
	return false;
}

static uint8_t status_of(uint16_t slot)
{
	return __atomic_load_n((uint8_t *)fake_ram_at(&ram, status_gpa(slot), 1), __ATOMIC_ACQUIRE);
}

/* One request, synchronously: publish, notify (vCPU-style MMIO write), wait. */
static struct virtq_used_elem run_one(uint16_t slot, uint32_t type, uint64_t sector, uint32_t len)
{
	uint16_t before = used_idx_now(), head = queue_req(slot, type, sector, len, 0);
	struct virtq_used_elem e;

	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_msg(wait_used((uint16_t)(before + 1)), "request never completed");
	e = vqb_used(&b, before);
	ck_assert_uint_eq(e.id, head);
	return e;
}

static void check_file(uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	int fd = open(img, O_RDONLY);

	ck_assert_int_eq(pread(fd, got, len, (off_t)off), (ssize_t)len);
	ck_assert_int_eq(memcmp(got, want, len), 0);
	close(fd);
	free(got);
}

/* ---- tests ---- */

START_TEST(test_features_and_config)
{
	struct statfs sfs;
	uint64_t cap;
	uint32_t v;

	start_dev(false, 0);
	ck_assert(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(offered & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	ck_assert(!(offered & VIRTIO_BIT(VIRTIO_BLK_F_RO)));
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)); /* ext4 and tmpfs punch holes */
	vmmio_read(t, 0x100, &cap, 8);
	ck_assert_uint_eq(cap, IMG_SECTORS);
	ck_assert_uint_eq(virtio_blk_capacity(dev), IMG_SECTORS);
	if (statfs(img, &sfs) == 0 && sfs.f_type == 0xEF53) /* ext4 (this host's /tmp) */
		ck_assert(virtio_blk_direct_io(dev));
	vmmio_read(t, 0x100 + 12, &v, 4);
	ck_assert_uint_eq(v, VIRTIO_BLK_SEG_MAX);
	vmmio_read(t, 0x100 + 20, &v, 4);
	ck_assert_uint_eq(v, 512);
	v = 0xffffffff;
	vmmio_read(t, 0x100 + VIRTIO_BLK_CONFIG_SIZE, &v, 4); /* past the config */
	ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_read_write_flush_get_id)
{
	struct virtq_used_elem e;
	uint8_t *buf;

	start_dev(false, 0);
	/* Read 8 KiB at sector 10. */
	e = run_one(0, VIRTIO_BLK_T_IN, 10, 8192);
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(e.len, 8193);
	buf = fake_ram_at(&ram, buf_gpa(0), 8192);
	for (int i = 0; i < 8192; i++)
		ck_assert_uint_eq(buf[i], pattern_byte(10 * 512 + (uint64_t)i));

	/* Write 4 KiB at sector 100, then flush, then check the file. */
	buf = fake_ram_at(&ram, buf_gpa(1), 4096);
	for (int i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	e = run_one(1, VIRTIO_BLK_T_OUT, 100, 4096);
	ck_assert_uint_eq(status_of(1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(e.len, 1);
	run_one(2, VIRTIO_BLK_T_FLUSH, 0, 0);
	ck_assert_uint_eq(status_of(2), VIRTIO_BLK_S_OK);
	check_file(100 * 512, buf, 4096);

	e = run_one(3, VIRTIO_BLK_T_GET_ID, 0, 20);
	ck_assert_uint_eq(status_of(3), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(e.len, 21);
	ck_assert_int_eq(memcmp(fake_ram_at(&ram, buf_gpa(3), 20), "serial-xyz\0\0\0\0\0\0\0\0\0\0", 20), 0);

	/* The used-buffer interrupt fired. */
	uint64_t n = 0;
	ck_assert_int_eq(read(irq, &n, 8), 8);
	ck_assert_uint_ge(n, 1);
}
END_TEST

START_TEST(test_last_sector_and_past_end)
{
	uint8_t *buf;
	uint8_t before[512];

	start_dev(false, 0);
	run_one(0, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512);
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_OK);
	buf = fake_ram_at(&ram, buf_gpa(0), 512);
	ck_assert_uint_eq(buf[511], pattern_byte(IMG_SECTORS * 512ULL - 1));

	run_one(1, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 1024);
	ck_assert_uint_eq(status_of(1), VIRTIO_BLK_S_IOERR);
	run_one(2, VIRTIO_BLK_T_IN, IMG_SECTORS, 512);
	ck_assert_uint_eq(status_of(2), VIRTIO_BLK_S_IOERR);

	for (int i = 0; i < 512; i++)
		before[i] = pattern_byte(IMG_SECTORS * 512ULL - 512 + (uint64_t)i);
	memset(fake_ram_at(&ram, buf_gpa(3), 1024), 0x77, 1024);
	run_one(3, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 1024);
	ck_assert_uint_eq(status_of(3), VIRTIO_BLK_S_IOERR);
	check_file(IMG_SECTORS * 512ULL - 512, before, 512); /* untouched */
	/* Misaligned length: IOERR, and the device goes on. */
	run_one(4, VIRTIO_BLK_T_IN, 0, 100);
	ck_assert_uint_eq(status_of(4), VIRTIO_BLK_S_IOERR);
	run_one(5, 0x1234, 0, 512);
	ck_assert_uint_eq(status_of(5), VIRTIO_BLK_S_UNSUPP);
	run_one(6, VIRTIO_BLK_T_IN, 0, 512);
	ck_assert_uint_eq(status_of(6), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(vmmio_status(t), ACK | DRV | FOK | DOK);
}
END_TEST

/* Metrics: completed reads, writes, flushes with their bytes; failures
 * counted as errors only; GET_ID in none of them. */
START_TEST(test_counters)
{
	struct minivm_device_metrics m;

	start_dev(false, 0);
	run_one(0, VIRTIO_BLK_T_IN, 10, 8192);
	run_one(1, VIRTIO_BLK_T_IN, 0, 512);
	run_one(2, VIRTIO_BLK_T_OUT, 100, 4096);
	run_one(3, VIRTIO_BLK_T_FLUSH, 0, 0);
	run_one(4, VIRTIO_BLK_T_GET_ID, 0, 20);
	run_one(5, VIRTIO_BLK_T_IN, IMG_SECTORS, 512); /* past the end */
	ck_assert_uint_eq(status_of(5), VIRTIO_BLK_S_IOERR);
	run_one(6, 0x1234, 0, 512);                    /* unsupported */
	ck_assert_uint_eq(status_of(6), VIRTIO_BLK_S_UNSUPP);
	memset(&m, 0, sizeof(m));
	virtio_stats_read(&dev->stats, &m);
	ck_assert_uint_eq(m.reads, 2);
	ck_assert_uint_eq(m.read_bytes, 8192 + 512);
	ck_assert_uint_eq(m.writes, 1);
	ck_assert_uint_eq(m.write_bytes, 4096);
	ck_assert_uint_eq(m.flushes, 1);
	ck_assert_uint_eq(m.errors, 2);
	ck_assert_uint_eq(m.throttled, 0);
	ck_assert_uint_eq(m.denied, 0);
}
END_TEST

static unsigned int nr_events;
static struct minivm_event last_event;

static void count_event(void *opaque, const struct minivm_event *ev)
{
	(void)opaque;
	nr_events++;
	last_event = *ev;
}

/* A ring the guest broke: one error and one GUEST_ERROR event naming it. */
START_TEST(test_broken_ring_event)
{
	struct minivm_device_metrics m;

	start_dev(false, 0);
	nr_events = 0;
	dev->event_fn = count_event;
	vqb_desc(&b, 0, HDRS, 16, VIRTQ_DESC_F_NEXT, 0); /* loops on itself */
	vqb_publish(&b, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_uint_ne(vmmio_status(t) & VIRTIO_STATUS_NEEDS_RESET, 0);
	ck_assert_uint_eq(nr_events, 1);
	ck_assert_uint_eq(last_event.type, MINIVM_EVENT_GUEST_ERROR);
	ck_assert_ptr_nonnull(strstr(last_event.message, "virtio-blk"));
	ck_assert_ptr_nonnull(strstr(last_event.message, "needs reset"));
	virtio_stats_read(&dev->stats, &m);
	ck_assert_uint_eq(m.errors, 1);
}
END_TEST

/* The guest kernel refuses to write a read-only disk itself; a hostile
 * guest does not, and gets IOERR from the device. */
START_TEST(test_write_to_read_only_disk)
{
	uint8_t orig[4096];
	struct stat st1, st2;

	ck_assert_int_eq(stat(img, &st1), 0);
	for (int i = 0; i < 4096; i++)
		orig[i] = pattern_byte((uint64_t)i);
	start_dev(true, 0);
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	ck_assert(!(offered & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)));
	memset(fake_ram_at(&ram, buf_gpa(0), 4096), 0xab, 4096);
	run_one(0, VIRTIO_BLK_T_OUT, 0, 4096);
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_IOERR);
	run_one(1, VIRTIO_BLK_T_FLUSH, 0, 0);
	ck_assert_uint_eq(status_of(1), VIRTIO_BLK_S_OK);
	run_one(2, VIRTIO_BLK_T_IN, 0, 4096);
	ck_assert_uint_eq(status_of(2), VIRTIO_BLK_S_OK);
	stop_dev();
	check_file(0, orig, sizeof(orig));
	ck_assert_int_eq(stat(img, &st2), 0);
	ck_assert_int_eq(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
	ck_assert_int_eq(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
}
END_TEST

/* Many requests in flight at once, mixed sizes and directions: every used
 * entry names its own head with its own length, whatever the order. */
#define NMANY 40
START_TEST(test_many_in_flight)
{
	uint16_t heads[NMANY];
	uint32_t lens[NMANY];
	bool seen[NMANY] = { false };
	bool reordered = false;

	start_dev(false, 0);
	for (uint16_t s = 0; s < NMANY; s++) {
		bool write = s % 3 == 2;
		uint64_t sector = 128ULL * s; /* 64 KiB apart: no overlap */

		lens[s] = 512u << (s % 8); /* 512 B .. 64 KiB */
		if (write) {
			uint8_t *p = fake_ram_at(&ram, buf_gpa(s) + (s % 4 == 1 ? 8 : 0), lens[s]);

			for (uint32_t i = 0; i < lens[s]; i++)
				p[i] = (uint8_t)(s + i);
		}
		/* Every fourth one misaligned in guest memory: page cache path. */
		heads[s] = queue_req(s, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, lens[s],
				     s % 4 == 1 ? 8 : 0);
	}
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_msg(wait_used(NMANY), "only %u of %u completed", used_idx_now(), NMANY);
	for (uint16_t i = 0; i < NMANY; i++) {
		struct virtq_used_elem e = vqb_used(&b, i);
		uint16_t s = (uint16_t)(e.id / 3);

		ck_assert_uint_eq(e.id % 3, 0);
		ck_assert_uint_lt(s, NMANY);
		ck_assert_msg(!seen[s], "head %u returned twice", e.id);
		seen[s] = true;
		reordered |= s != i;
		ck_assert_uint_eq(e.id, heads[s]);
		ck_assert_uint_eq(e.len, s % 3 == 2 ? 1 : lens[s] + 1);
		ck_assert_uint_eq(status_of(s), VIRTIO_BLK_S_OK);
	}
	for (uint16_t s = 0; s < NMANY; s++) {
		uint8_t *p = fake_ram_at(&ram, buf_gpa(s) + (s % 4 == 1 ? 8 : 0), lens[s]);

		if (s % 3 == 2) {
			check_file(128ULL * s * 512, p, lens[s]);
			continue;
		}
		for (uint32_t i = 0; i < lens[s]; i++)
			ck_assert_uint_eq(p[i], pattern_byte(128ULL * s * 512 + i));
	}
	fprintf(stderr, "test_many_in_flight: completion order %s submission order\n",
		reordered ? "differed from" : "matched");
}
END_TEST

START_TEST(test_second_open_refused)
{
	char err[256] = "";
	struct virtio_dev *d2;
	struct evl *e2 = evl_create(8, err, sizeof(err));

	ck_assert_ptr_nonnull(e2);
	start_dev(false, 0);
	d2 = virtio_blk_create(img, false, NULL, e2, err, sizeof(err));
	ck_assert_ptr_null(d2);
	ck_assert_msg(strstr(err, "is in use by another VM") && strstr(err, img), "message: %s", err);
	/* Read-only users are refused too while a writer holds it. */
	d2 = virtio_blk_create(img, true, NULL, e2, err, sizeof(err));
	ck_assert_ptr_null(d2);
	ck_assert_ptr_nonnull(strstr(err, "is in use by another VM"));
	stop_dev();
	/* Once it is released, a writer gets it again. */
	d2 = virtio_blk_create(img, false, NULL, e2, err, sizeof(err));
	ck_assert_msg(d2 != NULL, "%s", err);
	d2->ops->destroy(d2);
	evl_destroy(e2);
}
END_TEST

START_TEST(test_read_only_opens_share)
{
	char err[256] = "";
	struct evl *e2 = evl_create(8, err, sizeof(err));
	struct virtio_dev *d2;

	start_dev(true, 0);
	d2 = virtio_blk_create(img, true, NULL, e2, err, sizeof(err));
	ck_assert_msg(d2 != NULL, "%s", err);
	ck_assert_ptr_null(virtio_blk_create(img, false, NULL, e2, err, sizeof(err)));
	d2->ops->destroy(d2);
	evl_destroy(e2);
}
END_TEST

START_TEST(test_open_errors)
{
	char err[256] = "";
	struct evl *e2 = evl_create(8, err, sizeof(err));
	int fd;

	ck_assert_ptr_null(virtio_blk_create("/nonexistent/disk.img", false, NULL, e2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "cannot open disk /nonexistent/disk.img"));
	ck_assert_ptr_null(virtio_blk_create("/tmp", true, NULL, e2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	/* 1000 bytes: one sector, the tail ignored. 100 bytes: refused. */
	fd = open(img, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(ftruncate(fd, 1000), 0);
	close(fd);
	struct virtio_dev *d = virtio_blk_create(img, false, NULL, e2, err, sizeof(err));
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(virtio_blk_capacity(d), 1);
	d->ops->destroy(d);
	fd = open(img, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	close(fd);
	ck_assert_ptr_null(virtio_blk_create(img, false, NULL, e2, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "smaller than one"));
	evl_destroy(e2);
}
END_TEST

START_TEST(test_discard_and_write_zeroes)
{
	struct virtio_blk_discard_write_zeroes dz = { .sector = 16, .num_sectors = 16 };
	uint8_t zeroes[8192] = { 0 };
	uint16_t d;

	start_dev(false, 0);
	ck_assert(offered & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	for (int k = 0; k < 2; k++) {
		uint32_t type = k ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
		struct virtio_blk_outhdr h = { .type = type };

		dz.sector = 16 + 64ULL * (uint64_t)k;
		memcpy(fake_ram_at(&ram, HDRS, 16), &h, 16);
		memcpy(fake_ram_at(&ram, buf_gpa(0), 16), &dz, 16);
		d = (uint16_t)(3 * k);
		vqb_desc(&b, d, HDRS, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
		vqb_desc(&b, (uint16_t)(d + 1), buf_gpa(0), 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 2));
		vqb_desc(&b, (uint16_t)(d + 2), status_gpa(0), 1, VIRTQ_DESC_F_WRITE, 0);
		vqb_publish(&b, d);
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		ck_assert(wait_used((uint16_t)(k + 1)));
		ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_OK);
		check_file(dz.sector * 512, zeroes, sizeof(zeroes));
	}
	/* Neighbours untouched. */
	uint8_t want[512];
	for (int i = 0; i < 512; i++)
		want[i] = pattern_byte(32 * 512 + (uint64_t)i);
	check_file(32 * 512, want, 512);
}
END_TEST

START_TEST(test_discard_not_negotiated)
{
	start_dev(false, VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_DISCARD };
	struct virtio_blk_discard_write_zeroes dz = { .sector = 0, .num_sectors = 8 };

	memcpy(fake_ram_at(&ram, HDRS, 16), &h, 16);
	memcpy(fake_ram_at(&ram, buf_gpa(0), 16), &dz, 16);
	vqb_desc(&b, 0, HDRS, 16, VIRTQ_DESC_F_NEXT, 1);
	vqb_desc(&b, 1, buf_gpa(0), 16, VIRTQ_DESC_F_NEXT, 2);
	vqb_desc(&b, 2, status_gpa(0), 1, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&b, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert(wait_used(1));
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

/* A broken ring puts the device in NEEDS_RESET, with a config interrupt;
 * a reset brings it back. */
START_TEST(test_broken_ring_needs_reset)
{
	uint64_t n = 0;
	uint32_t isr;

	start_dev(false, 0);
	vqb_desc(&b, 0, HDRS, 16, VIRTQ_DESC_F_NEXT, 0); /* loops on itself */
	vqb_publish(&b, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert_uint_ne(vmmio_status(t) & VIRTIO_STATUS_NEEDS_RESET, 0);
	isr = rd(VIRTIO_MMIO_INTERRUPT_STATUS);
	ck_assert_uint_ne(isr & VIRTIO_MMIO_INT_CONFIG, 0);
	ck_assert_int_eq(read(irq, &n, 8), 8);
	/* Further notifications are ignored; nothing is used. */
	vmmio_queue_notify(t, 0);
	ck_assert_uint_eq(used_idx_now(), 0);

	wr(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	vqb_init(&b, &ram, QSIZE, RING);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	run_one(0, VIRTIO_BLK_T_IN, 0, 512);
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_OK);
}
END_TEST

/* No writable status byte: the chain comes back with length 0. */
START_TEST(test_request_without_status)
{
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN };

	start_dev(false, 0);
	memcpy(fake_ram_at(&ram, HDRS, 16), &h, 16);
	vqb_desc(&b, 0, HDRS, 16, 0, 0);
	vqb_publish(&b, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	ck_assert(wait_used(1));
	ck_assert_uint_eq(vqb_used(&b, 0).id, 0);
	ck_assert_uint_eq(vqb_used(&b, 0).len, 0);
	run_one(1, VIRTIO_BLK_T_IN, 0, 512);
	ck_assert_uint_eq(status_of(1), VIRTIO_BLK_S_OK);
}
END_TEST

/* A reset while requests are in flight: their completions are dropped, the
 * device comes back, and nothing is freed under the I/O (ASan watches). */
START_TEST(test_reset_with_requests_in_flight)
{
	start_dev(false, 0);
	for (uint16_t s = 0; s < 40; s++)
		queue_req(s, s % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 64ULL * s, 65536, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wr(VIRTIO_MMIO_STATUS, 0); /* at once: most are still in flight */
	ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
	usleep(200000); /* stale completions arrive and are dropped */
	wr(VIRTIO_MMIO_STATUS, ACK);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK);
	vqb_init(&b, &ram, QSIZE, RING + 0x4000); /* fresh rings elsewhere */
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b.desc);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b.avail);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b.used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, ACK | DRV | FOK | DOK);
	ck_assert_uint_eq(used_idx_now(), 0); /* no stale entry landed in the new ring */
	run_one(0, VIRTIO_BLK_T_IN, 7, 512);
	ck_assert_uint_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(*(uint8_t *)fake_ram_at(&ram, buf_gpa(0), 1), pattern_byte(7 * 512));
}
END_TEST

/* Stopping the loop with requests in flight: evl_run drains them, then the
 * device can be destroyed without leaks. */
START_TEST(test_stop_with_requests_in_flight)
{
	start_dev(false, 0);
	for (uint16_t s = 0; s < 40; s++)
		queue_req(s, VIRTIO_BLK_T_IN, 64ULL * s, 65536, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	stop_dev();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk_dev");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_features_and_config);
	tcase_add_test(tc, test_read_write_flush_get_id);
	tcase_add_test(tc, test_last_sector_and_past_end);
	tcase_add_test(tc, test_write_to_read_only_disk);
	tcase_add_test(tc, test_many_in_flight);
	tcase_add_test(tc, test_second_open_refused);
	tcase_add_test(tc, test_read_only_opens_share);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_discard_and_write_zeroes);
	tcase_add_test(tc, test_discard_not_negotiated);
	tcase_add_test(tc, test_broken_ring_needs_reset);
	tcase_add_test(tc, test_request_without_status);
	tcase_add_test(tc, test_reset_with_requests_in_flight);
	tcase_add_test(tc, test_stop_with_requests_in_flight);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_broken_ring_event);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
