/* Resizing and preprocessing with Pillow's semantics, so a model sees the tensor it saw in
 * training when Keras/Pillow loaded the images.
 *
 * What Pillow 13.0 does for an 8-bit RGB image, re-implemented here from its description:
 *
 *   Image.resize(size, filter, box)         box defaults to (0, 0, w, h); box is float32
 *     - box integral and box size == size   -> plain crop (also covers "same size": a copy)
 *     - NEAREST                             -> affine "scale" transform: x_src advances by
 *                                              (box_w / out_w) from box_x0 + step/2, truncated
 *     - other filters                       -> separable convolution, two passes
 *   ImageOps.fit(img, size, filter)         -> a float crop box of the output's aspect ratio,
 *                                              centred, then resize(size, filter, box)
 *
 * Convolution (Pillow's Resample.c semantics):
 *   scale = box_len / out_len, filterscale = max(scale, 1) (antialiasing when downscaling),
 *   support = filter_support * filterscale, centre of output i = box_0 + (i + 0.5) * scale,
 *   taps j in [trunc(centre - support + 0.5), trunc(centre + support + 0.5)) clipped to the
 *   image, weight = filter((j - centre + 0.5) / filterscale), normalised to sum 1, then turned
 *   into 22-bit fixed point (round half away from zero). Each pass accumulates
 *   2^21 + sum(pixel * weight) in integers and clips (sum >> 22) to 0..255; the first pass
 *   writes 8-bit pixels, which the second reads. A pass is skipped when its axis is not resized
 *   and the box does not move it (Pillow's need_horizontal / need_vertical tests).
 *   Pass order (Pillow 13.0): horizontal first, unless the height shrinks by more than twice
 *   as many pixels as the width does -- then vertical first. Pillow <= 12 always went
 *   horizontal first. The orders clip/round the intermediate differently: on random noise with
 *   BICUBIC/LANCZOS ~30% of values differ, by up to tens of levels; on photos far less.
 *
 * Scratch use (never allocates): fixed-point weights and tap bounds for both axes, and the
 * 8-bit intermediate image between the passes.
 */
#include "image.h"
#include "resample_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define RS_PRECISION_BITS MI_RS_PRECISION_BITS /* 32 - 8 bits of pixel - 2 of headroom */
#define RS_PI 3.14159265358979323846
#define RS_MAX_SUPPORT 3.0   /* LANCZOS: the widest filter */

typedef struct rs_filter {
    double (*fn)(double x);
    double support;
} rs_filter;

