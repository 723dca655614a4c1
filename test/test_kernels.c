/* Kernel tests: every op against a float64 reference written out here as plain loops.
 *
 * Each case runs the kernel on fixed-seed random data of an awkward shape (odd sizes, channel
 * counts that are not multiples of 8, strides 1 and 2, asymmetric padding, dilation, depth
 * multipliers) and compares every output value with the reference. Output buffers start out
 * NaN, so a value the kernel forgot to write fails, and are followed by guard cells, so a write
 * past the end fails too. Kernels in the dispatch table that differ from the reference ones
 * (future SIMD variants) are run through the same cases.
 *
 * How close is close enough
 * -------------------------
 * The tolerance is a rounding-error bound, not a fudge factor. With u = 2^-24 (float's unit
 * roundoff), a float sum of n terms computed in ANY order (so BLAS blocking, FMA and SIMD lanes
 * are all covered) is within (n-1)*u*sum|terms| of the exact sum, and each product adds u of its
 * own magnitude (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., 3.1, 4.2).
 * That worst case grows like K * mag, so for long dot products it would hide a missing tap;
 * there we use the probabilistic bound lambda*sqrt(n)*u*sum|terms| (Higham & Mary, SIAM J. Sci.
 * Comput. 41(5), 2019, Thm 2.4: with independent rounding errors it fails with probability
 * below 2n*exp(-lambda^2/2), ~1e-12 per value at lambda = 8; with a fixed seed a passing case
 * stays passing). A pre-activation value built from K products plus a bias is checked against
 *     d = min(K + 2, 8 sqrt(K + 2)) * u * mag,    mag = |bias| + sum |x*w|,
 * which the reference computes alongside the exact value (the +2 covers the products and
 * second-order terms).
 * The activation f then turns an input error d into at most |f'| * d (taking the largest slope
 * within +-d, which covers the kinks of ReLU and hard sigmoid), and adds its own rounding: a few
 * ulps for expf/tanhf/erfcf and the arithmetic around them, allowed as 16 u * |f|. Inside the
 * activation, constants such as 0.2f and 1/sqrt(2) are not exact, which acts like a relative
 * error of u on its input; that is added to d. Values below 1e-37 (float's subnormal range,
 * where precision is absolute) are compared absolutely.
 *
 * Why not a flat epsilon: the bound scales with the work done, so large-K convolutions do not
 * fail spuriously, yet it stays well below the effect of an indexing bug (one tap too many or
 * too few moves an output by ~ mag/K), and it is tight for ops that should be exact (pooling
 * maxima, pad, concat: tolerance 0) or nearly so (global average pooling accumulates in
 * double: 2 u of the result).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define U ((double)FLT_EPSILON / 2.0) /* unit roundoff of float */
#define ACT_ULPS 16.0
#define TINY 1e-37
#define GUARD 16
#define GUARD_VALUE 1234.5f

/* ---- bookkeeping --------------------------------------------------------------------------- */

typedef struct op_stat {
    const char *op;
    double max_err, max_ratio;
} op_stat;

typedef struct suite {
    int passed, failed;
    int n_stats;
    op_stat stats[32];
} suite;

static op_stat *stat_for(suite *t, const char *op)
{
    for (int i = 0; i < t->n_stats; i++)
        if (strcmp(t->stats[i].op, op) == 0)
            return &t->stats[i];
    op_stat *s = &t->stats[t->n_stats++];
    *s = (op_stat){op, 0.0, 0.0};
    return s;
}

static void record(suite *t, int ok, const char *op, const char *desc, const char *detail)
{
    if (ok)
        t->passed++;
    else
        t->failed++;
    printf("%s %-16s %-58s %s\n", ok ? "ok  " : "FAIL", op, desc, detail);
}

/* ---- fixed-seed PRNG (splitmix64), so every run sees the same data ------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next_u64(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi), from 24 random bits. */
static float uniform(rng *r, float lo, float hi)
{
    float f = (float)(next_u64(r) >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * f;
}

static float *rand_buf(rng *r, size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = uniform(r, lo, hi);
    return p;
}

/* Output buffer: n NaNs (a value never written fails the comparison) then guard cells. */
static float *out_buf(size_t n)
{
    float *p = malloc((n + GUARD) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    for (size_t i = 0; i < GUARD; i++)
        p[n + i] = GUARD_VALUE;
    return p;
}

static double *dbuf(size_t n)
{
    return calloc(n ? n : 1, sizeof(double));
}

/* ---- comparison ---------------------------------------------------------------------------- */

/* Compares y[i] with ref[i] within tol[i] (tol == NULL: exact) and checks the guard cells.
 * Returns the largest |y - ref| so callers can compare two kernels with each other too. */
static double check(suite *t, const char *op, const char *desc, const float *y, const double *ref,
                    const double *tol, size_t n)
{
    double max_err = 0.0, max_ratio = 0.0;
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - ref[i]);
        double lim = tol ? tol[i] : 0.0;
        if (!(err <= lim)) { /* also catches NaN */
            if (bad == n)
                bad = i;
            continue;
        }
        if (err > max_err)
            max_err = err;
        if (lim > 0.0 && err / lim > max_ratio)
            max_ratio = err / lim;
    }
    int guard_ok = 1;
    for (size_t i = 0; i < GUARD; i++)
        guard_ok &= y[n + i] == GUARD_VALUE;

    char detail[160];
    if (bad < n)
        snprintf(detail, sizeof detail, "at [%zu]: got %.9g want %.9g tol %.3g", bad,
                 (double)y[bad], ref[bad], tol ? tol[bad] : 0.0);
    else if (!guard_ok)
        snprintf(detail, sizeof detail, "wrote past the end of the output");
    else
        snprintf(detail, sizeof detail, "max|err| %.2e  err/tol %.3f", max_err, max_ratio);
    record(t, bad == n && guard_ok, op, desc, detail);

    op_stat *s = stat_for(t, op);
    if (max_err > s->max_err)
        s->max_err = max_err;
    if (max_ratio > s->max_ratio)
        s->max_ratio = max_ratio;
    return max_err;
}

/* ---- activations in double: value and slope -------------------------------------------- */

static const char *act_name(const mk_activation *a)
{
    switch (a->code) {
    case MK_ACT_LINEAR: return "linear";
    case MK_ACT_RELU:
        if (a->alpha != 0.0f)
            return isinf(a->max) ? "leaky_relu" : "leaky_relu_clip";
        return isinf(a->max) ? "relu" : "relu6";
    case MK_ACT_SIGMOID: return "sigmoid";
    case MK_ACT_TANH: return "tanh";
    case MK_ACT_SWISH: return "swish";
    case MK_ACT_SOFTMAX: return "softmax";
    case MK_ACT_ELU: return "elu";
    case MK_ACT_HARD_SIGMOID: return "hard_sigmoid";
    case MK_ACT_HARD_SIGMOID_K2: return "hard_sigmoid_k2";
    case MK_ACT_GELU: return "gelu";
    default: return "?";
    }
}

static double sigmoid(double s)
{
    return 1.0 / (1.0 + exp(-s));
}

