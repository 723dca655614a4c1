/* JPEG decoding (libjpeg-turbo, libjpeg API) into 8-bit RGB, giving the pixels Pillow gives
 * for Image.open(f).convert('RGB'), optionally EXIF-transposed or DCT-scaled.
 *
 * libjpeg reports fatal errors by longjmp. To keep that well defined, every setjmp lives in
 * a small "run" function whose state (the library structs, the cleanup flags, the result) sits in
 * a struct owned by the caller and reached through a pointer, so nothing the run function changes
 * after setjmp is an automatic local of it. The caller always does the cleanup, on success and
 * on error alike, so no path leaks.
 */
#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Progressive JPEGs can carry an unbounded number of scans, each a full pass over the
 * coefficients: a CPU bomb in a few kilobytes. Real encoders use ~10; djpeg's -maxscans idea. */
#define MI_JPEG_MAX_SCANS 1000

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
        o = mi_xmp_orientation(xmp->data + sizeof xmp_id, xmp->data_length - sizeof xmp_id);
    return o >= 1 && o <= 8 ? o : 1;
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
    s->status = mi_check_dims("JPEG", ci->image_width, ci->image_height, s->max_pixels,
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
    s->status = mi_buffer_reserve(s->buf, s->rgb_bytes, s->err);
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
        mi_oriented_row(s->orientation, w, h, y, &start, &step);
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

morsel_status mi_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels,
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
