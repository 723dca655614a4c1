/* Executing the planned graph: one pass over the ops in file (topological) order, each through
 * the kernel table chosen at load. No checks here: the loader validated everything. */
#include <string.h>

#include "model.h"

static const float *src(const morsel_model *m, const uint8_t *arena, uint32_t t)
{
    const mf_tensor *x = &m->tensors[t];
    return x->is_const ? x->data : (const float *)(const void *)(arena + x->arena_offset);
}

static void run_op(const morsel_model *m, const mf_op *op, uint8_t *arena, float *scratch)
{
    static const mk_activation linear = {MK_ACT_LINEAR, 0.0f, 0.0f};
    const mk_kernels *k = &m->kernels;
    const mf_tensor *xt = &m->tensors[op->in[0]], *yt = &m->tensors[op->out];
    const float *x = src(m, arena, op->in[0]);
    const float *w = op->n_in > 1 ? src(m, arena, op->in[1]) : NULL;
    const float *b = op->n_in > 2 ? src(m, arena, op->in[2]) : NULL;
    float *y = (float *)(void *)(arena + yt->arena_offset);
    size_t c_in = xt->dims[xt->rank - 1];
    const float *xs[MF_MAX_INPUTS];
    size_t counts[MF_MAX_INPUTS];
    for (uint32_t i = 0; i < op->n_in; i++) {
        xs[i] = src(m, arena, op->in[i]);
        counts[i] = m->tensors[op->in[i]].count;
    }

    switch (op->type) {
    case MF_OP_CONV2D:
        k->conv2d(&op->win, x, w, b, &op->act, y, scratch);
        return;
    case MF_OP_DEPTHWISE_CONV2D:
        k->depthwise(&op->win, (int)m->tensors[op->in[1]].dims[3], x, w, b, &op->act, y);
        return;
    case MF_OP_DENSE:
        k->dense((int)(xt->count / c_in), (int)c_in, (int)yt->dims[yt->rank - 1], x, w, b,
                 &op->act, y);
        return;
    case MF_OP_AFFINE:
        k->affine(xt->count, (int)c_in, x, w, b, &op->act, y);
        return;
    /* Add/multiply kernels see one flat vector; their activation is applied below with the
     * channel count, which softmax needs. */
    case MF_OP_ADD:
        mk_add_ref((int)op->n_in, xs, yt->count, &linear, y);
        break;
    case MF_OP_MULTIPLY:
        mk_multiply_ref((int)op->n_in, xs, counts, yt->count, &linear, y);
        break;
    case MF_OP_GLOBAL_AVG_POOL:
        mk_global_avgpool_ref((int)(xt->dims[0] * xt->dims[1]), (int)c_in, x, y);
        break;
    case MF_OP_GLOBAL_MAX_POOL:
        mk_global_maxpool_ref((int)(xt->dims[0] * xt->dims[1]), (int)c_in, x, y);
        break;
    case MF_OP_AVG_POOL:
        k->avgpool(&op->win, x, y);
        break;
    case MF_OP_MAX_POOL:
        k->maxpool(&op->win, x, y);
        break;
    case MF_OP_PAD:
        mk_pad_ref((int)xt->dims[0], (int)xt->dims[1], (int)c_in, op->iattr[4], op->iattr[5],
                   op->iattr[6], op->iattr[7], op->fattr[0], x, y);
        break;
    case MF_OP_RESHAPE:
    case MF_OP_ACTIVATION:
        memcpy(y, x, yt->count * sizeof *y);
        break;
    case MF_OP_RESIZE:
        mk_resize_ref(op->iattr[0], (int)xt->dims[0], (int)xt->dims[1], (int)c_in,
                      (int)yt->dims[0], (int)yt->dims[1], x, y);
        break;
    case MF_OP_CROP:
        mk_crop_ref((int)xt->dims[1], (int)c_in, op->iattr[0], op->iattr[1], (int)yt->dims[0],
                    (int)yt->dims[1], x, y);
        break;
    case MF_OP_CONCAT: {
        /* Each input is `outer` blocks of (its axis length x everything after the axis). */
        int axis = op->iattr[0];
        size_t outer = 1, inner[MF_MAX_INPUTS];
        for (int d = 0; d < axis; d++)
            outer *= xt->dims[d];
        for (uint32_t i = 0; i < op->n_in; i++)
            inner[i] = counts[i] / outer;
        mk_concat_ref((int)op->n_in, xs, inner, outer, y);
        break;
    }
    }
    /* Ops whose kernels take no activation apply the fused one here. */
    if (op->act.code != MK_ACT_LINEAR)
        mk_activation_ref(&op->act, y, yt->count, yt->dims[yt->rank - 1]);
}

void mf_execute(const morsel_model *m, uint8_t *arena, float *scratch)
{
    for (uint32_t i = 0; i < m->n_ops; i++)
        run_op(m, &m->ops[i], arena, scratch);
}
