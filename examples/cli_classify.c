/* morsel classify: top-k classes for each image, as text or JSON. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_TOP 1000

static void print_text(const char *path, const morsel_class *top, int n, const morsel_timings *t)
{
    printf("%s\n", path);
    for (int i = 0; i < n; i++)
        printf("  %2d. %-24s %8.4f%%  (class %d)\n", i + 1, top[i].label[0] ? top[i].label : "-",
               100.0 * top[i].probability, top[i].index);
    printf("  decode %.2f ms, preprocess %.2f ms, inference %.2f ms\n", t->decode_ms,
           t->preprocess_ms, t->inference_ms);
}

static void print_json(const char *path, const morsel_class *top, int n, const morsel_timings *t)
{
    printf("{\"image\": ");
    cli_json_string(stdout, path);
    printf(", \"top\": [");
    for (int i = 0; i < n; i++) {
        printf("%s{\"index\": %d, \"label\": ", i ? ", " : "", top[i].index);
        cli_json_string(stdout, top[i].label);
        printf(", \"probability\": %.9g}", (double)top[i].probability);
    }
    printf("], \"timings_ms\": {\"decode\": %.3f, \"preprocess\": %.3f, \"inference\": %.3f, "
           "\"total\": %.3f}}\n",
           t->decode_ms, t->preprocess_ms, t->inference_ms, t->total_ms);
}

int cli_classify(int argc, char **argv)
{
    const char *model_path = cli_default_model();
    int k = 5, json = 0, threads = 1, first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc)
            k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "morsel classify: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc || k < 1 || k > MAX_TOP || threads < 1) {
        fprintf(stderr, "usage: morsel classify [--model M] [--top K(1..%d)] [--json] "
                        "[--threads N] IMAGE...\n", MAX_TOP);
        return 2;
    }
    morsel_model *m = cli_open_model(model_path);
    if (!m)
        return 1;
    cli_set_threads(threads);
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel: %s\n", err.message);
        morsel_model_close(m);
        return 1;
    }
    morsel_class top[MAX_TOP];
    int failures = 0;
    for (int i = first; i < argc; i++) {
        int n = 0;
        morsel_timings t;
        if (morsel_classify_file(ctx, argv[i], k, top, &n, &t, &err) != MORSEL_OK) {
            fprintf(stderr, "morsel: %s\n", err.message);
            failures++;
            continue;
        }
        (json ? print_json : print_text)(argv[i], top, n, &t);
    }
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return failures ? 1 : 0;
}
