/* arena.h — bump allocator: many small allocations, one free. */
#ifndef CM_ARENA_H
#define CM_ARENA_H

#include <stddef.h>

typedef struct cm_arena_block cm_arena_block;
typedef struct cm_arena {
    cm_arena_block *head; /* newest block first */
    size_t block_size;    /* default size of a new block */
    size_t used_total;    /* bytes handed out, for limits and stats */
} cm_arena;

/* Initialise an empty arena whose blocks are block_size bytes (0 = 64 KiB). */
void cm_arena_init(cm_arena *a, size_t block_size);
/* Allocate n bytes aligned to 16; NULL only when the system is out of memory. */
void *cm_arena_alloc(cm_arena *a, size_t n);
/* Copy a NUL-terminated string (or n bytes plus a NUL with cm_arena_strndup). */
char *cm_arena_strdup(cm_arena *a, const char *s);
char *cm_arena_strndup(cm_arena *a, const char *s, size_t n);
/* Release every block; the arena can be used again afterwards. */
void cm_arena_free(cm_arena *a);
/* Forget every allocation but keep the memory (merged into one block) for the next use. */
void cm_arena_reset(cm_arena *a);

/* jansson integration: route json_* allocations of the calling thread into `a` while it is
 * set (NULL restores malloc). cm_arena_json_install() must be called once at start-up.
 * Without an arena in use jansson keeps plain malloc/free (free(json_dumps(...)) stays right).
 * Values made while `a` is in use belong to `a`: json_decref them (optional) before switching
 * the arena, never after; they disappear with cm_arena_free(a). */
void cm_arena_json_install(void);
void cm_arena_json_use(cm_arena *a);
/* The calling thread's arena for jansson (NULL = malloc). */
cm_arena *cm_arena_json_current(void);
/* True once cm_arena_json_install() has run (json_decref of arena values is then a no-op). */
int cm_arena_json_installed(void);

#endif
