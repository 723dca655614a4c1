/* The thread-safety contract: one loaded model shared by many threads, each with its own
 * context, gives every thread exactly the answers a lone thread gets.
 * usage: test_threads MODEL.morsel */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morsel.h"

#define THREADS 4
#define INPUTS 3
#define ROUNDS 5

typedef struct job {
    const morsel_model *model;
    const float *inputs;
    const float *expected;
    size_t n_in, n_out;
    int thread, mismatches, errors;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    float *y = malloc(j->n_out * sizeof *y);
    if (!y || morsel_context_create(j->model, &ctx, &err) != MORSEL_OK) {
        j->errors++;
        free(y);
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        int k = (r + j->thread) % INPUTS; /* threads run different inputs at the same time */
        if (morsel_run(ctx, j->inputs + k * j->n_in, j->n_in, MORSEL_OUTPUT_PROBS, y, j->n_out,
                       &err) != MORSEL_OK)
            j->errors++;
        else if (memcmp(y, j->expected + k * j->n_out, j->n_out * sizeof *y) != 0)
            j->mismatches++;
    }
    morsel_context_destroy(ctx);
    free(y);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_threads MODEL.morsel\n");
        return 2;
    }
    morsel_model *m = NULL;
    morsel_error err = {0};
    if (morsel_model_open_file(argv[1], &m, &err) != MORSEL_OK) {
        printf("FAIL cannot open %s: %s\n0 passed, 1 failed\n", argv[1], err.message);
        return 1;
    }
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &info, NULL);
    size_t n_in = (size_t)info.input_h * info.input_w * info.input_c, n_out = (size_t)info.n_outputs;
    float *inputs = malloc(INPUTS * n_in * sizeof *inputs);
    float *expected = malloc(INPUTS * n_out * sizeof *expected);
    morsel_context *solo = NULL;
    if (!inputs || !expected || morsel_context_create(m, &solo, &err) != MORSEL_OK)
        return 1;
    uint32_t s = 1;
    for (size_t i = 0; i < INPUTS * n_in; i++) {
        s = s * 1664525u + 1013904223u;
        inputs[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
    }
    for (int k = 0; k < INPUTS; k++)
        morsel_run(solo, inputs + k * n_in, n_in, MORSEL_OUTPUT_PROBS, expected + k * n_out, n_out,
                   &err);
    morsel_context_destroy(solo);

    pthread_t tid[THREADS];
    job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (job){m, inputs, expected, n_in, n_out, t, 0, 0};
        pthread_create(&tid[t], NULL, worker, &jobs[t]);
    }
    int passed = 0, failed = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        int ok = jobs[t].mismatches == 0 && jobs[t].errors == 0;
        printf("%s thread %d: %d runs on a shared model, %d differ from the lone thread, %d errors\n",
               ok ? "ok  " : "FAIL", t, ROUNDS, jobs[t].mismatches, jobs[t].errors);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    free(inputs);
    free(expected);
    morsel_model_close(m);
    return failed ? 1 : 0;
}
