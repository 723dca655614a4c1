/* SIMD microkernels: the variants the op registry (lib/ops/) picks once at load, by CPU.
 *
 * Naming: mk_<dtype>_<op>[<tile>]_<isa>, e.g. mk_f32_dwconv3x3_s2_avx512. Each ISA's kernels live
 * in kernels/<arch>/ files whose name ends in _<isa>.c; CMake compiles each such file with that
 * ISA's flags only, so nothing else in the library assumes the instructions exist.
 *
 * Every kernel computes a *range* of its output (rows, pixels, elements, channels), so the op
 * can split one call over a thread pool (ith/nth style); ranges of different calls never
 * overlap in what they write. Kernels trust their arguments: the loader validated the shapes.
 *
 * Activations: kernels here fuse only the clamp family in registers, i.e. act->code is
 * MK_ACT_LINEAR or MK_ACT_RELU (alpha = negative slope, max = upper clip, +INF when none).
 * The op applies any other activation over the same range right after (mk_f32_act_<isa>), while
 * the rows are still in cache.
 *
 * The scalar references in kernels/ref/ are the oracles every variant is tested against. */
#ifndef MORSEL_MICROKERNELS_H
#define MORSEL_MICROKERNELS_H

#include <stddef.h>

#include "kernels.h"

/* ---- depthwise convolution (multiplier 1) ----------------------------------------------------
 * Output rows [oy0, oy1) of y [out_h, out_w, C]. w is Keras' [kh, kw, C, 1] (= [kh][kw][C]),
 * b is [C] or NULL. TF padding is handled inside the kernel: g->pad_top/pad_left, and the
 * bottom/right padding implied by out_h/out_w (TF 'same' puts the extra row bottom/right).
 * The taps are summed first and the bias added last, as mk_depthwise_ref does (a folded
 * BatchNormalization bias can be much larger than the tap sum). */
typedef void (*mk_dwconv_fn)(const mk_window *g, const float *x, const float *w, const float *b,
                             const mk_activation *act, float *y, int oy0, int oy1);
/* 3x3, dilation 1, stride 1 (g->sh == g->sw == 1) or 2 (g->sh == g->sw == 2). */
void mk_f32_dwconv3x3_s1_avx512(const mk_window *g, const float *x, const float *w,
                                const float *b, const mk_activation *act, float *y, int oy0,
                                int oy1);
void mk_f32_dwconv3x3_s2_avx512(const mk_window *g, const float *x, const float *w,
                                const float *b, const mk_activation *act, float *y, int oy0,
                                int oy1);
void mk_f32_dwconv3x3_s1_avx2(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1);
void mk_f32_dwconv3x3_s2_avx2(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1);
/* Any kh x kw, stride and dilation (EfficientNet's 5x5, Xception's separable convs). */
void mk_f32_dwconv_avx512(const mk_window *g, const float *x, const float *w, const float *b,
                          const mk_activation *act, float *y, int oy0, int oy1);
void mk_f32_dwconv_avx2(const mk_window *g, const float *x, const float *w, const float *b,
                        const mk_activation *act, float *y, int oy0, int oy1);

/* ---- GEMM: pointwise (1x1) convolution, dense, and KxK convolution via im2col ---------------
 * y[m, n] = sum_k x[m, k] * W[k, n] + b[n], for W [K, N] row-major (conv HWIO flattened to
 * [kh*kw*Cin, Cout], dense [Cin, Cout]). W is packed once at load into the ISA's panel layout;
 * *_pack_floats() is the size of that buffer (64-byte aligned by the caller).
 * The range is rows [m0, m1) x columns [n0, n1); n0 is a multiple of MK_GEMM_NR_<ISA>, n1 is
 * one too or equals N. b may be NULL. ldx / ldy are row strides in floats. */
