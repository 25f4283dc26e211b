/* arena.c — bump allocator, and jansson allocation hooks that use it per thread. */
#include "arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_DEFAULT_BLOCK ((size_t)64 * 1024)
#define ARENA_MAX_BLOCK ((size_t)4 * 1024 * 1024) /* growth cap for regular blocks */
#define ARENA_ALIGN ((size_t)16)
#define JSON_ALIGN ((size_t)8) /* enough for every jansson structure */

struct cm_arena_block {
    cm_arena_block *next;
    size_t size; /* bytes in data[] */
    size_t used; /* bytes of data[] handed out, including alignment padding */
    size_t pad;  /* keeps data[] 16-aligned */
    _Alignas(16) unsigned char data[];
};

void cm_arena_init(cm_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->used_total = 0;
}

static cm_arena_block *block_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(cm_arena_block)) return NULL;
    cm_arena_block *blk = malloc(sizeof(cm_arena_block) + size);
    if (!blk) return NULL;
    blk->next = NULL;
    blk->size = size;
    blk->used = 0;
    blk->pad = 0;
    return blk;
}

/* Slow path: the head block cannot hold n bytes. Regular blocks double in size up to
 * ARENA_MAX_BLOCK so a large arena has few blocks; a request bigger than a quarter of the
 * next block gets a block of its own, placed behind the head so the head's free space
 * keeps being used. */
static void *alloc_slow(cm_arena *a, size_t n, size_t align)
{
    cm_arena_block *head = a->head;
    size_t base = a->block_size ? a->block_size : ARENA_DEFAULT_BLOCK;
    size_t next = base;
    if (head) {
        size_t grown = head->size <= ARENA_MAX_BLOCK / 2 ? head->size * 2 : ARENA_MAX_BLOCK;
        if (grown > next) next = grown;
    }
    if (n > next / 4) {
        cm_arena_block *big = block_new(n);
        if (!big) return NULL;
        big->used = n;
        if (head) {
            big->next = head->next;
            head->next = big;
        } else {
            a->head = big;
        }
        a->used_total += n;
        return big->data;
    }
    cm_arena_block *blk = block_new(next);
    if (!blk) return NULL;
    blk->next = head;
    a->head = blk;
    (void)align; /* data[] is 16-aligned, offset 0 suits every alignment we use */
    blk->used = n;
    a->used_total += n;
    return blk->data;
}

static inline void *arena_alloc_aligned(cm_arena *a, size_t n, size_t align)
{
    cm_arena_block *blk = a->head;
    if (n == 0) n = 1;
    if (blk) {
        size_t off = (blk->used + align - 1) & ~(align - 1);
        if (off <= blk->size && n <= blk->size - off) {
            blk->used = off + n;
            a->used_total += n;
            return blk->data + off;
        }
    }
    if (n > SIZE_MAX / 2) return NULL;
    return alloc_slow(a, n, align);
}

void *cm_arena_alloc(cm_arena *a, size_t n)
{
    return arena_alloc_aligned(a, n, ARENA_ALIGN);
}

char *cm_arena_strndup(cm_arena *a, const char *s, size_t n)
{
    if (n >= SIZE_MAX / 2) return NULL;
    char *p = arena_alloc_aligned(a, n + 1, 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cm_arena_strdup(cm_arena *a, const char *s)
{
    return cm_arena_strndup(a, s, strlen(s));
}

void cm_arena_free(cm_arena *a)
{
    cm_arena_block *blk = a->head;
    while (blk) {
        cm_arena_block *next = blk->next;
        free(blk);
        blk = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void cm_arena_reset(cm_arena *a)
{
    cm_arena_block *blk = a->head;
    a->used_total = 0;
    if (!blk) return;
    if (!blk->next) {
        blk->used = 0;
        return;
    }
    size_t total = 0;
    for (; blk; blk = blk->next)
        total += blk->size;
    cm_arena_free(a);
    a->head = block_new(total); /* one block that holds what was used (NULL: start empty) */
}

/* ---- jansson hooks ----
 * Heap allocations are plain malloc()/free(), so jansson values made while no arena is in use
 * (and strings returned by json_dumps) stay ordinary heap memory that free() accepts. While an
 * arena is in use, allocations come from it, and json_free() recognises them by address: a
 * pointer inside one of the current arena's blocks is left alone, anything else is free()d. */

static _Thread_local cm_arena *tl_json_arena;
static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static volatile int json_installed;

static int arena_owns(const cm_arena *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    for (const cm_arena_block *blk = a->head; blk; blk = blk->next) {
        uintptr_t lo = (uintptr_t)blk->data;
        if (u >= lo && u < lo + blk->size) return 1;
    }
    return 0;
}

static void *json_arena_malloc(size_t n)
{
    cm_arena *a = tl_json_arena;
    if (!a) return malloc(n);
    return arena_alloc_aligned(a, n, JSON_ALIGN);
}

static void json_arena_free(void *p)
{
    cm_arena *a = tl_json_arena;
    if (a && arena_owns(a, p)) return;
    free(p);
}

static void json_install_once(void)
{
    json_set_alloc_funcs(json_arena_malloc, json_arena_free);
    json_installed = 1;
}

void cm_arena_json_install(void)
{
    pthread_once(&json_once, json_install_once);
}

int cm_arena_json_installed(void)
{
    return json_installed;
}

void cm_arena_json_use(cm_arena *a)
{
    tl_json_arena = a;
}

cm_arena *cm_arena_json_current(void)
{
    return tl_json_arena;
}
