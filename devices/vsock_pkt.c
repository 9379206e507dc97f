/* virtio-vsock protocol logic without I/O: header checks, the CONNECT line, credit arithmetic, the state table. */
#include "devices/vsock_pkt.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct virtio_vsock_hdr) == VSOCK_HDR_SIZE, "header size");

int vsock_hdr_parse(const uint8_t raw[VSOCK_HDR_SIZE], uint64_t guest_cid, struct vsock_hdr *h,
		    const char **why)
{
	struct virtio_vsock_hdr w;

	/* One copy of the guest's bytes; every check below reads the copy. */
	memcpy(&w, raw, sizeof(w));
	h->src_cid = w.src_cid;
	h->dst_cid = w.dst_cid;
	h->src_port = w.src_port;
	h->dst_port = w.dst_port;
	h->len = w.len;
	h->type = w.type;
	h->op = w.op;
	h->flags = w.flags;
	h->buf_alloc = w.buf_alloc;
	h->fwd_cnt = w.fwd_cnt;
	*why = NULL;

	if (h->src_cid != guest_cid) {
		*why = "src_cid is not the guest's CID";
		return -EADDRNOTAVAIL;
	}
	if (h->dst_cid != VIRTIO_VSOCK_CID_HOST) {
		*why = "dst_cid is not the host (2)";
		return -EADDRNOTAVAIL;
	}
	if (h->op < VIRTIO_VSOCK_OP_REQUEST || h->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		*why = "unknown op";
		return -EINVAL;
	}
	/* SEQPACKET is not offered (VIRTIO_VSOCK_F_SEQPACKET), so STREAM only. */
	if (h->type != VIRTIO_VSOCK_TYPE_STREAM) {
		*why = "type is not STREAM";
		return -EINVAL;
	}
	if (h->len > VSOCK_MAX_PKT_LEN) {
		*why = "len exceeds 64 KiB";
		return -EINVAL;
	}
	if (h->len && h->op != VIRTIO_VSOCK_OP_RW) {
		*why = "payload on a packet other than RW";
		return -EINVAL;
	}
	if (h->op == VIRTIO_VSOCK_OP_SHUTDOWN &&
	    (h->flags & ~(VIRTIO_VSOCK_SHUTDOWN_F_RCV | VIRTIO_VSOCK_SHUTDOWN_F_SEND))) {
		*why = "unknown SHUTDOWN flags";
		return -EINVAL;
	}
	return 0;
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE])
{
	struct virtio_vsock_hdr w = {
		.src_cid = h->src_cid,
		.dst_cid = h->dst_cid,
		.src_port = h->src_port,
		.dst_port = h->dst_port,
		.len = h->len,
		.type = h->type,
		.op = h->op,
		.flags = h->flags,
		.buf_alloc = h->buf_alloc,
		.fwd_cnt = h->fwd_cnt,
	};

	memcpy(raw, &w, sizeof(w));
}

