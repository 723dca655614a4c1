/* Activations and softmax, AVX2 + FMA: the same algorithms as f32_act_avx512.c (see there for
 * the exp/expm1/erfc derivations and accuracy), 8 floats a vector. Differences: no VSCALEFPS,
 * so 2^n is built in the exponent field, in two factors 2^(n/2) 2^(n - n/2) where the result
 * may be subnormal (each factor stays normal, only the last multiply rounds); the last partial
 * vector goes through VMASKMOVPS, which neither reads nor writes the lanes it masks off. */
#include <immintrin.h>
#include <math.h>

#include "microkernels.h"

#define LN2_HI 0.693147182f
#define LN2_LO -1.90465421e-09f
#define LOG2E 1.44269502f

static inline __m256 splat(float v)
{
    return _mm256_set1_ps(v);
}

/* 2^n for integral n in [-126, 127], as float. */
static inline __m256 pow2i(__m256i n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

static inline __m256 expm1_poly(__m256 r)
{
    __m256 q = splat(1.0f / 5040.0f);
    q = _mm256_fmadd_ps(q, r, splat(1.0f / 720.0f));
    q = _mm256_fmadd_ps(q, r, splat(1.0f / 120.0f));
    q = _mm256_fmadd_ps(q, r, splat(1.0f / 24.0f));
    q = _mm256_fmadd_ps(q, r, splat(1.0f / 6.0f));
    q = _mm256_fmadd_ps(q, r, splat(0.5f));
    return _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r);
}

static inline __m256 reduce(__m256 x, __m256 *n)
{
    *n = _mm256_round_ps(_mm256_mul_ps(x, splat(LOG2E)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(*n, splat(LN2_HI), x);
    return _mm256_fnmadd_ps(*n, splat(LN2_LO), r);
}

/* e^x for x <= 0. n in [-150, 0]: n/2 and n - n/2 are both >= -75. A NaN x gives a NaN
 * polynomial, whatever the (invalid) integer conversion of n does to the scale. */
static inline __m256 exp_neg(__m256 x)
{
    __m256 n, r = reduce(_mm256_max_ps(splat(-104.0f), x), &n);
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1);
    __m256 p = _mm256_add_ps(splat(1.0f), expm1_poly(r));
    return _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
}

static inline __m256 expm1_neg(__m256 x)
{
    __m256 xc = _mm256_min_ps(_mm256_setzero_ps(), _mm256_max_ps(splat(-30.0f), x));
    __m256 n, r = reduce(xc, &n);
    __m256 s = pow2i(_mm256_cvtps_epi32(n));
    __m256 y = _mm256_fmadd_ps(s, expm1_poly(r), _mm256_sub_ps(s, splat(1.0f)));
    return _mm256_or_ps(y, _mm256_and_ps(x, splat(-0.0f)));
}

static inline __m256 relu(__m256 x, const mk_activation *a)
{
    __m256 z = _mm256_setzero_ps(), hi = splat(a->max);
    if (a->alpha == 0.0f)
        return _mm256_min_ps(_mm256_max_ps(x, z), hi);
    __m256 v = _mm256_add_ps(_mm256_max_ps(x, z),
                             _mm256_mul_ps(splat(a->alpha), _mm256_min_ps(x, z)));
    return _mm256_min_ps(v, hi);
}

static inline __m256 sigmoid(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 e = exp_neg(_mm256_or_ps(x, splat(-0.0f)));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 num = _mm256_blendv_ps(splat(1.0f), e, neg);
    return _mm256_div_ps(num, _mm256_add_ps(splat(1.0f), e));
}

static inline __m256 swish(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 e = exp_neg(_mm256_or_ps(x, splat(-0.0f)));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, e), neg);
    return _mm256_div_ps(num, _mm256_add_ps(splat(1.0f), e));
}

static inline __m256 tanh_(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 sign = _mm256_and_ps(x, splat(-0.0f));
    __m256 t = expm1_neg(_mm256_mul_ps(_mm256_or_ps(x, splat(-0.0f)), splat(2.0f)));
    __m256 y = _mm256_div_ps(_mm256_sub_ps(_mm256_setzero_ps(), t), _mm256_add_ps(splat(2.0f), t));
    return _mm256_or_ps(y, sign);
}

static inline __m256 elu(__m256 x, const mk_activation *a)
{
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(_mm256_mul_ps(splat(a->alpha), expm1_neg(x)), x, pos);
}

