/* The fusions are exact rewrites: a model opened with them gives bit-identical outputs to the
 * same model opened with MORSEL_FUSION=0, on every thread count, and they really happen:
 * - expand -> depthwise (lib/ops/fuse_expand_dw.c; each thread's first band recomputes rows
 *   its neighbour also computes): the expand conv is reported as fused, the depthwise conv
 *   names both kernels, and the wide tensor leaves the arena;
 * - project conv -> residual add (lib/ops/fuse_residual_add.c; each thread adds the shortcut
 *   to the rows its GEMM wrote): the add is reported as fused and the conv names it.
 * - a plain Reshape/Flatten read only by convs and dense layers (op_reshape.c): folded, its
 *   readers read its input;
 * - squeeze-and-excitation -> the pointwise conv it feeds (lib/ops/fuse_se.c; each thread
 *   computes the gate itself and gates its rows band by band): the reduce, excite and multiply
 *   ops are reported as fused and the conv is named "se+...", and the mean before them runs
 *   as fixed row chunks of sums (f32_global_sum) that the conv adds up;
 * - depthwise -> project (lib/ops/fuse_dw_project.c; the 1x1 conv runs on each band of the
 *   depthwise output, after the expand when that is fused too, then the residual add): on a
 *   full-width MobileNetV2 224, the three depthwise convs whose outputs pass 1 MB take their
 *   project convs, one of them with its add.
 * usage: test_fusion MOBILENETV2.morsel TINY.morsel MOBILENETV2_224.morsel
 *        (a MobileNetV2 with a 112x112 expanded tensor >= 1 MB; make_fixtures.py's tiny model;
 *        a width-1.0 MobileNetV2 at 224, the shipped nsfwjs model) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "morsel.h"

static int failed;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failed += !ok;
}

static morsel_model *open_with(const char *path, const char *fusion)
{
    if (fusion)
        setenv("MORSEL_FUSION", fusion, 1);
    else
        unsetenv("MORSEL_FUSION");
    morsel_model *m = NULL;
    morsel_error err = {0};
    if (morsel_model_open_file(path, &m, &err) != MORSEL_OK) {
        printf("FAIL cannot open %s: %s\n", path, err.message);
        exit(1);
    }
    return m;
}

/* Ops whose kernel name starts with `prefix` (or, with a leading '*', contains the rest). */
static int count_kernels(const morsel_model *m, const char *prefix)
{
    morsel_model_info in = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(m, &in, NULL);
    int n = 0;
    for (int i = 0; i < in.n_ops; i++) {
        morsel_op_info op = MORSEL_OP_INFO_INIT;
        if (morsel_model_get_op(m, i, &op, NULL) == MORSEL_OK && op.kernel &&
            (prefix[0] == '*' ? strstr(op.kernel, prefix + 1) != NULL
                              : strncmp(op.kernel, prefix, strlen(prefix)) == 0))
            n++;
    }
    return n;
}

static void run(morsel_model *m, int threads, const float *x, size_t n_in, float *y, size_t n_out)
{
    morsel_context *ctx = NULL;
    morsel_error err = {0};
    if (morsel_context_create(m, &ctx, &err) != MORSEL_OK ||
        morsel_context_set_threads(ctx, threads, &err) != MORSEL_OK ||
        morsel_run(ctx, x, n_in, MORSEL_OUTPUT_LOGITS, y, n_out, &err) != MORSEL_OK) {
        printf("FAIL run on %d threads: %s\n", threads, err.message);
        exit(1);
    }
    morsel_context_destroy(ctx);
}

