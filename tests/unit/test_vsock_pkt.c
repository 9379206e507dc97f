/* Unit tests for the pure virtio-vsock logic (devices/vsock_pkt.c): headers, CONNECT lines, credit, the state table. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vsock_pkt.h"

#define GUEST_CID 3

static struct vsock_hdr good_hdr(uint16_t op, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = VIRTIO_VSOCK_CID_HOST,
		.src_port = 1234,
		.dst_port = 5000,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = 65536,
		.fwd_cnt = 7,
	};

	return h;
}

static int parse(const struct vsock_hdr *in, struct vsock_hdr *out, const char **why)
{
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(in, raw);
	return vsock_hdr_parse(raw, GUEST_CID, out, why);
}

START_TEST(test_hdr_roundtrip_and_layout)
{
	struct vsock_hdr h = good_hdr(VIRTIO_VSOCK_OP_RW, 100), out;
	uint8_t raw[VSOCK_HDR_SIZE];
	const char *why = "x";
	uint32_t v32;
	uint16_t v16;

	h.flags = 0;
	vsock_hdr_encode(&h, raw);
	/* Wire offsets, spec 5.10.6. */
	memcpy(&v32, raw + 16, 4);
	ck_assert_uint_eq(v32, 1234);
	memcpy(&v32, raw + 20, 4);
	ck_assert_uint_eq(v32, 5000);
	memcpy(&v32, raw + 24, 4);
	ck_assert_uint_eq(v32, 100);
	memcpy(&v16, raw + 28, 2);
	ck_assert_uint_eq(v16, VIRTIO_VSOCK_TYPE_STREAM);
	memcpy(&v16, raw + 30, 2);
	ck_assert_uint_eq(v16, VIRTIO_VSOCK_OP_RW);
	memcpy(&v32, raw + 36, 4);
	ck_assert_uint_eq(v32, 65536);
	memcpy(&v32, raw + 40, 4);
	ck_assert_uint_eq(v32, 7);
	ck_assert_int_eq(vsock_hdr_parse(raw, GUEST_CID, &out, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_uint_eq(out.src_cid, h.src_cid);
	ck_assert_uint_eq(out.dst_cid, h.dst_cid);
	ck_assert_uint_eq(out.src_port, h.src_port);
	ck_assert_uint_eq(out.dst_port, h.dst_port);
	ck_assert_uint_eq(out.len, h.len);
	ck_assert_uint_eq(out.type, h.type);
	ck_assert_uint_eq(out.op, h.op);
	ck_assert_uint_eq(out.flags, h.flags);
	ck_assert_uint_eq(out.buf_alloc, h.buf_alloc);
	ck_assert_uint_eq(out.fwd_cnt, h.fwd_cnt);
}
END_TEST

START_TEST(test_hdr_rejects)
{
	static const struct {
		const char *name;
		uint64_t src_cid, dst_cid;
		uint16_t type, op;
		uint32_t len, flags;
		int want;
	} cases[] = {
		{ "src_cid spoofed", 4, 2, 1, 5, 0, 0, -EADDRNOTAVAIL },
		{ "src_cid host", 2, 2, 1, 5, 0, 0, -EADDRNOTAVAIL },
		{ "dst_cid not host", 3, 3, 1, 5, 0, 0, -EADDRNOTAVAIL },
		{ "dst_cid high bits", 3, 2 | (1ULL << 32), 1, 5, 0, 0, -EADDRNOTAVAIL },
		{ "op 0", 3, 2, 1, 0, 0, 0, -EINVAL },
		{ "op 8", 3, 2, 1, 8, 0, 0, -EINVAL },
		{ "op 0xffff", 3, 2, 1, 0xffff, 0, 0, -EINVAL },
		{ "seqpacket", 3, 2, 2, 5, 0, 0, -EINVAL },
		{ "type 0", 3, 2, 0, 1, 0, 0, -EINVAL },
		{ "len too big", 3, 2, 1, 5, VSOCK_MAX_PKT_LEN + 1, 0, -EINVAL },
		{ "len huge", 3, 2, 1, 5, 0xffffffffu, 0, -EINVAL },
		{ "payload on request", 3, 2, 1, 1, 1, 0, -EINVAL },
		{ "payload on credit update", 3, 2, 1, 6, 4, 0, -EINVAL },
		{ "shutdown bad flags", 3, 2, 1, 4, 0, 4, -EINVAL },
		{ "rw max len", 3, 2, 1, 5, VSOCK_MAX_PKT_LEN, 0, 0 },
		{ "shutdown both", 3, 2, 1, 4, 0, 3, 0 },
		{ "rst", 3, 2, 1, 3, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vsock_hdr h = good_hdr(cases[i].op, cases[i].len), out;
		const char *why = NULL;
		int r;

		h.src_cid = cases[i].src_cid;
		h.dst_cid = cases[i].dst_cid;
		h.type = cases[i].type;
		h.flags = cases[i].flags;
		r = parse(&h, &out, &why);
		ck_assert_msg(r == cases[i].want, "%s: got %d want %d", cases[i].name, r, cases[i].want);
		ck_assert_msg((r == 0) == (why == NULL), "%s: reason string", cases[i].name);
		if (r == -EINVAL)
			ck_assert_uint_eq(out.src_port, 1234); /* filled for the RST reply */
	}
}
END_TEST

START_TEST(test_connect_line)
{
	static const struct {
		const char *line;
		int want;
		uint32_t port;
	} cases[] = {
		{ "CONNECT 5000\n", 0, 5000 },
		{ "CONNECT 0\n", 0, 0 },
		{ "CONNECT 4294967295\n", 0, 4294967295u },
		{ "CONNECT 4294967296\n", -EINVAL, 0 },
		{ "CONNECT 99999999999\n", -EINVAL, 0 },
		{ "CONNECT 00000000005\n", -EINVAL, 0 },
		{ "CONNECT 0000000005\n", 0, 5 },
		{ "CONNECT \n", -EINVAL, 0 },
		{ "CONNECT  5\n", -EINVAL, 0 },
		{ "CONNECT -5\n", -EINVAL, 0 },
		{ "CONNECT +5\n", -EINVAL, 0 },
		{ "CONNECT 5 \n", -EINVAL, 0 },
		{ "CONNECT 5\r\n", -EINVAL, 0 },
		{ "connect 5\n", -EINVAL, 0 },
		{ "CONNECT 5", -EINVAL, 0 },
		{ "\n", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "CONNECTX5\n", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t port = 77;
		int r = vsock_parse_connect_line(cases[i].line, strlen(cases[i].line), &port);

		ck_assert_msg(r == cases[i].want, "'%s': got %d", cases[i].line, r);
		if (r == 0)
			ck_assert_uint_eq(port, cases[i].port);
		else
			ck_assert_uint_eq(port, 77);
	}
	/* A line longer than the bound is refused even when well-formed in
	 * shape; so is a NUL inside. */
	{
		char buf[64];
		uint32_t port;

		memset(buf, '0', sizeof(buf));
		memcpy(buf, "CONNECT ", 8);
		buf[40] = '\n';
		ck_assert_int_eq(vsock_parse_connect_line(buf, 41, &port), -EINVAL);
		ck_assert_int_eq(vsock_parse_connect_line("CONNECT 5\0\n", 11, &port), -EINVAL);
	}
}
END_TEST

START_TEST(test_credit_peer)
{
	struct vsock_credit c;

	vsock_credit_init(&c, 262144, 1000, 0);
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 1000);
	vsock_credit_on_tx(&c, 600);
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 400);
	vsock_credit_on_tx(&c, 400);
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 0);
	ck_assert(vsock_credit_peer_update(&c, 1000, 500)); /* consumed 500: credit back */
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 500);
	ck_assert(!vsock_credit_peer_update(&c, 1000, 500));
	/* A guest shrinking its buffer under what is in flight: 0, not a wrap. */
	ck_assert(!vsock_credit_peer_update(&c, 100, 500));
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 0);
	/* A guest claiming to have consumed more than was sent: 0. */
	vsock_credit_peer_update(&c, 1000, 5000);
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 0);
	/* Counters wrap (5.10.6.3). */
	c.tx_cnt = 0xfffffff0u;
	vsock_credit_peer_update(&c, 1000, 0xffffff00u);
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 1000 - 0xf0);
	vsock_credit_on_tx(&c, 0x20); /* wraps past 0 */
	ck_assert_uint_eq(vsock_credit_peer_avail(&c), 1000 - 0x110);
}
END_TEST

