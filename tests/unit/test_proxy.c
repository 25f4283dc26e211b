/* test_proxy.c — [collector] trusted_proxies (addresses and CIDR networks, IPv4 and IPv6;
 * errors naming file:line in collector.ini) and the client address chosen from X-Forwarded-For
 * by the right-to-left walk (collector/proxy.c): forged elements left of the first untrusted
 * address are never read, a malformed element on the walk falls back to the peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/config.h"
#include "collector/proxy.h"

/* ---- the list ---------------------------------------------------------------------------- */

static co_proxies parse_ok(const char *list)
{
    co_proxies p;
    char err[256] = "";
    if (co_proxies_parse(list, &p, err, sizeof err) != 0) fail_msg("'%s': %s", list, err);
    return p;
}

static void expect_parse_error(const char *list, const char *want)
{
    co_proxies p;
    char err[256] = "";
    assert_int_equal(co_proxies_parse(list, &p, err, sizeof err), -1);
    if (!strstr(err, want)) fail_msg("'%s': error '%s' does not contain '%s'", list, err, want);
}

static void test_parse(void **st)
{
    (void)st;
    co_proxies p = parse_ok("127.0.0.1, ::1, 10.0.0.0/8");
    assert_int_equal(p.n, 3);
    assert_int_equal(p.nets[0].family, 4);
    assert_int_equal(p.nets[0].prefix, 32);
    assert_int_equal(p.nets[1].family, 6);
    assert_int_equal(p.nets[1].prefix, 128);
    assert_int_equal(p.nets[2].family, 4);
    assert_int_equal(p.nets[2].prefix, 8);
    assert_int_equal(p.nets[2].addr[0], 10);

    assert_int_equal(parse_ok("").n, 0);
    assert_int_equal(parse_ok(" \t ").n, 0);
    assert_int_equal(parse_ok(NULL).n, 0);
    p = parse_ok("\t2001:db8::/32 ,fd00::/8,0.0.0.0/0");
    assert_int_equal(p.n, 3);
    assert_int_equal(p.nets[0].prefix, 32);
    assert_int_equal(p.nets[2].prefix, 0);
    /* an IPv4-mapped network is an IPv4 one */
    p = parse_ok("::ffff:10.0.0.0/104, ::ffff:192.0.2.1");
    assert_int_equal(p.nets[0].family, 4);
    assert_int_equal(p.nets[0].prefix, 8);
    assert_int_equal(p.nets[1].family, 4);
    assert_int_equal(p.nets[1].prefix, 32);

    char many[64 * 16 + 32] = "";
    for (int i = 0; i < CO_PROXIES_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s10.0.%d.0/24", i ? "," : "",
                 i);
    assert_int_equal(parse_ok(many).n, CO_PROXIES_MAX);
    strcat(many, ",192.0.2.1");
    expect_parse_error(many, "more than 64 entries");

    expect_parse_error("10.0.0.0/33", "'10.0.0.0/33': the prefix length must be 0..32");
    expect_parse_error("fd00::/129", "0..128");
    expect_parse_error("::ffff:10.0.0.0/90", "96..128");
    expect_parse_error("10.0.0.0/", "prefix length");
    expect_parse_error("10.0.0.0/8a", "prefix length");
    expect_parse_error("10.0.0.0/-1", "prefix length");
    expect_parse_error("10.0.0.1/8", "'10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)");
    expect_parse_error("fd00::1/8", "(the network is fd00::/8)");
    expect_parse_error("nginx.internal", "'nginx.internal' is not an IPv4 or IPv6 address");
    expect_parse_error("127.0.0.1, 10.0.0.256", "'10.0.0.256' is not");
    expect_parse_error("[::1]", "'[::1]' is not");
    expect_parse_error("127.0.0.1,,::1", "empty entry");
    expect_parse_error("127.0.0.1,", "empty entry");
    expect_parse_error(", 127.0.0.1", "empty entry");
}

