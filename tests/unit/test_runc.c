/* Unit tests for vmm/runc*.c: argv of every command and global flag, config.json (good specs, each refusal's message), the VM's size, the state JSON, the guest root built from a directory, and a create/state/kill/delete lifecycle that never boots. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/ext4img.h"
#include "vmm/fstree.h"
#include "vmm/runc.h"
#include "vmm/runc_rootfs.h"

static struct runc_args A;
static char E[1024];

static int parse(const char *const *v)
{
	int n = 0;

	while (v[n])
		n++;
	E[0] = '\0';
	return runc_args_parse(n, (char *const *)v, &A, E, sizeof(E));
}

/* ---- argv ---- */

START_TEST(args_globals)
{
	const char *v[] = { "minivm-runc", "--root", "/run/x", "--log", "/tmp/l.json", "--log-format",
			    "json", "--systemd-cgroup", "--debug", "state", "c1", NULL };
	const char *w[] = { "minivm-runc", "--root=/r", "--log=/l", "--log-format=text",
			    "--rootless=false", "-debug", "state", "c1", NULL };

	ck_assert_int_eq(parse(v), 0);
	ck_assert_str_eq(A.root, "/run/x");
	ck_assert_str_eq(A.log, "/tmp/l.json");
	ck_assert_int_eq(A.log_format, RUNC_LOG_JSON);
	ck_assert(A.systemd_cgroup && A.debug);
	ck_assert_int_eq(A.cmd, RUNC_CMD_STATE);
	ck_assert_str_eq(A.id, "c1");
	ck_assert_int_eq(parse(w), 0);
	ck_assert_str_eq(A.root, "/r");
	ck_assert_str_eq(A.log, "/l");
	ck_assert_int_eq(A.log_format, RUNC_LOG_TEXT);
	ck_assert(A.debug && !A.systemd_cgroup);
}
END_TEST

START_TEST(args_defaults)
{
	const char *v[] = { "minivm-runc", "kill", "c1", NULL };

	ck_assert_int_eq(parse(v), 0);
	ck_assert_str_eq(A.root, RUNC_DEFAULT_ROOT);
	ck_assert_ptr_null(A.log);
	ck_assert_int_eq(A.signal, SIGTERM);
	ck_assert(!A.all);
}
END_TEST

START_TEST(args_create)
{
	const char *v[] = { "minivm-runc", "create", "--bundle", "/b", "--pid-file", "/p",
			    "--console-socket", "/s", "--no-pivot", "--no-new-keyring", "c1", NULL };
	const char *w[] = { "minivm-runc", "create", "-b", "/b", "--preserve-fds", "0", "c2", NULL };

	ck_assert_int_eq(parse(v), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_CREATE);
	ck_assert_str_eq(A.bundle, "/b");
	ck_assert_str_eq(A.pid_file, "/p");
	ck_assert_str_eq(A.console_socket, "/s");
	ck_assert_str_eq(A.id, "c1");
	ck_assert_int_eq(parse(w), 0);
	ck_assert_str_eq(A.bundle, "/b");
	ck_assert_ptr_null(A.console_socket);
}
END_TEST

START_TEST(args_lifecycle)
{
	const char *st[] = { "minivm-runc", "start", "c1", NULL };
	const char *k1[] = { "minivm-runc", "kill", "--all", "c1", "9", NULL };
	const char *k2[] = { "minivm-runc", "kill", "c1", "SIGUSR1", NULL };
	const char *k3[] = { "minivm-runc", "kill", "-a", "c1", "kill", NULL };
	const char *d1[] = { "minivm-runc", "delete", "--force", "c1", NULL };
	const char *d2[] = { "minivm-runc", "delete", "c1", NULL };
	const char *p1[] = { "minivm-runc", "ps", "--format", "json", "c1", NULL };
	const char *p2[] = { "minivm-runc", "ps", "c1", NULL };

	ck_assert_int_eq(parse(st), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_START);
	ck_assert_int_eq(parse(k1), 0);
	ck_assert(A.all);
	ck_assert_int_eq(A.signal, 9);
	ck_assert_int_eq(parse(k2), 0);
	ck_assert_int_eq(A.signal, SIGUSR1);
	ck_assert(!A.all);
	ck_assert_int_eq(parse(k3), 0);
	ck_assert_int_eq(A.signal, SIGKILL);
	ck_assert_int_eq(parse(d1), 0);
	ck_assert(A.force);
	ck_assert_int_eq(A.cmd, RUNC_CMD_DELETE);
	ck_assert_int_eq(parse(d2), 0);
	ck_assert(!A.force);
	ck_assert_int_eq(parse(p1), 0);
	ck_assert(A.ps_json);
	ck_assert_int_eq(A.cmd, RUNC_CMD_PS);
	ck_assert_int_eq(parse(p2), 0);
	ck_assert(!A.ps_json);
}
END_TEST

