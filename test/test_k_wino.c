/* Winograd F(2x2, 3x3) conv kernels (kernels/conv_wino2.c, kernels/x86/conv_wino2_body.h)
 * against a float64 direct convolution, for every x86 variant this CPU runs.
 *
 * Shapes: the smallest output it takes (2x2), odd sizes whose last tile row and column are cut,
 * TF 'same' and 'valid', asymmetric explicit padding (a merged ZeroPadding2D), channel counts
 * that are not a multiple of the vector width, and enough tiles for several scratch blocks.
 * y starts as a guard value, with guard cells after it: every output is written, nothing past
 * it. Splitting the tile rows in two reproduces the whole-range result bit for bit (the op
 * splits them over threads). mk_wino2_fits refuses what the kernel does not compute.
 *
 * Tolerance: the transforms add and subtract up to 4 inputs (and 4 products at the output),
 * so each value is held to 4 times the direct bound of test_k_gemm.c:
 * 4 * min(K + 2, 8 sqrt(K + 2)) * u * mag + 4 u |y|, mag = |b| + sum |x w| (measured: under
 * 0.01 of it). A wrong transform entry or tap misses by a good fraction of mag, a thousand
 * times more. The test prints the worst error as a fraction of the tolerance. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "microkernels.h"

#define U ((double)FLT_EPSILON / 2.0)
#define GUARD 40
#define GUARD_VALUE 1234.5f

typedef struct variant {
    const char *name;
    int runs, nr; /* nr: the GEMM's panel width, where a channel range may start */
    size_t (*pack_floats)(int K, int N);
    void (*pack)(int K, int N, const float *w, float *packed);
    mk_wino2_fn conv;
} variant;

static variant variants[] = {
    {"avx2", 0, MK_GEMM_NR_AVX2, mk_f32_wino2_pack_floats_avx2, mk_f32_wino2_pack_avx2,
     mk_f32_conv3x3_wino2_avx2},
    {"avx512", 0, MK_GEMM_NR_AVX512, mk_f32_wino2_pack_floats_avx512, mk_f32_wino2_pack_avx512,
     mk_f32_conv3x3_wino2_avx512},
};

typedef struct wcase {
    const char *name;
    int h, w, cin, cout, pt, pb, pl, pr;
} wcase;

static const wcase cases[] = {
    {"2x2 image, same (one tile)", 2, 2, 32, 32, 1, 1, 1, 1},
    {"4x4 valid (2x2 out)", 4, 4, 32, 48, 0, 0, 0, 0},
    {"5x7 same, Cin 33 Cout 47 (cut last tile row and column)", 5, 7, 33, 47, 1, 1, 1, 1},
    {"9x6 valid, Cout 40", 9, 6, 32, 40, 0, 0, 0, 0},
    {"8x9 explicit t2 b0 l0 r3", 8, 9, 35, 33, 2, 0, 0, 3},
    {"7x7 same, 96 -> 80", 7, 7, 96, 80, 1, 1, 1, 1},
    {"14x14 same, 256 -> 256 (two scratch blocks)", 14, 14, 256, 256, 1, 1, 1, 1},
    {"41x23 same, 32 -> 32 (several blocks, odd)", 41, 23, 32, 32, 1, 1, 1, 1},
};

static int passed, failed;

static void verdict(int ok, const char *what)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    if (failed <= 30)
        printf("FAIL %s\n", what);
}

static unsigned rng = 2024u;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)((double)rng / 4294967296.0 * 2.0 - 1.0);
}

static float *alloc64(size_t n)
{
    return aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64);
}

