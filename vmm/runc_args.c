/* minivm-runc's command line: runc's global flags and commands as containerd's shim (go-runc) passes them, parsed without getopt. */
#include "vmm/runc.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char runc_usage[] =
	"usage: minivm-runc [GLOBAL FLAGS] COMMAND [FLAGS] ID\n"
	"  global: --root DIR (default " RUNC_DEFAULT_ROOT "), --log FILE, --log-format text|json,\n"
	"          --systemd-cgroup (ignored), --debug\n"
	"  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] [--no-pivot]\n"
	"         [--no-new-keyring] [--preserve-fds N] ID\n"
	"  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
	"  ps [--format table|json] ID\n"
	"  exec [--process FILE | --tty --cwd DIR --env K=V ID ARGS...] [--detach]\n"
	"       [--pid-file FILE] [--console-socket SOCK] ID\n"
	"  features | --version | --help\n";

static int runc_arg_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int runc_arg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const struct {
	const char *name;
	int sig;
} runc_signals[] = {
	{ "HUP", SIGHUP },     { "INT", SIGINT },       { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },   { "ABRT", SIGABRT },     { "IOT", SIGIOT },   { "BUS", SIGBUS },
	{ "FPE", SIGFPE },     { "KILL", SIGKILL },     { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },     { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU }, { "URG", SIGURG },
	{ "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM },
	{ "PROF", SIGPROF },   { "WINCH", SIGWINCH },   { "IO", SIGIO },     { "POLL", SIGPOLL },
	{ "PWR", SIGPWR },     { "SYS", SIGSYS },
};

int runc_parse_signal(const char *s)
{
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || *end || v < 1 || v > 64)
			return -EINVAL;
		return (int)v;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(runc_signals) / sizeof(runc_signals[0]); i++)
		if (strcasecmp(s, runc_signals[i].name) == 0)
			return runc_signals[i].sig;
	return -EINVAL;
}

bool runc_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > RUNC_ID_MAX || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/*
 * Matches argv[*i] against a flag that takes a value ("--name VALUE" or
 * "--name=VALUE", also the short form when given): 1 with *val set (and *i
 * advanced past a separate value), 0 when it is another flag, -EINVAL when
 * the value is missing.
 */
static int runc_flag_val(int argc, char *const argv[], int *i, const char *name,
			 const char *short_name, const char **val, char *err, size_t errlen)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (a[0] == '-' && a[1] == '-' && a[2] != '-')
		a++; /* "--x" and "-x" are the same flag to runc (urfave/cli) */
	if (strncmp(a + 1, name, n) == 0 && a[1 + n] == '=') {
		*val = a + 2 + n;
		return 1;
	}
	if (strcmp(a + 1, name) != 0 && !(short_name && strcmp(argv[*i], short_name) == 0))
		return 0;
	if (*i + 1 >= argc)
		return runc_arg_err(err, errlen, "%s needs a value", argv[*i]);
	*val = argv[++*i];
	return 1;
}

/* A boolean flag ("--name", "--name=true|false", or the short form). */
static int runc_flag_bool(const char *arg, const char *name, const char *short_name, bool *val,
			  char *err, size_t errlen)
{
	const char *a = arg;
	size_t n = strlen(name);

	if (short_name && strcmp(arg, short_name) == 0) {
		*val = true;
		return 1;
	}
	if (a[0] == '-' && a[1] == '-' && a[2] != '-')
		a++;
	if (a[0] != '-' || strncmp(a + 1, name, n) != 0)
		return 0;
	if (a[1 + n] == '\0') {
		*val = true;
		return 1;
	}
	if (a[1 + n] != '=')
		return 0;
	if (strcmp(a + 2 + n, "true") == 0)
		*val = true;
	else if (strcmp(a + 2 + n, "false") == 0)
		*val = false;
	else
		return runc_arg_err(err, errlen, "%s: expected true or false", arg);
	return 1;
}

static const struct {
	const char *name;
	enum runc_cmd cmd;
} runc_cmds[] = {
	{ "create", RUNC_CMD_CREATE }, { "start", RUNC_CMD_START }, { "state", RUNC_CMD_STATE },
	{ "kill", RUNC_CMD_KILL },     { "delete", RUNC_CMD_DELETE }, { "ps", RUNC_CMD_PS },
	{ "exec", RUNC_CMD_EXEC },     { "features", RUNC_CMD_FEATURES },
	{ "version", RUNC_CMD_VERSION }, { "help", RUNC_CMD_HELP },
};

/* Commands runc has that a VM cannot do (or minivm does not do yet). */
static const char *const runc_unsupported[] = {
	"run", "pause", "resume", "update", "checkpoint", "restore", "events", "list", "spec",
};

