/* Command-line parsing for minivm (pure, table-free, no getopt state). */
#include "vmm/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/net_policy.h"
#include "devices/ratelimit.h"

const char cli_usage[] =
	"Usage: minivm --kernel KERNEL --rootfs IMAGE --agent 'CMD ARGS' [options]\n"
	"       minivm --kernel KERNEL --rootfs IMAGE [options] -- CMD [ARGS...]\n"
	"       minivm --kernel KERNEL [--rootfs IMAGE] --run 'PROG ARGS' [options]\n"
	"       minivm --restore DIR | --template NAME --agent 'CMD ARGS' [options]\n"
	"       minivm template create NAME --kernel KERNEL --rootfs IMAGE [options]\n"
	"       minivm --api-sock PATH [jail options] [-v] [--log-format json]\n"
	"\n"
	"Boots a Linux kernel in a KVM microVM, runs a command in it and exits with\n"
	"the command's status. With --agent (or --), the guest agent runs the command\n"
	"over vsock: its stdout and stderr stream to minivm's, minivm's stdin goes to\n"
	"it, and the kernel console goes to a log file (see --console), never into\n"
	"the command's output. With --run, the guest's init runs the program itself\n"
	"and the console is minivm's stderr (the mode for VMMs without vsock).\n"
	"\n"
	"The command (--agent / --):\n"
	"  --agent 'CMD ARGS'   split into words like a shell would, without any\n"
	"                       expansion; no shell is needed in the guest\n"
	"  -- CMD [ARGS...]     the exact argv (ends minivm's own options)\n"
	"  --env K=V            set a variable for the command; repeatable\n"
	"  --workdir DIR        its working directory in the guest (default /)\n"
	"  --user USER[:GROUP]  run it as this guest user (name or number; default root)\n"
	"  --timeout SECONDS    kill it after this long; minivm then exits 124\n"
	"  --tty                give it a pseudo-terminal (stdout and stderr merge)\n"
	"  --boot-timeout SECS  give up when the agent is not ready after this long\n"
	"                       (default 600: emulating hosts boot in about a minute)\n"
	"  --scratch MODE       the writable layer over the read-only root (the guest\n"
	"                       sees an overlay; what the command changed is upper/):\n"
	"                       disk (default: a sparse ext4 disk in the run\n"
	"                       directory, removed at exit), tmpfs (guest RAM), none\n"
	"                       (the root as it is: read-only unless ,rw)\n"
	"  --scratch-size SIZE  its quota: the disk's size (default 1G, sparse) or the\n"
	"                       tmpfs' limit (default: half the guest's RAM)\n"
	"\n"
	"Images and workspaces (see README, \"Images and workspaces\"):\n"
	"  --rootfs oci:DIR[:TAG], --rootfs oci-archive:FILE[:TAG]\n"
	"                       boot an OCI image: its layers (digests checked first)\n"
	"                       become a read-only ext4 root with the agent added,\n"
	"                       cached by manifest digest ($MINIVM_CACHE, default\n"
	"                       ~/.cache/minivm) so the next start is immediate\n"
	"  --save oci:DIR[:TAG] | oci-archive:FILE[:TAG]\n"
	"                       after the command, write the changed root as an OCI\n"
	"                       image: the base image's layers (or the ext4 root as\n"
	"                       one) plus a layer of what changed; atomic: DEST is\n"
	"                       the old one or the complete new one, never half\n"
	"  --workspace HOSTDIR[:GUESTDIR]  copy HOSTDIR into the guest (default\n"
	"                       GUESTDIR /workspace) before the command; HOSTDIR is\n"
	"                       never written unless --apply\n"
	"  --changes FILE       write what the command changed in the copy as a\n"
	"                       git-style unified diff (git apply takes it)\n"
	"  --apply              then make HOSTDIR equal to the guest's copy\n"
	"  --workspace-respect-gitignore  leave out what .gitignore files ignore (and\n"
	"                       .git/) when copying in, diffing and applying\n"
	"\n"
	"Snapshots (see vmm/SNAPSHOT.md):\n"
	"  --snapshot-after-ready DIR  once the agent answers (a real round trip),\n"
	"                       pause the VM, write a snapshot into DIR (guest memory,\n"
	"                       the state file, copies of writable disks), resume\n"
	"                       and run the command as usual. Not with --net\n"
	"  --restore DIR        start from the snapshot in DIR instead of booting:\n"
	"                       memory is mapped copy-on-write (clones share it), the\n"
	"                       machine and devices resume, the guest's clock is set\n"
	"                       and its random state reseeded, then the command runs.\n"
	"                       The snapshot names the kernel, disks, memory and\n"
	"                       vCPUs: no --kernel, --rootfs, --disk, --mem, --cpus,\n"
	"                       --cmdline, --scratch or --net. Read-only disks must\n"
	"                       be unchanged; each restore gets its own copy of the\n"
	"                       writable ones\n"
	"  --template NAME      --restore of the template NAME\n"
	"  minivm template create NAME [boot options]\n"
	"                       boot once with the agent, snapshot into\n"
	"                       $MINIVM_CACHE/templates/NAME (default ~/.cache/minivm),\n"
	"                       power off; NAME: letters, digits, '.', '_', '-'\n"
	"\n"
	"The machine:\n"
	"  --kernel PATH        kernel: a bzImage or an ELF vmlinux (booted via PVH)\n"
	"  --rootfs PATH[,rw][,LIMITS]  root filesystem image (ext4), the guest's\n"
	"                       /dev/vda; read-only unless ,rw is given (the guest's\n"
	"                       /tmp, /run and /scratch are tmpfs)\n"
	"  --disk PATH[,ro][,LIMITS]  an extra disk (/dev/vdb, ...); repeatable, up to 7\n"
	"                       LIMITS throttle a disk (token buckets, as Firecracker's;\n"
	"                       the guest sees a slower disk, never an error):\n"
	"                         bw=RATE       bytes per second read plus written,\n"
	"                                       K, M, G, T binary (bw=64K, bw=10M)\n"
	"                         iops=N        requests per second\n"
	"                         bw-burst=SIZE, iops-burst=N  a one-time extra\n"
	"                                       allowance on top, spent first\n"
	"                         bw-refill=T, iops-refill=T  the refill period, 1ms\n"
	"                                       to 3600s (default 1s): a bucket holds\n"
	"                                       rate x period, the most a burst of\n"
	"                                       requests gets at once after idling\n"
	"                       e.g. --disk data.img,bw=10M,iops=100,bw-burst=64M\n"
	"  --run 'PROG ARGS'    program for the guest's init to run; its exit status\n"
	"                       becomes minivm's (words split like a shell, no expansion)\n"
	"  --mem SIZE           guest memory, e.g. 512M or 1G (default 256M)\n"
	"  --cpus N             number of vCPUs, 1-32 (default 1)\n"
	"  --vm-timeout TIME    stop the whole VM (boot, command, shutdown) after TIME:\n"
	"                       seconds, or with a unit: 500ms, 90s, 10m, 2h; minivm\n"
	"                       then exits 122. Works with --agent and --run; unlike\n"
	"                       --timeout it also bounds a boot that hangs\n"
	"  --vsock PATH         a virtio-vsock device whose host side is the Unix socket\n"
	"                       PATH (Firecracker's form: connect, send 'CONNECT PORT\\n',\n"
	"                       read 'OK ...'; guest connections to host port P go to\n"
	"                       PATH_P). With --agent, minivm makes a private one when\n"
	"                       this is not given\n"
	"  --cmdline STR        appended to the kernel command line\n"
	"  --console FILE       write the guest console there (default: stderr with\n"
	"                       --run; with --agent a log in minivm's private run\n"
	"                       directory, whose end is printed if the guest fails)\n"
	"  --emulated MODE      auto|yes|no: whether the host emulates guest kernel\n"
	"                       code (adds the guest switches it needs; default auto,\n"
	"                       decided by a probe through the KVM API)\n"
	"  --timings            print the boot phases on stderr at exit (with\n"
	"                       --restore: the restore's phases, VMM and guest apart)\n"
	"  -v, --verbose        say what minivm does (twice: more)\n"
	"  --log-format FMT     minivm's own messages on stderr (errors, warnings,\n"
	"                       --verbose, --timings): text (default, \"minivm: ...\")\n"
	"                       or json, one object a line: {\"ts\" (RFC 3339 UTC, ms),\n"
	"                       \"level\", \"msg\", \"event\" and its fields, e.g.\n"
	"                       \"event\":\"timing\",\"phase\":\"kernel\",\"ms\":512.3}.\n"
	"                       The command's own stdout and stderr stay as they are\n"
	"  -h, --help           this text\n"
	"  --version            the version\n"
	"\n"
	"The network (none without --net; see README, \"The network\"):\n"
	"  --net tap=NAME,ip=ADDR/LEN,gw=ADDR[,dns=ADDR][,mac=MAC][,LIMITS]\n"
	"                       a virtio-net NIC on the existing TAP device NAME (its\n"
	"                       host side, addresses and any NAT are yours to set up);\n"
	"                       the guest's agent configures eth0, the default route\n"
	"                       and /etc/resolv.conf from ip=, gw= and dns=. MAC: a\n"
	"                       random locally administered one unless given. LIMITS:\n"
	"                       rx-bw=RATE, tx-bw=RATE (bytes/s), rx-pps=N, tx-pps=N\n"
	"                       (frames/s), each with -burst= and -refill= as a disk's\n"
	"  --allow CIDR[:PORT[/tcp|udp]]  let the guest send to these addresses (and\n"
	"                       port, TCP and/or UDP); repeatable. Everything else is\n"
	"                       denied: TCP is answered with a reset and UDP with ICMP\n"
	"                       port unreachable, so the workload fails at once, and\n"
	"                       minivm logs each denied destination once\n"
	"  --allow-dns          queries to the dns= resolver (port 53) only\n"
	"  --net-policy FILE    more rules, one per line ('#' comments, 'allow-dns')\n"
	"\n"
	"The control socket (see vmm/API.md, README \"The control socket\"):\n"
	"  --api-sock PATH      serve JSON over HTTP/1.1 on the Unix socket PATH: a\n"
	"                       client configures the VM (PUT /boot, /rootfs, ...),\n"
	"                       starts it, runs commands (POST /exec, output\n"
	"                       streamed), pauses, resumes, reads /metrics and\n"
	"                       /events, stops it. Only the jail's options,\n"
	"                       --verbose and --log-format go with it: no machine\n"
	"                       options, --agent, --run or -- CMD (the socket says\n"
	"                       what runs). minivm exits 2 s after the VM ended\n"
	"                       (see Exit status) or on SIGINT/SIGTERM/SIGHUP (the\n"
	"                       VM is stopped first); the socket file is removed\n"
	"\n"
	"The jail (the VMM process; see README, \"Security model\"):\n"
	"  --no-jail            run the VMM process unjailed (default when root: jailed)\n"
	"  --jail               fail instead of warning when a jail step cannot be\n"
	"                       applied (not root, no namespaces, ...)\n"
	"  --uid N, --gid N     the jailed VMM's uid and gid (default 99900 each)\n"
	"  --cpu-quota PCT      cgroup v2 cpu.max for the VM, percent of one CPU\n"
	"                       (150: one and a half); where cgroup v2 is writable\n"
	"\n"
	"Exit status:\n"
	"  0-255  the status the command exited with (128+N: killed by signal N)\n"
	"  124    the command ran past --timeout and was killed\n"
	"  126    the command was found but could not be executed\n"
	"  127    the command was not found in the guest\n"
	"  122    the VM ran past --vm-timeout and was stopped (not 124, so a caller can\n"
	"         tell the whole VM's limit from the command's --timeout)\n"
	"  123    the guest crashed: it reset or shut down without reporting a status\n"
	"         (kernel panic, triple fault, init died), or died under the agent\n"
	"  125    minivm itself failed (bad arguments, a file it cannot use, KVM\n"
	"         error, no agent answer within --boot-timeout)\n"
	"  130, 143  minivm was interrupted (SIGINT, SIGTERM): the VM was stopped\n"
	"  With --api-sock: 0 when a client stopped the VM (POST /stop); the\n"
	"  guest's status when it powered off with one; 122, 123, 125 and 128+N as\n"
	"  above for a VM that ran past its vm_timeout_ms, crashed or failed\n";

