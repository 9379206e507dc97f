/* A strict HTTP/1.1 request parser over a byte buffer and the response writers of the control socket (vmm/api.c). */
#include "vmm/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum http_result http_fail(struct http_request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum http_result http_fail(struct http_request *req, int status, const char *fmt, ...)
{
	va_list ap;

	req->status = status;
	va_start(ap, fmt);
	vsnprintf(req->error, sizeof(req->error), fmt, ap);
	va_end(ap);
	return HTTP_ERROR;
}

/* RFC 9110 5.6.2: tchar. */
static bool http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* Too much header before its end is 431, whether or not the end has come. */
static enum http_result http_more(struct http_request *req, size_t pos)
{
	if (pos > HTTP_MAX_HEADER_BYTES)
		return http_fail(req, 431, "request line and headers over %u bytes", HTTP_MAX_HEADER_BYTES);
	return HTTP_NEED_MORE;
}

/* The request line; *pos is left after its CRLF. */
static enum http_result http_request_line(const char *buf, size_t len, struct http_request *req,
					  size_t *pos)
{
	static const char pattern[] = "HTTP/D.D";
	size_t p = 0, n = 0;

	while (p < len && buf[p] >= 'A' && buf[p] <= 'Z') {
		if (n >= HTTP_MAX_METHOD)
			return http_fail(req, 501, "method over %u characters", HTTP_MAX_METHOD);
		req->method[n++] = buf[p++];
	}
	req->method[n] = '\0';
	if (p == len)
		return http_more(req, p);
	if (buf[p] != ' ' || n == 0)
		return http_fail(req, 400, "malformed request line (method)");
	p++;
	n = 0;
	while (p < len && buf[p] != ' ') {
		unsigned char c = (unsigned char)buf[p];

		if (c < 0x21 || c > 0x7e)
			return http_fail(req, 400, "malformed request line (target)");
		if (n == 0 && c != '/')
			return http_fail(req, 400, "the target must be a path starting with '/'");
		if (n >= HTTP_MAX_TARGET)
			return http_fail(req, 414, "target over %u bytes", HTTP_MAX_TARGET);
		req->target[n++] = (char)c;
		p++;
	}
	req->target[n] = '\0';
	if (p == len)
		return http_more(req, p);
	if (n == 0)
		return http_fail(req, 400, "malformed request line (empty target)");
	p++;
	for (size_t i = 0; i < 8; i++, p++) {
		char c;

		if (p == len)
			return http_more(req, p);
		c = buf[p];
		if (pattern[i] == 'D' ? !(c >= '0' && c <= '9') : c != pattern[i])
			return http_fail(req, 400, "malformed request line (version)");
	}
	if (buf[p - 3] != '1' || (buf[p - 1] != '0' && buf[p - 1] != '1'))
		return http_fail(req, 505, "HTTP version %.3s is not supported: use HTTP/1.1", buf + p - 3);
	req->minor = buf[p - 1] - '0';
	if (p == len)
		return http_more(req, p);
	if (buf[p] != '\r')
		return http_fail(req, 400, "malformed request line (expected CRLF)");
	if (p + 1 == len)
		return http_more(req, p + 1);
	if (buf[p + 1] != '\n')
		return http_fail(req, 400, "bare CR in the request line");
	*pos = p + 2;
	return HTTP_COMPLETE;
}

/* The header fields up to and including the empty line. */
static enum http_result http_fields(const char *buf, size_t len, struct http_request *req,
				    size_t *pos)
{
	size_t p = *pos;

	for (;;) {
		struct http_header *h;
		size_t name, vstart, vend;

		if (p > HTTP_MAX_HEADER_BYTES)
			return http_more(req, p);
		if (p == len)
			return http_more(req, p);
		if (buf[p] == '\r') {
			if (p + 1 == len)
				return http_more(req, p + 1);
			if (buf[p + 1] != '\n')
				return http_fail(req, 400, "bare CR in the headers");
			p += 2;
			if (p > HTTP_MAX_HEADER_BYTES)
				return http_more(req, p);
			*pos = p;
			return HTTP_COMPLETE;
		}
		if (buf[p] == ' ' || buf[p] == '\t')
			return http_fail(req, 400, "folded header lines are not allowed");
		name = p;
		while (p < len && http_tchar((unsigned char)buf[p]))
			p++;
		if (p == len)
			return http_more(req, p);
		if (buf[p] != ':' || p == name)
			return http_fail(req, 400, "malformed header name");
		if (req->nr_headers >= HTTP_MAX_HEADERS)
			return http_fail(req, 431, "more than %u header fields", HTTP_MAX_HEADERS);
		h = &req->headers[req->nr_headers];
		h->name = buf + name;
		h->name_len = p - name;
		p++;
		while (p < len && (buf[p] == ' ' || buf[p] == '\t'))
			p++;
		vstart = p;
		while (p < len && buf[p] != '\r') {
			unsigned char c = (unsigned char)buf[p];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return http_fail(req, 400, "control character in header %.*s",
						 (int)(h->name_len > 64 ? 64 : h->name_len), h->name);
			p++;
			if (p > HTTP_MAX_HEADER_BYTES)
				return http_more(req, p);
		}
		if (p == len || p + 1 == len)
			return http_more(req, p);
		if (buf[p + 1] != '\n')
			return http_fail(req, 400, "bare CR in the headers");
		vend = p;
		while (vend > vstart && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
			vend--;
		h->value = buf + vstart;
		h->value_len = vend - vstart;
		req->nr_headers++;
		p += 2;
	}
}

/* Content-Length: 1*DIGIT, at most HTTP_MAX_BODY. */
static enum http_result http_length(struct http_request *req, const char *v, size_t n)
{
	size_t val = 0;

	if (n == 0)
		return http_fail(req, 400, "empty Content-Length");
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return http_fail(req, 400, "Content-Length is not a number");
		val = val * 10 + (size_t)(v[i] - '0');
		if (val > HTTP_MAX_BODY)
			return http_fail(req, 413, "body over %u bytes", HTTP_MAX_BODY);
	}
	req->has_length = true;
	req->content_length = val;
	return HTTP_COMPLETE;
}

