/* The op registry. Each op type is one entry: check (validate shapes and attributes once, at
 * load), prepare (choose the kernel variant for this CPU, pack weights, declare scratch) and
 * run (compute thread ith's share of the op out of nth). TFLite Micro's Init/Prepare/Eval has
 * the same split. lib/core only walks the graph; everything op-specific lives in op_*.c. */
#ifndef MORSEL_OPS_H
#define MORSEL_OPS_H

#include <string.h>

#include "isa.h"
#include "model.h"

/* Where a running op finds its tensors and its thread's scratch. */
typedef struct mf_exec {
    const morsel_model *m;
    uint8_t *arena;
    float *scratch;        /* nth blocks of m->scratch_floats, thread tid uses block tid */
    int tid;               /* the thread running: with parts (mf_op.parts) not the part index */
    int *memo;             /* this thread's, for this pass: the op whose per-pass values (an SE
                            * gate) its scratch holds, or -1 */
} mf_exec;

typedef struct mf_op_def {
    const char *name;
    morsel_status (*check)(morsel_model *m, mf_op *op, morsel_error *err);
    /* NULL: nothing to prepare (the op runs its reference kernel on thread 0). */
    morsel_status (*prepare)(morsel_model *m, mf_op *op, const mf_isa_kernels *k,
                             morsel_error *err);
    /* Computes share ith of nth: a thread's share, or one piece of it when the op has parts
     * (then e->tid says which thread, for scratch). */
    void (*run)(const mf_exec *e, const mf_op *op, int ith, int nth);
} mf_op_def;

/* The entry for a file op type, NULL when this build does not know it. */
const mf_op_def *mf_op_def_for(uint32_t type);

/* ---- helpers shared by the op files ---------------------------------------------------- */

morsel_status mf_op_fail(morsel_error *err, const mf_op *op, const char *what);
morsel_status mf_check_out(const mf_op *op, const mf_tensor *y, uint32_t rank,
                           const uint32_t *dims, morsel_error *err);

static inline const mf_tensor *mf_in(const morsel_model *m, const mf_op *op, int i)
{
    return &m->tensors[op->in[i]];
}

static inline int mf_same_shape(const mf_tensor *a, const mf_tensor *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof a->dims) == 0;
}

static inline const float *mf_src(const mf_exec *e, uint32_t t)
{
    const mf_tensor *x = &e->m->tensors[t];
    return x->is_const ? x->data : (const float *)(const void *)(e->arena + x->arena_offset);
}

static inline float *mf_dst(const mf_exec *e, const mf_op *op)
{
    return (float *)(void *)(e->arena + e->m->tensors[op->out].arena_offset);
}

static inline float *mf_scratch(const mf_exec *e)
{
    return e->scratch + (size_t)e->tid * e->m->scratch_floats;
}

/* Parts per thread for the ops that split finely (pixels, rows, column panels): see
 * mf_op.parts. */
#define MF_PARTS 4

/* Pieces for a GEMM of W [K, N]: each piece of a row split streams all of W again, which
 * pays only while W stays in L2. Winograd convs (16 such GEMMs of transformed weights, 4.7 MB
 * on ResNet50V2's 3x3 256 -> 256) and larger 1x1 convs keep one static share per thread:
 * with 4 pieces ResNet50V2 ran 12 % slower at 2 threads. */
static inline int mf_gemm_parts(int K, int N)
{
    return (size_t)K * (size_t)N * sizeof(float) <= (256u << 10) ? MF_PARTS : 1;
}

/* Thread ith's share [*b, *e) of n items, in multiples of `grain` (the last share takes the
 * remainder). Shares differ by at most one grain, so no thread waits long at the barrier. */
static inline void mf_split(size_t n, size_t grain, int ith, int nth, size_t *b, size_t *e)
{
    size_t units = (n + grain - 1) / grain;
    size_t lo = units * (size_t)ith / (size_t)nth, hi = units * (size_t)(ith + 1) / (size_t)nth;
    *b = lo * grain < n ? lo * grain : n;
    *e = hi * grain < n ? hi * grain : n;
}