/* The flags of one command; positional arguments go to pos[]. */
static int runc_cmd_flags(int argc, char *const argv[], int i, struct runc_args *o,
			  const char *pos[], int *npos, int maxpos, char *err, size_t errlen)
{
	for (; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		bool b = false;
		int r;

		if (a[0] != '-' || a[1] == '\0' || *npos > 0) {
			/* exec ID ARGS...: everything after the id is the command */
			if (o->cmd == RUNC_CMD_EXEC && *npos == 1) {
				o->exec_argv = &argv[i];
				o->exec_argc = argc - i;
				return 0;
			}
			if (*npos >= maxpos)
				return runc_arg_err(err, errlen, "unexpected argument '%s'", a);
			pos[(*npos)++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			while (++i < argc) {
				if (o->cmd == RUNC_CMD_EXEC && *npos == 1) {
					o->exec_argv = &argv[i];
					o->exec_argc = argc - i;
					return 0;
				}
				if (*npos >= maxpos)
					return runc_arg_err(err, errlen, "unexpected argument '%s'", argv[i]);
				pos[(*npos)++] = argv[i];
			}
			return 0;
		}
		switch (o->cmd) {
		case RUNC_CMD_CREATE:
			if ((r = runc_flag_val(argc, argv, &i, "bundle", "-b", &o->bundle, err, errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "pid-file", NULL, &o->pid_file, err,
					       errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "console-socket", NULL,
					       &o->console_socket, err, errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "preserve-fds", NULL, &v, err, errlen)) ||
			    (r = runc_flag_bool(a, "no-pivot", NULL, &b, err, errlen)) ||
			    (r = runc_flag_bool(a, "no-new-keyring", NULL, &b, err, errlen)) ||
			    (r = runc_flag_bool(a, "detach", "-d", &b, err, errlen))) {
				if (r < 0)
					return r;
				if (v && strcmp(v, "0") != 0)
					return runc_arg_err(err, errlen, "--preserve-fds %s: minivm passes no "
								     "extra host fds into a VM", v);
				continue;
			}
			break;
		case RUNC_CMD_KILL:
			if ((r = runc_flag_bool(a, "all", "-a", &o->all, err, errlen))) {
				if (r < 0)
					return r;
				continue;
			}
			break;
		case RUNC_CMD_DELETE:
			if ((r = runc_flag_bool(a, "force", "-f", &o->force, err, errlen))) {
				if (r < 0)
					return r;
				continue;
			}
			break;
		case RUNC_CMD_PS:
			if ((r = runc_flag_val(argc, argv, &i, "format", "-f", &v, err, errlen))) {
				if (r < 0)
					return r;
				if (strcmp(v, "json") == 0)
					o->ps_json = true;
				else if (strcmp(v, "table") == 0)
					o->ps_json = false;
				else
					return runc_arg_err(err, errlen, "--format %s: table or json", v);
				continue;
			}
			break;
		case RUNC_CMD_EXEC:
			if ((r = runc_flag_val(argc, argv, &i, "process", "-p", &o->process, err,
					       errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "pid-file", NULL, &o->pid_file, err,
					       errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "console-socket", NULL,
					       &o->console_socket, err, errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "cwd", NULL, &o->exec_cwd, err, errlen)) ||
			    (r = runc_flag_bool(a, "detach", "-d", &o->detach, err, errlen)) ||
			    (r = runc_flag_bool(a, "tty", "-t", &o->tty, err, errlen)) ||
			    (r = runc_flag_val(argc, argv, &i, "preserve-fds", NULL, &v, err, errlen))) {
				if (r < 0)
					return r;
				if (v && strcmp(v, "0") != 0)
					return runc_arg_err(err, errlen, "--preserve-fds %s: minivm passes no "
								     "extra host fds into a VM", v);
				continue;
			}
			if ((r = runc_flag_val(argc, argv, &i, "env", "-e", &v, err, errlen))) {
				if (r < 0)
					return r;
				if (!strchr(v, '='))
					return runc_arg_err(err, errlen, "--env %s: expected KEY=VALUE", v);
				if (o->exec_nenv >= RUNC_MAX_ENV)
					return runc_arg_err(err, errlen, "more than %d --env", RUNC_MAX_ENV);
				o->exec_env[o->exec_nenv++] = v;
				continue;
			}
			break;
		default:
			break;
		}
		return runc_arg_err(err, errlen, "unknown flag '%s' for this command", a);
	}
	return 0;
}

int runc_args_parse(int argc, char *const argv[], struct runc_args *o, char *err, size_t errlen)
{
	const char *pos[2] = { NULL, NULL };
	int i, npos = 0, r, maxpos;

	memset(o, 0, sizeof(*o));
	o->root = RUNC_DEFAULT_ROOT;
	o->bundle = ".";
	o->signal = SIGTERM;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (a[0] != '-')
			break;
		if ((r = runc_flag_val(argc, argv, &i, "root", NULL, &o->root, err, errlen)) ||
		    (r = runc_flag_val(argc, argv, &i, "log", NULL, &o->log, err, errlen)) ||
		    (r = runc_flag_bool(a, "debug", NULL, &o->debug, err, errlen)) ||
		    (r = runc_flag_bool(a, "systemd-cgroup", NULL, &o->systemd_cgroup, err, errlen)) ||
		    (r = runc_flag_val(argc, argv, &i, "rootless", NULL, &v, err, errlen)) ||
		    (r = runc_flag_val(argc, argv, &i, "criu", NULL, &v, err, errlen))) {
			if (r < 0)
				return r;
			continue;
		}
		if ((r = runc_flag_val(argc, argv, &i, "log-format", NULL, &v, err, errlen))) {
			if (r < 0)
				return r;
			if (strcmp(v, "json") == 0)
				o->log_format = RUNC_LOG_JSON;
			else if (strcmp(v, "text") == 0)
				o->log_format = RUNC_LOG_TEXT;
			else
				return runc_arg_err(err, errlen, "--log-format %s: text or json", v);
			continue;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
			o->cmd = RUNC_CMD_VERSION;
			return 0;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			o->cmd = RUNC_CMD_HELP;
			return 0;
		}
		return runc_arg_err(err, errlen, "unknown global flag '%s'", a);
	}
	if (!o->root[0] || o->root[0] != '/')
		return runc_arg_err(err, errlen, "--root '%s': an absolute path is needed", o->root);
	if (o->log && !o->log[0])
		return runc_arg_err(err, errlen, "--log: an empty path");
	if (i >= argc)
		return runc_arg_err(err, errlen, "no command given");
	for (size_t k = 0; k < sizeof(runc_cmds) / sizeof(runc_cmds[0]); k++)
		if (strcmp(argv[i], runc_cmds[k].name) == 0)
			o->cmd = runc_cmds[k].cmd;
	if (o->cmd == RUNC_CMD_NONE) {
		for (size_t k = 0; k < sizeof(runc_unsupported) / sizeof(runc_unsupported[0]); k++)
			if (strcmp(argv[i], runc_unsupported[k]) == 0)
				return runc_arg_err(err, errlen, "'%s' is not supported by minivm-runc "
								 "(a container here is a VM)", argv[i]);
		return runc_arg_err(err, errlen, "unknown command '%s'", argv[i]);
	}
	if (o->cmd == RUNC_CMD_VERSION || o->cmd == RUNC_CMD_HELP || o->cmd == RUNC_CMD_FEATURES) {
		if (i + 1 < argc)
			return runc_arg_err(err, errlen, "'%s' takes no arguments", argv[i]);
		return 0;
	}
	maxpos = o->cmd == RUNC_CMD_KILL ? 2 : 1;
	r = runc_cmd_flags(argc, argv, i + 1, o, pos, &npos, maxpos, err, errlen);
	if (r)
		return r;
	if (npos < 1)
		return runc_arg_err(err, errlen, "%s: a container id is needed", argv[i]);
	o->id = pos[0];
	if (!runc_id_valid(o->id))
		return runc_arg_err(err, errlen, "invalid container id '%s' (letters, digits, "
						 "'_', '+', '-', '.'; at most %d)", o->id, RUNC_ID_MAX);
	if (o->cmd == RUNC_CMD_KILL && pos[1]) {
		o->signal = runc_parse_signal(pos[1]);
		if (o->signal < 0)
			return runc_arg_err(err, errlen, "kill: unknown signal '%s'", pos[1]);
	}
	if (o->cmd == RUNC_CMD_EXEC) {
		if (o->process && o->exec_argv)
			return runc_arg_err(err, errlen, "exec: --process and a command are exclusive");
		if (!o->process && !o->exec_argv)
			return runc_arg_err(err, errlen, "exec: --process FILE or a command is needed");
	}
	if (o->cmd == RUNC_CMD_CREATE && !o->bundle[0])
		return runc_arg_err(err, errlen, "create: --bundle is empty");
	return 0;
}

bool runc_selected(int argc, char *const argv[])
{
	const char *base;

	if (argc < 1 || !argv[0])
		return false;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "minivm-runc") == 0)
		return true;
	return argc >= 2 && strcmp(argv[1], "runc") == 0;
}
