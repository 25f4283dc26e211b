/* spool.h — durable, append-only queue of framed records on disk (the agent's spool; reused
 * later by a collector that forwards upstream).
 *
 * Layout of a spool folder:
 *   seg-<first_seq as 20 digits>.log   segment files, pre-allocated to segment_bytes
 *   ack                                the highest acknowledged seq (write tmp, fsync, rename, fsync dir)
 *   rejected/                          bodies the collector refused for good (400), kept for people
 * A record on disk: u32 magic "CMR1", u32 payload length, u32 CRC32C (of seq, type and payload),
 * u32 type, u64 seq, payload; little-endian. Records are written with write(), never mmap.
 * (The CRC runs over the 12 header bytes type, seq, then the payload.)
 * A zero magic marks the pre-allocated, unwritten end of a segment.
 * The folder is locked (flock) while a spool has it open: a second one is refused.
 *
 * Seqs are assigned by the spool: strictly increasing, never reused, also across restarts
 * (the next seq is above every seq in the segments and the ack cursor). */
#ifndef CM_SPOOL_H
#define CM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CM_FSYNC_ALWAYS = 0, CM_FSYNC_CYCLE = 1, CM_FSYNC_NONE = 2 } cm_fsync_policy;

typedef enum {
    CM_REC_BATCH = 1, /* payload: a JSON batch (wire.h) whose "seq" is the record's seq */
    CM_REC_GAP = 2,   /* payload: JSON {"from_seq","to_seq","reason"}: records that are lost */
    CM_REC_BATCH_GZ = 3, /* payload: a CM_REC_BATCH payload, gzip-compressed (the agent's
                            default: a spool then holds about ten times as many samples) */
} cm_record_type;

typedef struct cm_spool_opts {
    const char *dir;         /* created (0750) when missing */
    uint64_t segment_bytes;  /* default 4 MiB; a record larger than this gets its own segment */
    uint64_t max_bytes;      /* default 256 MiB: above it the oldest segments are dropped */
    uint64_t min_free_bytes; /* default 64 MiB: the filesystem keeps at least this much free */
    /* (segment_bytes, max_bytes, memory_ring_bytes: 0 = the default; min_free_bytes 0 = no
     * floor. Both bounds are checked when a new segment is started.) */
    cm_fsync_policy fsync;   /* default CM_FSYNC_CYCLE */
    size_t memory_ring_bytes; /* default 8 MiB: records kept in memory while the disk fails */
} cm_spool_opts;

/* What start-up recovery found (also logged once by the spool). */
typedef struct cm_spool_recovery {
    uint64_t records;          /* valid unacknowledged records found */
    uint64_t truncated_bytes;  /* torn or corrupt tail cut off */
    uint64_t corrupt_records;  /* records skipped in the middle of a segment */
    uint64_t gaps;             /* gap records appended for them */
} cm_spool_recovery;

typedef struct cm_spool_stats {
    uint64_t bytes;            /* on disk, segments only */
    uint64_t records;          /* unacknowledged records (disk and memory ring) */
    uint64_t first_seq;        /* oldest unacknowledged seq (0 = none) */
    uint64_t next_seq;         /* seq the next append gets */
    uint64_t acked_seq;        /* highest acknowledged seq */
    int64_t oldest_ms;         /* wall time the oldest unacknowledged record was appended (0 = none) */
    uint64_t dropped_records;  /* dropped because the spool was full, since start */
    uint64_t corrupt_records;  /* skipped at start-up, since start */
    uint64_t disk_errors;      /* ENOSPC / EIO and such, since start */
    int disk_ok;               /* 0 while appends go to the memory ring */
} cm_spool_stats;

typedef struct cm_spool cm_spool;

/* A record handed out by cm_spool_read. data is owned by the spool and valid until the next
 * call on the spool. */
typedef struct cm_spool_record {
    uint64_t seq;
    uint32_t type;
    const void *data;
    size_t len;
    int64_t appended_ms; /* 0 when unknown (records found at start-up) */
} cm_spool_record;

/* Open (creating) the spool and recover: a torn/corrupt tail is truncated; a corrupt record
 * in the middle is skipped and a CM_REC_GAP record appended for the seqs it held. The
 * agent always starts: only an unusable folder (cannot create or read) is an error.
 * rep may be NULL. 0 or -1 with err. */
int cm_spool_open(cm_spool **out, const cm_spool_opts *opts, cm_spool_recovery *rep, char *err,
                  size_t errlen);
/* The seq the next append will get (so a batch can carry it before it is encoded). */
uint64_t cm_spool_next_seq(const cm_spool *s);
/* Append a record with the next seq (*seq_out). Policy ALWAYS (or type GAP): synced before
 * return. When the disk fails (ENOSPC, EIO) the record goes to the memory ring and the spool
 * retries the disk on later appends/syncs; when the spool is over max_bytes or the filesystem
 * under min_free_bytes the oldest unacknowledged segment is dropped and a GAP record says so.
 * Returns 0, or -1 only when the record could be kept nowhere (ring full too), with err. */
int cm_spool_append(cm_spool *s, uint32_t type, const void *data, size_t len, uint64_t *seq_out,
                    char *err, size_t errlen);
/* fdatasync what was appended since the last sync (policy CYCLE: call once per loop tick).
 * Also retries a failing disk. 0, or -1 with err when the sync failed or the disk still fails
 * (records then wait in the memory ring). */
int cm_spool_sync(cm_spool *s, char *err, size_t errlen);
/* Read the first record with seq >= from_seq that is not acknowledged. 1 = rec filled,
 * 0 = nothing there (yet), -1 = I/O error (err). Policy CYCLE: a record not yet synced is
 * synced before it is handed out (a record sent, then lost in a crash, would see its seq
 * given out again). */
int cm_spool_read(cm_spool *s, uint64_t from_seq, cm_spool_record *rec, char *err, size_t errlen);
/* Acknowledge every record with seq <= seq: persist the cursor, delete segments that are
 * wholly acknowledged (the one being written goes when it is full or at close).
 * 0 or -1 with err (seq beyond the last given out, or the cursor could not be persisted:
 * then it is kept in memory and persisting is retried). */
int cm_spool_ack(cm_spool *s, uint64_t seq, char *err, size_t errlen);
/* Keep a refused body for people in rejected/<first>-<last>.json (bounded: the oldest files
 * go when rejected/ holds more than 16 MiB). 0 or -1. */
int cm_spool_reject(cm_spool *s, uint64_t first_seq, uint64_t last_seq, const void *body,
                    size_t len, char *err, size_t errlen);
/* Counters and gauges for self-metrics. */
void cm_spool_stats_get(const cm_spool *s, cm_spool_stats *out);
/* Sync, persist the cursor, close files, free. */
void cm_spool_close(cm_spool *s);

/* CRC-32C (Castagnoli) of buf, continuing from crc (start with 0). */
uint32_t cm_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
