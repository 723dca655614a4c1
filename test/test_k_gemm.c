/* GEMM and KxK conv microkernels (kernels/x86/f32_gemm_*.c, f32_conv_*.c) against a float64
 * reference and against the library's own oracles (mk_dense_ref, mk_conv2d_direct).
 *
 * GEMM: every M x K x N of the odd sets below, with and without bias, under linear / ReLU /
 * ReLU6 / LeakyReLU / ReLU(slope, max). x and y have row strides wider than K and N, and y
 * starts out as a guard value: a write outside [m0, m1) x [n0, n1) or into the stride padding
 * fails. Splitting the range into sub-ranges of rows and column panels must reproduce the
 * full-range result bit for bit (that is what lets the op split a call over threads).
 * Conv: 1x1 and 2x2 images, stride 2 on odd sizes, valid / TF same (extra row bottom-right) /
 * asymmetric explicit padding, dilation 2, 3x3 / 1x7 / 7x1 / 5x5 kernels, Cin 3, a K that needs
 * several im2col tiles; pixel sub-ranges compose bit-exactly as well. Where Cin <= 4 the
 * AVX-512 small-Cin kernel (no im2col) must give the im2col result bit for bit, whole and in
 * ranges cut mid-row and one pixel long.
 *
 * Tolerance (the rounding-error bound of test_kernels.c): a value built from K products and a
 * bias is within d = min(K + 2, 8 sqrt(K + 2)) * u * mag of the exact one, u = 2^-24,
 * mag = |b| + sum |x w|; the clamp activations are 1-Lipschitz and add at most 2 u |y|. Against
 * the float oracles (also rounded) the allowance is doubled.
 *
 * `test_k_gemm --bench [substring]` times the kernels against single-threaded OpenBLAS instead. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "microkernels.h"

#define U ((double)FLT_EPSILON / 2.0)
#define GUARD_VALUE 1234.5f

typedef struct variant {
    const char *name, *isa;
    int nr, runs;
    mk_gemm_pack_floats_fn pack_floats;
    mk_gemm_pack_fn pack;
    mk_gemm_fn gemm;
    mk_conv_fn conv;
} variant;

static variant variants[] = {
    {"avx2", "avx2+fma", MK_GEMM_NR_AVX2, 0, mk_f32_gemm_pack_floats_avx2, mk_f32_gemm_pack_avx2,
     mk_f32_gemm_avx2, mk_f32_conv_avx2},
    {"avx512", "avx512f/bw/dq/vl", MK_GEMM_NR_AVX512, 0, mk_f32_gemm_pack_floats_avx512,
     mk_f32_gemm_pack_avx512, mk_f32_gemm_avx512, mk_f32_conv_avx512},
};
#define NVARIANTS ((int)(sizeof variants / sizeof variants[0]))

static void detect_cpu(void)
{
    __builtin_cpu_init();
    variants[0].runs = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    variants[1].runs = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

static const mk_activation acts[] = {
    {MK_ACT_LINEAR, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, INFINITY}, {MK_ACT_RELU, 0.0f, 6.0f},
    {MK_ACT_RELU, 0.2f, INFINITY},   {MK_ACT_RELU, 0.1f, 6.0f},
};
static const char *act_names[] = {"linear", "relu", "relu6", "leaky0.2", "relu(0.1,6)"};
#define NACTS 5

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

static unsigned rng_state = 12345u;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((double)rng_state / 4294967296.0 * 2.0 - 1.0);
}

static float *rand_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *alloc64(size_t n)
{
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

static double act_d(const mk_activation *a, double v)
{
    if (a->code != MK_ACT_RELU)
        return v;
    double r = (v > 0 ? v : 0) + (double)a->alpha * (v < 0 ? v : 0);
    return r < (double)a->max ? r : (double)a->max;
}

static double bound(int k, double mag, double ref)
{
    double n = (double)k + 2.0, c = 8.0 * sqrt(n);
    return (n < c ? n : c) * U * mag + 2.0 * U * fabs(ref) + 1e-37;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

typedef struct gemm_case {
    int M, K, N;
    size_t ldx, ldy;
    const float *x, *xc, *w, *b; /* x strided, xc contiguous for mk_dense_ref */
    const double *exact, *mag;   /* pre-activation, [M, N] */
} gemm_case;

