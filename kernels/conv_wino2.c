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
 * for m output channels of one input channel: g[i*3+j] points at tap (i, j)'s weights of those
 * channels, U's position xi goes to u + xi * ld. */
static void transform_kernels(const float *const g[9], int m, float *restrict u, size_t ld)
{
    for (int c = 0; c < m; c++) {
        double t[4][3];
        for (int j = 0; j < 3; j++) {
            double g0 = g[j][c], g1 = g[3 + j][c], g2 = g[6 + j][c];
            t[0][j] = g0;
            t[1][j] = (g0 + g1 + g2) * 0.5;
            t[2][j] = (g0 - g1 + g2) * 0.5;
            t[3][j] = g2;
        }
        for (int i = 0; i < 4; i++) {
            u[(i * 4 + 0) * ld + c] = (float)t[i][0];
            u[(i * 4 + 1) * ld + c] = (float)((t[i][0] + t[i][1] + t[i][2]) * 0.5);
            u[(i * 4 + 2) * ld + c] = (float)((t[i][0] - t[i][1] + t[i][2]) * 0.5);
            u[(i * 4 + 3) * ld + c] = (float)t[i][2];
        }
    }
}

#define CHUNK_FLOATS 256 /* per position: a few input channels' rows of one panel (nr <= 256) */

/* The 16 transformed matrices lie a whole [Cin, Cout] matrix apart (1 MB for 512 -> 512), on
 * the same cache sets and each store a page away from the last: writing all 16 for each
 * channel in turn missed every time (20 ms for that layer, 70 ns a kernel). So a few input
 * channels of one panel are transformed into a small buffer, then each position's run is
 * copied out whole; within a panel the input channels' rows are adjacent. */
void mk_wino2_pack(int K, int N, int nr, const float *w, float *packed)
{
    float buf[16 * CHUNK_FLOATS];
    int cin = K / 9, per = CHUNK_FLOATS / nr > 0 ? CHUNK_FLOATS / nr : 1;
    size_t one = mk_gemm_panels_floats(cin, N, nr), panel = (size_t)cin * (size_t)nr;
    size_t ld = (size_t)per * (size_t)nr;
    for (int c0 = 0; c0 < N; c0 += nr) {
        int m = N - c0 < nr ? N - c0 : nr;
        /* The padded columns of the last panel stay zero (gemm_pack.c). */
        if (m < nr)
            memset(buf, 0, sizeof buf);
        for (int ci0 = 0; ci0 < cin; ci0 += per) {
            int n = cin - ci0 < per ? cin - ci0 : per;
            for (int ci = ci0; ci < ci0 + n; ci++) {
                const float *g[9];
                for (int t = 0; t < 9; t++)
                    g[t] = w + ((size_t)t * (size_t)cin + (size_t)ci) * (size_t)N + c0;
                transform_kernels(g, m, buf + (size_t)(ci - ci0) * (size_t)nr, ld);
            }
            for (int xi = 0; xi < 16; xi++)
                memcpy(packed + (size_t)xi * one + (size_t)(c0 / nr) * panel +
                           (size_t)ci0 * (size_t)nr,
                       buf + (size_t)xi * ld, (size_t)n * (size_t)nr * sizeof(float));
        }
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
