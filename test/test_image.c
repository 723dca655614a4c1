/* Image input path against Pillow: decoding (JPEG/PNG), corrupt inputs, limits, resizing and
 * preprocessing. Fixtures and Pillow's reference pixels come from gen_image_fixtures.py.
 *
 * usage: test_image FIXTURE_DIR      (FIXTURE_DIR/manifest.txt lists the cases)
 *        test_image FIXTURE_DIR TEXT  only the cases whose name contains TEXT (valgrind runs a
 *                                     few this way: all 600 take it over 8 minutes)
 *        test_image --bench RUNS FILE...  (timings for test/bench/image_bench.py)
 * Prints one line per case and finishes with "N passed, M failed"; exits non-zero on failure.
 */
#include "image.h"
#include "resample_kernels.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

typedef struct tally {
    int passed, failed;
    size_t resize_values, resize_equal; /* over every resize / e2e case */
} tally;

static void report(tally *t, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void report(tally *t, int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(ok ? "PASS " : "FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    if (ok)
        t->passed++;
    else
        t->failed++;
}

static int read_file(const char *dir, const char *name, uint8_t **data, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return -1;
    }
    for (;;) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *data = buf;
    *size = n;
    return 0;
}

static morsel_resize_filter parse_filter(const char *s)
{
    if (!strcmp(s, "nearest"))
        return MORSEL_RESIZE_NEAREST;
    if (!strcmp(s, "bilinear"))
        return MORSEL_RESIZE_BILINEAR;
    if (!strcmp(s, "bicubic"))
        return MORSEL_RESIZE_BICUBIC;
    if (!strcmp(s, "lanczos"))
        return MORSEL_RESIZE_LANCZOS;
    return MORSEL_RESIZE_BOX;
}

static morsel_preprocess plain_pp(morsel_resize_filter f, int crop)
{
    morsel_preprocess pp = MORSEL_PREPROCESS_INIT;
    pp.filter = f;
    pp.center_crop = crop;
    for (int c = 0; c < 3; c++)
        pp.scale[c] = 1.0f;
    return pp;
}

typedef struct cmp {
    size_t n, equal;
    int max_diff;
    int non_integer; /* a float output that is not an exact pixel value */
} cmp;

static cmp compare_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    cmp c = {n, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d == 0)
            c.equal++;
        if (d > c.max_diff)
            c.max_diff = d;
    }
    return c;
}

static cmp compare_floats(const float *a, const uint8_t *b, size_t n)
{
    cmp c = {n, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        float v = a[i];
        if (!(v >= 0.0f && v <= 255.0f) || v != floorf(v)) {
            c.non_integer++;
            c.max_diff = 999;
            continue;
        }
        int d = abs((int)v - (int)b[i]);
        if (d == 0)
            c.equal++;
        if (d > c.max_diff)
            c.max_diff = d;
    }
    return c;
}

/* ---- decode ---------------------------------------------------------------------------- */

static void run_decode(tally *t, const char *dir, mi_buffer *buf, const char *name,
                       const char *file, int w, int h, const char *ref_name)
{
    uint8_t *data = NULL, *ref = NULL;
    size_t size = 0, ref_size = 0;
    if (read_file(dir, file, &data, &size) || read_file(dir, ref_name, &ref, &ref_size)) {
        report(t, 0, "decode %s: cannot read fixture", name);
        free(data);
        free(ref);
        return;
    }
    morsel_error err = {MORSEL_OK, ""};
    int ow = 0, oh = 0;
    morsel_status st = mi_decode(data, size, NULL, 0, 0, buf, &ow, &oh, &err);
    if (st != MORSEL_OK) {
        report(t, 0, "decode %s: %s: %s", name, morsel_status_name(st), err.message);
    } else if (ow != w || oh != h || ref_size != (size_t)w * h * 3) {
        report(t, 0, "decode %s: size %dx%d, Pillow %dx%d", name, ow, oh, w, h);
    } else {
        cmp c = compare_bytes(buf->data, ref, ref_size);
        /* Exact equality is required for both formats: PNG is lossless and our libjpeg-turbo
         * (ISLOW IDCT, fancy upsampling) computes the same integers as Pillow's bundled one. */
        report(t, c.max_diff == 0, "decode %s %dx%d: max diff %d, %.4f%% equal", name, w, h,
               c.max_diff, 100.0 * (double)c.equal / (double)c.n);
    }
    free(data);
    free(ref);
}

/* ---- corrupt --------------------------------------------------------------------------- */

static void run_corrupt(tally *t, const char *dir, mi_buffer *buf, const char *name,
                        const char *file, const char *expect)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, file, &data, &size)) {
        report(t, 0, "corrupt %s: cannot read fixture", name);
        return;
    }
    morsel_status want = !strcmp(expect, "limit") ? MORSEL_ERR_LIMIT : MORSEL_ERR_IMAGE;
    morsel_error err = {MORSEL_OK, ""};
    int w = -1, h = -1;
    /* Decode from an exact-size heap copy so ASan sees any read past the end. */
    uint8_t *exact = malloc(size ? size : 1);
    if (size)
        memcpy(exact, data, size);
    morsel_status st = mi_decode(size ? exact : NULL, size, NULL, 0, 0, buf, &w, &h, &err);
    int ok = st == want && err.status == want && err.message[0] != '\0';
    report(t, ok, "corrupt %s (%zu bytes): %s \"%s\" (want %s)", name, size,
           morsel_status_name(st), err.message, morsel_status_name(want));
    free(exact);
    free(data);
}

