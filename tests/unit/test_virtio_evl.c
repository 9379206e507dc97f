/* Unit tests for the io_uring event loop (vmm/evl.c): watches, tagged I/O, completion order, stop. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/evl.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static struct evl *evl;
static pthread_t loop;
static int loop_ret = -1;
static pthread_t loop_tid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void *loop_main(void *arg)
{
	(void)arg;
	loop_tid = pthread_self();
	loop_ret = evl_run(evl);
	return NULL;
}

static void setup(void)
{
	char err[256] = "";

	evl = evl_create(64, err, sizeof(err));
	ck_assert_msg(evl != NULL, "evl_create: %s", err);
	loop_ret = -1;
}

static void start(void)
{
	ck_assert_int_eq(pthread_create(&loop, NULL, loop_main, NULL), 0);
}

static void stop(void)
{
	evl_stop(evl);
	ck_assert_int_eq(pthread_join(loop, NULL), 0);
	ck_assert_int_eq(loop_ret, 0);
}

static void teardown(void)
{
	evl_destroy(evl);
	evl = NULL;
}

/* Waits up to 5 s for *counter >= n (under mu). */
static bool wait_for(const int *counter, int n)
{
	struct timespec ts;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&mu);
	while (*counter < n && ok)
		ok = pthread_cond_timedwait(&cv, &mu, &ts) == 0;
	ok = *counter >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static int temp_file(void)
{
	char path[] = "/tmp/minivm-evl-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

/* ---- fd watches ---- */

static int fired;
static bool fired_on_loop;

static void count_cb(void *opaque, int fd, uint32_t revents)
{
	uint64_t v;

	ck_assert_ptr_eq(opaque, &fired);
	ck_assert(revents & POLLIN);
	ck_assert_int_eq(read(fd, &v, sizeof(v)), 8);
	pthread_mutex_lock(&mu);
	fired++;
	fired_on_loop = pthread_equal(pthread_self(), loop_tid) && evl_on_loop_thread(evl);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

START_TEST(test_create_is_restricted)
{
	/* The host kernel (6.18) takes every restriction. */
	ck_assert(evl_restricted(evl));
	ck_assert(!evl_on_loop_thread(evl));
}
END_TEST

START_TEST(test_watch_fires_and_stops)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1;

	fired = 0;
	ck_assert_int_eq(evl_add_fd(evl, efd, count_cb, &fired), 0); /* before run */
	ck_assert_int_eq(evl_add_fd(evl, efd, count_cb, &fired), -EEXIST);
	start();
	ck_assert_int_eq(write(efd, &one, 8), 8);
	ck_assert(wait_for(&fired, 1));
	ck_assert(fired_on_loop);
	ck_assert_int_eq(write(efd, &one, 8), 8);
	ck_assert(wait_for(&fired, 2));

	ck_assert_int_eq(evl_del_fd(evl, efd), 0);
	ck_assert_int_eq(evl_del_fd(evl, efd), -ENOENT);
	usleep(50000); /* the loop has processed the removal */
	ck_assert_int_eq(write(efd, &one, 8), 8);
	usleep(50000);
	pthread_mutex_lock(&mu);
	ck_assert_int_eq(fired, 2);
	pthread_mutex_unlock(&mu);
	/* The fd can be watched again. */
	ck_assert_int_eq(evl_add_fd(evl, efd, count_cb, &fired), 0);
	ck_assert(wait_for(&fired, 3)); /* still readable from the write above */
	stop();
	close(efd);
}
END_TEST

static int self_del_calls;

static void self_del_cb(void *opaque, int fd, uint32_t revents)
{
	(void)opaque;
	(void)revents;
	pthread_mutex_lock(&mu);
	self_del_calls++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	/* Not read: the fd stays readable. Removing itself from its own
	 * callback must be safe and final. */
	ck_assert_int_eq(evl_del_fd(evl, fd), 0);
}

START_TEST(test_watch_removes_itself)
{
	int efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);

	self_del_calls = 0;
	start();
	ck_assert_int_eq(evl_add_fd(evl, efd, self_del_cb, NULL), 0);
	ck_assert(wait_for(&self_del_calls, 1));
	usleep(50000);
	ck_assert_int_eq(self_del_calls, 1);
	stop();
	close(efd);
}
END_TEST

/* ---- I/O ---- */

struct req {
	struct evl_io io;
	int res;
	int done;
	int order;
	bool on_loop;
};

static int completions;

