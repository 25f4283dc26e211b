/* csvimport.h — the sites-and-screens CSV (RFC 4180) of a cinema chain or a national register:
 * one row per hall (or per cinema, without a hall code), imported in one transaction. */
#ifndef CO_CSVIMPORT_H
#define CO_CSVIMPORT_H

#include <stddef.h>

#include "store.h"

#define CO_CSV_MAX_BYTES (64u << 20) /* a national register of ~100,000 halls fits */

/* Parse the CSV text buf[0..len) named `name` (for messages) and import it into s as one
 * transaction. Header row (case-insensitive): cinema_code (required), cinema_name, province,
 * city, chain (the cinema chain, for viewers limited to one), hall_code, hall_name, class,
 * display, format, spl_<channel> (reference dBC per channel, e.g. spl_L, spl_Ls). An empty
 * cell keeps what is stored. Returns 0 with the
 * counts, or -1 with err "name:line: ..." and nothing imported. */
int co_csv_import(co_store *s, const char *name, const char *buf, size_t len, size_t *nsites,
                  size_t *nscreens, char *err, size_t errlen);
/* Read the file at path (at most CO_CSV_MAX_BYTES) and co_csv_import it. */
int co_csv_import_file(co_store *s, const char *path, size_t *nsites, size_t *nscreens, char *err,
                       size_t errlen);

#endif
