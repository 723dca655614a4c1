/* Scalar resampler rows (the oracle, and the code on CPUs without a vector variant) and the
 * choice of variant. */
#include "resample_kernels.h"

#include <string.h>

static uint8_t clip8(int32_t ss)
{
    if (ss < 0)
        return 0;
    ss >>= MI_RS_PRECISION_BITS;
    return (uint8_t)(ss > 255 ? 255 : ss);
}

void mi_rs_hrow_scalar(const uint8_t *in, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out)
{
    const int32_t half = (int32_t)1 << (MI_RS_PRECISION_BITS - 1);
    for (int i = 0; i < n_out; i++, k += ks, out += 3) {
        const int n = bounds[2 * i + 1];
        const uint8_t *p = in + (size_t)(bounds[2 * i] - col0) * 3;
        int32_t s0 = half, s1 = half, s2 = half;
        for (int x = 0; x < n; x++, p += 3) {
            s0 += p[0] * k[x];
            s1 += p[1] * k[x];
            s2 += p[2] * k[x];
        }
        out[0] = clip8(s0);
        out[1] = clip8(s1);
        out[2] = clip8(s2);
    }
}

void mi_rs_vrow_scalar(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                       uint8_t *out)
{
    const int32_t half = (int32_t)1 << (MI_RS_PRECISION_BITS - 1);
    for (size_t j = 0; j < nbytes; j++) {
        const uint8_t *p = in + j;
        int32_t s = half;
        for (int y = 0; y < n; y++, p += stride)
            s += *p * k[y];
        out[j] = clip8(s);
    }
}

void mi_rs_tofloat_scalar(const uint8_t *in, size_t npix, const float scale[3],
                          const float offset[3], float *out)
{
    for (size_t i = 0; i < npix; i++)
        for (int c = 0; c < 3; c++) {
            const float v = (float)in[3 * i + c] * scale[c]; /* own statement: never fused */
            out[3 * i + c] = v + offset[c];
        }
}

static const mi_resample_kernels scalar_kernels = {"scalar", mi_rs_hrow_scalar, NULL,
                                                   mi_rs_vrow_scalar, mi_rs_tofloat_scalar};

#if defined(MK_HAVE_X86) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static const mi_resample_kernels avx2_kernels = {"avx2", mi_rs_hrow_avx2, mi_rs_hrows8_avx2,
                                                 mi_rs_vrow_avx2, mi_rs_tofloat_avx2};
/* The AVX-512 set borrows the AVX2 8-row horizontal pass: without it every output pixel ran
 * the one-pixel row kernel, and 1280x1280 -> 224x224 bicubic took 6.1 ms against 1.4 ms with
 * it (test_k_resample --bench, interleaved, Zen 4). No 16-row AVX-512 form exists yet. */
static const mi_resample_kernels avx512_kernels = {"avx512", mi_rs_hrow_avx512,
                                                   mi_rs_hrows8_avx2, mi_rs_vrow_avx512,
                                                   mi_rs_tofloat_avx512};

static int cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#define MI_RS_X86 1
#endif

const mi_resample_kernels *mi_resample_kernels_for(const char *isa)
{
    const int best = !isa || !*isa;
    if (!best && !strcmp(isa, "scalar"))
        return &scalar_kernels;
#ifdef MI_RS_X86
    if ((best || !strcmp(isa, "avx512")) && cpu_avx512())
        return &avx512_kernels;
    if ((best || !strcmp(isa, "avx2")) && cpu_avx2())
        return &avx2_kernels;
#endif
    return best ? &scalar_kernels : NULL;
}