static void req_done(struct evl_io *io, int res)
{
	struct req *r = container_of(io, struct req, io);

	pthread_mutex_lock(&mu);
	r->res = res;
	r->done++;
	r->order = completions++;
	r->on_loop = pthread_equal(pthread_self(), loop_tid);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void req_init(struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->io.done = req_done;
}

START_TEST(test_io_roundtrip)
{
	int fd = temp_file(), slot;
	char a[100], b2[300], back[400];
	struct iovec wv[2] = { { a, sizeof(a) }, { b2, sizeof(b2) } };
	struct iovec rv[1] = { { back, sizeof(back) } };
	struct req w, r, s, f;

	memset(a, 'a', sizeof(a));
	memset(b2, 'b', sizeof(b2));
	slot = evl_register_file(evl, fd);
	ck_assert_int_ge(slot, 0);
	start();

	req_init(&w);
	ck_assert_int_eq(evl_writev(evl, &w.io, slot, wv, 2, 4096), 0);
	ck_assert(wait_for(&w.done, 1));
	ck_assert_int_eq(w.res, 400);
	ck_assert(w.on_loop);
	/* The loop runs: the ring belongs to its thread now. */
	ck_assert_int_eq(evl_register_file(evl, fd), -EPERM);

	req_init(&s);
	ck_assert_int_eq(evl_fsync(evl, &s.io, slot, true), 0);
	ck_assert(wait_for(&s.done, 1));
	ck_assert_int_eq(s.res, 0);

	req_init(&r);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, rv, 1, 4096), 0);
	ck_assert(wait_for(&r.done, 1));
	ck_assert_int_eq(r.res, 400);
	ck_assert_int_eq(memcmp(back, a, 100), 0);
	ck_assert_int_eq(memcmp(back + 100, b2, 300), 0);

	req_init(&f);
	ck_assert_int_eq(evl_fallocate(evl, &f.io, slot, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				       4096, 100), 0);
	ck_assert(wait_for(&f.done, 1));
	ck_assert_int_eq(f.res, 0);
	req_init(&r);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, rv, 1, 4096), 0);
	ck_assert(wait_for(&r.done, 1));
	ck_assert_int_eq(r.res, 400);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(back[i], 0);
	ck_assert_int_eq(back[100], 'b');

	/* Reading past the end: 0 bytes, not an error. */
	req_init(&r);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, rv, 1, 1 << 20), 0);
	ck_assert(wait_for(&r.done, 1));
	ck_assert_int_eq(r.res, 0);
	stop();
	close(fd);
}
END_TEST

START_TEST(test_bad_requests_refused)
{
	int fd = temp_file(), slot = evl_register_file(evl, fd);
	char buf[8];
	struct iovec iov = { buf, sizeof(buf) };
	struct req r;

	ck_assert_int_ge(slot, 0);
	req_init(&r);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot + 1, &iov, 1, 0), -EBADF);
	ck_assert_int_eq(evl_readv(evl, &r.io, -1, &iov, 1, 0), -EBADF);
	ck_assert_int_eq(evl_readv(evl, &r.io, EVL_MAX_FILES, &iov, 1, 0), -EBADF);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, &iov, 0, 0), -EINVAL);
	evl_unregister_file(evl, slot);
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, &iov, 1, 0), -EBADF);
	slot = evl_register_file(evl, fd);
	ck_assert_int_ge(slot, 0);
	start();
	stop();
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, &iov, 1, 0), -ESHUTDOWN);
	ck_assert_int_eq(r.done, 0);
	close(fd);
}
END_TEST

/* A read on an empty pipe is submitted first and completes last: tags,
 * not order, route completions. */
