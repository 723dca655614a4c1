/* What the op files share: failure messages, window geometry, the activation split between a
 * SIMD kernel and its tail, GEMM packing and the GEMM work split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_pack.h"
#include "ops.h"

morsel_status mf_op_fail(morsel_error *err, const mf_op *op, const char *what)
{
    return morsel_fail(err, MORSEL_ERR_FORMAT, "corrupt model file: op '%s' (%s, %s): %s",
                       op->name, op->class_name, mf_op_type_name(op->type), what);
}

morsel_status mf_check_out(const mf_op *op, const mf_tensor *y, uint32_t rank,
                           const uint32_t *dims, morsel_error *err)
{
    if (y->rank != rank)
        return mf_op_fail(err, op, "stored output rank differs from the computed one");
    for (uint32_t i = 0; i < rank; i++)
        if (y->dims[i] != dims[i])
            return mf_op_fail(err, op, "stored output shape differs from the computed one");
    return MORSEL_OK;
}

static int is_vec(const mf_tensor *t, uint32_t n)
{
    return t->is_const && t->rank == 1 && t->dims[0] == n;
}

morsel_status mf_check_channel_op(morsel_model *m, mf_op *op, const char *expects,
                                  morsel_error *err)
{
    const mf_tensor *x = mf_in(m, op, 0);
    uint32_t c = x->dims[x->rank - 1];
    if (op->n_in != 3 || !is_vec(mf_in(m, op, 1), c) || !is_vec(mf_in(m, op, 2), c))
        return mf_op_fail(err, op, expects);
    return mf_check_out(op, &m->tensors[op->out], x->rank, x->dims, err);
}

/* iattr of CONV2D, DEPTHWISE_CONV2D, AVG_POOL and MAX_POOL (weights/FORMAT.md). */
enum { A_KH, A_KW, A_SH, A_SW, A_PAD_T, A_PAD_B, A_PAD_L, A_PAD_R, A_DIL_H, A_DIL_W };

morsel_status mf_window(const mf_op *op, const mf_tensor *x, int is_pool, mk_window *g,
                        morsel_error *err)
{
    const int32_t *a = op->iattr;
    if (x->rank != 3)
        return mf_op_fail(err, op, "input must be [H, W, C]");
    int dh = is_pool ? 1 : a[A_DIL_H], dw = is_pool ? 1 : a[A_DIL_W];
    for (int i = A_KH; i <= A_SW; i++)
        if (a[i] < 1 || a[i] > 4096)
            return mf_op_fail(err, op, "kernel size or stride out of range");
    for (int i = A_PAD_T; i <= A_PAD_R; i++)
        if (a[i] < 0 || a[i] > 4096)
            return mf_op_fail(err, op, "padding out of range");
    if (dh < 1 || dw < 1 || dh > 4096 || dw > 4096)
        return mf_op_fail(err, op, "dilation out of range");
    long eh = (long)(a[A_KH] - 1) * dh + 1, ew = (long)(a[A_KW] - 1) * dw + 1;
    long ph = (long)x->dims[0] + a[A_PAD_T] + a[A_PAD_B];
    long pw = (long)x->dims[1] + a[A_PAD_L] + a[A_PAD_R];
    if (ph < eh || pw < ew)
        return mf_op_fail(err, op, "kernel larger than the padded input");
    /* Every pooling window must hold a real cell (the average divides by their count). */
    if (is_pool && (a[A_PAD_T] >= a[A_KH] || a[A_PAD_B] >= a[A_KH] || a[A_PAD_L] >= a[A_KW] ||
                    a[A_PAD_R] >= a[A_KW]))
        return mf_op_fail(err, op, "pooling padding must be smaller than the window");
    *g = (mk_window){.in_h = (int)x->dims[0], .in_w = (int)x->dims[1], .in_c = (int)x->dims[2],
                     .out_h = (int)((ph - eh) / a[A_SH] + 1),
                     .out_w = (int)((pw - ew) / a[A_SW] + 1), .kh = a[A_KH], .kw = a[A_KW],
                     .sh = a[A_SH], .sw = a[A_SW], .pad_top = a[A_PAD_T],
                     .pad_left = a[A_PAD_L], .dh = dh, .dw = dw};
    return MORSEL_OK;
}