/* The definitions, as FORMAT.md and Keras state them. */
static double act_f(const mk_activation *a, double s)
{
    double alpha = a->alpha, hi = a->max;
    switch (a->code) {
    case MK_ACT_RELU: return fmin(fmax(s, 0.0) + alpha * fmin(s, 0.0), hi);
    case MK_ACT_SIGMOID: return sigmoid(s);
    case MK_ACT_TANH: return tanh(s);
    case MK_ACT_SWISH: return s * sigmoid(s);
    case MK_ACT_ELU: return s > 0.0 ? s : alpha * expm1(s);
    case MK_ACT_HARD_SIGMOID: return fmin(fmax(s / 6.0 + 0.5, 0.0), 1.0);    /* Keras 3 */
    case MK_ACT_HARD_SIGMOID_K2: return fmin(fmax(0.2 * s + 0.5, 0.0), 1.0); /* Keras 2 */
    case MK_ACT_GELU: return 0.5 * s * erfc(-s / sqrt(2.0));
    default: return s;
    }
}

/* |f'(s)| */
static double act_slope(const mk_activation *a, double s)
{
    double alpha = fabs(a->alpha);
    switch (a->code) {
    case MK_ACT_RELU:
        if (act_f(a, s) >= a->max)
            return 0.0;
        return s > 0.0 ? 1.0 : alpha;
    case MK_ACT_SIGMOID: return sigmoid(s) * (1.0 - sigmoid(s));
    case MK_ACT_TANH: return 1.0 - tanh(s) * tanh(s);
    case MK_ACT_SWISH: return fabs(sigmoid(s) * (1.0 + s * (1.0 - sigmoid(s))));
    case MK_ACT_ELU: return s > 0.0 ? 1.0 : alpha * exp(s);
    case MK_ACT_HARD_SIGMOID: return s > -3.0 && s < 3.0 ? 1.0 / 6.0 : 0.0;
    case MK_ACT_HARD_SIGMOID_K2: return s > -2.5 && s < 2.5 ? 0.2 : 0.0;
    case MK_ACT_GELU:
        return fabs(0.5 * erfc(-s / sqrt(2.0)) + s * exp(-0.5 * s * s) / 2.5066282746310002); /* sqrt(2 pi) */
    default: return 1.0;
    }
}

/* From exact pre-activation values s[i], each computed in float with error at most d[i]
 * (d == NULL: exact inputs), to expected outputs ref[i] and tolerances tol[i]. */
static void expect(const mk_activation *a, const double *s, const double *d, size_t n,
                   size_t channels, double *ref, double *tol)
{
    if (a->code == MK_ACT_SOFTMAX) {
        /* y_i = e^{s_i} / sum_j e^{s_j}. An error e_j in each (s_j - max) moves log y_i by at
         * most e_i + sum_j y_j e_j; the kernel's subtraction adds u*|s_j - max| to e_j (an
         * error in the max itself cancels: softmax is shift-invariant). */
        for (size_t r = 0; r + channels <= n; r += channels) {
            double mx = s[r], sum = 0.0, mixed = 0.0;
            for (size_t i = 1; i < channels; i++)
                mx = fmax(mx, s[r + i]);
            for (size_t i = 0; i < channels; i++)
                sum += exp(s[r + i] - mx);
            for (size_t i = 0; i < channels; i++) {
                ref[r + i] = exp(s[r + i] - mx) / sum;
                tol[r + i] = (d ? d[r + i] : 0.0) + U * fabs(s[r + i] - mx);
                mixed += ref[r + i] * tol[r + i];
            }
            for (size_t i = 0; i < channels; i++)
                tol[r + i] = ref[r + i] * (tol[r + i] + mixed + ACT_ULPS * U) + TINY;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double dd = (d ? d[i] : 0.0) + 2.0 * U * fabs(s[i]);
        double slope = fmax(act_slope(a, s[i]), fmax(act_slope(a, s[i] - dd), act_slope(a, s[i] + dd)));
        ref[i] = act_f(a, s[i]);
        tol[i] = slope * dd + ACT_ULPS * U * fabs(ref[i]) + TINY;
    }
}

/* Pre-activation error bound for a value built from k products (or terms) of total magnitude
 * mag: the worst case for short sums, the probabilistic one for long ones (header comment). */
#define LAMBDA 8.0
static double sum_bound(size_t k, double mag)
{
    double n = (double)(k + 2);
    return fmin(n, LAMBDA * sqrt(n)) * U * mag;
}

static mk_activation act_of(int code, float alpha, float hi)
{
    return (mk_activation){code, alpha, hi};
}

static mk_activation linear(void)
{
    return act_of(MK_ACT_LINEAR, 0.0f, INFINITY);
}

/* ---- activation ---------------------------------------------------------------------------- */

static void test_activation(suite *t, rng *r, mk_activation a, size_t rows, size_t channels)
{
    size_t n = rows * channels;
    float *x = rand_buf(r, n, -8.0f, 8.0f);
    /* Edge values first: zero, tiny, the hard-sigmoid knees, ReLU6's clip, and values that
     * overflow a naive exp() (sigmoid/softmax must stay finite and exact-ish there). */
    static const float edges[] = {0.0f, -0.0f,  1e-3f, -1e-3f, 2.5f,   -2.5f, 3.0f, -3.0f,
                                  6.0f, -6.0f, 20.0f, -20.0f, 100.0f, -100.0f, 95.0f, 1000.0f};
    for (size_t i = 0; i < n && i < sizeof edges / sizeof edges[0]; i++)
        x[i] = edges[i];
    double *s = dbuf(n), *ref = dbuf(n), *tol = dbuf(n);
    for (size_t i = 0; i < n; i++)
        s[i] = x[i];
    expect(&a, s, NULL, n, channels, ref, tol);

    float *y = out_buf(n);
    memcpy(y, x, n * sizeof *y);
    mk_activation_ref(&a, y, n, channels);
    char desc[96];
    snprintf(desc, sizeof desc, "%s alpha=%g max=%g, %zu rows of %zu", act_name(&a),
             (double)a.alpha, (double)a.max, rows, channels);
    check(t, "activation", desc, y, ref, tol, n);
    free(x), free(y), free(s), free(ref), free(tol);
}

static void test_activations(suite *t, rng *r)
{
    const float inf = INFINITY;
    test_activation(t, r, act_of(MK_ACT_LINEAR, 0.0f, inf), 7, 5);
    test_activation(t, r, act_of(MK_ACT_RELU, 0.0f, inf), 7, 5);
    test_activation(t, r, act_of(MK_ACT_RELU, 0.0f, 6.0f), 7, 5);
    test_activation(t, r, act_of(MK_ACT_RELU, 0.3f, inf), 7, 5);
    test_activation(t, r, act_of(MK_ACT_RELU, 0.1f, 4.5f), 7, 5);
    test_activation(t, r, act_of(MK_ACT_SIGMOID, 0.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_TANH, 0.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_SWISH, 0.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_ELU, 1.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_ELU, 0.5f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_HARD_SIGMOID, 0.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_HARD_SIGMOID_K2, 0.0f, inf), 13, 11);
    test_activation(t, r, act_of(MK_ACT_GELU, 0.0f, inf), 13, 11);
    /* Softmax normalizes each row of `channels` on its own: rows of 5 (with 1000 and 95 in the
     * first row, which would overflow exp without the max subtraction), a row of 1 (always 1),
     * and one long classifier row. */
    test_activation(t, r, act_of(MK_ACT_SOFTMAX, 0.0f, inf), 7, 5);
    test_activation(t, r, act_of(MK_ACT_SOFTMAX, 0.0f, inf), 3, 1);
    test_activation(t, r, act_of(MK_ACT_SOFTMAX, 0.0f, inf), 1, 1000);

    /* Spot values straight from the definitions. */
    struct {
        mk_activation a;
        float x, want;
    } spots[] = {
        {act_of(MK_ACT_HARD_SIGMOID, 0, inf), 1.5f, 0.75f},     /* Keras 3: 1.5/6 + 0.5 */
        {act_of(MK_ACT_HARD_SIGMOID, 0, inf), 2.75f, 2.75f / 6.0f + 0.5f},
        {act_of(MK_ACT_HARD_SIGMOID_K2, 0, inf), 1.5f, 0.8f},   /* Keras 2: 0.2*1.5 + 0.5 */
        {act_of(MK_ACT_HARD_SIGMOID_K2, 0, inf), 2.75f, 1.0f},  /* saturated at 2.5 */
        {act_of(MK_ACT_RELU, 0, 6.0f), 7.0f, 6.0f},
        {act_of(MK_ACT_RELU, 0.2f, inf), -2.0f, -0.4f},
        {act_of(MK_ACT_ELU, 1.0f, inf), -1.0f, (float)(exp(-1.0) - 1.0)},
        {act_of(MK_ACT_SIGMOID, 0, inf), -100.0f, (float)(1.0 / (1.0 + exp(100.0)))},
    };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        float y = spots[i].x;
        mk_activation_ref(&spots[i].a, &y, 1, 1);
        double want = spots[i].want;
        int ok = fabs((double)y - want) <= 2.0 * U * fabs(want) + TINY;
        char desc[96], detail[96];
        snprintf(desc, sizeof desc, "%s(%g) = %.9g", act_name(&spots[i].a), (double)spots[i].x,
                 want);
        snprintf(detail, sizeof detail, "got %.9g", (double)y);
        record(t, ok, "activation", desc, detail);
    }
}

