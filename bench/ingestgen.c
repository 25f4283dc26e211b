/* ingestgen.c — the request bodies of the ingest benchmark (bench/ingest_bench.py), encoded
 * once before they are sent, the same samples for every store.
 *
 *   ingestgen --format cinemon|influx|prom --points 1|10 --writer W --batches N --round R
 *             --seq S --t0 MS [--step MS] [--series 5000]
 *
 * Writer W (one agent, site CN-9900000W) owns `series` series of a multiplex: 20 halls (of 250),
 * each with a projector, a sound processor, a media server, a light/sound sensor and an LED
 * wall (device "hallNN/kind"), 50 series per device (temperatures per sensor, fans, SPL per
 * channel, KDM hours per key, ...). Every request carries series x points = 5,000 samples:
 *   --points 1   every series once (one poll round at t0 + round x step);
 *   --points 10  a tenth of the series, ten rounds each; ten requests cover the ten tenths
 *                of the same ten rounds (N must then be a multiple of 10 and R as well).
 * Timestamps carry a small per-device poll jitter (0..49 ms); values move a little from round
 * to round, as sensors do.
 *
 * Formats, each as its own client sends it:
 *   cinemon  the agent's batch JSON (common/wire.c) with agent, seq = S, S+1, ..., gzip at
 *            zlib's default level (agent/uploader.c);
 *   influx   InfluxDB line protocol, measurement = metric, tags device, site and the label
 *            (sorted), field value, ms timestamps, gzip at zlib's default level (Telegraf's
 *            content_encoding = "gzip");
 *   prom     Prometheus remote-write WriteRequest protobuf (labels __name__, device, site,
 *            the label; sorted), snappy block format (a greedy compressor of our own).
 *
 * Output on stdout, per request: u32 body length, u32 samples (little-endian), the body. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "gzip.h"
#include "wire.h"

#define PER_DEVICE 50
#define SAMPLES 5000

typedef struct metric_def {
    const char *metric, *unit, *label; /* label key, NULL = no label */
    int count;                         /* series (label values 0..count-1 or 1..count) */
    double base, spread;               /* value around base */
} metric_def;

typedef struct kind_def {
    const char *kind;
    const metric_def *metrics;
} kind_def;

static const metric_def projector[] = {{"temperature_celsius", "C", "sensor", 12, 38, 8},
                                       {"fan_speed_rpm", "rpm", "fan", 10, 3200, 400},
                                       {"voltage_volts", "V", "rail", 8, 12, 0.5},
                                       {"light_source_hours", "h", "lamp", 2, 3475, 1},
                                       {"light_source_power_percent", "%", "lamp", 2, 82, 2},
                                       {"laser_bank_current_amperes", "A", "bank", 12, 9.5, 0.4},
                                       {"power_state", NULL, NULL, 1, 3, 0},
                                       {"error_status", NULL, NULL, 1, 0, 0},
                                       {"filter_hours", "h", NULL, 1, 412, 1},
                                       {"light_output_percent", "%", NULL, 1, 97, 1},
                                       {NULL, NULL, NULL, 0, 0, 0}};
static const metric_def audio[] = {{"spl_dbc", "dB", "channel", 16, 85, 1.5},
                                   {"audio_fader_level", NULL, NULL, 1, 7, 0},
                                   {"audio_mute", NULL, NULL, 1, 0, 0},
                                   {"av_sync_offset_ms", "ms", NULL, 1, 4, 3},
                                   {"amp_channel_fault", NULL, "channel", 16, 0, 0},
                                   {"amp_load_impedance_ohms", "ohm", "channel", 15, 8, 0.3},
                                   {NULL, NULL, NULL, 0, 0, 0}};
static const metric_def server[] = {{"storage_free_bytes", "B", "volume", 4, 9.1e11, 2e9},
                                    {"raid_state", NULL, NULL, 1, 0, 0},
                                    {"kdm_hours_left", "h", "kdm", 20, 300, 200},
                                    {"clock_offset_seconds", "s", NULL, 1, 0.02, 0.01},
                                    {"security_log_backlog_hours", "h", NULL, 1, 2, 1},
                                    {"cpu_percent", "%", "core", 8, 35, 20},
                                    {"network_bytes_total", "B", "iface", 4, 4.2e10, 1e6},
                                    {"disk_temperature_celsius", "C", "disk", 11, 36, 3},
                                    {NULL, NULL, NULL, 0, 0, 0}};
