/* netwrite.c — see netwrite.h. */
#include "netwrite.h"

#include <stdlib.h>
#include <string.h>

typedef struct wreq {
    uv_write_t req;
    char data[];
} wreq;

static void on_written(uv_write_t *r, int status)
{
    (void)status;
    free(r->data);
}

int sim_write_copy(uv_stream_t *s, const char *b, size_t n)
{
    wreq *w = malloc(sizeof *w + n);
    if (!w) return -1;
    memcpy(w->data, b, n);
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, s, &buf, 1, on_written) != 0) {
        free(w);
        return -1;
    }
    return 0;
}
