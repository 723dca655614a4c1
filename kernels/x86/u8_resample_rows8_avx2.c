/* AVX2 horizontal pass of Pillow's 8-bit resampler over 8 rows at once (see
 * lib/image/resample_kernels.h). The row kernel (u8_resample_avx2.c) puts one pixel's RGB in a
 * vector, leaving a quarter of the lanes idle and needing a horizontal sum per pixel. Here the
 * 8 rows are first transposed to [column][channel][row] bytes, so one tap of one output pixel
 * is three 8-lane multiplies (R, G, B of the 8 rows) by one broadcast weight: every lane is
 * useful and the sums never cross lanes. The sums are Pillow's 32-bit fixed point, term for
 * term, so the pixels are those of the scalar rows. */
#include "resample_kernels.h"

#include <immintrin.h>

#define HALF ((int32_t)1 << (MI_RS_PRECISION_BITS - 1))

/* dst + r * dst_stride gets byte r of each of the 8 eight-byte groups at src + j * src_stride:
 * an 8x8 byte transpose, used both into and out of the transposed layout. */
static void transpose8x8(const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride)
{
    __m128i a[8], b[8];
    for (int j = 0; j < 8; j++)
        a[j] = _mm_loadl_epi64((const __m128i *)(src + (size_t)j * src_stride));
    for (int j = 0; j < 4; j++)
        b[j] = _mm_unpacklo_epi8(a[2 * j], a[2 * j + 1]); /* 8 x (a2j[r], a2j+1[r]) */
    a[0] = _mm_unpacklo_epi16(b[0], b[1]);                /* r 0..3: 4 bytes j 0..3 */
    a[1] = _mm_unpackhi_epi16(b[0], b[1]);                /* r 4..7 */
    a[2] = _mm_unpacklo_epi16(b[2], b[3]);                /* r 0..3: j 4..7 */
    a[3] = _mm_unpackhi_epi16(b[2], b[3]);
    b[0] = _mm_unpacklo_epi32(a[0], a[2]); /* r 0, 1 */
    b[1] = _mm_unpackhi_epi32(a[0], a[2]); /* r 2, 3 */
    b[2] = _mm_unpacklo_epi32(a[1], a[3]); /* r 4, 5 */
    b[3] = _mm_unpackhi_epi32(a[1], a[3]); /* r 6, 7 */
    for (int r = 0; r < 4; r++) {
        _mm_storel_epi64((__m128i *)(dst + (size_t)(2 * r) * dst_stride), b[r]);
        _mm_storel_epi64((__m128i *)(dst + (size_t)(2 * r + 1) * dst_stride),
                         _mm_unpackhi_epi64(b[r], b[r]));
    }
}

/* t[j * 8 + r] = rows[r * stride + j] for the len bytes of 8 rows. */
static void rows_to_t(const uint8_t *rows, size_t stride, size_t len, uint8_t *t)
{
    size_t j = 0;
    for (; j + 8 <= len; j += 8)
        transpose8x8(rows + j, stride, t + j * 8, 8);
    for (; j < len; j++)
        for (size_t r = 0; r < 8; r++)
            t[j * 8 + r] = rows[r * stride + j];
}

/* The inverse: rows[r * stride + j] = t[j * 8 + r]. */
static void t_to_rows(const uint8_t *t, size_t len, uint8_t *rows, size_t stride)
{
    size_t j = 0;
    for (; j + 8 <= len; j += 8)
        transpose8x8(t + j * 8, 8, rows + j, stride);
    for (; j < len; j++)
        for (size_t r = 0; r < 8; r++)
            rows[r * stride + j] = t[j * 8 + r];
}

static __m256i widen8(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* Output pixels per pass over the on-stack transposed result. */
#define CHUNK 64

void mi_rs_hrows8_avx2(const uint8_t *in, size_t in_stride, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out, size_t out_stride, uint8_t *work)
{
    rows_to_t(in, in_stride, in_len, work);
    const __m256i half = _mm256_set1_epi32(HALF);
    /* packs/packus leave [R0-3 G0-3 B0-3 B0-3 | R4-7 G4-7 B4-7 B4-7]: gather each channel's 8 */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    uint8_t res[CHUNK * 24 + 8];
    for (int i0 = 0; i0 < n_out; i0 += CHUNK) {
        const int n_chunk = n_out - i0 < CHUNK ? n_out - i0 : CHUNK;
        for (int i = 0; i < n_chunk; i++) {
            const int32_t *kk = k + (size_t)(i0 + i) * ks;
            const int n = bounds[2 * (i0 + i) + 1];
            const uint8_t *p = work + (size_t)(bounds[2 * (i0 + i)] - col0) * 24;
            __m256i r = half, g = half, b = half;
            for (int x = 0; x < n; x++, p += 24) {
                const __m256i w = _mm256_set1_epi32(kk[x]);
                r = _mm256_add_epi32(r, _mm256_mullo_epi32(widen8(p), w));
                g = _mm256_add_epi32(g, _mm256_mullo_epi32(widen8(p + 8), w));
                b = _mm256_add_epi32(b, _mm256_mullo_epi32(widen8(p + 16), w));
            }
            r = _mm256_srai_epi32(r, MI_RS_PRECISION_BITS);
            g = _mm256_srai_epi32(g, MI_RS_PRECISION_BITS);
            b = _mm256_srai_epi32(b, MI_RS_PRECISION_BITS);
            /* saturating packs clip to 0..255 as Pillow's clip does (|sum >> 22| < 2^10) */
            const __m256i rg = _mm256_packs_epi32(r, g), bb = _mm256_packs_epi32(b, b);
            const __m256i v = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(rg, bb), order);
            /* 32-byte store: the 8 bytes past this pixel's 24 are overwritten by the next one
             * or are res's spare tail */
            _mm256_storeu_si256((__m256i *)(res + (size_t)i * 24), v);
        }
        t_to_rows(res, (size_t)n_chunk * 3, out + (size_t)i0 * 3, out_stride);
    }
}