int vsock_parse_connect_line(const char *buf, size_t len, uint32_t *port)
{
	static const char verb[] = "CONNECT ";
	const size_t vlen = sizeof(verb) - 1;
	uint64_t v = 0;
	size_t i, ndig;

	if (len < vlen + 2 || len > VSOCK_CONNECT_LINE_MAX || buf[len - 1] != '\n')
		return -EINVAL;
	if (memcmp(buf, verb, vlen))
		return -EINVAL;
	ndig = len - 1 - vlen;
	if (ndig < 1 || ndig > 10)
		return -EINVAL;
	for (i = vlen; i < len - 1; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(buf[i] - '0'); /* <= 10 digits: no overflow in 64 bits */
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

/* ---- credit ---- */

void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc, uint32_t peer_buf_alloc,
		       uint32_t peer_fwd_cnt)
{
	memset(c, 0, sizeof(*c));
	c->buf_alloc = buf_alloc;
	c->peer_buf_alloc = peer_buf_alloc;
	c->peer_fwd_cnt = peer_fwd_cnt;
}

bool vsock_credit_peer_update(struct vsock_credit *c, uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt)
{
	uint32_t before = vsock_credit_peer_avail(c);

	c->peer_buf_alloc = peer_buf_alloc;
	c->peer_fwd_cnt = peer_fwd_cnt;
	return vsock_credit_peer_avail(c) > before;
}

uint32_t vsock_credit_peer_avail(const struct vsock_credit *c)
{
	/* Wrapping subtraction, as the spec's counters wrap (5.10.6.3). A guest
	 * may report a fwd_cnt ahead of what we sent; then in_flight wraps to a
	 * huge value and the credit is 0, never more than peer_buf_alloc. */
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	if (in_flight >= c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

bool vsock_credit_rx_ok(const struct vsock_credit *c, uint32_t len)
{
	/* What the guest may have in flight: buf_alloc minus the bytes it
	 * knows are unconsumed (rx_cnt - last_fwd_sent, <= buf_alloc since we
	 * only ever accept what fits). */
	uint32_t used = c->rx_cnt - c->last_fwd_sent;

	if (used > c->buf_alloc)
		return false;
	return len <= c->buf_alloc - used;
}

void vsock_credit_on_rx(struct vsock_credit *c, uint32_t len)
{
	c->rx_cnt += len;
}

void vsock_credit_on_consumed(struct vsock_credit *c, uint32_t len)
{
	c->fwd_cnt += len;
}

void vsock_credit_on_tx(struct vsock_credit *c, uint32_t len)
{
	c->tx_cnt += len;
}

uint32_t vsock_credit_unconsumed(const struct vsock_credit *c)
{
	return c->rx_cnt - c->fwd_cnt;
}

void vsock_credit_stamp(struct vsock_credit *c, struct vsock_hdr *h)
{
	h->buf_alloc = c->buf_alloc;
	h->fwd_cnt = c->fwd_cnt;
	c->last_fwd_sent = c->fwd_cnt;
}

bool vsock_credit_update_due(const struct vsock_credit *c)
{
	uint32_t believed_used = c->rx_cnt - c->last_fwd_sent;

	return c->fwd_cnt != c->last_fwd_sent && believed_used >= c->buf_alloc / 2;
}

/* ---- the state table ---- */

#define IGN VSOCK_ACT_IGNORE
#define CON VSOCK_ACT_CONNECT
#define EST VSOCK_ACT_ESTABLISH
#define DAT VSOCK_ACT_DATA
#define CRD VSOCK_ACT_CREDIT
#define CRR VSOCK_ACT_CREDIT_REPLY
#define SHU VSOCK_ACT_SHUTDOWN
#define CLO VSOCK_ACT_CLOSE
#define RES VSOCK_ACT_RESET

/*
 * Rows: states; columns: ops 1..7 (REQUEST, RESPONSE, RST, SHUTDOWN, RW,
 * CREDIT_UPDATE, CREDIT_REQUEST). Firecracker's csm/connection.rs and Linux's
 * virtio_transport_recv_pkt() behave the same way: a packet for no
 * connection gets RST unless it is a REQUEST (connect) or an RST (never
 * answer an RST, or two ends could ping-pong); in CLOSING the host side is
 * gone, so data is dropped and a SHUTDOWN ends it with RST.
 */
static const enum vsock_action vsock_table[VSOCK_ST_COUNT][7] = {
	[VSOCK_ST_NONE] = { CON, RES, IGN, RES, RES, RES, RES },
	[VSOCK_ST_CONNECTING] = { RES, EST, CLO, RES, RES, RES, RES },
	[VSOCK_ST_ESTABLISHED] = { RES, RES, CLO, SHU, DAT, CRD, CRR },
	[VSOCK_ST_CLOSING] = { RES, RES, CLO, RES, IGN, IGN, IGN },
};

enum vsock_action vsock_conn_action(enum vsock_state st, uint16_t op)
{
	if ((unsigned int)st >= VSOCK_ST_COUNT)
		return VSOCK_ACT_RESET;
	if (op < VIRTIO_VSOCK_OP_REQUEST || op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_ACT_RESET;
	return vsock_table[st][op - 1];
}

enum vsock_state vsock_conn_next(enum vsock_state st, enum vsock_action act)
{
	switch (act) {
	case VSOCK_ACT_CONNECT:
	case VSOCK_ACT_ESTABLISH:
		return VSOCK_ST_ESTABLISHED;
	case VSOCK_ACT_CLOSE:
	case VSOCK_ACT_RESET:
		return VSOCK_ST_NONE;
	case VSOCK_ACT_IGNORE:
	case VSOCK_ACT_DATA:
	case VSOCK_ACT_CREDIT:
	case VSOCK_ACT_CREDIT_REPLY:
	case VSOCK_ACT_SHUTDOWN:
		break;
	}
	return st;
}

const char *vsock_op_name(uint16_t op)
{
	static const char *const names[] = {
		"INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW", "CREDIT_UPDATE",
		"CREDIT_REQUEST",
	};

	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "unknown";
}

const char *vsock_state_name(enum vsock_state st)
{
	static const char *const names[] = { "none", "connecting", "established", "closing" };

	return (unsigned int)st < VSOCK_ST_COUNT ? names[st] : "invalid";
}
