/* forward_journal.c — the intent journal of forward_journal.h: one file, rewritten whole for
 * each group (one pwrite, then fdatasync), emptied with ftruncate after the group's records
 * are in the spool. */
#include "forward_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "le.h"
#include "log.h"
#include "spool.h"

#define HDR_LEN 32
#define ENTRY_HDR 40
#define TRAILER 8
#define VERSION 1
#define MAX_JOURNAL (1ull << 34) /* a longer file is not ours */

struct co_fjournal {
    int fd;
    int sync;
    char *path;
    uint64_t len;       /* bytes the file holds (0 = empty) */
    unsigned char *buf; /* the last group written or read */
    size_t cap;
    co_fj_entry *entries;
    size_t ecap;
};

static int reserve(co_fjournal *j, size_t n)
{
    if (n <= j->cap) return 0;
    size_t c = j->cap ? j->cap : 4096;
    while (c < n)
        c *= 2;
    unsigned char *b = realloc(j->buf, c);
    if (!b) return -1;
    j->buf = b;
    j->cap = c;
    return 0;
}

int co_fj_open(co_fjournal **out, const char *path, int sync, char *err, size_t errlen)
{
    *out = NULL;
    co_fjournal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        cm_seterr(err, errlen, "out of memory");
        return -1;
    }
    j->sync = sync;
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    struct stat st;
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        cm_seterr(err, errlen, "intent journal %s: %s", path, strerror(errno));
        co_fj_close(j);
        return -1;
    }
    j->len = (uint64_t)st.st_size;
    *out = j;
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    off_t off = 0;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

int co_fj_write(co_fjournal *j, uint64_t low_seq, const co_fj_entry *e, size_t n, char *err,
                size_t errlen)
{
    size_t total = HDR_LEN + TRAILER;
    for (size_t i = 0; i < n; i++)
        total += ENTRY_HDR + strlen(e[i].agent) + 1 + e[i].len;
    if (n > UINT32_MAX || reserve(j, total) != 0) {
        cm_seterr(err, errlen, "intent journal %s: out of memory (%zu bytes)", j->path, total);
        return -1;
    }
    unsigned char *p = j->buf;
    memcpy(p, "CMFJ", 4);
    cm_le_put32(p + 4, VERSION);
    cm_le_put32(p + 8, (uint32_t)n);
    cm_le_put32(p + 12, 0);
    cm_le_put64(p + 16, low_seq);
    cm_le_put64(p + 24, total);
    p += HDR_LEN;
    for (size_t i = 0; i < n; i++) {
        size_t al = strlen(e[i].agent) + 1;
        cm_le_put32(p, (uint32_t)al);
        cm_le_put32(p + 4, e[i].type);
        cm_le_put64(p + 8, e[i].first_seq);
        cm_le_put64(p + 16, e[i].seq);
        cm_le_put64(p + 24, e[i].last_before);
        cm_le_put64(p + 32, e[i].len);
        p += ENTRY_HDR;
        memcpy(p, e[i].agent, al);
        p += al;
        if (e[i].len) memcpy(p, e[i].payload, e[i].len);
        p += e[i].len;
    }
    cm_le_put32(p, cm_crc32c(0, j->buf, (size_t)(p - j->buf)));
    memcpy(p + 4, "CMFE", 4);
    /* A shorter group than the last one leaves the old tail behind until the ftruncate: the
     * length in the header and the CRC tell them apart. */
    if (write_all(j->fd, j->buf, total) != 0 ||
        (j->len > total && ftruncate(j->fd, (off_t)total) != 0) ||
        (j->sync && fdatasync(j->fd) != 0)) {
        cm_seterr(err, errlen, "intent journal %s: %s", j->path, strerror(errno));
        j->len = total > j->len ? total : j->len;
        return -1;
    }
    j->len = total;
    return 0;
}

int co_fj_clear(co_fjournal *j, char *err, size_t errlen)
{
    if (j->len == 0) return 0;
    if (ftruncate(j->fd, 0) != 0 || (j->sync && fdatasync(j->fd) != 0)) {
        cm_seterr(err, errlen, "intent journal %s: cannot empty it: %s", j->path, strerror(errno));
        return -1;
    }
    j->len = 0;
    return 0;
}