static const metric_def sensor[] = {{"screen_luminance_nits", "nits", "mode", 2, 47.5, 1},
                                    {"white_x", NULL, NULL, 1, 0.314, 0.002},
                                    {"white_y", NULL, NULL, 1, 0.351, 0.002},
                                    {"white_cct_kelvin", "K", NULL, 1, 6300, 40},
                                    {"luminance_side_ratio_percent", "%", "side", 2, 85, 2},
                                    {"booth_temperature_celsius", "C", NULL, 1, 24, 2},
                                    {"booth_humidity_percent", "%", NULL, 1, 45, 5},
                                    {"sensor_raw", NULL, "n", 41, 500, 100},
                                    {NULL, NULL, NULL, 0, 0, 0}};
static const metric_def led[] = {{"led_cabinet_temperature_celsius", "C", "cabinet", 24, 41, 4},
                                 {"led_receiving_card_voltage_volts", "V", "card", 24, 5.0, 0.08},
                                 {"led_failed_pixels", NULL, NULL, 1, 0, 0},
                                 {"led_cabinet_online", NULL, NULL, 1, 1, 0},
                                 {NULL, NULL, NULL, 0, 0, 0}};
static const kind_def kinds[] = {{"projector", projector},
                                 {"audio", audio},
                                 {"server", server},
                                 {"sensor", sensor},
                                 {"led", led}};
#define NKINDS (sizeof kinds / sizeof kinds[0])

typedef struct series_def {
    char device[32], lval[16];
    const metric_def *m;
    int jitter_seed;   /* per device */
    char *prom_labels; /* encoded Label messages (field 1 of TimeSeries) */
    size_t prom_labels_len;
    char *influx_key; /* "metric,device=...,lk=lv,site=..." */
} series_def;

typedef struct opts {
    const char *format;
    int points, writer, series, halls;
    long batches;
    long long round, seq, t0, step;
} opts;

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

