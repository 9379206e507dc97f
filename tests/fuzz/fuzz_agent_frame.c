/* libFuzzer target for rootfs/agent/agent_proto.c: frame headers, every message decoder, re-encoding, and the stream reader. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/agent_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent_frame_reader reader;
static struct agent_msg msg, msg2;
static uint8_t enc[AGENT_FRAME_MAX_SIZE];

/* A decoded message re-encodes to exactly the frame it came from (the format has one spelling). */
static void check_reencode(uint8_t type, const uint8_t *payload, size_t len)
{
	ssize_t n;

	if (agent_msg_decode(type, payload, len, &msg) != 0)
		return;
	if (msg.type != type)
		abort();
	if (type == AGENT_MSG_EXEC) {
		for (unsigned i = 0; msg.u.exec.req.argv[i]; i++)
			if (i >= AGENT_EXEC_MAX_ARGS)
				abort();
	}
	n = agent_msg_encode(&msg, enc, sizeof(enc));
	if (n < 0 || (size_t)n != AGENT_FRAME_HDR_SIZE + len ||
	    memcmp(enc + AGENT_FRAME_HDR_SIZE, payload, len) != 0)
		abort();
	if (agent_msg_decode(type, enc + AGENT_FRAME_HDR_SIZE, len, &msg2) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_frame_hdr h;
	size_t off = 0;
	int frames = 0;

	/* The first byte picks a type, the rest is a payload. */
	if (size >= 1)
		check_reencode(data[0], data + 1, size - 1);

	/* The whole input as one frame. */
	if (agent_frame_hdr_decode(data, size, &h) == 0) {
		if (h.type == 0 || h.type > AGENT_MSG_TYPE_MAX || h.length > AGENT_PROTO_MAX_PAYLOAD)
			abort();
		if (size - AGENT_FRAME_HDR_SIZE >= h.length)
			check_reencode(h.type, data + AGENT_FRAME_HDR_SIZE, h.length);
	}

	/* The whole input as a stream, fed in pieces whose sizes come from the data. */
	agent_frame_reader_init(&reader);
	while (off < size) {
		size_t piece = 1 + data[off] % 97, used = 0;
		int rc;

		if (piece > size - off)
			piece = size - off;
		rc = agent_frame_reader_push(&reader, data + off, piece, &used);
		if (used > piece || (rc == 0 && used != piece))
			abort();
		off += used;
		if (rc < 0)
			break;
		if (rc == 1) {
			if (reader.len != AGENT_FRAME_HDR_SIZE + (size_t)reader.hdr.length)
				abort();
			check_reencode(reader.hdr.type, agent_frame_reader_payload(&reader), reader.hdr.length);
			frames++;
		}
	}
	(void)frames;
	return 0;
}
