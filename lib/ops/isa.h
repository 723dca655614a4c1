/* Kernel sets per instruction set. One set is chosen per model at load (CPU detection, or
 * forced by morsel_open_options.isa / $MORSEL_ISA); ops then pick their variant from it in
 * prepare. A NULL entry means "no SIMD variant": the op runs its scalar reference. */
#ifndef MORSEL_ISA_H
#define MORSEL_ISA_H

#include "error.h"
#include "microkernels.h"

typedef enum mf_isa {
    MF_ISA_SCALAR = 0,
    MF_ISA_AVX2 = 1,
    MF_ISA_AVX512 = 2,
    MF_ISA_NEON = 3
} mf_isa;

typedef struct mf_isa_kernels {
    mf_isa isa;
    const char *name; /* "scalar", "avx2", "avx512", "neon": also the suffix of kernel names */
    mk_dwconv_fn dwconv3x3_s1, dwconv3x3_s2, dwconv_any;
    int gemm_nr, gemm_mr; /* packed panel width; rows per register tile (split grain) */
    mk_gemm_pack_floats_fn gemm_pack_floats;
    mk_gemm_pack_fn gemm_pack;
    mk_gemm_fn gemm;
    mk_conv_fn conv;
    mk_conv_fn conv_smallc; /* conv's drop-in where mk_conv_smallc_fits (first layers), or NULL */
    size_t (*conv_scratch_floats)(const mk_window *g);
    /* 3x3 stride-1 convs by Winograd F(2x2, 3x3): packing (K = 9 Cin) and the kernel. */
    mk_gemm_pack_floats_fn wino2_pack_floats;
    mk_gemm_pack_fn wino2_pack;
    mk_wino2_fn wino2;
    mk_act_fn act;
    mk_softmax_fn softmax;
    mk_add_fn add;
    mk_multiply_fn multiply;
    mk_affine_range_fn affine;
    mk_pool_range_fn maxpool, avgpool;
    mk_gpool_fn global_avgpool, global_maxpool;
    mk_gsum_fn global_sum; /* NULL: SE means stay whole-tensor pools (fuse_se.c) */
} mf_isa_kernels;

/* Fills k for `want` ("" or NULL: the best this CPU runs, unless $MORSEL_ISA names one).
 * MORSEL_ERR_UNSUPPORTED when the named set is unknown, not built in, or not runnable here. */
morsel_status mf_isa_select(const char *want, mf_isa_kernels *k, morsel_error *err);

/* Whether this build contains, and this CPU runs, a set (for tests). */
int mf_isa_available(mf_isa isa);

#endif
