/* virtio-vsock: a guest's stream sockets to host Unix sockets, in Firecracker's hybrid form. */
#ifndef MINIVM_VIRTIO_VSOCK_H
#define MINIVM_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_dev.h"

struct evl;

#define VIRTIO_VSOCK_QUEUE_SIZE 256
/* The receive buffer advertised per connection (buf_alloc): the most
 * guest->host bytes the device ever holds for one connection. */
#define VIRTIO_VSOCK_BUF_ALLOC (256u << 10)
/* At most this many connections (both directions, all states). */
#define VIRTIO_VSOCK_MAX_CONNS 1024u
/* At most this many bytes of guest->host data buffered over all
 * connections; a connection whose buffer would cross it is reset. */
#define VIRTIO_VSOCK_MAX_BUFFERED (32u << 20)
/* Host-initiated connections get host ports from this range, as in
 * Firecracker: [2^30, 2^31), allocated in turn, skipping ports in use. */
#define VIRTIO_VSOCK_HOST_PORT_FIRST (1u << 30)
#define VIRTIO_VSOCK_HOST_PORT_END (1u << 31)
/* Timeouts (ms): a host client's CONNECT line; the guest's answer to a
 * REQUEST; the guest's RST after the host side closed (SHUTDOWN sent); the
 * flush of buffered bytes to a host socket after the guest closed. */
#define VIRTIO_VSOCK_LINE_TIMEOUT_MS 5000
#define VIRTIO_VSOCK_CONNECT_TIMEOUT_MS 5000
#define VIRTIO_VSOCK_CLOSE_TIMEOUT_MS 5000
#define VIRTIO_VSOCK_DRAIN_TIMEOUT_MS 10000

/*
 * A virtio-vsock device (id 19; rx, tx and event queues; config: the guest
 * CID) whose host side is the Unix socket at uds_path:
 *
 * - Host-initiated: a host program connects to uds_path and writes
 *   "CONNECT <port>\n" (at most 32 bytes, within 5 s; anything else closes
 *   it). The device picks a host port (VIRTIO_VSOCK_HOST_PORT_FIRST...) and
 *   sends REQUEST to guest port <port>; on RESPONSE it writes
 *   "OK <hostport>\n" to the socket and bytes flow both ways; on RST (no
 *   listener in the guest), or no answer within 5 s, it closes the socket.
 *   A client connecting while the guest driver is not running is closed at
 *   once (retry until the guest is up).
 * - Guest-initiated: a REQUEST to host port P connects to the Unix socket
 *   "<uds_path>_<P>" (non-blocking); RESPONSE on success, RST otherwise.
 * - Closing: a host half-close (EOF on read) becomes SHUTDOWN(SEND); a host
 *   that cannot take bytes any more (closed, EPIPE) SHUTDOWN(RCV); once both
 *   were sent the device waits 5 s for the guest's RST, then sends RST and
 *   forgets the connection. A guest SHUTDOWN(SEND) becomes shutdown(SHUT_WR)
 *   once buffered bytes are written, SHUTDOWN(RCV) shutdown(SHUT_RD); a full
 *   guest shutdown gets RST at once, and buffered bytes are still written to
 *   the host socket for up to 10 s before it is closed. Guest RST closes.
 * - Flow control (spec 5.10.6.3): the guest gets VIRTIO_VSOCK_BUF_ALLOC of
 *   credit per connection; bytes the host socket cannot take yet are held up
 *   to that credit; a guest that sends beyond it is reset (logged, rate-
 *   limited). The host socket is read only while the guest's credit and rx
 *   buffers allow. CREDIT_UPDATE goes out as bytes are consumed and in
 *   answer to CREDIT_REQUEST.
 * - Bad packets get RST (never in answer to an RST) and a rate-limited log
 *   line; packets with a spoofed source or a destination other than the
 *   host are dropped; a broken ring fails the device (NEEDS_RESET). Device
 *   reset closes every connection.
 *
 * guest_cid: 3 .. 0xfffffffe. evl: the event loop that watches the device's
 * sockets (one epoll fd and one eventfd are added to it); it must outlive
 * the device. NULL for tests, which then drive the host side with
 * virtio_vsock_poll(). Call at setup time, before evl_run(). The socket file
 * must not exist (a clear error if it does); it is removed on destroy.
 * Returns the device (bind it with vmmio_create, which then owns it), or NULL
 * with a one-line message in err.
 */
struct virtio_dev *virtio_vsock_create(const char *uds_path, uint64_t guest_cid, struct evl *evl,
				       char *err, size_t errlen);

/*
 * The path by which the device reaches its socket from now on, for a VMM
 * that pivot_root()s into a jail after creating it (the same socket seen
 * from inside, e.g. "/vsock.sock"): guest connections to host port P then
 * go to "<path>_<P>" and destroy removes <path> (if it is still the socket
 * the device bound). Call at setup time, before the device runs. 0, or
 * -ENAMETOOLONG (the path leaves no room for "_<port>"), -ENOMEM.
 */
int virtio_vsock_set_path(struct virtio_dev *dev, const char *path)
	__attribute__((warn_unused_result));

/*
 * Drops every connection (closing their host sockets) and posts
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue (at once, or as
 * soon as the driver makes an event buffer available), after which the
 * guest's driver resets its sockets and rereads its CID: for snapshot
 * restore. Call without the device's lock, from any thread. Returns 0, or
 * -ENOTCONN when the driver is not running (there is nothing to reset).
 */
int virtio_vsock_send_transport_reset(struct virtio_dev *dev) __attribute__((warn_unused_result));

/*
 * Serves the host side once: waits up to timeout_ms (0: no wait) for socket
 * events and handles them, as the event loop's callback does. For tests
 * built without an event loop. Call without the device's lock.
 */
void virtio_vsock_poll(struct virtio_dev *dev, int timeout_ms);

/* The number of connections the device holds, all states (tests, logs).
 * Call without the device's lock. */
unsigned int virtio_vsock_nr_conns(struct virtio_dev *dev);

#endif
