/* morsel: classify images with a .morsel model, inspect and verify model files, export Keras
 * models (through the Python exporter), and time inference. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef MORSEL_SOURCE_DIR
#define MORSEL_SOURCE_DIR "."
#endif
#ifndef MORSEL_PYTHON_DEFAULT
#define MORSEL_PYTHON_DEFAULT "python3"
#endif


const char *cli_default_model(void)
{
    const char *env = getenv("MORSEL_MODEL");
    return env && *env ? env : MORSEL_SOURCE_DIR "/weights/nsfwjs_mobilenet_v2.morsel";
}

/* --max-work / --max-memory / --pages, taken out of argv by main() for every sub-command. */
static morsel_open_options g_open = {.struct_size = sizeof(morsel_open_options)};
static int g_pages = -1; /* --pages, or -1: by use */

morsel_open_options cli_open_options(int one_shot)
{
    morsel_open_options o = g_open;
    o.pages = g_pages >= 0 ? g_pages : one_shot ? MORSEL_PAGES_SMALL : MORSEL_PAGES_HUGE;
    return o;
}

morsel_model *cli_open_model(const char *path, int one_shot)
{
    morsel_model *m = NULL;
    morsel_error err = {0};
    morsel_open_options opt = cli_open_options(one_shot);
    if (morsel_model_open_file_ex(path, &opt, &m, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel: %s\n", err.message);
        return NULL;
    }
    return m;
}

int cli_parse_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))
                 ? strtol(s, &end, 10)
                 : 0;
    if (!end || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "morsel %s: %s wants an integer from %d to %d, not '%s'\n", cmd, flag, lo,
                hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: morsel [--max-work GOPS] [--max-memory MIB] [--pages small|huge] COMMAND ...\n"
            "  (budgets for opening a model: operations per inference in billions, default\n"
            "   100; activation + scratch memory per context in MiB, default 1024; the pages\n"
            "   of the packed weights: huge loads slower on some VMs and runs faster, default\n"
            "   small for info, verify, run and classify of up to %d images, else huge)\n"
            "  classify [--model M] [--top K] [--json] [--threads N] [--resize F] [--crop C]\n"
            "           [--preprocess P] [--exif] [--fast-jpeg] IMAGE...\n"
            "                               classify JPEG/PNG images (default model: $MORSEL_MODEL\n"
            "                               or the shipped %s)\n"
            "  info MODEL                   graph, shapes, parameters, arena size, labels\n"
            "  verify MODEL...              run each file's embedded Keras self-test\n"
            "  run MODEL IN.f32 OUT.f32 [--logits]\n"
            "                               raw float32 tensor in ([H,W,C], preprocessed) and out\n"
            "  eval --model M [--json | --csv] [--heatmap OUT.png] [--top K] [--threads N] DIR\n"
            "                               accuracy, per-class precision/recall/F1, confusion\n"
            "                               matrix on a labelled folder (class sub-folders or\n"
            "                               <class index>_<n>.jpg names)\n"
            "  bench [--model M] [--runs N] [--warmup N] [--warmup-ms T] [--threads N]\n"
            "        [--batch N] [--per-op]\n"
            "        [--isa I] [--json]     time inference: load, first run, median/p90/min,\n"
            "        [--load-only]          GFLOP/s against the measured FMA peak, peak RSS,\n"
            "                               the load phase by phase; with --image FILE,\n"
            "        [--image FILE]         also decode + preprocess + inference on it;\n"
            "        [--contexts W]         with --contexts, W contexts at once vs one\n"
            "  export INPUT -o OUT.morsel [exporter options]\n"
            "                               convert a Keras .keras/.h5 or TF.js model (runs\n"
            "                               weights/morsel_export.py; --help for its options)\n",
            CLI_ONE_SHOT_IMAGES, cli_default_model());
}

