/* Unit tests for the VMM's metrics and events without KVM: the event queue's rate limit and bounds (vmm/evq.c), the exit kinds (vmm/exit.c), and the wire between the VMM and the front (vmm/vmm_proc.c's metrics and event messages, a hostile VMM included). */
#include <check.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/evq.h"
#include "vmm/exit.h"
#include "vmm/vmm_proc.h"

#define SEC 1000000000ULL

static struct minivm_event denial(uint16_t port)
{
	struct minivm_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_POLICY_DENIED;
	ev.dst_ip = 0x01020304;
	ev.dst_port = port;
	ev.ip_proto = 6;
	snprintf(ev.reason, sizeof(ev.reason), "dest");
	return ev;
}

/* ---- the event queue ---- */

START_TEST(evq_rate_limit_per_second)
{
	struct minivm_event ev = denial(1), out;
	uint64_t suppressed, errors;
	struct evq q;

	ck_assert_int_eq(evq_init(&q, 3), 0);
	for (uint16_t i = 0; i < 5; i++) {
		ev.dst_port = i;
		ck_assert_int_eq(evq_post(&q, &ev, 10 * SEC + i), i < 3);
	}
	/* A second later the window opens again. */
	ev.dst_port = 99;
	ck_assert(evq_post(&q, &ev, 11 * SEC));
	evq_counts(&q, &suppressed, &errors);
	ck_assert_uint_eq(suppressed, 2);
	ck_assert_uint_eq(errors, 0);
	/* Oldest first, stamped with the time of the post. */
	for (uint16_t i = 0; i < 3; i++) {
		ck_assert(evq_pop(&q, &out));
		ck_assert_uint_eq(out.dst_port, i);
		ck_assert_uint_eq(out.time_ns, 10 * SEC + i);
	}
	ck_assert(evq_pop(&q, &out));
	ck_assert_uint_eq(out.dst_port, 99);
	ck_assert(!evq_pop(&q, &out));
	evq_destroy(&q);
}
END_TEST

START_TEST(evq_full_queue_and_guest_errors)
{
	struct minivm_event ev = denial(7), out;
	uint64_t suppressed, errors;
	struct evq q;
	unsigned int n = 0;

	ck_assert_int_eq(evq_init(&q, 1000), 0);
	ev.type = MINIVM_EVENT_GUEST_ERROR;
	for (unsigned int i = 0; i < MINIVM_EVENT_QUEUE + 6; i++)
		evq_post(&q, &ev, SEC);
	evq_counts(&q, &suppressed, &errors);
	ck_assert_uint_eq(suppressed, 6);
	ck_assert_uint_eq(errors, MINIVM_EVENT_QUEUE + 6); /* counted, delivered or not */
	while (evq_pop(&q, &out))
		n++;
	ck_assert_uint_eq(n, MINIVM_EVENT_QUEUE);
	/* Room again (the ring wrapped). */
	ck_assert(evq_post(&q, &ev, SEC));
	ck_assert(evq_pop(&q, &out));
	evq_destroy(&q);
}
END_TEST

START_TEST(evq_default_rate)
{
	struct minivm_event ev = denial(1);
	unsigned int queued = 0;
	struct evq q;

	ck_assert_int_eq(evq_init(&q, 0), 0);
	for (unsigned int i = 0; i < 2 * MINIVM_EVENTS_PER_S; i++)
		queued += evq_post(&q, &ev, 5 * SEC);
	ck_assert_uint_eq(queued, MINIVM_EVENTS_PER_S);
	evq_destroy(&q);
}
END_TEST

/* ---- exit kinds ---- */