START_TEST(args_exec)
{
	const char *e1[] = { "minivm-runc", "exec", "--process", "/p.json", "--detach", "--pid-file",
			     "/pid", "--console-socket", "/s", "c1", NULL };
	const char *e2[] = { "minivm-runc", "exec", "-t", "--cwd", "/w", "-e", "A=1", "c1", "sh",
			     "-c", "echo -n hi", NULL };

	ck_assert_int_eq(parse(e1), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_EXEC);
	ck_assert_str_eq(A.process, "/p.json");
	ck_assert(A.detach);
	ck_assert_str_eq(A.pid_file, "/pid");
	ck_assert_str_eq(A.console_socket, "/s");
	ck_assert_ptr_null(A.exec_argv);
	ck_assert_int_eq(parse(e2), 0);
	ck_assert(A.tty && !A.detach);
	ck_assert_str_eq(A.exec_cwd, "/w");
	ck_assert_uint_eq(A.exec_nenv, 1);
	ck_assert_str_eq(A.exec_env[0], "A=1");
	ck_assert_int_eq(A.exec_argc, 3);
	ck_assert_str_eq(A.exec_argv[2], "echo -n hi");
}
END_TEST

START_TEST(args_info)
{
	const char *v1[] = { "minivm-runc", "--version", NULL };
	const char *v2[] = { "minivm-runc", "features", NULL };
	const char *v3[] = { "minivm-runc", "--root", "/r", "--help", NULL };

	ck_assert_int_eq(parse(v1), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_VERSION);
	ck_assert_int_eq(parse(v2), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_FEATURES);
	ck_assert_int_eq(parse(v3), 0);
	ck_assert_int_eq(A.cmd, RUNC_CMD_HELP);
}
END_TEST

static void bad(const char *const *v, const char *msg)
{
	ck_assert_int_eq(parse(v), -EINVAL);
	ck_assert_msg(strstr(E, msg), "'%s' not in '%s'", msg, E);
}

START_TEST(args_bad)
{
	const char *v1[] = { "minivm-runc", NULL };
	const char *v2[] = { "minivm-runc", "frob", "c1", NULL };
	const char *v3[] = { "minivm-runc", "state", NULL };
	const char *v4[] = { "minivm-runc", "state", "../etc", NULL };
	const char *v5[] = { "minivm-runc", "kill", "c1", "SIGNOPE", NULL };
	const char *v6[] = { "minivm-runc", "kill", "c1", "65", NULL };
	const char *v7[] = { "minivm-runc", "--root", NULL };
	const char *v8[] = { "minivm-runc", "--root", "rel", "state", "c1", NULL };
	const char *v9[] = { "minivm-runc", "--log-format", "xml", "state", "c1", NULL };
	const char *v10[] = { "minivm-runc", "--frob", "state", "c1", NULL };
	const char *v11[] = { "minivm-runc", "start", "--force", "c1", NULL };
	const char *v12[] = { "minivm-runc", "exec", "c1", NULL };
	const char *v13[] = { "minivm-runc", "create", "--preserve-fds", "2", "c1", NULL };
	const char *v14[] = { "minivm-runc", "pause", "c1", NULL };
	const char *v15[] = { "minivm-runc", "state", "a", "b", NULL };
	const char *v16[] = { "minivm-runc", "ps", "--format", "yaml", "c1", NULL };
	const char *v17[] = { "minivm-runc", "exec", "--process", "/p", "c1", "sh", NULL };
	const char *v18[] = { "minivm-runc", "features", "x", NULL };

	bad(v1, "no command");
	bad(v2, "unknown command 'frob'");
	bad(v3, "a container id is needed");
	bad(v4, "invalid container id '../etc'");
	bad(v5, "unknown signal 'SIGNOPE'");
	bad(v6, "unknown signal '65'");
	bad(v7, "--root needs a value");
	bad(v8, "absolute path");
	bad(v9, "--log-format xml");
	bad(v10, "unknown global flag '--frob'");
	bad(v11, "unknown flag '--force'");
	bad(v12, "--process FILE or a command");
	bad(v13, "--preserve-fds 2");
	bad(v14, "'pause' is not supported");
	bad(v15, "unexpected argument 'b'");
	bad(v16, "--format yaml");
	bad(v17, "exclusive");
	bad(v18, "takes no arguments");
}
END_TEST

START_TEST(signals_and_ids)
{
	ck_assert_int_eq(runc_parse_signal("TERM"), SIGTERM);
	ck_assert_int_eq(runc_parse_signal("SIGKILL"), SIGKILL);
	ck_assert_int_eq(runc_parse_signal("sigwinch"), SIGWINCH);
	ck_assert_int_eq(runc_parse_signal("15"), 15);
	ck_assert_int_eq(runc_parse_signal("64"), 64);
	ck_assert_int_eq(runc_parse_signal("0"), -EINVAL);
	ck_assert_int_eq(runc_parse_signal("-9"), -EINVAL);
	ck_assert_int_eq(runc_parse_signal("9x"), -EINVAL);
	ck_assert_int_eq(runc_parse_signal(""), -EINVAL);
	ck_assert(runc_id_valid("abc-DEF_1.2+3"));
	ck_assert(!runc_id_valid("."));
	ck_assert(!runc_id_valid(".."));
	ck_assert(!runc_id_valid("a/b"));
	ck_assert(!runc_id_valid(""));
	ck_assert(!runc_id_valid("a b"));
}
END_TEST

