/* Unit tests for vmm/http.c: valid requests split at every byte, every error status, pipelining, keep-alive rules, the response writers. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/http.h"

/* Parses s whole; also checks that no strict prefix is COMPLETE, and that
 * a prefix is NEED_MORE or the same error as the whole. */
static enum http_result parse_all_prefixes(const char *s, size_t len, struct http_request *req)
{
	struct http_request *tmp = malloc(sizeof(*tmp));
	enum http_result whole;

	ck_assert_ptr_nonnull(tmp);
	whole = http_parse(s, len, req);
	for (size_t i = 0; i < len; i++) {
		enum http_result r = http_parse(s, i, tmp);

		ck_assert_msg(r != HTTP_COMPLETE, "prefix of %zu bytes is complete", i);
		if (r == HTTP_ERROR) {
			ck_assert_int_eq(whole, HTTP_ERROR);
			ck_assert_int_eq(tmp->status, req->status);
		}
	}
	free(tmp);
	return whole;
}

START_TEST(test_get)
{
	static const char s[] = "GET /status HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n";
	struct http_request req;
	size_t n;
	const char *v;

	ck_assert_int_eq(parse_all_prefixes(s, strlen(s), &req), HTTP_COMPLETE);
	ck_assert_str_eq(req.method, "GET");
	ck_assert_str_eq(req.target, "/status");
	ck_assert_int_eq(req.minor, 1);
	ck_assert_uint_eq(req.nr_headers, 2);
	ck_assert(req.keep_alive);
	ck_assert(!req.has_length);
	ck_assert_uint_eq(req.content_length, 0);
	ck_assert_uint_eq(req.consumed, strlen(s));
	v = http_header(&req, "user-agent", &n);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0], 't');
	ck_assert_ptr_null(http_header(&req, "x-none", &n));
}
END_TEST

START_TEST(test_put_body_every_split)
{
	static const char s[] = "PUT /machine HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
				"Content-Length:   13  \r\n\r\n{\"vcpus\": 2}\n";
	struct http_request req;

	ck_assert_int_eq(parse_all_prefixes(s, strlen(s), &req), HTTP_COMPLETE);
	ck_assert_str_eq(req.method, "PUT");
	ck_assert(req.has_length);
	ck_assert_uint_eq(req.content_length, 13);
	ck_assert_int_eq(memcmp(req.body, "{\"vcpus\": 2}\n", 13), 0);
	ck_assert_uint_eq(req.content_type_len, strlen("application/json"));
	ck_assert_uint_eq(req.consumed, strlen(s));
	/* Headers done before the body is in. */
	ck_assert_int_eq(http_parse(s, strlen(s) - 5, &req), HTTP_NEED_MORE);
	ck_assert(req.headers_done);
}
END_TEST

START_TEST(test_pipelining)
{
	static const char s[] = "POST /pause HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
				"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
				"GET /sta";
	struct http_request req;
	size_t off;

	ck_assert_int_eq(http_parse(s, strlen(s), &req), HTTP_COMPLETE);
	ck_assert_str_eq(req.target, "/pause");
	ck_assert(req.keep_alive);
	off = req.consumed;
	ck_assert_int_eq(http_parse(s + off, strlen(s) - off, &req), HTTP_COMPLETE);
	ck_assert_str_eq(req.target, "/status");
	ck_assert(!req.keep_alive);
	off += req.consumed;
	ck_assert_int_eq(http_parse(s + off, strlen(s) - off, &req), HTTP_NEED_MORE);
}
END_TEST

START_TEST(test_keep_alive_rules)
{
	struct http_request req;
	static const struct {
		const char *s;
		bool keep;
	} v[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true },
		{ "GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", false },
		{ "GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_int_eq(http_parse(v[i].s, strlen(v[i].s), &req), HTTP_COMPLETE);
		ck_assert_msg(req.keep_alive == v[i].keep, "case %zu", i);
	}
}
END_TEST

START_TEST(test_expect_continue)
{
	static const char s[] = "PUT /boot HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
	struct http_request req;

	ck_assert_int_eq(http_parse(s, strlen(s), &req), HTTP_NEED_MORE);
	ck_assert(req.headers_done);
	ck_assert(req.expect_continue);
}
END_TEST

