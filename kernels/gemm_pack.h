/* Portable helpers shared by the per-ISA GEMM and conv kernels (kernels/x86/f32_gemm_*.c,
 * f32_conv_*.c). They hold no SIMD code, so they are compiled without ISA flags. */
#ifndef MORSEL_GEMM_PACK_H
#define MORSEL_GEMM_PACK_H

#include <stddef.h>

#include "kernels.h"

/* Floats of W [K, N] packed into panels of nr columns (N rounded up to a multiple of nr). */
size_t mk_gemm_panels_floats(int K, int N, int nr);
/* Panel j holds W[:, j*nr .. j*nr+nr) K-major (row k of the panel is nr consecutive floats),
 * columns past N zero, so a microkernel reads one panel row per k with aligned full loads. */
void mk_gemm_pack_panels(int K, int N, int nr, const float *w, float *packed);

/* Conv via im2col: output pixels are processed in tiles whose im2col rows fit the scratch. */
int mk_conv_is_pointwise(const mk_window *g);
int mk_conv_tile_pixels(const mk_window *g); /* the most pixels the scratch holds */
int mk_conv_tile_for(const mk_window *g, int n); /* the tile for a run of n pixels */
/* Rows [p0, p1) of the im2col matrix A [pixels, kh*kw*Cin] into a (row p - p0), taps in the
 * padding as zeros: then the padded conv is exactly A W. */
void mk_conv_im2col(const mk_window *g, const float *x, int p0, int p1, float *a);

#endif
