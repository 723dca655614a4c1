/* Squeeze-and-excitation -> the pointwise conv after it. EfficientNet (and MobileNetV3) end
 * the depthwise half of every block with
 *
 *     g = mean(x)  ->  r = act(g Wr + br)  ->  s = sigmoid(r We + be)  ->  x * s  ->  1x1 conv
 *
 * As five ops that is four waits for the other threads, three of them around a few
 * microseconds of work (at 2 threads on EfficientNetB0 the calling thread waited 0.2 ms per
 * inference on these three), and the gated tensor x * s is written whole and read back. Fused,
 * the conv computes the gate itself, each thread once per pass (two GEMMs of one row), and
 * gates x a band at a time into its scratch just before its GEMM reads the band. Only the mean
 * stays an op of its own: it needs all of x.
 *
 * The GEMMs and the multiply kernel are the ones the ops chose, on the same values in the same
 * order (a GEMM row's sums do not depend on which rows share the call), so the outputs are
 * bit-identical to running the ops one after the other. The mean itself is summed in double by
 * row chunks (POOL_CHUNKS) that are then added in order, where the whole-tensor pool keeps one
 * running double sum: the two differ only by double rounding, which moves the float mean only
 * when it lands next to a float rounding boundary (never on the models and inputs of
 * test_fusion and test_k_eltwise), and the chunks do not depend on the thread count. */
#include <stdio.h>
#include <stdlib.h>

#include "gemm_pack.h"
#include "ops.h"

/* Every band streams all of W again. Small W (early blocks: 32 x 16 to 144 x 24) goes band by
 * band in 32 KB, still in L1/L2 when the GEMM reads it; larger W (late blocks: 1152 x 320 on
 * 49 rows) gates the whole share at once, up to this many floats. */
#define BAND_BYTES (32u << 10)
#define SMALL_W_BYTES (64u << 10)
#define WHOLE_MAX_FLOATS ((size_t)256 << 10)
/* The mean before the SE is a pool over the whole depthwise output, by channels: at 2 threads
 * each thread then read half of its lines from the other core's cache (EfficientNetB0's 16
 * means: 0.29 ms at 1 thread, 0.39 at 2). Split instead into this many fixed row chunks of
 * channel sums in double, each thread summing the rows it wrote; every thread adds the chunks
 * up in order when it computes the gate. Sums in double and one rounding to float, as the
 * whole-tensor pool does. */
#define POOL_CHUNKS 8

/* The running op before `before` that writes tensor t, or NULL. */
static mf_op *producer(morsel_model *m, uint32_t t, uint32_t before)
{
    for (uint32_t i = before; i-- > 0;)
        if (!m->ops[i].folded && m->ops[i].out == t)
            return &m->ops[i];
    return NULL;
}

static int internal(const morsel_model *m, const uint32_t *readers, uint32_t t)
{
    return readers[t] == 1 && t != m->output && t != m->logits;
}

/* A GEMM conv on one pixel: the reduce or excite step. */
static int one_pixel(const mf_op *p)
{
    return mf_pointwise_gemm(p) && !p->se_mul && !p->post && p->win.out_h == 1 && p->win.out_w == 1;
}

/* Whether multiply `mul`, read only by pointwise conv p, gates an activation x by an SE chain;
 * fills the chain and which input is x. */