/* Every y element of the range is within the bound of the exact value, and everything outside
 * the range (other rows, columns, the stride padding) still holds the guard. */
static int check_gemm_y(const gemm_case *c, const mk_activation *a, const float *y, int m0,
                        int m1, int n1)
{
    for (int m = 0; m < c->M; m++)
        for (size_t n = 0; n < c->ldy; n++) {
            float v = y[(size_t)m * c->ldy + n];
            if (m < m0 || m >= m1 || (int)n >= n1) {
                if (v != GUARD_VALUE)
                    return 0;
                continue;
            }
            size_t i = (size_t)m * (size_t)c->N + n;
            double ref = act_d(a, c->exact[i]);
            if (!(fabs((double)v - ref) <= bound(c->K, c->mag[i], ref)))
                return 0;
        }
    return 1;
}

static void fill(float *y, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        y[i] = v;
}

static void gemm_variant(const variant *v, const gemm_case *c, const float *packed, int ai,
                         float *y, float *y2, float *yd)
{
    const mk_activation *a = &acts[ai];
    size_t ny = (size_t)c->M * c->ldy;
    char what[200];
    snprintf(what, sizeof what, "%s gemm M=%d K=%d N=%d %s %s", v->name, c->M, c->K, c->N,
             c->b ? "bias" : "nobias", act_names[ai]);

    fill(y, ny, GUARD_VALUE);
    v->gemm(c->K, c->N, c->x, c->ldx, packed, c->b, a, y, c->ldy, 0, c->M, 0, c->N);
    verdict(check_gemm_y(c, a, y, 0, c->M, c->N), what);

    /* Against the library's float oracle. */
    mk_dense_ref(c->M, c->K, c->N, c->xc, c->w, c->b, a, yd);
    int ok = 1;
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            size_t i = (size_t)m * (size_t)c->N + (size_t)n;
            double ref = act_d(a, c->exact[i]);
            double d = fabs((double)y[(size_t)m * c->ldy + (size_t)n] - (double)yd[i]);
            ok &= d <= 2.0 * bound(c->K, c->mag[i], ref);
        }
    strcat(what, " vs mk_dense_ref");
    verdict(ok, what);

    /* Rows split in three (one piece may be empty), columns at a panel boundary: the pieces
     * together must equal the full call exactly. */
    int panels = (c->N + v->nr - 1) / v->nr;
    int ns = panels > 1 ? (panels / 2) * v->nr : c->N;
    int ms[4] = {0, c->M / 3, (2 * c->M + 2) / 3, c->M};
    fill(y2, ny, GUARD_VALUE);
    for (int i = 0; i < 3; i++) {
        v->gemm(c->K, c->N, c->x, c->ldx, packed, c->b, a, y2, c->ldy, ms[i], ms[i + 1], 0, ns);
        if (ns < c->N)
            v->gemm(c->K, c->N, c->x, c->ldx, packed, c->b, a, y2, c->ldy, ms[i], ms[i + 1], ns,
                    c->N);
    }
    snprintf(what, sizeof what, "%s gemm M=%d K=%d N=%d %s: sub-ranges compose exactly", v->name,
             c->M, c->K, c->N, act_names[ai]);
    verdict(memcmp(y, y2, ny * sizeof *y) == 0, what);

    /* A range of rows only writes those rows. */
    if (c->M >= 3) {
        fill(y2, ny, GUARD_VALUE);
        v->gemm(c->K, c->N, c->x, c->ldx, packed, c->b, a, y2, c->ldy, 1, c->M - 1, 0, c->N);
        snprintf(what, sizeof what, "%s gemm M=%d K=%d N=%d rows [1, M-1) only", v->name, c->M,
                 c->K, c->N);
        verdict(check_gemm_y(c, a, y2, 1, c->M - 1, c->N), what);
    }
}

