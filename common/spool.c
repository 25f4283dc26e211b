/* spool.c — the durable, append-only record queue of spool.h.
 *
 * In memory: the segments in seq order, each with an index of its records (seq, offset, append
 * time: 16 bytes per record), so a read is two binary searches and one pread of a 64 KiB window
 * that sequential reads mostly hit; the last segment is the one being written (wfd). While
 * the disk fails, records wait in a bounded memory ring, in seq order and above every seq on
 * disk; each append or sync first tries to move the ring to disk. Records lost on the way
 * (segments dropped for space, ring overflow, corruption found) become GAP records; a GAP is
 * written after the record whose append caused it (that record's seq was promised by
 * cm_spool_next_seq), and while the disk fails it waits in `pend` until it can be written.
 * Not thread-safe: one owner (the agent's loop thread). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errbuf.h"
#include "le.h"
#include "log.h"
#include "timeutil.h"

#define HDR 24                     /* magic, len, crc, type, seq */
#define MAX_PAYLOAD (256u << 20)   /* a record larger than this is refused */
#define MAX_SEGMENT (1ull << 31)   /* offsets in the index are 32-bit */
#define READ_WINDOW (64u << 10)    /* a read fetches at least this much */
#define REJECT_LIMIT (16ull << 20) /* rejected/ holds at most this */
#define DMS_UNKNOWN UINT32_MAX     /* append time of a record found at start-up */
#define MAX_PENDING 64             /* gap ranges waiting for the disk */
#define TORN_SEQ_SPAN (1u << 20)   /* a torn header's seq is believed this far above the last */
#define LOG_EVERY_S 60

static const unsigned char MAGIC[4] = {'C', 'M', 'R', '1'};
static const char R_CORRUPT[] = "corrupt", R_FULL[] = "spool_full", R_DISK[] = "disk_error";

typedef struct rec_ix {
    uint64_t seq;
    uint32_t off : 31;   /* of the record's header in the segment (segments are < 2 GiB) */
    uint32_t is_gap : 1; /* a GAP record: its range is carried on when the segment is dropped */
    uint32_t dms;        /* appended at base_ms + dms (DMS_UNKNOWN: found at start-up) */
} rec_ix;

typedef struct seg {
    uint64_t name;    /* seg-<name>.log: the seq of the first record written to it */
    uint64_t size;    /* bytes the file takes (pre-allocated while it is being written) */
    uint64_t used;    /* end of its last record */
    int64_t birth_ms; /* file created (for records found at start-up) */
    int64_t base_ms;  /* append times in the index count from here */
    rec_ix *ix;
    size_t n, cap;
} seg;

typedef struct ring_ent {
    uint64_t seq;
    int64_t ms;
    uint32_t type;
    size_t len;
    unsigned char data[];
} ring_ent;

typedef struct gap {
    uint64_t from, to;
    char reason[24];
} gap;

struct cm_spool {
    char *dir;
    int dfd; /* the folder: openat base, fsync(dir), flock against a second process */
    uint64_t seg_bytes, max_bytes, min_free;
    cm_fsync_policy policy;
    size_t ring_cap;

    seg *segs; /* oldest first; the last is open for writing when wfd >= 0 */
    size_t nsegs, segs_cap;
    int wfd;
    uint64_t next_seq, acked, acked_disk; /* acked_disk: what the ack file holds */
    uint64_t written_seq, synced_seq;
    int dirty; /* written since the last fdatasync */

    int disk_ok;
    char op[64]; /* the disk operation that failed last, naming its file */
    char disk_why[160];

    int rfd; /* reader: segment rname open, rbuf holds bytes [rboff, rboff + rblen) of it */
    uint64_t rname;
    unsigned char *rbuf;
    size_t rcap, rblen;
    uint64_t rboff;

    ring_ent **ring; /* entries [rhead, rhead + rn) */
    size_t rhead, rn, rslots, ring_bytes;

    gap pend[MAX_PENDING];
    size_t npend;

    uint64_t dropped, corrupt, disk_errors;
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* CRC32C of type, seq (header bytes 12..23) and payload. */
static uint32_t frame_crc(const unsigned char *hdr, const void *payload, size_t len)
{
    return cm_crc32c(cm_crc32c(0, hdr + 12, 12), payload, len);
}

static void seg_name(char *buf, size_t n, uint64_t name)
{
    snprintf(buf, n, "seg-%020llu.log", (unsigned long long)name);
}

static uint64_t seg_last(const seg *g)
{
    return g->n ? g->ix[g->n - 1].seq : 0;
}

/* First index entry with seq >= q (n when none). */
static size_t ix_lower(const seg *g, uint64_t q)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->ix[mid].seq < q)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int ix_reserve(seg *g)
{
    if (g->n < g->cap) return 0;
    size_t cap = g->cap ? g->cap * 2 : 64;
    rec_ix *ix = realloc(g->ix, cap * sizeof *ix);
    if (!ix) return -1;
    g->ix = ix;
    g->cap = cap;
    return 0;
}

static int64_t file_birth_ms(int dfd, const char *name, const struct stat *st)
{
    struct statx sx;
    if (statx(dfd, name, 0, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME))
        return (int64_t)sx.stx_btime.tv_sec * 1000 + sx.stx_btime.tv_nsec / 1000000;
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Header and payload at off with pwritev, resuming after partial writes. */
static int pwrite_rec(int fd, const unsigned char *hdr, const void *data, size_t len, uint64_t off)
{
    struct iovec iov[2] = {{(void *)hdr, HDR}, {(void *)data, len}};
    int i = 0, cnt = len ? 2 : 1;
    while (i < cnt) {
        ssize_t r = pwritev(fd, iov + i, cnt - i, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)r;
        size_t k = (size_t)r;
        while (i < cnt && k >= iov[i].iov_len)
            k -= iov[i++].iov_len;
        if (i < cnt) {
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
        }
    }
    return 0;
}

/* ---- segments ----------------------------------------------------------------------------- */

static void reader_forget(cm_spool *s)
{
    if (s->rfd >= 0) close(s->rfd);
    s->rfd = -1;
    s->rname = UINT64_MAX;
    s->rblen = 0;
}

/* Delete segment i (file and index). */
static void seg_remove(cm_spool *s, size_t i)
{
    char nm[40];
    seg_name(nm, sizeof nm, s->segs[i].name);
    if (unlinkat(s->dfd, nm, 0) != 0 && errno != ENOENT)
        cm_log_limited("spool-unlink", LOG_EVERY_S, CM_LOG_WARN, "spool %s: cannot delete %s: %s",
                       s->dir, nm, strerror(errno));
    if (s->rname == s->segs[i].name) reader_forget(s);
    if (s->wfd >= 0 && i == s->nsegs - 1) {
        close(s->wfd);
        s->wfd = -1;
    }
    free(s->segs[i].ix);
    memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof *s->segs);
    s->nsegs--;
}

