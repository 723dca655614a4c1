/* Depthwise convolution (multiplier 1), NEON, over output rows [oy0, oy1): the mk_dwconv_fn
 * contract of microkernels.h. Channels go 4 to a vector (the last C % 4 one lane at a time);
 * each output is the taps summed in the reference's order (ky, then kx), fused multiply-adds,
 * then the bias, then the clamp.
 *
 * 3x3 stride 1 / 2: per row and channel block the 9 weight vectors stay in registers while the
 * row's pixels stream past; a pixel whose window is cut by the padding takes the general path,
 * which skips the taps outside the input (they add exact zeros in the reference too). */
#include <math.h>

#include "microkernels.h"
#include "neon_util.h"

/* Taps [lo, hi) of a k-tap window starting at o (stride d) that fall inside [0, n). */
static inline void clip(int o, int d, int k, int n, int *lo, int *hi)
{
    int a = o >= 0 ? 0 : (-o + d - 1) / d;
    int b = n - o <= 0 ? 0 : (n - o + d - 1) / d;
    *lo = a;
    *hi = b < k ? b : k;
}

/* One output pixel, any window: channels [0, C). */
static void pixel(const mk_window *g, const float *x, const float *w, const float *b,
                  const mk_activation *act, const nu_clamp *e, float *yr, int oy, int ox)
{
    size_t c = (size_t)g->in_c, row = (size_t)g->in_w * c;
    int iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left, ky0, ky1, kx0, kx1;
    clip(iy0, g->dh, g->kh, g->in_h, &ky0, &ky1);
    clip(ix0, g->dw, g->kw, g->in_w, &kx0, &kx1);
    size_t ch = 0;
    for (; ch + 4 <= c; ch += 4) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (int ky = ky0; ky < ky1; ky++) {
            const float *xr = x + (size_t)(iy0 + ky * g->dh) * row + ch;
            const float *wr = w + (size_t)ky * (size_t)g->kw * c + ch;
            for (int kx = kx0; kx < kx1; kx++)
                acc = vfmaq_f32(acc, vld1q_f32(xr + (size_t)(ix0 + kx * g->dw) * c),
                                vld1q_f32(wr + (size_t)kx * c));
        }
        if (b)
            acc = vaddq_f32(acc, vld1q_f32(b + ch));
        vst1q_f32(yr + ch, nu_apply(acc, e));
    }
    for (; ch < c; ch++) {
        float s = 0.0f;
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++)
                s = fmaf(x[(size_t)(iy0 + ky * g->dh) * row + (size_t)(ix0 + kx * g->dw) * c + ch],
                         w[((size_t)ky * (size_t)g->kw + (size_t)kx) * c + ch], s);
        yr[ch] = nu_apply1(b ? s + b[ch] : s, act);
    }
}

void mk_f32_dwconv_neon(const mk_window *g, const float *x, const float *w, const float *b,
                        const mk_activation *act, float *y, int oy0, int oy1)
{
    nu_clamp e = nu_clamp_of(act);
    size_t c = (size_t)g->in_c;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            pixel(g, x, w, b, act, &e, y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * c, oy,
                  ox);
}

