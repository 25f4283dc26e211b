/* token.c — agent tokens: getrandom() for generation, OpenSSL EVP SHA-256 for hashing. */
#include "token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int co_token_generate(char out[CO_TOKEN_HEX_LEN + 1], char *err, size_t errlen)
{
    unsigned char raw[CO_TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    to_hex(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

int co_token_hash(const char *token, size_t len, char out[CO_HASH_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen * 2 != CO_HASH_HEX_LEN)
        return -1;
    to_hex(md, mdlen, out);
    return 0;
}

int co_token_equal(const char *a, const char *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int co_token_from_header(const char *header, const char **tok, size_t *len)
{
    if (!header || strncasecmp(header, "Bearer", 6) != 0 || header[6] != ' ') return -1;
    const char *p = header + 6;
    while (*p == ' ')
        p++;
    const char *start = p;
    while (b64token_char(*p))
        p++;
    if (p == start) return -1;
    while (*p == '=')
        p++;
    size_t n = (size_t)(p - start);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0' || n > CO_TOKEN_MAX_LEN) return -1;
    *tok = start;
    *len = n;
    return 0;
}