/* ---- resize ---------------------------------------------------------------------------- */

static void run_resize(tally *t, const char *dir, const char *name, const char *src_name, int sw,
                       int sh, const char *filter, int crop, int dw, int dh, const char *ref_name)
{
    uint8_t *src = NULL, *ref = NULL;
    size_t src_size = 0, ref_size = 0;
    if (read_file(dir, src_name, &src, &src_size) || read_file(dir, ref_name, &ref, &ref_size) ||
        src_size != (size_t)sw * sh * 3 || ref_size != (size_t)dw * dh * 3) {
        report(t, 0, "resize %s: cannot read fixture", name);
        free(src);
        free(ref);
        return;
    }
    morsel_preprocess pp = plain_pp(parse_filter(filter), crop);
    size_t n_scratch = mi_preprocess_scratch(sw, sh, dw, dh);
    float *scratch = malloc(n_scratch * sizeof(float));
    float *out = malloc((size_t)dw * dh * 3 * sizeof(float));
    float *out2 = malloc((size_t)dw * dh * 3 * sizeof(float));
    /* the same source again with padded rows, to check stride handling */
    size_t stride = (size_t)sw * 3 + 7;
    uint8_t *padded = malloc(stride * (size_t)sh);
    morsel_error err = {MORSEL_OK, ""};
    if (!scratch || !out || !out2 || !padded) {
        report(t, 0, "resize %s: out of memory", name);
    } else {
        memset(padded, 0xAB, stride * (size_t)sh);
        for (int y = 0; y < sh; y++)
            memcpy(padded + (size_t)y * stride, src + (size_t)y * sw * 3, (size_t)sw * 3);
        morsel_status st = mi_preprocess(src, sw, sh, (size_t)sw * 3, &pp, dw, dh, out, scratch,
                                         &err);
        morsel_status st2 = mi_preprocess(padded, sw, sh, stride, &pp, dw, dh, out2, scratch,
                                          &err);
        if (st != MORSEL_OK || st2 != MORSEL_OK) {
            report(t, 0, "resize %s: %s", name, err.message);
        } else {
            cmp c = compare_floats(out, ref, ref_size);
            t->resize_values += c.n;
            t->resize_equal += c.equal;
            int same = !memcmp(out, out2, (size_t)dw * dh * 3 * sizeof(float));
            report(t, c.max_diff == 0 && same,
                   "resize %s: max diff %d, %.4f%% exactly equal%s", name, c.max_diff,
                   100.0 * (double)c.equal / (double)c.n, same ? "" : ", STRIDE MISMATCH");
        }
    }
    free(scratch);
    free(out);
    free(out2);
    free(padded);
    free(src);
    free(ref);
}

/* ---- end to end -------------------------------------------------------------------------- */

static void run_e2e(tally *t, const char *dir, mi_buffer *buf, const char *name,
                    const char *file, const char *filter, int crop, int dw, int dh,
                    const char *ref_name)
{
    uint8_t *data = NULL, *ref = NULL;
    size_t size = 0, ref_size = 0;
    if (read_file(dir, file, &data, &size) || read_file(dir, ref_name, &ref, &ref_size) ||
        ref_size != (size_t)dw * dh * 3) {
        report(t, 0, "e2e %s: cannot read fixture", name);
        free(data);
        free(ref);
        return;
    }
    morsel_error err = {MORSEL_OK, ""};
    int w = 0, h = 0;
    morsel_status st = mi_decode(data, size, NULL, 0, 0, buf, &w, &h, &err);
    float *out = malloc(ref_size * sizeof(float));
    float *scratch = st == MORSEL_OK ? malloc(mi_preprocess_scratch(w, h, dw, dh) * sizeof(float))
                                     : NULL;
    morsel_preprocess pp = plain_pp(parse_filter(filter), crop);
    if (st == MORSEL_OK && out && scratch)
        st = mi_preprocess(buf->data, w, h, (size_t)w * 3, &pp, dw, dh, out, scratch, &err);
    if (st != MORSEL_OK || !out || !scratch) {
        report(t, 0, "e2e %s: %s", name, err.message);
    } else {
        cmp c = compare_floats(out, ref, ref_size);
        t->resize_values += c.n;
        t->resize_equal += c.equal;
        report(t, c.max_diff == 0, "e2e %s: max diff %d, %.4f%% exactly equal", name,
               c.max_diff, 100.0 * (double)c.equal / (double)c.n);
    }
    free(out);
    free(scratch);
    free(data);
    free(ref);
}

/* ---- API checks that need no manifest line -------------------------------------------------- */

