/* Kernel selection, once per model load.
 *
 * Start from the portable table, then let each ISA that this build contains and this CPU runs
 * overwrite the entries it has a faster variant for; later (wider) ISAs win. Only the scalar
 * and BLAS-backed kernels exist today. A SIMD variant drops in as:
 *   - kernels/<op>_avx2.c compiled with its own flags (e.g. -mavx2 -mfma via
 *     set_source_files_properties), defining MK_HAVE_AVX2 for this file;
 *   - a branch in select_x86() below assigning k->isa = "avx2" and its function pointers.
 * Compile-time guards keep a build for a compiler or target without those ISAs valid; the
 * runtime check keeps one binary correct on CPUs without them. */
#include "kernels.h"

#if defined(MK_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
static void select_x86(mk_kernels *k)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        /* k->isa = "avx2"; k->conv2d = mk_conv2d_avx2; k->depthwise = mk_depthwise_avx2; */
        (void)k;
    }
}
#define MK_SELECT_ARCH(k) select_x86(k)
#elif defined(MK_HAVE_NEON) && defined(__aarch64__)
/* NEON is baseline on AArch64: no runtime check needed. */
#define MK_SELECT_ARCH(k) ((void)(k))
#else
#define MK_SELECT_ARCH(k) ((void)(k))
#endif

void mk_kernels_select(mk_kernels *k)
{
    *k = (mk_kernels){
        .isa = "scalar",
        .conv2d = mk_conv2d_ref,
        .depthwise = mk_depthwise_ref,
        .dense = mk_dense_ref,
        .affine = mk_affine_ref,
        .avgpool = mk_avgpool_ref,
        .maxpool = mk_maxpool_ref,
    };
    MK_SELECT_ARCH(k);
}
