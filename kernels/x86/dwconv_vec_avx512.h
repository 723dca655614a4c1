/* The vector vocabulary the depthwise bodies (dwconv_common.h, dwconv3x3_body.h,
 * dwconv_generic_body.h) are written in, for AVX-512: 16 floats per register, tails through
 * k-masks (masked loads do not fault on the lanes they skip, so a tail never reads past C).
 * `full` is always a compile-time constant at the call sites, so the masked and unmasked
 * paths each compile to plain instructions. */
#ifndef MORSEL_DWCONV_VEC_AVX512_H
#define MORSEL_DWCONV_VEC_AVX512_H

#include <immintrin.h>

#define DW_LANES 16
#define DW_T1 8 /* output pixels per 3x3 tile (8 accumulators) */
#define DW_T2 8 /* stride 2: 2T+1 input columns per tile row */
#define DW_TG 8 /* generic kernel: one weight load per 8 FMAs */
#define DW_ISA(name) name##_avx512

typedef __m512 dw_vf;
typedef __mmask16 dw_mask;

static inline dw_mask dw_mask_n(int n) { return (dw_mask)((1u << n) - 1u); }
static inline dw_vf dw_zero(void) { return _mm512_setzero_ps(); }
static inline dw_vf dw_set1(float v) { return _mm512_set1_ps(v); }
static inline dw_vf dw_load(const float *p, dw_mask m, int full)
{
    if (full)
        return _mm512_loadu_ps(p);
    return _mm512_maskz_loadu_ps(m, p);
}
static inline void dw_store(float *p, dw_vf v, dw_mask m, int full)
{
    if (full)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, m, v);
}
static inline dw_vf dw_fma(dw_vf a, dw_vf b, dw_vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline dw_vf dw_add(dw_vf a, dw_vf b) { return _mm512_add_ps(a, b); }
/* max/min return the second operand when either is NaN, as the reference's x > 0 ? x : 0. */
static inline dw_vf dw_max(dw_vf a, dw_vf b) { return _mm512_max_ps(a, b); }
static inline dw_vf dw_min(dw_vf a, dw_vf b) { return _mm512_min_ps(a, b); }

#endif
