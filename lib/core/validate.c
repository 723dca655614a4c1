/* Shape checking: every op's output shape is recomputed from its inputs and attributes and must
 * equal the one stored in the file. After this, kernels index memory without checks. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define MAX_DIM (1 << 24)

static morsel_status op_fail(morsel_error *err, const mf_op *op, const char *what)
{
    return morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: op '%s' (%s, %s): %s",
                       op->name, op->class_name, mf_op_type_name(op->type), what);
}

static const mf_tensor *T(const morsel_model *m, const mf_op *op, int i)
{
    return &m->tensors[op->in[i]];
}

static int same_shape(const mf_tensor *a, const mf_tensor *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof a->dims) == 0;
}

static int is_vec(const mf_tensor *t, uint32_t n)
{
    return t->is_const && t->rank == 1 && t->dims[0] == n;
}

/* Window geometry for conv/depthwise/pool: explicit pads, TF's output-size rule. */
static morsel_status window(const mf_op *op, const mf_tensor *x, int is_pool, mk_window *g,
                            morsel_error *err)
{
    const int32_t *a = op->iattr;
    if (x->rank != 3)
        return op_fail(err, op, "input must be [H, W, C]");
    int dh = is_pool ? 1 : a[8], dw = is_pool ? 1 : a[9];
    for (int i = 0; i < 4; i++)
        if (a[i] < 1 || a[i] > 4096)
            return op_fail(err, op, "kernel size or stride out of range");
    for (int i = 4; i < 8; i++)
        if (a[i] < 0 || a[i] > 4096)
            return op_fail(err, op, "padding out of range");
    if (dh < 1 || dw < 1 || dh > 4096 || dw > 4096)
        return op_fail(err, op, "dilation out of range");
    long eh = (long)(a[0] - 1) * dh + 1, ew = (long)(a[1] - 1) * dw + 1;
    long ph = (long)x->dims[0] + a[4] + a[5], pw = (long)x->dims[1] + a[6] + a[7];
    if (ph < eh || pw < ew)
        return op_fail(err, op, "kernel larger than the padded input");
    if (is_pool && (a[4] >= a[0] || a[5] >= a[0] || a[6] >= a[1] || a[7] >= a[1]))
        return op_fail(err, op, "pooling padding must be smaller than the window");
    *g = (mk_window){.in_h = (int)x->dims[0], .in_w = (int)x->dims[1], .in_c = (int)x->dims[2],
                     .out_h = (int)((ph - eh) / a[2] + 1), .out_w = (int)((pw - ew) / a[3] + 1),
                     .kh = a[0], .kw = a[1], .sh = a[2], .sw = a[3],
                     .pad_top = a[4], .pad_left = a[6], .dh = dh, .dw = dw};
    return MORSEL_OK;
}

static morsel_status check_out(const mf_op *op, const mf_tensor *y, uint32_t rank,
                               const uint32_t *dims, morsel_error *err)
{
    if (y->rank != rank)
        return op_fail(err, op, "stored output rank differs from the computed one");
    for (uint32_t i = 0; i < rank; i++)
        if (y->dims[i] != dims[i])
            return op_fail(err, op, "stored output shape differs from the computed one");
    return MORSEL_OK;
}

static morsel_status check_conv(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = T(m, op, 0), *w = T(m, op, 1);
    int dw = op->type == MF_OP_DEPTHWISE_CONV2D;
    if (op->n_in < 2 || op->n_in > 3 || !w->is_const || w->rank != 4)
        return op_fail(err, op, "expects x, a 4-D kernel and an optional bias");
    morsel_status s = window(op, x, 0, &op->win, err);
    if (s)
        return s;
    if (w->dims[0] != (uint32_t)op->iattr[0] || w->dims[1] != (uint32_t)op->iattr[1] ||
        w->dims[2] != x->dims[2])
        return op_fail(err, op, "kernel shape does not match the attributes or input channels");
    uint64_t cout = dw ? (uint64_t)w->dims[2] * w->dims[3] : w->dims[3];
    if (cout > MAX_DIM)
        return op_fail(err, op, "too many output channels");
    if (op->n_in == 3 && !is_vec(T(m, op, 2), (uint32_t)cout))
        return op_fail(err, op, "bias must be a constant vector of the output channels");
    op->win.out_c = (int)cout;
    uint32_t dims[3] = {(uint32_t)op->win.out_h, (uint32_t)op->win.out_w, (uint32_t)cout};
    if (!dw)
        op->scratch = mk_conv2d_scratch(&op->win);
    return check_out(op, &m->tensors[op->out], 3, dims, err);
}

static morsel_status check_pool(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = T(m, op, 0);
    if (op->n_in != 1)
        return op_fail(err, op, "expects one input");
    morsel_status s = window(op, x, 1, &op->win, err);
    if (s)
        return s;
    op->win.out_c = op->win.in_c;
    uint32_t dims[3] = {(uint32_t)op->win.out_h, (uint32_t)op->win.out_w, x->dims[2]};
    return check_out(op, &m->tensors[op->out], 3, dims, err);
}

