/* AVX-512 rows of Pillow's 8-bit resampler (see lib/image/resample_kernels.h): the AVX2 scheme
 * at twice the width, with masked loads for the ends so nothing is read past them. */
#include "resample_kernels.h"

#include <immintrin.h>
#include <string.h>

#define HALF ((int32_t)1 << (MI_RS_PRECISION_BITS - 1))

void mi_rs_hrow_avx512(const uint8_t *in, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out)
{
    const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    const __m512i widen = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int i = 0; i < n_out; i++, k += ks, out += 3) {
        const int n = bounds[2 * i + 1];
        const uint8_t *p = in + (size_t)(bounds[2 * i] - col0) * 3;
        __m512i acc = _mm512_setzero_si512();
        for (int x = 0; x < n; x += 4) {
            const int r = n - x < 4 ? n - x : 4; /* taps in this group */
            const __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << (3 * r)) - 1), p + 3 * x);
            const __m128i kk = _mm_maskz_loadu_epi32((__mmask8)((1u << r) - 1), k + x);
            const __m512i px = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(v, spread));
            const __m512i kw = _mm512_permutexvar_epi32(widen, _mm512_castsi128_si512(kk));
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(px, kw));
        }
        const __m256i a8 = _mm256_add_epi32(_mm512_castsi512_si256(acc),
                                            _mm512_extracti64x4_epi64(acc, 1));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a8), _mm256_extracti128_si256(a8, 1));
        s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(HALF)), MI_RS_PRECISION_BITS);
        s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
        const uint32_t rgb0 = (uint32_t)_mm_cvtsi128_si32(s);
        /* 4-byte store, except for the last pixel: its 4th byte is not ours */
        memcpy(out, &rgb0, i + 1 < n_out ? 4 : 3);
    }
}

/* Pillow's clip8 of 16 sums: >> 22, then 0..255 (vpmovusdb saturates unsigned, so negatives are
 * raised to 0 first). */
static __m128i vr_bytes(__m512i acc)
{
    acc = _mm512_max_epi32(_mm512_srai_epi32(acc, MI_RS_PRECISION_BITS), _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(acc);
}

void mi_rs_vrow_avx512(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                       uint8_t *out)
{
    const __m512i half = _mm512_set1_epi32(HALF);
    size_t j = 0;
    for (; j + 64 <= nbytes; j += 64) {
        __m512i a0 = half, a1 = half, a2 = half, a3 = half;
        const uint8_t *p = in + j;
        for (int y = 0; y < n; y++, p += stride) {
            const __m512i kk = _mm512_set1_epi32(k[y]);
            a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)), kk));
            a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))), kk));
            a2 = _mm512_add_epi32(a2, _mm512_mullo_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 32))), kk));
            a3 = _mm512_add_epi32(a3, _mm512_mullo_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 48))), kk));
        }
        _mm_storeu_si128((__m128i *)(out + j), vr_bytes(a0));
        _mm_storeu_si128((__m128i *)(out + j + 16), vr_bytes(a1));
        _mm_storeu_si128((__m128i *)(out + j + 32), vr_bytes(a2));
        _mm_storeu_si128((__m128i *)(out + j + 48), vr_bytes(a3));
    }
    for (; j < nbytes; j += 16) { /* the rest, 16 bytes at a time under a mask */
        const size_t r = nbytes - j < 16 ? nbytes - j : 16;
        const __mmask16 m = (__mmask16)((1u << r) - 1);
        __m512i a = half;
        const uint8_t *p = in + j;
        for (int y = 0; y < n; y++, p += stride)
            a = _mm512_add_epi32(a, _mm512_mullo_epi32(
                _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)), _mm512_set1_epi32(k[y])));
        _mm_mask_storeu_epi8(out + j, m, vr_bytes(a));
    }
}

void mi_rs_tofloat_avx512(const uint8_t *in, size_t npix, const float scale[3],
                          const float offset[3], float *out)
{
    /* 16 pixels = 48 values = 3 vectors, whose channel pattern starts at R, at G, at B */
    float sp[48 + 2], op[48 + 2];
    for (int i = 0; i < 50; i++) {
        sp[i] = scale[i % 3];
        op[i] = offset[i % 3];
    }
    const __m512 s0 = _mm512_loadu_ps(sp), s1 = _mm512_loadu_ps(sp + 16);
    const __m512 s2 = _mm512_loadu_ps(sp + 32);
    const __m512 o0 = _mm512_loadu_ps(op), o1 = _mm512_loadu_ps(op + 16);
    const __m512 o2 = _mm512_loadu_ps(op + 32);
    size_t i = 0;
    for (; i + 16 <= npix; i += 16, in += 48, out += 48) {
        const __m512 f0 = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)in)));
        const __m512 f1 = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(in + 16))));
        const __m512 f2 = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(in + 32))));
        _mm512_storeu_ps(out, _mm512_add_ps(_mm512_mul_ps(f0, s0), o0));
        _mm512_storeu_ps(out + 16, _mm512_add_ps(_mm512_mul_ps(f1, s1), o1));
        _mm512_storeu_ps(out + 32, _mm512_add_ps(_mm512_mul_ps(f2, s2), o2));
    }
    if (i < npix)
        mi_rs_tofloat_scalar(in, npix - i, scale, offset, out);
}
