/* Command-line parsing for the minivm binary: argv in, a minivm_config or an error out. */
#ifndef MINIVM_CLI_H
#define MINIVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rootfs/agent/cmdline.h"
#include "vmm/jail.h"
#include "vmm/log.h"
#include "vmm/minivm.h"
#include "vmm/scratch.h"

enum cli_action {
	CLI_RUN = 0,
	CLI_HELP,
	CLI_VERSION,
};

#define CLI_MAX_ENV 128
#define CLI_DEFAULT_BOOT_TIMEOUT 600 /* s; emulating hosts boot in about a minute */
#define CLI_MAX_TIMEOUT 31536000     /* s; a year */

struct cli {
	enum cli_action action;
	struct minivm_config cfg; /* strings point into argv */
	struct jail_config jail;  /* --jail/--no-jail, --uid, --gid, --cpu-quota */
	bool print_timings;
	char disk_paths[MINIVM_MAX_DISKS][4096]; /* --disk paths without ",ro" */
	char rootfs_path[4096];                  /* --rootfs path without ",rw" */

	/* The agent's command: --agent 'CMD ARGS' (split on the host like a
	 * shell without expansion) or everything after "--" (exact argv). */
	bool agent;
	char *agent_argv[AGENT_CMD_ARGV_SIZE]; /* NULL-terminated; into argv or agent_words */
	unsigned int agent_argc;
	char agent_words[AGENT_CMD_WORDS_SIZE];
	const char *env[CLI_MAX_ENV + 1];       /* --env K=V, NULL-terminated */
	unsigned int nr_env;
	const char *workdir;                    /* --workdir, or NULL */
	const char *user;                       /* --user, or NULL */
	unsigned int timeout_s;                 /* --timeout; 0: none */
	bool tty;                               /* --tty */
	unsigned int boot_timeout_s;            /* --boot-timeout (agent ready deadline) */
	/* The NIC (--net, --allow, --allow-dns, --net-policy): cfg.net
	 * points into these and argv. */
	char net_tap[16];                       /* tap=NAME (IFNAMSIZ) */
	const char *allow[MINIVM_MAX_NET_RULES]; /* --allow rules, in order */
	/* The overlay's writable layer (--scratch, --scratch-size; vmm/scratch.h). */
	enum scratch_mode scratch;
	uint64_t scratch_size;                  /* 0: SCRATCH_DEFAULT_SIZE for a disk */
	/* Images in and out, the workspace (vmm/front_files.h). */
	bool rootfs_oci;                        /* cfg.rootfs is "oci:..." / "oci-archive:..." */
	const char *save;                       /* --save DEST */
	char ws_host[4096];                     /* --workspace HOSTDIR[:GUESTDIR]: "" if none */
	char ws_guest[256];                     /* GUESTDIR (default CLI_WS_GUEST) */
	bool ws_gitignore;                      /* --workspace-respect-gitignore */
	const char *changes;                    /* --changes FILE */
	bool apply;                             /* --apply */
	/* Snapshots (vmm/SNAPSHOT.md): --snapshot-after-ready DIR, --restore
	 * DIR, --template NAME (a --restore of the template's directory,
	 * which the front resolves), and "minivm template create NAME
	 * [options]" (boots, snapshots into the template, powers off: no
	 * command, agent_argc 0). */
	const char *snapshot_dir;
	const char *restore_dir;
	const char *template_name;
	bool template_create;
	/* --api-sock PATH: serve the control socket (vmm/API.md) instead of
	 * running a command; only the jail's options, --verbose and
	 * --log-format go with it (cfg.kernel etc. stay unset). */
	const char *api_sock;
	enum log_format log_format;             /* --log-format text|json */
	bool log_format_set;
};

/* sizeof(sockaddr_un.sun_path): the longest --api-sock path + 1. */
#define CLI_API_SOCK_MAX 108

#define CLI_TEMPLATE_NAME_MAX 64

/* A template's name: 1 to CLI_TEMPLATE_NAME_MAX of [A-Za-z0-9._-], not
 * starting with '.'. */
bool cli_template_name_ok(const char *name);

#define CLI_WS_GUEST "/workspace"

#define CLI_MIN_MEM (32ULL << 20)
#define CLI_MAX_MEM (64ULL << 30)

/*
 * Parses argv. Returns 0, or -EINVAL with a message in err naming the bad
 * argument. Pure: no files are opened and nothing is printed. getopt is not
 * used, so the parser is reentrant and testable.
 */
int cli_parse(int argc, char *const argv[], struct cli *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parses a size: digits with an optional K, M, G or T suffix (binary,
 * optionally followed by "iB" or "B"); 0 or -EINVAL (garbage, overflow). */
/* The library front's config (minivm.h) for cli: the machine, the jail,
 * the agent, the scratch layer, snapshot/restore dirs; no log callback. */
void cli_vm_config(const struct cli *cli, struct minivm_vm_config *vc);

int cli_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* The --help text. */
extern const char cli_usage[];

#endif