static morsel_status check_elementwise(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *y = &m->tensors[op->out];
    if (op->n_in < 2)
        return op_fail(err, op, "expects at least two inputs");
    for (uint32_t i = 0; i < op->n_in; i++) {
        const mf_tensor *x = T(m, op, (int)i);
        if (same_shape(x, y))
            continue;
        /* Multiply broadcasts a per-channel gate ([C] or [1,1,C]) over [H,W,C]. */
        uint32_t c = y->dims[y->rank - 1];
        int gate = op->type == MF_OP_MULTIPLY && x->count == c && x->dims[x->rank - 1] == c;
        if (!gate)
            return op_fail(err, op, "inputs have different shapes");
    }
    size_t biggest = 0;
    for (uint32_t i = 0; i < op->n_in; i++)
        if (T(m, op, (int)i)->count > biggest)
            biggest = T(m, op, (int)i)->count;
    if (biggest != y->count)
        return op_fail(err, op, "output size matches no input");
    return MORSEL_OK;
}

static morsel_status check_concat(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *y = &m->tensors[op->out], *x0 = T(m, op, 0);
    int axis = op->iattr[0];
    if (axis < 0 || (uint32_t)axis >= x0->rank)
        return op_fail(err, op, "axis out of range");
    uint64_t total = 0;
    for (uint32_t i = 0; i < op->n_in; i++) {
        const mf_tensor *x = T(m, op, (int)i);
        if (x->rank != x0->rank)
            return op_fail(err, op, "inputs have different ranks");
        for (uint32_t d = 0; d < x->rank; d++)
            if (d != (uint32_t)axis && x->dims[d] != x0->dims[d])
                return op_fail(err, op, "inputs differ off the concatenation axis");
        total += x->dims[axis];
    }
    uint32_t dims[4];
    memcpy(dims, x0->dims, sizeof dims);
    if (total > MAX_DIM)
        return op_fail(err, op, "concatenated axis too long");
    dims[axis] = (uint32_t)total;
    return check_out(op, y, x0->rank, dims, err);
}

static morsel_status check_op(morsel_model *m, mf_op *op, morsel_error *err)
{
    const mf_tensor *x = T(m, op, 0), *y = &m->tensors[op->out];
    uint32_t c = x->dims[x->rank - 1];
    switch (op->type) {
    case MF_OP_CONV2D:
    case MF_OP_DEPTHWISE_CONV2D:
        return check_conv(m, op, err);
    case MF_OP_AVG_POOL:
    case MF_OP_MAX_POOL:
        return check_pool(m, op, err);
    case MF_OP_DENSE: {
        const mf_tensor *w = T(m, op, 1);
        if (op->n_in < 2 || op->n_in > 3 || !w->is_const || w->rank != 2 || w->dims[0] != c)
            return op_fail(err, op, "expects x [..., Cin], W [Cin, Cout], optional bias");
        if (op->n_in == 3 && !is_vec(T(m, op, 2), w->dims[1]))
            return op_fail(err, op, "bias must be a constant vector of Cout");
        uint32_t dims[4];
        memcpy(dims, x->dims, sizeof dims);
        dims[x->rank - 1] = w->dims[1];
        return check_out(op, y, x->rank, dims, err);
    }
    case MF_OP_AFFINE:
        if (op->n_in != 3 || !is_vec(T(m, op, 1), c) || !is_vec(T(m, op, 2), c))
            return op_fail(err, op, "expects x, scale [C], shift [C]");
        return check_out(op, y, x->rank, x->dims, err);
    case MF_OP_ADD:
    case MF_OP_MULTIPLY:
        return check_elementwise(m, op, err);
    case MF_OP_CONCAT:
        return check_concat(m, op, err);
    case MF_OP_GLOBAL_AVG_POOL:
    case MF_OP_GLOBAL_MAX_POOL: {
        if (op->n_in != 1 || x->rank != 3)
            return op_fail(err, op, "expects one [H, W, C] input");
        uint32_t keep[3] = {1, 1, c};
        if (y->rank == 1)
            return check_out(op, y, 1, &c, err);
        return check_out(op, y, 3, keep, err);
    }
    case MF_OP_PAD: {
        const int32_t *a = op->iattr;
        if (op->n_in != 1 || x->rank != 3)
            return op_fail(err, op, "expects one [H, W, C] input");
        for (int i = 4; i < 8; i++)
            if (a[i] < 0 || a[i] > 4096)
                return op_fail(err, op, "padding out of range");
        uint32_t dims[3] = {x->dims[0] + (uint32_t)(a[4] + a[5]),
                            x->dims[1] + (uint32_t)(a[6] + a[7]), c};
        return check_out(op, y, 3, dims, err);
    }
    case MF_OP_RESHAPE:
        if (op->n_in != 1 || x->count != y->count)
            return op_fail(err, op, "reshape must keep the element count");
        return MORSEL_OK;
    case MF_OP_ACTIVATION:
        if (op->n_in != 1)
            return op_fail(err, op, "expects one input");
        return check_out(op, y, x->rank, x->dims, err);
    case MF_OP_RESIZE:
        if (op->n_in != 1 || x->rank != 3 || y->rank != 3 || y->dims[2] != c)
            return op_fail(err, op, "expects one [H, W, C] input and an [H', W', C] output");
        if (op->iattr[0] != MK_RESIZE_NEAREST && op->iattr[0] != MK_RESIZE_BILINEAR)
            return op_fail(err, op, "unknown resize method");
        if (y->dims[0] > MAX_DIM || y->dims[1] > MAX_DIM)
            return op_fail(err, op, "output size out of range");
        return MORSEL_OK;
    case MF_OP_CROP: {
        const int32_t *a = op->iattr;
        if (op->n_in != 1 || x->rank != 3 || y->rank != 3 || y->dims[2] != c)
            return op_fail(err, op, "expects one [H, W, C] input and an [h, w, C] output");
        if (a[0] < 0 || a[1] < 0 || (uint64_t)a[0] + y->dims[0] > x->dims[0] ||
            (uint64_t)a[1] + y->dims[1] > x->dims[1])
            return op_fail(err, op, "crop box outside the input");
        return MORSEL_OK;
    }
    }
    return op_fail(err, op, "unknown op type");
}

