/* test_spool.c — the durable spool: round trips over segments, seqs across restarts, recovery
 * of torn and corrupt files, the byte bound, a full disk (tmpfs), fsync policies, rejected/,
 * and CRC-32C. Every case works in its own folder under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "timeutil.h"

/* The CRC implementation under test once more, renamed, so that both of its paths (portable
 * slicing-by-8 and SSE4.2) can be checked against a bitwise reference. */
#define cm_crc32c crc_copy
#include "../../common/crc32c.c"
#undef cm_crc32c

#define HDR 24

/* ---- helpers ------------------------------------------------------------------------------ */

static void make_dir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/cinemon-test-spool-XXXXXX");
    assert_non_null(mkdtemp(buf));
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static cm_spool_opts opts_for(const char *dir, uint64_t seg, uint64_t max, cm_fsync_policy p)
{
    cm_spool_opts o = {0};
    o.dir = dir;
    o.segment_bytes = seg;
    o.max_bytes = max;
    o.min_free_bytes = 0;
    o.fsync = p;
    o.memory_ring_bytes = 1 << 20;
    return o;
}

static cm_spool *open_ok(const cm_spool_opts *o, cm_spool_recovery *rep)
{
    cm_spool *s = NULL;
    char err[256] = "";
    int r = cm_spool_open(&s, o, rep, err, sizeof err);
    if (r != 0) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(r, 0);
    assert_non_null(s);
    return s;
}

/* The payload of record seq: deterministic, length varying with seq. */
static size_t payload(uint64_t seq, size_t base, char *buf, size_t cap)
{
    size_t len = base + (size_t)(seq * 7 % 41);
    assert_true(len < cap);
    int n = snprintf(buf, cap, "{\"seq\":%llu,\"pad\":\"", (unsigned long long)seq);
    for (size_t i = (size_t)n; i + 2 < len; i++)
        buf[i] = (char)('a' + (seq + i) % 26);
    buf[len - 2] = '"';
    buf[len - 1] = '}';
    return len;
}

static uint64_t append_batch(cm_spool *s, size_t base)
{
    char buf[70000], err[256] = "";
    uint64_t want = cm_spool_next_seq(s), got = 0;
    size_t len = payload(want, base, buf, sizeof buf);
    int r = cm_spool_append(s, CM_REC_BATCH, buf, len, &got, err, sizeof err);
    if (r != 0) fprintf(stderr, "append: %s\n", err);
    assert_int_equal(r, 0);
    assert_int_equal(got, want);
    return got;
}

static void check_batch(const cm_spool_record *r, size_t base)
{
    char buf[70000];
    size_t len = payload(r->seq, base, buf, sizeof buf);
    assert_int_equal(r->type, CM_REC_BATCH);
    assert_int_equal(r->len, len);
    assert_memory_equal(r->data, buf, len);
}

typedef struct got_rec {
    uint64_t seq;
    uint32_t type;
    uint64_t from, to; /* GAP */
    char reason[32];
} got_rec;

/* Read every unacknowledged record in order (checking batch payloads) into out. */
static size_t read_all(cm_spool *s, size_t base, got_rec *out, size_t cap)
{
    size_t n = 0;
    uint64_t from = 1, last = 0;
    char err[256] = "";
    for (;;) {
        cm_spool_record r;
        int rc = cm_spool_read(s, from, &r, err, sizeof err);
        if (rc < 0) fprintf(stderr, "read: %s\n", err);
        assert_true(rc >= 0);
        if (rc == 0) break;
        assert_true(r.seq > last);
        assert_true(n < cap);
        got_rec *g = &out[n++];
        memset(g, 0, sizeof *g);
        g->seq = r.seq;
        g->type = r.type;
        if (r.type == CM_REC_GAP) {
            char js[200];
            assert_true(r.len < sizeof js);
            memcpy(js, r.data, r.len);
            js[r.len] = 0;
            unsigned long long a, b;
            assert_int_equal(sscanf(js,
                                    "{\"from_seq\":%llu,\"to_seq\":%llu,\"reason\":\"%31[a-z_]\"}",
                                    &a, &b, g->reason),
                             3);
            g->from = a;
            g->to = b;
        } else {
            check_batch(&r, base);
        }
        last = r.seq;
        from = r.seq + 1;
    }
    return n;
}

