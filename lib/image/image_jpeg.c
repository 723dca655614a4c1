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

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Progressive JPEGs can carry an unbounded number of scans, each a full pass over the
 * coefficients: a CPU bomb in a few kilobytes. libjpeg-turbo's advice for untrusted input is a
 * progress monitor that bounds the scans (djpeg -maxscans). Counting scans alone lets a big image
 * through (990 scans of 8192^2 decode for 15 s), so the budget is scans x stored pixels
 * (mi_limits.max_work); the cap also stops tiny images with scans of pure per-scan overhead. */
#define MI_JPEG_MAX_SCANS 1000

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 128];
    const mi_limits *lim;
    int over_limit; /* the longjmp was a budget, not a bad file: MORSEL_ERR_LIMIT */
} jpeg_err;

typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo; /* first: jpeg_alloc_sarray_zeroed casts back */
    jpeg_err jerr;
    struct jpeg_progress_mgr progress;
    JSAMPARRAY (*alloc_sarray)(j_common_ptr, int, JDIMENSION, JDIMENSION); /* libjpeg's own */
    int created;
    /* in */
    const uint8_t *data;
    size_t size;
    const mi_limits *lim;
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
    if (cinfo->err->msg_code == JERR_NO_BACKING_STORE) {
        /* jmemnobs: the whole-image buffers did not fit max_memory_to_use (set from the
         * budget), and there is no temporary-file fallback */
        snprintf(e->msg, sizeof e->msg,
                 "decoding needs more than the decode memory limit of %llu bytes",
                 (unsigned long long)e->lim->max_memory);
        e->over_limit = 1;
    } else {
        (*cinfo->err->format_message)(cinfo, e->msg);
    }
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
    jpeg_err *e = (jpeg_err *)cinfo->err;
    /* Called before each iMCU row is consumed: input_scan_number is the scan being read, so a
     * refusal comes before that scan's pass, never after it. */
    const uint64_t scans = (uint64_t)(d->input_scan_number > 0 ? d->input_scan_number : 0);
    const uint64_t pixels = (uint64_t)d->image_width * d->image_height;
    if (d->input_scan_number > MI_JPEG_MAX_SCANS) {
        snprintf(e->msg, sizeof e->msg, "progressive JPEG has more than %d scans",
                 MI_JPEG_MAX_SCANS);
        longjmp(e->jb, 1); /* a fixed sanity rule, not a budget: MORSEL_ERR_IMAGE */
    }
    if (pixels && scans > e->lim->max_work / pixels) {
        snprintf(e->msg, sizeof e->msg,
                 "scan %llu of this %ux%u image would take decoding past the work limit of %llu "
                 "pixel-scans (width x height x scans)",
                 (unsigned long long)scans, (unsigned)d->image_width, (unsigned)d->image_height,
                 (unsigned long long)e->lim->max_work);
        e->over_limit = 1;
        longjmp(e->jb, 1);
    }
}

/* libjpeg-turbo's SIMD kernels work in whole vectors, so they read the padding its memory
 * manager puts past the end of each sample row (alloc_sarray rounds rows up for them), and that
 * padding is never initialised. The pixels do not depend on it -- the same bytes with the heap
 * pre-filled with 0x00, 0x55, 0xAA or 0xFF, and with JSIMD_FORCENONE -- but memcheck tracks
 * definedness per 32-bit lane through the colour conversion, so the padding taints real output
 * bytes (fast_odd_1001x97 at 1/8 scale: the G of the last two pixels), and valgrind rightly
 * cannot prove the decode is a function of the file. Zeroed rows make it one. Rows are padded
 * to a multiple of libjpeg-turbo's own rounding (2 * ALIGN_SIZE: 32 or 64), so all of each row
 * is ours to clear; the cost is one memset per row buffer per decode. */
#define MI_JPEG_ROW_ALIGN 128

static JSAMPARRAY jpeg_alloc_sarray_zeroed(j_common_ptr cinfo, int pool, JDIMENSION samples,
                                           JDIMENSION rows)
{
    jpeg_state *s = (jpeg_state *)(void *)cinfo;
    const JDIMENSION padded =
        (samples + MI_JPEG_ROW_ALIGN - 1) / MI_JPEG_ROW_ALIGN * MI_JPEG_ROW_ALIGN;
    JSAMPARRAY a = s->alloc_sarray(cinfo, pool, padded, rows);
    for (JDIMENSION r = 0; r < rows; r++)
        memset(a[r], 0, padded * sizeof(JSAMPLE));
    return a;
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
    s->alloc_sarray = ci->mem->alloc_sarray;
    ci->mem->alloc_sarray = jpeg_alloc_sarray_zeroed;
    ci->progress = &s->progress;
    jpeg_mem_src(ci, s->data, (unsigned long)s->size);
    if (s->apply_exif)
        jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
    (void)jpeg_read_header(ci, TRUE);

    /* The limit is on the stored size: DCT scaling still reads every coefficient. */
    s->status = mi_check_dims("JPEG", ci->image_width, ci->image_height, s->lim->max_pixels,
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
    /* The decoded pixels, then libjpeg's own allocations (jmemnobs honours max_memory_to_use
     * for the whole-image coefficient buffer of progressive and multi-scan files, the big one;
     * the rest is a few rows). */
    s->status = mi_check_memory("JPEG", s->rgb_bytes, s->lim, s->err);
    if (s->status != MORSEL_OK)
        return 0;
    const uint64_t left = s->lim->max_memory - s->rgb_bytes;
    ci->mem->max_memory_to_use = left > LONG_MAX ? LONG_MAX : left ? (long)left : 1;
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

morsel_status mi_decode_jpeg(const uint8_t *data, size_t size, const mi_limits *lim,
                            const morsel_decode_options *opt, int target_w, int target_h,
                            mi_buffer *buf, int *width, int *height, morsel_error *err)
{
    jpeg_state s;
    memset(&s, 0, sizeof s);
    s.data = data;
    s.size = size;
    s.lim = lim;
    s.jerr.lim = lim;
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
        st = morsel_fail(err, s.jerr.over_limit ? MORSEL_ERR_LIMIT : MORSEL_ERR_IMAGE, "JPEG: %s",
                         s.jerr.msg);
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