#define MK_GEMM_NR_AVX512 32
#define MK_GEMM_NR_AVX2 16
typedef size_t (*mk_gemm_pack_floats_fn)(int K, int N);
typedef void (*mk_gemm_pack_fn)(int K, int N, const float *w, float *packed);
typedef void (*mk_gemm_fn)(int K, int N, const float *x, size_t ldx, const float *packed,
                           const float *b, const mk_activation *act, float *y, size_t ldy,
                           int m0, int m1, int n0, int n1);
size_t mk_f32_gemm_pack_floats_avx512(int K, int N);
void mk_f32_gemm_pack_avx512(int K, int N, const float *w, float *packed);
void mk_f32_gemm_avx512(int K, int N, const float *x, size_t ldx, const float *packed,
                        const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                        int m1, int n0, int n1);
size_t mk_f32_gemm_pack_floats_avx2(int K, int N);
void mk_f32_gemm_pack_avx2(int K, int N, const float *w, float *packed);
void mk_f32_gemm_avx2(int K, int N, const float *x, size_t ldx, const float *packed,
                      const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                      int m1, int n0, int n1);

/* KxK convolution (any stride, padding, dilation) over output pixels [p0, p1) (pixel p is
 * (p / out_w, p % out_w)), all Cout columns, with W packed by the same ISA's gemm_pack
 * (K = kh*kw*Cin, N = Cout). scratch is this thread's: mk_f32_conv_scratch_floats(g) floats. */
typedef void (*mk_conv_fn)(const mk_window *g, const float *x, const float *packed,
                           const float *b, const mk_activation *act, float *y, float *scratch,
                           int p0, int p1);
size_t mk_f32_conv_scratch_floats(const mk_window *g);
void mk_f32_conv_avx512(const mk_window *g, const float *x, const float *packed, const float *b,
                        const mk_activation *act, float *y, float *scratch, int p0, int p1);
void mk_f32_conv_avx2(const mk_window *g, const float *x, const float *packed, const float *b,
                      const mk_activation *act, float *y, float *scratch, int p0, int p1);
/* The same conv where mk_conv_smallc_fits(g) (Cin <= 4: first layers), reading x in place
 * (kernels/x86/f32_conv_smallc_avx512.c); bit-identical to mk_f32_conv_avx512, whose packing,
 * scratch and range it shares. */
int mk_conv_smallc_fits(const mk_window *g);
void mk_f32_conv_smallc_avx512(const mk_window *g, const float *x, const float *packed,
                               const float *b, const mk_activation *act, float *y,
                               float *scratch, int p0, int p1);

/* 3x3 stride-1 conv by Winograd F(2x2, 3x3) (kernels/conv_wino2.c), where mk_wino2_fits(g):
 * output tile rows [r0, r1) (output rows 2 r0 .. 2 r1 - 1, cut at out_h) x output channels
 * [n0, n1) (n0 a multiple of the ISA's GEMM NR, n1 too or Cout), with W [3,3,Cin,Cout]
 * transformed and packed by the same ISA's wino2_pack (K = 9 Cin, N = Cout). scratch is this
 * thread's: mk_wino2_scratch_floats(g) floats. act is not applied: the output is the conv plus
 * bias. */
typedef void (*mk_wino2_fn)(const mk_window *g, const float *x, const float *packed,
                            const float *b, const mk_activation *act, float *y, float *scratch,
                            int r0, int r1, int n0, int n1);
int mk_wino2_fits(const mk_window *g);
size_t mk_wino2_pack_floats(int cin, int cout, int nr);
void mk_wino2_pack(int K, int N, int nr, const float *w, float *packed);
int mk_wino2_block_tiles(const mk_window *g);
size_t mk_wino2_scratch_floats(const mk_window *g);
size_t mk_f32_wino2_pack_floats_avx512(int K, int N);
void mk_f32_wino2_pack_avx512(int K, int N, const float *w, float *packed);
void mk_f32_conv3x3_wino2_avx512(const mk_window *g, const float *x, const float *packed,
                                 const float *b, const mk_activation *act, float *y,
                                 float *scratch, int r0, int r1, int n0, int n1);