static seg *seg_push(cm_spool *s)
{
    if (s->nsegs == s->segs_cap) {
        size_t cap = s->segs_cap ? s->segs_cap * 2 : 16;
        seg *n = realloc(s->segs, cap * sizeof *n);
        if (!n) return NULL;
        s->segs = n;
        s->segs_cap = cap;
    }
    seg *g = &s->segs[s->nsegs++];
    memset(g, 0, sizeof *g);
    return g;
}

static void disk_fail(cm_spool *s, const char *what, int e)
{
    s->disk_errors++;
    snprintf(s->disk_why, sizeof s->disk_why, "%s: %s", what, strerror(e));
    if (s->disk_ok)
        cm_error("spool %s: %s; keeping records in memory (up to %zu bytes) until the disk "
                 "works again",
                 s->dir, s->disk_why, s->ring_cap);
    else
        cm_log_limited("spool-disk", LOG_EVERY_S, CM_LOG_ERROR,
                       "spool %s: disk still failing (%s); %zu records in memory", s->dir,
                       s->disk_why, s->rn);
    s->disk_ok = 0;
}

/* fdatasync the segment being written if anything is unsynced. 0 or -1 (errno). */
static int sync_data(cm_spool *s)
{
    if (s->wfd < 0 || !s->dirty) return 0;
    if (fdatasync(s->wfd) != 0) return -1;
    s->dirty = 0;
    s->synced_seq = s->written_seq;
    return 0;
}

/* Queue a lost range for a GAP record; contiguous ranges of one reason merge. */
static void pend_add(cm_spool *s, uint64_t from, uint64_t to, const char *reason)
{
    if (from > to) return;
    gap *l = s->npend ? &s->pend[s->npend - 1] : NULL;
    if (l && strcmp(l->reason, reason) == 0 && from <= l->to + 1 && from >= l->from) {
        if (to > l->to) l->to = to;
        return;
    }
    if (s->npend == MAX_PENDING) { /* never expected: widen the last range rather than forget */
        if (from < l->from) l->from = from;
        if (to > l->to) l->to = to;
        return;
    }
    gap *g = &s->pend[s->npend++];
    g->from = from;
    g->to = to;
    snprintf(g->reason, sizeof g->reason, "%s", reason);
}

/* Stop writing the last segment: sync it, cut its unused pre-allocation, and delete it when
 * nothing in it is waiting. 0, or -1 when the sync failed (closed all the same). */
static int close_active(cm_spool *s)
{
    if (s->wfd < 0) return 0;
    int rc = 0, e = 0;
    if (s->policy != CM_FSYNC_NONE && sync_data(s) != 0) {
        rc = -1;
        e = errno;
    }
    s->dirty = 0;
    seg *g = &s->segs[s->nsegs - 1];
    if (g->size > g->used && ftruncate(s->wfd, (off_t)g->used) == 0) g->size = g->used;
    close(s->wfd);
    s->wfd = -1;
    if (g->n == 0 || seg_last(g) <= s->acked_disk) seg_remove(s, s->nsegs - 1);
    errno = e;
    return rc;
}

/* Segment g is about to be dropped: the GAP records in it that are not acknowledged carry
 * ranges of lost records; queue those ranges again (with their reasons) so they are not lost
 * with it. */
static void carry_gaps(cm_spool *s, const seg *g)
{
    int fd = -1;
    for (size_t k = ix_lower(g, s->acked + 1); k < g->n; k++) {
        if (!g->ix[k].is_gap) continue;
        char nm[40];
        seg_name(nm, sizeof nm, g->name);
        if (fd < 0 && (fd = openat(s->dfd, nm, O_RDONLY | O_CLOEXEC)) < 0) return;
        unsigned char b[HDR + 128];
        size_t got = 0;
        if (pread_all(fd, b, sizeof b - 1, g->ix[k].off, &got) != 0 || got <= HDR) continue;
        b[got] = 0;
        unsigned long long from, to;
        char reason[24];
        if (sscanf((const char *)b + HDR,
                   "{\"from_seq\":%llu,\"to_seq\":%llu,\"reason\":\"%23[a-z_]\"", &from, &to,
                   reason) != 3)
            continue;
        if (from <= s->acked) from = s->acked + 1;
        pend_add(s, from, to, reason);
    }
    if (fd >= 0) close(fd);
}

/* Before a new segment of `size` bytes: drop the oldest segments while the spool would exceed
 * max_bytes or leave less than min_free_bytes on the filesystem. */
