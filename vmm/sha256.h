/* SHA-256 (FIPS 180-4): a small streaming implementation, shared by rootfs verify and the OCI code. */
#ifndef MINIVM_SHA256_H
#define MINIVM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64
#define SHA256_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1) /* lowercase hex + NUL */

/* The running state. Plain data: copy it to fork a hash midway. */
struct sha256 {
	uint32_t h[8];
	uint64_t bytes;                  /* message bytes so far */
	uint8_t buf[SHA256_BLOCK_SIZE];  /* a partial block */
	size_t buf_len;
};

/* Call order: sha256_init -> sha256_update (any number of times, any
 * lengths) -> sha256_final. After final the state must be init'ed again. */
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_DIGEST_SIZE]);

/* One call for a whole buffer. */
void sha256_digest(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);

/* Lowercase hex of a digest, NUL-terminated. */
void sha256_to_hex(const uint8_t d[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_SIZE]);

/* Parses exactly 64 hex digits (either case) at hex[0..len). 0, or -EINVAL. */
int sha256_from_hex(const char *hex, size_t len, uint8_t d[SHA256_DIGEST_SIZE])
	__attribute__((warn_unused_result));

#endif
