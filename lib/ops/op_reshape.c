/* RESHAPE (Flatten, Reshape: same values, new shape) and ACTIVATION (a standalone activation
 * layer): a copy, then the activation. */
#include <string.h>

#include "ops.h"

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
    memcpy(y + i0, x + i0, (i1 - i0) * sizeof *y);
    mf_tail_act(op, y, i0, i1);
}

const mf_op_def mf_op_reshape = {"reshape", check_reshape, prepare, run};
const mf_op_def mf_op_activation = {"activation", check_activation, prepare, run};
