/* The inner loops of the 8-bit resampler (image_resize.c), one table per ISA. Every variant
 * computes exactly what the scalar one does -- Pillow's fixed-point arithmetic, bit for bit --
 * so which one runs never changes a pixel; the scalar table is the oracle the tests hold the
 * others to.
 *
 * Pillow accumulates in 32-bit ints: 2^21 + sum(pixel * weight), weights 22-bit fixed point
 * summing to 2^22, so |sum| < 255 * 1.3 * 2^22 < 2^31 for every filter; then clips
 * (sum >> 22) to 0..255. Vector variants do the same in 32-bit lanes. */
#ifndef MORSEL_RESAMPLE_KERNELS_H
#define MORSEL_RESAMPLE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define MI_RS_PRECISION_BITS 22

typedef struct mi_resample_kernels {
    const char *isa;
    /* Horizontal pass over one RGB row: out pixel i (i in [0, n_out)) sums bounds[2i + 1] taps
     * from source column bounds[2i], weights k + i * ks. in points at source column col0 and
     * in[0 .. in_len) may be read (vector variants read past a pixel's taps, with weight 0,
     * where that stays inside). */
    void (*hrow)(const uint8_t *in, size_t in_len, int col0, const int32_t *bounds,
                 const int32_t *k, size_t ks, int n_out, uint8_t *out);
    /* hrow over 8 rows at once (in_stride / out_stride apart), or NULL. work: 8 * in_len bytes
     * (the 8 rows transposed, so one vector holds a channel of the 8 rows and every lane does a
     * useful multiply). Reads nothing past in_len in any row. */
    void (*hrows8)(const uint8_t *in, size_t in_stride, size_t in_len, int col0,
                   const int32_t *bounds, const int32_t *k, size_t ks, int n_out, uint8_t *out,
                   size_t out_stride, uint8_t *work);
    /* Vertical pass for one output row: out[j] = clip(sum_y in[y * stride + j] * k[y]) for j in
     * [0, nbytes), y in [0, n). */
    void (*vrow)(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                 uint8_t *out);
    /* out[3i + c] = (float)in[3i + c] * scale[c] + offset[c] (a multiply, then an add: never
     * fused, so every variant rounds alike), i in [0, npix). */
    void (*tofloat)(const uint8_t *in, size_t npix, const float scale[3], const float offset[3],
                    float *out);
} mi_resample_kernels;

/* "scalar", "avx2", "avx512"; NULL or "" the best this build and CPU run. NULL when the build or
 * the CPU lacks the ISA asked for. */
const mi_resample_kernels *mi_resample_kernels_for(const char *isa);

void mi_rs_hrow_scalar(const uint8_t *in, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out);
void mi_rs_vrow_scalar(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                       uint8_t *out);
void mi_rs_tofloat_scalar(const uint8_t *in, size_t npix, const float scale[3],
                          const float offset[3], float *out);

#if defined(MK_HAVE_X86)
void mi_rs_hrow_avx2(const uint8_t *in, size_t in_len, int col0,
                     const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                     uint8_t *out);
void mi_rs_hrows8_avx2(const uint8_t *in, size_t in_stride, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out, size_t out_stride, uint8_t *work);
void mi_rs_vrow_avx2(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                     uint8_t *out);
void mi_rs_tofloat_avx2(const uint8_t *in, size_t npix, const float scale[3],
                        const float offset[3], float *out);
void mi_rs_hrow_avx512(const uint8_t *in, size_t in_len, int col0,
                       const int32_t *bounds, const int32_t *k, size_t ks, int n_out,
                       uint8_t *out);
void mi_rs_vrow_avx512(const uint8_t *in, size_t stride, const int32_t *k, int n, size_t nbytes,
                       uint8_t *out);
void mi_rs_tofloat_avx512(const uint8_t *in, size_t npix, const float scale[3],
                          const float offset[3], float *out);
#endif

#endif