/* The journal is torn or not ours: say so and read it as empty. */
static int torn(co_fjournal *j, const char *why)
{
    cm_warn("intent journal %s: %s; ignored (it was being written before a commit that "
            "therefore never happened)",
            j->path, why);
    return 0;
}

int co_fj_read(co_fjournal *j, uint64_t *low_seq, const co_fj_entry **entries, size_t *n, char *err,
               size_t errlen)
{
    *entries = NULL;
    *n = 0;
    *low_seq = 0;
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        cm_seterr(err, errlen, "intent journal %s: %s", j->path, strerror(errno));
        return -1;
    }
    j->len = (uint64_t)st.st_size;
    if (j->len == 0) return 0;
    if (j->len < HDR_LEN + TRAILER) return torn(j, "shorter than its header");
    if (j->len > MAX_JOURNAL || reserve(j, (size_t)j->len) != 0) {
        cm_seterr(err, errlen, "intent journal %s: %llu bytes: cannot read it", j->path,
                  (unsigned long long)j->len);
        return -1;
    }
    size_t len = (size_t)j->len, got = 0;
    while (got < len) {
        ssize_t r = pread(j->fd, j->buf + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            cm_seterr(err, errlen, "intent journal %s: %s", j->path,
                      r < 0 ? strerror(errno) : "shorter than it was");
            return -1;
        }
        got += (size_t)r;
    }
    const unsigned char *b = j->buf;
    if (memcmp(b, "CMFJ", 4) != 0 || cm_le_get32(b + 4) != VERSION)
        return torn(j, "no journal header");
    uint64_t total = cm_le_get64(b + 24);
    size_t count = cm_le_get32(b + 8);
    if (total < HDR_LEN + TRAILER || total > len) return torn(j, "torn (shorter than it says)");
    const unsigned char *tr = b + total - TRAILER;
    if (memcmp(tr + 4, "CMFE", 4) != 0 || cm_le_get32(tr) != cm_crc32c(0, b, (size_t)(tr - b)))
        return torn(j, "torn or corrupt (CRC)");
    if (count > j->ecap) {
        co_fj_entry *ne = realloc(j->entries, count * sizeof *ne);
        if (!ne) {
            cm_seterr(err, errlen, "out of memory");
            return -1;
        }
        j->entries = ne;
        j->ecap = count;
    }
    const unsigned char *p = b + HDR_LEN;
    for (size_t i = 0; i < count; i++) {
        if ((size_t)(tr - p) < ENTRY_HDR) return torn(j, "entry beyond its end");
        size_t al = cm_le_get32(p);
        uint64_t pl = cm_le_get64(p + 32);
        if (al == 0 || al > (size_t)(tr - p) - ENTRY_HDR ||
            pl > (uint64_t)((size_t)(tr - p) - ENTRY_HDR - al) || p[ENTRY_HDR + al - 1] != '\0')
            return torn(j, "entry beyond its end");
        co_fj_entry *e = &j->entries[i];
        e->type = cm_le_get32(p + 4);
        e->first_seq = cm_le_get64(p + 8);
        e->seq = cm_le_get64(p + 16);
        e->last_before = cm_le_get64(p + 24);
        e->len = (size_t)pl;
        e->agent = (const char *)p + ENTRY_HDR;
        e->payload = p + ENTRY_HDR + al;
        p += ENTRY_HDR + al + pl;
    }
    if (p != tr) return torn(j, "entries do not fill it");
    *low_seq = cm_le_get64(b + 16);
    *entries = j->entries;
    *n = count;
    return count ? 1 : 0;
}

int co_fj_expected_stored(const co_fj_entry *e)
{
    return e->last_before != CO_FJ_UNKNOWN && e->first_seq > e->last_before;
}

void co_fj_close(co_fjournal *j)
{
    if (!j) return;
    if (j->fd >= 0) close(j->fd);
    free(j->path);
    free(j->buf);
    free(j->entries);
    free(j);
}
