/* A strict HTTP/1.1 request parser over a byte buffer and the response writers of the control socket (vmm/api.c). */
#ifndef MINIVM_HTTP_H
#define MINIVM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the parser accepts (RFC 9110/9112, strictly; anything else is an
 * error with the status to answer, then the connection is closed):
 * - request line "METHOD SP TARGET SP HTTP/1.1" (or HTTP/1.0) ending in
 *   CRLF; every line ends in CRLF (a bare LF is 400: no smuggling through
 *   line-ending ambiguity); no empty lines before it.
 * - METHOD: 1..HTTP_MAX_METHOD upper-case letters (longer: 501). Which
 *   methods a path takes is the router's business (404/405).
 * - TARGET: origin form ("/path[?query]"), visible ASCII only, at most
 *   HTTP_MAX_TARGET bytes (longer: 414, said as soon as it is known).
 * - version: "HTTP/1.1" or "HTTP/1.0"; another "HTTP/D.D" is 505.
 * - header fields "name: value" (a token name, no space before the colon,
 *   no obs-fold, no control characters but HTAB in values). The request
 *   line and header section together at most HTTP_MAX_HEADER_BYTES, at most
 *   HTTP_MAX_HEADERS fields: beyond either, 431.
 * - HTTP/1.1 needs exactly one Host (any value: the socket is Unix).
 * - the body: Content-Length (digits, once) up to HTTP_MAX_BODY, else 413
 *   (said once the headers are in, before the body is read). PUT, POST and
 *   PATCH must carry Content-Length (0 for no body), else 411.
 *   Transfer-Encoding of any kind is 501: chunked request bodies are not
 *   supported (send Content-Length).
 * - "Expect: 100-continue" is honoured (expect_continue, see http_parse);
 *   any other expectation is 417.
 * - Connection: "close" / "keep-alive" tokens; HTTP/1.1 keeps the
 *   connection by default, HTTP/1.0 closes it unless keep-alive is asked.
 * Pipelined requests are fine: a complete request says how many bytes it
 * used (consumed); the rest of the buffer starts the next one.
 */
#define HTTP_MAX_METHOD 15
#define HTTP_MAX_TARGET 1024
#define HTTP_MAX_HEADER_BYTES 8192
#define HTTP_MAX_HEADERS 32
#define HTTP_MAX_BODY (64u * 1024)
/* The largest buffer one request can need. */
#define HTTP_MAX_REQUEST (HTTP_MAX_HEADER_BYTES + HTTP_MAX_BODY)

enum http_result {
	HTTP_NEED_MORE = 0, /* a valid prefix: read more bytes and call again */
	HTTP_COMPLETE,      /* *req describes a whole request */
	HTTP_ERROR,         /* req->status and req->error say what to answer */
};

struct http_header {
	const char *name; /* into the caller's buffer; not NUL-terminated */
	size_t name_len;
	const char *value; /* without surrounding spaces; not NUL-terminated */
	size_t value_len;
};

struct http_request {
	char method[HTTP_MAX_METHOD + 1]; /* NUL-terminated */
	char target[HTTP_MAX_TARGET + 1]; /* NUL-terminated */
	int minor;                        /* HTTP/1.minor: 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned int nr_headers;
	bool headers_done;    /* the header section is complete (also with NEED_MORE) */
	bool expect_continue; /* the client waits for "100 Continue" before the body */
	bool keep_alive;      /* the connection may carry another request */
	bool has_length;      /* Content-Length was given */
	size_t content_length;
	const char *content_type; /* the Content-Type value or NULL (into the buffer) */
	size_t content_type_len;
	const char *body; /* into the caller's buffer, content_length bytes */
	size_t consumed;  /* COMPLETE: bytes of the buffer this request used */
	int status;       /* ERROR: the status to answer (400, 411, ...) */
	char error[128];  /* ERROR: why, for the response body */
};

/*
 * Parses the request at the start of buf[0..len). Pure and incremental
 * in the sense that it can be called again on the same buffer after more
 * bytes were appended (it re-reads from the start; the buffer is at most
 * HTTP_MAX_REQUEST bytes, so that is cheap). *req is overwritten on every
 * call; its pointers point into buf and are valid while buf is. Never
 * reads past len; any bytes give one of the three results.
 */
enum http_result http_parse(const char *buf, size_t len, struct http_request *req);

/* The header `name` (case-insensitive), or NULL; *len gets the value's length. */
const char *http_header(const struct http_request *req, const char *name, size_t *len);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *http_reason(int status);

/*
 * Writes a response head into out[0..cap): status line, Content-Type
 * (omitted when ctype is NULL), Content-Length: body_len (omitted for 204
 * and 1xx), "Connection: keep-alive" or "close", any extra header lines
 * (extra: NULL or "Name: value\r\n..."), and the empty line. Returns its
 * length, or -ENOSPC when cap is too small (out is then unspecified).
 */
int http_format_head(char *out, size_t cap, int status, const char *ctype, size_t body_len,
		     bool keep_alive, const char *extra) __attribute__((warn_unused_result));

/*
 * The head of a streamed response: status 200, the given Content-Type
 * (application/x-ndjson for the control socket's streams), "Connection:
 * close" (a stream ends its connection) and, when chunked (HTTP/1.1
 * clients), "Transfer-Encoding: chunked": each piece then goes out as a
 * chunk (http_format_chunk_head, the bytes, "\r\n") and the stream ends
 * with HTTP_CHUNK_END. Unchunked (HTTP/1.0), the body ends when the
 * connection closes.
 */
int http_format_stream_head(char *out, size_t cap, const char *ctype, bool chunked)
	__attribute__((warn_unused_result));

/* "<len in hex>\r\n" into out; returns its length, or -ENOSPC. len > 0. */
int http_format_chunk_head(char *out, size_t cap, size_t len) __attribute__((warn_unused_result));

#define HTTP_CHUNK_END "0\r\n\r\n"

#endif
