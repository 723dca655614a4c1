/* 3x3 depthwise, dilation 1, stride S in {1, 2}, in the vocabulary of a dwconv_vec_<isa>.h;
 * included once by each f32_dwconv3x3_<isa>.c.
 *
 * Order of work: output row, then a tile of T pixels, then every block of `lanes` channels.
 * Within a tile each input column vector is loaded once and feeds every output whose window
 * covers it (3 for stride 1), so a tile row costs S*(T-1)+3 loads for 3T FMAs; the 9 weight
 * vectors of a block come from L1 per tile. Pixel-major order reads x, w and y contiguously
 * (channels fastest), which measured no slower than channel-block-major with the weights pinned
 * in registers, and faster on the large 112x112 layers. Within a pixel the taps are summed in
 * the reference's order (row by row, left to right).
 *
 * Padding: a row whose top or bottom tap row falls in the padding gets its own compiled copy
 * without that row (has0/has2), and so does a border pixel missing only its left or right tap
 * column (hasl/hasr), rather than reading zeros; anything else (inputs 1 wide or high, pads
 * wider than the kernel) goes through the bounds-checked dw_pixel. */
#ifndef MORSEL_DWCONV3X3_BODY_H
#define MORSEL_DWCONV3X3_BODY_H

#include "dwconv_common.h"

/* T output pixels, the first at input column ix0, channels [c0, c0 + lanes): rows r0..r2 (those
 * present) and w point at channel c0 of input column 0 / tap 0; b at c0 or NULL. */
DW_INLINE void dw3_tile(const float *r0, const float *r1, const float *r2, const float *w,
                        const float *b, const dw_act *a, float *y, size_t c, int ix0, dw_mask m,
                        int full, int has0, int has2, int hasl, int hasr, int S, int T)
{
    dw_vf acc[8];
    DW_UNROLL
    for (int t = 0; t < T; t++)
        acc[t] = dw_zero();
    const float *rows[3] = {r0, r1, r2};
    DW_UNROLL
    for (int r = 0; r < 3; r++) {
        if ((r == 0 && !has0) || (r == 2 && !has2))
            continue;
        dw_vf wk[3];
        DW_UNROLL
        for (int k = 0; k < 3; k++)
            wk[k] = dw_load(w + (size_t)(r * 3 + k) * c, m, full);
        DW_UNROLL
        for (int j = 0; j < S * (T - 1) + 3; j++) {
            if ((j == 0 && !hasl) || (j == S * (T - 1) + 2 && !hasr))
                continue;
            dw_vf v = dw_load(rows[r] + (size_t)(ix0 + j) * c, m, full);
            DW_UNROLL
            for (int t = 0; t < T; t++) {
                int kx = j - S * t;
                if (kx >= 0 && kx < 3)
                    acc[t] = dw_fma(v, wk[kx], acc[t]);
            }
        }
    }
    DW_UNROLL
    for (int t = 0; t < T; t++)
        dw_finish(a, b, acc[t], y + (size_t)t * c, m, full);
}

/* Pixels [ox, ox + T) of output row oy (taps per has*), every channel block: whole blocks
 * unmasked, the tail masked. */
DW_INLINE void dw3_pixels(const mk_window *g, const float *x, const float *w, const float *b,
                          const dw_act *a, float *yrow, int oy, int ox, int has0, int has2,
                          int hasl, int hasr, int S, int T)
{
    size_t c = (size_t)g->in_c, rs = (size_t)g->in_w * c, c0 = 0;
    int ix0 = ox * S - g->pad_left;
    /* Callers guarantee the middle tap row exists; absent rows are never formed. */
    const float *r1 = x + (size_t)(oy * S - g->pad_top + 1) * rs;
    const float *r0 = has0 ? r1 - rs : r1, *r2 = has2 ? r1 + rs : r1;
    float *yp = yrow + (size_t)ox * c;
    dw_mask none = dw_mask_n(0);
    for (; c0 + DW_LANES <= c; c0 += DW_LANES)
        dw3_tile(r0 + c0, r1 + c0, r2 + c0, w + c0, b ? b + c0 : NULL, a, yp + c0, c, ix0,
                 none, 1, has0, has2, hasl, hasr, S, T);
    if (c0 < c)
        dw3_tile(r0 + c0, r1 + c0, r2 + c0, w + c0, b ? b + c0 : NULL, a, yp + c0, c, ix0,
                 dw_mask_n((int)(c - c0)), 0, has0, has2, hasl, hasr, S, T);
}