START_TEST(selected)
{
	char *a1[] = { "/usr/bin/minivm-runc", "state", NULL };
	char *a2[] = { "minivm", "runc", "state", NULL };
	char *a3[] = { "minivm", "--kernel", NULL };

	ck_assert(runc_selected(2, a1));
	ck_assert(runc_selected(3, a2));
	ck_assert(!runc_selected(2, a3));
}
END_TEST

/* ---- config.json ---- */

static struct runc_spec S;

/* containerd 1.6's default spec (ctr run), trimmed of what minivm ignores. */
static const char good_spec[] =
	"{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"user\":{\"uid\":1000,\"gid\":100},"
	"\"args\":[\"echo\",\"hello\"],\"env\":[\"PATH=/usr/bin:/bin\",\"TERM=xterm\"],"
	"\"cwd\":\"/work\",\"terminal\":true,\"capabilities\":{\"bounding\":[\"CAP_CHOWN\"]},"
	"\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
	"\"hostname\":\"h\",\"mounts\":["
	"{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\",\"options\":[\"nosuid\"]},"
	"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
	"{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\"},"
	"{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\"},"
	"{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\"},"
	"{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"ro\"]},"
	"{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\"},"
	"{\"destination\":\"/cache\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
	"{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/etc/hosts\",\"options\":[\"rbind\"]},"
	"{\"destination\":\"/data\",\"source\":\"/srv\",\"options\":[\"rbind\",\"ro\"]},"
	"{\"destination\":\"/dev/termination-log\",\"type\":\"bind\",\"source\":\"/x\"}],"
	"\"linux\":{\"resources\":{\"memory\":{\"limit\":100000000},\"cpu\":{\"quota\":150000,"
	"\"period\":100000}},\"namespaces\":[{\"type\":\"pid\"}]},"
	"\"annotations\":{\"minivm.vcpus\":\"2\",\"x\":\"y\"}}";

START_TEST(spec_good)
{
	ck_assert_int_eq(runc_spec_parse(good_spec, strlen(good_spec), &S, E, sizeof(E)), 0);
	ck_assert_str_eq(S.oci_version, "1.0.2-dev");
	ck_assert_uint_eq(S.process.nargs, 2);
	ck_assert_str_eq(S.process.args[1], "hello");
	ck_assert_ptr_null(S.process.args[2]);
	ck_assert_uint_eq(S.process.nenv, 2);
	ck_assert_str_eq(S.process.cwd, "/work");
	ck_assert_uint_eq(S.process.uid, 1000);
	ck_assert_uint_eq(S.process.gid, 100);
	ck_assert(S.process.terminal);
	ck_assert_str_eq(S.root_path, "rootfs");
	ck_assert(S.root_readonly);
	ck_assert_str_eq(S.hostname, "h");
	ck_assert_uint_eq(S.nmounts, 11);
	ck_assert_int_eq(S.mounts[10].kind, RUNC_MOUNT_GUEST);
	ck_assert_msg(strstr(S.notes, "bind at /dev/termination-log ignored"), "%s", S.notes);
	ck_assert_int_eq(S.mounts[0].kind, RUNC_MOUNT_GUEST);
	ck_assert_int_eq(S.mounts[3].kind, RUNC_MOUNT_GUEST);
	ck_assert_int_eq(S.mounts[6].kind, RUNC_MOUNT_GUEST);
	ck_assert_int_eq(S.mounts[7].kind, RUNC_MOUNT_DIR);
	ck_assert_int_eq(S.mounts[8].kind, RUNC_MOUNT_BIND);
	ck_assert(!S.mounts[8].readonly);
	ck_assert_int_eq(S.mounts[9].kind, RUNC_MOUNT_BIND);
	ck_assert(S.mounts[9].readonly);
	ck_assert_msg(strstr(S.notes, "tmpfs at /cache"), "%s", S.notes);
	ck_assert_uint_eq(S.mem_limit, 100000000);
	ck_assert_int_eq(S.cpu_quota, 150000);
	ck_assert_uint_eq(S.cpu_period, 100000);
	ck_assert_uint_eq(S.nannotations, 2);
	ck_assert_str_eq(runc_spec_annotation(&S, "x"), "y");
	ck_assert_ptr_null(runc_spec_annotation(&S, "z"));
	runc_spec_free(&S);
}
END_TEST