static int match(morsel_model *m, const uint32_t *readers, mf_op *mul, const mf_op *p,
                 mf_op **red, mf_op **exc, int *xj)
{
    if (mul->type != MF_OP_MULTIPLY || mul->serial || !mul->v.multiply || mul->n_in != 2 ||
        mul->act.code != MK_ACT_LINEAR || !internal(m, readers, mul->out))
        return 0;
    const mf_tensor *y = &m->tensors[mul->out];
    size_t c = y->dims[y->rank - 1];
    if ((size_t)p->win.in_c != c || (size_t)p->win.in_h * p->win.in_w * c != y->count)
        return 0;
    for (int j = 0; j < 2; j++) {
        uint32_t gate = mul->in[1 - j];
        if (!mf_same_shape(&m->tensors[mul->in[j]], y) || m->tensors[gate].count != c ||
            !internal(m, readers, gate))
            continue;
        mf_op *e = producer(m, gate, (uint32_t)(mul - m->ops));
        if (!e || !one_pixel(e) || (size_t)e->win.out_c != c || !internal(m, readers, e->in[0]))
            continue;
        mf_op *r = producer(m, e->in[0], (uint32_t)(e - m->ops));
        if (!r || !one_pixel(r) || r->win.out_c != e->win.in_c)
            continue;
        *red = r;
        *exc = e;
        *xj = j;
        return 1;
    }
    return 0;
}

static void mark_fused(mf_op *op)
{
    op->folded = 1;
    snprintf(op->kernel, sizeof op->kernel, "fused into the SE conv");
}

void mf_fuse_se(morsel_model *m)
{
    uint32_t *readers = mf_fusion_readers(m);
    if (!readers)
        return;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *p = &m->ops[i], *red, *exc;
        int xj;
        if (!mf_pointwise_gemm(p) || p->se_mul)
            continue;
        mf_op *mul = producer(m, p->in[0], i);
        if (!mul || !match(m, readers, mul, p, &red, &exc, &xj))
            continue;
        size_t k = (size_t)p->win.in_c, pixels = (size_t)p->win.in_h * p->win.in_w;
        size_t band = BAND_BYTES / (k * sizeof(float));
        if (k * (size_t)p->win.out_c * sizeof(float) > SMALL_W_BYTES)
            band = pixels * k <= WHOLE_MAX_FLOATS ? pixels : WHOLE_MAX_FLOATS / k;
        band = band < 1 ? 1 : band;
        p->se_mul = mul;
        p->se_reduce = red;
        p->se_excite = exc;
        p->se_in = red->in[0];
        p->se_band = (int)band;
        p->in[0] = mul->in[xj];
        /* Scratch: the gated band, then r and s (16-float aligned), then the mean. */
        size_t need = band * k + ((size_t)red->win.out_c + 15) / 16 * 16 + k;
        if (p->scratch < need)
            p->scratch = need;
        mf_op *g = producer(m, p->se_in, (uint32_t)(red - m->ops));
        mf_tensor *t = &m->tensors[p->se_in];
        if (g && g->type == MF_OP_GLOBAL_AVG_POOL && g->v.gsum && !g->serial &&
            g->act.code == MK_ACT_LINEAR && internal(m, readers, p->se_in) && t->count == k) {
            g->chunks = POOL_CHUNKS;
            t->count = (size_t)POOL_CHUNKS * k * (sizeof(double) / sizeof(float));
            t->rank = 1;
            t->dims[0] = (uint32_t)t->count;
            p->se_pool = g;
            need += (k + 15) / 16 * 16; /* the mean */
            if (p->scratch < need)
                p->scratch = need;
            mf_name_kernel(g, "f32_global_sum", &m->isa);
        }
        mark_fused(mul);
        mark_fused(red);
        mark_fused(exc);
        char kn[sizeof p->kernel];
        snprintf(kn, sizeof kn, "%s", p->kernel);
        snprintf(p->kernel, sizeof p->kernel, "se+%.44s", kn);
    }
    free(readers);
}

/* The mean from the pool's chunk sums, as the whole-tensor pool rounds it: (float)(sum / n). */
static void finish_mean(const mf_exec *e, const mf_op *p, float *g)
{
    const mf_op *pool = p->se_pool;
    const mf_tensor *x = &e->m->tensors[pool->in[0]];
    size_t c = x->dims[2], chunks = (size_t)pool->chunks;
    double n = (double)x->dims[0] * (double)x->dims[1];
    const double *sums = (const double *)(const void *)mf_src(e, p->se_in);
    for (size_t ch = 0; ch < c; ch++) {
        double t = 0.0;
        for (size_t j = 0; j < chunks; j++)
            t += sums[j * c + ch];
        g[ch] = (float)(t / n);
    }
}

