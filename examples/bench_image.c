/* morsel bench --image: the whole classify path on one encoded image held in memory, as a
 * server pays it per request (decode, resize and scaling, the network). The file is read once,
 * so disk I/O is not part of it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* v[0..n) is sorted in place. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cli_cmp_double);
    return v[(int)(q * (n - 1) + 0.5)];
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n > 0 ? (size_t)n : 0;
    return buf;
}

int bench_image(morsel_context *ctx, const char *path, int runs, int warmup,
                bench_image_result *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    unsigned char *bytes = read_all(path, &out->bytes);
    if (!bytes) {
        fprintf(stderr, "morsel bench: cannot read %s\n", path);
        return -1;
    }
    double *t = malloc(sizeof *t * 6 * (size_t)runs);
    int rc = t ? 0 : -1;
    for (int i = -warmup; i < runs && rc == 0; i++) {
        morsel_class top[1];
        int n_top = 0;
        morsel_timings tm = MORSEL_TIMINGS_INIT;
        morsel_error err = {0};
        double t0 = cli_now_ms();
        if (morsel_classify_encoded(ctx, bytes, out->bytes, 1, top, &n_top, &tm, &err) !=
            MORSEL_OK) {
            fprintf(stderr, "morsel bench: %s: %s\n", path, err.message);
            rc = -1;
            break;
        }
        double wall = cli_now_ms() - t0;
        if (i < 0)
            continue;
        t[i] = tm.decode_ms;
        t[runs + i] = tm.preprocess_ms;
        t[2 * runs + i] = tm.inference_ms;
        t[3 * runs + i] = wall;
        t[4 * runs + i] = wall;
        t[5 * runs + i] = wall - tm.decode_ms - tm.preprocess_ms - tm.inference_ms;
    }
    if (rc == 0) {
        out->runs = runs;
        out->decode_ms = quantile(t, runs, 0.5);
        out->preprocess_ms = quantile(t + runs, runs, 0.5);
        out->inference_ms = quantile(t + 2 * runs, runs, 0.5);
        out->total_ms = quantile(t + 3 * runs, runs, 0.5);
        out->total_p90_ms = quantile(t + 4 * runs, runs, 0.9);
        out->other_ms = quantile(t + 5 * runs, runs, 0.5);
    }
    free(t);
    free(bytes);
    return rc;
}

void bench_image_print(const bench_image_result *r, int json)
{
    if (json) {
        printf(",\"image\":{\"file\":");
        cli_json_string(stdout, r->path);
        printf(",\"bytes\":%zu,\"runs\":%d,\"decode_ms\":%.9g,\"preprocess_ms\":%.9g,"
               "\"inference_ms\":%.9g,\"other_ms\":%.9g,\"total_ms\":%.9g,\"total_p90_ms\":%.9g}",
               r->bytes, r->runs, r->decode_ms, r->preprocess_ms, r->inference_ms, r->other_ms,
               r->total_ms, r->total_p90_ms);
        return;
    }
    printf("\nclassify %s (%zu bytes, in memory), median of %d runs\n", r->path, r->bytes,
           r->runs);
    printf("%-14s %10.3f ms\n%-14s %10.3f ms   resize, crop, scaling\n%-14s %10.3f ms\n",
           "decode", r->decode_ms, "preprocess", r->preprocess_ms, "inference", r->inference_ms);
    printf("%-14s %10.3f ms   the rest of the call (top-k, checks)\n", "other", r->other_ms);
    printf("%-14s %10.3f ms   p90 %.3f ms, %.1f images/s\n", "total", r->total_ms,
           r->total_p90_ms, 1e3 / r->total_ms);
}