/* A border pixel: the fast copy when only its left or right tap column is missing. */
DW_INLINE void dw3_border(const mk_window *g, const float *x, const float *w, const float *b,
                          const dw_act *a, float *yrow, int oy, int ox, int has0, int has2,
                          int S)
{
    int ix0 = ox * S - g->pad_left;
    if (ix0 == -1 && ix0 + 2 < g->in_w) {
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 0, 1, S, 1);
    } else if (ix0 >= 0 && ix0 + 2 == g->in_w) {
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 1, 0, S, 1);
    } else {
        size_t c = (size_t)g->in_c, c0 = 0;
        for (; c0 + DW_LANES <= c; c0 += DW_LANES)
            dw_pixels(g, x, w, b ? b + c0 : NULL, a, yrow, oy, ox, ox + 1, c0, dw_mask_n(0), 1);
        if (c0 < c)
            dw_pixels(g, x, w, b ? b + c0 : NULL, a, yrow, oy, ox, ox + 1, c0,
                      dw_mask_n((int)(c - c0)), 0);
    }
}

/* Output row oy whose middle tap row is present: border pixels, tiles, single pixels. */
DW_INLINE void dw3_row(const mk_window *g, const float *x, const float *w, const float *b,
                       const dw_act *a, float *yrow, int oy, int lo, int hi, int has0, int has2,
                       int S, int T)
{
    for (int ox = 0; ox < lo; ox++)
        dw3_border(g, x, w, b, a, yrow, oy, ox, has0, has2, S);
    int ox = lo;
    for (; ox + T <= hi; ox += T)
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 1, 1, S, T);
    /* Short rows (7 and 14 wide) would otherwise fall to single pixels. */
    if (T > 4 && ox + 4 <= hi) {
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 1, 1, S, 4);
        ox += 4;
    }
    if (T > 2 && ox + 2 <= hi) {
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 1, 1, S, 2);
        ox += 2;
    }
    for (; ox < hi; ox++)
        dw3_pixels(g, x, w, b, a, yrow, oy, ox, has0, has2, 1, 1, S, 1);
    for (ox = hi; ox < g->out_w; ox++)
        dw3_border(g, x, w, b, a, yrow, oy, ox, has0, has2, S);
}

DW_INLINE void dw3_run(const mk_window *g, const float *x, const float *w, const float *b,
                       const mk_activation *act, float *y, int oy0, int oy1, int S, int T)
{
    dw_act a = dw_act_make(act);
    size_t ys = (size_t)g->out_w * (size_t)g->in_c;
    int lo, hi;
    dw_interior_cols(g, &lo, &hi);
    for (int oy = oy0; oy < oy1; oy++) {
        float *yrow = y + (size_t)oy * ys;
        int iy0 = oy * S - g->pad_top;
        int has0 = iy0 >= 0 && iy0 < g->in_h;
        int has1 = iy0 + 1 >= 0 && iy0 + 1 < g->in_h;
        int has2 = iy0 + 2 >= 0 && iy0 + 2 < g->in_h;
        if (has0 && has1 && has2) {
            dw3_row(g, x, w, b, &a, yrow, oy, lo, hi, 1, 1, S, T);
        } else if (has1 && has2) {
            dw3_row(g, x, w, b, &a, yrow, oy, lo, hi, 0, 1, S, T);
        } else if (has0 && has1) {
            dw3_row(g, x, w, b, &a, yrow, oy, lo, hi, 1, 0, S, T);
        } else {
            size_t c = (size_t)g->in_c, c0 = 0;
            for (; c0 + DW_LANES <= c; c0 += DW_LANES)
                dw_pixels(g, x, w, b ? b + c0 : NULL, &a, yrow, oy, 0, g->out_w, c0,
                          dw_mask_n(0), 1);
            if (c0 < c)
                dw_pixels(g, x, w, b ? b + c0 : NULL, &a, yrow, oy, 0, g->out_w, c0,
                          dw_mask_n((int)(c - c0)), 0);
        }
    }
}

#endif