/*
 * "HOSTDIR[:GUESTDIR]": GUESTDIR after the last ':' when it is absolute
 * (so a HOSTDIR with ':' in it still works without one). GUESTDIR must be
 * absolute, not "/", without "." or ".." components; 0 or -EINVAL.
 */
static int cli_parse_workspace(const char *val, struct cli *out, char *err, size_t errlen)
{
	const char *colon = strrchr(val, ':'), *guest = CLI_WS_GUEST;
	size_t hlen = strlen(val);

	if (colon && colon[1] == '/') {
		guest = colon + 1;
		hlen = (size_t)(colon - val);
	}
	if (!hlen || hlen >= sizeof(out->ws_host)) {
		snprintf(err, errlen, "bad --workspace '%s' (expected HOSTDIR[:GUESTDIR])", val);
		return -EINVAL;
	}
	if (strlen(guest) >= sizeof(out->ws_guest) || !strcmp(guest, "/") ||
	    strstr(guest, "/../") || strstr(guest, "/./") || strstr(guest, "//") ||
	    (strlen(guest) >= 3 && !strcmp(guest + strlen(guest) - 3, "/..")) ||
	    (strlen(guest) >= 2 && !strcmp(guest + strlen(guest) - 2, "/."))) {
		snprintf(err, errlen, "bad --workspace guest directory '%s' (an absolute path "
				      "other than /, without . or .. components)", guest);
		return -EINVAL;
	}
	memcpy(out->ws_host, val, hlen);
	out->ws_host[hlen] = '\0';
	strcpy(out->ws_guest, guest);
	/* A trailing '/' would make "GUESTDIR/x" paths doubled. */
	for (size_t n = strlen(out->ws_guest); n > 1 && out->ws_guest[n - 1] == '/'; n--)
		out->ws_guest[n - 1] = '\0';
	return 0;
}

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

