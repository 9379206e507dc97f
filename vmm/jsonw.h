/* A small JSON writer into a growing, bounded buffer: always valid RFC 8259 output, whatever bytes the strings hold. */
#ifndef MINIVM_JSONW_H
#define MINIVM_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Usage: jsonw_init(&w, max) -> jsonw_obj_begin/jsonw_key/jsonw_str/... ->
 * jsonw_finish(&w, &buf, &len) (the caller frees buf) or jsonw_release(&w).
 * Calls never fail one by one: the first error (-ENOMEM, -E2BIG past max
 * bytes or JSONW_DEPTH levels, -EINVAL for a misplaced end) sticks in w.err
 * and jsonw_finish returns it. Commas and colons are placed by the writer.
 * Strings may hold any bytes: invalid UTF-8 becomes U+FFFD and control
 * characters are escaped, so the output is always valid JSON. No global
 * state; one writer per thread at a time.
 */
#define JSONW_DEPTH 16

struct jsonw {
	char *buf;
	size_t len, cap, max;
	int err;
	uint32_t depth;
	bool after_key;
	bool first[JSONW_DEPTH + 1];
};

/* max: the most bytes the document may take (0: 1 MiB). */
void jsonw_init(struct jsonw *w, size_t max);
void jsonw_obj_begin(struct jsonw *w);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w);
void jsonw_arr_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_str(struct jsonw *w, const char *s); /* NUL-terminated */
void jsonw_strn(struct jsonw *w, const char *s, size_t n);
void jsonw_base64(struct jsonw *w, const void *data, size_t n); /* a string: RFC 4648 base64 */
void jsonw_u64(struct jsonw *w, uint64_t v);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* A value already encoded as JSON by this writer (not checked). */
void jsonw_raw(struct jsonw *w, const char *json, size_t n);

/* Hands over the NUL-terminated text (*out, owned by the caller, *len bytes
 * without the NUL) and resets w; or returns w.err (nothing to free). An
 * unclosed container is -EINVAL. */
int jsonw_finish(struct jsonw *w, char **out, size_t *len) __attribute__((warn_unused_result));
/* Drops whatever was written. */
void jsonw_release(struct jsonw *w);

#endif
