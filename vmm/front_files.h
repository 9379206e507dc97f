/* The front's side of images and workspaces: the root built from an OCI image, a workspace copied in and its changes out, the overlay saved as an OCI image. Unjailed: the front owns every host file the user named (DESIGN.md). */
#ifndef MINIVM_FRONT_FILES_H
#define MINIVM_FRONT_FILES_H

#include <stddef.h>

#include "vmm/cli.h"

struct oci_image;

/* Where the guest's writable layer's upper directory is (rootfs/agent/init.c). */
#define FRONT_OVERLAY_UPPER "/run/minivm-scratch/upper"
/* Where a root built from an OCI image has the agent, and the kernel's init= for it. */
#define FRONT_OCI_INIT "/sbin/minivm-init"
/* Most bytes a guest tar stream (workspace, saved layer) may have. */
#define FRONT_TAR_MAX (16ULL << 30)

/* Where the front's diagnostics go (minivm_vm_config.log_fn/log_ctx). */
struct front_log {
	minivm_log_fn fn; /* NULL: dropped */
	void *ctx;
};

/* One line (printf format, no newline) to log->fn, if any; log may be NULL. */
void front_log(const struct front_log *log, enum minivm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct front_files {
	struct front_log log;   /* set before front_rootfs_prepare / front_save */
	struct oci_image *img;  /* --rootfs oci:...: the opened, verified image */
	char rootfs[4096];      /* the ext4 root built from it (in the cache) */
	char cmdline[8192];     /* "init=... " + the user's --cmdline */
	const char *ext4_base;  /* --save from a plain ext4 root: its path */
};

/*
 * Before the VM starts: with --rootfs oci:..., opens and verifies the image
 * and builds (or finds in the cache: $MINIVM_CACHE, else ~/.cache/minivm)
 * the ext4 root with the agent added, then points cli->cfg.rootfs at it and
 * puts init= on the kernel command line (cli->cfg.cmdline then points into
 * ff). rundir: a private directory for temporaries. 0 or -errno with a
 * message in err. ff must be zeroed before, and freed with front_files_free.
 */
int front_rootfs_prepare(struct cli *cli, struct front_files *ff, const char *rundir, char *err,
			 size_t errlen) __attribute__((warn_unused_result));

/* With --workspace: copies HOSTDIR into the guest at GUESTDIR through the agent on uds. */
int front_workspace_in(const struct cli *cli, const char *uds, const char *rundir, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/*
 * With --workspace, after the command: reads the guest's copy back, writes
 * the diff to --changes (atomically), logs a summary to log, and with
 * --apply makes HOSTDIR equal to the copy.
 */
int front_workspace_out(const struct cli *cli, const struct front_log *log, const char *uds,
			const char *rundir, char *err, size_t errlen) __attribute__((warn_unused_result));

/* With --save, after the command: the overlay's upper layer as a new OCI image at --save
 * (logged to ff->log). */
int front_save(const struct cli *cli, struct front_files *ff, const char *uds, const char *rundir,
	       char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The command's environment, working directory and user: the user's
 * --env, --workdir, --user, over the OCI image's config (Env, WorkingDir,
 * User) when the root came from one, as a container runtime would. env
 * (max entries + 1 for the NULL) receives --env's entries, then the image's
 * whose name --env does not set; *cwd and *user may stay NULL. Returns the
 * number of env entries.
 */
size_t front_exec_defaults(const struct cli *cli, const struct front_files *ff, const char **env,
			   size_t max, const char **cwd, const char **user);

void front_files_free(struct front_files *ff);

#endif
