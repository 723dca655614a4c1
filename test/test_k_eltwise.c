/* Element-wise, activation and pooling microkernels (kernels/x86/f32_{act,eltwise,pool}_*.c,
 * kernels/arm/f32_{act,eltwise,pool}_neon.c)
 * against the scalar references in kernels/ref, for every ISA variant this CPU runs.
 *
 * What must hold
 * - Piecewise-linear activations (ReLU family, both hard sigmoids), add, multiply, affine,
 *   max/average pooling and the global pools do the references' arithmetic in the references'
 *   order, so they must be bit-identical (NaN compared as NaN, -0 distinct from +0).
 * - sigmoid, tanh, swish, ELU, softmax: within ULP_EXP ulps of the reference (which uses glibc
 *   expf/tanhf/expm1f, themselves within ~1 ulp), GELU within ULP_GELU (its erfc is a fitted
 *   approximation, ~3e-7 relative by itself). Ulps are counted on the ordered integer line of
 *   floats, so subnormal results are compared on their own absolute grid.
 * - A call writes exactly its range: outputs start as a sentinel, and everything outside the
 *   range must still hold it afterwards. A full result computed in several range pieces equals
 *   the reference.
 * Inputs: odd sizes (1, 7, 15, 16, 17, 33, 1003), channel counts that are not multiples of
 * 8 or 16, 1x1 and 2x2 images, strides 1 and 2, 'same' and 'valid' windows, activation inputs
 * over [-100, 100] plus +-0, +-inf, NaN, subnormals, +-88.7, +-89, the saturation points.
 *
 * `test_k_eltwise --bench` prints ref / avx2 / avx512 timings instead (medians of interleaved
 * runs, one thread). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "microkernels.h"

#define ULP_EXP 4
#define ULP_GELU 8
#define SENTINEL 1234.5f

typedef struct variant {
    const char *name;
    int ok; /* the CPU runs it */
    mk_act_fn act;
    mk_softmax_fn softmax;
    mk_add_fn add;
    mk_multiply_fn multiply;
    mk_affine_range_fn affine;
    mk_pool_range_fn maxpool, avgpool;
    mk_gpool_fn gavg, gmax;
    mk_gsum_fn gsum; /* NULL where the ISA has none */
} variant;

static int passed, failed;

static void check(int ok, const char *what, const char *isa, const char *detail)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s [%s] %s\n", what, isa, detail);
}

/* ---- data ----------------------------------------------------------------------------------- */