/* ---- conv2d -------------------------------------------------------------------------------- */

typedef struct conv_case {
    int h, w, cin, cout;
    int kh, kw, sh, sw;
    int pt, pb, pl, pr;
    int dh, dw;
    int bias;
    mk_activation act;
} conv_case;

static mk_window window_of(const conv_case *c)
{
    int eh = (c->kh - 1) * c->dh + 1, ew = (c->kw - 1) * c->dw + 1;
    return (mk_window){.in_h = c->h, .in_w = c->w, .in_c = c->cin,
                       .out_h = (c->h + c->pt + c->pb - eh) / c->sh + 1,
                       .out_w = (c->w + c->pl + c->pr - ew) / c->sw + 1,
                       .out_c = c->cout, .kh = c->kh, .kw = c->kw, .sh = c->sh, .sw = c->sw,
                       .pad_top = c->pt, .pad_left = c->pl, .dh = c->dh, .dw = c->dw};
}

static void describe(char *buf, size_t size, const conv_case *c, const mk_window *g,
                     const char *extra)
{
    snprintf(buf, size, "%dx%dx%d k%dx%d s%d,%d p(%d,%d,%d,%d) d%d,%d%s -> %dx%dx%d %s%s", c->h,
             c->w, c->cin, c->kh, c->kw, c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, c->dh, c->dw,
             extra, g->out_h, g->out_w, g->out_c, act_name(&c->act), c->bias ? "" : " nobias");
}

/* out[oy,ox,co] = b[co] + sum over ky,kx,ci of x[oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, ci]
 *                 * w[ky,kx,ci,co], taps outside the input contributing zero. */
static void conv_reference(const mk_window *g, const float *x, const float *w, const float *b,
                           double *s, double *d)
{
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int co = 0; co < g->out_c; co++) {
                double acc = b ? b[co] : 0.0, mag = fabs(acc);
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++)
                        for (int ci = 0; ci < g->in_c; ci++) {
                            int iy = oy * g->sh - g->pad_top + ky * g->dh;
                            int ix = ox * g->sw - g->pad_left + kx * g->dw;
                            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                                continue;
                            double p = (double)x[(iy * g->in_w + ix) * g->in_c + ci] *
                                       w[((ky * g->kw + kx) * g->in_c + ci) * g->out_c + co];
                            acc += p;
                            mag += fabs(p);
                        }
                size_t o = ((size_t)oy * g->out_w + ox) * g->out_c + co;
                s[o] = acc;
                d[o] = sum_bound((size_t)g->kh * g->kw * g->in_c, mag);
            }
}

static void test_conv(suite *t, rng *r, conv_case c)
{
    mk_window g = window_of(&c);
    size_t nx = (size_t)c.h * c.w * c.cin, nw = (size_t)c.kh * c.kw * c.cin * c.cout;
    size_t ny = (size_t)g.out_h * g.out_w * c.cout;
    /* Weights scaled by 1/sqrt(K) keep pre-activations O(1), where activations are curved. */
    float ws = (float)sqrt(3.0 / (double)(c.kh * c.kw * c.cin));
    float *x = rand_buf(r, nx, -1.0f, 1.0f), *w = rand_buf(r, nw, -ws, ws);
    float *b = c.bias ? rand_buf(r, (size_t)c.cout, -0.5f, 0.5f) : NULL;
    double *s = dbuf(ny), *d = dbuf(ny), *ref = dbuf(ny), *tol = dbuf(ny);
    conv_reference(&g, x, w, b, s, d);
    expect(&c.act, s, d, ny, (size_t)c.cout, ref, tol);

    /* Exactly the scratch the kernel asked for, so any overrun shows (guard / ASan). */
    size_t ns = mk_conv2d_scratch(&g);
    float *scratch = ns ? out_buf(ns) : NULL;
    char desc[160], extra[48];
    snprintf(extra, sizeof extra, "%s", ns ? "" : " 1x1-direct-gemm");
    describe(desc, sizeof desc, &c, &g, extra);

    float *y_blas = out_buf(ny), *y_direct = out_buf(ny);
    mk_conv2d_ref(&g, x, w, b, &c.act, y_blas, scratch);
    check(t, "conv2d_ref", desc, y_blas, ref, tol, ny);
    if (scratch) {
        int ok = 1;
        for (size_t i = 0; i < GUARD; i++)
            ok &= scratch[ns + i] == GUARD_VALUE;
        if (!ok)
            record(t, 0, "conv2d_ref", desc, "wrote past the end of its scratch");
    }
    mk_conv2d_direct(&g, x, w, b, &c.act, y_direct);
    check(t, "conv2d_direct", desc, y_direct, ref, tol, ny);

    /* Both within the bound of the exact value, so within twice the bound of each other. */
    double *yd = dbuf(ny), *tol2 = dbuf(ny);
    for (size_t i = 0; i < ny; i++)
        yd[i] = y_direct[i], tol2[i] = 2.0 * tol[i];
    check(t, "conv2d ref~dir", desc, y_blas, yd, tol2, ny);

    free(x), free(w), free(b), free(s), free(d), free(ref), free(tol), free(scratch);
    free(y_blas), free(y_direct), free(yd), free(tol2);
}

