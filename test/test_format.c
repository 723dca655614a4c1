/* The loader's promise: any byte string given as a model either loads into a graph the kernels
 * can run safely, or is refused with a clear error. Never a crash, never a read outside the
 * buffer (run under AddressSanitizer: MORSEL_SANITIZE=ON).
 *
 * usage: test_format MODEL.morsel...
 * For each real exported model file:
 *   - it loads and runs as given (the round trip of what the exporter wrote);
 *   - truncations: every length for files up to 256 KiB; for larger files every length inside
 *     the metadata (everything before WEIGHTS), around every section boundary and 500 more;
 *   - random bit flips, each in a fresh exact-size buffer, with the checksums left stale (must be
 *     refused) and with checksums recomputed so the structural checks behind them are reached
 *     (must be refused cleanly or load and run).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int passed, failed;

static void check(int ok, const char *what, const char *file)
{
    if (ok) {
        passed++;
        printf("ok   %s: %s\n", file, what);
    } else {
        failed++;
        printf("FAIL %s: %s\n", file, what);
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Recomputes every section CRC and the header CRC, so a flipped byte reaches the checks that
 * come after the checksums. Tolerates garbage: only in-bounds sections are re-signed. */
static void resign(uint8_t *b, size_t n)
{
    if (n < 64)
        return;
    uint32_t n_sec = rd32(b + 12);
    if (n_sec > 64 || 64 + (size_t)n_sec * 32 > n)
        return;
    for (uint32_t i = 0; i < n_sec; i++) {
        uint8_t *e = b + 64 + (size_t)i * 32;
        uint64_t off = rd64(e + 8), size = rd64(e + 16);
        if (off <= n && size <= n - off)
            wr32(e + 4, mf_crc32(0, b + off, (size_t)size));
    }
    uint8_t head[64];
    memcpy(head, b, 64);
    memset(head + 24, 0, 4);
    wr32(b + 24, mf_crc32(mf_crc32(0, head, 64), b + 64, (size_t)n_sec * 32));
}

/* Loads from an exact-size heap copy (so ASan sees any over-read); when it loads, runs it. */
static int try_load(const uint8_t *data, size_t n, morsel_status *status)
{
    void *copy = NULL;
    if (posix_memalign(&copy, 64, n ? n : 1) != 0)
        return 0;
    memcpy(copy, data, n);
    morsel_model *m = NULL;
    morsel_error err = {0};
    *status = morsel_model_open_memory(copy, n, &m, &err);
    int ok = 1;
    if (*status == MORSEL_OK) {
        morsel_context *ctx = NULL;
        morsel_model_info info = MORSEL_MODEL_INFO_INIT;
        morsel_model_get_info(m, &info, NULL);
        size_t n_in = (size_t)info.input_h * info.input_w * info.input_c;
        float *x = calloc(n_in, sizeof *x), *y = calloc((size_t)info.n_outputs, sizeof *y);
        if (x && y && morsel_context_create(m, &ctx, &err) == MORSEL_OK)
            morsel_run(ctx, x, n_in, MORSEL_OUTPUT_PROBS, y, (size_t)info.n_outputs, &err);
        morsel_context_destroy(ctx);
        free(x);
        free(y);
        morsel_model_close(m);
    } else {
        /* A refusal must say why. */
        ok = err.message[0] != 0 && err.status == *status;
    }
    free(copy);
    return ok;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(size > 0 ? (size_t)size : 1);
    if (b && fread(b, 1, (size_t)size, f) != (size_t)size) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)size;
    return b;
}

/* Where WEIGHTS starts: everything before it is structure. */
static size_t weights_offset(const uint8_t *b, size_t n)
{
    uint32_t n_sec = rd32(b + 12);
    for (uint32_t i = 0; i < n_sec && 64 + 32 * (size_t)(i + 1) <= n; i++)
        if (rd32(b + 64 + 32 * i) == 5 && rd64(b + 64 + 32 * i + 8) <= n)
            return (size_t)rd64(b + 64 + 32 * i + 8);
    return n;
}

static void truncations(const char *path, const uint8_t *b, size_t n)
{
    int all_refused = 1, all_explained = 1;
    size_t tried = 0;
    size_t meta_end = weights_offset(b, n);
    uint32_t n_sec = rd32(b + 12);
    for (size_t len = 0; len < n; len++) {
        int pick = n <= 256 * 1024 || len <= meta_end + 64;
        for (uint32_t i = 0; i < n_sec && !pick; i++) {
            size_t off = (size_t)rd64(b + 64 + 32 * i + 8), sz = (size_t)rd64(b + 64 + 32 * i + 16);
            pick = (len + 2 >= off && len <= off + 2) || (len + 2 >= off + sz && len <= off + sz + 2);
        }
        if (!pick && rng() % (n / 500 + 1) != 0)
            continue;
        morsel_status s;
        all_explained &= try_load(b, len, &s);
        all_refused &= s == MORSEL_ERR_FORMAT;
        tried++;
    }
    char what[128];
    snprintf(what, sizeof what, "%zu truncations all refused as corrupt with a message", tried);
    check(all_refused && all_explained, what, path);
}

static void flips(const char *path, const uint8_t *b, size_t n, int count, int resigned)
{
    uint8_t *work = malloc(n);
    size_t meta = weights_offset(b, n);
    int ok = 1, refused = 0, loaded = 0;
    for (int i = 0; i < count && work; i++) {
        memcpy(work, b, n);
        /* Three flips in four land in the metadata (before WEIGHTS), where the structure
         * lives; flipped weights only change numbers. */
        size_t at = (i % 4 == 0 ? rng() % n : rng() % meta);
        work[at] ^= (uint8_t)(1u << (rng() % 8));
        if (resigned)
            resign(work, n);
        morsel_status s;
        ok &= try_load(work, n, &s);
        if (s == MORSEL_OK)
            loaded++;
        else
            refused++;
        if (!resigned && s == MORSEL_OK)
            ok = 0; /* a stale checksum must never pass */
    }
    free(work);
    char what[160];
    snprintf(what, sizeof what, "%d bit flips (%s checksums): %d refused cleanly, %d loaded and ran",
             count, resigned ? "recomputed" : "stale", refused, loaded);
    check(ok, what, path);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_format MODEL.morsel...\n");
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        size_t n = 0;
        uint8_t *b = read_file(argv[a], &n);
        if (!b) {
            check(0, "fixture file missing (did export_fixtures run?)", argv[a]);
            continue;
        }
        morsel_status s;
        check(try_load(b, n, &s) && s == MORSEL_OK, "loads and runs as exported", argv[a]);
        truncations(argv[a], b, n);
        flips(argv[a], b, n, 300, 0);
        flips(argv[a], b, n, 2000, 1);
        free(b);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
