/* KxK convolution as tiled im2col + GEMM: the portable half (tile size, im2col) shared by
 * the per-ISA conv kernels, which only add the GEMM call. */
#include <string.h>

#include "gemm_pack.h"
#include "microkernels.h"

/* 1 MB of im2col per thread: a tile's A rows stay in L2 while every weight panel passes over
 * them. */
#define SCRATCH_FLOATS (1 << 18)
/* A multiple of both row blocks (14 rows for AVX-512, 6 for AVX2), so that no tile but the
 * last runs a row-tail microkernel, when the tile can be rounded up to it. */
#define TILE_ROUND 42

/* A 1x1, stride-1, unpadded conv reads x itself as A; dilation is moot for a 1x1 kernel. */
int mk_conv_is_pointwise(const mk_window *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

/* K within the GEMM's one k block (KC = 512), so the direct kernel's chains are the GEMM's. */
int mk_conv_smallc_fits(const mk_window *g)
{
    return g->in_c <= 4 && g->kh * g->kw * g->in_c <= 512 && g->dh == 1 && g->dw == 1 &&
           !mk_conv_is_pointwise(g);
}

int mk_conv_tile_pixels(const mk_window *g)
{
    int k = g->kh * g->kw * g->in_c;
    int pixels = g->out_h * g->out_w;
    int t = SCRATCH_FLOATS / k;
    if (t < 1)
        t = 1;
    return t < pixels ? t : pixels;
}

/* Every tile reads all the weights once, so n pixels run as the fewest tiles the scratch
 * holds, evenly: a 7x7 layer with K = 4608 is one tile of 49 (a 42-pixel tile then a 7-pixel
 * one read 9 MB of weights twice, the second time for 7 rows). */
int mk_conv_tile_for(const mk_window *g, int n)
{
    int cap = mk_conv_tile_pixels(g);
    if (n <= cap)
        return n;
    int tiles = (n + cap - 1) / cap, t = (n + tiles - 1) / tiles;
    int rounded = (t + TILE_ROUND - 1) / TILE_ROUND * TILE_ROUND;
    return rounded <= cap ? rounded : t;
}

size_t mk_f32_conv_scratch_floats(const mk_window *g)
{
    if (mk_conv_is_pointwise(g))
        return 0;
    return (size_t)mk_conv_tile_pixels(g) * (size_t)g->kh * (size_t)g->kw * (size_t)g->in_c;
}

/* Cin is often tiny (3 for a first layer), where a memcpy call per tap would cost more than
 * the copy. */
static void copy_floats(float *restrict d, const float *restrict s, size_t n)
{
    if (n >= 16)
        memcpy(d, s, n * sizeof *d);
    else
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
}

void mk_conv_im2col(const mk_window *g, const float *x, int p0, int p1, float *a)
{
    size_t cin = (size_t)g->in_c, row = (size_t)g->kw * cin;
    for (int p = p0; p < p1; p++) {
        int oy = p / g->out_w, ox = p % g->out_w;
        int y0 = oy * g->sh - g->pad_top, x0 = ox * g->sw - g->pad_left;
        int x_last = x0 + (g->kw - 1) * g->dw;
        for (int ky = 0; ky < g->kh; ky++, a += row) {
            int iy = y0 + ky * g->dh;
            if (iy < 0 || iy >= g->in_h) {
                memset(a, 0, row * sizeof *a);
                continue;
            }
            const float *xr = x + (size_t)iy * (size_t)g->in_w * cin;
            /* Undilated taps wholly inside the row are one contiguous run of x. */
            if (g->dw == 1 && x0 >= 0 && x_last < g->in_w) {
                copy_floats(a, xr + (size_t)x0 * cin, row);
                continue;
            }
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = x0 + kx * g->dw;
                if (ix < 0 || ix >= g->in_w)
                    memset(a + (size_t)kx * cin, 0, cin * sizeof *a);
                else
                    copy_floats(a + (size_t)kx * cin, xr + (size_t)ix * cin, cin);
            }
        }
    }
}