static void test_gemm_shape(int M, int K, int N, int with_bias)
{
    gemm_case c = {M, K, N, (size_t)K + 3, (size_t)N + 5, 0, 0, 0, 0, 0, 0};
    float *x = rand_floats((size_t)M * c.ldx), *xc = malloc((size_t)M * (size_t)K * sizeof *xc);
    float *w = rand_floats((size_t)K * (size_t)N), *b = with_bias ? rand_floats((size_t)N) : NULL;
    double *exact = malloc((size_t)M * (size_t)N * sizeof *exact);
    double *mag = malloc((size_t)M * (size_t)N * sizeof *mag);
    for (int m = 0; m < M; m++) {
        memcpy(xc + (size_t)m * (size_t)K, x + (size_t)m * c.ldx, (size_t)K * sizeof *xc);
        for (int n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0, g = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)m * c.ldx + (size_t)k] * w[(size_t)k * N + n];
                s += p;
                g += fabs(p);
            }
            exact[(size_t)m * N + n] = s;
            mag[(size_t)m * N + n] = g;
        }
    }
    c.x = x, c.xc = xc, c.w = w, c.b = b, c.exact = exact, c.mag = mag;
    size_t ny = (size_t)M * c.ldy;
    float *y = malloc(ny * sizeof *y), *y2 = malloc(ny * sizeof *y2);
    float *yd = malloc((size_t)M * (size_t)N * sizeof *yd);
    for (int vi = 0; vi < NVARIANTS; vi++) {
        const variant *v = &variants[vi];
        if (!v->runs)
            continue;
        float *packed = alloc64(v->pack_floats(K, N));
        v->pack(K, N, w, packed);
        for (int ai = 0; ai < NACTS; ai++)
            gemm_variant(v, &c, packed, ai, y, y2, yd);
        free(packed);
    }
    free(x), free(xc), free(w), free(b), free(exact), free(mag), free(y), free(y2), free(yd);
}

static void test_gemm(void)
{
    static const int Ms[] = {1, 2, 5, 13, 49, 197}, Ks[] = {1, 3, 7, 27, 64, 161};
    static const int Ns[] = {1, 5, 16, 17, 31, 32, 33, 65, 100};
    for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++)
        for (size_t j = 0; j < sizeof Ks / sizeof *Ks; j++)
            for (size_t k = 0; k < sizeof Ns / sizeof *Ns; k++)
                for (int with_bias = 0; with_bias < 2; with_bias++)
                    test_gemm_shape(Ms[i], Ks[j], Ns[k], with_bias);
    /* K long enough to be split into k blocks (the tile is parked in y between them). */
    test_gemm_shape(13, 1100, 33, 1);
    test_gemm_shape(20, 1025, 65, 0);
    test_gemm_shape(7, 520, 17, 1);
    /* Weights over 128 KB: tiles prefetch the next panel, in as many pieces as a panel has
     * tiles (45 rows: 4 tiles of 12 + 11 + 11 + 11). */
    test_gemm_shape(45, 700, 96, 0);
    /* Rows 1024 floats apart (ldx = K + 3): the loop order that copies x into a strip. */
    test_gemm_shape(50, 1021, 130, 1);
}

/* ---- convolution ---------------------------------------------------------------------------- */

enum { VALID, SAME, EXPLICIT };
typedef struct conv_case {
    const char *name;
    int in_h, in_w, cin, cout, kh, kw, s, d, pad;
    int pt, pb, pl, pr; /* EXPLICIT only */
} conv_case;

