/* f32 GEMM, AVX2 + FMA: the scheme of f32_gemm_avx512.c (read that file's comment) with
 * 16-column panels (two ymm) and 6-row tiles: 12 accumulators, 2 panel vectors and a
 * broadcast fill the 16 ymm registers. Same blocking (a long K summed per block of about KC,
 * then across blocks), same bit-exact composition of ranges. */
#include <immintrin.h>
#include <math.h>

#include "gemm_pack.h"
#include "microkernels.h"

#define NR MK_GEMM_NR_AVX2
#define MR 6
#define KC 512
#define BLOCK_FLOATS (1 << 16)

size_t mk_f32_gemm_pack_floats_avx2(int K, int N)
{
    return mk_gemm_panels_floats(K, N, NR);
}

void mk_f32_gemm_pack_avx2(int K, int N, const float *w, float *packed)
{
    mk_gemm_pack_panels(K, N, NR, w, packed);
}

typedef struct epilogue {
    int relu, leaky;
    __m256 alpha, hi;
} epilogue;

/* As relu() in kernels/ref/activation.c, product and sum rounded separately. */
static inline __m256 activate(__m256 v, const epilogue *e)
{
    if (!e->relu)
        return v;
    __m256 z = _mm256_setzero_ps();
    __m256 p = _mm256_max_ps(v, z);
    if (e->leaky)
        p = _mm256_add_ps(p, _mm256_mul_ps(e->alpha, _mm256_min_ps(v, z)));
    return _mm256_min_ps(p, e->hi);
}

/* As in the AVX-512 file. vmaskmov loads/stores never touch masked-off lanes but are slow on
 * AMD (microcoded stores), so full panels use plain ones. */
#define ALL_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define LOAD1(src, m) (full ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, m))
#define STORE1(dst, m, v) (full ? _mm256_storeu_ps(dst, v) : _mm256_maskstore_ps(dst, m, v))
#define DECLARE(r) __m256 c##r##a = b0, c##r##b = b1;
#define STEP(r)                                                                                \
    if ((r) < mr) {                                                                            \
        __m256 a = _mm256_broadcast_ss(xk + (r) * ldx);                                        \
        c##r##a = _mm256_fmadd_ps(a, w0, c##r##a);                                             \
        if (nv == 2)                                                                           \
            c##r##b = _mm256_fmadd_ps(a, w1, c##r##b);                                         \
    }
#define STORE(r)                                                                               \
    if ((r) < mr) {                                                                            \
        if (resume) {                                                                          \
            c##r##a = _mm256_add_ps(LOAD1(y + (r) * ldy, lo), c##r##a);                        \
            if (nv == 2)                                                                       \
                c##r##b = _mm256_add_ps(LOAD1(y + (r) * ldy + 8, hi), c##r##b);                \
        }                                                                                      \
        STORE1(y + (r) * ldy, lo, activate(c##r##a, e));                                       \
        if (nv == 2)                                                                           \
            STORE1(y + (r) * ldy + 8, hi, activate(c##r##b, e));                               \
    }

static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const int full, int K, const float *x, size_t ldx,
     const float *p, const float *b, float *y, size_t ldy, __m256i lo, __m256i hi,
     const epilogue *e, int resume, const float *pf)
{
    __m256 b0 = b ? LOAD1(b, lo) : _mm256_setzero_ps();
    __m256 b1 = b && nv == 2 ? LOAD1(b + 8, hi) : _mm256_setzero_ps();
    ALL_ROWS(DECLARE)
    const float *xk = x;
    for (int k = 0; k < K; k++, p += NR, xk++) {
        if (pf)
            _mm_prefetch((const char *)(pf + (size_t)k * NR), _MM_HINT_T0);
        __m256 w0 = _mm256_load_ps(p);
        __m256 w1 = nv == 2 ? _mm256_load_ps(p + 8) : w0;
        ALL_ROWS(STEP)
    }
    ALL_ROWS(STORE)
}

/* Rows of the next tile: the fewest tiles, as even as can be (49 rows: 6,6,6,6,5,5,5,5,5,
 * not 8 x 6 + 1). A tile of 3 rows or fewer has too few accumulators to hide the FMA
 * latency (a 1-row tile runs at a quarter of the speed), 5 rows run at full speed. */
static int tile_rows(int left)
{
    int tiles = (left + MR - 1) / MR;
    return (left + tiles - 1) / tiles;
}

#define TILE_ARGS K, x, ldx, p, b, y, ldy, lo, hi, e, resume, pf
#define BY_ROWS(nv, full)                                                                      \
    switch (mr) {                                                                              \
    case MR: tile(MR, nv, full, TILE_ARGS); return;                                            \
    case 5: tile(5, nv, full, TILE_ARGS); return;                                              \
    case 4: tile(4, nv, full, TILE_ARGS); return;                                              \
    case 3: tile(3, nv, full, TILE_ARGS); return;                                              \
    case 2: tile(2, nv, full, TILE_ARGS); return;                                              \
    default: tile(1, nv, full, TILE_ARGS); return;                                             \
    }

static void run_tile(int mr, int live, int K, const float *x, size_t ldx, const float *p,
                     const float *b, float *y, size_t ldy, __m256i lo, __m256i hi,
                     const epilogue *e, int resume, const float *pf)
{
    if (live == NR)
        BY_ROWS(2, 1)
    if (live > 8)
        BY_ROWS(2, 0)
    BY_ROWS(1, 0)
}

/* All-ones in the first n lanes. */
static __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void mk_f32_gemm_avx2(int K, int N, const float *x, size_t ldx, const float *packed,
                      const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                      int m1, int n0, int n1)
{
    (void)N;
    epilogue none = {0, 0, _mm256_setzero_ps(), _mm256_set1_ps(INFINITY)}, e = none;
    if (act && act->code == MK_ACT_RELU) {
        e.relu = 1;
        e.leaky = act->alpha != 0.0f;
        e.alpha = _mm256_set1_ps(act->alpha);
        e.hi = _mm256_set1_ps(act->max);
    }
    int nk = (K + KC - 1) / KC, kc = nk > 1 ? (K + nk - 1) / nk : K;
    int mc = BLOCK_FLOATS / (kc + (n1 - n0));
    mc = mc < MR ? MR : mc - mc % MR;
    for (int mb = m0; mb < m1; mb += mc) {
        int me = m1 - mb < mc ? m1 : mb + mc;
        for (int k0 = 0; k0 < K; k0 += kc) {
            int kn = K - k0 < kc ? K - k0 : kc, resume = k0 > 0;
            const epilogue *ek = k0 + kn == K ? &e : &none;
            for (int n = n0; n < n1; n += NR) {
                int live = n1 - n < NR ? n1 - n : NR;
                const float *p = packed + ((size_t)(n / NR) * (size_t)K + (size_t)k0) * NR;
                const float *bn = b && !resume ? b + n : NULL;
                /* The first tile of a panel fetches the next panel's block, one line per k:
                 * the weights come from memory once per inference, and without this every
                 * panel's first tile waits on them (the 49-row 7x7 layers ran at 40 GFLOP/s). */
                const float *pf = n + NR < n1 ? p + (size_t)K * NR : NULL;
                for (int m = mb; m < me;) {
                    int mr = tile_rows(me - m);
                    run_tile(mr, live, kn, x + (size_t)m * ldx + (size_t)k0, ldx, p, bn,
                             y + (size_t)m * ldy + (size_t)n, ldy, lanes(live), lanes(live - 8),
                             ek, resume, m == mb ? pf : NULL);
                    m += mr;
                }
            }
        }
    }
}
