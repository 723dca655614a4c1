/* morsel bench: how fast a model runs here, and how far that is from what the cores can do. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"

typedef struct bench_opts {
    const char *model, *isa, *image;
    int runs, warmup, warmup_ms, threads, batch, per_op, json, load_only, contexts;
} bench_opts;

typedef struct bench_result {
    double load_ms, load_cpu_ms, first_ms, median_ms, p90_ms, min_ms, mean_ms;
    double images_per_s, gflops, peak_pct, rss_mb;
    int pages;          /* morsel_open_options.pages the model was opened with */
    double huge_mb;     /* AnonHugePages of the process after the load, or -1 */
    double xcpu_ns; /* with threads or contexts > 1 (else -1): bench_xcpu_ns */
    uint64_t macs; /* one image */
    bench_peak_result peak;
    double *op_ms; /* mean per op over the profiled runs, NULL without --per-op */
    int has_image;
    bench_image_result image; /* --image */
    int has_contexts;
    bench_contexts_result contexts; /* --contexts */
} bench_result;

static const char usage_text[] =
    "usage: morsel bench [--model M] [--runs N] [--warmup N] [--warmup-ms T] [--threads N]\n"
    "                    [--batch N]\n"
    "                    [--per-op] [--isa scalar|avx2|avx512] [--json] [--load-only]\n"
    "                    [--image FILE] [--contexts W]\n";

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double cli_now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static double rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux reports kilobytes */
}

/* Anonymous memory in transparent huge pages now (/proc/self/smaps_rollup), or -1. */
static double anon_huge_mb(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

int cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.model = cli_default_model(), .runs = 50, .warmup = 5, .warmup_ms = 300,
                      .threads = 1, .batch = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        int flag = !strcmp(a, "--per-op") || !strcmp(a, "--json") || !strcmp(a, "--load-only");
        if (!strcmp(a, "--per-op"))
            o->per_op = 1;
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--load-only"))
            o->load_only = 1;
        else if (!v)
            bad = 1;
        else if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--isa"))
            o->isa = v;
        else if (!strcmp(a, "--image"))
            o->image = v;
        else if (!strcmp(a, "--runs"))
            bad = cli_parse_int("bench", a, v, 1, 1000000, &o->runs);
        else if (!strcmp(a, "--warmup"))
            bad = cli_parse_int("bench", a, v, 0, 1000000, &o->warmup);
        else if (!strcmp(a, "--warmup-ms"))
            bad = cli_parse_int("bench", a, v, 0, 600000, &o->warmup_ms);
        else if (!strcmp(a, "--threads"))
            bad = cli_parse_int("bench", a, v, 1, BENCH_MAX_THREADS, &o->threads);
        else if (!strcmp(a, "--contexts"))
            bad = cli_parse_int("bench", a, v, 1, BENCH_MAX_THREADS, &o->contexts);
        else if (!strcmp(a, "--batch"))
            bad = cli_parse_int("bench", a, v, 1, 1024, &o->batch);
        else
            bad = 1;
        if (bad) {
            fputs(usage_text, stderr);
            return -1;
        }
        if (!flag)
            i++;
    }
    return 0;
}

/* Wall time, and the CPU time of this thread: on a shared machine the second shows the work
 * without the waits for a core. */
static morsel_model *open_timed(const bench_opts *o, double *ms, double *cpu_ms, int *pages)
{
    morsel_model *m = NULL;
    morsel_error err = {0};
    morsel_open_options opt = cli_open_options(0);
    opt.isa = o->isa;
    *pages = opt.pages;
    double c = clock_ms(CLOCK_THREAD_CPUTIME_ID), t = cli_now_ms();
    morsel_status s = morsel_model_open_file_ex(o->model, &opt, &m, &err);
    *ms = cli_now_ms() - t;
    *cpu_ms = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c;
    if (s != MORSEL_OK)
        fprintf(stderr, "morsel bench: %s\n", err.message);
    return s == MORSEL_OK ? m : NULL;
}

