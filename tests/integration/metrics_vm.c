/* A real-VM check of the VMM's metrics through the front: boots one VM (started on a thread that ends at once: the VM must outlive it), runs a command that reads the root disk, and checks exits, blk bytes and command counts (tests/integration/metrics.sh builds and runs it). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/minivm.h"

static atomic_uint nr_events;

/* minivm_event_fn: the VM's lock held, so only count and print. */
static void on_event(void *opaque, const struct minivm_event *ev)
{
	(void)opaque;
	atomic_fetch_add(&nr_events, 1);
	printf("event: type %u reason '%s' message '%s'\n", ev->type, ev->reason, ev->message);
}

static void print_metrics(const char *when, const struct minivm_metrics *m)
{
	printf("%s: exits_total %llu\n", when, (unsigned long long)m->exits_total);
	for (unsigned int i = 0; i < m->nr_exits; i++)
		printf("  exit %-15s %llu\n", m->exits[i].name, (unsigned long long)m->exits[i].count);
	for (unsigned int i = 0; i < m->nr_devices; i++) {
		const struct minivm_device_metrics *d = &m->devices[i];

		printf("  dev %-6s %-5s reads %llu (%llu B) writes %llu (%llu B) flushes %llu "
		       "throttled %llu denied %llu errors %llu\n",
		       d->name, d->kind, (unsigned long long)d->reads, (unsigned long long)d->read_bytes,
		       (unsigned long long)d->writes, (unsigned long long)d->write_bytes,
		       (unsigned long long)d->flushes, (unsigned long long)d->throttled,
		       (unsigned long long)d->denied, (unsigned long long)d->errors);
	}
	printf("  commands started %llu exited %llu failed %llu; guest_errors %llu suppressed %llu\n",
	       (unsigned long long)m->commands_started, (unsigned long long)m->commands_exited,
	       (unsigned long long)m->commands_failed, (unsigned long long)m->guest_errors,
	       (unsigned long long)m->events_suppressed);
}

/* The named device's counters, or NULL. */
static const struct minivm_device_metrics *find_dev(const struct minivm_metrics *m, const char *name)
{
	for (unsigned int i = 0; i < m->nr_devices; i++)
		if (strcmp(m->devices[i].name, name) == 0)
			return &m->devices[i];
	return NULL;
}

/* What a booted VM that ran one command must show. */
static int check(const struct minivm_metrics *m)
{
	const struct minivm_device_metrics *vda = find_dev(m, "vda");
	const struct minivm_device_metrics *vsock = find_dev(m, "vsock");
	int bad = 0;

	if (m->exits_total == 0)
		bad |= printf("FAIL: no exits counted\n");
	if (!vda || vda->reads == 0 || vda->read_bytes < 1024 * 1024)
		bad |= printf("FAIL: vda read less than 1 MiB\n");
	if (!vsock || vsock->reads == 0 || vsock->writes == 0)
		bad |= printf("FAIL: no vsock packets counted\n");
	if (m->commands_started != 1 || m->commands_exited != 1)
		bad |= printf("FAIL: commands started %llu exited %llu (want 1, 1)\n",
			      (unsigned long long)m->commands_started,
			      (unsigned long long)m->commands_exited);
	return bad ? 1 : 0;
}

/* Mode "read": one command reads 4 MiB of the root disk; the counters
 * after it and after the end. */
static int run_read(struct minivm_vm *vm)
{
	const char *cmd[] = { "sh", "-c", "dd if=/dev/vda of=/dev/null bs=64k count=64 2>/dev/null; echo read", NULL };
	struct minivm_exec_result xr;
	struct minivm_metrics m;
	struct minivm_result res;
	struct minivm_exec x;
	int rc;

	if (minivm_vm_metrics(vm, &m) == 0)
		print_metrics("ready", &m);
	minivm_exec_init(&x);
	x.argv = cmd;
	x.stdout_fd = 1;
	if (minivm_vm_exec(vm, &x, &xr) || xr.status != 0) {
		fprintf(stderr, "exec: %s (status %d)\n", minivm_vm_error(vm), xr.status);
		return 1;
	}
	if (minivm_vm_metrics(vm, &m)) {
		fprintf(stderr, "metrics: %s\n", minivm_vm_error(vm));
		return 1;
	}
	print_metrics("after the command", &m);
	rc = check(&m);
	minivm_vm_stop(vm);
	if (minivm_vm_wait(vm, &res))
		fprintf(stderr, "wait: %s\n", minivm_vm_error(vm));
	if (minivm_vm_metrics(vm, &m)) {
		printf("FAIL: no metrics after the end: %s\n", minivm_vm_error(vm));
		return 1;
	}
	print_metrics("after the end", &m);
	return rc;
}

