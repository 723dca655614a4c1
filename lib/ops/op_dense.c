/* DENSE: x [..., Cin] @ W [Cin, Cout] + b over the last axis (Keras Dense on any rank). */
#include <string.h>

#include "ops.h"

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *w = mf_in(m, op, 1), *y = &m->tensors[op->out];
    uint32_t c = x->dims[x->rank - 1];
    if (op->n_in < 2 || op->n_in > 3 || !w->is_const || w->rank != 2 || w->dims[0] != c)
        return mf_op_fail(err, op, "expects x [..., Cin], W [Cin, Cout], optional bias");
    if (op->n_in == 3) {
        const mf_tensor *b = mf_in(m, op, 2);
        if (!b->is_const || b->rank != 1 || b->dims[0] != w->dims[1])
            return mf_op_fail(err, op, "bias must be a constant vector of Cout");
    }
    uint32_t dims[4];
    memcpy(dims, x->dims, sizeof dims);
    dims[x->rank - 1] = w->dims[1];
    op->macs = (uint64_t)(x->count / c) * c * w->dims[1];
    return mf_check_out(op, y, x->rank, dims, err);
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    const mf_tensor *wt = mf_in(m, op, 1);
    /* A classifier head's one row runs on the packed GEMM too, though it is memory-bound:
     * OpenBLAS's sgemv was level with it on warm weights (1x1280->256: 0.017 ms both,
     * test_k_gemm --bench) but serial, while the GEMM's threads split the columns, each
     * streaming its own panels. In MobileNetV2 (cold weights, 1280x256 + 256x128 + 128x5),
     * interleaved: 1 thread 0.16 -> 0.07-0.14 ms, 2 threads 0.20 -> 0.05-0.08 ms. */
    if (!k->gemm) {
        op->serial = 1;
        strcpy(op->kernel, "ref_dense_sgemm");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    mf_name_kernel(op, "f32_gemm", k);
    op->parts = MF_PARTS;
    return mf_pack_gemm(op, k, (int)wt->dims[0], (int)wt->dims[1], wt->data, err);
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *wt = &e->m->tensors[op->in[1]];
    const float *x = mf_src(e, op->in[0]);
    const float *b = op->n_in > 2 ? mf_src(e, op->in[2]) : NULL;
    float *y = mf_dst(e, op);
    int cin = (int)wt->dims[0], cout = (int)wt->dims[1];
    size_t rows = xt->count / (size_t)cin;
    if (op->serial && ith > 0)
        return;
    if (!op->v.gemm) {
        mk_dense_ref((int)rows, cin, cout, x, wt->data, b, &op->act, y);
        return;
    }
    mf_run_gemm(op, cin, cout, rows, x, b, y, ith, nth); /* serial only without a GEMM */
}

const mf_op_def mf_op_dense = {"dense", check, prepare, run};