/* Every error with the status it must answer. */
START_TEST(test_errors)
{
	static const struct {
		const char *s;
		int status;
	} v[] = {
		{ "get / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },                 /* lower-case method */
		{ " / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },                    /* no method */
		{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },                /* two spaces */
		{ "GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400 },                 /* not a path */
		{ "GET http://a/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },         /* absolute form */
		{ "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },            /* control in target */
		{ "GET / HTTP/1.1\nHost: x\r\n\r\n", 400 },                   /* bare LF */
		{ "GET / HTTP/1.1\r\nHost: x\n\r\n", 400 },                   /* bare LF in headers */
		{ "GET / HTTP/1.1\r\nHost: x\r\n\n", 400 },                   /* bare LF at the end */
		{ "GET / HTTP/1.1\r\nHost: x\rX\r\n\r\n", 400 },              /* bare CR */
		{ "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400 },                /* space after version */
		{ "GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400 },
		{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
		{ "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505 },
		{ "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505 },
		{ "GET / HTTP/1.1\r\n\r\n", 400 },                            /* no Host */
		{ "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },                /* space before colon */
		{ "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", 400 },          /* empty name */
		{ "GET / HTTP/1.1\r\nHost: x\r\nA: \x01\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nA: \x7f\r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n\r\n", 400 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\n\r\n", 411 },
		{ "POST /start HTTP/1.1\r\nHost: x\r\n\r\n", 411 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", 413 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417 },
		{ "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: x\r\n\r\n", 501 },
	};
	struct http_request req;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_msg(parse_all_prefixes(v[i].s, strlen(v[i].s), &req) == HTTP_ERROR, "case %zu", i);
		ck_assert_msg(req.status == v[i].status, "case %zu: %d, not %d (%s)", i, req.status,
			      v[i].status, req.error);
		ck_assert(req.error[0]);
	}
}
END_TEST

START_TEST(test_limits)
{
	size_t cap = 3 * HTTP_MAX_REQUEST;
	char *s = malloc(cap);
	struct http_request req;
	size_t n;

	ck_assert_ptr_nonnull(s);
	/* A target one byte over: 414 once that byte is seen, even without the rest. */
	n = (size_t)snprintf(s, cap, "GET /");
	memset(s + n, 'a', HTTP_MAX_TARGET);
	n += HTTP_MAX_TARGET;
	ck_assert_int_eq(http_parse(s, n, &req), HTTP_ERROR);
	ck_assert_int_eq(req.status, 414);
	/* Exactly the limit is fine. */
	ck_assert_int_eq(http_parse(s, n - 1, &req), HTTP_NEED_MORE);
	n = n - 1 + (size_t)snprintf(s + n - 1, cap - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(http_parse(s, n, &req), HTTP_COMPLETE);
	ck_assert_uint_eq(strlen(req.target), HTTP_MAX_TARGET);

	/* Headers over 8 KiB: 431 whether or not their end came. */
	n = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(s + n, 'b', HTTP_MAX_HEADER_BYTES);
	n += HTTP_MAX_HEADER_BYTES;
	ck_assert_int_eq(http_parse(s, n, &req), HTTP_ERROR);
	ck_assert_int_eq(req.status, 431);
	memcpy(s + n, "\r\n\r\n", 4);
	ck_assert_int_eq(http_parse(s, n + 4, &req), HTTP_ERROR);
	ck_assert_int_eq(req.status, 431);
	/* A long header name without a colon too. */
	memset(s, 'A', HTTP_MAX_HEADER_BYTES + 10);
	memcpy(s, "GET / HTTP/1.1\r\n", 16);
	ck_assert_int_eq(http_parse(s, HTTP_MAX_HEADER_BYTES + 10, &req), HTTP_ERROR);
	ck_assert_int_eq(req.status, 431);

	/* Too many fields: 431. */
	n = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(s + n, cap - n, "X-%d: y\r\n", i);
	n += (size_t)snprintf(s + n, cap - n, "\r\n");
	ck_assert_int_eq(http_parse(s, n, &req), HTTP_ERROR);
	ck_assert_int_eq(req.status, 431);

	/* The largest body is fine; one more byte is 413. */
	n = (size_t)snprintf(s, cap, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", HTTP_MAX_BODY);
	memset(s + n, '{', HTTP_MAX_BODY);
	ck_assert_int_eq(http_parse(s, n + HTTP_MAX_BODY, &req), HTTP_COMPLETE);
	ck_assert_uint_eq(req.content_length, HTTP_MAX_BODY);
	free(s);
}
END_TEST

START_TEST(test_writers)
{
	char out[512];
	int n;

	n = http_format_head(out, sizeof(out), 200, "application/json", 12, true, NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
			      "Connection: keep-alive\r\n\r\n");
	n = http_format_head(out, sizeof(out), 405, "application/json", 3, false, "Allow: GET\r\n");
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(out, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
			      "Content-Length: 3\r\nConnection: close\r\nAllow: GET\r\n\r\n");
	n = http_format_head(out, sizeof(out), 204, NULL, 0, true, NULL);
	ck_assert_str_eq(out, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
	ck_assert_int_eq(http_format_head(out, 10, 200, NULL, 0, true, NULL), -ENOSPC);
	n = http_format_stream_head(out, sizeof(out), "application/x-ndjson", true);
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(strstr(out, "Transfer-Encoding: chunked\r\n"));
	n = http_format_stream_head(out, sizeof(out), "application/x-ndjson", false);
	ck_assert_str_eq(out, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n");
	n = http_format_chunk_head(out, sizeof(out), 300);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(out, "12c\r\n");
	ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
	ck_assert_str_eq(http_reason(299), "Unknown");
}
END_TEST

/* Every byte value at every position of a small request: never a crash,
 * never COMPLETE with a body past the buffer. */
START_TEST(test_byte_flips)
{
	static const char base[] = "PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
	char s[sizeof(base)];
	struct http_request req;

	for (size_t i = 0; i < sizeof(base) - 1; i++) {
		for (int c = 0; c < 256; c++) {
			memcpy(s, base, sizeof(base));
			s[i] = (char)c;
			if (http_parse(s, sizeof(base) - 1, &req) == HTTP_COMPLETE)
				ck_assert_uint_le(req.consumed, sizeof(base) - 1);
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("http");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_put_body_every_split);
	tcase_add_test(tc, test_pipelining);
	tcase_add_test(tc, test_keep_alive_rules);
	tcase_add_test(tc, test_expect_continue);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_writers);
	tcase_add_test(tc, test_byte_flips);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
