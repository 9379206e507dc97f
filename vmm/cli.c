/* Command-line parsing for minivm (pure, table-free, no getopt state). */
#include "vmm/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char cli_usage[] =
	"Usage: minivm --kernel KERNEL [--rootfs IMAGE] [--run 'PROG ARGS'] [options]\n"
	"\n"
	"Boots a Linux kernel in a KVM microVM, runs a program in it and exits with\n"
	"the program's status.\n"
	"\n"
	"Options:\n"
	"  --kernel PATH        kernel: a bzImage or an ELF vmlinux (booted via PVH)\n"
	"  --rootfs PATH[,rw]   root filesystem image (ext4), the guest's /dev/vda;\n"
	"                       read-only unless ,rw is given (the guest's /tmp and\n"
	"                       /run are tmpfs)\n"
	"  --disk PATH[,ro]     an extra disk (/dev/vdb, ...); repeatable, up to 7\n"
	"  --run 'PROG ARGS'    program for the guest's init to run; its exit status\n"
	"                       becomes minivm's (words split like a shell, no expansion)\n"
	"  --mem SIZE           guest memory, e.g. 512M or 1G (default 256M)\n"
	"  --cpus N             number of vCPUs, 1-32 (default 1)\n"
	"  --cmdline STR        appended to the kernel command line\n"
	"  --console FILE       write the guest console there (default: stderr)\n"
	"  --emulated MODE      auto|yes|no: whether the host emulates guest kernel\n"
	"                       code (adds the guest switches it needs; default auto,\n"
	"                       decided by a probe through the KVM API)\n"
	"  --timings            print the boot phases on stderr at exit\n"
	"  -v, --verbose        say what minivm does (twice: more)\n"
	"  -h, --help           this text\n"
	"  --version            the version\n"
	"\n"
	"Exit status:\n"
	"  0-255  the status the guest program exited with (128+N: killed by signal N;\n"
	"         126: not executable; 127: not found)\n"
	"  123    the guest crashed: it reset or shut down without reporting a status\n"
	"         (kernel panic, triple fault, init died)\n"
	"  125    minivm itself failed (bad arguments, a file it cannot use, KVM error)\n";

