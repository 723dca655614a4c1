/* Crafted hostile model files, checksums valid (issue 10, denial of service): each must be
 * refused quickly with the right status and a message that names the real problem, or open
 * quickly, with the process's peak memory bounded. Prints a table: case, status, ms, peak RSS.
 *
 * usage: test_crafted
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "craft.h"

static int passed, failed;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* the machine is shared: CPU, not wall */
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* Opens the file image with opt; passes when the status is want and the message contains
 * needle, within max_ms. Frees b. */
static void expect(const char *name, uint8_t *b, size_t n, const morsel_open_options *opt,
                   morsel_status want, const char *needle, double max_ms)
{
    morsel_model *m = NULL;
    morsel_error err = {0};
    double t0 = now_ms();
    morsel_status s = morsel_model_open_memory_ex(b, n, MORSEL_MEMORY_BORROW, opt, &m, &err);
    double ms = now_ms() - t0;
    morsel_model_close(m);
    free(b);
    int ok = s == want && (s == MORSEL_OK || (err.status == s && strstr(err.message, needle))) &&
             ms <= max_ms;
    printf("%s %-44s %9zu B  %-15s %8.1f ms CPU  peak RSS %4ld MB\n", ok ? "ok  " : "FAIL", name, n,
           morsel_status_name(s), ms, peak_rss_mb());
    if (s != MORSEL_OK)
        printf("     message: %s\n", err.message);
    if (ok)
        passed++;
    else
        failed++;
}

/* input [8, 8, 3] -> RESIZE to [side, side, 3] (bilinear), then optionally a max pool with a
 * window x window kernel, stride 1. */
static uint8_t *resize_pool(size_t *n, uint32_t side, int32_t window)
{
    craft c;
    craft_init(&c);
    uint32_t x = craft_tensor(&c, 0, 3, 8, 8, 3, 1);
    uint32_t r = craft_tensor(&c, 0, 3, side, side, 3, 1);
    craft_add_op(&c, &(craft_op){.type = MF_OP_RESIZE, .n_in = 1, .in = {x}, .out = r,
                                 .iattr = {MK_RESIZE_BILINEAR}});
    uint32_t y = r;
    if (window > 0) {
        uint32_t o = side - (uint32_t)window + 1;
        y = craft_tensor(&c, 0, 3, o, o, 3, 1);
        craft_add_op(&c, &(craft_op){.type = MF_OP_MAX_POOL, .n_in = 1, .in = {r}, .out = y,
                                     .iattr = {window, window, 1, 1}});
    }
    craft_model(&c, x, y, MF_NO_TENSOR);
    return craft_finish(&c, n);
}

/* input [4, 4, 3] followed by n_ops ReLU activations in a chain. */
static uint8_t *chain(size_t *n, uint32_t n_ops)
{
    craft c;
    craft_init(&c);
    uint32_t t = craft_tensor(&c, 0, 3, 4, 4, 3, 1), x = t;
    for (uint32_t i = 0; i < n_ops; i++) {
        uint32_t y = craft_tensor(&c, 0, 3, 4, 4, 3, 1);
        craft_add_op(&c, &(craft_op){.type = MF_OP_ACTIVATION, .act = MK_ACT_RELU,
                                     .max = INFINITY, .n_in = 1, .in = {t}, .out = y});
        t = y;
    }
    craft_model(&c, x, t, MF_NO_TENSOR);
    return craft_finish(&c, n);
}

/* The tiny model with one twist applied to its op or records. */
static uint8_t *tiny_with(size_t *n, float alpha, int output_is_input, float selftest_tol,
                          uint32_t extra_tensors)
{
    craft c;
    craft_init(&c);
    uint32_t x = craft_tensor(&c, 0, 3, 4, 4, 3, 1);
    uint32_t y = craft_tensor(&c, 0, 1, 3, 1, 1, 1);
    for (uint32_t i = 0; i < extra_tensors; i++)
        craft_tensor(&c, 0, 1, 1, 1, 1, 1);
    craft_add_op(&c, &(craft_op){.type = MF_OP_GLOBAL_AVG_POOL, .act = MK_ACT_RELU,
                                 .alpha = alpha, .max = INFINITY, .n_in = 1, .in = {x},
                                 .out = y});
    craft_model(&c, x, output_is_input ? x : y, MF_NO_TENSOR);
    if (selftest_tol != 0.0f)
        craft_selftest(&c, 48, 3, selftest_tol);
    return craft_finish(&c, n);
}

