/* The guest's network setup by PID 1: lo always, and the minivm.net= interface, route and resolver. */
/*
 * Plain ioctls on one AF_INET datagram socket (SIOCSIFADDR, SIOCSIFNETMASK,
 * SIOCSIFFLAGS, SIOCADDRT): the guest kernel has INET without IPv6, and
 * these need nothing else (no rtnetlink message building). Interfaces are
 * listed with if_nameindex() (rtnetlink in musl), not a /sys scan.
 */
#include "netcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "minivm_guest.h"

#define NETCFG_TAG "minivm-init: net: "
#define NETCFG_RESOLV "/etc/resolv.conf"

#define NETCFG_QUAD(a) (unsigned int)((a) >> 24), (unsigned int)((a) >> 16 & 0xff), \
		       (unsigned int)((a) >> 8 & 0xff), (unsigned int)((a) & 0xff)

int netcfg_resolv_write(const char *path, uint32_t dns)
{
	char line[40];
	int fd, n, err = 0;

	if (!path || dns == 0)
		return -EINVAL;
	n = snprintf(line, sizeof(line), "nameserver %u.%u.%u.%u\n", NETCFG_QUAD(dns));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n)
		err = errno ? -errno : -EIO;
	if (close(fd) != 0 && !err)
		err = -errno;
	return err;
}

int netcfg_resolv_install(const char *etc_path, const char *fallback_path, uint32_t dns,
			  int *etc_err, const char **what)
{
	struct stat st;
	int r;

	*etc_err = 0;
	*what = "";
	r = netcfg_resolv_write(etc_path, dns);
	if (r == 0)
		return 0;
	*etc_err = r;
	r = netcfg_resolv_write(fallback_path, dns);
	if (r) {
		*what = "fallback";
		return r;
	}
	if (stat(etc_path, &st) != 0) {
		*what = "stat";
		return -errno;
	}
	if (mount(fallback_path, etc_path, NULL, MS_BIND, NULL) != 0) {
		*what = "bind";
		return -errno;
	}
	return 1;
}

static void netcfg_sin(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr) };

	memcpy(sa, &sin, sizeof(sin));
}

static void netcfg_ifr(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
}

/* Set IFF_UP (and keep the other flags); 0 or -errno. */
static int netcfg_if_up(int fd, const char *name)
{
	struct ifreq ifr;

	netcfg_ifr(&ifr, name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		return -errno;
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(fd, SIOCSIFFLAGS, &ifr) == 0 ? 0 : -errno;
}

/* name gets addr/prefix; *step names the ioctl that failed. 0 or -errno. */
static int netcfg_if_addr(int fd, const char *name, uint32_t addr, unsigned int prefix,
			  const char **step)
{
	struct ifreq ifr;

	netcfg_ifr(&ifr, name);
	netcfg_sin(&ifr.ifr_addr, addr);
	*step = "set address";
	if (ioctl(fd, SIOCSIFADDR, &ifr) != 0)
		return -errno;
	netcfg_ifr(&ifr, name);
	netcfg_sin(&ifr.ifr_netmask, agent_net_mask(prefix));
	*step = "set netmask";
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
		return -errno;
	return 0;
}

/* Whether name already has addr as its IPv4 address. */
static bool netcfg_if_has(int fd, const char *name, uint32_t addr)
{
	struct ifreq ifr;
	struct sockaddr_in sin;

	netcfg_ifr(&ifr, name);
	if (ioctl(fd, SIOCGIFADDR, &ifr) != 0)
		return false;
	memcpy(&sin, &ifr.ifr_addr, sizeof(sin));
	return sin.sin_family == AF_INET && ntohl(sin.sin_addr.s_addr) == addr;
}

/*
 * lo up with 127.0.0.1/8. Linux gives an IPv4 loopback device 127.0.0.1/8
 * itself when it comes up; set it only if that did not happen.
 */
static void netcfg_lo(int fd)
{
	const char *step;
	int r = netcfg_if_up(fd, "lo");

	if (r) {
		dprintf(STDERR_FILENO, NETCFG_TAG "lo: set up: %s\n", strerror(-r));
		return;
	}
	if (netcfg_if_has(fd, "lo", 0x7f000001u))
		return;
	r = netcfg_if_addr(fd, "lo", 0x7f000001u, 8, &step);
	if (r)
		dprintf(STDERR_FILENO, NETCFG_TAG "lo: %s 127.0.0.1/8: %s\n", step, strerror(-r));
}

/*
 * The first non-loopback interface (lowest index) into name; 0, -ENODEV
 * when there is none, or -errno.
 */
static int netcfg_find_if(int fd, char name[IF_NAMESIZE])
{
	struct if_nameindex *list = if_nameindex(), *p;
	unsigned int best = 0;

	if (!list)
		return -errno;
	for (p = list; p->if_index != 0 && p->if_name; p++) {
		struct ifreq ifr;

		netcfg_ifr(&ifr, p->if_name);
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags & IFF_LOOPBACK))
			continue;
		if (best == 0 || p->if_index < best) {
			best = p->if_index;
			snprintf(name, IF_NAMESIZE, "%s", p->if_name);
		}
	}
	if_freenameindex(list);
	return best ? 0 : -ENODEV;
}