static void test_contains(void **st)
{
    (void)st;
    co_proxies p = parse_ok("127.0.0.1, ::1, 10.0.0.0/8, 192.168.1.0/25, fd00::/8");
    assert_int_equal(co_proxies_contains(&p, "127.0.0.1"), 1);
    assert_int_equal(co_proxies_contains(&p, "127.0.0.2"), 0);
    assert_int_equal(co_proxies_contains(&p, "10.255.1.2"), 1);
    assert_int_equal(co_proxies_contains(&p, "11.0.0.1"), 0);
    assert_int_equal(co_proxies_contains(&p, "9.255.255.255"), 0);
    assert_int_equal(co_proxies_contains(&p, "192.168.1.127"), 1);
    assert_int_equal(co_proxies_contains(&p, "192.168.1.128"), 0);
    assert_int_equal(co_proxies_contains(&p, "::1"), 1);
    assert_int_equal(co_proxies_contains(&p, "::2"), 0);
    assert_int_equal(co_proxies_contains(&p, "fd12:3456::1"), 1);
    assert_int_equal(co_proxies_contains(&p, "fe80::1"), 0);
    /* a dual-stack socket shows IPv4 peers as IPv4-mapped IPv6 */
    assert_int_equal(co_proxies_contains(&p, "::ffff:10.9.9.9"), 1);
    assert_int_equal(co_proxies_contains(&p, "::ffff:11.9.9.9"), 0);
    assert_int_equal(co_proxies_contains(&p, "not an address"), -1);
    assert_int_equal(co_proxies_contains(&p, "?"), -1);
    /* IPv4 entries never match IPv6 addresses and the other way round */
    co_proxies all4 = parse_ok("0.0.0.0/0");
    assert_int_equal(co_proxies_contains(&all4, "203.0.113.9"), 1);
    assert_int_equal(co_proxies_contains(&all4, "2001:db8::1"), 0);
    co_proxies none = parse_ok("");
    assert_int_equal(co_proxies_contains(&none, "127.0.0.1"), 0);
}

/* ---- the walk ---------------------------------------------------------------------------- */

/* The client for peer and one X-Forwarded-For line (NULL: no header) under list; checks the
 * source and the address. */
static void expect_client(const char *list, const char *peer, const char *xff,
                          co_client_source want_src, const char *want)
{
    co_proxies p = parse_ok(list);
    char out[CO_ADDR_MAX];
    const char *lines[1] = {xff};
    co_client_source src = co_proxy_client(&p, peer, lines, xff ? 1 : 0, out, sizeof out);
    if (src != want_src || strcmp(out, want) != 0)
        fail_msg("peer %s, X-Forwarded-For '%s': got %d '%s', want %d '%s'", peer,
                 xff ? xff : "(none)", (int)src, out, (int)want_src, want);
}

static void test_client_untrusted_peer(void **st)
{
    (void)st;
    /* no list: the header is never read */
    expect_client("", "127.0.0.1", "203.0.113.5", CO_CLIENT_PEER, "127.0.0.1");
    /* a forged header from a peer that is no trusted proxy */
    expect_client("127.0.0.1, 10.0.0.0/8", "198.51.100.20", "203.0.113.5", CO_CLIENT_PEER,
                  "198.51.100.20");
    expect_client("127.0.0.1", "127.0.0.4", "garbage", CO_CLIENT_PEER, "127.0.0.4");
    /* the peer's address is written canonically */
    expect_client("", "::ffff:198.51.100.20", NULL, CO_CLIENT_PEER, "198.51.100.20");
    expect_client("", "2001:DB8:0::7", NULL, CO_CLIENT_PEER, "2001:db8::7");
    /* an unknown peer stays as it is */
    expect_client("127.0.0.1", "?", "203.0.113.5", CO_CLIENT_PEER, "?");
}

