/* PNG decoding (libpng) into 8-bit RGB, giving the pixels Pillow gives for
 * Image.open(f).convert('RGB').
 *
 * libpng reports fatal errors by longjmp. To keep that well defined, every setjmp lives in
 * a small "run" function whose state (the library structs, the cleanup flags, the result) sits in
 * a struct owned by the caller and reached through a pointer, so nothing the run function changes
 * after setjmp is an automatic local of it. The caller always does the cleanup, on success and
 * on error alike, so no path leaks.
 */
#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

/* Ancillary chunks are skipped unread (png_run); these bound what libpng may still hold. */
#define MI_PNG_CHUNK_CACHE_MAX 16
#define MI_PNG_CHUNK_MAX 8000000 /* libpng's own default (pnglibconf.h), made explicit */

/* How libpng's rows (after png_set_packing: one byte per pixel below 8 bits; 16-bit samples
 * big-endian) become RGB, the way Pillow's unpackers + convert('RGB') do it:
 *   grey 1/2/4 bit    value * 255 / 85 / 17 (modes "1", "L;2", "L;4")
 *   grey 16 bit       Pillow opens it as mode I;16, and I;16 -> RGB CLIPS: v > 255 ? 255 : v
 *                     (so most 16-bit grey PNGs come out nearly white: that is what Pillow does)
 *   other 16 bit      RGB;16B, RGBA;16B, LA;16B keep the HIGH byte of each sample
 *   alpha             dropped, never composited; tRNS is ignored the same way
 *   palette           PLTE entry; an index past the palette's end gives black (0,0,0)
 */
typedef struct png_pixfmt {
    int color_type, bit_depth, bpp;
    uint8_t palette[256 * 3]; /* entries past num_palette stay zero */
} png_pixfmt;

typedef struct png_state {
    png_structp png;
    png_infop info;
    /* in */
    const uint8_t *data;
    size_t size, pos;
    const mi_limits *lim;
    mi_buffer *buf;
    morsel_error *err;
    /* progress (kept here, not in locals of the function that calls setjmp) */
    png_pixfmt f;
    png_uint_32 ihdr_w, ihdr_h;
    int bit_depth, color_type, interlace;
    png_colorp plte;
    int n_plte;
    size_t rgb_bytes, rowbytes;
    uint32_t width, height;
    uint32_t rows_done; /* non-interlaced: rows converted to RGB so far */
    uint64_t rows_expected, rows_seen; /* rows (of all passes) that carry pixels */
    int eof;                           /* the read callback ran out of data */
    /* out */
    char msg[256];
    morsel_status status;
} png_state;