static void enforce_bounds(cm_spool *s, uint64_t size)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->nsegs; i++)
        total += s->segs[i].size;
    int have_free = 0;
    uint64_t avail = 0;
    struct statvfs vf;
    if (s->min_free && fstatvfs(s->dfd, &vf) == 0) {
        have_free = 1;
        avail = (uint64_t)vf.f_bavail * vf.f_frsize;
    }
    while (s->nsegs > 0 &&
           (total + size > s->max_bytes || (have_free && avail < size + s->min_free))) {
        seg *g = &s->segs[0];
        uint64_t from = g->n ? g->ix[0].seq : 0, to = seg_last(g);
        if (from <= s->acked) from = s->acked + 1;
        carry_gaps(s, g);
        if (g->n && from <= to) {
            uint64_t lost = g->n - ix_lower(g, from);
            s->dropped += lost;
            pend_add(s, from, to, R_FULL);
            cm_log_limited("spool-full", LOG_EVERY_S, CM_LOG_WARN,
                           "spool %s: full (%llu bytes of max %llu; filesystem: %s%llu bytes "
                           "free, keeping %llu); dropped %llu unacknowledged records %llu..%llu",
                           s->dir, (unsigned long long)total, (unsigned long long)s->max_bytes,
                           have_free ? "" : "not checked, ", (unsigned long long)avail,
                           (unsigned long long)s->min_free, (unsigned long long)lost,
                           (unsigned long long)from, (unsigned long long)to);
        }
        total -= g->size;
        avail += g->size;
        seg_remove(s, 0);
    }
}

/* Start a new segment named `name`, pre-allocated to size. 0 or -1 (errno). */
static int seg_create(cm_spool *s, uint64_t name, uint64_t size, int64_t ms)
{
    char nm[40];
    seg_name(nm, sizeof nm, name);
    snprintf(s->op, sizeof s->op, "create %s", nm);
    int fd = openat(s->dfd, nm, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    snprintf(s->op, sizeof s->op, "pre-allocate %s", nm);
    int r = posix_fallocate(fd, 0, (off_t)size);
    if (r == 0 && s->policy != CM_FSYNC_NONE && fsync(s->dfd) != 0) r = errno;
    seg *g = r == 0 ? seg_push(s) : NULL;
    if (r == 0 && !g) r = ENOMEM;
    if (r) {
        close(fd);
        unlinkat(s->dfd, nm, 0);
        errno = r;
        return -1;
    }
    g->name = name;
    g->size = size;
    g->birth_ms = g->base_ms = ms;
    s->wfd = fd;
    return 0;
}

/* Write one record to the segment being written, rolling to a new one when it does not fit.
 * 0, or -1 (errno) when it is not on disk. A record written whose sync then failed counts as
 * written (0): the disk is marked failing. */
static int disk_write(cm_spool *s, uint32_t type, const void *data, size_t len, uint64_t seq,
                      int64_t ms)
{
    uint64_t reclen = HDR + (uint64_t)len;
    const seg *a = s->wfd >= 0 ? &s->segs[s->nsegs - 1] : NULL;
    /* roll when it does not fit, or its append time no longer fits the index's 32 bits */
    if (!a || a->used + reclen > a->size || ms - a->base_ms >= (int64_t)DMS_UNKNOWN) {
        if (close_active(s) != 0) disk_fail(s, "fdatasync", errno); /* keep going: new file */
        uint64_t size = reclen > s->seg_bytes ? reclen : s->seg_bytes;
        enforce_bounds(s, size);
        if (seg_create(s, seq, size, ms) != 0) return -1;
    }
    seg *g = &s->segs[s->nsegs - 1];
    if (ix_reserve(g) != 0) {
        snprintf(s->op, sizeof s->op, "index a record");
        errno = ENOMEM;
        return -1;
    }
    unsigned char h[HDR];
    memcpy(h, MAGIC, 4);
    cm_le_put32(h + 4, (uint32_t)len);
    cm_le_put32(h + 12, type);
    cm_le_put64(h + 16, seq);
    cm_le_put32(h + 8, frame_crc(h, data, len));
    if (pwrite_rec(s->wfd, h, data, len, g->used) != 0) {
        int e = errno;
        char nm[40];
        seg_name(nm, sizeof nm, g->name);
        snprintf(s->op, sizeof s->op, "write %s", nm);
        errno = e;
        return -1;
    }
    int64_t d = ms - g->base_ms;
    g->ix[g->n++] = (rec_ix){seq, (uint32_t)g->used, type == CM_REC_GAP, d < 0 ? 0 : (uint32_t)d};
    g->used += reclen;
    s->written_seq = seq;
    s->dirty = 1;
    if ((s->policy == CM_FSYNC_ALWAYS || type == CM_REC_GAP) && sync_data(s) != 0)
        disk_fail(s, "fdatasync", errno);
    return 0;
}

/* ---- memory ring and gaps ----------------------------------------------------------------- */

static void ring_remove(cm_spool *s, size_t i) /* i counts from the head */
{
    ring_ent *e = s->ring[s->rhead + i];
    s->ring_bytes -= sizeof *e + e->len;
    free(e);
    if (i == 0) {
        s->rhead++;
    } else {
        memmove(&s->ring[s->rhead + i], &s->ring[s->rhead + i + 1],
                (s->rn - i - 1) * sizeof *s->ring);
    }
    if (--s->rn == 0) s->rhead = 0;
}

/* Keep a record in memory; when the ring is full, the oldest non-GAP records make room and
 * are remembered as a disk_error gap. 0 or -1 (cannot be kept). */
static int ring_push(cm_spool *s, uint32_t type, const void *data, size_t len, uint64_t seq,
                     int64_t ms)
{
    size_t need = sizeof(ring_ent) + len;
    if (need > s->ring_cap) return -1;
    while (s->ring_bytes + need > s->ring_cap) {
        size_t i = 0;
        while (i < s->rn && s->ring[s->rhead + i]->type == CM_REC_GAP)
            i++;
        if (i == s->rn) return -1;
        uint64_t q = s->ring[s->rhead + i]->seq;
        pend_add(s, q, q, R_DISK);
        s->dropped++;
        cm_log_limited(
            "spool-ring", LOG_EVERY_S, CM_LOG_ERROR,
            "spool %s: disk failing and memory ring full (%zu bytes): dropped record %llu", s->dir,
            s->ring_cap, (unsigned long long)q);
        ring_remove(s, i);
    }
    if (s->rhead + s->rn == s->rslots) {
        if (s->rhead > 0) {
            memmove(s->ring, s->ring + s->rhead, s->rn * sizeof *s->ring);
            s->rhead = 0;
        } else {
            size_t slots = s->rslots ? s->rslots * 2 : 64;
            ring_ent **r = realloc(s->ring, slots * sizeof *r);
            if (!r) return -1;
            s->ring = r;
            s->rslots = slots;
        }
    }
    ring_ent *e = malloc(need);
    if (!e) return -1;
    e->seq = seq;
    e->ms = ms;
    e->type = type;
    e->len = len;
    if (len) memcpy(e->data, data, len);
    s->ring[s->rhead + s->rn++] = e;
    s->ring_bytes += need;
    return 0;
}

/* To disk when it works, else to the ring. 0 or -1 (kept nowhere). */
static int put(cm_spool *s, uint32_t type, const void *data, size_t len, uint64_t seq, int64_t ms)
{
    if (s->disk_ok) {
        if (disk_write(s, type, data, len, seq, ms) == 0) return 0;
        disk_fail(s, s->op, errno);
    }
    return ring_push(s, type, data, len, seq, ms);
}

/* While the disk fails: move the ring to disk, oldest first. 0 when the disk works again. */
static int try_disk(cm_spool *s)
{
    if (s->disk_ok) return 0;
    size_t moved = 0;
    while (s->rn) {
        ring_ent *e = s->ring[s->rhead];
        if (e->seq > s->acked && disk_write(s, e->type, e->data, e->len, e->seq, e->ms) != 0) {
            disk_fail(s, s->op, errno);
            return -1;
        }
        ring_remove(s, 0);
        moved++;
    }
    s->disk_ok = 1;
    cm_info("spool %s: disk writable again; %zu records moved from memory to disk", s->dir, moved);
    return 0;
}

/* Write the waiting gap ranges as GAP records (only while the disk works). */
static void flush_pending(cm_spool *s)
{
    while (s->npend && s->disk_ok) {
        gap g = s->pend[0];
        memmove(&s->pend[0], &s->pend[1], (s->npend - 1) * sizeof *s->pend);
        s->npend--;
        char js[128];
        int n = snprintf(js, sizeof js, "{\"from_seq\":%llu,\"to_seq\":%llu,\"reason\":\"%s\"}",
                         (unsigned long long)g.from, (unsigned long long)g.to, g.reason);
        if (disk_write(s, CM_REC_GAP, js, (size_t)n, s->next_seq, cm_now_ms()) != 0) {
            disk_fail(s, s->op, errno);
            memmove(&s->pend[1], &s->pend[0], s->npend * sizeof *s->pend);
            s->pend[0] = g;
            s->npend++;
            return;
        }
        s->next_seq++;
    }
}

/* ---- ack cursor --------------------------------------------------------------------------- */

/* Persist acked: write ack.tmp, fsync, rename over ack, fsync the folder. 0 or -1 (errno). */
static int write_ack(cm_spool *s)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)s->acked);
    int fd = openat(s->dfd, "ack.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    if (write_all(fd, buf, (size_t)n) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(s->dfd, "ack.tmp", 0);
        errno = e;
        return -1;
    }
    close(fd);
    if (renameat(s->dfd, "ack.tmp", s->dfd, "ack") != 0 || fsync(s->dfd) != 0) return -1;
    s->acked_disk = s->acked;
    return 0;
}

