/* Public image entry points: thin wrappers over mi_decode / mi_preprocess that allocate what
 * they need with malloc (the context-based classify path reuses per-context buffers instead). */
#include "image.h"

#include <math.h>
#include <stdlib.h>

#include "abi.h"

morsel_status morsel_decode_image(const void *bytes, size_t size, const morsel_decode_options *opt,
                                  int target_w, int target_h, uint8_t **rgb, int *width,
                                  int *height, morsel_error *err)
{
    if (!rgb || !width || !height)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "morsel_decode_image: NULL output pointer");
    *rgb = NULL;
    if (opt) {
        morsel_status s =
            mf_struct_check(opt->struct_size, MF_DECODE_V1, "morsel_decode_options", err);
        if (s)
            return s;
    }
    mi_buffer buf = {NULL, 0};
    int w = 0, h = 0;
    morsel_status st = mi_decode(bytes, size, opt, target_w, target_h, &buf, &w, &h, err);
    if (st != MORSEL_OK) {
        mi_buffer_free(&buf);
        return st;
    }
    *rgb = buf.data; /* ownership passes to the caller */
    *width = w;
    *height = h;
    return MORSEL_OK;
}

morsel_status mi_check_preprocess(const morsel_preprocess *pp, morsel_error *err)
{
    if (!pp)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "NULL preprocessing");
    morsel_status s =
        mf_struct_check(pp->struct_size, MF_PREPROCESS_V1, "morsel_preprocess", err);
    if (s)
        return s;
    if ((unsigned)pp->filter > MORSEL_RESIZE_BOX)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "preprocessing: resize filter %d is not a morsel_resize_filter",
                           (int)pp->filter);
    if ((unsigned)pp->center_crop > 1 || (unsigned)pp->bgr > 1)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "preprocessing: center_crop (%d) and bgr (%d) must be 0 or 1",
                           pp->center_crop, pp->bgr);
    for (int c = 0; c < 3; c++)
        if (!isfinite(pp->scale[c]) || !isfinite(pp->offset[c]))
            return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                               "preprocessing: scale[%d] = %g and offset[%d] = %g must be finite",
                               c, (double)pp->scale[c], c, (double)pp->offset[c]);
    return MORSEL_OK;
}

morsel_status morsel_preprocess_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                                    const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                                    morsel_error *err)
{
    if (!rgb || !pp || !dst)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "morsel_preprocess_rgb: NULL argument");
    if (width <= 0 || height <= 0 || dst_w <= 0 || dst_h <= 0)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "morsel_preprocess_rgb: bad size");
    morsel_status ps = mi_check_preprocess(pp, err);
    if (ps)
        return ps;
    size_t n = mi_preprocess_scratch(width, height, dst_w, dst_h);
    if (n == SIZE_MAX || n > SIZE_MAX / sizeof(float))
        return morsel_fail(err, MORSEL_ERR_LIMIT, "morsel_preprocess_rgb: image too large");
    float *scratch = malloc(n * sizeof(float));
    if (!scratch)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "morsel_preprocess_rgb: cannot allocate %zu "
                           "bytes of scratch", n * sizeof(float));
    morsel_status st = mi_preprocess(rgb, width, height, stride, pp, dst_w, dst_h, dst, scratch,
                                     err);
    free(scratch);
    return st;
}
