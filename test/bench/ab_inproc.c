/* In-process A/B of Morsel builds: each variant is a libmorsel.so (two builds load side by side
 * through dlopen) and optional environment settings read while it opens the model (e.g.
 * MORSEL_FUSION=0, MORSEL_PARTS=8). The variants take turns in short blocks of runs inside one
 * process, so a noisy minute on a shared VM slows them alike: whole-model medians of separate
 * processes drift 10-20 % from minute to minute here, the paired block ratios below move by
 * well under 1 %. A benchmark, not a test (see README.md in this directory).
 *
 *     ab_inproc --model M [--threads N] [--blocks B] [--runs R] LIB[:VAR=VAL,...] ...
 *
 * Variants of one library share one pool; each library has its own, whose workers sleep
 * through the other libraries' blocks, so every block starts with an untimed run. The variants
 * start the blocks in turn. Two copies of one build side by side (A/A, MobileNetV2, 60 blocks
 * of 10 runs): paired ratios 0.995 at 1 thread, 1.007 at 2. */
#define _GNU_SOURCE 1 /* RTLD_DEEPBIND */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "morsel.h"

#define MAX_VARIANTS 8
#define MAX_SETTINGS 8

typedef struct api {
    const char *path;
    void *handle;
    morsel_status (*open_file)(const char *, morsel_model **, morsel_error *);
    morsel_status (*get_info)(const morsel_model *, morsel_model_info *, morsel_error *);
    morsel_status (*context_create)(const morsel_model *, morsel_context **, morsel_error *);
    morsel_status (*pool_create)(int, morsel_pool **, morsel_error *);
    morsel_status (*set_pool)(morsel_context *, morsel_pool *, morsel_error *);
    morsel_status (*run)(morsel_context *, const float *, size_t, morsel_output, float *, size_t,
                         morsel_error *);
    morsel_pool *pool;
} api;

typedef struct variant {
    const char *label, *lib;
    char *settings[MAX_SETTINGS];
    int n_settings;
    api *api;
    morsel_context *ctx;
    double *ms;          /* every timed run */
    double *block_median; /* per block */
} variant;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

static void *need(void *handle, const char *name, const char *lib)
{
    void *f = dlsym(handle, name);
    if (!f) {
        fprintf(stderr, "ab_inproc: %s has no %s\n", lib, name);
        exit(1);
    }
    return f;
}

static api *load(const char *lib, api *apis, int *n_apis)
{
    for (int i = 0; i < *n_apis; i++)
        if (strcmp(apis[i].path, lib) == 0)
            return &apis[i];
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
        fprintf(stderr, "ab_inproc: %s\n", dlerror());
        exit(1);
    }
    api *a = &apis[(*n_apis)++];
    a->handle = h;
    a->path = lib;
    *(void **)&a->open_file = need(h, "morsel_model_open_file", lib);
    *(void **)&a->get_info = need(h, "morsel_model_get_info", lib);
    *(void **)&a->context_create = need(h, "morsel_context_create", lib);
    *(void **)&a->pool_create = need(h, "morsel_pool_create", lib);
    *(void **)&a->set_pool = need(h, "morsel_context_set_pool", lib);
    *(void **)&a->run = need(h, "morsel_run", lib);
    return a;
}

static void usage(void)
{
    fprintf(stderr, "usage: ab_inproc --model M [--threads N] [--blocks B] [--runs R] "
                    "LIB[:VAR=VAL,...] LIB[:...] ...\n");
    exit(2);
}

