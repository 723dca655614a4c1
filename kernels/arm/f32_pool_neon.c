/* Max / average pooling and global pools, NEON: kernels/x86/f32_pool_avx2.c with 4 lanes.
 * Same taps in the same order as the references, the reference's max (a > b ? a : b) and a
 * true division, so bit-identical to them. */
#include <math.h>

#include "microkernels.h"
#include "neon_util.h"

static inline void clip(int o, int d, int k, int n, int *lo, int *hi)
{
    int a = o >= 0 ? 0 : (-o + d - 1) / d;
    int b = n - o <= 0 ? 0 : (n - o + d - 1) / d;
    *lo = a;
    *hi = b < k ? b : k;
}

/* One clipped window over channels [ch, ch + 4 nv) (the last vector `m` lanes wide);
 * nv accumulators hide the add/compare latency. */
static inline __attribute__((always_inline)) void
window(const int nv, int m, int avg, const mk_window *g, const float *base, size_t row,
       size_t sx, int iy0, int ky0, int ky1, int kx0, int kx1, float32x4_t d, float *yr)
{
    float32x4_t acc[4];
    for (int q = 0; q < nv; q++)
        acc[q] = vdupq_n_f32(avg ? 0.0f : -INFINITY);
    for (int ky = ky0; ky < ky1; ky++) {
        const float *p = base + (size_t)(iy0 + ky * g->dh) * row;
        for (int kx = kx0; kx < kx1; kx++, p += sx)
            for (int q = 0; q < nv; q++) {
                float32x4_t v = q == nv - 1 ? nu_load_n(p + 4 * q, m) : vld1q_f32(p + 4 * q);
                acc[q] = avg ? vaddq_f32(acc[q], v) : nu_max_ref(v, acc[q]);
            }
    }
    for (int q = 0; q < nv; q++)
        nu_store_n(yr + 4 * q, avg ? nu_div(acc[q], d) : acc[q], q == nv - 1 ? m : 4);
}

static void pool_rows(const mk_window *g, const float *x, float *y, int oy0, int oy1, int avg)
{
    size_t c = (size_t)g->in_c, row = (size_t)g->in_w * c, sx = (size_t)g->dw * c;
    for (int oy = oy0; oy < oy1; oy++) {
        int iy0 = oy * g->sh - g->pad_top, ky0, ky1;
        clip(iy0, g->dh, g->kh, g->in_h, &ky0, &ky1);
        for (int ox = 0; ox < g->out_w; ox++) {
            int ix0 = ox * g->sw - g->pad_left, kx0, kx1;
            clip(ix0, g->dw, g->kw, g->in_w, &kx0, &kx1);
            float *yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * c;
            const float *base = x + (size_t)(ix0 + kx0 * g->dw) * c;
            int cells = (ky1 - ky0) * (kx1 - kx0);
            float32x4_t d = vdupq_n_f32((float)(cells ? cells : 1));
            size_t ch = 0;
            for (; ch + 16 <= c; ch += 16)
                window(4, 4, avg, g, base + ch, row, sx, iy0, ky0, ky1, kx0, kx1, d, yr + ch);
            for (; ch < c; ch += 4) {
                int m = c - ch < 4 ? (int)(c - ch) : 4;
                window(1, m, avg, g, base + ch, row, sx, iy0, ky0, ky1, kx0, kx1, d, yr + ch);
            }
        }
    }
}

void mk_f32_maxpool_neon(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 0);
}

void mk_f32_avgpool_neon(const mk_window *g, const float *x, float *y, int oy0, int oy1)
{
    pool_rows(g, x, y, oy0, oy1, 1);
}

/* Sums in double, as the reference: AArch64 widens in registers, ARMv7 lane by lane. */
void mk_f32_global_avgpool_neon(int hw, int c, const float *x, float *y, int c0, int c1)
{
#if defined(__aarch64__)
    size_t cc = (size_t)c, n = (size_t)hw;
    float64x2_t dn = vdupq_n_f64((double)n);
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 4) {
        int m = (size_t)c1 - ch < 4 ? (int)((size_t)c1 - ch) : 4;
        float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
        for (size_t p = 0; p < n; p++) {
            float32x4_t v = nu_load_n(x + p * cc + ch, m);
            s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(v)));
            s1 = vaddq_f64(s1, vcvt_high_f64_f32(v));
        }
        float32x4_t r = vcombine_f32(vcvt_f32_f64(vdivq_f64(s0, dn)),
                                     vcvt_f32_f64(vdivq_f64(s1, dn)));
        nu_store_n(y + ch, r, m);
    }
#else
    size_t cc = (size_t)c, n = (size_t)hw;
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch++) {
        double s = 0.0;
        for (size_t p = 0; p < n; p++)
            s += x[p * cc + ch];
        y[ch] = (float)(s / (double)n);
    }
#endif
}

void mk_f32_global_maxpool_neon(int hw, int c, const float *x, float *y, int c0, int c1)
{
    size_t cc = (size_t)c, n = (size_t)hw;
    for (size_t ch = (size_t)c0; ch < (size_t)c1; ch += 4) {
        int m = (size_t)c1 - ch < 4 ? (int)((size_t)c1 - ch) : 4;
        float32x4_t acc = nu_load_n(x + ch, m);
        for (size_t p = 1; p < n; p++)
            acc = nu_max_ref(nu_load_n(x + p * cc + ch, m), acc);
        nu_store_n(y + ch, acc, m);
    }
}