/* Delete the oldest segments once the persisted cursor covers them (not the one being
 * written: it is deleted when it is closed). */
static void delete_acked(cm_spool *s)
{
    while (s->nsegs > 0 && !(s->wfd >= 0 && s->nsegs == 1) &&
           seg_last(&s->segs[0]) <= s->acked_disk)
        seg_remove(s, 0);
}

static int retry_ack(cm_spool *s, char *err, size_t errlen)
{
    if (s->acked_disk >= s->acked) return 0;
    if (write_ack(s) != 0) {
        s->disk_errors++;
        cm_seterr(err, errlen, "spool %s: cannot persist the ack cursor %llu: %s", s->dir,
                  (unsigned long long)s->acked, strerror(errno));
        return -1;
    }
    delete_acked(s);
    return 0;
}

/* ---- start-up recovery -------------------------------------------------------------------- */

/* Is there a valid record at off (whole, CRC right, seq above prev)? */
static int valid_at(const unsigned char *b, size_t size, size_t off, uint64_t prev, uint64_t *seq,
                    uint32_t *len)
{
    if (size - off < HDR || memcmp(b + off, MAGIC, 4) != 0) return 0;
    uint32_t l = cm_le_get32(b + off + 4);
    uint64_t q = cm_le_get64(b + off + 16);
    if (l > MAX_PAYLOAD || l > size - off - HDR || q <= prev) return 0;
    if (cm_le_get32(b + off + 8) != frame_crc(b + off, b + off + HDR, l)) return 0;
    *seq = q;
    *len = l;
    return 1;
}

/* Offset of the next valid record at or after off, or size. */
static size_t find_next(const unsigned char *b, size_t size, size_t off, uint64_t prev)
{
    while (off + HDR <= size) {
        const unsigned char *m = memmem(b + off, size - off, MAGIC, 4);
        if (!m) break;
        off = (size_t)(m - b);
        uint64_t q;
        uint32_t l;
        if (valid_at(b, size, off, prev, &q, &l)) return off;
        off++;
    }
    return size;
}

typedef struct scan {
    unsigned char *buf;
    size_t cap;
    uint64_t prev;     /* last valid seq seen */
    uint64_t torn_seq; /* seq read from a torn header at a tail */
    int corrupt_open;  /* a corrupt region since prev: the next valid record closes a gap */
    gap *known;        /* ranges GAP records on disk already cover */
    size_t nknown, known_cap;
    cm_spool_recovery rep;
} scan;

/* Remember the range of a GAP record found on disk (ours: {"from_seq":a,"to_seq":b,...}). */
static void note_gap(scan *sc, const unsigned char *payload, uint32_t len)
{
    char js[96];
    size_t n = len < sizeof js - 1 ? len : sizeof js - 1;
    memcpy(js, payload, n);
    js[n] = 0;
    unsigned long long a, b;
    if (sscanf(js, "{\"from_seq\":%llu,\"to_seq\":%llu", &a, &b) != 2 || a > b) return;
    if (sc->nknown == sc->known_cap) {
        size_t cap = sc->known_cap ? sc->known_cap * 2 : 16;
        gap *k = realloc(sc->known, cap * sizeof *k);
        if (!k) return;
        sc->known = k;
        sc->known_cap = cap;
    }
    sc->known[sc->nknown++] = (gap){a, b, ""};
}

