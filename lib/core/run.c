/* Executing the planned graph: every thread walks the ops in file (topological) order, runs
 * its share of each through the op's registry entry, and meets the others at a barrier before
 * the next op reads what this one wrote. No checks here: the loader validated everything. */
#include <time.h>

#include "ops.h"
#include "pool.h"

double mf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void mf_execute(const morsel_model *m, uint8_t *arena, float *scratch, int ith, int nth,
                struct mf_barrier *barrier, double *op_ms)
{
    mf_exec e = {m, arena, scratch};
    double t = op_ms && ith == 0 ? mf_now_ms() : 0.0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const mf_op *op = &m->ops[i];
        if (op->folded) {
            if (op_ms && ith == 0)
                op_ms[i] = 0.0;
            continue;
        }
        op->def->run(&e, op, ith, nth);
        /* A serial op's readers may run on any thread: everyone waits for it too. */
        if (nth > 1)
            mf_barrier_wait(barrier);
        if (op_ms && ith == 0) {
            double t1 = mf_now_ms();
            op_ms[i] = t1 - t;
            t = t1;
        }
    }
}
