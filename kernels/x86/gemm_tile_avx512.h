/* What the AVX-512 GEMM tile and the kernels built like it (f32_conv_smallc_avx512.c) share:
 * the clamp epilogue, the row-spelling macros and the column masks. One definition, so their
 * outputs stay bit-identical. Include once per translation unit, after <immintrin.h>. */
#ifndef MORSEL_GEMM_TILE_AVX512_H
#define MORSEL_GEMM_TILE_AVX512_H

#include <math.h>

#include "microkernels.h"

typedef struct epilogue {
    int relu, leaky;
    __m512 alpha, hi;
} epilogue;

/* As relu() in kernels/ref/activation.c: min(max(v,0) + alpha*min(v,0), max), the product and
 * sum rounded separately as the reference does. */
static inline __m512 activate(__m512 v, const epilogue *e)
{
    if (!e->relu)
        return v;
    __m512 z = _mm512_setzero_ps();
    __m512 p = _mm512_max_ps(v, z);
    if (e->leaky)
        p = _mm512_add_ps(p, _mm512_mul_ps(e->alpha, _mm512_min_ps(v, z)));
    return _mm512_min_ps(p, e->hi);
}

static inline epilogue epilogue_for(const mk_activation *act)
{
    epilogue e = {0, 0, _mm512_setzero_ps(), _mm512_set1_ps(INFINITY)};
    if (act && act->code == MK_ACT_RELU) {
        e.relu = 1;
        e.leaky = act->alpha != 0.0f;
        e.alpha = _mm512_set1_ps(act->alpha);
        e.hi = _mm512_set1_ps(act->max);
    }
    return e;
}

/* Rows of a tile are spelled out by macro rather than as a loop over an accumulator array,
 * which compilers do not reliably unroll and then keep in memory; rows >= mr fold away.
 * LOAD1/STORE1 need `full` (all 16 lanes live, no mask) in scope. */
#define ALL_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define LOAD1(src, m) (full ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(m, src))
#define STORE1(dst, m, v) (full ? _mm512_storeu_ps(dst, v) : _mm512_mask_storeu_ps(dst, m, v))
#define DECLARE(r) __m512 c##r##a = b0, c##r##b = b1;

static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* A tile's height for `left` rows to go: 14, then a tail of up to 13 rows as 8 + 4 + 2 + 1 (the
 * heights the direct loops instantiate). */
static inline int direct_rows(int left)
{
    return left >= 14 ? 14 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

#endif