/* Drop from the pending corrupt ranges what a GAP record on disk already says (found again
 * at every start: the corrupt bytes stay where they are). */
static void forget_known(cm_spool *s, const scan *sc)
{
    for (size_t i = 0; i < s->npend;) {
        gap *g = &s->pend[i];
        for (size_t k = 0; k < sc->nknown && g->from <= g->to; k++) {
            const gap *kn = &sc->known[k];
            if (kn->from <= g->from && kn->to >= g->from) g->from = kn->to + 1;
            if (g->from <= g->to && kn->from <= g->to && kn->to >= g->to) g->to = kn->from - 1;
        }
        if (g->from > g->to) {
            memmove(g, g + 1, (s->npend - i - 1) * sizeof *g);
            s->npend--;
        } else {
            i++;
        }
    }
}

/* Read one segment file, index its valid records, cut a corrupt tail. The segment is
 * appended to s->segs (also when it holds nothing: the caller deletes those). 0, or -1 when
 * the file cannot be read (left alone, logged). */
static int recover_seg(cm_spool *s, scan *sc, uint64_t name)
{
    char nm[40];
    seg_name(nm, sizeof nm, name);
    int fd = openat(s->dfd, nm, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cm_error("spool %s: cannot open %s: %s; left alone", s->dir, nm, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    if (size > sc->cap) {
        unsigned char *b = realloc(sc->buf, size);
        if (!b) {
            cm_error("spool %s: %s: out of memory reading %zu bytes; left alone", s->dir, nm, size);
            close(fd);
            return -1;
        }
        sc->buf = b;
        sc->cap = size;
    }
    if (pread_all(fd, sc->buf, size, 0, &got) != 0) {
        cm_error("spool %s: cannot read %s: %s; left alone", s->dir, nm, strerror(errno));
        close(fd);
        return -1;
    }
    size = got;
    seg *g = seg_push(s);
    if (!g) {
        close(fd);
        return -1;
    }
    g->name = name;
    g->size = size;
    g->birth_ms = file_birth_ms(s->dfd, nm, &st);
    g->base_ms = cm_now_ms();
    const unsigned char *b = sc->buf;
    size_t off = 0;
    while (off < size) {
        uint64_t q;
        uint32_t l;
        if (valid_at(b, size, off, sc->prev, &q, &l)) {
            if (sc->corrupt_open) {
                uint64_t from = sc->prev + 1, to = q - 1;
                if (from <= to) sc->rep.corrupt_records += to - from + 1;
                if (from <= s->acked) from = s->acked + 1;
                if (from <= to) pend_add(s, from, to, R_CORRUPT);
                sc->corrupt_open = 0;
            }
            if (ix_reserve(g) != 0) break; /* out of memory: treat the rest as a tail */
            g->ix[g->n++] =
                (rec_ix){q, (uint32_t)off, cm_le_get32(b + off + 12) == CM_REC_GAP, DMS_UNKNOWN};
            if (q > s->acked) sc->rep.records++;
            if (cm_le_get32(b + off + 12) == CM_REC_GAP) note_gap(sc, b + off + HDR, l);
            sc->prev = q;
            off += HDR + (size_t)l;
            continue;
        }
        size_t nx = find_next(b, size, off + 1, sc->prev);
        if (nx < size) {
            cm_warn("spool %s: %s: corrupt data at offset %zu..%zu skipped", s->dir, nm, off, nx);
            sc->corrupt_open = 1;
            off = nx;
            continue;
        }
        size_t z = size; /* end of the non-zero bytes in the tail */
        while (z > off && b[z - 1] == 0)
            z--;
        if (z > off) {
            cm_warn("spool %s: %s: torn or corrupt tail at offset %zu (%zu bytes) truncated",
                    s->dir, nm, off, z - off);
            sc->rep.truncated_bytes += z - off;
            sc->corrupt_open = 1;
            if (size - off >= HDR && memcmp(b + off, MAGIC, 4) == 0) {
                uint64_t q2 = cm_le_get64(b + off + 16);
                if (q2 > sc->prev && q2 - sc->prev <= TORN_SEQ_SPAN && q2 > sc->torn_seq)
                    sc->torn_seq = q2;
            }
            if (ftruncate(fd, (off_t)off) == 0)
                g->size = off;
            else
                cm_warn("spool %s: cannot truncate %s: %s", s->dir, nm, strerror(errno));
        }
        break;
    }
    if (off > size) off = size;
    g->used = off;
    close(fd);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment names in the folder, sorted. 0 or -1. */
static int list_segments(cm_spool *s, uint64_t **out, size_t *n_out)
{
    int fd = dup(s->dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        const char *p = de->d_name;
        if (strlen(p) != 28 || strncmp(p, "seg-", 4) != 0 || strcmp(p + 24, ".log") != 0) {
            if (strcmp(p, "ack.tmp") == 0) unlinkat(s->dfd, p, 0);
            continue;
        }
        uint64_t x = 0;
        int ok = 1;
        for (int i = 4; i < 24; i++) {
            if (p[i] < '0' || p[i] > '9' || x > (UINT64_MAX - 9) / 10) {
                ok = 0;
                break;
            }
            x = x * 10 + (uint64_t)(p[i] - '0');
        }
        if (!ok) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
        }
        v[n++] = x;
    }
    closedir(d);
    if (rc) {
        free(v);
        return -1;
    }
    if (n) qsort(v, n, sizeof *v, cmp_u64);
    *out = v;
    *n_out = n;
    return 0;
}

static void read_ack(cm_spool *s)
{
    int fd = openat(s->dfd, "ack", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            cm_warn("spool %s: cannot read ack: %s; starting from 0", s->dir, strerror(errno));
        return;
    }
    char buf[32];
    size_t got = 0;
    int r = pread_all(fd, buf, sizeof buf - 1, 0, &got);
    close(fd);
    buf[r == 0 ? got : 0] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (r != 0 || end == buf || errno || (*end && *end != '\n')) {
        cm_warn("spool %s: ack: not a number; starting from 0 (records may be sent again)", s->dir);
        return;
    }
    s->acked = s->acked_disk = v;
}

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p) return -1;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *q = '/';
    }
    int r = mkdir(p, 0750);
    free(p);
    return r != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- public ------------------------------------------------------------------------------- */