int cli_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -EINVAL;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K': mul = 1ULL << 10; p++; break;
	case 'm': case 'M': mul = 1ULL << 20; p++; break;
	case 'g': case 'G': mul = 1ULL << 30; p++; break;
	case 't': case 'T': mul = 1ULL << 40; p++; break;
	default:
		return -EINVAL;
	}
	if (mul > 1 && (!strcmp(p, "iB") || !strcmp(p, "B")))
		p += strlen(p);
	if (*p || __builtin_mul_overflow(v, mul, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

static int cli_parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	unsigned long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

/* --disk PATH[,ro]: splits the option in place is not allowed (argv is
 * const), so the path is the whole string unless it ends in ",ro"/",rw". */
static int cli_parse_disk(const char *arg, struct minivm_disk *d, char *pathbuf, size_t cap)
{
	size_t len = strlen(arg);

	d->read_only = false;
	d->read_write = false;
	if (len >= 3 && !strcmp(arg + len - 3, ",ro")) {
		d->read_only = true;
		len -= 3;
	} else if (len >= 3 && !strcmp(arg + len - 3, ",rw")) {
		d->read_write = true;
		len -= 3;
	}
	if (len == 0 || len >= cap)
		return -EINVAL;
	memcpy(pathbuf, arg, len);
	pathbuf[len] = '\0';
	d->path = pathbuf;
	return 0;
}

int cli_parse(int argc, char *const argv[], struct cli *out, char *err, size_t errlen)
{
	bool seen_mem = false, seen_cpus = false, seen_emul = false;
	struct minivm_config *c = &out->cfg;

	memset(out, 0, sizeof(*out));
	minivm_config_init(c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		size_t nlen;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			out->action = CLI_HELP;
			return 0;
		}
		if (!strcmp(a, "--version")) {
			out->action = CLI_VERSION;
			return 0;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			c->verbose++;
			continue;
		}
		if (!strcmp(a, "-vv")) {
			c->verbose += 2;
			continue;
		}
		if (!strcmp(a, "--timings")) {
			out->print_timings = c->timings = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
			return -EINVAL;
		}
		/* --name=value or --name value */
		eq = strchr(a, '=');
		nlen = eq ? (size_t)(eq - a) : strlen(a);
		if (nlen >= sizeof(name)) {
			snprintf(err, errlen, "unknown option '%s' (see --help)", a);
			return -EINVAL;
		}
		memcpy(name, a, nlen);
		name[nlen] = '\0';
		if (strcmp(name, "--kernel") && strcmp(name, "--rootfs") && strcmp(name, "--disk") &&
		    strcmp(name, "--run") && strcmp(name, "--mem") && strcmp(name, "--cpus") &&
		    strcmp(name, "--cmdline") && strcmp(name, "--console") &&
		    strcmp(name, "--emulated")) {
			snprintf(err, errlen, "unknown option '%s' (see --help)", name);
			return -EINVAL;
		}
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '%s' needs a value", name);
				return -EINVAL;
			}
			val = argv[++i];
		}

#define CLI_ONCE(field)                                                                   \
	do {                                                                              \
		if (c->field) {                                                           \
			snprintf(err, errlen, "option '%s' given twice", name);           \
			return -EINVAL;                                                   \
		}                                                                         \
		if (!*val) {                                                              \
			snprintf(err, errlen, "option '%s' needs a non-empty value", name); \
			return -EINVAL;                                                   \
		}                                                                         \
		c->field = val;                                                           \
	} while (0)

		if (!strcmp(name, "--kernel")) {
			CLI_ONCE(kernel);
		} else if (!strcmp(name, "--rootfs")) {
			struct minivm_disk d;

			if (c->rootfs) {
				snprintf(err, errlen, "option '--rootfs' given twice");
				return -EINVAL;
			}
			if (cli_parse_disk(val, &d, out->rootfs_path, sizeof(out->rootfs_path))) {
				snprintf(err, errlen, "bad --rootfs '%s' (expected PATH or PATH,rw)", val);
				return -EINVAL;
			}
			c->rootfs = d.path;
			c->rootfs_rw = d.read_write;
		} else if (!strcmp(name, "--run")) {
			CLI_ONCE(run);
		} else if (!strcmp(name, "--cmdline")) {
			CLI_ONCE(cmdline);
		} else if (!strcmp(name, "--console")) {
			CLI_ONCE(console);
		} else if (!strcmp(name, "--disk")) {
			if (c->nr_disks >= MINIVM_MAX_DISKS - 1) {
				snprintf(err, errlen, "too many --disk options (at most %d)",
					 MINIVM_MAX_DISKS - 1);
				return -EINVAL;
			}
			if (cli_parse_disk(val, &c->disks[c->nr_disks], out->disk_paths[c->nr_disks],
					   sizeof(out->disk_paths[0]))) {
				snprintf(err, errlen, "bad --disk '%s' (expected PATH or PATH,ro)", val);
				return -EINVAL;
			}
			c->nr_disks++;
		} else if (!strcmp(name, "--mem")) {
			uint64_t m;

			if (seen_mem) {
				snprintf(err, errlen, "option '--mem' given twice");
				return -EINVAL;
			}
			seen_mem = true;
			if (cli_parse_size(val, &m)) {
				snprintf(err, errlen, "bad --mem '%s' (expected a size like 256M or 1G)", val);
				return -EINVAL;
			}
			if (m < CLI_MIN_MEM || m > CLI_MAX_MEM || (m & 0xfffff)) {
				snprintf(err, errlen,
					 "--mem %s out of range (a whole number of MiB from 32M to 64G)",
					 val);
				return -EINVAL;
			}
			c->mem_bytes = m;
		} else if (!strcmp(name, "--cpus")) {
			if (seen_cpus) {
				snprintf(err, errlen, "option '--cpus' given twice");
				return -EINVAL;
			}
			seen_cpus = true;
			if (cli_parse_uint(val, MINIVM_MAX_CPUS, &c->cpus) || c->cpus == 0) {
				snprintf(err, errlen, "bad --cpus '%s' (expected 1 to %d)", val,
					 MINIVM_MAX_CPUS);
				return -EINVAL;
			}
		} else if (!strcmp(name, "--emulated")) {
			if (seen_emul) {
				snprintf(err, errlen, "option '--emulated' given twice");
				return -EINVAL;
			}
			seen_emul = true;
			if (!strcmp(val, "auto"))
				c->emul = MINIVM_EMUL_AUTO;
			else if (!strcmp(val, "yes"))
				c->emul = MINIVM_EMUL_YES;
			else if (!strcmp(val, "no"))
				c->emul = MINIVM_EMUL_NO;
			else {
				snprintf(err, errlen, "bad --emulated '%s' (expected auto, yes or no)", val);
				return -EINVAL;
			}
		}
#undef CLI_ONCE
	}
	if (!c->kernel) {
		snprintf(err, errlen, "--kernel is required (see --help)");
		return -EINVAL;
	}
	return 0;
}
