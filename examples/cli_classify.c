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
    printf(", \"top\": ");
    cli_json_top(stdout, top, n);
    printf(", \"timings_ms\": {\"decode\": %.3f, \"preprocess\": %.3f, \"inference\": %.3f, "
           "\"total\": %.3f}}\n",
           t->decode_ms, t->preprocess_ms, t->inference_ms, t->total_ms);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: morsel classify [--model M] [--top K(1..%d)] [--json] [--threads N]\n"
            "                       [--resize nearest|bilinear|bicubic|lanczos|box]\n"
            "                       [--crop none|center] [--preprocess unit|tf|caffe|torch|raw]\n"
            "                       [--exif] [--fast-jpeg] IMAGE...\n"
            "  --resize/--crop/--preprocess override what the model file says (morsel info);\n"
            "  --exif applies the JPEG EXIF orientation (ImageOps.exif_transpose; by default it\n"
            "  is ignored, like PIL's Image.open); --fast-jpeg decodes big JPEGs at 1/2..1/8\n"
            "  scale in the DCT domain (faster, not Pillow-exact: like Pillow's Image.draft)\n",
            MAX_TOP);
}

int cli_classify(int argc, char **argv)
{
    const char *model_path = cli_default_model();
    const char *resize = NULL, *crop = NULL, *preset = NULL;
    int k = 5, json = 0, threads = 1, first = argc, exif = 0, fast = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            if (cli_parse_int("classify", "--top", argv[++i], 1, MAX_TOP, &k))
                return 2;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_int("classify", "--threads", argv[++i], 1, BENCH_MAX_THREADS, &threads))
                return 2;
        }
        else if (!strcmp(argv[i], "--resize") && i + 1 < argc)
            resize = argv[++i];
        else if (!strcmp(argv[i], "--crop") && i + 1 < argc)
            crop = argv[++i];
        else if (!strcmp(argv[i], "--preprocess") && i + 1 < argc)
            preset = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--exif"))
            exif = 1;
        else if (!strcmp(argv[i], "--fast-jpeg"))
            fast = 1;
        else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            static const char *const with_value[] = {"--model", "--top", "--threads", "--resize",
                                                     "--crop", "--preprocess"};
            int known = 0;
            for (size_t j = 0; j < sizeof with_value / sizeof *with_value; j++)
                known |= !strcmp(argv[i], with_value[j]);
            fprintf(stderr, known ? "morsel classify: option '%s' needs a value\n"
                                  : "morsel classify: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc || k < 1 || k > MAX_TOP || threads < 1) {
        usage();
        return 2;
    }
    morsel_resize_filter filter = MORSEL_RESIZE_BILINEAR;
    morsel_preprocess scaled = MORSEL_PREPROCESS_INIT;
    morsel_error perr = {0};
    if (resize && morsel_resize_filter_parse(resize, &filter, &perr) != MORSEL_OK) {
        fprintf(stderr, "morsel classify: --resize: %s\n", perr.message);
        return 2;
    }
    if (crop && strcmp(crop, "none") && strcmp(crop, "center")) {
        fprintf(stderr, "morsel classify: --crop '%s': expected none or center\n", crop);
        return 2;
    }
    if (preset && morsel_preprocess_preset(preset, &scaled, &perr) != MORSEL_OK) {
        fprintf(stderr, "morsel classify: --preprocess: %s\n", perr.message);
        return 2;
    }
    morsel_model *m = cli_open_model(model_path, argc - first <= CLI_ONE_SHOT_IMAGES);
    if (!m)
        return 1;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK ||
        morsel_context_set_threads(ctx, threads, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel: %s\n", err.message);
        morsel_context_destroy(ctx);
        morsel_model_close(m);
        return 1;
    }
    int rc = 0;
    if (resize || crop || preset) {
        morsel_model_info info = MORSEL_MODEL_INFO_INIT;
        morsel_preprocess pp;
        if (morsel_model_get_info(m, &info, &err) != MORSEL_OK) {
            rc = 1;
        } else {
            pp = info.preprocess;
            if (resize)
                pp.filter = filter;
            if (crop)
                pp.center_crop = !strcmp(crop, "center");
            if (preset) {
                pp.bgr = scaled.bgr;
                memcpy(pp.scale, scaled.scale, sizeof pp.scale);
                memcpy(pp.offset, scaled.offset, sizeof pp.offset);
            }
            if (morsel_context_set_preprocess(ctx, &pp, &err) != MORSEL_OK)
                rc = 1;
        }
        if (rc)
            fprintf(stderr, "morsel: cannot apply the preprocessing override: %s\n",
                    err.message);
    }
    if (!rc && (exif || fast)) {
        morsel_decode_options opt = MORSEL_DECODE_OPTIONS_INIT; /* zero limits: the defaults */
        opt.exif_orientation = exif;
        opt.jpeg_fast_scale = fast;
        if (morsel_context_set_decode_options(ctx, &opt, &err) != MORSEL_OK) {
            fprintf(stderr, "morsel: cannot apply the decode options: %s\n", err.message);
            rc = 1;
        }
    }
    morsel_class top[MAX_TOP];
    int failures = 0;
    for (int i = first; !rc && i < argc; i++) {
        int n = 0;
        morsel_timings t = MORSEL_TIMINGS_INIT;
        if (morsel_classify_file(ctx, argv[i], k, top, &n, &t, &err) != MORSEL_OK) {
            fprintf(stderr, "morsel: %s\n", err.message);
            failures++;
            continue;
        }
        (json ? print_json : print_text)(argv[i], top, n, &t);
    }
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return rc || failures ? 1 : 0;
}