void mf_split_act(const morsel_model *m, mf_op *op, const mf_isa_kernels *k)
{
    static const mk_activation linear = {MK_ACT_LINEAR, 0.0f, 0.0f};
    const mf_tensor *y = &m->tensors[op->out];
    op->act_ch = y->dims[y->rank - 1];
    op->kact = op->tact = linear;
    if (op->act.code == MK_ACT_RELU)
        op->kact = op->act;
    else if (op->act.code != MK_ACT_LINEAR)
        op->tact = op->act;
    op->v.act = k->act;
    op->v.softmax = k->softmax;
    if (op->act.code == MK_ACT_SOFTMAX)
        op->serial = 1; /* rows span the whole output; cheap, and always the last layer */
}

void mf_tail_act(const mf_op *op, float *x, size_t i0, size_t i1)
{
    if (op->tact.code == MK_ACT_LINEAR || i0 >= i1)
        return;
    if (op->tact.code == MK_ACT_SOFTMAX) {
        size_t r0 = i0 / op->act_ch, r1 = i1 / op->act_ch;
        if (op->v.softmax)
            op->v.softmax(x, op->act_ch, r0, r1);
        else
            mk_activation_ref(&op->tact, x + i0, i1 - i0, op->act_ch);
    } else if (op->v.act) {
        op->v.act(&op->tact, x, i0, i1);
    } else {
        mk_activation_ref(&op->tact, x + i0, i1 - i0, op->act_ch);
    }
}

morsel_status mf_pack_gemm(mf_op *op, const mf_isa_kernels *k, int K, int N, const float *w,
                           morsel_error *err)
{
    op->pack = (mf_pack_request){k->gemm_pack, w, K, N, k->gemm_pack_floats(K, N)};
    op->v.gemm = k->gemm;
    op->v.gemm_nr = k->gemm_nr;
    op->v.gemm_mr = k->gemm_mr;
    return MORSEL_OK;
}

/* The largest of nth shares of n items split in grains (mf_split). */
static size_t busiest(size_t n, size_t grain, int nth)
{
    size_t most = 0, lo, hi;
    for (int i = 0; i < nth; i++) {
        mf_split(n, grain, i, nth, &lo, &hi);
        most = hi - lo > most ? hi - lo : most;
    }
    return most;
}

/* A split by columns (each thread all the rows, its share of the weights) against one by rows
 * (its share of the rows, all the weights), given the busiest thread's work either way and
 * the N columns and M rows being split. On a tie the bigger read decides, but the input counts
 * three times: it was just written, half of it by the other core, and a column split reads
 * that half from the other core's cache, where a row split reads its own rows (the producer
 * split by rows too) and both threads stream the same weights through the shared L3. The
 * tie-break N > 3 M against the earlier N > M, 2 threads, alternating processes, medians of
 * per-op sums: ResNet50V2's 14x14 stage (196 x 1024 -> 256 now split by rows) 9.61 -> 8.36
 * ms; Xception's convs 51.4 -> 50.3 (361 x 728 -> 728), InceptionV3's 39.1 -> 37.3,
 * EfficientNetB0's unchanged. MobileNetV2, from N > 2 M (which changed nothing there) to N >
 * 3 M (its 196 x 96 -> 576 expands now by rows): convs 1.98 -> 1.88 ms, the depthwise convs
 * that read those outputs 1.31 -> 1.24. */
static int columns_win(size_t by_rows, size_t by_cols, size_t N, size_t M)
{
    return by_cols * 8 < by_rows * 7 || (by_cols <= by_rows && N > 3 * M);
}

