/* Depthwise conv, NHWC, weights [KH, KW, C, M]; output channel c*M + m reads input channel c.
 *
 * Loop order is pixel, tap, channel: the bounds check is paid per tap, not per channel, and the
 * innermost loop walks C*M contiguous floats of weights and output (and C of input), which the
 * compiler turns into SIMD. MobileNet-style nets spend a real share of their time here and have
 * little to gain from BLAS (each output is a 9-term dot product). */
#include <string.h>

#include "kernels.h"

void mk_depthwise_ref(const mk_window *g, int multiplier, const float *x, const float *w,
                      const float *b, const mk_activation *act, float *y)
{
    size_t c = (size_t)g->in_c, m = (size_t)multiplier, cm = c * m;
    for (int oy = 0; oy < g->out_h; oy++) {
        int y0 = oy * g->sh - g->pad_top;
        for (int ox = 0; ox < g->out_w; ox++) {
            int x0 = ox * g->sw - g->pad_left;
            float *restrict yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * cm;
            memset(yr, 0, cm * sizeof *yr);
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = y0 + ky * g->dh;
                if (iy < 0 || iy >= g->in_h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = x0 + kx * g->dw;
                    if (ix < 0 || ix >= g->in_w)
                        continue;
                    const float *restrict xr =
                        x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * c;
                    const float *restrict wr =
                        w + ((size_t)ky * (size_t)g->kw + (size_t)kx) * cm;
                    if (m == 1) { /* the common case: a plain element-wise multiply-add */
                        for (size_t i = 0; i < c; i++)
                            yr[i] += xr[i] * wr[i];
                    } else {
                        for (size_t i = 0; i < c; i++)
                            for (size_t j = 0; j < m; j++)
                                yr[i * m + j] += xr[i] * wr[i * m + j];
                    }
                }
            }
            /* The bias last, as Keras adds it (and the folded BatchNormalization shift): a
             * folded bias is often much larger than the tap sum, and accumulating the taps
             * onto it would round every partial sum at the bias's magnitude. */
            if (b)
                for (size_t i = 0; i < cm; i++)
                    yr[i] += b[i];
            /* Per pixel, while the row is hot; a row of C*M is also what softmax needs. */
            mk_activation_ref(act, yr, cm, cm);
        }
    }
}
