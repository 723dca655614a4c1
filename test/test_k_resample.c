/* The resampler's vector rows (AVX2, AVX-512) against the scalar rows, through the whole
 * preprocessing path: every filter, stretch and centre crop, RGB and BGR, shrinking and growing,
 * odd sizes, 1xN and Nx1, padded strides, noise / hard 0-255 edges / flat images. The floats
 * must be identical (memcmp): the scalar rows are Pillow's arithmetic, which test_image checks
 * against Pillow itself. ISAs this build or CPU lacks are reported as SKIPPED.
 * The 8-row horizontal kernels (hrows8) are also checked directly against the scalar row on
 * random rows, taps and weights (negative ones, sums that clip), with guard bytes around the
 * outputs: the shapes above only reach them where the horizontal pass runs first. */
#include "image.h"
#include "resample_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t rng = 12345u;

static uint32_t next(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

/* 0: noise, 1: only 0 and 255 (largest overshoot of the negative lobes), 2: one flat value */
static void fill(uint8_t *p, size_t n, int kind)
{
    const uint8_t flat = (uint8_t)next();
    for (size_t i = 0; i < n; i++)
        p[i] = kind == 0 ? (uint8_t)next() : kind == 1 ? (next() & 1 ? 255 : 0) : flat;
}

typedef struct shape {
    int sw, sh, dw, dh;
} shape;

static const shape shapes[] = {
    {500, 375, 224, 224}, {1280, 1280, 224, 224}, {1280, 960, 299, 299}, {37, 91, 224, 224},
    {224, 224, 224, 224}, {225, 223, 224, 224}, {1, 1, 7, 5},         {1, 300, 17, 29},
    {300, 1, 29, 17},     {301, 7, 1, 1},       {7, 301, 1, 3},       {5, 3, 1000, 2},
    {64, 64, 31, 97},     {999, 17, 33, 65},    {33, 65, 999, 17},    {2, 2, 3, 3},
    {640, 481, 160, 120}, {100, 100, 96, 96},   {12000, 4, 224, 2},   {3, 9000, 2, 224},
    {97, 41, 5, 129},     {16, 16, 15, 17},
    /* for the 8-row kernel: source row spans that are not a multiple of 8, odd widths,
     * horizontal upscales, exactly 8 rows, rows wider than its transposed block */
    {1001, 203, 77, 61},  {333, 45, 500, 40},   {250, 19, 3, 9},       {9, 15, 4, 6},
    {17, 8, 5, 7},        {8195, 11, 7, 5},     {1279, 1277, 224, 224},
};

/* hrows8 of kernel set kt against mi_rs_hrow_scalar row by row; returns the failures. */
static int check_hrows8(const mi_resample_kernels *kt)
{
    enum { MAXPX = 700, MAXOUT = 150, MAXTAPS = 12, PAD = 7 };
    static uint8_t in[8 * (MAXPX * 3 + PAD)], work[8 * MAXPX * 3];
    static uint8_t ref[8 * (MAXOUT * 3 + PAD)], got[8 * (MAXOUT * 3 + PAD)];
    static int32_t bounds[2 * MAXOUT], k[MAXOUT * MAXTAPS];
    int bad = 0;
    for (int t = 0; t < 400; t++) {
        const int px = 1 + (int)(next() % MAXPX), n_out = 1 + (int)(next() % MAXOUT);
        const int col0 = (int)(next() % 6), ks = 1 + (int)(next() % MAXTAPS);
        const size_t in_len = (size_t)px * 3, in_stride = in_len + next() % PAD;
        const size_t out_stride = (size_t)n_out * 3 + next() % PAD;
        fill(in, sizeof in, (int)(next() % 2));
        for (int i = 0; i < n_out; i++) {
            const int first = (int)(next() % (uint32_t)px);
            const int room = px - first < ks ? px - first : ks;
            bounds[2 * i] = col0 + first;
            bounds[2 * i + 1] = (int)(next() % (uint32_t)(room + 1)); /* 0 taps too */
            /* |weights| <= 2^19 or 2^22 / taps: |sum| < 2^31 as with Pillow's filters, far
             * enough out of 0..2^22 * 255 that both clips happen, and single weights up to
             * 2^22 (an upscale's) */
            const uint32_t amp = t % 2 ? 1u << 19 : (1u << 22) / (uint32_t)ks;
            for (int x = 0; x < ks; x++)
                k[i * ks + x] = (int32_t)(next() % (2 * amp + 1)) - (int32_t)amp;
        }
        memset(ref, 0x5A, sizeof ref);
        memset(got, 0x5A, sizeof got);
        for (int r = 0; r < 8; r++)
            mi_rs_hrow_scalar(in + r * in_stride, in_len, col0, bounds, k, (size_t)ks, n_out,
                              ref + r * out_stride);
        kt->hrows8(in, in_stride, in_len, col0, bounds, k, (size_t)ks, n_out, got, out_stride,
                   work);
        if (memcmp(ref, got, sizeof ref) && bad++ < 5)
            printf("FAIL %s hrows8: %d px, %d outputs, %d taps, col0 %d: rows differ\n", kt->isa,
                   px, n_out, ks, col0);
    }
    printf("%s %s hrows8: 400 random row blocks, %d differ from scalar\n", bad ? "FAIL" : "PASS",
           kt->isa, bad);
    return bad;
}

/* ---- `test_k_resample --bench`: bicubic preprocessing of noise images per ISA, interleaved
 * rounds, median ms (a table, not a test). */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(void)
{
    static const shape bs[] = {{1280, 1280, 224, 224}, {1280, 960, 224, 224},
                               {500, 375, 224, 224},   {1280, 960, 299, 299}};
    static const char *const isas[] = {"scalar", "avx2", "avx512"};
    enum { ROUNDS = 31 };
    morsel_error err;
    printf("%-22s %9s %9s %9s  (bicubic, median of %d interleaved rounds, ms)\n", "shape",
           isas[0], isas[1], isas[2], ROUNDS);
    for (size_t s = 0; s < sizeof bs / sizeof bs[0]; s++) {
        const shape sh = bs[s];
        const size_t stride = (size_t)sh.sw * 3, nout = (size_t)sh.dw * sh.dh * 3;
        uint8_t *img = malloc(stride * (size_t)sh.sh);
        float *out = malloc(nout * sizeof(float));
        float *scratch = malloc(mi_preprocess_scratch(sh.sw, sh.sh, sh.dw, sh.dh) * sizeof(float));
        if (!img || !out || !scratch)
            return 1;
        fill(img, stride * (size_t)sh.sh, 0);
        morsel_preprocess pp = MORSEL_PREPROCESS_INIT;
        pp.filter = MORSEL_RESIZE_BICUBIC;
        double t[3][ROUNDS];
        int ok[3];
        for (int v = 0; v < 3; v++)
            ok[v] = mi_resample_kernels_for(isas[v]) != NULL;
        for (int r = 0; r < ROUNDS; r++)
            for (int v = 0; v < 3; v++) {
                if (!ok[v])
                    continue;
                const double t0 = now_ms();
                mi_preprocess_isa(img, sh.sw, sh.sh, stride, &pp, sh.dw, sh.dh, out, scratch,
                                  isas[v], &err);
                t[v][r] = now_ms() - t0;
            }
        char name[64];
        snprintf(name, sizeof name, "%dx%d->%dx%d", sh.sw, sh.sh, sh.dw, sh.dh);
        printf("%-22s", name);
        for (int v = 0; v < 3; v++) {
            if (!ok[v]) {
                printf(" %9s", "-");
                continue;
            }
            qsort(t[v], ROUNDS, sizeof(double), cmp_double);
            printf(" %9.3f", t[v][ROUNDS / 2]);
        }
        printf("\n");
        free(img);
        free(out);
        free(scratch);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    static const char *const isas[] = {"avx2", "avx512"};
    static const morsel_resize_filter filters[] = {MORSEL_RESIZE_NEAREST, MORSEL_RESIZE_BILINEAR,
                                                   MORSEL_RESIZE_BICUBIC, MORSEL_RESIZE_LANCZOS,
                                                   MORSEL_RESIZE_BOX};
    int passed = 0, failed = 0;
    morsel_error err;
    for (int v = 0; v < 2; v++) {
        float probe_out[3], probe_scratch[64];
        const uint8_t probe_px[3] = {1, 2, 3};
        morsel_preprocess pp = MORSEL_PREPROCESS_INIT;
        if (mi_preprocess_isa(probe_px, 1, 1, 3, &pp, 1, 1, probe_out, probe_scratch, isas[v],
                              &err) == MORSEL_ERR_UNSUPPORTED) {
            printf("SKIPPED %s: %s\n", isas[v], err.message);
            continue;
        }
        int cases = 0, bad = 0;
        const mi_resample_kernels *kt = mi_resample_kernels_for(isas[v]);
        if (kt->hrows8 && check_hrows8(kt))
            bad++;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const shape sh = shapes[s];
            const size_t stride = (size_t)sh.sw * 3 + (s % 3) * 5; /* some rows padded */
            uint8_t *img = malloc(stride * (size_t)sh.sh);
            const size_t nout = (size_t)sh.dw * sh.dh * 3;
            float *ref = malloc(nout * sizeof(float)), *got = malloc(nout * sizeof(float));
            float *scratch = malloc(mi_preprocess_scratch(sh.sw, sh.sh, sh.dw, sh.dh) *
                                    sizeof(float));
            if (!img || !ref || !got || !scratch) {
                printf("FAIL out of memory\n");
                return 1;
            }
            for (int kind = 0; kind < 3; kind++) {
                fill(img, stride * (size_t)sh.sh, kind);
                for (int f = 0; f < 5; f++)
                    for (int mode = 0; mode < 4; mode++) {
                        /* a zeroed struct (struct_size 0) made the preset fail, leaving
                         * scale 0: every output was 0.0 and the comparison vacuous */
                        const morsel_preprocess init = MORSEL_PREPROCESS_INIT;
                        pp = init;
                        if (morsel_preprocess_preset(mode & 2 ? "caffe" /* BGR, offsets */
                                                              : "torch" /* 3 scales */,
                                                     &pp, &err) != MORSEL_OK) {
                            printf("FAIL preset: %s\n", err.message);
                            return 1;
                        }
                        pp.filter = filters[f];
                        pp.center_crop = mode & 1;
                        memset(ref, 0xAA, nout * sizeof(float));
                        memset(got, 0x55, nout * sizeof(float));
                        morsel_status a = mi_preprocess_isa(img, sh.sw, sh.sh, stride, &pp, sh.dw,
                                                            sh.dh, ref, scratch, "scalar", &err);
                        morsel_status b = mi_preprocess_isa(img, sh.sw, sh.sh, stride, &pp, sh.dw,
                                                            sh.dh, got, scratch, isas[v], &err);
                        cases++;
                        if (a != MORSEL_OK || b != MORSEL_OK ||
                            memcmp(ref, got, nout * sizeof(float))) {
                            if (bad++ < 10)
                                printf("FAIL %s %dx%d -> %dx%d filter %d crop %d bgr %d image "
                                       "%d: status %d/%d, outputs differ\n", isas[v], sh.sw,
                                       sh.sh, sh.dw, sh.dh, (int)pp.filter, pp.center_crop,
                                       pp.bgr, kind, (int)a, (int)b);
                        }
                    }
            }
            free(img);
            free(ref);
            free(got);
            free(scratch);
        }
        printf("%s %s: %d cases (%zu shapes x 3 images x 5 filters x crop x RGB/BGR), %d differ "
               "from scalar\n", bad ? "FAIL" : "PASS", isas[v], cases,
               sizeof shapes / sizeof shapes[0], bad);
        bad ? failed++ : passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
