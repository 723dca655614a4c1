/* morsel info (what a model file holds) and morsel bench (how fast it runs). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *filter_name(morsel_resize_filter f)
{
    const char *name = morsel_resize_filter_name(f);
    return name ? name : "?";
}

static void print_shape(const morsel_op_info *o)
{
    char buf[64];
    int n = 0;
    for (int d = 0; d < o->out_rank; d++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", d ? "x" : "", o->out_dims[d]);
    printf("%-14s", buf);
}

int cli_info(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: morsel info MODEL\n");
        return 2;
    }
    morsel_model *m = cli_open_model(argv[1]);
    if (!m)
        return 1;
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    printf("model          %s\n", in.name);
    printf("file           %s (%llu bytes, format %u.%u)\n", argv[1],
           (unsigned long long)in.file_bytes, in.version_major, in.version_minor);
    printf("source         %s (%s, Keras %s), exporter %s\n", in.source, in.source_format,
           in.keras_version, in.exporter_version);
    if (in.license[0])
        printf("license        %s\n", in.license);
    printf("input          %dx%dx%d float32\n", in.input_h, in.input_w, in.input_c);
    const morsel_preprocess *p = &in.preprocess;
    printf("preprocess     resize %s%s, %s, x*(%g,%g,%g) + (%g,%g,%g)\n", filter_name(p->filter),
           p->center_crop ? " + centre crop" : "", p->bgr ? "BGR" : "RGB", (double)p->scale[0],
           (double)p->scale[1], (double)p->scale[2], (double)p->offset[0],
           (double)p->offset[1], (double)p->offset[2]);
    printf("output         %d classes (%s)%s\n", in.n_outputs,
           in.output_kind == 0 ? "softmax" : in.output_kind == 1 ? "sigmoid" : "raw",
           in.has_logits ? ", logits available" : "");
    printf("parameters     %llu (%.2f MB float32)\n", (unsigned long long)in.n_params,
           in.weights_bytes / 1e6);
    printf("arena          %.2f MB activations + %.2f MB scratch per context\n",
           in.arena_bytes / 1e6, in.scratch_bytes / 1e6);
    printf("work           %.3g G operations per inference (MACs, pool and resize taps)\n",
           in.work / 1e9);
    printf("kernels        %s\n", in.isa);
    printf("self-test      %s\n", in.has_selftest ? "embedded (run `morsel verify`)" : "none");
    printf("\n  #  %-18s %-12s %-14s %10s  %s\n", "op", "activation", "output", "params",
           "Keras layer (class)");
    for (int i = 0; i < in.n_ops; i++) {
        morsel_op_info o = MORSEL_OP_INFO_INIT;
        morsel_model_get_op(m, i, &o, NULL);
        printf("%3d  %-18s %-12s ", i, o.type, o.activation);
        print_shape(&o);
        printf(" %10llu  %s (%s)\n", (unsigned long long)o.n_params, o.name, o.class_name);
    }
    if (in.n_outputs > 0 && morsel_model_label(m, 0)) {
        printf("\nlabels\n");
        for (int i = 0; i < in.n_outputs; i++)
            printf("  %3d  %s\n", i, morsel_model_label(m, i));
    }
    morsel_model_close(m);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Latency of the network alone on a fixed input, the figure performance work is judged by. */
int cli_bench(int argc, char **argv)
{
    const char *model_path = cli_default_model();
    int runs = 50, warmup = 5, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: morsel bench [--model M] [--runs N] [--warmup N] [--threads N]\n");
            return 2;
        }
    }
    if (runs < 1 || warmup < 0 || threads < 1) {
        fprintf(stderr, "morsel bench: runs >= 1, warmup >= 0, threads >= 1\n");
        return 2;
    }
    double t0 = now_ms();
    morsel_model *m = cli_open_model(model_path);
    if (!m)
        return 1;
    double load_ms = now_ms() - t0;
    cli_set_threads(threads);
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    size_t n_in = (size_t)in.input_h * in.input_w * in.input_c;
    float *x = malloc(n_in * sizeof *x), *y = malloc((size_t)in.n_outputs * sizeof *y);
    double *ms = malloc((size_t)runs * sizeof *ms);
    int rc = 1;
    if (!x || !y || !ms || morsel_context_create(m, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel: %s\n", err.message[0] ? err.message : "out of memory");
        goto done;
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < n_in; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int i = 0; i < warmup + runs; i++) {
        double a = now_ms();
        if (morsel_run(ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, (size_t)in.n_outputs, &err)) {
            fprintf(stderr, "morsel: %s\n", err.message);
            goto done;
        }
        if (i >= warmup)
            ms[i - warmup] = now_ms() - a;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("%-28s %-8s %7s %5s %10s %10s %10s %10s %9s\n", "model", "kernels", "threads", "runs",
           "median_ms", "p90_ms", "min_ms", "img_per_s", "load_ms");
    printf("%-28.28s %-8s %7d %5d %10.2f %10.2f %10.2f %10.1f %9.1f\n", in.name, in.isa, threads,
           runs, ms[runs / 2], ms[(int)(0.9 * (runs - 1))], ms[0], 1e3 / ms[runs / 2], load_ms);
    rc = 0;
done:
    free(x);
    free(y);
    free(ms);
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return rc;
}
