/* libFuzzer target for vmm/http.c: any bytes give NEED_MORE, COMPLETE within the buffer, or an error status with a message; a prefix never disagrees with the whole. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct http_request *req, enum http_result r, size_t size)
{
	if (r == HTTP_COMPLETE) {
		assert(req->consumed <= size);
		assert(req->content_length <= HTTP_MAX_BODY);
		assert(strlen(req->target) <= HTTP_MAX_TARGET && req->target[0] == '/');
		assert(req->method[0]);
		assert(req->nr_headers <= HTTP_MAX_HEADERS);
	} else if (r == HTTP_ERROR) {
		assert(req->status >= 400 && req->status <= 505);
		assert(req->error[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request whole, part;
	const char *buf = (const char *)data;
	enum http_result r, p;
	size_t split;

	if (size > HTTP_MAX_REQUEST + 64)
		return 0;
	r = http_parse(buf, size, &whole);
	check(&whole, r, size);
	if (r == HTTP_COMPLETE)
		assert(whole.body >= buf && whole.body + whole.content_length <= buf + size);
	/* Incremental: a prefix is NEED_MORE, or the same result as the whole
	 * (COMPLETE with the same length; or the same error). */
	split = size ? (size_t)data[0] * size / 256 : 0;
	p = http_parse(buf, split, &part);
	check(&part, p, split);
	if (p == HTTP_COMPLETE) {
		assert(r == HTTP_COMPLETE);
		assert(part.consumed == whole.consumed);
	} else if (p == HTTP_ERROR) {
		assert(r == HTTP_ERROR);
		assert(part.status == whole.status);
	}
	/* Pipelining: the rest parses on its own. */
	if (r == HTTP_COMPLETE && whole.consumed < size) {
		p = http_parse(buf + whole.consumed, size - whole.consumed, &part);
		check(&part, p, size - whole.consumed);
	}
	return 0;
}