static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "seg-", 4) == 0) n++;
    closedir(d);
    return n;
}

/* Path of the newest (or oldest) segment file. */
static void segment_path(const char *dir, int newest, char *out, size_t n)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[300] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "seg-", 4) != 0) continue;
        if (!*best || (newest ? strcmp(de->d_name, best) > 0 : strcmp(de->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(d);
    assert_true(*best);
    snprintf(out, n, "%s/%s", dir, best);
}

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(cm_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(cm_crc32c(0, "", 0), 0);
    /* continuing: crc(a || b) == crc(crc(a), b) */
    assert_int_equal(cm_crc32c(cm_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    unsigned char buf[1100];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    crc_copy(0, "", 0); /* runs init() of the copy */
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 1090; len += (len < 40 ? 1 : 97)) {
            uint32_t want = crc_bitwise(buf + off, len);
            assert_int_equal(cm_crc32c(0, buf + off, len), want);
            assert_int_equal(~crc_sw(~0u, buf + off, len), want);
#ifdef CM_CRC_HW
            if (__builtin_cpu_supports("sse4.2"))
                assert_int_equal(~crc_hw(~0u, buf + off, len), want);
#endif
        }
}

/* ---- round trip --------------------------------------------------------------------------- */

static void test_round_trip_segments(void **state)
{
    (void)state;
    char dir[64], err[256];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 1024, 1 << 20, CM_FSYNC_ALWAYS);
    cm_spool *s = open_ok(&o, NULL);
    assert_int_equal(cm_spool_next_seq(s), 1);
    int64_t t0 = cm_now_ms();
    for (int i = 0; i < 60; i++)
        assert_int_equal(append_batch(s, 100), (uint64_t)i + 1);
    int64_t t1 = cm_now_ms();
    assert_true(count_segments(dir) >= 6);
    cm_spool_stats st;
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.records, 60);
    assert_int_equal(st.first_seq, 1);
    assert_int_equal(st.next_seq, 61);
    assert_int_equal(st.acked_seq, 0);
    assert_true(st.oldest_ms >= t0 && st.oldest_ms <= t1);
    assert_int_equal(st.disk_ok, 1);
    assert_int_equal(st.dropped_records, 0);

    /* sequential reads, then acks in steps: wholly acknowledged segments go */
    got_rec got[100];
    assert_int_equal(read_all(s, 100, got, 100), 60);
    for (int i = 0; i < 60; i++)
        assert_int_equal(got[i].seq, (uint64_t)i + 1);
    cm_spool_record r;
    assert_int_equal(cm_spool_read(s, 17, &r, err, sizeof err), 1);
    assert_int_equal(r.seq, 17);
    assert_true(r.appended_ms >= t0 && r.appended_ms <= t1);
    int before = count_segments(dir);
    assert_int_equal(cm_spool_ack(s, 30, err, sizeof err), 0);
    assert_true(count_segments(dir) < before);
    assert_int_equal(cm_spool_read(s, 1, &r, err, sizeof err), 1);
    assert_int_equal(r.seq, 31);
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.records, 30);
    assert_int_equal(st.first_seq, 31);
    assert_int_equal(st.acked_seq, 30);
    /* acknowledging something never given out is refused; going back is a no-op */
    assert_int_equal(cm_spool_ack(s, 61, err, sizeof err), -1);
    assert_non_null(strstr(err, "61"));
    assert_int_equal(cm_spool_ack(s, 10, err, sizeof err), 0);
    /* re-reading from the cursor after a "retry" */
    for (int k = 0; k < 3; k++) {
        assert_int_equal(cm_spool_read(s, 31, &r, err, sizeof err), 1);
        check_batch(&r, 100);
        assert_int_equal(r.seq, 31);
    }
    /* from_seq beyond the end */
    assert_int_equal(cm_spool_read(s, 61, &r, err, sizeof err), 0);
    assert_int_equal(cm_spool_read(s, 1000, &r, err, sizeof err), 0);
    assert_int_equal(cm_spool_ack(s, 60, err, sizeof err), 0);
    assert_int_equal(cm_spool_read(s, 1, &r, err, sizeof err), 0);
    assert_true(count_segments(dir) <= 1); /* the one being written stays until closed */
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.first_seq, 0);
    assert_int_equal(st.oldest_ms, 0);

    /* a second process on the same folder is refused */
    cm_spool *s2 = NULL;
    assert_int_equal(cm_spool_open(&s2, &o, NULL, err, sizeof err), -1);
    assert_null(s2);
    assert_non_null(strstr(err, "in use"));
    cm_spool_close(s);
    rm_rf(dir);
}

