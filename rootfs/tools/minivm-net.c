/* minivm-net: guest-side network test tool (HTTP GET, TCP connect, UDP echo, crafted raw frames, TCP throughput and round trips). */
/*
 * Usage (in the guest; IP is a dotted quad, every wait bounded):
 *   minivm-net http-get IP PORT PATH            HTTP/1.0 GET, the body to stdout
 *   minivm-net tcp-connect IP PORT [TIMEOUT_MS] one line: connect IP:PORT: ok|refused|timeout|error: ... in N ms
 *   minivm-net udp-echo IP PORT MESSAGE [TIMEOUT_MS]  send MESSAGE, print the datagram that comes back
 *   minivm-net raw KIND IFACE DST_IP DST_MAC TAG [PORT]  one crafted Ethernet frame via AF_PACKET
 *   minivm-net tcp-send IP PORT SECONDS         stream for SECONDS: sent N bytes in T ms: X MB/s
 *   minivm-net tcp-rr IP PORT COUNT             COUNT 64-byte round trips against an echo server
 *
 * raw KINDs (the frame's UDP payload is TAG, so a capture on the peer can
 * grep for it; DST_MAC aa:bb:cc:dd:ee:ff; PORT the UDP destination, default 9;
 * checksums correct; IFACE's own MAC and IPv4 address read with ioctls):
 *   ipv6       IPv6/UDP (ethertype 0x86dd) from IFACE's EUI-64 link-local
 *              address to DST_IP (an IPv6 address, or IPv4 as ::ffff:a.b.c.d)
 *   frag       IPv4/UDP first fragment (MF set, offset 0) from IFACE's address
 *   frag-tail  IPv4 last fragment (offset 8 bytes, MF clear) from IFACE's address
 *   spoof-ip   IPv4/UDP from another address of IFACE's subnet, IFACE's MAC
 *   spoof-mac  IPv4/UDP from IFACE's address, another (locally administered) MAC
 *   plain      IPv4/UDP from IFACE's address and MAC (the control case)
 *
 * Exit status (the same for every subcommand):
 *   0 success (HTTP 200; connected; the echo equals MESSAGE; frame sent)
 *   1 a definite other answer (HTTP status not 200; an echo that differs)
 *   2 bad usage
 *   3 refused or reset (TCP RST, ICMP port unreachable)
 *   4 timeout (MINIVM_NET_TIMEOUT_MS, 5 s, for connect and each read/write
 *     unless TIMEOUT_MS is given)
 *   5 another network error (no route, host unreachable, EPERM, ...)
 *   6 a malformed answer (not HTTP, short echo in tcp-rr)
 *   7 a local failure (socket(), no such interface, out of memory)
 * Every failure prints one "minivm-net: ..." line on stderr first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* <netpacket/packet.h>'s sockaddr_ll, restated: the stable ABI, musl and glibc alike. */
#ifndef AF_PACKET
#define AF_PACKET 17
#endif
struct nt_sockaddr_ll {
	unsigned short sll_family;
	unsigned short sll_protocol;
	int sll_ifindex;
	unsigned short sll_hatype;
	unsigned char sll_pkttype;
	unsigned char sll_halen;
	unsigned char sll_addr[8];
};
_Static_assert(sizeof(struct nt_sockaddr_ll) == 20, "sockaddr_ll is 20 bytes");

#define NT_OK 0
#define NT_OTHER 1
#define NT_USAGE 2
#define NT_REFUSED 3
#define NT_TIMEOUT 4
#define NT_NETERR 5
#define NT_PROTO 6
#define NT_LOCAL 7

#define MINIVM_NET_TIMEOUT_MS 5000
#define NT_BUF (64 * 1024)
#define NT_TAG_MAX 1024
#define NT_RR_SIZE 64

static char nt_buf[NT_BUF];
static char nt_drop[NT_BUF];

