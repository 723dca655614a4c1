/* PAD: constant padding around [H,W,C] (ZeroPadding2D). A zero PAD whose only reader is a conv
 * or depthwise conv is merged into that op's window at load (mf_fold_pads) and never runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

enum { A_PAD_T = 4, A_PAD_B = 5, A_PAD_L = 6, A_PAD_R = 7 };
enum { F_VALUE = 0 };

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0);
    const int32_t *a = op->iattr;
    if (op->n_in != 1 || x->rank != 3)
        return mf_op_fail(err, op, "expects one [H, W, C] input");
    for (int i = A_PAD_T; i <= A_PAD_R; i++)
        if (a[i] < 0 || a[i] > 4096)
            return mf_op_fail(err, op, "padding out of range");
    uint32_t dims[3] = {x->dims[0] + (uint32_t)(a[A_PAD_T] + a[A_PAD_B]),
                        x->dims[1] + (uint32_t)(a[A_PAD_L] + a[A_PAD_R]), x->dims[2]};
    return mf_check_out(op, &m->tensors[op->out], 3, dims, err);
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0 || op->folded)
        return;
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *yt = &e->m->tensors[op->out];
    const int32_t *a = op->iattr;
    float *y = mf_dst(e, op);
    mk_pad_ref((int)xt->dims[0], (int)xt->dims[1], (int)xt->dims[2], a[A_PAD_T], a[A_PAD_B],
               a[A_PAD_L], a[A_PAD_R], op->fattr[F_VALUE], mf_src(e, op->in[0]), y);
    mk_activation_ref(&op->act, y, yt->count, yt->dims[2]);
}

const mf_op_def mf_op_pad = {"pad", check, NULL, run};

/* The merge: ZeroPadding2D then a 'valid' conv computes exactly the conv with those pads
 * added to its own, since padded taps contribute zero either way. */
void mf_fold_pads(morsel_model *m)
{
    uint32_t *readers = calloc(m->n_tensors, sizeof *readers);
    if (!readers)
        return; /* an optimisation only: without memory, run the PAD */
    for (uint32_t i = 0; i < m->n_ops; i++)
        for (uint32_t j = 0; j < m->ops[i].n_in; j++)
            readers[m->ops[i].in[j]]++;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *p = &m->ops[i];
        if (p->type != MF_OP_PAD || p->fattr[F_VALUE] != 0.0f || p->act.code != MK_ACT_LINEAR ||
            readers[p->out] != 1 || p->out == m->output || p->out == m->logits)
            continue;
        for (uint32_t k = i + 1; k < m->n_ops; k++) {
            mf_op *c = &m->ops[k];
            if (c->in[0] != p->out)
                continue;
            if (c->type == MF_OP_CONV2D || c->type == MF_OP_DEPTHWISE_CONV2D ||
                c->type == MF_OP_GROUPED_CONV2D) {
                const mf_tensor *x = &m->tensors[p->in[0]];
                c->in[0] = p->in[0];
                c->win.in_h = (int)x->dims[0];
                c->win.in_w = (int)x->dims[1];
                c->win.pad_top += p->iattr[A_PAD_T];
                c->win.pad_left += p->iattr[A_PAD_L];
                p->folded = 1;
                snprintf(p->kernel, sizeof p->kernel, "folded into the next conv");
            }
            break;
        }
    }
    free(readers);
}
