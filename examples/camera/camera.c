/* A camera loop: raw RGB24 frames on stdin, one JSON line per frame on stdout.
 *
 *   ffmpeg -i /dev/video0 -vf scale=320:240 -f rawvideo -pix_fmt rgb24 - |
 *       morsel_camera --model M.morsel --width 320 --height 240
 *
 * Each line: {"frame": N, "top": [...], "inference_ms": T, "fps": F}, where fps counts frames
 * over the wall time since the first frame arrived (waiting for the camera included). At the end
 * of the input it stops with status 0 and a summary on stderr; a last frame cut short is an
 * error (status 1), reported with its byte count.
 *
 * Constant memory: the frame buffer and the results are allocated before the loop, and one
 * classification of a black frame lets the context size its resize scratch then, so the loop
 * itself allocates nothing (test/test_camera.py counts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../cli.h"

#define MAX_TOP 1000
#define MAX_SIDE 16384

typedef struct camera_opts {
    const char *model, *isa;
    int width, height, top, threads;
} camera_opts;

static int usage(void)
{
    fprintf(stderr, "usage: morsel_camera --model M.morsel --width W --height H [--top K] "
                    "[--threads N] [--isa I]\n"
                    "  reads W x H x 3 bytes per frame (RGB24) from stdin until its end\n");
    return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_opts(int argc, char **argv, camera_opts *o)
{
    *o = (camera_opts){.top = 5, .threads = 1};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (!bad && !strcmp(a, "--model"))
            o->model = v;
        else if (!bad && !strcmp(a, "--isa"))
            o->isa = v;
        else if (!bad && !strcmp(a, "--width"))
            bad = parse_int(v, 1, MAX_SIDE, &o->width);
        else if (!bad && !strcmp(a, "--height"))
            bad = parse_int(v, 1, MAX_SIDE, &o->height);
        else if (!bad && !strcmp(a, "--top"))
            bad = parse_int(v, 1, MAX_TOP, &o->top);
        else if (!bad && !strcmp(a, "--threads"))
            bad = parse_int(v, 1, 256, &o->threads);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "morsel_camera: bad option '%s'%s%s\n", a, v ? " " : "", v ? v : "");
            return -1;
        }
    }
    if (!o->model || !o->width || !o->height) {
        fprintf(stderr, "morsel_camera: --model, --width and --height are required\n");
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The loop: read, classify, print. Returns the exit status. */
static int run(morsel_context *ctx, const camera_opts *o, uint8_t *frame, morsel_class *top)
{
    size_t stride = (size_t)o->width * 3, need = stride * (size_t)o->height;
    morsel_timings t = MORSEL_TIMINGS_INIT;
    morsel_error err = {0};
    double t0 = 0, infer_ms = 0;
    long frames = 0;
    for (;;) {
        size_t got = fread(frame, 1, need, stdin);
        if (got == 0 && feof(stdin))
            break;
        if (got < need) {
            if (ferror(stdin))
                fprintf(stderr, "morsel_camera: read error on stdin after %ld frames\n", frames);
            else
                fprintf(stderr, "morsel_camera: truncated frame %ld: %zu of %zu bytes (%dx%d "
                                "RGB24) before the end of the input\n",
                        frames + 1, got, need, o->width, o->height);
            return 1;
        }
        if (frames == 0)
            t0 = now_s();
        int n = 0;
        if (morsel_classify_rgb(ctx, frame, o->width, o->height, stride, o->top, top, &n, &t,
                                &err) != MORSEL_OK) {
            fprintf(stderr, "morsel_camera: frame %ld: %s\n", frames + 1, err.message);
            return 1;
        }
        frames++;
        infer_ms += t.inference_ms;
        double dt = now_s() - t0;
        printf("{\"frame\": %ld, \"top\": ", frames);
        cli_json_top(stdout, top, n);
        printf(", \"inference_ms\": %.3f, \"fps\": %.2f}\n", t.inference_ms,
               dt > 0 ? (double)frames / dt : 0.0);
        /* A consumer reads frame by frame: each line leaves when its frame is done. */
        if (fflush(stdout) != 0) {
            fprintf(stderr, "morsel_camera: cannot write to stdout\n");
            return 1;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double dt = frames ? now_s() - t0 : 0;
    fprintf(stderr, "morsel_camera: %ld frames, inference %.2f ms mean, %.2f frames/s, "
                    "peak RSS %.1f MiB\n",
            frames, frames ? infer_ms / (double)frames : 0.0, dt > 0 ? (double)frames / dt : 0.0,
            (double)ru.ru_maxrss / 1024.0);
    return 0;
}

int main(int argc, char **argv)
{
    camera_opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return usage();
    morsel_open_options opt = {.struct_size = sizeof opt, .isa = o.isa};
    morsel_model *model = NULL;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    size_t need = (size_t)o.width * 3 * (size_t)o.height;
    uint8_t *frame = calloc(need, 1);
    morsel_class *top = calloc((size_t)o.top, sizeof *top);
    int n = 0, rc = 1;
    if (!frame || !top) {
        fprintf(stderr, "morsel_camera: out of memory for a %dx%d frame\n", o.width, o.height);
    } else if (morsel_model_open_file_ex(o.model, &opt, &model, &err) != MORSEL_OK ||
               morsel_context_create(model, &ctx, &err) != MORSEL_OK ||
               morsel_context_set_threads(ctx, o.threads, &err) != MORSEL_OK ||
               /* The black frame: every buffer the loop needs is allocated here. */
               morsel_classify_rgb(ctx, frame, o.width, o.height, (size_t)o.width * 3, o.top,
                                   top, &n, NULL, &err) != MORSEL_OK) {
        fprintf(stderr, "morsel_camera: %s\n", err.message);
    } else {
        rc = run(ctx, &o, frame, top);
    }
    morsel_context_destroy(ctx);
    morsel_model_close(model);
    free(frame);
    free(top);
    return rc;
}