START_TEST(exit_kinds_named)
{
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_IO), EXIT_K_IO);
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_MMIO), EXIT_K_MMIO);
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_HLT), EXIT_K_HLT);
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_SHUTDOWN), EXIT_K_SHUTDOWN);
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_INTERNAL_ERROR), EXIT_K_INTERNAL_ERROR);
	ck_assert_int_eq(exit_kind_of(KVM_EXIT_DEBUG), EXIT_K_OTHER);
	ck_assert_int_eq(exit_kind_of(0xffffffffu), EXIT_K_OTHER);
	/* Every kind: a distinct metric name, [a-z_]+, that fits. */
	for (int k = 0; k < EXIT_K_COUNT; k++) {
		const char *n = exit_kind_name((enum exit_kind)k);

		ck_assert_uint_lt(strlen(n), MINIVM_METRICS_NAME_MAX);
		ck_assert_uint_eq(strspn(n, "abcdefghijklmnopqrstuvwxyz_"), strlen(n));
		for (int j = 0; j < k; j++)
			ck_assert_str_ne(n, exit_kind_name((enum exit_kind)j));
	}
	ck_assert_str_eq(exit_kind_name(EXIT_K_COUNT), "other");
	ck_assert_uint_le(EXIT_K_COUNT, MINIVM_METRICS_MAX_EXITS);
}
END_TEST

/* ---- the wire between the VMM and the front ---- */

static struct vmm_proc *p;
static int vmm_fd = -1, keeper_fd = -1;
static struct minivm_event got[4];
static unsigned int nr_got;

static void take(void *opaque, const struct minivm_event *ev)
{
	ck_assert_ptr_eq(opaque, &nr_got);
	if (nr_got < 4)
		got[nr_got] = *ev;
	nr_got++;
}

static void wire_setup(void)
{
	p = vmm_proc_test_pair(&vmm_fd, &keeper_fd);
	ck_assert_ptr_nonnull(p);
	nr_got = 0;
}

static void wire_teardown(void)
{
	vmm_proc_destroy(p);
	close(vmm_fd);
	close(keeper_fd);
}

static struct minivm_metrics sample(void)
{
	struct minivm_metrics m;

	memset(&m, 0, sizeof(m));
	snprintf(m.exits[0].name, sizeof(m.exits[0].name), "io");
	m.exits[0].count = 87;
	snprintf(m.exits[1].name, sizeof(m.exits[1].name), "mmio");
	m.exits[1].count = 490;
	m.nr_exits = 2;
	m.exits_total = 577;
	snprintf(m.devices[0].name, sizeof(m.devices[0].name), "vda");
	snprintf(m.devices[0].kind, sizeof(m.devices[0].kind), "blk");
	m.devices[0].reads = 70;
	m.devices[0].read_bytes = 6194176;
	m.nr_devices = 1;
	m.policy_denials = 3;
	m.commands_started = 42; /* not the VMM's to say */
	return m;
}

START_TEST(wire_metrics_round_trip)
{
	struct minivm_metrics m = sample(), out;
	char b = 0;

	/* The answer is already waiting: the front asks, then takes it in. */
	ck_assert_int_eq(vmm_proc_send_metrics(vmm_fd, &m), 0);
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 1000), 0);
	ck_assert_int_eq(recv(vmm_fd, &b, 1, MSG_DONTWAIT), 1);
	ck_assert_int_eq(b, 'M');
	ck_assert_uint_eq(out.nr_exits, 2);
	ck_assert_str_eq(out.exits[1].name, "mmio");
	ck_assert_uint_eq(out.exits[1].count, 490);
	ck_assert_uint_eq(out.exits_total, 577);
	ck_assert_uint_eq(out.nr_devices, 1);
	ck_assert_str_eq(out.devices[0].name, "vda");
	ck_assert_str_eq(out.devices[0].kind, "blk");
	ck_assert_uint_eq(out.devices[0].read_bytes, 6194176);
	ck_assert_uint_eq(out.policy_denials, 3);
	ck_assert_uint_eq(out.commands_started, 0);
	/* No answer: -ETIMEDOUT, with the last counts. */
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 50), -ETIMEDOUT);
	ck_assert_uint_eq(out.exits_total, 577);
	/* The VMM's final counts, then its end: they stand, without asking. */
	m.exits_total = 600;
	ck_assert_int_eq(vmm_proc_send_metrics(vmm_fd, &m), 0);
	close(vmm_fd);
	vmm_fd = -1;
	ck_assert(vmm_proc_ended(p));
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 1000), 0);
	ck_assert_uint_eq(out.exits_total, 600);
}
END_TEST

