/* batcher.c — the batch being filled during a loop tick and its sealing into the spool. */
#include "batcher.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gzip.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

/* When appends keep failing the batch grows tick after tick; past this many points it is
 * given up (counted and logged) rather than growing without bound. */
#define MAX_KEPT_SAMPLES 200000
#define LOG_EVERY_S 60
#define SPOOL_GZIP_LEVEL 1
/* Records are written plain while the spool holds less than max_bytes / this (the uploader
 * keeps up: a record lives seconds, and the uploader would only gunzip it again), gzipped
 * once a backlog builds up (an uplink outage), so that a full spool holds several times
 * more. gzip was a quarter of the CPU of a polling round (make bench). */
#define PLAIN_SPOOL_FRACTION 16
/* A batch is sealed into a record as soon as it holds this many points, even mid-tick: a
 * thousand devices answering in the same tick would otherwise build one batch of 100,000+
 * points, and the batch, its JSON and its gzip copy are the agent's peak memory (make
 * bench). The sync still happens once, at the end of the tick. */
#define RECORD_MAX_POINTS 8192

struct ag_batcher {
    uv_check_t check;
    cm_batch batch;
    cm_spool *spool;
    char *agent_id, *version, *site;
    char *ledger_path;
    int ledger_fd;            /* -1 = no ledger */
    int fsync;                /* cm_fsync_policy */
    uint64_t plain_max_bytes; /* spool bytes below which records are not compressed */
    ag_batcher_record_cb on_record;
    void *on_record_ud;
    ag_batcher_stats stats;
    int unsynced;    /* records appended this tick whose sync waits for the end of the tick */
    int full_failed; /* a mid-tick seal failed: the next try is at the end of the tick */
};

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* mkdir -p (mode 0750) of the folder holding path. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *p = strdup(path);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) {
        free(p);
        return 0;
    }
    *slash = '\0';
    for (char *s = p + 1;; s++) {
        int last = *s == '\0';
        if (*s != '/' && !last) continue;
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create folder: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        if (last) break;
        *s = '/';
    }
    free(p);
    return 0;
}

static int reset_batch(ag_batcher *b)
{
    cm_batch_free(&b->batch);
    cm_batch_init(&b->batch);
    return cm_batch_set_agent(&b->batch, b->agent_id, b->version, b->site);
}

/* Append "seq samples\n" with one write(); failures are counted and logged, never fatal. */
static void ledger_line(ag_batcher *b, uint64_t seq, size_t samples)
{
    if (b->ledger_fd < 0) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%llu %zu\n", (unsigned long long)seq, samples);
    ssize_t w = write(b->ledger_fd, line, (size_t)n);
    if (w != n) {
        b->stats.ledger_errors++;
        cm_log_limited("ledger", LOG_EVERY_S, CM_LOG_ERROR, "ledger %s: cannot append: %s",
                       b->ledger_path, w < 0 ? strerror(errno) : "short write");
    }
}

static void ledger_sync(ag_batcher *b)
{
    if (b->ledger_fd < 0) return;
    if (fdatasync(b->ledger_fd) != 0) {
        b->stats.ledger_errors++;
        cm_log_limited("ledger-sync", LOG_EVERY_S, CM_LOG_ERROR, "ledger %s: cannot sync: %s",
                       b->ledger_path, strerror(errno));
    }
}

static int seal(ag_batcher *b, int sync, uint64_t *seq_out, char *err, size_t errlen);

/* Sync what was appended without a sync (records sealed mid-tick) as the policy says. */
static void sync_pending(ag_batcher *b)
{
    if (!b->unsynced) return;
    b->unsynced = 0;
    if (b->fsync == CM_FSYNC_CYCLE) {
        char serr[256];
        if (cm_spool_sync(b->spool, serr, sizeof serr) != 0)
            cm_log_limited("spool-sync", LOG_EVERY_S, CM_LOG_ERROR, "spool: cannot sync: %s", serr);
    }
    if (b->fsync != CM_FSYNC_NONE) ledger_sync(b);
}