static void test_seqs_survive_restart(void **state)
{
    (void)state;
    char dir[64], err[256];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 2048, 1 << 20, CM_FSYNC_CYCLE);
    cm_spool *s = open_ok(&o, NULL);
    for (int i = 0; i < 25; i++)
        append_batch(s, 150);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
    cm_spool_close(s);

    cm_spool_recovery rep;
    s = open_ok(&o, &rep);
    assert_int_equal(rep.records, 25);
    assert_int_equal(rep.truncated_bytes, 0);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.gaps, 0);
    assert_int_equal(cm_spool_next_seq(s), 26);
    got_rec got[64];
    assert_int_equal(read_all(s, 150, got, 64), 25);
    cm_spool_record r;
    assert_int_equal(cm_spool_read(s, 3, &r, err, sizeof err), 1);
    assert_int_equal(r.appended_ms, 0); /* found at start-up */
    cm_spool_stats st;
    cm_spool_stats_get(s, &st);
    assert_true(st.oldest_ms > 0);
    /* appending continues in the reopened segment */
    assert_int_equal(append_batch(s, 150), 26);
    assert_int_equal(read_all(s, 150, got, 64), 26);
    /* everything acknowledged: after close no segment is left; seqs continue from the cursor */
    assert_int_equal(cm_spool_ack(s, 26, err, sizeof err), 0);
    cm_spool_close(s);
    assert_int_equal(count_segments(dir), 0);
    s = open_ok(&o, &rep);
    assert_int_equal(rep.records, 0);
    assert_int_equal(cm_spool_next_seq(s), 27);
    assert_int_equal(cm_spool_read(s, 1, &r, err, sizeof err), 0);
    assert_int_equal(append_batch(s, 150), 27);
    assert_int_equal(cm_spool_read(s, 1, &r, err, sizeof err), 1);
    assert_int_equal(r.seq, 27);
    cm_spool_close(s);
    rm_rf(dir);
}

/* ---- recovery ----------------------------------------------------------------------------- */

static void test_torn_tail(void **state)
{
    (void)state;
    char dir[64], path[128], buf[1000];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 4096, 1 << 20, CM_FSYNC_ALWAYS);
    cm_spool *s = open_ok(&o, NULL);
    for (int i = 0; i < 20; i++)
        append_batch(s, 300);
    cm_spool_close(s);
    /* where does record 20 start in the newest segment? at the end of the ones before it */
    segment_path(dir, 1, path, sizeof path);
    unsigned long long first = strtoull(strrchr(path, '/') + 5, NULL, 10);
    off_t off = 0;
    for (uint64_t q = first; q < 20; q++)
        off += HDR + (off_t)payload(q, 300, buf, sizeof buf);
    /* cut it 10 bytes into its payload */
    assert_int_equal(truncate(path, off + HDR + 10), 0);

    cm_spool_recovery rep;
    s = open_ok(&o, &rep);
    assert_int_equal(rep.records, 19);
    assert_int_equal(rep.truncated_bytes, HDR + 10);
    /* its header survived, so seq 20 is known and not given out again: a gap says it is lost */
    assert_int_equal(rep.corrupt_records, 1);
    assert_int_equal(rep.gaps, 1);
    got_rec got[64];
    size_t n = read_all(s, 300, got, 64);
    assert_int_equal(n, 20);
    for (int i = 0; i < 19; i++)
        assert_int_equal(got[i].seq, (uint64_t)i + 1);
    assert_int_equal(got[19].seq, 21);
    assert_int_equal(got[19].type, CM_REC_GAP);
    assert_int_equal(got[19].from, 20);
    assert_int_equal(got[19].to, 20);
    assert_string_equal(got[19].reason, "corrupt");
    assert_int_equal(append_batch(s, 300), 22);
    cm_spool_close(s);

    /* cut inside a header: nothing is known of that record; the tail still goes */
    segment_path(dir, 1, path, sizeof path);
    s = open_ok(&o, &rep);
    assert_int_equal(rep.gaps, 0); /* the gap for seq 20 is on disk already */
    uint64_t next = cm_spool_next_seq(s);
    assert_int_equal(next, 23);
    cm_spool_close(s);
    /* find the end of the last record by reading every record's frame from the file */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    off_t end = 0, last = 0;
    unsigned char h[HDR];
    while (pread(fd, h, HDR, end) == HDR && memcmp(h, "CMR1", 4) == 0) {
        uint32_t len =
            (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
        last = end;
        end += HDR + (off_t)len;
    }
    close(fd);
    assert_true(end > 0);
    assert_int_equal(truncate(path, last + 4), 0); /* just the magic */
    s = open_ok(&o, &rep);
    assert_int_equal(rep.truncated_bytes, 4);
    assert_int_equal(rep.gaps, 0);
    assert_int_equal(cm_spool_next_seq(s), next - 1); /* the cut record's seq was unknown */
    n = read_all(s, 300, got, 64);
    assert_true(n >= 20);
    assert_int_equal(append_batch(s, 300), next - 1);
    cm_spool_close(s);
    rm_rf(dir);
}

