/* Residual add -> the pointwise conv that feeds it. MobileNetV2, EfficientNet and ResNetV2
 * end a residual block with a 1x1 conv whose only reader is an ADD of the block's input. As
 * two ops, every thread waits at a barrier between them and the add reads back the whole
 * conv output; fused, each thread adds the shortcut to the rows it has just written, while
 * they are still in cache, and one barrier goes. The GEMM and the add kernel are the ones
 * the two ops chose, on the same values (a + b is commutative in IEEE arithmetic), so the
 * outputs are bit-identical to running the ops one after the other.
 *
 * The rewrite happens before planning: the conv writes the add's output tensor and the plan
 * sees the shortcut read at the conv (mf_op.post), so lifetimes stay exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_pack.h"
#include "ops.h"

/* The conv runs through mf_run_gemm, whose per-thread ranges mf_run_post_add repeats. */
static int fusable_add(const morsel_model *m, const mf_op *a)
{
    if (a->type != MF_OP_ADD || a->folded || a->serial || !a->v.add || a->n_in != 2)
        return 0;
    const mf_tensor *y = &m->tensors[a->out];
    return mf_same_shape(&m->tensors[a->in[0]], y) && mf_same_shape(&m->tensors[a->in[1]], y);
}

void mf_fuse_residual_add(morsel_model *m)
{
    uint32_t *readers = mf_fusion_readers(m);
    uint32_t *producer = readers ? malloc(m->n_tensors * sizeof *producer) : NULL;
    if (!producer) {
        free(readers);
        return; /* off, or out of memory: an optimisation only */
    }
    for (uint32_t t = 0; t < m->n_tensors; t++)
        producer[t] = MF_NO_TENSOR;
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (!m->ops[i].folded)
            producer[m->ops[i].out] = i;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *a = &m->ops[i];
        if (!fusable_add(m, a))
            continue;
        for (int j = 0; j < 2; j++) {
            uint32_t conv_out = a->in[j], skip = a->in[1 - j];
            uint32_t pi = producer[conv_out];
            if (pi == MF_NO_TENSOR || conv_out == skip || readers[conv_out] != 1 ||
                conv_out == m->output || conv_out == m->logits)
                continue;
            mf_op *p = &m->ops[pi];
            /* The shortcut must exist when the conv runs: the model input, a constant, or
             * produced by an earlier op. */
            uint32_t si = producer[skip];
            if (!mf_pointwise_gemm(p) || p->post || (si != MF_NO_TENSOR && si >= pi))
                continue;
            p->post = a;
            p->post_skip = skip;
            p->out = a->out;
            producer[a->out] = pi;
            a->folded = 1;
            snprintf(a->kernel, sizeof a->kernel, "fused into the previous conv");
            char k[sizeof p->kernel];
            snprintf(k, sizeof k, "%s", p->kernel);
            snprintf(p->kernel, sizeof p->kernel, "%.40s+add", k);
            break;
        }
    }
    free(readers);
    free(producer);
}

void mf_post_add_range(const mf_exec *e, const mf_op *op, float *y, size_t i0, size_t i1)
{
    const mf_op *a = op->post;
    const float *xs[2] = {y, mf_src(e, op->post_skip)};
    a->v.add(2, xs, &a->kact, y, i0, i1);
    mf_tail_act(a, y, i0, i1);
}

void mf_run_post_add(const mf_exec *e, const mf_op *op, int N, size_t M, float *y, int ith,
                     int nth)
{
    size_t n = (size_t)N;
    if (!mf_gemm_by_columns(op, N, M, nth)) {
        size_t m0, m1;
        mf_split(M, (size_t)op->v.gemm_mr, ith, nth, &m0, &m1);
        if (m0 < m1)
            mf_post_add_range(e, op, y, m0 * n, m1 * n);
        return;
    }
    size_t n0, n1;
    mf_split(n, (size_t)op->v.gemm_nr, ith, nth, &n0, &n1);
    for (size_t r = 0; r < M && n0 < n1; r++)
        mf_post_add_range(e, op, y, r * n + n0, r * n + n1);
}
