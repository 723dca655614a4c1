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

static void fill(float *y, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        y[i] = v;
}

/* Output rows [r0, r1), the same values mk_pad_ref writes there: a PAD that stays (ResNet50V2's
 * pool1_pad feeds a max pool, 114x114x64) runs split over the threads like any other op; on
 * one thread it held the other waiting 0.36 ms per image. */
static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    if (op->folded)
        return;
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *yt = &e->m->tensors[op->out];
    const int32_t *a = op->iattr;
    size_t c = xt->dims[2], in_h = xt->dims[0], in_row = (size_t)xt->dims[1] * c;
    size_t left = (size_t)a[A_PAD_L] * c, right = (size_t)a[A_PAD_R] * c;
    size_t out_row = left + in_row + right, top = (size_t)a[A_PAD_T];
    float v = op->fattr[F_VALUE];
    size_t r0, r1;
    mf_split(yt->dims[0], 1, ith, nth, &r0, &r1);
    const float *x = mf_src(e, op->in[0]);
    float *y = mf_dst(e, op);
    for (size_t r = r0; r < r1; r++) {
        float *yr = y + r * out_row;
        if (r < top || r >= top + in_h) {
            fill(yr, out_row, v);
            continue;
        }
        fill(yr, left, v);
        memcpy(yr + left, x + (r - top) * in_row, in_row * sizeof *yr);
        fill(yr + left + in_row, right, v);
    }
    if (r0 < r1)
        mk_activation_ref(&op->act, y + r0 * out_row, (r1 - r0) * out_row, c);
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
