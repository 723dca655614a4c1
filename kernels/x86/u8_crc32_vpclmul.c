/* CRC-32 (zlib's) by carry-less multiplication on 256-bit registers: the folding of
 * u8_crc32_pclmul.c (which explains the arithmetic and the constants' form), two 128-bit lanes
 * per instruction, 128 bytes a step. The constants are those for D = 1024 (a lane jumping over
 * the other seven), D = 256 (merging neighbouring registers) and D = 128 (the two lanes of the
 * last one). What is left after the last whole step goes to the 128-bit kernel.
 *
 * Built with -mvpclmulqdq -mpclmul -mavx2 (CMake: files named *_vpclmul.c); runs only when the
 * CPU has VPCLMULQDQ and AVX2 (Zen 3 and later, Ice Lake and later). */
#include <immintrin.h>

#include "crc32.h"

#define K1024_LO 0x7d657a1000000000ull
#define K1024_HI 0x7406fa9500000000ull
#define K256_LO 0x9570d49500000000ull
#define K256_HI 0x01b5fd1d00000000ull
#define K128_LO 0x65673b4600000000ull
#define K128_HI 0x9ba54c6f00000000ull

typedef __m256i crc_v;
#define CRC_VBYTES 32

static __m256i crc_fold(__m256i y, __m256i k, __m256i next)
{
    __m256i lo = _mm256_clmulepi64_epi128(y, k, 0x00), hi = _mm256_clmulepi64_epi128(y, k, 0x11);
    return _mm256_xor_si256(_mm256_xor_si256(lo, hi), next);
}

static __m256i crc_load(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static __m256i crc_start(uint32_t r) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128((int)r)); }
static __m256i crc_xor(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

#include "crc32_fold_body.h"

static __m256i both_lanes(uint64_t lo, uint64_t hi)
{
    return _mm256_set_epi64x((long long)hi, (long long)lo, (long long)hi, (long long)lo);
}

uint32_t mk_u8_crc32_vpclmul(uint32_t crc, const uint8_t *p, size_t n)
{
    if (n < 256)
        return mk_u8_crc32_pclmul(crc, p, n);
    size_t steps = n / 128;
    __m256i y = crc_fold_bulk(crc, p, steps, both_lanes(K1024_LO, K1024_HI),
                              both_lanes(K256_LO, K256_HI));
    p += steps * 128;
    n -= steps * 128;
    /* The two lanes into one: the low one moved forward over the high one. */
    const __m128i k128 = _mm_set_epi64x((long long)K128_HI, (long long)K128_LO);
    __m128i a = _mm256_castsi256_si128(y), b = _mm256_extracti128_si256(y, 1);
    __m128i x = _mm_xor_si128(
        _mm_xor_si128(_mm_clmulepi64_si128(a, k128, 0x00), _mm_clmulepi64_si128(a, k128, 0x11)),
        b);
    uint8_t v[16];
    _mm_storeu_si128((__m128i *)(void *)v, x);
    return mk_u8_crc32_pclmul(mk_crc32_ref(0xFFFFFFFFu, v, 16), p, n);
}