int cm_spool_open(cm_spool **out, const cm_spool_opts *opts, cm_spool_recovery *rep, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (rep) memset(rep, 0, sizeof *rep);
    if (!opts || !opts->dir || !*opts->dir) {
        cm_seterr(err, errlen, "spool: no folder given");
        return -1;
    }
    uint64_t segb = opts->segment_bytes ? opts->segment_bytes : 4ull << 20;
    uint64_t maxb = opts->max_bytes ? opts->max_bytes : 256ull << 20;
    if (segb < 256 || segb > MAX_SEGMENT || maxb < segb ||
        (opts->fsync != CM_FSYNC_ALWAYS && opts->fsync != CM_FSYNC_CYCLE &&
         opts->fsync != CM_FSYNC_NONE)) {
        cm_seterr(err, errlen,
                  "spool %s: segment_bytes must be 256 B..2 GiB and at most max_bytes, fsync "
                  "always|cycle|none",
                  opts->dir);
        return -1;
    }
    cm_spool *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(opts->dir))) {
        free(s);
        cm_seterr(err, errlen, "spool %s: out of memory", opts->dir);
        return -1;
    }
    s->seg_bytes = segb;
    s->max_bytes = maxb;
    s->min_free = opts->min_free_bytes;
    s->policy = opts->fsync;
    s->ring_cap = opts->memory_ring_bytes ? opts->memory_ring_bytes : 8u << 20;
    s->wfd = s->rfd = -1;
    s->rname = UINT64_MAX;
    s->disk_ok = 1;
    s->dfd = -1;
    if (mkdir_p(s->dir) != 0 || (s->dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        cm_seterr(err, errlen, "spool %s: cannot create or open the folder: %s", s->dir,
                  strerror(errno));
        cm_spool_close(s);
        return -1;
    }
    if (flock(s->dfd, LOCK_EX | LOCK_NB) != 0) {
        cm_seterr(err, errlen, "spool %s: %s", s->dir,
                  errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
        close(s->dfd);
        s->dfd = -1;
        cm_spool_close(s);
        return -1;
    }
    read_ack(s);
    uint64_t *names = NULL;
    size_t nn = 0;
    if (list_segments(s, &names, &nn) != 0) {
        cm_seterr(err, errlen, "spool %s: cannot list the folder: %s", s->dir, strerror(errno));
        cm_spool_close(s);
        return -1;
    }
    scan sc = {0};
    for (size_t i = 0; i < nn; i++)
        recover_seg(s, &sc, names[i]);
    free(names);
    free(sc.buf);
    sc.buf = NULL;
    /* Empty and wholly acknowledged segments go; the others keep only their records. */
    for (size_t i = s->nsegs; i-- > 0;) {
        seg *g = &s->segs[i];
        if (g->n == 0 || seg_last(g) <= s->acked) seg_remove(s, i);
    }
    for (size_t i = 0; i < s->nsegs; i++) {
        seg *g = &s->segs[i];
        char nm[40];
        seg_name(nm, sizeof nm, g->name);
        int fd = openat(s->dfd, nm, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;   /* reads will say so */
        if (i + 1 < s->nsegs) { /* done with: no pre-allocated tail */
            if (g->size > g->used && ftruncate(fd, (off_t)g->used) == 0) g->size = g->used;
            close(fd);
        } else { /* the newest is written on, pre-allocated again */
            if (g->size < s->seg_bytes && posix_fallocate(fd, 0, (off_t)s->seg_bytes) == 0)
                g->size = s->seg_bytes;
            s->wfd = fd;
            s->written_seq = s->synced_seq = seg_last(g);
        }
    }
    uint64_t top = sc.prev > s->acked ? sc.prev : s->acked;
    if (sc.torn_seq > top) {
        pend_add(s, (sc.prev > s->acked ? sc.prev : s->acked) + 1, sc.torn_seq, R_CORRUPT);
        sc.rep.corrupt_records += sc.torn_seq - top;
        top = sc.torn_seq;
    }
    s->next_seq = top + 1;
    s->corrupt = sc.rep.corrupt_records;
    forget_known(s, &sc);
    free(sc.known);
    sc.rep.gaps = s->npend;
    flush_pending(s);
    if (sc.rep.truncated_bytes || sc.rep.corrupt_records)
        cm_warn("spool %s: recovered %llu unacknowledged records; %llu corrupt records skipped, "
                "%llu tail bytes truncated, %llu gap records added; next seq %llu",
                s->dir, (unsigned long long)sc.rep.records,
                (unsigned long long)sc.rep.corrupt_records,
                (unsigned long long)sc.rep.truncated_bytes, (unsigned long long)sc.rep.gaps,
                (unsigned long long)s->next_seq);
    else
        cm_info("spool %s: %llu unacknowledged records in %zu segments; acked %llu, next seq %llu",
                s->dir, (unsigned long long)sc.rep.records, s->nsegs, (unsigned long long)s->acked,
                (unsigned long long)s->next_seq);
    if (rep) *rep = sc.rep;
    *out = s;
    return 0;
}

uint64_t cm_spool_next_seq(const cm_spool *s)
{
    return s->next_seq;
}

int cm_spool_append(cm_spool *s, uint32_t type, const void *data, size_t len, uint64_t *seq_out,
                    char *err, size_t errlen)
{
    if (type == 0 || len > MAX_PAYLOAD || (len && !data)) {
        cm_seterr(err, errlen, "spool %s: bad record (type %u, %zu bytes; at most %u)", s->dir,
                  type, len, MAX_PAYLOAD);
        return -1;
    }
    try_disk(s);
    retry_ack(s, NULL, 0);
    uint64_t seq = s->next_seq;
    if (put(s, type, data, len, seq, cm_now_ms()) != 0) {
        cm_seterr(err, errlen,
                  "spool %s: record %llu (%zu bytes) kept nowhere: disk failing (%s) and memory "
                  "ring (%zu bytes) full",
                  s->dir, (unsigned long long)seq, len, s->disk_why, s->ring_cap);
        return -1;
    }
    s->next_seq++;
    flush_pending(s);
    if (seq_out) *seq_out = seq;
    return 0;
}

int cm_spool_sync(cm_spool *s, char *err, size_t errlen)
{
    try_disk(s);
    flush_pending(s);
    int rc = retry_ack(s, err, errlen);
    if (s->policy != CM_FSYNC_NONE && sync_data(s) != 0) {
        disk_fail(s, "fdatasync", errno);
        cm_seterr(err, errlen, "spool %s: %s", s->dir, s->disk_why);
        return -1;
    }
    if (!s->disk_ok) {
        cm_seterr(err, errlen, "spool %s: disk failing (%s); %zu records kept in memory", s->dir,
                  s->disk_why, s->rn);
        return -1;
    }
    return rc;
}

/* Make bytes [off, off + n) of the reader's segment available in rbuf. 0, -1 (errno), or 1
 * when they lie beyond `limit`. */
static int load(cm_spool *s, uint64_t off, size_t n, uint64_t limit)
{
    if (off >= s->rboff && off + n <= s->rboff + s->rblen) return 0;
    if (off + n > limit) return 1;
    size_t want = n < READ_WINDOW ? READ_WINDOW : n;
    if (want > limit - off) want = (size_t)(limit - off);
    if (want > s->rcap) {
        unsigned char *b = realloc(s->rbuf, want);
        if (!b) {
            errno = ENOMEM;
            return -1;
        }
        s->rbuf = b;
        s->rcap = want;
    }
    s->rblen = 0;
    size_t got;
    if (pread_all(s->rfd, s->rbuf, want, off, &got) != 0) return -1;
    s->rboff = off;
    s->rblen = got;
    if (got < n) {
        errno = EIO; /* the file is shorter than its index says */
        return -1;
    }
    return 0;
}

/* Fill rec from entry k of segment i. 1, 0 when the record turned out corrupt (removed from
 * the index, gap queued), -1 (err). */
static int read_disk(cm_spool *s, size_t i, size_t k, cm_spool_record *rec, char *err,
                     size_t errlen)
{
    seg *g = &s->segs[i];
    rec_ix e = g->ix[k];
    char nm[40];
    seg_name(nm, sizeof nm, g->name);
    if (s->rfd < 0 || s->rname != g->name) {
        reader_forget(s);
        if ((s->rfd = openat(s->dfd, nm, O_RDONLY | O_CLOEXEC)) < 0) {
            cm_seterr(err, errlen, "spool %s: cannot open %s: %s", s->dir, nm, strerror(errno));
            return -1;
        }
        s->rname = g->name;
    }
    int r = load(s, e.off, HDR, g->used);
    const unsigned char *p = r == 0 ? s->rbuf + (e.off - s->rboff) : NULL;
    uint32_t len = p ? cm_le_get32(p + 4) : 0;
    if (p && (memcmp(p, MAGIC, 4) != 0 || cm_le_get64(p + 16) != e.seq)) r = 1;
    if (r == 0) {
        r = load(s, e.off, HDR + (size_t)len, g->used);
        p = s->rbuf + (e.off - s->rboff);
        if (r == 0 && cm_le_get32(p + 8) != frame_crc(p, p + HDR, len)) r = 1;
    }
    if (r < 0) {
        cm_seterr(err, errlen, "spool %s: cannot read %s at offset %u: %s", s->dir, nm, e.off,
                  strerror(errno));
        return -1;
    }
    if (r > 0) {
        cm_error("spool %s: %s: record %llu at offset %u is corrupt on disk; skipped", s->dir, nm,
                 (unsigned long long)e.seq, e.off);
        s->corrupt++;
        pend_add(s, e.seq, e.seq, R_CORRUPT);
        memmove(&g->ix[k], &g->ix[k + 1], (g->n - k - 1) * sizeof *g->ix);
        g->n--;
        return 0;
    }
    rec->seq = e.seq;
    rec->type = cm_le_get32(p + 12);
    rec->data = p + HDR;
    rec->len = len;
    rec->appended_ms = e.dms == DMS_UNKNOWN ? 0 : g->base_ms + e.dms;
    return 1;
}

int cm_spool_read(cm_spool *s, uint64_t from_seq, cm_spool_record *rec, char *err, size_t errlen)
{
    if (from_seq <= s->acked) from_seq = s->acked + 1;
    int synced = 0;
    for (;;) {
        /* the last segment whose name (first seq written to it) is <= from_seq */
        size_t lo = 0, hi = s->nsegs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->segs[mid].name <= from_seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t i = lo ? lo - 1 : 0;
        while (i < s->nsegs && (s->segs[i].n == 0 || seg_last(&s->segs[i]) < from_seq))
            i++;
        if (i < s->nsegs) {
            size_t k = ix_lower(&s->segs[i], from_seq);
            if (s->policy == CM_FSYNC_CYCLE && s->dirty && !synced &&
                s->segs[i].ix[k].seq > s->synced_seq) {
                /* hand out only what is durable: a record sent and then lost in a crash would
                 * have its seq used again */
                synced = 1;
                if (sync_data(s) != 0) disk_fail(s, "fdatasync", errno);
            }
            int r = read_disk(s, i, k, rec, err, errlen);
            if (r == 0) continue;
            return r;
        }
        lo = 0;
        hi = s->rn; /* the ring is in seq order too */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->ring[s->rhead + mid]->seq < from_seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < s->rn) {
            const ring_ent *e = s->ring[s->rhead + lo];
            rec->seq = e->seq;
            rec->type = e->type;
            rec->data = e->data;
            rec->len = e->len;
            rec->appended_ms = e->ms;
            return 1;
        }
        return 0;
    }
}

int cm_spool_ack(cm_spool *s, uint64_t seq, char *err, size_t errlen)
{
    if (seq >= s->next_seq) {
        cm_seterr(err, errlen, "spool %s: cannot acknowledge %llu: the last seq given out is %llu",
                  s->dir, (unsigned long long)seq, (unsigned long long)(s->next_seq - 1));
        return -1;
    }
    if (seq <= s->acked) return retry_ack(s, err, errlen);
    s->acked = seq;
    while (s->rn && s->ring[s->rhead]->seq <= seq)
        ring_remove(s, 0);
    return retry_ack(s, err, errlen);
}

typedef struct rj_file {
    uint64_t first;
    uint64_t size;
    char name[64];
} rj_file;

static int cmp_rj(const void *a, const void *b)
{
    const rj_file *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first ? 1 : strcmp(x->name, y->name);
}

/* Delete the oldest files of rejected/ until it holds at most REJECT_LIMIT bytes. */
static void reject_trim(cm_spool *s, int rfd)
{
    int fd = dup(rfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    rj_file *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        size_t l = strlen(de->d_name);
        if (l < 6 || l >= sizeof v->name || strcmp(de->d_name + l - 5, ".json") != 0 ||
            fstatat(rfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            rj_file *nv = realloc(v, cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[n].first = strtoull(de->d_name, NULL, 10);
        v[n].size = (uint64_t)st.st_size;
        memcpy(v[n].name, de->d_name, l + 1); /* l < sizeof name: checked above */
        total += v[n++].size;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, cmp_rj);
    for (size_t i = 0; i + 1 < n && total > REJECT_LIMIT; i++) {
        if (unlinkat(rfd, v[i].name, 0) == 0) total -= v[i].size;
        cm_log_limited("spool-reject-trim", LOG_EVERY_S, CM_LOG_INFO,
                       "spool %s: rejected/ over %llu bytes: deleted %s", s->dir,
                       (unsigned long long)REJECT_LIMIT, v[i].name);
    }
    free(v);
}

int cm_spool_reject(cm_spool *s, uint64_t first_seq, uint64_t last_seq, const void *body,
                    size_t len, char *err, size_t errlen)
{
    if (mkdirat(s->dfd, "rejected", 0750) != 0 && errno != EEXIST) {
        cm_seterr(err, errlen, "spool %s: cannot create rejected/: %s", s->dir, strerror(errno));
        return -1;
    }
    int rfd = openat(s->dfd, "rejected", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) {
        cm_seterr(err, errlen, "spool %s: cannot open rejected/: %s", s->dir, strerror(errno));
        return -1;
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%llu-%llu.json", (unsigned long long)first_seq,
             (unsigned long long)last_seq);
    if (len > REJECT_LIMIT) len = REJECT_LIMIT; /* a larger body is kept cut short */
    int fd = openat(rfd, nm, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int rc = 0;
    if (fd < 0 || (len && write_all(fd, body, len) != 0)) {
        cm_seterr(err, errlen, "spool %s: cannot write rejected/%s: %s", s->dir, nm,
                  strerror(errno));
        rc = -1;
    }
    if (fd >= 0) close(fd);
    if (rc) unlinkat(rfd, nm, 0);
    reject_trim(s, rfd);
    close(rfd);
    return rc;
}

void cm_spool_stats_get(const cm_spool *s, cm_spool_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < s->nsegs; i++) {
        const seg *g = &s->segs[i];
        out->bytes += g->size;
        size_t k = ix_lower(g, s->acked + 1);
        out->records += g->n - k;
        if (k < g->n && !out->first_seq) {
            out->first_seq = g->ix[k].seq;
            out->oldest_ms = g->ix[k].dms == DMS_UNKNOWN ? g->birth_ms : g->base_ms + g->ix[k].dms;
        }
    }
    out->records += s->rn;
    if (s->rn && !out->first_seq) {
        out->first_seq = s->ring[s->rhead]->seq;
        out->oldest_ms = s->ring[s->rhead]->ms;
    }
    out->next_seq = s->next_seq;
    out->acked_seq = s->acked;
    out->dropped_records = s->dropped;
    out->corrupt_records = s->corrupt;
    out->disk_errors = s->disk_errors;
    out->disk_ok = s->disk_ok;
}

void cm_spool_close(cm_spool *s)
{
    if (!s) return;
    if (s->dfd >= 0) {
        try_disk(s);
        flush_pending(s);
        if (sync_data(s) != 0) disk_fail(s, "fdatasync", errno);
        char err[256];
        if (retry_ack(s, err, sizeof err) != 0) cm_error("%s", err);
        if (s->rn)
            cm_error("spool %s: closing while the disk fails: %zu records in memory (%llu..%llu) "
                     "are lost",
                     s->dir, s->rn, (unsigned long long)s->ring[s->rhead]->seq,
                     (unsigned long long)s->ring[s->rhead + s->rn - 1]->seq);
        for (size_t i = 0; i < s->npend; i++)
            cm_error("spool %s: closing while the disk fails: gap %llu..%llu (%s) not recorded",
                     s->dir, (unsigned long long)s->pend[i].from, (unsigned long long)s->pend[i].to,
                     s->pend[i].reason);
        if (s->wfd >= 0) {
            seg *g = &s->segs[s->nsegs - 1];
            if (g->n == 0 || seg_last(g) <= s->acked_disk) seg_remove(s, s->nsegs - 1);
        }
    }
    if (s->wfd >= 0) close(s->wfd);
    reader_forget(s);
    if (s->dfd >= 0) close(s->dfd);
    for (size_t i = 0; i < s->nsegs; i++)
        free(s->segs[i].ix);
    free(s->segs);
    for (size_t i = 0; i < s->rn; i++)
        free(s->ring[s->rhead + i]);
    free(s->ring);
    free(s->rbuf);
    free(s->dir);
    free(s);
}
