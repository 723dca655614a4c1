/* Choosing the kernel set: the widest ISA that this build contains and this CPU runs, or the
 * one the caller forces. The x86 tables live in isa_x86.c, the only file that names the x86
 * microkernels, so a build for another architecture links without them. */
#include <stdlib.h>
#include <string.h>

#include "isa.h"

#if defined(MK_HAVE_X86)
void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k);
#endif

static const char *const NAMES[] = {"scalar", "avx2", "avx512"};

int mf_isa_available(mf_isa isa)
{
    if (isa == MF_ISA_SCALAR)
        return 1;
#if defined(MK_HAVE_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == MF_ISA_AVX2)
        return avx2;
    if (isa == MF_ISA_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    return 0;
}

static void fill(mf_isa isa, mf_isa_kernels *k)
{
    *k = (mf_isa_kernels){.isa = isa, .name = NAMES[isa]};
#if defined(MK_HAVE_X86)
    if (isa != MF_ISA_SCALAR)
        mf_isa_fill_x86(isa, k);
#endif
}

morsel_status mf_isa_select(const char *want, mf_isa_kernels *k, morsel_error *err)
{
    if (!want || !*want)
        want = getenv("MORSEL_ISA");
    if (want && *want && strcmp(want, "auto") != 0) {
        for (int i = 0; i < 3; i++) {
            if (strcmp(want, NAMES[i]) != 0)
                continue;
            if (!mf_isa_available((mf_isa)i))
                return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                                   "kernel set '%s' is not available on this CPU or build", want);
            fill((mf_isa)i, k);
            return MORSEL_OK;
        }
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                           "unknown kernel set '%s' (scalar, avx2, avx512 or auto)", want);
    }
    /* AVX-512 variants are chosen only when asked for: they have not yet run on an AVX-512
     * machine (the test and bench machines so far lacked it). MORSEL_AUTO_AVX512 flips
     * the default once test_k_* have passed there. */
#ifdef MORSEL_AUTO_AVX512
    mf_isa best = mf_isa_available(MF_ISA_AVX512) ? MF_ISA_AVX512
                  : mf_isa_available(MF_ISA_AVX2) ? MF_ISA_AVX2
                                                  : MF_ISA_SCALAR;
#else
    mf_isa best = mf_isa_available(MF_ISA_AVX2) ? MF_ISA_AVX2 : MF_ISA_SCALAR;
#endif
    fill(best, k);
    return MORSEL_OK;
}
