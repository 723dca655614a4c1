/* Activations, applied in place after the op that produced x (fused) or on their own.
 *
 * Each code gets its own tight loop so the switch is paid once per call, not per value, and the
 * piecewise-linear ones (ReLU family, hard sigmoid) stay branch-free enough to vectorize. */
#include <math.h>

#include "kernels.h"

/* 1/sqrt(2) rounded to float; M_SQRT1_2 is POSIX, not C11. */
#define MK_SQRT1_2F 0.70710678118654752f

/* exp() of a non-positive argument cannot overflow, so both branches are safe for any x;
 * the naive 1/(1+exp(-x)) overflows exp for x < -88 (harmless as inf, but it also loses all
 * relative precision far left, where e/(1+e) keeps it). */
static float sigmoid1(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static void relu(float alpha, float hi, float *x, size_t n)
{
    if (alpha == 0.0f && isinf(hi)) {
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
    } else if (alpha == 0.0f) { /* ReLU6 and friends: a clamp */
        for (size_t i = 0; i < n; i++) {
            float v = x[i] > 0.0f ? x[i] : 0.0f;
            x[i] = v < hi ? v : hi;
        }
    } else { /* LeakyReLU, or Keras ReLU(negative_slope=..., max_value=...) */
        for (size_t i = 0; i < n; i++) {
            float p = x[i] > 0.0f ? x[i] : 0.0f, q = x[i] < 0.0f ? x[i] : 0.0f;
            float v = p + alpha * q;
            x[i] = v < hi ? v : hi;
        }
    }
}

/* Subtracting the row maximum keeps every exp() in (0, 1]: no overflow for large logits and
 * the largest term is exactly 1, so the sum is >= 1 and the division is safe. The sum is kept
 * in double because rows can be long (1000 classes) and it costs nothing next to expf. */
static void softmax(float *x, size_t n, size_t ch)
{
    if (ch == 0)
        return;
    for (size_t r = 0; r + ch <= n; r += ch) {
        float *row = x + r;
        float mx = row[0];
        for (size_t i = 1; i < ch; i++)
            mx = row[i] > mx ? row[i] : mx;
        double sum = 0.0;
        for (size_t i = 0; i < ch; i++) {
            row[i] = expf(row[i] - mx);
            sum += row[i];
        }
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < ch; i++)
            row[i] *= inv;
    }
}

void mk_activation_ref(const mk_activation *a, float *x, size_t n, size_t channels)
{
    switch (a->code) {
    case MK_ACT_LINEAR:
        return;
    case MK_ACT_RELU:
        relu(a->alpha, a->max, x, n);
        return;
    case MK_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            x[i] = sigmoid1(x[i]);
        return;
    case MK_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
        return;
    case MK_ACT_SWISH:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * sigmoid1(x[i]);
        return;
    case MK_ACT_SOFTMAX:
        softmax(x, n, channels);
        return;
    case MK_ACT_ELU:
        /* expm1 keeps relative precision for small negative x, as tf.nn.elu does. */
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : a->alpha * expm1f(x[i]);
        return;
    case MK_ACT_HARD_SIGMOID:
        /* Keras 3: relu6(x + 3) / 6, i.e. clip(x/6 + 1/2, 0, 1) (every backend in
         * keras/src/backend; the ops docstring's "0.2x + 0.5" is stale). Written as the TF backend computes it so
         * the rounding matches; the division by 6 is deliberate. */
        for (size_t i = 0; i < n; i++) {
            float v = x[i] + 3.0f;
            v = v > 0.0f ? v : 0.0f;
            v = v < 6.0f ? v : 6.0f;
            x[i] = v / 6.0f;
        }
        return;
    case MK_ACT_HARD_SIGMOID_K2:
        /* Keras 2 / tf_keras backend.hard_sigmoid: clip(0.2x + 0.5, 0, 1), saturating at
         * +-2.5 instead of +-3. Same name, different function: the exporter picks the code
         * from the Keras version that saved the model. */
        for (size_t i = 0; i < n; i++) {
            float v = 0.2f * x[i] + 0.5f;
            v = v > 0.0f ? v : 0.0f;
            x[i] = v < 1.0f ? v : 1.0f;
        }
        return;
    case MK_ACT_GELU:
        /* Exact (erf) GELU, Keras' default approximate=False. 0.5x(1 + erf(x/sqrt2)) cancels
         * catastrophically for x << 0; erfc(-x/sqrt2) is the same value without cancellation. */
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * erfcf(-x[i] * MK_SQRT1_2F);
        return;
    default:
        return; /* the loader rejects unknown codes */
    }
}
