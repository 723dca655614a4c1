/* Hostile images against the decode budgets (issue 10, denial of service). Every file is made
 * here, with libjpeg's own encoder (custom progressive scan scripts) or chunk by chunk for PNG,
 * so the test needs no committed binaries. What is asserted are the work and memory counters
 * the budgets define -- the scan a decode stopped at, the bytes its buffer holds -- and the peak
 * RSS, never wall time.
 *
 * usage: test_image_bombs
 */
#include "image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jpeglib.h>
#include <zlib.h>

static int passed, failed;

static void report(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(ok ? "ok   " : "FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- JPEG: progressive files with many scans ---------------------------------------------- */

/* A valid progressive JPEG of w x h (1 or 3 components, 4:4:4), a gradient (flat: one grey, so
 * every AC scan is a run of empty blocks, cheap to make -- and still a pass to decode), whose scan
 * script sends, for every component, the DC band and each of the 63 AC coefficients alone, each
 * with al bits of successive approximation: comps * 64 * (al + 1) scans, every one a pass over
 * the whole image. malloc'd; *n its size. */
static uint8_t *make_progressive(int w, int h, int comps, int al, int flat, int *n_scans,
                                  size_t *n)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long out_size = 0;
    jpeg_mem_dest(&ci, &out, &out_size);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    for (int c = 0; c < ci.num_components; c++)
        ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
    int total = comps * 64 * (al + 1), i = 0;
    jpeg_scan_info *script = calloc((size_t)total, sizeof *script);
    for (int c = 0; c < comps; c++)
        for (int k = 0; k < 64; k++) {
            jpeg_scan_info first = {1, {c}, k, k, 0, al};
            script[i++] = first;
            for (int a = al - 1; a >= 0; a--) {
                jpeg_scan_info ref = {1, {c}, k, k, a + 1, a};
                script[i++] = ref;
            }
        }
    ci.scan_info = script;
    ci.num_scans = i;
    jpeg_start_compress(&ci, TRUE);
    JSAMPLE *row = malloc((size_t)w * comps);
    while (ci.next_scanline < ci.image_height) {
        unsigned y = ci.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++)
                row[x * comps + c] =
                    flat ? 128 : (JSAMPLE)((x * 255 / (w > 1 ? w - 1 : 1) + y + 40 * c) & 255);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    free(script);
    *n_scans = i;
    *n = out_size;
    return out;
}

/* The scan number in a work-limit message ("scan N of this ..."), 0 if none. */
static unsigned long long stopped_at(const char *msg)
{
    const char *p = strstr(msg, "scan ");
    unsigned long long v = 0;
    return p && sscanf(p, "scan %llu of", &v) == 1 ? v : 0;
}

static morsel_status decode(const uint8_t *data, size_t n, uint64_t work, uint64_t memory,
                            mi_buffer *buf, int *w, int *h, morsel_error *err)
{
    morsel_decode_options opt = MORSEL_DECODE_OPTIONS_INIT;
    opt.max_decode_work = work;
    opt.max_decode_memory = memory;
    *err = (morsel_error){0};
    return mi_decode(data, n, &opt, 0, 0, buf, w, h, err);
}

static void jpeg_work(void)
{
    int scans = 0, w = 0, h = 0;
    size_t n = 0;
    mi_buffer buf = {NULL, 0};
    morsel_error err;

    /* 192 scans of 512x512; a budget of 50 full scans must stop it as scan 51 starts */
    uint8_t *jpg = make_progressive(512, 512, 1, 2, 0, &scans, &n);
    const uint64_t px = 512 * 512;
    morsel_status s = decode(jpg, n, 50 * px, 0, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_LIMIT && stopped_at(err.message) == 51,
           "512x512 gray, %d scans, work limit 50 scans: %s, stopped at scan %llu (%s)", scans,
           morsel_status_name(s), stopped_at(err.message), err.message);
    s = decode(jpg, n, scans * px, 0, &buf, &w, &h, &err);
    report(s == MORSEL_OK && w == 512 && h == 512,
           "512x512 gray, %d scans, work limit exactly %d scans: %s %dx%d %s", scans, scans,
           morsel_status_name(s), w, h, err.message);
    s = decode(jpg, n, 0, 0, &buf, &w, &h, &err);
    report(s == MORSEL_OK, "512x512 gray, %d scans, default budgets: %s %s", scans,
           morsel_status_name(s), err.message);
    free(jpg);

    /* The default budget (2 Gi pixel-scans) on a 16 Mpx image: 128 scans, not 192. */
    jpg = make_progressive(4096, 4096, 1, 2, 1, &scans, &n);
    s = decode(jpg, n, 0, 0, &buf, &w, &h, &err);
    unsigned long long at = stopped_at(err.message);
    report(s == MORSEL_ERR_LIMIT && at == MI_DEFAULT_MAX_DECODE_WORK / (4096 * 4096) + 1,
           "4096x4096 gray (%zu bytes), %d scans, default work budget: %s at scan %llu (%s)", n,
           scans, morsel_status_name(s), at, err.message);
    free(jpg);

    /* More than 1000 scans (2112, 3 components): a bad file whatever the work budget. */
    jpg = make_progressive(16, 16, 3, 10, 0, &scans, &n);
    s = decode(jpg, n, UINT64_MAX, 0, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_IMAGE && strstr(err.message, "more than 1000 scans"),
           "16x16 RGB, %d scans, unlimited work: %s (%s)", scans, morsel_status_name(s),
           err.message);
    free(jpg);
    mi_buffer_free(&buf);
}

static void jpeg_memory(void)
{
    int scans = 0, w = 0, h = 0;
    size_t n = 0;
    morsel_error err;
    /* 1024x1024 gray progressive: 3 MiB of RGB + 2 MiB of coefficients (16 bits each). */
    uint8_t *jpg = make_progressive(1024, 1024, 1, 0, 0, &scans, &n);
    mi_buffer buf = {NULL, 0};
    morsel_status s = decode(jpg, n, 0, 2 << 20, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_LIMIT && strstr(err.message, "needs 3145728 bytes") && !buf.data,
           "1024x1024 progressive, memory limit 2 MiB: %s before any allocation (%s)",
           morsel_status_name(s), err.message);
    s = decode(jpg, n, 0, 4 << 20, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_LIMIT && strstr(err.message, "memory limit of 4194304 bytes"),
           "1024x1024 progressive, memory limit 4 MiB (RGB 3 + coefficients 2): %s (%s)",
           morsel_status_name(s), err.message);
    s = decode(jpg, n, 0, 6 << 20, &buf, &w, &h, &err);
    report(s == MORSEL_OK && w == 1024, "1024x1024 progressive, memory limit 6 MiB: %s %s",
           morsel_status_name(s), err.message);
    mi_buffer_free(&buf);
    free(jpg);
}

/* ---- PNG: chunk by chunk --------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void chunk(bytes *b, const char *type, const uint8_t *data, size_t n)
{
    uint8_t hdr[8], crc[4];
    put_be32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    put(b, hdr, 8);
    if (n)
        put(b, data, n);
    uLong c = crc32(0, hdr + 4, 4);
    c = crc32(c, data, (uInt)n);
    put_be32(crc, (uint32_t)c);
    put(b, crc, 4);
}

static void png_start(bytes *b, uint32_t w, uint32_t h, int depth, int color, int interlace)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    uint8_t ihdr[13];
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)color;
    ihdr[10] = ihdr[11] = 0;
    ihdr[12] = (uint8_t)interlace;
    put(b, sig, 8);
    chunk(b, "IHDR", ihdr, 13);
}

/* A zlib stream of `mib` MiB of zeros, after a `prefix` (as iCCP and zTXt put a name and a
 * method byte before theirs): a decompression bomb, about 1000:1. */
static void bomb_chunk(bytes *b, const char *type, const char *prefix, size_t prefix_n, int mib)
{
    bytes d = {0};
    put(&d, prefix, prefix_n);
    uint8_t *zeros = calloc(1, 1 << 20), out[1 << 16];
    z_stream z = {0};
    deflateInit(&z, 9);
    for (int i = 0; i < mib; i++) {
        z.next_in = zeros;
        z.avail_in = 1 << 20;
        int flush = i + 1 == mib ? Z_FINISH : Z_NO_FLUSH, r;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            r = deflate(&z, flush);
            put(&d, out, sizeof out - z.avail_out);
        } while (z.avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
    }
    deflateEnd(&z);
    free(zeros);
    chunk(b, type, d.p, d.n);
    free(d.p);
}

/* 8-bit RGB w x h, pixel (x, y) = (x, y, x ^ y), one IDAT, non-interlaced. */
static void rgb_idat(bytes *b, int w, int h)
{
    size_t raw_n = (size_t)h * (1 + 3 * (size_t)w);
    uint8_t *raw = malloc(raw_n), *p = raw;
    for (int y = 0; y < h; y++) {
        *p++ = 0; /* filter: none */
        for (int x = 0; x < w; x++) {
            *p++ = (uint8_t)x;
            *p++ = (uint8_t)y;
            *p++ = (uint8_t)(x ^ y);
        }
    }
    uLongf zn = compressBound(raw_n);
    uint8_t *z = malloc(zn);
    compress2(z, &zn, raw, raw_n, 9);
    chunk(b, "IDAT", z, zn);
    free(z);
    free(raw);
}

static int rgb_ok(const uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *q = rgb + 3 * ((size_t)y * w + x);
            if (q[0] != (uint8_t)x || q[1] != (uint8_t)y || q[2] != (uint8_t)(x ^ y))
                return 0;
        }
    return 1;
}

