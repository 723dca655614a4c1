/* The registry: file op type -> entry. The numbers are the file format's (weights/FORMAT.md)
 * and the exporter's (weights/morsel_exporter/ir.py); test_registry checks all three agree. */
#include "ops.h"

extern const mf_op_def mf_op_conv2d, mf_op_depthwise, mf_op_dense, mf_op_affine, mf_op_add,
    mf_op_multiply, mf_op_global_avg_pool, mf_op_avg_pool, mf_op_max_pool, mf_op_pad,
    mf_op_reshape, mf_op_activation, mf_op_concat, mf_op_global_max_pool, mf_op_resize,
    mf_op_crop, mf_op_grouped_conv2d, mf_op_layer_norm, mf_op_conv2d_transpose;

static const mf_op_def *const REGISTRY[MF_OP_COUNT_] = {
    [MF_OP_CONV2D] = &mf_op_conv2d,
    [MF_OP_DEPTHWISE_CONV2D] = &mf_op_depthwise,
    [MF_OP_DENSE] = &mf_op_dense,
    [MF_OP_AFFINE] = &mf_op_affine,
    [MF_OP_ADD] = &mf_op_add,
    [MF_OP_MULTIPLY] = &mf_op_multiply,
    [MF_OP_GLOBAL_AVG_POOL] = &mf_op_global_avg_pool,
    [MF_OP_AVG_POOL] = &mf_op_avg_pool,
    [MF_OP_MAX_POOL] = &mf_op_max_pool,
    [MF_OP_PAD] = &mf_op_pad,
    [MF_OP_RESHAPE] = &mf_op_reshape,
    [MF_OP_ACTIVATION] = &mf_op_activation,
    [MF_OP_CONCAT] = &mf_op_concat,
    [MF_OP_GLOBAL_MAX_POOL] = &mf_op_global_max_pool,
    [MF_OP_RESIZE] = &mf_op_resize,
    [MF_OP_CROP] = &mf_op_crop,
    [MF_OP_GROUPED_CONV2D] = &mf_op_grouped_conv2d,
    [MF_OP_LAYER_NORM] = &mf_op_layer_norm,
    [MF_OP_CONV2D_TRANSPOSE] = &mf_op_conv2d_transpose,
};

const mf_op_def *mf_op_def_for(uint32_t type)
{
    return type < MF_OP_COUNT_ ? REGISTRY[type] : NULL;
}

const char *mf_op_type_name(uint32_t type)
{
    const mf_op_def *d = mf_op_def_for(type);
    return d ? d->name : "?";
}