/* Decimal digits only, at most max. */
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

/* --disk / --rootfs PATH[,OPTION...]: argv is const, so the path is copied
 * without its options, which are peeled off the end (a path may hold
 * commas): "ro", "rw" and a rate limit's KEY=VALUE (devices/ratelimit.h).
 * A trailing ",WORD=..." with an unknown WORD is an error, not a path. */
static int cli_parse_disk(const char *name, const char *arg, struct minivm_disk *d, char *pathbuf,
			  size_t cap, char *err, size_t errlen)
{
	size_t len = strlen(arg);
	unsigned int seen = 0;
	struct rl_config rl;
	char why[200];

	memset(d, 0, sizeof(*d));
	for (;;) {
		const char *comma = memrchr(arg, ',', len), *o;
		size_t olen;
		int r;

		if (!comma)
			break;
		o = comma + 1;
		olen = len - (size_t)(o - arg);
		if ((olen == 2 && !memcmp(o, "ro", 2)) || (olen == 2 && !memcmp(o, "rw", 2))) {
			if (d->read_only || d->read_write)
				break; /* "PATH,ro,ro": the path ends in ",ro" */
			d->read_only = o[1] == 'o';
			d->read_write = o[1] == 'w';
		} else {
			r = rl_parse_option(o, olen, &d->limit, &seen, why, sizeof(why));
			if (r < 0) {
				snprintf(err, errlen, "bad %s '%s': %s", name, arg, why);
				return -EINVAL;
			}
			if (r > 0 && memchr(o, '=', olen)) {
				snprintf(err, errlen, "bad %s '%s': unknown option '%.*s' (expected ro, rw, "
					 "bw=, bw-burst=, bw-refill=, iops=, iops-burst=, iops-refill=)",
					 name, arg, (int)(olen > 64 ? 64 : olen), o);
				return -EINVAL;
			}
			if (r > 0)
				break; /* part of the path */
		}
		len = (size_t)(comma - arg);
	}
	if (rl_config_from_limit(&d->limit, &rl, why, sizeof(why))) {
		snprintf(err, errlen, "bad %s '%s': %s", name, arg, why);
		return -EINVAL;
	}
	if (len == 0 || len >= cap) {
		snprintf(err, errlen, "bad %s '%s' (expected PATH[,ro|rw][,bw=RATE][,iops=N]...)",
			 name, arg);
		return -EINVAL;
	}
	memcpy(pathbuf, arg, len);
	pathbuf[len] = '\0';
	d->path = pathbuf;
	return 0;
}

/* mac=XX:XX:XX:XX:XX:XX, unicast and not all zero. */
static int cli_parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	unsigned int any = 0;

	if (len != 17)
		return -EINVAL;
	for (unsigned int i = 0; i < 6; i++) {
		unsigned int v = 0;

		for (unsigned int j = 0; j < 2; j++) {
			char ch = s[i * 3 + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= (unsigned int)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				v |= (unsigned int)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				v |= (unsigned int)(ch - 'A' + 10);
			else
				return -EINVAL;
		}
		if (i < 5 && s[i * 3 + 2] != ':')
			return -EINVAL;
		mac[i] = (uint8_t)v;
		any |= v;
	}
	return (mac[0] & 1) || !any ? -EINVAL : 0;
}

