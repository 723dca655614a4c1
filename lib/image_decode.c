/* Image decoding: JPEG (libjpeg-turbo, libjpeg API) and PNG (libpng) into 8-bit RGB, giving the
 * pixels Pillow gives for Image.open(f).convert('RGB').
 *
 * Both libraries report fatal errors by longjmp. To keep that well defined, every setjmp lives in
 * a small "run" function whose state (the library structs, the cleanup flags, the result) sits in
 * a struct owned by the caller and reached through a pointer, so nothing the run function changes
 * after setjmp is an automatic local of it. The caller always does the cleanup, on success and
 * on error alike, so no path leaks.
 */
#include "image.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Progressive JPEGs can carry an unbounded number of scans, each a full pass over the
 * coefficients: a CPU bomb in a few kilobytes. Real encoders use ~10; djpeg's -maxscans idea. */
#define MI_JPEG_MAX_SCANS 1000

void mi_buffer_free(mi_buffer *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->capacity = 0;
}

static morsel_status buffer_reserve(mi_buffer *b, size_t need, morsel_error *err)
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

static void effective_limits(const morsel_image_limits *lim, uint64_t *max_bytes,
                             uint64_t *max_pixels)
{
    *max_bytes = MI_DEFAULT_MAX_ENCODED_BYTES;
    *max_pixels = MI_DEFAULT_MAX_PIXELS;
    if (lim) {
        if (lim->max_encoded_bytes)
            *max_bytes = lim->max_encoded_bytes;
        if (lim->max_pixels)
            *max_pixels = lim->max_pixels;
    }
}

/* w*h against the pixel limit, and the RGB byte count, without overflowing. */
static morsel_status check_dims(const char *what, uint64_t w, uint64_t h, uint64_t max_pixels,
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

/* ==== JPEG ================================================================================== */

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    struct jpeg_progress_mgr progress;
    int created;
    /* in */
    const uint8_t *data;
    size_t size;
    uint64_t max_pixels;
    mi_buffer *buf;
    morsel_error *err;
    /* progress (kept here, not in locals of the function that calls setjmp) */
    size_t rgb_bytes;
    /* out */
    morsel_status status; /* set when the run function returns normally */
    int width, height;
} jpeg_state;

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings (level -1) are counted and otherwise ignored, as Pillow ignores them -- except a
 * premature end of data: libjpeg would pad the rest of the image with grey, where Pillow raises
 * "image file is truncated". Trace messages (level >= 0) are dropped. */
static void jpeg_emit_message_cb(j_common_ptr cinfo, int msg_level)
{
    if (msg_level >= 0)
        return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "image data is truncated (premature end of JPEG file)");
        longjmp(e->jb, 1);
    }
    cinfo->err->num_warnings++;
}

static void jpeg_output_message_cb(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpeg_progress_cb(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor)
        return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > MI_JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "progressive JPEG has more than %d scans",
                 MI_JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

/* Pillow opens 4-component JPEGs as CMYK with raw mode "CMYK;I" (it always assumes Adobe's
 * inverted polarity: C = 255 - byte), then convert('RGB') computes, per channel,
 * nk = 255 - K, R = clip(nk - MULDIV255(C, nk)) with MULDIV255(a,b) = t=a*b+128, ((t>>8)+t)>>8. */
static uint8_t muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, unsigned w)
{
    for (unsigned x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* Pillow: K = 255 - byte, nk = 255 - K */
        for (int c = 0; c < 3; c++) {
            int v = nk - muldiv255(255u - in[c], (unsigned)nk);
            out[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Returns 0 when it finished normally (s->status says how), 1 after a libjpeg error. */
static int jpeg_run(jpeg_state *s)
{
    struct jpeg_decompress_struct *ci = &s->cinfo;

    if (setjmp(s->jerr.jb))
        return 1;

    jpeg_create_decompress(ci);
    s->created = 1;
    ci->progress = &s->progress;
    jpeg_mem_src(ci, s->data, (unsigned long)s->size);
    (void)jpeg_read_header(ci, TRUE);

    s->status = check_dims("JPEG", ci->image_width, ci->image_height, s->max_pixels,
                           &s->rgb_bytes, s->err);
    if (s->status != MORSEL_OK)
        return 0;

    /* Pillow's defaults: JDCT_ISLOW and fancy upsampling are libjpeg's own defaults; no scaling,
     * no quantization. Only the output colour space is chosen. */
    int cmyk = 0;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: /* libjpeg replicates Y into R=G=B, as Pillow's L -> RGB does */
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK: /* libjpeg turns YCCK into (inverted) CMYK, as it does for Pillow */
        ci->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE,
                                "JPEG: unsupported colour space (%d components)",
                                ci->num_components);
        return 0;
    }

    s->status = buffer_reserve(s->buf, s->rgb_bytes, s->err);
    if (s->status != MORSEL_OK)
        return 0;

    (void)jpeg_start_decompress(ci);
    if (ci->output_width != ci->image_width || ci->output_height != ci->image_height ||
        ci->output_components != (cmyk ? 4 : 3)) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "JPEG: unexpected output geometry");
        return 0;
    }

    const size_t stride = (size_t)ci->output_width * 3;
    JSAMPARRAY cmyk_row = NULL;
    if (cmyk) /* pool memory: released by jpeg_destroy_decompress on every path */
        cmyk_row = (*ci->mem->alloc_sarray)((j_common_ptr)ci, JPOOL_IMAGE,
                                             ci->output_width * 4, 1);
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = s->buf->data + (size_t)ci->output_scanline * stride;
        if (cmyk) {
            if (jpeg_read_scanlines(ci, cmyk_row, 1) != 1)
                break;
            cmyk_row_to_rgb(cmyk_row[0], dst, ci->output_width);
        } else {
            JSAMPROW row = dst;
            if (jpeg_read_scanlines(ci, &row, 1) != 1)
                break;
        }
    }
    if (ci->output_scanline < ci->output_height) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "JPEG: image data is truncated");
        return 0;
    }
    /* Reads on to EOI: like Pillow, a file cut anywhere before EOI counts as truncated (the
     * JWRN_JPEG_EOF warning longjmps). */
    (void)jpeg_finish_decompress(ci);
    s->width = (int)ci->output_width;
    s->height = (int)ci->output_height;
    s->status = MORSEL_OK;
    return 0;
}

