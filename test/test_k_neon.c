/* NEON GEMM, KxK conv and depthwise microkernels (kernels/arm/) against their scalar
 * references: mk_dense_ref, mk_conv2d_direct and mk_depthwise_ref. (The NEON activations,
 * add/multiply/affine and pools are checked by test_k_eltwise, which runs every variant the
 * build has.) Built only where the NEON kernels are (aarch64, armhf); an ARMv7 CPU without
 * NEON is reported as SKIPPED.
 *
 * What must hold
 * - Every output is within the rounding bound of the reference: both compute a sum of n
 *   products (plus a bias), each within min(n + 2, 8 sqrt(n + 2)) u mag of the exact value,
 *   u = 2^-24, mag = |b| + sum |x w| (computed here in double); the clamp activations are
 *   1-Lipschitz and round once more. So |neon - ref| <= 2 min(n + 2, 8 sqrt(n + 2)) u mag
 *   + 4 u |ref|. NEON uses fused multiply-adds and the reference may not: bits can differ.
 * - A call writes exactly its range: outputs start as a guard value, and what lies outside the
 *   rows/columns/pixels asked for (and the stride padding of y) must still hold it.
 * - Splitting a call's range into pieces reproduces the full call bit for bit (what lets an
 *   op split over threads).
 * Shapes: channel counts that are not multiples of 4 (1, 3, 5, 7, 17), 1x1 and 2x2 images,
 * stride 2 on odd sizes, valid / TF 'same' (the extra row bottom-right) / asymmetric padding,
 * dilation 2, a K long enough to be sliced (> 512), every fused clamp activation. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "microkernels.h"

#if defined(__arm__) && !defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#define U ((double)FLT_EPSILON / 2.0)
#define GUARD 1234.5f

static const mk_activation acts[] = {
    {MK_ACT_LINEAR, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, 6.0f},
    {MK_ACT_RELU, 0.2f, INFINITY},   {MK_ACT_RELU, 0.1f, 6.0f},
};
static const char *act_names[] = {"linear", "relu", "relu6", "leaky0.2", "relu(0.1,6)"};
#define NACTS 5

static int passed, failed;
static double worst_ratio; /* largest |neon - ref| / allowance seen */

static void verdict(int ok, const char *fmt, const char *what)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    if (failed <= 30) {
        printf("FAIL ");
        printf(fmt, what);
        printf("\n");
    }
}

static unsigned rng_state = 12345u;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((double)rng_state / 4294967296.0 * 4.0 - 2.0);
}

static float *rand_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *guarded(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = GUARD;
    return p;
}

static float *alloc64(size_t n)
{
    return aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64);
}

static double allowance(int n, double mag, double ref)
{
    double a = (double)n + 2.0, b = 8.0 * sqrt(a);
    return 2.0 * (a < b ? a : b) * U * mag + 4.0 * U * fabs(ref) + 1e-37;
}

