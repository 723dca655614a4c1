/* The thread pool and the barrier inference threads meet at after each op. */
#ifndef MORSEL_POOL_H
#define MORSEL_POOL_H

#include <pthread.h>
#include <stdatomic.h>

#include "morsel.h"

/* Sense-reversing barrier: threads spin briefly (an op on the other core usually ends within
 * microseconds of ours), then sleep on a condition variable, so a stalled or oversubscribed
 * thread never burns a core for long. */
typedef struct mf_barrier {
    int n;
    atomic_int arrived;
    atomic_uint phase;
    atomic_uint sleepers; /* threads in (or entering) a wait on cv */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} mf_barrier;

int mf_barrier_init(mf_barrier *b, int n);
void mf_barrier_destroy(mf_barrier *b);
void mf_barrier_wait(mf_barrier *b);
/* Completion counting on the barrier's mutex and condition: *done += n, waking the waiters when
 * it reaches total; and waiting (spin, then sleep) until it has. */
int mf_done_add(mf_barrier *b, atomic_uint *done, unsigned n, unsigned total);
void mf_done_wait(mf_barrier *b, atomic_uint *done, unsigned total);

/* Runs fn(arg, ith, n) on the pool's n threads (the caller is thread 0) and returns when all
 * are done. Callers sharing a pool take turns. */
typedef void (*mf_pool_fn)(void *arg, int ith, int nth);
void mf_pool_run(morsel_pool *p, mf_pool_fn fn, void *arg);
int mf_pool_size(const morsel_pool *p);
mf_barrier *mf_pool_barrier(morsel_pool *p);

#endif
