/* AVG_POOL and MAX_POOL over windows, and the global pools. Keras 'same' average pooling
 * divides by the cells inside the input only (count_include_pad = False); padded cells never
 * win a max. */
#include <string.h>

#include "ops.h"

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0);
    if (op->n_in != 1)
        return mf_op_fail(err, op, "expects one input");
    morsel_status s = mf_window(op, x, 1, &op->win, err);
    if (s)
        return s;
    op->win.out_c = op->win.in_c;
    op->work = (uint64_t)op->win.out_h * (uint64_t)op->win.out_w * (uint64_t)op->win.out_c *
               (uint64_t)op->win.kh * (uint64_t)op->win.kw;
    uint32_t dims[3] = {(uint32_t)op->win.out_h, (uint32_t)op->win.out_w, x->dims[2]};
    return mf_check_out(op, &m->tensors[op->out], 3, dims, err);
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)err;
    int avg = op->type == MF_OP_AVG_POOL;
    mk_pool_range_fn f = avg ? k->avgpool : k->maxpool;
    if (!f) {
        op->serial = 1;
        strcpy(op->kernel, avg ? "ref_avgpool" : "ref_maxpool");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    /* Pools take no activation: the whole of it runs as the tail. */
    if (op->act.code == MK_ACT_RELU) {
        op->tact = op->act;
        op->kact.code = MK_ACT_LINEAR;
    }
    op->v.pool = f;
    mf_name_kernel(op, avg ? "f32_avgpool" : "f32_maxpool", k);
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mk_window *g = &op->win;
    const float *x = mf_src(e, op->in[0]);
    float *y = mf_dst(e, op);
    size_t row = (size_t)g->out_w * (size_t)g->out_c;
    if (op->serial && ith > 0)
        return;
    if (!op->v.pool) {
        (op->type == MF_OP_AVG_POOL ? mk_avgpool_ref : mk_maxpool_ref)(g, x, y);
        mk_activation_ref(&op->act, y, (size_t)g->out_h * row, (size_t)g->out_c);
        return;
    }
    size_t r0, r1;
    mf_split((size_t)g->out_h, 1, op->serial ? 0 : ith, op->serial ? 1 : nth, &r0, &r1);
    if (r0 >= r1)
        return;
    op->v.pool(g, x, y, (int)r0, (int)r1);
    mf_tail_act(op, y, r0 * row, r1 * row);
}

const mf_op_def mf_op_avg_pool = {"avg_pool", check, prepare, run};
const mf_op_def mf_op_max_pool = {"max_pool", check, prepare, run};

static morsel_status check_global(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *y = &m->tensors[op->out];
    if (op->n_in != 1 || x->rank != 3)
        return mf_op_fail(err, op, "expects one [H, W, C] input");
    uint32_t c = x->dims[2], keep[3] = {1, 1, c};
    op->work = x->count;
    if (y->rank == 1)
        return mf_check_out(op, y, 1, &c, err);
    return mf_check_out(op, y, 3, keep, err);
}

static morsel_status prepare_global(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                                    morsel_error *err)
{
    (void)err;
    int avg = op->type == MF_OP_GLOBAL_AVG_POOL;
    mk_gpool_fn f = avg ? k->global_avgpool : k->global_maxpool;
    if (!f) {
        op->serial = 1;
        strcpy(op->kernel, avg ? "ref_global_avgpool" : "ref_global_maxpool");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    if (op->act.code == MK_ACT_RELU) {
        op->tact = op->act;
        op->kact.code = MK_ACT_LINEAR;
    }
    op->v.gpool = f;
    op->v.gsum = avg ? k->global_sum : NULL;
    mf_name_kernel(op, avg ? "f32_global_avgpool" : "f32_global_maxpool", k);
    return MORSEL_OK;
}

static void run_global(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mf_tensor *xt = &e->m->tensors[op->in[0]];
    int hw = (int)(xt->dims[0] * xt->dims[1]), c = (int)xt->dims[2];
    const float *x = mf_src(e, op->in[0]);
    float *y = mf_dst(e, op);
    if (op->serial && ith > 0)
        return;
    if (!op->v.gpool) {
        (op->type == MF_OP_GLOBAL_AVG_POOL ? mk_global_avgpool_ref : mk_global_maxpool_ref)(
            hw, c, x, y);
        mk_activation_ref(&op->act, y, (size_t)c, (size_t)c);
        return;
    }
    if (op->chunks) {
        /* Chunk j sums rows mf_split(H, 1, j, chunks) of x: the same rows whatever the thread
         * count, and (split over threads in order) the rows this thread's share of the
         * depthwise conv before it wrote, so they are read from its own cache. */
        size_t j0, j1, h = xt->dims[0], w = xt->dims[1];
        mf_split((size_t)op->chunks, 1, ith, nth, &j0, &j1);
        for (size_t j = j0; j < j1; j++) {
            size_t r0, r1;
            mf_split(h, 1, (int)j, op->chunks, &r0, &r1);
            op->v.gsum(c, x, r0 * w, r1 * w, (double *)(void *)y + j * (size_t)c);
        }
        return;
    }
    size_t c0, c1;
    mf_split((size_t)c, 16, op->serial ? 0 : ith, op->serial ? 1 : nth, &c0, &c1);
    if (c0 >= c1)
        return;
    op->v.gpool(hw, c, x, y, (int)c0, (int)c1);
    mf_tail_act(op, y, c0, c1);
}

const mf_op_def mf_op_global_avg_pool = {"global_avg_pool", check_global, prepare_global,
                                         run_global};
const mf_op_def mf_op_global_max_pool = {"global_max_pool", check_global, prepare_global,
                                         run_global};
