/* Transposed convolution (Keras Conv2DTranspose = TensorFlow conv2d_transpose, the gradient of
 * a Conv2D with respect to its input): x [H, W, Cin], weights [KH, KW, Cout, Cin] (Keras
 * order). Input pixel (i, j) adds x[i, j, :] . W[ky, kx, o, :] to output (i*sh + ky - pad_top,
 * j*sw + kx - pad_left, o); taps that land outside the output are cut (TF's 'same' cropping),
 * and rows past the last tap (output_padding) hold the bias alone. The kernel is not flipped.
 * Scatter form: the output is zeroed, each input pixel adds its taps, then bias and activation
 * per output pixel (the bias last, as Keras adds it after the transposed convolution). */
#include <string.h>

#include "kernels.h"

void mk_conv_transpose_ref(const mk_window *g, const float *x, const float *w, const float *b,
                           const mk_activation *act, float *y)
{
    size_t cin = (size_t)g->in_c, cout = (size_t)g->out_c;
    size_t n = (size_t)g->out_h * (size_t)g->out_w * cout;
    memset(y, 0, n * sizeof *y);
    for (int iy = 0; iy < g->in_h; iy++) {
        for (int ix = 0; ix < g->in_w; ix++) {
            const float *xr = x + ((size_t)iy * (size_t)g->in_w + (size_t)ix) * cin;
            for (int ky = 0; ky < g->kh; ky++) {
                int oy = iy * g->sh + ky - g->pad_top;
                if (oy < 0 || oy >= g->out_h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ox = ix * g->sw + kx - g->pad_left;
                    if (ox < 0 || ox >= g->out_w)
                        continue;
                    float *restrict yr = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * cout;
                    const float *wt = w + ((size_t)ky * (size_t)g->kw + (size_t)kx) * cout * cin;
                    for (size_t o = 0; o < cout; o++) {
                        const float *wr = wt + o * cin;
                        float s = 0.0f;
                        for (size_t i = 0; i < cin; i++)
                            s += xr[i] * wr[i];
                        yr[o] += s;
                    }
                }
            }
        }
    }
    for (size_t p = 0; p < n; p += cout) {
        if (b)
            for (size_t o = 0; o < cout; o++)
                y[p + o] += b[o];
        mk_activation_ref(act, y + p, cout, cout);
    }
}
