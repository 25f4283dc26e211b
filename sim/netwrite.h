/* netwrite.h — a write of a copy of some bytes to a libuv stream, freed when written: what
 * the simulator's TCP line server and its HTTP server send with. */
#ifndef SIM_NETWRITE_H
#define SIM_NETWRITE_H

#include <stddef.h>
#include <uv.h>

/* Queue a copy of b[0..n) on stream s. 0, or -1 (out of memory, or the stream refused it). */
int sim_write_copy(uv_stream_t *s, const char *b, size_t n);

#endif
