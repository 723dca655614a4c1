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

/* ==== EXIF orientation ====================================================================== */

static uint32_t rd16(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bytes per value of the TIFF field types Pillow's IFD reader knows (0: unknown, skipped). */
static unsigned tiff_unit(uint32_t type)
{
    switch (type) {
    case 1: case 2: case 6: case 7: return 1;       /* BYTE ASCII SBYTE UNDEFINED */
    case 3: case 8: return 2;                       /* SHORT SSHORT */
    case 4: case 9: case 11: case 13: return 4;     /* LONG SLONG FLOAT IFD */
    case 5: case 10: case 12: case 16: return 8;    /* RATIONAL SRATIONAL DOUBLE LONG8 */
    default: return 0;
    }
}

/* The first value of a field as a key of exif_transpose's {2..8} table, or -1 when it cannot be
 * one. Pillow gives BYTE, UNDEFINED and ASCII values as bytes/str (never a key); the integer types
 * as int; RATIONAL/SRATIONAL as a fraction and FLOAT/DOUBLE as a float, which equal the integer
 * key when integral (IFDRational(12, 2) == 6 == 6.0); a zero denominator is NaN. */
static long long tiff_first_value(uint32_t type, const uint8_t *p, int big)
{
    switch (type) {
    case 6: return (int8_t)p[0];
    case 3: return rd16(p, big);
    case 8: return (int16_t)rd16(p, big);
    case 4: case 13: return rd32(p, big);
    case 9: return (int32_t)rd32(p, big);
    case 16: {
        uint64_t hi = rd32(p + (big ? 0 : 4), big), lo = rd32(p + (big ? 4 : 0), big);
        return (hi << 32 | lo) > 8 ? -1 : (long long)lo;
    }
    case 5: case 10: {
        long long num = type == 5 ? (long long)rd32(p, big) : (long long)(int32_t)rd32(p, big);
        long long den = type == 5 ? (long long)rd32(p + 4, big)
                                  : (long long)(int32_t)rd32(p + 4, big);
        return den == 0 || num % den ? -1 : num / den;
    }
    case 11: {
        uint32_t bits = rd32(p, big);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f >= 1.0f && f <= 8.0f && f == (float)(int)f ? (long long)f : -1;
    }
    case 12: {
        uint64_t bits = (uint64_t)rd32(p + (big ? 0 : 4), big) << 32 | rd32(p + (big ? 4 : 0), big);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d >= 1.0 && d <= 8.0 && d == (double)(int)d ? (long long)d : -1;
    }
    default: return -1; /* BYTE, ASCII, UNDEFINED */
    }
}

/* Pillow's Exif.load + ImageFileDirectory_v2.load, reduced to IFD0's Orientation (0x0112):
 * up to two leading "Exif\0\0" are dropped; an empty rest has no tags; the TIFF header must be
 * 8 bytes starting with II*\0, MM\0*, MM*\0, II\0* or MM\0+ (otherwise, II+\0 BigTIFF
 * included, Pillow raises and reads no orientation at all, not even from XMP: -1); the IFD is read
 * entry by entry until it or the data ends (Pillow keeps the entries read before a truncation);
 * the first entry of a tag wins; unknown types and zero-length values are skipped; a value stored
 * out of line is skipped when the out-of-line bytes of the tags read so far exceed the data's
 * size, and ends the IFD when it does not lie wholly inside the data. Every read is
 * bounds-checked. */
int mi_exif_orientation(const uint8_t *data, size_t size)
{
    static const uint8_t hdr[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (!data)
        return 0;
    for (int i = 0; i < 2 && size >= 6 && !memcmp(data, hdr, 6); i++) {
        data += 6;
        size -= 6;
    }
    if (size == 0)
        return 0;
    if (size < 8)
        return -1;
    int big;
    /* Pillow's accepted prefixes; it tells BigTIFF by byte 2 == 43 only, so "MM\0+" is read as
     * a classic big-endian TIFF while "II+\0" fails (its 8-byte offset is not in the header). */
    if (data[0] == 'M' && data[1] == 'M' && ((data[2] == 0 && data[3] == 42) ||
                                             (data[2] == 42 && data[3] == 0) ||
                                             (data[2] == 0 && data[3] == 43)))
        big = 1;
    else if (data[0] == 'I' && data[1] == 'I' && ((data[2] == 42 && data[3] == 0) ||
                                                  (data[2] == 0 && data[3] == 42)))
        big = 0;
    else
        return -1;
    uint64_t pos = rd32(data + 4, big);
    if (pos > size || size - pos < 2)
        return 0;
    uint32_t count = rd16(data + pos, big);
    pos += 2;
    uint64_t out_of_line = 0;
    int orientation = 0;
    uint8_t seen[65536 / 8];
    memset(seen, 0, sizeof seen);
    for (uint32_t i = 0; i < count && size - pos >= 12; i++, pos += 12) {
        const uint8_t *e = data + pos;
        uint32_t tag = rd16(e, big), type = rd16(e + 2, big), n = rd32(e + 4, big);
        if (seen[tag >> 3] & (1u << (tag & 7)))
            continue;
        unsigned unit = tiff_unit(type);
        if (!unit)
            continue;
        uint64_t bytes = (uint64_t)n * unit;
        const uint8_t *val = e + 8;
        if (bytes > 4) {
            uint64_t off = rd32(e + 8, big);
            out_of_line += bytes;
            if (out_of_line > size)
                continue;
            if (off > size || size - off < bytes)
                break; /* Pillow: "Truncated File Read" ends the IFD */
            val = data + off;
        }
        if (bytes == 0)
            continue;
        seen[tag >> 3] |= (uint8_t)(1u << (tag & 7));
        if (tag == 0x0112) {
            long long v = tiff_first_value(type, val, big);
            orientation = v >= 1 && v <= 8 ? (int)v : 1; /* present; nothing to undo */
        }
    }
    return orientation;
}

/* Pillow's XMP fallback (getexif() when EXIF has no Orientation): the first match of
 * tiff:Orientation(="|>)([0-9]) in the last XMP APP1 segment. 0 when there is none. */
static int xmp_orientation(const uint8_t *p, size_t n)
{
    static const char key[] = "tiff:Orientation";
    const size_t k = sizeof key - 1;
    for (size_t i = 0; n >= k + 2 && i <= n - k - 2; i++) {
        if (p[i] != 't' || memcmp(p + i, key, k))
            continue;
        const uint8_t *q = p + i + k;
        size_t left = n - i - k;
        if (q[0] == '=' && left >= 3 && q[1] == '"' && q[2] >= '0' && q[2] <= '9')
            return q[2] > '8' || q[2] == '0' ? 1 : q[2] - '0';
        if (q[0] == '>' && q[1] >= '0' && q[1] <= '9')
            return q[1] > '8' || q[1] == '0' ? 1 : q[1] - '0';
    }
    return 0;
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
    int apply_exif, fast_scale, target_w, target_h;
    mi_buffer *buf;
    morsel_error *err;
    /* progress (kept here, not in locals of the function that calls setjmp) */
    size_t rgb_bytes;
    int orientation; /* 1..8, 1 when not applied */
    int scale;       /* DCT scaling denominator: 1, 2, 4 or 8 */
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

/* The orientation ImageOps.exif_transpose would undo, from the APP1 markers libjpeg saved: the
 * Exif segments concatenated as Pillow's JPEG plugin does (the first whole, later ones without
 * their 6-byte header), else the last XMP segment. 1 when there is nothing to do. */
static int jpeg_orientation(j_decompress_ptr ci)
{
    static const char xmp_id[] = "http://ns.adobe.com/xap/1.0/"; /* + its NUL: 29 bytes */
    size_t exif_total = 0, n_exif = 0;
    const struct jpeg_marker_struct *first = NULL, *xmp = NULL;
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1)
            continue;
        if (m->data_length >= 6 && !memcmp(m->data, "Exif\0\0", 6)) {
            exif_total += n_exif ? m->data_length - 6 : m->data_length;
            if (!n_exif)
                first = m;
            n_exif++;
        } else if (m->data_length >= sizeof xmp_id && !memcmp(m->data, xmp_id, sizeof xmp_id)) {
            xmp = m;
        }
    }
    int o = 0;
    if (n_exif == 1) {
        o = mi_exif_orientation(first->data, first->data_length);
    } else if (n_exif > 1) {
        /* pool memory: released by jpeg_destroy_decompress on every path */
        uint8_t *cat = (*ci->mem->alloc_large)((j_common_ptr)ci, JPOOL_IMAGE, exif_total);
        size_t at = 0;
        for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
            if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 ||
                memcmp(m->data, "Exif\0\0", 6))
                continue;
            size_t skip = at ? 6 : 0;
            memcpy(cat + at, m->data + skip, m->data_length - skip);
            at += m->data_length - skip;
        }
        o = mi_exif_orientation(cat, at);
    }
    if (o == 0 && xmp) /* no Orientation tag (-1, an unreadable block, stops Pillow here) */
        o = xmp_orientation(xmp->data + sizeof xmp_id, xmp->data_length - sizeof xmp_id);
    return o >= 1 && o <= 8 ? o : 1;
}

