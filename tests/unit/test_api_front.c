/* Unit tests for vmm/api_front.c without KVM: the socket's lifecycle, a start that fails (the state stays configuring), calls before start. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/api_front.h"

static char t_dir[64], t_sock[100];

static void setup(void)
{
	snprintf(t_dir, sizeof(t_dir), "/tmp/api-front-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	snprintf(t_sock, sizeof(t_sock), "%s/api.sock", t_dir);
	setenv("TMPDIR", t_dir, 1);
	unsetenv("XDG_RUNTIME_DIR");
}

static void teardown(void)
{
	ck_assert_int_eq(rmdir(t_dir), 0); /* nothing left: socket, run dirs */
}

/* One request on a new connection; the whole answer (Connection: close). */
static char *request(const char *method, const char *target, const char *body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char buf[65536];
	char req[4096];
	size_t len = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t_sock);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     method, target, body ? strlen(body) : 0, body ? body : "");
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

START_TEST(test_lifecycle_and_failed_start)
{
	struct minivm_vm_config base;
	struct api_front *f;
	char err[256], body[512];
	struct stat st;
	char *a;

	minivm_vm_config_init(&base);
	ck_assert_int_eq(api_front_create(t_sock, &base, &f, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(t_sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(api_front_state(f), API_CONFIGURING);

	a = request("POST", "/exec", "{\"argv\": [\"true\"]}");
	ck_assert_ptr_nonnull(strstr(a, " 409 "));
	snprintf(body, sizeof(body), "{\"kernel\": \"%s/nonexistent\"}", t_dir);
	a = request("PUT", "/boot", body);
	ck_assert_ptr_nonnull(strstr(a, " 204 "));
	a = request("POST", "/start", "{}");
	ck_assert_msg(strstr(a, " 400 ") && strstr(a, "cannot open kernel"), "%s", a);
	ck_assert_int_eq(api_front_state(f), API_CONFIGURING);
	a = request("GET", "/status", NULL);
	ck_assert_ptr_nonnull(strstr(a, "\"configuring\""));
	a = request("GET", "/metrics", NULL);
	ck_assert_ptr_nonnull(strstr(a, "\"agent_commands\":0"));
	ck_assert_msg(strstr(a, "\"exits\":{},\"devices\":[],\"exits_total\":0") &&
		      strstr(a, "\"commands_started\":0,\"commands_exited\":0,\"commands_failed\":0"),
		      "%s", a);
	api_front_stop_vm(f); /* no VM: nothing */
	api_front_destroy(f);
	ck_assert_int_ne(stat(t_sock, &st), 0);
}
END_TEST

/* PUT /machine's snapshot_dir reaches the front's config at start: with a
 * NIC the front refuses it (400, the state stays configuring, no directory
 * made); POST /snapshot before start is the router's 409. */
START_TEST(test_snapshot_dir_to_front)
{
	struct minivm_vm_config base;
	struct api_front *f;
	char err[256], body[512], snap[128];
	struct stat st;
	char *a;

	minivm_vm_config_init(&base);
	ck_assert_int_eq(api_front_create(t_sock, &base, &f, err, sizeof(err)), 0);
	snprintf(snap, sizeof(snap), "%s/snap", t_dir);
	snprintf(body, sizeof(body), "{\"snapshot_dir\": \"%s\"}", snap);
	a = request("PUT", "/machine", body);
	ck_assert_msg(strstr(a, " 204 "), "%s", a);
	a = request("GET", "/config", NULL);
	ck_assert_msg(strstr(a, "\"snapshot_dir\":\"") && strstr(a, "/snap\"}"), "%s", a);
	snprintf(body, sizeof(body), "{\"dir\": \"%s\"}", snap);
	a = request("POST", "/snapshot", body);
	ck_assert_msg(strstr(a, " 409 ") && strstr(a, "in state configuring"), "%s", a);
	snprintf(body, sizeof(body), "{\"kernel\": \"%s/nonexistent\"}", t_dir);
	a = request("PUT", "/boot", body);
	ck_assert_ptr_nonnull(strstr(a, " 204 "));
	a = request("PUT", "/net", "{\"tap\": \"tap0\", \"ip\": \"10.0.0.2/24\", \"gw\": \"10.0.0.1\"}");
	ck_assert_msg(strstr(a, " 204 "), "%s", a);
	a = request("POST", "/start", "{}");
	ck_assert_msg(strstr(a, " 400 ") && strstr(a, "snapshots are of VMs without a NIC"), "%s", a);
	ck_assert_int_eq(api_front_state(f), API_CONFIGURING);
	ck_assert_int_ne(stat(snap, &st), 0);
	api_front_destroy(f);
}
END_TEST

/* PUT /restore reaches the front as restore_dir (no kernel): a missing
 * snapshot and a corrupt one are 400 at start with the front's reason,
 * the state stays configuring and nothing is left in TMPDIR. */
START_TEST(test_restore_to_front)
{
	struct minivm_vm_config base;
	struct api_front *f;
	char err[256], body[512], snap[128], path[160];
	FILE *fp;
	char *a;

	minivm_vm_config_init(&base);
	ck_assert_int_eq(api_front_create(t_sock, &base, &f, err, sizeof(err)), 0);
	snprintf(snap, sizeof(snap), "%s/snap", t_dir);
	snprintf(body, sizeof(body), "{\"dir\": \"%s\"}", snap);
	a = request("PUT", "/restore", body);
	ck_assert_msg(strstr(a, " 204 "), "%s", a);
	a = request("POST", "/start", "{}");
	ck_assert_msg(strstr(a, " 400 ") && strstr(a, "restore: cannot open") &&
		      strstr(a, "/snap/state"), "%s", a);
	ck_assert_int_eq(api_front_state(f), API_CONFIGURING);
	ck_assert_int_eq(mkdir(snap, 0700), 0);
	snprintf(path, sizeof(path), "%s/state", snap);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("not a snapshot state file, only some text long enough to be read", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/memory", snap);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	a = request("POST", "/start", "{}");
	ck_assert_msg(strstr(a, " 400 ") && strstr(a, "not a minivm snapshot state file"), "%s", a);
	ck_assert_int_eq(api_front_state(f), API_CONFIGURING);
	api_front_destroy(f);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/state", snap);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(snap), 0);
}
END_TEST

START_TEST(test_bad_path)
{
	struct minivm_vm_config base;
	struct api_front *f;
	char err[256], path[300];

	minivm_vm_config_init(&base);
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(api_front_create(path, &base, &f, err, sizeof(err)), -ENAMETOOLONG);
	ck_assert_ptr_null(f);
	snprintf(path, sizeof(path), "%s/no/such/dir/s", t_dir);
	ck_assert_int_lt(api_front_create(path, &base, &f, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "--api-sock"));
	api_front_destroy(NULL);
}
END_TEST

/* The VM's counters as GET /metrics has them; a hostile exit name dropped. */
START_TEST(test_metrics_from_vm)
{
	struct minivm_metrics s;
	struct api_metrics m;

	memset(&s, 0, sizeof(s));
	memset(&m, 0, sizeof(m));
	snprintf(s.exits[0].name, sizeof(s.exits[0].name), "io");
	s.exits[0].count = 87;
	snprintf(s.exits[1].name, sizeof(s.exits[1].name), "a\"b");
	s.exits[1].count = 1;
	snprintf(s.exits[2].name, sizeof(s.exits[2].name), "mmio");
	s.exits[2].count = 490;
	s.nr_exits = 3;
	snprintf(s.devices[0].name, sizeof(s.devices[0].name), "net0");
	snprintf(s.devices[0].kind, sizeof(s.devices[0].kind), "net");
	s.devices[0].writes = 4;
	s.devices[0].write_bytes = 300;
	s.devices[0].denied = 2;
	s.devices[0].throttled = 1;
	s.nr_devices = 1;
	s.exits_total = 577;
	s.policy_denials = 2;
	s.ratelimit_throttles = 1;
	s.guest_errors = 1;
	s.events_suppressed = 3;
	s.commands_started = 5;
	s.commands_exited = 4;
	s.commands_failed = 1;
	m.agent_commands = 9;
	api_front_metrics_from(&m, &s);
	ck_assert_uint_eq(m.nr_exits, 2);
	ck_assert_str_eq(m.exits[0].name, "io");
	ck_assert_str_eq(m.exits[1].name, "mmio");
	ck_assert_uint_eq(m.exits[1].count, 490);
	ck_assert_uint_eq(m.nr_devices, 1);
	ck_assert_str_eq(m.devices[0].kind, "net");
	ck_assert_uint_eq(m.devices[0].denied, 2);
	ck_assert_uint_eq(m.devices[0].write_bytes, 300);
	ck_assert_uint_eq(m.exits_total, 577);
	ck_assert_uint_eq(m.events_suppressed, 3);
	ck_assert_uint_eq(m.commands_started, 5);
	ck_assert_uint_eq(m.commands_failed, 1);
	ck_assert_uint_eq(m.agent_commands, 9); /* the socket's own */
}
END_TEST

START_TEST(test_events_from_vm)
{
	struct minivm_event ev;
	struct api_event a;

	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_POLICY_DENIED;
	ev.dst_ip = 0x0a090807;
	ev.dst_port = 443;
	ev.ip_proto = 6;
	snprintf(ev.reason, sizeof(ev.reason), "dest");
	snprintf(ev.message, sizeof(ev.message), "virtio-net");
	api_front_event_from(&a, &ev);
	ck_assert_int_eq(a.type, API_EV_POLICY_DENIED);
	ck_assert_str_eq(a.dst, "10.9.8.7");
	ck_assert_uint_eq(a.port, 443);
	ck_assert_str_eq(a.proto, "tcp");
	ck_assert_str_eq(a.reason, "dest");
	ev.dst_ip = 0;
	ev.ip_proto = 0;
	snprintf(ev.reason, sizeof(ev.reason), "arp");
	api_front_event_from(&a, &ev);
	ck_assert_str_eq(a.dst, "");
	ck_assert_str_eq(a.proto, "other");
	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_GUEST_ERROR;
	snprintf(ev.message, sizeof(ev.message), "the guest reset without an exit status");
	api_front_event_from(&a, &ev);
	ck_assert_int_eq(a.type, API_EV_GUEST_ERROR);
	ck_assert_str_eq(a.message, "the guest reset without an exit status");
}
END_TEST

static Suite *api_front_suite(void)
{
	Suite *s = suite_create("api_front");
	TCase *tc = tcase_create("api_front");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lifecycle_and_failed_start);
	tcase_add_test(tc, test_snapshot_dir_to_front);
	tcase_add_test(tc, test_restore_to_front);
	tcase_add_test(tc, test_bad_path);
	tcase_add_test(tc, test_metrics_from_vm);
	tcase_add_test(tc, test_events_from_vm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(api_front_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
