/* An explicit pool: the caller decides how many threads exist, and between inferences the
 * workers sleep on a condition variable. No thread is ever started behind the caller's back. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin this long before sleeping between inferences (a worker waiting for the next job, the
 * caller for the workers): enough for back-to-back inferences, short enough
 * that an idle pool or a waiter whose partner was descheduled gives its core back soon. (Checking
 * between sched_yield()s after the 50 us was 18 % slower.) Measured in time, not iterations: a
 * pause costs 10-140 cycles depending on the CPU (20000 of them was 0.3-1 ms). */
#define SPIN_NS 50000
/* Within an inference, a thread done with its pieces of an op (or its share of the input copy)
 * spins this long for the others'.
 * On a shared VM the pieces of a big op end up to a millisecond apart (InceptionV3's 17x17x384
 * conv: 3.7 and 4.9 ms of work in the two threads), and a thread that slept there woke late
 * (40-110 us, more once its vCPU had halted), so the other waited for it at the next op, and so
 * on. InceptionV3 at 2 threads, per thread and inference, time in mf_done_wait with a 50 us
 * spin: 5.5-18.8 ms, with 1 ms: 4.1-7.0 (3 alternating processes, median 64.7-74.7 -> 55.5-56.4
 * ms). morsel bench, 2 threads, 6-8 alternating processes, median (min), 50 us -> 1 ms:
 * InceptionV3 56.00 -> 53.06 ms (51.82 -> 48.87), Xception 103.60 -> 89.27 (87.32 -> 83.02),
 * EfficientNetB0 10.33 -> 8.51 (8.25 -> 7.67), MobileNetV2 5.50 -> 4.70 (3.63 -> 3.68),
 * ResNet50V2 37.08 -> 37.28 (34.95 -> 32.72). */
#define OP_SPIN_NS 1000000
#define SPIN_CHECK 64 /* pauses between clock reads (a vDSO clock read is ~20 ns) */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* What a waiter waits out: the value still equal to x, still different from x, or still below. */
enum spin_cond { WHILE_EQUAL, WHILE_UNEQUAL, WHILE_BELOW };

static int still(unsigned v, unsigned x, enum spin_cond c)
{
    return c == WHILE_EQUAL ? v == x : c == WHILE_UNEQUAL ? v != x : v < x;
}

/* Spins while the condition holds, for at most spin_ns; the caller then sleeps if it still does.
 *
 * Who sleeps says so first: a waiter counts itself in `sleepers` (under the mutex) before it
 * checks its condition one last time, and whoever changes a condition signals only when that
 * count is not zero. Both sides use sequentially consistent operations, so either the waiter
 * sees the change or the changer sees the sleeper: no wake-up is lost, and threads that only
 * spin never touch the mutex. They used to lock it at every op's end and every job's start,
 * and the mutex's cache line moving between the cores was measurable when the two vCPUs sat
 * far apart: on an EPYC VM whose cores were 350-1100 ns apart (a cache-line round trip), a
 * worker that saw a new job while the caller still held the mutex slept in the kernel and
 * started 0.23 ms late. */
static void spin_while(atomic_uint *v, unsigned x, enum spin_cond c, long long spin_ns)
{
    const long long until = now_ns() + spin_ns;
    do {
        for (int i = 0; i < SPIN_CHECK; i++) {
            if (!still(atomic_load_explicit(v, memory_order_acquire), x, c))
                return;
            CPU_RELAX();
        }
    } while (now_ns() < until);
}

/* Wakes cv's sleepers, if any (see spin_while). */
static void wake(atomic_uint *sleepers, pthread_mutex_t *mu, pthread_cond_t *cv)
{
    if (!atomic_load(sleepers))
        return;
    pthread_mutex_lock(mu);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
}

int mf_barrier_init(mf_barrier *b, int n)
{
    b->n = n;
    atomic_init(&b->arrived, 0);
    atomic_init(&b->phase, 0u);
    atomic_init(&b->sleepers, 0u);
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&b->cv, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        return -1;
    }
    return 0;
}