static uint32_t rng_state = 12345u;
static float frand(float lo, float hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static float *alloc_f(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void fill_const(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        p[i] = v;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Same value, or both NaN. */
static int same(float a, float b)
{
    return (isnan(a) && isnan(b)) || bits(a) == bits(b);
}

/* Distance on the ordered integer line of floats (+0 and -0 both at 0); NaN only matches NaN. */
static int64_t ulps(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int64_t ia = (int32_t)bits(a), ib = (int32_t)bits(b);
    if (ia < 0)
        ia = (int64_t)INT32_MIN - ia;
    if (ib < 0)
        ib = (int64_t)INT32_MIN - ib;
    return ia > ib ? ia - ib : ib - ia;
}

/* Compares got[0, n) with want, exactly (tol < 0) or within tol ulps; returns the worst ulp
 * distance and describes the first failure. */
static int64_t compare(const float *got, const float *want, const float *in, size_t n,
                       int64_t tol, char *detail, size_t dlen)
{
    int64_t worst = 0;
    detail[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = tol < 0 ? (same(got[i], want[i]) ? 0 : INT64_MAX) : ulps(got[i], want[i]);
        if (d > worst && d != INT64_MAX)
            worst = d;
        if (d > (tol < 0 ? 0 : tol) && !detail[0]) {
            snprintf(detail, dlen, "at %zu: input %.9g got %.9g want %.9g", i,
                     in ? (double)in[i] : 0.0, (double)got[i], (double)want[i]);
            worst = d;
        }
    }
    return worst;
}

static int untouched(const float *p, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (bits(p[i]) != bits(SENTINEL))
            return 0;
    return 1;
}

/* ---- activations ---------------------------------------------------------------------------- */

static const float specials[] = {
    0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 1.4e-45f, -1.4e-45f, FLT_MIN,
    -FLT_MIN, 88.7f, -88.7f, 89.0f, -89.0f, 88.72283f, -87.33655f, -103.9f, -104.5f, 3.0f, -3.0f,
    2.5f, -2.5f, 6.0f, 1e-8f, -1e-8f, 0.5f, -0.5f, 1.0f, -1.0f, 9.0f, -9.0f, 13.0f, -13.0f,
    14.5f, -14.5f, 20.0f, -20.0f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX, 0.3465f, -0.3466f};
#define NSPECIAL (sizeof specials / sizeof specials[0])

/* The activation input set: specials, then uniform [-100, 100], then log-uniform magnitudes
 * (1e-6 .. 30, both signs) where the curves bend. */
static void act_input(float *x, size_t n, size_t shift)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = i + shift;
        if (k < NSPECIAL)
            x[i] = specials[k];
        else if (i % 2)
            x[i] = frand(-100.0f, 100.0f);
        else
            x[i] = (frand(0, 1) < 0.5f ? -1.0f : 1.0f) * powf(10.0f, frand(-6.0f, 1.5f));
    }
}

typedef struct act_case {
    const char *name;
    mk_activation a;
    int64_t tol; /* -1: exact */
} act_case;

static const act_case act_cases[] = {
    {"relu", {MK_ACT_RELU, 0.0f, INFINITY}, -1},
    {"relu6", {MK_ACT_RELU, 0.0f, 6.0f}, -1},
    {"leaky_relu", {MK_ACT_RELU, 0.1f, INFINITY}, -1},
    {"relu_slope_max", {MK_ACT_RELU, 0.3f, 4.5f}, -1},
    {"hard_sigmoid", {MK_ACT_HARD_SIGMOID, 0, 0}, -1},
    {"hard_sigmoid_k2", {MK_ACT_HARD_SIGMOID_K2, 0, 0}, -1},
    {"linear", {MK_ACT_LINEAR, 0, 0}, -1},
    {"sigmoid", {MK_ACT_SIGMOID, 0, 0}, ULP_EXP},
    {"tanh", {MK_ACT_TANH, 0, 0}, ULP_EXP},
    {"swish", {MK_ACT_SWISH, 0, 0}, ULP_EXP},
    {"elu", {MK_ACT_ELU, 1.0f, 0}, ULP_EXP},
    {"elu_alpha0.5", {MK_ACT_ELU, 0.5f, 0}, ULP_EXP},
    {"gelu", {MK_ACT_GELU, 0, 0}, ULP_GELU},
};
#define NACT (sizeof act_cases / sizeof act_cases[0])
static const size_t sizes[] = {1, 7, 15, 16, 17, 33, 1003};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_act(const variant *v)
{
    char detail[200], what[96];
    for (size_t c = 0; c < NACT; c++) {
        const act_case *k = &act_cases[c];
        int64_t worst = 0;
        for (size_t s = 0; s < NSIZES; s++) {
            size_t n = sizes[s];
            for (size_t shift = 0; shift < (n < 64 ? NSPECIAL : 1); shift += 1 + n / 2) {
                float *in = alloc_f(n), *want = alloc_f(n), *got = alloc_f(n + 3);
                act_input(in, n, shift);
                memcpy(want, in, n * sizeof *in);
                mk_activation_ref(&k->a, want, n, n);
                /* Whole range in three pieces (a, b odd), plus guard cells after. */
                memcpy(got, in, n * sizeof *in);
                fill_const(got + n, 3, SENTINEL);
                size_t a = n / 3, b = n - n / 5;
                v->act(&k->a, got, 0, a);
                v->act(&k->a, got, a, b);
                v->act(&k->a, got, b, n);
                int64_t w = compare(got, want, in, n, k->tol, detail, sizeof detail);
                snprintf(what, sizeof what, "act %s n=%zu", k->name, n);
                check(!detail[0], what, v->name, detail);
                check(untouched(got, n, n + 3), what, v->name, "wrote past the range");
                worst = w > worst ? w : worst;
                /* A middle range leaves the rest alone. */
                fill_const(got, n, SENTINEL);
                memcpy(got + a, in + a, (b - a) * sizeof *in);
                v->act(&k->a, got, a, b);
                check(untouched(got, 0, a) && untouched(got, b, n + 3), what, v->name,
                      "wrote outside [i0, i1)");
                free(in);
                free(want);
                free(got);
            }
        }
        if (k->tol >= 0)
            printf("     %-8s act %-16s max %lld ulp vs reference (tolerance %lld)\n", v->name,
                   k->name, (long long)worst, (long long)k->tol);
    }
}

static void test_softmax(const variant *v)
{
    static const size_t chs[] = {1, 7, 16, 17, 33, 1000, 1001};
    char detail[200], what[96];
    int64_t worst = 0;
    for (size_t s = 0; s < sizeof chs / sizeof chs[0]; s++) {
        size_t ch = chs[s], rows = 4, n = rows * ch;
        float *in = alloc_f(n), *want = alloc_f(n), *got = alloc_f(n + 3);
        for (size_t i = 0; i < n; i++)
            in[i] = frand(-30.0f, 30.0f) + (i / ch == 2 ? 1e4f : 0.0f); /* a shifted row */
        in[ch - 1] = -INFINITY; /* a hard-masked logit */
        memcpy(want, in, n * sizeof *in);
        mk_activation_ref(&(mk_activation){MK_ACT_SOFTMAX, 0, 0}, want, n, ch);
        memcpy(got, in, n * sizeof *in);
        fill_const(got + n, 3, SENTINEL);
        v->softmax(got, ch, 0, 1);
        v->softmax(got, ch, 1, 3);
        v->softmax(got, ch, 3, rows);
        int64_t w = compare(got, want, in, n, ULP_EXP, detail, sizeof detail);
        worst = w > worst ? w : worst;
        snprintf(what, sizeof what, "softmax ch=%zu", ch);
        check(!detail[0], what, v->name, detail);
        check(untouched(got, n, n + 3), what, v->name, "wrote past the last row");
        fill_const(got, n, SENTINEL);
        memcpy(got + ch, in + ch, ch * sizeof *in);
        v->softmax(got, ch, 1, 2);
        check(untouched(got, 0, ch) && untouched(got, 2 * ch, n + 3), what, v->name,
              "wrote outside rows [r0, r1)");
        free(in);
        free(want);
        free(got);
    }
    printf("     %-8s softmax max %lld ulp vs reference (tolerance %d)\n", v->name,
           (long long)worst, ULP_EXP);
}

/* ---- add, multiply, affine ------------------------------------------------------------------ */

static const mk_activation fused[] = {{MK_ACT_LINEAR, 0, 0},
                                      {MK_ACT_RELU, 0.0f, 6.0f},
                                      {MK_ACT_RELU, 0.2f, INFINITY},
                                      {MK_ACT_SIGMOID, 0, 0}};
#define NFUSED (sizeof fused / sizeof fused[0])

static int64_t fused_tol(const mk_activation *a)
{
    return a->code == MK_ACT_SIGMOID ? ULP_EXP : -1;
}

static void test_add(const variant *v)
{
    char detail[200], what[96];
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        for (int k = 2; k <= 3; k++) {
            for (size_t f = 0; f < NFUSED; f++) {
                float *xs[3], *want = alloc_f(n), *got = alloc_f(n + 3);
                for (int i = 0; i < k; i++) {
                    xs[i] = alloc_f(n);
                    for (size_t j = 0; j < n; j++)
                        xs[i][j] = frand(-8.0f, 8.0f);
                }
                mk_add_ref(k, (const float *const *)xs, n, &fused[f], want);
                fill_const(got, n + 3, SENTINEL);
                size_t a = n / 2 + (n > 2);
                v->add(k, (const float *const *)xs, &fused[f], got, 0, a);
                v->add(k, (const float *const *)xs, &fused[f], got, a, n);
                compare(got, want, NULL, n, fused_tol(&fused[f]), detail, sizeof detail);
                snprintf(what, sizeof what, "add n=%d count=%zu act=%d", k, n, fused[f].code);
                check(!detail[0], what, v->name, detail);
                check(untouched(got, n, n + 3), what, v->name, "wrote past the range");
                /* In place over the first input. */
                v->add(k, (const float *const *)xs, &fused[f], xs[0], 0, n);
                compare(xs[0], want, NULL, n, fused_tol(&fused[f]), detail, sizeof detail);
                check(!detail[0], what, v->name, detail[0] ? detail : "in place");
                for (int i = 0; i < k; i++)
                    free(xs[i]);
                free(want);
                free(got);
            }
        }
    }
}