START_TEST(wire_metrics_hostile_vmm)
{
	struct minivm_metrics m = sample(), out;

	m.nr_exits = 100000;
	m.nr_devices = 0xffffffffu;
	memset(m.exits[0].name, 'x', sizeof(m.exits[0].name));
	memset(m.devices[3].kind, 'y', sizeof(m.devices[3].kind));
	ck_assert_int_eq(vmm_proc_send_metrics(vmm_fd, &m), 0);
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 1000), 0);
	ck_assert_uint_eq(out.nr_exits, MINIVM_METRICS_MAX_EXITS);
	ck_assert_uint_eq(out.nr_devices, MINIVM_METRICS_MAX_DEVICES);
	ck_assert_uint_eq(strlen(out.exits[0].name), MINIVM_METRICS_NAME_MAX - 1);
	ck_assert_uint_eq(strlen(out.devices[3].kind), MINIVM_METRICS_NAME_MAX - 1);
	/* Counters on the keeper's channel are not the keeper's to send. */
	m = sample();
	m.exits_total = 1;
	ck_assert_int_eq(vmm_proc_send_metrics(keeper_fd, &m), 0);
	ck_assert(!vmm_proc_ended(p));
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 50), -ETIMEDOUT);
	ck_assert_uint_ne(out.exits_total, 1);
}
END_TEST

START_TEST(wire_events)
{
	struct minivm_event ev = denial(443), out_err;
	struct minivm_metrics m = sample(), out;

	/* Before a listener is set: dropped and counted. */
	ck_assert_int_eq(vmm_proc_send_event(vmm_fd, &ev), 0);
	ck_assert(!vmm_proc_ended(p));
	vmm_proc_set_event_fn(p, take, &nr_got);
	ck_assert_int_eq(vmm_proc_send_event(vmm_fd, &ev), 0);
	memset(&out_err, 0, sizeof(out_err));
	out_err.type = MINIVM_EVENT_GUEST_ERROR;
	memset(out_err.message, 'z', sizeof(out_err.message)); /* unterminated */
	ck_assert_int_eq(vmm_proc_send_event(vmm_fd, &out_err), 0);
	out_err.type = 77; /* unknown: dropped */
	ck_assert_int_eq(vmm_proc_send_event(vmm_fd, &out_err), 0);
	ck_assert(!vmm_proc_ended(p));
	ck_assert_uint_eq(nr_got, 2);
	ck_assert_uint_eq(got[0].type, MINIVM_EVENT_POLICY_DENIED);
	ck_assert_uint_eq(got[0].dst_ip, 0x01020304);
	ck_assert_uint_eq(got[0].dst_port, 443);
	ck_assert_str_eq(got[0].reason, "dest");
	ck_assert_uint_eq(got[1].type, MINIVM_EVENT_GUEST_ERROR);
	ck_assert_uint_eq(strlen(got[1].message), sizeof(got[1].message) - 1);
	/* The two dropped ones show in the metrics. */
	m.events_suppressed = 5;
	ck_assert_int_eq(vmm_proc_send_metrics(vmm_fd, &m), 0);
	ck_assert_int_eq(vmm_proc_metrics(p, &out, 1000), 0);
	ck_assert_uint_eq(out.events_suppressed, 7);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *q = tcase_create("evq");
	TCase *e = tcase_create("exit_kinds");
	TCase *w = tcase_create("wire");

	tcase_add_test(q, evq_rate_limit_per_second);
	tcase_add_test(q, evq_full_queue_and_guest_errors);
	tcase_add_test(q, evq_default_rate);
	suite_add_tcase(s, q);
	tcase_add_test(e, exit_kinds_named);
	suite_add_tcase(s, e);
	tcase_add_checked_fixture(w, wire_setup, wire_teardown);
	tcase_add_test(w, wire_metrics_round_trip);
	tcase_add_test(w, wire_metrics_hostile_vmm);
	tcase_add_test(w, wire_events);
	suite_add_tcase(s, w);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
