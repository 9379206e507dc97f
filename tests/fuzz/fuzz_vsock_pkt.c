/* libFuzzer target: the vsock header parser, the CONNECT line parser, and the state table with credit accounting. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vsock_pkt.h"

#define GUEST_CID 3
#define BUF_ALLOC (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *p)
{
	struct vsock_hdr h, h2;
	uint8_t raw[VSOCK_HDR_SIZE];
	const char *why;
	int r = vsock_hdr_parse(p, GUEST_CID, &h, &why);

	if (r != 0 && r != -EINVAL && r != -EADDRNOTAVAIL)
		abort();
	if ((r == 0) != (why == NULL))
		abort();
	/* Encoding what was parsed gives back the same bytes, and a valid
	 * header stays valid. */
	vsock_hdr_encode(&h, raw);
	if (memcmp(raw, p, VSOCK_HDR_SIZE))
		abort();
	if (r == 0) {
		if (vsock_hdr_parse(raw, GUEST_CID, &h2, &why) != 0)
			abort();
		if (h.len > VSOCK_MAX_PKT_LEN || (h.len && h.op != VIRTIO_VSOCK_OP_RW))
			abort();
		if (h.src_cid != GUEST_CID || h.dst_cid != VIRTIO_VSOCK_CID_HOST)
			abort();
	}
}

static void check_line(const uint8_t *p, size_t n)
{
	char buf[64];
	uint32_t port, port2;
	int len;

	if (vsock_parse_connect_line((const char *)p, n, &port))
		return;
	len = snprintf(buf, sizeof(buf), "CONNECT %u\n", port);
	if (vsock_parse_connect_line(buf, (size_t)len, &port2) || port2 != port)
		abort();
	if (n > VSOCK_CONNECT_LINE_MAX)
		abort();
}

/* A connection driven by a stream of guest headers; the host side
 * consumes a fuzzed amount after each one. Invariants: we never buffer more
 * than buf_alloc, never let the guest think it has more credit than that,
 * and never send the guest more than it allowed. */
static void run_conn(const uint8_t *p, size_t n)
{
	enum vsock_state st = VSOCK_ST_ESTABLISHED;
	struct vsock_credit c;
	struct vsock_hdr out = { 0 };

	vsock_credit_init(&c, BUF_ALLOC, 0, 0);
	while (n >= VSOCK_HDR_SIZE + 2 && st != VSOCK_ST_NONE) {
		struct vsock_hdr h;
		const char *why;
		enum vsock_action a;
		uint32_t consume, send;

		if (vsock_hdr_parse(p, GUEST_CID, &h, &why)) {
			p += VSOCK_HDR_SIZE + 2;
			n -= VSOCK_HDR_SIZE + 2;
			continue;
		}
		a = vsock_conn_action(st, h.op);
		vsock_credit_peer_update(&c, h.buf_alloc, h.fwd_cnt);
		if (a == VSOCK_ACT_DATA) {
			if (!vsock_credit_rx_ok(&c, h.len)) {
				a = VSOCK_ACT_RESET;
			} else {
				vsock_credit_on_rx(&c, h.len);
			}
		}
		st = vsock_conn_next(st, a);
		if (a == VSOCK_ACT_SHUTDOWN && h.flags == 3)
			st = VSOCK_ST_CLOSING;
		consume = (uint32_t)p[VSOCK_HDR_SIZE] << 10;
		if (consume > vsock_credit_unconsumed(&c))
			consume = vsock_credit_unconsumed(&c);
		vsock_credit_on_consumed(&c, consume);
		send = (uint32_t)p[VSOCK_HDR_SIZE + 1] << 9;
		if (send > vsock_credit_peer_avail(&c))
			send = vsock_credit_peer_avail(&c);
		vsock_credit_on_tx(&c, send);
		if (vsock_credit_update_due(&c) || a == VSOCK_ACT_CREDIT_REPLY || send)
			vsock_credit_stamp(&c, &out);
		if (vsock_credit_unconsumed(&c) > BUF_ALLOC)
			abort();
		if (c.rx_cnt - c.last_fwd_sent > BUF_ALLOC)
			abort();
		if (vsock_credit_peer_avail(&c) > c.peer_buf_alloc)
			abort();
		p += VSOCK_HDR_SIZE + 2;
		n -= VSOCK_HDR_SIZE + 2;
	}
	(void)vsock_state_name(st);
}

/* Input: one mode byte, then the bytes for that mode. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (size >= 1 + VSOCK_HDR_SIZE)
			check_header(data + 1);
		break;
	case 1:
		check_line(data + 1, size - 1);
		break;
	case 2:
		run_conn(data + 1, size - 1);
		break;
	}
	return 0;
}
