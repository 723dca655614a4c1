/* Pooling, NHWC. Windowed pools skip taps outside the input instead of reading padding: for
 * max that means padding never wins (even when every real value is negative), for average it
 * means the divisor is the number of real cells, which is Keras' 'same' behaviour
 * (count_include_pad = False). The loader guarantees each window holds at least one real cell.
 *
 * As in the convolutions, the channel loop is innermost and contiguous, so it vectorizes. */
#include <math.h>
#include <string.h>

#include "kernels.h"

void mk_avgpool_ref(const mk_window *g, const float *x, float *y)
{
    size_t c = (size_t)g->in_c;
    for (int oy = 0; oy < g->out_h; oy++) {
        int y0 = oy * g->sh - g->pad_top;
        for (int ox = 0; ox < g->out_w; ox++) {
            int x0 = ox * g->sw - g->pad_left;
            float *restrict yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * c;
            memset(yr, 0, c * sizeof *yr);
            int cells = 0;
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
                    for (size_t i = 0; i < c; i++)
                        yr[i] += xr[i];
                    cells++;
                }
            }
            /* Divide rather than multiply by 1/cells: one rounding instead of two. */
            float d = (float)(cells ? cells : 1);
            for (size_t i = 0; i < c; i++)
                yr[i] /= d;
        }
    }
}

void mk_maxpool_ref(const mk_window *g, const float *x, float *y)
{
    size_t c = (size_t)g->in_c;
    for (int oy = 0; oy < g->out_h; oy++) {
        int y0 = oy * g->sh - g->pad_top;
        for (int ox = 0; ox < g->out_w; ox++) {
            int x0 = ox * g->sw - g->pad_left;
            float *restrict yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * c;
            for (size_t i = 0; i < c; i++)
                yr[i] = -INFINITY;
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
                    for (size_t i = 0; i < c; i++)
                        yr[i] = xr[i] > yr[i] ? xr[i] : yr[i];
                }
            }
        }
    }
}

/* Channels are summed in blocks with double accumulators on the stack: a float running sum
 * over 49..3136 cells would lose several bits (and more when activations share a large
 * offset), while double keeps the mean correct to float rounding. Blocking keeps the loads
 * contiguous without a heap buffer. */
#define GAP_BLOCK 256

void mk_global_avgpool_ref(int hw, int c, const float *x, float *y)
{
    size_t n = (size_t)hw, cc = (size_t)c;
    for (size_t c0 = 0; c0 < cc; c0 += GAP_BLOCK) {
        size_t nb = cc - c0 < GAP_BLOCK ? cc - c0 : GAP_BLOCK;
        double acc[GAP_BLOCK];
        for (size_t i = 0; i < nb; i++)
            acc[i] = 0.0;
        for (size_t p = 0; p < n; p++) {
            const float *xr = x + p * cc + c0;
            for (size_t i = 0; i < nb; i++)
                acc[i] += xr[i];
        }
        for (size_t i = 0; i < nb; i++)
            y[c0 + i] = (float)(acc[i] / (double)n);
    }
}

void mk_global_maxpool_ref(int hw, int c, const float *x, float *y)
{
    size_t n = (size_t)hw, cc = (size_t)c;
    memcpy(y, x, cc * sizeof *y);
    for (size_t p = 1; p < n; p++) {
        const float *xr = x + p * cc;
        for (size_t i = 0; i < cc; i++)
            y[i] = xr[i] > y[i] ? xr[i] : y[i];
    }
}
