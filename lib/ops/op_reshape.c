/* RESHAPE (Flatten, Reshape: same values, new shape) and ACTIVATION (a standalone activation
 * layer): a copy, then the activation. A plain reshape read only by ops that take their input
 * as a flat run of values is folded away at load (mf_fold_reshapes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define CHUNK_FLOATS 4096 /* 16 KB */

static morsel_status check_reshape(morsel_model *m, mf_op *op, morsel_error *err)
{
    if (op->n_in != 1 || mf_in(m, op, 0)->count != m->tensors[op->out].count)
        return mf_op_fail(err, op, "reshape must keep the element count");
    return MORSEL_OK;
}

static morsel_status check_activation(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0);
    if (op->n_in != 1)
        return mf_op_fail(err, op, "expects one input");
    return mf_check_out(op, &m->tensors[op->out], x->rank, x->dims, err);
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)err;
    mf_split_act(m, op, k);
    /* Nothing fuses here: the whole activation is the tail. */
    if (op->act.code == MK_ACT_RELU) {
        op->tact = op->act;
        op->kact.code = MK_ACT_LINEAR;
    }
    mf_name_kernel(op, op->act.code == MK_ACT_LINEAR ? "copy" : "copy_act", k);
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mf_tensor *yt = &e->m->tensors[op->out];
    const float *x = mf_src(e, op->in[0]);
    float *y = mf_dst(e, op);
    size_t c = yt->dims[yt->rank - 1], i0, i1;
    if (op->serial && ith > 0)
        return;
    mf_split(yt->count / c, 1, op->serial ? 0 : ith, op->serial ? 1 : nth, &i0, &i1);
    i0 *= c;
    i1 *= c;
    if (i0 >= i1)
        return;
    /* Chunk by chunk, so the activation pass finds its chunk in L1 rather than reading the
     * whole copy back (Xception's ReLUs beside its shortcuts, 2.8 MB at 74x74x128: their sum
     * over 6 alternating processes, medians, 1.388 -> 1.192 ms at 1 thread, 0.641 -> 0.586
     * at 2). */
    size_t chunk = c > CHUNK_FLOATS ? c : CHUNK_FLOATS / c * c; /* whole rows: softmax */
    for (size_t c0 = i0; c0 < i1; c0 += chunk) {
        size_t c1 = i1 - c0 < chunk ? i1 : c0 + chunk;
        memcpy(y + c0, x + c0, (c1 - c0) * sizeof *y);
        mf_tail_act(op, y, c0, c1);
    }
}

const mf_op_def mf_op_reshape = {"reshape", check_reshape, prepare, run};
const mf_op_def mf_op_activation = {"activation", check_activation, prepare, run};

/* Readers whose kernels see their input as a flat array of its element count: a pointwise or
 * general conv runs on the window its check derived (the reshape's output shape), a dense
 * layer on count / K rows. Both have the values in the same order either way. */
static int flat_reader(const mf_op *c, uint32_t t)
{
    if (c->type != MF_OP_CONV2D && c->type != MF_OP_DENSE)
        return 0;
    for (uint32_t j = 1; j < c->n_in; j++)
        if (c->in[j] == t)
            return 0;
    return c->in[0] == t;
}

/* EfficientNet's squeeze-and-excitation reshapes each pooled [C] vector to [1,1,C] before a
 * 1x1 conv, and a Flatten feeds a Dense: a copy and a barrier each, for values already in
 * place. Each reader takes the reshape's input instead and the reshape never runs. */
void mf_fold_reshapes(morsel_model *m)
{
    if (!mf_fusion_enabled())
        return;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *p = &m->ops[i];
        if (p->type != MF_OP_RESHAPE || p->folded || p->act.code != MK_ACT_LINEAR ||
            p->out == m->output || p->out == m->logits)
            continue;
        int readers = 0, ok = 1;
        for (uint32_t k = i + 1; k < m->n_ops && ok; k++) {
            const mf_op *c = &m->ops[k];
            int reads = 0;
            for (uint32_t j = 0; j < c->n_in; j++)
                reads |= c->in[j] == p->out;
            if (reads) {
                readers++;
                ok = !c->folded && flat_reader(c, p->out);
            }
        }
        if (!ok || readers == 0)
            continue;
        for (uint32_t k = i + 1; k < m->n_ops; k++)
            if (m->ops[k].in[0] == p->out)
                m->ops[k].in[0] = p->in[0];
        p->folded = 1;
        snprintf(p->kernel, sizeof p->kernel, "folded: its readers read its input");
    }
}
