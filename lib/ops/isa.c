/* Choosing the kernel set: the widest ISA that this build contains and this CPU runs, or the
 * one the caller forces. The x86 tables live in isa_x86.c, the only file that names the x86
 * microkernels, so a build for another architecture links without them. */
#include <stdlib.h>
#include <string.h>

#include "isa.h"

#if defined(MK_HAVE_X86)
void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k);
#endif
#if defined(MK_HAVE_ARM)
void mf_isa_fill_arm(mf_isa_kernels *k);
#if !defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#endif

static const char *const NAMES[] = {"scalar", "avx2", "avx512", "neon"};
#define N_ISAS ((int)(sizeof NAMES / sizeof NAMES[0]))

/* NEON is part of AArch64; on 32-bit ARM it is optional and the kernel reports it. */
static int cpu_has_neon(void)
{
#if defined(MK_HAVE_ARM) && defined(__aarch64__)
    return 1;
#elif defined(MK_HAVE_ARM)
    return (getauxval(AT_HWCAP) & HWCAP_NEON) != 0;
#else
    return 0;
#endif
}

int mf_isa_available(mf_isa isa)
{
    if (isa == MF_ISA_SCALAR)
        return 1;
    if (isa == MF_ISA_NEON)
        return cpu_has_neon();
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
#if defined(MK_HAVE_ARM)
    if (isa == MF_ISA_NEON)
        mf_isa_fill_arm(k);
#endif
}

morsel_status mf_isa_select(const char *want, mf_isa_kernels *k, morsel_error *err)
{
    if (!want || !*want)
        want = getenv("MORSEL_ISA");
    if (want && *want && strcmp(want, "auto") != 0) {
        for (int i = 0; i < N_ISAS; i++) {
            if (strcmp(want, NAMES[i]) != 0)
                continue;
            if (!mf_isa_available((mf_isa)i))
                return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                                   "kernel set '%s' is not available on this CPU or build", want);
            fill((mf_isa)i, k);
            return MORSEL_OK;
        }
        return morsel_fail(err, MORSEL_ERR_UNSUPPORTED,
                           "unknown kernel set '%s' (scalar, avx2, avx512, neon or auto)", want);
    }
    /* The widest set wins by default. On a Zen 4 (2026-12-02), whose 512-bit FMAs issue as two
     * 256-bit halves, AVX-512 still ran MobileNetV2 13 % faster than AVX2 (7.9 vs 9.0 ms, one
     * thread): half the loop overhead and masked tails instead of scalar ones. */
    mf_isa best = mf_isa_available(MF_ISA_AVX512) ? MF_ISA_AVX512
                  : mf_isa_available(MF_ISA_AVX2) ? MF_ISA_AVX2
                                                  : MF_ISA_SCALAR;
    if (mf_isa_available(MF_ISA_NEON))
        best = MF_ISA_NEON;
    fill(best, k);
    return MORSEL_OK;
}
