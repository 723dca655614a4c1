/* The NEON kernel table. Compiled without ISA flags: it only takes addresses. On AArch64 NEON
 * is baseline; on ARMv7 isa.c selects this set only after the CPU reported NEON. Families with
 * no ARMv7 variant (act, softmax) stay NULL there and their ops run the reference. */
#include "isa.h"

#if defined(MK_HAVE_ARM)

void mf_isa_fill_arm(mf_isa_kernels *k);

void mf_isa_fill_arm(mf_isa_kernels *k)
{
    k->dwconv3x3_s1 = mk_f32_dwconv3x3_s1_neon;
    k->dwconv3x3_s2 = mk_f32_dwconv3x3_s2_neon;
    k->dwconv_any = mk_f32_dwconv_neon;
    k->gemm_nr = MK_GEMM_NR_NEON;
    k->gemm_mr = MK_GEMM_MR_NEON;
    k->gemm_pack_floats = mk_f32_gemm_pack_floats_neon;
    k->gemm_pack = mk_f32_gemm_pack_neon;
    k->gemm = mk_f32_gemm_neon;
    k->conv = mk_f32_conv_neon;
    k->conv_scratch_floats = mk_f32_conv_scratch_floats;
#if defined(__aarch64__)
    k->act = mk_f32_act_neon;
    k->softmax = mk_f32_softmax_neon;
#endif
    k->add = mk_f32_add_neon;
    k->multiply = mk_f32_multiply_neon;
    k->affine = mk_f32_affine_neon;
    k->maxpool = mk_f32_maxpool_neon;
    k->avgpool = mk_f32_avgpool_neon;
    k->global_avgpool = mk_f32_global_avgpool_neon;
    k->global_maxpool = mk_f32_global_maxpool_neon;
}
#endif
