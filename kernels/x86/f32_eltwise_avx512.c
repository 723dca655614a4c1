/* Add, multiply (with broadcast gates) and affine, AVX-512, over an element range.
 *
 * The arithmetic is the references' own, operation for operation (left-to-right sums and
 * products, x*scale then +shift without FMA), so results are bit-identical to them. The clamp
 * family is applied in registers; any other element-wise code runs over the range afterwards
 * through mk_f32_act_avx512 while it is still in cache. Softmax is not applied here (add and
 * multiply would need the tensor's channel count): the op calls mk_f32_softmax_avx512. */
#include <immintrin.h>

#include "microkernels.h"

static inline __m512 clamp(__m512 v, const mk_activation *a)
{
    if (a->code != MK_ACT_RELU)
        return v;
    __m512 z = _mm512_setzero_ps(), hi = _mm512_set1_ps(a->max);
    if (a->alpha == 0.0f)
        return _mm512_min_ps(_mm512_max_ps(v, z), hi);
    __m512 w = _mm512_add_ps(_mm512_max_ps(v, z),
                             _mm512_mul_ps(_mm512_set1_ps(a->alpha), _mm512_min_ps(v, z)));
    return _mm512_min_ps(w, hi);
}

static inline __mmask16 tail_mask(size_t k)
{
    return (__mmask16)((1u << k) - 1u);
}

static void finish(const mk_activation *a, float *y, size_t i0, size_t i1)
{
    if (a->code != MK_ACT_LINEAR && a->code != MK_ACT_RELU && a->code != MK_ACT_SOFTMAX)
        mk_f32_act_avx512(a, y, i0, i1);
}

void mk_f32_add_avx512(int n, const float *const *xs, const mk_activation *act, float *y,
                       size_t i0, size_t i1)
{
    size_t i = i0;
    if (n == 2) /* the common residual add: no inner loop */
        for (const float *a = xs[0], *b = xs[1]; i + 16 <= i1; i += 16)
            _mm512_storeu_ps(y + i, clamp(_mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)), act));
    for (; i + 16 <= i1; i += 16) {
        __m512 s = _mm512_loadu_ps(xs[0] + i);
        for (int k = 1; k < n; k++)
            s = _mm512_add_ps(s, _mm512_loadu_ps(xs[k] + i));
        _mm512_storeu_ps(y + i, clamp(s, act));
    }
    if (i < i1) {
        __mmask16 m = tail_mask(i1 - i);
        __m512 s = _mm512_maskz_loadu_ps(m, xs[0] + i);
        for (int k = 1; k < n; k++)
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, xs[k] + i));
        _mm512_mask_storeu_ps(y + i, m, clamp(s, act));
    }
    finish(act, y, i0, i1);
}

/* y[0, len) = p[0][j] * p[1][j] * ... over contiguous runs. */
static void mul_run(int n, const float *const *p, const mk_activation *act, float *y,
                    size_t len)
{
    size_t j = 0;
    for (; j + 16 <= len; j += 16) {
        __m512 s = _mm512_loadu_ps(p[0] + j);
        for (int k = 1; k < n; k++)
            s = _mm512_mul_ps(s, _mm512_loadu_ps(p[k] + j));
        _mm512_storeu_ps(y + j, clamp(s, act));
    }
    if (j < len) {
        __mmask16 m = tail_mask(len - j);
        __m512 s = _mm512_maskz_loadu_ps(m, p[0] + j);
        for (int k = 1; k < n; k++)
            s = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, p[k] + j));
        _mm512_mask_storeu_ps(y + j, m, clamp(s, act));
    }
}

/* x [rows, C] times a [C] gate (squeeze-and-excitation), rows [i0, i1) whole: row by row,
 * with the gate re-read from L1 and no modulo per row. EfficientNetB0's 32-channel gate at
 * 112x112 paid two divisions for every two vectors through the general walk below. */
