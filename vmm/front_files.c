/* The front's side of images and workspaces: OCI roots, workspace copy in and diff out, --save (see front_files.h). */
#include "vmm/front_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rootfs/agent/tar.h"
#include "vmm/agent_client.h"
#include "vmm/fstree.h"
#include "vmm/oci.h"
#include "vmm/workspace.h"

/* How long to wait for the agent to take a connection (it is already up). */
#define FRONT_CONNECT_MS 30000
/* Most bytes of a guest tool's stderr kept for the error message. */
#define FRONT_TOOL_ERR_MAX (64 * 1024)

void front_log(const struct front_log *log, enum minivm_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!log || !log->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log->fn(log->ctx, level, msg);
}

/* An unlinked temporary file in dir, read-write. */
static int front_tmpfile(const char *dir)
{
	char path[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
		return fd >= 0 ? fd : -errno;
	if (snprintf(path, sizeof(path), "%s/.tmp-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	return fd;
}

/* Copies a pipe into a file, up to a cap; past it, stops reading (the writer then gets EPIPE). */
struct front_sink {
	int rd, out;
	uint64_t cap, n;
	int err;
	pthread_t thread;
};

static void *front_sink_run(void *arg)
{
	struct front_sink *s = arg;
	char buf[65536];

	for (;;) {
		ssize_t r = read(s->rd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				s->err = -errno;
			break;
		}
		if (s->n + (uint64_t)r > s->cap) {
			s->err = -EFBIG;
			break;
		}
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(s->out, buf + off, (size_t)(r - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				s->err = w < 0 ? -errno : -EIO;
				goto out;
			}
			off += w;
		}
		s->n += (uint64_t)r;
	}
out:
	close(s->rd);
	s->rd = -1;
	return NULL;
}

/* A pipe whose write end (returned in *wr) is drained by a thread into out. */
static int front_sink_start(struct front_sink *s, int out, uint64_t cap, int *wr)
{
	int p[2], r;

	memset(s, 0, sizeof(*s));
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	s->rd = p[0];
	s->out = out;
	s->cap = cap;
	r = pthread_create(&s->thread, NULL, front_sink_run, s);
	if (r) {
		close(p[0]);
		close(p[1]);
		return -r;
	}
	*wr = p[1];
	return 0;
}

static int front_sink_end(struct front_sink *s, int wr)
{
	close(wr);
	pthread_join(s->thread, NULL);
	return s->err;
}

/*
 * Runs the agent binary's tar tool in the guest ("/proc/self/exe tar ...":
 * the agent's child re-executes the agent itself), stdin from in_fd (-1:
 * none), stdout into out_fd (at most FRONT_TAR_MAX bytes). 0 when it
 * exited 0, else -errno with what it said on stderr in err.
 */
static int front_guest_tar(const char *uds, const char *const *argv, int in_fd, int out_fd,
			   const char *rundir, char *err, size_t errlen)
{
	struct agent_exec_result res;
	struct agent_exec_req req;
	struct agent_exec_io io;
	struct front_sink so, se;
	int fd = -1, efd = -1, wo = -1, we = -1, r, ro, re;
	char msg[512];

	efd = front_tmpfile(rundir);
	if (efd < 0) {
		snprintf(err, errlen, "temporary file in %s: %s", rundir, strerror(-efd));
		return efd;
	}
	r = agent_connect(uds, AGENT_VSOCK_PORT, FRONT_CONNECT_MS, &fd, err, errlen);
	if (r)
		goto out;
	r = front_sink_start(&so, out_fd, FRONT_TAR_MAX, &wo);
	if (r) {
		snprintf(err, errlen, "thread: %s", strerror(-r));
		goto out;
	}
	r = front_sink_start(&se, efd, FRONT_TOOL_ERR_MAX, &we);
	if (r) {
		(void)front_sink_end(&so, wo);
		snprintf(err, errlen, "thread: %s", strerror(-r));
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.argv = argv;
	io.in_fd = in_fd;
	io.out_fd = wo;
	io.err_fd = we;
	io.ctl_fd = -1;
	io.winsize_fd = -1;
	r = agent_exec(fd, &req, &io, &res, err, errlen);
	ro = front_sink_end(&so, wo);
	re = front_sink_end(&se, we);
	(void)re;
	if (r)
		goto out;
	if (ro == -EFBIG) {
		snprintf(err, errlen, "the guest sent more than %llu GiB", FRONT_TAR_MAX >> 30);
		r = -EFBIG;
		goto out;
	}
	if (ro) {
		snprintf(err, errlen, "writing what the guest sent: %s", strerror(-ro));
		r = ro;
		goto out;
	}
	if (agent_exec_exit_status(&res) != 0) {
		ssize_t n = pread(efd, msg, sizeof(msg) - 1, 0);

		n = n < 0 ? 0 : n;
		msg[n] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?'; /* the guest's words: no terminal controls */
		if (res.kind == AGENT_EXIT_START_FAILED)
			snprintf(err, errlen, "the guest's tar tool did not start: %s", strerror(res.err));
		else
			snprintf(err, errlen, "the guest's tar tool failed (status %d)%s%.300s",
				 agent_exec_exit_status(&res), *msg ? ": " : "", msg);
		r = -EIO;
	}
out:
	if (fd >= 0)
		close(fd);
	close(efd);
	return r;
}

/* The agent binary added to OCI roots: $MINIVM_AGENT_INIT, else minivm-init beside minivm. */
static int front_agent_bin(char *out, size_t size, char *err, size_t errlen)
{
	const char *env = getenv("MINIVM_AGENT_INIT");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		if (snprintf(out, size, "%s", env) >= (int)size)
			return -ENAMETOOLONG;
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		snprintf(err, errlen, "/proc/self/exe: %s", strerror(errno));
		return -errno;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(out, size, "%s/minivm-init", exe) >= (int)size)
		return -ENAMETOOLONG;
	if (access(out, R_OK) != 0) {
		snprintf(err, errlen, "the agent binary %s is missing (build it with 'make rootfs', "
				      "or name it with MINIVM_AGENT_INIT)", out);
		return -ENOENT;
	}
	return 0;
}

/* $MINIVM_CACHE, else $HOME/.cache/minivm (made if missing, with its parents). */
static int front_cache_dir(char *out, size_t size, char *err, size_t errlen)
{
	const char *env = getenv("MINIVM_CACHE"), *home = getenv("HOME");
	int n;

	if (env && *env)
		n = snprintf(out, size, "%s", env);
	else
		n = snprintf(out, size, "%s/.cache/minivm", home && *home ? home : "/root");
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "the cache directory's path is too long");
		return -ENAMETOOLONG;
	}
	for (char *p = out + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(out, 0755) != 0 && errno != EEXIST) {
				int e = errno;

				snprintf(err, errlen, "cache directory %s: %s", out, strerror(e));
				*p = c;
				return -e;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int front_rootfs_prepare(struct cli *cli, struct front_files *ff, const char *rundir, char *err,
			 size_t errlen)
{
	char agent[PATH_MAX], cache[PATH_MAX], msg[512];
	struct timespec t0, t1;
	struct oci_ref ref;
	int r;

	if (!cli->rootfs_oci) {
		if (cli->save)
			ff->ext4_base = cli->cfg.rootfs;
		return 0;
	}
	r = oci_ref_parse(cli->cfg.rootfs, &ref, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "--rootfs: %s", msg);
		return r;
	}
	r = front_agent_bin(agent, sizeof(agent), err, errlen);
	if (r)
		return r;
	r = front_cache_dir(cache, sizeof(cache), err, errlen);
	if (r)
		return r;
	r = oci_open(&ref, rundir, &ff->img, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "--rootfs %s: %s", cli->cfg.rootfs, msg);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = oci_rootfs_image(ff->img, cache, agent, ff->rootfs, sizeof(ff->rootfs), msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "--rootfs %s: %s", cli->cfg.rootfs, msg);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (cli->cfg.verbose)
		front_log(&ff->log, MINIVM_LOG_DEBUG, "root of %s (%s): %s, ready in %.1f ms",
			  cli->cfg.rootfs, oci_image_digest(ff->img), ff->rootfs,
			  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	if (snprintf(ff->cmdline, sizeof(ff->cmdline), "init=" FRONT_OCI_INIT "%s%s",
		     cli->cfg.cmdline ? " " : "", cli->cfg.cmdline ? cli->cfg.cmdline : "") >=
	    (int)sizeof(ff->cmdline)) {
		snprintf(err, errlen, "--cmdline is too long");
		return -E2BIG;
	}
	cli->cfg.rootfs = ff->rootfs;
	cli->cfg.cmdline = ff->cmdline;
	return 0;
}

/* tar_write callback into a file descriptor. */
static int front_write_fd(void *ctx, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int front_workspace_in(const struct cli *cli, const char *uds, const char *rundir, char *err,
		       size_t errlen)
{
	const char *argv[] = { "/proc/self/exe", "tar", "extract", NULL, NULL, NULL, NULL };
	char msg[512], owner[32];
	unsigned int uid, gid, a = 3;
	int fd, r, n = 0;

	/* A numeric --user owns the copy (a name means nothing on the host:
	 * the copy stays root's, readable by all as on the host). */
	if (cli->user && (sscanf(cli->user, "%u:%u%n", &uid, &gid, &n) == 2 ||
			  sscanf(cli->user, "%u%n", &uid, &n) == 1) && cli->user[n] == '\0') {
		if (!strchr(cli->user, ':'))
			gid = uid;
		snprintf(owner, sizeof(owner), "%u:%u", uid, gid);
		argv[a++] = "--owner";
		argv[a++] = owner;
	}
	argv[a] = cli->ws_guest;

	fd = front_tmpfile(rundir);
	if (fd < 0) {
		snprintf(err, errlen, "temporary file in %s: %s", rundir, strerror(-fd));
		return fd;
	}
	struct ws_stats st;

	memset(&st, 0, sizeof(st));
	r = ws_pack(cli->ws_host, cli->ws_gitignore, front_write_fd, &fd, &st, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "--workspace %s: %s", cli->ws_host, msg);
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		r = -errno;
		snprintf(err, errlen, "lseek: %s", strerror(errno));
		goto out;
	}
	r = front_guest_tar(uds, argv, fd, -1, rundir, msg, sizeof(msg));
	if (r)
		snprintf(err, errlen, "copying the workspace into the guest's %s: %s", cli->ws_guest,
			 msg);
out:
	close(fd);
	return r;
}

/* Feeds a file's bytes (from offset 0) to a tar reader; 0 or -errno with the reader's message. */
static int front_read_tar(int fd, struct tar_reader *rd, char *err, size_t errlen)
{
	char buf[65536];
	uint64_t off = 0;
	int r;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			return -errno;
		}
		if (n == 0)
			break;
		r = tar_reader_feed(rd, buf, (size_t)n);
		if (r)
			goto bad;
		off += (uint64_t)n;
	}
	r = tar_reader_finish(rd);
	if (!r)
		return 0;
bad:
	snprintf(err, errlen, "%s", *tar_reader_error(rd) ? tar_reader_error(rd) : strerror(-r));
	return r;
}

/* Writes a file next to path, fsyncs it and renames it over path: the old file or the whole new one. */
static int front_changes_open(const char *path, char *tmp, size_t size)
{
	int fd;

	if (snprintf(tmp, size, "%s.minivm-tmp-XXXXXX", path) >= (int)size)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	(void)fchmod(fd, 0644);
	return fd;
}

int front_workspace_out(const struct cli *cli, const struct front_log *log, const char *uds,
			const char *rundir, char *err, size_t errlen)
{
	const char *argv[] = { "/proc/self/exe", "tar", "create", cli->ws_guest, NULL };
	struct tar_reader *rd = NULL;
	struct fstree *tree = NULL;
	struct ws_stats st;
	char msg[512], tmp[PATH_MAX];
	int fd, cfd = -1, r;

	memset(&st, 0, sizeof(st));
	tmp[0] = '\0';
	fd = front_tmpfile(rundir);
	if (fd < 0) {
		snprintf(err, errlen, "temporary file in %s: %s", rundir, strerror(-fd));
		return fd;
	}
	r = front_guest_tar(uds, argv, -1, fd, rundir, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "reading the workspace back from the guest's %s: %s",
			 cli->ws_guest, msg);
		goto out;
	}
	r = fstree_new(rundir, NULL, &tree, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "%s", msg);
		goto out;
	}
	r = tar_reader_new(&fstree_tar_ops, tree, &rd);
	if (r) {
		snprintf(err, errlen, "%s", strerror(-r));
		goto out;
	}
	fstree_layer_begin(tree, false);
	r = front_read_tar(fd, rd, msg, sizeof(msg));
	if (!r)
		r = fstree_layer_end(tree);
	if (r) {
		const char *why = *fstree_error(tree) ? fstree_error(tree) : msg;

		snprintf(err, errlen, "the guest's copy of the workspace: %s", why);
		goto out;
	}
	if (cli->changes) {
		cfd = front_changes_open(cli->changes, tmp, sizeof(tmp));
		if (cfd < 0) {
			r = cfd;
			snprintf(err, errlen, "--changes %s: %s", cli->changes, strerror(-r));
			tmp[0] = '\0';
			goto out;
		}
	} else {
		cfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (cfd < 0) {
			r = -errno;
			snprintf(err, errlen, "/dev/null: %s", strerror(errno));
			goto out;
		}
	}
	r = ws_diff(cli->ws_host, cli->ws_gitignore, tree, cfd, &st, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "diffing the workspace: %s", msg);
		goto out;
	}
	if (cli->changes) {
		if (fsync(cfd) != 0 || rename(tmp, cli->changes) != 0) {
			r = -errno;
			snprintf(err, errlen, "--changes %s: %s", cli->changes, strerror(errno));
			goto out;
		}
		tmp[0] = '\0';
	}
	front_log(log, MINIVM_LOG_INFO, "workspace %s: %llu added, %llu modified, %llu deleted%s%s%s",
		cli->ws_host, (unsigned long long)st.added, (unsigned long long)st.modified,
		(unsigned long long)st.deleted, cli->changes ? "; diff in " : "",
		cli->changes ? cli->changes : "",
		cli->apply ? "" : "; not applied (--apply)");
	if (cli->apply) {
		r = ws_apply(cli->ws_host, cli->ws_gitignore, tree, &st, msg, sizeof(msg));
		if (r) {
			snprintf(err, errlen, "applying the changes to %s: %s", cli->ws_host, msg);
			goto out;
		}
	}
