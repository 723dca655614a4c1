/* 3x3 depthwise, dilation 1, stride S in {1, 2}, in the vocabulary of a dwconv_vec_<isa>.h;
 * included once by each f32_dwconv3x3_<isa>.c.
 *
 * Order of work: output row, then a block of `lanes` channels, then the row's pixels. The 9
 * weight vectors of the block are loaded once per row and stay in registers. Unpadded pixels go
 * in tiles of T: each input column vector is loaded once and feeds every tile output whose
 * window covers it (3 for stride 1), so a tile row costs S*(T-1)+3 loads for 3T FMAs. Within a
 * pixel the taps are still summed in the reference's order (row by row, left to right).
 *
 * Rows whose top or bottom tap row falls in the padding get their own compiled copy without
 * that row (has0/has2), rather than reading a zero row; any other row (inputs of height 1, pads
 * wider than the kernel) and the padded columns go through the bounds-checked dw_pixel. */
#ifndef MORSEL_DWCONV3X3_BODY_H
#define MORSEL_DWCONV3X3_BODY_H

#include "dwconv_common.h"

/* T output pixels starting at column ox (all taps inside the input), tap rows r0..r2 (those
 * present) pointing at input column 0, channel c0. */
DW_INLINE void dw3_tile(const float *r0, const float *r1, const float *r2, const dw_vf *wk,
                        const float *b, const dw_act *a, float *y, size_t c, int ix0, dw_mask m,
                        int full, int has0, int has2, int S, int T)
{
    dw_vf acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        acc[t] = dw_zero();
    const float *rows[3] = {r0, r1, r2};
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++) {
        if ((r == 0 && !has0) || (r == 2 && !has2))
            continue;
        const float *p = rows[r] + (size_t)ix0 * c;
#pragma GCC unroll 32
        for (int j = 0; j < S * (T - 1) + 3; j++) {
            dw_vf v = dw_load(p + (size_t)j * c, m, full);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                int kx = j - S * t;
                if (kx >= 0 && kx < 3)
                    acc[t] = dw_fma(v, wk[r * 3 + kx], acc[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        dw_finish(a, b, acc[t], y + (size_t)t * c, m, full);
}

/* Output row oy, channels [c0, c0 + lanes): border pixels, then tiles, then single pixels. */
DW_INLINE void dw3_row(const mk_window *g, const float *x, const float *w, const float *b,
                       const dw_act *a, float *yrow, int oy, int lo, int hi, size_t c0,
                       dw_mask m, int full, int has0, int has2, int S, int T)
{
    size_t c = (size_t)g->in_c, rs = (size_t)g->in_w * c;
    int iy0 = oy * S - g->pad_top;
    /* Only the present rows are dereferenced; the others are never formed out of bounds. */
    const float *r1 = x + (size_t)(iy0 + 1) * rs + c0;
    const float *r0 = has0 ? r1 - rs : r1, *r2 = has2 ? r1 + rs : r1;
    dw_vf wk[9];
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++)
        wk[k] = dw_load(w + (size_t)k * c + c0, m, full);
    const float *bc = b ? b + c0 : NULL;

    dw_pixels(g, x, w, bc, a, yrow, oy, 0, lo, c0, m, full);
    int ox = lo;
    for (; ox + T <= hi; ox += T)
        dw3_tile(r0, r1, r2, wk, bc, a, yrow + (size_t)ox * c + c0, c, ox * S - g->pad_left, m,
                 full, has0, has2, S, T);
    for (; ox < hi; ox++)
        dw3_tile(r0, r1, r2, wk, bc, a, yrow + (size_t)ox * c + c0, c, ox * S - g->pad_left, m,
                 full, has0, has2, S, 1);
    dw_pixels(g, x, w, bc, a, yrow, oy, hi, g->out_w, c0, m, full);
}

/* Every channel block of output row oy: whole blocks unmasked, the tail masked. */
DW_INLINE void dw3_blocks(const mk_window *g, const float *x, const float *w, const float *b,
                          const dw_act *a, float *yrow, int oy, int lo, int hi, int has0,
                          int has2, int S, int T)
{
    size_t c = (size_t)g->in_c, c0 = 0;
    dw_mask none = dw_mask_n(0);
    for (; c0 + DW_LANES <= c; c0 += DW_LANES)
        dw3_row(g, x, w, b, a, yrow, oy, lo, hi, c0, none, 1, has0, has2, S, T);
    if (c0 < c)
        dw3_row(g, x, w, b, a, yrow, oy, lo, hi, c0, dw_mask_n((int)(c - c0)), 0, has0, has2, S,
                T);
}

DW_INLINE void dw3_run(const mk_window *g, const float *x, const float *w, const float *b,
                       const mk_activation *act, float *y, int oy0, int oy1, int S, int T)
{
    dw_act a = dw_act_make(act);
    size_t c = (size_t)g->in_c, ys = (size_t)g->out_w * c;
    int lo, hi;
    dw_interior_cols(g, &lo, &hi);
    for (int oy = oy0; oy < oy1; oy++) {
        float *yrow = y + (size_t)oy * ys;
        int iy0 = oy * S - g->pad_top;
        int has0 = iy0 >= 0 && iy0 < g->in_h;
        int has1 = iy0 + 1 >= 0 && iy0 + 1 < g->in_h;
        int has2 = iy0 + 2 >= 0 && iy0 + 2 < g->in_h;
        if (has0 && has1 && has2) {
            dw3_blocks(g, x, w, b, &a, yrow, oy, lo, hi, 1, 1, S, T);
        } else if (has1 && has2) {
            dw3_blocks(g, x, w, b, &a, yrow, oy, lo, hi, 0, 1, S, T);
        } else if (has0 && has1) {
            dw3_blocks(g, x, w, b, &a, yrow, oy, lo, hi, 1, 0, S, T);
        } else {
            size_t c0 = 0;
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
