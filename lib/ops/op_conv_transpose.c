/* CONV2D_TRANSPOSE (format 1.2): Keras Conv2DTranspose. x [H,W,Cin], W [KH,KW,Cout,Cin] (Keras
 * order), optional bias; iattr 0 kh, 1 kw, 2 stride_h, 3 stride_w, 4 crop_top, 5 crop_bottom,
 * 6 crop_left, 7 crop_right: out_h = (H-1)*sh + kh - crop_top - crop_bottom. The exporter
 * derives the crops from TensorFlow's rule for 'same'/'valid' and output_padding; a negative
 * bottom/right crop is output_padding past the last tap (rows holding the bias alone), at most
 * stride - 1 of them. Scalar reference on thread 0. */
#include "ops.h"

#define MAX_DIM (1u << 24)
enum { A_KH, A_KW, A_SH, A_SW, A_CT, A_CB, A_CL, A_CR };

/* One axis: the output size, or -1 when the attributes are out of range. */
static long out_size(uint32_t in, int32_t k, int32_t s, int32_t c0, int32_t c1)
{
    if (k < 1 || k > 4096 || s < 1 || s > 4096 || c0 < 0 || c0 >= k || c1 >= k || c1 <= -s)
        return -1;
    long n = ((long)in - 1) * s + k - c0 - c1;
    return n >= 1 && n <= (long)MAX_DIM ? n : -1;
}

static morsel_status check(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *w = mf_in(m, op, 1);
    const int32_t *a = op->iattr;
    if (op->n_in < 2 || op->n_in > 3 || !w->is_const || w->rank != 4 || x->rank != 3)
        return mf_op_fail(err, op, "expects x [H, W, C], a 4-D kernel and an optional bias");
    long oh = out_size(x->dims[0], a[A_KH], a[A_SH], a[A_CT], a[A_CB]);
    long ow = out_size(x->dims[1], a[A_KW], a[A_SW], a[A_CL], a[A_CR]);
    if (oh < 0 || ow < 0)
        return mf_op_fail(err, op, "kernel size, stride or cropping out of range");
    uint32_t cout = w->dims[2];
    if (w->dims[0] != (uint32_t)a[A_KH] || w->dims[1] != (uint32_t)a[A_KW] ||
        w->dims[3] != x->dims[2])
        return mf_op_fail(err, op, "kernel shape does not match the attributes or input channels");
    if (op->n_in == 3) {
        const mf_tensor *b = mf_in(m, op, 2);
        if (!b->is_const || b->rank != 1 || b->dims[0] != cout)
            return mf_op_fail(err, op, "bias must be a constant vector of the output channels");
    }
    op->win = (mk_window){.in_h = (int)x->dims[0], .in_w = (int)x->dims[1],
                          .in_c = (int)x->dims[2], .out_h = (int)oh, .out_w = (int)ow,
                          .out_c = (int)cout, .kh = a[A_KH], .kw = a[A_KW], .sh = a[A_SH],
                          .sw = a[A_SW], .pad_top = a[A_CT], .pad_left = a[A_CL], .dh = 1,
                          .dw = 1};
    /* Every input pixel meets every weight once (taps cut by the crop still cost the loop). */
    op->macs = (uint64_t)x->dims[0] * (uint64_t)x->dims[1] * (uint64_t)w->count;
    uint32_t dims[3] = {(uint32_t)oh, (uint32_t)ow, cout};
    return mf_check_out(op, &m->tensors[op->out], 3, dims, err);
}

static void run(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0)
        return;
    const float *b = op->n_in > 2 ? mf_src(e, op->in[2]) : NULL;
    mk_conv_transpose_ref(&op->win, mf_src(e, op->in[0]), mf_src(e, op->in[1]), b, &op->act,
                          mf_dst(e, op));
}

const mf_op_def mf_op_conv2d_transpose = {"conv2d_transpose", check, NULL, run};
