/* CONV2D: x [H,W,Cin], W [KH,KW,Cin,Cout] (Keras HWIO), optional bias. TF padding arrives as
 * explicit pads (the exporter turns 'same' into top/bottom/left/right, extra row bottom/right),
 * and a ZeroPadding2D in front of the conv is merged into them at load (mf_fold_pads).
 * Variants: a 1x1 stride-1 unpadded conv is a GEMM on the input as it lies; a 3x3 stride-1
 * conv with 32 or more channels either side is Winograd F(2x2, 3x3) (kernels/conv_wino2.c);
 * any other KxK conv is im2col tiles + the same GEMM; without SIMD, the reference (im2col +
 * OpenBLAS). */
#include <stdlib.h>
#include <string.h>

#include "gemm_pack.h"
#include "ops.h"

#define MAX_DIM (1u << 24)

/* Shared with DEPTHWISE_CONV2D and GROUPED_CONV2D: the kernel must match the window and the
 * input channels (per group). */
morsel_status mf_check_conv(morsel_model *m, mf_op *op, morsel_error *err);

morsel_status mf_check_conv(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *w = mf_in(m, op, 1);
    int depthwise = op->type == MF_OP_DEPTHWISE_CONV2D;
    /* GROUPED_CONV2D: W [KH,KW,Cin/G,Cout], G in iattr 10; the others have one group. */
    int32_t groups = op->type == MF_OP_GROUPED_CONV2D ? op->iattr[10] : 1;
    if (op->n_in < 2 || op->n_in > 3 || !w->is_const || w->rank != 4)
        return mf_op_fail(err, op, "expects x, a 4-D kernel and an optional bias");
    morsel_status s = mf_window(op, x, 0, &op->win, err);
    if (s)
        return s;
    if (groups < 1 || (uint32_t)groups > x->dims[2] || x->dims[2] % (uint32_t)groups != 0 ||
        w->dims[3] % (uint32_t)groups != 0)
        return mf_op_fail(err, op, "groups must divide the input and output channels");
    uint32_t cin_g = x->dims[2] / (uint32_t)groups;
    if (w->dims[0] != (uint32_t)op->win.kh || w->dims[1] != (uint32_t)op->win.kw ||
        w->dims[2] != cin_g)
        return mf_op_fail(err, op, "kernel shape does not match the attributes or input channels");
    uint64_t cout = depthwise ? (uint64_t)w->dims[2] * w->dims[3] : w->dims[3];
    if (cout > MAX_DIM)
        return mf_op_fail(err, op, "too many output channels");
    if (op->n_in == 3) {
        const mf_tensor *b = mf_in(m, op, 2);
        if (!b->is_const || b->rank != 1 || b->dims[0] != cout)
            return mf_op_fail(err, op, "bias must be a constant vector of the output channels");
    }
    op->win.out_c = (int)cout;
    op->macs = (uint64_t)op->win.out_h * (uint64_t)op->win.out_w * cout *
               (uint64_t)op->win.kh * (uint64_t)op->win.kw * (depthwise ? 1u : cin_g);
    uint32_t dims[3] = {(uint32_t)op->win.out_h, (uint32_t)op->win.out_w, (uint32_t)cout};
    return mf_check_out(op, &m->tensors[op->out], 3, dims, err);
}

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    morsel_status s = mf_check_conv(m, op, err);
    /* The reference's im2col scratch; prepare replaces it when a SIMD variant runs. */
    if (!s)
        op->scratch = mk_conv2d_scratch(&op->win);
    return s;
}

/* MORSEL_WINOGRAD=0 keeps 3x3 convs on im2col (A/B runs, tests of both paths). */
static int winograd_wanted(void)
{
    const char *env = getenv("MORSEL_WINOGRAD");
    return !env || strcmp(env, "0") != 0;
}