static void png_bombs(void)
{
    mi_buffer buf = {NULL, 0};
    morsel_error err;
    int w = 0, h = 0;

    /* iCCP and zTXt that inflate to 64 MiB each (libpng itself stops at 8 MB, Pillow at 1 MB),
     * on a 16x16 image: skipped, never inflated.
     * (First in the test: the peak RSS is still the process's baseline.) */
    bytes b = {0};
    png_start(&b, 16, 16, 8, 2, 0);
    bomb_chunk(&b, "iCCP", "icc\0\0", 5, 64);
    bomb_chunk(&b, "zTXt", "Comment\0\0", 9, 64);
    rgb_idat(&b, 16, 16);
    chunk(&b, "IEND", NULL, 0);
    long rss0 = peak_rss_kb();
    morsel_status s = decode(b.p, b.n, 0, 0, &buf, &w, &h, &err);
    long grew = peak_rss_kb() - rss0;
    report(s == MORSEL_OK && w == 16 && h == 16 && rgb_ok(buf.data, 16, 16) && grew < 2048,
           "PNG with 64 MiB iCCP and zTXt bombs (%zu bytes): %s, pixels %s, peak RSS +%ld KiB",
           b.n, morsel_status_name(s), s == MORSEL_OK && rgb_ok(buf.data, 16, 16) ? "right" : "wrong",
           grew);
    free(b.p);
    mi_buffer_free(&buf);

    /* 8192x8192 16-bit RGBA, interlaced: 512 MiB of raw rows (the passes need all of them)
     * before any pixel -- over the default decode memory, refused at the header. */
    b = (bytes){0};
    png_start(&b, 8192, 8192, 16, 6, 1);
    chunk(&b, "IDAT", NULL, 0); /* the header is all that is read */
    chunk(&b, "IEND", NULL, 0);
    s = decode(b.p, b.n, 0, 0, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_LIMIT && strstr(err.message, "decode memory limit") && !buf.data,
           "PNG 8192x8192 RGBA16 interlaced (%zu bytes): %s with nothing allocated (%s)", b.n,
           morsel_status_name(s), err.message);
    free(b.p);

    /* Non-interlaced, the same image needs its RGB (192 MiB) + one raw row: accepted by the
     * budget (here it then ends: no IDAT), with a limit just under that refused. */
    b = (bytes){0};
    png_start(&b, 8192, 8192, 16, 6, 0);
    chunk(&b, "IDAT", NULL, 0);
    chunk(&b, "IEND", NULL, 0);
    const uint64_t need = 8192ull * 8192 * 3 + 8192 * 8 + 2 * 8192 * 8 + (64 << 10);
    s = decode(b.p, b.n, 0, need - 1, &buf, &w, &h, &err);
    report(s == MORSEL_ERR_LIMIT && !buf.data,
           "PNG 8192x8192 RGBA16 non-interlaced, memory limit one byte short: %s (%s)",
           morsel_status_name(s), err.message);
    free(b.p);

    /* A real non-interlaced image holds exactly its RGB + one raw row. */
    b = (bytes){0};
    png_start(&b, 300, 200, 8, 2, 0);
    rgb_idat(&b, 300, 200);
    chunk(&b, "IEND", NULL, 0);
    s = decode(b.p, b.n, 0, 0, &buf, &w, &h, &err);
    report(s == MORSEL_OK && rgb_ok(buf.data, 300, 200) && buf.capacity == 300 * 200 * 3 + 900,
           "PNG 300x200 RGB8: %s, pixels %s, buffer %zu bytes (RGB %d + row 900)",
           morsel_status_name(s), s == MORSEL_OK && rgb_ok(buf.data, 300, 200) ? "right" : "wrong",
           buf.capacity, 300 * 200 * 3);
    free(b.p);
    mi_buffer_free(&buf);
}

int main(void)
{
    png_bombs();
    jpeg_memory();
    jpeg_work();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