/* A NIC rate-limit option: rx-KEY= or tx-KEY= with KEY a disk limit's key
 * (bw, bw-burst, bw-refill) or pps, pps-burst, pps-refill (frames, the
 * disk's iops). 0 parsed, 1 not such a key, -EINVAL bad value. */
static int cli_parse_net_limit(const char *o, size_t olen, struct minivm_net *net, unsigned int seen[2],
			       char *why, size_t whylen)
{
	char key[64];
	size_t klen = 0;
	int dir;

	if (olen < 4 || (memcmp(o, "rx-", 3) && memcmp(o, "tx-", 3)))
		return 1;
	dir = o[0] == 't';
	o += 3;
	olen -= 3;
	if (olen >= 3 && !memcmp(o, "pps", 3)) {
		memcpy(key, "iops", 4);
		klen = 4;
		o += 3;
		olen -= 3;
	}
	if (klen + olen >= sizeof(key))
		return 1;
	memcpy(key + klen, o, olen);
	klen += olen;
	return rl_parse_option(key, klen, dir ? &net->tx_limit : &net->rx_limit, &seen[dir], why, whylen);
}

/* --net tap=NAME,ip=ADDR/LEN,gw=ADDR[,dns=ADDR][,mac=MAC][,LIMITS]: the
 * addresses are checked as the guest's agent will read them
 * (agent_net_parse), so what passes here the guest accepts. */
static int cli_parse_net(const char *arg, struct cli *out, char *err, size_t errlen)
{
	struct minivm_net *net = &out->cfg.net;
	const char *ip = NULL, *gw = NULL, *dns = NULL, *p = arg;
	size_t ip_len = 0, gw_len = 0, dns_len = 0;
	unsigned int seen[2] = { 0, 0 };
	bool have_mac = false;
	struct agent_net an;
	char addrs[64], why[200];
	int n;

	if (net->tap) {
		snprintf(err, errlen, "option '--net' given twice (minivm gives the guest one NIC)");
		return -EINVAL;
	}
	while (*p) {
		const char *comma = strchr(p, ','), *o = p;
		size_t olen = comma ? (size_t)(comma - p) : strlen(p);
		int r;

		p = comma ? comma + 1 : p + olen;
#define CLI_KEY(k) (olen > sizeof(k) - 1 && !memcmp(o, k, sizeof(k) - 1))
		if (CLI_KEY("tap=")) {
			if (out->net_tap[0] || olen - 4 >= sizeof(out->net_tap) || memchr(o + 4, '/', olen - 4)) {
				snprintf(err, errlen, "bad --net '%s': tap= given twice, or not a device name "
					 "(1 to %zu characters, no '/')", arg, sizeof(out->net_tap) - 1);
				return -EINVAL;
			}
			memcpy(out->net_tap, o + 4, olen - 4);
			out->net_tap[olen - 4] = '\0';
		} else if (CLI_KEY("ip=") && !ip) {
			ip = o + 3;
			ip_len = olen - 3;
		} else if (CLI_KEY("gw=") && !gw) {
			gw = o + 3;
			gw_len = olen - 3;
		} else if (CLI_KEY("dns=") && !dns) {
			dns = o + 4;
			dns_len = olen - 4;
		} else if (CLI_KEY("mac=") && !have_mac) {
			if (cli_parse_mac(o + 4, olen - 4, net->mac)) {
				snprintf(err, errlen, "bad --net '%s': mac= must be six hex bytes like "
					 "02:00:00:00:00:01, unicast, not all zero", arg);
				return -EINVAL;
			}
			have_mac = true;
		} else if ((r = cli_parse_net_limit(o, olen, net, seen, why, sizeof(why))) <= 0) {
			if (r < 0) {
				snprintf(err, errlen, "bad --net '%s': %s", arg, why);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "bad --net '%s': unknown or repeated option '%.*s' (expected "
				 "tap=, ip=, gw=, dns=, mac=, and rate limits rx-bw=, rx-pps=, tx-bw=, "
				 "tx-pps= with -burst and -refill forms)", arg, (int)(olen > 64 ? 64 : olen), o);
			return -EINVAL;
		}
#undef CLI_KEY
	}
	if (!out->net_tap[0] || !ip || !gw) {
		snprintf(err, errlen, "bad --net '%s': tap=NAME, ip=ADDR/LEN and gw=ADDR are required",
			 arg);
		return -EINVAL;
	}
	n = snprintf(addrs, sizeof(addrs), "%.*s,%.*s%s%.*s", (int)ip_len, ip, (int)gw_len, gw,
		     dns ? "," : "", (int)dns_len, dns ? dns : "");
	if (n < 0 || (size_t)n >= sizeof(addrs) || agent_net_parse(addrs, (size_t)n, &an)) {
		snprintf(err, errlen, "bad --net '%s': ip=A.B.C.D/LEN (a host address, LEN 1 to 31), "
			 "gw=A.B.C.D in that subnet (not the guest's own), dns=A.B.C.D", arg);
		return -EINVAL;
	}
	if (rl_config_from_limit(&net->rx_limit, &(struct rl_config){ 0 }, why, sizeof(why)) ||
	    rl_config_from_limit(&net->tx_limit, &(struct rl_config){ 0 }, why, sizeof(why))) {
		snprintf(err, errlen, "bad --net '%s': %s", arg, why);
		return -EINVAL;
	}
	net->tap = out->net_tap;
	net->ip = an.ip;
	net->prefix = an.prefix;
	net->gw = an.gw;
	net->dns = an.dns;
	return 0;
}