/* Make room for n more bytes; exits on OOM (a benchmark tool, not product code). */
static void buf_need(buf *b, size_t n)
{
    if (b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "ingestgen: out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

/* Append n bytes. */
static void buf_add(buf *b, const void *d, size_t n)
{
    buf_need(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* Append a protobuf varint. */
static void buf_varint(buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    do {
        t[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    buf_add(b, t, n);
}

/* Append a length-delimited protobuf field (tag, length, bytes). */
static void pb_bytes(buf *b, int field, const void *d, size_t n)
{
    buf_varint(b, (uint64_t)field << 3 | 2);
    buf_varint(b, n);
    buf_add(b, d, n);
}

/* Append one Label{name, value} as field 1 of a TimeSeries. */
static void pb_label(buf *b, const char *name, const char *value)
{
    buf l = {0};
    pb_bytes(&l, 1, name, strlen(name));
    pb_bytes(&l, 2, value, strlen(value));
    pb_bytes(b, 1, l.p, l.len);
    free(l.p);
}

/* Bytes of a varint. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Snappy block format (github.com/google/snappy format_description.txt): greedy matching
 * through a hash of 4-byte sequences, offsets below 64 KiB (copy with 2-byte offset). */
static void snappy_literal(buf *o, const unsigned char *s, size_t n)
{
    while (n) {
        size_t k = n > 65536 ? 65536 : n;
        unsigned char t[3];
        if (k <= 60) {
            t[0] = (unsigned char)((k - 1) << 2);
            buf_add(o, t, 1);
        } else if (k <= 256) {
            t[0] = 60 << 2;
            t[1] = (unsigned char)(k - 1);
            buf_add(o, t, 2);
        } else {
            t[0] = 61 << 2;
            t[1] = (unsigned char)((k - 1) & 0xff);
            t[2] = (unsigned char)((k - 1) >> 8);
            buf_add(o, t, 3);
        }
        buf_add(o, s, k);
        s += k;
        n -= k;
    }
}

/* Copy elements for a match of len bytes at offset off (< 65536). */
static void snappy_copy(buf *o, size_t off, size_t len)
{
    while (len) {
        size_t k = len > 64 ? 64 : len;
        if (len > 64 && len - 64 < 4) k = 60; /* keep the rest >= 4 */
        unsigned char t[3] = {(unsigned char)(((k - 1) << 2) | 2), (unsigned char)(off & 0xff),
                              (unsigned char)(off >> 8)};
        buf_add(o, t, 3);
        len -= k;
    }
}

/* Compress in[0..n) into o as one snappy block. */
static void snappy_block(buf *o, const unsigned char *in, size_t n)
{
    enum { HBITS = 14 };
    static uint32_t table[1 << HBITS];
    memset(table, 0xff, sizeof table);
    buf_varint(o, n);
    size_t lit = 0, i = 0;
    while (n >= 4 && i + 4 <= n) {
        uint32_t v;
        memcpy(&v, in + i, 4);
        uint32_t h = (v * 0x1e35a7bdu) >> (32 - HBITS);
        uint32_t cand = table[h];
        table[h] = (uint32_t)i;
        uint32_t w;
        if (cand != 0xffffffffu && i - cand < 65536 && (memcpy(&w, in + cand, 4), w == v)) {
            size_t len = 4;
            while (i + len < n && in[cand + len] == in[i + len])
                len++;
            snappy_literal(o, in + lit, i - lit);
            snappy_copy(o, i - cand, len);
            i += len;
            lit = i;
        } else {
            i++;
        }
    }
    snappy_literal(o, in + lit, n - lit);
}

/* The series of one writer, in a fixed order (hall, device kind, metric, label value). */
static series_def *make_series(const opts *o, const char *site)
{
    series_def *sd = calloc((size_t)o->series, sizeof *sd);
    if (!sd) return NULL;
    int n = 0;
    for (int h = 1; n < o->series; h++) {
        for (size_t k = 0; k < NKINDS && n < o->series; k++) {
            int dev_seed = h * 7919 + (int)k * 104729 + o->writer * 15485863;
            for (const metric_def *m = kinds[k].metrics; m->metric && n < o->series; m++) {
                for (int c = 0; c < m->count && n < o->series; c++, n++) {
                    series_def *s = &sd[n];
                    snprintf(s->device, sizeof s->device, "hall%02d/%s", h, kinds[k].kind);
                    snprintf(s->lval, sizeof s->lval, "%d", c + 1);
                    s->m = m;
                    s->jitter_seed = dev_seed;
                    /* labels sorted by name: __name__ < device < (label) < site, or the
                     * label before device (bank, cabinet, card, channel, core) */
                    const char *names[4], *vals[4];
                    int nl = 0;
                    names[nl] = "__name__", vals[nl++] = m->metric;
                    names[nl] = "device", vals[nl++] = s->device;
                    if (m->label) names[nl] = m->label, vals[nl++] = s->lval;
                    names[nl] = "site", vals[nl++] = site;
                    for (int a = 1; a < nl; a++)
                        for (int b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
                            const char *t = names[b];
                            names[b] = names[b - 1], names[b - 1] = t;
                            t = vals[b];
                            vals[b] = vals[b - 1], vals[b - 1] = t;
                        }
                    buf pl = {0};
                    for (int a = 0; a < nl; a++)
                        pb_label(&pl, names[a], vals[a]);
                    s->prom_labels = pl.p;
                    s->prom_labels_len = pl.len;
                    buf ik = {0};
                    buf_add(&ik, m->metric, strlen(m->metric));
                    for (int a = 1; a < nl; a++) { /* the same tags, sorted, no __name__ */
                        buf_add(&ik, ",", 1);
                        buf_add(&ik, names[a], strlen(names[a]));
                        buf_add(&ik, "=", 1);
                        buf_add(&ik, vals[a], strlen(vals[a]));
                    }
                    buf_add(&ik, "", 1);
                    s->influx_key = ik.p;
                }
            }
        }
        if (h > 999) break;
    }
    return sd;
}

/* Timestamp of series s in round r: the round's time plus the device's poll jitter. */
static int64_t ts_of(const opts *o, const series_def *s, long long r)
{
    uint64_t x = (uint64_t)(s->jitter_seed + r * 2654435761LL);
    x ^= x >> 13;
    return o->t0 + r * o->step + (int64_t)(x % 50);
}

/* Value of series i in round r: base plus a slow wave and a little noise, 2 decimals. */
static double value_of(const series_def *s, int i, long long r)
{
    const metric_def *m = s->m;
    if (m->spread == 0) return m->base;
    long long phase = (r + i * 31) % 64;
    double wave = (double)(phase < 32 ? phase : 64 - phase) / 32.0 - 0.5;
    double noise = (double)((r * 7 + i * 13) % 11) / 10.0 - 0.5;
    double v = m->base + m->spread * (wave + 0.1 * noise);
    if (m->spread >= 10) return (double)(long long)v;
    return (double)(long long)(v * 100.0) / 100.0;
}

/* Write one record: header and body. */
static int emit(const void *body, size_t len, uint32_t samples)
{
    uint32_t h[2] = {(uint32_t)len, samples};
    if (fwrite(h, sizeof h, 1, stdout) != 1 || fwrite(body, 1, len, stdout) != len) return -1;
    return 0;
}

/* Request b of the run: its series range [*first, *first + *count) and rounds [*r0, *r0 + pts). */
static void request_span(const opts *o, long b, int *first, int *count, long long *r0)
{
    if (o->points == 1) {
        *first = 0, *count = o->series, *r0 = o->round + b;
        return;
    }
    int groups = o->series * o->points / SAMPLES;
    *count = o->series / groups;
    *first = (int)(b % groups) * *count;
    *r0 = o->round + (b / groups) * o->points;
}

/* cinemon: the agent's batch, JSON, gzip. */
static int gen_cinemon(const opts *o, series_def *sd, const char *site, long b)
{
    int first, count;
    long long r0;
    request_span(o, b, &first, &count, &r0);
    cm_batch bt;
    cm_batch_init(&bt);
    cm_batch_set_agent(&bt, site, "0.1.0", site);
    bt.seq = (uint64_t)(o->seq + b);
    bt.sent_ms = o->t0 + (r0 + o->points) * o->step;
    for (int i = first; i < first + count; i++) {
        series_def *s = &sd[i];
        cm_label l = {s->m->label, s->lval};
        for (int p = 0; p < o->points; p++) {
            long long r = r0 + p;
            if (cm_batch_add_point(&bt, s->device, s->m->metric, s->m->unit,
                                   s->m->label ? &l : NULL, s->m->label ? 1 : 0, ts_of(o, s, r),
                                   value_of(s, i, r)) != 0) {
                cm_batch_free(&bt);
                return -1;
            }
        }
    }
    size_t jl;
    char *json = cm_wire_encode(&bt, &jl);
    cm_batch_free(&bt);
    char *gz = NULL;
    size_t gl;
    int rc = json && cm_gzip(json, jl, -1, &gz, &gl) == 0
                 ? emit(gz, gl, (uint32_t)(count * o->points))
                 : -1;
    free(json);
    free(gz);
    return rc;
}

/* InfluxDB line protocol, gzip. */
static int gen_influx(const opts *o, series_def *sd, long b, buf *text)
{
    int first, count;
    long long r0;
    request_span(o, b, &first, &count, &r0);
    text->len = 0;
    char line[64];
    for (int i = first; i < first + count; i++) {
        series_def *s = &sd[i];
        size_t kl = strlen(s->influx_key);
        for (int p = 0; p < o->points; p++) {
            long long r = r0 + p;
            buf_add(text, s->influx_key, kl);
            int n = snprintf(line, sizeof line, " value=%.15g %lld\n", value_of(s, i, r),
                             (long long)ts_of(o, s, r));
            buf_add(text, line, (size_t)n);
        }
    }
    char *gz = NULL;
    size_t gl;
    int rc = cm_gzip(text->p, text->len, -1, &gz, &gl) == 0
                 ? emit(gz, gl, (uint32_t)(count * o->points))
                 : -1;
    free(gz);
    return rc;
}

/* Prometheus remote write: WriteRequest{timeseries: [{labels, samples}]}, snappy. */
static int gen_prom(const opts *o, series_def *sd, long b, buf *pb, buf *out)
{
    int first, count;
    long long r0;
    request_span(o, b, &first, &count, &r0);
    pb->len = 0;
    for (int i = first; i < first + count; i++) {
        series_def *s = &sd[i];
        size_t body = s->prom_labels_len;
        size_t slen[16];
        for (int p = 0; p < o->points; p++) {
            slen[p] = 1 + 8 + 1 + varint_len((uint64_t)ts_of(o, s, r0 + p));
            body += 1 + varint_len(slen[p]) + slen[p];
        }
        buf_varint(pb, 1 << 3 | 2); /* WriteRequest.timeseries */
        buf_varint(pb, body);
        buf_add(pb, s->prom_labels, s->prom_labels_len);
        for (int p = 0; p < o->points; p++) {
            long long r = r0 + p;
            buf_varint(pb, 2 << 3 | 2); /* TimeSeries.samples */
            buf_varint(pb, slen[p]);
            unsigned char t = 1 << 3 | 1; /* Sample.value, fixed64 */
            buf_add(pb, &t, 1);
            double v = value_of(s, i, r);
            buf_add(pb, &v, 8); /* little-endian host */
            t = 2 << 3 | 0;     /* Sample.timestamp, varint */
            buf_add(pb, &t, 1);
            buf_varint(pb, (uint64_t)ts_of(o, s, r));
        }
    }
    out->len = 0;
    snappy_block(out, (const unsigned char *)pb->p, pb->len);
    return emit(out->p, out->len, (uint32_t)(count * o->points));
}

/* Parse the command line into o; 0 or -1 (message printed). */
static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.points = 1, .series = 5000, .step = 10000, .batches = -1, .t0 = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "ingestgen: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        int num = errno == 0 && *end == '\0' && end != v;
        if (strcmp(a, "--format") == 0)
            o->format = v;
        else if (!num) {
            fprintf(stderr, "ingestgen: %s: not a number: %s\n", a, v);
            return -1;
        } else if (strcmp(a, "--points") == 0)
            o->points = (int)n;
        else if (strcmp(a, "--writer") == 0)
            o->writer = (int)n;
        else if (strcmp(a, "--batches") == 0)
            o->batches = (long)n;
        else if (strcmp(a, "--round") == 0)
            o->round = n;
        else if (strcmp(a, "--seq") == 0)
            o->seq = n;
        else if (strcmp(a, "--t0") == 0)
            o->t0 = n;
        else if (strcmp(a, "--step") == 0)
            o->step = n;
        else if (strcmp(a, "--series") == 0)
            o->series = (int)n;
        else {
            fprintf(stderr, "ingestgen: unknown option %s\n", a);
            return -1;
        }
    }
    if (!o->format || (strcmp(o->format, "cinemon") && strcmp(o->format, "influx") &&
                       strcmp(o->format, "prom"))) {
        fprintf(stderr, "ingestgen: --format cinemon|influx|prom is required\n");
        return -1;
    }
    if ((o->points != 1 && o->points != 10) || o->series * o->points % SAMPLES ||
        o->series < SAMPLES / o->points || o->batches < 0 || o->t0 < 0 || o->step <= 0 ||
        o->seq < 1 || o->writer < 0 || o->writer > 9 ||
        (o->points > 1 &&
         (o->batches % (o->series * o->points / SAMPLES) || o->round % o->points))) {
        fprintf(stderr, "ingestgen: need --points 1|10, --series a multiple of 5000/points, "
                        "--batches N (a multiple of the series groups), --round (a multiple of "
                        "points), --seq >= 1, --t0 MS, --writer 0..9\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o) != 0) return 2;
    char site[32];
    snprintf(site, sizeof site, "CN-9900000%d", o.writer);
    series_def *sd = make_series(&o, site);
    if (!sd) {
        fprintf(stderr, "ingestgen: out of memory\n");
        return 1;
    }
    static char obuf[1 << 20];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    buf a = {0}, c = {0};
    int rc = 0;
    for (long b = 0; b < o.batches && rc == 0; b++) {
        if (o.format[0] == 'c')
            rc = gen_cinemon(&o, sd, site, b);
        else if (o.format[0] == 'i')
            rc = gen_influx(&o, sd, b, &a);
        else
            rc = gen_prom(&o, sd, b, &a, &c);
    }
    if (fflush(stdout) != 0) rc = -1;
    if (rc != 0)
        fprintf(stderr, "ingestgen: cannot encode or write a request (%s)\n", strerror(errno));
    for (int i = 0; i < o.series; i++) {
        free(sd[i].prom_labels);
        free(sd[i].influx_key);
    }
    free(sd);
    free(a.p);
    free(c.p);
    return rc == 0 ? 0 : 1;
}