static void check_status(tally *t, const char *what, morsel_status got, morsel_status want,
                         const morsel_error *err)
{
    report(t, got == want && (want == MORSEL_OK || (err->status == want && err->message[0])),
           "%s: %s \"%s\" (want %s)", what, morsel_status_name(got),
           got == MORSEL_OK ? "" : err->message, morsel_status_name(want));
}

static void api_limits(tally *t, const char *dir, const char *file, int w, int h)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, file, &data, &size)) {
        report(t, 0, "limits %s: cannot read fixture", file);
        return;
    }
    mi_buffer buf = {NULL, 0};
    morsel_error err;
    int ow, oh;
    char what[256];
    morsel_decode_options lim = {.struct_size = sizeof lim, .max_pixels = (uint64_t)w * h - 1};
    snprintf(what, sizeof what, "limits %s max_pixels=w*h-1", file);
    check_status(t, what, mi_decode(data, size, &lim, 0, 0, &buf, &ow, &oh, &err), MORSEL_ERR_LIMIT,
                 &err);
    report(t, buf.data == NULL, "limits %s: nothing allocated before the pixel check", file);
    lim.max_pixels = (uint64_t)w * h;
    snprintf(what, sizeof what, "limits %s max_pixels=w*h", file);
    check_status(t, what, mi_decode(data, size, &lim, 0, 0, &buf, &ow, &oh, &err), MORSEL_OK, &err);
    lim.max_encoded_bytes = size - 1;
    snprintf(what, sizeof what, "limits %s max_encoded_bytes=size-1", file);
    check_status(t, what, mi_decode(data, size, &lim, 0, 0, &buf, &ow, &oh, &err), MORSEL_ERR_LIMIT,
                 &err);
    lim.max_encoded_bytes = size;
    snprintf(what, sizeof what, "limits %s max_encoded_bytes=size", file);
    check_status(t, what, mi_decode(data, size, &lim, 0, 0, &buf, &ow, &oh, &err), MORSEL_OK, &err);
    mi_buffer_free(&buf);
    free(data);
}

static void api_buffer_reuse(tally *t, const char *dir)
{
    uint8_t *big = NULL, *small = NULL;
    size_t nb = 0, ns = 0;
    if (read_file(dir, "dec_png_rgb8_640x481.png", &big, &nb) ||
        read_file(dir, "dec_jpg_420_37x23.jpg", &small, &ns)) {
        report(t, 0, "buffer reuse: cannot read fixtures");
        free(big);
        free(small);
        return;
    }
    mi_buffer buf = {NULL, 0};
    morsel_error err;
    int w, h;
    morsel_status s1 = mi_decode(big, nb, NULL, 0, 0, &buf, &w, &h, &err);
    uint8_t *p = buf.data;
    size_t cap = buf.capacity;
    morsel_status s2 = mi_decode(small, ns, NULL, 0, 0, &buf, &w, &h, &err);
    report(t, s1 == MORSEL_OK && s2 == MORSEL_OK && buf.data == p && buf.capacity == cap &&
                  cap >= (size_t)640 * 481 * 3,
           "buffer reuse: a smaller image keeps the buffer (capacity %zu)", buf.capacity);
    mi_buffer_free(&buf);
    report(t, buf.data == NULL && buf.capacity == 0, "mi_buffer_free resets the buffer");
    mi_buffer_free(&buf); /* twice is harmless */
    free(big);
    free(small);
}