static double box_filter(double x)
{
    return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

static double bilinear_filter(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double bicubic_filter(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * RS_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x)
{
    if (-3.0 <= x && x < 3.0)
        return sinc(x) * sinc(x / 3);
    return 0.0;
}

static const rs_filter *filter_for(morsel_resize_filter f)
{
    static const rs_filter box = {box_filter, 0.5};
    static const rs_filter bilinear = {bilinear_filter, 1.0};
    static const rs_filter bicubic = {bicubic_filter, 2.0};
    static const rs_filter lanczos = {lanczos_filter, 3.0};
    switch (f) {
    case MORSEL_RESIZE_BOX: return &box;
    case MORSEL_RESIZE_BILINEAR: return &bilinear;
    case MORSEL_RESIZE_BICUBIC: return &bicubic;
    case MORSEL_RESIZE_LANCZOS: return &lanczos;
    default: return NULL;
    }
}

/* ---- axes and sizes ---------------------------------------------------------------------- */

static size_t sat_mul(size_t a, size_t b)
{
    if (a && b > SIZE_MAX / a)
        return SIZE_MAX;
    return a * b;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* One axis of a resample: box [in0, in1) of an in_size-long axis onto out_size pixels. */
typedef struct rs_axis {
    const rs_filter *f;
    int in_size, out_size;
    float in0;
    double scale, support, inv_filterscale;
    size_t ksize; /* Pillow's bound on taps per output pixel */
} rs_axis;

static void axis_init(rs_axis *a, const rs_filter *f, int in_size, float in0, float in1,
                      int out_size)
{
    a->f = f;
    a->in_size = in_size;
    a->out_size = out_size;
    a->in0 = in0;
    a->scale = (double)(in1 - in0) / out_size; /* float subtraction, as Pillow */
    const double filterscale = a->scale < 1.0 ? 1.0 : a->scale;
    a->support = f->support * filterscale;
    a->inv_filterscale = 1.0 / filterscale;
    a->ksize = (size_t)ceil(a->support) * 2 + 1;
}

static double axis_center(const rs_axis *a, int xx)
{
    return a->in0 + (xx + 0.5) * a->scale;
}

/* First tap and tap count of output pixel xx. */
static void axis_bounds(const rs_axis *a, int xx, int32_t *first, int32_t *count)
{
    /* Pillow: xmin = (int)(center - support + 0.5) clipped below at 0, xmax likewise clipped
     * above at in_size. Clipping the doubles first gives the same ints and keeps the casts in
     * range for any size. */
    const double center = axis_center(a, xx);
    const double lo = center - a->support + 0.5, hi = center + a->support + 0.5;
    int xmin = lo <= 0.0 ? 0 : lo >= a->in_size ? a->in_size : (int)lo;
    int xmax = hi <= 0.0 ? 0 : hi >= a->in_size ? a->in_size : (int)hi;
    xmax -= xmin;
    if (xmax < 0)
        xmax = 0;
    if ((size_t)xmax > a->ksize) /* cannot happen (Pillow relies on it too); stay in bounds */
        xmax = (int)a->ksize;
    *first = xmin;
    *count = xmax;
}

/* The n fixed-point weights of output pixel xx (taps from xmin). The weights are evaluated twice
 * (sum, then value) instead of being kept as doubles; the same expression gives the same double
 * both times, so this equals Pillow's normalise-in-place. */
static void axis_weights(const rs_axis *a, int xx, int xmin, int n, int32_t *k)
{
    const double center = axis_center(a, xx);
    double ww = 0.0;
    for (int x = 0; x < n; x++)
        ww += a->f->fn((x + xmin - center + 0.5) * a->inv_filterscale);
    for (int x = 0; x < n; x++) {
        double w = a->f->fn((x + xmin - center + 0.5) * a->inv_filterscale);
        if (ww != 0.0)
            w /= ww;
        k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << RS_PRECISION_BITS))
                     : (int32_t)(0.5 + w * (1 << RS_PRECISION_BITS));
    }
}

/* An upper bound of ksize over every filter and every box inside a src-long axis: the box length
 * is a float32 no larger than float32(src) <= src * (1 + 2^-24). */
static size_t ksize_bound(int src, int out)
{
    double fs = (double)src / out * (1.0 + 1.0 / (1 << 20));
    if (fs < 1.0)
        fs = 1.0;
    return ((size_t)ceil(RS_MAX_SUPPORT * fs) + 1) * 2 + 1;
}

/* Horizontal weights are computed for a block of output columns at a time and reused over every
 * row; the block holds at most this many taps (normally all columns fit: 224 outputs x 109 taps
 * for a 4032-wide photo), so a 64M x 1 image needs megabytes of scratch, not gigabytes. */
#define RS_BLOCK_TAPS ((size_t)1 << 16)

static size_t block_cols(size_t ks_bound, int dst_w)
{
    size_t b = RS_BLOCK_TAPS / ks_bound;
    if (b < 1)
        b = 1;
    if (b > (size_t)dst_w)
        b = (size_t)dst_w;
    return b;
}

/* Pillow 13: "if height is being scaled down more than twice the amount the width is, run the
 * vertical pass first". Depends on the sizes only, not on the box. */
static int horizontal_first(int src_w, int src_h, int dst_w, int dst_h)
{
    const int64_t shrink_y = (int64_t)src_h - dst_h, shrink_x = (int64_t)src_w - dst_w;
    return !(shrink_y > 0 && shrink_y > shrink_x * 2);
}

/* Bytes of the 8-bit image between the passes: out_w x (source rows used) when the horizontal
 * pass runs first, (source columns used) x out_h when the vertical one does. */
static size_t temp_bytes_bound(int src_w, int src_h, int dst_w, int dst_h)
{
    if (horizontal_first(src_w, src_h, dst_w, dst_h))
        return sat_mul(sat_mul((size_t)dst_w, (size_t)src_h), 3);
    return sat_mul(sat_mul((size_t)src_w, (size_t)dst_h), 3);
}

/* The 8-row horizontal kernel transposes 8 source rows into 8 x (row bytes) of scratch; rows
 * wider than this many bytes go one at a time instead, so the block stays in L2 and a 64M x 1
 * image does not need gigabytes. */
#define RS_ROWS8_MAX_LEN ((size_t)8192 * 3)

static size_t rows8_len(int src_w)
{
    const size_t len = sat_mul((size_t)src_w, 3);
    return len < RS_ROWS8_MAX_LEN ? len : RS_ROWS8_MAX_LEN;
}

/* Layout of scratch, in 4-byte units:
 *   [weights_h: block x ks_h][weights_v: ks_v][bounds_h: 2 dst_w][bounds_v: 2 dst_h]
 *   [xintab: dst_w][row: dst_w RGB bytes][rows8: 8 x rows8_len bytes][temp bytes] */
typedef struct rs_layout {
    size_t ks_h, ks_v, block, rows8_len; /* capacities */
    size_t weights_h, weights_v, bounds_h, bounds_v, xintab, row, rows8, temp, total;
} rs_layout;

static rs_layout layout_for(int src_w, int src_h, int dst_w, int dst_h)
{
    rs_layout l;
    l.ks_h = ksize_bound(src_w, dst_w);
    l.ks_v = ksize_bound(src_h, dst_h);
    l.block = block_cols(l.ks_h, dst_w);
    l.rows8_len = rows8_len(src_w);
    size_t off = 0;
    l.weights_h = off;
    off = sat_add(off, sat_mul(l.block, l.ks_h));
    l.weights_v = off;
    off = sat_add(off, l.ks_v);
    l.bounds_h = off;
    off = sat_add(off, sat_mul(2, (size_t)dst_w));
    l.bounds_v = off;
    off = sat_add(off, sat_mul(2, (size_t)dst_h));
    l.xintab = off;
    off = sat_add(off, (size_t)dst_w);
    l.row = off;
    off = sat_add(off, sat_mul((size_t)dst_w, 3) / 4 + 1);
    l.rows8 = off;
    off = sat_add(off, l.rows8_len * 2);
    l.temp = off;
    off = sat_add(off, temp_bytes_bound(src_w, src_h, dst_w, dst_h) / 4 + 1);
    l.total = off;
    return l;
}

size_t mi_preprocess_scratch(int src_w, int src_h, int dst_w, int dst_h)
{
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0)
        return 1;
    return layout_for(src_w, src_h, dst_w, dst_h).total;
}

