/* The memory plan: one arena for all activations, planned once at load. Each activation lives
 * from the op that produces it to the last op that reads it; two tensors share bytes only when
 * their lifetimes do not overlap. Placement is greedy by size, largest first, lowest fitting
 * offset (the strategy TFLite Micro's greedy planner uses), which is near-optimal for chains.
 * Near-linear: a sweep over time lists, once, the pairs of tensors alive together; placing a
 * tensor then looks only at its placed partners, sorted by offset. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define ALIGN 64
/* More pairs of simultaneously live tensors than this (a crafted graph: real models have a
 * few thousand) and tensors get disjoint blocks instead, which the memory limit then judges. */
#define MAX_PAIRS (1u << 22)

typedef struct block {
    size_t offset, end;
} block;

static size_t round_up(size_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

static const mf_tensor *g_sort_tensors; /* qsort has no context argument in C11 */

/* Larger tensors first; ties by index so the plan is deterministic. */
static int by_size(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    const mf_tensor *t = g_sort_tensors;
    if (t[a].count != t[b].count)
        return t[a].count > t[b].count ? -1 : 1;
    return a < b ? -1 : a > b;
}

static int by_offset(const void *pa, const void *pb)
{
    const block *a = pa, *b = pb;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static void liveness(morsel_model *m)
{
    int end = (int)m->n_ops;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        m->tensors[i].first_use = m->tensors[i].last_use = -1;
    /* The input is written before op 0; outputs are read after the last op. */
    m->tensors[m->input].first_use = 0;
    m->tensors[m->input].last_use = 0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const mf_op *op = &m->ops[i];
        if (op->folded) /* its reader reads its input instead */
            continue;
        m->tensors[op->out].first_use = (int)i;
        if (m->tensors[op->out].last_use < (int)i)
            m->tensors[op->out].last_use = (int)i;
        for (uint32_t j = 0; j < op->n_in; j++)
            if (m->tensors[op->in[j]].last_use < (int)i)
                m->tensors[op->in[j]].last_use = (int)i;
        if (op->post && m->tensors[op->post_skip].last_use < (int)i) /* its fused add reads it */
            m->tensors[op->post_skip].last_use = (int)i;
        const mf_op *q = op->proj; /* a fused project conv's add reads its shortcut here */
        if (q && q->post && m->tensors[q->post_skip].last_use < (int)i)
            m->tensors[q->post_skip].last_use = (int)i;
        if (op->se_mul && m->tensors[op->se_in].last_use < (int)i) /* its fused SE reads it */
            m->tensors[op->se_in].last_use = (int)i;
    }
    m->tensors[m->output].last_use = end;
    if (m->logits != MF_NO_TENSOR)
        m->tensors[m->logits].last_use = end;
}

/* Adjacency lists (CSR) of "alive at the same time" among the n planned tensors ids[]:
 * partners of k are adj[start[k] .. start[k+1]). A sweep over op indices keeps the live set;
 * a tensor born at time t meets everyone live at t. Returns 0 when over MAX_PAIRS pairs. */
static int overlap_pairs(const morsel_model *m, const uint32_t *ids, uint32_t n, uint32_t **start,
                         uint32_t **adj)
{
    uint32_t steps = m->n_ops + 2;
    uint32_t *born = calloc(steps + 1, sizeof *born), *by_birth = malloc(sizeof *by_birth * (n + 1));
    uint32_t *died = calloc(steps + 1, sizeof *died), *by_death = malloc(sizeof *by_death * (n + 1));
    uint32_t *live = malloc(sizeof *live * (n + 1)), *pos = malloc(sizeof *pos * (n + 1));
    uint32_t *deg = calloc((size_t)n + 1, sizeof *deg);
    uint32_t *pa = NULL, *pb = NULL;
    size_t n_pairs = 0, cap = 0;
    int ok = born && by_birth && died && by_death && live && pos && deg;
    /* Counting sorts of the tensors by first and by last use (both in 0..n_ops). */
    for (uint32_t k = 0; ok && k < n; k++) {
        born[m->tensors[ids[k]].first_use + 1]++;
        died[m->tensors[ids[k]].last_use + 1]++;
    }
    for (uint32_t t = 1; ok && t <= steps; t++) {
        born[t] += born[t - 1];
        died[t] += died[t - 1];
    }
    for (uint32_t k = 0; ok && k < n; k++) {
        by_birth[born[m->tensors[ids[k]].first_use]++] = k;
        by_death[died[m->tensors[ids[k]].last_use]++] = k;
    }
    /* born[t] / died[t] now end time t's runs; walk them in order. */
    uint32_t n_live = 0, b = 0, d = 0;
    for (uint32_t t = 0; ok && t < steps; t++) {
        /* Drop tensors whose life ended at t - 1. */
        for (; t > 0 && d < died[t - 1]; d++) {
            uint32_t k = by_death[d], q = pos[k];
            live[q] = live[--n_live];
            pos[live[q]] = q;
        }
        for (; b < born[t]; b++) {
            uint32_t k = by_birth[b];
            if (n_pairs + n_live > MAX_PAIRS) {
                ok = 0;
                break;
            }
            if (n_pairs + n_live > cap) {
                size_t nc = cap ? cap * 2 : 1024;
                while (nc < n_pairs + n_live)
                    nc *= 2;
                uint32_t *na = realloc(pa, nc * sizeof *na), *nb = na ? realloc(pb, nc * sizeof *nb) : NULL;
                if (na)
                    pa = na;
                if (!nb) {
                    ok = 0;
                    break;
                }
                pb = nb;
                cap = nc;
            }
            for (uint32_t q = 0; q < n_live; q++) {
                pa[n_pairs] = k;
                pb[n_pairs++] = live[q];
                deg[k]++;
                deg[live[q]]++;
            }
            pos[k] = n_live;
            live[n_live++] = k;
        }
    }
    uint32_t *st = NULL, *ad = NULL;
    if (ok) {
        st = malloc(sizeof *st * ((size_t)n + 1));
        ad = malloc(sizeof *ad * (2 * n_pairs + 1));
        ok = st && ad;
    }
    if (ok) {
        st[0] = 0;
        for (uint32_t k = 0; k < n; k++)
            st[k + 1] = st[k] + deg[k];
        memset(deg, 0, sizeof *deg * n);
        for (size_t p = 0; p < n_pairs; p++) {
            ad[st[pa[p]] + deg[pa[p]]++] = pb[p];
            ad[st[pb[p]] + deg[pb[p]]++] = pa[p];
        }
        *start = st;
        *adj = ad;
    } else {
        free(st);
        free(ad);
    }
    free(born);
    free(by_birth);
    free(died);
    free(by_death);
    free(live);
    free(pos);
    free(deg);
    free(pa);
    free(pb);
    return ok;
}

/* Lowest offset where `bytes` fit among the placed partners of tensor k: 0 or the end of a
 * block, swept in offset order (the same answer as trying every such candidate). */
static size_t lowest_fit(const morsel_model *m, const uint32_t *ids, uint32_t k,
                         const uint32_t *start, const uint32_t *adj, const unsigned char *placed,
                         block *buf, size_t bytes)
{
    uint32_t n = 0;
    for (uint32_t a = start[k]; a < start[k + 1]; a++) {
        uint32_t j = adj[a];
        if (!placed[j])
            continue;
        const mf_tensor *t = &m->tensors[ids[j]];
        buf[n++] = (block){t->arena_offset, t->arena_offset + round_up(t->count * sizeof(float))};
    }
    qsort(buf, n, sizeof *buf, by_offset);
    size_t cursor = 0;
    for (uint32_t i = 0; i < n && buf[i].offset < cursor + bytes; i++)
        if (buf[i].end > cursor)
            cursor = buf[i].end;
    return cursor;
}

morsel_status mf_plan(morsel_model *m, morsel_error *err)
{
    liveness(m);
    uint32_t *ids = malloc(sizeof *ids * m->n_tensors);
    unsigned char *placed = calloc(m->n_tensors, 1);
    block *buf = malloc(sizeof *buf * m->n_tensors);
    uint32_t *start = NULL, *adj = NULL;
    if (!ids || !placed || !buf) {
        free(ids);
        free(placed);
        free(buf);
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].is_const && m->tensors[i].first_use >= 0)
            ids[n++] = i;
    g_sort_tensors = m->tensors;
    qsort(ids, n, sizeof *ids, by_size);
    int shared = overlap_pairs(m, ids, n, &start, &adj);

    size_t arena = 0;
    for (uint32_t k = 0; k < n; k++) {
        mf_tensor *t = &m->tensors[ids[k]];
        size_t bytes = round_up(t->count * sizeof(float));
        size_t off = shared ? lowest_fit(m, ids, k, start, adj, placed, buf, bytes) : arena;
        t->arena_offset = off;
        placed[k] = 1;
        if (off + bytes > arena)
            arena = off + bytes;
    }
    free(start);
    free(adj);
    free(ids);
    free(placed);
    free(buf);
    m->arena_bytes = arena;
    m->scratch_floats = 0;
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (m->ops[i].scratch > m->scratch_floats)
            m->scratch_floats = m->ops[i].scratch;
    /* Each thread's block starts on a 64-byte boundary. */
    m->scratch_floats = (m->scratch_floats + 15) / 16 * 16;
    /* A file may be well-formed yet ask for absurd memory; refuse before any context tries. */
    uint64_t need = (uint64_t)m->arena_bytes + (uint64_t)m->scratch_floats * 4;
    if (m->arena_bytes > MF_MAX_ARENA_BYTES || m->scratch_floats > MF_MAX_ARENA_BYTES / 4 ||
        need > m->max_memory)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "model needs %zu MB of activations and %zu MB of scratch per context; "
                           "the limit is %llu MB (morsel_open_options.max_memory_bytes)",
                           m->arena_bytes >> 20, (m->scratch_floats * 4) >> 20,
                           (unsigned long long)(m->max_memory >> 20));
    return MORSEL_OK;
}
