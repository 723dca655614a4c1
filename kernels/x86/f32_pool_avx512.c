/* Max / average pooling and global pools, AVX-512, vectorised across channels (16 a vector,
 * the last one masked).
 *
 * Each output pixel's window is clipped to the input once (taps outside it are skipped, as in
 * the references: padding never wins a max, and the average divides by the real cells), then
 * every channel vector walks the clipped taps in the references' order, ky then kx. Max and
 * windowed average are therefore bit-identical to mk_maxpool_ref / mk_avgpool_ref; the global
 * average accumulates in double in the reference's order, so it is bit-identical too. */
#include <immintrin.h>
#include <math.h>

#include "microkernels.h"

/* Taps k in [*lo, *hi) whose coordinate o + k*d lands in [0, n). */
static inline void clip(int o, int d, int k, int n, int *lo, int *hi)
{
    int a = o >= 0 ? 0 : (-o + d - 1) / d;
    int b = n - o <= 0 ? 0 : (n - o + d - 1) / d;
    *lo = a;
    *hi = b < k ? b : k;
}

static inline __mmask16 tail_mask(size_t k)
{
    return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1u);
}

#define VEC __m512
#define MTYPE __mmask16
#define LANES 16
#define SETZERO _mm512_setzero_ps()
#define SETINF _mm512_set1_ps(-INFINITY)
#define SET1 _mm512_set1_ps
#define ADD _mm512_add_ps
#define MAX _mm512_max_ps
#define DIV _mm512_div_ps
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define LOADM(p) _mm512_maskz_loadu_ps(m, p)
#define STOREM(p, v) _mm512_mask_storeu_ps(p, m, v)

/* One clipped window over NV channel vectors from ch; NV independent accumulators hide the
 * add/max latency. avg = 0: max, taps outside never seen; avg = 1: sum / cells. The last
 * partial vector goes through the masked variant. */
#define WINDOW(NV, LOAD, STORE)                                                                 \
    do {                                                                                        \
        VEC acc[NV];                                                                            \
        for (int q = 0; q < NV; q++)                                                            \
            acc[q] = avg ? SETZERO : SETINF;                                                    \
        for (int ky = ky0; ky < ky1; ky++) {                                                    \
            const float *p = base + (size_t)(iy0 + ky * g->dh) * row + ch;                      \
            for (int kx = kx0; kx < kx1; kx++, p += sx)                                         \
                for (int q = 0; q < NV; q++) {                                                  \
                    VEC v = LOAD(p + q * LANES);                                                \
                    acc[q] = avg ? ADD(acc[q], v) : MAX(v, acc[q]);                             \
                }                                                                               \
        }                                                                                       \
        for (int q = 0; q < NV; q++)                                                            \
            STORE(yr + ch + q * LANES, avg ? DIV(acc[q], d) : acc[q]);                          \
    } while (0)

static void pool_rows(const mk_window *g, const float *x, float *y, int oy0, int oy1, int avg)
{
    size_t c = (size_t)g->in_c, row = (size_t)g->in_w * c;
    size_t sx = (size_t)g->dw * c;
    MTYPE m = tail_mask(c % LANES);
    for (int oy = oy0; oy < oy1; oy++) {
        int iy0 = oy * g->sh - g->pad_top, ky0, ky1;
        clip(iy0, g->dh, g->kh, g->in_h, &ky0, &ky1);
        for (int ox = 0; ox < g->out_w; ox++) {
            int ix0 = ox * g->sw - g->pad_left, kx0, kx1;
            clip(ix0, g->dw, g->kw, g->in_w, &kx0, &kx1);
            float *yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * c;
            const float *base = x + (size_t)(ix0 + kx0 * g->dw) * c;
            int cells = (ky1 - ky0) * (kx1 - kx0);
            VEC d = SET1((float)(cells ? cells : 1));
            size_t ch = 0;
            for (; ch + 4 * LANES <= c; ch += 4 * LANES)
                WINDOW(4, LOADU, STOREU);
            for (; ch + LANES <= c; ch += LANES)
                WINDOW(1, LOADU, STOREU);
            if (ch < c)
                WINDOW(1, LOADM, STOREM);
        }
    }
}

void mk_f32_maxpool_avx512(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 0);
}

void mk_f32_avgpool_avx512(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 1);
}

/* Per 16 channels: two 8-lane double sums over the hw positions, in order. */
void mk_f32_global_avgpool_avx512(int hw, int c, const float *x, float *y, int c0, int c1)
{
    size_t cc = (size_t)c, n = (size_t)hw;
    __m512d dn = _mm512_set1_pd((double)n);
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 16) {
        __mmask16 m = tail_mask((size_t)c1 - ch);
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (size_t p = 0; p < n; p++) {
            __m512 v = _mm512_maskz_loadu_ps(m, x + p * cc + ch);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
        }
        __m256 lo = _mm512_cvtpd_ps(_mm512_div_pd(s0, dn));
        __m256 hi = _mm512_cvtpd_ps(_mm512_div_pd(s1, dn));
        _mm512_mask_storeu_ps(y + ch, m, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
    }
}

void mk_f32_global_sum_avx512(int c, const float *x, size_t p0, size_t p1, double *acc)
{
    size_t cc = (size_t)c;
    for (size_t ch = 0; ch < cc; ch += 16) {
        __mmask16 m = tail_mask(cc - ch);
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (size_t p = p0; p < p1; p++) {
            __m512 v = _mm512_maskz_loadu_ps(m, x + p * cc + ch);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
        }
        _mm512_mask_storeu_pd(acc + ch, (__mmask8)m, s0);
        _mm512_mask_storeu_pd(acc + ch + 8, (__mmask8)(m >> 8), s1);
    }
}

void mk_f32_global_maxpool_avx512(int hw, int c, const float *x, float *y, int c0, int c1)
{
    size_t cc = (size_t)c, n = (size_t)hw;
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 16) {
        __mmask16 m = tail_mask((size_t)c1 - ch);
        __m512 acc = _mm512_maskz_loadu_ps(m, x + ch);
        for (size_t p = 1; p < n; p++)
            acc = _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + p * cc + ch), acc);
        _mm512_mask_storeu_ps(y + ch, m, acc);
    }
}
