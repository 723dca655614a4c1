/* 3x3 stride-1 conv by Winograd F(2x2, 3x3), avx2: the transforms of conv_wino2_body.h
 * vectorised for avx2, and the 16 products by mk_f32_gemm_avx2 on weights transformed and
 * packed into its panels at load (kernels/conv_wino2.c). */
#include "gemm_pack.h"
#include "microkernels.h"

#define WINO_GEMM mk_f32_gemm_avx2
#define WINO_NR MK_GEMM_NR_AVX2
#define WINO_VL 8
#include "conv_wino2_body.h"

size_t mk_f32_wino2_pack_floats_avx2(int K, int N)
{
    return mk_wino2_pack_floats(K / 9, N, WINO_NR);
}

void mk_f32_wino2_pack_avx2(int K, int N, const float *w, float *packed)
{
    mk_wino2_pack(K, N, WINO_NR, w, packed);
}

void mk_f32_conv3x3_wino2_avx2(const mk_window *g, const float *x, const float *packed,
                              const float *b, const mk_activation *act, float *y, float *scratch,
                              int r0, int r1, int n0, int n1)
{
    (void)act; /* the op runs it after (its tail): no vector select in C */
    wino2_run(g, x, packed, b, y, scratch, r0, r1, n0, n1);
}