static void test_client_trusted_peer(void **st)
{
    (void)st;
    const char *L = "127.0.0.1, ::1, 10.0.0.0/8";
    /* nginx in front: the client is the address it appended */
    expect_client(L, "127.0.0.1", "203.0.113.5", CO_CLIENT_FORWARDED, "203.0.113.5");
    expect_client(L, "::1", "2001:db8::42", CO_CLIENT_FORWARDED, "2001:db8::42");
    /* a trusted peer without the header: the peer */
    expect_client(L, "127.0.0.1", NULL, CO_CLIENT_PEER, "127.0.0.1");
    /* two proxies: the right-most address that is not a trusted proxy */
    expect_client(L, "127.0.0.1", "198.51.100.1, 203.0.113.5, 10.0.0.2", CO_CLIENT_FORWARDED,
                  "203.0.113.5");
    /* whatever the client wrote itself (left of what nginx appended) is never believed ... */
    expect_client(L, "127.0.0.1", "10.1.1.1, 203.0.113.5", CO_CLIENT_FORWARDED, "203.0.113.5");
    /* ... nor even read: garbage there is not malformed */
    expect_client(L, "127.0.0.1", "not-an-address, ,, 203.0.113.5", CO_CLIENT_FORWARDED,
                  "203.0.113.5");
    /* every element trusted: the left-most */
    expect_client(L, "127.0.0.1", "10.0.0.3 , 10.0.0.2", CO_CLIENT_FORWARDED, "10.0.0.3");
    /* ports, brackets, blanks, canonical text */
    expect_client(L, "127.0.0.1", "[2001:db8::1]:443", CO_CLIENT_FORWARDED, "2001:db8::1");
    expect_client(L, "127.0.0.1", "[2001:DB8:0::1]", CO_CLIENT_FORWARDED, "2001:db8::1");
    expect_client(L, "127.0.0.1", " 192.0.2.7:5555\t", CO_CLIENT_FORWARDED, "192.0.2.7");
    expect_client(L, "127.0.0.1", "::ffff:192.0.2.8", CO_CLIENT_FORWARDED, "192.0.2.8");
    expect_client(L, "::ffff:127.0.0.1", "192.0.2.9", CO_CLIENT_FORWARDED, "192.0.2.9");
    /* a trusted element written with a port is still trusted */
    expect_client(L, "127.0.0.1", "192.0.2.10, 10.0.0.2:8080", CO_CLIENT_FORWARDED, "192.0.2.10");
}

static void test_client_malformed(void **st)
{
    (void)st;
    const char *L = "127.0.0.1, 10.0.0.0/8";
    expect_client(L, "127.0.0.1", "", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "  ", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "unknown", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "203.0.113.5, garbage", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "203.0.113.5,", CO_CLIENT_MALFORMED, "127.0.0.1");
    /* on the walk, past a trusted hop */
    expect_client(L, "127.0.0.1", "203.0.113.5, bad, 10.0.0.2", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "[192.0.2.7]", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "[2001:db8::1", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "[2001:db8::1]:", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "[2001:db8::1]x", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "192.0.2.7:123456", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "192.0.2.7:http", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "192.0.2.300", CO_CLIENT_MALFORMED, "127.0.0.1");
    expect_client(L, "127.0.0.1", "host.example.net", CO_CLIENT_MALFORMED, "127.0.0.1");
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    expect_client(L, "127.0.0.1", longer, CO_CLIENT_MALFORMED, "127.0.0.1");
}

