/* minivm as an OCI runtime (the command line containerd's runc shim calls): argv, the bundle's config.json, the state file, and the commands. */
#ifndef MINIVM_RUNC_H
#define MINIVM_RUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/json.h"

/* Bounds on what a config.json may ask for (more is refused by name). */
#define RUNC_MAX_ARGS 1024
#define RUNC_MAX_ENV 128     /* the CLI front's --env bound (CLI_MAX_ENV) */
#define RUNC_MAX_MOUNTS 64
#define RUNC_MAX_ANNOTATIONS 256
#define RUNC_SPEC_MAX_BYTES (4u << 20)
#define RUNC_ID_MAX 128
#define RUNC_DEFAULT_ROOT "/run/minivm-runc"
/* The smallest VM a memory limit becomes. */
#define RUNC_MIN_MEM (64ULL << 20)
#define RUNC_MAX_CPUS 32

/* ---- argv ---- */

enum runc_cmd {
	RUNC_CMD_NONE = 0,
	RUNC_CMD_CREATE,
	RUNC_CMD_START,
	RUNC_CMD_STATE,
	RUNC_CMD_KILL,
	RUNC_CMD_DELETE,
	RUNC_CMD_PS,
	RUNC_CMD_EXEC,
	RUNC_CMD_FEATURES,
	RUNC_CMD_VERSION,
	RUNC_CMD_HELP,
};

enum runc_log_format { RUNC_LOG_TEXT = 0, RUNC_LOG_JSON };

/* A parsed command line; every string points into argv. */
struct runc_args {
	/* global flags (before the command) */
	const char *root;          /* --root; default RUNC_DEFAULT_ROOT */
	const char *log;           /* --log FILE, or NULL (stderr only) */
	enum runc_log_format log_format;
	bool debug;                /* --debug */
	bool systemd_cgroup;       /* --systemd-cgroup: accepted, ignored (noted in the log) */

	enum runc_cmd cmd;
	const char *id;            /* the container id (every command but features/version/help) */
	const char *bundle;        /* create --bundle (default ".") */
	const char *pid_file;      /* create / exec --pid-file */
	const char *console_socket; /* create / exec --console-socket */
	const char *process;       /* exec --process FILE */
	bool detach;               /* exec --detach */
	bool tty;                  /* exec --tty (with ARGS) */
	bool all;                  /* kill --all */
	bool force;                /* delete --force */
	bool ps_json;              /* ps --format json */
	int signal;                /* kill: the signal number (default SIGTERM) */
	char *const *exec_argv;    /* exec ID ARGS...: NULL-terminated, or NULL */
	int exec_argc;
	const char *exec_cwd;      /* exec --cwd */
	const char *exec_env[RUNC_MAX_ENV + 1]; /* exec --env K=V */
	unsigned int exec_nenv;
};

/*
 * Parses a runc-style command line (argv[0] is the program). Accepts the
 * global flags --root DIR, --log FILE, --log-format text|json,
 * --systemd-cgroup, --debug, --rootless VALUE (ignored), each also as
 * --flag=value, then one command and its flags (see runc_usage). Pure,
 * reentrant; 0 or -EINVAL with a message naming the argument in err.
 */