static void test_convs(suite *t, rng *r)
{
    const float inf = INFINITY;
    const mk_activation lin = linear(), relu = act_of(MK_ACT_RELU, 0, inf),
                        relu6 = act_of(MK_ACT_RELU, 0, 6.0f);
    /*                 h   w  cin cout kh kw sh sw pt pb pl pr dh dw bias act */
    conv_case cases[] = {
        {7, 5, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, relu},               /* 'same', odd image */
        {13, 11, 5, 13, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 1, relu6},           /* TF 'same' s2 */
        {13, 11, 13, 5, 3, 3, 2, 2, 0, 1, 1, 2, 1, 1, 1, lin},             /* asymmetric pads */
        {13, 11, 17, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, lin},             /* pointwise */
        {13, 11, 17, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, relu6},           /* pointwise, no bias */
        {1, 1, 13, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, relu},             /* 1x1 image */
        {1, 1, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, lin},                /* 3x3 over 1x1 */
        {13, 11, 17, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, lin},             /* 1x1 stride 2 */
        {9, 9, 3, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, act_of(MK_ACT_SWISH, 0, inf)},
        {13, 11, 5, 5, 5, 5, 2, 2, 0, 0, 0, 0, 1, 1, 1, act_of(MK_ACT_TANH, 0, inf)}, /* valid */
        {13, 11, 5, 3, 1, 7, 1, 1, 0, 0, 3, 3, 1, 1, 1, act_of(MK_ACT_SIGMOID, 0, inf)},
        {13, 11, 5, 3, 7, 1, 1, 1, 3, 3, 0, 0, 1, 1, 1, act_of(MK_ACT_ELU, 1.0f, inf)},
        {13, 11, 3, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, act_of(MK_ACT_GELU, 0, inf)}, /* dilated */
        {13, 11, 5, 3, 3, 3, 1, 1, 2, 1, 0, 3, 2, 1, 1, lin},              /* dh 2, dw 1 */
        {7, 5, 3, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, act_of(MK_ACT_RELU, 0.3f, inf)},
        {5, 7, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, act_of(MK_ACT_SOFTMAX, 0, inf)},
        {8, 8, 4, 6, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, act_of(MK_ACT_HARD_SIGMOID, 0, inf)},
        /* Large enough that im2col runs in several tiles, the last one partial. */
        {70, 66, 32, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, relu6},
        /* K = 9216: the minimum tile (128 pixels) decides the scratch, 143 = 128 + 15. */
        {13, 11, 1024, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, lin},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_conv(t, r, cases[i]);

    /* Scratch is bounded: a 224x224x64 3x3 conv would need 28.9M floats of im2col at once. */
    conv_case big = {224, 224, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, lin};
    mk_window g = window_of(&big);
    size_t ns = mk_conv2d_scratch(&g);
    char detail[64];
    snprintf(detail, sizeof detail, "%zu floats", ns);
    record(t, ns > 0 && ns <= ((size_t)1 << 20) + 576, "conv2d_scratch",
           "224x224x64 k3x3 'same' stays near 4 MB", detail);
    conv_case pw = {56, 56, 24, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, lin};
    g = window_of(&pw);
    ns = mk_conv2d_scratch(&g);
    snprintf(detail, sizeof detail, "%zu floats", ns);
    record(t, ns == 0, "conv2d_scratch", "1x1 s1 unpadded needs none", detail);
}

/* ---- depthwise ----------------------------------------------------------------------------- */

/* out[oy,ox,c*M+m] = b[c*M+m] + sum over ky,kx of x[..., c] * w[ky,kx,c,m]. */
static void depthwise_reference(const mk_window *g, int mult, const float *x, const float *w,
                                const float *b, double *s, double *d)
{
    int cm = g->in_c * mult;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int c = 0; c < g->in_c; c++)
                for (int m = 0; m < mult; m++) {
                    int oc = c * mult + m;
                    double acc = b ? b[oc] : 0.0, mag = fabs(acc);
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int iy = oy * g->sh - g->pad_top + ky * g->dh;
                            int ix = ox * g->sw - g->pad_left + kx * g->dw;
                            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                                continue;
                            double p = (double)x[(iy * g->in_w + ix) * g->in_c + c] *
                                       w[((ky * g->kw + kx) * g->in_c + c) * mult + m];
                            acc += p;
                            mag += fabs(p);
                        }
                    size_t o = ((size_t)oy * g->out_w + ox) * cm + oc;
                    s[o] = acc;
                    d[o] = sum_bound((size_t)g->kh * g->kw, mag);
                }
}

static void test_depthwise(suite *t, rng *r, conv_case c, int mult)
{
    c.cout = c.cin * mult;
    mk_window g = window_of(&c);
    size_t nx = (size_t)c.h * c.w * c.cin, nw = (size_t)c.kh * c.kw * c.cout;
    size_t ny = (size_t)g.out_h * g.out_w * c.cout;
    float ws = (float)sqrt(3.0 / (double)(c.kh * c.kw));
    float *x = rand_buf(r, nx, -1.0f, 1.0f), *w = rand_buf(r, nw, -ws, ws);
    float *b = c.bias ? rand_buf(r, (size_t)c.cout, -0.5f, 0.5f) : NULL;
    double *s = dbuf(ny), *d = dbuf(ny), *ref = dbuf(ny), *tol = dbuf(ny);
    depthwise_reference(&g, mult, x, w, b, s, d);
    expect(&c.act, s, d, ny, (size_t)c.cout, ref, tol);

    char desc[160], extra[16];
    snprintf(extra, sizeof extra, " M%d", mult);
    describe(desc, sizeof desc, &c, &g, extra);
    float *y = out_buf(ny);
    mk_depthwise_ref(&g, mult, x, w, b, &c.act, y);
    check(t, "depthwise_ref", desc, y, ref, tol, ny);
    free(x), free(w), free(b), free(s), free(d), free(ref), free(tol), free(y);
}