/* Shapes: full x full, full x [C] gate, gate x full, full x gate x full; ranges that cut rows,
 * and ranges of whole rows (which take a gate's row-by-row path). */
static void test_multiply(const variant *v)
{
    static const size_t cs[] = {1, 7, 16, 24, 33};
    static const size_t hws[] = {1, 4, 9};
    static const int layouts[][3] = {{1, 1, 0}, {1, 0, 0}, {0, 1, 0}, {1, 0, 1}};
    char detail[200], what[96];
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        for (size_t hi = 0; hi < sizeof hws / sizeof hws[0]; hi++)
            for (size_t l = 0; l < 4; l++)
                for (size_t fw = 0; fw < 2 * NFUSED; fw++) {
                    size_t c = cs[ci], hw = hws[hi], n = c * hw, counts[3], f = fw % NFUSED;
                    int whole = fw >= NFUSED;
                    int k = layouts[l][2] ? 3 : 2;
                    float *xs[3], *want = alloc_f(n), *got = alloc_f(n + 3);
                    for (int i = 0; i < k; i++) {
                        counts[i] = layouts[l][i] || i == 2 ? n : c;
                        xs[i] = alloc_f(counts[i]);
                        for (size_t j = 0; j < counts[i]; j++)
                            xs[i][j] = frand(-3.0f, 3.0f);
                    }
                    mk_multiply_ref(k, (const float *const *)xs, counts, n, &fused[f], want);
                    fill_const(got, n + 3, SENTINEL);
                    size_t a = n / 3 + (n > 3), b = n - n / 4;
                    if (whole) {
                        a = hw / 3 * c;
                        b = (hw - hw / 4) * c;
                    }
                    v->multiply(k, (const float *const *)xs, counts, &fused[f], got, 0, a);
                    v->multiply(k, (const float *const *)xs, counts, &fused[f], got, a, b);
                    v->multiply(k, (const float *const *)xs, counts, &fused[f], got, b, n);
                    compare(got, want, NULL, n, fused_tol(&fused[f]), detail, sizeof detail);
                    snprintf(what, sizeof what, "multiply layout=%zu C=%zu HW=%zu act=%d%s", l, c,
                             hw, fused[f].code, whole ? " whole rows" : "");
                    check(!detail[0], what, v->name, detail);
                    check(untouched(got, n, n + 3), what, v->name, "wrote past the range");
                    for (int i = 0; i < k; i++)
                        free(xs[i]);
                    free(want);
                    free(got);
                }
}

