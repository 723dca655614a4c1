/* The vector vocabulary of the depthwise bodies for AVX2 + FMA: 8 floats per register, tails
 * through vmaskmov (which, like AVX-512 masks, does not touch the skipped lanes' memory).
 * See dwconv_vec_avx512.h. */
#ifndef MORSEL_DWCONV_VEC_AVX2_H
#define MORSEL_DWCONV_VEC_AVX2_H

#include <immintrin.h>

#define DW_LANES 8
#define DW_T1 8 /* 16 ymm: 8 accumulators, a tap row's 3 weights, one input column */
#define DW_T2 8
#define DW_TG 8
#define DW_ISA(name) name##_avx2

typedef __m256 dw_vf;
typedef __m256i dw_mask;

static inline dw_mask dw_mask_n(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline dw_vf dw_zero(void) { return _mm256_setzero_ps(); }
static inline dw_vf dw_set1(float v) { return _mm256_set1_ps(v); }
static inline dw_vf dw_load(const float *p, dw_mask m, int full)
{
    if (full)
        return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, m);
}
static inline void dw_store(float *p, dw_vf v, dw_mask m, int full)
{
    if (full)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, m, v);
}
static inline dw_vf dw_fma(dw_vf a, dw_vf b, dw_vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline dw_vf dw_add(dw_vf a, dw_vf b) { return _mm256_add_ps(a, b); }
/* max/min return the second operand when either is NaN, as the reference's x > 0 ? x : 0. */
static inline dw_vf dw_max(dw_vf a, dw_vf b) { return _mm256_max_ps(a, b); }
static inline dw_vf dw_min(dw_vf a, dw_vf b) { return _mm256_min_ps(a, b); }

#endif
