/* Activations and softmax, AVX-512: 16 floats a vector, the last partial vector masked.
 *
 * Every transcendental here only ever needs e^x for x <= 0 (sigmoid and swish use e^-|x|, tanh
 * and ELU expm1 of a non-positive value, GELU e^-a^2, softmax e^(x - max)), so nothing can
 * overflow and the only range to guard is underflow, which VSCALEFPS handles exactly
 * (gradual underflow to subnormals and to 0, correctly rounded).
 *
 * exp: x = n ln2 + r, |r| <= ln2/2, with ln2 split in two so r is exact to ~1e-16 under FMA;
 * e^r - 1 = r + r^2 (1/2! + r/3! + ... + r^5/7!) (Taylor, truncation 5e-9 relative), and
 * e^x = 2^n (1 + that). Measured: within 1 ulp of glibc's expf.
 * Min/max operand order follows the references' `a > b ? a : b` exactly (VMAXPS returns its
 * second operand when either is NaN), so the piecewise-linear codes match them bit for bit, NaN
 * included (a NaN into ReLU or hard sigmoid gives 0, as in the reference), and a NaN into any
 * other code comes out NaN.
 *
 * GELU needs erfc(a), a >= 0: erfc(a) = e^(-a^2) g(t), t = 1/(1 + a/2), g = erfcx evaluated as
 * a degree-10 polynomial in t fitted (weighted least squares, Lawson-refined) to scipy's erfcx
 * over a in [0, 10.6] (beyond, erfc underflows in float): 7e-9 relative in exact arithmetic,
 * ~3e-7 with float rounding of t and Horner. a^2 is carried as p + e (FMA) because e^(-a^2)
 * magnifies an error in a^2 by a^2 (up to ~100). erfc(-a) = 2 - erfc(a). */
#include <immintrin.h>
#include <math.h>

#include "microkernels.h"

#define LN2_HI 0.693147182f
#define LN2_LO -1.90465421e-09f
#define LOG2E 1.44269502f

/* r + r^2 (1/2 + r/6 + ... + r^5/5040), i.e. e^r - 1 for |r| <= ln2/2. */
static inline __m512 expm1_poly(__m512 r)
{
    __m512 q = _mm512_set1_ps(1.0f / 5040.0f);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 720.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 120.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 24.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 6.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    return _mm512_fmadd_ps(q, _mm512_mul_ps(r, r), r);
}

/* Splits x into n (integral, as float) and r. */
static inline __m512 reduce(__m512 x, __m512 *n)
{
    *n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(*n, _mm512_set1_ps(LN2_HI), x);
    return _mm512_fnmadd_ps(*n, _mm512_set1_ps(LN2_LO), r);
}

/* e^x for x <= 0; below -104 the result is 0 anyway, and clamping keeps n finite. */
static inline __m512 exp_neg(__m512 x)
{
    __m512 n, r = reduce(_mm512_max_ps(_mm512_set1_ps(-104.0f), x), &n);
    return _mm512_scalef_ps(_mm512_add_ps(_mm512_set1_ps(1.0f), expm1_poly(r)), n);
}

/* e^x - 1 for x <= 0 (positive lanes give junk the callers discard). 2^n q + (2^n - 1) keeps
 * relative precision near 0, where n = 0; below -30 the result is -1 in float. The sign of x
 * is ORed in so that -0 maps to -0 like expm1f. */
static inline __m512 expm1_neg(__m512 x)
{
    __m512 xc = _mm512_min_ps(_mm512_setzero_ps(), _mm512_max_ps(_mm512_set1_ps(-30.0f), x));
    __m512 n, r = reduce(xc, &n);
    __m512 s = _mm512_scalef_ps(_mm512_set1_ps(1.0f), n);
    __m512 y = _mm512_fmadd_ps(s, expm1_poly(r), _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
    return _mm512_or_ps(y, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));
}

static inline __m512 relu(__m512 x, const mk_activation *a)
{
    __m512 z = _mm512_setzero_ps(), hi = _mm512_set1_ps(a->max);
    if (a->alpha == 0.0f)
        return _mm512_min_ps(_mm512_max_ps(x, z), hi);
    __m512 v = _mm512_add_ps(_mm512_max_ps(x, z),
                             _mm512_mul_ps(_mm512_set1_ps(a->alpha), _mm512_min_ps(x, z)));
    return _mm512_min_ps(v, hi);
}

