/* f32 GEMM, AVX-512: y[m, n] = act(b[n] + sum_k x[m, k] W[k, n]) over a row x column range.
 *
 * W is packed at load into 32-column panels (gemm_pack.c). The microkernel keeps an MR x 32
 * tile of y in 28 zmm accumulators for the whole K loop: per k it loads one panel row (two
 * zmm) and broadcasts MR values of x, so 2 + MR loads feed 2 * MR FMAs and the loop is
 * FMA-bound even with x and the panel streaming from L2. The bias seeds the accumulators
 * and the clamp activation runs in registers before the single store of each tile.
 *
 * Every y element is the same FMA chain over k = 0..K-1 whichever tile shape computes it, so
 * sub-ranges of rows and panels compose bit-exactly to the full-range result. */
#include <immintrin.h>
#include <math.h>

#include "gemm_pack.h"
#include "microkernels.h"

#define NR MK_GEMM_NR_AVX512
#define MR 14
/* Rows of x reused from L2 across all panels of the range: ~256 KB of x per row block. */
#define X_BLOCK_FLOATS (1 << 16)

size_t mk_f32_gemm_pack_floats_avx512(int K, int N)
{
    return mk_gemm_panels_floats(K, N, NR);
}

void mk_f32_gemm_pack_avx512(int K, int N, const float *w, float *packed)
{
    mk_gemm_pack_panels(K, N, NR, w, packed);
}

typedef struct epilogue {
    int relu, leaky;
    __m512 alpha, hi;
} epilogue;

/* As relu() in kernels/ref/activation.c: min(max(v,0) + alpha*min(v,0), max), the product and
 * sum rounded separately as the reference does. */
static inline __m512 activate(__m512 v, const epilogue *e)
{
    if (!e->relu)
        return v;
    __m512 z = _mm512_setzero_ps();
    __m512 p = _mm512_max_ps(v, z);
    if (e->leaky)
        p = _mm512_add_ps(p, _mm512_mul_ps(e->alpha, _mm512_min_ps(v, z)));
    return _mm512_min_ps(p, e->hi);
}

/* mr rows x (16 * nv) columns; mr and nv are constants in each instantiation so the
 * accumulators live in registers. Lanes outside m0/m1 are neither loaded from b nor stored. */
/* The rows are spelled out by macro rather than left to a loop over an array: compilers do
 * not reliably unroll such a loop and then keep the array in memory. Rows >= mr fold away. */
#define ALL_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define DECLARE(r) __m512 c##r##a = b0, c##r##b = b1;
#define STEP(r)                                                                                  \
    if ((r) < mr) {                                                                              \
        __m512 a = _mm512_set1_ps(xk[(r) * ldx]);                                                    \
        c##r##a = _mm512_fmadd_ps(a, w0, c##r##a);                                                 \
        if (nv == 2)                                                                             \
            c##r##b = _mm512_fmadd_ps(a, w1, c##r##b);                                             \
    }
#define STORE(r)                                                                                 \
    if ((r) < mr) {                                                                              \
        _mm512_mask_storeu_ps(y + (r) * ldy, m0, activate(c##r##a, e));                                \
        if (nv == 2)                                                                             \
            _mm512_mask_storeu_ps(y + (r) * ldy + 16, m1, activate(c##r##b, e));                       \
    }
static inline __attribute__((always_inline)) void tile(const int mr, const int nv, int K,
                                                      const float *x, size_t ldx,
                                                      const float *p, const float *b, float *y,
                                                      size_t ldy, __mmask16 m0, __mmask16 m1,
                                                      const epilogue *e)
{
    __m512 b0 = b ? _mm512_maskz_loadu_ps(m0, b) : _mm512_setzero_ps();
    __m512 b1 = b && nv == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
    ALL_ROWS(DECLARE)
    const float *xk = x;
    for (int k = 0; k < K; k++, p += NR, xk++) {
        __m512 w0 = _mm512_load_ps(p);
        __m512 w1 = nv == 2 ? _mm512_load_ps(p + 16) : w0;
        ALL_ROWS(STEP)
    }
    ALL_ROWS(STORE)
}

/* A row tail of up to 13 rows runs as 8 + 4 + 2 + 1 blocks: five tile heights instead of 14. */
static int tile_rows(int left)
{
    return left >= MR ? MR : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

#define TILE_ARGS K, x, ldx, p, b, y, ldy, m0, m1, e
static void run_tile(int mr, int nv, int K, const float *x, size_t ldx, const float *p,
                     const float *b, float *y, size_t ldy, __mmask16 m0, __mmask16 m1,
                     const epilogue *e)
{
    if (nv == 2) {
        switch (mr) {
        case MR: tile(MR, 2, TILE_ARGS); return;
        case 8: tile(8, 2, TILE_ARGS); return;
        case 4: tile(4, 2, TILE_ARGS); return;
        case 2: tile(2, 2, TILE_ARGS); return;
        default: tile(1, 2, TILE_ARGS); return;
        }
    }
    /* A panel with at most 16 live columns (N = 16, or the last panel) skips its zero half. */
    switch (mr) {
    case MR: tile(MR, 1, TILE_ARGS); return;
    case 8: tile(8, 1, TILE_ARGS); return;
    case 4: tile(4, 1, TILE_ARGS); return;
    case 2: tile(2, 1, TILE_ARGS); return;
    default: tile(1, 1, TILE_ARGS); return;
    }
}

static __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

void mk_f32_gemm_avx512(int K, int N, const float *x, size_t ldx, const float *packed,
                        const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                        int m1, int n0, int n1)
{
    (void)N;
    epilogue e = {0, 0, _mm512_setzero_ps(), _mm512_set1_ps(INFINITY)};
    if (act && act->code == MK_ACT_RELU) {
        e.relu = 1;
        e.leaky = act->alpha != 0.0f;
        e.alpha = _mm512_set1_ps(act->alpha);
        e.hi = _mm512_set1_ps(act->max);
    }
    int mc = X_BLOCK_FLOATS / (K > 0 ? K : 1);
    mc = mc < MR ? MR : mc - mc % MR;
    for (int mb = m0; mb < m1; mb += mc) {
        int me = m1 - mb < mc ? m1 : mb + mc;
        for (int n = n0; n < n1; n += NR) {
            int nc = n1 - n < NR ? n1 - n : NR;
            const float *p = packed + (size_t)(n / NR) * (size_t)K * NR;
            const float *bn = b ? b + n : NULL;
            __mmask16 k0 = lanes(nc), k1 = lanes(nc - 16);
            int nv = nc > 16 ? 2 : 1;
            for (int m = mb; m < me;) {
                int mr = tile_rows(me - m);
                run_tile(mr, nv, K, x + (size_t)m * ldx, ldx, p, bn, y + (size_t)m * ldy + n,
                         ldy, k0, k1, &e);
                m += mr;
            }
        }
    }
}