static morsel_status prepare(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err)
{
    const mk_window *g = &op->win;
    if (!k->gemm || !k->conv || op->act.code == MK_ACT_SOFTMAX) {
        op->serial = 1;
        op->scratch = mk_conv2d_scratch(g);
        strcpy(op->kernel, "ref_conv2d_sgemm");
        return MORSEL_OK;
    }
    mf_split_act(m, op, k);
    int K = g->kh * g->kw * g->in_c;
    morsel_status s = mf_pack_gemm(op, k, K, g->out_c, mf_in(m, op, 1)->data, err);
    if (s)
        return s;
    if (k->wino2 && mk_wino2_fits(g) && winograd_wanted()) {
        op->pack.fn = k->wino2_pack;
        op->pack.floats = k->wino2_pack_floats(K, g->out_c);
        op->v.wino2 = k->wino2;
        /* The kernel adds the bias only; the whole activation runs after it. */
        op->tact = op->act;
        op->kact = (mk_activation){MK_ACT_LINEAR, 0.0f, 0.0f};
        op->scratch = mk_wino2_scratch_floats(g);
        mf_name_kernel(op, "f32_conv3x3_wino2", k);
        return MORSEL_OK;
    }
    /* Pieces, except where the run splits by columns, each piece rebuilding the im2col. */
    if (mk_conv_is_pointwise(g) ||
        (size_t)mk_conv_tile_pixels(g) < (size_t)g->out_h * (size_t)g->out_w)
        op->parts = mf_gemm_parts(K, g->out_c);
    if (mk_conv_is_pointwise(g)) {
        op->scratch = 0;
        mf_name_kernel(op, "f32_gemm", k);
    } else if (k->conv_smallc && mk_conv_smallc_fits(g)) {
        /* Edge pixels still go through im2col: same scratch. */
        op->v.conv = k->conv_smallc;
        op->scratch = k->conv_scratch_floats(g);
        mf_name_kernel(op, "f32_conv_smallc", k);
    } else {
        op->v.conv = k->conv;
        op->scratch = k->conv_scratch_floats(g);
        mf_name_kernel(op, "f32_conv_im2col", k);
    }
    return MORSEL_OK;
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    const mk_window *g = &op->win;
    const float *x = mf_src(e, op->in[0]);
    const float *b = op->n_in > 2 ? mf_src(e, op->in[2]) : NULL;
    float *y = mf_dst(e, op);
    if (op->serial && ith > 0)
        return;
    if (!op->v.gemm) {
        mk_conv2d_ref(g, x, mf_src(e, op->in[1]), b, &op->act, y, mf_scratch(e));
        return;
    }
    if (op->serial)
        nth = 1;
    if (op->se_mul) {
        mf_run_se_conv(e, op, ith, nth);
        return;
    }
    size_t pixels = (size_t)g->out_h * (size_t)g->out_w, n = (size_t)g->out_c;
    if (op->v.wino2) {
        size_t rows = (size_t)(g->out_h + 1) / 2, w = (size_t)g->out_w, tw = (w + 1) / 2;
        if (mf_wino_by_columns(op, rows, tw, nth)) {
            /* Few tiles (7x7, 14x14 layers): each thread its share of the output channels. */
            size_t n0, n1;
            mf_split(n, (size_t)op->v.gemm_nr, ith, nth, &n0, &n1);
            if (n0 >= n1)
                return;
            op->v.wino2(g, x, op->packed, b, &op->kact, y, mf_scratch(e), 0, (int)rows,
                        (int)n0, (int)n1);
            for (size_t p = 0; p < pixels; p++)
                mf_tail_act(op, y + p * n, n0, n1);
            return;
        }
        /* Whole 2-row tiles per thread: rows of tiles, then the pixels they cover. */
        size_t r0, r1;
        mf_split(rows, 1, ith, nth, &r0, &r1);
        if (r0 >= r1)
            return;
        op->v.wino2(g, x, op->packed, b, &op->kact, y, mf_scratch(e), (int)r0, (int)r1, 0,
                    (int)n);
        size_t y1 = 2 * r1 < (size_t)g->out_h ? 2 * r1 : (size_t)g->out_h;
        mf_tail_act(op, y, 2 * r0 * w * n, y1 * w * n);
        return;
    }
    if (!op->v.conv) {
        mf_run_gemm(op, g->in_c, g->out_c, pixels, x, b, y, ith, nth);
        if (op->post)
            mf_run_post_add(e, op, g->out_c, pixels, y, ith, nth);
        return;
    }
    /* Few pixels (7x7, 8x8 layers) split over output channels instead: each thread builds the
     * whole im2col (one tile, a small copy next to the GEMM) and runs its column panels. */
    if ((size_t)mk_conv_tile_pixels(g) >= pixels &&
        mf_gemm_by_columns(op, g->out_c, pixels, nth)) {
        float *a = mf_scratch(e);
        mk_conv_im2col(g, x, 0, (int)pixels, a);
        mf_run_gemm(op, g->kh * g->kw * g->in_c, g->out_c, pixels, a, b, y, ith, nth);
        return;
    }
    size_t p0, p1;
    mf_split(pixels, (size_t)op->v.gemm_mr, ith, nth, &p0, &p1);
    if (p0 >= p1)
        return;
    op->v.conv(g, x, op->packed, b, &op->kact, y, mf_scratch(e), (int)p0, (int)p1);
    mf_tail_act(op, y, p0 * n, p1 * n);
}

const mf_op_def mf_op_conv2d = {"conv2d", check, prepare, run};
