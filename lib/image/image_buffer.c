/* The decoded-pixel buffer, the limits every decoder checks, and the format dispatch. */
#include "image.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void mi_buffer_free(mi_buffer *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->capacity = 0;
}

morsel_status mi_buffer_reserve(mi_buffer *b, size_t need, morsel_error *err)
{
    if (b->capacity >= need && b->data)
        return MORSEL_OK;
    uint8_t *p = realloc(b->data, need ? need : 1);
    if (!p)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "cannot allocate %zu bytes for decoded pixels",
                           need);
    b->data = p;
    b->capacity = need ? need : 1;
    return MORSEL_OK;
}

static void effective_limits(const morsel_decode_options *opt, uint64_t *max_bytes,
                             uint64_t *max_pixels)
{
    *max_bytes = MI_DEFAULT_MAX_ENCODED_BYTES;
    *max_pixels = MI_DEFAULT_MAX_PIXELS;
    if (opt) {
        if (opt->max_encoded_bytes)
            *max_bytes = opt->max_encoded_bytes;
        if (opt->max_pixels)
            *max_pixels = opt->max_pixels;
    }
}

/* w*h against the pixel limit, and the RGB byte count, without overflowing. */
morsel_status mi_check_dims(const char *what, uint64_t w, uint64_t h, uint64_t max_pixels,
                            size_t *rgb_bytes, morsel_error *err)
{
    if (w == 0 || h == 0)
        return morsel_fail(err, MORSEL_ERR_IMAGE, "%s: image has zero width or height", what);
    if (w > INT_MAX || h > INT_MAX || w > max_pixels / h)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "%s: image is %llux%llu pixels, more than the limit of %llu pixels",
                           what, (unsigned long long)w, (unsigned long long)h,
                           (unsigned long long)max_pixels);
    if (w * h > SIZE_MAX / 3)
        return morsel_fail(err, MORSEL_ERR_LIMIT, "%s: image too large for this platform", what);
    *rgb_bytes = (size_t)(w * h * 3);
    return MORSEL_OK;
}

morsel_status mi_decode(const void *bytes, size_t size, const morsel_decode_options *opt,
                        int target_w, int target_h, mi_buffer *buf, int *width, int *height,
                        morsel_error *err)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if ((!bytes && size) || !buf || !width || !height)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "decode: NULL argument");
    if (opt && ((unsigned)opt->exif_orientation > 1 || (unsigned)opt->jpeg_fast_scale > 1))
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "decode options: exif_orientation and jpeg_fast_scale must be 0 or 1");
    if (target_w < 0 || target_h < 0)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "decode: negative target size");
    uint64_t max_bytes, max_pixels;
    effective_limits(opt, &max_bytes, &max_pixels);
    if ((uint64_t)size > max_bytes)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "encoded image is %zu bytes, more than the limit of %llu bytes", size,
                           (unsigned long long)max_bytes);
    const uint8_t *p = bytes;
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return mi_decode_jpeg(p, size, max_pixels, opt, target_w, target_h, buf, width, height,
                              err);
    if (size >= 8 && memcmp(p, png_magic, 8) == 0)
        return mi_decode_png(p, size, max_pixels, buf, width, height, err);
    if (size == 0)
        return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image (empty input)");
    return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image");
}