int mf_gemm_by_columns(const mf_op *op, int N, size_t M, int nth)
{
    size_t nr = (size_t)op->v.gemm_nr, mr = (size_t)op->v.gemm_mr;
    size_t panels = ((size_t)N + nr - 1) / nr;
    if (nth < 2 || panels < (size_t)nth)
        return 0;
    /* A row split reads all the weights [K, N] in every thread, a column split all the input
     * [M, K]. Columns win when they balance clearly better, or as well while the weights are
     * much the bigger read (N > 3 M: a 7x7 layer's 49 rows split 24 + 25, its 512 columns 256 +
     * 256, and each thread then streams half of a 9 MB kernel instead of all of it). */
    size_t by_rows = busiest(M, mr, nth) * panels, by_cols = M * busiest(panels, 1, nth);
    return columns_win(by_rows, by_cols, (size_t)N, M);
}

int mf_wino_by_columns(const mf_op *op, size_t tile_rows, size_t tw, int nth)
{
    size_t nr = (size_t)op->v.gemm_nr, n = (size_t)op->win.out_c, panels = (n + nr - 1) / nr;
    if (nth < 2 || panels < (size_t)nth)
        return 0;
    /* As for a GEMM: each of the 16 products is [tiles, Cin] x [Cin, Cout]. A column split
     * runs the input transform in every thread (16 Cin adds a tile, small beside the 16 Cin
     * Cout multiply-adds) and streams only its share of the 16/9-times-larger weights. */
    size_t by_rows = busiest(tile_rows, 1, nth) * tw * panels;
    size_t by_cols = tile_rows * tw * busiest(panels, 1, nth);
    return columns_win(by_rows, by_cols, n, tile_rows * tw);
}

void mf_run_gemm(const mf_op *op, int K, int N, size_t M, const float *x, const float *b,
                 float *y, int ith, int nth)
{
    if (!mf_gemm_by_columns(op, N, M, nth)) {
        size_t m0, m1;
        /* Whole register tiles per thread, so only the last share runs a tail tile. */
        mf_split(M, (size_t)op->v.gemm_mr, ith, nth, &m0, &m1);
        if (m0 >= m1)
            return;
        op->v.gemm(K, N, x, (size_t)K, op->packed, b, &op->kact, y, (size_t)N, (int)m0,
                   (int)m1, 0, N);
        mf_tail_act(op, y, m0 * (size_t)N, m1 * (size_t)N);
        return;
    }
    size_t n0, n1;
    mf_split((size_t)N, (size_t)op->v.gemm_nr, ith, nth, &n0, &n1);
    if (n0 >= n1)
        return;
    op->v.gemm(K, N, x, (size_t)K, op->packed, b, &op->kact, y, (size_t)N, 0, (int)M, (int)n0,
               (int)n1);
    for (size_t r = 0; r < M; r++)
        mf_tail_act(op, y + r * (size_t)N, n0, n1);
}

void mf_name_kernel(mf_op *op, const char *base, const mf_isa_kernels *k)
{
    snprintf(op->kernel, sizeof op->kernel, "%s_%s", base, k->name);
}

void mf_set_parts(morsel_model *m)
{
    const char *env = getenv("MORSEL_PARTS");
    if (!env)
        return;
    int parts = atoi(env);
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (m->ops[i].parts > 1)
            m->ops[i].parts = parts;
}

int mf_fusion_enabled(void)
{
    const char *env = getenv("MORSEL_FUSION");
    return !(env && strcmp(env, "0") == 0);
}

int mf_pointwise_gemm(const mf_op *p)
{
    return p->type == MF_OP_CONV2D && !p->folded && !p->serial && p->v.gemm && !p->v.conv &&
           !p->v.wino2 && mk_conv_is_pointwise(&p->win);
}

uint32_t *mf_fusion_readers(const morsel_model *m)
{
    if (!mf_fusion_enabled())
        return NULL;
    uint32_t *readers = calloc(m->n_tensors, sizeof *readers);
    if (!readers)
        return NULL; /* an optimisation only */
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (!m->ops[i].folded)
            for (uint32_t j = 0; j < m->ops[i].n_in; j++)
                readers[m->ops[i].in[j]]++;
    return readers;
}