/* |got - want| within the allowance; records the worst ratio. */
static int close_to(float got, float want, int n, double mag)
{
    double d = fabs((double)got - (double)want), a = allowance(n, mag, want);
    if (d / a > worst_ratio)
        worst_ratio = d / a;
    return d <= a;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

static void test_gemm_shape(int M, int K, int N, int with_bias)
{
    size_t ldx = (size_t)K + 3, ldy = (size_t)N + 5;
    float *x = rand_floats((size_t)M * ldx), *w = rand_floats((size_t)K * N);
    float *b = with_bias ? rand_floats((size_t)N) : NULL;
    float *xc = malloc(((size_t)M * K + 1) * sizeof *xc);
    double *mag = calloc((size_t)M * N + 1, sizeof *mag);
    for (int m = 0; m < M; m++)
        memcpy(xc + (size_t)m * K, x + (size_t)m * ldx, (size_t)K * sizeof *xc);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b ? fabs((double)b[n]) : 0.0;
            for (int k = 0; k < K; k++)
                s += fabs((double)xc[(size_t)m * K + k] * (double)w[(size_t)k * N + n]);
            mag[(size_t)m * N + n] = s;
        }
    float *packed = alloc64(mk_f32_gemm_pack_floats_neon(K, N));
    mk_f32_gemm_pack_neon(K, N, w, packed);
    float *want = malloc(((size_t)M * N + 1) * sizeof *want);
    float *y = guarded((size_t)M * ldy), *y2 = guarded((size_t)M * ldy);
    char what[96];
    snprintf(what, sizeof what, "gemm M%d K%d N%d%s", M, K, N, with_bias ? " +bias" : "");
    for (int ai = 0; ai < NACTS; ai++) {
        mk_dense_ref(M, K, N, xc, w, b, &acts[ai], want);
        /* full range */
        for (size_t i = 0; i < (size_t)M * ldy; i++)
            y[i] = GUARD;
        mk_f32_gemm_neon(K, N, x, ldx, packed, b, &acts[ai], y, ldy, 0, M, 0, N);
        int ok = 1;
        for (int m = 0; m < M; m++)
            for (size_t n = 0; n < ldy; n++) {
                float v = y[(size_t)m * ldy + n];
                if ((int)n >= N)
                    ok &= v == GUARD;
                else
                    ok &= close_to(v, want[(size_t)m * N + n], K, mag[(size_t)m * N + n]);
            }
        verdict(ok, "%s vs mk_dense_ref", what);
        /* a sub-range writes only itself; the pieces compose bit for bit */
        int mh = M / 2, nh = N > MK_GEMM_NR_NEON ? MK_GEMM_NR_NEON : N;
        for (size_t i = 0; i < (size_t)M * ldy; i++)
            y2[i] = GUARD;
        mk_f32_gemm_neon(K, N, x, ldx, packed, b, &acts[ai], y2, ldy, mh, M, nh, N);
        ok = 1;
        for (int m = 0; m < M; m++)
            for (size_t n = 0; n < ldy; n++) {
                float v = y2[(size_t)m * ldy + n];
                int in = m >= mh && (int)n >= nh && (int)n < N;
                ok &= in ? memcmp(&v, &y[(size_t)m * ldy + n], sizeof v) == 0 : v == GUARD;
            }
        mk_f32_gemm_neon(K, N, x, ldx, packed, b, &acts[ai], y2, ldy, 0, mh, 0, N);
        mk_f32_gemm_neon(K, N, x, ldx, packed, b, &acts[ai], y2, ldy, mh, M, 0, nh);
        ok &= memcmp(y, y2, (size_t)M * ldy * sizeof *y) == 0;
        char w2[160];
        snprintf(w2, sizeof w2, "%s %s", what, act_names[ai]);
        verdict(ok, "%s: a split range differs from the whole or writes outside it", w2);
    }
    free(x), free(w), free(b), free(xc), free(mag), free(packed), free(want), free(y), free(y2);
}

static void test_gemm(void)
{
    static const int shapes[][3] = {{1, 1, 1},   {1, 3, 5},   {2, 7, 4},    {3, 8, 15},
                                    {5, 9, 16},  {6, 16, 17}, {7, 33, 31},  {13, 37, 33},
                                    {11, 3, 49}, {1, 96, 7},  {9, 600, 19}, {4, 1030, 6}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bias = 0; bias < 2; bias++)
            test_gemm_shape(shapes[i][0], shapes[i][1], shapes[i][2], bias);
}

/* ---- windows (conv and depthwise) ------------------------------------------------------------ */

typedef struct win_case {
    int h, w, c, co, kh, kw, s, d, pt, pb, pl, pr;
} win_case;

