/* Image decoding (JPEG via libjpeg-turbo, PNG via libpng) and Pillow-style resampling into the
 * model's input tensor. Internal: the public entry points are in morsel.h. */
#ifndef MORSEL_IMAGE_H
#define MORSEL_IMAGE_H

#include "morsel.h"
#include "error.h"

/* A growable RGB pixel buffer owned by a context, so repeated classification reuses memory. */
typedef struct mi_buffer {
    uint8_t *data;
    size_t capacity;
} mi_buffer;

void mi_buffer_free(mi_buffer *b);

/* Limits used when morsel_image_limits is NULL or a field of it is 0. */
#define MI_DEFAULT_MAX_ENCODED_BYTES ((uint64_t)64 << 20) /* 64 MiB */
#define MI_DEFAULT_MAX_PIXELS ((uint64_t)64 << 20)        /* 64 Mi pixels (width * height) */

/* Decodes into buf (grown with realloc only when too small). Detects JPEG/PNG by magic bytes.
 * Truncated or corrupt data gives MORSEL_ERR_IMAGE, never a crash; limits give MORSEL_ERR_LIMIT. */
morsel_status mi_decode(const void *bytes, size_t size, const morsel_image_limits *lim,
                        mi_buffer *buf, int *width, int *height, morsel_error *err);

/* Floats of scratch mi_preprocess needs for a source of src_w x src_h into dst_w x dst_h. */
size_t mi_preprocess_scratch(int src_w, int src_h, int dst_w, int dst_h);

/* Resize (+ optional centre crop) with pp->filter, reorder to BGR if asked, scale/offset, into
 * dst [dst_h, dst_w, 3] float32. scratch holds mi_preprocess_scratch() floats. */
morsel_status mi_preprocess(const uint8_t *rgb, int width, int height, size_t stride,
                            const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                            float *scratch, morsel_error *err);

#endif
