/* libFuzzer target for vmm/cli.c: NUL-separated argv into cli_parse(), the whole input into cli_parse_size(). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net_policy.h"
#include "vmm/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_ARGS 64

static struct cli cli;
static char err[256];

/* Whether s points into one of argv's strings (and is not empty). */
static int in_argv(const char *s, int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++)
		if (s >= argv[i] && s <= argv[i] + strlen(argv[i]))
			return *s != '\0';
	return 0;
}

/* --api-sock: the socket's path from argv, fitting sun_path, and nothing of
 * a run (the socket configures the machine and says what runs). */
static void check_api(int argc, char *const argv[])
{
	const struct minivm_config *c = &cli.cfg;

	if (!in_argv(cli.api_sock, argc, argv) || strlen(cli.api_sock) >= CLI_API_SOCK_MAX)
		abort();
	if (c->kernel || c->rootfs || c->run || c->cmdline || c->console || c->vsock_uds ||
	    c->nr_disks || c->net.tap || c->net.nr_allow || c->net.allow_dns || c->net.policy_file ||
	    c->vm_timeout_ms || c->timings || cli.print_timings)
		abort();
	if (cli.agent || cli.agent_argc || cli.nr_env || cli.env[0] || cli.workdir || cli.user ||
	    cli.timeout_s || cli.tty || cli.save || cli.ws_host[0] || cli.changes || cli.apply ||
	    cli.snapshot_dir || cli.restore_dir || cli.template_name || cli.template_create)
		abort();
	if (c->mem_bytes != 256ULL << 20 || c->cpus != 1)
		abort();
	if (cli.jail.mode == JAIL_OFF && (cli.jail.cpu_quota_pct ||
					  cli.jail.uid != JAIL_DEFAULT_ID ||
					  cli.jail.gid != JAIL_DEFAULT_ID))
		abort();
}

