/* libFuzzer target: any bytes as a .morsel file. Loading and validation must answer with a
 * status and a message; a file that loads must also describe itself and run once on a zero
 * input without a memory error, and its output must fit where the info says.
 *
 * Random bytes would almost all stop at the checksums, so the harness first makes the size and
 * every CRC true (unless the input's reserved header byte 63 is 0x5A, which keeps the input as
 * it is and leaves those checks reachable). The bytes are then handed over in a 64-byte aligned
 * buffer of exactly their size, so the library reads them in place (no private padded copy)
 * and ASan sees every read past the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morsel.h"

/* A file may be valid and still ask for minutes of work or gigabytes (known, issue 10: the
 * compute and memory budgets); the fuzzer looks for memory errors, so it opens files with small
 * budgets, which the library checks at load. */
#define RUN_MAX_WORK (50u * 1000 * 1000)
#define RUN_MAX_MEMORY (64u << 20)
#define RUN_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_model: broken contract: %s\n", what);
        abort();
    }
}

static uint32_t crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

/* The layout of weights/FORMAT.md: a 64-byte header, 32-byte section entries. */
static void repair(uint8_t *b, size_t size)
{
    if (size < 64 || b[63] == 0x5A)
        return;
    for (int i = 0; i < 8; i++)
        b[16 + i] = (uint8_t)((uint64_t)size >> 8 * i);
    uint64_t n_sec = rd(b + 12, 4);
    if (n_sec > 64 || 64 + n_sec * 32 > size)
        return;
    for (uint64_t i = 0; i < n_sec; i++) {
        uint8_t *e = b + 64 + i * 32;
        uint64_t off = rd(e + 8, 8), len = rd(e + 16, 8);
        if (off <= size && len <= size - off)
            wr32(e + 4, crc32(0, b + off, (size_t)len));
    }
    uint8_t head[64];
    memcpy(head, b, 64);
    memset(head + 24, 0, 4);
    wr32(b + 24, crc32(crc32(0, head, 64), b + 64, (size_t)n_sec * 32));
}

static void run_once(const morsel_model *m, const morsel_model_info *info)
{
    for (int i = 0; i < info->n_ops; i++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        must(morsel_model_get_op(m, i, &op, NULL) == MORSEL_OK, "get_op of a listed op fails");
        must(op.type && op.activation && op.kernel, "op info has NULL names");
    }
    size_t n_in = (size_t)info->input_h * info->input_w * info->input_c;
    if (n_in > RUN_MAX_INPUT || info->n_outputs <= 0)
        return;
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK) {
        must(err.message[0] != 0, "context_create failed without a message");
        return;
    }
    float *x = calloc(n_in ? n_in : 1, sizeof *x);
    float *y = calloc((size_t)info->n_outputs, sizeof *y);
    if (x && y) {
        morsel_status st = morsel_run(ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, (size_t)info->n_outputs,
                                      &err);
        must(st == MORSEL_OK || err.message[0] != 0, "run failed without a message");
        if (info->has_logits)
            morsel_run(ctx, x, n_in, MORSEL_OUTPUT_LOGITS, y, (size_t)info->n_outputs, &err);
        if (info->has_selftest) {
            float diff = 0;
            morsel_selftest(ctx, &diff, &err);
        }
    }
    free(x);
    free(y);
    morsel_context_destroy(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *buf = NULL;
    if (posix_memalign(&buf, 64, size ? size : 1) != 0)
        return 0;
    memcpy(buf, data, size);
    repair(buf, size);
    morsel_model *m = NULL;
    morsel_error err = {0};
    morsel_open_options opt = {.struct_size = sizeof opt, .max_work = RUN_MAX_WORK,
                               .max_memory_bytes = RUN_MAX_MEMORY};
    morsel_status st = morsel_model_open_memory_ex(buf, size, MORSEL_MEMORY_BORROW, &opt, &m, &err);
    if (st != MORSEL_OK) {
        must(m == NULL, "a failed open returned a model");
        must(err.status == st && err.message[0] != 0, "a failed open has no message");
        free(buf);
        return 0;
    }
    morsel_model_info info = MORSEL_MODEL_INFO_INIT;
    must(morsel_model_get_info(m, &info, NULL) == MORSEL_OK, "get_info fails on a loaded model");
    for (int i = 0; i < info.n_outputs && i < 4096; i++)
        (void)morsel_model_label(m, i);
    run_once(m, &info);
    morsel_model_close(m);
    free(buf);
    return 0;
}
