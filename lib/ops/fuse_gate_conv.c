/* Squeeze-and-excitation gate -> the pointwise conv that reads it. EfficientNet multiplies
 * each expanded tensor by a per-channel gate and hands the product to a 1x1 project conv, its
 * only reader: as two ops the product is written whole (up to 1.6 MB at 112x112), a barrier
 * passes, and the GEMM reads it back. Fused, each thread gates a block of rows into its own
 * buffer, which stays in L2, and runs the GEMM on it. The multiply and GEMM kernels are the
 * ones the two ops chose, on the same values (x * g is commutative), and a GEMM row does not
 * depend on which rows share its call, so outputs are bit-identical to the two ops.
 *
 * Rewritten before planning: the conv reads the multiply's full-size input, and the gate's
 * lifetime covers the conv (mf_op.gate_src). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_pack.h"
#include "ops.h"

/* Rows gated per block: about a quarter of a 1 MB L2 when M is larger. */
#define BLOCK_BYTES (256u << 10)
/* Gating whole M when it fits this; otherwise blocks, which re-read the weights once each:
 * only for small weights (as the expand -> depthwise fusion). */
#define WHOLE_BYTES (512u << 10)
#define MAX_WEIGHT_BYTES (64u << 10)

static int gate_of(const morsel_model *m, const mf_op *mu, uint32_t *x, uint32_t *gate)
{
    if (mu->type != MF_OP_MULTIPLY || mu->folded || mu->serial || !mu->v.multiply ||
        mu->n_in != 2 || mu->act.code != MK_ACT_LINEAR)
        return 0;
    const mf_tensor *y = &m->tensors[mu->out];
    uint32_t c = y->dims[y->rank - 1];
    for (int j = 0; j < 2; j++) {
        const mf_tensor *a = &m->tensors[mu->in[j]], *g = &m->tensors[mu->in[1 - j]];
        if (a->count == y->count && g->count == c && g->dims[g->rank - 1] == c &&
            a->count != g->count) {
            *x = mu->in[j];
            *gate = mu->in[1 - j];
            return 1;
        }
    }
    return 0;
}

void mf_fuse_gate_conv(morsel_model *m)
{
    uint32_t *readers = mf_fusion_readers(m);
    if (!readers)
        return;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *mu = &m->ops[i];
        uint32_t x, gate;
        if (!gate_of(m, mu, &x, &gate) || readers[mu->out] != 1 || mu->out == m->output ||
            mu->out == m->logits)
            continue;
        for (uint32_t k = i + 1; k < m->n_ops; k++) {
            mf_op *p = &m->ops[k];
            if (p->folded || p->n_in < 1 || p->in[0] != mu->out)
                continue;
            const mk_window *g = &p->win;
            size_t K = (size_t)g->in_c, M = (size_t)g->out_h * (size_t)g->out_w;
            if (p->type != MF_OP_CONV2D || p->serial || p->gate || !p->v.gemm || p->v.conv ||
                p->v.wino2 || !mk_conv_is_pointwise(g))
                break;
            size_t rows = M;
            if (M * K * sizeof(float) > WHOLE_BYTES) {
                if (K * (size_t)g->out_c * sizeof(float) > MAX_WEIGHT_BYTES)
                    break;
                rows = BLOCK_BYTES / (K * sizeof(float));
                rows = rows < 1 ? 1 : rows;
            }
            p->gate = mu;
            p->gate_src = gate;
            p->gate_rows = rows;
            p->in[0] = x;
            if (p->scratch < rows * K)
                p->scratch = rows * K;
            mu->folded = 1;
            snprintf(mu->kernel, sizeof mu->kernel, "fused into the next conv");
            char kn[sizeof p->kernel];
            snprintf(kn, sizeof kn, "%s", p->kernel);
            snprintf(p->kernel, sizeof p->kernel, "f32_gate+%.38s", kn);
            break;
        }
    }
    free(readers);
}

/* Rows [r0, r1) x columns [n0, n1) of y: gated input rows into buf, the GEMM, its tail
 * activation, and a fused residual add. */
static void block(const mf_exec *e, const mf_op *op, const float *x, const float *gate,
                  const float *b, float *buf, float *y, size_t r0, size_t r1, size_t n0,
                  size_t n1)
{
    const mf_op *mu = op->gate;
    size_t K = (size_t)op->win.in_c, N = (size_t)op->win.out_c, C = K;
    const float *xs[2] = {x + r0 * K, gate};
    size_t counts[2] = {(r1 - r0) * K, C};
    mu->v.multiply(2, xs, counts, &mu->kact, buf, 0, (r1 - r0) * K);
    op->v.gemm((int)K, (int)N, buf, K, op->packed, b, &op->kact, y + r0 * N, N, 0,
               (int)(r1 - r0), (int)n0, (int)n1);
    if (n0 == 0 && n1 == N) {
        mf_tail_act(op, y, r0 * N, r1 * N);
        if (op->post)
            mf_post_add_range(e, op, y, r0 * N, r1 * N);
        return;
    }
    for (size_t r = r0; r < r1; r++) {
        mf_tail_act(op, y, r * N + n0, r * N + n1);
        if (op->post)
            mf_post_add_range(e, op, y, r * N + n0, r * N + n1);
    }
}

void mf_run_gated_gemm(const mf_exec *e, const mf_op *op, const float *x, const float *b,
                       float *y, int ith, int nth)
{
    const mk_window *g = &op->win;
    size_t M = (size_t)g->out_h * (size_t)g->out_w, N = (size_t)g->out_c;
    const float *gate = mf_src(e, op->gate_src);
    float *buf = mf_scratch(e, ith);
    size_t m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (mf_gemm_by_columns(op, (int)N, M, nth)) {
        /* Every thread gates all rows (few: a 7x7 or 14x14 layer) for its column panels. */
        mf_split(N, (size_t)op->v.gemm_nr, ith, nth, &n0, &n1);
    } else {
        mf_split(M, (size_t)op->v.gemm_mr, ith, nth, &m0, &m1);
    }
    if (m0 >= m1 || n0 >= n1)
        return;
    for (size_t r0 = m0; r0 < m1; r0 += op->gate_rows) {
        size_t r1 = r0 + op->gate_rows < m1 ? r0 + op->gate_rows : m1;
        block(e, op, x, gate, b, buf, y, r0, r1, n0, n1);
    }
}