static void check_result(int r, int argc, char *const argv[])
{
	const struct minivm_config *c = &cli.cfg;

	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	if (r != 0) {
		if (r != -EINVAL || err[0] == '\0')
			abort();
		return;
	}
	if (cli.action != CLI_RUN)
		return;
	if (cli.log_format != LOG_TEXT && cli.log_format != LOG_JSON)
		abort();
	if (cli.api_sock) {
		check_api(argc, argv);
		return;
	}
	/* A restore (--restore, --template) takes the kernel from the snapshot. */
	if ((!c->kernel || !*c->kernel) && !cli.restore_dir && !cli.template_name)
		abort();
	if ((cli.restore_dir || cli.template_name) && c->kernel)
		abort();
	if (c->mem_bytes < CLI_MIN_MEM || c->mem_bytes > CLI_MAX_MEM || (c->mem_bytes & 0xfffff))
		abort();
	if (c->cpus < 1 || c->cpus > MINIVM_MAX_CPUS)
		abort();
	if (c->emul != MINIVM_EMUL_AUTO && c->emul != MINIVM_EMUL_YES && c->emul != MINIVM_EMUL_NO)
		abort();
	if (c->nr_disks >= MINIVM_MAX_DISKS)
		abort();
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		size_t n = strnlen(cli.disk_paths[i], sizeof(cli.disk_paths[i]));

		if (c->disks[i].path != cli.disk_paths[i] || n == 0 || n >= sizeof(cli.disk_paths[i]))
			abort();
	}
	/* --rootfs is copied without its ",rw"/",ro" suffix, like --disk; an
	 * OCI reference is kept whole (the front builds the root from it). */
	if (c->rootfs && cli.rootfs_oci) {
		if (strncmp(c->rootfs, "oci:", 4) && strncmp(c->rootfs, "oci-archive:", 12))
			abort();
	} else if (c->rootfs) {
		size_t n = strnlen(cli.rootfs_path, sizeof(cli.rootfs_path));

		if (c->rootfs != cli.rootfs_path || n == 0 || n >= sizeof(cli.rootfs_path))
			abort();
	}
	/* Every other string is a value from argv (after '=' or whole). */
	/* The agent's command: argv-terminated, within bounds, never with --run. */
	if (cli.agent) {
		if (c->run || cli.agent_argc == 0 || cli.agent_argc > AGENT_CMD_MAX_WORDS ||
		    cli.agent_argv[cli.agent_argc] != NULL ||
		    (!c->rootfs && !cli.restore_dir && !cli.template_name))
			abort();
		for (unsigned int i = 0; i < cli.agent_argc; i++)
			if (!cli.agent_argv[i])
				abort();
	} else if (cli.nr_env || cli.workdir || cli.user || cli.timeout_s || cli.tty) {
		abort();
	}
	if (cli.nr_env > CLI_MAX_ENV || cli.env[cli.nr_env] != NULL)
		abort();
	for (unsigned int i = 0; i < cli.nr_env; i++)
		if (!strchr(cli.env[i], '=') || cli.env[i][0] == '=')
			abort();
	if (cli.workdir && cli.workdir[0] != '/')
		abort();
	/* The NIC: whatever parses is what the guest's agent accepts, and the
	 * policy is there only with a NIC, its rules each one a rule. */
	if (c->net.tap) {
		struct agent_net an = { .ip = c->net.ip, .prefix = c->net.prefix, .gw = c->net.gw,
					.dns = c->net.dns };
		char val[AGENT_NET_VALUE_MAX];

		if (c->net.tap != cli.net_tap || !cli.net_tap[0] || strchr(cli.net_tap, '/') ||
		    agent_net_format(&an, val, sizeof(val)) < 0 || (c->net.mac[0] & 1))
			abort();
		if (c->net.allow_dns && !c->net.dns)
			abort();
	} else if (c->net.nr_allow || c->net.allow_dns || c->net.policy_file) {
		abort();
	}
	if (c->net.nr_allow > MINIVM_MAX_NET_RULES || (c->net.nr_allow && c->net.allow != cli.allow))
		abort();
	for (unsigned int i = 0; i < c->net.nr_allow; i++) {
		struct net_rule rule;
		char why[128];

		if (net_rule_parse(c->net.allow[i], &rule, why, sizeof(why)))
			abort();
	}
	if (cli.boot_timeout_s == 0 || cli.boot_timeout_s > CLI_MAX_TIMEOUT ||
	    cli.timeout_s > CLI_MAX_TIMEOUT)
		abort();
	const char *const strs[] = { c->kernel, c->run, c->cmdline, c->console, c->vsock_uds,
				     cli.workdir, cli.user, c->net.policy_file };

	for (size_t s = 0; s < sizeof(strs) / sizeof(strs[0]); s++) {
		int found = 0;

		if (!strs[s])
			continue;
		for (int i = 1; i < argc && !found; i++) {
			size_t n = strlen(argv[i]);

			found = strs[s] >= argv[i] && strs[s] <= argv[i] + n;
		}
		if (!found || !*strs[s])
			abort();
	}
}

static void fuzz_size(const char *s)
{
	uint64_t v = 0x5a5a5a5a5a5a5a5aULL;
	int r = cli_parse_size(s, &v);
	int all_digits = *s != '\0';

	if (r != 0) {
		if (r != -EINVAL || v != 0x5a5a5a5a5a5a5a5aULL)
			abort();
		return;
	}
	/* Plain digits must give their value exactly. */
	for (const char *p = s; *p; p++)
		all_digits &= *p >= '0' && *p <= '9';
	if (all_digits) {
		uint64_t w = 0;

		for (const char *p = s; *p; p++)
			w = w * 10 + (uint64_t)(*p - '0');
		if (w != v)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	char *argv[FZ_MAX_ARGS + 2];
	int argc = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	fuzz_size(buf);

	argv[argc++] = (char *)"minivm";
	for (size_t i = 0; i <= size && argc <= FZ_MAX_ARGS; ) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	check_result(cli_parse(argc, argv, &cli, err, sizeof(err)), argc, argv);
	free(buf);
	return 0;
}
