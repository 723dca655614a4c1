/* The thread-safety contract: one loaded model shared by many threads, each with its own
 * context (itself running on a 2-thread pool), gives every thread exactly the answers a lone
 * thread gets, while the threads mix morsel_run, classify_rgb, classify_encoded and
 * set_preprocess on their contexts at the same time. Run under ThreadSanitizer by the suite.
 * usage: test_threads MODEL.morsel IMAGE.jpg [THREADS ROUNDS] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morsel.h"

#define INPUTS 3
#define TOP 5
#define POOL 2

enum task { T_RUN, T_RGB, T_ENCODED, T_COUNT };

/* Everything the lone thread computed, read-only while the workers run. */
typedef struct shared {
    const morsel_model *model;
    size_t n_in, n_out;
    const float *inputs, *expected_run;
    const uint8_t *rgb, *encoded;
    int rgb_w, rgb_h;
    size_t encoded_len;
    morsel_preprocess pp[2];            /* [0] unused: NULL restores the model's own; [1] another
                                         * filter and crop */
    morsel_class expected[T_COUNT][2][TOP]; /* [T_RGB / T_ENCODED][pp] */
    int rounds;
} shared;

typedef struct job {
    const shared *s;
    int thread, runs, mismatches, errors;
    char first_error[600];
} job;

static int same_top(const morsel_class *a, const morsel_class *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].index != b[i].index || memcmp(&a[i].probability, &b[i].probability,
                                               sizeof a[i].probability) != 0)
            return 0;
    return 1;
}

static morsel_status classify(morsel_context *ctx, const shared *s, int task, morsel_class *top,
                              morsel_error *err)
{
    int n = 0;
    morsel_status st = task == T_RGB
        ? morsel_classify_rgb(ctx, s->rgb, s->rgb_w, s->rgb_h, (size_t)s->rgb_w * 3, TOP, top, &n,
                              NULL, err)
        : morsel_classify_encoded(ctx, s->encoded, s->encoded_len, TOP, top, &n, NULL, err);
    if (st == MORSEL_OK && n != (s->n_out < TOP ? (int)s->n_out : TOP))
        st = MORSEL_ERR_ARGUMENT;
    return st;
}

static morsel_status new_context(const morsel_model *m, morsel_context **ctx, morsel_error *err)
{
    morsel_status st = morsel_context_create(m, ctx, err);
    if (st == MORSEL_OK && (st = morsel_context_set_threads(*ctx, POOL, err)) != MORSEL_OK)
        morsel_context_destroy(*ctx);
    return st;
}

static void *worker(void *arg)
{
    job *j = arg;
    const shared *s = j->s;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    float *y = malloc(s->n_out * sizeof *y);
    if (!y || new_context(s->model, &ctx, &err) != MORSEL_OK) {
        j->errors++;
        snprintf(j->first_error, sizeof j->first_error, "context: %s", err.message);
        free(y);
        return NULL;
    }
    for (int r = 0; r < s->rounds; r++) {
        /* Neighbouring threads run different tasks, inputs and preprocessing at once. */
        int task = (r + j->thread) % T_COUNT, k = (r + j->thread) % INPUTS;
        int v = (r / T_COUNT + j->thread) % 2;
        morsel_status st;
        int same;
        if (task == T_RUN) {
            st = morsel_run(ctx, s->inputs + k * s->n_in, s->n_in, MORSEL_OUTPUT_PROBS, y,
                            s->n_out, &err);
            same = st == MORSEL_OK &&
                   memcmp(y, s->expected_run + k * s->n_out, s->n_out * sizeof *y) == 0;
        } else {
            morsel_class top[TOP];
            st = morsel_context_set_preprocess(ctx, v ? &s->pp[1] : NULL, &err);
            if (st == MORSEL_OK)
                st = classify(ctx, s, task, top, &err);
            same = st == MORSEL_OK && same_top(top, s->expected[task][v], TOP < (int)s->n_out
                                                                             ? TOP : (int)s->n_out);
        }
        j->runs++;
        if (st != MORSEL_OK) {
            if (!j->errors++)
                snprintf(j->first_error, sizeof j->first_error, "task %d: %s", task, err.message);
        } else if (!same) {
            j->mismatches++;
        }
    }
    morsel_context_destroy(ctx);
    free(y);
    return NULL;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        rewind(f);
        b = n > 0 ? malloc((size_t)n) : NULL;
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        }
        *len = b ? (size_t)n : 0;
    }
    fclose(f);
    return b;
}

