/* Crop (Keras CenterCrop, x[:, a:b, c:d] slices, the aspect-ratio crop before a resize):
 * out_h rows of out_w pixels copied from (top, left). The loader checked the box lies inside. */
#include <string.h>

#include "kernels.h"

void mk_crop_ref(int in_w, int c, int top, int left, int out_h, int out_w, const float *x,
                 float *y)
{
    size_t cc = (size_t)c, n = (size_t)out_w * cc;
    for (int r = 0; r < out_h; r++)
        memcpy(y + (size_t)r * n,
               x + (((size_t)(top + r)) * (size_t)in_w + (size_t)left) * cc, n * sizeof *y);
}