static void api_public(tally *t, const char *dir)
{
    uint8_t *data = NULL, *ref = NULL;
    size_t size = 0, ref_size = 0;
    if (read_file(dir, "dec_pil_RGB_640x481.png", &data, &size) ||
        read_file(dir, "dec_pil_RGB_640x481.rgb", &ref, &ref_size)) {
        report(t, 0, "public api: cannot read fixtures");
        free(data);
        free(ref);
        return;
    }
    morsel_error err = {MORSEL_OK, ""};
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    morsel_status st = morsel_decode_image(data, size, NULL, 0, 0, &rgb, &w, &h, &err);
    report(t, st == MORSEL_OK && w == 640 && h == 481 && rgb && ref_size == (size_t)w * h * 3 &&
                  !memcmp(rgb, ref, ref_size),
           "morsel_decode_image: %s", st == MORSEL_OK ? "pixels equal Pillow's" : err.message);

    if (st == MORSEL_OK) {
        /* BGR + scale/offset against the unscaled RGB result */
        morsel_preprocess pp = plain_pp(MORSEL_RESIZE_BILINEAR, 1);
        const int dw = 224, dh = 224;
        float *plain = malloc((size_t)dw * dh * 3 * sizeof(float));
        float *fancy = malloc((size_t)dw * dh * 3 * sizeof(float));
        morsel_status s1 = morsel_preprocess_rgb(rgb, w, h, (size_t)w * 3, &pp, dw, dh, plain,
                                                 &err);
        pp.bgr = 1;
        const float sc[3] = {1.0f / 127.5f, 0.017f, 2.0f}, of[3] = {-1.0f, -103.939f, 0.5f};
        memcpy(pp.scale, sc, sizeof sc);
        memcpy(pp.offset, of, sizeof of);
        morsel_status s2 = morsel_preprocess_rgb(rgb, w, h, (size_t)w * 3, &pp, dw, dh, fancy,
                                                 &err);
        double worst = 0.0;
        for (size_t i = 0; s1 == MORSEL_OK && s2 == MORSEL_OK && i < (size_t)dw * dh; i++)
            for (int c = 0; c < 3; c++) {
                float want = plain[i * 3 + (size_t)(2 - c)] * sc[c] + of[c];
                double d = fabs((double)fancy[i * 3 + (size_t)c] - (double)want);
                if (d > worst)
                    worst = d;
            }
        report(t, s1 == MORSEL_OK && s2 == MORSEL_OK && worst <= 1e-5,
               "morsel_preprocess_rgb: bgr + scale/offset, max deviation %g", worst);
        free(plain);
        free(fancy);
    }
    free(rgb);

    /* errors */
    st = morsel_decode_image(data, size, NULL, 0, 0, NULL, &w, &h, &err);
    check_status(t, "morsel_decode_image rgb=NULL", st, MORSEL_ERR_ARGUMENT, &err);
    rgb = (uint8_t *)&w;
    st = morsel_decode_image("nope", 4, NULL, 0, 0, &rgb, &w, &h, &err);
    check_status(t, "morsel_decode_image not an image", st, MORSEL_ERR_IMAGE, &err);
    report(t, rgb == NULL, "morsel_decode_image leaves *rgb NULL on failure");
    st = morsel_decode_image(NULL, 0, NULL, 0, 0, &rgb, &w, &h, &err);
    check_status(t, "morsel_decode_image empty", st, MORSEL_ERR_IMAGE, &err);
    st = morsel_decode_image(NULL, 10, NULL, 0, 0, &rgb, &w, &h, &err);
    check_status(t, "morsel_decode_image bytes=NULL size=10", st, MORSEL_ERR_ARGUMENT, &err);

    uint8_t px[12] = {0};
    float dst[12];
    morsel_preprocess pp = plain_pp(MORSEL_RESIZE_BICUBIC, 0);
    st = morsel_preprocess_rgb(px, 2, 2, 5, &pp, 2, 2, dst, &err);
    check_status(t, "preprocess stride < width*3", st, MORSEL_ERR_ARGUMENT, &err);
    st = morsel_preprocess_rgb(px, 0, 2, 6, &pp, 2, 2, dst, &err);
    check_status(t, "preprocess width 0", st, MORSEL_ERR_ARGUMENT, &err);
    st = morsel_preprocess_rgb(px, 2, 2, 6, &pp, 2, -1, dst, &err);
    check_status(t, "preprocess dst_h -1", st, MORSEL_ERR_ARGUMENT, &err);
    st = morsel_preprocess_rgb(px, 2, 2, 6, NULL, 2, 2, dst, &err);
    check_status(t, "preprocess pp NULL", st, MORSEL_ERR_ARGUMENT, &err);
    pp.filter = (morsel_resize_filter)42;
    st = morsel_preprocess_rgb(px, 2, 2, 6, &pp, 1, 1, dst, &err);
    check_status(t, "preprocess unknown filter", st, MORSEL_ERR_ARGUMENT, &err);
    pp.filter = MORSEL_RESIZE_LANCZOS;
    st = morsel_preprocess_rgb(px, 2, 2, 6, &pp, 2, 2, dst, &err);
    check_status(t, "preprocess 2x2 -> 2x2", st, MORSEL_OK, &err);
    free(data);
    free(ref);
}

/* ---- decode options: EXIF orientation, JPEG DCT scaling ------------------------------------ */

/* An exact-size heap copy, so ASan sees any read past the end. */
static uint8_t *exact_copy(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    if (p && size)
        memcpy(p, data, size);
    return p;
}

static void run_decodeopt(tally *t, const char *dir, mi_buffer *buf, const char *name,
                          const char *file, int exif, int fast, int tw, int th, int w, int h,
                          const char *ref_name)
{
    uint8_t *data = NULL, *ref = NULL;
    size_t size = 0, ref_size = 0;
    if (read_file(dir, file, &data, &size) || read_file(dir, ref_name, &ref, &ref_size)) {
        report(t, 0, "decodeopt %s: cannot read fixture", name);
        free(data);
        free(ref);
        return;
    }
    uint8_t *exact = exact_copy(data, size);
    morsel_decode_options opt = {.struct_size = sizeof opt, .exif_orientation = exif,
                                 .jpeg_fast_scale = fast};
    morsel_error err = {MORSEL_OK, ""};
    int ow = 0, oh = 0;
    morsel_status st = mi_decode(exact, size, &opt, tw, th, buf, &ow, &oh, &err);
    if (st != MORSEL_OK) {
        report(t, 0, "decodeopt %s: %s: %s", name, morsel_status_name(st), err.message);
    } else if (ow != w || oh != h || ref_size != (size_t)w * h * 3) {
        report(t, 0, "decodeopt %s: size %dx%d, Pillow %dx%d", name, ow, oh, w, h);
    } else {
        cmp c = compare_bytes(buf->data, ref, ref_size);
        report(t, c.max_diff == 0, "decodeopt %s -> %dx%d: max diff %d, %.4f%% equal", name, w,
               h, c.max_diff, 100.0 * (double)c.equal / (double)c.n);
    }
    free(exact);
    free(data);
    free(ref);
}

