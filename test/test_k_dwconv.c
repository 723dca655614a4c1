/* Depthwise-convolution microkernels (kernels/x86/f32_dwconv*.c) against mk_depthwise_ref.
 *
 * Every variant this build contains runs on fixed-seed random data over a grid of awkward
 * cases: channel counts around the vector widths (1, 3, 7, 16, 17, 33, 101), images from 1x1 to
 * 16x16 and a 6x37 strip (odd and even, for stride 2; 37 is wide enough for the widest tiles),
 * 'valid', TF 'same' (its extra pad row/column goes bottom/right) and explicit asymmetric pads
 * (ZeroPadding2D folded into the window, including pads so wide that whole output rows see no
 * tap), with and without bias, under linear, ReLU, ReLU6, LeakyReLU and a ReLU with both a
 * slope and a clip. The generic kernels also get 5x5, 1x1, dilated and non-square windows and
 * strides.
 *
 * Tolerance: the kernels may round differently from the reference (FMA, and the bias added to
 * a sum rounded in another order), so each value is checked against
 *     |got - ref| <= 2 (K + 2) u mag,   mag = |bias| + sum over the taps of |x*w|,
 * with K = kh*kw taps and u = 2^-24: each of the two is within (K + 1) u mag of the exact value
 * (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1), and the clamp activations
 * are 1-Lipschitz. An indexing bug (a tap missed or doubled) moves a value by ~ mag / K.
 *
 * Row ranges: the op splits [0, out_h) over threads, so every case also runs as three calls
 * on consecutive row ranges, which must write exactly what one call writes (bit for bit) and
 * nothing outside their rows. Output buffers start as NaN with guard cells after them.
 *
 * `test_k_dwconv --bench` times the MobileNet V1/V2 depthwise layers instead. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "microkernels.h"

#define U ((double)FLT_EPSILON / 2.0)
#define GUARD 16
#define GUARD_VALUE 1234.5f

enum { K_GENERIC, K_3X3_S1, K_3X3_S2 };

typedef struct variant {
    const char *name, *isa;
    mk_dwconv_fn fn;
    int kind;
} variant;

#ifdef MK_HAVE_X86
static const variant VARIANTS[] = {
    {"mk_f32_dwconv3x3_s1_avx2", "avx2", mk_f32_dwconv3x3_s1_avx2, K_3X3_S1},
    {"mk_f32_dwconv3x3_s2_avx2", "avx2", mk_f32_dwconv3x3_s2_avx2, K_3X3_S2},
    {"mk_f32_dwconv_avx2", "avx2", mk_f32_dwconv_avx2, K_GENERIC},
    {"mk_f32_dwconv3x3_s1_avx512", "avx512", mk_f32_dwconv3x3_s1_avx512, K_3X3_S1},
    {"mk_f32_dwconv3x3_s2_avx512", "avx512", mk_f32_dwconv3x3_s2_avx512, K_3X3_S2},
    {"mk_f32_dwconv_avx512", "avx512", mk_f32_dwconv_avx512, K_GENERIC},
};
#define N_VARIANTS ((int)(sizeof VARIANTS / sizeof VARIANTS[0]))

/* The flags the build compiles each ISA's files with. */
static int cpu_runs(const char *isa)
{
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
}
#else
static const variant *const VARIANTS = NULL;
#define N_VARIANTS 0
static int cpu_runs(const char *isa)
{
    (void)isa;
    return 0;
}
#endif

/* ---- data ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static float frand(float lo, float hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void fill(float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand(lo, hi);
}

/* NaN over the output, guard cells after it. */
static void poison(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = NAN;
    for (size_t i = n; i < n + GUARD; i++)
        y[i] = GUARD_VALUE;
}

/* ---- one case ------------------------------------------------------------------------------ */

typedef struct stats {
    int passed, failed;
    double worst; /* largest |got - ref| / tolerance seen */
} stats;

static void fail(stats *s, const char *name, const char *desc, const char *what)
{
    s->failed++;
    if (s->failed <= 10)
        printf("FAIL %s %s: %s\n", name, desc, what);
}

/* mag = |b| + sum |x*w| over the taps inside the input, per output value. */
static void magnitudes(const mk_window *g, const float *x, const float *w, const float *b,
                       double *mag)
{
    int c = g->in_c;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int ch = 0; ch < c; ch++) {
                double m = b ? fabs(b[ch]) : 0.0;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->sh - g->pad_top + ky * g->dh;
                        int ix = ox * g->sw - g->pad_left + kx * g->dw;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                            continue;
                        m += fabs((double)x[((size_t)iy * g->in_w + ix) * c + ch] *
                                  w[((size_t)ky * g->kw + kx) * c + ch]);
                    }
                mag[((size_t)oy * g->out_w + ox) * c + ch] = m;
            }
}