static void png_read_cb(png_structp png, png_bytep out, size_t n)
{
    png_state *s = (png_state *)png_get_io_ptr(png);
    if (n > s->size - s->pos) {
        s->eof = 1;
        png_error(png, "image data is truncated (premature end of PNG file)");
    }
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

/* A no-op user transform: libpng calls it once per row that carries pixels, after
 * decompression and before the row is stored, so it counts decoded rows. */
static void png_count_rows_cb(png_structp png, png_row_infop row_info, png_bytep data)
{
    (void)row_info;
    (void)data;
    png_state *s = (png_state *)png_get_error_ptr(png);
    s->rows_seen++;
}

static void png_error_cb(png_structp png, png_const_charp msg)
{
    png_state *s = (png_state *)png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_pixel(const png_pixfmt *f, const uint8_t *p, uint8_t rgb[3])
{
    uint8_t v;
    switch (f->color_type) {
    case PNG_COLOR_TYPE_GRAY:
        switch (f->bit_depth) {
        case 1: v = p[0] ? 255 : 0; break;
        case 2: v = (uint8_t)(p[0] * 85); break;
        case 4: v = (uint8_t)(p[0] * 17); break;
        case 16: v = p[0] ? 255 : p[1]; break;
        default: v = p[0]; break;
        }
        rgb[0] = rgb[1] = rgb[2] = v;
        return;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        rgb[0] = rgb[1] = rgb[2] = p[0];
        return;
    case PNG_COLOR_TYPE_PALETTE:
        memcpy(rgb, f->palette + 3 * (size_t)p[0], 3);
        return;
    default: { /* RGB, RGBA: high byte at stride 2 when 16-bit */
        int step = f->bit_depth == 16 ? 2 : 1;
        rgb[0] = p[0];
        rgb[1] = p[step];
        rgb[2] = p[2 * step];
        return;
    }
    }
}

/* One raw row (non-interlaced images) into its RGB row, in another buffer. */
static void png_row_to_rgb(const png_pixfmt *f, const uint8_t *raw, uint8_t *rgb, size_t w)
{
    for (size_t x = 0; x < w; x++)
        png_pixel(f, raw + x * (size_t)f->bpp, rgb + 3 * x);
}

/* The raw rows are read into buf at stride rowbytes = w * bpp; the RGB result overwrites them in
 * place at stride 3w. With bpp >= 3 each RGB pixel lands at or before its raw pixel, so a forward
 * sweep never clobbers unread data; with bpp < 3 it lands at or after, so sweep backwards. */
static void png_to_rgb_inplace(const png_pixfmt *f, uint8_t *buf, size_t npix)
{
    const size_t bpp = (size_t)f->bpp;
    uint8_t rgb[3];
    if (bpp >= 3) {
        for (size_t i = 0; i < npix; i++) {
            png_pixel(f, buf + i * bpp, rgb);
            memcpy(buf + 3 * i, rgb, 3);
        }
    } else {
        for (size_t i = npix; i-- > 0;) {
            png_pixel(f, buf + i * bpp, rgb);
            memcpy(buf + 3 * i, rgb, 3);
        }
    }
}

/* Returns 0 when it finished normally (s->status says how), 1 after a libpng error. */
static int png_run(png_state *s)
{
    if (setjmp(png_jmpbuf(s->png)))
        return 1;

    png_set_read_fn(s->png, s, png_read_cb);
    /* Our own pixel limit decides (MORSEL_ERR_LIMIT), not libpng's 1,000,000 default. */
    png_set_user_limits(s->png, 0x7fffffffu, 0x7fffffffu);
    /* Hostile ancillary chunks: nothing Pillow's convert('RGB') uses lives in them (no colour
     * management, gamma or text), so libpng skips every one but tRNS (checking only its CRC):
     * an iCCP or zTXt decompression bomb is never inflated, and nothing is cached. The limits
     * are set explicitly, not left to the distribution's build: a non-image chunk over
     * MI_PNG_CHUNK_MAX bytes is refused outright. */
    png_set_keep_unknown_chunks(s->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_chunk_cache_max(s->png, MI_PNG_CHUNK_CACHE_MAX);
    png_set_chunk_malloc_max(s->png, MI_PNG_CHUNK_MAX);
    png_read_info(s->png, s->info);

    png_get_IHDR(s->png, s->info, &s->ihdr_w, &s->ihdr_h, &s->bit_depth, &s->color_type,
                 &s->interlace, NULL, NULL);
    const png_uint_32 w = s->ihdr_w, h = s->ihdr_h;
    const int bit_depth = s->bit_depth, color_type = s->color_type;
    s->status = mi_check_dims("PNG", w, h, s->lim->max_pixels, &s->rgb_bytes, s->err);
    if (s->status != MORSEL_OK)
        return 0;

    s->f.color_type = color_type;
    s->f.bit_depth = bit_depth;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        if (!png_get_PLTE(s->png, s->info, &s->plte, &s->n_plte) || s->n_plte <= 0) {
            s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "PNG: palette image without PLTE");
            return 0;
        }
        for (int i = 0; i < s->n_plte && i < 256; i++) {
            s->f.palette[3 * i + 0] = s->plte[i].red;
            s->f.palette[3 * i + 1] = s->plte[i].green;
            s->f.palette[3 * i + 2] = s->plte[i].blue;
        }
    }

    if (bit_depth < 8)
        png_set_packing(s->png); /* one byte per pixel, value unscaled */
    const int passes = png_set_interlace_handling(s->png);
    png_set_read_user_transform_fn(s->png, png_count_rows_cb);
    png_read_update_info(s->png, s->info);

    const size_t rowbytes = png_get_rowbytes(s->png, s->info);
    if (rowbytes == 0 || rowbytes % w != 0 || rowbytes / w > 8) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "PNG: unexpected row layout");
        return 0;
    }
    s->f.bpp = (int)(rowbytes / w);
    if (rowbytes > SIZE_MAX / h) {
        s->status = morsel_fail(s->err, MORSEL_ERR_LIMIT, "PNG: image too large");
        return 0;
    }
    /* Non-interlaced rows are converted one at a time, through one raw row kept after the RGB
     * image; interlaced passes need the whole raw image (converted in place afterwards). */
    const int interlaced = s->interlace != PNG_INTERLACE_NONE;
    const size_t raw_bytes = rowbytes * h;
    const size_t held = interlaced ? (raw_bytes > s->rgb_bytes ? raw_bytes : s->rgb_bytes)
                                   : s->rgb_bytes + rowbytes;
    /* + libpng's two row buffers and inflate's state and 32 KiB window */
    s->status = mi_check_memory("PNG", (uint64_t)held + 2 * (uint64_t)rowbytes + (64u << 10),
                                s->lim, s->err);
    if (s->status != MORSEL_OK)
        return 0;
    s->status = mi_buffer_reserve(s->buf, held, s->err);
    if (s->status != MORSEL_OK)
        return 0;
    s->width = w;
    s->height = h;
    s->rowbytes = rowbytes;
    if (s->interlace == PNG_INTERLACE_NONE) {
        s->rows_expected = h;
    } else {
        for (int p = 0; p < 7; p++)
            if (PNG_PASS_COLS(w, p) > 0)
                s->rows_expected += PNG_PASS_ROWS(h, p);
    }

    if (!interlaced) {
        uint8_t *raw = s->buf->data + s->rgb_bytes;
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(s->png, raw, NULL);
            png_row_to_rgb(&s->f, raw, s->buf->data + (size_t)y * w * 3, w);
            s->rows_done = y + 1;
        }
    } else {
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++)
                png_read_row(s->png, s->buf->data + (size_t)y * rowbytes, NULL);
    }
    /* No png_read_end: chunks after the image data are not needed. */
    s->status = MORSEL_OK;
    return 0;
}

