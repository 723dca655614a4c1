/* f32 GEMM, NEON: the scheme of kernels/x86/f32_gemm_avx2.c (weights packed once into
 * K-major panels of 16 columns, a register tile of MR rows x 16 columns accumulated over a
 * KC-long slice of K, rows blocked so a block of x stays in L2). On AArch64 a 6 x 16 tile keeps
 * 24 accumulators, 4 panel vectors and a broadcast in the 32 vector registers; ARMv7 has 16,
 * so its tile is 2 x 16.
 *
 * The sum of element (m, n) is formed in the same order whatever range (m0, m1, n0, n1) the
 * call covers (K is sliced by K alone), so a call split over threads gives the same bits. */
#include "gemm_pack.h"
#include "microkernels.h"
#include "neon_util.h"

#define NR MK_GEMM_NR_NEON
#define MR MK_GEMM_MR_NEON
#define KC 512
#define BLOCK_FLOATS (1 << 16)

size_t mk_f32_gemm_pack_floats_neon(int K, int N)
{
    return mk_gemm_panels_floats(K, N, NR);
}

void mk_f32_gemm_pack_neon(int K, int N, const float *w, float *packed)
{
    mk_gemm_pack_panels(K, N, NR, w, packed);
}

/* mr x (4 nv) tile; `tail` is the live lanes of the last vector. Inlined with constant mr and
 * nv so the loops unroll and the accumulators live in registers. */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, int tail, int K, const float *x, size_t ldx, const float *p,
     const float *b, float *y, size_t ldy, const nu_clamp *e, int resume)
{
    float32x4_t c[MR][4];
    for (int v = 0; v < nv; v++) {
        int n = v == nv - 1 ? tail : 4;
        float32x4_t bv = b ? nu_load_n(b + 4 * v, n) : vdupq_n_f32(0.0f);
        for (int r = 0; r < mr; r++)
            c[r][v] = bv; /* a later k block starts at zero: added to y at the store */
    }
    for (int k = 0; k < K; k++, p += NR) {
        float32x4_t w[4];
        for (int v = 0; v < nv; v++)
            w[v] = vld1q_f32(p + 4 * v);
        for (int r = 0; r < mr; r++) {
            float32x4_t a = vld1q_dup_f32(x + (size_t)r * ldx + (size_t)k);
            for (int v = 0; v < nv; v++)
                c[r][v] = vfmaq_f32(c[r][v], w[v], a);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            int n = v == nv - 1 ? tail : 4;
            float *yr = y + (size_t)r * ldy + 4 * v;
            float32x4_t s = resume ? vaddq_f32(nu_load_n(yr, n), c[r][v]) : c[r][v];
            nu_store_n(yr, nu_apply(s, e), n);
        }
}

#define TILE_ARGS tail, K, x, ldx, p, b, y, ldy, e, resume
#define BY_VECTORS(mr)                                                                         \
    switch (nv) {                                                                              \
    case 4: tile(mr, 4, TILE_ARGS); return;                                                    \
    case 3: tile(mr, 3, TILE_ARGS); return;                                                    \
    case 2: tile(mr, 2, TILE_ARGS); return;                                                    \
    default: tile(mr, 1, TILE_ARGS); return;                                                   \
    }

static void run_tile(int mr, int live, int K, const float *x, size_t ldx, const float *p,
                     const float *b, float *y, size_t ldy, const nu_clamp *e, int resume)
{
    int nv = (live + 3) / 4, tail = live - 4 * (nv - 1);
#if MR == 6
    if (mr == 6)
        BY_VECTORS(6)
    if (mr == 4)
        BY_VECTORS(4)
#endif
    if (mr == 2)
        BY_VECTORS(2)
    BY_VECTORS(1)
}

/* A row tail runs as 4 + 1, 2 + 1, ... blocks. */
static int tile_rows(int left)
{
    return left >= MR ? MR : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

void mk_f32_gemm_neon(int K, int N, const float *x, size_t ldx, const float *packed,
                      const float *b, const mk_activation *act, float *y, size_t ldy, int m0,
                      int m1, int n0, int n1)
{
    (void)N;
    nu_clamp none = nu_clamp_of(NULL), e = nu_clamp_of(act);
    int nk = (K + KC - 1) / KC, kc = nk > 1 ? (K + nk - 1) / nk : K;
    int mc = BLOCK_FLOATS / (kc + (n1 - n0));
    mc = mc < MR ? MR : mc - mc % MR;
    for (int mb = m0; mb < m1; mb += mc) {
        int me = m1 - mb < mc ? m1 : mb + mc;
        for (int k0 = 0; k0 < K; k0 += kc) {
            int kn = K - k0 < kc ? K - k0 : kc, resume = k0 > 0;
            const nu_clamp *ek = k0 + kn == K ? &e : &none;
            for (int n = n0; n < n1; n += NR) {
                int live = n1 - n < NR ? n1 - n : NR;
                const float *p = packed + ((size_t)(n / NR) * (size_t)K + (size_t)k0) * NR;
                const float *bn = b && !resume ? b + n : NULL;
                for (int m = mb; m < me;) {
                    int mr = tile_rows(me - m);
                    run_tile(mr, live, kn, x + (size_t)m * ldx + (size_t)k0, ldx, p, bn,
                             y + (size_t)m * ldy + (size_t)n, ldy, ek, resume);
                    m += mr;
                }
            }
        }
    }
}

/* KxK convolution: im2col of a pixel tile into this thread's scratch (kernels/conv_tile.c),
 * then the GEMM above; a pointwise conv reads x as A directly. */
void mk_f32_conv_neon(const mk_window *g, const float *x, const float *packed, const float *b,
                      const mk_activation *act, float *y, float *scratch, int p0, int p1)
{
    int k = g->kh * g->kw * g->in_c, n = g->out_c;
    if (mk_conv_is_pointwise(g)) {
        mk_f32_gemm_neon(k, n, x, (size_t)k, packed, b, act, y, (size_t)n, p0, p1, 0, n);
        return;
    }
    int tile_px = mk_conv_tile_for(g, p1 - p0);
    for (int p = p0; p < p1; p += tile_px) {
        int pe = p1 - p < tile_px ? p1 : p + tile_px;
        mk_conv_im2col(g, x, p, pe, scratch);
        mk_f32_gemm_neon(k, n, scratch, (size_t)k, packed, b, act, y + (size_t)p * (size_t)n,
                         (size_t)n, 0, pe - p, 0, n);
    }
}