static void gate_rows(const float *x, const float *g, size_t c, const mk_activation *act,
                      float *y, size_t i0, size_t i1)
{
    __mmask16 m = tail_mask(c % 16);
    for (size_t i = i0; i < i1; i += c) {
        const float *xr = x + i;
        float *yr = y + i;
        size_t j = 0;
        for (; j + 16 <= c; j += 16)
            _mm512_storeu_ps(yr + j, clamp(_mm512_mul_ps(_mm512_loadu_ps(xr + j), _mm512_loadu_ps(g + j)), act));
        if (j < c) {
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), _mm512_maskz_loadu_ps(m, g + j));
            _mm512_mask_storeu_ps(yr + j, m, clamp(v, act));
        }
    }
}

/* Walked in runs over which no broadcast input wraps: for a [C] gate over [H,W,C] that is one
 * row of C per run, so the modulo is paid per row, never per element. */
void mk_f32_multiply_avx512(int n, const float *const *xs, const size_t *counts,
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

/* Few channels that do not fill vectors (an RGB Rescaling or Normalization: c = 3) run as a
 * flat stream against scale and shift repeated over 16 pixels, instead of one masked vector
 * per pixel: EfficientNetB0's two input affines on 224x224x3 took 0.22 ms each. Same
 * multiply, then add, as the row loop below. */
#define AFFINE_PATTERN_MAX_C 64
static void affine_pattern(size_t c, const float *x, const float *scale, const float *shift,
                           const mk_activation *act, float *y, size_t i0, size_t i1)
{
    float ps[16 * AFFINE_PATTERN_MAX_C], pb[16 * AFFINE_PATTERN_MAX_C];
    const size_t period = 16 * c;
    for (size_t j = 0; j < period; j++) {
        ps[j] = scale[j % c];
        pb[j] = shift[j % c];
    }
    /* i0 is a whole number of pixels, so element i has channel (i - i0) % c. */
    size_t i = i0, q = 0;
    for (; i + 16 <= i1; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(ps + q));
        v = _mm512_add_ps(v, _mm512_loadu_ps(pb + q));
        _mm512_storeu_ps(y + i, clamp(v, act));
        q = q + 16 == period ? 0 : q + 16;
    }
    if (i < i1) {
        __mmask16 m = tail_mask(i1 - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_loadu_ps(ps + q));
        v = _mm512_add_ps(v, _mm512_loadu_ps(pb + q));
        _mm512_mask_storeu_ps(y + i, m, clamp(v, act));
    }
}

/* Row by row of c channels from i0 (a multiple of c); the last row may be partial. */
void mk_f32_affine_avx512(int c, const float *x, const float *scale, const float *shift,
                          const mk_activation *act, float *y, size_t i0, size_t i1)
{
    size_t cc = (size_t)c;
    if (cc % 16 != 0 && cc <= AFFINE_PATTERN_MAX_C && act->code != MK_ACT_SOFTMAX) {
        affine_pattern(cc, x, scale, shift, act, y, i0, i1);
        finish(act, y, i0, i1);
        return;
    }
    for (size_t r = i0; r < i1; r += cc) {
        size_t len = i1 - r < cc ? i1 - r : cc, j = 0;
        for (; j + 16 <= len; j += 16) {
            __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + r + j), _mm512_loadu_ps(scale + j));
            v = _mm512_add_ps(v, _mm512_loadu_ps(shift + j));
            _mm512_storeu_ps(y + r + j, clamp(v, act));
        }
        if (j < len) {
            __mmask16 m = tail_mask(len - j);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + r + j),
                                     _mm512_maskz_loadu_ps(m, scale + j));
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, shift + j));
            _mm512_mask_storeu_ps(y + r + j, m, clamp(v, act));
        }
        if (act->code == MK_ACT_SOFTMAX && len == cc)
            mk_f32_softmax_avx512(y + r, cc, 0, 1);
    }
    finish(act, y, i0, i1);
}