static morsel_status decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    jpeg_state s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.max_pixels = max_pixels;
    s.buf = buf;
    s.err = err;
    s.status = MORSEL_ERR_IMAGE;
    s.cinfo.err = jpeg_std_error(&s.jerr.pub);
    s.jerr.pub.error_exit = jpeg_error_exit_cb;
    s.jerr.pub.emit_message = jpeg_emit_message_cb;
    s.jerr.pub.output_message = jpeg_output_message_cb;
    s.progress.progress_monitor = jpeg_progress_cb;

    morsel_status st;
    if (jpeg_run(&s))
        st = morsel_fail(err, MORSEL_ERR_IMAGE, "JPEG: %s", s.jerr.msg);
    else
        st = s.status;
    if (s.created)
        jpeg_destroy_decompress(&s.cinfo);
    if (st == MORSEL_OK) {
        *width = s.width;
        *height = s.height;
    }
    return st;
}

/* ==== PNG =================================================================================== */

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
    uint64_t max_pixels;
    mi_buffer *buf;
    morsel_error *err;
    /* progress (kept here, not in locals of the function that calls setjmp) */
    png_pixfmt f;
    png_uint_32 ihdr_w, ihdr_h;
    int bit_depth, color_type, interlace;
    png_colorp plte;
    int n_plte;
    size_t rgb_bytes;
    uint32_t width, height;
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
    png_read_info(s->png, s->info);

    png_get_IHDR(s->png, s->info, &s->ihdr_w, &s->ihdr_h, &s->bit_depth, &s->color_type,
                 &s->interlace, NULL, NULL);
    const png_uint_32 w = s->ihdr_w, h = s->ihdr_h;
    const int bit_depth = s->bit_depth, color_type = s->color_type;
    s->status = check_dims("PNG", w, h, s->max_pixels, &s->rgb_bytes, s->err);
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
    const size_t raw_bytes = rowbytes * h;
    s->status = buffer_reserve(s->buf, raw_bytes > s->rgb_bytes ? raw_bytes : s->rgb_bytes,
                               s->err);
    if (s->status != MORSEL_OK)
        return 0;
    s->width = w;
    s->height = h;
    if (s->interlace == PNG_INTERLACE_NONE) {
        s->rows_expected = h;
    } else {
        for (int p = 0; p < 7; p++)
            if (PNG_PASS_COLS(w, p) > 0)
                s->rows_expected += PNG_PASS_ROWS(h, p);
    }

    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(s->png, s->buf->data + (size_t)y * rowbytes, NULL);
    /* No png_read_end: chunks after the image data are not needed. */
    s->status = MORSEL_OK;
    return 0;
}

static morsel_status decode_png(const uint8_t *data, size_t size, uint64_t max_pixels,
                                mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    png_state s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.max_pixels = max_pixels;
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
    if (st == MORSEL_OK) {
        png_to_rgb_inplace(&s.f, buf->data, (size_t)s.width * s.height);
        *width = (int)s.width;
        *height = (int)s.height;
    }
    return st;
}

/* ==== entry point =========================================================================== */

morsel_status mi_decode(const void *bytes, size_t size, const morsel_image_limits *lim,
                        mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if ((!bytes && size) || !buf || !width || !height)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "mi_decode: NULL argument");
    uint64_t max_bytes, max_pixels;
    effective_limits(lim, &max_bytes, &max_pixels);
    if ((uint64_t)size > max_bytes)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "encoded image is %zu bytes, more than the limit of %llu bytes", size,
                           (unsigned long long)max_bytes);
    const uint8_t *p = bytes;
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return decode_jpeg(p, size, max_pixels, buf, width, height, err);
    if (size >= 8 && memcmp(p, png_magic, 8) == 0)
        return decode_png(p, size, max_pixels, buf, width, height, err);
    if (size == 0)
        return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image (empty input)");
    return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image");
}
