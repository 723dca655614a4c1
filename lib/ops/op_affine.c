/* AFFINE: y = x * scale[c] + shift[c] over the last axis (an unfolded BatchNormalization,
 * Rescaling, Normalization, preprocess_input arithmetic). */
#include <string.h>

#include "ops.h"

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    return mf_check_channel_op(m, op, "expects x, scale [C], shift [C]", err);
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)err;
    if (!k->affine) {
        op->serial = 1;
        strcpy(op->kernel, "ref_affine");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    op->v.affine = k->affine;
    mf_name_kernel(op, "f32_affine", k);
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mf_tensor *xt = &e->m->tensors[op->in[0]];
    size_t c = xt->dims[xt->rank - 1];
    const float *x = mf_src(e, op->in[0]), *scale = mf_src(e, op->in[1]);
    const float *shift = mf_src(e, op->in[2]);
    float *y = mf_dst(e, op);
    if (op->serial && ith > 0)
        return;
    if (!op->v.affine) {
        mk_affine_ref(xt->count, (int)c, x, scale, shift, &op->act, y);
        return;
    }
    size_t r0, r1;
    mf_split(xt->count / c, 1, op->serial ? 0 : ith, op->serial ? 1 : nth, &r0, &r1);
    if (r0 >= r1)
        return;
    op->v.affine((int)c, x, scale, shift, &op->kact, y, r0 * c, r1 * c);
    mf_tail_act(op, y, r0 * c, r1 * c);
}

const mf_op_def mf_op_affine = {"affine", check, prepare, run};