static void test_affine(const variant *v)
{
    /* 3 and 7 with enough rows to wrap the AVX2 kernel's 8c-float channel pattern often. */
    static const int cs[] = {1, 3, 7, 16, 17, 33, 72};
    char detail[200], what[96];
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        for (size_t f = 0; f < NFUSED; f++) {
            size_t c = (size_t)cs[ci], rows = c < 8 ? 37 : 5, n = c * rows;
            float *x = alloc_f(n), *sc = alloc_f(c), *sh = alloc_f(c), *want = alloc_f(n);
            float *got = alloc_f(n + 3);
            for (size_t j = 0; j < n; j++)
                x[j] = frand(-5.0f, 5.0f);
            for (size_t j = 0; j < c; j++) {
                sc[j] = frand(-2.0f, 2.0f);
                sh[j] = frand(-1.0f, 1.0f);
            }
            mk_affine_ref(n, cs[ci], x, sc, sh, &fused[f], want);
            fill_const(got, n + 3, SENTINEL);
            v->affine(cs[ci], x, sc, sh, &fused[f], got, 0, 2 * c);
            v->affine(cs[ci], x, sc, sh, &fused[f], got, 2 * c, n);
            compare(got, want, NULL, n, fused_tol(&fused[f]), detail, sizeof detail);
            snprintf(what, sizeof what, "affine c=%zu act=%d", c, fused[f].code);
            check(!detail[0], what, v->name, detail);
            check(untouched(got, n, n + 3), what, v->name, "wrote past the range");
            v->affine(cs[ci], x, sc, sh, &fused[f], x, 0, n); /* in place */
            compare(x, want, NULL, n, fused_tol(&fused[f]), detail, sizeof detail);
            check(!detail[0], what, v->name, detail[0] ? detail : "in place");
            free(x);
            free(sc);
            free(sh);
            free(want);
            free(got);
        }
}

