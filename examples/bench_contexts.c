/* morsel bench --contexts W: W contexts on one shared model, each driven by its own thread at
 * the same time, which is what morsel-serve's W workers do. Reports the images/s of the W
 * together against one context alone, measured the same way just before. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Holds every worker after its warm-up until all are warm, or the start was called off. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiting, open;
} gate;

static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* Opens the gate once n workers wait (or at once with n == 0). */
static void gate_open(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n)
        pthread_cond_wait(&g->cv, &g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

typedef struct worker {
    morsel_context *ctx;
    const float *x;
    size_t n_in, n_out;
    int runs, warmup;
    struct gate *go;
    double ms; /* the timed runs, after the barrier */
    morsel_error err;
    int failed;
} worker;

static int run_n(worker *w, float *y, int n)
{
    for (int i = 0; i < n; i++)
        if (morsel_run(w->ctx, w->x, w->n_in, MORSEL_OUTPUT_PROBS, y, w->n_out, &w->err) !=
            MORSEL_OK)
            return -1;
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    float *y = malloc(w->n_out * sizeof *y);
    w->failed = !y || run_n(w, y, w->warmup);
    gate_wait(w->go); /* failed or not, so the gate's count is reached */
    double t = cli_now_ms();
    if (!w->failed)
        w->failed = run_n(w, y, w->runs) != 0;
    w->ms = cli_now_ms() - t;
    free(y);
    return NULL;
}

/* images/s of n contexts running at once; < 0 on failure (message printed). */
static double throughput(const morsel_model *m, int n, int threads, const float *x, size_t n_in,
                         size_t n_out, int runs, int warmup)
{
    worker *w = calloc((size_t)n, sizeof *w);
    pthread_t *tid = calloc((size_t)n, sizeof *tid);
    gate go = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    double ips = -1, slowest = 0;
    int made = 0, started = 0;
    if (!w || !tid) {
        fprintf(stderr, "morsel bench: cannot set up %d contexts\n", n);
        free(w);
        free(tid);
        return -1;
    }
    for (; made < n; made++) {
        w[made] = (worker){.x = x, .n_in = n_in, .n_out = n_out, .runs = runs, .warmup = warmup,
                           .go = &go};
        if (morsel_context_create(m, &w[made].ctx, &w[made].err) != MORSEL_OK ||
            morsel_context_set_threads(w[made].ctx, threads, &w[made].err) != MORSEL_OK) {
            fprintf(stderr, "morsel bench: context %d: %s\n", made, w[made].err.message);
            goto done;
        }
    }
    for (; started < n; started++)
        if (pthread_create(&tid[started], NULL, worker_main, &w[started]) != 0)
            break;
    gate_open(&go, started);
    if (started < n)
        fprintf(stderr, "morsel bench: cannot start thread %d of %d\n", started, n);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < n && started == n; i++) {
        if (w[i].failed) {
            fprintf(stderr, "morsel bench: context %d: %s\n", i, w[i].err.message);
            goto done;
        }
        slowest = w[i].ms > slowest ? w[i].ms : slowest;
    }
    if (started == n && slowest > 0)
        ips = (double)n * runs * 1e3 / slowest;
done:
    for (int i = 0; i < made + (made < n); i++)
        morsel_context_destroy(w[i].ctx);
    free(w);
    free(tid);
    return ips;
}

int bench_contexts(const morsel_model *m, int contexts, int threads, int runs, int warmup,
                   bench_contexts_result *out)
{
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    size_t n_in = (size_t)in.input_h * in.input_w * in.input_c, n_out = (size_t)in.n_outputs;
    float *x = malloc(n_in * sizeof *x);
    if (!x)
        return -1;
    uint32_t s = 12345; /* the input of the main measurement */
    for (size_t i = 0; i < n_in; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    *out = (bench_contexts_result){.contexts = contexts, .threads = threads, .runs = runs};
    out->one_ips = throughput(m, 1, threads, x, n_in, n_out, runs, warmup);
    if (out->one_ips > 0)
        out->all_ips = throughput(m, contexts, threads, x, n_in, n_out, runs, warmup);
    free(x);
    if (out->one_ips <= 0 || out->all_ips <= 0)
        return -1;
    out->scaling = out->all_ips / out->one_ips;
    return 0;
}

void bench_contexts_print(const bench_contexts_result *r, int json)
{
    if (json) {
        printf(",\"contexts\":{\"contexts\":%d,\"threads_each\":%d,\"runs_each\":%d,"
               "\"one_images_per_s\":%.9g,\"all_images_per_s\":%.9g,\"scaling\":%.9g}",
               r->contexts, r->threads, r->runs, r->one_ips, r->all_ips, r->scaling);
        return;
    }
    printf("\n%d contexts x %d thread(s) on one model, %d runs each, all at once\n", r->contexts,
           r->threads, r->runs);
    printf("%-14s %10.1f images/s\n%-14s %10.1f images/s   %.2fx one context\n", "1 context",
           r->one_ips, "all contexts", r->all_ips, r->scaling);
}
