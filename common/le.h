/* le.h — little-endian fixed-width integers in byte buffers (the spool's and the forward
 * journal's on-disk formats). */
#ifndef CM_LE_H
#define CM_LE_H

#include <stdint.h>

/* Store v at p, least significant byte first. */
static inline void cm_le_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void cm_le_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Load the value stored at p by cm_le_put32 / cm_le_put64. */
static inline uint32_t cm_le_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t cm_le_get64(const unsigned char *p)
{
    return (uint64_t)cm_le_get32(p) | (uint64_t)cm_le_get32(p + 4) << 32;
}

#endif
