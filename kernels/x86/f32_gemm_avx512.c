/* f32 GEMM, AVX-512: y[m, n] = act(b[n] + sum_k x[m, k] W[k, n]) over a row x column range.
 *
 * W is packed at load into 32-column panels (gemm_pack.c). The microkernel keeps an MR x 32
 * tile of y in 28 zmm accumulators for a whole block of k: per k it loads one panel row (two
 * zmm) and broadcasts MR values of x, so 2 + MR loads feed 2 * MR FMAs and the loop is
 * FMA-bound even with x and the panel streaming from L2. The bias seeds the accumulators and
 * the clamp activation runs in registers before the tile's store.
 *
 * Blocking: rows in blocks whose x and y rows stay in L2 while every panel of the range passes
 * over them; a long K in blocks of about KC, so that block can hold many rows (then each weight
 * panel is streamed from memory once per row block, not once per tile). Between k blocks the
 * tile is parked in y; each later block starts its FMA chain at zero and is added to the parked
 * sum at its store. That two-level sum keeps float32 error growing with KC + K / KC terms rather
 * than K: on VGG16's 4,608-term conv dot products one chain put the logits 6.2e-5 from float64,
 * the blocked sum 3.6e-5 (OpenBLAS, blocked too: 2.4e-5; Keras's own float32: 1.9e-5).
 *
 * Two loop orders (same chains and adds, so the same bits either way), measured on a Zen 4:
 * - direct: the tile broadcasts x straight from its MR rows. Its row block counts y only up to
 *   kc floats a row: counted whole, a 2048-column layer got one-tile blocks and streamed its
 *   weights from memory once per 14 rows (Xception's 100 x 1536 -> 2048 at 57 GFLOP/s; 25 %
 *   faster with the cap).
 * - packed, when the rows are a multiple of 4 KB apart (K = 1024 or 2048: ResNet's and
 *   Xception's late 1x1 convs): 14 such rows fall in one 8-way L1 set and evict each other
 *   (61 GFLOP/s where AVX2's 6 rows got 89). A tile's MR x kc block of x is first copied into
 *   one k-major strip on the stack, then every panel of a column block (kc x NC weights, 512
 *   KB, stays in L2) runs over that strip: 33 % faster on those shapes. Elsewhere the copy
 *   costs more than it saves.
 *
 * A tile of the first panel of a row block also prefetches the next tile's x rows, a line of
 * each per 16 k: those rows come from memory, and 14 short streams (a 128-float row is 8
 * lines) end before the hardware prefetcher locks on (MobileNet- and Xception-sized layers
 * with 3,000-22,000 rows: 6-12 % faster; prefetching y for write as well made it slower).
 *
 * Weights of more than WEIGHTS_PREFETCH_BYTES are in no cache when a layer starts (a network
 * streams tens of MB of them per image; this VM's memory: 13 GB/s, 200 ns a line), and a layer
 * with few rows uses each weight only a few times. So while the tiles of a row block run over
 * one panel, they prefetch the next panel into L2, each tile its share of the rows, and the
 * weight stream overlaps the FMAs instead of stalling the first tile over each panel. The
 * packed order's first tile over a panel prefetches it PANEL_AHEAD rows (8 KB) ahead. On an
 * Intel Xeon (Sapphire Rapids class), weights rotated through 200 MB so every call starts
 * cold, interleaved, GFLOP/s before -> after: 49x4608 -> 512 (ResNet's last 3x3 as im2col)
 * 90 -> 115, 16x512 -> 512 50 -> 69, 49x512 -> 2048 87 -> 109, 49x960 -> 160 91 -> 119,
 * 361x728 -> 728 121 -> 143, 100x1536 -> 2048 82 -> 99; layers with many rows 0-5 % slower.
 * A tile spreads its share over its whole k loop, a panel row every K / share k. Issued as a
 * burst in its first share of k, the lines were asked for faster than memory delivers them
 * and the stream hardly overlapped the FMAs: 100 x 1536 -> 2048 cold, best of 300 calls,
 * 130 -> 158 GFLOP/s; Xception 1 thread, the per-op sum of its convs over 6 alternating
 * processes, medians, 107.0 -> 100.4 ms (2 threads 51.5 -> 50.1; InceptionV3 1 thread 70.1
 * -> 68.5; MobileNetV2 unchanged, ResNet50V2 too: its big 1x1s take the packed order).
 * Rows split evenly into tiles (49 as 13 + 12 + 12 + 12, not 14 + 14 + 14 + 4 + 2 + 1): a
 * 1-row tile keeps 2 FMA chains in flight, a quarter of what the FMA units take.
 *
 * Every y element is the same chains and adds whichever tile shape, loop order and range
 * computes it (the k blocks depend on K alone), so sub-ranges of rows and panels compose
 * bit-exactly to the full-range result. */