/* The fused and unfused models give bit-identical logits on 3 inputs and 1-3 threads. */
static void same_outputs(morsel_model *fused, morsel_model *plain, const char *name)
{
    morsel_model_info fi = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(fused, &fi, NULL);
    size_t n_in = (size_t)fi.input_h * fi.input_w * fi.input_c, n_out = (size_t)fi.n_outputs;
    float *x = malloc(n_in * sizeof *x), *a = malloc(n_out * sizeof *a);
    float *b = malloc(n_out * sizeof *b);
    uint32_t s = 7;
    for (int input = 0; input < 3; input++) {
        for (size_t i = 0; i < n_in; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(s >> 8) / 16777216.0f;
        }
        run(plain, 1, x, n_in, b, n_out);
        for (int threads = 1; threads <= 3; threads++) {
            char what[96];
            run(fused, threads, x, n_in, a, n_out);
            snprintf(what, sizeof what, "%s, input %d, %d thread(s): logits bit-identical",
                     name, input, threads);
            check(memcmp(a, b, n_out * sizeof *a) == 0, what);
        }
    }
    free(x);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_fusion MOBILENETV2.morsel TINY.morsel MOBILENETV2_224.morsel\n");
        return 2;
    }
    morsel_model *fused = open_with(argv[1], NULL), *plain = open_with(argv[1], "0");
    morsel_model_info fi = MORSEL_MODEL_INFO_INIT, pi = MORSEL_MODEL_INFO_INIT;
    morsel_model_get_info(fused, &fi, NULL);
    morsel_model_get_info(plain, &pi, NULL);
    if (strcmp(fi.isa, "scalar") == 0) {
        /* The fusion composes the SIMD GEMM and depthwise kernels; the reference path has none. */
        printf("SKIP this CPU runs the scalar kernels only, which are never fused\n");
        return 0;
    }
    int n_fused = count_kernels(fused, "fused into the next"),
        n_pairs = count_kernels(fused, "f32_gemm+");
    int n_adds = count_kernels(fused, "fused into the previous"),
        n_add_hosts = count_kernels(fused, "*+add");
    printf("     %s kernels: %d expand conv(s) fused; arena %.2f MB fused, %.2f MB not\n", fi.isa,
           n_fused, fi.arena_bytes / 1e6, pi.arena_bytes / 1e6);
    check(n_fused >= 1 && n_pairs == n_fused, "the wide expand convs are fused into their depthwise");
    printf("     %d residual add(s) fused into their project conv\n", n_adds);
    /* MobileNetV2 has 10 residual adds, each right after a linear 1x1 project conv. */
    check(n_adds == 10 && n_add_hosts == n_adds, "every residual add is fused into its project conv");
    check(count_kernels(plain, "fused into") == 0 && count_kernels(plain, "f32_gemm+") == 0,
          "MORSEL_FUSION=0 turns the fusions off");
    check(fi.arena_bytes < pi.arena_bytes, "the fused model plans a smaller arena");

    same_outputs(fused, plain, "MobileNetV2");
    morsel_model_close(fused);
    morsel_model_close(plain);

    /* tiny.morsel (make_fixtures.py): Flatten -> Reshape -> Dense, and a Flatten read by a
     * Concatenate. The reshape read only by the dense layer is folded, not the other. */
    fused = open_with(argv[2], NULL);
    plain = open_with(argv[2], "0");
    int folded = count_kernels(fused, "folded: its readers");
    printf("     tiny: %d reshape(s) folded\n", folded);
    check(folded == 1, "the reshape read only by a dense layer is folded, the others run");
    check(count_kernels(plain, "folded: its readers") == 0, "MORSEL_FUSION=0 keeps every reshape");
    /* tiny's se2_* block (EfficientNet's shape) fuses; its se_* block (a gate from one conv,
     * read by pools) does not. */
    int se_parts = count_kernels(fused, "fused into the SE conv");
    int se_hosts = count_kernels(fused, "se+");
    printf("     tiny: %d SE op(s) fused into %d conv(s)\n", se_parts, se_hosts);
    check(se_parts == 3 && se_hosts == 1,
          "the SE reduce, excite and multiply are fused into the project conv");
    char host[64];
    snprintf(host, sizeof host, "se+f32_gemm_%s+add", fi.isa);
    check(count_kernels(fused, host) == 1, "the SE conv also takes its residual add");
    /* The mean in front of it is split into fixed row chunks of sums, finished by the conv;
     * se_pool (its output read by a pool, not a conv) stays a whole-tensor pool. */
    check(count_kernels(fused, "f32_global_sum") == 1 && count_kernels(plain, "f32_global_sum") == 0,
          "the SE conv's mean runs as chunk sums, and only with the fusions on");
    check(count_kernels(plain, "fused into the SE") == 0 && count_kernels(plain, "se+") == 0,
          "MORSEL_FUSION=0 keeps the SE ops");
    same_outputs(fused, plain, "tiny");
    morsel_model_close(fused);
    morsel_model_close(plain);

    /* Width 1.0 at 224: expanded_conv (112x112x32 depthwise output, no expand), block_1
     * (56x56x96, expand fused) and block_2 (56x56x144, expand fused, residual add) pass 1 MB;
     * block_3's 28x28x144 does not. */
    fused = open_with(argv[3], NULL);
    plain = open_with(argv[3], "0");
    morsel_model_get_info(fused, &fi, NULL);
    morsel_model_get_info(plain, &pi, NULL);
    int n_proj = count_kernels(fused, "fused into the depthwise before it");
    int proj_hosts = count_kernels(fused, "*+f32_gemm");
    printf("     MobileNetV2 224: %d project conv(s) fused; arena %.2f MB fused, %.2f MB not\n",
           n_proj, fi.arena_bytes / 1e6, pi.arena_bytes / 1e6);
    check(n_proj == 3 && proj_hosts == 3, "the project convs of the three wide depthwise convs are fused");
    check(count_kernels(fused, "*+f32_gemm+add") == 1, "block_2's also runs its residual add");
    check(count_kernels(plain, "fused into the depthwise") == 0, "MORSEL_FUSION=0 keeps them apart");
    check(fi.arena_bytes < pi.arena_bytes, "the fused model plans a smaller arena");
    same_outputs(fused, plain, "MobileNetV2 224");
    morsel_model_close(fused);
    morsel_model_close(plain);
    printf("test_fusion: %d failure(s)\n", failed);
    return failed ? 1 : 0;
}