/* A fixed pseudo-random sequence (no global state). */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* The parser against Pillow's reading of the block, then every truncation and 300 random
 * mutations of it (exact-size copies: an over-read fails under ASan). */
static void run_exifblock(tally *t, const char *dir, const char *name, const char *file,
                          int expect)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, file, &data, &size)) {
        report(t, 0, "exifblock %s: cannot read fixture", name);
        return;
    }
    uint8_t *exact = exact_copy(data, size);
    int got = mi_exif_orientation(exact, size);
    free(exact);
    int bad = 0;
    for (size_t n = 0; n <= size; n++) {
        uint8_t *cut = exact_copy(data, n);
        int o = mi_exif_orientation(cut, n);
        bad += o < -1 || o > 8;
        free(cut);
    }
    uint32_t seed = (uint32_t)size * 2654435761u;
    for (int i = 0; i < 300 && size; i++) {
        uint8_t *m = exact_copy(data, size);
        int flips = 1 + (int)(lcg(&seed) % 3);
        for (int f = 0; f < flips; f++)
            m[lcg(&seed) % size] = (uint8_t)lcg(&seed);
        int o = mi_exif_orientation(m, size);
        bad += o < -1 || o > 8;
        free(m);
    }
    report(t, got == expect && !bad, "exifblock %s (%zu bytes): orientation %d, Pillow %d; "
           "%zu truncations + 300 mutations parsed in bounds", name, size, got, expect, size + 1);
    free(data);
}

/* A JPEG whose APP1 Exif segment is mutated at random: each decode must succeed (with either
 * orientation's geometry) or fail with MORSEL_ERR_IMAGE -- never crash or read out of bounds. */
static void exif_jpeg_fuzz(tally *t, const char *dir, const char *file, int w, int h)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, file, &data, &size)) {
        report(t, 0, "exif fuzz %s: cannot read fixture", file);
        return;
    }
    size_t app1 = 0, len = 0;
    for (size_t i = 2; i + 4 < size; i++)
        if (data[i] == 0xFF && data[i + 1] == 0xE1) {
            app1 = i + 4;
            len = ((size_t)data[i + 2] << 8 | data[i + 3]) - 2;
            break;
        }
    if (!app1 || app1 + len > size) {
        report(t, 0, "exif fuzz %s: no APP1 segment", file);
        free(data);
        return;
    }
    mi_buffer buf = {NULL, 0};
    morsel_decode_options opt = {.struct_size = sizeof opt, .exif_orientation = 1};
    uint32_t seed = 12345;
    int ok = 0, failed = 0, wrong = 0;
    for (int i = 0; i < 400; i++) {
        uint8_t *m = exact_copy(data, size);
        int flips = 1 + (int)(lcg(&seed) % 4);
        for (int f = 0; f < flips; f++)
            m[app1 + lcg(&seed) % len] = (uint8_t)lcg(&seed);
        morsel_error err = {MORSEL_OK, ""};
        int ow = 0, oh = 0;
        morsel_status st = mi_decode(m, size, &opt, 0, 0, &buf, &ow, &oh, &err);
        if (st == MORSEL_OK && ((ow == w && oh == h) || (ow == h && oh == w)))
            ok++;
        else if (st == MORSEL_ERR_IMAGE)
            failed++;
        else
            wrong++;
        free(m);
    }
    report(t, wrong == 0, "exif fuzz %s: 400 mutated Exif segments: %d decoded, %d refused, %d "
           "wrong", file, ok, failed, wrong);
    mi_buffer_free(&buf);
    free(data);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median decode and decode+preprocess (bilinear to tw x th) times, plain and jpeg_fast_scale.
 * Informational: the speedup is printed, not asserted (it is meaningless under ASan). */