size_t mk_f32_wino2_pack_floats_avx2(int K, int N);
void mk_f32_wino2_pack_avx2(int K, int N, const float *w, float *packed);
void mk_f32_conv3x3_wino2_avx2(const mk_window *g, const float *x, const float *packed,
                               const float *b, const mk_activation *act, float *y,
                               float *scratch, int r0, int r1, int n0, int n1);

/* ---- element-wise, activations, pooling ------------------------------------------------------
 * Activations in place over x[i0, i1): every code but MK_ACT_SOFTMAX; within 2 ulp-ish of the
 * references (the tests state the tolerance). */
typedef void (*mk_act_fn)(const mk_activation *a, float *x, size_t i0, size_t i1);
void mk_f32_act_avx512(const mk_activation *a, float *x, size_t i0, size_t i1);
void mk_f32_act_avx2(const mk_activation *a, float *x, size_t i0, size_t i1);
/* Softmax over rows [r0, r1) of `ch` values, in place. */
typedef void (*mk_softmax_fn)(float *x, size_t ch, size_t r0, size_t r1);
void mk_f32_softmax_avx512(float *x, size_t ch, size_t r0, size_t r1);
void mk_f32_softmax_avx2(float *x, size_t ch, size_t r0, size_t r1);
/* y[i] = xs[0][i] + ... + xs[n-1][i] (clamp-family act fused), for i in [i0, i1). y may alias
 * any input. */
typedef void (*mk_add_fn)(int n, const float *const *xs, const mk_activation *act, float *y,
                          size_t i0, size_t i1);
void mk_f32_add_avx512(int n, const float *const *xs, const mk_activation *act, float *y,
                       size_t i0, size_t i1);
void mk_f32_add_avx2(int n, const float *const *xs, const mk_activation *act, float *y,
                     size_t i0, size_t i1);
/* y[i] = prod_k xs[k][i % counts[k]] for i in [i0, i1) (a [C] gate broadcast over [H,W,C],
 * as mk_multiply_ref). y may alias a full-size input. */
typedef void (*mk_multiply_fn)(int n, const float *const *xs, const size_t *counts,
                               const mk_activation *act, float *y, size_t i0, size_t i1);
void mk_f32_multiply_avx512(int n, const float *const *xs, const size_t *counts,
                            const mk_activation *act, float *y, size_t i0, size_t i1);
void mk_f32_multiply_avx2(int n, const float *const *xs, const size_t *counts,
                          const mk_activation *act, float *y, size_t i0, size_t i1);
/* y[i] = x[i] * scale[i % c] + shift[i % c] for i in [i0, i1) (clamp act fused); may run in
 * place. i0 is a multiple of c. */
typedef void (*mk_affine_range_fn)(int c, const float *x, const float *scale,
                                   const float *shift, const mk_activation *act, float *y,
                                   size_t i0, size_t i1);
void mk_f32_affine_avx512(int c, const float *x, const float *scale, const float *shift,
                          const mk_activation *act, float *y, size_t i0, size_t i1);
void mk_f32_affine_avx2(int c, const float *x, const float *scale, const float *shift,
                        const mk_activation *act, float *y, size_t i0, size_t i1);
/* Pooling over output rows [oy0, oy1); same semantics as mk_maxpool_ref / mk_avgpool_ref
 * (Keras 'same' average pooling divides by the cells inside the input only). */
typedef void (*mk_pool_range_fn)(const mk_window *g, const float *x, float *y, int oy0,
                                 int oy1);
