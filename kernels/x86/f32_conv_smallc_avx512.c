/* KxK convolution with few input channels (a network's first layer: 3x3 stride 2 over RGB),
 * AVX-512, as an implicit GEMM: no im2col.
 *
 * With Cin = 3 the im2col path copies 27 floats per output pixel in runs of 9 and then runs a
 * K = 27 GEMM over the copy: MobileNetV2's 224x224x3 -> 112x112x32 first conv spent about half
 * its time copying (41 GFLOP/s in the model against 82 for the bare GEMM). Here the tile
 * broadcasts straight from the image: for output pixels ox .. ox + mr - 1 of one row, tap
 * (ky, kx, ci) of pixel r is x[(iy0 + ky) * in_w * cin + (ix0 + r * sw + kx) * cin + ci], so
 * each kernel row ky is one run of kw * cin contiguous floats per pixel, pixels sw * cin apart.
 *
 * Each output is the same FMA chain in the same k order (bias first, then k = 0 .. K - 1) as
 * mk_f32_gemm_avx512 computes over the im2col rows while K fits its one k block (KC = 512), so
 * the result is bit-identical to mk_f32_conv_avx512, which still computes every pixel whose
 * window crosses the padding. */
#include <immintrin.h>

#include "gemm_pack.h"
#include "gemm_tile_avx512.h"
#include "microkernels.h"

#define NR MK_GEMM_NR_AVX512
#define MR 14

#define FMA(r)                                                                                 \
    if ((r) < mr) {                                                                            \
        __m512 a = _mm512_set1_ps(xk[(r) * xs]);                                               \
        c##r##a = _mm512_fmadd_ps(a, w0, c##r##a);                                             \
        if (nv == 2)                                                                           \
            c##r##b = _mm512_fmadd_ps(a, w1, c##r##b);                                         \
    }
#define OUT(r)                                                                                 \
    if ((r) < mr) {                                                                            \
        STORE1(y + (r) * ldy, lo, activate(c##r##a, e));                                           \
        if (nv == 2)                                                                           \
            STORE1(y + (r) * ldy + 16, hi, activate(c##r##b, e));                                  \
    }

/* mr pixels (xs floats apart in x) x one 32-column panel p (K rows of NR). */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const int full, const float *x, size_t xs, size_t rs, int kh,
     int run, const float *p, const float *b, float *y, size_t ldy, __mmask16 lo, __mmask16 hi,
     const epilogue *e)
{
    __m512 b0 = b ? LOAD1(b, lo) : _mm512_setzero_ps();
    __m512 b1 = b && nv == 2 ? LOAD1(b + 16, hi) : _mm512_setzero_ps();
    ALL_ROWS(DECLARE)
    for (int ky = 0; ky < kh; ky++) {
        const float *xk = x + (size_t)ky * rs;
        for (int j = 0; j < run; j++, xk++, p += NR) {
            __m512 w0 = _mm512_load_ps(p);
            __m512 w1 = nv == 2 ? _mm512_load_ps(p + 16) : w0;
            ALL_ROWS(FMA)
        }
    }
    ALL_ROWS(OUT)
}

#define ARGS x, xs, rs, kh, run, p, b, y, ldy, lo, hi, e
#define T(h, nv, full)                                                                         \
    case h:                                                                                    \
        tile(h, nv, full, ARGS);                                                               \
        return;
#define HEIGHTS(nv, full)                                                                      \
    switch (mr) {                                                                              \
        T(MR, nv, full) T(8, nv, full) T(4, nv, full) T(2, nv, full) default                   \
            : tile(1, nv, full, ARGS);                                                         \
        return;                                                                                \
    }

static void run_tile(int mr, int live, const float *x, size_t xs, size_t rs, int kh, int run,
                     const float *p, const float *b, float *y, size_t ldy, __mmask16 lo,
                     __mmask16 hi, const epilogue *e)
{
    if (live == NR)
        HEIGHTS(2, 1)
    if (live > 16)
        HEIGHTS(2, 0)
    HEIGHTS(1, 0)
}

/* Output pixels [a, b) of row oy, every window inside the image. */
static void interior(const mk_window *g, const float *x, const float *packed, const float *bias,
                     const epilogue *e, float *y, int oy, int a, int b)
{
    const int n = g->out_c, cin = g->in_c, K = g->kh * g->kw * cin;
    const size_t xs = (size_t)g->sw * (size_t)cin, rs = (size_t)g->in_w * (size_t)cin;
    const int iy0 = oy * g->sh - g->pad_top;
    for (int c = 0; c < n; c += NR) {
        const int live = n - c < NR ? n - c : NR;
        const float *p = packed + (size_t)(c / NR) * (size_t)K * NR;
        for (int ox = a; ox < b;) {
            const int mr = direct_rows(b - ox);
            const int ix0 = ox * g->sw - g->pad_left;
            const float *xp = x + (size_t)iy0 * rs + (size_t)ix0 * (size_t)cin;
            float *yp = y + ((size_t)oy * (size_t)g->out_w + (size_t)ox) * (size_t)n + (size_t)c;
            run_tile(mr, live, xp, xs, rs, g->kh, g->kw * cin, p, bias ? bias + c : NULL, yp,
                     (size_t)n, lanes(live), lanes(live - 16), e);
            ox += mr;
        }
    }
}

void mk_f32_conv_smallc_avx512(const mk_window *g, const float *x, const float *packed,
                               const float *b, const mk_activation *act, float *y,
                               float *scratch, int p0, int p1)
{
    const epilogue e = epilogue_for(act);
    /* Columns whose window lies inside the image: [ox_lo, ox_hi). */
    const int ox_lo = (g->pad_left + g->sw - 1) / g->sw;
    int ox_hi = g->in_w - g->kw + g->pad_left < 0 ? 0 : (g->in_w - g->kw + g->pad_left) / g->sw + 1;
    if (ox_hi > g->out_w)
        ox_hi = g->out_w;
    const int w = g->out_w;
    for (int p = p0; p < p1;) {
        const int oy = p / w, row_end = (oy + 1) * w < p1 ? (oy + 1) * w : p1;
        const int iy0 = oy * g->sh - g->pad_top;
        const int a = oy * w + ox_lo, bnd = oy * w + ox_hi;
        if (iy0 < 0 || iy0 + g->kh > g->in_h || ox_lo >= ox_hi) {
            mk_f32_conv_avx512(g, x, packed, b, act, y, scratch, p, row_end);
            p = row_end;
            continue;
        }
        /* [p, ia) left edge, [ia, ib) inside, [ib, row_end) right edge; any may be empty */
        int ia = p > a ? p : a, ib = row_end < bnd ? row_end : bnd;
        ia = ia < row_end ? ia : row_end;
        ib = ib > ia ? ib : ia;
        if (p < ia)
            mk_f32_conv_avx512(g, x, packed, b, act, y, scratch, p, ia);
        if (ia < ib)
            interior(g, x, packed, b, &e, y, oy, ia - oy * w, ib - oy * w);
        if (ib < row_end)
            mk_f32_conv_avx512(g, x, packed, b, act, y, scratch, ib, row_end);
        p = row_end;
    }
}