static void run_bench(tally *t, const char *dir, const char *name, const char *file, int tw,
                      int th)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, file, &data, &size)) {
        report(t, 0, "bench %s: cannot read fixture", name);
        return;
    }
    enum { MAX_RUNS = 9 };
    const int runs = UNDER_ASAN ? 1 : MAX_RUNS;
    double dec[2][MAX_RUNS], tot[2][MAX_RUNS];
    int dw[2] = {0, 0}, dh[2] = {0, 0}, okay = 1;
    float *out = malloc((size_t)tw * th * 3 * sizeof(float));
    morsel_preprocess pp = plain_pp(MORSEL_RESIZE_BILINEAR, 0);
    morsel_error err = {MORSEL_OK, ""};
    for (int fast = 0; fast < 2 && okay; fast++) {
        morsel_decode_options opt = {.struct_size = sizeof opt, .jpeg_fast_scale = fast};
        for (int r = 0; r < runs && okay; r++) {
            mi_buffer buf = {NULL, 0}; /* a fresh buffer each run: allocation is part of it */
            float *scratch = NULL;
            double t0 = now_ms();
            okay = mi_decode(data, size, &opt, tw, th, &buf, &dw[fast], &dh[fast], &err) ==
                   MORSEL_OK;
            double t1 = now_ms();
            if (okay) {
                scratch = malloc(mi_preprocess_scratch(dw[fast], dh[fast], tw, th) *
                                 sizeof(float));
                okay = scratch && out &&
                       mi_preprocess(buf.data, dw[fast], dh[fast], (size_t)dw[fast] * 3, &pp,
                                     tw, th, out, scratch, &err) == MORSEL_OK;
            }
            double t2 = now_ms();
            dec[fast][r] = t1 - t0;
            tot[fast][r] = t2 - t0;
            free(scratch);
            mi_buffer_free(&buf);
        }
        qsort(dec[fast], (size_t)runs, sizeof(double), cmp_double);
        qsort(tot[fast], (size_t)runs, sizeof(double), cmp_double);
    }
    if (!okay) {
        report(t, 0, "bench %s: %s", name, err.message);
    } else {
        double p = tot[0][runs / 2], f = tot[1][runs / 2];
        report(t, dw[1] >= tw && dh[1] >= th,
               "bench %s -> %dx%d bilinear, median of %d%s: plain decode %.2f ms + preprocess "
               "%.2f ms = %.2f ms; fast (decoded %dx%d) %.2f + %.2f = %.2f ms; speedup %.2fx",
               name, tw, th, runs, UNDER_ASAN ? " (ASan build: times not meaningful)" : "",
               dec[0][runs / 2], p - dec[0][runs / 2], p, dw[1], dh[1], dec[1][runs / 2],
               f - dec[1][runs / 2], f, p / f);
    }
    free(out);
    free(data);
}

static void api_decode_options(tally *t, const char *dir)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(dir, "dec_jpg_420_640x481.jpg", &data, &size)) {
        report(t, 0, "decode options: cannot read fixture");
        return;
    }
    mi_buffer buf = {NULL, 0};
    morsel_error err;
    int w = 0, h = 0;
    morsel_decode_options opt = {.struct_size = sizeof opt, .exif_orientation = 2};
    check_status(t, "decode options exif_orientation=2", mi_decode(data, size, &opt, 0, 0, &buf,
                 &w, &h, &err), MORSEL_ERR_ARGUMENT, &err);
    opt = (morsel_decode_options){.struct_size = sizeof opt, .jpeg_fast_scale = -1};
    check_status(t, "decode options jpeg_fast_scale=-1", mi_decode(data, size, &opt, 0, 0, &buf,
                 &w, &h, &err), MORSEL_ERR_ARGUMENT, &err);
    opt = (morsel_decode_options){.struct_size = sizeof opt, .jpeg_fast_scale = 1};
    check_status(t, "decode target -1 x 5", mi_decode(data, size, &opt, -1, 5, &buf, &w, &h,
                 &err), MORSEL_ERR_ARGUMENT, &err);
    /* fast mode without a target: full size */
    morsel_status st = mi_decode(data, size, &opt, 0, 0, &buf, &w, &h, &err);
    report(t, st == MORSEL_OK && w == 640 && h == 481,
           "jpeg_fast_scale with target 0x0 decodes at full size (%dx%d)", w, h);
    /* the pixel limit is on the stored size, also when decoding at 1/8 */
    opt = (morsel_decode_options){.struct_size = sizeof opt,
                                  .max_pixels = (uint64_t)640 * 481 - 1, .jpeg_fast_scale = 1};
    check_status(t, "fast 1/8 decode, max_pixels = stored w*h-1", mi_decode(data, size, &opt, 32,
                 32, &buf, &w, &h, &err), MORSEL_ERR_LIMIT, &err);
    /* public API */
    uint8_t *rgb = NULL;
    opt = (morsel_decode_options){.struct_size = sizeof opt, .jpeg_fast_scale = 1};
    st = morsel_decode_image(data, size, &opt, 64, 64, &rgb, &w, &h, &err);
    report(t, st == MORSEL_OK && rgb && w == 160 && h == 121,
           "morsel_decode_image fast, target 64x64: %dx%d (1/4 scale, want 160x121)", w, h);
    free(rgb);
    rgb = NULL;
    opt = (morsel_decode_options){.struct_size = sizeof opt};
    st = morsel_decode_image(data, size, &opt, 64, 64, &rgb, &w, &h, &err);
    report(t, st == MORSEL_OK && rgb && w == 640 && h == 481,
           "morsel_decode_image plain, target 64x64: %dx%d (no scaling)", w, h);
    free(rgb);
    report(t, morsel_context_set_decode_options(NULL, &opt, NULL) == MORSEL_ERR_ARGUMENT,
           "morsel_context_set_decode_options(NULL ctx) -> MORSEL_ERR_ARGUMENT");
    report(t, mi_exif_orientation(NULL, 10) == 0, "mi_exif_orientation(NULL) -> 0");
    mi_buffer_free(&buf);
    free(data);
}