/* The activation left to apply after a SIMD kernel that fused op->kact: none (LINEAR) when the
 * kernel fused it, else the op's own. Applied over x[i0, i1) with the ISA's vector form. */
void mf_tail_act(const mf_op *op, float *x, size_t i0, size_t i1);

/* Decides which part of op->act a SIMD kernel fuses (the clamp family) and which part
 * (sigmoid, swish, ...) runs after it; fills op->kact and op->tact. */
void mf_split_act(const morsel_model *m, mf_op *op, const mf_isa_kernels *k);

/* y[M, N] = x[M, K] W + b through the op's packed GEMM, thread ith's share: rows when there
 * are enough of them, else column panels (a 7x7 layer has 49 rows, a dense layer 1). */
void mf_run_gemm(const mf_op *op, int K, int N, size_t M, const float *x, const float *b,
                 float *y, int ith, int nth);

/* Whether mf_run_gemm splits [M, N] over column panels rather than rows for nth threads. */
int mf_gemm_by_columns(const mf_op *op, int N, size_t M, int nth);
/* The same choice for a Winograd conv of tile_rows rows of tw tiles. */
int mf_wino_by_columns(const mf_op *op, size_t tile_rows, size_t tw, int nth);

/* Asks for W [K, N] packed for the ISA's GEMM into op->packed (mf_pack_weights does it once
 * every op is prepared) and points op->v at that GEMM. */
morsel_status mf_pack_gemm(mf_op *op, const mf_isa_kernels *k, int K, int N, const float *w,
                           morsel_error *err);

/* AFFINE and LAYER_NORM: x [..., C] and two constant vectors [C]; y has x's shape. `expects`
 * is the message when the inputs are wrong. */
morsel_status mf_check_channel_op(morsel_model *m, mf_op *op, const char *expects,
                                  morsel_error *err);

/* Windows shared by conv, depthwise and pooling (TF's output-size rule, explicit pads). */
morsel_status mf_window(const mf_op *op, const mf_tensor *x, int is_pool, mk_window *g,
                        morsel_error *err);

/* DEPTHWISE_CONV2D with op->pre and/or op->proj (dw_bands.c): output rows [oy0, oy1) band by
 * band, computing the expanded input rows each band needs (pre) and running the project conv
 * on its output rows (proj), in buf (op->scratch floats). */
void mf_run_dw_bands(const mf_exec *e, const mf_op *op, float *buf, int oy0, int oy1);

/* The load-time rewrites (fold_reshapes, fuse_*): whether MORSEL_FUSION=0 leaves them off, and
 * each tensor's count of readers among the ops that run (calloc'd; NULL when off or out of
 * memory, when the rewrite is skipped). */
int mf_fusion_enabled(void);
uint32_t *mf_fusion_readers(const morsel_model *m);
/* Whether op p runs and is a 1x1 conv on the SIMD GEMM, the op the fusions fold work into. */
int mf_pointwise_gemm(const mf_op *p);

/* CONV2D with op->post (fuse_residual_add.c): after mf_run_gemm wrote thread ith's share of
 * y [M, N], adds the shortcut over that same share, then the add's activation. */
void mf_run_post_add(const mf_exec *e, const mf_op *op, int N, size_t M, float *y, int ith,
                     int nth);
/* The same add over elements [i0, i1) of y. */
void mf_post_add_range(const mf_exec *e, const mf_op *op, float *y, size_t i0, size_t i1);

/* CONV2D with op->se_mul (fuse_se.c): piece ith of nth of the conv on its input gated by the
 * squeeze-and-excitation it absorbed, then op->post if any. */
void mf_run_se_conv(const mf_exec *e, const mf_op *op, int ith, int nth);

/* Copies a name "<base>_<isa>" into storage the model owns (op->kernel_name). */
void mf_name_kernel(mf_op *op, const char *base, const mf_isa_kernels *k);

#endif