static inline __m256 hard_sigmoid(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 v = _mm256_add_ps(x, splat(3.0f));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), splat(6.0f));
    return _mm256_div_ps(v, splat(6.0f));
}

static inline __m256 hard_sigmoid_k2(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 v = _mm256_add_ps(_mm256_mul_ps(splat(0.2f), x), splat(0.5f));
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), splat(1.0f));
}

static inline __m256 erfc_pos(__m256 a)
{
    static const float c[11] = {2.605343610e-02f,  -2.002211809e-01f, 6.165238619e-01f,
                                -9.318976998e-01f, 6.525125504e-01f,  -2.329096943e-01f,
                                2.777037323e-01f,  2.253834158e-01f,  2.849701047e-01f,
                                2.818741202e-01f,  7.362971246e-06f};
    a = _mm256_min_ps(splat(11.0f), a);
    __m256 t = _mm256_div_ps(splat(1.0f), _mm256_fmadd_ps(a, splat(0.5f), splat(1.0f)));
    __m256 g = splat(c[0]);
    for (int i = 1; i < 11; i++)
        g = _mm256_fmadd_ps(g, t, splat(c[i]));
    __m256 p = _mm256_mul_ps(a, a), e = _mm256_fmsub_ps(a, a, p);
    return _mm256_mul_ps(exp_neg(_mm256_sub_ps(_mm256_setzero_ps(), p)),
                         _mm256_fnmadd_ps(g, e, g));
}

static inline __m256 gelu(__m256 x, const mk_activation *a)
{
    (void)a;
    __m256 z = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), splat(0.70710678118654752f));
    __m256 ec = erfc_pos(_mm256_andnot_ps(splat(-0.0f), z));
    __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    ec = _mm256_blendv_ps(ec, _mm256_sub_ps(splat(2.0f), ec), neg);
    return _mm256_mul_ps(_mm256_mul_ps(splat(0.5f), x), ec);
}

/* Lanes [0, k) set, k in [0, 8]. */
static inline __m256i tail_mask(size_t k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define MAP(fn)                                                                                 \
    do {                                                                                        \
        size_t i = i0;                                                                          \
        for (; i + 8 <= i1; i += 8)                                                             \
            _mm256_storeu_ps(x + i, fn(_mm256_loadu_ps(x + i), a));                             \
        if (i < i1) {                                                                           \
            __m256i m = tail_mask(i1 - i);                                                      \
            _mm256_maskstore_ps(x + i, m, fn(_mm256_maskload_ps(x + i, m), a));                 \
        }                                                                                       \
    } while (0)

void mk_f32_act_avx2(const mk_activation *a, float *x, size_t i0, size_t i1)
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
    default:
        return;
    }
}

static inline float hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline __m256d add_pd8(__m256d s, __m256 e)
{
    s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    return _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

/* As mk_f32_softmax_avx512: row max, exps summed in double, one scale. */
void mk_f32_softmax_avx2(float *x, size_t ch, size_t r0, size_t r1)
{
    size_t body = ch & ~(size_t)7;
    __m256i tail = tail_mask(ch - body);
    for (size_t r = r0; r < r1; r++) {
        float *row = x + r * ch;
        __m256 vm = splat(-INFINITY);
        for (size_t i = 0; i < body; i += 8)
            vm = _mm256_max_ps(_mm256_loadu_ps(row + i), vm);
        if (body < ch)
            vm = _mm256_max_ps(_mm256_blendv_ps(vm, _mm256_maskload_ps(row + body, tail),
                                                _mm256_castsi256_ps(tail)),
                               vm);
        __m256 mx = splat(hmax(vm));
        __m256d s = _mm256_setzero_pd();
        for (size_t i = 0; i < body; i += 8) {
            __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(row + i), mx));
            _mm256_storeu_ps(row + i, e);
            s = add_pd8(s, e);
        }
        if (body < ch) {
            __m256 e = _mm256_and_ps(
                exp_neg(_mm256_sub_ps(_mm256_maskload_ps(row + body, tail), mx)),
                _mm256_castsi256_ps(tail));
            _mm256_maskstore_ps(row + body, tail, e);
            s = add_pd8(s, e);
        }
        __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
        double sum = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
        __m256 inv = splat((float)(1.0 / sum));
        for (size_t i = 0; i < body; i += 8)
            _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
        if (body < ch)
            _mm256_maskstore_ps(row + body, tail,
                                _mm256_mul_ps(_mm256_maskload_ps(row + body, tail), inv));
    }
}