static void run_case(stats *s, const variant *v, const mk_window *g, int with_bias,
                     const mk_activation *act, const char *desc)
{
    size_t c = (size_t)g->in_c, nx = (size_t)g->in_h * g->in_w * c;
    size_t nw = (size_t)g->kh * g->kw * c, ny = (size_t)g->out_h * g->out_w * c;
    size_t row = (size_t)g->out_w * c;
    float *x = alloc_floats(nx), *w = alloc_floats(nw), *b = alloc_floats(c);
    float *ref = alloc_floats(ny), *got = alloc_floats(ny + GUARD),
          *split = alloc_floats(ny + GUARD);
    double *mag = malloc((ny ? ny : 1) * sizeof *mag);
    fill(x, nx, -1.0f, 1.0f);
    fill(w, nw, -1.0f, 1.0f);
    fill(b, c, -4.0f, 4.0f);
    const float *bias = with_bias ? b : NULL;
    char what[256];

    mk_depthwise_ref(g, 1, x, w, bias, act, ref);
    magnitudes(g, x, w, bias, mag);
    poison(got, ny);
    v->fn(g, x, w, bias, act, got, 0, g->out_h);

    int ok = 1;
    double tol_k = 2.0 * (g->kh * g->kw + 2) * U;
    for (size_t i = 0; i < ny && ok; i++) {
        double d = fabs((double)got[i] - ref[i]), tol = tol_k * mag[i] + 1e-30;
        if (!(d <= tol)) {
            snprintf(what, sizeof what, "value %zu (y %zu x %zu c %zu): got %.9g, ref %.9g", i,
                     i / row, i % row / c, i % c, got[i], ref[i]);
            ok = 0;
        } else if (d / tol > s->worst) {
            s->worst = d / tol;
        }
    }
    for (size_t i = ny; i < ny + GUARD && ok; i++)
        if (got[i] != GUARD_VALUE) {
            snprintf(what, sizeof what, "wrote past the output end");
            ok = 0;
        }
    if (ok)
        s->passed++;
    else
        fail(s, v->name, desc, what);

    /* Three row ranges (some empty on short outputs); after the first, the other rows must be
     * untouched. */
    int r1 = g->out_h / 3, r2 = g->out_h - g->out_h / 3;
    poison(split, ny);
    v->fn(g, x, w, bias, act, split, 0, r1);
    ok = 1;
    for (size_t i = (size_t)r1 * row; i < ny && ok; i++)
        if (!isnan(split[i])) {
            snprintf(what, sizeof what, "rows [0,%d) wrote row %zu", r1, i / row);
            ok = 0;
        }
    v->fn(g, x, w, bias, act, split, r1, r2);
    v->fn(g, x, w, bias, act, split, r2, g->out_h);
    if (ok && memcmp(split, got, (ny + GUARD) * sizeof *got) != 0) {
        snprintf(what, sizeof what, "rows [0,%d) [%d,%d) [%d,%d) differ from one call", r1, r1,
                 r2, r2, g->out_h);
        ok = 0;
    }
    if (ok)
        s->passed++;
    else
        fail(s, v->name, desc, what);

    free(x);
    free(w);
    free(b);
    free(ref);
    free(got);
    free(split);
    free(mag);
}

/* ---- the grid ------------------------------------------------------------------------------ */

typedef struct shape {
    int kh, kw, sh, sw, dh, dw;
} shape;

enum { PAD_VALID, PAD_SAME, PAD_BR, PAD_WIDE, N_PADS };
static const char *const PAD_NAMES[] = {"valid", "same", "zeropad(0,1)(0,1)+valid",
                                        "zeropad(3,0)(1,2)+valid"};

/* Fills the window for one padding mode; 0 when the output would be empty. */
static int make_window(mk_window *g, const shape *k, int h, int wd, int c, int pad)
{
    int ekh = (k->kh - 1) * k->dh + 1, ekw = (k->kw - 1) * k->dw + 1;
    int t = 0, bo = 0, l = 0, r = 0;
    if (pad == PAD_SAME) {
        int oh = (h + k->sh - 1) / k->sh, ow = (wd + k->sw - 1) / k->sw;
        int ph = (oh - 1) * k->sh + ekh - h, pw = (ow - 1) * k->sw + ekw - wd;
        ph = ph > 0 ? ph : 0;
        pw = pw > 0 ? pw : 0;
        t = ph / 2, bo = ph - t, l = pw / 2, r = pw - l;
    } else if (pad == PAD_BR) {
        bo = 1, r = 1;
    } else if (pad == PAD_WIDE) {
        t = 3, l = 1, r = 2;
    }
    if (h + t + bo < ekh || wd + l + r < ekw)
        return 0;
    *g = (mk_window){.in_h = h, .in_w = wd, .in_c = c, .out_c = c, .kh = k->kh, .kw = k->kw,
                     .sh = k->sh, .sw = k->sw, .pad_top = t, .pad_left = l, .dh = k->dh,
                     .dw = k->dw};
    g->out_h = (h + t + bo - ekh) / k->sh + 1;
    g->out_w = (wd + l + r - ekw) / k->sw + 1;
    return 1;
}

