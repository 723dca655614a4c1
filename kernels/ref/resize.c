/* Resizing inside the model (Keras Resizing, CenterCrop's upscaling path, tf.image.resize),
 * reproducing TensorFlow's CPU kernels bit for bit (tensorflow/core/kernels/image/
 * resize_bilinear_op.cc and resize_nearest_neighbor_op.cc, half_pixel_centers=true,
 * align_corners=false), because a model's later layers see exactly these values:
 *
 *   scale = (float)in / (float)out                       (CalculateResizeScale)
 *   bilinear: src = ((float)i + 0.5f) * scale - 0.5f     (HalfPixelScaler)
 *             lower = max(floor(src), 0), upper = min(ceil(src), in - 1), lerp = src - floor(src)
 *             top = tl + (tr - tl) * xlerp; bottom = bl + (br - bl) * xlerp;
 *             y = top + (bottom - top) * ylerp
 *   nearest:  src = min(floor(((float)i + 0.5f) * scale), in - 1), at least 0
 *
 * All of it in float: the build is ISO C11 (no FMA contraction), so each operation rounds as
 * TF's does. The coordinates are recomputed per output pixel rather than tabled: it costs a few
 * flops per pixel next to the channel loop and keeps the kernel free of scratch memory. */
#include <math.h>
#include <string.h>

#include "kernels.h"

typedef struct tap {
    int lo, hi;
    float lerp;
} tap;

static tap bilinear_tap(int i, float scale, int in_size)
{
    float src = ((float)i + 0.5f) * scale - 0.5f;
    float f = floorf(src);
    tap t;
    t.lo = f > 0.0f ? (int)f : 0;
    if (t.lo > in_size - 1)
        t.lo = in_size - 1;
    int c = (int)ceilf(src);
    t.hi = c < in_size - 1 ? c : in_size - 1;
    if (t.hi < 0)
        t.hi = 0;
    t.lerp = src - f;
    return t;
}

static int nearest_index(int i, float scale, int in_size)
{
    int s = (int)floorf(((float)i + 0.5f) * scale);
    if (s > in_size - 1)
        s = in_size - 1;
    return s < 0 ? 0 : s;
}

void mk_resize_ref(int method, int in_h, int in_w, int c, int out_h, int out_w, const float *x,
                   float *y)
{
    size_t cc = (size_t)c, row = (size_t)in_w * cc;
    float sh = (float)in_h / (float)out_h, sw = (float)in_w / (float)out_w;
    if (method == MK_RESIZE_NEAREST) {
        for (int oy = 0; oy < out_h; oy++) {
            const float *xr = x + (size_t)nearest_index(oy, sh, in_h) * row;
            for (int ox = 0; ox < out_w; ox++)
                memcpy(y + ((size_t)oy * (size_t)out_w + (size_t)ox) * cc,
                       xr + (size_t)nearest_index(ox, sw, in_w) * cc, cc * sizeof *y);
        }
        return;
    }
    for (int oy = 0; oy < out_h; oy++) {
        tap ty = bilinear_tap(oy, sh, in_h);
        const float *top = x + (size_t)ty.lo * row, *bot = x + (size_t)ty.hi * row;
        for (int ox = 0; ox < out_w; ox++) {
            tap tx = bilinear_tap(ox, sw, in_w);
            const float *tl = top + (size_t)tx.lo * cc, *tr = top + (size_t)tx.hi * cc;
            const float *bl = bot + (size_t)tx.lo * cc, *br = bot + (size_t)tx.hi * cc;
            float *yr = y + ((size_t)oy * (size_t)out_w + (size_t)ox) * cc;
            for (size_t i = 0; i < cc; i++) {
                float t = tl[i] + (tr[i] - tl[i]) * tx.lerp;
                float b = bl[i] + (br[i] - bl[i]) * tx.lerp;
                yr[i] = t + (b - t) * ty.lerp;
            }
        }
    }
}
