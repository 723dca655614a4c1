/* ADD and MULTIPLY: n activations of one shape; MULTIPLY may also take a per-channel gate
 * ([C] or [1,1,C]) broadcast over [H,W,C] (squeeze-and-excitation). Fused activation: the
 * exporter folds a following ReLU (ResNet's add + relu). */
#include <string.h>

#include "ops.h"

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *y = &m->tensors[op->out];
    if (op->n_in < 2)
        return mf_op_fail(err, op, "expects at least two inputs");
    size_t biggest = 0;
    for (uint32_t i = 0; i < op->n_in; i++) {
        const mf_tensor *x = mf_in(m, op, (int)i);
        if (x->count > biggest)
            biggest = x->count;
        if (mf_same_shape(x, y))
            continue;
        uint32_t c = y->dims[y->rank - 1];
        int gate = op->type == MF_OP_MULTIPLY && x->count == c && x->dims[x->rank - 1] == c;
        if (!gate)
            return mf_op_fail(err, op, "inputs have different shapes");
    }
    if (biggest != y->count)
        return mf_op_fail(err, op, "output size matches no input");
    return MORSEL_OK;
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)err;
    int add = op->type == MF_OP_ADD;
    if (add ? !k->add : !k->multiply) {
        op->serial = 1;
        strcpy(op->kernel, add ? "ref_add" : "ref_multiply");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    op->v.add = k->add;
    op->v.multiply = k->multiply;
    mf_name_kernel(op, add ? "f32_add" : "f32_multiply", k);
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    static const mk_activation linear = {MK_ACT_LINEAR, 0.0f, 0.0f};
    const mf_tensor *yt = &e->m->tensors[op->out];
    const float *xs[MF_MAX_INPUTS];
    size_t counts[MF_MAX_INPUTS];
    for (uint32_t i = 0; i < op->n_in; i++) {
        xs[i] = mf_src(e, op->in[i]);
        counts[i] = e->m->tensors[op->in[i]].count;
    }
    float *y = mf_dst(e, op);
    int add = op->type == MF_OP_ADD;
    if (op->serial && ith > 0)
        return;
    if (!op->v.add) {
        /* The references see one flat vector: the activation runs after, by rows. */
        if (add)
            mk_add_ref((int)op->n_in, xs, yt->count, &linear, y);
        else
            mk_multiply_ref((int)op->n_in, xs, counts, yt->count, &linear, y);
        mk_activation_ref(&op->act, y, yt->count, yt->dims[yt->rank - 1]);
        return;
    }
    size_t i0, i1;
    /* Whole rows of C, so a broadcast gate starts each share at channel 0. */
    size_t c = yt->dims[yt->rank - 1];
    mf_split(yt->count / c, 1, op->serial ? 0 : ith, op->serial ? 1 : nth, &i0, &i1);
    i0 *= c;
    i1 *= c;
    if (i0 >= i1)
        return;
    if (add)
        op->v.add((int)op->n_in, xs, &op->kact, y, i0, i1);
    else
        op->v.multiply((int)op->n_in, xs, counts, &op->kact, y, i0, i1);
    mf_tail_act(op, y, i0, i1);
}

const mf_op_def mf_op_add = {"add", check, prepare, run};
const mf_op_def mf_op_multiply = {"multiply", check, prepare, run};
