/* The minivm command: a thin CLI over libminivm. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/minivm.h"

#define MINIVM_VERSION "0.1.0"

static struct minivm *main_vm;

static void main_on_signal(int sig)
{
	(void)sig;
	if (main_vm)
		minivm_stop(main_vm);
}

static void main_print_timings(const struct minivm_timings *t)
{
	const double ms = 1e6;
	uint64_t ready = t->ready_ns ? t->ready_ns : t->exit_ns;
	uint64_t init = t->init_started_ns ? t->init_started_ns : ready;

	fprintf(stderr, "minivm: timing vmm_setup %.3f ms\n", t->first_run_ns / ms);
	fprintf(stderr, "minivm: timing kernel %.3f ms\n",
		t->init_started_ns ? (t->init_started_ns - t->first_run_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing init %.3f ms\n",
		t->ready_ns && t->init_started_ns ? (t->ready_ns - t->init_started_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing workload %.3f ms\n",
		t->ready_ns ? (t->exit_ns - t->ready_ns) / ms : -1.0);
	fprintf(stderr, "minivm: timing total %.3f ms\n", t->exit_ns / ms);
	(void)init;
}

int main(int argc, char **argv)
{
	struct minivm_result res;
	struct sigaction sa;
	struct minivm *vm;
	char err[512];
	struct cli cli;
	int r, status;

	if (cli_parse(argc, argv, &cli, err, sizeof(err))) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	if (cli.action == CLI_HELP) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (cli.action == CLI_VERSION) {
		printf("minivm %s\n", MINIVM_VERSION);
		return 0;
	}
	r = minivm_create(&cli.cfg, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "minivm: %s\n", err);
		return MINIVM_EXIT_ERROR;
	}
	main_vm = vm;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	r = minivm_run(vm, &res);
	if (r) {
		fprintf(stderr, "minivm: %s\n", minivm_error(vm));
		status = MINIVM_EXIT_ERROR;
	} else {
		status = minivm_exit_status(&res);
		if (res.outcome == MINIVM_GUEST_CRASHED)
			fprintf(stderr, "minivm: the guest crashed: it reset without reporting an "
					"exit status (kernel panic, triple fault or init died)\n");
		else if (res.outcome == MINIVM_STOPPED)
			fprintf(stderr, "minivm: stopped by a signal\n");
	}
	if (cli.print_timings)
		main_print_timings(&res.timings);
	main_vm = NULL;
	minivm_destroy(vm);
	return status;
}