/* Where decoded row y (w pixels of an w x h image) lands in the transposed image, as ImageOps.
 * exif_transpose lays it out: pixel x goes to out + (*start + x * *step) * 3. */
static void oriented_row(int orientation, size_t w, size_t h, size_t y, ptrdiff_t *start,
                         ptrdiff_t *step)
{
    const ptrdiff_t W = (ptrdiff_t)w, H = (ptrdiff_t)h, Y = (ptrdiff_t)y;
    switch (orientation) {
    case 2: *start = Y * W + W - 1; *step = -1; break;               /* FLIP_LEFT_RIGHT */
    case 3: *start = (H - 1 - Y) * W + W - 1; *step = -1; break;     /* ROTATE_180 */
    case 4: *start = (H - 1 - Y) * W; *step = 1; break;              /* FLIP_TOP_BOTTOM */
    case 5: *start = Y; *step = H; break;                            /* TRANSPOSE */
    case 6: *start = H - 1 - Y; *step = H; break;                    /* ROTATE_270 */
    case 7: *start = (W - 1) * H + H - 1 - Y; *step = -H; break;     /* TRANSVERSE */
    case 8: *start = (W - 1) * H + Y; *step = -H; break;             /* ROTATE_90 */
    default: *start = Y * W; *step = 1; break;
    }
}