START_TEST(spec_minimal)
{
	const char *j = "{\"ociVersion\":\"1.0.0\",\"process\":{\"args\":[\"true\"]},"
			"\"root\":{\"path\":\"/abs/rootfs\"},\"unknown\":{\"a\":[1,2]}}";

	ck_assert_int_eq(runc_spec_parse(j, strlen(j), &S, E, sizeof(E)), 0);
	ck_assert_str_eq(S.process.cwd, "/");
	ck_assert_uint_eq(S.process.uid, 0);
	ck_assert(!S.process.terminal);
	ck_assert(!S.root_readonly);
	ck_assert_uint_eq(S.nmounts, 0);
	ck_assert_uint_eq(S.mem_limit, 0);
	ck_assert_ptr_null(S.annotations_node);
	runc_spec_free(&S);
}
END_TEST

static void spec_bad(const char *j, const char *msg)
{
	memset(E, 0, sizeof(E));
	ck_assert_int_ne(runc_spec_parse(j, strlen(j), &S, E, sizeof(E)), 0);
	ck_assert_msg(strstr(E, msg), "'%s' not in '%s' for %s", msg, E, j);
	ck_assert_ptr_null(S.doc);
}

#define P "\"process\":{\"args\":[\"x\"]}"
#define R "\"root\":{\"path\":\"rootfs\"}"
#define V "\"ociVersion\":\"1.0.2\""

START_TEST(spec_refusals)
{
	spec_bad("", "config.json:");
	spec_bad("[]", "expected an object");
	spec_bad("{\"a\":1,}", "config.json:");
	spec_bad("{" P "," R "}", "ociVersion: missing");
	spec_bad("{\"ociVersion\":2," P "," R "}", "ociVersion: expected a string");
	spec_bad("{\"ociVersion\":\"0.9\"," P "," R "}", "reads 1.x specs");
	spec_bad("{" V "," R "}", "process: missing");
	spec_bad("{" V ",\"process\":{}," R "}", "process.args: missing or empty");
	spec_bad("{" V ",\"process\":{\"args\":[]}," R "}", "process.args: missing or empty");
	spec_bad("{" V ",\"process\":{\"args\":[1]}," R "}", "process.args[0]: expected a string");
	spec_bad("{" V ",\"process\":{\"args\":[\"\"]}," R "}", "process.args[0]: empty");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"env\":[\"NOEQUALS\"]}," R "}",
		 "process.env[0]");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"cwd\":\"rel\"}," R "}",
		 "process.cwd 'rel': must be an absolute path");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"user\":{\"uid\":-1}}," R "}",
		 "process.user.uid");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"user\":{\"gid\":1.5}}," R "}",
		 "process.user.gid");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"terminal\":\"yes\"}," R "}",
		 "process.terminal: expected a boolean");
	spec_bad("{" V ",\"process\":{\"args\":[\"x\"],\"args\":[\"y\"]}," R "}",
		 "process.args: given twice");
	spec_bad("{" V "," P "}", "root: missing");
	spec_bad("{" V "," P ",\"root\":{}}", "root.path: missing or empty");
	spec_bad("{" V "," P "," R ",\"mounts\":{}}", "mounts: expected an array");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"type\":\"proc\"}]}", "mounts[0].destination");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"rel\"}]}", "mounts[0].destination");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"/a/../b\",\"type\":\"tmpfs\"}]}",
		 "with '..'");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"proc\"}]}",
		 "proc at /x: the guest mounts its own proc at its usual place only");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"nfs\"}]}",
		 "mount type 'nfs' at /x cannot be given to a VM");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\","
		 "\"source\":\"rel\"}]}", "needs an absolute source");
	spec_bad("{" V "," P "," R ",\"mounts\":[{\"destination\":\"/x\",\"options\":[1]}]}",
		 "mounts[0].options: expected strings");
	spec_bad("{" V "," P "," R ",\"linux\":{\"resources\":{\"memory\":{\"limit\":\"1G\"}}}}",
		 "linux.resources.memory.limit: expected a number");
	spec_bad("{" V "," P "," R ",\"linux\":{\"resources\":{\"memory\":{\"limit\":1e9}}}}",
		 "memory.limit: expected an integer");
	spec_bad("{" V "," P "," R ",\"linux\":{\"resources\":{\"cpu\":{\"quota\":0.5}}}}",
		 "cpu.quota: expected an integer");
	spec_bad("{" V "," P "," R ",\"linux\":{\"resources\":{\"cpu\":{\"period\":-1}}}}",
		 "cpu.period: expected an integer");
	spec_bad("{" V "," P "," R ",\"annotations\":{\"a\":1}}", "annotations.a: expected a string");
	spec_bad("{" V "," P "," R ",\"annotations\":[]}", "annotations: expected an object");
}
END_TEST

START_TEST(spec_bounds)
{
	size_t cap = 64 * (RUNC_MAX_MOUNTS + 2) + 256;
	char *j = malloc(cap);
	size_t n;

	ck_assert_ptr_nonnull(j);
	n = (size_t)snprintf(j, cap, "{" V "," P "," R ",\"mounts\":[");
	for (int i = 0; i <= RUNC_MAX_MOUNTS; i++)
		n += (size_t)snprintf(j + n, cap - n, "%s{\"destination\":\"/m%d\",\"type\":\"tmpfs\"}",
				      i ? "," : "", i);
	snprintf(j + n, cap - n, "]}");
	spec_bad(j, "mounts: more than");
	free(j);
}
END_TEST

