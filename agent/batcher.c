/* batcher.c — the batch being filled and the persisted sequence number that seals it. */
#include "batcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timeutil.h"
#include "wire.h"

struct ag_batcher {
    cm_batch batch;
    char *agent_id, *version, *site;
    char *state_dir, *seq_path, *tmp_path;
    uint64_t last_seq; /* the highest seq ever persisted (0 = none yet) */
};

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* mkdir -p with mode 0750 for every missing component. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char *p = strdup(path);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
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
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a folder", p);
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

/* Read the persisted seq: a missing file is 0; anything but one decimal number (optionally
 * followed by a newline) is an error naming the file. */
static int read_seq(const char *path, uint64_t *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *out = 0;
            return 0;
        }
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char buf[32];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int rerr = ferror(f), more = !feof(f) && fgetc(f) != EOF;
    fclose(f);
    if (rerr) {
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    uint64_t v = 0;
    int ok = n > 0 && n <= 20 && !more;
    for (size_t i = 0; ok && i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            ok = 0;
            break;
        }
        unsigned d = (unsigned)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            ok = 0;
            break;
        }
        v = v * 10 + d;
    }
    if (!ok || v == UINT64_MAX) {
        snprintf(err, errlen, "%s: malformed sequence number (expected one decimal number)", path);
        return -1;
    }
    *out = v;
    return 0;
}

/* Write seq to seq.tmp, fsync, rename over seq, fsync the folder. */
static int write_seq(ag_batcher *b, uint64_t seq, char *err, size_t errlen)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)seq);
    int fd = open(b->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", b->tmp_path, strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    if (w != n || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", b->tmp_path,
                 w < 0 || w == n ? strerror(errno) : "short write");
        close(fd);
        unlink(b->tmp_path);
        return -1;
    }
    if (close(fd) != 0) {
        snprintf(err, errlen, "%s: cannot close: %s", b->tmp_path, strerror(errno));
        unlink(b->tmp_path);
        return -1;
    }
    if (rename(b->tmp_path, b->seq_path) != 0) {
        snprintf(err, errlen, "%s: cannot rename to %s: %s", b->tmp_path, b->seq_path,
                 strerror(errno));
        unlink(b->tmp_path);
        return -1;
    }
    int dfd = open(b->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, errlen, "%s: cannot sync folder: %s", b->state_dir, strerror(errno));
        if (dfd >= 0) close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

static int reset_batch(ag_batcher *b)
{
    cm_batch_free(&b->batch);
    cm_batch_init(&b->batch);
    return cm_batch_set_agent(&b->batch, b->agent_id, b->version, b->site);
}

int ag_batcher_open(ag_batcher **out, const ag_config *cfg, const char *version, char *err,
                    size_t errlen)
{
    *out = NULL;
    const char *id = cfg->agent_id ? cfg->agent_id : cfg->site;
    if (!id || !cfg->site || !cfg->state_dir || !*cfg->state_dir) {
        snprintf(err, errlen, "batcher: agent id, site and state_dir are required");
        return -1;
    }
    ag_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cm_batch_init(&b->batch);
    b->agent_id = dup_str(id);
    b->version = dup_str(version ? version : "unknown");
    b->site = dup_str(cfg->site);
    b->state_dir = dup_str(cfg->state_dir);
    b->seq_path = join_path(cfg->state_dir, "seq");
    b->tmp_path = join_path(cfg->state_dir, "seq.tmp");
    if (!b->agent_id || !b->version || !b->site || !b->state_dir || !b->seq_path || !b->tmp_path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (make_dirs(cfg->state_dir, err, errlen) != 0) goto fail;
    if (read_seq(b->seq_path, &b->last_seq, err, errlen) != 0) goto fail;
    if (reset_batch(b) != 0) {
        snprintf(err, errlen, "batcher: cannot set the agent identity");
        goto fail;
    }
    *out = b;
    return 0;
fail:
    ag_batcher_close(b);
    return -1;
}

cm_batch *ag_batcher_current(ag_batcher *b)
{
    return &b->batch;
}

int ag_batcher_add_point(ag_batcher *b, const char *device, const char *metric, const char *unit,
                         const cm_label *labels, size_t nlabels, int64_t ts_ms, double value)
{
    return cm_batch_add_point(&b->batch, device, metric, unit, labels, nlabels, ts_ms, value);
}

int ag_batcher_add_device(ag_batcher *b, const cm_device_info *d)
{
    return cm_batch_add_device(&b->batch, d);
}

int ag_batcher_add_event(ag_batcher *b, const cm_event *e)
{
    return cm_batch_add_event(&b->batch, e);
}

uint64_t ag_batcher_last_seq(const ag_batcher *b)
{
    return b->last_seq;
}

int ag_batcher_seal(ag_batcher *b, char **body, size_t *len, uint64_t *seq, char *err,
                    size_t errlen)
{
    *body = NULL;
    *len = 0;
    if (cm_batch_empty(&b->batch)) return 0;
    if (b->last_seq == UINT64_MAX - 1) {
        snprintf(err, errlen, "%s: sequence numbers exhausted", b->seq_path);
        return -1;
    }
    if (!b->batch.agent_id && cm_batch_set_agent(&b->batch, b->agent_id, b->version, b->site)) {
        snprintf(err, errlen, "batcher: out of memory setting the agent identity");
        return -1;
    }
    uint64_t next = b->last_seq + 1;
    /* Persist first: once written, this seq is burnt even if we crash before the upload. */
    if (write_seq(b, next, err, errlen) != 0) return -1;
    b->last_seq = next;
    b->batch.seq = next;
    b->batch.sent_ms = cm_now_ms();
    size_t n = 0;
    char *json = cm_wire_encode(&b->batch, &n);
    if (!json) {
        snprintf(err, errlen, "batcher: out of memory encoding batch %llu",
                 (unsigned long long)next);
        return -1;
    }
    /* On failure the new batch lacks its identity; the next seal sets it again. */
    (void)reset_batch(b);
    *body = json;
    *len = n;
    *seq = next;
    return 1;
}

void ag_batcher_close(ag_batcher *b)
{
    if (!b) return;
    cm_batch_free(&b->batch);
    free(b->agent_id);
    free(b->version);
    free(b->site);
    free(b->state_dir);
    free(b->seq_path);
    free(b->tmp_path);
    free(b);
}
