/* Helpers shared by the NEON kernels (kernels/arm/, files named *_neon.c). The same sources
 * build for AArch64 (NEON is baseline) and 32-bit ARMv7 with -mfpu=neon-vfpv4 (run only when the CPU reports
 * NEON). Where ARMv7 lacks an AArch64 instruction the fallback gives the same bits.
 *
 * The clamp family follows the reference's comparisons exactly (kernels/ref/activation.c):
 * x > 0 ? x : 0 maps NaN to 0, as does FMAXNM; x < hi ? x : hi. */
#ifndef MORSEL_NEON_UTIL_H
#define MORSEL_NEON_UTIL_H

#include <arm_neon.h>
#include <stddef.h>

#include "kernels.h"

/* x > 0 ? x : 0 (NaN -> +0, -0 -> +0). */
static inline float32x4_t nu_pos(float32x4_t x)
{
    float32x4_t z = vdupq_n_f32(0.0f);
    return vbslq_f32(vcgtq_f32(x, z), x, z);
}

/* x < 0 ? x : 0 */
static inline float32x4_t nu_neg(float32x4_t x)
{
    float32x4_t z = vdupq_n_f32(0.0f);
    return vbslq_f32(vcltq_f32(x, z), x, z);
}

/* x < hi ? x : hi */
static inline float32x4_t nu_below(float32x4_t x, float32x4_t hi)
{
    return vbslq_f32(vcltq_f32(x, hi), x, hi);
}

/* The fused clamp family: LINEAR is a no-op, RELU is min(max(x,0) + alpha*min(x,0), max)
 * with the product and the sum rounded separately, as the reference does. */
typedef struct nu_clamp {
    int on, leaky;
    float32x4_t alpha, hi;
} nu_clamp;

static inline nu_clamp nu_clamp_of(const mk_activation *a)
{
    nu_clamp c = {0, 0, vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    if (a && a->code == MK_ACT_RELU) {
        c.on = 1;
        c.leaky = a->alpha != 0.0f;
        c.alpha = vdupq_n_f32(a->alpha);
        c.hi = vdupq_n_f32(a->max);
    }
    return c;
}

static inline float32x4_t nu_apply(float32x4_t v, const nu_clamp *c)
{
    if (!c->on)
        return v;
    float32x4_t p = nu_pos(v);
    if (c->leaky)
        p = vaddq_f32(p, vmulq_f32(c->alpha, nu_neg(v)));
    return nu_below(p, c->hi);
}

static inline float nu_apply1(float v, const mk_activation *a)
{
    if (!a || a->code != MK_ACT_RELU)
        return v;
    float p = v > 0.0f ? v : 0.0f, q = v < 0.0f ? v : 0.0f;
    if (a->alpha != 0.0f)
        p = p + a->alpha * q;
    return p < a->max ? p : a->max;
}

/* The first n (0..4) floats of p, the other lanes 0; never reads past p + n. */
static inline float32x4_t nu_load_n(const float *p, int n)
{
    if (n >= 4)
        return vld1q_f32(p);
    float32x4_t v = vdupq_n_f32(0.0f);
    if (n > 0)
        v = vld1q_lane_f32(p, v, 0);
    if (n > 1)
        v = vld1q_lane_f32(p + 1, v, 1);
    if (n > 2)
        v = vld1q_lane_f32(p + 2, v, 2);
    return v;
}

/* Stores the first n (0..4) lanes; never writes past p + n. */
static inline void nu_store_n(float *p, float32x4_t v, int n)
{
    if (n >= 4) {
        vst1q_f32(p, v);
        return;
    }
    if (n > 0)
        vst1q_lane_f32(p, v, 0);
    if (n > 1)
        vst1q_lane_f32(p + 1, v, 1);
    if (n > 2)
        vst1q_lane_f32(p + 2, v, 2);
}

/* a / b, correctly rounded (ARMv7 has no vector divide: four scalar ones). */
static inline float32x4_t nu_div(float32x4_t a, float32x4_t b)
{
#if defined(__aarch64__)
    return vdivq_f32(a, b);
#else
    float x[4], y[4];
    vst1q_f32(x, a);
    vst1q_f32(y, b);
    for (int i = 0; i < 4; i++)
        x[i] /= y[i];
    return vld1q_f32(x);
#endif
}

/* a > b ? a : b lane-wise, the reference's max (keeps b on NaN and on equal zeros). */
static inline float32x4_t nu_max_ref(float32x4_t a, float32x4_t b)
{
    return vbslq_f32(vcgtq_f32(a, b), a, b);
}

#endif