static mk_window window_of(const win_case *k)
{
    int eh = (k->kh - 1) * k->d + 1, ew = (k->kw - 1) * k->d + 1;
    mk_window g = {.in_h = k->h, .in_w = k->w, .in_c = k->c,
                   .out_h = (k->h + k->pt + k->pb - eh) / k->s + 1,
                   .out_w = (k->w + k->pl + k->pr - ew) / k->s + 1, .out_c = k->co,
                   .kh = k->kh, .kw = k->kw, .sh = k->s, .sw = k->s, .pad_top = k->pt,
                   .pad_left = k->pl, .dh = k->d, .dw = k->d};
    return g;
}

/* mag of output (oy, ox, o): |b| + sum over in-bounds taps of |x w|; n = taps * cin. */
static double win_mag(const mk_window *g, const float *x, const float *w, const float *b,
                      int depthwise, int oy, int ox, int o, int *n)
{
    double s = b ? fabs((double)b[o]) : 0.0;
    int taps = 0;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int iy = oy * g->sh - g->pad_top + ky * g->dh, ix = ox * g->sw - g->pad_left + kx * g->dw;
            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                continue;
            const float *xr = x + ((size_t)iy * g->in_w + ix) * g->in_c;
            size_t t = (size_t)ky * g->kw + kx;
            if (depthwise) {
                s += fabs((double)xr[o] * (double)w[t * g->in_c + o]);
                taps++;
            } else {
                for (int ci = 0; ci < g->in_c; ci++)
                    s += fabs((double)xr[ci] * (double)w[(t * g->in_c + ci) * g->out_c + o]);
                taps += g->in_c;
            }
        }
    *n = taps;
    return s;
}

/* y (out_h x out_w x C) against want within the bounds, and the guard after it untouched. */
static int check_window_out(const mk_window *g, const float *x, const float *w, const float *b,
                            int depthwise, const float *y, const float *want)
{
    int ok = 1, C = g->out_c;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int o = 0; o < C; o++) {
                int n;
                double mag = win_mag(g, x, w, b, depthwise, oy, ox, o, &n);
                size_t i = ((size_t)oy * g->out_w + ox) * C + o;
                ok &= close_to(y[i], want[i], n, mag);
            }
    size_t total = (size_t)g->out_h * g->out_w * C;
    for (size_t i = total; i < total + 8; i++)
        ok &= y[i] == GUARD;
    return ok;
}

static const win_case conv_cases[] = {
    /* h  w  c co kh kw s d pt pb pl pr */
    {1, 1, 3, 5, 1, 1, 1, 1, 0, 0, 0, 0},   {1, 1, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1},
    {2, 2, 5, 17, 3, 3, 1, 1, 1, 1, 1, 1},  {2, 2, 1, 3, 3, 3, 2, 1, 0, 1, 0, 1},
    {7, 9, 3, 16, 3, 3, 2, 1, 1, 1, 1, 1},  {7, 7, 3, 7, 3, 3, 2, 1, 0, 0, 0, 0},
    {9, 8, 7, 5, 3, 3, 2, 1, 0, 1, 0, 1},   {6, 5, 4, 9, 1, 7, 1, 1, 0, 0, 3, 3},
    {5, 6, 2, 33, 7, 1, 1, 1, 3, 3, 0, 0},  {8, 8, 3, 6, 3, 3, 1, 2, 2, 2, 2, 2},
    {6, 7, 5, 11, 5, 5, 1, 1, 2, 1, 0, 2},  {5, 5, 17, 20, 1, 1, 1, 1, 0, 0, 0, 0},
    {5, 7, 6, 13, 1, 1, 2, 1, 0, 0, 0, 0},  {4, 4, 40, 3, 3, 3, 1, 1, 1, 1, 1, 1},
};