/* The names front ends share: every filter name round-trips, presets map the pixel range where
 * Keras' preprocess_input functions do, and a wrong name is refused with the name in the message
 * and the output untouched. */
static void api_presets(tally *t)
{
    static const char *const names[] = {"nearest", "bilinear", "bicubic", "lanczos", "box"};
    morsel_error err;
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        morsel_resize_filter f = (morsel_resize_filter)-1;
        const char *back = morsel_resize_filter_name((morsel_resize_filter)i);
        ok &= morsel_resize_filter_parse(names[i], &f, &err) == MORSEL_OK && (int)f == i && back &&
              !strcmp(back, names[i]);
    }
    report(t, ok, "resize filter names parse to MORSEL_RESIZE_* and back");
    morsel_resize_filter f = MORSEL_RESIZE_BOX;
    morsel_status st = morsel_resize_filter_parse("Bicubic", &f, &err);
    report(t, st == MORSEL_ERR_ARGUMENT && f == MORSEL_RESIZE_BOX && strstr(err.message, "Bicubic"),
           "resize filter 'Bicubic' refused (case matters): %s", err.message);
    report(t, morsel_resize_filter_name((morsel_resize_filter)5) == NULL,
           "morsel_resize_filter_name(5) is NULL");

    /* value = pixel * scale + offset at pixel 0 and 255, per output channel */
    static const struct {
        const char *name;
        int bgr;
        double lo[3], hi[3], tol;
    } want[] = {
        {"unit", 0, {0, 0, 0}, {1, 1, 1}, 1e-6},
        {"tf", 0, {-1, -1, -1}, {1, 1, 1}, 1e-6},
        {"raw", 0, {0, 0, 0}, {255, 255, 255}, 0},
        {"caffe", 1, {-103.939, -116.779, -123.68}, {151.061, 138.221, 131.32}, 1e-4},
        {"torch", 0, {-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225},
         {0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225}, 1e-5},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        morsel_preprocess pp = plain_pp(MORSEL_RESIZE_LANCZOS, 1);
        st = morsel_preprocess_preset(want[i].name, &pp, &err);
        ok = st == MORSEL_OK && pp.bgr == want[i].bgr && pp.filter == MORSEL_RESIZE_LANCZOS &&
             pp.center_crop == 1;
        for (int c = 0; c < 3; c++) {
            ok &= fabs(pp.offset[c] - want[i].lo[c]) <= want[i].tol;
            ok &= fabs(255.0f * pp.scale[c] + pp.offset[c] - want[i].hi[c]) <= want[i].tol;
        }
        report(t, ok, "preset %s: bgr %d, 0 -> %g, 255 -> %g (filter and crop kept)",
               want[i].name, pp.bgr, (double)pp.offset[0],
               (double)(255.0f * pp.scale[0] + pp.offset[0]));
    }
    morsel_preprocess pp = plain_pp(MORSEL_RESIZE_BOX, 0);
    st = morsel_preprocess_preset("imagenet", &pp, &err);
    report(t, st == MORSEL_ERR_ARGUMENT && pp.scale[0] == 1.0f && pp.bgr == 0 &&
           strstr(err.message, "imagenet"), "preset 'imagenet' refused: %s", err.message);
}

/* test_image --bench RUNS FILE...: per file, "file w h decode_ms resize_scalar_ms resize_ms isa"
 * (medians; resize = bicubic stretch to 224x224 floats, as the pipeline does it) for
 * test/bench/image_bench.py, which times Pillow alongside. */