static const mk_activation ACTS[] = {
    {MK_ACT_LINEAR, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, 6.0f},
    {MK_ACT_RELU, 0.1f, INFINITY},   {MK_ACT_RELU, 0.2f, 0.5f},
};
static const char *const ACT_NAMES[] = {"linear", "relu", "relu6", "leaky0.1",
                                        "relu(slope0.2,max0.5)"};
#define N_ACTS 5

static void run_variant(stats *s, const variant *v)
{
    static const int CS[] = {1, 3, 7, 16, 17, 33, 101};
    static const int IMG[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 7}, {13, 11}, {16, 16}, {6, 37}};
    static const shape S1 = {3, 3, 1, 1, 1, 1}, S2 = {3, 3, 2, 2, 1, 1};
    static const shape GEN[] = {{3, 3, 1, 1, 1, 1}, {3, 3, 2, 2, 1, 1}, {5, 5, 1, 1, 1, 1},
                                {5, 5, 2, 2, 1, 1}, {3, 3, 1, 1, 2, 2}, {1, 1, 1, 1, 1, 1},
                                {7, 3, 2, 1, 1, 1}, {3, 5, 1, 2, 2, 1}};
    const shape *shapes = v->kind == K_3X3_S1 ? &S1 : v->kind == K_3X3_S2 ? &S2 : GEN;
    int n_shapes = v->kind == K_GENERIC ? (int)(sizeof GEN / sizeof GEN[0]) : 1;
    int turn = 0;
    for (int si = 0; si < n_shapes; si++)
        for (int ci = 0; ci < 7; ci++)
            for (int ii = 0; ii < 7; ii++)
                for (int pad = 0; pad < N_PADS; pad++) {
                    mk_window g;
                    if (!make_window(&g, &shapes[si], IMG[ii][0], IMG[ii][1], CS[ci], pad))
                        continue;
                    /* 3x3 kernels: every bias x activation; the generic grid is 8x larger, so
                     * it takes them in turn. */
                    for (int ba = 0; ba < 2 * N_ACTS; ba++) {
                        if (v->kind == K_GENERIC && ba != turn % (2 * N_ACTS))
                            continue;
                        int bias = ba % 2, ai = ba / 2;
                        char desc[200];
                        snprintf(desc, sizeof desc,
                                 "[%dx%d s%dx%d d%dx%d] %dx%dx%d %s, %s, %s", g.kh, g.kw, g.sh,
                                 g.sw, g.dh, g.dw, g.in_h, g.in_w, g.in_c, PAD_NAMES[pad],
                                 bias ? "bias" : "no bias", ACT_NAMES[ai]);
                        run_case(s, v, &g, bias, &ACTS[ai], desc);
                    }
                    turn++;
                }
}

/* ---- benchmark ----------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void ref_call(const mk_window *g, const float *x, const float *w, const float *b,
                     const mk_activation *act, float *y, int oy0, int oy1)
{
    (void)oy0;
    (void)oy1;
    mk_depthwise_ref(g, 1, x, w, b, act, y);
}

#define RUNS 21
#define N_COLS 4
#define SAMPLE_MS 2.0

/* One sample: enough back-to-back calls to last ~SAMPLE_MS, so the small layers are not timed
 * at the clock's and the scheduler's granularity; returns ms per call. */
static double sample(mk_dwconv_fn fn, int reps, const mk_window *g, const float *x,
                     const float *w, const float *b, const mk_activation *act, float *y)
{
    double t0 = now_ms();
    for (int i = 0; i < reps; i++)
        fn(g, x, w, b, act, y, 0, g->out_h);
    return (now_ms() - t0) / reps;
}