static void test_conv(void)
{
    for (size_t ci = 0; ci < sizeof conv_cases / sizeof conv_cases[0]; ci++) {
        mk_window g = window_of(&conv_cases[ci]);
        int K = g.kh * g.kw * g.in_c, N = g.out_c, P = g.out_h * g.out_w;
        size_t ny = (size_t)P * N;
        float *x = rand_floats((size_t)g.in_h * g.in_w * g.in_c), *w = rand_floats((size_t)K * N);
        float *packed = alloc64(mk_f32_gemm_pack_floats_neon(K, N));
        mk_f32_gemm_pack_neon(K, N, w, packed);
        float *scratch = alloc64(mk_f32_conv_scratch_floats(&g));
        float *want = malloc((ny + 8) * sizeof *want), *y = guarded(ny + 8), *y2 = guarded(ny + 8);
        for (int bias = 0; bias < 2; bias++) {
            float *b = bias ? rand_floats((size_t)N) : NULL;
            for (int ai = 0; ai < NACTS; ai++) {
                char what[160];
                snprintf(what, sizeof what,
                         "conv %dx%dx%d -> %d, %dx%d s%d d%d pad %d/%d/%d/%d%s %s", g.in_h,
                         g.in_w, g.in_c, N, g.kh, g.kw, g.sh, g.dh, conv_cases[ci].pt,
                         conv_cases[ci].pb, conv_cases[ci].pl, conv_cases[ci].pr,
                         bias ? " +bias" : "", act_names[ai]);
                mk_conv2d_direct(&g, x, w, b, &acts[ai], want);
                for (size_t i = 0; i < ny + 8; i++)
                    y[i] = y2[i] = GUARD;
                mk_f32_conv_neon(&g, x, packed, b, &acts[ai], y, scratch, 0, P);
                verdict(check_window_out(&g, x, w, b, 0, y, want), "%s vs mk_conv2d_direct",
                        what);
                int ph = P / 2;
                mk_f32_conv_neon(&g, x, packed, b, &acts[ai], y2, scratch, ph, P);
                int ok = 1;
                for (size_t i = 0; i < (size_t)ph * N; i++)
                    ok &= y2[i] == GUARD;
                mk_f32_conv_neon(&g, x, packed, b, &acts[ai], y2, scratch, 0, ph);
                ok &= memcmp(y, y2, (ny + 8) * sizeof *y) == 0;
                verdict(ok, "%s: pixel ranges do not compose bit-exactly", what);
            }
            free(b);
        }
        free(x), free(w), free(packed), free(scratch), free(want), free(y), free(y2);
    }
}

static const win_case dw_cases[] = {
    /* h  w  c co kh kw s d pt pb pl pr   (co = c) */
    {1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},   {1, 1, 5, 5, 3, 3, 2, 1, 1, 1, 1, 1},
    {2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1},   {2, 2, 7, 7, 3, 3, 2, 1, 0, 1, 0, 1},
    {5, 7, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1},   {5, 7, 17, 17, 3, 3, 1, 1, 0, 0, 0, 0},
    {7, 9, 5, 5, 3, 3, 2, 1, 1, 1, 1, 1},   {9, 7, 8, 8, 3, 3, 2, 1, 0, 1, 0, 1},
    {8, 8, 9, 9, 3, 3, 2, 1, 0, 1, 0, 1},   {7, 7, 6, 6, 3, 3, 2, 1, 0, 0, 0, 0},
    {6, 9, 13, 13, 3, 3, 1, 1, 2, 0, 0, 2}, {9, 6, 3, 3, 3, 3, 2, 1, 1, 0, 2, 1},
    {8, 7, 5, 5, 5, 5, 1, 1, 2, 2, 2, 2},   {9, 9, 6, 6, 5, 5, 2, 1, 1, 2, 1, 2},
    {9, 8, 7, 7, 3, 3, 1, 2, 2, 2, 2, 2},   {4, 6, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0},
    {3, 5, 11, 11, 2, 3, 1, 1, 0, 1, 1, 1},
};

typedef struct dw_variant {
    const char *name;
    mk_dwconv_fn fn;
    int s; /* 3x3 stride it requires; 0: any window */
} dw_variant;