/* ---- pooling -------------------------------------------------------------------------------- */

/* TF geometry: 'valid' keeps whole windows, 'same' gives ceil(in/s) outputs with the extra
 * padding cell bottom/right. Returns 0 when 'valid' has no output. */
static int pool_window(mk_window *g, int h, int w, int c, int k, int s, int same_pad)
{
    *g = (mk_window){.in_h = h, .in_w = w, .in_c = c, .out_c = c, .kh = k, .kw = k, .sh = s,
                     .sw = s, .dh = 1, .dw = 1};
    if (same_pad) {
        g->out_h = (h + s - 1) / s;
        g->out_w = (w + s - 1) / s;
        int ph = (g->out_h - 1) * s + k - h, pw = (g->out_w - 1) * s + k - w;
        g->pad_top = ph > 0 ? ph / 2 : 0;
        g->pad_left = pw > 0 ? pw / 2 : 0;
        return 1;
    }
    if (h < k || w < k)
        return 0;
    g->out_h = (h - k) / s + 1;
    g->out_w = (w - k) / s + 1;
    return 1;
}

static void test_pool(const variant *v)
{
    static const int hw[][2] = {{1, 1}, {2, 2}, {5, 7}, {8, 8}, {9, 9}, {6, 11}};
    static const int cs[] = {1, 7, 16, 17, 40};
    static const int ks[][2] = {{2, 1}, {2, 2}, {3, 1}, {3, 2}};
    char detail[200], what[128];
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int same_pad = 0; same_pad <= 1; same_pad++)
                    for (int avg = 0; avg <= 1; avg++) {
                        mk_window g;
                        if (!pool_window(&g, hw[i][0], hw[i][1], cs[ci], ks[ki][0], ks[ki][1],
                                         same_pad))
                            continue;
                        size_t nin = (size_t)g.in_h * (size_t)g.in_w * (size_t)g.in_c;
                        size_t row = (size_t)g.out_w * (size_t)g.out_c;
                        size_t nout = (size_t)g.out_h * row;
                        float *x = alloc_f(nin), *want = alloc_f(nout), *got = alloc_f(nout + 3);
                        /* Mostly negative, so padding taken as 0 would win a max. */
                        for (size_t j = 0; j < nin; j++)
                            x[j] = frand(-10.0f, 1.0f);
                        (avg ? mk_avgpool_ref : mk_maxpool_ref)(&g, x, want);
                        mk_pool_range_fn fn = avg ? v->avgpool : v->maxpool;
                        fill_const(got, nout + 3, SENTINEL);
                        int mid = g.out_h / 2;
                        fn(&g, x, got, 0, mid);
                        check(untouched(got, (size_t)mid * row, nout + 3), "pool range",
                              v->name, "rows past oy1 written");
                        fn(&g, x, got, mid, g.out_h);
                        compare(got, want, x, nout, -1, detail, sizeof detail);
                        snprintf(what, sizeof what, "%s %dx%dx%d k%d s%d %s",
                                 avg ? "avgpool" : "maxpool", g.in_h, g.in_w, g.in_c, g.kh,
                                 g.sh, same_pad ? "same" : "valid");
                        check(!detail[0], what, v->name, detail);
                        check(untouched(got, nout, nout + 3), what, v->name,
                              "wrote past the output");
                        free(x);
                        free(want);
                        free(got);
                    }
}