static int run_once(morsel_context *ctx, const float *x, size_t n_in, float *y, size_t n_out,
                    double *ms)
{
    morsel_error err = {0};
    double t = cli_now_ms();
    if (morsel_run(ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, n_out, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel bench: %s\n", err.message);
        return -1;
    }
    *ms = cli_now_ms() - t;
    return 0;
}

/* First run, warm-up, timed runs, then (with --per-op) as many profiled runs, kept apart so
 * the profiling clock reads do not touch the headline figures. */
static int measure(const bench_opts *o, const morsel_model_info *in, morsel_context *ctx,
                   bench_result *r)
{
    size_t n_in = (size_t)o->batch * in->input_h * in->input_w * in->input_c;
    size_t n_out = (size_t)o->batch * in->n_outputs;
    float *x = malloc(n_in * sizeof *x), *y = malloc(n_out * sizeof *y);
    double *ms = malloc((size_t)o->runs * sizeof *ms), *op = NULL, mean = 0;
    int rc = -1;
    if (!x || !y || !ms) {
        fprintf(stderr, "morsel bench: out of memory\n");
        goto done;
    }
    /* A fixed pseudo-random input in [0, 1): the same work on every run and every machine. */
    uint32_t s = 12345;
    for (size_t i = 0; i < n_in; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    if (run_once(ctx, x, n_in, y, n_out, &r->first_ms))
        goto done;
    /* Warm up for --warmup runs and at least --warmup-ms: on this project's VMs a vCPU that
     * sat idle through the load runs its first ~80 ms of work 3-4x slower (MobileNetV2 at 2
     * threads: 11-15 ms a run, then 2.6), which 5 runs of a small model do not cover. */
    double w0 = cli_now_ms(), unused;
    for (int i = 0; i < o->warmup || cli_now_ms() - w0 < o->warmup_ms; i++)
        if (run_once(ctx, x, n_in, y, n_out, &unused))
            goto done;
    for (int i = 0; i < o->runs; i++)
        if (run_once(ctx, x, n_in, y, n_out, &ms[i]))
            goto done;
    for (int i = 0; i < o->runs; i++)
        mean += ms[i] / o->runs;
    qsort(ms, (size_t)o->runs, sizeof *ms, cli_cmp_double);
    int n = o->runs;
    r->median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    r->p90_ms = ms[(9 * n + 9) / 10 - 1]; /* nearest rank: ceil(0.9 n) */
    r->min_ms = ms[0];
    r->mean_ms = mean;
    if (o->per_op) {
        morsel_error err = {0};
        r->op_ms = calloc((size_t)in->n_ops + 1, sizeof *r->op_ms);
        op = calloc((size_t)in->n_ops + 1, sizeof *op);
        if (!r->op_ms || !op) {
            fprintf(stderr, "morsel bench: out of memory\n");
            goto done;
        }
        if (morsel_context_set_profiling(ctx, 1, &err) != MORSEL_OK) {
            fprintf(stderr, "morsel bench: %s\n", err.message);
            goto done;
        }
        for (int i = 0; i < o->runs; i++) {
            double t;
            if (run_once(ctx, x, n_in, y, n_out, &t) ||
                morsel_context_get_op_times(ctx, op, in->n_ops, &err) != MORSEL_OK) {
                fprintf(stderr, "morsel bench: %s\n", err.message);
                goto done;
            }
            for (int k = 0; k < in->n_ops; k++)
                r->op_ms[k] += op[k] / o->runs;
        }
    }
    rc = 0;
done:
    free(x);
    free(y);
    free(ms);
    free(op);
    return rc;
}

static void shape_str(const morsel_op_info *op, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < op->out_rank && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%d", d ? "x" : "", op->out_dims[d]);
}

static const char *str_or(const char *s, const char *dflt) { return s && *s ? s : dflt; }

/* GFLOP/s of one op over its mean time: 2 FLOPs per multiply-accumulate. */
static double op_gflops(const morsel_op_info *op, int batch, double ms)
{
    return ms > 0 ? 2.0 * (double)op->macs * batch / (ms * 1e6) : 0;
}

/* Op types by total time, with each one's share of the summed op times. */
static void print_types(const morsel_model *m, const morsel_model_info *in, const double *op_ms)
{
    const char **types = calloc((size_t)in->n_ops + 1, sizeof *types);
    double *tms = calloc((size_t)in->n_ops + 1, sizeof *tms), total = 0;
    int *count = calloc((size_t)in->n_ops + 1, sizeof *count), nt = 0;
    if (!types || !tms || !count)
        goto done;
    for (int i = 0; i < in->n_ops; i++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        morsel_model_get_op(m, i, &op, NULL);
        int t = 0;
        while (t < nt && strcmp(types[t], op.type))
            t++;
        if (t == nt)
            types[nt++] = op.type;
        tms[t] += op_ms[i];
        count[t]++;
        total += op_ms[i];
    }
    printf("\n%-20s %5s %10s %7s\n", "op type", "ops", "ms", "share");
    for (int done_n = 0; done_n < nt; done_n++) {
        int best = -1;
        for (int t = 0; t < nt; t++)
            if (count[t] > 0 && (best < 0 || tms[t] > tms[best]))
                best = t;
        printf("%-20s %5d %10.3f %6.1f%%\n", types[best], count[best], tms[best],
               total > 0 ? 100 * tms[best] / total : 0);
        count[best] = -count[best] - 1; /* printed */
    }
    printf("%-20s %5d %10.3f\n", "all ops", in->n_ops, total);
done:
    free(types);
    free(tms);
    free(count);
}

static void print_top_layers(const morsel_model *m, const morsel_model_info *in,
                             const double *op_ms, int batch)
{
    int *idx = malloc(((size_t)in->n_ops + 1) * sizeof *idx);
    if (!idx)
        return;
    for (int i = 0; i < in->n_ops; i++)
        idx[i] = i;
    /* Selection of the ten slowest: n_ops is a few hundred at most. */
    int top = in->n_ops < 10 ? in->n_ops : 10;
    for (int a = 0; a < top; a++)
        for (int b = a + 1; b < in->n_ops; b++)
            if (op_ms[idx[b]] > op_ms[idx[a]]) {
                int t = idx[a];
                idx[a] = idx[b];
                idx[b] = t;
            }
    printf("\n%4s %-28s %-18s %-28s %-14s %9s %8s\n", "#", "layer (Keras)", "op", "kernel",
           "output", "ms", "GFLOP/s");
    for (int a = 0; a < top; a++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        char shape[64];
        morsel_model_get_op(m, idx[a], &op, NULL);
        shape_str(&op, shape, sizeof shape);
        printf("%4d %-28.28s %-18.18s %-28.28s %-14s %9.3f %8.1f\n", idx[a], str_or(op.name, "?"),
               op.type, str_or(op.kernel, "?"), shape, op_ms[idx[a]],
               op_gflops(&op, batch, op_ms[idx[a]]));
    }
    free(idx);
}

/* The phases of the open (morsel_model_info.load_*_ms); "other" is what lies between them. */
enum { N_PHASES = 6 };
static const char *const phase_names[N_PHASES] = {"read", "crc", "parse", "check", "prepare",
                                                  "plan"};

static void load_phases(const morsel_model_info *in, double *v)
{
    double p[N_PHASES] = {in->load_read_ms, in->load_crc_ms, in->load_parse_ms,
                          in->load_check_ms, in->load_prepare_ms, in->load_plan_ms};
    memcpy(v, p, sizeof p);
}

/* The ops whose prepare (weight packing) took longest, slowest first. */
static void print_load(const morsel_model *m, const morsel_model_info *in, double load_ms)
{
    static const char *const what[N_PHASES] = {
        "open + mmap (or copy) of the file", "section checksums, with the file's page faults",
        "records, strings, labels", "graph and shapes", "kernel choice, weight packing",
        "activation arena"};
    double v[N_PHASES], sum = 0;
    load_phases(in, v);
    printf("\n%-14s %10s %7s\n", "load phase", "ms", "share");
    for (int i = 0; i < N_PHASES; i++) {
        printf("%-14s %10.3f %6.1f%%   %s\n", phase_names[i], v[i],
               load_ms > 0 ? 100 * v[i] / load_ms : 0, what[i]);
        sum += v[i];
    }
    printf("%-14s %10.3f %6.1f%%\n", "other", load_ms - sum,
           load_ms > 0 ? 100 * (load_ms - sum) / load_ms : 0);
    int top[5] = {-1, -1, -1, -1, -1};
    double top_ms[5] = {0};
    for (int i = 0; i < in->n_ops; i++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        morsel_model_get_op(m, i, &op, NULL);
        for (int k = 0; k < 5; k++) {
            if (top[k] >= 0 && op.prepare_ms <= top_ms[k])
                continue;
            memmove(top + k + 1, top + k, (4 - (size_t)k) * sizeof *top);
            memmove(top_ms + k + 1, top_ms + k, (4 - (size_t)k) * sizeof *top_ms);
            top[k] = i;
            top_ms[k] = op.prepare_ms;
            break;
        }
    }
    printf("\n%4s %-28s %-28s %10s %9s\n", "#", "slowest prepare", "kernel", "params", "ms");
    for (int k = 0; k < 5 && top[k] >= 0; k++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        morsel_model_get_op(m, top[k], &op, NULL);
        printf("%4d %-28.28s %-28.28s %10llu %9.3f\n", top[k], str_or(op.name, "?"),
               str_or(op.kernel, "?"), (unsigned long long)op.n_params, op.prepare_ms);
    }
}

static void print_text(const bench_opts *o, const morsel_model *m, const morsel_model_info *in,
                       const bench_result *r)
{
    printf("%-14s %s (%s)\n", "model", in->name, o->model);
    printf("%-14s %s\n", "kernel_isa", str_or(in->isa, "?"));
    if (!o->load_only) {
        printf("%-14s %d\n%-14s %d\n", "threads", o->threads, "batch", o->batch);
        printf("%-14s %d timed after %d warm-up, and at least %d ms of them\n", "runs", o->runs,
               o->warmup, o->warmup_ms);
    }
    printf("%-14s %10.3f ms   morsel_model_open_file\n", "load_ms", r->load_ms);
    printf("%-14s %10.3f ms   its CPU time\n", "load_cpu_ms", r->load_cpu_ms);
    printf("%-14s %10s      packed weights (--pages); %.1f MB of the process in huge pages\n",
           "pages", r->pages == MORSEL_PAGES_SMALL ? "small" : "huge", r->huge_mb);
    if (o->load_only) {
        printf("%-14s %10.1f MB   ru_maxrss\n", "rss_mb", r->rss_mb);
        print_load(m, in, r->load_ms);
        return;
    }
    printf("%-14s %10.3f ms\n", "first_ms", r->first_ms);
    printf("%-14s %10.3f ms\n", "median_ms", r->median_ms);
    printf("%-14s %10.3f ms\n", "p90_ms", r->p90_ms);
    printf("%-14s %10.3f ms\n", "min_ms", r->min_ms);
    printf("%-14s %10.1f\n", "images_per_s", r->images_per_s);
    printf("%-14s %10.2f      %.3f GFLOP per image\n", "gflops", r->gflops, 2e-9 * (double)r->macs);
    printf("%-14s %10.2f      1 thread, %s\n", "peak_gflops_1", r->peak.gflops_1, r->peak.isa);
    if (o->threads > 1)
        printf("%-14s %10.2f      %d threads at once (%.2f per thread)\n", "peak_gflops_n",
               r->peak.gflops_all, o->threads, r->peak.gflops_per_thread);
    printf("%-14s %10.1f %%    of the %d-thread peak\n", "peak_pct", r->peak_pct, o->threads);
    if (r->xcpu_ns >= 0)
        printf("%-14s %10.0f ns   a cache line from one CPU to another and back\n", "xcpu_ns",
               r->xcpu_ns);
    printf("%-14s %10.1f MB   ru_maxrss\n", "rss_mb", r->rss_mb);
    if (r->op_ms) {
        print_types(m, in, r->op_ms);
        print_top_layers(m, in, r->op_ms, o->batch);
    }
    print_load(m, in, r->load_ms);
    if (r->has_image)
        bench_image_print(&r->image, 0);
    if (r->has_contexts)
        bench_contexts_print(&r->contexts, 0);
}

static void json_num(const char *key, double v) { printf(",\"%s\":%.9g", key, v); }

static void print_json(const bench_opts *o, const morsel_model *m, const morsel_model_info *in,
                       const bench_result *r)
{
    printf("{\"model\":");
    cli_json_string(stdout, in->name);
    printf(",\"file\":");
    cli_json_string(stdout, o->model);
    printf(",\"kernel_isa\":");
    cli_json_string(stdout, str_or(in->isa, "?"));
    printf(",\"threads\":%d,\"batch\":%d,\"runs\":%d,\"warmup\":%d,\"warmup_ms\":%d", o->threads,
           o->batch, o->runs, o->warmup, o->warmup_ms);
    printf(",\"macs\":%llu", (unsigned long long)r->macs);
    json_num("load_ms", r->load_ms);
    json_num("load_cpu_ms", r->load_cpu_ms);
    printf(",\"pages\":\"%s\"", r->pages == MORSEL_PAGES_SMALL ? "small" : "huge");
    json_num("anon_huge_mb", r->huge_mb);
    double v[N_PHASES];
    load_phases(in, v);
    for (int i = 0; i < N_PHASES; i++) {
        char key[32];
        snprintf(key, sizeof key, "load_%s_ms", phase_names[i]);
        json_num(key, v[i]);
    }
    json_num("rss_mb", r->rss_mb);
    if (o->load_only) {
        printf("}\n");
        return;
    }
    json_num("first_ms", r->first_ms);
    json_num("median_ms", r->median_ms);
    json_num("p90_ms", r->p90_ms);
    json_num("min_ms", r->min_ms);
    json_num("mean_ms", r->mean_ms);
    json_num("images_per_s", r->images_per_s);
    json_num("gflops", r->gflops);
    printf(",\"peak_isa\":");
    cli_json_string(stdout, r->peak.isa);
    json_num("peak_gflops_1", r->peak.gflops_1);
    json_num("peak_gflops_per_thread", r->peak.gflops_per_thread);
    json_num("peak_gflops_all", r->peak.gflops_all);
    json_num("peak_pct", r->peak_pct);
    if (r->xcpu_ns >= 0)
        json_num("xcpu_ns", r->xcpu_ns);
    if (r->op_ms) {
        printf(",\"ops\":[");
        for (int i = 0; i < in->n_ops; i++) {
            morsel_op_info op = MORSEL_OP_INFO_INIT;
            char shape[64];
            morsel_model_get_op(m, i, &op, NULL);
            shape_str(&op, shape, sizeof shape);
            printf("%s{\"index\":%d,\"name\":", i ? "," : "", i);
            cli_json_string(stdout, str_or(op.name, ""));
            printf(",\"type\":");
            cli_json_string(stdout, op.type);
            printf(",\"kernel\":");
            cli_json_string(stdout, str_or(op.kernel, ""));
            printf(",\"shape\":\"%s\",\"macs\":%llu,\"ms\":%.9g,\"gflops\":%.9g}", shape,
                   (unsigned long long)op.macs, r->op_ms[i], op_gflops(&op, o->batch, r->op_ms[i]));
        }
        printf("]");
    }
    if (r->has_image)
        bench_image_print(&r->image, 1);
    if (r->has_contexts)
        bench_contexts_print(&r->contexts, 1);
    printf("}\n");
}

/* Latency of the network alone on a fixed input, the figure performance work is judged by. */
int cli_bench(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    bench_result r = {0};
    r.xcpu_ns = -1;
    morsel_model *m = open_timed(&o, &r.load_ms, &r.load_cpu_ms, &r.pages);
    if (!m)
        return 1;
    r.huge_mb = anon_huge_mb();
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    int rc = 1;
    if (o.load_only) {
        /* The open alone: what a server or a CLI call pays before its first image. */
        r.rss_mb = rss_mb();
        goto report;
    }
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK ||
        morsel_context_set_threads(ctx, o.threads, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel bench: %s\n", err.message);
        goto done;
    }
    if (measure(&o, &in, ctx, &r))
        goto done;
    for (int i = 0; i < in.n_ops; i++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        if (morsel_model_get_op(m, i, &op, NULL) == MORSEL_OK)
            r.macs += op.macs;
    }
    r.images_per_s = o.batch * 1e3 / r.median_ms;
    r.gflops = 2.0 * (double)r.macs * o.batch / (r.median_ms * 1e6);
    if (bench_peak(o.threads, &r.peak)) {
        fprintf(stderr, "morsel bench: cannot start %d threads for the peak\n", o.threads);
        goto done;
    }
    r.peak_pct = r.peak.gflops_all > 0 ? 100 * r.gflops / r.peak.gflops_all : 0;
    r.xcpu_ns = o.threads > 1 || o.contexts > 1 ? bench_xcpu_ns() : -1;
    if (o.image) {
        if (bench_image(ctx, o.image, o.runs, o.warmup, &r.image))
            goto done;
        r.has_image = 1;
    }
    if (o.contexts) {
        if (bench_contexts(m, o.contexts, o.threads, o.runs, o.warmup, &r.contexts))
            goto done;
        r.has_contexts = 1;
    }
    r.rss_mb = rss_mb();
report:
    if (o.json)
        print_json(&o, m, &in, &r);
    else
        print_text(&o, m, &in, &r);
    rc = 0;
done:
    free(r.op_ms);
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return rc;
}