/* The DCT scaling denominator Pillow's Image.draft(mode, (tw, th)) picks: the largest d in
 * {8, 4, 2, 1} with d <= min(w // tw, h // th), i.e. w/d >= tw and h/d >= th. */
static int draft_scale(unsigned w, unsigned h, int tw, int th)
{
    if (tw <= 0 || th <= 0)
        return 1;
    unsigned sx = w / (unsigned)tw, sy = h / (unsigned)th, s = sx < sy ? sx : sy;
    return s >= 8 ? 8 : s >= 4 ? 4 : s >= 2 ? 2 : 1;
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
    if (s->apply_exif)
        jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
    (void)jpeg_read_header(ci, TRUE);

    /* The limit is on the stored size: DCT scaling still reads every coefficient. */
    s->status = check_dims("JPEG", ci->image_width, ci->image_height, s->max_pixels,
                           &s->rgb_bytes, s->err);
    if (s->status != MORSEL_OK)
        return 0;

    /* Pillow's defaults: JDCT_ISLOW and fancy upsampling are libjpeg's own defaults; no
     * quantization. The output colour space is chosen, and in fast mode the DCT scaling (which
     * is all Pillow's draft() changes as well). */
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

    s->orientation = s->apply_exif ? jpeg_orientation(ci) : 1;
    s->scale = 1;
    if (s->fast_scale) {
        /* the target in stored orientation: transposing orientations swap it */
        int tw = s->orientation >= 5 ? s->target_h : s->target_w;
        int th = s->orientation >= 5 ? s->target_w : s->target_h;
        s->scale = draft_scale(ci->image_width, ci->image_height, tw, th);
        if (s->scale > 1) {
            ci->scale_num = 1;
            ci->scale_denom = (unsigned)s->scale;
        }
    }
    jpeg_calc_output_dimensions(ci);
    const unsigned want_w = (ci->image_width + (unsigned)s->scale - 1) / (unsigned)s->scale;
    const unsigned want_h = (ci->image_height + (unsigned)s->scale - 1) / (unsigned)s->scale;
    if (ci->output_width != want_w || ci->output_height != want_h ||
        ci->output_components != (cmyk ? 4 : 3)) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "JPEG: unexpected output geometry");
        return 0;
    }
    s->rgb_bytes = (size_t)want_w * want_h * 3;
    s->status = buffer_reserve(s->buf, s->rgb_bytes, s->err);
    if (s->status != MORSEL_OK)
        return 0;

    (void)jpeg_start_decompress(ci);
    if (ci->output_width != want_w || ci->output_height != want_h) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "JPEG: unexpected output geometry");
        return 0;
    }

    const size_t w = ci->output_width, h = ci->output_height, stride = w * 3;
    const int direct = !cmyk && s->orientation == 1;
    JSAMPARRAY row = NULL; /* pool memory: released by jpeg_destroy_decompress on every path */
    if (!direct)
        row = (*ci->mem->alloc_sarray)((j_common_ptr)ci, JPOOL_IMAGE,
                                        (JDIMENSION)(w * (cmyk ? 7 : 3)), 1);
    while (ci->output_scanline < ci->output_height) {
        const size_t y = ci->output_scanline;
        if (direct) {
            JSAMPROW dst = s->buf->data + y * stride;
            if (jpeg_read_scanlines(ci, &dst, 1) != 1)
                break;
            continue;
        }
        if (jpeg_read_scanlines(ci, row, 1) != 1)
            break;
        const uint8_t *rgb = row[0];
        if (cmyk) { /* the RGB row goes after the 4w CMYK bytes */
            cmyk_row_to_rgb(row[0], row[0] + 4 * w, (unsigned)w);
            rgb = row[0] + 4 * w;
        }
        ptrdiff_t start, step;
        oriented_row(s->orientation, w, h, y, &start, &step);
        uint8_t *out = s->buf->data;
        for (size_t x = 0; x < w; x++) {
            uint8_t *d = out + (start + (ptrdiff_t)x * step) * 3;
            d[0] = rgb[3 * x];
            d[1] = rgb[3 * x + 1];
            d[2] = rgb[3 * x + 2];
        }
    }
    if (ci->output_scanline < ci->output_height) {
        s->status = morsel_fail(s->err, MORSEL_ERR_IMAGE, "JPEG: image data is truncated");
        return 0;
    }
    /* Reads on to EOI: like Pillow, a file cut anywhere before EOI counts as truncated (the
     * JWRN_JPEG_EOF warning longjmps). */
    (void)jpeg_finish_decompress(ci);
    s->width = (int)(s->orientation >= 5 ? h : w);
    s->height = (int)(s->orientation >= 5 ? w : h);
    s->status = MORSEL_OK;
    return 0;
}

