/* morsel eval: how well a model does on a labelled folder of images -- accuracy, top-k accuracy,
 * per-class precision / recall / F1 (scikit-learn's definitions), the confusion matrix (as text
 * and optionally a PNG heatmap), the most confused pairs and the throughput. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"

#define MAX_TOP 1000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void progress(size_t done, size_t total, double elapsed_ms)
{
    char bar[31];
    size_t fill = total ? done * 30 / total : 30;
    for (size_t i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r  [%s] %zu/%zu  %.1f images/s ", bar, done, total,
            elapsed_ms > 0 ? done / (elapsed_ms / 1e3) : 0.0);
    fflush(stderr);
}

static int usage(void)
{
    fprintf(stderr, "usage: morsel eval --model M [--json | --csv] [--heatmap OUT.png] [--top K] "
                    "[--threads N] DIR\n"
                    "  DIR holds one sub-folder per class (named as the model's labels) or "
                    "images named <class index>_<n>.jpg\n");
    return 2;
}

/* Classifies every image that has a class; unreadable ones get their error message. */
static int classify_all(morsel_context *ctx, eval_set *set, int k, int show_progress)
{
    morsel_class *top = malloc((size_t)k * sizeof *top);
    if (!top)
        return -1;
    size_t todo = 0, done = 0;
    for (size_t i = 0; i < set->n; i++)
        todo += set->items[i].truth >= 0;
    double t0 = now_ms(), last = 0;
    for (size_t i = 0; i < set->n; i++) {
        eval_item *it = &set->items[i];
        if (it->truth < 0)
            continue;
        morsel_error err = {0};
        morsel_timings t = MORSEL_TIMINGS_INIT;
        int n = 0;
        if (morsel_classify_file(ctx, it->path, k, top, &n, &t, &err) != MORSEL_OK || n < 1) {
            /* the library's message usually starts with the path, which the report shows */
            const char *why = err.message[0] ? err.message : "no output";
            size_t plen = strlen(it->path);
            if (!strncmp(why, it->path, plen) && !strncmp(why + plen, ": ", 2))
                why += plen + 2;
            if (!(it->error = strdup(why)))
                break;
        } else {
            it->top = malloc((size_t)n * sizeof *it->top);
            it->top_prob = malloc((size_t)n * sizeof *it->top_prob);
            if (!it->top || !it->top_prob)
                break;
            for (int j = 0; j < n; j++) {
                it->top[j] = top[j].index;
                it->top_prob[j] = top[j].probability;
            }
            it->n_top = n;
            it->pred = top[0].index;
            it->prob = top[0].probability;
            set->sum.decode_ms += t.decode_ms;
            set->sum.preprocess_ms += t.preprocess_ms;
            set->sum.inference_ms += t.inference_ms;
            set->sum.total_ms += t.total_ms;
        }
        done++;
        double now = now_ms();
        if (show_progress && (now - last > 100 || done == todo)) {
            progress(done, todo, now - t0);
            last = now;
        }
    }
    set->wall_ms = now_ms() - t0;
    if (show_progress)
        fprintf(stderr, "\r%*s\r", 70, "");
    free(top);
    return done == todo ? 0 : -1;
}

int cli_eval(int argc, char **argv)
{
    const char *model_path = NULL, *dir = NULL, *heatmap = NULL;
    int k = 1, threads = 1, json = 0, csv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--heatmap") && i + 1 < argc)
            heatmap = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            if (cli_parse_int("eval", "--top", argv[++i], 1, MAX_TOP, &k))
                return 2;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_int("eval", "--threads", argv[++i], 1, BENCH_MAX_THREADS, &threads))
                return 2;
        }
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--csv"))
            csv = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "morsel eval: unknown option '%s'\n", argv[i]);
            return usage();
        } else if (!dir) {
            dir = argv[i];
        } else {
            fprintf(stderr, "morsel eval: one folder at a time ('%s' and '%s')\n", dir, argv[i]);
            return usage();
        }
    }
    if (json && csv) {
        fprintf(stderr, "morsel eval: --json and --csv exclude each other\n");
        return usage();
    }
    if (!dir || k < 1 || k > MAX_TOP || threads < 1)
        return usage();
    if (!model_path)
        model_path = cli_default_model();
    morsel_model *m = cli_open_model(model_path, 0);
    if (!m)
        return 1;
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &info, NULL);
    if (k > info.n_outputs)
        k = info.n_outputs;

    eval_set set;
    char msg[4096];
    if (eval_scan(dir, m, info.n_outputs, &set, msg, sizeof msg) != 0) {
        fprintf(stderr, "morsel eval: %s\n", msg);
        morsel_model_close(m);
        return 1;
    }
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    eval_metrics em;
    memset(&em, 0, sizeof em);
    eval_run_info ri = {model_path, dir, m, threads};
    int rc = 1;
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK ||
        morsel_context_set_threads(ctx, threads, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel eval: %s\n", err.message);
    } else if (classify_all(ctx, &set, k, isatty(STDERR_FILENO)) != 0 ||
               eval_compute(&set, info.n_outputs, k, &em) != 0) {
        fprintf(stderr, "morsel eval: out of memory\n");
    } else if (em.n == 0) {
        fprintf(stderr, "morsel eval: no image of %s could be classified (%ld unreadable, "
                "%ld without a class)\n", dir, em.n_unreadable, em.n_unlabelled);
        for (size_t i = 0; i < set.n; i++)
            fprintf(stderr, "  %s: %s\n", set.items[i].path, set.items[i].error);
    } else {
        rc = 0;
        if (json || csv) /* the report names them; these modes feed programs, so say it here */
            for (size_t i = 0; i < set.n; i++)
                if (set.items[i].error)
                    fprintf(stderr, "morsel eval: skipped %s: %s\n", set.items[i].path,
                            set.items[i].error);
        if (json)
            eval_print_json(stdout, &set, &em, &ri);
        else if (csv)
            eval_print_csv(stdout, &set, m);
        else
            eval_print_text(stdout, &set, &em, &ri);
        if (heatmap && eval_write_heatmap(heatmap, &em, &ri, msg, sizeof msg) != 0) {
            fprintf(stderr, "morsel eval: %s\n", msg);
            rc = 1;
        }
        if (fflush(stdout) != 0)
            rc = 1;
    }
    eval_metrics_free(&em);
    eval_set_free(&set);
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return rc;
}