static void run_case(const wcase *c)
{
    mk_window g = {c->h, c->w, c->cin, c->h + c->pt + c->pb - 2, c->w + c->pl + c->pr - 2,
                   c->cout, 3, 3, 1, 1, c->pt, c->pl, 1, 1};
    char what[256];
    snprintf(what, sizeof what, "%s: mk_wino2_fits", c->name);
    verdict(mk_wino2_fits(&g), what);
    int K = 9 * c->cin, oh = g.out_h, ow = g.out_w;
    size_t nx = (size_t)c->h * c->w * c->cin, nw = (size_t)K * c->cout, ny = (size_t)oh * ow * c->cout;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(c->cout * sizeof *b);
    for (size_t i = 0; i < nx; i++)
        x[i] = frand();
    for (size_t i = 0; i < nw; i++)
        w[i] = frand();
    for (int i = 0; i < c->cout; i++)
        b[i] = frand();
    double *exact = malloc(ny * sizeof *exact), *mag = malloc(ny * sizeof *mag);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int co = 0; co < c->cout; co++) {
                double s = b[co], m = fabs((double)b[co]);
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        int iy = oy + i - c->pt, ix = ox + j - c->pl;
                        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                            continue;
                        for (int ci = 0; ci < c->cin; ci++) {
                            double p = (double)x[((size_t)iy * c->w + ix) * c->cin + ci] *
                                       w[((size_t)(i * 3 + j) * c->cin + ci) * c->cout + co];
                            s += p, m += fabs(p);
                        }
                    }
                size_t at = ((size_t)oy * ow + ox) * c->cout + co;
                exact[at] = s, mag[at] = m;
            }
    double n = K + 2.0, d = 4.0 * (n < 8.0 * sqrt(n) ? n : 8.0 * sqrt(n));
    float *scratch = malloc(mk_wino2_scratch_floats(&g) * sizeof *scratch);
    float *y = malloc((ny + GUARD) * sizeof *y), *y2 = malloc((ny + GUARD) * sizeof *y2);
    int rows = (oh + 1) / 2;
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        const variant *var = &variants[v];
        if (!var->runs)
            continue;
        float *packed = alloc64(var->pack_floats(K, c->cout));
        var->pack(K, c->cout, w, packed);
        for (size_t i = 0; i < ny + GUARD; i++)
            y[i] = y2[i] = GUARD_VALUE;
        var->conv(&g, x, packed, b, NULL, y, scratch, 0, rows, 0, c->cout);
        double worst = 0.0;
        int ok = 1, guards = 1;
        for (size_t i = 0; i < ny; i++) {
            double tol = d * U * mag[i] + 4.0 * U * fabs(exact[i]);
            double r = fabs((double)y[i] - exact[i]) / tol;
            worst = r > worst || r != r ? r : worst;
            ok &= r <= 1.0;
        }
        for (size_t i = ny; i < ny + GUARD; i++)
            guards &= y[i] == GUARD_VALUE;
        snprintf(what, sizeof what, "%s %s: within tolerance (worst %.3f of it)", var->name,
                 c->name, worst);
        verdict(ok, what);
        printf("%s %-6s %-52s worst |d|/tolerance %.3f\n", ok ? "ok  " : "FAIL", var->name,
               c->name, worst);
        snprintf(what, sizeof what, "%s %s: nothing written past y", var->name, c->name);
        verdict(guards, what);
        int mid = rows / 2;
        var->conv(&g, x, packed, b, NULL, y2, scratch, 0, mid, 0, c->cout);
        var->conv(&g, x, packed, b, NULL, y2, scratch, mid, rows, 0, c->cout);
        snprintf(what, sizeof what, "%s %s: tile rows [0,%d) + [%d,%d) compose exactly",
                 var->name, c->name, mid, mid, rows);
        verdict(memcmp(y, y2, (ny + GUARD) * sizeof *y) == 0, what);
        /* Output channels split at a panel boundary, as two threads of a small layer do
         * (cases of one panel have no such boundary). */
        int cut = c->cout / 2 / var->nr * var->nr;
        if (cut > 0) {
            for (size_t i = 0; i < ny + GUARD; i++)
                y2[i] = GUARD_VALUE;
            var->conv(&g, x, packed, b, NULL, y2, scratch, 0, rows, 0, cut);
            var->conv(&g, x, packed, b, NULL, y2, scratch, 0, rows, cut, c->cout);
            snprintf(what, sizeof what, "%s %s: channels [0,%d) + [%d,%d) compose exactly",
                     var->name, c->name, cut, cut, c->cout);
            verdict(memcmp(y, y2, (ny + GUARD) * sizeof *y) == 0, what);
        }
        free(packed);
    }
    free(x), free(w), free(b), free(exact), free(mag), free(scratch), free(y), free(y2);
}

static void refusals(void)
{
    /* What the kernel does not compute: stride 2, dilation 2, a 1x1 output, 5x5, few channels. */
    mk_window base = {9, 9, 32, 9, 9, 32, 3, 3, 1, 1, 1, 1, 1, 1};
    mk_window s2 = base, d2 = base, one = base, k5 = base, thin = base;
    s2.sh = s2.sw = 2;
    d2.dh = d2.dw = 2;
    one.in_h = one.in_w = 3, one.out_h = one.out_w = 1, one.pad_top = one.pad_left = 0;
    k5.kh = k5.kw = 5;
    thin.in_c = 3;
    verdict(mk_wino2_fits(&base), "fits: 9x9 3x3 same 32 -> 32");
    verdict(!mk_wino2_fits(&s2), "refuses stride 2");
    verdict(!mk_wino2_fits(&d2), "refuses dilation 2");
    verdict(!mk_wino2_fits(&one), "refuses a 1x1 output");
    verdict(!mk_wino2_fits(&k5), "refuses 5x5");
    verdict(!mk_wino2_fits(&thin), "refuses Cin 3");
}

int main(void)
{
    __builtin_cpu_init();
    variants[0].runs = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    variants[1].runs = variants[0].runs && __builtin_cpu_supports("avx512f") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512vl");
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
        if (!variants[v].runs)
            printf("SKIPPED %s: this CPU cannot run it\n", variants[v].name);
    refusals();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(&cases[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