/* e/(1+e) or 1/(1+e) with e = e^-|x|, the references' overflow-free split. */
static inline __m512 sigmoid(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 e = exp_neg(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 num = _mm512_mask_blend_ps(neg, _mm512_set1_ps(1.0f), e);
    return _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline __m512 swish(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 e = exp_neg(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 num = _mm512_mask_mul_ps(x, neg, x, e);
    return _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* tanh|x| = -t/(2+t), t = expm1(-2|x|): no cancellation near 0. */
static inline __m512 tanh_(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
    __m512 m2ax = _mm512_mul_ps(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(2.0f));
    __m512 t = expm1_neg(m2ax);
    __m512 y = _mm512_div_ps(_mm512_sub_ps(_mm512_setzero_ps(), t),
                             _mm512_add_ps(_mm512_set1_ps(2.0f), t));
    return _mm512_or_ps(y, sign);
}

static inline __m512 elu(__m512 x, const mk_activation *a)
{
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    __m512 y = _mm512_mul_ps(_mm512_set1_ps(a->alpha), expm1_neg(x));
    return _mm512_mask_blend_ps(pos, y, x);
}

/* Keras 3 relu6(x + 3) / 6, divided as the reference does. */
static inline __m512 hard_sigmoid(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 v = _mm512_add_ps(x, _mm512_set1_ps(3.0f));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
    return _mm512_div_ps(v, _mm512_set1_ps(6.0f));
}

static inline __m512 hard_sigmoid_k2(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(0.2f), x), _mm512_set1_ps(0.5f));
    return _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
}

/* erfc(a) for a >= 0 (a NaN stays NaN); see the file comment. */
static inline __m512 erfc_pos(__m512 a)
{
    static const float c[11] = {2.605343610e-02f,  -2.002211809e-01f, 6.165238619e-01f,
                                -9.318976998e-01f, 6.525125504e-01f,  -2.329096943e-01f,
                                2.777037323e-01f,  2.253834158e-01f,  2.849701047e-01f,
                                2.818741202e-01f,  7.362971246e-06f};
    a = _mm512_min_ps(_mm512_set1_ps(11.0f), a);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(a, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 g = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 11; i++)
        g = _mm512_fmadd_ps(g, t, _mm512_set1_ps(c[i]));
    __m512 p = _mm512_mul_ps(a, a), e = _mm512_fmsub_ps(a, a, p);
    return _mm512_mul_ps(exp_neg(_mm512_sub_ps(_mm512_setzero_ps(), p)),
                         _mm512_fnmadd_ps(g, e, g));
}

/* 0.5 x erfc(-x/sqrt2), z rounded exactly as the reference rounds it. */
static inline __m512 gelu(__m512 x, const mk_activation *a)
{
    (void)a;
    __m512 z = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), x),
                             _mm512_set1_ps(0.70710678118654752f));
    __m512 ec = erfc_pos(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), z));
    __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    ec = _mm512_mask_sub_ps(ec, neg, _mm512_set1_ps(2.0f), ec);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), ec);
}

/* One loop per code, so the dispatch is paid once per call. */
#define MAP(fn)                                                                                 \
    do {                                                                                        \
        size_t i = i0;                                                                          \
        for (; i + 16 <= i1; i += 16)                                                           \
            _mm512_storeu_ps(x + i, fn(_mm512_loadu_ps(x + i), a));                             \
        if (i < i1) {                                                                           \
            __mmask16 m = (__mmask16)((1u << (i1 - i)) - 1u);                                   \
            _mm512_mask_storeu_ps(x + i, m, fn(_mm512_maskz_loadu_ps(m, x + i), a));            \
        }                                                                                       \
    } while (0)

void mk_f32_act_avx512(const mk_activation *a, float *x, size_t i0, size_t i1)
{
    switch (a->code) {
    case MK_ACT_RELU:
        MAP(relu);
        return;
    case MK_ACT_SIGMOID:
        MAP(sigmoid);
        return;
    case MK_ACT_TANH:
        MAP(tanh_);
        return;
    case MK_ACT_SWISH:
        MAP(swish);
        return;
    case MK_ACT_ELU:
        MAP(elu);
        return;
    case MK_ACT_HARD_SIGMOID:
        MAP(hard_sigmoid);
        return;
    case MK_ACT_HARD_SIGMOID_K2:
        MAP(hard_sigmoid_k2);
        return;
    case MK_ACT_GELU:
        MAP(gelu);
        return;
    default: /* linear; softmax has its own entry point */
        return;
    }
}

/* The row max makes every exponent <= 0 and the largest term exactly 1. The sum is kept in
 * double (two 8-lane accumulators), as the reference does, so only its order differs. */
void mk_f32_softmax_avx512(float *x, size_t ch, size_t r0, size_t r1)
{
    for (size_t r = r0; r < r1; r++) {
        float *row = x + r * ch;
        __m512 vm = _mm512_set1_ps(-INFINITY);
        size_t i = 0;
        for (; i + 16 <= ch; i += 16)
            vm = _mm512_max_ps(_mm512_loadu_ps(row + i), vm);
        __mmask16 tail = (__mmask16)((1u << (ch - i)) - 1u);
        if (i < ch)
            vm = _mm512_mask_max_ps(vm, tail, _mm512_maskz_loadu_ps(tail, row + i), vm);
        __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (i = 0; i + 16 <= ch; i += 16) {
            __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(row + i), mx));
            _mm512_storeu_ps(row + i, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
        }
        if (i < ch) {
            __m512 e = _mm512_maskz_mov_ps(
                tail, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + i), mx)));
            _mm512_mask_storeu_ps(row + i, tail, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
        }
        __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
        for (i = 0; i + 16 <= ch; i += 16)
            _mm512_storeu_ps(row + i, _mm512_mul_ps(_mm512_loadu_ps(row + i), inv));
        if (i < ch)
            _mm512_mask_storeu_ps(row + i, tail,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + i), inv));
    }
}
