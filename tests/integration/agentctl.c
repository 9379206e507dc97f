/* agentctl: drives a running guest's agent through minivm's vsock socket (tests, scripts): exec, put, get, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/agent_client.h"

#define CTL_ERR 125
#define CTL_MAX_ENV 64

static const char ctl_usage[] =
	"usage: agentctl SOCKET exec [-t SECS] [-e K=V]... [-w DIR] [-u USER] [-n] [--tty] -- ARGV...\n"
	"       agentctl SOCKET put GUEST_PATH MODE_OCTAL < FILE\n"
	"       agentctl SOCKET get GUEST_PATH > FILE\n"
	"       agentctl SOCKET shutdown STATUS\n"
	"       agentctl SOCKET ping\n"
	"SOCKET is minivm's --vsock path. exec exits with the command's status\n"
	"(128+N for signal N, 124 timeout, 127 not found); -n: no stdin. Connecting\n"
	"retries for CONNECT_TIMEOUT_MS (env, default 30000). 125: agentctl failed.\n";

static int ctl_connect(const char *sock, int *fd)
{
	const char *t = getenv("CONNECT_TIMEOUT_MS");
	int timeout_ms = t ? atoi(t) : 30000;
	char err[512];
	int r = agent_connect(sock, AGENT_VSOCK_PORT, timeout_ms, fd, err, sizeof(err));

	if (r)
		fprintf(stderr, "agentctl: connect %s: %s\n", sock, err);
	return r;
}

static int ctl_exec(const char *sock, int argc, char **argv)
{
	const char *env[CTL_MAX_ENV + 1];
	struct agent_exec_result res;
	struct agent_exec_req req;
	struct agent_exec_io io;
	unsigned int nenv = 0;
	bool no_stdin = false;
	char err[512];
	int i, fd, r;

	memset(&req, 0, sizeof(req));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-t") && i + 1 < argc) {
			req.timeout_s = (uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(a, "-e") && i + 1 < argc && nenv < CTL_MAX_ENV) {
			env[nenv++] = argv[++i];
		} else if (!strcmp(a, "-w") && i + 1 < argc) {
			req.cwd = argv[++i];
		} else if (!strcmp(a, "-u") && i + 1 < argc) {
			req.user = argv[++i];
		} else if (!strcmp(a, "-n")) {
			no_stdin = true;
		} else if (!strcmp(a, "--tty")) {
			req.flags |= AGENT_EXEC_TTY;
		} else {
			fputs(ctl_usage, stderr);
			return CTL_ERR;
		}
	}
	if (i >= argc) {
		fputs(ctl_usage, stderr);
		return CTL_ERR;
	}
	env[nenv] = NULL;
	req.argv = (const char *const *)&argv[i];
	req.env = nenv ? env : NULL;
	io.in_fd = no_stdin ? -1 : STDIN_FILENO;
	io.out_fd = STDOUT_FILENO;
	io.err_fd = STDERR_FILENO;
	io.ctl_fd = -1;
	io.winsize_fd = -1;
	if (ctl_connect(sock, &fd))
		return CTL_ERR;
	r = agent_exec(fd, &req, &io, &res, err, sizeof(err));
	close(fd);
	if (r) {
		fprintf(stderr, "agentctl: exec: %s\n", err);
		return CTL_ERR;
	}
	return agent_exec_exit_status(&res);
}

int main(int argc, char **argv)
{
	const char *sock, *op;
	char err[512];
	int fd, r;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 3) {
		fputs(ctl_usage, stderr);
		return CTL_ERR;
	}
	sock = argv[1];
	op = argv[2];
	if (!strcmp(op, "exec"))
		return ctl_exec(sock, argc - 3, argv + 3);
	if (!strcmp(op, "ping") && argc == 3) {
		if (ctl_connect(sock, &fd))
			return CTL_ERR;
		close(fd);
		return 0;
	}
	if (!strcmp(op, "put") && argc == 5) {
		uint64_t size = 0;

		if (ctl_connect(sock, &fd))
			return CTL_ERR;
		r = agent_put_file(fd, argv[3], (uint32_t)strtoul(argv[4], NULL, 8), STDIN_FILENO,
				   &size, err, sizeof(err));
		close(fd);
		if (r) {
			fprintf(stderr, "agentctl: put %s: %s\n", argv[3], err);
			return CTL_ERR;
		}
		return 0;
	}
	if (!strcmp(op, "get") && argc == 4) {
		if (ctl_connect(sock, &fd))
			return CTL_ERR;
		r = agent_get_file(fd, argv[3], STDOUT_FILENO, NULL, NULL, err, sizeof(err));
		close(fd);
		if (r) {
			fprintf(stderr, "agentctl: get %s: %s\n", argv[3], err);
			return CTL_ERR;
		}
		return 0;
	}
	if (!strcmp(op, "shutdown") && argc == 4) {
		if (ctl_connect(sock, &fd))
			return CTL_ERR;
		r = agent_shutdown(fd, atoi(argv[3]), err, sizeof(err));
		close(fd);
		if (r) {
			fprintf(stderr, "agentctl: shutdown: %s\n", err);
			return CTL_ERR;
		}
		return 0;
	}
	fputs(ctl_usage, stderr);
	return CTL_ERR;
}
