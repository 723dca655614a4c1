/* A depthwise conv with convs fused around it (fuse_expand_dw.c, fuse_dw_project.c) runs band
 * by band of output rows: the expand conv computes the input rows a band reads into the first
 * buffer, the depthwise kernel writes the band, and the project conv reads it from the second
 * buffer while it is still in cache, writing the op's output rows (then its residual add).
 * Each step is the kernel its own op chose, over the same values in the same order, so the
 * outputs are bit-identical to the ops run one after the other. */
#include <string.h>

#include "ops.h"

/* Rows [r0, r1) of the expanded tensor into buf (row-major, row floats each). */
static void expand_rows(const mf_op *p, const float *x, const float *b, int r0, int r1,
                        float *buf)
{
    const mk_window *g = &p->win;
    size_t w = (size_t)g->in_w;
    mf_run_gemm(p, g->in_c, g->out_c, (size_t)(r1 - r0) * w, x + (size_t)r0 * w * (size_t)g->in_c,
                b, buf, 0, 1);
}

/* The project conv q on `rows` output rows in band (out_w pixels each), into y from row oy. */
static void project_rows(const mf_exec *e, const mf_op *q, const float *band, int oy, int rows,
                         float *y)
{
    const mk_window *g = &q->win;
    size_t n = (size_t)g->out_c, i0 = (size_t)oy * (size_t)g->out_w * n;
    int m = rows * g->out_w;
    const float *b = q->n_in > 2 ? mf_src(e, q->in[2]) : NULL;
    q->v.gemm(g->in_c, g->out_c, band, (size_t)g->in_c, q->packed, b, &q->kact, y + i0, n, 0, m,
              0, g->out_c);
    mf_tail_act(q, y + i0, 0, (size_t)m * n);
    if (q->post)
        mf_post_add_range(e, q, y, i0, i0 + (size_t)m * n);
}

void mf_run_dw_bands(const mf_exec *e, const mf_op *d, float *buf, int oy0, int oy1)
{
    const mf_op *p = d->pre, *q = d->proj;
    const mk_window *g = &d->win;
    const float *x = mf_src(e, d->in[0]); /* the expand's input when there is one */
    const float *pb = p && p->n_in > 2 ? mf_src(e, p->in[2]) : NULL;
    const float *w = mf_src(e, d->in[1]), *b = d->n_in > 2 ? mf_src(e, d->in[2]) : NULL;
    float *y = mf_dst(e, d);
    size_t row = (size_t)g->in_w * (size_t)g->in_c, out_row = (size_t)g->out_w * g->out_c;
    int span = (g->kh - 1) * g->dh + 1;
    /* Output rows per band: what the expanded rows allow, else the project's band. */
    int band = p ? (d->band_rows - span) / g->sh + 1 : d->proj_rows;
    band = band < 1 ? 1 : band;
    float *out = q ? buf + (p ? (size_t)d->band_rows * row : 0) : NULL;
    int have0 = 0, have1 = 0; /* expanded input rows now in buf */
    for (int b0 = oy0; b0 < oy1; b0 += band) {
        int b1 = b0 + band < oy1 ? b0 + band : oy1;
        int r0 = b0 * g->sh - g->pad_top, r1 = (b1 - 1) * g->sh - g->pad_top + span;
        r0 = r0 < 0 ? 0 : r0;
        r1 = r1 > g->in_h ? g->in_h : r1;
        const float *src = x + (size_t)(r0 < r1 ? r0 : 0) * row;
        if (p && r0 < r1) {
            /* A band's input rows overlap the previous band's by span - stride rows: those
             * are moved to the front, not recomputed. */
            int keep = have1 > r0 && r0 >= have0 ? have1 - r0 : 0;
            if (keep)
                memmove(buf, buf + (size_t)(r0 - have0) * row, (size_t)keep * row * sizeof *buf);
            expand_rows(p, x, pb, r0 + keep, r1, buf + (size_t)keep * row);
            have0 = r0;
            have1 = r1;
        }
        if (p)
            src = buf;
        /* The same window over the band's rows: input row iy sits at row iy - r0 of src, and
         * rows outside [r0, r1) are padding only where they are outside the image. */
        mk_window gb = *g;
        gb.in_h = r1 > r0 ? r1 - r0 : 0;
        gb.out_h = b1 - b0;
        gb.pad_top = g->pad_top - b0 * g->sh + r0;
        float *dst = q ? out : y + (size_t)b0 * out_row;
        d->v.dwconv(&gb, src, w, b, &d->kact, dst, 0, b1 - b0);
        mf_tail_act(d, dst, 0, (size_t)(b1 - b0) * out_row);
        if (q)
            project_rows(e, q, out, b0, b1 - b0, y);
    }
}