static morsel_status decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels,
                                 const morsel_decode_options *opt, int target_w, int target_h,
                                 mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    jpeg_state s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.max_pixels = max_pixels;
    s.apply_exif = opt && opt->exif_orientation;
    s.fast_scale = opt && opt->jpeg_fast_scale;
    s.target_w = target_w;
    s.target_h = target_h;
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

morsel_status mi_decode(const void *bytes, size_t size, const morsel_decode_options *opt,
                        int target_w, int target_h, mi_buffer *buf, int *width, int *height,
                        morsel_error *err)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if ((!bytes && size) || !buf || !width || !height)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "mi_decode: NULL argument");
    if (opt && ((unsigned)opt->exif_orientation > 1 || (unsigned)opt->jpeg_fast_scale > 1))
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "decode options: exif_orientation and jpeg_fast_scale must be 0 or 1");
    if (target_w < 0 || target_h < 0)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "mi_decode: negative target size");
    uint64_t max_bytes, max_pixels;
    effective_limits(opt, &max_bytes, &max_pixels);
    if ((uint64_t)size > max_bytes)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "encoded image is %zu bytes, more than the limit of %llu bytes", size,
                           (unsigned long long)max_bytes);
    const uint8_t *p = bytes;
    if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return decode_jpeg(p, size, max_pixels, opt, target_w, target_h, buf, width, height,
                           err);
    if (size >= 8 && memcmp(p, png_magic, 8) == 0)
        return decode_png(p, size, max_pixels, buf, width, height, err);
    if (size == 0)
        return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image (empty input)");
    return morsel_fail(err, MORSEL_ERR_IMAGE, "not a JPEG or PNG image");
}