static int read_all(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return -1;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = n;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: morsel run MODEL IN.f32 OUT.f32 [--logits]\n");
        return 2;
    }
    morsel_output which = argc > 4 && strcmp(argv[4], "--logits") == 0 ? MORSEL_OUTPUT_LOGITS
                                                                        : MORSEL_OUTPUT_PROBS;
    morsel_model *m = cli_open_model(argv[1], 1);
    if (!m)
        return 1;
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &info, NULL);
    void *in = NULL;
    size_t in_size = 0;
    int rc = 1;
    morsel_error err = {0};
    morsel_context *ctx = NULL;
    size_t n_in = (size_t)info.input_h * info.input_w * info.input_c;
    if (read_all(argv[2], &in, &in_size) != 0) {
        fprintf(stderr, "morsel: cannot read %s\n", argv[2]);
    } else if (in_size != n_in * sizeof(float)) {
        fprintf(stderr, "morsel: %s has %zu bytes; the model input is %dx%dx%d float32 (%zu bytes)\n",
                argv[2], in_size, info.input_h, info.input_w, info.input_c, n_in * sizeof(float));
    } else if (morsel_context_create(m, &ctx, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel: %s\n", err.message);
    } else {
        /* Output size: the logits and the probabilities have the same class count here. */
        size_t n_out = (size_t)info.n_outputs;
        float *out = malloc(n_out * sizeof *out);
        FILE *f = NULL;
        if (out && morsel_run(ctx, in, n_in, which, out, n_out, &err) != MORSEL_OK)
            fprintf(stderr, "morsel: %s\n", err.message);
        else if (out && (f = fopen(argv[3], "wb")) && fwrite(out, sizeof *out, n_out, f) == n_out)
            rc = 0;
        else
            fprintf(stderr, "morsel: cannot write %s\n", argv[3]);
        if (f && fclose(f) != 0)
            rc = 1;
        free(out);
    }
    free(in);
    morsel_context_destroy(ctx);
    morsel_model_close(m);
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: morsel verify MODEL...\n");
        return 2;
    }
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        morsel_model *m = cli_open_model(argv[i], 1);
        morsel_context *ctx = NULL;
        morsel_error err = {0};
        float diff = 0;
        if (!m) {
            failures++;
            continue;
        }
        if (morsel_context_create(m, &ctx, &err) != MORSEL_OK ||
            morsel_selftest(ctx, &diff, &err) != MORSEL_OK) {
            printf("FAIL %s: %s\n", argv[i], err.message);
            failures++;
        } else {
            printf("ok   %s: max |Morsel - Keras| = %.3g\n", argv[i], (double)diff);
        }
        morsel_context_destroy(ctx);
        morsel_model_close(m);
    }
    return failures ? 1 : 0;
}

static int cmd_export(int argc, char **argv)
{
    const char *py = getenv("MORSEL_PYTHON");
    if (!py || !*py)
        py = access(MORSEL_PYTHON_DEFAULT, X_OK) == 0 ? MORSEL_PYTHON_DEFAULT : "python3";
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[0] = (char *)py;
    args[1] = (char *)MORSEL_SOURCE_DIR "/weights/morsel_export.py";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    execvp(py, args);
    fprintf(stderr, "morsel: cannot run the exporter with %s: %s\n", py, strerror(errno));
    free(args);
    return 1;
}

/* Removes "--max-work N" / "--max-memory N" / "--pages small|huge" (or --opt=V) anywhere in
 * argv; -1 on a bad value. */
static int take_open_flags(int *argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *names[3] = {"--max-work", "--max-memory", "--pages"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(argv[i], names[k], n) && (argv[i][n] == '=' || !argv[i][n])) {
                which = k;
                val = argv[i][n] == '=' ? argv[i] + n + 1 : (i + 1 < *argc ? argv[++i] : NULL);
            }
        }
        if (which < 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (which == 2) {
            if (!val || (strcmp(val, "small") && strcmp(val, "huge"))) {
                fprintf(stderr, "morsel: --pages takes small or huge, not '%s'\n",
                        val ? val : "");
                return -1;
            }
            g_pages = strcmp(val, "small") ? MORSEL_PAGES_HUGE : MORSEL_PAGES_SMALL;
            continue;
        }
        char *end = NULL;
        /* strtod alone would take " 5" and "0x10"; nan and inf fail the range test */
        int plain = val && (isdigit((unsigned char)val[0]) || val[0] == '.') &&
                    !strpbrk(val, "xX");
        double v = plain ? strtod(val, &end) : 0.0;
        if (!plain || end == val || *end || !(v > 0) || v > 1e12) {
            fprintf(stderr, "morsel: %s needs a positive number, got '%s'\n", names[which],
                    val ? val : "");
            return -1;
        }
        if (which == 0)
            g_open.max_work = (uint64_t)(v * 1e9);
        else
            g_open.max_memory_bytes = (uint64_t)(v * 1048576.0);
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int main(int argc, char **argv)
{
    if (take_open_flags(&argc, argv) != 0)
        return 2;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version")) {
        printf("morsel %s\n", MORSEL_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "classify"))
        return cli_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify"))
        return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) {
#ifdef MORSEL_CLI_NO_IMAGES
        fprintf(stderr, "morsel: eval is not in this build (MORSEL_WITH_IMAGES=OFF: no image "
                        "decoding, no PNG heatmaps)\n");
        return 2;
#else
        return cli_eval(argc - 1, argv + 1);
#endif
    }
    if (!strcmp(cmd, "bench"))
        return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return cmd_export(argc - 1, argv + 1);
    fprintf(stderr, "morsel: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