/* Flip one byte at (offset of record `victim`) + delta in a one-segment spool of 10 records;
 * the spool must skip exactly that record and say so with a gap. */
static void corrupt_middle(size_t delta)
{
    char dir[64], path[128], buf[1000];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 1 << 16, 1 << 20, CM_FSYNC_NONE);
    cm_spool *s = open_ok(&o, NULL);
    for (int i = 0; i < 10; i++)
        append_batch(s, 200);
    cm_spool_close(s);
    segment_path(dir, 1, path, sizeof path);
    off_t off = 0;
    for (uint64_t q = 1; q < 5; q++)
        off += HDR + (off_t)payload(q, 200, buf, sizeof buf);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off + (off_t)delta), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, off + (off_t)delta), 1);
    close(fd);

    cm_spool_recovery rep;
    s = open_ok(&o, &rep);
    assert_int_equal(rep.records, 9);
    assert_int_equal(rep.corrupt_records, 1);
    assert_int_equal(rep.gaps, 1);
    assert_int_equal(rep.truncated_bytes, 0);
    got_rec got[32];
    size_t n = read_all(s, 200, got, 32);
    assert_int_equal(n, 10);
    uint64_t want[] = {1, 2, 3, 4, 6, 7, 8, 9, 10, 11};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].seq, want[i]);
    assert_int_equal(got[9].type, CM_REC_GAP);
    assert_int_equal(got[9].from, 5);
    assert_int_equal(got[9].to, 5);
    assert_string_equal(got[9].reason, "corrupt");
    cm_spool_stats st;
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(append_batch(s, 200), 12);
    cm_spool_close(s);
    /* the next start finds nothing new to complain about */
    s = open_ok(&o, &rep);
    assert_int_equal(rep.gaps, 0); /* the corrupt bytes are still there, but the gap is known */
    assert_int_equal(rep.records, 11);
    assert_int_equal(cm_spool_next_seq(s), 13);
    cm_spool_close(s);
    rm_rf(dir);
}

static void test_corrupt_middle_payload(void **state)
{
    (void)state;
    corrupt_middle(HDR + 30);
}

static void test_corrupt_middle_header(void **state)
{
    (void)state;
    corrupt_middle(1); /* the magic */
    corrupt_middle(5); /* the length */
}