/* The lone thread's answers for every input, task and preprocessing. */
static int compute_expected(shared *s, float *expected_run)
{
    morsel_context *solo = NULL;
    morsel_error err = {0};
    if (new_context(s->model, &solo, &err) != MORSEL_OK)
        return -1;
    int bad = 0;
    for (int k = 0; k < INPUTS; k++)
        bad |= morsel_run(solo, s->inputs + k * s->n_in, s->n_in, MORSEL_OUTPUT_PROBS,
                          expected_run + k * s->n_out, s->n_out, &err) != MORSEL_OK;
    for (int v = 0; v < 2; v++) {
        bad |= morsel_context_set_preprocess(solo, v ? &s->pp[1] : NULL, &err) != MORSEL_OK;
        bad |= classify(solo, s, T_RGB, s->expected[T_RGB][v], &err) != MORSEL_OK;
        bad |= classify(solo, s, T_ENCODED, s->expected[T_ENCODED][v], &err) != MORSEL_OK;
    }
    if (bad)
        printf("FAIL the lone thread: %s\n", err.message);
    morsel_context_destroy(solo);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: test_threads MODEL.morsel IMAGE.jpg [THREADS ROUNDS]\n");
        return 2;
    }
    int threads = argc == 5 ? atoi(argv[3]) : 6;
    shared s = {.rounds = argc == 5 ? atoi(argv[4]) : 12};
    if (threads < 1 || threads > 256 || s.rounds < 1) {
        fprintf(stderr, "test_threads: THREADS 1..256 and ROUNDS >= 1\n");
        return 2;
    }
    morsel_model *m = NULL;
    morsel_error err = {0};
    if (morsel_model_open_file(argv[1], &m, &err) != MORSEL_OK) {
        printf("FAIL cannot open %s: %s\n0 passed, 1 failed\n", argv[1], err.message);
        return 1;
    }
    uint8_t *encoded = read_file(argv[2], &s.encoded_len);
    if (!encoded) {
        printf("FAIL cannot read %s\n0 passed, 1 failed\n", argv[2]);
        return 1;
    }
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &info, NULL);
    s.model = m;
    s.encoded = encoded;
    s.n_in = (size_t)info.input_h * info.input_w * info.input_c;
    s.n_out = (size_t)info.n_outputs;
    s.pp[1] = info.preprocess;
    s.pp[1].filter = info.preprocess.filter == MORSEL_RESIZE_NEAREST ? MORSEL_RESIZE_BICUBIC
                                                                     : MORSEL_RESIZE_NEAREST;
    s.pp[1].center_crop = !info.preprocess.center_crop;
    s.rgb_w = 37;
    s.rgb_h = 29;
    float *inputs = malloc(INPUTS * s.n_in * sizeof *inputs);
    float *expected_run = malloc(INPUTS * s.n_out * sizeof *expected_run);
    uint8_t *rgb = malloc((size_t)s.rgb_w * s.rgb_h * 3);
    if (!inputs || !expected_run || !rgb)
        return 1;
    uint32_t seed = 1;
    for (size_t i = 0; i < INPUTS * s.n_in; i++) {
        seed = seed * 1664525u + 1013904223u;
        inputs[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    for (size_t i = 0; i < (size_t)s.rgb_w * s.rgb_h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(seed >> 24);
    }
    s.inputs = inputs;
    s.rgb = rgb;
    if (compute_expected(&s, expected_run) != 0)
        return 1;
    s.expected_run = expected_run;

    pthread_t *tid = malloc((size_t)threads * sizeof *tid);
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    if (!tid || !jobs)
        return 1;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){.s = &s, .thread = t};
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0) {
            printf("FAIL cannot start thread %d\n", t);
            return 1;
        }
    }
    int passed = 0, failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        job *j = &jobs[t];
        int ok = j->mismatches == 0 && j->errors == 0 && j->runs == s.rounds;
        printf("%s thread %d (context on %d threads): %d run/classify_rgb/classify_encoded/"
               "set_preprocess rounds on a shared model, %d differ from the lone thread, "
               "%d errors%s%s\n", ok ? "ok  " : "FAIL", t, POOL, j->runs, j->mismatches,
               j->errors, j->errors ? ": " : "", j->first_error);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    free(tid);
    free(jobs);
    free(inputs);
    free(expected_run);
    free(rgb);
    free(encoded);
    morsel_model_close(m);
    return failed ? 1 : 0;
}
