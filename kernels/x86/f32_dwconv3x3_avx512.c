/* 3x3 depthwise convolution (multiplier 1), stride 1 and 2, AVX-512: see dwconv3x3_body.h. */
#include "dwconv_vec_avx512.h"

#include "dwconv3x3_body.h"

void mk_f32_dwconv3x3_s1_avx512(const mk_window *g, const float *x, const float *w,
                                const float *b, const mk_activation *act, float *y, int oy0,
                                int oy1)
{
    dw3_run(g, x, w, b, act, y, oy0, oy1, 1, DW_T1);
}

void mk_f32_dwconv3x3_s2_avx512(const mk_window *g, const float *x, const float *w,
                                const float *b, const mk_activation *act, float *y, int oy0,
                                int oy1)
{
    dw3_run(g, x, w, b, act, y, oy0, oy1, 2, DW_T2);
}
