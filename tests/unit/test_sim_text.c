/* test_sim_text.c — the simulator's PJLink and CP750 line handlers (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/cp750.h"
#include "sim/pjlink.h"

static long say(const sim_line_proto *p, void *dev, sim_conn_state *cs, const char *line,
                int64_t now, char *out, size_t cap)
{
    size_t n = 0;
    long rc = p->line(dev, cs, line, strlen(line), now, out, cap, &n);
    assert_true(n < cap);
    out[n] = 0;
    return rc;
}

static void test_pjlink_no_auth(void **state)
{
    (void)state;
    sim_pjlink pj;
    sim_pjlink_init(&pj, 1, 42, 0, 1, NULL);
    sim_conn_state cs = {0};
    char out[256];
    size_t n = sim_pjlink_proto.greet(&pj, &cs, 7, out, sizeof out);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "PJLINK 0\r", 9);
    assert_int_equal(say(&sim_pjlink_proto, &pj, &cs, "%1POWR ?", 0, out, sizeof out), 0);
    assert_string_equal(out, "%1POWR=1\r");
    say(&sim_pjlink_proto, &pj, &cs, "%1POWR 0", 0, out, sizeof out);
    assert_string_equal(out, "%1POWR=OK\r");
    say(&sim_pjlink_proto, &pj, &cs, "%1POWR ?", 1000, out, sizeof out);
    assert_string_equal(out, "%1POWR=2\r"); /* cooling */
    say(&sim_pjlink_proto, &pj, &cs, "%1POWR ?", 60000, out, sizeof out);
    assert_string_equal(out, "%1POWR=0\r");
    say(&sim_pjlink_proto, &pj, &cs, "%1INPT 99", 0, out, sizeof out);
    assert_string_equal(out, "%1INPT=ERR2\r");
    say(&sim_pjlink_proto, &pj, &cs, "%2FILT ?", 0, out, sizeof out);
    assert_non_null(strstr(out, "%2FILT="));
    say(&sim_pjlink_proto, &pj, &cs, "%1FILT ?", 0, out, sizeof out);
    assert_string_equal(out, "%1FILT=ERR1\r");
    /* odd lines: short, lower case, binary */
    say(&sim_pjlink_proto, &pj, &cs, "%1", 0, out, sizeof out);
    assert_string_equal(out, "");
    say(&sim_pjlink_proto, &pj, &cs, "%1powr ?", 0, out, sizeof out);
    assert_string_equal(out, "%1??\?\?=ERR1\r");
}

static void test_pjlink_auth(void **state)
{
    (void)state;
    sim_pjlink pj;
    sim_pjlink_init(&pj, 1, 42, 0, 1, "JBMIAProjectorLink");
    sim_conn_state cs = {0};
    char out[256];
    sim_pjlink_proto.greet(&pj, &cs, 0x498e4a67, out, sizeof out);
    assert_string_equal(out, "PJLINK 1 498e4a67\r");
    /* md5("498e4a67JBMIAProjectorLink") — the example of the PJLink specification */
    assert_int_equal(say(&sim_pjlink_proto, &pj, &cs,
                         "5d8409bc1c3fa39749434aa3a5c38682%1POWR ?", 0, out, sizeof out), 0);
    assert_string_equal(out, "%1POWR=1\r");
    sim_conn_state bad = {0};
    sim_pjlink_proto.greet(&pj, &bad, 1, out, sizeof out);
    assert_int_equal(say(&sim_pjlink_proto, &pj, &bad, "%1POWR ?", 0, out, sizeof out), -1);
    assert_string_equal(out, "PJLINK ERRA\r");
}

static void test_cp750(void **state)
{
    (void)state;
    sim_cp750 cp;
    sim_cp750_init(&cp, 2, 9);
    sim_conn_state cs = {0};
    char out[512];
    say(&sim_cp750_proto, &cp, &cs, "cp750.sys.fader 70", 0, out, sizeof out);
    assert_string_equal(out, "cp750.sys.fader 70\r\n");
    say(&sim_cp750_proto, &cp, &cs, "cp750.sys.fader 101", 0, out, sizeof out);
    assert_string_equal(out, ""); /* out of range: no reply, unchanged */
    say(&sim_cp750_proto, &cp, &cs, "cp750.ctrl.fader_delta 50", 0, out, sizeof out);
    assert_string_equal(out, "cp750.ctrl.fader_delta 30\r\n");
    say(&sim_cp750_proto, &cp, &cs, "cp750.sys.fader ?", 0, out, sizeof out);
    assert_string_equal(out, "cp750.sys.fader 100\r\n");
    say(&sim_cp750_proto, &cp, &cs, "cp750.sys.input_mode analog", 0, out, sizeof out);
    assert_string_equal(out, "cp750.sys.input_mode analog\r\n");
    say(&sim_cp750_proto, &cp, &cs, "status", 0, out, sizeof out);
    assert_non_null(strstr(out, "cp750.sys.fader : 100\r\n"));
    say(&sim_cp750_proto, &cp, &cs, "nonsense ?", 0, out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pjlink_no_auth),
        cmocka_unit_test(test_pjlink_auth),
        cmocka_unit_test(test_cp750),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