/* Chunk sums: every channel's double sum over [p0, p1) in pixel order, exactly as a scalar
 * double loop makes it (an empty range gives zeros); the slot after the last channel is not
 * written. Then 8 row chunks added in order and divided give the whole-tensor avgpool's floats
 * on these inputs (what the fused SE relies on). */
static void test_global_sum(const variant *v)
{
    static const int cs[] = {1, 7, 8, 16, 17, 40, 1280};
    char what[96];
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        int c = cs[ci], h = 9, w = 5, n = h * w;
        float *x = alloc_f((size_t)n * (size_t)c), *mean = alloc_f((size_t)c);
        double *acc = malloc(((size_t)c + 1) * sizeof *acc), *all = malloc((size_t)(8 * c) * sizeof *all);
        for (size_t j = 0; j < (size_t)n * (size_t)c; j++)
            x[j] = 1000.0f + frand(-1.0f, 1.0f);
        int bad = 0;
        static const int ranges[][2] = {{0, 45}, {3, 17}, {44, 45}, {7, 7}};
        for (size_t r = 0; r < 4; r++) {
            int p0 = ranges[r][0], p1 = ranges[r][1];
            acc[c] = -1.0;
            v->gsum(c, x, (size_t)p0, (size_t)p1, acc);
            for (int ch = 0; ch < c; ch++) {
                double t = 0.0;
                for (int p = p0; p < p1; p++)
                    t += (double)x[(size_t)p * (size_t)c + (size_t)ch];
                bad += acc[ch] != t;
            }
            bad += acc[c] != -1.0;
        }
        /* 8 chunks of the 9 rows (1 or 2 rows each) against the whole-tensor mean. */
        for (int j = 0; j < 8; j++) {
            int r0 = 9 * j / 8, r1 = 9 * (j + 1) / 8;
            v->gsum(c, x, (size_t)(r0 * w), (size_t)(r1 * w), all + (size_t)j * (size_t)c);
        }
        v->gavg(n, c, x, mean, 0, c);
        for (int ch = 0; ch < c; ch++) {
            double t = 0.0;
            for (int j = 0; j < 8; j++)
                t += all[(size_t)j * (size_t)c + (size_t)ch];
            bad += (float)(t / n) != mean[ch];
        }
        snprintf(what, sizeof what, "global_sum c=%d: exact chunk sums, chunked mean = avgpool", c);
        check(bad == 0, what, v->name, "differs");
        free(x);
        free(mean);
        free(acc);
        free(all);
    }
}

static void test_global_pool(const variant *v)
{
    static const int hws[] = {1, 4, 49, 196};
    static const int cs[] = {1, 7, 16, 17, 40, 1280};
    char detail[200], what[96];
    for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++)
        for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
            for (int avg = 0; avg <= 1; avg++) {
                int n = hws[h], c = cs[ci];
                size_t nin = (size_t)n * (size_t)c;
                float *x = alloc_f(nin), *want = alloc_f((size_t)c), *got = alloc_f((size_t)c + 3);
                /* A shared offset makes a float running sum visibly wrong. */
                for (size_t j = 0; j < nin; j++)
                    x[j] = 1000.0f + frand(-1.0f, 1.0f);
                (avg ? mk_global_avgpool_ref : mk_global_maxpool_ref)(n, c, x, want);
                mk_gpool_fn fn = avg ? v->gavg : v->gmax;
                fill_const(got, (size_t)c + 3, SENTINEL);
                int a = c / 3, b = c - c / 5;
                fn(n, c, x, got, a, b);
                check(untouched(got, 0, (size_t)a) && untouched(got, (size_t)b, (size_t)c + 3),
                      "global pool range", v->name, "wrote outside [c0, c1)");
                fn(n, c, x, got, 0, a);
                fn(n, c, x, got, b, c);
                compare(got, want, NULL, (size_t)c, -1, detail, sizeof detail);
                snprintf(what, sizeof what, "global_%s hw=%d c=%d", avg ? "avgpool" : "maxpool",
                         n, c);
                check(!detail[0], what, v->name, detail);
                free(x);
                free(want);
                free(got);
            }
}

