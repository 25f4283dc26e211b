/* store_fixture.h — a fresh SQLite store in its own temporary folder for a cmocka test, and
 * its removal (the database and its -wal/-shm files). Include once per test file. */
#ifndef TEST_STORE_FIXTURE_H
#define TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "collector/store.h"

typedef struct store_fx {
    char dir[64], path[96];
    co_store *s;
} store_fx;

/* cmocka setup: *state = a store_fx with an open store. */
static int store_fx_setup(void **state)
{
    store_fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/cinemon-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    char err[256] = "";
    if (co_store_open_sqlite(&f->s, f->path, err, sizeof err) < 0) {
        fprintf(stderr, "open %s: %s\n", f->path, err);
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* cmocka teardown: close the store and remove its files and folder. */
static int store_fx_teardown(void **state)
{
    store_fx *f = *state;
    co_store_close(f->s);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

#endif
