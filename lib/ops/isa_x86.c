/* The x86 kernel tables. Compiled without ISA flags: it only takes addresses; the kernels it
 * names are built in kernels/x86/ with their own flags and run only after the CPU check in
 * isa.c. A family with no variant stays NULL and its ops run the scalar reference.
 *
 * The AVX-512 set starts as the AVX2 one and replaces what it has its own variant of. */
#include "isa.h"

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
}

static void fill_avx512(mf_isa_kernels *k)
{
    k->gemm_nr = MK_GEMM_NR_AVX512;
    k->gemm_mr = 14;
    k->gemm_pack_floats = mk_f32_gemm_pack_floats_avx512;
    k->gemm_pack = mk_f32_gemm_pack_avx512;
    k->gemm = mk_f32_gemm_avx512;
    k->conv = mk_f32_conv_avx512;
}

void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k)
{
    fill_avx2(k);
    if (isa == MF_ISA_AVX512)
        fill_avx512(k);
}
