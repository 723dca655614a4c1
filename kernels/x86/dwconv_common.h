/* Shared by the depthwise bodies, after a dwconv_vec_<isa>.h: the fused clamp activation, the
 * bounds of the unpadded columns, and the bounds-checked single-pixel path used for border
 * pixels (and for whole rows in degenerate geometries).
 *
 * Functions taking `full` (and the bodies' tap-layout flags) are always_inline so that each
 * call site with constant flags compiles to its own branch-free copy. */
#ifndef MORSEL_DWCONV_COMMON_H
#define MORSEL_DWCONV_COMMON_H

#include <math.h>
#include <stddef.h>

#include "microkernels.h"

/* Sanitizer builds (ASan, UBSan, TSan, fuzzing) compile the same code without the forced
 * inlining and unrolling: instrumenting every unrolled copy took clang over 10 minutes per
 * file, and those builds test behaviour, not speed. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define DW_SANITIZED 1
#endif
#endif

#ifdef DW_SANITIZED
#define DW_INLINE static inline
#define DW_UNROLL
#else
#define DW_INLINE static inline __attribute__((always_inline))
/* Loops over tile pixels, taps and tap rows have constant trip counts once inlined; fully
 * unrolled, their accumulator and weight arrays live in registers. clang 14 does not act on
 * the GCC spelling (it kept the accumulators on the stack, 4x slower). */
#if defined(__clang__)
#define DW_UNROLL _Pragma("clang loop unroll(full)")
#else
#define DW_UNROLL _Pragma("GCC unroll 32")
#endif
#endif

/* kind 0: linear; 1: max(x,0) then min(., hi); 2: adds alpha*min(x,0) before the clip.
 * min(v, +INF) is v, so a ReLU without max_value needs no separate case. */
typedef struct dw_act {
    int kind;
    dw_vf zero, alpha, hi;
} dw_act;

static inline dw_act dw_act_make(const mk_activation *a)
{
    dw_act r;
    r.kind = a->code != MK_ACT_RELU ? 0 : a->alpha == 0.0f ? 1 : 2;
    r.zero = dw_zero();
    r.alpha = dw_set1(a->alpha);
    r.hi = dw_set1(a->max);
    return r;
}

/* The tap sum plus the bias, then the activation, as mk_depthwise_ref orders them. One of
 * max(v,0) and min(v,0) is zero, so the FMA rounds exactly like the reference's p + alpha*q. */
DW_INLINE void dw_finish(const dw_act *a, const float *b, dw_vf v, float *y, dw_mask m, int full)
{
    if (b)
        v = dw_add(v, dw_load(b, m, full));
    if (a->kind != 0) {
        dw_vf p = dw_max(v, a->zero);
        if (a->kind == 2)
            p = dw_fma(a->alpha, dw_min(v, a->zero), p);
        v = dw_min(p, a->hi);
    }
    dw_store(y, v, m, full);
}

/* Output columns [*lo, *hi) whose every tap column lies inside the input. */
static inline void dw_interior_cols(const mk_window *g, int *lo, int *hi)
{
    int l = (g->pad_left + g->sw - 1) / g->sw;
    int last = g->in_w - 1 - (g->kw - 1) * g->dw + g->pad_left; /* largest ox*sw allowed */
    int h = last < 0 ? 0 : last / g->sw + 1;
    l = l < g->out_w ? l : g->out_w;
    h = h < g->out_w ? h : g->out_w;
    *lo = l;
    *hi = h > l ? h : l;
}

/* One output pixel's channels [c0, c0 + lanes), every tap checked against the input. b and
 * y point at channel c0 already. */
DW_INLINE void dw_pixel(const mk_window *g, const float *x, const float *w, const float *b,
                        const dw_act *a, float *y, int oy, int ox, size_t c0, dw_mask m,
                        int full)
{
    size_t c = (size_t)g->in_c;
    int y0 = oy * g->sh - g->pad_top, x0 = ox * g->sw - g->pad_left;
    dw_vf acc = dw_zero();
    for (int ky = 0; ky < g->kh; ky++) {
        int iy = y0 + ky * g->dh;
        if (iy < 0 || iy >= g->in_h)
            continue;
        for (int kx = 0; kx < g->kw; kx++) {
            int ix = x0 + kx * g->dw;
            if (ix < 0 || ix >= g->in_w)
                continue;
            const float *xp = x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * c + c0;
            const float *wp = w + ((size_t)ky * (size_t)g->kw + (size_t)kx) * c + c0;
            acc = dw_fma(dw_load(xp, m, full), dw_load(wp, m, full), acc);
        }
    }
    dw_finish(a, b, acc, y, m, full);
}

/* Pixels [ox0, ox1) of output row oy, channels [c0, c0 + lanes), through dw_pixel. */
DW_INLINE void dw_pixels(const mk_window *g, const float *x, const float *w, const float *b,
                         const dw_act *a, float *yrow, int oy, int ox0, int ox1, size_t c0,
                         dw_mask m, int full)
{
    size_t c = (size_t)g->in_c;
    for (int ox = ox0; ox < ox1; ox++)
        dw_pixel(g, x, w, b, a, yrow + (size_t)ox * c + c0, oy, ox, c0, m, full);
}

#endif
