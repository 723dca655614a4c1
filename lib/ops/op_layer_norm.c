/* LAYER_NORM (format 1.2): Keras LayerNormalization over the last (channel) axis. x [..., C],
 * gamma [C], beta [C] (the exporter writes ones / zeros when scale / center are off); fattr 0
 * epsilon, finite and >= 0, added to the variance inside the square root. Scalar reference
 * on thread 0. */
#include "ops.h"

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    morsel_status s = mf_check_channel_op(m, op, "expects x, gamma [C], beta [C]", err);
    if (s)
        return s;
    /* The loader refused non-finite attributes; a negative epsilon could make var + eps 0. */
    if (!(op->fattr[0] >= 0.0f))
        return mf_op_fail(err, op, "epsilon must be >= 0");
    /* Two passes for the statistics, one to write: three reads of every value. */
    op->work = 3u * (uint64_t)mf_in(m, op, 0)->count;
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0)
        return;
    const mf_tensor *xt = &e->m->tensors[op->in[0]];
    uint32_t c = xt->dims[xt->rank - 1];
    mk_layer_norm_ref(xt->count / c, (int)c, op->fattr[0], mf_src(e, op->in[0]),
                      mf_src(e, op->in[1]), mf_src(e, op->in[2]), &op->act, mf_dst(e, op));
}

const mf_op_def mf_op_layer_norm = {"layer_norm", check, NULL, run};
