/* Conv2D, NHWC input, HWIO weights.
 *
 * Viewed as a matrix, the HWIO kernel is already W[K, Cout] with K = kh*kw*Cin in (ky, kx, ci)
 * order, and the output is Y[P, Cout] with P = out_h*out_w pixels. im2col lays each output
 * pixel's receptive field out as one row of A[P, K] in that same order, so Y = A W is a single
 * row-major sgemm with no transposes. */
#include <cblas.h>
#include <string.h>

#include "kernels.h"

/* im2col is done in tiles of output pixels so scratch stays bounded (a 224x224x64 3x3 layer
 * would otherwise need 115 MB). A tile aims at ~4 MB of A, which still gives sgemm hundreds of
 * rows to block over, but never fewer than MIN_TILE rows, so very deep layers (large K) keep
 * BLAS efficient at the cost of a larger scratch. */
#define SCRATCH_TARGET_FLOATS ((size_t)1 << 20)
#define MIN_TILE_PIXELS ((size_t)128)

/* A 1x1, stride-1, unpadded conv reads its input as A directly: [H*W, Cin] is already the
 * im2col matrix. Dilation does not matter for a 1x1 kernel. */
static int is_pointwise(const mk_window *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

static size_t tile_pixels(const mk_window *g)
{
    size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    size_t k = (size_t)g->kh * (size_t)g->kw * (size_t)g->in_c;
    size_t t = SCRATCH_TARGET_FLOATS / k;
    if (t < MIN_TILE_PIXELS)
        t = MIN_TILE_PIXELS;
    return t < pixels ? t : pixels;
}

size_t mk_conv2d_scratch(const mk_window *g)
{
    if (is_pointwise(g))
        return 0;
    return tile_pixels(g) * (size_t)g->kh * (size_t)g->kw * (size_t)g->in_c;
}

/* Rows [p0, p1) of A. Taps that fall in the padding are zero, which is what makes the padded
 * conv equal to the plain matrix product. */
static void im2col(const mk_window *g, const float *x, size_t p0, size_t p1, float *a)
{
    size_t cin = (size_t)g->in_c;
    for (size_t p = p0; p < p1; p++) {
        int oy = (int)(p / (size_t)g->out_w), ox = (int)(p % (size_t)g->out_w);
        int y0 = oy * g->sh - g->pad_top, x0 = ox * g->sw - g->pad_left;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = y0 + ky * g->dh;
            if (iy < 0 || iy >= g->in_h) {
                size_t row = (size_t)g->kw * cin;
                memset(a, 0, row * sizeof *a);
                a += row;
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = x0 + kx * g->dw;
                if (ix < 0 || ix >= g->in_w)
                    memset(a, 0, cin * sizeof *a);
                else
                    memcpy(a, x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * cin,
                           cin * sizeof *a);
                a += cin;
            }
        }
    }
}

/* Seeds y with the bias so sgemm can accumulate onto it (beta = 1) instead of a second pass. */
static float bias_beta(float *y, size_t rows, size_t cout, const float *b)
{
    if (!b)
        return 0.0f;
    for (size_t r = 0; r < rows; r++)
        memcpy(y + r * cout, b, cout * sizeof *y);
    return 1.0f;
}

void mk_conv2d_ref(const mk_window *g, const float *x, const float *w, const float *b,
                   const mk_activation *act, float *y, float *scratch)
{
    size_t cout = (size_t)g->out_c;
    size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    int k = g->kh * g->kw * g->in_c;

    if (is_pointwise(g)) {
        float beta = bias_beta(y, pixels, cout, b);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)pixels, (int)cout, k, 1.0f,
                    x, k, w, (int)cout, beta, y, (int)cout);
        mk_activation_ref(act, y, pixels * cout, cout);
        return;
    }

    size_t tile = tile_pixels(g);
    for (size_t p0 = 0; p0 < pixels; p0 += tile) {
        size_t p1 = p0 + tile < pixels ? p0 + tile : pixels;
        float *yt = y + p0 * cout;
        im2col(g, x, p0, p1, scratch);
        float beta = bias_beta(yt, p1 - p0, cout, b);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(p1 - p0), (int)cout, k,
                    1.0f, scratch, k, w, (int)cout, beta, yt, (int)cout);
        /* Activate while the tile is still in cache. */
        mk_activation_ref(act, yt, (p1 - p0) * cout, cout);
    }
}

/* The obviously-correct form: for each output pixel, accumulate every in-bounds tap into the
 * output row. The innermost loop runs over Cout, contiguous in both w and y, so it still
 * vectorizes; no BLAS, no scratch. */
void mk_conv2d_direct(const mk_window *g, const float *x, const float *w, const float *b,
                      const mk_activation *act, float *y)
{
    size_t cin = (size_t)g->in_c, cout = (size_t)g->out_c;
    for (int oy = 0; oy < g->out_h; oy++) {
        for (int ox = 0; ox < g->out_w; ox++) {
            float *restrict yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * cout;
            if (b)
                memcpy(yr, b, cout * sizeof *yr);
            else
                memset(yr, 0, cout * sizeof *yr);
            int y0 = oy * g->sh - g->pad_top, x0 = ox * g->sw - g->pad_left;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = y0 + ky * g->dh;
                if (iy < 0 || iy >= g->in_h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = x0 + kx * g->dw;
                    if (ix < 0 || ix >= g->in_w)
                        continue;
                    const float *xr = x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * cin;
                    const float *wk = w + ((size_t)ky * (size_t)g->kw + (size_t)kx) * cin * cout;
                    for (size_t ci = 0; ci < cin; ci++) {
                        const float *restrict wr = wk + ci * cout;
                        float xv = xr[ci];
                        for (size_t co = 0; co < cout; co++)
                            yr[co] += xv * wr[co];
                    }
                }
            }
            mk_activation_ref(act, yr, cout, cout);
        }
    }
}