#include <immintrin.h>
#include <math.h>

#include "gemm_pack.h"
#include "gemm_tile_avx512.h"
#include "microkernels.h"

#define NR MK_GEMM_NR_AVX512
#define MR 14
#define KC 512
#define BLOCK_FLOATS (1 << 16) /* direct: x and y rows of a row block, 256 KB */
#define NC_FLOATS (1 << 17)    /* packed: the kc x nc weight block kept in L2, 512 KB */
#define PACK_MIN_COLS (4 * NR) /* a strip feeds at least this many columns, or not worth it */
#define WEIGHTS_PREFETCH_BYTES (128 << 10)
#define PANEL_AHEAD 64 /* panel rows, packed order */
#define SHORT_K 24

size_t mk_f32_gemm_pack_floats_avx512(int K, int N)
{
    return mk_gemm_panels_floats(K, N, NR);
}

void mk_f32_gemm_pack_avx512(int K, int N, const float *w, float *packed)
{
    mk_gemm_pack_panels(K, N, NR, w, packed);
}

/* One tile: mr rows x (16 * nv) columns, `full` when all 32 columns are live (no masks); pw:
 * prefetch the panel ahead. mr, nv, full and pw are constants in each instantiation (a test
 * of pw at run time in the k loop cost large-row layers 5-10 %). Masked-off lanes are never
 * read or written. */
#define STEP(r)                                                                                \
    if ((r) < mr) {                                                                            \
        __m512 a = _mm512_set1_ps(packed ? xk[r] : XROW(r));                                    \
        c##r##a = _mm512_fmadd_ps(a, w0, c##r##a);                                             \
        if (nv == 2)                                                                           \
            c##r##b = _mm512_fmadd_ps(a, w1, c##r##b);                                         \
    }
#define XOFF(j, base)                                                                          \
    ((j) == 0   ? base[0]                                                                      \
     : (j) == 1 ? base[l1]                                                                     \
     : (j) == 2 ? base[2 * l1]                                                                 \
     : (j) == 3 ? base[l3]                                                                     \
     : (j) == 4 ? base[2 * l2]                                                                 \
     : (j) == 5 ? base[l5]                                                                     \
                : base[2 * l3])
