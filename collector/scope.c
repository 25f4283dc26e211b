/* scope.c — the API caller's scope: names, parsing and the national constant. */
#include "scope.h"

#include <stdio.h>
#include <string.h>

const co_scope co_scope_all = {CO_SCOPE_ALL, ""};

static const char *const names[] = {"all", "province", "chain", "site"};

const char *co_scope_kind_name(co_scope_kind k)
{
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int co_scope_kind_parse(const char *s, co_scope_kind *k)
{
    for (unsigned i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) {
            *k = (co_scope_kind)i;
            return 0;
        }
    return -1;
}

int co_scope_set(co_scope *sc, co_scope_kind k, const char *value, char *err, size_t errlen)
{
    if ((unsigned)k > CO_SCOPE_SITE) {
        snprintf(err, errlen, "unknown scope kind %d", (int)k);
        return -1;
    }
    sc->kind = k;
    sc->value[0] = '\0';
    if (k == CO_SCOPE_ALL) return 0;
    size_t n = value ? strlen(value) : 0;
    if (n == 0 || n > CM_MAX_NAME) {
        snprintf(err, errlen, "a %s scope needs a %s of 1..%d bytes", names[k], names[k],
                 CM_MAX_NAME);
        return -1;
    }
    memcpy(sc->value, value, n + 1);
    return 0;
}

bool co_scope_is_all(const co_scope *sc)
{
    return !sc || sc->kind == CO_SCOPE_ALL;
}