bool cli_template_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > CLI_TEMPLATE_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* --api-sock PATH and --log-format text|json. */
static int cli_parse_front_opt(const char *name, const char *val, struct cli *out, char *err,
			       size_t errlen)
{
	bool sock = !strcmp(name, "--api-sock");

	if (sock ? out->api_sock != NULL : out->log_format_set) {
		snprintf(err, errlen, "option '%s' given twice", name);
		return -EINVAL;
	}
	if (!sock) {
		out->log_format_set = true;
		if (log_parse_format(val, &out->log_format)) {
			snprintf(err, errlen, "bad --log-format '%s' (expected text or json)", val);
			return -EINVAL;
		}
		return 0;
	}
	if (!*val || strlen(val) >= CLI_API_SOCK_MAX) {
		snprintf(err, errlen, "bad --api-sock '%s' (a Unix socket path of 1 to %d bytes)", val,
			 CLI_API_SOCK_MAX - 1);
		return -EINVAL;
	}
	out->api_sock = val;
	return 0;
}

/* Whether argv's a goes with --api-sock: the jail's options, --verbose,
 * --log-format, --help and --version (the VM is the socket's to configure). */
static bool cli_api_compatible(const char *a)
{
	static const char *const ok[] = { "-v", "-vv", "--verbose", "--jail", "--no-jail", "--uid",
					  "--gid", "--cpu-quota", "--api-sock", "--log-format",
					  "-h", "--help", "--version" };
	size_t n = strcspn(a, "=");

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strlen(ok[i]) == n && !strncmp(a, ok[i], n))
			return true;
	return false;
}

/* The end of a parse with --api-sock: nothing of a run may be there. */
static int cli_check_api(struct cli *out, const char *not_api, char *err, size_t errlen)
{
	if (out->template_create) {
		snprintf(err, errlen, "--api-sock serves a VM configured through the socket: not "
				      "with template create");
		return -EINVAL;
	}
	if (not_api) {
		snprintf(err, errlen, "with --api-sock the VM is configured and its commands run "
				      "through the socket (vmm/API.md): '%.64s' does not go with it (only "
				      "--jail, --no-jail, --uid, --gid, --cpu-quota, --verbose and "
				      "--log-format do)", not_api);
		return -EINVAL;
	}
	out->env[0] = NULL;
	return 0;
}