static void fail(const char *what, const morsel_error *err)
{
    fprintf(stderr, "ab_inproc: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int threads = 1, blocks = 40, runs = 10, nv = 0, n_apis = 0;
    variant v[MAX_VARIANTS];
    api apis[MAX_VARIANTS];
    memset(v, 0, sizeof v);
    memset(apis, 0, sizeof apis);
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--model") == 0)
            model = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--blocks") == 0)
            blocks = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[++i]);
        else if (argv[i][0] == '-' || nv == MAX_VARIANTS)
            usage();
        else
            v[nv++].label = argv[i];
    }
    if (!model || nv < 1 || threads < 1 || blocks < 1 || runs < 1)
        usage();

    morsel_error err;
    size_t n_in = 0, n_out = 0;
    for (int k = 0; k < nv; k++) {
        char *spec = strdup(v[k].label), *colon = strchr(spec, ':');
        v[k].lib = spec;
        if (colon) {
            *colon = '\0';
            for (char *s = strtok(colon + 1, ","); s && v[k].n_settings < MAX_SETTINGS;
                 s = strtok(NULL, ","))
                if (strchr(s, '='))
                    v[k].settings[v[k].n_settings++] = s;
        }
        v[k].api = load(v[k].lib, apis, &n_apis);
        api *a = v[k].api;
        /* Settings hold while the model opens (where the library reads them), then go. */
        for (int s = 0; s < v[k].n_settings; s++) {
            char *eq = strchr(v[k].settings[s], '=');
            *eq = '\0';
            setenv(v[k].settings[s], eq + 1, 1);
        }
        morsel_model *m;
        if (a->open_file(model, &m, &err) || a->context_create(m, &v[k].ctx, &err))
            fail(v[k].label, &err);
        for (int s = 0; s < v[k].n_settings; s++)
            unsetenv(v[k].settings[s]);
        if (threads > 1) {
            if (!a->pool && a->pool_create(threads, &a->pool, &err))
                fail(v[k].label, &err);
            if (a->set_pool(v[k].ctx, a->pool, &err))
                fail(v[k].label, &err);
        }
        morsel_model_info in = MORSEL_MODEL_INFO_INIT;
        a->get_info(m, &in, NULL);
        n_in = (size_t)in.input_h * (size_t)in.input_w * (size_t)in.input_c;
        n_out = (size_t)in.n_outputs;
        v[k].ms = malloc(sizeof(double) * (size_t)blocks * (size_t)runs);
        v[k].block_median = malloc(sizeof(double) * (size_t)blocks);
    }
    float *x = malloc(n_in * sizeof *x), *y = malloc(n_out * sizeof *y);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)(i * 7919 % 1000) / 1000.0f;
    for (int k = 0; k < nv; k++) /* warm-up */
        for (int r = 0; r < 10; r++)
            if (v[k].api->run(v[k].ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, n_out, &err))
                fail(v[k].label, &err);
    double *block = malloc(sizeof(double) * (size_t)runs);
    for (int b = 0; b < blocks; b++)
        for (int i = 0; i < nv; i++) {
            int k = (b + i) % nv; /* each variant goes first in turn */
            api *a = v[k].api;
            a->run(v[k].ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, n_out, &err); /* wakes the pool */
            for (int r = 0; r < runs; r++) {
                double t0 = now_ms();
                a->run(v[k].ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, n_out, &err);
                block[r] = v[k].ms[b * runs + r] = now_ms() - t0;
            }
            v[k].block_median[b] = median(block, runs);
        }
    printf("%s, %d thread(s), %d blocks x %d runs per variant, ms\n\n", model, threads, blocks,
           runs);
    printf("| variant | median | q1 | min | p90 | / first | paired blocks / first |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    double first = 0.0, *ratio = malloc(sizeof(double) * (size_t)blocks);
    for (int k = 0; k < nv; k++) {
        int n = blocks * runs;
        for (int b = 0; b < blocks; b++)
            ratio[b] = v[k].block_median[b] / v[0].block_median[b];
        double med = median(v[k].ms, n); /* sorts ms */
        if (k == 0)
            first = med;
        printf("| %s | %.3f | %.3f | %.3f | %.3f | %.4f | %.4f |\n", v[k].label, med,
               v[k].ms[n / 4], v[k].ms[0], v[k].ms[n * 9 / 10], med / first,
               median(ratio, blocks));
    }
    return 0;
}
