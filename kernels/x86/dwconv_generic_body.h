/* Depthwise convolution of any kh x kw, stride and dilation (multiplier 1), in the vocabulary of
 * a dwconv_vec_<isa>.h; included once by each f32_dwconv_<isa>.c.
 *
 * Order of work: output row, block of `lanes` channels, pixels. The tap rows that fall in the
 * padding are dropped for the whole row (iy is monotonic in ky, so the present ones are a
 * range), so only the padded columns need the bounds-checked dw_pixel. Unpadded pixels go in
 * tiles of DW_TG: each weight vector is loaded once per tap and feeds the tile's accumulators;
 * the taps of a pixel are summed in the reference's order. */
#ifndef MORSEL_DWCONV_GENERIC_BODY_H
#define MORSEL_DWCONV_GENERIC_BODY_H

#include "dwconv_common.h"

/* T output pixels from column ox, tap rows [ky0, ky1) present, x and w at channel c0. */
DW_INLINE void dwg_tile(const mk_window *g, const float *x, const float *w, const float *b,
                        const dw_act *a, float *y, int iy0, int ky0, int ky1, int ox,
                        dw_mask m, int full, int T)
{
    size_t c = (size_t)g->in_c;
    size_t xs = (size_t)g->sw * c, xd = (size_t)g->dw * c;
    dw_vf acc[8];
    DW_UNROLL
    for (int t = 0; t < T; t++)
        acc[t] = dw_zero();
    for (int ky = ky0; ky < ky1; ky++) {
        size_t iy = (size_t)(iy0 + ky * g->dh);
        const float *xr = x + (iy * (size_t)g->in_w + (size_t)(ox * g->sw - g->pad_left)) * c;
        const float *wr = w + (size_t)ky * (size_t)g->kw * c;
        for (int kx = 0; kx < g->kw; kx++) {
            dw_vf wv = dw_load(wr + (size_t)kx * c, m, full);
            const float *xp = xr + (size_t)kx * xd;
            DW_UNROLL
            for (int t = 0; t < T; t++)
                acc[t] = dw_fma(dw_load(xp + (size_t)t * xs, m, full), wv, acc[t]);
        }
    }
    DW_UNROLL
    for (int t = 0; t < T; t++)
        dw_finish(a, b, acc[t], y + (size_t)t * c, m, full);
}

DW_INLINE void dwg_row(const mk_window *g, const float *x, const float *w, const float *b,
                       const dw_act *a, float *yrow, int oy, int lo, int hi, size_t c0,
                       dw_mask m, int full)
{
    size_t c = (size_t)g->in_c;
    int iy0 = oy * g->sh - g->pad_top;
    int ky0 = 0, ky1 = g->kh;
    while (ky0 < ky1 && iy0 + ky0 * g->dh < 0)
        ky0++;
    while (ky1 > ky0 && iy0 + (ky1 - 1) * g->dh >= g->in_h)
        ky1--;
    const float *bc = b ? b + c0 : NULL;

    dw_pixels(g, x, w, bc, a, yrow, oy, 0, lo, c0, m, full);
    int ox = lo;
    for (; ox + DW_TG <= hi; ox += DW_TG)
        dwg_tile(g, x + c0, w + c0, bc, a, yrow + (size_t)ox * c + c0, iy0, ky0, ky1, ox, m,
                 full, DW_TG);
    if (DW_TG > 4 && ox + 4 <= hi) {
        dwg_tile(g, x + c0, w + c0, bc, a, yrow + (size_t)ox * c + c0, iy0, ky0, ky1, ox, m,
                 full, 4);
        ox += 4;
    }
    for (; ox < hi; ox++)
        dwg_tile(g, x + c0, w + c0, bc, a, yrow + (size_t)ox * c + c0, iy0, ky0, ky1, ox, m,
                 full, 1);
    dw_pixels(g, x, w, bc, a, yrow, oy, hi, g->out_w, c0, m, full);
}

DW_INLINE void dwg_run(const mk_window *g, const float *x, const float *w, const float *b,
                       const mk_activation *act, float *y, int oy0, int oy1)
{
    dw_act a = dw_act_make(act);
    size_t c = (size_t)g->in_c, ys = (size_t)g->out_w * c;
    int lo, hi;
    dw_interior_cols(g, &lo, &hi);
    for (int oy = oy0; oy < oy1; oy++) {
        float *yrow = y + (size_t)oy * ys;
        size_t c0 = 0;
        for (; c0 + DW_LANES <= c; c0 += DW_LANES)
            dwg_row(g, x, w, b, &a, yrow, oy, lo, hi, c0, dw_mask_n(0), 1);
        if (c0 < c)
            dwg_row(g, x, w, b, &a, yrow, oy, lo, hi, c0, dw_mask_n((int)(c - c0)), 0);
    }
}

#endif