static const conv_case conv_cases[] = {
    {"1x1 image, 3x3 same", 1, 1, 3, 5, 3, 3, 1, 1, SAME, 0, 0, 0, 0},
    {"2x2 image, 3x3 same s2", 2, 2, 4, 7, 3, 3, 2, 1, SAME, 0, 0, 0, 0},
    {"2x2 image, 2x2 valid", 2, 2, 5, 17, 2, 2, 1, 1, VALID, 0, 0, 0, 0},
    {"7x7 Cin 3, 3x3 valid s2 (stem)", 7, 7, 3, 32, 3, 3, 2, 1, VALID, 0, 0, 0, 0},
    {"7x7, 3x3 same s2", 7, 7, 6, 33, 3, 3, 2, 1, SAME, 0, 0, 0, 0},
    {"8x6, 3x3 same s2 (extra row bottom/right)", 8, 6, 5, 16, 3, 3, 2, 1, SAME, 0, 0, 0, 0},
    {"13x11 Cin 3, 3x3 same s2", 13, 11, 3, 24, 3, 3, 2, 1, SAME, 0, 0, 0, 0},
    {"9x8, 1x7 same", 9, 8, 5, 17, 1, 7, 1, 1, SAME, 0, 0, 0, 0},
    {"8x9, 7x1 same", 8, 9, 6, 33, 7, 1, 1, 1, SAME, 0, 0, 0, 0},
    {"7x7, 5x5 same", 7, 7, 48, 64, 5, 5, 1, 1, SAME, 0, 0, 0, 0},
    {"11x10, 3x3 same dilation 2", 11, 10, 4, 31, 3, 3, 1, 2, SAME, 0, 0, 0, 0},
    {"12x12, 3x3 valid dilation 2", 12, 12, 8, 65, 3, 3, 1, 2, VALID, 0, 0, 0, 0},
    {"10x9 Cin 3, 3x3 explicit t2 b0 l0 r3", 10, 9, 3, 31, 3, 3, 1, 1, EXPLICIT, 2, 0, 0, 3},
    {"9x10, 3x3 s2 explicit t0 b1 l1 r0", 9, 10, 7, 20, 3, 3, 2, 1, EXPLICIT, 0, 1, 1, 0},
    {"6x5, 1x1 pointwise", 6, 5, 13, 40, 1, 1, 1, 1, VALID, 0, 0, 0, 0},
    {"7x7, 1x1 s2", 7, 7, 8, 9, 1, 1, 2, 1, VALID, 0, 0, 0, 0},
    {"10x10 Cin 384, 3x3 same (several im2col tiles)", 10, 10, 384, 20, 3, 3, 1, 1, SAME, 0, 0,
     0, 0},
    /* first layers, which the AVX-512 small-Cin kernel reads in place: rows and columns inside
     * the image, padded edges on every side, odd output widths, Cout past one panel */
    {"23x29 Cin 3, 3x3 same s2", 23, 29, 3, 32, 3, 3, 2, 1, SAME, 0, 0, 0, 0},
    {"40x37 Cin 3, 3x3 explicit t1 b1 l1 r1 s2", 40, 37, 3, 40, 3, 3, 2, 1, EXPLICIT, 1, 1, 1, 1},
    {"33x30 Cin 3, 7x7 same s2, Cout 64", 33, 30, 3, 64, 7, 7, 2, 1, SAME, 0, 0, 0, 0},
    {"17x19 Cin 4, 3x3 valid, Cout 70", 17, 19, 4, 70, 3, 3, 1, 1, VALID, 0, 0, 0, 0},
    {"21x16 Cin 1, 5x5 same, Cout 8", 21, 16, 1, 8, 5, 5, 1, 1, SAME, 0, 0, 0, 0},
    {"224x224 Cin 3, 3x3 same s2 (MobileNetV2 stem)", 224, 224, 3, 32, 3, 3, 2, 1, SAME, 0, 0,
     0, 0},
};

static int out_size(int in, int k, int s, int d, int pad, int p0, int p1, int *before)
{
    int eff = (k - 1) * d + 1;
    *before = 0;
    if (pad == VALID)
        return (in - eff) / s + 1;
    if (pad == EXPLICIT) {
        *before = p0;
        return (in + p0 + p1 - eff) / s + 1;
    }
    int out = (in + s - 1) / s, total = (out - 1) * s + eff - in;
    *before = total > 0 ? total / 2 : 0; /* TF: the odd pixel goes bottom/right */
    return out;
}

