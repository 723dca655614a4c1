/* Depthwise convolution (multiplier 1) of any window, AVX2 + FMA: see dwconv_generic_body.h. */
#include "dwconv_vec_avx2.h"

#include "dwconv_generic_body.h"

void mk_f32_dwconv_avx2(const mk_window *g, const float *x, const float *w, const float *b,
                        const mk_activation *act, float *y, int oy0, int oy1)
{
    dwg_run(g, x, w, b, act, y, oy0, oy1);
}
