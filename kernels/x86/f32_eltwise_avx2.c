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

/* x [rows, C] times a [C] gate (squeeze-and-excitation), rows [i0, i1) whole: row by row,
 * with the gate re-read from L1 and no modulo per row. EfficientNetB0's 32-channel gate at
 * 112x112 paid two divisions for every two vectors through the general walk below. */
static void gate_rows(const float *x, const float *g, size_t c, const mk_activation *act,
                      float *y, size_t i0, size_t i1)
{
    __m256i m = tail_mask(c % 8);
    for (size_t i = i0; i < i1; i += c) {
        const float *xr = x + i;
        float *yr = y + i;
        size_t j = 0;
        for (; j + 8 <= c; j += 8)
            _mm256_storeu_ps(yr + j, clamp(_mm256_mul_ps(_mm256_loadu_ps(xr + j), _mm256_loadu_ps(g + j)), act));
        if (j < c) {
            __m256 v = _mm256_mul_ps(_mm256_maskload_ps(xr + j, m), _mm256_maskload_ps(g + j, m));
            _mm256_maskstore_ps(yr + j, m, clamp(v, act));
        }
    }
}

/* Runs over which no broadcast input wraps: one row of C per run for a [C] gate. */
void mk_f32_multiply_avx2(int n, const float *const *xs, const size_t *counts,
                          const mk_activation *act, float *y, size_t i0, size_t i1)
{
    const float *p[8]; /* n <= 8 in the file format */
    if (n == 2 && counts[0] != counts[1]) {
        int gi = counts[0] < counts[1] ? 0 : 1; /* the gate; x*g == g*x exactly */
        size_t c = counts[gi];
        if (counts[1 - gi] >= i1 && i0 % c == 0 && (i1 - i0) % c == 0) {
            gate_rows(xs[1 - gi], xs[gi], c, act, y, i0, i1);
            finish(act, y, i0, i1);
            return;
        }
    }
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

/* Few channels that are not a multiple of 8 (an RGB input's Rescaling or Normalization): a
 * masked load and store per pixel cost 2 ms on a 224x224x3 input on Zen 3, where vmaskmov
 * stores are microcoded. Instead, scale and shift repeat with a period of 8c floats, a whole
 * number of vectors, so the flat range runs in full vectors with one masked tail. */
#define AFFINE_PATTERN_MAX_C 64
static void affine_pattern(size_t c, const float *x, const float *scale, const float *shift,
                           const mk_activation *act, float *y, size_t i0, size_t i1)
{
    float ps[8 * AFFINE_PATTERN_MAX_C], pb[8 * AFFINE_PATTERN_MAX_C];
    const size_t period = 8 * c;
    for (size_t j = 0; j < period; j++) {
        ps[j] = scale[j % c];
        pb[j] = shift[j % c];
    }
    /* i0 is a whole number of pixels, so element i has channel (i - i0) % c. */
    size_t i = i0, q = 0;
    for (; i + 8 <= i1; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(ps + q));
        v = _mm256_add_ps(v, _mm256_loadu_ps(pb + q));
        _mm256_storeu_ps(y + i, clamp(v, act));
        q = q + 8 == period ? 0 : q + 8;
    }
    if (i < i1) {
        __m256i m = tail_mask(i1 - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), _mm256_loadu_ps(ps + q));
        v = _mm256_add_ps(v, _mm256_loadu_ps(pb + q));
        _mm256_maskstore_ps(y + i, m, clamp(v, act));
    }
}

void mk_f32_affine_avx2(int c, const float *x, const float *scale, const float *shift,
                        const mk_activation *act, float *y, size_t i0, size_t i1)
{
    size_t cc = (size_t)c;
    if (cc % 8 != 0 && cc <= AFFINE_PATTERN_MAX_C && act->code != MK_ACT_SOFTMAX) {
        affine_pattern(cc, x, scale, shift, act, y, i0, i1);
        finish(act, y, i0, i1);
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