/* ---- ImageOps.fit ------------------------------------------------------------------------ */

/* ImageOps.fit(image, size, bleed=0.0, centering=(0.5, 0.5)): Python float (double) arithmetic,
 * in the same order, then the float32 conversion of resize()'s box argument. */
static void fit_box(int w, int h, int dw, int dh, float box[4])
{
    const double bleed_x = 0.0 * w, bleed_y = 0.0 * h;
    const double live_w = w - bleed_x * 2, live_h = h - bleed_y * 2;
    const double live_ratio = live_w / live_h;
    const double out_ratio = (double)dw / (double)dh;
    double crop_w, crop_h;
    if (live_ratio == out_ratio) {
        crop_w = live_w;
        crop_h = live_h;
    } else if (live_ratio >= out_ratio) {
        crop_w = out_ratio * live_h;
        crop_h = live_h;
    } else {
        crop_w = live_w;
        crop_h = live_w / out_ratio;
    }
    const double left = bleed_x + (live_w - crop_w) * 0.5;
    const double top = bleed_y + (live_h - crop_h) * 0.5;
    box[0] = (float)left;
    box[1] = (float)top;
    box[2] = (float)(left + crop_w);
    box[3] = (float)(top + crop_h);
    /* Pillow would reject a box poking out of the image by a rounding error; clamp instead. */
    if (box[0] < 0.0f)
        box[0] = 0.0f;
    if (box[1] < 0.0f)
        box[1] = 0.0f;
    if (box[2] > (float)w)
        box[2] = (float)w;
    if (box[3] > (float)h)
        box[3] = (float)h;
}

/* ---- output ------------------------------------------------------------------------------- */

typedef struct rs_out {
    float *dst;
    int dst_w;
    int bgr;
    float scale[3], offset[3];
    const mi_resample_kernels *k;
    uint8_t *row; /* dst_w pixels: a row on its way to floats */
} rs_out;