/* A record that goes bad on disk after start-up is skipped when read, and a gap says so. */
static void test_corrupt_after_open(void **state)
{
    (void)state;
    char dir[64], path[128], buf[1000], err[256];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 1 << 16, 1 << 20, CM_FSYNC_CYCLE);
    cm_spool *s = open_ok(&o, NULL);
    for (int i = 0; i < 5; i++)
        append_batch(s, 200);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
    segment_path(dir, 1, path, sizeof path);
    off_t off = 0;
    for (uint64_t q = 1; q < 3; q++)
        off += HDR + (off_t)payload(q, 200, buf, sizeof buf);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "#", 1, off + HDR + 40), 1);
    close(fd);
    got_rec got[16];
    size_t n = read_all(s, 200, got, 16);
    assert_int_equal(n, 4);
    assert_int_equal(got[2].seq, 4);
    cm_spool_stats st;
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0); /* writes the waiting gap */
    n = read_all(s, 200, got, 16);
    assert_int_equal(n, 5);
    assert_int_equal(got[4].seq, 6);
    assert_int_equal(got[4].from, 3);
    assert_int_equal(got[4].to, 3);
    assert_string_equal(got[4].reason, "corrupt");
    cm_spool_close(s);
    rm_rf(dir);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static void test_max_bytes(void **state)
{
    (void)state;
    char dir[64], err[256];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 1024, 4096, CM_FSYNC_CYCLE);
    cm_spool *s = open_ok(&o, NULL);
    cm_spool_stats st;
    for (int i = 0; i < 120; i++) {
        append_batch(s, 80);
        if (i % 10 == 0) assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
        cm_spool_stats_get(s, &st);
        assert_true(st.bytes <= 4096);
    }
    assert_true(st.dropped_records > 0);
    assert_int_equal(st.disk_ok, 1);
    uint64_t next = st.next_seq;
    got_rec got[400];
    size_t n = read_all(s, 80, got, 400);
    /* every seq is either present or covered by exactly one spool_full gap; nothing present
     * is claimed lost */
    static unsigned char present[1000], covered[1000];
    memset(present, 0, sizeof present);
    memset(covered, 0, sizeof covered);
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        present[got[i].seq] = 1;
        if (got[i].type == CM_REC_GAP) {
            assert_string_equal(got[i].reason, "spool_full");
            assert_true(got[i].from <= got[i].to && got[i].to < got[i].seq);
            for (uint64_t q = got[i].from; q <= got[i].to; q++)
                covered[q]++;
        }
    }
    for (uint64_t q = 1; q < next; q++) {
        if (present[q]) {
            assert_int_equal(covered[q], 0);
        } else {
            assert_int_equal(covered[q], 1);
            lost++;
        }
    }
    /* gaps cover records dropped, and gap records that were themselves dropped later */
    assert_int_equal(lost, st.dropped_records);
    assert_true(present[next - 1]);
    cm_spool_close(s);
    rm_rf(dir);
}

/* ---- a full disk -------------------------------------------------------------------------- */

/* Write to fd until the filesystem is full. */
static void fill(int fd)
{
    static char chunk[4096];
    memset(chunk, 'F', sizeof chunk);
    size_t n = sizeof chunk;
    for (;;) {
        ssize_t r = write(fd, chunk, n);
        if (r < 0) {
            assert_int_equal(errno, ENOSPC);
            if (n == 1) return;
            n = 1; /* the last page's bytes too */
        }
    }
}