static int bench_main(int runs, int n, char **files)
{
    enum { MAX_RUNS = 101 };
    if (runs < 1 || runs > MAX_RUNS)
        return 2;
    float *out = malloc((size_t)224 * 224 * 3 * sizeof(float));
    morsel_preprocess pp = plain_pp(MORSEL_RESIZE_BICUBIC, 0);
    const char *isa = mi_resample_kernels_for(NULL)->isa;
    for (int f = 0; f < n; f++) {
        uint8_t *data = NULL;
        size_t size = 0;
        if (read_file(files[f][0] == '/' ? "" : ".", files[f], &data, &size))
            return 1;
        double dec[MAX_RUNS], rs[2][MAX_RUNS];
        mi_buffer buf = {NULL, 0};
        float *scratch = NULL;
        int w = 0, h = 0;
        morsel_error err;
        for (int r = 0; r < runs; r++) {
            mi_buffer_free(&buf); /* allocation is part of decoding */
            double t0 = now_ms();
            if (mi_decode(data, size, NULL, 0, 0, &buf, &w, &h, &err) != MORSEL_OK) {
                fprintf(stderr, "%s: %s\n", files[f], err.message);
                return 1;
            }
            dec[r] = now_ms() - t0;
            if (!scratch)
                scratch = malloc(mi_preprocess_scratch(w, h, 224, 224) * sizeof(float));
            for (int v = 0; v < 2; v++) { /* scalar and best interleaved */
                double t1 = now_ms();
                mi_preprocess_isa(buf.data, w, h, (size_t)w * 3, &pp, 224, 224, out, scratch,
                                  v ? NULL : "scalar", &err);
                rs[v][r] = now_ms() - t1;
            }
        }
        qsort(dec, (size_t)runs, sizeof(double), cmp_double);
        qsort(rs[0], (size_t)runs, sizeof(double), cmp_double);
        qsort(rs[1], (size_t)runs, sizeof(double), cmp_double);
        printf("%s %d %d %.4f %.4f %.4f %s\n", files[f], w, h, dec[runs / 2], rs[0][runs / 2],
               rs[1][runs / 2], isa);
        mi_buffer_free(&buf);
        free(scratch);
        free(data);
    }
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--bench"))
        return bench_main(atoi(argv[2]), argc - 3, argv + 3);
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s FIXTURE_DIR [NAME_CONTAINS]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *only = argc == 3 ? argv[2] : NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *mf = fopen(path, "r");
    if (!mf) {
        fprintf(stderr, "test_image: cannot open %s (run gen_image_fixtures.py first)\n", path);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    tally t = {0, 0, 0, 0};
    mi_buffer buf = {NULL, 0}; /* shared by every decode: exercises growth and reuse */
    char line[2048];
    while (fgets(line, sizeof line, mf)) {
        char kind[32], name[512], a[512], b[512], c[512];
        int w, h, crop, dw, dh, exif, fast;
        if (sscanf(line, "%31s", kind) != 1)
            continue;
        if (only && (sscanf(line, "%*s %511s", name) != 1 || !strstr(name, only)))
            continue;
        if (!strcmp(kind, "decode") &&
            sscanf(line, "%*s %511s %511s %d %d %511s", name, a, &w, &h, b) == 5) {
            run_decode(&t, dir, &buf, name, a, w, h, b);
        } else if (!strcmp(kind, "corrupt") &&
                   sscanf(line, "%*s %511s %511s %511s", name, a, b) == 3) {
            run_corrupt(&t, dir, &buf, name, a, b);
        } else if (!strcmp(kind, "resize") &&
                   sscanf(line, "%*s %511s %511s %d %d %511s %d %d %d %511s", name, a, &w, &h, b,
                          &crop, &dw, &dh, c) == 9) {
            run_resize(&t, dir, name, a, w, h, b, crop, dw, dh, c);
        } else if (!strcmp(kind, "e2e") &&
                   sscanf(line, "%*s %511s %511s %511s %d %d %d %511s", name, a, b, &crop, &dw,
                          &dh, c) == 7) {
            run_e2e(&t, dir, &buf, name, a, b, crop, dw, dh, c);
        } else if (!strcmp(kind, "decodeopt") &&
                   sscanf(line, "%*s %511s %511s %d %d %d %d %d %d %511s", name, a, &exif, &fast,
                          &dw, &dh, &w, &h, c) == 9) {
            run_decodeopt(&t, dir, &buf, name, a, exif, fast, dw, dh, w, h, c);
        } else if (!strcmp(kind, "exifblock") &&
                   sscanf(line, "%*s %511s %511s %d", name, a, &exif) == 3) {
            run_exifblock(&t, dir, name, a, exif);
        } else if (!strcmp(kind, "bench") &&
                   sscanf(line, "%*s %511s %511s %d %d", name, a, &dw, &dh) == 4) {
            run_bench(&t, dir, name, a, dw, dh);
        } else {
            report(&t, 0, "manifest: cannot parse line: %s", line);
        }
    }
    fclose(mf);
    mi_buffer_free(&buf);

    /* The README promises Pillow-exact resizing: every value of every case is equal (each
     * case asserts it too; the total says how many values that covers). */
    if (t.resize_values) {
        double frac = (double)t.resize_equal / (double)t.resize_values;
        report(&t, t.resize_equal == t.resize_values, "resize overall: %.5f%% of %zu values exactly equal to Pillow",
               100.0 * frac, t.resize_values);
    }

    if (only) { /* a selection: it must have matched something */
        report(&t, t.passed + t.failed > 0, "cases matching '%s': %d", only, t.passed + t.failed);
        printf("%d passed, %d failed\n", t.passed, t.failed);
        return t.failed ? 1 : 0;
    }
    api_limits(&t, dir, "dec_png_rgb8_640x481.png", 640, 481);
    api_limits(&t, dir, "dec_jpg_420_640x481.jpg", 640, 481);
    api_limits(&t, dir, "dec_png_i_rgba8_640x481.png", 640, 481);
    api_buffer_reuse(&t, dir);
    api_public(&t, dir);
    api_decode_options(&t, dir);
    api_presets(&t);
    exif_jpeg_fuzz(&t, dir, "opt_exif_ii_o6.jpg", 61, 35);
    exif_jpeg_fuzz(&t, dir, "opt_exif_mm_o5.jpg", 61, 35);

    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
