/* AVX2 rows of Pillow's 8-bit resampler (see lib/image/resample_kernels.h): the same 32-bit
 * fixed-point sums as the scalar rows, eight lanes at a time (vpmulld: Pillow's weights need 22
 * bits, too many for the 16-bit multiply-adds), so the pixels are identical. */
#include "resample_kernels.h"

#include <immintrin.h>
#include <string.h>

#define HALF ((int32_t)1 << (MI_RS_PRECISION_BITS - 1))

/* 4 taps of packed RGB (12 bytes of v) times their weights kk, added to acc as
 * [R G B 0 | R G B 0] lanes. */
static __m256i hr_taps4k(__m256i acc, __m128i v, __m128i k4)
{
    const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    const __m256i lo_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const __m256i hi_idx = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    const __m128i px = _mm_shuffle_epi8(v, spread);
    const __m256i kk = _mm256_castsi128_si256(k4);
    const __m256i p01 = _mm256_cvtepu8_epi32(px);
    const __m256i p23 = _mm256_cvtepu8_epi32(_mm_srli_si128(px, 8));
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p01, _mm256_permutevar8x32_epi32(kk, lo_idx)));
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(p23, _mm256_permutevar8x32_epi32(kk, hi_idx)));
}

static __m256i hr_taps4(__m256i acc, __m128i v, const int32_t *k)
{
    return hr_taps4k(acc, v, _mm_loadu_si128((const __m128i *)k));
}

void mi_rs_hrow_avx2(const uint8_t *in, size_t in_len, int col0,
                     const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                     uint8_t *out)
{
    for (int i = 0; i < n_out; i++, k += ks, out += 3) {
        const int n = bounds[2 * i + 1];
        const uint8_t *p = in + (size_t)(bounds[2 * i] - col0) * 3;
        __m256i acc = _mm256_setzero_si256();
        int x = 0;
        /* a 16-byte load for 4 taps reads 4 bytes past them: stay 6 taps from the end */
        for (; x + 6 <= n; x += 4)
            acc = hr_taps4(acc, _mm_loadu_si128((const __m128i *)(p + 3 * x)), k + x);
        const size_t at = (size_t)(p - in);
        /* whole 16-byte loads where the row goes on, the missing taps weighted 0 */
        for (; x < n && at + 3 * (size_t)x + 16 <= in_len; x += 4) {
            const __m128i lanes = _mm_setr_epi32(0, 1, 2, 3);
            const __m128i live = _mm_cmpgt_epi32(_mm_set1_epi32(n - x), lanes);
            acc = hr_taps4k(acc, _mm_loadu_si128((const __m128i *)(p + 3 * x)),
                            _mm_maskload_epi32(k + x, live));
        }
        if (x < n) { /* 1..5 taps left at the end of the row: zero-padded copies */
            uint8_t tp[32] = {0};
            int32_t tk[8] = {0};
            memcpy(tp, p + 3 * x, (size_t)(n - x) * 3);
            memcpy(tk, k + x, (size_t)(n - x) * sizeof(int32_t));
            acc = hr_taps4(acc, _mm_loadu_si128((const __m128i *)tp), tk);
            if (n - x > 4)
                acc = hr_taps4(acc, _mm_loadu_si128((const __m128i *)(tp + 12)), tk + 4);
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(HALF)), MI_RS_PRECISION_BITS);
        s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
        const uint32_t rgb0 = (uint32_t)_mm_cvtsi128_si32(s);
        /* 4-byte store, except for the last pixel: its 4th byte is not ours */
        memcpy(out, &rgb0, i + 1 < n_out ? 4 : 3);
    }
}

static __m256i vr_clip(__m256i acc)
{
    return _mm256_srai_epi32(acc, MI_RS_PRECISION_BITS);
}

