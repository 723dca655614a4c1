/* CONCAT along one axis (Inception's branches, DenseNet's growth). */
#include <string.h>

#include "ops.h"

#define MAX_DIM (1u << 24)
enum { A_AXIS = 0 };

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *y = &m->tensors[op->out], *x0 = mf_in(m, op, 0);
    int axis = op->iattr[A_AXIS];
    if (axis < 0 || (uint32_t)axis >= x0->rank)
        return mf_op_fail(err, op, "axis out of range");
    uint64_t total = 0;
    for (uint32_t i = 0; i < op->n_in; i++) {
        const mf_tensor *x = mf_in(m, op, (int)i);
        if (x->rank != x0->rank)
            return mf_op_fail(err, op, "inputs have different ranks");
        for (uint32_t d = 0; d < x->rank; d++)
            if (d != (uint32_t)axis && x->dims[d] != x0->dims[d])
                return mf_op_fail(err, op, "inputs differ off the concatenation axis");
        total += x->dims[axis];
    }
    if (total > MAX_DIM)
        return mf_op_fail(err, op, "concatenated axis too long");
    uint32_t dims[4];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = (uint32_t)total;
    return mf_check_out(op, y, x0->rank, dims, err);
}

/* A prepare step, even an empty one, marks the op parallel (mf_prepare): the threads copy
 * disjoint slices of the outer dimensions, and a slice spans whole rows of the last axis,
 * as the activation (even softmax) needs. */
static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)m, (void)op, (void)k, (void)err;
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *yt = &e->m->tensors[op->out];
    const float *xs[MF_MAX_INPUTS];
    size_t outer = 1, inner[MF_MAX_INPUTS], row = 0, o0, o1;
    for (int d = 0; d < op->iattr[A_AXIS]; d++)
        outer *= xt->dims[d];
    mf_split(outer, 1, ith, nth, &o0, &o1);
    if (o0 >= o1)
        return;
    for (uint32_t i = 0; i < op->n_in; i++) {
        inner[i] = e->m->tensors[op->in[i]].count / outer;
        xs[i] = mf_src(e, op->in[i]) + o0 * inner[i];
        row += inner[i];
    }
    float *y = mf_dst(e, op) + o0 * row;
    mk_concat_ref((int)op->n_in, xs, inner, o1 - o0, y);
    mk_activation_ref(&op->act, y, (o1 - o0) * row, yt->dims[yt->rank - 1]);
}

const mf_op_def mf_op_concat = {"concat", check, prepare, run};