/* Pixels [x0, x0 + n) of output row y from n RGB pixels; px may be o->row + 3 * x0. */
static void emit_span(const rs_out *o, int y, int x0, int n, const uint8_t *px)
{
    if (o->bgr) {
        uint8_t *r = o->row + 3 * (size_t)x0;
        for (int i = 0; i < n; i++) {
            const uint8_t red = px[3 * i];
            r[3 * i] = px[3 * i + 2];
            r[3 * i + 1] = px[3 * i + 1];
            r[3 * i + 2] = red;
        }
        px = r;
    }
    o->k->tofloat(px, (size_t)n, o->scale, o->offset,
                  o->dst + ((size_t)y * (size_t)o->dst_w + (size_t)x0) * 3);
}

static void emit_row(const rs_out *o, int y, const uint8_t *row)
{
    emit_span(o, y, 0, o->dst_w, row);
}

/* ---- convolution -------------------------------------------------------------------------- */

/* One pass writes either 8-bit pixels (to feed the other pass) or, when it is the last one,
 * the output floats (through out->row). */
typedef struct rs_sink {
    uint8_t *bytes; /* intermediate image, stride w*3; NULL: emit to out */
    const rs_out *out;
    uint8_t *rows8;   /* room for 8 x rows8_len bytes (see RS_ROWS8_MAX_LEN) */
    size_t rows8_len;
} rs_sink;

/* rows x out_w output from the rows of src starting at first_row, whose column 0 is source
 * column col0. weights: room for block x ax->ksize taps. */
static void horizontal_pass(const uint8_t *src, size_t stride, int first_row, int rows, int col0,
                            const rs_axis *ax, const int32_t *bounds, int32_t *weights,
                            size_t block, const rs_sink *sink)
{
    const int out_w = ax->out_size;
    const size_t ks = ax->ksize;
    const mi_resample_kernels *k = sink->out->k;
    /* bytes of a row the taps of all outputs span (the last output's taps end furthest) */
    const size_t in_len =
        (size_t)(bounds[2 * (out_w - 1)] + bounds[2 * (out_w - 1) + 1] - col0) * 3;
    for (int x0 = 0; x0 < out_w; x0 += (int)block) {
        const int x1 = out_w - x0 > (int)block ? x0 + (int)block : out_w;
        for (int xx = x0; xx < x1; xx++)
            axis_weights(ax, xx, bounds[2 * xx], bounds[2 * xx + 1],
                         weights + (size_t)(xx - x0) * ks);
        int yy = 0;
        if (k->hrows8 && sink->bytes && in_len <= sink->rows8_len)
            for (; yy + 8 <= rows; yy += 8)
                k->hrows8(src + (size_t)(first_row + yy) * stride, stride, in_len, col0,
                          bounds + 2 * x0, weights, ks, x1 - x0,
                          sink->bytes + ((size_t)yy * (size_t)out_w + (size_t)x0) * 3,
                          (size_t)out_w * 3, sink->rows8);
        for (; yy < rows; yy++) {
            const uint8_t *in = src + (size_t)(first_row + yy) * stride;
            uint8_t *out = sink->bytes ? sink->bytes + ((size_t)yy * (size_t)out_w + (size_t)x0) * 3
                                       : sink->out->row + (size_t)x0 * 3;
            k->hrow(in, in_len, col0, bounds + 2 * x0, weights, ks, x1 - x0, out);
            if (!sink->bytes)
                emit_span(sink->out, yy, x0, x1 - x0, out);
        }
    }
}

/* out_h x w output from columns [col0, col0 + w) of src, whose row 0 is source row row0.
 * weights: room for ax->ksize taps. */
static void vertical_pass(const uint8_t *src, size_t stride, int row0, int col0, int w,
                          const rs_axis *ax, const int32_t *bounds, int32_t *weights,
                          const rs_sink *sink)
{
    const mi_resample_kernels *k = sink->out->k;
    for (int yy = 0; yy < ax->out_size; yy++) {
        const int n = bounds[2 * yy + 1];
        axis_weights(ax, yy, bounds[2 * yy], n, weights);
        const uint8_t *in = src + (size_t)(bounds[2 * yy] - row0) * stride + (size_t)col0 * 3;
        uint8_t *out = sink->bytes ? sink->bytes + (size_t)yy * (size_t)w * 3 : sink->out->row;
        k->vrow(in, stride, weights, n, (size_t)w * 3, out);
        if (!sink->bytes)
            emit_row(sink->out, yy, out);
    }
}

