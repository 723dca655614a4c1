/* Winograd F(2x2, 3x3) conv, the per-ISA half (kernels/conv_wino2.c has the rest and the
 * why): included by f32_conv3x3_wino2_<isa>.c after it defines WINO_GEMM (its GEMM) and
 * WINO_NR (its panel width). The transforms are plain loops over channels, contiguous in
 * NHWC, which the compiler vectorises with the including file's ISA flags.
 *
 * Tile rows [r0, r1) of the output (rows 2 r0 .. 2 r1 - 1, the last one cut at out_h) x output
 * channels [n0, n1): every thread of a column split transforms all its input tiles. */
#include <stddef.h>
#include <string.h>

#include "gemm_pack.h"
#include "microkernels.h"

/* WINO_VL floats of a vector, unaligned (GCC vector extensions: one source for both ISAs). */
typedef float wv __attribute__((vector_size(WINO_VL * 4), aligned(4), may_alias));

/* V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], per channel: d[i*4+j] is patch
 * row i, column j (c channels), V position xi at v + xi * stride. T is float or wv. */
#define WINO2_INPUT(T, k)                                                                      \
    {                                                                                          \
        T r[4][4];                                                                             \
        for (int j = 0; j < 4; j++) {                                                          \
            T d0 = *(const T *)(d[j] + k), d1 = *(const T *)(d[4 + j] + k);                   \
            T d2 = *(const T *)(d[8 + j] + k), d3 = *(const T *)(d[12 + j] + k);              \
            r[0][j] = d0 - d2;                                                                 \
            r[1][j] = d1 + d2;                                                                 \
            r[2][j] = d2 - d1;                                                                 \
            r[3][j] = d1 - d3;                                                                 \
        }                                                                                      \
        for (int i = 0; i < 4; i++) {                                                          \
            *(T *)(v + (size_t)(i * 4 + 0) * stride + k) = r[i][0] - r[i][2];                  \
            *(T *)(v + (size_t)(i * 4 + 1) * stride + k) = r[i][1] + r[i][2];                  \
            *(T *)(v + (size_t)(i * 4 + 2) * stride + k) = r[i][2] - r[i][1];                  \
            *(T *)(v + (size_t)(i * 4 + 3) * stride + k) = r[i][1] - r[i][3];                  \
        }                                                                                      \
    }

static void wino2_input(const float *const d[16], int c, float *v, size_t stride)
{
    int k = 0;
    for (; k + WINO_VL <= c; k += WINO_VL)
        WINO2_INPUT(wv, k)
    for (; k < c; k++)
        WINO2_INPUT(float, k)
}

/* Y = A^T m A, A^T = [1 1 1 0; 0 1 -1 -1], plus bias, into the rows and columns of the tile
 * that exist (ny, nx: 1 or 2). The activation runs after the op (conv2d's tail). */
#define WINO2_OUTPUT(T, k)                                                                     \
    {                                                                                          \
        T s[2][4], bias = b ? *(const T *)(b + k) : (T){0};                                    \
        for (int j = 0; j < 4; j++) {                                                          \
            T m0 = *(const T *)(m + (size_t)j * stride + k);                                   \
            T m1 = *(const T *)(m + (size_t)(4 + j) * stride + k);                             \
            T m2 = *(const T *)(m + (size_t)(8 + j) * stride + k);                             \
            T m3 = *(const T *)(m + (size_t)(12 + j) * stride + k);                            \
            s[0][j] = m0 + m1 + m2;                                                            \
            s[1][j] = m1 - m2 - m3;                                                            \
        }                                                                                      \
        for (int i = 0; i < ny; i++) {                                                         \
            T y0 = s[i][0] + s[i][1] + s[i][2] + bias;                                         \
            T y1 = s[i][1] - s[i][2] - s[i][3] + bias;                                         \
            *(T *)(y + (size_t)i * row + k) = y0;                                              \
            if (nx > 1)                                                                        \
                *(T *)(y + (size_t)i * row + pixel + k) = y1;                                  \
        }                                                                                      \
    }

/* c channels; pixel: floats from one output pixel to the next. */
static void wino2_output(const float *m, size_t stride, int c, size_t pixel, const float *b,
                         float *y, size_t row, int ny, int nx)
{
    int k = 0;
    for (; k + WINO_VL <= c; k += WINO_VL)
        WINO2_OUTPUT(wv, k)
    for (; k < c; k++)
        WINO2_OUTPUT(float, k)
}

static void wino2_run(const mk_window *g, const float *x, const float *packed, const float *b,
                      float *y, float *scratch, int r0, int r1, int n0, int n1)
{
    int cin = g->in_c, cout = g->out_c, tw = (g->out_w + 1) / 2;
    int tb = mk_wino2_block_tiles(g);
    size_t one = mk_gemm_panels_floats(cin, cout, WINO_NR);
    /* The 16 matrices of a block lie a line more than a block apart: at exactly tb * cin
     * floats (often a multiple of 4 KB) the 16 streams of a transform share one L1 set. */
    size_t sv = (size_t)tb * (size_t)cin + 16, sm = (size_t)tb * (size_t)cout + 16;
    float *v = scratch, *m = v + 16 * sv, *zeros = m + 16 * sm;
    memset(zeros, 0, (size_t)cin * sizeof *zeros);
    for (int t0 = r0 * tw; t0 < r1 * tw; t0 += tb) {
        int nt = r1 * tw - t0 < tb ? r1 * tw - t0 : tb;
        for (int t = 0; t < nt; t++) {
            int ty = (t0 + t) / tw, tx = (t0 + t) % tw;
            const float *d[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    int iy = 2 * ty - g->pad_top + i, ix = 2 * tx - g->pad_left + j;
                    d[i * 4 + j] = iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w
                                       ? x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * (size_t)cin
                                       : zeros;
                }
            wino2_input(d, cin, v + (size_t)t * (size_t)cin, sv);
        }
        for (int xi = 0; xi < 16; xi++)
            WINO_GEMM(cin, cout, v + (size_t)xi * sv, (size_t)cin, packed + (size_t)xi * one,
                      NULL, NULL, m + (size_t)xi * sm, (size_t)cout, 0, nt, n0, n1);
        for (int t = 0; t < nt; t++) {
            int ty = (t0 + t) / tw, tx = (t0 + t) % tw;
            int ny = g->out_h - 2 * ty < 2 ? 1 : 2, nx = g->out_w - 2 * tx < 2 ? 1 : 2;
            wino2_output(m + (size_t)t * (size_t)cout + (size_t)n0, sm, n1 - n0, (size_t)cout,
                         b ? b + n0 : NULL,
                         y + ((size_t)(2 * ty) * (size_t)g->out_w + (size_t)(2 * tx)) * (size_t)cout +
                             (size_t)n0,
                         (size_t)g->out_w * (size_t)cout, ny, nx);
        }
    }
}