START_TEST(process_json)
{
	const char *j = "{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\",\"-c\","
			"\"id\"],\"env\":[\"A=b\"],\"cwd\":\"/\"}";

	ck_assert_int_eq(runc_process_parse(j, strlen(j), &S, E, sizeof(E)), 0);
	ck_assert_uint_eq(S.process.nargs, 3);
	ck_assert_str_eq(S.process.env[0], "A=b");
	runc_spec_free(&S);
	ck_assert_int_ne(runc_process_parse("{}", 2, &S, E, sizeof(E)), 0);
	ck_assert(strstr(E, "process.args"));
}
END_TEST

START_TEST(vm_size)
{
	uint64_t mem;
	unsigned int cpus;
	const char *a = "{" V "," P "," R ",\"linux\":{\"resources\":{\"memory\":{\"limit\":1000},"
			"\"cpu\":{\"quota\":50000}}}}";
	const char *b = "{" V "," P "," R ",\"linux\":{\"resources\":{\"memory\":{\"limit\":"
			"314572801},\"cpu\":{\"quota\":350000,\"period\":100000}}}}";
	const char *c = "{" V "," P "," R ",\"linux\":{\"resources\":{\"memory\":{\"limit\":-1}}},"
			"\"annotations\":{\"minivm.mem\":\"512M\",\"minivm.vcpus\":\"3\"}}";
	const char *d = "{" V "," P "," R ",\"annotations\":{\"minivm.vcpus\":\"0\"}}";
	const char *e = "{" V "," P "," R ",\"annotations\":{\"minivm.mem\":\"lots\"}}";

	ck_assert_int_eq(runc_spec_parse(a, strlen(a), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_spec_vm_size(&S, &mem, &cpus, E, sizeof(E)), 0);
	ck_assert_uint_eq(mem, RUNC_MIN_MEM);
	ck_assert_uint_eq(cpus, 1);
	runc_spec_free(&S);
	ck_assert_int_eq(runc_spec_parse(b, strlen(b), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_spec_vm_size(&S, &mem, &cpus, E, sizeof(E)), 0);
	ck_assert_uint_eq(mem, 301ULL << 20);
	ck_assert_uint_eq(cpus, 4);
	runc_spec_free(&S);
	ck_assert_int_eq(runc_spec_parse(c, strlen(c), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_spec_vm_size(&S, &mem, &cpus, E, sizeof(E)), 0);
	ck_assert_uint_eq(mem, 512ULL << 20);
	ck_assert_uint_eq(cpus, 3);
	runc_spec_free(&S);
	ck_assert_int_eq(runc_spec_parse(d, strlen(d), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_spec_vm_size(&S, &mem, &cpus, E, sizeof(E)), -EINVAL);
	ck_assert(strstr(E, "minivm.vcpus '0'"));
	runc_spec_free(&S);
	ck_assert_int_eq(runc_spec_parse(e, strlen(e), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_spec_vm_size(&S, &mem, &cpus, E, sizeof(E)), -EINVAL);
	ck_assert(strstr(E, "minivm.mem 'lots'"));
	runc_spec_free(&S);
}
END_TEST

/* ---- the state JSON ---- */

START_TEST(state_json)
{
	static struct runc_state st, back;
	const char *j = "{" V "," P "," R ",\"annotations\":{\"k\":\"v\"}}";
	char *out, *file;

	ck_assert_int_eq(runc_spec_parse(j, strlen(j), &S, E, sizeof(E)), 0);
	memset(&st, 0, sizeof(st));
	snprintf(st.id, sizeof(st.id), "c1");
	st.pid = 42;
	st.pid_start = 123456;
	snprintf(st.bundle, sizeof(st.bundle), "/b\"q");
	snprintf(st.rootfs, sizeof(st.rootfs), "/b/rootfs");
	snprintf(st.created, sizeof(st.created), "2026-01-02T03:04:05.000000006Z");
	snprintf(st.rundir, sizeof(st.rundir), "/run/x/c1");
	snprintf(st.vsock, sizeof(st.vsock), "/run/x/c1/vsock.sock");
	st.doc = S.doc;
	st.annotations = S.annotations_node;
	ck_assert_int_eq(runc_state_json(&st, "running", &out), 0);
	ck_assert_str_eq(out, "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"running\","
			      "\"pid\":42,\"bundle\":\"/b\\\"q\",\"rootfs\":\"/b/rootfs\","
			      "\"created\":\"2026-01-02T03:04:05.000000006Z\","
			      "\"annotations\":{\"k\":\"v\"}}");
	free(out);
	ck_assert_int_eq(runc_state_json(&st, "stopped", &out), 0);
	ck_assert(strstr(out, "\"pid\":0,"));
	free(out);
	ck_assert_int_eq(runc_state_json(&st, NULL, &file), 0);
	ck_assert(strstr(file, "\"minivm\":{\"pidStart\":123456,"));
	ck_assert_int_eq(runc_state_parse(file, strlen(file), &back, E, sizeof(E)), 0);
	ck_assert_str_eq(back.id, "c1");
	ck_assert_int_eq(back.pid, 42);
	ck_assert_uint_eq(back.pid_start, 123456);
	ck_assert_str_eq(back.bundle, "/b\"q");
	ck_assert_str_eq(back.vsock, st.vsock);
	ck_assert_ptr_nonnull(back.annotations);
	st.doc = NULL;
	runc_spec_free(&S);
	ck_assert_int_eq(runc_state_json(&back, "created", &out), 0);
	ck_assert(strstr(out, "\"annotations\":{\"k\":\"v\"}"));
	free(out);
	runc_state_free(&back);
	free(file);
	ck_assert_int_ne(runc_state_parse("{\"pid\":0}", 9, &back, E, sizeof(E)), 0);
	ck_assert(strstr(E, "pid"));
	ck_assert_str_eq(runc_status_name(RUNC_CREATED), "created");
	ck_assert_str_eq(runc_status_name(RUNC_STOPPED), "stopped");
}
END_TEST

/* ---- the guest root ---- */

static char tmpdir[256];

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void make_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_runc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A bundle: rootfs with a file, a hard link, symlinks (one climbing above /), a fifo, a dir. */
static void make_rootfs(const char *root)
{
	char p[512], q[512];

	ck_assert_int_eq(mkdir(root, 0755), 0);
	snprintf(p, sizeof(p), "%s/bin", root);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/bin/tool", root);
	write_file(p, "#!/bin/sh\necho tool\n");
	ck_assert_int_eq(chmod(p, 0751), 0);
	snprintf(q, sizeof(q), "%s/bin/tool2", root);
	ck_assert_int_eq(link(p, q), 0);
	snprintf(p, sizeof(p), "%s/bin/up", root);
	ck_assert_int_eq(symlink("../../../etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/sbin", root);
	ck_assert_int_eq(symlink("bin", p), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/etc", root);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/etc/hosts", root);
	write_file(p, "old\n");
}

START_TEST(rootfs_build)
{
	char root[512], img[512], host[512], ro[512], agent[512], spec[2048];
	struct fstree *t;
	struct fstree_node *n;

	make_tmp();
	snprintf(root, sizeof(root), "%s/rootfs", tmpdir);
	make_rootfs(root);
	snprintf(host, sizeof(host), "%s/hosts", tmpdir);
	write_file(host, "127.0.0.1 new\n");
	snprintf(ro, sizeof(ro), "%s/ro", tmpdir);
	ck_assert_int_eq(mkdir(ro, 0700), 0);
	snprintf(agent, sizeof(agent), "%s/ro/secret", tmpdir);
	write_file(agent, "s3cret");
	snprintf(agent, sizeof(agent), "%s/agent", tmpdir);
	write_file(agent, "\177ELF-agent");
	snprintf(spec, sizeof(spec),
		 "{" V "," P "," R ",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"},"
		 "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"%s\"},"
		 "{\"destination\":\"/var/secrets\",\"type\":\"bind\",\"source\":\"%s\","
		 "\"options\":[\"rbind\",\"ro\"]},{\"destination\":\"/cache\",\"type\":\"tmpfs\"}]}",
		 host, ro);
	ck_assert_int_eq(runc_spec_parse(spec, strlen(spec), &S, E, sizeof(E)), 0);
	snprintf(img, sizeof(img), "%s/rootfs.img", tmpdir);
	ck_assert_msg(runc_rootfs_build(&S, root, agent, tmpdir, img, E, sizeof(E)) == 0, "%s", E);
	runc_spec_free(&S);

	ck_assert_int_eq(fstree_new(tmpdir, NULL, &t, E, sizeof(E)), 0);
	ck_assert_msg(ext4img_read(img, t, E, sizeof(E)) == 0, "%s", E);
	n = fstree_lookup(t, "bin/tool");
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->mode, 0751);
	ck_assert_uint_eq(n->size, 20);
	ck_assert_uint_ne(n->link_id, 0);
	ck_assert_uint_eq(fstree_lookup(t, "bin/tool2")->link_id, n->link_id);
	n = fstree_lookup(t, "bin/up");
	ck_assert_int_eq(n->type, TAR_SYMLINK);
	ck_assert_str_eq(n->link, "/etc/passwd");
	ck_assert_int_eq(fstree_lookup(t, "sbin")->type, TAR_SYMLINK);
	ck_assert_int_eq(fstree_lookup(t, "fifo")->type, TAR_FIFO);
	/* the agent went through the sbin -> bin symlink */
	n = fstree_lookup(t, "bin/minivm-init");
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->mode, 0755);
	n = fstree_lookup(t, "etc/hosts");
	ck_assert_uint_eq(n->size, strlen("127.0.0.1 new\n"));
	ck_assert_ptr_nonnull(fstree_lookup(t, "var/secrets/secret"));
	ck_assert_int_eq(fstree_lookup(t, "cache")->type, TAR_DIR);
	ck_assert_int_eq(fstree_lookup(t, "proc")->type, TAR_DIR);
	ck_assert_uint_eq(fstree_lookup(t, "tmp")->mode, 01777);
	fstree_free(t);
	rm_tmp();
}
END_TEST

START_TEST(rootfs_refusals)
{
	char root[512], img[512], agent[512], spec[2048];

	make_tmp();
	snprintf(root, sizeof(root), "%s/rootfs", tmpdir);
	make_rootfs(root);
	snprintf(agent, sizeof(agent), "%s/agent", tmpdir);
	write_file(agent, "agent");
	snprintf(img, sizeof(img), "%s/rootfs.img", tmpdir);
	/* a writable bind of a directory */
	snprintf(spec, sizeof(spec), "{" V "," P "," R ",\"mounts\":[{\"destination\":\"/data\","
				     "\"type\":\"bind\",\"source\":\"%s\"}]}", tmpdir);
	ck_assert_int_eq(runc_spec_parse(spec, strlen(spec), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_rootfs_build(&S, root, agent, tmpdir, img, E, sizeof(E)), -EINVAL);
	ck_assert_msg(strstr(E, "a VM shares no host directory"), "%s", E);
	ck_assert_int_ne(access(img, F_OK), 0);
	runc_spec_free(&S);
	/* a missing bind source, a missing agent */
	snprintf(spec, sizeof(spec), "{" V "," P "," R ",\"mounts\":[{\"destination\":\"/etc/x\","
				     "\"type\":\"bind\",\"source\":\"/nonexistent/x\"}]}");
	ck_assert_int_eq(runc_spec_parse(spec, strlen(spec), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_rootfs_build(&S, root, agent, tmpdir, img, E, sizeof(E)), -ENOENT);
	ck_assert_msg(strstr(E, "bind source /nonexistent/x"), "%s", E);
	runc_spec_free(&S);
	snprintf(spec, sizeof(spec), "{" V "," P "," R "}");
	ck_assert_int_eq(runc_spec_parse(spec, strlen(spec), &S, E, sizeof(E)), 0);
	ck_assert_int_eq(runc_rootfs_build(&S, root, "/nonexistent/agent", tmpdir, img, E,
					   sizeof(E)), -ENOENT);
	ck_assert_msg(strstr(E, "MINIVM_AGENT_INIT"), "%s", E);
	runc_spec_free(&S);
	rm_tmp();
}
END_TEST

/* ---- create / state / kill / delete without a boot (the init waits for start) ---- */

static int run_runc(const char *const *v, char *out, size_t outsz)
{
	int p[2], status, n = 0;
	pid_t pid;

	while (v[n])
		n++;
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		_exit(runc_main(n, (char **)v));
	}
	close(p[1]);
	if (out) {
		ssize_t got = 0, r;

		while ((r = read(p[0], out + got, outsz - 1 - (size_t)got)) > 0)
			got += r;
		out[got] = '\0';
	}
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool log_has_error(const char *log, const char *msg)
{
	char buf[8192], *last = NULL, *line;
	int fd = open(log, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* go-runc reads the last line whose level is error */
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "{\"level\":\"error\",\"msg\":\"", 24) == 0 && strstr(line, "\"time\":\""))
			last = line;
	return last && strstr(last, msg);
}

START_TEST(lifecycle)
{
	char root[512], bundle[512], rootfs[512], pidf[512], log[512], cfg[600], agent[512];
	char kernel[512], out[4096];
	pid_t init;
	FILE *f;

	/* As the shim: the init, orphaned when create exits, becomes our child. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	make_tmp();
	snprintf(root, sizeof(root), "%s/state", tmpdir);
	snprintf(bundle, sizeof(bundle), "%s/bundle", tmpdir);
	snprintf(rootfs, sizeof(rootfs), "%s/bundle/rootfs", tmpdir);
	snprintf(pidf, sizeof(pidf), "%s/pid", tmpdir);
	snprintf(log, sizeof(log), "%s/log.json", tmpdir);
	snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
	snprintf(agent, sizeof(agent), "%s/agent", tmpdir);
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmpdir);
	ck_assert_int_eq(mkdir(bundle, 0755), 0);
	write_file(agent, "agent");
	write_file(kernel, "kernel");
	setenv("MINIVM_AGENT_INIT", agent, 1);
	setenv("MINIVM_KERNEL", kernel, 1);
	write_file(cfg, "{" V ",\"process\":{\"args\":[\"sleep\",\"1\"]}," R
			",\"annotations\":{\"a\":\"b\"}}");
	{
		const char *v[] = { "minivm-runc", "--root", root, "--log", log, "--log-format", "json",
				    "create", "--bundle", bundle, "--pid-file", pidf, "c1", NULL };

		/* no rootfs yet */
		ck_assert_int_eq(run_runc(v, NULL, 0), 1);
		ck_assert(log_has_error(log, "has no rootfs"));
		make_rootfs(rootfs);
		ck_assert_int_eq(run_runc(v, NULL, 0), 0);
		/* the same id again */
		ck_assert_int_eq(run_runc(v, NULL, 0), 1);
		ck_assert(log_has_error(log, "already exists"));
	}
	f = fopen(pidf, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &init), 1);
	fclose(f);
	{
		const char *v[] = { "minivm-runc", "--root", root, "state", "c1", NULL };

		ck_assert_int_eq(run_runc(v, out, sizeof(out)), 0);
		ck_assert_msg(strstr(out, "\"status\":\"created\""), "%s", out);
		ck_assert(strstr(out, "\"annotations\":{\"a\":\"b\"}"));
	}
	{
		const char *v[] = { "minivm-runc", "--root", root, "ps", "--format", "json", "c1", NULL };
		char want[32];

		ck_assert_int_eq(run_runc(v, out, sizeof(out)), 0);
		snprintf(want, sizeof(want), "[%d]\n", (int)init);
		ck_assert_str_eq(out, want);
	}
	{
		const char *v[] = { "minivm-runc", "--root", root, "--log", log, "--log-format", "json",
				    "state", "nope", NULL };
		const char *d[] = { "minivm-runc", "--root", root, "--log", log, "--log-format", "json",
				    "delete", "nope", NULL };
		const char *df[] = { "minivm-runc", "--root", root, "delete", "--force", "nope", NULL };

		ck_assert_int_eq(run_runc(v, NULL, 0), 1);
		ck_assert(log_has_error(log, "container \\\"nope\\\" does not exist"));
		ck_assert_int_eq(run_runc(d, NULL, 0), 1);
		ck_assert_int_eq(run_runc(df, NULL, 0), 0);
	}
	{
		const char *k[] = { "minivm-runc", "--root", root, "kill", "c1", "KILL", NULL };
		const char *s[] = { "minivm-runc", "--root", root, "state", "c1", NULL };
		const char *k2[] = { "minivm-runc", "--root", root, "--log", log, "--log-format", "json",
				     "kill", "c1", NULL };
		const char *d[] = { "minivm-runc", "--root", root, "delete", "c1", NULL };
		int status;

		ck_assert_int_eq(run_runc(k, NULL, 0), 0);
		/* the init is this process's child here (the shim's elsewhere) */
		ck_assert_int_eq(waitpid(init, &status, 0), init);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		ck_assert_int_eq(run_runc(s, out, sizeof(out)), 0);
		ck_assert_msg(strstr(out, "\"status\":\"stopped\",\"pid\":0"), "%s", out);
		ck_assert_int_eq(run_runc(k2, NULL, 0), 1);
		ck_assert(log_has_error(log, "container not running"));
		ck_assert_int_eq(run_runc(d, NULL, 0), 0);
		snprintf(out, sizeof(out), "%s/c1", root);
		ck_assert_int_ne(access(out, F_OK), 0);
	}
	unsetenv("MINIVM_AGENT_INIT");
	unsetenv("MINIVM_KERNEL");
	rm_tmp();
}
END_TEST

START_TEST(log_text)
{
	char log[512], buf[1024];
	const char *v[] = { "minivm-runc", "--log", log, "frob", NULL };
	int fd;
	ssize_t n;

	make_tmp();
	snprintf(log, sizeof(log), "%s/log.txt", tmpdir);
	ck_assert_int_eq(run_runc(v, NULL, 0), 1);
	fd = open(log, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, "level=error msg=\"unknown command 'frob'\""), "%s", buf);
	ck_assert(strncmp(buf, "time=\"", 6) == 0);
	rm_tmp();
}
END_TEST

static Suite *runc_suite(void)
{
	Suite *s = suite_create("runc");
	TCase *args = tcase_create("args");
	TCase *spec = tcase_create("spec");
	TCase *host = tcase_create("host");

	tcase_add_test(args, args_globals);
	tcase_add_test(args, args_defaults);
	tcase_add_test(args, args_create);
	tcase_add_test(args, args_lifecycle);
	tcase_add_test(args, args_exec);
	tcase_add_test(args, args_info);
	tcase_add_test(args, args_bad);
	tcase_add_test(args, signals_and_ids);
	tcase_add_test(args, selected);
	tcase_add_test(spec, spec_good);
	tcase_add_test(spec, spec_minimal);
	tcase_add_test(spec, spec_refusals);
	tcase_add_test(spec, spec_bounds);
	tcase_add_test(spec, process_json);
	tcase_add_test(spec, vm_size);
	tcase_add_test(spec, state_json);
	tcase_add_test(host, rootfs_build);
	tcase_add_test(host, rootfs_refusals);
	tcase_add_test(host, lifecycle);
	tcase_add_test(host, log_text);
	tcase_set_timeout(host, 60);
	suite_add_tcase(s, args);
	suite_add_tcase(s, spec);
	suite_add_tcase(s, host);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(runc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
