/* The x86 kernel tables. Compiled without ISA flags: it only takes addresses; the kernels it
 * names are built in kernels/x86/ with their own flags and run only after the CPU check in
 * isa.c. A family with no variant stays NULL and its ops run the scalar reference.
 *
 * The AVX-512 set starts as the AVX2 one and replaces what it has its own variant of. */
#include "isa.h"

#if defined(MK_HAVE_X86) /* a build for another architecture has no x86 kernels */

void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k);

static void fill_avx2(mf_isa_kernels *k)
{
    k->gemm_nr = MK_GEMM_NR_AVX2;
    k->gemm_mr = 6;
    k->gemm_pack_floats = mk_f32_gemm_pack_floats_avx2;
    k->gemm_pack = mk_f32_gemm_pack_avx2;
    k->gemm = mk_f32_gemm_avx2;
    k->conv = mk_f32_conv_avx2;
    k->conv_scratch_floats = mk_f32_conv_scratch_floats;
    k->wino2_pack_floats = mk_f32_wino2_pack_floats_avx2;
    k->wino2_pack = mk_f32_wino2_pack_avx2;
    k->wino2 = mk_f32_conv3x3_wino2_avx2;
    k->dwconv3x3_s1 = mk_f32_dwconv3x3_s1_avx2;
    k->dwconv3x3_s2 = mk_f32_dwconv3x3_s2_avx2;
    k->dwconv_any = mk_f32_dwconv_avx2;
    k->act = mk_f32_act_avx2;
    k->softmax = mk_f32_softmax_avx2;
    k->add = mk_f32_add_avx2;
    k->multiply = mk_f32_multiply_avx2;
    k->affine = mk_f32_affine_avx2;
    k->maxpool = mk_f32_maxpool_avx2;
    k->avgpool = mk_f32_avgpool_avx2;
    k->global_avgpool = mk_f32_global_avgpool_avx2;
    k->global_sum = mk_f32_global_sum_avx2;
    k->global_maxpool = mk_f32_global_maxpool_avx2;
}

static void fill_avx512(mf_isa_kernels *k)
{
    k->gemm_nr = MK_GEMM_NR_AVX512;
    k->gemm_mr = 14;
    k->gemm_pack_floats = mk_f32_gemm_pack_floats_avx512;
    k->gemm_pack = mk_f32_gemm_pack_avx512;
    k->gemm = mk_f32_gemm_avx512;
    k->conv = mk_f32_conv_avx512;
    k->conv_smallc = mk_f32_conv_smallc_avx512;
    k->wino2_pack_floats = mk_f32_wino2_pack_floats_avx512;
    k->wino2_pack = mk_f32_wino2_pack_avx512;
    k->wino2 = mk_f32_conv3x3_wino2_avx512;
    k->dwconv3x3_s1 = mk_f32_dwconv3x3_s1_avx512;
    k->dwconv3x3_s2 = mk_f32_dwconv3x3_s2_avx512;
    k->dwconv_any = mk_f32_dwconv_avx512;
    k->act = mk_f32_act_avx512;
    k->softmax = mk_f32_softmax_avx512;
    k->add = mk_f32_add_avx512;
    k->multiply = mk_f32_multiply_avx512;
    k->affine = mk_f32_affine_avx512;
    k->maxpool = mk_f32_maxpool_avx512;
    k->avgpool = mk_f32_avgpool_avx512;
    k->global_avgpool = mk_f32_global_avgpool_avx512;
    k->global_sum = mk_f32_global_sum_avx512;
    k->global_maxpool = mk_f32_global_maxpool_avx512;
}

void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k)
{
    fill_avx2(k);
    if (isa == MF_ISA_AVX512)
        fill_avx512(k);
}
#endif
