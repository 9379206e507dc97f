/* The guest-to-host contract shared by minivm (host) and its init/agent (guest). */
#ifndef MINIVM_GUEST_H
#define MINIVM_GUEST_H

/*
 * I/O ports the VMM handles itself (DESIGN.md, "Guest to host signals
 * without a device"). The guest reaches them from user space via ioperm().
 *
 * MINIVM_PORT_MARKER: outb(phase) once per boot phase, phases below.
 * MINIVM_PORT_STATUS: outl(status) once, just before the guest resets the
 *   machine (reboot=k, i8042 port 0x64 value 0xfe). The low 8 bits are the
 *   exit status minivm returns. A reset with no status written first is a
 *   guest crash.
 */
#define MINIVM_PORT_MARKER 0x0f40
#define MINIVM_PORT_STATUS 0x0f44

#define MINIVM_PHASE_INIT_STARTED 1 /* first thing /sbin/init does */
#define MINIVM_PHASE_READY 2        /* mounts done, about to run the work */
#define MINIVM_PHASE_USER 16        /* 16-255: free for workloads (minivm-mark N);
				     * minivm -v logs each with the host's time */

/*
 * The program init runs is passed on the kernel command line as one token
 * MINIVM_RUN_PARAM<percent-encoded command string>. The command string is
 * split into argv by the agent's shell-like word splitter (single and double
 * quotes, backslash escapes; no expansion). Every byte outside
 * [A-Za-z0-9._/,:=+@-] is encoded as %XX (uppercase hex).
 */
#define MINIVM_RUN_PARAM "minivm.run="

/*
 * The writable layer over the read-only root (rootfs/README.md, "The
 * overlay"): MINIVM_SCRATCH_PARAM then "vdX" (an ext4 disk the host made:
 * /dev/vdX holds upper/ and work/) or "tmpfs" or "tmpfs:BYTES" (a tmpfs of
 * at most BYTES). PID 1 mounts an overlay of the root and that layer and
 * makes it the root of everything it runs. Without the token the root is
 * used as it is.
 */
#define MINIVM_SCRATCH_PARAM "minivm.scratch="

/*
 * The guest's IPv4 network (a virtio-net device, host option --net):
 * MINIVM_NET_PARAM then "ADDR/LEN,GW" or "ADDR/LEN,GW,DNS", e.g.
 * minivm.net=10.0.2.15/24,10.0.2.1,10.0.2.1. ADDR, GW and DNS are dotted
 * quads of decimal octets without leading zeros, LEN the prefix length
 * 1-32; GW lies in ADDR/LEN and differs from ADDR, and for LEN <= 30
 * neither ADDR nor GW is the subnet's network or broadcast address (so
 * LEN 32 is never valid: no gateway fits). agent_net_parse() is the one
 * definition, agent_net_format() what the host writes. PID 1 brings up lo
 * always; with the token it also gives the first non-loopback interface
 * ADDR/LEN, sets it up, adds the default route via GW and writes
 * "nameserver DNS" to /etc/resolv.conf, before the agent is ready
 * (rootfs/README.md, "The network").
 */
#define MINIVM_NET_PARAM "minivm.net="

/* Exit statuses init reports for failures of its own (shell conventions). */
#define MINIVM_STATUS_BAD_COMMAND 2       /* minivm.run= malformed or empty */
#define MINIVM_STATUS_INIT_ERROR 125      /* init itself failed (no /proc, fork) */
#define MINIVM_STATUS_NOT_EXECUTABLE 126
#define MINIVM_STATUS_NOT_FOUND 127
#define MINIVM_STATUS_SIGNAL_BASE 128 /* 128 + signal number */

#endif
