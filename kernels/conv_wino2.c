/* 3x3 stride-1 convolution by Winograd F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015): the portable half (when it applies, the weight
 * transform and packing, the scratch), shared by the per-ISA kernels, which add the input and
 * output transforms and the GEMM calls.
 *
 * Each 2x2 block of output ("tile") reads a 4x4 patch of input. Transformed, the patch and the
 * 3x3 kernel become 16 values each per channel, and the conv becomes 16 independent products
 * V_xi [tiles, Cin] x U_xi [Cin, Cout], one per position xi of the 4x4 transform: 16 Cin Cout
 * multiply-adds per tile instead of 36 Cin Cout, which the GEMM microkernels run at their
 * usual speed. The transforms only add and subtract (and halve, in the weights), so they cost
 * O(C) per tile and round little: this is F(2x2, 3x3) and not the larger F(4x4, 3x3), whose
 * transforms multiply by up to 8 and lose about two more bits. */
#include <string.h>

#include "gemm_pack.h"
#include "microkernels.h"

/* V and M of a block of tiles: 1 MB per thread, like the im2col scratch. */
#define SCRATCH_FLOATS (1 << 18)

int mk_wino2_fits(const mk_window *g)
{
    /* Below 32 channels either side the transforms are not paid back (a first layer of 3). */
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->in_c >= 32 && g->out_c >= 32 && g->out_h >= 2 && g->out_w >= 2;
}

size_t mk_wino2_pack_floats(int cin, int cout, int nr)
{
    return 16 * mk_gemm_panels_floats(cin, cout, nr);
}

/* U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double and rounded once,
 * for the output channels [0, n) of one input channel: g[i*3+j] points at tap (i, j)'s row of
 * N weights, u[xi] at where U's position xi goes in its panel layout. Straight-line over the
 * channels so that it vectorises (a per-channel call made IncV3's load 6x slower). */
static void transform_kernels(const float *const g[9], int n, int nr, float *const u[16],
                              size_t panel)
{
    for (int co = 0; co < n; co++) {
        size_t at = (size_t)(co / nr) * panel + (size_t)(co % nr);
        double t[4][3];
        for (int j = 0; j < 3; j++) {
            double g0 = g[j][co], g1 = g[3 + j][co], g2 = g[6 + j][co];
            t[0][j] = g0;
            t[1][j] = (g0 + g1 + g2) * 0.5;
            t[2][j] = (g0 - g1 + g2) * 0.5;
            t[3][j] = g2;
        }
        for (int i = 0; i < 4; i++) {
            u[i * 4 + 0][at] = (float)t[i][0];
            u[i * 4 + 1][at] = (float)((t[i][0] + t[i][1] + t[i][2]) * 0.5);
            u[i * 4 + 2][at] = (float)((t[i][0] - t[i][1] + t[i][2]) * 0.5);
            u[i * 4 + 3][at] = (float)t[i][2];
        }
    }
}

void mk_wino2_pack(int K, int N, int nr, const float *w, float *packed)
{
    int cin = K / 9;
    size_t one = mk_gemm_panels_floats(cin, N, nr), panel = (size_t)cin * (size_t)nr;
    /* The padded columns of the last panel stay zero (gemm_pack.c). */
    memset(packed, 0, 16 * one * sizeof *packed);
    for (int ci = 0; ci < cin; ci++) {
        const float *g[9];
        float *u[16];
        for (int t = 0; t < 9; t++)
            g[t] = w + ((size_t)t * (size_t)cin + (size_t)ci) * (size_t)N;
        for (int xi = 0; xi < 16; xi++)
            u[xi] = packed + (size_t)xi * one + (size_t)ci * (size_t)nr;
        transform_kernels(g, N, nr, u, panel);
    }
}

int mk_wino2_block_tiles(const mk_window *g)
{
    int t = SCRATCH_FLOATS / (16 * (g->in_c + g->out_c));
    return t < 1 ? 1 : t;
}

size_t mk_wino2_scratch_floats(const mk_window *g)
{
    /* V and M of a block (each matrix padded by a line, conv_wino2_body.h), and one channel
     * row of zeros for the patch taps in the padding. */
    return (size_t)16 * ((size_t)mk_wino2_block_tiles(g) * (size_t)(g->in_c + g->out_c) + 32) +
           (size_t)g->in_c;
}