int cli_parse(int argc, char *const argv[], struct cli *out, char *err, size_t errlen)
{
	bool seen_mem = false, seen_cpus = false, seen_emul = false;
	bool seen_jail = false, seen_uid = false, seen_gid = false;
	struct minivm_config *c = &out->cfg;
	const char *not_api = NULL; /* the first argument --api-sock does not take */
	int first = 1;

	memset(out, 0, sizeof(*out));
	minivm_config_init(c);
	jail_config_init(&out->jail);
	/* "minivm template create NAME [options]" */
	if (argc >= 2 && !strcmp(argv[1], "template")) {
		if (argc < 3 || strcmp(argv[2], "create")) {
			snprintf(err, errlen, "usage: minivm template create NAME [boot options] "
					      "(see --help)");
			return -EINVAL;
		}
		if (argc < 4 || !cli_template_name_ok(argv[3])) {
			snprintf(err, errlen, "template create needs a NAME of 1 to %d letters, digits, "
					      "'.', '_' or '-', not starting with '.'", CLI_TEMPLATE_NAME_MAX);
			return -EINVAL;
		}
		out->template_create = true;
		out->template_name = argv[3];
		first = 4;
	}
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		size_t nlen;

		if (!not_api && !cli_api_compatible(a))
			not_api = a;
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
		if (!strcmp(a, "--tty")) {
			out->tty = true;
			continue;
		}
		if (!strcmp(a, "--apply")) {
			out->apply = true;
			continue;
		}
		if (!strcmp(a, "--workspace-respect-gitignore")) {
			out->ws_gitignore = true;
			continue;
		}
		if (!strcmp(a, "--allow-dns")) {
			c->net.allow_dns = true;
			continue;
		}
		if (!strcmp(a, "--no-jail") || !strcmp(a, "--jail")) {
			enum jail_mode m = a[2] == 'n' ? JAIL_OFF : JAIL_REQUIRED;

			if (seen_jail && out->jail.mode != m) {
				snprintf(err, errlen, "--jail and --no-jail exclude each other");
				return -EINVAL;
			}
			seen_jail = true;
			out->jail.mode = m;
			continue;
		}
		if (!strcmp(a, "--")) {
			/* The rest is the command's exact argv. */
			if (out->agent) {
				snprintf(err, errlen, "give the command once: --agent or -- ARGV, not both");
				return -EINVAL;
			}
			if (i + 1 >= argc) {
				snprintf(err, errlen, "'--' must be followed by a command");
				return -EINVAL;
			}
			if (argc - (i + 1) > AGENT_CMD_MAX_WORDS) {
				snprintf(err, errlen, "too many arguments after '--' (at most %d)",
					 AGENT_CMD_MAX_WORDS);
				return -EINVAL;
			}
			for (int j = i + 1; j < argc; j++)
				out->agent_argv[out->agent_argc++] = argv[j];
			out->agent_argv[out->agent_argc] = NULL;
			out->agent = true;
			break;
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
		    strcmp(name, "--emulated") && strcmp(name, "--agent") && strcmp(name, "--env") &&
		    strcmp(name, "--workdir") && strcmp(name, "--user") && strcmp(name, "--timeout") &&
		    strcmp(name, "--boot-timeout") && strcmp(name, "--vsock") &&
		    strcmp(name, "--vm-timeout") && strcmp(name, "--uid") && strcmp(name, "--gid") &&
		    strcmp(name, "--cpu-quota") && strcmp(name, "--scratch") &&
		    strcmp(name, "--scratch-size") && strcmp(name, "--net") &&
		    strcmp(name, "--allow") && strcmp(name, "--net-policy") &&
		    strcmp(name, "--save") && strcmp(name, "--workspace") &&
		    strcmp(name, "--changes") && strcmp(name, "--snapshot-after-ready") &&
		    strcmp(name, "--restore") && strcmp(name, "--template") &&
		    strcmp(name, "--api-sock") && strcmp(name, "--log-format")) {
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

		if (!strcmp(name, "--snapshot-after-ready") || !strcmp(name, "--restore")) {
			const char **dst = name[2] == 's' ? &out->snapshot_dir : &out->restore_dir;

			if (*dst || !*val) {
				snprintf(err, errlen, "option '%s' given twice or empty", name);
				return -EINVAL;
			}
			*dst = val;
		} else if (!strcmp(name, "--api-sock") || !strcmp(name, "--log-format")) {
			if (cli_parse_front_opt(name, val, out, err, errlen))
				return -EINVAL;
		} else if (!strcmp(name, "--template")) {
			if (out->template_name) {
				snprintf(err, errlen, out->template_create
					 ? "--template is for runs: template create names its template first"
					 : "option '--template' given twice");
				return -EINVAL;
			}
			if (!cli_template_name_ok(val)) {
				snprintf(err, errlen, "bad --template '%s' (1 to %d letters, digits, '.', '_' "
						      "or '-', not starting with '.')", val, CLI_TEMPLATE_NAME_MAX);
				return -EINVAL;
			}
			out->template_name = val;
		} else if (!strcmp(name, "--kernel")) {
			CLI_ONCE(kernel);
		} else if (!strcmp(name, "--rootfs")) {
			struct minivm_disk d;

			if (c->rootfs) {
				snprintf(err, errlen, "option '--rootfs' given twice");
				return -EINVAL;
			}
			if (!strncmp(val, "oci:", 4) || !strncmp(val, "oci-archive:", 12)) {
				/* The front builds (or finds) the ext4 root from it. */
				c->rootfs = val;
				out->rootfs_oci = true;
				continue;
			}
			if (cli_parse_disk(name, val, &d, out->rootfs_path, sizeof(out->rootfs_path),
					   err, errlen))
				return -EINVAL;
			c->rootfs = d.path;
			c->rootfs_rw = d.read_write;
			c->rootfs_limit = d.limit;
		} else if (!strcmp(name, "--save")) {
			if (out->save) {
				snprintf(err, errlen, "option '--save' given twice");
				return -EINVAL;
			}
			if (strncmp(val, "oci:", 4) && strncmp(val, "oci-archive:", 12)) {
				snprintf(err, errlen, "bad --save '%s' (expected oci:DIR[:TAG] or "
						      "oci-archive:FILE[:TAG])", val);
				return -EINVAL;
			}
			out->save = val;
		} else if (!strcmp(name, "--changes")) {
			if (out->changes || !*val) {
				snprintf(err, errlen, "option '--changes' given twice or empty");
				return -EINVAL;
			}
			out->changes = val;
		} else if (!strcmp(name, "--workspace")) {
			if (out->ws_host[0]) {
				snprintf(err, errlen, "option '--workspace' given twice");
				return -EINVAL;
			}
			if (cli_parse_workspace(val, out, err, errlen))
				return -EINVAL;
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
			if (cli_parse_disk(name, val, &c->disks[c->nr_disks],
					   out->disk_paths[c->nr_disks], sizeof(out->disk_paths[0]),
					   err, errlen))
				return -EINVAL;
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
		} else if (!strcmp(name, "--vsock")) {
			CLI_ONCE(vsock_uds);
		} else if (!strcmp(name, "--agent")) {
			int n;

			if (out->agent) {
				snprintf(err, errlen, "give the command once: one --agent, or -- ARGV");
				return -EINVAL;
			}
			n = agent_split_words(val, strlen(val), out->agent_words,
					      sizeof(out->agent_words), out->agent_argv,
					      AGENT_CMD_ARGV_SIZE);
			if (n < 0) {
				snprintf(err, errlen, "bad --agent command: %s", agent_cmd_strerror(n));
				return -EINVAL;
			}
			if (n == 0) {
				snprintf(err, errlen, "--agent needs a command");
				return -EINVAL;
			}
			out->agent_argc = (unsigned int)n;
			out->agent = true;
		} else if (!strcmp(name, "--env")) {
			const char *e = strchr(val, '=');

			if (!e || e == val) {
				snprintf(err, errlen, "bad --env '%s' (expected NAME=VALUE)", val);
				return -EINVAL;
			}
			if (out->nr_env >= CLI_MAX_ENV) {
				snprintf(err, errlen, "too many --env options (at most %d)", CLI_MAX_ENV);
				return -EINVAL;
			}
			out->env[out->nr_env++] = val;
		} else if (!strcmp(name, "--workdir")) {
			if (out->workdir || val[0] != '/') {
				snprintf(err, errlen, out->workdir ? "option '--workdir' given twice"
							 : "--workdir must be an absolute path");
				return -EINVAL;
			}
			out->workdir = val;
		} else if (!strcmp(name, "--user")) {
			if (out->user || !*val) {
				snprintf(err, errlen, out->user ? "option '--user' given twice"
							     : "--user needs a value");
				return -EINVAL;
			}
			out->user = val;
		} else if (!strcmp(name, "--timeout") || !strcmp(name, "--boot-timeout")) {
			bool boot = !strcmp(name, "--boot-timeout");
			unsigned int *dst = boot ? &out->boot_timeout_s : &out->timeout_s;
			unsigned int v;

			if (*dst) {
				snprintf(err, errlen, "option '%s' given twice", name);
				return -EINVAL;
			}
			if (cli_parse_uint(val, CLI_MAX_TIMEOUT, &v) || v == 0) {
				snprintf(err, errlen, "bad %s '%s' (expected whole seconds, 1 to %d)",
					 name, val, CLI_MAX_TIMEOUT);
				return -EINVAL;
			}
			*dst = v;
		} else if (!strcmp(name, "--vm-timeout")) {
			uint64_t ms;

			if (c->vm_timeout_ms) {
				snprintf(err, errlen, "option '--vm-timeout' given twice");
				return -EINVAL;
			}
			if (rl_parse_duration_ms(val, strlen(val), &ms) || ms == 0 ||
			    ms > CLI_MAX_TIMEOUT * 1000ULL) {
				snprintf(err, errlen, "bad --vm-timeout '%s' (expected a duration like 90, "
					 "90s, 500ms, 10m or 2h: seconds unless a unit is given, "
					 "at most a year)", val);
				return -EINVAL;
			}
			c->vm_timeout_ms = ms;
		} else if (!strcmp(name, "--uid") || !strcmp(name, "--gid")) {
			bool is_uid = name[2] == 'u';
			bool *seen = is_uid ? &seen_uid : &seen_gid;

			if (*seen) {
				snprintf(err, errlen, "option '%s' given twice", name);
				return -EINVAL;
			}
			*seen = true;
			if (jail_parse_id(val, is_uid ? &out->jail.uid : &out->jail.gid)) {
				snprintf(err, errlen, "bad %s '%s' (expected a number from 1 to 4294967294: "
					 "the jail never runs the VMM as root)", name, val);
				return -EINVAL;
			}
		} else if (!strcmp(name, "--cpu-quota")) {
			if (out->jail.cpu_quota_pct) {
				snprintf(err, errlen, "option '--cpu-quota' given twice");
				return -EINVAL;
			}
			if (cli_parse_uint(val, JAIL_MAX_CPU_QUOTA, &out->jail.cpu_quota_pct) ||
			    out->jail.cpu_quota_pct == 0) {
				snprintf(err, errlen, "bad --cpu-quota '%s' (expected a percentage of one "
					 "CPU, 1 to %u)", val, JAIL_MAX_CPU_QUOTA);
				return -EINVAL;
			}
		} else if (!strcmp(name, "--scratch")) {
			if (out->scratch != SCRATCH_DEFAULT || scratch_parse_mode(val, &out->scratch)) {
				snprintf(err, errlen, out->scratch != SCRATCH_DEFAULT
					 ? "option '--scratch' given twice"
					 : "bad --scratch '%s' (expected disk, tmpfs or none)", val);
				return -EINVAL;
			}
		} else if (!strcmp(name, "--scratch-size")) {
			if (out->scratch_size || cli_parse_size(val, &out->scratch_size) ||
			    out->scratch_size < SCRATCH_MIN_SIZE || out->scratch_size > SCRATCH_MAX_SIZE) {
				snprintf(err, errlen, "bad or repeated --scratch-size '%s' (16M to 1T)", val);
				return -EINVAL;
			}
		} else if (!strcmp(name, "--net")) {
			if (cli_parse_net(val, out, err, errlen))
				return -EINVAL;
		} else if (!strcmp(name, "--allow")) {
			struct net_rule rule;
			char why[200];

			if (c->net.nr_allow >= MINIVM_MAX_NET_RULES) {
				snprintf(err, errlen, "too many --allow rules (at most %d; a --net-policy "
					 "file holds more)", MINIVM_MAX_NET_RULES);
				return -EINVAL;
			}
			if (net_rule_parse(val, &rule, why, sizeof(why))) {
				snprintf(err, errlen, "bad --allow '%s': %s", val, why);
				return -EINVAL;
			}
			out->allow[c->net.nr_allow++] = val;
			c->net.allow = out->allow;
		} else if (!strcmp(name, "--net-policy")) {
			CLI_ONCE(net.policy_file);
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
	if (out->jail.mode == JAIL_OFF && (seen_uid || seen_gid || out->jail.cpu_quota_pct)) {
		snprintf(err, errlen, "--uid, --gid and --cpu-quota configure the jail: not with "
				      "--no-jail");
		return -EINVAL;
	}
	if (out->api_sock)
		return cli_check_api(out, not_api, err, errlen);
	if (out->template_create) {
		if (out->agent || c->run) {
			snprintf(err, errlen, "template create runs no command: no --agent, -- or --run");
			return -EINVAL;
		}
		if (out->snapshot_dir || out->restore_dir) {
			snprintf(err, errlen, "template create takes boot options: not "
					      "--snapshot-after-ready or --restore");
			return -EINVAL;
		}
		if (out->save || out->ws_host[0]) {
			snprintf(err, errlen, "template create runs no command: no --save or --workspace");
			return -EINVAL;
		}
		/* Boots with the agent (no command) and snapshots: the front
		 * fills snapshot_dir with the template's directory. */
		out->agent = true;
		out->agent_argc = 0;
		out->agent_argv[0] = NULL;
	}
	if (out->restore_dir && out->template_name && !out->template_create) {
		snprintf(err, errlen, "--restore and --template exclude each other");
		return -EINVAL;
	}
	if (out->snapshot_dir && (out->restore_dir || (out->template_name && !out->template_create))) {
		snprintf(err, errlen, "--snapshot-after-ready boots a VM: not with --restore or --template");
		return -EINVAL;
	}
	if (out->restore_dir || (out->template_name && !out->template_create)) {
		const char *what = out->restore_dir ? "--restore" : "--template";

		if (!out->agent) {
			snprintf(err, errlen, "%s runs a command through the agent: give --agent or --",
				 what);
			return -EINVAL;
		}
		if (c->run) {
			snprintf(err, errlen, "%s runs the command through the agent: not with --run",
				 what);
			return -EINVAL;
		}
		if (c->kernel || c->rootfs || c->nr_disks || seen_mem || seen_cpus || c->cmdline ||
		    out->scratch != SCRATCH_DEFAULT || out->scratch_size || c->net.tap || seen_emul) {
			snprintf(err, errlen, "%s: the snapshot names the machine: no --kernel, --rootfs, "
					      "--disk, --mem, --cpus, --cmdline, --scratch, --scratch-size, "
					      "--net or --emulated", what);
			return -EINVAL;
		}
		if (out->save) {
			snprintf(err, errlen, "%s: --save is not supported on a restored VM", what);
			return -EINVAL;
		}
		if (c->net.nr_allow || c->net.allow_dns || c->net.policy_file) {
			snprintf(err, errlen, "%s: a restored VM has no NIC: no --allow, --allow-dns or "
					      "--net-policy", what);
			return -EINVAL;
		}
		/* The disks are the snapshot's: the front adds them. */
		out->scratch = SCRATCH_NONE;
		if (!out->boot_timeout_s)
			out->boot_timeout_s = CLI_DEFAULT_BOOT_TIMEOUT;
		out->env[out->nr_env] = NULL;
		if (!out->ws_host[0] && (out->changes || out->apply || out->ws_gitignore)) {
			snprintf(err, errlen, "--changes, --apply and --workspace-respect-gitignore are "
					      "about a workspace: give --workspace HOSTDIR");
			return -EINVAL;
		}
		return 0;
	}
	if (out->snapshot_dir && !out->agent) {
		snprintf(err, errlen, "--snapshot-after-ready snapshots a VM whose agent is ready: "
				      "give the command with --agent or --");
		return -EINVAL;
	}
	if ((out->snapshot_dir || out->template_create) && c->net.tap) {
		snprintf(err, errlen, "snapshots of VMs with a NIC (--net) are not supported");
		return -EINVAL;
	}
	if (!c->kernel) {
		snprintf(err, errlen, "--kernel is required (see --help)");
		return -EINVAL;
	}
	if (!c->net.tap && (c->net.nr_allow || c->net.allow_dns || c->net.policy_file)) {
		snprintf(err, errlen, "--allow, --allow-dns and --net-policy are the policy of a NIC: "
				      "give --net too");
		return -EINVAL;
	}
	if (c->net.allow_dns && !c->net.dns) {
		snprintf(err, errlen, "--allow-dns allows queries to the resolver: give --net ...,dns=ADDR");
		return -EINVAL;
	}
	if (out->agent && c->run) {
		snprintf(err, errlen, "--run and --agent exclude each other: --run has the guest's "
				      "init run the program, --agent has the agent run it");
		return -EINVAL;
	}
	if (!out->agent && (out->nr_env || out->workdir || out->user || out->timeout_s ||
			    out->tty || out->boot_timeout_s)) {
		snprintf(err, errlen, "--env, --workdir, --user, --timeout, --tty and "
				      "--boot-timeout apply to a command given with --agent or --");
		return -EINVAL;
	}
	if (out->agent && !c->rootfs) {
		snprintf(err, errlen, "--agent needs --rootfs: the agent lives in the root filesystem");
		return -EINVAL;
	}
	if (!out->agent && (out->save || out->ws_host[0] || out->rootfs_oci)) {
		snprintf(err, errlen, "--save, --workspace and --rootfs oci:... work through the "
				      "guest agent: give the command with --agent or --");
		return -EINVAL;
	}
	if (!out->ws_host[0] && (out->changes || out->apply || out->ws_gitignore)) {
		snprintf(err, errlen, "--changes, --apply and --workspace-respect-gitignore are "
				      "about a workspace: give --workspace HOSTDIR");
		return -EINVAL;
	}
	if (out->rootfs_oci && c->cmdline && strstr(c->cmdline, "init=")) {
		snprintf(err, errlen, "--rootfs oci:... boots the agent as init: not with init= in "
				      "--cmdline");
		return -EINVAL;
	}
	if ((out->scratch != SCRATCH_DEFAULT || out->scratch_size) && !out->agent) {
		snprintf(err, errlen, "--scratch and --scratch-size apply to --agent or -- runs");
		return -EINVAL;
	}
	if (out->scratch != SCRATCH_DEFAULT && out->scratch != SCRATCH_NONE && c->rootfs_rw) {
		snprintf(err, errlen, "--scratch %s needs a read-only root: not with --rootfs ...,rw",
			 out->scratch == SCRATCH_DISK ? "disk" : "tmpfs");
		return -EINVAL;
	}
	if (out->scratch == SCRATCH_DEFAULT)
		out->scratch = out->agent && !c->rootfs_rw ? SCRATCH_DISK : SCRATCH_NONE;
	if (out->save && out->scratch == SCRATCH_NONE) {
		snprintf(err, errlen, "--save writes what changed over the read-only root (the "
				      "overlay): not with --scratch none or --rootfs ...,rw");
		return -EINVAL;
	}
	if (!out->scratch_size && out->scratch == SCRATCH_DISK)
		out->scratch_size = SCRATCH_DEFAULT_SIZE;
	if (!out->boot_timeout_s)
		out->boot_timeout_s = CLI_DEFAULT_BOOT_TIMEOUT;
	out->env[out->nr_env] = NULL;
	return 0;
}

void cli_vm_config(const struct cli *cli, struct minivm_vm_config *vc)
{
	minivm_vm_config_init(vc);
	vc->vm = cli->cfg;
	vc->jail = cli->jail.mode == JAIL_OFF	     ? MINIVM_JAIL_OFF
		   : cli->jail.mode == JAIL_REQUIRED ? MINIVM_JAIL_REQUIRED
						     : MINIVM_JAIL_AUTO;
	vc->jail_uid = cli->jail.uid;
	vc->jail_gid = cli->jail.gid;
	vc->cpu_quota_pct = cli->jail.cpu_quota_pct;
	vc->agent = cli->agent;
	vc->scratch = cli->scratch == SCRATCH_DISK    ? MINIVM_SCRATCH_DISK
		      : cli->scratch == SCRATCH_TMPFS ? MINIVM_SCRATCH_TMPFS
		      : cli->scratch == SCRATCH_NONE  ? MINIVM_SCRATCH_NONE
						      : MINIVM_SCRATCH_DEFAULT;
	vc->scratch_size = cli->scratch_size;
	vc->snapshot_dir = cli->snapshot_dir;
	vc->restore_dir = cli->restore_dir;
}