void mk_f32_maxpool_avx512(const mk_window *g, const float *x, float *y, int oy0, int oy1);
void mk_f32_avgpool_avx512(const mk_window *g, const float *x, float *y, int oy0, int oy1);
void mk_f32_maxpool_avx2(const mk_window *g, const float *x, float *y, int oy0, int oy1);
void mk_f32_avgpool_avx2(const mk_window *g, const float *x, float *y, int oy0, int oy1);
/* Global pools of x [hw, c] over channels [c0, c1). */
typedef void (*mk_gpool_fn)(int hw, int c, const float *x, float *y, int c0, int c1);
/* acc[ch] = the sum of x[p, ch] over pixels p in [p0, p1), every channel, in double, pixel by
 * pixel in order (per channel the same additions mk_f32_global_avgpool_* makes): one chunk of
 * a mean split into fixed chunks (lib/ops/fuse_se.c). */
typedef void (*mk_gsum_fn)(int c, const float *x, size_t p0, size_t p1, double *acc);
void mk_f32_global_sum_avx512(int c, const float *x, size_t p0, size_t p1, double *acc);
void mk_f32_global_sum_avx2(int c, const float *x, size_t p0, size_t p1, double *acc);
void mk_f32_global_avgpool_avx512(int hw, int c, const float *x, float *y, int c0, int c1);
void mk_f32_global_maxpool_avx512(int hw, int c, const float *x, float *y, int c0, int c1);
void mk_f32_global_avgpool_avx2(int hw, int c, const float *x, float *y, int c0, int c1);
void mk_f32_global_maxpool_avx2(int hw, int c, const float *x, float *y, int c0, int c1);

/* ---- NEON (kernels/arm/, files *_neon.c): AArch64, and ARMv7 when the CPU reports NEON ------------
 * Same contracts as the x86 variants above. GEMM panels are 16 columns; the register tile is
 * 6 rows on AArch64 (32 vector registers) and 2 on ARMv7 (16). act and softmax exist on
 * AArch64 only (ARMv7 lacks FRINTN and the double conversions): there the ops run the
 * reference. */
#define MK_GEMM_NR_NEON 16
#if defined(__aarch64__)
#define MK_GEMM_MR_NEON 6
#else
#define MK_GEMM_MR_NEON 2
#endif
void mk_f32_dwconv3x3_s1_neon(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1);
void mk_f32_dwconv3x3_s2_neon(const mk_window *g, const float *x, const float *w,
                              const float *b, const mk_activation *act, float *y, int oy0,
                              int oy1);
void mk_f32_dwconv_neon(const mk_window *g, const float *x, const float *w, const float *b,
                        const mk_activation *act, float *y, int oy0, int oy1);
size_t mk_f32_gemm_pack_floats_neon(int K, int N);
void mk_f32_gemm_pack_neon(int K, int N, const float *w, float *packed);
void mk_f32_gemm_neon(int K, int N, const float *x, size_t ldx, const float *packed,
                      const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                      int m1, int n0, int n1);
void mk_f32_conv_neon(const mk_window *g, const float *x, const float *packed, const float *b,
                      const mk_activation *act, float *y, float *scratch, int p0, int p1);
void mk_f32_act_neon(const mk_activation *a, float *x, size_t i0, size_t i1);
void mk_f32_softmax_neon(float *x, size_t ch, size_t r0, size_t r1);
void mk_f32_add_neon(int n, const float *const *xs, const mk_activation *act, float *y,
                     size_t i0, size_t i1);
void mk_f32_multiply_neon(int n, const float *const *xs, const size_t *counts,
                          const mk_activation *act, float *y, size_t i0, size_t i1);
void mk_f32_affine_neon(int c, const float *x, const float *scale, const float *shift,
                        const mk_activation *act, float *y, size_t i0, size_t i1);
void mk_f32_maxpool_neon(const mk_window *g, const float *x, float *y, int oy0, int oy1);
void mk_f32_avgpool_neon(const mk_window *g, const float *x, float *y, int oy0, int oy1);
void mk_f32_global_avgpool_neon(int hw, int c, const float *x, float *y, int c0, int c1);
void mk_f32_global_maxpool_neon(int hw, int c, const float *x, float *y, int c0, int c1);

#endif
