/* GROUPED_CONV2D (format 1.2): Keras Conv2D with 1 < groups < channels (RegNet). x [H,W,Cin],
 * W [KH,KW,Cin/G,Cout], optional bias; iattr as CONV2D plus 10 groups. Output channel o
 * belongs to group o / (Cout/G) and reads only that group's Cin/G input channels (TensorFlow's
 * grouped Conv2D, which Keras calls). The exporter writes groups == Cin as DEPTHWISE_CONV2D
 * (ConvNeXt). Each group runs through the scalar direct conv, the conv oracle, on its channel
 * slice: correct first, on thread 0; a packed variant when a model needs the speed. The group's
 * kernel slice is gathered into scratch at run time (a copy of the weights per inference, small
 * next to the MACs), so the op keeps no memory of its own. */
#include "ops.h"

enum { A_GROUPS = 10 };

morsel_status mf_check_conv(morsel_model *m, mf_op *op, morsel_error *err);

/* One group's geometry: the op's window on Cin/G channels in, Cout/G out. */
static mk_window group_window(const mf_op *op)
{
    mk_window g = op->win;
    g.in_c /= op->iattr[A_GROUPS];
    g.out_c /= op->iattr[A_GROUPS];
    return g;
}

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    morsel_status s = mf_check_conv(m, op, err);
    if (s)
        return s;
    /* A group's input slice, its output and its kernel [KH,KW,Cin/G,Cout/G], contiguous. */
    mk_window g = group_window(op);
    op->scratch = (size_t)g.in_h * (size_t)g.in_w * (size_t)g.in_c +
                  (size_t)g.out_h * (size_t)g.out_w * (size_t)g.out_c +
                  (size_t)g.kh * (size_t)g.kw * (size_t)g.in_c * (size_t)g.out_c;
    return MORSEL_OK;
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    (void)m, (void)k, (void)err;
    op->serial = 1;
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0)
        return;
    static const mk_activation linear = {MK_ACT_LINEAR, 0.0f, 0.0f};
    mk_window g = group_window(op);
    size_t groups = (size_t)op->iattr[A_GROUPS], cin = (size_t)op->win.in_c;
    size_t cout = (size_t)op->win.out_c, cig = (size_t)g.in_c, cog = (size_t)g.out_c;
    size_t in_px = (size_t)g.in_h * (size_t)g.in_w, out_px = (size_t)g.out_h * (size_t)g.out_w;
    const size_t taps = (size_t)g.kh * (size_t)g.kw;
    const float *x = mf_src(e, op->in[0]), *b = op->n_in > 2 ? mf_src(e, op->in[2]) : NULL;
    const float *w = mf_src(e, op->in[1]); /* [KH,KW,Cin/G,Cout] */
    float *y = mf_dst(e, op), *xs = mf_scratch(e), *ys = xs + in_px * cig;
    float *ws = ys + out_px * cog;
    for (size_t gi = 0; gi < groups; gi++) {
        for (size_t t = 0; t < taps * cig; t++)
            for (size_t o = 0; o < cog; o++)
                ws[t * cog + o] = w[t * cout + gi * cog + o];
        for (size_t p = 0; p < in_px; p++)
            for (size_t i = 0; i < cig; i++)
                xs[p * cig + i] = x[p * cin + gi * cig + i];
        mk_conv2d_direct(&g, xs, ws, b ? b + gi * cog : NULL, &linear, ys);
        for (size_t p = 0; p < out_px; p++)
            for (size_t o = 0; o < cog; o++)
                y[p * cout + gi * cog + o] = ys[p * cog + o];
    }
    /* After all groups: a softmax spans every output channel. */
    mk_activation_ref(&op->act, y, out_px * cout, cout);
}

const mf_op_def mf_op_grouped_conv2d = {"grouped_conv2d", check, prepare, run};