/* input [1, 1, 3] -> 1x1 conv to c channels, then n_ops 1x1 convs c -> c that all read one
 * kernel [1, 1, c, c]: packed once per op, 1000 ops of c = 512 would hold 1 GB. */
static uint8_t *shared_kernel(size_t *n, uint32_t n_ops, uint32_t c)
{
    craft cr;
    craft_init(&cr);
    uint32_t x = craft_tensor(&cr, 0, 3, 1, 1, 3, 1), t = craft_tensor(&cr, 0, 3, 1, 1, c, 1);
    uint32_t w0 = craft_tensor(&cr, 1, 4, 1, 1, 3, c), w = craft_tensor(&cr, 1, 4, 1, 1, c, c);
    const int32_t one[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    craft_op op = {.type = MF_OP_CONV2D, .n_in = 2, .in = {x, w0}, .out = t};
    memcpy(op.iattr, one, sizeof one);
    craft_add_op(&cr, &op);
    for (uint32_t i = 0; i < n_ops; i++) {
        uint32_t y = craft_tensor(&cr, 0, 3, 1, 1, c, 1);
        op.in[0] = t;
        op.in[1] = w;
        op.out = y;
        craft_add_op(&cr, &op);
        t = y;
    }
    craft_model(&cr, x, t, MF_NO_TENSOR);
    return craft_finish(&cr, n);
}

/* input [6, 6, 3] -> one op of format 1.2: GROUPED_CONV2D 3x3 valid, kernel
 * [3,3,3/groups,6]; CONV2D_TRANSPOSE 2x2 stride 3, kernel [2,2,4,3], output (6-1)*3 + 2 - the
 * bottom/right crops; LAYER_NORM with gamma/beta [3] and this epsilon. */
static uint8_t *new_op(size_t *n, uint32_t type, int32_t groups_or_crop, float eps)
{
    craft c;
    craft_init(&c);
    uint32_t x = craft_tensor(&c, 0, 3, 6, 6, 3, 1), y;
    craft_op o = {.type = type, .max = INFINITY, .in = {x}};
    if (type == MF_OP_GROUPED_CONV2D) {
        int32_t g = groups_or_crop;
        uint32_t cig = g > 0 && 3 % g == 0 ? 3u / (uint32_t)g : 1u;
        o.in[1] = craft_tensor(&c, 1, 4, 3, 3, cig, 6);
        y = craft_tensor(&c, 0, 3, 4, 4, 6, 1);
        o.n_in = 2;
        memcpy(o.iattr, (int32_t[12]){3, 3, 1, 1, 0, 0, 0, 0, 1, 1, g}, sizeof o.iattr);
    } else if (type == MF_OP_CONV2D_TRANSPOSE) {
        int32_t side = 5 * 3 + 2 - groups_or_crop;
        o.in[1] = craft_tensor(&c, 1, 4, 2, 2, 4, 3);
        y = craft_tensor(&c, 0, 3, (uint32_t)side, (uint32_t)side, 4, 1);
        o.n_in = 2;
        memcpy(o.iattr, (int32_t[12]){2, 2, 3, 3, 0, groups_or_crop, 0, groups_or_crop},
               sizeof o.iattr);
    } else {
        o.in[1] = craft_tensor(&c, 1, 1, 3, 1, 1, 1);
        o.in[2] = craft_tensor(&c, 1, 1, 3, 1, 1, 1);
        y = craft_tensor(&c, 0, 3, 6, 6, 3, 1);
        o.n_in = 3;
        o.fattr[0] = eps;
    }
    o.out = y;
    craft_add_op(&c, &o);
    craft_model(&c, x, y, MF_NO_TENSOR);
    return craft_finish(&c, n);
}

int main(void)
{
    size_t n = 0;
    uint8_t *b = NULL;
    morsel_open_options big = {.struct_size = sizeof big, .max_work = 1000000000000ull};
    morsel_open_options small_mem = {.struct_size = sizeof small_mem,
                                     .max_memory_bytes = 16u << 20};

    /* Compute budget: ~1 KB, resize to 1024^2 then a 512x512 max pool: 2e11 comparisons. */
    b = resize_pool(&n, 1024, 512);
    expect("resize 1024^2 + 512x512 pool (default)", b, n, NULL,
           MORSEL_ERR_LIMIT, "max_work", 200);
    b = resize_pool(&n, 1024, 512);
    expect("same, max_work = 1e12 (opens, not run)", b, n, &big,
           MORSEL_OK, "", 1000);
    /* Memory budget: a 3.2 GB arena from a ~1 KB file; a 50 MB one under a 16 MiB limit. */
    b = resize_pool(&n, 16384, 0);
    expect("resize to 16384^2 (3.2 GB arena)", b, n, NULL,
           MORSEL_ERR_LIMIT, "max_memory_bytes", 200);
    b = resize_pool(&n, 2048, 0);
    expect("resize to 2048^2 (50 MB arena, default)", b, n, NULL,
           MORSEL_OK, "", 200);
    b = resize_pool(&n, 2048, 0);
    expect("resize to 2048^2, max_memory 16 MiB", b, n, &small_mem,
           MORSEL_ERR_LIMIT, "limit is 16 MB", 200);
    /* Planner: near-linear in tensors (it was 20-40 s at O(n^2)). */
    b = chain(&n, 99999);
    expect("99,999-op chain", b, n, NULL, MORSEL_OK, "", 1000);
    b = chain(&n, 100000);
    expect("100,000-op chain (100,001 tensors)", b, n, NULL, MORSEL_ERR_LIMIT,
           "too many tensors: 100001 (limit 100000)", 1000);
    /* Packing: ops reading one kernel share one packed copy (the file holds 1 MB of it). */
    b = shared_kernel(&n, 1000, 512);
    expect("1000 convs sharing one 512x512 kernel", b, n, NULL, MORSEL_OK, "", 1000);
    /* Messages that name the real problem. */
    b = tiny_with(&n, NAN, 0, 0.0f, 0);
    expect("NaN activation alpha", b, n, NULL, MORSEL_ERR_FORMAT,
           "NaN activation alpha", 100);
    b = tiny_with(&n, 0.0f, 0, NAN, 0);
    expect("NaN self-test tolerance", b, n, NULL,
           MORSEL_ERR_FORMAT, "self-test tolerance nan", 100);
    b = tiny_with(&n, 0.0f, 1, 0.0f, 0);
    expect("output tensor is the input", b, n, NULL,
           MORSEL_ERR_FORMAT, "output is its input", 100);
    b = tiny_with(&n, 0.0f, 0, 1e-3f, 0);
    expect("control: the same file untwisted", b, n, NULL,
           MORSEL_OK, "", 100);
    /* Format 1.2 ops (issue 11): hostile attributes, each next to its valid control. */
    b = new_op(&n, MF_OP_GROUPED_CONV2D, 2, 0.0f);
    expect("grouped conv, 2 groups of 3 channels", b, n, NULL, MORSEL_ERR_FORMAT,
           "groups must divide", 100);
    b = new_op(&n, MF_OP_GROUPED_CONV2D, 0, 0.0f);
    expect("grouped conv, 0 groups", b, n, NULL, MORSEL_ERR_FORMAT, "groups must divide", 100);
    b = new_op(&n, MF_OP_GROUPED_CONV2D, 3, 0.0f);
    expect("control: grouped conv, 3 groups", b, n, NULL, MORSEL_OK, "", 100);
    b = new_op(&n, MF_OP_CONV2D_TRANSPOSE, -3, 0.0f);
    expect("transposed conv, crop -stride", b, n, NULL, MORSEL_ERR_FORMAT,
           "cropping out of range", 100);
    b = new_op(&n, MF_OP_CONV2D_TRANSPOSE, 2, 0.0f);
    expect("transposed conv, crop = kernel", b, n, NULL, MORSEL_ERR_FORMAT,
           "cropping out of range", 100);
    b = new_op(&n, MF_OP_CONV2D_TRANSPOSE, -2, 0.0f);
    expect("control: transposed conv, crop 1 - stride", b, n, NULL, MORSEL_OK, "", 100);
    b = new_op(&n, MF_OP_LAYER_NORM, 0, -1.0f);
    expect("layer norm, epsilon -1", b, n, NULL, MORSEL_ERR_FORMAT, "epsilon must be >= 0", 100);
    b = new_op(&n, MF_OP_LAYER_NORM, 0, 1e-3f);
    expect("control: layer norm, epsilon 1e-3", b, n, NULL, MORSEL_OK, "", 100);
    long rss = peak_rss_mb();
    int rss_ok = rss < 256;
    printf("%s peak RSS %ld MB (bound 256 MB)\n", rss_ok ? "ok  " : "FAIL", rss);
    passed += rss_ok;
    failed += !rss_ok;
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