out:
	if (tmp[0])
		(void)unlink(tmp);
	if (cfd >= 0)
		close(cfd);
	tar_reader_free(rd);
	fstree_free(tree);
	close(fd);
	return r;
}

/* The command as one line for the image's history ("minivm --agent ARGV"). */
static void front_created_by(const struct cli *cli, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "minivm --agent");

	for (unsigned int i = 0; cli->agent_argv[i] && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, " %s", cli->agent_argv[i]);
}

int front_save(const struct cli *cli, struct front_files *ff, const char *uds, const char *rundir,
	       char *err, size_t errlen)
{
	const char *argv[8];
	struct oci_save_req req;
	char msg[512], created_by[2048], exclude[sizeof(cli->ws_guest)];
	unsigned int a = 0;
	int fd, r;

	argv[a++] = "/proc/self/exe";
	argv[a++] = "tar";
	argv[a++] = "create";
	argv[a++] = "--overlay";
	if (cli->ws_host[0]) {
		/* The workspace's copy is not part of the image. */
		snprintf(exclude, sizeof(exclude), "%s", cli->ws_guest + 1);
		argv[a++] = "--exclude";
		argv[a++] = exclude;
	}
	argv[a++] = FRONT_OVERLAY_UPPER;
	argv[a] = NULL;
	fd = front_tmpfile(rundir);
	if (fd < 0) {
		snprintf(err, errlen, "temporary file in %s: %s", rundir, strerror(-fd));
		return fd;
	}
	r = front_guest_tar(uds, argv, -1, fd, rundir, msg, sizeof(msg));
	if (r) {
		snprintf(err, errlen, "reading the changed root from the guest: %s", msg);
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		r = -errno;
		snprintf(err, errlen, "lseek: %s", strerror(errno));
		goto out;
	}
	front_created_by(cli, created_by, sizeof(created_by));
	memset(&req, 0, sizeof(req));
	req.base = ff->img;
	req.base_ext4 = ff->img ? NULL : ff->ext4_base;
	req.layer_fd = fd;
	req.created_by = created_by;
	req.created = NULL; /* now */
	req.dest = cli->save;
	req.tmpdir = rundir;
	r = oci_save(&req, msg, sizeof(msg));
	if (r)
		snprintf(err, errlen, "--save %s: %s", cli->save, msg);
	else
		front_log(&ff->log, MINIVM_LOG_INFO, "saved the changed root as %s", cli->save);
out:
	close(fd);
	return r;
}

size_t front_exec_defaults(const struct cli *cli, const struct front_files *ff, const char **env,
			   size_t max, const char **cwd, const char **user)
{
	const struct oci_config *c = ff->img ? oci_image_config(ff->img) : NULL;
	size_t n = 0;

	for (unsigned int i = 0; i < cli->nr_env && n < max; i++)
		env[n++] = cli->env[i];
	for (uint32_t i = 0; c && i < c->nr_env && n < max; i++) {
		size_t klen = strcspn(c->env[i], "=");
		bool set = false;

		for (unsigned int j = 0; j < cli->nr_env && !set; j++)
			set = !strncmp(cli->env[j], c->env[i], klen) && cli->env[j][klen] == '=';
		if (!set)
			env[n++] = c->env[i];
	}
	env[n] = NULL;
	*cwd = cli->workdir;
	if (!*cwd && c && c->working_dir && *c->working_dir)
		*cwd = c->working_dir;
	*user = cli->user;
	if (!*user && c && c->user && *c->user)
		*user = c->user;
	return n;
}

void front_files_free(struct front_files *ff)
{
	oci_close(ff->img);
	ff->img = NULL;
}
