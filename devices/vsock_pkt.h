/* virtio-vsock protocol logic without I/O: header parse/encode, the CONNECT line, credit accounting, the connection state table. */
#ifndef MINIVM_VSOCK_PKT_H
#define MINIVM_VSOCK_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_spec.h"

#define VSOCK_HDR_SIZE 44u
/* The largest payload one packet carries (Linux: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PKT_LEN (64u * 1024u)
/* The longest "CONNECT <port>\n" line a host client may send, newline included. */
#define VSOCK_CONNECT_LINE_MAX 32u

/* A header in host byte order (the wire form is struct virtio_vsock_hdr). */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/*
 * Parses the 44 header bytes of a packet the guest (whose CID is guest_cid)
 * sent on its tx queue: the bytes are read once, then checked. Returns
 *   0               a valid header in *h;
 *   -EADDRNOTAVAIL  src_cid is not the guest's or dst_cid is not the host's
 *                   (2): drop it, no reply (its addressing is a lie);
 *   -EINVAL         anything else wrong (type not STREAM, unknown op,
 *                   len > VSOCK_MAX_PKT_LEN, payload on a packet other than
 *                   RW, unknown SHUTDOWN flags): *h is still filled, so the
 *                   caller can answer with RST (never to an RST).
 * *why gets a static string saying what was wrong (NULL on success).
 */
int vsock_hdr_parse(const uint8_t raw[VSOCK_HDR_SIZE], uint64_t guest_cid, struct vsock_hdr *h,
		    const char **why) __attribute__((warn_unused_result));

/* Writes h in wire form (little-endian, packed) to raw. */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE]);

/*
 * Parses a host client's request line "CONNECT <port>\n": buf holds len
 * bytes ending with the newline. Exactly one space, a decimal port of 1 to
 * 10 digits without sign or leading junk, value <= UINT32_MAX. Returns 0 with
 * *port set, or -EINVAL.
 */
int vsock_parse_connect_line(const char *buf, size_t len, uint32_t *port)
	__attribute__((warn_unused_result));

/* ---- credit (spec 5.10.6.3): all counters are free-running u32 ---- */

struct vsock_credit {
	/* Our receive side (guest -> host bytes). */
	uint32_t buf_alloc;     /* what we advertise; constant per connection */
	uint32_t rx_cnt;        /* payload bytes received from the guest */
	uint32_t fwd_cnt;       /* of those, bytes the host side consumed */
	uint32_t last_fwd_sent; /* fwd_cnt in the last header sent to the guest */
	/* Our send side (host -> guest bytes). */
	uint32_t tx_cnt;         /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc; /* from the guest's latest header */
	uint32_t peer_fwd_cnt;   /* from the guest's latest header */
};

/* A fresh connection advertising buf_alloc, with the guest's first header's
 * credit fields. */
void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc, uint32_t peer_buf_alloc,
		       uint32_t peer_fwd_cnt);

/* Takes the credit fields of any header the guest sent. Returns true when
 * the bytes we may send grew (a blocked sender may go on). */
bool vsock_credit_peer_update(struct vsock_credit *c, uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt);

/* How many payload bytes we may send the guest now (0 when a guest shrank
 * its buffer under what is in flight). */
uint32_t vsock_credit_peer_avail(const struct vsock_credit *c);

/* Whether an RW of len bytes from the guest stays within the credit we
 * advertised (buf_alloc minus what is unconsumed as of the fwd_cnt we last
 * told it). A guest that exceeds it is lying and gets RST. */
bool vsock_credit_rx_ok(const struct vsock_credit *c, uint32_t len);

/* Bookkeeping: len bytes came from the guest / were consumed by the host /
 * went to the guest. */
void vsock_credit_on_rx(struct vsock_credit *c, uint32_t len);
void vsock_credit_on_consumed(struct vsock_credit *c, uint32_t len);
void vsock_credit_on_tx(struct vsock_credit *c, uint32_t len);

/* Bytes received from the guest and not yet consumed by the host. */
uint32_t vsock_credit_unconsumed(const struct vsock_credit *c);

/* Fills buf_alloc and fwd_cnt of a header about to go to the guest and
 * remembers the fwd_cnt sent. */
void vsock_credit_stamp(struct vsock_credit *c, struct vsock_hdr *h);

/* Whether to send CREDIT_UPDATE: the guest believes less than half of
 * buf_alloc is free, and we have consumed bytes it has not heard of. */
bool vsock_credit_update_due(const struct vsock_credit *c);

/* ---- connection state: what a guest packet does in each state ---- */

enum vsock_state {
	VSOCK_ST_NONE = 0,    /* no connection with these ports */
	VSOCK_ST_CONNECTING,  /* host-initiated: REQUEST sent, RESPONSE awaited */
	VSOCK_ST_ESTABLISHED, /* bytes flow (each way until shut down) */
	VSOCK_ST_CLOSING,     /* the host side is gone: SHUTDOWN sent, RST awaited */
	VSOCK_ST_COUNT
};

enum vsock_action {
	VSOCK_ACT_IGNORE = 0,   /* drop the packet */
	VSOCK_ACT_CONNECT,      /* NONE + REQUEST: connect to the host's listener */
	VSOCK_ACT_ESTABLISH,    /* CONNECTING + RESPONSE: the guest accepted */
	VSOCK_ACT_DATA,         /* RW: forward the payload */
	VSOCK_ACT_CREDIT,       /* CREDIT_UPDATE: the header's credit fields only */
	VSOCK_ACT_CREDIT_REPLY, /* CREDIT_REQUEST: answer with CREDIT_UPDATE */
	VSOCK_ACT_SHUTDOWN,     /* SHUTDOWN: apply the guest's flags */
	VSOCK_ACT_CLOSE,        /* RST from the guest: free without reply */
	VSOCK_ACT_RESET,        /* protocol error: send RST, free */
};

/* The action for a guest packet with `op` on a connection in `st` (table
 * driven; an op outside 1..7 is VSOCK_ACT_RESET, but RST never gets RST). */
enum vsock_action vsock_conn_action(enum vsock_state st, uint16_t op);

/* The state after `act` in `st` (VSOCK_ST_NONE: the connection is gone).
 * SHUTDOWN leaves the state alone: the device decides from the flags. */
enum vsock_state vsock_conn_next(enum vsock_state st, enum vsock_action act);

/* Names for logs. */
const char *vsock_op_name(uint16_t op);
const char *vsock_state_name(enum vsock_state st);

#endif
