/* The decoded-pixel buffer, the limits every decoder checks, and the format dispatch. */
#include "image.h"

#include "abi.h"

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

void mi_resolve_limits(const morsel_decode_options *opt, mi_limits *lim,
                       uint64_t *max_encoded_bytes)
{
    uint64_t bytes = MI_DEFAULT_MAX_ENCODED_BYTES;
    *lim = (mi_limits){MI_DEFAULT_MAX_PIXELS, MI_DEFAULT_MAX_DECODE_WORK,
                       MI_DEFAULT_MAX_DECODE_MEMORY};
    if (opt) {
        if (opt->max_encoded_bytes)
            bytes = opt->max_encoded_bytes;
        if (opt->max_pixels)
            lim->max_pixels = opt->max_pixels;
        /* a caller built against the 0.2.0 header has no budget fields: the defaults */
        if (opt->struct_size >= MF_DECODE_V2) {
            if (opt->max_decode_work)
                lim->max_work = opt->max_decode_work;
            if (opt->max_decode_memory)
                lim->max_memory = opt->max_decode_memory;
        }
    }
    if (max_encoded_bytes)
        *max_encoded_bytes = bytes;
}

morsel_status mi_check_memory(const char *what, uint64_t need, const mi_limits *lim,
                              morsel_error *err)
{
    if (need > lim->max_memory)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "%s: decoding needs %llu bytes, more than the decode memory limit of "
                           "%llu bytes", what, (unsigned long long)need,
                           (unsigned long long)lim->max_memory);
    return MORSEL_OK;
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
    uint64_t max_bytes;
    mi_limits lim;
    mi_resolve_limits(opt, &lim, &max_bytes);
    if ((uint64_t)size > max_bytes)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "encoded image is %zu bytes, more than the limit of %llu bytes", size,
                           (unsigned long long)max_bytes);
    const uint8_t *p = bytes;
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return mi_decode_jpeg(p, size, &lim, opt, target_w, target_h, buf, width, height,
                              err);
    if (size >= 8 && memcmp(p, png_magic, 8) == 0)
        return mi_decode_png(p, size, &lim, buf, width, height, err);
    if (size == 0)
        return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image (empty input)");
    return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image");
}