/* s = sigmoid(act(g Wr + br) We + be) through the two ops' own GEMMs and activations; g is the
 * mean, finished into `mean` first when the pool left chunk sums. */
static void gate(const mf_exec *e, const mf_op *p, float *r, float *s, float *mean)
{
    const mf_op *red = p->se_reduce, *exc = p->se_excite;
    const float *g = mf_src(e, p->se_in);
    if (p->se_pool) {
        finish_mean(e, p, mean);
        g = mean;
    }
    mf_run_gemm(red, red->win.in_c, red->win.out_c, 1, g,
                red->n_in > 2 ? mf_src(e, red->in[2]) : NULL, r, 0, 1);
    mf_run_gemm(exc, exc->win.in_c, exc->win.out_c, 1, r,
                exc->n_in > 2 ? mf_src(e, exc->in[2]) : NULL, s, 0, 1);
}

/* Rows [m0, m1) x columns [n0, n1) of y = (x * s) W + b, band by band through buf. */
static void gated_rows(const mf_op *p, const float *x, const float *s, const float *b,
                       float *buf, float *y, size_t m0, size_t m1, size_t n0, size_t n1)
{
    const mf_op *mul = p->se_mul;
    size_t k = (size_t)p->win.in_c, n = (size_t)p->win.out_c, band = (size_t)p->se_band;
    for (size_t r0 = m0; r0 < m1; r0 += band) {
        size_t r1 = m1 - r0 < band ? m1 : r0 + band;
        const float *xs[2] = {x + r0 * k, s};
        size_t counts[2] = {(r1 - r0) * k, k};
        mul->v.multiply(2, xs, counts, &mul->kact, buf, 0, (r1 - r0) * k);
        p->v.gemm((int)k, (int)n, buf, k, p->packed, b, &p->kact, y + r0 * n, n, 0,
                  (int)(r1 - r0), (int)n0, (int)n1);
        if (n0 == 0 && n1 == n)
            mf_tail_act(p, y, r0 * n, r1 * n);
        else
            for (size_t r = r0; r < r1; r++)
                mf_tail_act(p, y + r * n, n0, n1);
    }
}

void mf_run_se_conv(const mf_exec *e, const mf_op *p, int ith, int nth)
{
    size_t k = (size_t)p->win.in_c, n = (size_t)p->win.out_c;
    size_t pixels = (size_t)p->win.out_h * (size_t)p->win.out_w;
    float *buf = mf_scratch(e), *r = buf + (size_t)p->se_band * k;
    float *s = r + ((size_t)p->se_reduce->win.out_c + 15) / 16 * 16;
    int self = (int)(p - e->m->ops);
    if (*e->memo != self) { /* this thread's first piece of p in this pass */
        gate(e, p, r, s, s + k);
        *e->memo = self;
    }
    const float *x = mf_src(e, p->in[0]), *b = p->n_in > 2 ? mf_src(e, p->in[2]) : NULL;
    float *y = mf_dst(e, p);
    size_t m0 = 0, m1 = pixels, n0 = 0, n1 = n;
    if (mf_gemm_by_columns(p, (int)n, pixels, nth))
        mf_split(n, (size_t)p->v.gemm_nr, ith, nth, &n0, &n1);
    else
        mf_split(pixels, (size_t)p->v.gemm_mr, ith, nth, &m0, &m1);
    if (m0 < m1 && n0 < n1)
        gated_rows(p, x, s, b, buf, y, m0, m1, n0, n1);
    if (p->post)
        mf_run_post_add(e, p, (int)n, pixels, y, ith, nth);
}