static const dw_variant dw_variants[] = {
    {"dwconv3x3_s1", mk_f32_dwconv3x3_s1_neon, 1},
    {"dwconv3x3_s2", mk_f32_dwconv3x3_s2_neon, 2},
    {"dwconv", mk_f32_dwconv_neon, 0},
};

static void test_dwconv(void)
{
    for (size_t ci = 0; ci < sizeof dw_cases / sizeof dw_cases[0]; ci++) {
        mk_window g = window_of(&dw_cases[ci]);
        int C = g.in_c;
        size_t ny = (size_t)g.out_h * g.out_w * C;
        float *x = rand_floats((size_t)g.in_h * g.in_w * C);
        float *w = rand_floats((size_t)g.kh * g.kw * C);
        float *want = malloc((ny + 8) * sizeof *want), *y = guarded(ny + 8), *y2 = guarded(ny + 8);
        for (size_t vi = 0; vi < sizeof dw_variants / sizeof dw_variants[0]; vi++) {
            const dw_variant *v = &dw_variants[vi];
            int is3 = g.kh == 3 && g.kw == 3 && g.dh == 1;
            if (v->s && !(is3 && g.sh == v->s))
                continue;
            for (int bias = 0; bias < 2; bias++) {
                /* a bias much larger than the taps, as a folded BatchNormalization gives */
                float *b = bias ? rand_floats((size_t)C) : NULL;
                for (int i = 0; b && i < C; i++)
                    b[i] *= 40.0f;
                for (int ai = 0; ai < NACTS; ai++) {
                    char what[160];
                    snprintf(what, sizeof what, "%s %dx%dx%d %dx%d s%d d%d pad %d/%d/%d/%d%s %s",
                             v->name, g.in_h, g.in_w, C, g.kh, g.kw, g.sh, g.dh,
                             dw_cases[ci].pt, dw_cases[ci].pb, dw_cases[ci].pl,
                             dw_cases[ci].pr, bias ? " +bias" : "", act_names[ai]);
                    mk_depthwise_ref(&g, 1, x, w, b, &acts[ai], want);
                    for (size_t i = 0; i < ny + 8; i++)
                        y[i] = y2[i] = GUARD;
                    v->fn(&g, x, w, b, &acts[ai], y, 0, g.out_h);
                    verdict(check_window_out(&g, x, w, b, 1, y, want),
                            "%s vs mk_depthwise_ref", what);
                    /* each output row alone, in reverse order */
                    for (int oy = g.out_h - 1; oy >= 0; oy--)
                        v->fn(&g, x, w, b, &acts[ai], y2, oy, oy + 1);
                    verdict(memcmp(y, y2, (ny + 8) * sizeof *y) == 0,
                            "%s: row ranges do not compose bit-exactly", what);
                }
                free(b);
            }
        }
        free(x), free(w), free(want), free(y), free(y2);
    }
}

int main(void)
{
#if defined(__arm__) && !defined(__aarch64__)
    if (!(getauxval(AT_HWCAP) & HWCAP_NEON)) {
        printf("SKIPPED neon: this ARMv7 CPU does not report NEON (AT_HWCAP)\n");
        printf("0 passed, 0 failed\n");
        return 0;
    }
#endif
    int f0 = failed;
    test_gemm();
    printf("%s neon gemm (vs mk_dense_ref)\n", failed == f0 ? "ok  " : "FAIL");
    f0 = failed;
    test_conv();
    printf("%s neon conv (vs mk_conv2d_direct)\n", failed == f0 ? "ok  " : "FAIL");
    f0 = failed;
    test_dwconv();
    printf("%s neon dwconv 3x3 s1, 3x3 s2, any (vs mk_depthwise_ref)\n",
           failed == f0 ? "ok  " : "FAIL");
    printf("worst |neon - ref| / allowance: %.3f\n", worst_ratio);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