morsel_status mi_decode_png(const uint8_t *data, size_t size, const mi_limits *lim,
                           mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    png_state s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.lim = lim;
    s.buf = buf;
    s.err = err;
    s.status = MORSEL_ERR_IMAGE;

    morsel_status st;
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_error_cb, png_warning_cb);
    s.info = s.png ? png_create_info_struct(s.png) : NULL;
    if (!s.png || !s.info) {
        st = morsel_fail(err, MORSEL_ERR_NOMEM, "PNG: cannot create decoder");
    } else if (!png_run(&s)) {
        st = s.status;
    } else if (s.eof && s.rows_expected > 0 && s.rows_seen == s.rows_expected) {
        /* Every row was decoded before the data ran out (a lost IDAT CRC, IEND, ...): Pillow
         * accepts such files, so do we. Real truncation, CRC and zlib errors stay errors. */
        st = MORSEL_OK;
    } else {
        st = morsel_fail(err, MORSEL_ERR_IMAGE, "PNG: %s", s.msg);
    }
    if (s.png)
        png_destroy_read_struct(&s.png, s.info ? &s.info : NULL, NULL);
    if (st == MORSEL_OK && s.interlace != PNG_INTERLACE_NONE) {
        png_to_rgb_inplace(&s.f, buf->data, (size_t)s.width * s.height);
    } else if (st == MORSEL_OK && s.rows_done + 1 == s.height) {
        /* the data ran out after libpng had stored the last row, before we converted it */
        png_row_to_rgb(&s.f, buf->data + s.rgb_bytes,
                       buf->data + (size_t)s.rows_done * s.width * 3, s.width);
    }
    if (st == MORSEL_OK) {
        *width = (int)s.width;
        *height = (int)s.height;
    }
    return st;
}
