/* The memory plan: one arena for all activations, planned once at load. Each activation lives
 * from the op that produces it to the last op that reads it; two tensors share bytes only when
 * their lifetimes do not overlap. Placement is greedy by size, largest first, lowest fitting
 * offset (the strategy TFLite Micro's greedy planner uses), which is near-optimal for chains. */
#include <stdlib.h>

#include "model.h"

#define ALIGN 64

typedef struct placed {
    size_t offset, bytes;
    int first, last;
} placed;

static size_t round_up(size_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

/* Larger tensors first; ties by index so the plan is deterministic. Insertion sort: a few
 * hundred tensors, once per load. */
static int goes_before(const mf_tensor *t, uint32_t a, uint32_t b)
{
    return t[a].count > t[b].count || (t[a].count == t[b].count && a < b);
}

static void sort_ids(uint32_t *ids, uint32_t n, const mf_tensor *t)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = ids[i], j = i;
        for (; j > 0 && goes_before(t, v, ids[j - 1]); j--)
            ids[j] = ids[j - 1];
        ids[j] = v;
    }
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
    }
    m->tensors[m->output].last_use = end;
    if (m->logits != MF_NO_TENSOR)
        m->tensors[m->logits].last_use = end;
}

morsel_status mf_plan(morsel_model *m, morsel_error *err)
{
    liveness(m);
    uint32_t *ids = malloc(sizeof *ids * m->n_tensors);
    placed *done = malloc(sizeof *done * m->n_tensors);
    if (!ids || !done) {
        free(ids);
        free(done);
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    }
    uint32_t n = 0, n_done = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].is_const && m->tensors[i].first_use >= 0)
            ids[n++] = i;
    sort_ids(ids, n, m->tensors);

    size_t arena = 0;
    for (uint32_t k = 0; k < n; k++) {
        mf_tensor *t = &m->tensors[ids[k]];
        size_t bytes = round_up(t->count * sizeof(float));
        /* Scan candidate offsets: 0 and the end of every placed block alive at the same time,
         * taking the lowest one that collides with none of them. */
        size_t best = (size_t)-1;
        for (uint32_t c = 0; c <= n_done; c++) {
            size_t off = c == n_done ? 0 : done[c].offset + done[c].bytes;
            if (c < n_done && (done[c].last < t->first_use || done[c].first > t->last_use))
                continue;
            int ok = 1;
            for (uint32_t d = 0; d < n_done && ok; d++) {
                if (done[d].last < t->first_use || done[d].first > t->last_use)
                    continue;
                if (off < done[d].offset + done[d].bytes && done[d].offset < off + bytes)
                    ok = 0;
            }
            if (ok && off < best)
                best = off;
        }
        t->arena_offset = best;
        done[n_done++] = (placed){best, bytes, t->first_use, t->last_use};
        if (best + bytes > arena)
            arena = best + bytes;
    }
    m->arena_bytes = arena;
    m->scratch_floats = 0;
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (m->ops[i].scratch > m->scratch_floats)
            m->scratch_floats = m->ops[i].scratch;
    /* Each thread's block starts on a 64-byte boundary. */
    m->scratch_floats = (m->scratch_floats + 15) / 16 * 16;
    free(ids);
    free(done);
    /* A file may be well-formed yet ask for absurd memory; refuse before any context tries. */
    if (m->arena_bytes > MF_MAX_ARENA_BYTES || m->scratch_floats > MF_MAX_ARENA_BYTES / 4)
        return morsel_fail(err, MORSEL_ERR_LIMIT,
                           "model needs %zu MB of activations and %zu MB of scratch; the limit "
                           "is %llu MB", m->arena_bytes >> 20, (m->scratch_floats * 4) >> 20,
                           (unsigned long long)(MF_MAX_ARENA_BYTES >> 20));
    return MORSEL_OK;
}