static morsel_status resample(const uint8_t *rgb, int w, int h, size_t stride, const float box[4],
                              const rs_filter *f, int dst_w, int dst_h, float *scratch,
                              const rs_out *o, morsel_error *err)
{
    /* Pillow's tests, including its comparison of box[2] with the OUTPUT width. */
    const int need_h = dst_w != w || box[0] != 0.0f || box[2] != (float)dst_w;
    const int need_v = dst_h != h || box[1] != 0.0f || box[3] != (float)dst_h;

    rs_axis ax_h, ax_v;
    axis_init(&ax_h, f, w, box[0], box[2], dst_w);
    axis_init(&ax_v, f, h, box[1], box[3], dst_h);
    const rs_layout l = layout_for(w, h, dst_w, dst_h);
    if (ax_h.ksize > l.ks_h || ax_v.ksize > l.ks_v || l.total == SIZE_MAX)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "resize: image too large for the scratch");
    int32_t *weights_h = (int32_t *)(scratch + l.weights_h);
    int32_t *weights_v = (int32_t *)(scratch + l.weights_v);
    int32_t *bounds_h = (int32_t *)(scratch + l.bounds_h);
    int32_t *bounds_v = (int32_t *)(scratch + l.bounds_v);
    uint8_t *temp = (uint8_t *)(scratch + l.temp);
    uint8_t *rows8 = (uint8_t *)(scratch + l.rows8);
    const rs_sink to_out = {NULL, o, rows8, l.rows8_len}, to_temp = {temp, o, rows8, l.rows8_len};
    /* block x ks_h fits, since the actual ksize is at most the bound */
    const size_t block = l.block;

    for (int i = 0; i < dst_w; i++)
        axis_bounds(&ax_h, i, &bounds_h[2 * i], &bounds_h[2 * i + 1]);
    for (int i = 0; i < dst_h; i++)
        axis_bounds(&ax_v, i, &bounds_v[2 * i], &bounds_v[2 * i + 1]);

    if (need_h && need_v && horizontal_first(w, h, dst_w, dst_h)) {
        /* only the source rows the vertical pass reads */
        const int row0 = bounds_v[0];
        const int rows = bounds_v[2 * (dst_h - 1)] + bounds_v[2 * (dst_h - 1) + 1] - row0;
        if (rows > 0)
            horizontal_pass(rgb, stride, row0, rows, 0, &ax_h, bounds_h, weights_h, block,
                            &to_temp);
        vertical_pass(temp, (size_t)dst_w * 3, row0, 0, dst_w, &ax_v, bounds_v, weights_v,
                      &to_out);
    } else if (need_h && need_v) {
        /* vertical first; only the source columns the horizontal pass reads (the vertical pass
         * treats columns independently, so skipping the others changes nothing) */
        const int col0 = bounds_h[0];
        const int cols = bounds_h[2 * (dst_w - 1)] + bounds_h[2 * (dst_w - 1) + 1] - col0;
        if (cols > 0)
            vertical_pass(rgb, stride, 0, col0, cols, &ax_v, bounds_v, weights_v, &to_temp);
        horizontal_pass(temp, (size_t)(cols > 0 ? cols : 0) * 3, 0, dst_h, col0, &ax_h,
                        bounds_h, weights_h, block, &to_out);
    } else if (need_h) {
        horizontal_pass(rgb, stride, 0, dst_h, 0, &ax_h, bounds_h, weights_h, block, &to_out);
    } else if (need_v) {
        vertical_pass(rgb, stride, 0, 0, dst_w, &ax_v, bounds_v, weights_v, &to_out);
    } else {
        for (int y = 0; y < dst_h; y++)
            emit_row(o, y, rgb + (size_t)y * stride);
    }
    return MORSEL_OK;
}

/* ---- NEAREST: Pillow's affine scale transform ---------------------------------------------- */

static int coord(double v)
{
    return v < 0.0 ? -1 : (int)v;
}