static void test_depthwises(suite *t, rng *r)
{
    const float inf = INFINITY;
    const mk_activation lin = linear(), relu6 = act_of(MK_ACT_RELU, 0, 6.0f);
    /*                 h   w  cin cout kh kw sh sw pt pb pl pr dh dw bias act   (cout: C*M) */
    struct {
        conv_case c;
        int mult;
    } cases[] = {
        {{7, 5, 3, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, relu6}, 1},
        {{7, 5, 3, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, relu6}, 2},
        {{13, 11, 17, 0, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 1, relu6}, 1}, /* MobileNetV2 s2 */
        {{13, 11, 17, 0, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 1, lin}, 2},
        {{13, 11, 13, 0, 5, 5, 2, 2, 1, 2, 1, 2, 1, 1, 1, act_of(MK_ACT_SWISH, 0, inf)}, 1},
        {{13, 11, 5, 0, 3, 3, 1, 1, 0, 1, 1, 2, 1, 1, 1, lin}, 1}, /* asymmetric pads */
        {{13, 11, 5, 0, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, lin}, 2}, /* dilation 2 */
        {{1, 1, 5, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, lin}, 2},   /* 1x1 image */
        {{9, 7, 3, 0, 1, 7, 1, 1, 0, 0, 3, 3, 1, 1, 0, lin}, 2},   /* 1x7, no bias */
        {{9, 7, 3, 0, 7, 1, 1, 1, 3, 3, 0, 0, 1, 1, 1, act_of(MK_ACT_TANH, 0, inf)}, 1},
        {{13, 11, 8, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, act_of(MK_ACT_SOFTMAX, 0, inf)}, 1},
        {{14, 14, 96, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, relu6}, 1}, /* a real layer's width */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_depthwise(t, r, cases[i].c, cases[i].mult);
}

/* A folded BatchNormalization leaves depthwise layers with biases far larger than their tap
 * sums (the shift absorbs -mean * scale). The taps must be summed first and the bias added
 * once, as Keras does: then the result is within one rounding of its own magnitude plus the
 * (small) tap-sum error. Accumulating the taps onto the bias instead rounds every partial sum
 * at the bias's magnitude, ~3x more error here, which this bound rejects; on real MobileNets it
 * doubled the logits' distance to the float64 reference. */
static void test_depthwise_big_bias(suite *t, rng *r)
{
    mk_window g = {.in_h = 13, .in_w = 11, .in_c = 64, .out_h = 13, .out_w = 11, .out_c = 64,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pad_top = 1, .pad_left = 1,
                   .dh = 1, .dw = 1};
    size_t nx = 13 * 11 * 64, ny = nx;
    float *x = rand_buf(r, nx, -1.0f, 1.0f), *w = rand_buf(r, 9 * 64, -0.5f, 0.5f);
    float *b = rand_buf(r, 64, 700.0f, 1000.0f);
    double *s = dbuf(ny), *d = dbuf(ny), *tol = dbuf(ny);
    mk_window gz = g;
    depthwise_reference(&gz, 1, x, w, NULL, s, d); /* the tap sums alone, with their bound */
    for (size_t i = 0; i < ny; i++) {
        s[i] += b[i % 64];
        tol[i] = d[i] + U * fabs(s[i]) + TINY;
    }
    mk_activation lin = linear();
    float *y = out_buf(ny);
    mk_depthwise_ref(&g, 1, x, w, b, &lin, y);
    check(t, "depthwise_ref", "bias ~1000 >> taps: one rounding at the bias's size", y, s, tol,
          ny);
    free(x), free(w), free(b), free(s), free(d), free(tol), free(y);
}

/* ---- dense --------------------------------------------------------------------------------- */

static void test_dense(suite *t, rng *r, int rows, int cin, int cout, int bias, mk_activation a)
{
    size_t ny = (size_t)rows * cout;
    float ws = (float)sqrt(3.0 / cin);
    float *x = rand_buf(r, (size_t)rows * cin, -1.0f, 1.0f);
    float *w = rand_buf(r, (size_t)cin * cout, -ws, ws);
    float *b = bias ? rand_buf(r, (size_t)cout, -0.5f, 0.5f) : NULL;
    double *s = dbuf(ny), *d = dbuf(ny), *ref = dbuf(ny), *tol = dbuf(ny);
    /* y[r,o] = b[o] + sum_i x[r,i] * w[i,o] */
    for (int rr = 0; rr < rows; rr++)
        for (int o = 0; o < cout; o++) {
            double acc = b ? b[o] : 0.0, mag = fabs(acc);
            for (int i = 0; i < cin; i++) {
                double p = (double)x[rr * cin + i] * w[i * cout + o];
                acc += p;
                mag += fabs(p);
            }
            s[rr * cout + o] = acc;
            d[rr * cout + o] = sum_bound((size_t)cin, mag);
        }
    expect(&a, s, d, ny, (size_t)cout, ref, tol);

    char desc[96];
    snprintf(desc, sizeof desc, "[%d,%d] @ [%d,%d] %s%s%s", rows, cin, cin, cout, act_name(&a),
             b ? "" : " nobias", rows == 1 ? " (gemv)" : "");
    float *y = out_buf(ny);
    mk_dense_ref(rows, cin, cout, x, w, b, &a, y);
    check(t, "dense_ref", desc, y, ref, tol, ny);
    free(x), free(w), free(b), free(s), free(d), free(ref), free(tol), free(y);
}

static void test_denses(suite *t, rng *r)
{
    const float inf = INFINITY;
    test_dense(t, r, 1, 17, 5, 1, act_of(MK_ACT_RELU, 0, inf));
    test_dense(t, r, 1, 1280, 11, 1, act_of(MK_ACT_SOFTMAX, 0, inf)); /* classifier head */
    test_dense(t, r, 1, 5, 1, 0, act_of(MK_ACT_SIGMOID, 0, inf));     /* y starts NaN, beta 0 */
    test_dense(t, r, 7, 13, 3, 1, act_of(MK_ACT_TANH, 0, inf));
    test_dense(t, r, 3, 1, 1, 0, linear());
    test_dense(t, r, 35, 17, 13, 1, act_of(MK_ACT_SOFTMAX, 0, inf)); /* softmax per row */
}

/* ---- element-wise -------------------------------------------------------------------------- */

static void test_affine(suite *t, rng *r, size_t pixels, int c, mk_activation a, int in_place)
{
    size_t n = pixels * c;
    float *x = rand_buf(r, n, -2.0f, 2.0f), *scale = rand_buf(r, (size_t)c, -2.0f, 2.0f);
    float *shift = rand_buf(r, (size_t)c, -1.0f, 1.0f);
    double *s = dbuf(n), *d = dbuf(n), *ref = dbuf(n), *tol = dbuf(n);
    /* y = x * scale[ch] + shift[ch] */
    for (size_t i = 0; i < n; i++) {
        double p = (double)x[i] * scale[i % c];
        s[i] = p + shift[i % c];
        d[i] = sum_bound(1, fabs(p) + fabs(shift[i % c]));
    }
    expect(&a, s, d, n, (size_t)c, ref, tol);
    char desc[96];
    snprintf(desc, sizeof desc, "%zu x %d channels %s%s", pixels, c, act_name(&a),
             in_place ? " in place" : "");
    float *y = out_buf(n);
    if (in_place) {
        memcpy(y, x, n * sizeof *y);
        mk_affine_ref(n, c, y, scale, shift, &a, y);
    } else {
        mk_affine_ref(n, c, x, scale, shift, &a, y);
    }
    check(t, "affine_ref", desc, y, ref, tol, n);
    free(x), free(scale), free(shift), free(s), free(d), free(ref), free(tol), free(y);
}

/* alias: -1 for a separate output, else the input the output overwrites. */
static void test_add(suite *t, rng *r, int n_in, size_t count, mk_activation a, int alias)
{
    float *xs[8];
    const float *cxs[8];
    for (int i = 0; i < n_in; i++)
        cxs[i] = xs[i] = rand_buf(r, count, -2.0f, 2.0f);
    double *s = dbuf(count), *d = dbuf(count), *ref = dbuf(count), *tol = dbuf(count);
    for (size_t j = 0; j < count; j++) {
        double acc = 0.0, mag = 0.0;
        for (int i = 0; i < n_in; i++)
            acc += xs[i][j], mag += fabs(xs[i][j]);
        s[j] = acc;
        d[j] = sum_bound((size_t)n_in - 1, mag);
    }
    expect(&a, s, d, count, count, ref, tol);
    float *y = out_buf(count);
    if (alias >= 0) {
        memcpy(y, xs[alias], count * sizeof *y);
        cxs[alias] = y;
    }
    mk_add_ref(n_in, cxs, count, &a, y);
    char desc[96];
    snprintf(desc, sizeof desc, "%d inputs of %zu %s%s", n_in, count, act_name(&a),
             alias >= 0 ? " in place" : "");
    check(t, "add", desc, y, ref, tol, count);
    for (int i = 0; i < n_in; i++)
        free(xs[i]);
    free(s), free(d), free(ref), free(tol), free(y);
}

static void test_multiply(suite *t, rng *r, int n_in, const size_t *counts, size_t count,
                          mk_activation a, int alias)
{
    float *xs[8];
    const float *cxs[8];
    for (int i = 0; i < n_in; i++)
        cxs[i] = xs[i] = rand_buf(r, counts[i], -2.0f, 2.0f);
    double *s = dbuf(count), *d = dbuf(count), *ref = dbuf(count), *tol = dbuf(count);
    /* y[j] = prod_i x_i[j % count_i]: a [C] input repeats over every pixel. */
    for (size_t j = 0; j < count; j++) {
        double p = 1.0;
        for (int i = 0; i < n_in; i++)
            p *= xs[i][j % counts[i]];
        s[j] = p;
        d[j] = sum_bound((size_t)n_in - 1, fabs(p));
    }
    expect(&a, s, d, count, count, ref, tol);
    float *y = out_buf(count);
    if (alias >= 0) {
        memcpy(y, xs[alias], count * sizeof *y);
        cxs[alias] = y;
    }
    mk_multiply_ref(n_in, cxs, counts, count, &a, y);
    char desc[96];
    int len = snprintf(desc, sizeof desc, "counts");
    for (int i = 0; i < n_in; i++)
        len += snprintf(desc + len, sizeof desc - (size_t)len, " %zu", counts[i]);
    snprintf(desc + len, sizeof desc - (size_t)len, " -> %zu %s%s", count, act_name(&a),
             alias >= 0 ? " in place" : "");
    check(t, "multiply", desc, y, ref, tol, count);
    for (int i = 0; i < n_in; i++)
        free(xs[i]);
    free(s), free(d), free(ref), free(tol), free(y);
}

static void test_concat(suite *t, rng *r, int n_in, const size_t *inner, size_t outer,
                        const char *what)
{
    float *xs[8];
    const float *cxs[8];
    size_t total = 0;
    for (int i = 0; i < n_in; i++) {
        cxs[i] = xs[i] = rand_buf(r, inner[i] * outer, -1.0f, 1.0f);
        total += inner[i];
    }
    size_t n = total * outer;
    double *ref = dbuf(n);
    /* Block o of the output is block o of x1, then of x2, ... */
    for (size_t o = 0; o < outer; o++) {
        size_t at = o * total;
        for (int i = 0; i < n_in; i++)
            for (size_t k = 0; k < inner[i]; k++)
                ref[at++] = xs[i][o * inner[i] + k];
    }
    float *y = out_buf(n);
    mk_concat_ref(n_in, cxs, inner, outer, y);
    check(t, "concat", what, y, ref, NULL, n);
    for (int i = 0; i < n_in; i++)
        free(xs[i]);
    free(ref), free(y);
}

static void test_pad(suite *t, rng *r, int h, int w, int c, int top, int bottom, int left,
                     int right, float value)
{
    int oh = h + top + bottom, ow = w + left + right;
    size_t n = (size_t)oh * ow * c;
    float *x = rand_buf(r, (size_t)h * w * c, -1.0f, 1.0f);
    double *ref = dbuf(n);
    for (int yy = 0; yy < oh; yy++)
        for (int xx = 0; xx < ow; xx++)
            for (int ch = 0; ch < c; ch++) {
                int iy = yy - top, ix = xx - left;
                int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                ref[((size_t)yy * ow + xx) * c + ch] =
                    inside ? x[((size_t)iy * w + ix) * c + ch] : value;
            }
    float *y = out_buf(n);
    mk_pad_ref(h, w, c, top, bottom, left, right, value, x, y);
    char desc[96];
    snprintf(desc, sizeof desc, "%dx%dx%d pads(%d,%d,%d,%d) value %g", h, w, c, top, bottom,
             left, right, (double)value);
    check(t, "pad", desc, y, ref, NULL, n);
    free(x), free(ref), free(y);
}

static void test_elementwise(suite *t, rng *r)
{
    const float inf = INFINITY;
    test_affine(t, r, 13 * 11, 5, act_of(MK_ACT_RELU, 0, 6.0f), 0);
    test_affine(t, r, 13 * 11, 5, act_of(MK_ACT_SWISH, 0, inf), 1);
    test_affine(t, r, 1, 17, linear(), 0);
    test_affine(t, r, 7 * 5, 3, act_of(MK_ACT_SOFTMAX, 0, inf), 0);

    test_add(t, r, 2, 13 * 11 * 5, linear(), -1);
    test_add(t, r, 2, 13 * 11 * 5, act_of(MK_ACT_RELU, 0, inf), 1);
    test_add(t, r, 3, 7 * 5 * 17, act_of(MK_ACT_RELU, 0, 6.0f), -1);
    test_add(t, r, 3, 7 * 5 * 17, linear(), 2);

    size_t se[] = {13 * 11 * 17, 17}, se_first[] = {17, 13 * 11 * 17};
    size_t same[] = {7 * 5 * 3, 7 * 5 * 3}, three[] = {7 * 5 * 3, 3, 7 * 5 * 3};
    size_t one[] = {7 * 5 * 3, 1};
    test_multiply(t, r, 2, se, se[0], linear(), -1);                   /* SE gate [C] */
    test_multiply(t, r, 2, se_first, se_first[1], linear(), -1);       /* gate first */
    test_multiply(t, r, 2, se, se[0], act_of(MK_ACT_RELU, 0, inf), 0); /* in place */
    test_multiply(t, r, 2, same, same[0], act_of(MK_ACT_SIGMOID, 0, inf), -1);
    test_multiply(t, r, 3, three, three[0], linear(), 2);
    test_multiply(t, r, 2, one, one[0], linear(), -1); /* a scalar gate */

    size_t ch[] = {3, 5, 1}, rows[] = {2 * 5 * 3, 4 * 5 * 3}, cols[] = {2 * 3, 3 * 3};
    test_concat(t, r, 3, ch, 7 * 5, "7x5 x {3,5,1} channels (last axis)");
    test_concat(t, r, 2, rows, 1, "{2,4}x5x3 along H (axis 0)");
    test_concat(t, r, 2, cols, 7, "7x{2,3}x3 along W (axis 1)");
    size_t single[] = {13};
    test_concat(t, r, 1, single, 11, "one input: a copy");

    test_pad(t, r, 7, 5, 3, 0, 1, 1, 2, 0.0f);
    test_pad(t, r, 7, 5, 3, 2, 2, 2, 2, -3.5f);
    test_pad(t, r, 7, 5, 3, 3, 1, 3, 0, 2.0f); /* more left than right, more top than bottom */
    test_pad(t, r, 7, 5, 3, 0, 0, 0, 0, 0.0f);
    test_pad(t, r, 1, 1, 13, 1, 0, 0, 1, 1.0f);
}

/* ---- resize and crop ----------------------------------------------------------------------- */

/* TF's half-pixel source coordinate, in float as its kernel computes it (this is part of the
 * semantics: it decides which pixels are read), and the same in double for the exact value. */
static float src_f(int i, int in, int out, int nearest)
{
    float scale = (float)in / (float)out;
    return nearest ? ((float)i + 0.5f) * scale : ((float)i + 0.5f) * scale - 0.5f;
}

static void axis_taps(int i, int in, int out, int *lo, int *hi, double *lerp)
{
    float s = src_f(i, in, out, 0);
    double f = floor((double)s);
    *lo = f < 0 ? 0 : (int)f;
    if (*lo > in - 1)
        *lo = in - 1;
    *hi = (int)ceil((double)s);
    if (*hi > in - 1)
        *hi = in - 1;
    if (*hi < 0)
        *hi = 0;
    *lerp = (double)s - f;
}

/* Reference: TF's float32 coordinates, the blend in double. Tolerance: the kernel's three
 * lerps (t = a + (b - a) * l, then the same across rows) round 3 times each, on values of
 * magnitude at most 2 * mag (mag = the largest |tap|): 12 u * mag bounds them with room. */
static void test_resize(suite *t, rng *r, int method, int h, int w, int c, int oh, int ow)
{
    size_t n = (size_t)oh * ow * c;
    float *x = rand_buf(r, (size_t)h * w * c, -2.0f, 2.0f);
    double *ref = dbuf(n), *tol = dbuf(n);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int ch = 0; ch < c; ch++) {
                size_t o = ((size_t)oy * ow + ox) * c + ch;
#define PX(yy, xx) ((double)x[((size_t)(yy) * w + (xx)) * c + ch])
                if (method == MK_RESIZE_NEAREST) {
                    int iy = (int)floor((double)src_f(oy, h, oh, 1));
                    int ix = (int)floor((double)src_f(ox, w, ow, 1));
                    iy = iy > h - 1 ? h - 1 : iy < 0 ? 0 : iy;
                    ix = ix > w - 1 ? w - 1 : ix < 0 ? 0 : ix;
                    ref[o] = PX(iy, ix);
                    continue;
                }
                int y0, y1, x0, x1;
                double ly, lx;
                axis_taps(oy, h, oh, &y0, &y1, &ly);
                axis_taps(ox, w, ow, &x0, &x1, &lx);
                double top = PX(y0, x0) + (PX(y0, x1) - PX(y0, x0)) * lx;
                double bot = PX(y1, x0) + (PX(y1, x1) - PX(y1, x0)) * lx;
                ref[o] = top + (bot - top) * ly;
                double mag = fmax(fmax(fabs(PX(y0, x0)), fabs(PX(y0, x1))),
                                  fmax(fabs(PX(y1, x0)), fabs(PX(y1, x1))));
                tol[o] = 12.0 * U * mag + TINY;
#undef PX
            }
    float *y = out_buf(n);
    mk_resize_ref(method, h, w, c, oh, ow, x, y);
    char desc[96];
    snprintf(desc, sizeof desc, "%s %dx%dx%d -> %dx%d",
             method == MK_RESIZE_NEAREST ? "nearest" : "bilinear", h, w, c, oh, ow);
    check(t, "resize", desc, y, ref, method == MK_RESIZE_NEAREST ? NULL : tol, n);
    free(x), free(ref), free(tol), free(y);
}

