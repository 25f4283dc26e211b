/* crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) for the spool's record frames:
 * slicing-by-8 in portable C, or the SSE4.2 crc32 instruction when the CPU has it (checked once
 * at run time). Both give crc32c("123456789") = 0xE3069283. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "spool.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define CM_CRC_HW 1
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static uint32_t (*impl)(uint32_t, const unsigned char *, size_t);
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Slicing-by-8: eight bytes per step through eight 256-entry tables. crc is pre-inverted. */
static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#ifdef CM_CRC_HW
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
    while (n--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}
#endif

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = table[0][table[t - 1][i] & 0xff] ^ (table[t - 1][i] >> 8);
    impl = crc_sw;
#ifdef CM_CRC_HW
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) impl = crc_hw;
#endif
}

uint32_t cm_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    if (!len) return crc;
    return ~impl(~crc, buf, len);
}
