/* Depthwise -> project fusion. In MobileNetV2's and Xception's wide early layers a depthwise
 * conv writes a tensor larger than L2 (56x56x144, 1.8 MB; Xception's 147x147x128, 11 MB) that
 * only the 1x1 conv after it reads: written to memory and read back. Fused, the depthwise op
 * runs that conv on each band of its output rows while the band is in cache (dw_bands.c),
 * after the expand conv before it when that is fused too, so an inverted-residual block's
 * three convs run as one op over cache-sized bands. */
#include <stdio.h>
#include <stdlib.h>

#include "ops.h"

/* Only outputs that would leave L2: below that the band GEMMs, shorter than the op's one,
 * cost more than the traffic saved. */
#define MIN_OUT_BYTES (1u << 20)
/* Each band re-reads the project's weights: fused only while they stay in L2. */
#define MAX_WEIGHT_BYTES (1u << 20)
/* Output rows a band holds without an expand (which sets its own band): a few hundred KB
 * keeps the band in L2 and gives the GEMM a few hundred rows. */
#define BAND_BYTES (256u << 10)

static int fusable(const morsel_model *m, const mf_op *d, const mf_op *q)
{
    const mk_window *g = &d->win, *h = &q->win;
    return d->type == MF_OP_DEPTHWISE_CONV2D && !d->folded && !d->serial && d->v.dwconv &&
           mf_pointwise_gemm(q) && !q->se_mul && q->in[0] == d->out && d->out != m->output &&
           d->out != m->logits && h->in_h == g->out_h && h->in_w == g->out_w &&
           h->in_c == g->out_c && h->out_h == g->out_h && h->out_w == g->out_w &&
           m->tensors[d->out].count * sizeof(float) >= MIN_OUT_BYTES &&
           (size_t)h->in_c * (size_t)h->out_c * sizeof(float) <= MAX_WEIGHT_BYTES;
}

void mf_fuse_dw_project(morsel_model *m)
{
    uint32_t *readers = mf_fusion_readers(m);
    if (!readers)
        return;
    for (uint32_t i = 0; i + 1 < m->n_ops; i++) {
        mf_op *d = &m->ops[i];
        if (d->type != MF_OP_DEPTHWISE_CONV2D || d->folded || readers[d->out] != 1)
            continue;
        mf_op *q = NULL;
        for (uint32_t k = i + 1; k < m->n_ops && !q; k++) {
            mf_op *o = &m->ops[k];
            for (uint32_t j = 0; j < o->n_in && !o->folded; j++)
                if (o->in[j] == d->out)
                    q = o;
        }
        if (!q || !fusable(m, d, q))
            continue;
        const mk_window *g = &d->win;
        size_t out_row = (size_t)g->out_w * (size_t)g->out_c;
        size_t row = (size_t)g->in_w * (size_t)g->in_c;
        int span = (g->kh - 1) * g->dh + 1, rows;
        if (d->pre) {
            rows = (d->band_rows - span) / g->sh + 1;
        } else {
            rows = (int)(BAND_BYTES / (out_row * sizeof(float)));
            /* Pieces of a row split each re-read the project's weights (mf_gemm_parts). */
            if (mf_gemm_parts(q->win.in_c, q->win.out_c) < d->parts)
                d->parts = mf_gemm_parts(q->win.in_c, q->win.out_c);
        }
        rows = rows < 1 ? 1 : rows > g->out_h ? g->out_h : rows;
        d->proj = q;
        d->proj_rows = rows;
        d->out = q->out;
        size_t need = (d->pre ? (size_t)d->band_rows * row : 0) + (size_t)rows * out_row;
        if (d->scratch < need)
            d->scratch = need;
        q->folded = 1;
        snprintf(q->kernel, sizeof q->kernel, "fused into the depthwise before it");
        char dw[sizeof d->kernel];
        snprintf(dw, sizeof dw, "%s", d->kernel);
        snprintf(d->kernel, sizeof d->kernel, "%.34s+f32_gemm%s", dw, q->post ? "+add" : "");
    }
    free(readers);
}
