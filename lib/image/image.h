/* Image decoding (JPEG via libjpeg-turbo, PNG via libpng) and Pillow-style resampling into the
 * model's input tensor. Internal: the public entry points are in morsel.h. */
#ifndef MORSEL_IMAGE_H
#define MORSEL_IMAGE_H

#include "morsel.h"
#include "error.h"

#include <stddef.h>

/* A growable RGB pixel buffer owned by a context, so repeated classification reuses memory. */
typedef struct mi_buffer {
    uint8_t *data;
    size_t capacity;
} mi_buffer;

void mi_buffer_free(mi_buffer *b);
/* Grows b to at least need bytes (contents not kept). */
morsel_status mi_buffer_reserve(mi_buffer *b, size_t need, morsel_error *err);

/* Limits used when morsel_decode_options is NULL or a limit field of it is 0. */
#define MI_DEFAULT_MAX_ENCODED_BYTES ((uint64_t)64 << 20) /* 64 MiB */
#define MI_DEFAULT_MAX_PIXELS ((uint64_t)64 << 20)        /* 64 Mi pixels (width * height) */
#define MI_DEFAULT_MAX_DECODE_WORK ((uint64_t)2 << 30)    /* pixel-scans: see morsel.h */
#define MI_DEFAULT_MAX_DECODE_MEMORY ((uint64_t)512 << 20) /* bytes held by one decode */

/* The limits of one decode, resolved (never 0). */
typedef struct mi_limits {
    uint64_t max_pixels, max_work, max_memory;
} mi_limits;

/* opt's limits with the defaults for its 0 fields (and for the fields its struct_size does not
 * reach); opt NULL: all defaults. max_encoded_bytes too when asked (may be NULL). */
void mi_resolve_limits(const morsel_decode_options *opt, mi_limits *lim,
                       uint64_t *max_encoded_bytes);

/* Decodes into buf (grown with realloc only when too small). Detects JPEG/PNG by magic bytes.
 * Truncated or corrupt data gives MORSEL_ERR_IMAGE, never a crash; limits give MORSEL_ERR_LIMIT.
 * opt NULL: the defaults (Pillow-exact). target_w x target_h: the size the pixels will be resized
 * to, used only by opt->jpeg_fast_scale (0 x 0: no scaling). The limits apply to the stored
 * size; *width x *height is the decoded size (after EXIF orientation and DCT scaling). */
morsel_status mi_decode(const void *bytes, size_t size, const morsel_decode_options *opt,
                        int target_w, int target_h, mi_buffer *buf, int *width, int *height,
                        morsel_error *err);

/* ---- shared by the decoders (image_buffer.c, image_exif.c) ---- */

/* w*h against the pixel limit (MORSEL_ERR_LIMIT), zero sizes (MORSEL_ERR_IMAGE), and the RGB
 * byte count, without overflowing. what names the format in messages. */
morsel_status mi_check_dims(const char *what, uint64_t w, uint64_t h, uint64_t max_pixels,
                            size_t *rgb_bytes, morsel_error *err);

/* One decoder each (image_jpeg.c, image_png.c): the size limit is checked, the format sniffed. */
morsel_status mi_decode_jpeg(const uint8_t *data, size_t size, const mi_limits *lim,
                            const morsel_decode_options *opt, int target_w, int target_h,
                            mi_buffer *buf, int *width, int *height, morsel_error *err);
morsel_status mi_decode_png(const uint8_t *data, size_t size, const mi_limits *lim,
                           mi_buffer *buf, int *width, int *height, morsel_error *err);

/* MORSEL_ERR_LIMIT when a decode holding need bytes exceeds the memory budget. */
morsel_status mi_check_memory(const char *what, uint64_t need, const mi_limits *lim,
                              morsel_error *err);

/* Pillow's XMP fallback: the orientation in an XMP packet (after its namespace id), 0 if none. */
int mi_xmp_orientation(const uint8_t *p, size_t n);

/* Where decoded row y (w pixels of a w x h image) lands once ImageOps.exif_transpose has applied
 * orientation 1..8: pixel x goes to out + (*start + x * *step) * 3. */
void mi_oriented_row(int orientation, size_t w, size_t h, size_t y, ptrdiff_t *start,
                     ptrdiff_t *step);

/* The EXIF orientation Pillow's getexif() reads from a JPEG's Exif APP1 payload (starting with
 * "Exif\0\0", segments concatenated): 2..8 the transpose ImageOps.exif_transpose applies; 1 an
 * Orientation tag that asks for nothing (1, 0, 9, a string, ...); 0 no Orientation tag (then
 * Pillow looks at XMP); -1 a block Pillow cannot read at all (bad TIFF header). Never reads
 * outside data[0..size). Exposed for the tests. */
int mi_exif_orientation(const uint8_t *data, size_t size);

/* MORSEL_ERR_ARGUMENT unless pp is a morsel_preprocess the resizer can use: struct_size set,
 * a known filter, center_crop and bgr 0 or 1, finite scale and offset. */
morsel_status mi_check_preprocess(const morsel_preprocess *pp, morsel_error *err);

/* Floats of scratch mi_preprocess needs for a source of src_w x src_h into dst_w x dst_h. */
size_t mi_preprocess_scratch(int src_w, int src_h, int dst_w, int dst_h);

/* Resize (+ optional centre crop) with pp->filter, reorder to BGR if asked, scale/offset, into
 * dst [dst_h, dst_w, 3] float32. scratch holds mi_preprocess_scratch() floats. */
morsel_status mi_preprocess(const uint8_t *rgb, int width, int height, size_t stride,
                            const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                            float *scratch, morsel_error *err);
/* mi_preprocess with the resampler rows of one ISA ("scalar", "avx2", "avx512"; NULL: the best
 * this CPU runs): MORSEL_ERR_UNSUPPORTED when absent. Every ISA gives the same floats. */
morsel_status mi_preprocess_isa(const uint8_t *rgb, int width, int height, size_t stride,
                                const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                                float *scratch, const char *isa, morsel_error *err);

#endif
