/* A strict, bounded JSON (RFC 8259) reader: bytes in, a read-only tree or an error with its offset out. */
#ifndef MINIVM_JSON_H
#define MINIVM_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_NULL = 0,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER, /* str holds the number's text exactly as written (validated) */
	JSON_STRING, /* str holds the decoded UTF-8, NUL-terminated */
	JSON_ARRAY,
	JSON_OBJECT,
};

#define JSON_NONE UINT32_MAX

/* One value. Children of an array or object are linked by `next`; an
 * object's children carry their member name in key. */
struct json_node {
	enum json_type type;
	uint32_t child;  /* first child (JSON_NONE: none) */
	uint32_t next;   /* next sibling (JSON_NONE: last) */
	uint32_t count;  /* number of children */
	const char *key; /* member name (decoded, NUL-terminated), or NULL */
	size_t key_len;
	const char *str; /* JSON_STRING / JSON_NUMBER, else NULL */
	size_t len;
};

/* Every bound the reader enforces; input beyond any is an error, not a crash. */
struct json_limits {
	size_t max_bytes; /* input length */
	uint32_t max_depth; /* nesting of arrays and objects */
	uint32_t max_nodes; /* values in the whole document */
};

struct json_doc;

/*
 * Parses in[0..len) as one JSON text (RFC 8259, strictly: no comments,
 * trailing commas, leading zeros, BOM, control characters in strings or
 * invalid UTF-8; lone surrogates and "\u0000" are refused so that every
 * string is a C string). Pure: touches only memory it allocates. Returns 0
 * with *out set (free it with json_free), or -EINVAL (malformed, with the
 * byte offset in err), -E2BIG (a limit), -ENOMEM. lim may be NULL for
 * the defaults (16 MiB, depth 64, 4 M values).
 */
int json_parse(const char *in, size_t len, const struct json_limits *lim,
	       struct json_doc **out, char *err, size_t errlen) __attribute__((warn_unused_result));

void json_free(struct json_doc *doc);

/* The top-level value (never NULL for a parsed doc). */
const struct json_node *json_root(const struct json_doc *doc);
/* First child / next sibling, or NULL. */
const struct json_node *json_first(const struct json_doc *doc, const struct json_node *n);
const struct json_node *json_next(const struct json_doc *doc, const struct json_node *n);

/*
 * The member `key` of object obj. Returns 0 with *out set, -ENOENT when
 * absent, -EEXIST when the key appears more than once (ambiguous: refused),
 * -EINVAL when obj is not an object.
 */
int json_get(const struct json_doc *doc, const struct json_node *obj, const char *key,
	     const struct json_node **out) __attribute__((warn_unused_result));

/* The member `key` if it is a string, else NULL (absent, duplicate, other type). */
const char *json_get_str(const struct json_doc *doc, const struct json_node *obj, const char *key);

#endif
