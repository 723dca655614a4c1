/* The scalar reference kernels (kernels/ref/): portable, whole-op, and the oracles every SIMD
 * variant (microkernels.h) is tested against. The op registry (lib/ops/) falls back to them
 * where no variant exists. Kernels trust their inputs: the loader has validated every shape
 * and attribute.
 *
 * Layout: activations are NHWC without the batch axis ([H, W, C] row-major, C fastest).
 * Weights are in Keras order (conv HWIO, depthwise [KH,KW,C,M], dense [Cin,Cout]). */
#ifndef MORSEL_KERNELS_H
#define MORSEL_KERNELS_H

#include <stddef.h>

/* Activation codes, identical to the file format's. */
enum mk_act {
    MK_ACT_LINEAR = 0,
    MK_ACT_RELU = 1, /* min(max(x,0) + alpha*min(x,0), max) */
    MK_ACT_SIGMOID = 2,
    MK_ACT_TANH = 3,
    MK_ACT_SWISH = 4,
    MK_ACT_SOFTMAX = 5, /* over the last axis: rows of `channels` values */
    MK_ACT_ELU = 6,
    MK_ACT_HARD_SIGMOID = 7, /* Keras 3: clip(x/6 + 0.5, 0, 1) */
    MK_ACT_GELU = 8,
    MK_ACT_HARD_SIGMOID_K2 = 9 /* Keras 2 / tf_keras: clip(0.2x + 0.5, 0, 1) */
};

typedef struct mk_activation {
    int code;
    float alpha; /* RELU negative slope, ELU alpha */
    float max;   /* RELU upper clip, +INFINITY when none */
} mk_activation;

/* Applies `a` in place to n values laid out as rows of `channels` (softmax needs the rows). */
void mk_activation_ref(const mk_activation *a, float *x, size_t n, size_t channels);

/* Spatial window geometry shared by conv, depthwise and pooling. */
typedef struct mk_window {
    int in_h, in_w, in_c;
    int out_h, out_w, out_c;
    int kh, kw, sh, sw;
    int pad_top, pad_left; /* bottom/right padding is implied by out_h/out_w */
    int dh, dw;            /* dilation */
} mk_window;

/* Scratch floats a conv needs (im2col, tiled so it stays near 4 MB); 0 when it can run without
 * (1x1 stride-1 unpadded), in which case scratch may be NULL. Bias pointers may be NULL. */
size_t mk_conv2d_scratch(const mk_window *g);

typedef void (*mk_conv2d_fn)(const mk_window *g, const float *x, const float *w, const float *b,
                             const mk_activation *act, float *y, float *scratch);
typedef void (*mk_depthwise_fn)(const mk_window *g, int multiplier, const float *x,
                                const float *w, const float *b, const mk_activation *act,
                                float *y);
/* y[rows, cout] = x[rows, cin] @ w[cin, cout] + b */
typedef void (*mk_dense_fn)(int rows, int cin, int cout, const float *x, const float *w,
                            const float *b, const mk_activation *act, float *y);
/* y[i] = x[i]*scale[i % c] + shift[i % c], then act. May run in place (y == x). */
typedef void (*mk_affine_fn)(size_t n, int c, const float *x, const float *scale,
                             const float *shift, const mk_activation *act, float *y);
typedef void (*mk_pool_fn)(const mk_window *g, const float *x, float *y);

void mk_conv2d_ref(const mk_window *g, const float *x, const float *w, const float *b,
                   const mk_activation *act, float *y, float *scratch);
/* Scalar direct loop, no BLAS: the reference every conv variant is tested against. */
void mk_conv2d_direct(const mk_window *g, const float *x, const float *w, const float *b,
                      const mk_activation *act, float *y);
void mk_depthwise_ref(const mk_window *g, int multiplier, const float *x, const float *w,
                      const float *b, const mk_activation *act, float *y);
void mk_dense_ref(int rows, int cin, int cout, const float *x, const float *w, const float *b,
                  const mk_activation *act, float *y);
void mk_affine_ref(size_t n, int c, const float *x, const float *scale, const float *shift,
                   const mk_activation *act, float *y);
/* Keras 'same' average pooling divides by the cells inside the input only. */
void mk_avgpool_ref(const mk_window *g, const float *x, float *y);
void mk_maxpool_ref(const mk_window *g, const float *x, float *y);
void mk_global_avgpool_ref(int hw, int c, const float *x, float *y);
void mk_global_maxpool_ref(int hw, int c, const float *x, float *y);
/* Copies x [in_h,in_w,c] into y with pad rows/cols of `value` around it. */
void mk_pad_ref(int in_h, int in_w, int c, int top, int bottom, int left, int right, float value,
                const float *x, float *y);
/* y = x1 + x2 + ... (n inputs of `count` values) then act. y may be any of the inputs.
 * add and multiply apply `act` with rows of `count`: pass only element-wise activations
 * (apply a softmax separately, with the tensor's channel count). */
void mk_add_ref(int n, const float *const *xs, size_t count, const mk_activation *act, float *y);
/* y = x1 * x2 * ...; an input with count_i < count is broadcast: element j reads [j % count_i]
 * (a [C] or [1,1,C] gate over [H,W,C]). y may be a full-size input, not a broadcast one. */
void mk_multiply_ref(int n, const float *const *xs, const size_t *counts, size_t count,
                     const mk_activation *act, float *y);
/* Concatenate along an axis: each input is `outer` blocks of inner[i] floats. */
void mk_concat_ref(int n, const float *const *xs, const size_t *inner, size_t outer, float *y);

/* Resize x [in_h,in_w,c] to y [out_h,out_w,c] exactly as TensorFlow's ResizeBilinear /
 * ResizeNearestNeighbor with half_pixel_centers=True and align_corners=False (what
 * tf.image.resize and Keras' Resizing use, antialias off), float32 arithmetic included. */
enum mk_resize_method { MK_RESIZE_NEAREST = 0, MK_RESIZE_BILINEAR = 1 };
void mk_resize_ref(int method, int in_h, int in_w, int c, int out_h, int out_w, const float *x,
                   float *y);
/* y [out_h,out_w,c] = x[top:top+out_h, left:left+out_w, :] of x [in_h,in_w,c]. */
void mk_crop_ref(int in_w, int c, int top, int left, int out_h, int out_w, const float *x,
                 float *y);

/* Transposed conv: g->in_* is x, g->out_* is y, w [KH, KW, Cout, Cin]; pad_top / pad_left are
 * the rows / columns cut from the start of the full output (no dilation). */
void mk_conv_transpose_ref(const mk_window *g, const float *x, const float *w, const float *b,
                           const mk_activation *act, float *y);
/* Layer normalization of `rows` rows of c values (see layer_norm.c). */
void mk_layer_norm_ref(size_t rows, int c, float eps, const float *x, const float *gamma,
                       const float *beta, const mk_activation *act, float *y);

#endif