/* Several X-Forwarded-For lines are one list, in the order received. */
static void test_client_several_lines(void **st)
{
    (void)st;
    co_proxies p = parse_ok("127.0.0.1, 10.0.0.0/8");
    char out[CO_ADDR_MAX];
    const char *two[] = {"192.0.2.9, 192.0.2.1", "10.0.0.5"};
    assert_int_equal(co_proxy_client(&p, "127.0.0.1", two, 2, out, sizeof out),
                     CO_CLIENT_FORWARDED);
    assert_string_equal(out, "192.0.2.1");
    const char *last[] = {"192.0.2.9", "198.51.100.3, 10.0.0.5"};
    assert_int_equal(co_proxy_client(&p, "127.0.0.1", last, 2, out, sizeof out),
                     CO_CLIENT_FORWARDED);
    assert_string_equal(out, "198.51.100.3");
    const char *trusted[] = {"10.0.0.9", "10.0.0.5"};
    assert_int_equal(co_proxy_client(&p, "127.0.0.1", trusted, 2, out, sizeof out),
                     CO_CLIENT_FORWARDED);
    assert_string_equal(out, "10.0.0.9");
    const char *bad[] = {"192.0.2.9", "x", "10.0.0.5"};
    assert_int_equal(co_proxy_client(&p, "127.0.0.1", bad, 3, out, sizeof out),
                     CO_CLIENT_MALFORMED);
    assert_string_equal(out, "127.0.0.1");
    const char *ignored[] = {"x", "192.0.2.9"};
    assert_int_equal(co_proxy_client(&p, "127.0.0.1", ignored, 2, out, sizeof out),
                     CO_CLIENT_FORWARDED);
    assert_string_equal(out, "192.0.2.9");
    /* a NULL list pointer trusts no one */
    assert_int_equal(co_proxy_client(NULL, "127.0.0.1", ignored, 2, out, sizeof out),
                     CO_CLIENT_PEER);
    assert_string_equal(out, "127.0.0.1");
}

/* ---- collector.ini ----------------------------------------------------------------------- */

static char g_dir[128];
static char g_path[256];

static const char *write_ini(const char *text)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/cinemon-test-proxy-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/collector.ini", g_dir);
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    fclose(f);
    return g_path;
}

static void cleanup(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

static void expect_ini_error(const char *text, const char *want)
{
    co_config c;
    char err[512] = "";
    assert_int_equal(co_config_load(&c, write_ini(text), err, sizeof err), -1);
    co_config_free(&c);
    cleanup();
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_config(void **st)
{
    (void)st;
    co_config c;
    char err[512] = "";
    assert_int_equal(co_config_load(&c, write_ini("[collector]\nthreads = 2\n"), err, sizeof err),
                     0);
    assert_int_equal(c.trusted_proxies.n, 0); /* default: trust no one */
    co_config_free(&c);
    cleanup();

    const char *ini = "[collector]\ntrusted_proxies = 127.0.0.1, ::1, 10.0.0.0/8\n";
    if (co_config_load(&c, write_ini(ini), err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.trusted_proxies.n, 3);
    assert_int_equal(co_proxies_contains(&c.trusted_proxies, "10.20.30.40"), 1);
    assert_int_equal(co_proxies_contains(&c.trusted_proxies, "::1"), 1);
    assert_int_equal(co_proxies_contains(&c.trusted_proxies, "192.0.2.1"), 0);
    co_config_free(&c);
    cleanup();

    /* an empty value is the default, written out */
    if (co_config_load(&c, write_ini("[collector]\ntrusted_proxies =\n"), err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.trusted_proxies.n, 0);
    co_config_free(&c);
    cleanup();

    expect_ini_error("[collector]\nthreads = 2\n\ntrusted_proxies = 127.0.0.1, 10.0.0.0/33\n",
                     "collector.ini:4: key 'trusted_proxies' in [collector]: '10.0.0.0/33'");
    expect_ini_error("[collector]\ntrusted_proxies = nginx\n",
                     "collector.ini:2: key 'trusted_proxies' in [collector]: 'nginx' is not");
    expect_ini_error("[collector]\ntrusted_proxies = 10.1.0.0/8\n",
                     "collector.ini:2: key 'trusted_proxies' in [collector]: '10.1.0.0/8' has "
                     "host bits set");
    expect_ini_error("[access]\ntrusted_proxies = 127.0.0.1\n",
                     "collector.ini:2: unknown key 'trusted_proxies'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_client_untrusted_peer),
        cmocka_unit_test(test_client_trusted_peer),
        cmocka_unit_test(test_client_malformed),
        cmocka_unit_test(test_client_several_lines),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