/* Mode "crash": the guest kernel panics (minivm-crash); a guest_error
 * event must come through the front, and the final counts hold it. */
static int run_crash(struct minivm_vm *vm)
{
	const char *cmd[] = { "minivm-crash", NULL };
	struct minivm_exec_result xr;
	struct minivm_metrics m;
	struct minivm_result res;
	struct minivm_exec x;
	int rc = 0;

	minivm_exec_init(&x);
	x.argv = cmd;
	printf("exec minivm-crash: %d\n", minivm_vm_exec(vm, &x, &xr));
	if (minivm_vm_wait(vm, &res))
		fprintf(stderr, "wait: %s\n", minivm_vm_error(vm));
	printf("outcome %d\n", (int)res.outcome);
	if (minivm_vm_metrics(vm, &m)) {
		printf("FAIL: no metrics after the end: %s\n", minivm_vm_error(vm));
		return 1;
	}
	print_metrics("after the crash", &m);
	if (res.outcome != MINIVM_GUEST_CRASHED)
		rc = printf("FAIL: outcome %d, not GUEST_CRASHED\n", (int)res.outcome) > 0;
	if (m.guest_errors != 1 || atomic_load(&nr_events) != 1)
		rc = printf("FAIL: guest_errors %llu, events %u (want 1, 1)\n",
			    (unsigned long long)m.guest_errors, atomic_load(&nr_events)) > 0;
	return rc;
}

/* minivm_vm_start() on a thread that ends right after it: the VM must
 * outlive that thread (the VMM process follows the caller's process). */
static void *start_thread(void *arg)
{
	return (void *)(long)minivm_vm_start(arg);
}

static int start_on_thread(struct minivm_vm *vm)
{
	pthread_t t;
	void *r;

	if (pthread_create(&t, NULL, start_thread, vm) || pthread_join(t, &r))
		return -1;
	return (int)(long)r;
}

int main(int argc, char **argv)
{
	struct minivm_vm_config c;
	struct minivm_vm *vm = NULL;
	bool crash = argc == 4 && strcmp(argv[3], "crash") == 0;
	bool killself = argc == 4 && strcmp(argv[3], "killself") == 0;
	char err[512];
	int rc = 1;

	if (argc != 3 && !crash && !killself) {
		fprintf(stderr, "usage: %s VMLINUX ROOTFS [crash|killself]\n", argv[0]);
		return 2;
	}
	minivm_vm_config_init(&c);
	c.vm.kernel = argv[1];
	c.vm.rootfs = argv[2];
	c.event_fn = on_event;
	if (minivm_vm_create(&c, &vm, err, sizeof(err))) {
		fprintf(stderr, "create: %s\n", err);
		return 1;
	}
	if (start_on_thread(vm) || minivm_vm_wait_ready(vm, 600000))
		fprintf(stderr, "boot: %s\n", minivm_vm_error(vm));
	else
		rc = crash ? run_crash(vm) : run_read(vm);
	printf("events: %u\n", atomic_load(&nr_events));
	if (killself) {
		/* The front dies with its VM running and nothing cleaned up:
		 * metrics.sh checks that no process of the VM is left. */
		printf("%s\n", rc ? "metrics_vm: FAILED" : "metrics_vm: OK, now SIGKILL");
		fflush(stdout);
		raise(SIGKILL);
	}
	minivm_vm_destroy(vm);
	printf("%s\n", rc ? "metrics_vm: FAILED" : "metrics_vm: OK");
	return rc;
}
