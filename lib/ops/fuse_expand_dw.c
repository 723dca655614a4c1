/* Expand -> depthwise fusion. In MobileNetV2's early blocks a 1x1 conv widens 16-24 channels
 * to 96-144 at 112x112 or 56x56 (2-5 MB), and the depthwise conv after it reads that tensor
 * once: written to memory, then read back, it costs more than the arithmetic on it. Fused,
 * the depthwise op computes the expanded rows its output rows need, a band at a time, into a
 * per-thread buffer that stays in L2, and the wide tensor never exists. The GEMM and the
 * depthwise kernel are the ones the two ops chose, on the same values in the same order, so
 * the outputs are bit-identical to running the ops one after the other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Fuse only when the expanded tensor would not stay in cache anyway. */
#define MIN_EXPANDED_BYTES (1u << 20)
/* Bytes of expanded rows a band holds (per thread): half of a Zen 4's 1 MB L2. Each band moves
 * its last span - stride rows to the front and runs the GEMM on the rest, so a band of few rows
 * pays that move and a short GEMM per output row: Xception's 64 -> 128 expand at 147x147 (75 KB
 * a row) got 3 rows (1 output row) from 192 KB and took 5.09 ms (median of 5 alternating
 * processes, 4.88-6.27), 4.55 (4.23-4.92) with 6 rows; MobileNetV2's fused ops unchanged
 * (1.05 -> 0.99 ms in all, noise). */
#define BAND_BYTES (512u << 10)
/* Every band runs the 1x1 conv on a few rows and so reads its whole weight matrix again: fused
 * only while that stays in L1/L2. MobileNetV2's expands are 16-32 x 96-192 (6-24 KB); fusing
 * Xception's 256 -> 728 (745 KB) and 128 -> 256 made it 7 % slower at 2 threads. */
#define MAX_WEIGHT_BYTES (64u << 10)

static int fusable(const morsel_model *m, const mf_op *p, const mf_op *d)
{
    const mk_window *g = &p->win;
    const mf_tensor *y = &m->tensors[p->out];
    return p->type == MF_OP_CONV2D && !p->folded && p->v.gemm && !p->v.conv && !p->serial &&
           g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && d->type == MF_OP_DEPTHWISE_CONV2D && !d->folded && !d->serial &&
           d->v.dwconv && d->in[0] == p->out && d->win.in_h == g->out_h &&
           d->win.in_w == g->out_w && d->win.in_c == g->out_c && p->out != m->output &&
           p->out != m->logits && y->count * sizeof(float) >= MIN_EXPANDED_BYTES &&
           (size_t)g->in_c * (size_t)g->out_c * sizeof(float) <= MAX_WEIGHT_BYTES;
}

void mf_fuse_expand_dw(morsel_model *m)
{
    uint32_t *readers = mf_fusion_readers(m);
    if (!readers)
        return;
    for (uint32_t i = 0; i + 1 < m->n_ops; i++) {
        mf_op *p = &m->ops[i];
        if (p->type != MF_OP_CONV2D || readers[p->out] != 1)
            continue;
        for (uint32_t k = i + 1; k < m->n_ops; k++) {
            mf_op *d = &m->ops[k];
            if (d->folded || !(d->in[0] == p->out || (d->n_in > 1 && d->in[1] == p->out) ||
                               (d->n_in > 2 && d->in[2] == p->out)))
                continue;
            if (!fusable(m, p, d))
                break;
            const mk_window *g = &d->win;
            size_t row = (size_t)g->in_w * (size_t)g->in_c;
            int span = (g->kh - 1) * g->dh + 1; /* input rows one output row reads */
            int rows = (int)(BAND_BYTES / (row * sizeof(float)));
            if (rows < span)
                rows = span;
            if (rows > g->in_h)
                rows = g->in_h;
            d->pre = p;
            d->band_rows = rows;
            d->parts = 1; /* every piece would expand the rows its window overlaps again */
            d->in[0] = p->in[0];
            if (d->scratch < (size_t)rows * row)
                d->scratch = (size_t)rows * row;
            p->folded = 1;
            snprintf(p->kernel, sizeof p->kernel, "fused into the next depthwise");
            char dw[sizeof d->kernel];
            snprintf(dw, sizeof dw, "%s", d->kernel);
            snprintf(d->kernel, sizeof d->kernel, "f32_gemm+%.38s", dw);
            break;
        }
    }
    free(readers);
}