/* ---- benchmark ------------------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { B_RELU6, B_SWISH, B_SIGMOID, B_ADD, B_GAVG, B_MAXPOOL, B_COUNT };
static const char *bench_names[] = {"relu6 112x112x96",  "swish 112x112x96",
                                    "sigmoid 1x1x960",   "add 56x56x24",
                                    "global avg 7x7x1280", "maxpool 3x3 s2 147x147x64"};

typedef struct bench_data {
    size_t n;          /* elements of the main tensor */
    double bytes;      /* moved per call */
    int iters;         /* calls per timed sample */
    float *src, *x, *x2, *y;
    mk_window g;
} bench_data;

static void bench_setup(int b, bench_data *d)
{
    memset(d, 0, sizeof *d);
    d->iters = 1;
    switch (b) {
    case B_RELU6:
    case B_SWISH:
        d->n = 112 * 112 * 96;
        d->bytes = 8.0 * (double)d->n;
        break;
    case B_SIGMOID:
        d->n = 960;
        d->bytes = 8.0 * (double)d->n;
        d->iters = 2000;
        break;
    case B_ADD:
        d->n = 56 * 56 * 24;
        d->bytes = 12.0 * (double)d->n;
        d->iters = 20;
        break;
    case B_GAVG:
        d->n = 49 * 1280;
        d->bytes = 4.0 * (double)d->n;
        d->iters = 50;
        break;
    default:
        pool_window(&d->g, 147, 147, 64, 3, 2, 0);
        d->n = 147 * 147 * 64;
        d->bytes = 4.0 * (double)d->n + 4.0 * d->g.out_h * d->g.out_w * 64;
        d->iters = 2;
        break;
    }
    d->src = alloc_f(d->n);
    d->x = alloc_f(d->n);
    d->x2 = alloc_f(d->n);
    d->y = alloc_f(d->n);
    for (size_t i = 0; i < d->n; i++) {
        d->src[i] = frand(-8.0f, 8.0f);
        d->x2[i] = frand(-8.0f, 8.0f);
    }
    memcpy(d->x, d->src, d->n * sizeof *d->x);
}

/* impl: 0 = reference, otherwise the variant's kernel. */
static void bench_run(int b, const variant *v, bench_data *d)
{
    static const mk_activation relu6 = {MK_ACT_RELU, 0.0f, 6.0f}, lin = {MK_ACT_LINEAR, 0, 0};
    static const mk_activation swish = {MK_ACT_SWISH, 0, 0}, sig = {MK_ACT_SIGMOID, 0, 0};
    const float *xs[2] = {d->x, d->x2};
    switch (b) {
    case B_RELU6:
        v ? v->act(&relu6, d->x, 0, d->n) : mk_activation_ref(&relu6, d->x, d->n, d->n);
        break;
    case B_SWISH:
        v ? v->act(&swish, d->x, 0, d->n) : mk_activation_ref(&swish, d->x, d->n, d->n);
        break;
    case B_SIGMOID:
        v ? v->act(&sig, d->x, 0, d->n) : mk_activation_ref(&sig, d->x, d->n, d->n);
        break;
    case B_ADD:
        v ? v->add(2, xs, &lin, d->y, 0, d->n) : mk_add_ref(2, xs, d->n, &lin, d->y);
        break;
    case B_GAVG:
        v ? v->gavg(49, 1280, d->x, d->y, 0, 1280) : mk_global_avgpool_ref(49, 1280, d->x, d->y);
        break;
    default:
        v ? v->maxpool(&d->g, d->x, d->y, 0, d->g.out_h) : mk_maxpool_ref(&d->g, d->x, d->y);
        break;
    }
}

