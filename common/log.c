/* log.c — levelled, rate-limited logging to stderr. */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

#define LIMIT_SLOTS 64

typedef struct limit_slot {
    char key[96];
    int64_t last_ms;
    unsigned long suppressed;
} limit_slot;

static const char *g_prog = "cinemon";
static cm_log_level g_min = CM_LOG_INFO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static limit_slot g_slots[LIMIT_SLOTS];

static const char *level_name(cm_log_level l)
{
    switch (l) {
    case CM_LOG_DEBUG: return "DEBUG";
    case CM_LOG_INFO: return "INFO";
    case CM_LOG_WARN: return "WARN";
    default: return "ERROR";
    }
}

void cm_log_init(const char *prog, cm_log_level min)
{
    if (prog) g_prog = prog;
    g_min = min;
}

int cm_log_level_parse(const char *s, cm_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (cm_log_level)i;
            return 0;
        }
    if (strcmp(s, "warning") == 0) {
        *out = CM_LOG_WARN;
        return 0;
    }
    return -1;
}

/* Write one line; the caller holds g_lock. */
static void emit(cm_log_level lvl, const char *suffix, const char *fmt, va_list ap)
{
    char ts[40];
    cm_format_iso_ms(cm_now_ms(), ts, sizeof ts);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s %s %s %s%s\n", ts, g_prog, level_name(lvl), msg, suffix ? suffix : "");
    fflush(stderr);
}

void cm_log(cm_log_level lvl, const char *fmt, ...)
{
    if (lvl < g_min) return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_lock);
    emit(lvl, NULL, fmt, ap);
    pthread_mutex_unlock(&g_lock);
    va_end(ap);
}

/* FNV-1a, to spread keys over the slots. */
static unsigned hash_key(const char *k)
{
    unsigned h = 2166136261u;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

void cm_log_limited(const char *key, int every_s, cm_log_level lvl, const char *fmt, ...)
{
    if (lvl < g_min) return;
    int64_t now = cm_mono_ms();
    pthread_mutex_lock(&g_lock);
    limit_slot *s = &g_slots[hash_key(key) % LIMIT_SLOTS];
    if (strncmp(s->key, key, sizeof s->key - 1) != 0) {
        /* A different key took the slot: start over for this one. */
        snprintf(s->key, sizeof s->key, "%s", key);
        s->last_ms = 0;
        s->suppressed = 0;
    }
    if (s->last_ms != 0 && now - s->last_ms < (int64_t)every_s * 1000) {
        s->suppressed++;
        pthread_mutex_unlock(&g_lock);
        return;
    }
    char suffix[64] = "";
    if (s->suppressed)
        snprintf(suffix, sizeof suffix, " (%lu similar suppressed)", s->suppressed);
    s->suppressed = 0;
    s->last_ms = now;
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, suffix, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&g_lock);
}
