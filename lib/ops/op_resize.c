/* RESIZE (TF bilinear / nearest with half-pixel centres: Keras Resizing, tf.image.resize) and
 * CROP (CenterCrop, slicing): in-model preprocessing, run once per image on thread 0. */
#include "ops.h"

#define MAX_DIM (1u << 24)
enum { A_METHOD = 0 };
enum { A_TOP = 0, A_LEFT = 1 };

static morsel_status check_resize(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *y = &m->tensors[op->out];
    if (op->n_in != 1 || x->rank != 3 || y->rank != 3 || y->dims[2] != x->dims[2])
        return mf_op_fail(err, op, "expects one [H, W, C] input and an [H', W', C] output");
    if (op->iattr[A_METHOD] != MK_RESIZE_NEAREST && op->iattr[A_METHOD] != MK_RESIZE_BILINEAR)
        return mf_op_fail(err, op, "unknown resize method");
    if (y->dims[0] > MAX_DIM || y->dims[1] > MAX_DIM)
        return mf_op_fail(err, op, "output size out of range");
    /* Bilinear reads 4 input cells per output value. */
    op->work = (uint64_t)y->count * (op->iattr[A_METHOD] == MK_RESIZE_BILINEAR ? 4u : 1u);
    return MORSEL_OK;
}

static void run_resize(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0)
        return;
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *yt = &e->m->tensors[op->out];
    float *y = mf_dst(e, op);
    mk_resize_ref(op->iattr[A_METHOD], (int)xt->dims[0], (int)xt->dims[1], (int)xt->dims[2],
                  (int)yt->dims[0], (int)yt->dims[1], mf_src(e, op->in[0]), y);
    mk_activation_ref(&op->act, y, yt->count, yt->dims[2]);
}

const mf_op_def mf_op_resize = {"resize", check_resize, NULL, run_resize};

static morsel_status check_crop(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0), *y = &m->tensors[op->out];
    const int32_t *a = op->iattr;
    if (op->n_in != 1 || x->rank != 3 || y->rank != 3 || y->dims[2] != x->dims[2])
        return mf_op_fail(err, op, "expects one [H, W, C] input and an [h, w, C] output");
    if (a[A_TOP] < 0 || a[A_LEFT] < 0 || (uint64_t)a[A_TOP] + y->dims[0] > x->dims[0] ||
        (uint64_t)a[A_LEFT] + y->dims[1] > x->dims[1])
        return mf_op_fail(err, op, "crop box outside the input");
    return MORSEL_OK;
}

static void run_crop(const mf_exec *e, const mf_op *op, int ith, int nth)
{
    (void)nth;
    if (ith > 0)
        return;
    const mf_tensor *xt = &e->m->tensors[op->in[0]], *yt = &e->m->tensors[op->out];
    float *y = mf_dst(e, op);
    mk_crop_ref((int)xt->dims[1], (int)xt->dims[2], op->iattr[A_TOP], op->iattr[A_LEFT],
                (int)yt->dims[0], (int)yt->dims[1], mf_src(e, op->in[0]), y);
    mk_activation_ref(&op->act, y, yt->count, yt->dims[2]);
}

const mf_op_def mf_op_crop = {"crop", check_crop, NULL, run_crop};