/* 3x3 at stride s (constant after inlining). */
static inline __attribute__((always_inline)) void
dw3x3(const int s, const mk_window *g, const float *x, const float *w, const float *b,
      const mk_activation *act, float *y, int oy0, int oy1)
{
    nu_clamp e = nu_clamp_of(act);
    size_t c = (size_t)g->in_c, row = (size_t)g->in_w * c, body = c & ~(size_t)3;
    /* Output columns [ox_lo, ox_hi) have all three taps inside the row. */
    int ox_lo = (g->pad_left + s - 1) / s;
    int ox_hi = g->in_w - 3 + g->pad_left < 0 ? 0 : (g->in_w - 3 + g->pad_left) / s + 1;
    if (ox_hi > g->out_w)
        ox_hi = g->out_w;
    if (ox_lo > ox_hi)
        ox_lo = ox_hi;
    for (int oy = oy0; oy < oy1; oy++) {
        int iy0 = oy * s - g->pad_top;
        float *yrow = y + (size_t)oy * (size_t)g->out_w * c;
        if (iy0 < 0 || iy0 + 3 > g->in_h) { /* a padded row: the general path */
            for (int ox = 0; ox < g->out_w; ox++)
                pixel(g, x, w, b, act, &e, yrow + (size_t)ox * c, oy, ox);
            continue;
        }
        for (int ox = 0; ox < ox_lo; ox++)
            pixel(g, x, w, b, act, &e, yrow + (size_t)ox * c, oy, ox);
        for (int ox = ox_hi; ox < g->out_w; ox++)
            pixel(g, x, w, b, act, &e, yrow + (size_t)ox * c, oy, ox);
        const float *x0 = x + (size_t)iy0 * row, *x1 = x0 + row, *x2 = x1 + row;
        for (size_t ch = 0; ch < body; ch += 4) {
            float32x4_t w00 = vld1q_f32(w + ch), w01 = vld1q_f32(w + c + ch),
                        w02 = vld1q_f32(w + 2 * c + ch), w10 = vld1q_f32(w + 3 * c + ch),
                        w11 = vld1q_f32(w + 4 * c + ch), w12 = vld1q_f32(w + 5 * c + ch),
                        w20 = vld1q_f32(w + 6 * c + ch), w21 = vld1q_f32(w + 7 * c + ch),
                        w22 = vld1q_f32(w + 8 * c + ch);
            float32x4_t bv = b ? vld1q_f32(b + ch) : vdupq_n_f32(0.0f);
            for (int ox = ox_lo; ox < ox_hi; ox++) {
                size_t o = (size_t)(ox * s - g->pad_left) * c + ch;
                float32x4_t acc = vmulq_f32(vld1q_f32(x0 + o), w00);
                acc = vfmaq_f32(acc, vld1q_f32(x0 + o + c), w01);
                acc = vfmaq_f32(acc, vld1q_f32(x0 + o + 2 * c), w02);
                acc = vfmaq_f32(acc, vld1q_f32(x1 + o), w10);
                acc = vfmaq_f32(acc, vld1q_f32(x1 + o + c), w11);
                acc = vfmaq_f32(acc, vld1q_f32(x1 + o + 2 * c), w12);
                acc = vfmaq_f32(acc, vld1q_f32(x2 + o), w20);
                acc = vfmaq_f32(acc, vld1q_f32(x2 + o + c), w21);
                acc = vfmaq_f32(acc, vld1q_f32(x2 + o + 2 * c), w22);
                if (b)
                    acc = vaddq_f32(acc, bv);
                vst1q_f32(yrow + (size_t)ox * c + ch, nu_apply(acc, &e));
            }
        }
        if (body < c) /* the last C % 4 channels of the interior pixels */
            for (int ox = ox_lo; ox < ox_hi; ox++) {
                size_t o = (size_t)(ox * s - g->pad_left) * c;
                for (size_t ch = body; ch < c; ch++) {
                    float acc = 0.0f;
                    for (int k = 0; k < 9; k++) {
                        const float *xr = x0 + (size_t)(k / 3) * row + (size_t)(k % 3) * c;
                        acc = fmaf(xr[o + ch], w[(size_t)k * c + ch], acc);
                    }
                    yrow[(size_t)ox * c + ch] = nu_apply1(b ? acc + b[ch] : acc, act);
                }
            }
    }
}

void mk_f32_dwconv3x3_s1_neon(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1)
{
    dw3x3(1, g, x, w, b, act, y, oy0, oy1);
}

void mk_f32_dwconv3x3_s2_neon(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1)
{
    dw3x3(2, g, x, w, b, act, y, oy0, oy1);
}