static int nt_usage(void)
{
	fprintf(stderr,
		"usage: minivm-net http-get IP PORT PATH\n"
		"       minivm-net tcp-connect IP PORT [TIMEOUT_MS]\n"
		"       minivm-net udp-echo IP PORT MESSAGE [TIMEOUT_MS]\n"
		"       minivm-net raw ipv6|frag|frag-tail|spoof-ip|spoof-mac|plain IFACE DST_IP DST_MAC TAG [PORT]\n"
		"       minivm-net tcp-send IP PORT SECONDS\n"
		"       minivm-net tcp-rr IP PORT COUNT\n");
	return NT_USAGE;
}

static int nt_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static double nt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The exit status for a socket error. */
static int nt_status(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
		return NT_REFUSED;
	case ETIMEDOUT:
		return NT_TIMEOUT;
	default:
		return NT_NETERR;
	}
}

/* Wait up to timeout_ms for events on fd: 1 ready, 0 timed out, -1 error (errno). */
static int nt_wait(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	double end = nt_now_ms() + timeout_ms;

	for (;;) {
		double left = end - nt_now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* A non-blocking socket of type connected to ip:port within timeout_ms; fd or -errno. */
static int nt_connect(int type, struct in_addr ip, unsigned int port, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = ip };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0, r;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	r = nt_wait(fd, POLLOUT, timeout_ms);
	if (r <= 0) {
		err = r == 0 ? ETIMEDOUT : errno;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err)
		goto fail;
	return fd;
fail:
	close(fd);
	return -err;
}

/* Read up to n bytes within timeout_ms: the count, 0 at EOF, or -errno (-ETIMEDOUT). */
static ssize_t nt_read(int fd, void *buf, size_t n, int timeout_ms)
{
	for (;;) {
		int r = nt_wait(fd, POLLIN, timeout_ms);
		ssize_t got;

		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		got = read(fd, buf, n);
		if (got >= 0)
			return got;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

/* Write all n bytes, each wait at most timeout_ms: 0 or -errno (-ETIMEDOUT). */
static int nt_write_all(int fd, const void *buf, size_t n, int timeout_ms)
{
	const char *p = buf;

	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int r = nt_wait(fd, POLLOUT, timeout_ms);

			if (r <= 0)
				return r == 0 ? -ETIMEDOUT : -errno;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int nt_fail(const char *what, const char *ip, unsigned long port, int err)
{
	fprintf(stderr, "minivm-net: %s %s:%lu: %s\n", what, ip, port,
		err == ETIMEDOUT ? "timed out" : strerror(err));
	return nt_status(err);
}

static int nt_stdout(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* http-get: HTTP/1.0 GET, the body to stdout; 0 on 200, 1 other status. */
static int nt_http_get(const char *ips, struct in_addr ip, unsigned long port, const char *path)
{
	char req[2048];
	size_t have = 0;
	char *body = NULL;
	int fd, n, code, err;
	ssize_t got;

	if (path[0] != '/' || strpbrk(path, " \r\n")) {
		fprintf(stderr, "minivm-net: http-get: PATH must start with / and hold no blank or newline\n");
		return NT_USAGE;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%lu\r\nUser-Agent: minivm-net\r\n"
		     "Connection: close\r\n\r\n", path, ips, port);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fprintf(stderr, "minivm-net: http-get: PATH too long\n");
		return NT_USAGE;
	}
	fd = nt_connect(SOCK_STREAM, ip, (unsigned int)port, MINIVM_NET_TIMEOUT_MS);
	if (fd < 0)
		return nt_fail("http-get: connect", ips, port, -fd);
	err = nt_write_all(fd, req, (size_t)n, MINIVM_NET_TIMEOUT_MS);
	if (err) {
		close(fd);
		return nt_fail("http-get: send the request to", ips, port, -err);
	}
	/* The header: everything up to the first empty line, within NT_BUF. */
	while (!body) {
		if (have == sizeof(nt_buf) - 1) {
			fprintf(stderr, "minivm-net: http-get %s:%lu: response header over %d bytes\n", ips,
				port, NT_BUF - 1);
			close(fd);
			return NT_PROTO;
		}
		got = nt_read(fd, nt_buf + have, sizeof(nt_buf) - 1 - have, MINIVM_NET_TIMEOUT_MS);
		if (got < 0) {
			close(fd);
			return nt_fail("http-get: read the response from", ips, port, (int)-got);
		}
		if (got == 0) {
			fprintf(stderr, "minivm-net: http-get %s:%lu: connection closed %s\n", ips, port,
				have ? "inside the response header" : "without a response");
			close(fd);
			return NT_PROTO;
		}
		have += (size_t)got;
		nt_buf[have] = '\0';
		body = strstr(nt_buf, "\r\n\r\n");
	}
	if (strncmp(nt_buf, "HTTP/1.", 7) != 0 || nt_buf[7] < '0' || nt_buf[7] > '9' || nt_buf[8] != ' ' ||
	    sscanf(nt_buf + 9, "%3d", &code) != 1 || code < 100 || code > 999) {
		fprintf(stderr, "minivm-net: http-get %s:%lu: not an HTTP/1.x status line: %.40s\n", ips,
			port, nt_buf);
		close(fd);
		return NT_PROTO;
	}
	body += 4;
	if (nt_stdout(body, have - (size_t)(body - nt_buf))) {
		fprintf(stderr, "minivm-net: http-get: write stdout: %s\n", strerror(errno));
		close(fd);
		return NT_LOCAL;
	}
	while ((got = nt_read(fd, nt_buf, sizeof(nt_buf), MINIVM_NET_TIMEOUT_MS)) > 0) {
		if (nt_stdout(nt_buf, (size_t)got)) {
			fprintf(stderr, "minivm-net: http-get: write stdout: %s\n", strerror(errno));
			close(fd);
			return NT_LOCAL;
		}
	}
	close(fd);
	if (got < 0)
		return nt_fail("http-get: read the body from", ips, port, (int)-got);
	if (code != 200) {
		fprintf(stderr, "minivm-net: http-get %s:%lu%s: HTTP status %d\n", ips, port, path, code);
		return NT_OTHER;
	}
	return NT_OK;
}

/* tcp-connect: one line, whatever the outcome. */
static int nt_tcp_connect(const char *ips, struct in_addr ip, unsigned long port, unsigned long timeout_ms)
{
	double t0 = nt_now_ms();
	int fd = nt_connect(SOCK_STREAM, ip, (unsigned int)port, (int)timeout_ms);
	long ms = (long)(nt_now_ms() - t0 + 0.5);

	if (fd >= 0) {
		printf("connect %s:%lu: ok in %ld ms\n", ips, port, ms);
		close(fd);
		return NT_OK;
	}
	if (fd == -ECONNREFUSED)
		printf("connect %s:%lu: refused in %ld ms\n", ips, port, ms);
	else if (fd == -ETIMEDOUT)
		printf("connect %s:%lu: timeout in %ld ms\n", ips, port, ms);
	else
		printf("connect %s:%lu: error: %s in %ld ms\n", ips, port, strerror(-fd), ms);
	return nt_status(-fd);
}

/* udp-echo: send msg on a connected socket, print the reply (ECONNREFUSED: ICMP port unreachable). */
static int nt_udp_echo(const char *ips, struct in_addr ip, unsigned long port, const char *msg,
		       unsigned long timeout_ms)
{
	size_t len = strlen(msg);
	int fd = nt_connect(SOCK_DGRAM, ip, (unsigned int)port, (int)timeout_ms), r;
	ssize_t got;

	if (fd < 0)
		return nt_fail("udp-echo: connect", ips, port, -fd);
	if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		r = errno;
		close(fd);
		return nt_fail("udp-echo: send to", ips, port, r);
	}
	r = nt_wait(fd, POLLIN, (int)timeout_ms);
	if (r == 0) {
		fprintf(stderr, "minivm-net: udp-echo %s:%lu: no reply within %lu ms\n", ips, port, timeout_ms);
		close(fd);
		return NT_TIMEOUT;
	}
	got = r < 0 ? -1 : recv(fd, nt_buf, sizeof(nt_buf), MSG_DONTWAIT);
	if (got < 0) {
		r = errno;
		close(fd);
		if (r == ECONNREFUSED) {
			fprintf(stderr, "minivm-net: udp-echo %s:%lu: refused (ICMP port unreachable)\n", ips, port);
			return NT_REFUSED;
		}
		return nt_fail("udp-echo: receive from", ips, port, r);
	}
	close(fd);
	if (nt_stdout(nt_buf, (size_t)got) || nt_stdout("\n", 1))
		return NT_LOCAL;
	if ((size_t)got != len || memcmp(nt_buf, msg, len) != 0) {
		fprintf(stderr, "minivm-net: udp-echo %s:%lu: the reply (%zd bytes) differs from the message (%zu bytes)\n",
			ips, port, got, len);
		return NT_OTHER;
	}
	return NT_OK;
}

/* ---- raw frames ---------------------------------------------------------- */

static void nt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void nt_put32(uint8_t *p, uint32_t v)
{
	nt_put16(p, (uint16_t)(v >> 16));
	nt_put16(p + 2, (uint16_t)v);
}

/* The Internet checksum's running sum (RFC 1071) over p[0..n), added to sum. */
static uint32_t nt_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t nt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A UDP checksum of 0 means "none" (IPv4) or is invalid (IPv6): send 0xffff. */
static uint16_t nt_udp_csum(uint32_t pseudo_sum, const uint8_t *udp, size_t n)
{
	uint16_t c = nt_fold(nt_sum(pseudo_sum, udp, n));

	return c ? c : 0xffff;
}

static int nt_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly "aa:bb:cc:dd:ee:ff" (either case). 0 or -1. */
static int nt_parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		int hi = nt_hex(s[3 * i]), lo = nt_hex(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* IFACE's index, MAC, IPv4 address and netmask (host byte order). 0 or an exit status. */
static int nt_iface(const char *name, int *index, uint8_t mac[6], uint32_t *ip, uint32_t *mask)
{
	struct ifreq ifr;
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;
	const char *step;

	if (fd < 0) {
		fprintf(stderr, "minivm-net: raw: socket(AF_INET): %s\n", strerror(errno));
		return NT_LOCAL;
	}
	if (strlen(name) >= sizeof(ifr.ifr_name)) {
		fprintf(stderr, "minivm-net: raw: interface name too long: %s\n", name);
		close(fd);
		return NT_USAGE;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	step = "index (SIOCGIFINDEX)";
	if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0)
		goto fail;
	*index = ifr.ifr_ifindex;
	step = "MAC address (SIOCGIFHWADDR)";
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
		goto fail;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	step = "IPv4 address (SIOCGIFADDR)";
	if (ioctl(fd, SIOCGIFADDR, &ifr) != 0)
		goto fail;
	memcpy(&sin, &ifr.ifr_addr, sizeof(sin));
	*ip = ntohl(sin.sin_addr.s_addr);
	step = "netmask (SIOCGIFNETMASK)";
	if (ioctl(fd, SIOCGIFNETMASK, &ifr) != 0)
		goto fail;
	memcpy(&sin, &ifr.ifr_netmask, sizeof(sin));
	*mask = ntohl(sin.sin_addr.s_addr);
	close(fd);
	return 0;
fail:
	err = errno;
	fprintf(stderr, "minivm-net: raw: %s: %s: %s\n", name, step,
		err == ENODEV ? "no such interface" : strerror(err));
	close(fd);
	return NT_LOCAL;
}

/* Another address in ip's subnet (not ip, not the network or broadcast address when avoidable). */
static uint32_t nt_spoof_ip(uint32_t ip, uint32_t mask)
{
	static const uint32_t flips[] = { 1, 2, 3, 4 };

	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		uint32_t c = ip ^ flips[i], host = c & ~mask;

		if (mask >= 0xfffffffeu || (host != 0 && host != ~mask))
			return c;
	}
	return ip ^ 1;
}

/* IPv4 header at p (20 bytes) for payload_len bytes of UDP (proto 17). */
static void nt_ipv4(uint8_t *p, uint32_t src, uint32_t dst, size_t payload_len, uint16_t frag)
{
	memset(p, 0, 20);
	p[0] = 0x45;
	nt_put16(p + 2, (uint16_t)(20 + payload_len));
	nt_put16(p + 4, (uint16_t)(getpid() & 0xffff)); /* identification */
	nt_put16(p + 6, frag);
	p[8] = 64;
	p[9] = 17;
	nt_put32(p + 12, src);
	nt_put32(p + 16, dst);
	nt_put16(p + 10, nt_fold(nt_sum(0, p, 20)));
}

static uint32_t nt_pseudo4(uint32_t src, uint32_t dst, size_t udp_len)
{
	uint8_t ph[12];

	nt_put32(ph, src);
	nt_put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = 17;
	nt_put16(ph + 10, (uint16_t)udp_len);
	return nt_sum(0, ph, sizeof(ph));
}

/* UDP header + tag at p; the checksum covers udp_len bytes (the tail past tag_len is zeros). */
static void nt_udp(uint8_t *p, unsigned int dport, const char *tag, size_t tag_len, size_t udp_len,
		   uint32_t pseudo_sum)
{
	nt_put16(p, 40000);
	nt_put16(p + 2, (uint16_t)dport);
	nt_put16(p + 4, (uint16_t)udp_len);
	nt_put16(p + 6, 0);
	memcpy(p + 8, tag, tag_len);
	memset(p + 8 + tag_len, 0, udp_len - 8 - tag_len);
	nt_put16(p + 6, nt_udp_csum(pseudo_sum, p, udp_len));
}

static int nt_raw(const char *kind, const char *ifname, const char *dst_s, const char *mac_s,
		  const char *tag, unsigned long dport)
{
	static uint8_t frame[14 + 40 + 8 + NT_TAG_MAX + 16];
	uint8_t dst_mac[6], src_mac[6];
	uint32_t ip, mask, src_ip;
	struct in_addr dst4;
	struct nt_sockaddr_ll sll;
	size_t tag_len = strlen(tag), len;
	uint16_t ethertype = 0x0800;
	int index, r, fd;
	char srcs[INET6_ADDRSTRLEN];
	bool v6 = !strcmp(kind, "ipv6");

	if (tag_len == 0 || tag_len > NT_TAG_MAX) {
		fprintf(stderr, "minivm-net: raw: TAG must be 1-%d bytes\n", NT_TAG_MAX);
		return NT_USAGE;
	}
	if (nt_parse_mac(mac_s, dst_mac)) {
		fprintf(stderr, "minivm-net: raw: bad DST_MAC %s (want aa:bb:cc:dd:ee:ff)\n", mac_s);
		return NT_USAGE;
	}
	if (!v6 && inet_pton(AF_INET, dst_s, &dst4) != 1) {
		fprintf(stderr, "minivm-net: raw: bad DST_IP %s (want a dotted quad)\n", dst_s);
		return NT_USAGE;
	}
	if (strcmp(kind, "ipv6") && strcmp(kind, "frag") && strcmp(kind, "frag-tail") &&
	    strcmp(kind, "spoof-ip") && strcmp(kind, "spoof-mac") && strcmp(kind, "plain")) {
		fprintf(stderr, "minivm-net: raw: unknown KIND %s\n", kind);
		return NT_USAGE;
	}
	r = nt_iface(ifname, &index, src_mac, &ip, &mask);
	if (r)
		return r;
	src_ip = ip;

	memcpy(frame, dst_mac, 6);
	if (!strcmp(kind, "spoof-mac")) {
		/* Flip a low bit; keep it unicast and mark it locally administered. */
		src_mac[5] ^= 0x01;
		src_mac[0] = (uint8_t)((src_mac[0] | 0x02) & ~0x01);
	}
	if (!strcmp(kind, "spoof-ip"))
		src_ip = nt_spoof_ip(ip, mask);
	memcpy(frame + 6, src_mac, 6);

	if (v6) {
		uint8_t src6[16] = { 0xfe, 0x80 }, dst6[16], ph[40];
		uint8_t *h = frame + 14, *u = h + 40;
		size_t udp_len = 8 + tag_len;

		if (strchr(dst_s, ':')) {
			if (inet_pton(AF_INET6, dst_s, dst6) != 1) {
				fprintf(stderr, "minivm-net: raw: bad DST_IP %s (want IPv6 or a dotted quad)\n",
					dst_s);
				return NT_USAGE;
			}
		} else {
			memset(dst6, 0, sizeof(dst6));
			dst6[10] = dst6[11] = 0xff;
			if (inet_pton(AF_INET, dst_s, dst6 + 12) != 1) {
				fprintf(stderr, "minivm-net: raw: bad DST_IP %s (want IPv6 or a dotted quad)\n",
					dst_s);
				return NT_USAGE;
			}
		}
		/* EUI-64 from the MAC: fe80::(mac[0]^2)mac[1]mac[2]:fffe:mac[3..5]. */
		src6[8] = src_mac[0] ^ 0x02;
		src6[9] = src_mac[1];
		src6[10] = src_mac[2];
		src6[11] = 0xff;
		src6[12] = 0xfe;
		memcpy(src6 + 13, src_mac + 3, 3);
		ethertype = 0x86dd;
		memset(h, 0, 40);
		h[0] = 0x60;
		nt_put16(h + 4, (uint16_t)udp_len);
		h[6] = 17;
		h[7] = 64;
		memcpy(h + 8, src6, 16);
		memcpy(h + 24, dst6, 16);
		memcpy(ph, src6, 16);
		memcpy(ph + 16, dst6, 16);
		nt_put32(ph + 32, (uint32_t)udp_len);
		memset(ph + 36, 0, 3);
		ph[39] = 17;
		nt_udp(u, (unsigned int)dport, tag, tag_len, udp_len, nt_sum(0, ph, sizeof(ph)));
		len = 14 + 40 + udp_len;
		inet_ntop(AF_INET6, src6, srcs, sizeof(srcs));
	} else if (!strcmp(kind, "frag")) {
		/* The first fragment: the UDP header and the tag, padded to a multiple
		 * of 8 (fragment offsets count 8-byte units); the datagram it starts
		 * claims 8 more bytes, which never come. The UDP checksum covers the
		 * whole datagram as if those were zeros. */
		size_t first = (8 + tag_len + 7) & ~(size_t)7, udp_len = first + 8;
		uint32_t dst = ntohl(dst4.s_addr);

		nt_ipv4(frame + 14, src_ip, dst, first, 0x2000 /* MF, offset 0 */);
		nt_udp(frame + 34, (unsigned int)dport, tag, tag_len, udp_len,
		       nt_pseudo4(src_ip, dst, udp_len));
		len = 14 + 20 + first;
	} else if (!strcmp(kind, "frag-tail")) {
		/* A last fragment at offset 8 bytes (1 unit), MF clear: no UDP header, the tag only. */
		uint32_t dst = ntohl(dst4.s_addr);

		memcpy(frame + 34, tag, tag_len);
		nt_ipv4(frame + 14, src_ip, dst, tag_len, 0x0001);
		len = 14 + 20 + tag_len;
	} else {
		size_t udp_len = 8 + tag_len;
		uint32_t dst = ntohl(dst4.s_addr);

		nt_ipv4(frame + 14, src_ip, dst, udp_len, 0x4000 /* DF */);
		nt_udp(frame + 34, (unsigned int)dport, tag, tag_len, udp_len,
		       nt_pseudo4(src_ip, dst, udp_len));
		len = 14 + 20 + udp_len;
	}
	if (!v6) {
		struct in_addr a = { .s_addr = htonl(src_ip) };

		inet_ntop(AF_INET, &a, srcs, sizeof(srcs));
	}
	nt_put16(frame + 12, ethertype);

	/* Protocol 0: this socket only sends, it receives nothing. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "minivm-net: raw: socket(AF_PACKET): %s%s\n", strerror(errno),
			errno == EAFNOSUPPORT ? " (kernel without CONFIG_PACKET)" : "");
		return NT_LOCAL;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ethertype);
	sll.sll_ifindex = index;
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dst_mac, 6);
	if (sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len) {
		fprintf(stderr, "minivm-net: raw: send %s frame on %s: %s\n", kind, ifname, strerror(errno));
		close(fd);
		return nt_status(errno) == NT_NETERR ? NT_NETERR : NT_LOCAL;
	}
	close(fd);
	printf("raw %s on %s: %02x:%02x:%02x:%02x:%02x:%02x %s -> %s %s port %lu, %zu bytes, tag %s\n", kind,
	       ifname, src_mac[0], src_mac[1], src_mac[2], src_mac[3], src_mac[4], src_mac[5], srcs, mac_s,
	       dst_s, dport, len, tag);
	return NT_OK;
}

/* ---- throughput and round trips ------------------------------------------ */

/* tcp-send: write for secs, then wait (bounded) until the peer acknowledged everything. */
static int nt_tcp_send(const char *ips, struct in_addr ip, unsigned long port, unsigned long secs)
{
	unsigned long long total = 0;
	double t0, end, t;
	int fd, outq = 0;

	fd = nt_connect(SOCK_STREAM, ip, (unsigned int)port, MINIVM_NET_TIMEOUT_MS);
	if (fd < 0)
		return nt_fail("tcp-send: connect", ips, port, -fd);
	memset(nt_buf, 'x', sizeof(nt_buf));
	t0 = nt_now_ms();
	end = t0 + (double)secs * 1e3;
	while (nt_now_ms() < end) {
		ssize_t w = send(fd, nt_buf, sizeof(nt_buf), MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* Whatever the peer sends back (an echo server) is read and dropped. */
			int r = nt_wait(fd, POLLOUT | POLLIN, MINIVM_NET_TIMEOUT_MS);

			if (r > 0 && recv(fd, nt_drop, sizeof(nt_drop), MSG_DONTWAIT) == 0) {
				fprintf(stderr, "minivm-net: tcp-send %s:%lu: closed by the peer after %llu bytes\n",
					ips, port, total);
				close(fd);
				return NT_REFUSED;
			}
			if (r <= 0) {
				int err = r == 0 ? ETIMEDOUT : errno;

				fprintf(stderr, "minivm-net: tcp-send %s:%lu: stalled after %llu bytes: %s\n",
					ips, port, total, err == ETIMEDOUT ? "no progress for 5 s" : strerror(err));
				close(fd);
				return nt_status(err);
			}
			continue;
		}
		if (w < 0) {
			int err = errno;

			close(fd);
			fprintf(stderr, "minivm-net: tcp-send %s:%lu: after %llu bytes: %s\n", ips, port, total,
				strerror(err));
			return nt_status(err);
		}
		total += (unsigned long long)w;
	}
	/* The figure counts bytes the peer acknowledged: wait (up to 5 s) for the queue to drain. */
	for (double stop = nt_now_ms() + MINIVM_NET_TIMEOUT_MS; nt_now_ms() < stop;) {
		if (ioctl(fd, TIOCOUTQ, &outq) != 0 || outq == 0)
			break;
		usleep(1000);
	}
	t = nt_now_ms() - t0;
	if (outq > 0)
		total -= (unsigned long long)outq;
	close(fd);
	printf("sent %llu bytes in %.0f ms: %.2f MB/s\n", total, t, t > 0 ? (double)total / t / 1e3 : 0.0);
	return NT_OK;
}

static int nt_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* tcp-rr: count 64-byte request/response round trips; median/min/max in microseconds. */
static int nt_tcp_rr(const char *ips, struct in_addr ip, unsigned long port, unsigned long count)
{
	char req[NT_RR_SIZE], resp[NT_RR_SIZE];
	double *us = malloc(count * sizeof(double)), median;
	int one = 1, fd, err;

	if (!us) {
		fprintf(stderr, "minivm-net: tcp-rr: out of memory for %lu samples\n", count);
		return NT_LOCAL;
	}
	fd = nt_connect(SOCK_STREAM, ip, (unsigned int)port, MINIVM_NET_TIMEOUT_MS);
	if (fd < 0) {
		free(us);
		return nt_fail("tcp-rr: connect", ips, port, -fd);
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (unsigned long i = 0; i < count; i++) {
		double t0 = nt_now_ms();
		size_t have = 0;

		memset(req, 'a' + (int)(i % 26), sizeof(req));
		err = nt_write_all(fd, req, sizeof(req), MINIVM_NET_TIMEOUT_MS);
		while (!err && have < sizeof(resp)) {
			ssize_t got = nt_read(fd, resp + have, sizeof(resp) - have, MINIVM_NET_TIMEOUT_MS);

			if (got == 0) {
				fprintf(stderr, "minivm-net: tcp-rr %s:%lu: closed by the peer in round trip %lu\n",
					ips, port, i + 1);
				close(fd);
				free(us);
				return NT_PROTO;
			}
			if (got < 0)
				err = (int)got;
			else
				have += (size_t)got;
		}
		if (err) {
			fprintf(stderr, "minivm-net: tcp-rr %s:%lu: round trip %lu: %s\n", ips, port, i + 1,
				err == -ETIMEDOUT ? "no answer within 5 s" : strerror(-err));
			close(fd);
			free(us);
			return nt_status(-err);
		}
		us[i] = (nt_now_ms() - t0) * 1e3;
		if (memcmp(req, resp, sizeof(req)) != 0) {
			fprintf(stderr, "minivm-net: tcp-rr %s:%lu: round trip %lu: the answer is not the request (not an echo server?)\n",
				ips, port, i + 1);
			close(fd);
			free(us);
			return NT_PROTO;
		}
	}
	close(fd);
	qsort(us, count, sizeof(double), nt_cmp_double);
	median = count % 2 ? us[count / 2] : (us[count / 2 - 1] + us[count / 2]) / 2;
	printf("rr %lu x %d bytes to %s:%lu: median %.0f us, min %.0f us, max %.0f us\n", count, NT_RR_SIZE,
	       ips, port, median, us[0], us[count - 1]);
	free(us);
	return NT_OK;
}

int main(int argc, char **argv)
{
	unsigned long port, n = MINIVM_NET_TIMEOUT_MS;
	struct in_addr ip;
	const char *cmd;

	if (argc < 2)
		return nt_usage();
	cmd = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "raw")) {
		if (argc != 7 && argc != 8)
			return nt_usage();
		port = 9;
		if (argc == 8 && nt_num(argv[7], 1, 65535, &port))
			return nt_usage();
		return nt_raw(argv[2], argv[3], argv[4], argv[5], argv[6], port);
	}
	if (argc < 4 || inet_pton(AF_INET, argv[2], &ip) != 1 || nt_num(argv[3], 1, 65535, &port)) {
		if (argc >= 4)
			fprintf(stderr, "minivm-net: %s: want a dotted-quad IP and a port 1-65535\n", cmd);
		return nt_usage();
	}
	if (!strcmp(cmd, "http-get") && argc == 5)
		return nt_http_get(argv[2], ip, port, argv[4]);
	if (!strcmp(cmd, "tcp-connect") && (argc == 4 || (argc == 5 && !nt_num(argv[4], 1, 600000, &n))))
		return nt_tcp_connect(argv[2], ip, port, n);
	if (!strcmp(cmd, "udp-echo") && (argc == 5 || (argc == 6 && !nt_num(argv[5], 1, 600000, &n))))
		return nt_udp_echo(argv[2], ip, port, argv[4], n);
	if (!strcmp(cmd, "tcp-send") && argc == 5 && !nt_num(argv[4], 1, 3600, &n))
		return nt_tcp_send(argv[2], ip, port, n);
	if (!strcmp(cmd, "tcp-rr") && argc == 5 && !nt_num(argv[4], 1, 1000000, &n))
		return nt_tcp_rr(argv[2], ip, port, n);
	return nt_usage();
}