#define XROW(r) ((r) < 7 ? XOFF((r), xa) : XOFF((r) - 7, xb))
#define STORE(r)                                                                               \
    if ((r) < mr) {                                                                            \
        if (resume) {                                                                          \
            c##r##a = _mm512_add_ps(LOAD1(y + (r) * ldy, lo), c##r##a);                        \
            if (nv == 2)                                                                       \
                c##r##b = _mm512_add_ps(LOAD1(y + (r) * ldy + 16, hi), c##r##b);               \
        }                                                                                      \
        STORE1(y + (r) * ldy, lo, activate(c##r##a, e));                                       \
        if (nv == 2)                                                                           \
            STORE1(y + (r) * ldy + 16, hi, activate(c##r##b, e));                              \
    }

#define PREFETCH(r)                                                                            \
    if ((r) < mr)                                                                              \
        _mm_prefetch((const char *)(pf + (r) * ldx + k), _MM_HINT_T0);

static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const int full, const int packed, const int pw, int K,
     const float *x, size_t ldx, const float *p, const float *b, float *y, size_t ldy,
     __mmask16 lo, __mmask16 hi, const epilogue *e, int resume, const float *pf, const float *pn,
     int pcnt)
{
    __m512 b0 = b ? LOAD1(b, lo) : _mm512_setzero_ps();
    __m512 b1 = b && nv == 2 ? LOAD1(b + 16, hi) : _mm512_setzero_ps();
    ALL_ROWS(DECLARE)
    const float *xk = x;
    /* Direct order: rows 0-6 are read from xa and rows 7-13 from xb at the same 6 offsets
     * (XROW). Written as xk[r * ldx], the compiler kept an offset per row, 14 with too few
     * registers, and reloaded 8 of them from the stack every k: Xception 1 thread, 6
     * alternating processes, median 126.2 -> 122.7 ms (min 122.8 -> 120.7). */
    const float *xa = x, *xb = mr > 7 ? x + 7 * ldx : x;
    const size_t l1 = ldx, l2 = 2 * ldx, l3 = 3 * ldx, l5 = 5 * ldx;
    const int step = pw && pcnt > 0 && pcnt < K ? K / pcnt : 1;
    int kp = 0;
    for (int k = 0; k < K; k++, p += NR, xk += packed ? mr : 1, xa++, xb++) {
        if (!packed && pf && (k & 15) == 0) {
            ALL_ROWS(PREFETCH)
        }
        if (pw && k == kp && pcnt > 0) {
            _mm_prefetch((const char *)pn, _MM_HINT_T1);
            _mm_prefetch((const char *)(pn + 16), _MM_HINT_T1);
            pn += NR;
            kp = --pcnt > 0 ? kp + step : -1;
        }
        __m512 w0 = _mm512_load_ps(p);
        __m512 w1 = nv == 2 ? _mm512_load_ps(p + 16) : w0;
        ALL_ROWS(STEP)
    }
    ALL_ROWS(STORE)
}

#define TILE_ARGS K, x, ldx, p, b, y, ldy, lo, hi, e, resume, pf, pn, pcnt
#define T(h, nv, full, pw)                                                                     \
    case h:                                                                                    \
        tile(h, nv, full, packed, pw, TILE_ARGS);                                              \
        return;
/* Any height, for an even split (below). */
#define ANY_ROWS(nv, full, pw)                                                                 \
    switch (mr) {                                                                              \
        T(14, nv, full, pw) T(13, nv, full, pw) T(12, nv, full, pw) T(11, nv, full, pw)        \
        T(10, nv, full, pw) T(9, nv, full, pw) T(8, nv, full, pw) T(7, nv, full, pw)           \
        T(6, nv, full, pw) T(5, nv, full, pw) T(4, nv, full, pw) T(3, nv, full, pw)            \
        T(2, nv, full, pw) default : tile(1, nv, full, packed, pw, TILE_ARGS);                 \
        return;                                                                                \
    }
/* Only whole panels prefetch: a part panel is a layer's last. */
#define ANY_PANEL                                                                              \
    if (live == NR && pn)                                                                      \
        ANY_ROWS(2, 1, 1)                                                                      \
    if (live == NR)                                                                            \
        ANY_ROWS(2, 1, 0)                                                                      \
    if (live > 16)                                                                             \
        ANY_ROWS(2, 0, 0)                                                                      \
    ANY_ROWS(1, 0, 0)

/* live: columns of the panel in range. At most 16 (N = 16, or a last panel) skips the zero
 * half of the panel. */
static void run_direct(int mr, int live, int K, const float *x, size_t ldx, const float *p,
                       const float *b, float *y, size_t ldy, __mmask16 lo, __mmask16 hi,
                       const epilogue *e, int resume, const float *pf, const float *pn,
                       int pcnt)
{
    const int packed = 0;
    ANY_PANEL
}

static void run_packed(int mr, int live, int K, const float *x, const float *p, const float *b,
                       float *y, size_t ldy, __mmask16 lo, __mmask16 hi, const epilogue *e,
                       int resume, const float *pn, int pcnt)
{
    const int packed = 1;
    const size_t ldx = 0;
    const float *pf = NULL;
    ANY_PANEL
}

/* x rows [0, mr) x columns [0, kn) into strip[k * mr + r]. */
static void pack_strip(int mr, int kn, const float *x, size_t ldx, float *strip)
{
    for (int r = 0; r < mr; r++) {
        const float *src = x + (size_t)r * ldx;
        for (int k = 0; k < kn; k++)
            strip[k * mr + r] = src[k];
    }
}

/* Rows split evenly into as few tiles as MR allows (49 as 13 + 12 + 12 + 12): tile t of n
 * has h + (t < extra) rows. */
typedef struct row_tiles {
    int n, h, extra;
} row_tiles;

static inline row_tiles row_tiles_of(int rows)
{
    int n = (rows + MR - 1) / MR;
    return (row_tiles){n, rows / n, rows % n};
}

static inline int tile_rows(const row_tiles *r, int t) { return r->h + (t < r->extra); }

/* The packed loop order (see the top of the file); the row tiles worked out once per call. */
static __attribute__((noinline)) void
gemm_packed(int K, int kc, const float *x, size_t ldx, const float *packed, const float *b,
            const epilogue *e_last, const epilogue *none, float *y, size_t ldy, int m0, int m1,
            int n0, int n1, int pw)
{
    float strip[MR * KC] __attribute__((aligned(64)));
    int nc = NC_FLOATS / kc;
    nc = nc < NR ? NR : nc - nc % NR;
    row_tiles rt = row_tiles_of(m1 - m0);
    for (int nb = n0; nb < n1; nb += nc) {
        int ne = n1 - nb < nc ? n1 : nb + nc;
        for (int k0 = 0; k0 < K; k0 += kc) {
            int kn = K - k0 < kc ? K - k0 : kc, resume = k0 > 0;
            const epilogue *ek = k0 + kn == K ? e_last : none;
            for (int t = 0, m = m0; t < rt.n; t++) {
                int mr = tile_rows(&rt, t);
                pack_strip(mr, kn, x + (size_t)m * ldx + (size_t)k0, ldx, strip);
                for (int n = nb; n < ne; n += NR) {
                    int live = ne - n < NR ? ne - n : NR;
                    const float *p = packed + ((size_t)(n / NR) * (size_t)K + (size_t)k0) * NR;
                    run_packed(mr, live, kn, strip, p, b && !resume ? b + n : NULL,
                               y + (size_t)m * ldy + (size_t)n, ldy, lanes(live),
                               lanes(live - 16), ek, resume,
                               pw && t == 0 ? p + PANEL_AHEAD * NR : NULL, kn);
                }
                m += mr;
            }
        }
    }
}

/* A short k loop (K <= SHORT_K: MobileNetV2's and EfficientNet's first expand convs, 16 and
 * 24 channels to 96 and 144): each tile of rows runs over every panel before the next tile, so
 * its x rows come in from L2 or memory once and stay in L1 for the later panels, and its y
 * rows are written whole. With a 16-step k loop a tile is short and the other order reread
 * the x rows once per panel. MobileNetV2, 1 thread, per-op sum of its first 15 ops (three
 * fused expand -> depthwise -> project blocks), alternating processes, medians over 12-14
 * rounds, four runs: 2.343 -> 2.136, 1.896 -> 1.756, 1.859 -> 1.749, 2.230 -> 1.974 ms; 2
 * threads 0.932 -> 0.974 and 1.216 -> 1.168. EfficientNetB0's block2a and block2b (swish, as
 * a pass after the GEMM) unchanged: 1.167 -> 1.171, 0.706 -> 0.689 ms. Up to K = 64 the 28x28
 * and 14x14 expands of MobileNetV2 got slower (1.222 -> 1.304 ms over ops 15-42). */
static void gemm_short_k(int K, const float *x, size_t ldx, const float *packed, const float *b,
                         const epilogue *e, float *y, size_t ldy, int m0, int m1, int n0, int n1,
                         int mc)
{
    for (int mb = m0; mb < m1; mb += mc) {
        int me = m1 - mb < mc ? m1 : mb + mc;
        row_tiles rt = row_tiles_of(me - mb);
        for (int t = 0, m = mb; t < rt.n; t++) {
            int mr = tile_rows(&rt, t);
            const float *xm = x + (size_t)m * ldx;
            for (int n = n0; n < n1; n += NR) {
                int live = n1 - n < NR ? n1 - n : NR;
                const float *p = packed + (size_t)(n / NR) * (size_t)K * NR;
                run_direct(mr, live, K, xm, ldx, p, b ? b + n : NULL,
                           y + (size_t)m * ldy + (size_t)n, ldy, lanes(live), lanes(live - 16), e,
                           0, n == n0 && m + mr < me ? xm + (size_t)mr * ldx : NULL, NULL, 0);
            }
            m += mr;
        }
    }
}

void mk_f32_gemm_avx512(int K, int N, const float *x, size_t ldx, const float *packed,
                        const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                        int m1, int n0, int n1)
{
    epilogue none = epilogue_for(NULL), e = epilogue_for(act);
    /* Equal k blocks; they depend on K only, so every range splits k the same way. */
    int nk = (K + KC - 1) / KC, kc = nk > 1 ? (K + nk - 1) / nk : K;
    int pw = (size_t)K * (size_t)N * sizeof(float) > WEIGHTS_PREFETCH_BYTES;
    if (n1 - n0 >= PACK_MIN_COLS && ldx % 1024 == 0) {
        gemm_packed(K, kc, x, ldx, packed, b, &e, &none, y, ldy, m0, m1, n0, n1, pw);
        return;
    }
    int mc = BLOCK_FLOATS / (kc + (n1 - n0 < kc ? n1 - n0 : kc));
    mc = mc < MR ? MR : mc - mc % MR;
    if (K <= SHORT_K && !pw) {
        gemm_short_k(K, x, ldx, packed, b, &e, y, ldy, m0, m1, n0, n1, mc);
        return;
    }
    for (int mb = m0; mb < m1; mb += mc) {
        int me = m1 - mb < mc ? m1 : mb + mc;
        row_tiles rt = row_tiles_of(me - mb);
        for (int k0 = 0; k0 < K; k0 += kc) {
            int kn = K - k0 < kc ? K - k0 : kc, resume = k0 > 0;
            const epilogue *ek = k0 + kn == K ? &e : &none;
            for (int n = n0; n < n1; n += NR) {
                int live = n1 - n < NR ? n1 - n : NR;
                const float *p = packed + ((size_t)(n / NR) * (size_t)K + (size_t)k0) * NR;
                const float *bn = b && !resume ? b + n : NULL;
                /* The panel after this one: the next column's, or the first of the next k
                 * block. */
                const float *next = NULL;
                if (n + NR < n1)
                    next = p + (size_t)K * NR;
                else if (k0 + kn < K)
                    next = packed + ((size_t)(n0 / NR) * (size_t)K + (size_t)(k0 + kn)) * NR;
                for (int t = 0, m = mb; t < rt.n; t++) {
                    int mr = tile_rows(&rt, t);
                    const float *xm = x + (size_t)m * ldx + (size_t)k0;
                    run_direct(mr, live, kn, xm, ldx, p, bn, y + (size_t)m * ldy + (size_t)n,
                               ldy, lanes(live), lanes(live - 16), ek, resume,
                               n == n0 && m + mr < me ? xm + (size_t)mr * ldx : NULL,
                               pw && next ? next + (size_t)(t * kn / rt.n) * NR : NULL,
                               (t + 1) * kn / rt.n - t * kn / rt.n);
                    m += mr;
                }
            }
        }
    }
}