/* By hand, so the reference above cannot share a misreading of TF with the kernel. */
static void test_resize_by_hand(suite *t)
{
    /* Bilinear 2x2 -> 4x4 with half-pixel centres: source rows/cols -0.25, 0.25, 0.75, 1.25,
     * clamped at the borders, give weights a = {0, 0.25, 0.75, 1}; x = 10*row + col, so
     * y = 10*a[i] + a[j], all exact in float. (align_corners would give 0, 1/3, 2/3, 1.) */
    float x[4] = {0, 1, 10, 11}, y[16 + GUARD];
    double a[4] = {0, 0.25, 0.75, 1}, want[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = 10 * a[i] + a[j];
    for (int i = 0; i < GUARD; i++)
        y[16 + i] = GUARD_VALUE;
    mk_resize_ref(MK_RESIZE_BILINEAR, 2, 2, 1, 4, 4, x, y);
    check(t, "resize", "by hand: bilinear 2x2 -> 4x4 half-pixel", y, want, NULL, 16);

    /* Nearest 3 -> 5 (scale 0.6): floor((i + 0.5) * 0.6) = 0, 0, 1, 2, 2 per axis; and
     * 5 -> 2 (scale 2.5): floor(1.25), floor(3.75) = 1, 3. One row, 2 channels. */
    float r3[6] = {0, 100, 1, 101, 2, 102}, y5[10 + GUARD];
    double w5[10] = {0, 100, 0, 100, 1, 101, 2, 102, 2, 102};
    for (int i = 0; i < GUARD; i++)
        y5[10 + i] = GUARD_VALUE;
    mk_resize_ref(MK_RESIZE_NEAREST, 1, 3, 2, 1, 5, r3, y5);
    check(t, "resize", "by hand: nearest 1x3 -> 1x5 (0,0,1,2,2)", y5, w5, NULL, 10);
    float r5[5] = {0, 1, 2, 3, 4}, y2[2 + GUARD];
    double w2[2] = {1, 3};
    for (int i = 0; i < GUARD; i++)
        y2[2 + i] = GUARD_VALUE;
    mk_resize_ref(MK_RESIZE_NEAREST, 5, 1, 1, 2, 1, r5, y2);
    check(t, "resize", "by hand: nearest 5x1 -> 2x1 (rows 1, 3)", y2, w2, NULL, 2);
}

static void test_crop(suite *t, rng *r, int h, int w, int c, int top, int left, int oh, int ow)
{
    size_t n = (size_t)oh * ow * c;
    float *x = rand_buf(r, (size_t)h * w * c, -1.0f, 1.0f);
    double *ref = dbuf(n);
    for (int yy = 0; yy < oh; yy++)
        for (int xx = 0; xx < ow; xx++)
            for (int ch = 0; ch < c; ch++)
                ref[((size_t)yy * ow + xx) * c + ch] =
                    x[((size_t)(yy + top) * w + (xx + left)) * c + ch];
    float *y = out_buf(n);
    mk_crop_ref(w, c, top, left, oh, ow, x, y);
    char desc[96];
    snprintf(desc, sizeof desc, "%dx%dx%d at (%d,%d) -> %dx%d", h, w, c, top, left, oh, ow);
    check(t, "crop", desc, y, ref, NULL, n);
    free(x), free(ref), free(y);
}

static void test_resizes(suite *t, rng *r)
{
    test_resize_by_hand(t);
    for (int m = 0; m < 2; m++) {
        test_resize(t, r, m, 13, 11, 3, 7, 5);    /* downscale, factors 13/7, 11/5 */
        test_resize(t, r, m, 7, 5, 3, 13, 11);    /* upscale */
        test_resize(t, r, m, 45, 52, 3, 36, 40);  /* the parity table's preproc model */
        test_resize(t, r, m, 9, 9, 17, 9, 20);    /* one axis unchanged, other upscaled */
        test_resize(t, r, m, 1, 1, 5, 4, 3);      /* from a single pixel */
        test_resize(t, r, m, 20, 27, 1, 1, 1);    /* to a single pixel */
        test_resize(t, r, m, 224, 224, 3, 299, 299);
    }
    test_crop(t, r, 13, 11, 3, 2, 3, 7, 5);
    test_crop(t, r, 13, 11, 5, 0, 0, 13, 11);   /* the whole input */
    test_crop(t, r, 13, 11, 5, 12, 10, 1, 1);   /* the last pixel */
    test_crop(t, r, 36, 40, 3, 2, 3, 32, 33);
}

/* ---- pooling ------------------------------------------------------------------------------- */

static void pool_reference(const mk_window *g, const float *x, int is_max, double *s, double *d)
{
    for (int oy = 0; oy < g->out_h; oy++)
        for (int ox = 0; ox < g->out_w; ox++)
            for (int c = 0; c < g->in_c; c++) {
                double acc = is_max ? -INFINITY : 0.0, mag = 0.0;
                int cells = 0;
                for (int ky = 0; ky < g->kh; ky++)
                    for (int kx = 0; kx < g->kw; kx++) {
                        int iy = oy * g->sh - g->pad_top + ky;
                        int ix = ox * g->sw - g->pad_left + kx;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                            continue; /* padding: never a candidate, never counted */
                        double v = x[(iy * g->in_w + ix) * g->in_c + c];
                        acc = is_max ? fmax(acc, v) : acc + v;
                        mag += fabs(v);
                        cells++;
                    }
                size_t o = ((size_t)oy * g->out_w + ox) * g->in_c + c;
                s[o] = is_max ? acc : acc / cells;
                /* cells-1 additions then one division */
                d[o] = is_max ? 0.0 : sum_bound((size_t)cells, mag / cells);
            }
}

static void test_pool(suite *t, rng *r, conv_case c, int is_max)
{
    c.cout = c.cin;
    c.dh = c.dw = 1;
    c.act = linear();
    mk_window g = window_of(&c);
    size_t nx = (size_t)c.h * c.w * c.cin, ny = (size_t)g.out_h * g.out_w * c.cin;
    /* Max pooling sees only negative values: a zero read from padding would win. */
    float *x = is_max ? rand_buf(r, nx, -2.0f, -0.5f) : rand_buf(r, nx, -1.0f, 1.0f);
    double *s = dbuf(ny), *d = dbuf(ny);
    pool_reference(&g, x, is_max, s, d);
    for (size_t i = 0; i < ny; i++)
        d[i] += 2.0 * U * fabs(s[i]) + TINY;
    char desc[160];
    describe(desc, sizeof desc, &c, &g, "");
    float *y = out_buf(ny);
    mk_pool_fn ref_fn = is_max ? mk_maxpool_ref : mk_avgpool_ref;
    ref_fn(&g, x, y);
    check(t, is_max ? "maxpool_ref" : "avgpool_ref", desc, y, s, is_max ? NULL : d, ny);
    free(x), free(s), free(d), free(y);
}

/* The divisor, by hand: 3x3 'same' average over a 4x4 image holding 0..15. */
static void test_avgpool_divisor(suite *t)
{
    float x[16], y[16 + GUARD];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    for (int i = 0; i < GUARD; i++)
        y[16 + i] = GUARD_VALUE;
    mk_window g = {.in_h = 4, .in_w = 4, .in_c = 1, .out_h = 4, .out_w = 4, .out_c = 1,
                   .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pad_top = 1, .pad_left = 1,
                   .dh = 1, .dw = 1};
    mk_avgpool_ref(&g, x, y);
    /* corner (0,0): cells 0,1,4,5 -> 10/4 (not 10/9); edge (0,1): 0,1,2,4,5,6 -> 18/6;
     * inside (1,1): 0,1,2,4,5,6,8,9,10 -> 45/9; corner (3,3): 10,11,14,15 -> 50/4. */
    double want[16] = {2.5, 3.0, 4.0, 4.5, 4.5, 5.0, 6.0, 6.5,
                       8.5, 9.0, 10.0, 10.5, 10.5, 11.0, 12.0, 12.5};
    check(t, "avgpool_ref", "divisor by hand: 3x3 'same' on 4x4 of 0..15", y, want, NULL, 16);

    /* A constant image pools to the same constant everywhere only if padding is not counted. */
    float ones[7 * 5 * 3], yo[7 * 5 * 3 + GUARD];
    double wone[7 * 5 * 3];
    for (int i = 0; i < 7 * 5 * 3; i++)
        ones[i] = 0.75f, wone[i] = 0.75;
    for (int i = 0; i < GUARD; i++)
        yo[7 * 5 * 3 + i] = GUARD_VALUE;
    mk_window g2 = {.in_h = 7, .in_w = 5, .in_c = 3, .out_h = 7, .out_w = 5, .out_c = 3,
                    .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pad_top = 1, .pad_left = 1,
                    .dh = 1, .dw = 1};
    mk_avgpool_ref(&g2, ones, yo);
    check(t, "avgpool_ref", "constant 0.75 stays 0.75 at every border", yo, wone, NULL,
          7 * 5 * 3);
}

static void test_global(suite *t, rng *r, int h, int w, int c, float offset, int is_max)
{
    size_t hw = (size_t)h * w;
    float *x = is_max ? rand_buf(r, hw * c, -2.0f, -0.5f) : rand_buf(r, hw * c, -1.0f, 1.0f);
    for (size_t i = 0; i < hw * c; i++)
        x[i] += offset;
    double *ref = dbuf((size_t)c), *tol = dbuf((size_t)c);
    for (int ch = 0; ch < c; ch++) {
        double acc = is_max ? -INFINITY : 0.0;
        for (size_t p = 0; p < hw; p++)
            acc = is_max ? fmax(acc, x[p * c + ch]) : acc + x[p * c + ch];
        ref[ch] = is_max ? acc : acc / (double)hw;
        /* Accumulated in double, the mean is off by its final rounding only. */
        tol[ch] = 2.0 * U * fabs(ref[ch]) + TINY;
    }
    float *y = out_buf((size_t)c);
    char desc[96];
    snprintf(desc, sizeof desc, "%dx%dx%d%s", h, w, c, offset != 0.0f ? " around +1000" : "");
    if (is_max) {
        mk_global_maxpool_ref(h * w, c, x, y);
        check(t, "global_maxpool", desc, y, ref, NULL, (size_t)c);
    } else {
        mk_global_avgpool_ref(h * w, c, x, y);
        check(t, "global_avgpool", desc, y, ref, tol, (size_t)c);
    }
    free(x), free(ref), free(tol), free(y);
}

static void test_pools(suite *t, rng *r)
{
    const mk_activation lin = linear();
    /* dh, dw, cout and act are filled in by test_pool.
     *                 h   w  c  -  kh kw sh sw pt pb pl pr */
    conv_case cases[] = {
        {7, 5, 3, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, lin},     /* 'same' s1 */
        {13, 11, 5, 0, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, lin},   /* 'valid' 2x2 s2 */
        {13, 11, 17, 0, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, lin},  /* TF 'same' 3x3 s2 */
        {7, 5, 13, 0, 2, 2, 2, 2, 0, 1, 0, 1, 1, 1, 1, lin},    /* TF 'same' 2x2 s2, odd */
        {13, 11, 5, 0, 3, 3, 2, 2, 0, 1, 1, 2, 1, 1, 1, lin},   /* asymmetric pads */
        {1, 1, 3, 0, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, lin},     /* 1x1 image, one real cell */
        {7, 5, 5, 0, 1, 7, 1, 1, 0, 0, 3, 3, 1, 1, 1, lin},     /* 1x7 */
        {7, 5, 5, 0, 7, 1, 1, 1, 3, 3, 0, 0, 1, 1, 1, lin},     /* 7x1 */
        {14, 14, 13, 0, 7, 7, 7, 7, 0, 0, 0, 0, 1, 1, 1, lin},  /* 7x7 s7 */
    };
    for (int is_max = 0; is_max < 2; is_max++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_pool(t, r, cases[i], is_max);
    test_avgpool_divisor(t);

    test_global(t, r, 7, 7, 17, 0.0f, 0);
    test_global(t, r, 14, 14, 13, 0.0f, 0);
    test_global(t, r, 1, 1, 5, 0.0f, 0);
    test_global(t, r, 7, 7, 300, 0.0f, 0); /* more channels than one accumulator block */
    /* A float running sum of 3136 values near 1000 loses ~ 1e-3 of the mean; double does not. */
    test_global(t, r, 56, 56, 5, 1000.0f, 0);
    test_global(t, r, 7, 7, 17, 0.0f, 1);
    test_global(t, r, 1, 1, 3, 0.0f, 1);
    test_global(t, r, 13, 11, 300, 0.0f, 1);
}

int main(void)
{
    suite t;
    memset(&t, 0, sizeof t);
    rng r = {0x6d6f7273656c2121ull};

    test_activations(&t, &r);
    test_convs(&t, &r);
    test_depthwises(&t, &r);
    test_depthwise_big_bias(&t, &r);
    test_denses(&t, &r);
    test_elementwise(&t, &r);
    test_pools(&t, &r);
    test_resizes(&t, &r);

    printf("\nlargest |err| vs float64 per op (and as a fraction of the bound):\n");
    for (int i = 0; i < t.n_stats; i++)
        printf("  %-16s %.3e  (%.3f)\n", t.stats[i].op, t.stats[i].max_err,
               t.stats[i].max_ratio);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
