/* The FP32 peak `morsel bench` compares its GFLOP/s with: measured on this machine, now, by a
 * loop of independent FMA chains, because a datasheet peak ignores clocks, turbo and whoever
 * else shares the cores. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

/* More chains than FMA latency x FMA ports on any current x86 core (4 x 2), so the loop is
 * bound by throughput, not latency. */
#define CHAINS 12
#define ITERS (1 << 18)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#ifdef PEAK_X86
__attribute__((target("avx512f"))) static float fma_zmm(long iters)
{
    __m512 acc[CHAINS];
    /* acc -> acc * m + c converges to 1: no overflow, no denormals, nothing to fold away. */
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int j = 0; j < CHAINS; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm512_fmadd_ps(acc[j], m, c);
    for (int j = 1; j < CHAINS; j++)
        acc[0] = _mm512_add_ps(acc[0], acc[j]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float fma_ymm(long iters)
{
    __m256 acc[CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int j = 0; j < CHAINS; j++)
        acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm256_fmadd_ps(acc[j], m, c);
    for (int j = 1; j < CHAINS; j++)
        acc[0] = _mm256_add_ps(acc[0], acc[j]);
    float v[8];
    _mm256_storeu_ps(v, acc[0]);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
#endif

/* volatile: keeps the compiler from vectorising the "scalar" loop. */
static float fma_scalar(long iters)
{
    volatile float mv = 0.999999f, cv = 1e-6f;
    float m = mv, c = cv, acc[CHAINS];
    for (int j = 0; j < CHAINS; j++)
        acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            acc[j] = acc[j] * m + c;
    float s = 0;
    for (int j = 0; j < CHAINS; j++)
        s += acc[j];
    return s;
}

typedef float (*fma_fn)(long);

static fma_fn pick(const char **isa, int *lanes)
{
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512f zmm FMA";
        *lanes = 16;
        return fma_zmm;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2 ymm FMA";
        *lanes = 8;
        return fma_ymm;
    }
#endif
    *isa = "scalar mul+add";
    *lanes = 1;
    return fma_scalar;
}

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} gate;

typedef struct worker {
    fma_fn fn;
    int lanes, reps;
    gate *start; /* all threads begin together, so they really share the cores */
    double gflops; /* best block of this thread */
    volatile float sink;
} worker;

/* Best of several short blocks: the peak is what the core can do, so slow blocks (another
 * process got the core) are the noise, not the signal. */
static void *run_worker(void *arg)
{
    worker *w = arg;
    if (w->start) {
        pthread_mutex_lock(&w->start->mu);
        while (!w->start->open)
            pthread_cond_wait(&w->start->cv, &w->start->mu);
        pthread_mutex_unlock(&w->start->mu);
    }
    double flops = 2.0 * CHAINS * w->lanes * (double)ITERS;
    w->gflops = 0;
    for (int r = 0; r < w->reps; r++) {
        double t = now_s();
        w->sink = w->fn(ITERS);
        double g = flops / (now_s() - t) / 1e9;
        if (g > w->gflops)
            w->gflops = g;
    }
    return NULL;
}

int bench_peak(int threads, bench_peak_result *out)
{
    memset(out, 0, sizeof *out);
    int lanes = 1;
    fma_fn fn = pick(&out->isa, &lanes);
    /* One untimed block first so the core is at its running clock. */
    worker solo = {.fn = fn, .lanes = lanes, .reps = 1};
    run_worker(&solo);
    solo.reps = 30;
    run_worker(&solo);
    out->gflops_1 = solo.gflops;
    out->threads = threads;
    if (threads <= 1) {
        out->gflops_per_thread = out->gflops_all = solo.gflops;
        return 0;
    }
    if (threads > BENCH_MAX_THREADS)
        return -1;
    worker w[BENCH_MAX_THREADS];
    pthread_t tid[BENCH_MAX_THREADS];
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .open = 0};
    int started = 0;
    for (; started < threads; started++) {
        w[started] = (worker){.fn = fn, .lanes = lanes, .reps = 30, .start = &g};
        if (pthread_create(&tid[started], NULL, run_worker, &w[started]) != 0)
            break;
    }
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    if (started < threads)
        return -1;
    for (int i = 0; i < threads; i++)
        out->gflops_all += w[i].gflops;
    out->gflops_per_thread = out->gflops_all / threads;
    return 0;
}
