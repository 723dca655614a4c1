/* Max / average pooling and global pools, AVX2: f32_pool_avx512.c with 8 lanes and VMASKMOVPS
 * tails. Same tap order as the references, so bit-identical to them (see there). */
#include <immintrin.h>
#include <math.h>

#include "microkernels.h"

static inline void clip(int o, int d, int k, int n, int *lo, int *hi)
{
    int a = o >= 0 ? 0 : (-o + d - 1) / d;
    int b = n - o <= 0 ? 0 : (n - o + d - 1) / d;
    *lo = a;
    *hi = b < k ? b : k;
}

static inline __m256i tail_mask(size_t k)
{
    int kk = k >= 8 ? 8 : (int)k;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(kk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define VEC __m256
#define MTYPE __m256i
#define LANES 8
#define SETZERO _mm256_setzero_ps()
#define SETINF _mm256_set1_ps(-INFINITY)
#define SET1 _mm256_set1_ps
#define ADD _mm256_add_ps
#define MAX _mm256_max_ps
#define DIV _mm256_div_ps
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define LOADM(p) _mm256_maskload_ps(p, m)
#define STOREM(p, v) _mm256_maskstore_ps(p, m, v)

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

void mk_f32_maxpool_avx2(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 0);
}

void mk_f32_avgpool_avx2(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 1);
}

void mk_f32_global_avgpool_avx2(int hw, int c, const float *x, float *y, int c0, int c1)
{
    size_t cc = (size_t)c, n = (size_t)hw;
    __m256d dn = _mm256_set1_pd((double)n);
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 8) {
        __m256i m = tail_mask((size_t)c1 - ch);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (size_t p = 0; p < n; p++) {
            __m256 v = _mm256_maskload_ps(x + p * cc + ch, m);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        __m128 lo = _mm256_cvtpd_ps(_mm256_div_pd(s0, dn));
        __m128 hi = _mm256_cvtpd_ps(_mm256_div_pd(s1, dn));
        _mm256_maskstore_ps(y + ch, m, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
    }
}

void mk_f32_global_sum_avx2(int c, const float *x, size_t p0, size_t p1, double *acc)
{
    size_t cc = (size_t)c;
    for (size_t ch = 0; ch < cc; ch += 8) {
        __m256i m = tail_mask(cc - ch);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (size_t p = p0; p < p1; p++) {
            __m256 v = _mm256_maskload_ps(x + p * cc + ch, m);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double d[8];
        _mm256_storeu_pd(d, s0);
        _mm256_storeu_pd(d + 4, s1);
        for (size_t i = 0; i < 8 && ch + i < cc; i++)
            acc[ch + i] = d[i];
    }
}

void mk_f32_global_maxpool_avx2(int hw, int c, const float *x, float *y, int c0, int c1)
{
    size_t cc = (size_t)c, n = (size_t)hw;
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 8) {
        __m256i m = tail_mask((size_t)c1 - ch);
        __m256 acc = _mm256_maskload_ps(x + ch, m);
        for (size_t p = 1; p < n; p++)
            acc = _mm256_max_ps(_mm256_maskload_ps(x + p * cc + ch, m), acc);
        _mm256_maskstore_ps(y + ch, m, acc);
    }
}
