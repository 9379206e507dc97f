/* The guest's network setup by PID 1: lo always, and the minivm.net= interface, route and resolver. */
#ifndef AGENT_NETCFG_H
#define AGENT_NETCFG_H

#include <stddef.h>
#include <stdint.h>

#include "cmdline.h"

/* Where the resolver file goes when /etc/resolv.conf cannot be written. */
#define NETCFG_RESOLV_FALLBACK "/run/resolv.conf"

/*
 * PID 1, after the mounts (/proc, /sys, /run) and the overlay, before the
 * READY marker. Brings lo up with 127.0.0.1/8, always. With MINIVM_NET_PARAM
 * in cmdline[0..len) (the contents of /proc/cmdline), also configures the
 * first non-loopback interface (lowest ifindex) as the value says (see
 * minivm_guest.h), sets it up, adds the default route via the gateway and
 * writes the resolver (netcfg_resolv_install). Every failure is one
 * "minivm-init: net: ..." line on stderr (the console); nothing fails the
 * boot, and nothing is printed on success. Without the token nothing but lo
 * is touched.
 */
void netcfg_setup(const char *cmdline, size_t len);

/*
 * Write "nameserver A.B.C.D\n" (dns in host byte order, non-zero) to path,
 * created mode 0644 or truncated. 0 or -errno.
 */
__attribute__((warn_unused_result)) int netcfg_resolv_write(const char *path, uint32_t dns);

/*
 * The resolver for dns: into etc_path (normally /etc/resolv.conf); when
 * that cannot be written (a read-only root, --scratch none), into
 * fallback_path, then bind-mounted over etc_path if etc_path exists.
 * Returns 0 (written to etc_path), 1 (written to fallback_path and
 * bind-mounted over etc_path), or -errno when neither worked: then
 * *etc_err is etc_path's error and *what the step that failed last, a
 * static string: "fallback" (fallback_path could not be written), "stat"
 * (etc_path does not exist: nothing to bind over; the file is at
 * fallback_path) or "bind" (the bind mount failed).
 */
__attribute__((warn_unused_result)) int
netcfg_resolv_install(const char *etc_path, const char *fallback_path, uint32_t dns,
		      int *etc_err, const char **what);

#endif