static void bench(const variant *vs, int nv)
{
    enum { REPS = 7 };
    printf("%-26s %10s %10s %10s  %8s %8s %8s  %s\n", "case (median of 7)", "ref ms", "avx2 ms",
           "avx512 ms", "ref", "avx2", "avx512", "GB/s (Gelem/s for exp-based)");
    for (int b = 0; b < B_COUNT; b++) {
        bench_data d;
        bench_setup(b, &d);
        double t[3][REPS];
        for (int r = 0; r < REPS; r++)
            for (int k = 0; k < 3; k++) {
                const variant *v = k ? &vs[k - 1] : NULL;
                if (k && (k > nv || !v->ok)) {
                    t[k][r] = NAN;
                    continue;
                }
                if (b == B_SWISH)
                    memcpy(d.x, d.src, d.n * sizeof *d.x); /* keep the inputs, not their swish^k */
                double t0 = now_ms();
                for (int i = 0; i < d.iters; i++)
                    bench_run(b, v, &d);
                t[k][r] = (now_ms() - t0) / d.iters;
            }
        double med[3], rate[3];
        int per_elem = b == B_SWISH || b == B_SIGMOID;
        for (int k = 0; k < 3; k++) {
            qsort(t[k], REPS, sizeof t[k][0], cmp_double);
            med[k] = t[k][REPS / 2];
            rate[k] = (per_elem ? (double)d.n : d.bytes) / (med[k] * 1e6);
        }
        printf("%-26s %10.4f %10.4f %10.4f  %8.2f %8.2f %8.2f  %s\n", bench_names[b], med[0],
               med[1], med[2], rate[0], rate[1], rate[2], per_elem ? "Gelem/s" : "GB/s");
        free(d.src);
        free(d.x);
        free(d.x2);
        free(d.y);
    }
}

/* ---- main ----------------------------------------------------------------------------------- */

#ifdef MK_HAVE_X86
static int cpu_has(const char *isa)
{
#if defined(MK_HAVE_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!strcmp(isa, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)isa;
    return 0;
#endif
}
#endif

int main(int argc, char **argv)
{
#ifdef MK_HAVE_X86
    variant vs[] = {
        {"avx2", cpu_has("avx2"), mk_f32_act_avx2, mk_f32_softmax_avx2, mk_f32_add_avx2,
         mk_f32_multiply_avx2, mk_f32_affine_avx2, mk_f32_maxpool_avx2, mk_f32_avgpool_avx2,
         mk_f32_global_avgpool_avx2, mk_f32_global_maxpool_avx2, mk_f32_global_sum_avx2},
        {"avx512", cpu_has("avx512"), mk_f32_act_avx512, mk_f32_softmax_avx512,
         mk_f32_add_avx512, mk_f32_multiply_avx512, mk_f32_affine_avx512,
         mk_f32_maxpool_avx512, mk_f32_avgpool_avx512, mk_f32_global_avgpool_avx512,
         mk_f32_global_maxpool_avx512, mk_f32_global_sum_avx512},
    };
    int nv = 2;
#elif defined(MK_HAVE_ARM) && defined(__aarch64__)
    /* NEON is baseline on AArch64. (ARMv7 builds lack the NEON act/softmax: skipped below.) */
    variant vs[] = {
        {"neon", 1, mk_f32_act_neon, mk_f32_softmax_neon, mk_f32_add_neon, mk_f32_multiply_neon,
         mk_f32_affine_neon, mk_f32_maxpool_neon, mk_f32_avgpool_neon,
         mk_f32_global_avgpool_neon, mk_f32_global_maxpool_neon, NULL},
    };
    int nv = 1;
#else
    variant vs[1];
    int nv = 0;
    printf("SKIPPED all: this build has no x86 SIMD kernels and no AArch64 NEON ones\n");
#endif
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench(vs, nv);
        return 0;
    }
    for (int i = 0; i < nv; i++) {
        const variant *v = &vs[i];
        if (!v->ok) {
            printf("SKIPPED %s: CPU lacks %s\n", v->name, v->name);
            continue;
        }
        int f0 = failed;
        test_act(v);
        test_softmax(v);
        test_add(v);
        test_multiply(v);
        test_affine(v);
        test_pool(v);
        test_global_pool(v);
        if (v->gsum)
            test_global_sum(v);
        else
            printf("     %s has no chunk-sum kernel: SE means stay whole-tensor pools\n", v->name);
        printf("%s %s: activations, softmax, add, multiply, affine, pools\n",
               failed == f0 ? "ok  " : "FAIL", v->name);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