morsel_status mf_validate_ops(morsel_model *m, morsel_error *err)
{
    /* produced[t]: t holds a value at this point of the (topological) op order. */
    unsigned char *produced = calloc(m->n_tensors, 1);
    if (!produced)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    produced[m->input] = 1;
    morsel_status s = MORSEL_OK;
    for (uint32_t i = 0; i < m->n_ops && !s; i++) {
        mf_op *op = &m->ops[i];
        if (op->out >= m->n_tensors || m->tensors[op->out].is_const || produced[op->out]) {
            s = op_fail(err, op, "output is not a fresh activation tensor");
            break;
        }
        for (uint32_t j = 0; j < op->n_in && !s; j++) {
            uint32_t t = op->in[j];
            if (t >= m->n_tensors)
                s = op_fail(err, op, "input tensor index out of range");
            else if (!m->tensors[t].is_const && !produced[t])
                s = op_fail(err, op, "reads a tensor no earlier op produced");
            else if (j == 0 && m->tensors[t].is_const)
                s = op_fail(err, op, "first input must be an activation");
        }
        if (!s && op->type != MF_OP_ADD && op->type != MF_OP_MULTIPLY &&
            op->type != MF_OP_CONCAT)
            for (uint32_t j = 1; j < op->n_in && !s; j++)
                if (!m->tensors[op->in[j]].is_const)
                    s = op_fail(err, op, "weights must be constants");
        if (!s && (op->type == MF_OP_ADD || op->type == MF_OP_MULTIPLY ||
                   op->type == MF_OP_CONCAT))
            for (uint32_t j = 0; j < op->n_in && !s; j++)
                if (m->tensors[op->in[j]].is_const)
                    s = op_fail(err, op, "inputs must be activations");
        if (!s && op->act.code == MK_ACT_SOFTMAX && m->tensors[op->out].count == 0)
            s = op_fail(err, op, "softmax over nothing");
        if (!s)
            s = check_op(m, op, err);
        if (!s)
            produced[op->out] = 1;
    }
    if (!s && !produced[m->output])
        s = morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: no op produces the output");
    if (!s && m->logits != MF_NO_TENSOR && !produced[m->logits])
        s = morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: no op produces the logits");
    free(produced);
    return s;
}

const char *mf_op_type_name(uint32_t type)
{
    static const char *const names[MF_OP_COUNT_] = {
        "?", "conv2d", "depthwise_conv2d", "dense", "affine", "add", "multiply",
        "global_avg_pool", "avg_pool", "max_pool", "pad", "reshape", "activation", "concat",
        "global_max_pool", "resize", "crop"};
    return type < MF_OP_COUNT_ ? names[type] : "?";
}

const char *mf_activation_name(const mk_activation *a)
{
    switch (a->code) {
    case MK_ACT_LINEAR: return "linear";
    case MK_ACT_RELU:
        if (a->alpha != 0.0f)
            return "leaky_relu";
        return a->max == 6.0f ? "relu6" : (a->max < 3.0e38f ? "relu_clipped" : "relu");
    case MK_ACT_SIGMOID: return "sigmoid";
    case MK_ACT_TANH: return "tanh";
    case MK_ACT_SWISH: return "swish";
    case MK_ACT_SOFTMAX: return "softmax";
    case MK_ACT_ELU: return "elu";
    case MK_ACT_HARD_SIGMOID: return "hard_sigmoid";
    case MK_ACT_HARD_SIGMOID_K2: return "hard_sigmoid_k2";
    case MK_ACT_GELU: return "gelu";
    }
    return "?";
}