static void test_enospc_memory_ring(void **state)
{
    (void)state;
    char mnt[64], dir[96], filler[96], err[256];
    make_dir(mnt, sizeof mnt);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0) {
        rmdir(mnt);
        skip();
    }
    snprintf(dir, sizeof dir, "%s/spool", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    cm_spool_opts o = opts_for(dir, 16 << 10, 1 << 20, CM_FSYNC_CYCLE);
    o.memory_ring_bytes = 64 << 10;
    cm_spool *s = open_ok(&o, NULL);
    for (int i = 0; i < 20; i++)
        append_batch(s, 500);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);

    /* phase 1: the disk fills up; appends go on into memory; nothing is lost */
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fill(fd);
    cm_spool_stats st;
    for (int i = 0; i < 60; i++) {
        append_batch(s, 500);
        cm_spool_stats_get(s, &st);
        if (!st.disk_ok) fill(fd); /* what a failed roll gave back */
    }
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.disk_ok, 0);
    assert_true(st.disk_errors > 0);
    assert_int_equal(st.records, 80);
    assert_int_equal(st.dropped_records, 0);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "disk"));
    got_rec got[600];
    size_t n = read_all(s, 500, got, 600); /* disk and memory, in order */
    assert_int_equal(n, 80);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].seq, i + 1);
    close(fd);
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.disk_ok, 1);
    assert_int_equal(st.records, 80);
    cm_spool_close(s);
    cm_spool_recovery rep;
    s = open_ok(&o, &rep); /* all of it from disk now */
    assert_int_equal(rep.records, 80);
    n = read_all(s, 500, got, 600);
    assert_int_equal(n, 80);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].seq, i + 1);

    /* phase 2: the disk stays full longer than the ring holds: the oldest in memory go,
     * and a disk_error gap names exactly them once the disk is back */
    assert_int_equal(cm_spool_ack(s, 80, err, sizeof err), 0);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fill(fd);
    for (int i = 0; i < 250; i++) {
        append_batch(s, 500);
        cm_spool_stats_get(s, &st);
        if (!st.disk_ok) fill(fd);
    }
    cm_spool_stats_get(s, &st);
    assert_int_equal(st.disk_ok, 0);
    assert_true(st.dropped_records > 0);
    uint64_t dropped = st.dropped_records, next = st.next_seq;
    close(fd);
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
    n = read_all(s, 500, got, 600);
    static unsigned char present[1000], covered[1000];
    memset(present, 0, sizeof present);
    memset(covered, 0, sizeof covered);
    size_t gaps = 0;
    for (size_t i = 0; i < n; i++) {
        present[got[i].seq] = 1;
        if (got[i].type != CM_REC_GAP) continue;
        gaps++;
        assert_string_equal(got[i].reason, "disk_error");
        for (uint64_t q = got[i].from; q <= got[i].to; q++)
            covered[q]++;
    }
    assert_true(gaps >= 1);
    uint64_t lost = 0;
    for (uint64_t q = 81; q < next; q++) {
        assert_int_equal(present[q] + covered[q], 1);
        lost += covered[q];
    }
    assert_int_equal(lost, dropped);
    cm_spool_close(s);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    rmdir(mnt);
}

/* ---- fsync policies ----------------------------------------------------------------------- */

static void test_fsync_policies(void **state)
{
    (void)state;
    cm_fsync_policy pol[] = {CM_FSYNC_ALWAYS, CM_FSYNC_CYCLE, CM_FSYNC_NONE};
    for (size_t p = 0; p < 3; p++) {
        char dir[64], err[256];
        make_dir(dir, sizeof dir);
        cm_spool_opts o = opts_for(dir, 2048, 1 << 20, pol[p]);
        cm_spool *s = open_ok(&o, NULL);
        for (int i = 0; i < 40; i++) {
            append_batch(s, 120);
            if (i % 7 == 6) assert_int_equal(cm_spool_sync(s, err, sizeof err), 0);
            if (i % 11 == 10) { /* reading what was just appended, unsynced */
                cm_spool_record r;
                assert_int_equal(cm_spool_read(s, (uint64_t)i + 1, &r, err, sizeof err), 1);
                check_batch(&r, 120);
            }
        }
        /* a GAP goes in too (always synced) */
        const char *gap = "{\"from_seq\":3,\"to_seq\":4,\"reason\":\"rejected\"}";
        uint64_t gs;
        assert_int_equal(cm_spool_append(s, CM_REC_GAP, gap, strlen(gap), &gs, err, sizeof err), 0);
        assert_int_equal(gs, 41);
        got_rec got[64];
        assert_int_equal(read_all(s, 120, got, 64), 41);
        cm_spool_close(s);
        cm_spool_recovery rep;
        s = open_ok(&o, &rep);
        assert_int_equal(rep.records, 41);
        assert_int_equal(read_all(s, 120, got, 64), 41);
        assert_int_equal(got[40].type, CM_REC_GAP);
        assert_string_equal(got[40].reason, "rejected");
        cm_spool_close(s);
        rm_rf(dir);
    }
}

/* ---- rejected/ ---------------------------------------------------------------------------- */

