/* forward_journal.h — a forwarder's intent journal (docs/forwarding.md, "Nothing lost, nothing
 * twice, one tier up"): before the writer commits a group of batches, the records each batch
 * would add to the upstream spool are written here and synced; after the commit they are
 * appended to the spool and the journal is emptied (synced) before the uploader can see them.
 * So a crash between the store's commit and the spool's sync leaves the group here, and the
 * next start appends what the commit stored and the spool does not hold yet.
 *
 * The file: header "CMFJ" u32 version 1, u32 count, u32 0, u64 low_seq, u64 file length; then
 * per entry u32 agent length (with its NUL), u32 record type, u64 first_seq, u64 seq,
 * u64 last_before, u64 payload length, the agent id, the payload; then u32 CRC32C of all that
 * and "CMFE" (little-endian). A torn or corrupt journal reads as empty: it was being written
 * before the commit it describes, which therefore never happened. */
#ifndef CO_FORWARD_JOURNAL_H
#define CO_FORWARD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define CO_FJ_UNKNOWN UINT64_MAX /* last_before when the agent's last_seq could not be read */

/* One batch of the group, as the upstream spool would get it. */
typedef struct co_fj_entry {
    const char *agent;       /* the batch's agent (the agent that sent it to us) */
    uint64_t first_seq, seq; /* its records first_seq..seq */
    uint64_t last_before;    /* that agent's last_seq before this batch (CO_FJ_UNKNOWN) */
    uint32_t type;           /* spool record type: CM_REC_BATCH or CM_REC_BATCH_GZ */
    const void *payload;     /* the spool record's payload */
    size_t len;
} co_fj_entry;

typedef struct co_fjournal co_fjournal;

/* Open (creating, 0640) the journal file at path; sync = fdatasync writes and clears (the
 * spool's fsync policy is not "none"). 0 or -1 with err. */
int co_fj_open(co_fjournal **out, const char *path, int sync, char *err, size_t errlen);
/* Replace the journal's content with this group: low_seq (every BATCH record of the spool
 * with a seq >= low_seq was appended for this group) and n entries; synced. 0 or -1. */
int co_fj_write(co_fjournal *j, uint64_t low_seq, const co_fj_entry *e, size_t n, char *err,
                size_t errlen);
/* Empty the journal (synced); nothing to do when it is empty. 0 or -1. */
int co_fj_clear(co_fjournal *j, char *err, size_t errlen);
/* What the journal holds: 1 = a group (*entries, valid until the next call on j), 0 = empty
 * (also a torn or corrupt journal: logged), -1 = cannot read (err). */
int co_fj_read(co_fjournal *j, uint64_t *low_seq, const co_fj_entry **entries, size_t *n, char *err,
               size_t errlen);
/* True when the writer expected the entry's batch to be stored (its records are above the
 * agent's last_seq), i.e. the commit, if it happened, stored it. */
int co_fj_expected_stored(const co_fj_entry *e);
void co_fj_close(co_fjournal *j);

#endif
