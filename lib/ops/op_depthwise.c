/* DEPTHWISE_CONV2D: x [H,W,C], W [KH,KW,C,M] (Keras order: output channel c*M + m reads input
 * channel c), optional bias. With multiplier 1 (every keras.applications model) the SIMD
 * variants run: 3x3 at stride 1 or 2 (MobileNet's), or any window; padding is handled inside
 * the kernel, so a ZeroPadding2D in front (MobileNetV2's stride-2 blocks) costs no copy. */
#include <string.h>

#include "ops.h"

morsel_status mf_check_conv(morsel_model *m, mf_op *op, morsel_error *err);

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    const mk_window *g = &op->win;
    int multiplier = (int)mf_in(m, op, 1)->dims[3];
    if (multiplier != 1 || !k->dwconv_any || op->act.code == MK_ACT_SOFTMAX) {
        op->serial = 1;
        strcpy(op->kernel, "ref_depthwise");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    int k3 = g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1;
    if (k3 && g->sh == 1 && g->sw == 1 && k->dwconv3x3_s1) {
        op->v.dwconv = k->dwconv3x3_s1;
        mf_name_kernel(op, "f32_dwconv3x3_s1", k);
    } else if (k3 && g->sh == 2 && g->sw == 2 && k->dwconv3x3_s2) {
        op->v.dwconv = k->dwconv3x3_s2;
        mf_name_kernel(op, "f32_dwconv3x3_s2", k);
    } else {
        op->v.dwconv = k->dwconv_any;
        mf_name_kernel(op, "f32_dwconv", k);
    }
    op->parts = MF_PARTS; /* fewer once convs are fused in (mf_fuse_expand_dw, _dw_project) */
    (void)err;
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mk_window *g = &op->win;
    const float *x = mf_src(e, op->in[0]), *w = mf_src(e, op->in[1]);
    const float *b = op->n_in > 2 ? mf_src(e, op->in[2]) : NULL;
    float *y = mf_dst(e, op);
    if (op->serial) {
        if (ith == 0)
            mk_depthwise_ref(g, (int)e->m->tensors[op->in[1]].dims[3], x, w, b, &op->act, y);
        return;
    }
    size_t r0, r1;
    mf_split((size_t)g->out_h, 1, ith, nth, &r0, &r1);
    if (r0 >= r1)
        return;
    if (op->pre || op->proj) {
        mf_run_dw_bands(e, op, mf_scratch(e), (int)r0, (int)r1);
        return;
    }
    op->v.dwconv(g, x, w, b, &op->kact, y, (int)r0, (int)r1);
    size_t row = (size_t)g->out_w * (size_t)g->out_c;
    mf_tail_act(op, y, r0 * row, r1 * row);
}

const mf_op_def mf_op_depthwise = {"depthwise_conv2d", mf_check_conv, prepare, run};
