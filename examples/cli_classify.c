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

static int parse_filter(const char *s, morsel_resize_filter *f)
{
    static const char *const names[] = {"nearest", "bilinear", "bicubic", "lanczos", "box"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *f = (morsel_resize_filter)i; /* MORSEL_RESIZE_* are 0..4 in this order */
            return 0;
        }
    return -1;
}

/* The exporter's --preprocess presets (weights/morsel_exporter/cli.py): input = pixel * scale +
 * offset per channel in model order, computed in double and stored as float as the exporter
 * does. Keeps filter and crop. */
static int parse_preset(const char *s, morsel_preprocess *pp)
{
    static const double caffe_bgr_mean[3] = {103.939, 116.779, 123.68};
    static const double torch_mean[3] = {0.485, 0.456, 0.406}, torch_std[3] = {0.229, 0.224, 0.225};
    double scale[3], offset[3];
    int bgr = 0;
    for (int c = 0; c < 3; c++) {
        if (!strcmp(s, "unit")) {
            scale[c] = 1.0 / 255.0;
            offset[c] = 0.0;
        } else if (!strcmp(s, "tf")) {
            scale[c] = 1.0 / 127.5;
            offset[c] = -1.0;
        } else if (!strcmp(s, "caffe")) {
            scale[c] = 1.0;
            offset[c] = -caffe_bgr_mean[c];
            bgr = 1;
        } else if (!strcmp(s, "torch")) {
            scale[c] = 1.0 / (255.0 * torch_std[c]);
            offset[c] = -torch_mean[c] / torch_std[c];
        } else if (!strcmp(s, "raw")) {
            scale[c] = 1.0;
            offset[c] = 0.0;
        } else {
            return -1;
        }
    }
    for (int c = 0; c < 3; c++) {
        pp->scale[c] = (float)scale[c];
        pp->offset[c] = (float)offset[c];
    }
    pp->bgr = bgr;
    return 0;
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
        else if (!strcmp(argv[i], "--top") && i + 1 < argc)
            k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
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
    morsel_preprocess scaled;
    memset(&scaled, 0, sizeof scaled);
    if (resize && parse_filter(resize, &filter)) {
        fprintf(stderr, "morsel classify: --resize '%s': expected nearest, bilinear, bicubic, "
                        "lanczos or box\n", resize);
        return 2;
    }
    if (crop && strcmp(crop, "none") && strcmp(crop, "center")) {
        fprintf(stderr, "morsel classify: --crop '%s': expected none or center\n", crop);
        return 2;
    }
    if (preset && parse_preset(preset, &scaled)) {
        fprintf(stderr, "morsel classify: --preprocess '%s': expected unit, tf, caffe, torch or "
                        "raw\n", preset);
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
    int rc = 0;
    if (resize || crop || preset) {
        morsel_model_info info;
        morsel_preprocess pp;
        if (morsel_model_get_info(m, &info) != MORSEL_OK) {
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
            if (morsel_context_set_preprocess(ctx, &pp) != MORSEL_OK)
                rc = 1;
        }
        if (rc)
            fprintf(stderr, "morsel: cannot apply the preprocessing override\n");
    }
    if (!rc && (exif || fast)) {
        morsel_decode_options opt;
        memset(&opt, 0, sizeof opt); /* zero limits: the defaults */
        opt.exif_orientation = exif;
        opt.jpeg_fast_scale = fast;
        if (morsel_context_set_decode_options(ctx, &opt) != MORSEL_OK) {
            fprintf(stderr, "morsel: cannot apply the decode options\n");
            rc = 1;
        }
    }
    morsel_class top[MAX_TOP];
    int failures = 0;
    for (int i = first; !rc && i < argc; i++) {
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
    return rc || failures ? 1 : 0;
}