static void conv_exact(const mk_window *g, const float *x, const float *w, const float *b,
                       double *exact, double *mag)
{
    int co = g->out_c, ci = g->in_c;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int o = 0; o < co; o++) {
                double s = b ? b[o] : 0.0, a = fabs(s);
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->sh - g->pad_top + ky * g->dh;
                        int ix = ox * g->sw - g->pad_left + kx * g->dw;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                            continue;
                        for (int c = 0; c < ci; c++) {
                            double p = (double)x[((size_t)iy * g->in_w + ix) * ci + c] *
                                       w[(((size_t)ky * g->kw + kx) * ci + c) * co + o];
                            s += p;
                            a += fabs(p);
                        }
                    }
                size_t i = ((size_t)oy * g->out_w + ox) * co + o;
                exact[i] = s;
                mag[i] = a;
            }
}

static void test_conv_case(const conv_case *cc, int with_bias)
{
    mk_window g = {cc->in_h, cc->in_w, cc->cin, 0, 0, cc->cout, cc->kh, cc->kw, cc->s, cc->s,
                   0, 0, cc->d, cc->d};
    g.out_h = out_size(cc->in_h, cc->kh, cc->s, cc->d, cc->pad, cc->pt, cc->pb, &g.pad_top);
    g.out_w = out_size(cc->in_w, cc->kw, cc->s, cc->d, cc->pad, cc->pl, cc->pr, &g.pad_left);
    int K = cc->kh * cc->kw * cc->cin, P = g.out_h * g.out_w;
    size_t ny = (size_t)P * (size_t)cc->cout;
    float *x = rand_floats((size_t)cc->in_h * cc->in_w * cc->cin);
    float *w = rand_floats((size_t)K * cc->cout), *b = with_bias ? rand_floats(cc->cout) : NULL;
    double *exact = malloc(ny * sizeof *exact), *mag = malloc(ny * sizeof *mag);
    /* GUARD cells after y: a write past the last pixel fails instead of corrupting the heap. */
    enum { GUARD = 32 };
    float *y = malloc((ny + GUARD) * sizeof *y), *y2 = malloc((ny + GUARD) * sizeof *y2);
    float *yd = malloc(ny * sizeof *yd);
    conv_exact(&g, x, w, b, exact, mag);
    size_t sf = mk_f32_conv_scratch_floats(&g);
    char what[256];
    snprintf(what, sizeof what, "conv %s: scratch %zu floats <= 1 MB", cc->name, sf);
    verdict(sf * sizeof(float) <= (1u << 20), what);
    float *scratch = sf ? malloc(sf * sizeof *scratch) : NULL;
    for (int vi = 0; vi < NVARIANTS; vi++) {
        const variant *v = &variants[vi];
        if (!v->runs)
            continue;
        float *packed = alloc64(v->pack_floats(K, cc->cout));
        v->pack(K, cc->cout, w, packed);
        for (int ai = 0; ai < NACTS; ai++) {
            const mk_activation *a = &acts[ai];
            fill(y, ny + GUARD, GUARD_VALUE);
            v->conv(&g, x, packed, b, a, y, scratch, 0, P);
            mk_conv2d_direct(&g, x, w, b, a, yd);
            int ok = 1, ok_direct = 1;
            for (size_t i = ny; i < ny + GUARD; i++)
                ok &= y[i] == GUARD_VALUE;
            for (size_t i = 0; i < ny; i++) {
                double ref = act_d(a, exact[i]), t = bound(K, mag[i], ref);
                ok &= fabs((double)y[i] - ref) <= t;
                ok_direct &= fabs((double)y[i] - (double)yd[i]) <= 2.0 * t;
            }
            snprintf(what, sizeof what, "%s conv %s %s %s", v->name, cc->name,
                     b ? "bias" : "nobias", act_names[ai]);
            verdict(ok, what);
            strcat(what, " vs mk_conv2d_direct");
            verdict(ok_direct, what);
            /* Pixels in three pieces, the middle one not tile-aligned. */
            int ps[4] = {0, P / 3, (2 * P + 2) / 3, P};
            fill(y2, ny + GUARD, GUARD_VALUE);
            for (int i = 0; i < 3; i++)
                v->conv(&g, x, packed, b, a, y2, scratch, ps[i], ps[i + 1]);
            snprintf(what, sizeof what, "%s conv %s %s: pixel sub-ranges compose exactly",
                     v->name, cc->name, act_names[ai]);
            verdict(memcmp(y, y2, (ny + GUARD) * sizeof *y) == 0, what);
            if (vi == 1 && mk_conv_smallc_fits(&g)) {
                /* whole range, then ranges cut mid-row and one pixel long */
                fill(y2, ny + GUARD, GUARD_VALUE);
                mk_f32_conv_smallc_avx512(&g, x, packed, b, a, y2, scratch, 0, P);
                snprintf(what, sizeof what, "avx512 smallc conv %s %s %s: bit-identical to im2col",
                         cc->name, b ? "bias" : "nobias", act_names[ai]);
                verdict(memcmp(y, y2, (ny + GUARD) * sizeof *y) == 0, what);
                int cuts[6] = {0, 1, P / 3, P / 3 + 1, (2 * P + 2) / 3, P};
                fill(y2, ny + GUARD, GUARD_VALUE);
                for (int i = 0; i < 5; i++)
                    mk_f32_conv_smallc_avx512(&g, x, packed, b, a, y2, scratch, cuts[i],
                                              cuts[i + 1]);
                snprintf(what, sizeof what, "avx512 smallc conv %s %s: sub-ranges compose exactly",
                         cc->name, act_names[ai]);
                verdict(memcmp(y, y2, (ny + GUARD) * sizeof *y) == 0, what);
            }
        }
        free(packed);
    }
    free(x), free(w), free(b), free(exact), free(mag), free(y), free(y2), free(yd), free(scratch);
}