START_TEST(test_credit_rx)
{
	struct vsock_credit c;
	struct vsock_hdr h = { 0 };

	vsock_credit_init(&c, 1000, 0, 0);
	ck_assert(vsock_credit_rx_ok(&c, 1000));
	ck_assert(!vsock_credit_rx_ok(&c, 1001));
	vsock_credit_on_rx(&c, 700);
	ck_assert(vsock_credit_rx_ok(&c, 300));
	ck_assert(!vsock_credit_rx_ok(&c, 301));
	ck_assert_uint_eq(vsock_credit_unconsumed(&c), 700);
	/* Consumed but not yet told: the guest still has only 300 credit. */
	vsock_credit_on_consumed(&c, 700);
	ck_assert_uint_eq(vsock_credit_unconsumed(&c), 0);
	ck_assert(!vsock_credit_rx_ok(&c, 301));
	ck_assert(vsock_credit_update_due(&c)); /* 700 >= 1000 / 2 believed used */
	vsock_credit_stamp(&c, &h);
	ck_assert_uint_eq(h.fwd_cnt, 700);
	ck_assert_uint_eq(h.buf_alloc, 1000);
	ck_assert(!vsock_credit_update_due(&c));
	ck_assert(vsock_credit_rx_ok(&c, 1000));
	/* Below the threshold no update is due. */
	vsock_credit_on_rx(&c, 100);
	vsock_credit_on_consumed(&c, 100);
	ck_assert(!vsock_credit_update_due(&c));
	/* Wrapping counters. */
	vsock_credit_init(&c, 1000, 0, 0);
	c.rx_cnt = c.fwd_cnt = c.last_fwd_sent = 0xffffff00u;
	vsock_credit_on_rx(&c, 0x200);
	ck_assert_uint_eq(vsock_credit_unconsumed(&c), 0x200);
	ck_assert(vsock_credit_rx_ok(&c, 1000 - 0x200));
	ck_assert(!vsock_credit_rx_ok(&c, 1000 - 0x1ff));
}
END_TEST

