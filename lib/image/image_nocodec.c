/* The decoders of a build without libjpeg/libpng (MORSEL_WITH_IMAGES=OFF, the minimal build):
 * the format is still sniffed by mi_decode, so the caller learns which codec is missing.
 * classify_rgb and raw tensors need neither. */
#include "image.h"
#include "error.h"

morsel_status mi_decode_jpeg(const uint8_t *data, size_t size, const mi_limits *lim,
                            const morsel_decode_options *opt, int target_w, int target_h,
                            mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    (void)data, (void)size, (void)lim, (void)opt, (void)target_w, (void)target_h;
    (void)buf, (void)width, (void)height;
    return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                       "JPEG decoding is not in this build (MORSEL_WITH_IMAGES=OFF); "
                       "pass decoded pixels to morsel_classify_rgb");
}

morsel_status mi_decode_png(const uint8_t *data, size_t size, const mi_limits *lim,
                           mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    (void)data, (void)size, (void)lim, (void)buf, (void)width, (void)height;
    return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                       "PNG decoding is not in this build (MORSEL_WITH_IMAGES=OFF); "
                       "pass decoded pixels to morsel_classify_rgb");
}
