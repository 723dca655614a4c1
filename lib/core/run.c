/* Executing the planned graph: every thread walks the ops in file (topological) order, runs
 * pieces of each through the op's registry entry, and waits until all of the op's pieces are
 * done before the next op reads what this one wrote. No checks here: the loader validated
 * everything. */
#include <stdatomic.h>
#include <time.h>

#include "ops.h"
#include "pool.h"

double mf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Each thread's claim counters on cache lines of their own (claiming one's own pieces moves no
 * line between cores), then a row of per-op counts of pieces done. */
size_t mf_claims_stride(const morsel_model *m)
{
    return ((size_t)m->n_ops + 15) & ~(size_t)15;
}

/* Op i's pieces: thread t owns pieces t * parts .. + parts - 1 (its static share, cut up when
 * parts > 1), takes them in order, then takes whatever the others have not started; it returns
 * how many it ran. On a shared VM the two vCPUs ran 1-thread MobileNetV2 side by side 5-16 %
 * apart in speed for seconds at a time (medians of 60 runs, 12 rounds), and a thread whose
 * vCPU is descheduled for a while would otherwise hold every op up. */
static int run_pieces(const mf_exec *e, const mf_op *op, uint32_t i, int ith, int nth,
                      atomic_uint *claims, size_t stride)
{
    unsigned parts = op->parts > 1 ? (unsigned)op->parts : 1u;
    int ran = 0;
    for (int k = 0; k < nth; k++) {
        int v = (ith + k) % nth;
        atomic_uint *c = claims + (size_t)v * stride + i;
        for (unsigned j; (j = atomic_fetch_add_explicit(c, 1, memory_order_relaxed)) < parts; ran++)
            op->def->run(e, op, v * (int)parts + (int)j, nth * (int)parts);
    }
    return ran;
}

void mf_execute(const morsel_model *m, uint8_t *arena, float *scratch, int ith, int nth,
                struct mf_barrier *barrier, atomic_uint *claims, double *op_ms)
{
    int memo = -1;
    mf_exec e = {m, arena, scratch, ith, &memo};
    size_t stride = mf_claims_stride(m);
    double t = op_ms && nth == 1 ? mf_now_ms() : 0.0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const mf_op *op = &m->ops[i];
        if (op->folded) {
            if (op_ms && ith == 0)
                op_ms[i] = 0.0;
            continue;
        }
        if (nth == 1) {
            op->def->run(&e, op, 0, 1);
            if (op_ms) {
                double t1 = mf_now_ms();
                op_ms[i] = t1 - t;
                t = t1;
            }
            continue;
        }
        /* An op is done when all its pieces are, whoever ran them: a thread that has not come
         * back from being descheduled holds nothing up unless it holds a piece, and catches up
         * through the finished ops when it returns. So the thread that finishes the op stamps
         * its end: timed from thread 0, a late thread 0 saw finished ops take no time. */
        unsigned total = (unsigned)(nth * (op->parts > 1 ? op->parts : 1));
        int ran = run_pieces(&e, op, i, ith, nth, claims, stride);
        atomic_uint *done = claims + (size_t)nth * stride + i;
        /* Stamped before the count that may complete the op: a thread that then runs the
         * next op stamps later, so the ends never go backwards. */
        double end = op_ms && ran ? mf_now_ms() : 0.0;
        if (ran && mf_done_add(barrier, done, (unsigned)ran, total) && op_ms)
            op_ms[i] = end;
        mf_done_wait(barrier, done, total);
    }
}

void mf_op_times_from_ends(const morsel_model *m, double start, double *op_ms)
{
    for (uint32_t i = 0; i < m->n_ops; i++) {
        if (m->ops[i].folded)
            continue;
        double end = op_ms[i];
        op_ms[i] = end - start;
        start = end;
    }
}
