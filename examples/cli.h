/* The `morsel` command line tool: shared helpers of its sub-commands. */
#ifndef MORSEL_CLI_H
#define MORSEL_CLI_H

#include <stdio.h>

#include "morsel.h"

/* The model used when --model is not given: $MORSEL_MODEL, else the shipped default. */
const char *cli_default_model(void);

/* The options every sub-command opens models with (--max-work, --max-memory, --pages). A
 * one-shot use (info, verify, run, classify of a few images) packs the weights into 4 KiB
 * pages unless --pages says otherwise: on a VM whose host takes back free memory, faulting in
 * fresh 2 MiB pages cost ResNet50V2 100-730 ms at load, and they make each inference only a
 * few percent faster (morsel_open_options.pages). */
#define CLI_ONE_SHOT_IMAGES 32
morsel_open_options cli_open_options(int one_shot);

/* Opens a model or prints why not (returns NULL). */
morsel_model *cli_open_model(const char *path, int one_shot);

/* An integer option's value: the whole of s must be a decimal integer in [lo, hi] ("2x", "",
 * " 2" and "2.0" are errors, never 2 or 0). Returns 0, or -1 after printing
 * "morsel CMD: FLAG wants an integer from LO to HI, not 'S'". */
int cli_parse_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
/* Writes top[0..n) as a JSON array of {"index", "label", "probability"} objects. */
void cli_json_top(FILE *f, const morsel_class *top, int n);

#define BENCH_MAX_THREADS 256

/* Monotonic wall clock in ms, and a qsort comparator for doubles (cli_bench.c). */
double cli_now_ms(void);
int cli_cmp_double(const void *a, const void *b);

/* The FP32 FMA peak measured now: gflops_1 on one thread alone; with threads > 1, that many
 * copies at once on as many threads (gflops_all in total). isa names the instructions used. */
typedef struct bench_peak_result {
    const char *isa;
    int threads;
    double gflops_1, gflops_per_thread, gflops_all;
} bench_peak_result;

/* Returns 0, or -1 when threads cannot be started (1..BENCH_MAX_THREADS). */
int bench_peak(int threads, bench_peak_result *out);

/* The cache-line round trip between the first two CPUs this process may run on, in ns (a
 * mean over up to 20,000 trips or 50 ms), or -1 where there are not two CPUs or
 * no way to pin threads (bench_xcpu.c). */
double bench_xcpu_ns(void);

/* morsel bench --image: medians of each stage of classifying one encoded image from memory
 * (warmup runs first); path is borrowed. */
typedef struct bench_image_result {
    const char *path;
    size_t bytes;
    int runs;
    double decode_ms, preprocess_ms, inference_ms, total_ms, total_p90_ms;
    double other_ms; /* median of each run's wall time minus its three stages */
} bench_image_result;
int bench_image(morsel_context *ctx, const char *path, int runs, int warmup,
                bench_image_result *out);
/* Text: a block of its own; json: a ,"image":{...} member for the caller's object. */
void bench_image_print(const bench_image_result *r, int json);

/* morsel bench --contexts W: W contexts of `threads` threads each, one per thread, all running
 * at once, against one context alone (images/s both ways). */
typedef struct bench_contexts_result {
    int contexts, threads, runs;
    double one_ips, all_ips, scaling;
} bench_contexts_result;
int bench_contexts(const morsel_model *m, int contexts, int threads, int runs, int warmup,
                   bench_contexts_result *out);
void bench_contexts_print(const bench_contexts_result *r, int json);

int cli_classify(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_eval(int argc, char **argv);

#endif
