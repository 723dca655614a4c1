/* Layer normalization over the last axis (Keras LayerNormalization with axis=-1, ConvNeXt):
 * per row of c values, mean and the biased variance mean((x - mean)^2) (tf.nn.moments), then
 * y = (x - mean) * rsqrt(var + eps) * gamma + beta, epsilon inside the square root as Keras
 * adds it. The statistics are summed in double: a row is short (one pixel's channels) and a
 * float sum of 768 values would already drift from what Keras's reduction gives. */
#include <math.h>

#include "kernels.h"

void mk_layer_norm_ref(size_t rows, int c, float eps, const float *x, const float *gamma,
                       const float *beta, const mk_activation *act, float *y)
{
    size_t cc = (size_t)c;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cc;
        float *yr = y + r * cc;
        double s = 0.0;
        for (size_t i = 0; i < cc; i++)
            s += xr[i];
        double mean = s / (double)cc, v = 0.0;
        for (size_t i = 0; i < cc; i++) {
            double d = xr[i] - mean;
            v += d * d;
        }
        double inv = 1.0 / sqrt(v / (double)cc + (double)eps);
        for (size_t i = 0; i < cc; i++)
            yr[i] = (float)(((double)xr[i] - mean) * inv * gamma[i] + beta[i]);
        mk_activation_ref(act, yr, cc, cc);
    }
}
