/* Element-wise ops and pure data movement: affine (unfolded BatchNormalization, Rescaling),
 * add, multiply, concat, pad.
 *
 * affine, add and multiply read every input at index j before writing y[j], so y may be the
 * same buffer as x (affine) or as any full-size input (add, multiply): an engine can run them
 * in place. A broadcast multiply input must not alias y. */
#include <string.h>

#include "kernels.h"

void mk_affine_ref(size_t n, int c, const float *x, const float *scale, const float *shift,
                   const mk_activation *act, float *y)
{
    size_t cc = (size_t)c;
    /* Row by row of c channels: no modulo per element, and the row is activated while hot. */
    for (size_t r = 0; r + cc <= n; r += cc) {
        for (size_t i = 0; i < cc; i++)
            y[r + i] = x[r + i] * scale[i] + shift[i];
        mk_activation_ref(act, y + r, cc, cc);
    }
}

/* Summed left to right, x1 + x2 + ... , the order Keras' Add uses. */
void mk_add_ref(int n, const float *const *xs, size_t count, const mk_activation *act, float *y)
{
    if (n == 2) {
        const float *a = xs[0], *b = xs[1];
        for (size_t j = 0; j < count; j++)
            y[j] = a[j] + b[j];
    } else {
        for (size_t j = 0; j < count; j++) {
            float s = xs[0][j];
            for (int i = 1; i < n; i++)
                s += xs[i][j];
            y[j] = s;
        }
    }
    mk_activation_ref(act, y, count, count);
}

/* Broadcast inputs repeat with period counts[i] (which divides count). The output is walked in
 * runs over which no input wraps around, so each run is a plain contiguous loop. */
void mk_multiply_ref(int n, const float *const *xs, const size_t *counts, size_t count,
                     const mk_activation *act, float *y)
{
    size_t j = 0;
    while (j < count) {
        size_t run = count - j;
        size_t off[8]; /* n <= 8 in the file format */
        for (int i = 0; i < n; i++) {
            off[i] = j % counts[i];
            if (counts[i] - off[i] < run)
                run = counts[i] - off[i];
        }
        if (n == 2) {
            const float *a = xs[0] + off[0], *b = xs[1] + off[1];
            for (size_t k = 0; k < run; k++)
                y[j + k] = a[k] * b[k];
        } else {
            for (size_t k = 0; k < run; k++) {
                float p = xs[0][off[0] + k];
                for (int i = 1; i < n; i++)
                    p *= xs[i][off[i] + k];
                y[j + k] = p;
            }
        }
        j += run;
    }
    /* Softmax after a multiply would need the output's channel count, which this signature
     * does not carry; the format only fuses element-wise activations here. */
    mk_activation_ref(act, y, count, count);
}

void mk_concat_ref(int n, const float *const *xs, const size_t *inner, size_t outer, float *y)
{
    for (size_t o = 0; o < outer; o++) {
        for (int i = 0; i < n; i++) {
            memcpy(y, xs[i] + o * inner[i], inner[i] * sizeof *y);
            y += inner[i];
        }
    }
}

static void fill(float *y, size_t n, float value)
{
    for (size_t i = 0; i < n; i++)
        y[i] = value;
}

void mk_pad_ref(int in_h, int in_w, int c, int top, int bottom, int left, int right, float value,
                const float *x, float *y)
{
    size_t cc = (size_t)c, out_row = (size_t)(left + in_w + right) * cc;
    size_t in_row = (size_t)in_w * cc;
    fill(y, (size_t)top * out_row, value);
    y += (size_t)top * out_row;
    for (int r = 0; r < in_h; r++) {
        fill(y, (size_t)left * cc, value);
        memcpy(y + (size_t)left * cc, x + (size_t)r * in_row, in_row * sizeof *y);
        fill(y + (size_t)left * cc + in_row, (size_t)right * cc, value);
        y += out_row;
    }
    fill(y, (size_t)bottom * out_row, value);
}
