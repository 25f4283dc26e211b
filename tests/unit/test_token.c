/* test_token.c — token generation, SHA-256 hashing, constant-time compare, Bearer parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "collector/token.h"

static void test_generate_length_and_charset(void **st)
{
    (void)st;
    char a[CO_TOKEN_HEX_LEN + 1], b[CO_TOKEN_HEX_LEN + 1], err[128] = "";
    assert_int_equal(co_token_generate(a, err, sizeof err), 0);
    assert_int_equal(co_token_generate(b, err, sizeof err), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_int_equal(strspn(b, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b); /* 256 random bits: a collision means a broken source */
}

static void test_hash_is_sha256(void **st)
{
    (void)st;
    char h[CO_HASH_HEX_LEN + 1];
    /* Known SHA-256 test vectors (FIPS 180-2). */
    assert_int_equal(co_token_hash("abc", 3, h), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(co_token_hash("", 0, h), 0);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Only the given length counts. */
    assert_int_equal(co_token_hash("abcdef", 3, h), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    char tok[CO_TOKEN_HEX_LEN + 1], err[128], h2[CO_HASH_HEX_LEN + 1];
    assert_int_equal(co_token_generate(tok, err, sizeof err), 0);
    assert_int_equal(co_token_hash(tok, strlen(tok), h), 0);
    assert_int_equal(co_token_hash(tok, strlen(tok), h2), 0);
    assert_string_equal(h, h2);
    assert_string_not_equal(h, tok);
    assert_int_equal(strlen(h), 64);
}

static void test_equal(void **st)
{
    (void)st;
    assert_true(co_token_equal("abcdef", "abcdef", 6));
    assert_false(co_token_equal("abcdef", "abcdeg", 6));
    assert_false(co_token_equal("xbcdef", "abcdef", 6));
    assert_true(co_token_equal("abcX", "abcY", 3));
}

static void test_bearer(void **st)
{
    (void)st;
    const char *t;
    size_t n;
    assert_int_equal(co_token_from_header("Bearer abc123", &t, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "abc123", 6);
    assert_int_equal(co_token_from_header("bearer   a-b.c_d~e+f/g==  ", &t, &n), 0);
    assert_int_equal(n, 15);
    assert_memory_equal(t, "a-b.c_d~e+f/g==", 15);

    assert_int_equal(co_token_from_header(NULL, &t, &n), -1);
    assert_int_equal(co_token_from_header("", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearer", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearer ", &t, &n), -1);
    assert_int_equal(co_token_from_header("Basic dXNlcjpwYXNz", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearerabc", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearer abc def", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearer a=b", &t, &n), -1);
    assert_int_equal(co_token_from_header("Bearer ab\"c", &t, &n), -1);

    char big[CO_TOKEN_MAX_LEN + 16];
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', CO_TOKEN_MAX_LEN + 1);
    big[7 + CO_TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(co_token_from_header(big, &t, &n), -1);
    big[7 + CO_TOKEN_MAX_LEN] = '\0';
    assert_int_equal(co_token_from_header(big, &t, &n), 0);
    assert_int_equal(n, CO_TOKEN_MAX_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_length_and_charset),
        cmocka_unit_test(test_hash_is_sha256),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