static void test_conv(void)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++)
        for (int with_bias = 0; with_bias < 2; with_bias++)
            test_conv_case(&conv_cases[i], with_bias);
}

/* ---- benchmark -------------------------------------------------------------------------------
 * One row per layer shape (GEMM: M = pixels, K = Cin * taps, N = Cout). Column 0 is OpenBLAS as
 * the reference kernels call it (sgemm, or sgemv for one row; for conv rows mk_conv2d_ref, i.e.
 * im2col + sgemm + bias + activation); ours include the bias and a ReLU6 epilogue. The three are
 * timed in turn within each repetition and each figure is the median of the repetitions. */

typedef struct bench_shape {
    const char *name;
    int M, K, N;
    mk_window g; /* conv rows: in_h != 0 */
} bench_shape;

#define CONV(name, h, w, ci, co, k1, k2, s, oh, ow, pt, pl)                                      \
    {name, (oh) * (ow), (k1) * (k2) * (ci), co, {h, w, ci, oh, ow, co, k1, k2, s, s, pt, pl, 1, 1}}
static const bench_shape bench_shapes[] = {
    {"mnv2 12544x32->16", 12544, 32, 16, {0}},  {"mnv2 12544x16->96", 12544, 16, 96, {0}},
    {"mnv2 3136x24->144", 3136, 24, 144, {0}},  {"mnv2 3136x144->24", 3136, 144, 24, {0}},
    {"mnv2 784x32->192", 784, 32, 192, {0}},    {"mnv2 784x192->32", 784, 192, 32, {0}},
    {"mnv2 196x64->384", 196, 64, 384, {0}},    {"mnv2 196x384->64", 196, 384, 64, {0}},
    {"mnv2 196x96->576", 196, 96, 576, {0}},    {"mnv2 49x160->960", 49, 160, 960, {0}},
    {"mnv2 49x960->160", 49, 960, 160, {0}},    {"mnv2 49x320->1280", 49, 320, 1280, {0}},
    {"dense 1x1280->5", 1, 1280, 5, {0}},       {"dense 1x2048->1000", 1, 2048, 1000, {0}},
    {"dense 1x1280->256", 1, 1280, 256, {0}},   {"dense 1x1280->100", 1, 1280, 100, {0}},
    {"incv3 22201x27->32", 22201, 27, 32, {0}}, {"incv3 21609x288->64", 21609, 288, 64, {0}},
    {"incv3 1225x576->96", 1225, 576, 96, {0}}, {"incv3 1225x1200->64", 1225, 1200, 64, {0}},
    {"incv3 289x1344->192", 289, 1344, 192, {0}}, {"incv3 64x3456->384", 64, 3456, 384, {0}},
    CONV("conv 299x299x3 3x3/2 ->32", 299, 299, 3, 32, 3, 3, 2, 149, 149, 0, 0),
    CONV("conv mnv2 224x224x3 3x3/2 ->32", 224, 224, 3, 32, 3, 3, 2, 112, 112, 0, 0),
    CONV("conv 35x35x64 3x3 ->96", 35, 35, 64, 96, 3, 3, 1, 35, 35, 1, 1),
    CONV("conv 35x35x48 5x5 ->64", 35, 35, 48, 64, 5, 5, 1, 35, 35, 2, 2),
    CONV("conv 17x17x128 1x7 ->128", 17, 17, 128, 128, 1, 7, 1, 17, 17, 0, 3),
    CONV("conv 17x17x192 7x1 ->192", 17, 17, 192, 192, 7, 1, 1, 17, 17, 3, 0),
    CONV("conv 8x8x384 3x3 ->384", 8, 8, 384, 384, 3, 3, 1, 8, 8, 1, 1),
    /* ResNet50V2 and Xception: big early 1x1s and the small-M 7x7 stage. */
    {"rn50 3136x64->256", 3136, 64, 256, {0}},    {"rn50 784x512->128", 784, 512, 128, {0}},
    {"rn50 196x1024->256", 196, 1024, 256, {0}},  {"rn50 49x2048->512", 49, 2048, 512, {0}},
    {"rn50 49x512->2048", 49, 512, 2048, {0}},    {"xcep 361x728->728", 361, 728, 728, {0}},
    {"xcep 100x1536->2048", 100, 1536, 2048, {0}},
    CONV("conv rn50 56x56x64 3x3 ->64", 56, 56, 64, 64, 3, 3, 1, 56, 56, 1, 1),
    CONV("conv rn50 14x14x256 3x3 ->256", 14, 14, 256, 256, 3, 3, 1, 14, 14, 1, 1),
    CONV("conv rn50 7x7x512 3x3 ->512", 7, 7, 512, 512, 3, 3, 1, 7, 7, 1, 1),
};