void mf_barrier_destroy(mf_barrier *b)
{
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

void mf_barrier_wait(mf_barrier *b)
{
    unsigned phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_store(&b->phase, phase + 1);
        wake(&b->sleepers, &b->mu, &b->cv);
        return;
    }
    spin_while(&b->phase, phase, WHILE_EQUAL, OP_SPIN_NS);
    if (atomic_load(&b->phase) != phase)
        return;
    pthread_mutex_lock(&b->mu);
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->phase) == phase)
        pthread_cond_wait(&b->cv, &b->mu);
    atomic_fetch_sub(&b->sleepers, 1);
    pthread_mutex_unlock(&b->mu);
}

int mf_done_add(mf_barrier *b, atomic_uint *done, unsigned n, unsigned total)
{
    if (atomic_fetch_add(done, n) + n != total)
        return 0;
    wake(&b->sleepers, &b->mu, &b->cv);
    return 1;
}

void mf_done_wait(mf_barrier *b, atomic_uint *done, unsigned total)
{
    spin_while(done, total, WHILE_BELOW, OP_SPIN_NS);
    if (atomic_load(done) >= total)
        return;
    pthread_mutex_lock(&b->mu);
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(done) < total)
        pthread_cond_wait(&b->cv, &b->mu);
    atomic_fetch_sub(&b->sleepers, 1);
    pthread_mutex_unlock(&b->mu);
}

struct morsel_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu, turn;
    pthread_cond_t start, done;
    atomic_uint generation; /* written under mu, read by spinning workers */
    atomic_uint pending;    /* workers still running the current job */
    atomic_uint sleepers;   /* threads in (or entering) a wait on start or done */
    atomic_int stop;
    int started;
    mf_pool_fn fn;
    void *arg;
    mf_barrier barrier;
};

typedef struct worker_arg {
    morsel_pool *p;
    int ith;
} worker_arg;

static void *worker(void *a)
{
    morsel_pool *p = ((worker_arg *)a)->p;
    int ith = ((worker_arg *)a)->ith;
    free(a);
    unsigned seen = 0;
    mf_pool_fn fn;
    void *arg;
    for (;;) {
        /* Back-to-back inferences (a batch, an eval loop, a busy server) find the worker
         * awake: waking a sleeping thread costs 40-110 us on the VMs we measured, which is a
         * third of MobileNetV2's first layer at 2 threads. */
        spin_while(&p->generation, seen, WHILE_EQUAL, SPIN_NS);
        if (atomic_load(&p->generation) == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        /* fn and arg were written before the generation moved on, and stay until this
         * worker's pending count is given back. */
        seen = atomic_load(&p->generation);
        fn = p->fn;
        arg = p->arg;
        fn(arg, ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1)
            wake(&p->sleepers, &p->mu, &p->done);
    }
}

morsel_status morsel_pool_create(int n_threads, morsel_pool **out, morsel_error *err)
{
    if (!out)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "output pointer is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > 256)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT, "thread count %d is not in 1..256",
                           n_threads);
    morsel_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        free(p);
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    }
    p->n = n_threads;
    atomic_init(&p->generation, 0u);
    atomic_init(&p->pending, 0u);
    atomic_init(&p->sleepers, 0u);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->turn, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    mf_barrier_init(&p->barrier, n_threads);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a)
            *a = (worker_arg){p, i};
        if (!a || pthread_create(&p->threads[i], NULL, worker, a) != 0) {
            free(a);
            morsel_pool_destroy(p);
            return morsel_fail(err, MORSEL_ERR_NOMEM, "cannot start thread %d of %d", i + 1,
                               n_threads);
        }
        p->started = i;
    }
    *out = p;
    return MORSEL_OK;
}

void morsel_pool_destroy(morsel_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->generation, 1); /* spinners see it too */
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->started; i++)
        pthread_join(p->threads[i], NULL);
    mf_barrier_destroy(&p->barrier);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->turn);
    free(p->threads);
    free(p);
}

void mf_pool_run(morsel_pool *p, mf_pool_fn fn, void *arg)
{
    pthread_mutex_lock(&p->turn);
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, (unsigned)p->n - 1);
    atomic_fetch_add(&p->generation, 1);
    wake(&p->sleepers, &p->mu, &p->start);
    fn(arg, 0, p->n);
    spin_while(&p->pending, 0, WHILE_UNEQUAL, SPIN_NS);
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleepers, 1);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->turn);
}

int mf_pool_size(const morsel_pool *p) { return p->n; }

mf_barrier *mf_pool_barrier(morsel_pool *p) { return &p->barrier; }