void mi_rs_vrow_avx2(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                     uint8_t *out)
{
    /* the two packs work per 128-bit lane: this puts the 4-byte groups back in order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i half = _mm256_set1_epi32(HALF);
    size_t j = 0;
    for (; j + 32 <= nbytes; j += 32) {
        __m256i a0 = half, a1 = half, a2 = half, a3 = half;
        const uint8_t *p = in + j;
        for (int y = 0; y < n; y++, p += stride) {
            const __m256i kk = _mm256_set1_epi32(k[y]);
            const __m256i v = _mm256_loadu_si256((const __m256i *)p);
            const __m128i vl = _mm256_castsi256_si128(v), vh = _mm256_extracti128_si256(v, 1);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(vl), kk));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(
                                          _mm256_cvtepu8_epi32(_mm_srli_si128(vl, 8)), kk));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(vh), kk));
            a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(
                                          _mm256_cvtepu8_epi32(_mm_srli_si128(vh, 8)), kk));
        }
        const __m256i w01 = _mm256_packs_epi32(vr_clip(a0), vr_clip(a1));
        const __m256i w23 = _mm256_packs_epi32(vr_clip(a2), vr_clip(a3));
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), order);
        _mm256_storeu_si256((__m256i *)(out + j), b);
    }
    for (; j + 8 <= nbytes; j += 8) {
        __m128i a0 = _mm_set1_epi32(HALF), a1 = a0;
        const uint8_t *p = in + j;
        for (int y = 0; y < n; y++, p += stride) {
            const __m128i kk = _mm_set1_epi32(k[y]);
            const __m128i v = _mm_loadl_epi64((const __m128i *)p);
            a0 = _mm_add_epi32(a0, _mm_mullo_epi32(_mm_cvtepu8_epi32(v), kk));
            a1 = _mm_add_epi32(a1, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 4)), kk));
        }
        const __m128i w = _mm_packs_epi32(_mm_srai_epi32(a0, MI_RS_PRECISION_BITS),
                                          _mm_srai_epi32(a1, MI_RS_PRECISION_BITS));
        _mm_storel_epi64((__m128i *)(out + j), _mm_packus_epi16(w, w));
    }
    if (j < nbytes)
        mi_rs_vrow_scalar(in + j, stride, k, n, nbytes - j, out + j);
}

void mi_rs_tofloat_avx2(const uint8_t *in, size_t npix, const float scale[3],
                        const float offset[3], float *out)
{
    /* 8 pixels = 24 values = 3 vectors, whose channel pattern starts at R, at B, at G */
    const __m256 s0 = _mm256_setr_ps(scale[0], scale[1], scale[2], scale[0], scale[1], scale[2],
                                     scale[0], scale[1]);
    const __m256 s1 = _mm256_setr_ps(scale[2], scale[0], scale[1], scale[2], scale[0], scale[1],
                                     scale[2], scale[0]);
    const __m256 s2 = _mm256_setr_ps(scale[1], scale[2], scale[0], scale[1], scale[2], scale[0],
                                     scale[1], scale[2]);
    const __m256 o0 = _mm256_setr_ps(offset[0], offset[1], offset[2], offset[0], offset[1],
                                     offset[2], offset[0], offset[1]);
    const __m256 o1 = _mm256_setr_ps(offset[2], offset[0], offset[1], offset[2], offset[0],
                                     offset[1], offset[2], offset[0]);
    const __m256 o2 = _mm256_setr_ps(offset[1], offset[2], offset[0], offset[1], offset[2],
                                     offset[0], offset[1], offset[2]);
    size_t i = 0;
    for (; i + 8 <= npix; i += 8, in += 24, out += 24) {
        const __m256 f0 = _mm256_cvtepi32_ps(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)in)));
        const __m256 f1 = _mm256_cvtepi32_ps(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(in + 8))));
        const __m256 f2 = _mm256_cvtepi32_ps(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(in + 16))));
        _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(f0, s0), o0));
        _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(f1, s1), o1));
        _mm256_storeu_ps(out + 16, _mm256_add_ps(_mm256_mul_ps(f2, s2), o2));
    }
    if (i < npix)
        mi_rs_tofloat_scalar(in, npix - i, scale, offset, out);
}