static int bench(void)
{
    /* MobileNetV2 (224, alpha 1) then MobileNet V1; stride 2 as Keras builds it:
     * ZeroPadding2D((0,1),(0,1)) then a 'valid' depthwise. */
    static const struct {
        const char *net;
        int hw, c, s;
    } L[] = {{"v2", 112, 32, 1}, {"v2", 112, 96, 2}, {"v2", 56, 144, 1}, {"v2", 56, 144, 2},
             {"v2", 28, 192, 1}, {"v2", 28, 192, 2}, {"v2", 14, 384, 1}, {"v2", 14, 576, 1},
             {"v2", 14, 576, 2}, {"v2", 7, 960, 1},  {"v1", 112, 64, 2}, {"v1", 56, 128, 1},
             {"v1", 28, 256, 1}, {"v1", 14, 512, 1}, {"v1", 7, 1024, 1}};
    mk_activation relu6 = {MK_ACT_RELU, 0.0f, 6.0f};
    int have2 = N_VARIANTS && cpu_runs("avx2"), have512 = N_VARIANTS && cpu_runs("avx512");
    printf("ms = median over %d interleaved samples (each ~%.0f ms of back-to-back calls), "
           "GF/s = 2 FLOP per tap / best sample; bias + ReLU6; gen = mk_f32_dwconv_<isa>\n",
           RUNS, SAMPLE_MS);
    if (!have2)
        printf("SKIPPED avx2 columns: CPU lacks avx2\n");
    if (!have512)
        printf("SKIPPED avx512 columns: CPU lacks avx512\n");
    printf("%-3s %-14s %7s %7s %7s %7s | %6s %6s %6s %6s | %7s %7s\n", "net", "input, stride",
           "ref ms", "avx2", "avx512", "gen512", "ref GF", "avx2", "avx512", "gen512",
           "avx2/ref", "512/ref");
    for (size_t li = 0; li < sizeof L / sizeof L[0]; li++) {
        int s = L[li].s, hw = L[li].hw, c = L[li].c;
        mk_window g = {.in_h = hw, .in_w = hw, .in_c = c, .out_c = c, .kh = 3, .kw = 3, .sh = s,
                       .sw = s, .pad_top = s == 1, .pad_left = s == 1, .dh = 1, .dw = 1};
        g.out_h = g.out_w = s == 1 ? hw : hw / 2;
        size_t nx = (size_t)hw * hw * c, ny = (size_t)g.out_h * g.out_w * c;
        float *x = alloc_floats(nx), *w = alloc_floats(9 * (size_t)c), *b = alloc_floats(c);
        float *y = alloc_floats(ny);
        fill(x, nx, -1.0f, 1.0f);
        fill(w, 9 * (size_t)c, -1.0f, 1.0f);
        fill(b, c, -1.0f, 1.0f);
        mk_dwconv_fn fns[N_COLS] = {ref_call, NULL, NULL, NULL};
#ifdef MK_HAVE_X86
        if (have2)
            fns[1] = s == 1 ? mk_f32_dwconv3x3_s1_avx2 : mk_f32_dwconv3x3_s2_avx2;
        if (have512) {
            fns[2] = s == 1 ? mk_f32_dwconv3x3_s1_avx512 : mk_f32_dwconv3x3_s2_avx512;
            fns[3] = mk_f32_dwconv_avx512;
        }
#endif
        int reps[N_COLS];
        for (int k = 0; k < N_COLS; k++) {
            double t = fns[k] ? sample(fns[k], 1, &g, x, w, b, &relu6, y) : 1.0;
            reps[k] = t >= SAMPLE_MS ? 1 : t * 100.0 < SAMPLE_MS ? 100 : (int)(SAMPLE_MS / t);
        }
        double t[N_COLS][RUNS], med[N_COLS], gf[N_COLS];
        for (int r = 0; r < RUNS; r++)
            for (int k = 0; k < N_COLS; k++)
                if (fns[k])
                    t[k][r] = sample(fns[k], reps[k], &g, x, w, b, &relu6, y);
        double gflop = 2.0 * 9.0 * (double)ny * 1e-9;
        for (int k = 0; k < N_COLS; k++) {
            med[k] = gf[k] = NAN;
            if (fns[k]) {
                qsort(t[k], RUNS, sizeof t[k][0], cmp_double);
                med[k] = t[k][RUNS / 2];
                gf[k] = gflop / (t[k][0] * 1e-3);
            }
        }
        char shape_s[32];
        snprintf(shape_s, sizeof shape_s, "%dx%dx%d s%d", hw, hw, c, s);
        printf("%-3s %-14s %7.3f %7.3f %7.3f %7.3f | %6.1f %6.1f %6.1f %6.1f | %6.1fx %6.1fx\n",
               L[li].net, shape_s, med[0], med[1], med[2], med[3], gf[0], gf[1], gf[2], gf[3],
               med[0] / med[1], med[0] / med[2]);
        free(x);
        free(w);
        free(b);
        free(y);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    int passed = 0, failed = 0;
    if (N_VARIANTS == 0)
        printf("SKIPPED all variants: this build has no x86 SIMD kernels\n");
    for (int i = 0; i < N_VARIANTS; i++) {
        const variant *v = &VARIANTS[i];
        if (!cpu_runs(v->isa)) {
            printf("SKIPPED %s: CPU lacks %s\n", v->name, v->isa);
            continue;
        }
        stats s = {0, 0, 0.0};
        run_variant(&s, v);
        printf("%s %s: %d checks passed, %d failed, worst |d|/tolerance %.3f\n",
               s.failed ? "FAIL" : "ok  ", v->name, s.passed, s.failed, s.worst);
        passed += s.passed;
        failed += s.failed;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