static void test_reject_bounded(void **state)
{
    (void)state;
    char dir[64], err[256], path[160];
    make_dir(dir, sizeof dir);
    cm_spool_opts o = opts_for(dir, 4096, 1 << 20, CM_FSYNC_NONE);
    cm_spool *s = open_ok(&o, NULL);
    assert_int_equal(cm_spool_reject(s, 3, 5, "{\"x\":1}", 7, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/rejected/3-5.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[16] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "{\"x\":1}");
    size_t big = 5u << 20;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'x', big);
    for (int i = 0; i < 6; i++)
        assert_int_equal(cm_spool_reject(s, 10 + (uint64_t)i * 10, 19 + (uint64_t)i * 10, body, big,
                                         err, sizeof err),
                         0);
    free(body);
    /* at most 16 MiB: the oldest went, the newest stayed */
    char rdir[128];
    snprintf(rdir, sizeof rdir, "%s/rejected", dir);
    DIR *d = opendir(rdir);
    assert_non_null(d);
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        char p[400];
        snprintf(p, sizeof p, "%s/%s", rdir, de->d_name);
        if (de->d_name[0] != '.' && stat(p, &st) == 0) total += (uint64_t)st.st_size;
    }
    closedir(d);
    assert_true(total <= 16u << 20);
    assert_true(total >= 15u << 20);
    snprintf(path, sizeof path, "%s/rejected/60-69.json", dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/rejected/3-5.json", dir);
    assert_int_equal(access(path, F_OK), -1);
    cm_spool_close(s);
    rm_rf(dir);
}

/* ---- bad arguments ------------------------------------------------------------------------ */

static void test_bad_use(void **state)
{
    (void)state;
    char dir[64], err[256];
    make_dir(dir, sizeof dir);
    cm_spool *s = NULL;
    cm_spool_opts o = opts_for(NULL, 0, 0, CM_FSYNC_CYCLE);
    assert_int_equal(cm_spool_open(&s, &o, NULL, err, sizeof err), -1);
    o = opts_for(dir, 1 << 20, 1 << 16, CM_FSYNC_CYCLE); /* segment above max */
    assert_int_equal(cm_spool_open(&s, &o, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "segment_bytes"));
    /* a folder that cannot be created */
    o = opts_for("/proc/cinemon-no/spool", 0, 0, CM_FSYNC_CYCLE);
    assert_int_equal(cm_spool_open(&s, &o, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/proc/cinemon-no/spool"));
    /* defaults; junk in the folder is left alone; a garbage ack file does not stop it */
    char p[128];
    snprintf(p, sizeof p, "%s/ack", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/seg-notanumber.log", dir);
    f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    o = opts_for(dir, 0, 0, CM_FSYNC_CYCLE);
    s = open_ok(&o, NULL);
    assert_int_equal(cm_spool_next_seq(s), 1);
    assert_int_equal(cm_spool_append(s, 0, "x", 1, NULL, err, sizeof err), -1);
    assert_int_equal(cm_spool_append(s, CM_REC_BATCH, "", 0, NULL, err, sizeof err), 0);
    cm_spool_record r;
    assert_int_equal(cm_spool_read(s, 0, &r, err, sizeof err), 1);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.seq, 1);
    /* a record larger than a segment gets its own */
    char *big = calloc(1, 5u << 20);
    assert_non_null(big);
    uint64_t q;
    assert_int_equal(cm_spool_append(s, CM_REC_BATCH, big, 5u << 20, &q, err, sizeof err), 0);
    assert_int_equal(cm_spool_read(s, q, &r, err, sizeof err), 1);
    assert_int_equal(r.len, 5u << 20);
    assert_memory_equal(r.data, big, 5u << 20);
    free(big);
    assert_int_equal(append_batch(s, 100), 3);
    cm_spool_close(s);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_round_trip_segments),
        cmocka_unit_test(test_seqs_survive_restart),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_corrupt_middle_payload),
        cmocka_unit_test(test_corrupt_middle_header),
        cmocka_unit_test(test_corrupt_after_open),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_enospc_memory_ring),
        cmocka_unit_test(test_fsync_policies),
        cmocka_unit_test(test_reject_bounded),
        cmocka_unit_test(test_bad_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
