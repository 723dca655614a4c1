/* CRC-32 (zlib's) by carry-less multiplication: the message is divided by the CRC polynomial P
 * 64 bytes at a time in four 128-bit remainders, merged at the end into one, whose 16 bytes and
 * the tail then go through the scalar reference. It is exact arithmetic mod P, so the result
 * is the reference's, bit for bit.
 *
 * A 128-bit register X holds 16 message bytes as loaded (little-endian): bit i is the
 * coefficient of x^(127-i), since the reflected CRC reads each byte from its bit 0. Moving X
 * D bits further down the message is X * x^D mod P; with X = L x^64 + H (L its low 64 bits),
 *     X * x^D == clmul(L, k_lo) ^ clmul(H, k_hi)   (mod P, as a register of the same layout)
 * with k_lo = r(x^(D+63) mod P), k_hi = r(x^(D-1) mod P), and r() putting the coefficient of
 * x^d at bit 63 - d (the -1 absorbs the one-bit shift of a carry-less product of reflected
 * operands). The products have degree < 96 and fit; XORing in the next 16 bytes continues
 * the division. The constants below are these for D = 512 (one lane jumping over the other
 * three) and D = 128 (merging neighbours); test_k_crc32 checks the kernels against the
 * reference and zlib. A remainder V then has crc(prefix) == crc of V's bytes from register 0.
 *
 * Built with -mpclmul -msse4.1 (CMake: files named *_pclmul.c); runs only when the CPU has
 * PCLMULQDQ. */
#include <immintrin.h>

#include "crc32.h"

#define K512_LO 0x653d982200000000ull
#define K512_HI 0xcad38e8f00000000ull
#define K128_LO 0x65673b4600000000ull
#define K128_HI 0x9ba54c6f00000000ull

typedef __m128i crc_v;
#define CRC_VBYTES 16

static __m128i crc_fold(__m128i x, __m128i k, __m128i next)
{
    __m128i lo = _mm_clmulepi64_si128(x, k, 0x00), hi = _mm_clmulepi64_si128(x, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

static __m128i crc_load(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

static __m128i crc_start(uint32_t r) { return _mm_cvtsi32_si128((int)r); }
static __m128i crc_xor(__m128i a, __m128i b) { return _mm_xor_si128(a, b); }

#include "crc32_fold_body.h"

uint32_t mk_u8_crc32_pclmul(uint32_t crc, const uint8_t *p, size_t n)
{
    if (n < 64)
        return mk_crc32_ref(crc, p, n);
    const __m128i k512 = _mm_set_epi64x((long long)K512_HI, (long long)K512_LO);
    const __m128i k128 = _mm_set_epi64x((long long)K128_HI, (long long)K128_LO);
    size_t steps = n / 64;
    __m128i x = crc_fold_bulk(crc, p, steps, k512, k128);
    p += steps * 64;
    n -= steps * 64;
    for (; n >= 16; p += 16, n -= 16)
        x = crc_fold(x, k128, crc_load(p));
    uint8_t v[16];
    _mm_storeu_si128((__m128i *)(void *)v, x);
    return mk_crc32_ref(mk_crc32_ref(0xFFFFFFFFu, v, 16), p, n);
}