/* The default route via gw, out of name. 0 or -errno (EEXIST: one exists). */
static int netcfg_default_route(int fd, char *name, uint32_t gw)
{
	struct rtentry rt;

	memset(&rt, 0, sizeof(rt));
	netcfg_sin(&rt.rt_dst, 0);
	netcfg_sin(&rt.rt_genmask, 0);
	netcfg_sin(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = name;
	return ioctl(fd, SIOCADDRT, &rt) == 0 ? 0 : -errno;
}

static void netcfg_resolv(uint32_t dns)
{
	const char *what;
	int etc_err, r;

	r = netcfg_resolv_install(NETCFG_RESOLV, NETCFG_RESOLV_FALLBACK, dns, &etc_err, &what);
	if (r >= 0)
		return;
	if (!strcmp(what, "fallback"))
		dprintf(STDERR_FILENO, NETCFG_TAG NETCFG_RESOLV ": %s, " NETCFG_RESOLV_FALLBACK
			": %s; no name server configured\n", strerror(-etc_err), strerror(-r));
	else if (!strcmp(what, "stat"))
		dprintf(STDERR_FILENO, NETCFG_TAG NETCFG_RESOLV ": %s; the name server is only in "
			NETCFG_RESOLV_FALLBACK " (no " NETCFG_RESOLV " to bind it over)\n",
			strerror(-etc_err));
	else
		dprintf(STDERR_FILENO, NETCFG_TAG NETCFG_RESOLV ": %s; bind-mount "
			NETCFG_RESOLV_FALLBACK " over it: %s\n", strerror(-etc_err), strerror(-r));
}

/* The interface, the default route and the resolver for n (lo is up). */
static void netcfg_apply(int fd, const struct agent_net *n)
{
	char name[IF_NAMESIZE] = "";
	const char *step;
	int r;

	r = netcfg_find_if(fd, name);
	if (r == -ENODEV) {
		dprintf(STDERR_FILENO, NETCFG_TAG MINIVM_NET_PARAM " given but no network interface; "
			"network not configured\n");
		return;
	}
	if (r) {
		dprintf(STDERR_FILENO, NETCFG_TAG "list interfaces: %s; network not configured\n",
			strerror(-r));
		return;
	}
	r = netcfg_if_addr(fd, name, n->ip, n->prefix, &step);
	if (r) {
		dprintf(STDERR_FILENO, NETCFG_TAG "%s: %s %u.%u.%u.%u/%u: %s; network not configured\n",
			name, step, NETCFG_QUAD(n->ip), (unsigned int)n->prefix, strerror(-r));
		return;
	}
	r = netcfg_if_up(fd, name);
	if (r) {
		dprintf(STDERR_FILENO, NETCFG_TAG "%s: set up: %s; network not configured\n", name,
			strerror(-r));
		return;
	}
	r = netcfg_default_route(fd, name, n->gw);
	if (r)
		dprintf(STDERR_FILENO, NETCFG_TAG "%s: default route via %u.%u.%u.%u: %s\n", name,
			NETCFG_QUAD(n->gw), strerror(-r));
	if (n->dns)
		netcfg_resolv(n->dns);
}

void netcfg_setup(const char *cmdline, size_t len)
{
	struct agent_net n;
	const char *val;
	size_t vlen;
	bool want;
	int fd;

	want = agent_cmdline_find(cmdline, len, MINIVM_NET_PARAM, &val, &vlen) == 1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		dprintf(STDERR_FILENO, NETCFG_TAG "socket(AF_INET): %s; lo%s not configured\n",
			strerror(errno), want ? " and the network" : "");
		return;
	}
	netcfg_lo(fd);
	if (want) {
		if (agent_net_parse(val, vlen, &n) == 0)
			netcfg_apply(fd, &n);
		else
			dprintf(STDERR_FILENO, NETCFG_TAG "bad " MINIVM_NET_PARAM "%.*s (want "
				"ADDR/LEN,GW[,DNS]); network not configured\n",
				(int)(vlen > 64 ? 64 : vlen), val);
	}
	(void)close(fd);
}