int runc_args_parse(int argc, char *const argv[], struct runc_args *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A signal by name ("TERM", "SIGTERM", "sigterm") or number (1..64); -EINVAL if neither. */
int runc_parse_signal(const char *s) __attribute__((warn_unused_result));

/* A container id as runc accepts it: [A-Za-z0-9_+.-]{1,RUNC_ID_MAX}, not "." or "..". */
bool runc_id_valid(const char *id);

extern const char runc_usage[];

/* ---- config.json ---- */

/* What minivm does with one mount of the spec (runc_spec_parse decides by
 * type and destination; binds are checked against the host when the root
 * is built). */
enum runc_mount_kind {
	RUNC_MOUNT_GUEST = 0, /* a kernel file system the guest mounts itself (proc, sysfs, devpts, ...),
			       * or a bind under /dev, /proc or /sys (ignored: the guest's own are there) */
	RUNC_MOUNT_DIR,       /* tmpfs elsewhere: a directory in the image, writable through the overlay */
	RUNC_MOUNT_BIND,      /* a bind: copied into the image when create runs (see runc_rootfs_build) */
};

struct runc_mount {
	const char *destination; /* absolute */
	const char *type;        /* "" when absent */
	const char *source;      /* "" when absent */
	bool bind, readonly;     /* type bind, or options bind/rbind; option ro */
	enum runc_mount_kind kind;
};

struct runc_process {
	const char *args[RUNC_MAX_ARGS + 1]; /* NULL-terminated */
	unsigned int nargs;                  /* >= 1 */
	const char *env[RUNC_MAX_ENV + 1];   /* "K=V", NULL-terminated */
	unsigned int nenv;
	const char *cwd;                     /* absolute; "/" when absent */
	uint32_t uid, gid;
	bool terminal;
};

struct runc_annotation {
	const char *key, *value;
};

/*
 * A parsed config.json (or, for exec, a process.json: only `process` is
 * filled). Every string points into doc, which the struct owns: free with
 * runc_spec_free. Large: allocate it, do not put it on a small stack.
 */
struct runc_spec {
	struct json_doc *doc;
	const char *oci_version;
	struct runc_process process;
	const char *root_path;    /* as written (relative to the bundle unless absolute) */
	bool root_readonly;
	const char *hostname;     /* or NULL */
	struct runc_mount mounts[RUNC_MAX_MOUNTS];
	unsigned int nmounts;
	uint64_t mem_limit;       /* linux.resources.memory.limit; 0: none */
	int64_t cpu_quota;        /* linux.resources.cpu.quota; <= 0: none */
	uint64_t cpu_period;      /* linux.resources.cpu.period; 0: none (100000 assumed) */
	const struct json_node *annotations_node; /* the annotations object, or NULL */
	struct runc_annotation annotations[RUNC_MAX_ANNOTATIONS];
	unsigned int nannotations;
	/* What was ignored, one "; "-separated note per item (for the log). */
	char notes[1024];
};

/*
 * Parses a bundle's config.json from buf[0..len) into *out (zeroed first).
 * Strict JSON (vmm/json.h); unknown members are ignored; the members minivm
 * uses are checked by type and range. Refused, with a message naming the
 * member: not an object, ociVersion missing or not 1.x, process missing,
 * process.args missing/empty/not strings, an env entry without '=', a
 * relative cwd, a uid/gid that is not an integer in 0..2^32-2, terminal not a
 * boolean, root or root.path missing, a mount without an absolute
 * destination, a kernel file system (proc, sysfs, devpts, mqueue, cgroup,
 * cgroup2) anywhere but its usual place, a mount type minivm cannot give a
 * VM (anything but those, tmpfs and bind), a memory limit or cpu quota that
 * is not an integer, an annotation that is not a string, the RUNC_MAX_*
 * bounds. 0 (free with runc_spec_free even then) or -EINVAL/-E2BIG/-ENOMEM
 * with a message in err (out then holds nothing to free).
 */
int runc_spec_parse(const char *buf, size_t len, struct runc_spec *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* exec's --process FILE: one `process` object at the top level. Same rules. */
int runc_process_parse(const char *buf, size_t len, struct runc_spec *out, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

void runc_spec_free(struct runc_spec *s);

/* An annotation's value, or NULL. */
const char *runc_spec_annotation(const struct runc_spec *s, const char *key);

/*
 * The VM's size from the spec: minivm.mem (a size, cli_parse_size) or the
 * memory limit rounded up to MiB and at least RUNC_MIN_MEM (0: minivm's
 * default); minivm.vcpus or ceil(quota / period) clamped to 1..RUNC_MAX_CPUS
 * (0: the default). -EINVAL with a message for a bad annotation.
 */
int runc_spec_vm_size(const struct runc_spec *s, uint64_t *mem, unsigned int *cpus, char *err,
		      size_t errlen) __attribute__((warn_unused_result));

/* ---- the state file ---- */

enum runc_status { RUNC_CREATING = 0, RUNC_CREATED, RUNC_RUNNING, RUNC_STOPPED };

const char *runc_status_name(enum runc_status s);

/* What <root>/<id>/state.json keeps. Strings are owned copies. */
struct runc_state {
	char id[RUNC_ID_MAX + 1];
	pid_t pid;                  /* the container's init (the process the shim waits for) */
	unsigned long long pid_start; /* its start time (/proc/PID/stat field 22): guards pid reuse */
	char bundle[4096];
	char rootfs[4096];          /* the bundle's rootfs directory */
	char created[64];           /* RFC 3339, UTC */
	char rundir[256];           /* the front's TMPDIR (short: Unix socket paths) */
	char vsock[256];            /* the VM's hybrid vsock socket (exec goes through it) */
	struct json_doc *doc;       /* owns annotations (NULL: none) */
	const struct json_node *annotations;
};

/*
 * The state as JSON: with status NULL, the file's own form (private
 * members included); else the OCI state the `state` command prints
 * (ociVersion, id, status, pid (0 when stopped), bundle, rootfs, created,
 * annotations). 0 and a malloc'd NUL-terminated string, or -ENOMEM.
 */
int runc_state_json(const struct runc_state *st, const char *status, char **out)
	__attribute__((warn_unused_result));

/* Parses the file form back (strict). 0 or -EINVAL with a message; free with runc_state_free. */
int runc_state_parse(const char *buf, size_t len, struct runc_state *out, char *err,
		     size_t errlen) __attribute__((warn_unused_result));
void runc_state_free(struct runc_state *st);

/* ---- the commands ---- */

/*
 * The whole runtime: argv as runc takes it. Returns the process's exit
 * status (0, 1 on an error, which is logged to --log in its format and to
 * stderr; exec without --detach: the command's status). create and exec
 * --detach fork the process the shim then owns.
 */
int runc_main(int argc, char **argv);

/*
 * The container's init once started (`minivm-runc _init MINIVM-OPTIONS -- ARGS`,
 * exec'd by the process create forked): boots the VM as the minivm front
 * does with the same options (cli_parse; --agent/-- and --vsock needed),
 * runs the command through the agent, and forwards every catchable signal
 * it receives to the command in the guest (SIGWINCH as the terminal's
 * size); a SIGTERM, SIGINT, SIGHUP or SIGQUIT before the command started
 * stops the VM instead. Returns the command's status (128+N for signal N),
 * or 125 (minivm failed) / 123 (the guest died). One per process: it
 * installs signal handlers.
 */
int runc_front_main(int argc, char **argv);

/* Whether argv selects the runtime: argv[0]'s basename is "minivm-runc", or argv[1] is "runc" (then runc_main gets argv + 1). */
bool runc_selected(int argc, char *const argv[]);

#endif