START_TEST(test_state_table)
{
	static const struct {
		enum vsock_state st;
		uint16_t op;
		enum vsock_action act;
		enum vsock_state next;
	} cases[] = {
		{ VSOCK_ST_NONE, VIRTIO_VSOCK_OP_REQUEST, VSOCK_ACT_CONNECT, VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_NONE, VIRTIO_VSOCK_OP_RST, VSOCK_ACT_IGNORE, VSOCK_ST_NONE },
		{ VSOCK_ST_NONE, VIRTIO_VSOCK_OP_RW, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_NONE, VIRTIO_VSOCK_OP_RESPONSE, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_CONNECTING, VIRTIO_VSOCK_OP_RESPONSE, VSOCK_ACT_ESTABLISH, VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_CONNECTING, VIRTIO_VSOCK_OP_RST, VSOCK_ACT_CLOSE, VSOCK_ST_NONE },
		{ VSOCK_ST_CONNECTING, VIRTIO_VSOCK_OP_RW, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_RW, VSOCK_ACT_DATA, VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_SHUTDOWN, VSOCK_ACT_SHUTDOWN, VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_CREDIT_UPDATE, VSOCK_ACT_CREDIT, VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_CREDIT_REQUEST, VSOCK_ACT_CREDIT_REPLY,
		  VSOCK_ST_ESTABLISHED },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_REQUEST, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_ESTABLISHED, VIRTIO_VSOCK_OP_RST, VSOCK_ACT_CLOSE, VSOCK_ST_NONE },
		{ VSOCK_ST_CLOSING, VIRTIO_VSOCK_OP_RW, VSOCK_ACT_IGNORE, VSOCK_ST_CLOSING },
		{ VSOCK_ST_CLOSING, VIRTIO_VSOCK_OP_SHUTDOWN, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_CLOSING, VIRTIO_VSOCK_OP_RST, VSOCK_ACT_CLOSE, VSOCK_ST_NONE },
		{ VSOCK_ST_ESTABLISHED, 0, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_ESTABLISHED, 99, VSOCK_ACT_RESET, VSOCK_ST_NONE },
		{ VSOCK_ST_COUNT, VIRTIO_VSOCK_OP_RW, VSOCK_ACT_RESET, VSOCK_ST_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum vsock_action a = vsock_conn_action(cases[i].st, cases[i].op);

		ck_assert_msg(a == cases[i].act, "case %zu: %s in %s: action %d", i,
			      vsock_op_name(cases[i].op), vsock_state_name(cases[i].st), (int)a);
		ck_assert_int_eq(vsock_conn_next(cases[i].st, a), cases[i].next);
	}
	/* No state answers an RST with an RST. */
	for (int st = 0; st < VSOCK_ST_COUNT; st++)
		ck_assert_int_ne(vsock_conn_action((enum vsock_state)st, VIRTIO_VSOCK_OP_RST),
				 VSOCK_ACT_RESET);
	ck_assert_str_eq(vsock_op_name(VIRTIO_VSOCK_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	ck_assert_str_eq(vsock_op_name(1000), "unknown");
	ck_assert_str_eq(vsock_state_name(VSOCK_ST_COUNT), "invalid");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vsock_pkt");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_hdr_roundtrip_and_layout);
	tcase_add_test(tc, test_hdr_rejects);
	tcase_add_test(tc, test_connect_line);
	tcase_add_test(tc, test_credit_peer);
	tcase_add_test(tc, test_credit_rx);
	tcase_add_test(tc, test_state_table);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