/* Connection: a comma-separated token list; returns whether it says "close". */
static bool http_connection(struct http_request *req, const char *v, size_t n)
{
	bool close = false;
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (http_ieq(v + s, e - s, "close"))
			close = true;
		else if (http_ieq(v + s, e - s, "keep-alive") && req->minor == 0)
			req->keep_alive = true;
	}
	return close;
}

/* What the fields mean for the message: its length, Host, Expect, Connection. */
static enum http_result http_semantics(struct http_request *req)
{
	unsigned int hosts = 0;
	bool close_seen = false;
	enum http_result r;

	req->keep_alive = req->minor == 1;
	for (unsigned int i = 0; i < req->nr_headers; i++) {
		const struct http_header *h = &req->headers[i];

		if (http_ieq(h->name, h->name_len, "transfer-encoding"))
			return http_fail(req, 501, "Transfer-Encoding (chunked) is not supported: send Content-Length");
	}
	for (unsigned int i = 0; i < req->nr_headers; i++) {
		const struct http_header *h = &req->headers[i];

		if (http_ieq(h->name, h->name_len, "host")) {
			hosts++;
		} else if (http_ieq(h->name, h->name_len, "content-length")) {
			if (req->has_length)
				return http_fail(req, 400, "more than one Content-Length");
			r = http_length(req, h->value, h->value_len);
			if (r != HTTP_COMPLETE)
				return r;
		} else if (http_ieq(h->name, h->name_len, "content-type")) {
			if (req->content_type)
				return http_fail(req, 400, "more than one Content-Type");
			req->content_type = h->value;
			req->content_type_len = h->value_len;
		} else if (http_ieq(h->name, h->name_len, "expect")) {
			if (!http_ieq(h->value, h->value_len, "100-continue"))
				return http_fail(req, 417, "only \"Expect: 100-continue\" is supported");
			req->expect_continue = true;
		} else if (http_ieq(h->name, h->name_len, "connection")) {
			if (http_connection(req, h->value, h->value_len))
				close_seen = true;
		}
	}
	if (close_seen)
		req->keep_alive = false;
	if (hosts > 1 || (req->minor == 1 && hosts == 0))
		return http_fail(req, 400, "an HTTP/1.1 request needs exactly one Host header");
	if (!req->has_length && (!strcmp(req->method, "PUT") || !strcmp(req->method, "POST") ||
				 !strcmp(req->method, "PATCH")))
		return http_fail(req, 411, "%s needs Content-Length (0 for no body)", req->method);
	return HTTP_COMPLETE;
}

enum http_result http_parse(const char *buf, size_t len, struct http_request *req)
{
	enum http_result r;
	size_t pos = 0;

	memset(req, 0, sizeof(*req));
	r = http_request_line(buf, len, req, &pos);
	if (r != HTTP_COMPLETE)
		return r;
	r = http_fields(buf, len, req, &pos);
	if (r != HTTP_COMPLETE)
		return r;
	r = http_semantics(req);
	if (r != HTTP_COMPLETE)
		return r;
	req->headers_done = true;
	if (len - pos < req->content_length)
		return HTTP_NEED_MORE;
	req->body = buf + pos;
	req->consumed = pos + req->content_length;
	return HTTP_COMPLETE;
}

const char *http_header(const struct http_request *req, const char *name, size_t *len)
{
	for (unsigned int i = 0; i < req->nr_headers; i++) {
		if (http_ieq(req->headers[i].name, req->headers[i].name_len, name)) {
			if (len)
				*len = req->headers[i].value_len;
			return req->headers[i].value;
		}
	}
	return NULL;
}

const char *http_reason(int status)
{
	/* A switch, not a table of pointers: nothing to relocate. */
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

int http_format_head(char *out, size_t cap, int status, const char *ctype, size_t body_len,
		     bool keep_alive, const char *extra)
{
	char length[48] = "";
	char type[96] = "";
	int n;

	if (status != 204 && status >= 200)
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
	if (ctype)
		snprintf(type, sizeof(type), "Content-Type: %s\r\n", ctype);
	n = snprintf(out, cap, "HTTP/1.1 %d %s\r\n%s%sConnection: %s\r\n%s\r\n", status,
		     http_reason(status), type, length, keep_alive ? "keep-alive" : "close",
		     extra ? extra : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int http_format_stream_head(char *out, size_t cap, const char *ctype, bool chunked)
{
	int n = snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sConnection: close\r\n\r\n",
			 ctype, chunked ? "Transfer-Encoding: chunked\r\n" : "");

	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int http_format_chunk_head(char *out, size_t cap, size_t len)
{
	int n = snprintf(out, cap, "%zx\r\n", len);

	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}