START_TEST(test_completions_out_of_order)
{
	int p[2], fd = temp_file(), pslot, fslot;
	char pbuf[4], fbuf[16] = "", data[16] = "0123456789abcdef";
	struct iovec piov = { pbuf, sizeof(pbuf) }, fiov = { fbuf, sizeof(fbuf) };
	struct req pr, fr;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pwrite(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	pslot = evl_register_file(evl, p[0]);
	fslot = evl_register_file(evl, fd);
	ck_assert_int_ge(pslot, 0);
	ck_assert_int_ge(fslot, 0);
	completions = 0;
	req_init(&pr);
	req_init(&fr);
	start();
	ck_assert_int_eq(evl_readv(evl, &pr.io, pslot, &piov, 1, (uint64_t)-1), 0);
	ck_assert_int_eq(evl_readv(evl, &fr.io, fslot, &fiov, 1, 0), 0);
	ck_assert(wait_for(&fr.done, 1));
	ck_assert_int_eq(fr.res, 16);
	ck_assert_int_eq(memcmp(fbuf, data, 16), 0);
	usleep(20000);
	pthread_mutex_lock(&mu);
	ck_assert_int_eq(pr.done, 0);
	pthread_mutex_unlock(&mu);
	ck_assert_int_eq(write(p[1], "wxyz", 4), 4);
	ck_assert(wait_for(&pr.done, 1));
	ck_assert_int_eq(pr.res, 4);
	ck_assert_int_eq(memcmp(pbuf, "wxyz", 4), 0);
	ck_assert_int_eq(fr.order, 0);
	ck_assert_int_eq(pr.order, 1);
	stop();
	ck_assert_int_eq(pr.done, 1); /* exactly once */
	ck_assert_int_eq(fr.done, 1);
	close(p[0]);
	close(p[1]);
	close(fd);
}
END_TEST

START_TEST(test_stop_cancels_waiting_read)
{
	int p[2], slot;
	char buf[4];
	struct iovec iov = { buf, sizeof(buf) };
	struct req r;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	slot = evl_register_file(evl, p[0]);
	ck_assert_int_ge(slot, 0);
	req_init(&r);
	start();
	ck_assert_int_eq(evl_readv(evl, &r.io, slot, &iov, 1, (uint64_t)-1), 0);
	usleep(20000);
	stop(); /* returns: the read was cancelled, its callback ran */
	ck_assert_int_eq(r.done, 1);
	ck_assert_int_eq(r.res, -ECANCELED);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Requests made on the loop thread (from a callback) go straight to the ring. */
static int loop_fd, loop_slot;
static char loop_buf[8];
static struct iovec loop_iov = { loop_buf, sizeof(loop_buf) };
static struct req loop_req;
static int loop_submit_ret = 1;

static void submit_from_cb(void *opaque, int fd, uint32_t revents)
{
	uint64_t v;

	(void)opaque;
	(void)revents;
	ck_assert_int_eq(read(fd, &v, 8), 8);
	ck_assert(evl_on_loop_thread(evl));
	loop_submit_ret = evl_readv(evl, &loop_req.io, loop_slot, &loop_iov, 1, 0);
}

START_TEST(test_submit_from_loop_thread)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1;

	loop_fd = temp_file();
	ck_assert_int_eq(pwrite(loop_fd, "ABCDEFGH", 8, 0), 8);
	loop_slot = evl_register_file(evl, loop_fd);
	ck_assert_int_ge(loop_slot, 0);
	req_init(&loop_req);
	ck_assert_int_eq(evl_add_fd(evl, efd, submit_from_cb, NULL), 0);
	start();
	ck_assert_int_eq(write(efd, &one, 8), 8);
	ck_assert(wait_for(&loop_req.done, 1));
	ck_assert_int_eq(loop_submit_ret, 0);
	ck_assert_int_eq(loop_req.res, 8);
	ck_assert(loop_req.on_loop);
	ck_assert_int_eq(memcmp(loop_buf, "ABCDEFGH", 8), 0);
	stop();
	close(efd);
	close(loop_fd);
}
END_TEST

/* Many requests from several threads at once. */
#define NREQ 200
static struct req many[NREQ];
static char many_buf[NREQ][512];
static struct iovec many_iov[NREQ];
static int many_slot;

static void *submitter(void *arg)
{
	intptr_t t = (intptr_t)arg;

	for (int i = (int)t; i < NREQ; i += 4)
		ck_assert_int_eq(evl_readv(evl, &many[i].io, many_slot, &many_iov[i], 1, 512ULL * i), 0);
	return NULL;
}

START_TEST(test_many_concurrent_submitters)
{
	int fd = temp_file();
	pthread_t th[4];
	static char pattern[NREQ * 512];

	for (int i = 0; i < NREQ * 512; i++)
		pattern[i] = (char)(i * 7 + i / 512);
	ck_assert_int_eq(pwrite(fd, pattern, sizeof(pattern), 0), (ssize_t)sizeof(pattern));
	many_slot = evl_register_file(evl, fd);
	ck_assert_int_ge(many_slot, 0);
	completions = 0;
	for (int i = 0; i < NREQ; i++) {
		req_init(&many[i]);
		many_iov[i] = (struct iovec){ many_buf[i], 512 };
	}
	start();
	for (intptr_t t = 0; t < 4; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, submitter, (void *)t), 0);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	ck_assert(wait_for(&completions, NREQ));
	stop();
	for (int i = 0; i < NREQ; i++) {
		ck_assert_int_eq(many[i].done, 1);
		ck_assert_int_eq(many[i].res, 512);
		ck_assert_int_eq(memcmp(many_buf[i], pattern + 512 * i, 512), 0);
	}
	close(fd);
}
END_TEST

START_TEST(test_destroy_without_run)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ck_assert_int_eq(evl_add_fd(evl, efd, count_cb, &fired), 0);
	/* teardown destroys it with the watch still queued */
	close(efd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("evl");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_is_restricted);
	tcase_add_test(tc, test_watch_fires_and_stops);
	tcase_add_test(tc, test_watch_removes_itself);
	tcase_add_test(tc, test_io_roundtrip);
	tcase_add_test(tc, test_bad_requests_refused);
	tcase_add_test(tc, test_completions_out_of_order);
	tcase_add_test(tc, test_stop_cancels_waiting_read);
	tcase_add_test(tc, test_submit_from_loop_thread);
	tcase_add_test(tc, test_many_concurrent_submitters);
	tcase_add_test(tc, test_destroy_without_run);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
