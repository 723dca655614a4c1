/* Add, multiply (with broadcast gates) and affine, AVX2: f32_eltwise_avx512.c with 8 lanes and
 * VMASKMOVPS tails (masked-off lanes are neither read nor written). Bit-identical to the
 * references; non-clamp activations run afterwards through mk_f32_act_avx2. */
#include <immintrin.h>

#include "microkernels.h"

static inline __m256 clamp(__m256 v, const mk_activation *a)
{
    if (a->code != MK_ACT_RELU)
        return v;
    __m256 z = _mm256_setzero_ps(), hi = _mm256_set1_ps(a->max);
    if (a->alpha == 0.0f)
        return _mm256_min_ps(_mm256_max_ps(v, z), hi);
    __m256 w = _mm256_add_ps(_mm256_max_ps(v, z),
                             _mm256_mul_ps(_mm256_set1_ps(a->alpha), _mm256_min_ps(v, z)));
    return _mm256_min_ps(w, hi);
}

static inline __m256i tail_mask(size_t k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void finish(const mk_activation *a, float *y, size_t i0, size_t i1)
{
    if (a->code != MK_ACT_LINEAR && a->code != MK_ACT_RELU && a->code != MK_ACT_SOFTMAX)
        mk_f32_act_avx2(a, y, i0, i1);
}

void mk_f32_add_avx2(int n, const float *const *xs, const mk_activation *act, float *y,
                     size_t i0, size_t i1)
{
    size_t i = i0;
    if (n == 2) /* the common residual add: no inner loop */
        for (const float *a = xs[0], *b = xs[1]; i + 8 <= i1; i += 8)
            _mm256_storeu_ps(y + i, clamp(_mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)), act));
    for (; i + 8 <= i1; i += 8) {
        __m256 s = _mm256_loadu_ps(xs[0] + i);
        for (int k = 1; k < n; k++)
            s = _mm256_add_ps(s, _mm256_loadu_ps(xs[k] + i));
        _mm256_storeu_ps(y + i, clamp(s, act));
    }
    if (i < i1) {
        __m256i m = tail_mask(i1 - i);
        __m256 s = _mm256_maskload_ps(xs[0] + i, m);
        for (int k = 1; k < n; k++)
            s = _mm256_add_ps(s, _mm256_maskload_ps(xs[k] + i, m));
        _mm256_maskstore_ps(y + i, m, clamp(s, act));
    }
    finish(act, y, i0, i1);
}

static void mul_run(int n, const float *const *p, const mk_activation *act, float *y,
                    size_t len)
{
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256 s = _mm256_loadu_ps(p[0] + j);
        for (int k = 1; k < n; k++)
            s = _mm256_mul_ps(s, _mm256_loadu_ps(p[k] + j));
        _mm256_storeu_ps(y + j, clamp(s, act));
    }
    if (j < len) {
        __m256i m = tail_mask(len - j);
        __m256 s = _mm256_maskload_ps(p[0] + j, m);
        for (int k = 1; k < n; k++)
            s = _mm256_mul_ps(s, _mm256_maskload_ps(p[k] + j, m));
        _mm256_maskstore_ps(y + j, m, clamp(s, act));
    }
}

/* Runs over which no broadcast input wraps: one row of C per run for a [C] gate. */
void mk_f32_multiply_avx2(int n, const float *const *xs, const size_t *counts,
                          const mk_activation *act, float *y, size_t i0, size_t i1)
{
    const float *p[8]; /* n <= 8 in the file format */
    for (size_t i = i0; i < i1;) {
        size_t run = i1 - i;
        for (int k = 0; k < n; k++) {
            size_t off = i % counts[k];
            p[k] = xs[k] + off;
            if (counts[k] - off < run)
                run = counts[k] - off;
        }
        mul_run(n, p, act, y + i, run);
        i += run;
    }
    finish(act, y, i0, i1);
}

/* Fewer channels than lanes (an RGB input's Rescaling, c = 3): a masked load and store per
 * pixel is slow on AMD (vmaskmov is microcoded), so scale and shift are repeated over 8 c
 * floats, a whole number of vectors, and the range [i0, i1) (whole pixels) runs as flat
 * vectors. */
static void affine_narrow(size_t c, const float *x, const float *scale, const float *shift,
                          const mk_activation *act, float *y, size_t i0, size_t i1)
{
    float s[8 * 7], t[8 * 7];
    size_t period = 8 * c, i = i0, k = 0;
    for (size_t j = 0; j < period; j++) {
        s[j] = scale[j % c];
        t[j] = shift[j % c];
    }
    for (; i + 8 <= i1; i += 8, k = k + 8 == period ? 0 : k + 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(s + k));
        _mm256_storeu_ps(y + i, clamp(_mm256_add_ps(v, _mm256_loadu_ps(t + k)), act));
    }
    if (i < i1) {
        __m256i m = tail_mask(i1 - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), _mm256_loadu_ps(s + k));
        _mm256_maskstore_ps(y + i, m, clamp(_mm256_add_ps(v, _mm256_loadu_ps(t + k)), act));
    }
    finish(act, y, i0, i1);
}

void mk_f32_affine_avx2(int c, const float *x, const float *scale, const float *shift,
                        const mk_activation *act, float *y, size_t i0, size_t i1)
{
    size_t cc = (size_t)c;
    if (cc < 8 && act->code != MK_ACT_SOFTMAX) {
        affine_narrow(cc, x, scale, shift, act, y, i0, i1);
        return;
    }
    for (size_t r = i0; r < i1; r += cc) {
        size_t len = i1 - r < cc ? i1 - r : cc, j = 0;
        for (; j + 8 <= len; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + r + j), _mm256_loadu_ps(scale + j));
            v = _mm256_add_ps(v, _mm256_loadu_ps(shift + j));
            _mm256_storeu_ps(y + r + j, clamp(v, act));
        }
        if (j < len) {
            __m256i m = tail_mask(len - j);
            __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + r + j, m),
                                     _mm256_maskload_ps(scale + j, m));
            v = _mm256_add_ps(v, _mm256_maskload_ps(shift + j, m));
            _mm256_maskstore_ps(y + r + j, m, clamp(v, act));
        }
        if (act->code == MK_ACT_SOFTMAX && len == cc)
            mk_f32_softmax_avx2(y + r, cc, 0, 1);
    }
    finish(act, y, i0, i1);
}