typedef struct bench_run {
    const bench_shape *s;
    const float *x, *w, *b, *packed[NVARIANTS];
    float *y, *scratch;
} bench_run;

static const mk_activation relu6 = {MK_ACT_RELU, 0.0f, 6.0f};

static void bench_once(const bench_run *r, int which)
{
    const bench_shape *s = r->s;
    int conv = s->g.in_h != 0;
    if (which == 0 && conv)
        mk_conv2d_ref(&s->g, r->x, r->w, r->b, &relu6, r->y, r->scratch);
    else if (which == 0 && s->M == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, s->K, s->N, 1.0f, r->w, s->N, r->x, 1, 0.0f, r->y,
                    1);
    else if (which == 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1.0f, r->x, s->K,
                    r->w, s->N, 0.0f, r->y, s->N);
    else if (conv)
        variants[which - 1].conv(&s->g, r->x, r->packed[which - 1], r->b, &relu6, r->y,
                                 r->scratch, 0, s->M);
    else
        variants[which - 1].gemm(s->K, s->N, r->x, (size_t)s->K, r->packed[which - 1], r->b,
                                 &relu6, r->y, (size_t)s->N, 0, s->M, 0, s->N);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REPS 7
static void bench_shape_row(const bench_shape *s)
{
    int conv = s->g.in_h != 0;
    size_t nx = conv ? (size_t)s->g.in_h * s->g.in_w * s->g.in_c : (size_t)s->M * s->K;
    bench_run r = {s, rand_floats(nx), rand_floats((size_t)s->K * s->N), rand_floats(s->N),
                   {0}, malloc((size_t)s->M * s->N * sizeof(float)), NULL};
    if (conv) {
        size_t a = mk_conv2d_scratch(&s->g), c = mk_f32_conv_scratch_floats(&s->g);
        r.scratch = malloc((a > c ? a : c) * sizeof(float) + 64);
    }
    int ok[1 + NVARIANTS] = {1};
    for (int v = 0; v < NVARIANTS; v++) {
        ok[v + 1] = variants[v].runs;
        if (!ok[v + 1])
            continue;
        float *p = alloc64(variants[v].pack_floats(s->K, s->N));
        variants[v].pack(s->K, s->N, r.w, p);
        r.packed[v] = p;
    }
    double flops = 2.0 * s->M * s->K * s->N, ms[1 + NVARIANTS][REPS];
    int iters = (int)(4e-3 * 20e9 / flops) + 1; /* ~4 ms per timing at 20 GFLOP/s */
    for (int w = 0; w <= NVARIANTS; w++)
        if (ok[w])
            bench_once(&r, w); /* warm-up: page faults, caches */
    for (int rep = 0; rep < REPS; rep++)
        for (int w = 0; w <= NVARIANTS; w++) {
            if (!ok[w])
                continue;
            double t0 = now();
            for (int i = 0; i < iters; i++)
                bench_once(&r, w);
            ms[w][rep] = (now() - t0) * 1e3 / iters;
        }
    double med[1 + NVARIANTS];
    int best = 0;
    for (int w = 0; w <= NVARIANTS; w++) {
        med[w] = INFINITY;
        if (!ok[w])
            continue;
        qsort(ms[w], REPS, sizeof(double), cmp_double);
        med[w] = ms[w][REPS / 2];
        if (med[w] < med[best])
            best = w;
    }
    printf("%-28s %9.4f %9.4f %9.4f %7.1f %7.1f %7.1f  %-8s %5.2fx\n", s->name, med[0], med[1],
           med[2], flops / med[0] * 1e-6, flops / med[1] * 1e-6, flops / med[2] * 1e-6,
           best ? variants[best - 1].name : "openblas",
           med[0] / (med[1] < med[2] ? med[1] : med[2]));
    free((void *)r.x), free((void *)r.w), free((void *)r.b), free(r.y), free(r.scratch);
    for (int v = 0; v < NVARIANTS; v++)
        free((void *)r.packed[v]);
}

static void bench(const char *filter)
{
    openblas_set_num_threads(1);
    printf("%-28s %9s %9s %9s %7s %7s %7s  %-8s %s\n", "shape (MxK->N)", "blas ms", "avx2 ms",
           "avx512 ms", "GF/s", "avx2", "avx512", "winner", "blas/best-own");
    for (size_t i = 0; i < sizeof bench_shapes / sizeof *bench_shapes; i++)
        if (!filter || strstr(bench_shapes[i].name, filter))
            bench_shape_row(&bench_shapes[i]);
}

int main(int argc, char **argv)
{
    detect_cpu();
    for (int v = 0; v < NVARIANTS; v++)
        if (!variants[v].runs)
            printf("SKIPPED %s: CPU lacks %s\n", variants[v].name, variants[v].isa);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        bench(argc > 2 ? argv[2] : NULL);
        return 0;
    }
    test_gemm();
    test_conv();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
