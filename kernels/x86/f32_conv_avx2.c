/* KxK convolution, avx2: im2col of a pixel tile into this thread's scratch (conv_tile.c),
 * then the avx2 GEMM over it with the weights packed by mk_f32_gemm_pack_avx2. A pointwise
 * conv needs no im2col: x already is A. */
#include "gemm_pack.h"
#include "microkernels.h"

void mk_f32_conv_avx2(const mk_window *g, const float *x, const float *packed, const float *b,
                      const mk_activation *act, float *y, float *scratch, int p0, int p1)
{
    int k = g->kh * g->kw * g->in_c, n = g->out_c;
    if (mk_conv_is_pointwise(g)) {
        mk_f32_gemm_avx2(k, n, x, (size_t)k, packed, b, act, y, (size_t)n, p0, p1, 0, n);
        return;
    }
    int tile = mk_conv_tile_for(g, p1 - p0);
    for (int p = p0; p < p1; p += tile) {
        int pe = p1 - p < tile ? p1 : p + tile;
        mk_conv_im2col(g, x, p, pe, scratch);
        mk_f32_gemm_avx2(k, n, scratch, (size_t)k, packed, b, act, y + (size_t)p * (size_t)n,
                         (size_t)n, 0, pe - p, 0, n);
    }
}