static void on_check(uv_check_t *h)
{
    ag_batcher *b = h->data;
    char err[256];
    b->full_failed = 0;
    if (ag_batcher_seal(b, NULL, err, sizeof err) < 0)
        cm_log_limited("seal", LOG_EVERY_S, CM_LOG_ERROR, "cannot spool samples: %s", err);
}

/* A full batch is sealed now; its sync waits for the end of the tick. */
static void seal_if_full(ag_batcher *b)
{
    if (b->full_failed || cm_batch_points(&b->batch) < RECORD_MAX_POINTS) return;
    char err[256];
    if (seal(b, 0, NULL, err, sizeof err) < 0) {
        b->full_failed = 1;
        cm_log_limited("seal", LOG_EVERY_S, CM_LOG_ERROR, "cannot spool samples: %s", err);
    }
}

int ag_batcher_open(ag_batcher **out, uv_loop_t *loop, cm_spool *spool, const ag_config *cfg,
                    const char *version, char *err, size_t errlen)
{
    *out = NULL;
    const char *id = cfg->agent_id ? cfg->agent_id : cfg->site;
    if (!id || !cfg->site || !spool) {
        snprintf(err, errlen, "batcher: agent id, site and a spool are required");
        return -1;
    }
    ag_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->ledger_fd = -1;
    b->spool = spool;
    b->fsync = cfg->spool_fsync;
    b->plain_max_bytes = cfg->spool_max_bytes / PLAIN_SPOOL_FRACTION;
    cm_batch_init(&b->batch);
    b->agent_id = dup_str(id);
    b->version = dup_str(version ? version : "unknown");
    b->site = dup_str(cfg->site);
    b->ledger_path = dup_str(cfg->ledger_path);
    if (!b->agent_id || !b->version || !b->site || (cfg->ledger_path && !b->ledger_path)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (b->ledger_path) {
        if (make_parent_dirs(b->ledger_path, err, errlen) != 0) goto fail;
        b->ledger_fd = open(b->ledger_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (b->ledger_fd < 0) {
            snprintf(err, errlen, "ledger %s: cannot open: %s", b->ledger_path, strerror(errno));
            goto fail;
        }
    }
    if (reset_batch(b) != 0) {
        snprintf(err, errlen, "batcher: cannot set the agent identity");
        goto fail;
    }
    uv_check_init(loop, &b->check); /* cannot fail */
    b->check.data = b;
    uv_check_start(&b->check, on_check);
    uv_unref((uv_handle_t *)&b->check); /* sealing alone does not keep the loop running */
    *out = b;
    return 0;
fail:
    if (b->ledger_fd >= 0) close(b->ledger_fd);
    cm_batch_free(&b->batch);
    free(b->agent_id);
    free(b->version);
    free(b->site);
    free(b->ledger_path);
    free(b);
    return -1;
}

void ag_batcher_on_record(ag_batcher *b, ag_batcher_record_cb cb, void *ud)
{
    b->on_record = cb;
    b->on_record_ud = ud;
}

cm_batch *ag_batcher_current(ag_batcher *b)
{
    return &b->batch;
}

int ag_batcher_add_point(ag_batcher *b, const char *device, const char *metric, const char *unit,
                         const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    int rc = cm_batch_add_point(&b->batch, device, metric, unit, labels, nlabels, ts_ms, value);
    if (rc == 0) seal_if_full(b);
    return rc;
}

int ag_batcher_add_device(ag_batcher *b, const cm_device_info *d)
{
    return cm_batch_add_device(&b->batch, d);
}

int ag_batcher_add_event(ag_batcher *b, const cm_event *e)
{
    return cm_batch_add_event(&b->batch, e);
}

int ag_batcher_seal(ag_batcher *b, uint64_t *seq_out, char *err, size_t errlen)
{
    int rc = seal(b, 1, seq_out, err, errlen);
    sync_pending(b);
    return rc;
}

/* Seal the current batch into a record; sync: as the policy says now, else later by
 * sync_pending (b->unsynced). */
static int seal(ag_batcher *b, int sync, uint64_t *seq_out, char *err, size_t errlen)
{
    if (cm_batch_empty(&b->batch)) return 0;
    if (!b->batch.agent_id && cm_batch_set_agent(&b->batch, b->agent_id, b->version, b->site)) {
        snprintf(err, errlen, "batcher: out of memory setting the agent identity");
        return -1;
    }
    uint64_t seq = cm_spool_next_seq(b->spool);
    size_t samples = cm_batch_points(&b->batch);
    int has_events = b->batch.nevents > 0;
    b->batch.seq = seq;
    b->batch.first_seq = 0;
    b->batch.sent_ms = cm_now_ms();
    size_t len = 0;
    char *json = cm_wire_encode(&b->batch, &len);
    if (!json) {
        snprintf(err, errlen, "batcher: out of memory encoding record %llu",
                 (unsigned long long)seq);
        b->stats.append_errors++;
        return -1;
    }
    /* The ledger line goes first: a crash between the two leaves a line whose record may be
     * missing, never a record the ledger does not know. */
    ledger_line(b, seq, samples);
    uint64_t got = 0;
    /* During a backlog, compressed on disk: a spool of max_bytes then holds a day's backlog
     * of a large cinema. Level 1: on these repetitive JSON batches it keeps most of level
     * 6's ratio at a fraction of its CPU. */
    cm_spool_stats sp;
    cm_spool_stats_get(b->spool, &sp);
    char *gz;
    size_t gzlen;
    int rc;
    if (sp.bytes >= b->plain_max_bytes && cm_gzip(json, len, SPOOL_GZIP_LEVEL, &gz, &gzlen) == 0) {
        rc = cm_spool_append(b->spool, CM_REC_BATCH_GZ, gz, gzlen, &got, err, errlen);
        free(gz);
    } else {
        rc = cm_spool_append(b->spool, CM_REC_BATCH, json, len, &got, err, errlen);
    }
    free(json);
    if (rc != 0) {
        b->stats.append_errors++;
        if (samples > MAX_KEPT_SAMPLES) {
            cm_error("spool refuses records (%s): %zu samples given up", err, samples);
            b->stats.dropped_samples += samples;
            (void)reset_batch(b);
        }
        return -1;
    }
    if (got != seq)
        cm_log_limited("seal-seq", LOG_EVERY_S, CM_LOG_ERROR,
                       "spool gave record seq %llu, expected %llu", (unsigned long long)got,
                       (unsigned long long)seq);
    if (!sync && !has_events) {
        b->unsynced = 1;
    } else if (b->fsync == CM_FSYNC_CYCLE || has_events) {
        char serr[256];
        if (cm_spool_sync(b->spool, serr, sizeof serr) != 0)
            cm_log_limited("spool-sync", LOG_EVERY_S, CM_LOG_ERROR, "spool: cannot sync: %s", serr);
        ledger_sync(b);
    } else if (b->fsync == CM_FSYNC_ALWAYS) {
        ledger_sync(b); /* the spool synced the record itself */
    }
    b->stats.records++;
    b->stats.samples += samples;
    /* On failure the new batch lacks its identity; the next seal sets it again. */
    (void)reset_batch(b);
    if (seq_out) *seq_out = got;
    if (b->on_record) b->on_record(b->on_record_ud, got, len);
    return 1;
}

void ag_batcher_stats_get(const ag_batcher *b, ag_batcher_stats *out)
{
    *out = b->stats;
}

static void on_closed(uv_handle_t *h)
{
    ag_batcher *b = h->data;
    cm_batch_free(&b->batch);
    free(b->agent_id);
    free(b->version);
    free(b->site);
    free(b->ledger_path);
    free(b);
}

void ag_batcher_close(ag_batcher *b)
{
    if (!b) return;
    if (b->ledger_fd >= 0) close(b->ledger_fd);
    b->ledger_fd = -1;
    uv_check_stop(&b->check);
    uv_close((uv_handle_t *)&b->check, on_closed);
}