static void nearest(const uint8_t *rgb, int w, int h, size_t stride, const float box[4],
                    int dst_w, int dst_h, int32_t *xintab, const rs_out *o)
{
    const double a0 = (double)(box[2] - box[0]) / dst_w;
    const double a4 = (double)(box[3] - box[1]) / dst_h;
    const double a2 = box[0], a5 = box[1];
    /* Positions advance by repeated addition, exactly as Pillow's loop does. */
    double xo = a2 + a0 * 0.5;
    double yo = a5 + a4 * 0.5;
    int xmin = dst_w, xmax = 0;
    for (int x = 0; x < dst_w; x++) {
        const int xin = coord(xo);
        xintab[x] = 0;
        if (xin >= 0 && xin < w) {
            xmax = x + 1;
            if (x < xmin)
                xmin = x;
            xintab[x] = xin;
        }
        xo += a0;
    }
    for (int y = 0; y < dst_h; y++) {
        const int yi = coord(yo);
        uint8_t *row = o->row;
        memset(row, 0, (size_t)dst_w * 3);
        if (yi >= 0 && yi < h)
            for (int x = xmin; x < xmax; x++)
                memcpy(row + 3 * (size_t)x, rgb + (size_t)yi * stride + (size_t)xintab[x] * 3, 3);
        emit_row(o, y, row);
        yo += a4;
    }
}

/* ---- entry point ------------------------------------------------------------------------- */

morsel_status mi_preprocess(const uint8_t *rgb, int width, int height, size_t stride,
                            const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                            float *scratch, morsel_error *err)
{
    return mi_preprocess_isa(rgb, width, height, stride, pp, dst_w, dst_h, dst, scratch, NULL,
                             err);
}

morsel_status mi_preprocess_isa(const uint8_t *rgb, int width, int height, size_t stride,
                                const morsel_preprocess *pp, int dst_w, int dst_h, float *dst,
                                float *scratch, const char *isa, morsel_error *err)
{
    const mi_resample_kernels *k = mi_resample_kernels_for(isa);
    if (!k)
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED, "preprocess: no %s kernels in this build "
                           "or on this CPU", isa);
    if (!rgb || !pp || !dst || !scratch)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "preprocess: NULL argument");
    if (width <= 0 || height <= 0 || dst_w <= 0 || dst_h <= 0)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "preprocess: bad size %dx%d -> %dx%d", width, height, dst_w, dst_h);
    if (stride < (size_t)width * 3)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "preprocess: stride %zu is less than width * 3", stride);
    if (pp->filter != MORSEL_RESIZE_NEAREST && !filter_for(pp->filter))
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "preprocess: unknown resize filter %d",
                           (int)pp->filter);

    rs_out o;
    o.dst = dst;
    o.dst_w = dst_w;
    o.bgr = pp->bgr != 0;
    o.k = k;
    o.row = (uint8_t *)(scratch + layout_for(width, height, dst_w, dst_h).row);
    for (int c = 0; c < 3; c++) {
        o.scale[c] = pp->scale[c];
        o.offset[c] = pp->offset[c];
    }

    float box[4] = {0.0f, 0.0f, (float)width, (float)height};
    if (pp->center_crop)
        fit_box(width, height, dst_w, dst_h, box);

    /* Integral box of exactly the output size: Pillow crops (this is also its "same size"
     * copy). The in-image test only matters past 2^24 pixels, where float32 rounds. */
    if (box[0] == floorf(box[0]) && box[2] - box[0] == (float)dst_w &&
        box[1] == floorf(box[1]) && box[3] - box[1] == (float)dst_h &&
        (double)box[0] + dst_w <= width && (double)box[1] + dst_h <= height) {
        const int x0 = (int)box[0], y0 = (int)box[1];
        for (int y = 0; y < dst_h; y++)
            emit_row(&o, y, rgb + (size_t)(y0 + y) * stride + (size_t)x0 * 3);
        return MORSEL_OK;
    }

    if (pp->filter == MORSEL_RESIZE_NEAREST) {
        const rs_layout l = layout_for(width, height, dst_w, dst_h);
        nearest(rgb, width, height, stride, box, dst_w, dst_h, (int32_t *)(scratch + l.xintab),
                &o);
        return MORSEL_OK;
    }
    return resample(rgb, width, height, stride, box, filter_for(pp->filter), dst_w, dst_h,
                    scratch, &o, err);
}
