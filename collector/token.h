/* token.h — agent tokens: generation, hashing for storage, Bearer header parsing. */
#ifndef CO_TOKEN_H
#define CO_TOKEN_H

#include <stddef.h>

#define CO_TOKEN_BYTES 32                     /* random bytes in a token */
#define CO_TOKEN_HEX_LEN (CO_TOKEN_BYTES * 2) /* its printed form: lowercase hex */
#define CO_TOKEN_MAX_LEN 512                  /* longest token accepted in a header */
#define CO_HASH_HEX_LEN 64                    /* SHA-256 as lowercase hex */

/* Fill out with a new token: CO_TOKEN_BYTES from getrandom() as lowercase hex, NUL-terminated.
 * Returns 0, or -1 with err. */
int co_token_generate(char out[CO_TOKEN_HEX_LEN + 1], char *err, size_t errlen);
/* SHA-256 of token[0..len) as lowercase hex into out (what the store keeps). 0 or -1. */
int co_token_hash(const char *token, size_t len, char out[CO_HASH_HEX_LEN + 1]);
/* Constant-time comparison of two n-byte strings; 1 when equal. */
int co_token_equal(const char *a, const char *b, size_t n);
/* Parse an Authorization header "Bearer <token>" (scheme case-insensitive, RFC 6750 token
 * characters, at most CO_TOKEN_MAX_LEN). Returns 0 with *tok and *len pointing into header, or -1.
 */
int co_token_from_header(const char *header, const char **tok, size_t *len);

#endif
