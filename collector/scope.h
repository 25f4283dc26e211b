/* scope.h — what a caller of the API may see: every site (the national centre, a national
 * operator token), or only the cinemas of one province, one chain or one cinema (site code).
 * A viewer's or operator's scope is decided by access.c at authentication and handed to every
 * read handler and store query, which filter by it in SQL (sites.province / sites.chain /
 * the row's site), so a limited viewer sees nothing else, in pages and in the API. */
#ifndef CO_SCOPE_H
#define CO_SCOPE_H

#include <stdbool.h>

#include "batch.h"

typedef enum {
    CO_SCOPE_ALL = 0,      /* every site */
    CO_SCOPE_PROVINCE = 1, /* sites whose sites.province = value */
    CO_SCOPE_CHAIN = 2,    /* sites whose sites.chain = value */
    CO_SCOPE_SITE = 3      /* the one site whose code = value */
} co_scope_kind;

typedef struct co_scope {
    co_scope_kind kind;
    char value[CM_MAX_NAME + 1]; /* "" for CO_SCOPE_ALL */
} co_scope;

/* The national scope (every site). */
extern const co_scope co_scope_all;

/* "all", "province", "chain", "site". */
const char *co_scope_kind_name(co_scope_kind k);
/* Parse a kind name; 0 or -1. */
int co_scope_kind_parse(const char *s, co_scope_kind *k);
/* Fill sc from a kind and a value (value ignored for CO_SCOPE_ALL; required and at most
 * CM_MAX_NAME bytes otherwise). 0 or -1 with err. */
int co_scope_set(co_scope *sc, co_scope_kind k, const char *value, char *err, size_t errlen);
/* True when sc is the national scope. */
bool co_scope_is_all(const co_scope *sc);

/* SQL filter for a row whose site code is in column `site_col` of a query that can reach the
 * sites table: CO_SCOPE_SQL(site_col, k, v) expands to a parenthesised condition using
 * parameters ?k (the kind as an integer) and ?v (the value); SQLite binds them with
 * sq_bind_scope (store_sqlite_int.h).
 * Example: "... WHERE " CO_SCOPE_SQL("a.site", "?8", "?9")  then sq_bind_scope(st, 8, 9, sc). */
#define CO_SCOPE_SQL(site_col, k, v)                                                               \
    "(" k " = 0 OR (" k " = 3 AND " site_col " = " v ") OR (" k " IN (1, 2) AND " site_col         \
    " IN (SELECT code FROM sites WHERE (" k " = 1 AND province = " v ") OR (" k                    \
    " = 2 AND chain = " v "))))"

#endif
